"""Dict shapes more than one router answers with: data age, a binding's freshness, a poll run."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bindings import freshness
from bindings import models as m

# Where a binding lives in the API: its list item's and detail's `url` is this and its id.
BINDING_URL = "/api/v1/bindings/"


def age_seconds(when: datetime | None, now: datetime) -> int | None:
    return None if when is None else max(0, int((now - when).total_seconds()))


def binding_freshness(cluster: m.Cluster, now: datetime) -> tuple[int | None, bool]:
    """(data age, stale) of a binding: the older of its cluster's and its account's last success."""
    sources = cluster.data_sources()
    successes = [s.last_success_at for s in sources]
    age = None if None in successes else age_seconds(min(successes), now)
    return age, any(freshness.is_stale(s.last_success_at, s.poll_interval_seconds, now) for s in sources)


def poll_summary(run: m.PollRun | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "id": run.pk,
        "status": run.status,
        "trigger": run.trigger,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "duration_ms": run.duration_ms,
        "api_calls": run.api_calls if isinstance(run.api_calls, dict) else {},
        "error": run.error,
        "note": run.note,
    }
