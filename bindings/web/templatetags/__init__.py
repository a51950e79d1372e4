"""Template tags of the dashboard (badges, relative times, the timeline SVG)."""

from __future__ import annotations
