"""Every Celery task, thin: fetch by id, take the per-source lock, call a service.

Polls call `bindings.services.polling`, probe rounds `bindings.services.probing`, alert deliveries
`bindings.services.alerts` and Kubernetes Events `bindings.services.kube_events`. Task names are
explicit strings that predate this module's layout (`bindings.alerts.…`, `bindings.probe_tasks.…`):
queued messages and beat entries keep working, so they never follow the code around.

The schedule is data: `dispatch_due_polls_task` runs every few seconds (CELERY_BEAT_SCHEDULE) and
fans out the sources whose `next_poll_at` has passed. A compare-and-set on `next_poll_at` means two
beats (or a beat and an admin "Poll now") never enqueue the same source twice per period, and the
cache lock means one poll per source at a time even if they do.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.utils.log import get_task_logger
from django.conf import settings
from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone

from bindings import models as m
from bindings.collect.errors import SourceError, TransientSourceError
from bindings.services import alerts, kube_events, polling, probing
from bindings.store.results import history_prune

task_logger = get_task_logger(__name__)

# A lock outlives the hard time limit, so a killed worker's lock expires soon after it.
LOCK_TTL = settings.BH_POLL_LOCK_SECONDS
DISPATCH_BATCH = 200
DEFER_SECONDS = 10


def _lock_key(kind: str, pk: int) -> str:
    return f"bh:poll-lock:{kind}:{pk}"


@contextmanager
def source_lock(kind: str, pk: int) -> Iterator[bool]:
    """One poll per source at a time. The lock's value is "<owner> <start time>", so "Poll now"
    can say since when a poll has been running instead of queueing one that would be skipped."""
    key = _lock_key(kind, pk)
    token = f"{uuid.uuid4().hex} {timezone.now().isoformat()}"
    acquired = cache.add(key, token, LOCK_TTL)
    try:
        yield acquired
    finally:
        # Only release our own lock: after a timeout another worker may hold a new one.
        if acquired and cache.get(key) == token:
            cache.delete(key)


def poll_running_since(kind: str, pk: int) -> datetime | None:
    """When the poll now holding the source's lock started, or None when no poll holds it.
    `kind` is "cluster" or "account", as for `source_lock`."""
    value = cache.get(_lock_key(kind, pk))
    if not isinstance(value, str):
        return None
    _, _, started = value.partition(" ")
    try:
        return datetime.fromisoformat(started)
    except ValueError:
        # A lock written by an older release (owner only, during a rolling upgrade): the running
        # PollRun says when it started; without one, the lock is not reported.
        owner = {"cluster_id": pk} if kind == "cluster" else {"account_id": pk}
        run = m.PollRun.objects.filter(status=m.PollRun.Status.RUNNING, **owner).order_by("-started_at")
        return run.values_list("started_at", flat=True).first()


def request_poll(kind: str, pk: int, trigger: str) -> datetime | None:
    """ "Poll now" from the dashboard, the admin or the API: enqueue a poll of the source once the
    caller's transaction commits and return None, or, when a poll of it is running, enqueue
    nothing (the queued poll would only find the lock held) and return since when it runs.
    `kind` is "cluster" or "account"; `trigger` is recorded on the PollRun."""
    since = poll_running_since(kind, pk)
    if since is None:
        task = poll_cluster_task if kind == "cluster" else poll_account_task
        task.delay_on_commit(pk, trigger)
    return since


def _claim_due(model: type[m.PolledSource], now) -> list[int]:
    """Claim due sources by moving next_poll_at forward; the rowcount says who won the race."""
    claimed = []
    due = (
        model.objects.filter(enabled=True)
        .filter(Q(next_poll_at__isnull=True) | Q(next_poll_at__lte=now))
        .order_by("last_polled_at", "pk")
        .values_list("pk", "next_poll_at", "poll_interval_seconds")[:DISPATCH_BATCH]
    )
    for pk, old, interval in due:
        new = now + timedelta(seconds=interval)
        if model.objects.filter(pk=pk, next_poll_at=old).update(next_poll_at=new) == 1:
            claimed.append(pk)
    return claimed


POLL_TASKS = {
    "bindings.tasks.poll_cluster_task": "kube",
    "bindings.tasks.poll_account_task": "aws",
}


def poll_queue(kind: str, pk: int, shards: int | None = None) -> str | None:
    """The queue of one source's polls: `polls.<kind>.<pk % shards>`, or None (the default queue)
    with one shard, so single-worker setups and the demo need no -Q option."""
    shards = settings.BH_POLL_SHARDS if shards is None else shards
    if shards <= 1:
        return None
    return f"polls.{kind}.{int(pk) % shards}"


def route_poll(name: str, args: tuple, kwargs: dict, options: dict, task=None, **_: object) -> dict | None:
    """Celery router (CELERY_TASK_ROUTES): every way of sending a poll — the dispatcher, "Poll
    now", the API, a cluster change, a deferred retry — lands on its source's shard queue. A pk
    always maps to the same shard, so a shard's worker holds that source's per-source lock."""
    kind = POLL_TASKS.get(name)
    if kind is None:
        return None
    pk = args[0] if args else (kwargs or {}).get("cluster_id" if kind == "kube" else "account_id")
    if pk is None:
        return None
    queue = poll_queue(kind, pk)
    return {"queue": queue} if queue else None


@shared_task(name="bindings.tasks.dispatch_due_polls_task", ignore_result=True)
def dispatch_due_polls_task() -> dict[str, list[int]]:
    now = timezone.now()
    clusters = _claim_due(m.Cluster, now)
    accounts = _claim_due(m.AwsAccount, now)
    for pk in clusters:
        poll_cluster_task.delay(pk)
    for pk in accounts:
        poll_account_task.delay(pk)
    if clusters or accounts:
        task_logger.info("dispatched polls: clusters=%s accounts=%s", clusters, accounts)
    return {"clusters": clusters, "accounts": accounts}


_POLL_OPTIONS = {
    "autoretry_for": (TransientSourceError,),
    "retry_backoff": 5,
    "retry_backoff_max": 120,
    "max_retries": 3,
    "soft_time_limit": settings.BH_POLL_SOFT_TIME_LIMIT,
    "time_limit": settings.BH_POLL_SOFT_TIME_LIMIT + 30,
    "ignore_result": True,
    "acks_late": True,
}


@shared_task(name="bindings.tasks.poll_cluster_task", **_POLL_OPTIONS)
def poll_cluster_task(cluster_id: int, trigger: str = "schedule") -> str:
    cluster = m.Cluster.objects.select_related("aws_account").filter(pk=cluster_id).first()
    if cluster is None:
        return "gone"
    with source_lock("cluster", cluster_id) as acquired:
        if not acquired:
            return "locked"
        try:
            run = polling.cluster_poll(cluster=cluster, trigger=trigger)
        except TransientSourceError:
            raise
        except SourceError:
            return "failed"  # recorded on the PollRun and the cluster; a retry would not help
    if run.rows_written and cluster.aws_account_id:
        # New or changed bindings/nodes reference AWS resources the account poll has not seen:
        # fetch them now instead of waiting for the account's next turn.
        poll_account_task.delay(cluster.aws_account_id, "cluster-changed")
    return "ok"


@shared_task(name="bindings.tasks.poll_account_task", **_POLL_OPTIONS)
def poll_account_task(account_id: int, trigger: str = "schedule") -> str:
    account = m.AwsAccount.objects.filter(pk=account_id).first()
    if account is None:
        return "gone"
    with source_lock("account", account_id) as acquired:
        if not acquired:
            if trigger != "schedule":
                # A poll asked for a reason (new bindings, a person) must not be lost to one
                # already running with older references: run it once that one is done.
                poll_account_task.apply_async((account_id, trigger), countdown=DEFER_SECONDS)
                return "deferred"
            return "locked"
        try:
            polling.account_poll(account=account, trigger=trigger)
        except TransientSourceError:
            raise
        except SourceError:
            return "failed"
    return "ok"


@shared_task(name="bindings.tasks.prune_history_task", ignore_result=True, soft_time_limit=600)
def prune_history_task() -> int:
    before = timezone.now() - timedelta(days=settings.BH_HISTORY_RETENTION_DAYS)
    return history_prune(before=before)


# --- alerts ------------------------------------------------------------------------------------


@shared_task(name="bindings.alerts.send_alerts_task", ignore_result=True, soft_time_limit=60, time_limit=90)
def send_alerts_task() -> int:
    """Beat entry: record due deliveries and enqueue each once its row is committed."""
    created = alerts.alerts_scan()
    for pk in created:
        deliver_alert_task.delay_on_commit(pk)
    if created:
        task_logger.info("queued %d alert deliveries", len(created))
    return len(created)


@shared_task(
    bind=True,
    name="bindings.alerts.deliver_alert_task",
    autoretry_for=(alerts.DeliveryError,),
    retry_backoff=5,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=max(0, settings.BH_ALERT_MAX_ATTEMPTS - 1),
    ignore_result=True,
    soft_time_limit=60,
    time_limit=90,
    acks_late=True,
)
def deliver_alert_task(self: Any, delivery_id: int) -> str:
    """Send one delivery. Retried by Celery on DeliveryError; the row records every attempt."""
    return alerts.deliver(delivery_id, final_attempt=self.request.retries >= self.max_retries)


# --- Kubernetes Events -------------------------------------------------------------------------


@shared_task(
    name="bindings.kube_events.emit_kube_events_task", ignore_result=True, soft_time_limit=120, time_limit=150
)
def emit_kube_events_task() -> dict[str, int]:
    """Beat entry: Events for every cluster that opted in; one cluster's failure skips only it."""
    return kube_events.emit_all()


# --- active probes -----------------------------------------------------------------------------
# `dispatch_probes_task` runs every 30 s (CELERY_BEAT_SCHEDULE "dispatch-probes") and fans out the
# clusters where probing is configured; `probe_cluster_task` probes only the bindings that are due
# (each binding's interval is data: its ProbeSetting, else BH_PROBE_INTERVAL_SECONDS), so a tick
# that finds nothing due costs a few queries. The lock is the polls' `source_lock` with its own
# kind, so a probe round never blocks (or is blocked by) a poll of the same cluster.


@shared_task(name="bindings.probe_tasks.dispatch_probes_task", ignore_result=True)
def dispatch_probes_task() -> list[int]:
    cluster_ids = probing.clusters_with_probes()
    for pk in cluster_ids:
        probe_cluster_task.delay(pk)
    if cluster_ids:
        task_logger.info("dispatched probe rounds: clusters=%s", cluster_ids)
    return cluster_ids


@shared_task(
    name="bindings.probe_tasks.probe_cluster_task",
    ignore_result=True,
    # Probes have their own timeouts and retries; a failed probe is a result, not a task failure,
    # so there is no autoretry here. Late acks: a round lost with its worker is simply redone.
    acks_late=True,
    soft_time_limit=settings.BH_PROBE_SOFT_TIME_LIMIT,
    time_limit=settings.BH_PROBE_SOFT_TIME_LIMIT + 30,
)
def probe_cluster_task(cluster_id: int, force: bool = False) -> str:
    cluster = m.Cluster.objects.select_related("aws_account").filter(pk=cluster_id).first()
    if cluster is None:
        return "gone"
    with source_lock("probe", cluster_id) as acquired:
        if not acquired:
            return "locked"
        try:
            probing.probe_cluster(cluster=cluster, force=force)
        except SoftTimeLimitExceeded:
            # Nothing was stored (rows are written after the round); the next tick retries.
            task_logger.warning("probe round of cluster %s hit its time limit", cluster.name)
            return "timeout"
    return "ok"
