"""Machine-facing URLs: the JSON API under /api/v1/, /metrics, /healthz and /readyz."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from bindings.api import api_urlpatterns
from bindings.api.health import healthz, readyz
from bindings.api.metrics import metrics_view

urlpatterns: list[URLPattern | URLResolver] = [
    *api_urlpatterns(),
    path("metrics", metrics_view, name="metrics"),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
]
