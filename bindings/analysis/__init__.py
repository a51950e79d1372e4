"""Pure analysis: a typed `Inventory` in, per-binding and per-protocol results out."""

from __future__ import annotations

from .engine import analyze

__all__ = ["analyze"]
