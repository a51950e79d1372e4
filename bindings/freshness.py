"""When a source's data counts as stale: the one definition (STALE_DATA finding, pages, API, alerts).

Pure (no Django, no clock): callers pass `now`, so the analysis judges at `Inventory.now` and the
web at request time with the same rule.

- Never polled successfully: stale (nothing is known, or only what an older run left).
- Older than `STALE_INTERVALS` poll intervals: stale. Exactly at the limit is still fresh.
- A poll interval of zero or less has no cadence to be late against: never stale by age. Such an
  interval cannot be saved through the model's validation; it is what the engine has always
  answered for a bundle that carries one, and the goldens pin it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

STALE_INTERVALS = 3


def stale_limit(poll_interval_seconds: int) -> timedelta | None:
    """The age past which data is stale; None when the interval gives no limit."""
    interval = int(poll_interval_seconds)
    if interval <= 0:
        return None
    return timedelta(seconds=STALE_INTERVALS * interval)


def is_stale(last_success_at: datetime | None, poll_interval_seconds: int, now: datetime) -> bool:
    """Whether a source last polled successfully at `last_success_at` is stale at `now`.

    Raises TypeError when one datetime is naive and the other aware: the caller decides whether
    that is "cannot judge" (the engine) or a bug.
    """
    if last_success_at is None:
        return True
    limit = stale_limit(poll_interval_seconds)
    return limit is not None and now - last_success_at > limit


def stale_sql(last_success_at: str, poll_interval_seconds: str, now: str) -> str:
    """`is_stale` as a PostgreSQL boolean expression, for queries that judge sources row by row
    (the API list). The operands are SQL: column references or placeholders, never input."""
    return (
        f"({last_success_at} IS NULL OR ({poll_interval_seconds} > 0 AND "
        f"{now} - {last_success_at} > {poll_interval_seconds} * interval '{STALE_INTERVALS} seconds'))"
    )
