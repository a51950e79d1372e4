"""Celery tasks for active probes: thin. Fetch by id, take the per-cluster lock, call `probing`.

`dispatch_probes_task` runs every 30 s (CELERY_BEAT_SCHEDULE "dispatch-probes") and fans out the
clusters where probing is configured; `probe_cluster_task` probes only the bindings that are due
(each binding's interval is data: its ProbeSetting, else BH_PROBE_INTERVAL_SECONDS), so a tick
that finds nothing due costs a few queries. The lock is the polls' `source_lock` with its own
kind, so a probe round never blocks (or is blocked by) a poll of the same cluster.
"""

from __future__ import annotations

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.utils.log import get_task_logger
from django.conf import settings

from bindings import models as m
from bindings import probing
from bindings.tasks import source_lock

task_logger = get_task_logger(__name__)


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
