"""Polls of one source, end to end: collect -> normalise -> sync -> analyse -> store results.

Called by the Celery tasks and by `manage.py poll`. Each poll is recorded as a `PollRun`; on a
failure the previous state stays, the source records `last_error`, and the error is re-raised for
the caller to decide on retries (only `bindings.errors.TransientSourceError`s are retried).
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from bindings import aws, kube
from bindings import models as m
from bindings.analysis.engine import analyze
from bindings.analysis.normalize import normalize_aws, normalize_kubernetes
from bindings.fixes import fix_to_dict, generate_fix
from bindings.fixes.generate import FIXABLE_CODES
from bindings.inventory import cluster_inventory
from bindings.ratelimit import bucket_for
from bindings.results import results_store
from bindings.sync import SyncStats, account_sync, cluster_sync, jsonable, snapshot_store

logger = logging.getLogger(__name__)


def kube_connection(cluster: m.Cluster) -> kube.KubeConnection:
    if cluster.connection == m.Cluster.Connection.IN_CLUSTER:
        return kube.KubeConnection(in_cluster=True)
    if cluster.connection == m.Cluster.Connection.URL:
        return kube.KubeConnection(
            api_url=cluster.api_url,
            token_file=cluster.token_file or None,
            ca_file=cluster.ca_file or None,
            verify_ssl=cluster.verify_ssl,
        )
    return kube.KubeConnection(kubeconfig_path=cluster.kubeconfig_path, context=cluster.kube_context or None)


def aws_target(account: m.AwsAccount) -> aws.AwsTarget:
    return aws.AwsTarget(
        account_id=account.account_id,
        region=account.region,
        role_arn=account.role_arn or None,
        external_id=account.external_id or None,
        endpoint_url=account.endpoint_url or None,
    )


def _short_error(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {text}"[:2000]


def _finish(
    run: m.PollRun,
    source: m.PolledSource,
    *,
    started: float,
    error: BaseException | None,
    api_calls: dict[str, int],
    stats: SyncStats,
    now: datetime,
) -> None:
    run.finished_at = timezone.now()
    run.duration_ms = int((time.monotonic() - started) * 1000)
    run.api_calls = dict(api_calls)
    run.rows_written = stats.rows_written
    run.status = m.PollRun.Status.FAILED if error else m.PollRun.Status.SUCCESS
    run.error = _short_error(error) if error else ""
    run.save()
    source.last_polled_at = now
    fields = ["last_polled_at", "last_error", "next_poll_at"]
    if error is None:
        source.last_success_at = now
        fields.append("last_success_at")
    source.last_error = run.error
    source.next_poll_at = now + timedelta(seconds=source.poll_interval_seconds)
    source.save(update_fields=fields)


def problems_store(source: m.PolledSource, problems: list) -> None:
    value = jsonable(problems)
    if source.problems != value:
        source.problems = value
        source.save(update_fields=["problems"])


def cluster_analyze(*, cluster: m.Cluster, now: datetime | None = None) -> SyncStats:
    """Re-run the analysis of every binding of `cluster` from the database and store the results."""
    now = now or timezone.now()
    inventory = cluster_inventory(cluster, now=now)
    results = analyze(inventory)
    fixes = {}
    for result in results:
        if any(f.code in FIXABLE_CODES for f in result.findings):
            fix = generate_fix(inventory, result)
            if fix is not None:
                fixes[result.uid] = fix_to_dict(fix)
    return results_store(cluster=cluster, results=results, now=now, fixes=fixes)


ABANDONED = "abandoned: the worker stopped mid-poll (killed or timed out); nothing it wrote was kept"


def abandon_running_polls(**owner: Any) -> int:
    """Close runs left 'running' by a worker that died. Callers hold the source's lock, so no
    other poll of this source can be running now."""
    return m.PollRun.objects.filter(status=m.PollRun.Status.RUNNING, **owner).update(
        status=m.PollRun.Status.FAILED, error=ABANDONED, finished_at=timezone.now()
    )


def cluster_poll(*, cluster: m.Cluster, trigger: str = "schedule") -> m.PollRun:
    """Poll one cluster's Kubernetes API, sync it and re-analyse its bindings.

    The caller holds the cluster's poll lock (`bindings.tasks.source_lock`).
    """
    abandon_running_polls(cluster=cluster)
    now = timezone.now()
    run = m.PollRun.objects.create(cluster=cluster, trigger=trigger, started_at=now)
    started = time.monotonic()
    stats, api_calls, error = SyncStats(), {}, None
    try:
        snap = kube.collect_cluster(
            kube_connection(cluster), request_timeout=settings.BH_KUBE_REQUEST_TIMEOUT
        )
        api_calls = snap.api_calls
        records = normalize_kubernetes(snap.objects, cluster=cluster.name)
        with transaction.atomic():
            stats = cluster_sync(cluster=cluster, records=records)
            snapshot_store(cluster=cluster, payload={"objects": snap.objects}, collected_at=now)
            problems_store(cluster, records.problems)
    except Exception as exc:
        error = exc
        logger.warning("poll of cluster %s failed: %s", cluster.name, _short_error(exc))
    _finish(run, cluster, started=started, error=error, api_calls=api_calls, stats=stats, now=now)
    # Analyse even after a failure: staleness and "poll failed" are findings too.
    cluster.refresh_from_db()
    stats.add(cluster_analyze(cluster=cluster, now=now))
    if stats.rows_written != run.rows_written:
        m.PollRun.objects.filter(pk=run.pk).update(rows_written=stats.rows_written)
    if error is not None:
        # Already recorded on the run and the source; the caller decides whether to retry.
        raise error
    return run


def _pod_eni_ids(value: str) -> list[str]:
    """`vpc.amazonaws.com/pod-eni` holds a JSON list of {"eniId": ...} (security groups for pods)."""
    try:
        data = json.loads(value)
    except (TypeError, ValueError):
        return []
    items = data if isinstance(data, list) else [data]
    return [str(i["eniId"]) for i in items if isinstance(i, dict) and i.get("eniId")]


def account_references(account: m.AwsAccount) -> dict[str, Any]:
    """What the bindings of the account's clusters point at: all the AWS poll fetches."""
    clusters = list(account.clusters.filter(enabled=True))
    tgbs = m.TargetGroupBinding.objects.filter(cluster__in=clusters)
    arns = sorted({a for a in tgbs.values_list("target_group_arn", flat=True) if a})
    names = sorted(
        {n for n in tgbs.filter(target_group_arn="").values_list("target_group_name", flat=True) if n}
    )
    nodes = m.KubeNode.objects.filter(cluster__in=clusters).exclude(instance_id="")
    instance_ids = sorted(set(nodes.values_list("instance_id", flat=True)))
    enis: set[str] = set()
    for value in (
        m.KubePod.objects.filter(cluster__in=clusters).exclude(pod_eni="").values_list("pod_eni", flat=True)
    ):
        enis.update(_pod_eni_ids(value))
    return {
        "target_group_arns": arns,
        "target_group_names": names,
        "node_instance_ids": instance_ids,
        "pod_eni_ids": sorted(enis),
    }


def account_poll(*, account: m.AwsAccount, trigger: str = "schedule") -> m.PollRun:
    """Poll the AWS resources the account's clusters reference, sync them, re-analyse.

    The caller holds the account's poll lock (`bindings.tasks.source_lock`).
    """
    abandon_running_polls(account=account)
    now = timezone.now()
    run = m.PollRun.objects.create(account=account, trigger=trigger, started_at=now)
    started = time.monotonic()
    stats, api_calls, error = SyncStats(), {}, None
    bucket = bucket_for(
        account.account_id,
        account.region,
        rate=settings.BH_AWS_CALLS_PER_SECOND,
        redis_url=settings.REDIS_URL,
    )
    try:
        refs = account_references(account)
        snap = aws.collect_account(
            aws_target(account),
            **refs,
            cache=cache,
            attribute_ttl=settings.BH_ATTRIBUTE_CACHE_SECONDS,
            before_call=lambda operation: bucket.take(),
        )
        api_calls = snap.api_calls
        records = normalize_aws(snap.responses)
        with transaction.atomic():
            stats = account_sync(account=account, records=records)
            snapshot_store(account=account, payload=snap.responses, collected_at=now)
            problems_store(account, records.problems)
    except Exception as exc:
        error = exc
        logger.warning("poll of AWS account %s failed: %s", account.name, _short_error(exc))
    _finish(run, account, started=started, error=error, api_calls=api_calls, stats=stats, now=now)
    for cluster in account.clusters.filter(enabled=True).select_related("aws_account"):
        stats.add(cluster_analyze(cluster=cluster, now=now))
    if stats.rows_written != run.rows_written:
        m.PollRun.objects.filter(pk=run.pk).update(rows_written=stats.rows_written)
    if error is not None:
        # Already recorded on the run and the source; the caller decides whether to retry.
        raise error
    return run
