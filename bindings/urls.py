"""Machine-facing URLs: the JSON API under /api/v1/, /metrics, /healthz and /readyz."""

from __future__ import annotations

urlpatterns: list = []
