"""Polls of one source, end to end: collect -> normalise -> sync -> analyse -> store results.

Called by the Celery tasks and by `manage.py poll`. Each poll is recorded as a `PollRun`; on a
failure the previous state stays, the source records `last_error`, and the error is re-raised for
the caller to decide on retries (only `bindings.collect.errors.TransientSourceError`s are retried).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Max, Q, QuerySet
from django.utils import timezone

from bindings import freshness
from bindings import models as m
from bindings.analysis.engine import analyze
from bindings.analysis.normalize import bound_depth, normalize_aws, normalize_kubernetes, pod_eni_entries
from bindings.collect import aws, kube
from bindings.collect.credentials import CredentialPathError, credential_path, kubeconfig_path
from bindings.collect.errors import KubeError
from bindings.collect.ratelimit import bucket_for
from bindings.fixes import FixIndex, fix_to_dict, generate_fix
from bindings.store.fieldmaps import jsonable
from bindings.store.inventory import cluster_inventory
from bindings.store.results import history_tick, results_store
from bindings.store.sync import SyncStats, account_sync, cluster_sync, digest, fit_columns, snapshot_store
from bindings.vocabulary import FIXABLE_CODES, THROTTLED_MARK

logger = logging.getLogger(__name__)


def throttled_runs(runs: QuerySet[m.PollRun]) -> QuerySet[m.PollRun]:
    """The runs among `runs` that failed because AWS kept throttling after retries (/metrics)."""
    return runs.filter(error__contains=THROTTLED_MARK)


def _credential(cluster: m.Cluster, field: str) -> str | None:
    """The cluster's credential path `field`, re-checked now (symlinks resolved) against
    BH_CREDENTIALS_DIRS; the resolved path is what the collector opens. KubeError otherwise:
    the poll fails with a message naming the cluster and field, and nothing is read."""
    value = getattr(cluster, field)
    if not value:
        return None
    what = f"cluster {cluster.name!r} {field} ({m.Cluster.CREDENTIAL_PATH_FIELDS[field]})"
    check = kubeconfig_path if field == "kubeconfig_path" else credential_path
    try:
        return str(check(value, what=what))
    except CredentialPathError as exc:
        raise KubeError(str(exc)) from None


def kube_connection(cluster: m.Cluster) -> kube.KubeConnection:
    """How to reach `cluster`, with its credential paths checked at read time (also for apply)."""
    if cluster.connection == m.Cluster.Connection.IN_CLUSTER:
        return kube.KubeConnection(in_cluster=True)
    if cluster.connection == m.Cluster.Connection.URL:
        return kube.KubeConnection(
            api_url=cluster.api_url,
            token_file=_credential(cluster, "token_file"),
            ca_file=_credential(cluster, "ca_file"),
            verify_ssl=cluster.verify_ssl,
        )
    path = _credential(cluster, "kubeconfig_path")
    if path is None:
        raise KubeError(f"cluster {cluster.name!r}: a kubeconfig connection needs kubeconfig_path")
    return kube.KubeConnection(kubeconfig_path=path, context=cluster.kube_context or None)


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
    held: str | None = None,
) -> None:
    run.finished_at = timezone.now()
    run.duration_ms = int((time.monotonic() - started) * 1000)
    run.api_calls = dict(api_calls)
    run.rows_written = stats.rows_written
    if error:
        run.status = m.PollRun.Status.FAILED
    else:
        run.status = m.PollRun.Status.HELD if held else m.PollRun.Status.SUCCESS
    run.error = _short_error(error) if error else ""
    run.note = held or ""
    run.save()
    source.last_polled_at = now
    fields = ["last_polled_at", "last_error", "next_poll_at"]
    # A held poll stored nothing: the data is as old as before, and STALE_DATA says so in time.
    if error is None and not held:
        source.last_success_at = now
        fields.append("last_success_at")
    source.last_error = run.error
    source.next_poll_at = now + timedelta(seconds=source.poll_interval_seconds)
    source.save(update_fields=fields)


def _incremental() -> bool:
    return bool(getattr(settings, "BH_INCREMENTAL_ANALYSIS", True))


def problems_store(source: m.PolledSource, problems: list) -> None:
    value = jsonable(problems)
    if source.problems != value:
        source.problems = value
        source.save(update_fields=["problems"])


@dataclasses.dataclass
class AnalysisStats(SyncStats):
    """Rows written, plus how many bindings were re-analysed and how many were skipped."""

    analyzed: int = 0
    skipped: int = 0


@functools.cache
def _engine_version() -> str:
    """A digest of the code that turns inputs into stored results: a deploy that changes a rule
    must re-judge every binding even though no input changed."""
    root = Path(__file__).resolve().parent
    files = sorted([*(root / "analysis").glob("*.py"), *(root / "fixes").glob("*.py")])
    files += [root / "inventory.py", root / "results.py"]
    h = hashlib.blake2b(digest_size=16)
    for path in files:
        if path.is_file():
            h.update(path.read_bytes())
    return h.hexdigest()


def _h(*parts: Any) -> str:
    # repr of the frozen analysis dataclasses is deterministic (tuples and dicts loaded in the
    # same order from the same rows; no sets) and ~10x cheaper than jsonable() + json.dumps.
    return hashlib.blake2b(repr(parts).encode(), digest_size=12).hexdigest()


def binding_input_digests(inv: Any) -> dict[str, str]:
    """uid -> digest of everything the analysis (and fix) of that binding can read.

    Binding-specific inputs: the TGB, its Service, that Service's EndpointSlices, the pods of its
    namespace, its target group with health, load balancers and their listeners, its probes.
    Shared inputs — nodes, instances, ENIs, security groups, subnets, VPCs, NACLs, client ranges,
    source states, problems tied to no binding, the engine's code — go into one global digest:
    a change there re-judges every binding. That is a deliberate superset (pods per namespace, not
    per endpoint; all ENIs, not each target's): cheaper to compute than the engine's own target
    resolution, and never misses a dependency.
    """
    stale = []
    for src in inv.sources or ():
        if src.last_success_at is None or inv.now is None:
            stale.append((src.kind, src.name, "never"))
            continue
        # A stale source's finding quotes its age, so its bindings change every poll anyway.
        is_stale = freshness.is_stale(src.last_success_at, int(src.poll_interval_seconds or 0), inv.now)
        stale.append((src.kind, src.name, src.poll_interval_seconds, src.last_error, is_stale))
        if is_stale:
            stale.append(inv.now.isoformat())
    shared = _h(
        _engine_version(),
        inv.cluster,
        inv.client_cidrs,
        inv.aws_complete,
        stale,
        inv.problems,
        sorted(inv.nodes.items()),
        sorted(inv.network_interfaces.items()),
        sorted(inv.instances.items()),
        sorted(inv.security_groups.items()),
        sorted(inv.subnets.items()),
        sorted(inv.vpcs.items()),
        inv.network_acls,
    )
    slices: dict[tuple[str, str | None], list[Any]] = {}
    for es in inv.endpoint_slices:
        slices.setdefault((es.namespace, es.service_name), []).append(es)
    pods_by_ns: dict[str, list[Any]] = {}
    for _key, pod in sorted(inv.pods.items()):
        pods_by_ns.setdefault(pod.namespace, []).append(pod)
    pods_digest = {ns: _h(pods) for ns, pods in pods_by_ns.items()}
    listeners: dict[str, list[Any]] = {}
    for li in inv.listeners:
        listeners.setdefault(li.load_balancer_arn or "", []).append(li)
    lb_digest: dict[str, str] = {}
    tg_digest: dict[str, str] = {}
    tg_by_name = {tg.name: tg for tg in inv.target_groups.values() if tg.name}

    def tg_part(b: Any) -> str:
        tg = inv.target_groups.get(b.target_group_arn or "") or tg_by_name.get(b.target_group_name or "")
        if tg is None:
            return "missing"
        if tg.arn not in tg_digest:
            lbs = []
            for arn in tg.load_balancer_arns:
                if arn not in lb_digest:
                    lb_digest[arn] = _h(inv.load_balancers.get(arn), listeners.get(arn, []))
                lbs.append(lb_digest[arn])
            tg_digest[tg.arn] = _h(tg, inv.target_health.get(tg.arn, []), lbs)
        return tg_digest[tg.arn]

    out = {}
    for b in inv.bindings:
        out[b.uid] = _h(
            shared,
            b,
            inv.services.get(f"{b.namespace}/{b.service_name}"),
            slices.get((b.namespace, b.service_name), []),
            pods_digest.get(b.namespace, ""),
            tg_part(b),
            inv.probes.get((b.uid, "TCP")),
            inv.probes.get((b.uid, "UDP")),
        )
    return out


def _inputs_key(cluster: m.Cluster) -> str:
    return f"bh:analysis-inputs:{cluster.pk}"


INPUTS_TTL = 7 * 24 * 3600  # a lost entry only costs one full re-analysis
ANALYSIS_CHUNK = 1000


def cluster_analyze(
    *, cluster: m.Cluster, now: datetime | None = None, incremental: bool = False
) -> AnalysisStats:
    """Re-run the analysis of the bindings of `cluster` from the database and store the results.

    With `incremental`, only bindings whose input digest (`binding_input_digests`) differs from
    the one recorded at their last analysis are re-judged; the others only get their due history
    samples. Digests live in the cache: a miss (restart, eviction) means a full re-analysis,
    never a wrong skip. Every run, full or not, records the digests it judged.
    """
    now = now or timezone.now()
    inventory = cluster_inventory(cluster, now=now)
    inputs = binding_input_digests(inventory)
    todo = inventory
    skipped: list[str] = []
    if incremental:
        previous = cache.get(_inputs_key(cluster)) or {}
        # A binding without a stored result (deleted row, failed first store) is always judged.
        unjudged = set(
            m.TargetGroupBinding.objects.filter(cluster=cluster, result__isnull=True).values_list(
                "uid", flat=True
            )
        )
        changed = [b for b in inventory.bindings if previous.get(b.uid) != inputs[b.uid] or b.uid in unjudged]
        if len(changed) < len(inventory.bindings):
            keep = {b.uid for b in changed}
            skipped = [b.uid for b in inventory.bindings if b.uid not in keep]
            todo = dataclasses.replace(inventory, bindings=changed)
    stats = AnalysisStats(skipped=len(skipped))
    pending = list(todo.bindings)
    fix_index = FixIndex(inventory) if pending else None
    # Judge and store in chunks: the results, their JSON and fixes for 10,000 bindings at once
    # peaked at 459 MB of worker RSS (docs/performance.md, "Poll cycle"). Each chunk is stored
    # in its own transaction; results are per binding, so a crash between chunks leaves every
    # binding with either its old or its new result, never a mix.
    for start in range(0, len(pending), ANALYSIS_CHUNK):
        results = analyze(dataclasses.replace(todo, bindings=pending[start : start + ANALYSIS_CHUNK]))
        fixes = {}
        for result in results:
            if any(f.code in FIXABLE_CODES for f in result.findings):
                fix = generate_fix(inventory, result, fix_index)
                if fix is not None:
                    fixes[result.uid] = fix_to_dict(fix)
        stats.add(results_store(cluster=cluster, results=results, now=now, fixes=fixes))
        stats.analyzed += len(results)
        del results, fixes
    if skipped:
        skip = set(skipped)
        ids = [
            pk
            for pk, uid in m.TargetGroupBinding.objects.filter(cluster=cluster).values_list("pk", "uid")
            if uid in skip
        ]
        stats.add(history_tick(cluster=cluster, now=now, binding_ids=ids))
    cache.set(_inputs_key(cluster), inputs, INPUTS_TTL)
    return stats


def adaptive_intervals(model: type[m.PolledSource], pks: Iterable[int], now: datetime) -> dict[int, int]:
    """Next poll interval per source, from the state of the bindings it feeds.

    Hot (a blocked/partial verdict, or a result that changed within the last hour): half the
    configured interval, never below BH_POLL_INTERVAL_MIN_SECONDS — problems and churn are what
    people are watching. Stable (no result change for 24 h and no error): double it, never above
    BH_POLL_INTERVAL_MAX_SECONDS — the API budget is better spent on the hot ones. Otherwise, and
    with BH_POLL_ADAPTIVE off, the configured interval. An interval an operator set outside the
    bounds is never moved further out of them. Three queries for any number of sources.
    """
    rows = dict(model.objects.filter(pk__in=list(pks)).values_list("pk", "poll_interval_seconds"))
    if not getattr(settings, "BH_POLL_ADAPTIVE", False) or not rows:
        return rows
    lo, hi = settings.BH_POLL_INTERVAL_MIN_SECONDS, settings.BH_POLL_INTERVAL_MAX_SECONDS
    errors = dict(model.objects.filter(pk__in=list(rows)).values_list("pk", "last_error"))
    scope = "binding__cluster_id" if model is m.Cluster else "binding__cluster__aws_account_id"
    state = {
        row[scope]: row
        for row in m.BindingResult.objects.filter(**{f"{scope}__in": list(rows)})
        .values(scope)
        .annotate(
            bad=Count("pk", filter=Q(worst_verdict__in=("blocked", "partial"))),
            last_change=Max("changed_at"),
        )
    }
    out = {}
    for pk, interval in rows.items():
        st = state.get(pk)
        hot = st is not None and (st["bad"] > 0 or now - st["last_change"] < timedelta(hours=1))
        cold = not hot and not errors.get(pk) and (st is None or now - st["last_change"] >= timedelta(days=1))
        if hot:
            interval = min(interval, max(lo, interval // 2))
        elif cold:
            interval = max(interval, min(hi, interval * 2))
        out[pk] = interval
    return out


def _reschedule(source: m.PolledSource, now: datetime) -> None:
    """Set the next poll from the state this poll's analysis left (see `adaptive_intervals`)."""
    interval = adaptive_intervals(type(source), [source.pk], now).get(source.pk)
    if interval is None or interval == source.poll_interval_seconds:
        return  # _finish already scheduled the configured interval
    source.next_poll_at = now + timedelta(seconds=interval)
    type(source).objects.filter(pk=source.pk).update(next_poll_at=source.next_poll_at)


_SYNCED_MODELS: dict[str, tuple[tuple[type[Any], str], ...]] = {
    "cluster": (
        (m.TargetGroupBinding, "cluster"),
        (m.KubeService, "cluster"),
        (m.KubeEndpointSlice, "cluster"),
        (m.KubePod, "cluster"),
        (m.KubeNode, "cluster"),
    ),
    "account": (
        (m.TargetGroup, "account"),
        (m.RegisteredTarget, "account"),
        (m.LoadBalancer, "account"),
        (m.Listener, "account"),
        (m.NetworkInterface, "account"),
        (m.Instance, "account"),
        (m.SecurityGroup, "account"),
        (m.SecurityGroupRule, "security_group__account"),
        (m.Subnet, "account"),
        (m.Vpc, "account"),
        (m.NetworkAcl, "account"),
    ),
}


def _row_counts(kind: str, source: m.PolledSource) -> list[int]:
    return [model.objects.filter(**{field: source}).count() for model, field in _SYNCED_MODELS[kind]]


def _fingerprint_key(kind: str, source: m.PolledSource) -> str:
    return f"bh:sync-fingerprint:{kind}:{source.pk}"


def _unchanged(payload: Any, kind: str, source: m.PolledSource) -> tuple[bool, str]:
    """Whether `payload` is exactly what the last sync of this source wrote, and the rows are
    still there: same payload digest, same row counts per table (rows deleted behind the poller's
    back — a restore, a manual cleanup — force a full sync). The fingerprint expires after
    BH_FULL_SYNC_SECONDS, so a full sync runs at least that often whatever the digests say
    (as the controller's --sync-period does)."""
    new_digest = digest(payload)
    if not _incremental():
        return False, new_digest
    fingerprint = cache.get(_fingerprint_key(kind, source))
    if not fingerprint or fingerprint[0] != new_digest:
        return False, new_digest
    return list(fingerprint[1:]) == _row_counts(kind, source), new_digest


def _remember_sync(kind: str, source: m.PolledSource, payload_digest: str) -> None:
    cache.set(
        _fingerprint_key(kind, source),
        [payload_digest, *_row_counts(kind, source)],
        settings.BH_FULL_SYNC_SECONDS,
    )


HELD_DELETIONS_TTL = 7 * 24 * 3600  # a lost entry only means one more poll waits


def _held_key(kind: str, source: m.PolledSource) -> str:
    return f"bh:held-deletions:{kind}:{source.pk}"


def deletion_hold(
    kind: str, source: m.PolledSource, model: type[Any], key: str, wanted: Iterable[Any], noun: str
) -> str | None:
    """Why this poll must store nothing yet, or None to go ahead (issue 15 item 4).

    An answer that would delete more than BH_MASS_DELETE_FRACTION of the source's `model` rows
    and more than BH_MASS_DELETE_MIN of them is more likely odd (a proxy, a half-restored API, a
    wrong account) than a real mass deletion, and a deleted binding loses its history for good.
    Such a poll waits; the deletions it wanted are remembered, and the next poll goes ahead if
    what it would delete beyond them is not itself a mass deletion — it agrees. A real teardown
    therefore lands one poll later; an odd answer that the next poll contradicts never deletes.
    """
    existing = set(model.objects.filter(**{kind: source}).values_list(key, flat=True))
    if not existing:
        return None
    # Keys as upsert stores them: hostile ids longer than their column are clipped.
    keys = {fit_columns(model, {key: k})[key] for k in wanted if isinstance(k, str)}
    gone = existing - keys
    pending = set(cache.get(_held_key(kind, source)) or ())
    unconfirmed = gone - pending
    fraction, floor = settings.BH_MASS_DELETE_FRACTION, settings.BH_MASS_DELETE_MIN
    if len(unconfirmed) > floor and len(unconfirmed) > fraction * len(existing):
        cache.set(_held_key(kind, source), sorted(gone), HELD_DELETIONS_TTL)
        return (
            f"held: this answer would delete {len(gone)} of the {len(existing)} {noun} at once (more than "
            f"{fraction:.0%} and more than {floor}: BH_MASS_DELETE_FRACTION, BH_MASS_DELETE_MIN); nothing "
            "was stored, and the next poll deletes them only if its answer agrees"
        )
    if pending:
        cache.delete(_held_key(kind, source))
    return None


def _records(container: Any) -> Iterable[Any]:
    return container.values() if isinstance(container, dict) else container or ()


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
    stats, api_calls, error, held = SyncStats(), {}, None, None
    try:
        snap = kube.collect_cluster(
            kube_connection(cluster), request_timeout=settings.BH_KUBE_REQUEST_TIMEOUT
        )
        api_calls = snap.api_calls
        snap.objects = bound_depth(snap.objects)  # 1000-deep nesting must not sink the poll
        payload = {"objects": snap.objects}
        same, payload_digest = _unchanged(payload, "cluster", cluster)
        # Same resourceVersions and contents as the last sync: normalising and diffing every
        # row would only prove that nothing changed.
        if same:
            cache.delete(_held_key("cluster", cluster))  # it deletes nothing: it disagrees
        else:
            records = normalize_kubernetes(snap.objects, cluster=cluster.name)
            uids = (b.uid for b in _records(records.bindings))
            held = deletion_hold("cluster", cluster, m.TargetGroupBinding, "uid", uids, "TargetGroupBindings")
            if held is None:
                with transaction.atomic():
                    stats = cluster_sync(cluster=cluster, records=records)
                    snapshot_store(cluster=cluster, payload=payload, collected_at=now)
                    problems_store(cluster, records.problems)
                _remember_sync("cluster", cluster, payload_digest)
            else:
                logger.warning("poll of cluster %s %s", cluster.name, held)
    except Exception as exc:
        error = exc
        logger.warning("poll of cluster %s failed: %s", cluster.name, _short_error(exc))
    _finish(run, cluster, started=started, error=error, api_calls=api_calls, stats=stats, now=now, held=held)
    # Analyse even after a failure: staleness and "poll failed" are findings too.
    cluster.refresh_from_db()
    stats.add(cluster_analyze(cluster=cluster, now=now, incremental=_incremental()))
    _reschedule(cluster, now)
    if stats.rows_written != run.rows_written:
        m.PollRun.objects.filter(pk=run.pk).update(rows_written=stats.rows_written)
    if error is not None:
        # Already recorded on the run and the source; the caller decides whether to retry.
        raise error
    return run


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
        enis.update(eni_id for eni_id, _ in pod_eni_entries(value) or ())
    return {
        "target_group_arns": arns,
        "target_group_names": names,
        "node_instance_ids": instance_ids,
        "pod_eni_ids": sorted(enis),
    }


STABLE_FOR = timedelta(days=1)


def stable_target_groups(account: m.AwsAccount, now: datetime) -> set[str]:
    """Target groups whose health may be reused between polls (`aws.collect_account`): every
    binding on them has a result that is reachable (or not offered) with every target healthy,
    unchanged for a day. The rest — problems, unhealthy targets, recent change — are described
    every poll. Empty with BH_POLL_ADAPTIVE off or BH_STABLE_HEALTH_SECONDS 0. One query."""
    if not getattr(settings, "BH_POLL_ADAPTIVE", False) or settings.BH_STABLE_HEALTH_SECONDS <= 0:
        return set()
    verdict: dict[str, bool] = {}
    for arn, worst, changed, unhealthy, other in (
        m.TargetGroupBinding.objects.filter(cluster__aws_account=account, cluster__enabled=True)
        .exclude(target_group_arn="")
        .values_list(
            "target_group_arn",
            "result__worst_verdict",
            "result__changed_at",
            "result__unhealthy",
            "result__other",
        )
    ):
        ok = (
            worst in ("reachable", "not_offered")
            and changed is not None
            and now - changed >= STABLE_FOR
            and not unhealthy
            and not other
        )
        verdict[arn] = verdict.get(arn, True) and ok
    return {arn for arn, ok in verdict.items() if ok}


def account_poll(*, account: m.AwsAccount, trigger: str = "schedule") -> m.PollRun:
    """Poll the AWS resources the account's clusters reference, sync them, re-analyse.

    The caller holds the account's poll lock (`bindings.tasks.source_lock`).
    """
    abandon_running_polls(account=account)
    now = timezone.now()
    run = m.PollRun.objects.create(account=account, trigger=trigger, started_at=now)
    started = time.monotonic()
    stats, api_calls, error, held = SyncStats(), {}, None, None
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
            topology_ttl=settings.BH_TOPOLOGY_CACHE_SECONDS,
            stable_target_groups=stable_target_groups(account, now),
            stable_health_ttl=settings.BH_STABLE_HEALTH_SECONDS,
        )
        api_calls = snap.api_calls
        snap.responses = bound_depth(snap.responses)  # as for clusters
        same, payload_digest = _unchanged(snap.responses, "account", account)
        if same:
            cache.delete(_held_key("account", account))  # it deletes nothing: it disagrees
        else:
            records = normalize_aws(snap.responses)
            # The account's "bindings": without their target groups every binding of its clusters
            # turns INVALID_SPEC at once.
            arns = (tg.arn for tg in _records(records.target_groups))
            held = deletion_hold("account", account, m.TargetGroup, "arn", arns, "target groups")
            if held is None:
                with transaction.atomic():
                    stats = account_sync(account=account, records=records)
                    snapshot_store(account=account, payload=snap.responses, collected_at=now)
                    problems_store(account, records.problems)
                _remember_sync("account", account, payload_digest)
            else:
                logger.warning("poll of AWS account %s %s", account.name, held)
    except Exception as exc:
        error = exc
        logger.warning("poll of AWS account %s failed: %s", account.name, _short_error(exc))
    _finish(run, account, started=started, error=error, api_calls=api_calls, stats=stats, now=now, held=held)
    for cluster in account.clusters.filter(enabled=True).select_related("aws_account"):
        stats.add(cluster_analyze(cluster=cluster, now=now, incremental=_incremental()))
    _reschedule(account, now)
    if stats.rows_written != run.rows_written:
        m.PollRun.objects.filter(pk=run.pk).update(rows_written=stats.rows_written)
    if error is not None:
        # Already recorded on the run and the source; the caller decides whether to retry.
        raise error
    return run
