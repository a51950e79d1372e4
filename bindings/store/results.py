"""Store analysis results: the latest result per binding, its verdicts and findings, a history
sample per poll, and a record of every verdict transition.

Unchanged results write nothing (digest comparison); history samples are written when something
changed or when the newest sample is older than BH_HISTORY_SAMPLE_SECONDS, so a steady state
costs one small row per binding per sample period instead of a full rewrite per poll.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max

from bindings import models as m
from bindings.analysis import model as am
from bindings.store.fieldmaps import jsonable
from bindings.store.sync import SyncStats, digest

RESULT_FIELDS = [
    "analyzed_at",
    "changed_at",
    "worst_verdict",
    "max_severity",
    "healthy",
    "unhealthy",
    "other",
    "digest",
    "data",
]


def worst_verdict(result: am.BindingResult) -> str:
    if not result.protocols:
        return "unknown"
    return max((p.verdict for p in result.protocols), key=lambda v: m.VERDICT_RANK.get(v, 2))


def max_severity(result: am.BindingResult) -> str:
    if not result.findings:
        return ""
    return max((f.severity for f in result.findings), key=lambda s: m.SEVERITY_RANK.get(s, 0))


def health_counts(result: am.BindingResult) -> tuple[int, int, int]:
    hc = result.health_check
    if hc is None:
        return 0, 0, 0
    return hc.healthy, hc.unhealthy, hc.other


def results_store(
    *,
    cluster: m.Cluster,
    results: Iterable[am.BindingResult],
    now: datetime,
    fixes: dict[str, dict] | None = None,
) -> SyncStats:
    """Persist `results` for `cluster` in one transaction; returns the rows written.

    `fixes` maps a binding uid to its generated fix (`bindings.fixes.fix_to_dict`), stored in the
    result's data so pages and the API serve it without re-running the analysis.
    """
    stats = SyncStats()
    sample_every = timedelta(seconds=getattr(settings, "BH_HISTORY_SAMPLE_SECONDS", 300))
    results = list(results)
    with transaction.atomic():
        stored = _stored_state(cluster, results)
        rows = _ResultRows()
        for result in results:
            pk = stored.binding_pks.get(result.uid)
            if pk is None:
                continue
            data = jsonable(result)
            data["fix"] = (fixes or {}).get(result.uid)
            new_digest = digest(data)
            healthy, unhealthy, other = health_counts(result)
            verdicts: dict[str, str] = {p.protocol: p.verdict for p in result.protocols}
            changed = stored.digests.get(pk) != new_digest
            if changed:
                rows.add_changed(pk, result, data=data, new_digest=new_digest, now=now)
                rows.add_transitions(pk, before=stored.verdicts.get(pk, {}), after=verdicts, now=now)
                stats.updated += 1
            last = stored.last_sample.get(pk)
            if changed or last is None or now - last >= sample_every:
                rows.samples.append(
                    m.HistorySample(
                        binding_id=pk,
                        at=now,
                        verdicts=verdicts,
                        healthy=healthy,
                        unhealthy=unhealthy,
                        other=other,
                    )
                )
        rows.write()
        stats.created += len(rows.verdicts) + len(rows.findings) + len(rows.transitions) + len(rows.samples)
    return stats


@dataclass
class _StoredState:
    """What the database holds for one chunk's bindings before its results are written."""

    binding_pks: dict[str, int]  # uid -> TargetGroupBinding pk
    digests: dict[int, str]  # binding pk -> its stored result's digest
    verdicts: dict[int, dict[str, str]]  # binding pk -> {protocol: verdict}
    last_sample: dict[int, datetime]  # binding pk -> its newest history sample's time


def _stored_state(cluster: m.Cluster, results: list[am.BindingResult]) -> _StoredState:
    # Narrow tuples, not model instances: a TGB row carries its raw object and a result its
    # whole JSON. Only the rows of these results' bindings: this runs once per analysis chunk,
    # and reading the whole cluster each time made a 10,000-binding poll read it ten times.
    bindings = dict(
        m.TargetGroupBinding.objects.filter(cluster=cluster, uid__in={r.uid for r in results}).values_list(
            "uid", "pk"
        )
    )
    ids = list(bindings.values())
    current = dict(m.BindingResult.objects.filter(binding_id__in=ids).values_list("binding_id", "digest"))
    old_verdicts: dict[int, dict[str, str]] = {}
    for binding_id, protocol, verdict in m.ProtocolVerdict.objects.filter(binding_id__in=ids).values_list(
        "binding_id", "protocol", "verdict"
    ):
        old_verdicts.setdefault(binding_id, {})[protocol] = verdict
    last_sample = dict(
        m.HistorySample.objects.filter(binding_id__in=ids)
        .values("binding_id")
        .annotate(at=Max("at"))
        .values_list("binding_id", "at")
    )
    return _StoredState(bindings, current, old_verdicts, last_sample)


@dataclass
class _ResultRows:
    """The rows one `results_store` call writes, collected first and written in bulk."""

    upserts: list[m.BindingResult] = field(default_factory=list)
    changed_ids: list[int] = field(default_factory=list)
    verdicts: list[m.ProtocolVerdict] = field(default_factory=list)
    findings: list[m.Finding] = field(default_factory=list)
    transitions: list[m.VerdictTransition] = field(default_factory=list)
    samples: list[m.HistorySample] = field(default_factory=list)

    def add_changed(
        self, pk: int, result: am.BindingResult, *, data: dict, new_digest: str, now: datetime
    ) -> None:
        """A binding whose result changed: its new result row, verdicts and findings."""
        healthy, unhealthy, other = health_counts(result)
        self.changed_ids.append(pk)
        # Collected and written as one upsert: update_or_create here cost two queries per changed
        # binding (20,000 round trips on a first poll of 10,000).
        self.upserts.append(
            m.BindingResult(
                binding_id=pk,
                analyzed_at=now,
                changed_at=now,
                worst_verdict=worst_verdict(result),
                max_severity=max_severity(result),
                healthy=healthy,
                unhealthy=unhealthy,
                other=other,
                digest=new_digest,
                data=data,
            )
        )
        for p in result.protocols:
            self.verdicts.append(
                m.ProtocolVerdict(
                    binding_id=pk,
                    protocol=p.protocol,
                    port=p.port,
                    verdict=p.verdict,
                    targets_total=p.targets_total,
                    targets_admitted=p.targets_admitted,
                    reasons=list(p.reasons),
                )
            )
        for f in result.findings:
            self.findings.append(
                m.Finding(
                    binding_id=pk,
                    code=f.code,
                    severity=f.severity,
                    protocol=f.protocol or "",
                    message=f.message,
                    evidence=jsonable(f.evidence),
                )
            )

    def add_transitions(
        self, pk: int, *, before: Mapping[str, str], after: Mapping[str, str], now: datetime
    ) -> None:
        """A transition per protocol whose verdict is not the stored one."""
        for protocol, verdict in after.items():
            if before.get(protocol) != verdict:
                self.transitions.append(
                    m.VerdictTransition(
                        binding_id=pk,
                        protocol=protocol,
                        at=now,
                        old=before.get(protocol, ""),
                        new=verdict,
                    )
                )

    def write(self) -> None:
        if self.upserts:
            m.BindingResult.objects.bulk_create(
                self.upserts,
                batch_size=500,
                update_conflicts=True,
                unique_fields=["binding"],
                update_fields=RESULT_FIELDS,
            )
        if self.changed_ids:
            m.ProtocolVerdict.objects.filter(binding_id__in=self.changed_ids).delete()
            m.Finding.objects.filter(binding_id__in=self.changed_ids).delete()
        m.ProtocolVerdict.objects.bulk_create(self.verdicts, batch_size=500)
        m.Finding.objects.bulk_create(self.findings, batch_size=500)
        m.VerdictTransition.objects.bulk_create(self.transitions, batch_size=500)
        m.HistorySample.objects.bulk_create(self.samples, batch_size=500)


def history_tick(*, cluster: m.Cluster, now: datetime, binding_ids: Iterable[int]) -> SyncStats:
    """Due history samples for bindings whose analysis was skipped (inputs unchanged).

    `results_store` writes a sample per binding every BH_HISTORY_SAMPLE_SECONDS; an incremental
    poll that does not re-analyse a binding must keep that promise from the stored verdicts, or
    the history of a stable binding would stop at its last change.
    """
    ids = set(binding_ids)
    if not ids:
        return SyncStats()
    sample_every = timedelta(seconds=getattr(settings, "BH_HISTORY_SAMPLE_SECONDS", 300))
    last_sample = dict(
        m.HistorySample.objects.filter(binding__cluster=cluster)
        .values("binding_id")
        .annotate(at=Max("at"))
        .values_list("binding_id", "at")
    )
    due = {pk for pk in ids if last_sample.get(pk) is None or now - last_sample[pk] >= sample_every}
    if not due:
        return SyncStats()
    verdicts: dict[int, dict[str, str]] = {}
    for binding_id, protocol, verdict in m.ProtocolVerdict.objects.filter(
        binding__cluster=cluster
    ).values_list("binding_id", "protocol", "verdict"):
        if binding_id in due:
            verdicts.setdefault(binding_id, {})[protocol] = verdict
    samples = [
        m.HistorySample(
            binding_id=binding_id,
            at=now,
            verdicts=verdicts.get(binding_id, {}),
            healthy=healthy,
            unhealthy=unhealthy,
            other=other,
        )
        for binding_id, healthy, unhealthy, other in m.BindingResult.objects.filter(
            binding__cluster=cluster
        ).values_list("binding_id", "healthy", "unhealthy", "other")
        if binding_id in due
    ]
    m.HistorySample.objects.bulk_create(samples, batch_size=500)
    return SyncStats(created=len(samples))


def history_prune(*, before: datetime, batch_size: int = 5000) -> int:
    """Delete history older than `before` in small batches, so no long lock is held."""
    total = 0
    # Probe results are history too (one row per probe), kept for the same retention period.
    for model in (m.HistorySample, m.VerdictTransition, m.ProbeResult):
        while True:
            ids = list(model.objects.filter(at__lt=before).values_list("pk", flat=True)[:batch_size])
            if not ids:
                break
            model.objects.filter(pk__in=ids).delete()
            total += len(ids)
    while True:
        ids = list(m.PollRun.objects.filter(started_at__lt=before).values_list("pk", flat=True)[:batch_size])
        if not ids:
            break
        m.PollRun.objects.filter(pk__in=ids).delete()
        total += len(ids)
    return total
