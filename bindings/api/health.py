"""Liveness and readiness probes: unauthenticated, cheap, and never slow.

`/healthz` proves the process answers (no database, no broker), for a liveness probe that must not
restart the web pods when PostgreSQL blips. `/readyz` proves the dependencies a request needs are
reachable — the database and the Celery broker — for a readiness probe or a load balancer check.
"""

from __future__ import annotations

import logging
from pathlib import Path

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)

BROKER_TIMEOUT_SECONDS = 2.0


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up."""
    return JsonResponse({"status": "ok"})


def database_ready() -> str:
    """'' when a trivial query answers, else a short reason."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "not ready", whatever its class
        return exc.__class__.__name__
    return ""


def broker_ready(timeout: float = BROKER_TIMEOUT_SECONDS) -> str:
    """'' when the Celery broker answers within `timeout` seconds, else a short reason.

    The filesystem broker (embedded default) has no server: it is reachable when its folder is.
    """
    # The project's app (dashboard/__init__.py makes it current); the app never imports the project.
    from celery import current_app as app

    url = str(app.conf.broker_url or "")
    if url.startswith("filesystem://"):
        folder = (app.conf.broker_transport_options or {}).get("data_folder_in", "")
        return "" if folder and Path(folder).is_dir() else "broker folder missing"
    try:
        with app.connection_for_write(connect_timeout=timeout) as conn:
            # One attempt, no retry loop: a probe must answer quickly either way.
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
    except Exception as exc:  # kombu raises transport-specific errors
        return exc.__class__.__name__
    return ""


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """200 when the database and the broker are reachable, else 503 naming what is not."""
    checks = {"database": database_ready(), "broker": broker_ready()}
    ok = not any(checks.values())
    if not ok:
        # Names of exception classes only: URLs and credentials stay out of the log.
        logger.warning("not ready: %s", {k: v for k, v in checks.items() if v})
    body = {
        "status": "ok" if ok else "unavailable",
        "checks": {k: ("ok" if not v else f"failed: {v}") for k, v in checks.items()},
    }
    return JsonResponse(body, status=200 if ok else 503)
