"""Active probes, Django side: which bindings to probe, run a round, store it, re-analyse.

Which kind applies to a binding is decided most specific first (`bindings.collect.probes.effective_kind`):
its `ProbeSetting` row (admin), then the `binding-health/probe` annotation on the TGB, then the
cluster's `probe_kind`. Off unless one of them says otherwise.

What a kind sends over each protocol the target group carries:

| kind | TCP | UDP |
|---|---|---|
| `tcp` | TCP connect | not probed (a TCP connect proves nothing about UDP) |
| `dns` | DNS query over TCP | DNS query over UDP |
| `udp` | not probed (a UDP payload cannot exercise TCP) | the configured payload |

The target is the setting's explicit address, else the load balancer's DNS name; the port is the
setting's, else the port of the listener that carries that protocol to the binding's target
group. Probes run from the worker, so they see what a client at the worker's network position
sees — which may or may not be one of the binding's client ranges.

The schedule is data: a binding is due when its newest `ProbeResult` is older than its interval
(the setting's `interval_seconds`, else `BH_PROBE_INTERVAL_SECONDS`). A round that changed any
status (or probed something for the first time) re-runs the cluster's analysis, so disagreement
findings appear without waiting for the next poll.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from bindings import models as m
from bindings.analysis.engine import LISTENER_CARRIES
from bindings.analysis.model import PROBE_ANNOTATION
from bindings.collect.probes import (
    ProbeOutcome,
    ProbeSpec,
    kind_and_source,
    parse_payload,
    run_once,
    run_probes,
)
from bindings.security import probe_fence
from bindings.services.polling import cluster_analyze
from bindings.store.inventory import latest_probes
from bindings.vocabulary import CARRIED_PROTOCOLS

logger = logging.getLogger(__name__)

# Dispatcher ticks are not exactly one interval apart; without slack a 60 s interval probed from a
# 30 s tick would often wait for the tick after next (90 s).
DUE_SLACK_SECONDS = 2
# Bounds on admin-entered values, so a typo cannot stall a round (timeout) or hammer a target.
MAX_TIMEOUT_SECONDS = 30.0
MIN_TIMEOUT_SECONDS = 0.05
MAX_RETRIES = 5
MIN_INTERVAL_SECONDS = 10


@dataclass(frozen=True, slots=True)
class PlannedProbe:
    """One probe of one binding and protocol, with where it comes from (for the UI and logs)."""

    binding_id: int
    binding: str  # "namespace/name"
    protocol: str  # "TCP" | "UDP"
    kind: str  # "tcp" | "dns" | "udp"
    source: str  # "setting" | "annotation" | "cluster": which level enabled it
    explicit: bool  # the target is a configured address, not the load balancer's DNS name
    interval_seconds: int
    spec: ProbeSpec


@dataclass(slots=True)
class ProbeRound:
    """What one round did: planned probes, those run (due), rows stored, statuses changed."""

    planned: list[PlannedProbe] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (binding, why not probed)
    ran: int = 0
    stored: int = 0
    changed: int = 0
    reanalysed: bool = False


# --- planning (no I/O beyond the queries that gather the inputs) ---------------------------------


@dataclass(frozen=True, slots=True)
class _Route:
    """How traffic of one protocol reaches a target group: a listener port on a load balancer."""

    dns_name: str
    port: int


def _routes(
    tg_arn: str, tg_protocol: str, listeners: Iterable[m.Listener], dns_names: dict[str, str]
) -> dict[str, _Route]:
    """Per carried protocol, the first (load balancer, port) whose listener forwards it to `tg_arn`."""
    out: dict[str, _Route] = {}
    ordered = sorted(listeners, key=lambda li: (li.load_balancer_arn, li.port or 0, li.arn))
    for listener in ordered:
        if tg_arn not in (listener.target_group_arns or ()) or listener.port is None:
            continue
        carried = LISTENER_CARRIES.get((listener.protocol or "").upper(), {}).get(tg_protocol, ())
        for protocol in carried:
            out.setdefault(protocol, _Route(dns_names.get(listener.load_balancer_arn, ""), listener.port))
    return out


def _exercises(kind: str, protocol: str) -> bool:
    """Whether a probe of `kind` says anything about `protocol` (see the module's table)."""
    return kind == "dns" or (kind, protocol) in (("tcp", "TCP"), ("udp", "UDP"))


def _spec_for(
    kind: str, protocol: str, host: str, port: int, setting: m.ProbeSetting | None, key: object
) -> ProbeSpec | None:
    """The probe `kind` sends over `protocol`, or None when that kind cannot exercise it. A
    setting's own address is fenced (`probe_fence`); a load balancer's DNS name comes from AWS."""
    timeout = float(settings.BH_PROBE_TIMEOUT_SECONDS)
    retries = int(settings.BH_PROBE_RETRIES)
    dns_name, dns_type, payload, expect = ".", "NS", b"", None
    if setting is not None:
        timeout = float(setting.timeout_seconds or timeout)
        retries = int(setting.retries)
        dns_name, dns_type = setting.dns_name or ".", setting.dns_type or "NS"
        payload, expect = parse_payload(setting.udp_payload), setting.udp_expect or None
    timeout = min(max(timeout, MIN_TIMEOUT_SECONDS), MAX_TIMEOUT_SECONDS)
    retries = min(max(retries, 0), MAX_RETRIES)
    fence = probe_fence() if setting is not None and setting.address else None
    common = {"host": host, "port": port, "timeout": timeout, "retries": retries, "key": key, "fence": fence}
    if kind == "tcp" and protocol == "TCP":
        return ProbeSpec(kind="tcp", transport="tcp", **common)
    if kind == "dns":
        transport = "tcp" if protocol == "TCP" else "udp"
        return ProbeSpec(kind="dns", transport=transport, dns_name=dns_name, dns_type=dns_type, **common)
    if kind == "udp" and protocol == "UDP":
        return ProbeSpec(kind="udp", transport="udp", payload=payload, expect=expect, **common)
    return None


def plan_cluster(cluster: m.Cluster) -> tuple[list[PlannedProbe], list[tuple[str, str]]]:
    """Every probe `cluster`'s configuration asks for, due or not, and why others are skipped.

    Five small queries (bindings, settings, target groups, load balancers, listeners) instead of
    the full analysis inventory: planning runs every dispatcher tick.
    """
    rows = list(
        m.TargetGroupBinding.objects.filter(cluster=cluster).only(
            "pk", "uid", "namespace", "name", "annotations", "target_group_arn", "target_group_protocol"
        )
    )
    by_name = {(s.namespace, s.name): s for s in m.ProbeSetting.objects.filter(cluster=cluster)}
    enabled: list[tuple[m.TargetGroupBinding, str, str, m.ProbeSetting | None]] = []
    for row in rows:
        setting = by_name.get((row.namespace, row.name))
        kind, source = kind_and_source(
            setting.kind if setting else None,
            (row.annotations or {}).get(PROBE_ANNOTATION),
            cluster.probe_kind,
        )
        if kind is not None and source is not None:
            enabled.append((row, kind, source, setting))
    planned: list[PlannedProbe] = []
    skipped: list[tuple[str, str]] = []
    if not enabled:
        return planned, skipped
    tgs: dict[str, m.TargetGroup] = {}
    dns_names: dict[str, str] = {}
    listeners: list[m.Listener] = []
    account_id = cluster.aws_account_id
    if account_id is not None:
        arns = sorted({row.target_group_arn for row, *_ in enabled if row.target_group_arn})
        tgs = {
            tg.arn: tg
            for tg in m.TargetGroup.objects.filter(account_id=account_id, arn__in=arns).only(
                "arn", "protocol", "load_balancer_arns"
            )
        }
        lb_arns = sorted({arn for tg in tgs.values() for arn in tg.load_balancer_arns or ()})
        dns_names = dict(
            m.LoadBalancer.objects.filter(account_id=account_id, arn__in=lb_arns).values_list(
                "arn", "dns_name"
            )
        )
        listeners = list(m.Listener.objects.filter(account_id=account_id, load_balancer_arn__in=lb_arns))
    default_interval = int(settings.BH_PROBE_INTERVAL_SECONDS)
    for row, kind, source, setting in enabled:
        label = f"{row.namespace}/{row.name}"
        tg = tgs.get(row.target_group_arn)
        tg_protocol = ((tg.protocol if tg else "") or row.target_group_protocol or "").upper()
        protocols = CARRIED_PROTOCOLS.get(tg_protocol)
        if not protocols:
            skipped.append((label, "the target group's protocol is not known yet (no AWS poll)"))
            continue
        routes = _routes(row.target_group_arn, tg_protocol, listeners, dns_names) if tg else {}
        interval = max(MIN_INTERVAL_SECONDS, int(setting.interval_seconds if setting else default_interval))
        explicit = bool(setting is not None and setting.address)
        for protocol in protocols:
            if not _exercises(kind, protocol):
                skipped.append((label, f"{protocol} not probed: a {kind} probe cannot exercise {protocol}"))
                continue
            route = routes.get(protocol)
            host = setting.address if explicit else (route.dns_name if route else "")
            port = (setting.port if setting is not None and setting.port else None) or (
                route.port if route else None
            )
            if not host or not port:
                why = "no listener carries it" if route is None else "the load balancer has no DNS name"
                skipped.append(
                    (label, f"{protocol} not probed: {why}; set an address and port in its probe setting")
                )
                continue
            spec = _spec_for(kind, protocol, host, port, setting, (row.pk, protocol))
            if spec is None:  # unreachable after _exercises; kept so a new kind cannot slip through
                continue
            planned.append(PlannedProbe(row.pk, label, protocol, kind, source, explicit, interval, spec))
    return planned, skipped


def due_probes(
    planned: Sequence[PlannedProbe], last_at: dict[int, datetime], now: datetime
) -> list[PlannedProbe]:
    """The planned probes whose binding was last probed an interval ago or more (or never)."""
    due = []
    for probe in planned:
        last = last_at.get(probe.binding_id)
        if last is None or now - last >= timedelta(seconds=probe.interval_seconds - DUE_SLACK_SECONDS):
            due.append(probe)
    return due


# --- reading results --------------------------------------------------------------------------------


# --- one round ------------------------------------------------------------------------------------


def probe_cluster(
    *,
    cluster: m.Cluster,
    now: datetime | None = None,
    force: bool = False,
    probe: Callable[[ProbeSpec], ProbeOutcome] = run_once,
) -> ProbeRound:
    """Probe `cluster`'s due bindings (all planned ones with `force`), store, re-analyse on change.

    `probe` is the single-attempt probe function (tests may wrap it to observe concurrency).
    Every result of a round is stamped with the round's start, so the schedule does not drift by
    the round's duration.
    """
    now = now or timezone.now()
    planned, skipped = plan_cluster(cluster)
    result = ProbeRound(planned=planned, skipped=skipped)
    if not planned:
        return result
    previous = latest_probes({p.binding_id for p in planned})
    last_at = {
        binding_id: max(r.at for r in by_protocol.values()) for binding_id, by_protocol in previous.items()
    }
    todo = planned if force else due_probes(planned, last_at, now)
    if not todo:
        return result
    outcomes = run_probes([p.spec for p in todo], concurrency=settings.BH_PROBE_CONCURRENCY, probe=probe)
    rows = []
    for planned_probe, (spec, outcome) in zip(todo, outcomes, strict=True):
        rows.append(
            m.ProbeResult(
                binding_id=planned_probe.binding_id,
                protocol=planned_probe.protocol,
                kind=planned_probe.kind,
                # The configured target (LB DNS name or address), not the resolved IP: a name that
                # resolves to another zone's address each time is still the same target.
                address=spec.host[:255],
                port=spec.port,
                status=outcome.status,
                latency_ms=outcome.latency_ms,
                detail=outcome.detail,
                at=now,
            )
        )
        before = previous.get(planned_probe.binding_id, {}).get(planned_probe.protocol)
        if before is None or before.status != outcome.status or before.kind != planned_probe.kind:
            result.changed += 1
    m.ProbeResult.objects.bulk_create(rows, batch_size=500)
    result.ran = len(todo)
    result.stored = len(rows)
    if result.changed:
        # Disagreement findings read the newest probe; re-judge now rather than at the next poll.
        cluster_analyze(cluster=cluster, now=timezone.now())
        result.reanalysed = True
    logger.info(
        "probed cluster %s: %d probes, %d status changes, %d skipped",
        cluster.name,
        result.ran,
        result.changed,
        len(skipped),
    )
    return result


def clusters_with_probes() -> list[int]:
    """Enabled clusters where anything may be probed: a cluster kind, a setting or an annotation."""
    ids = set(m.Cluster.objects.filter(enabled=True).exclude(probe_kind="").values_list("pk", flat=True))
    ids |= set(m.ProbeSetting.objects.exclude(kind="off").values_list("cluster_id", flat=True))
    ids |= set(
        m.TargetGroupBinding.objects.filter(annotations__has_key=PROBE_ANNOTATION).values_list(
            "cluster_id", flat=True
        )
    )
    return sorted(m.Cluster.objects.filter(enabled=True, pk__in=ids).values_list("pk", flat=True))
