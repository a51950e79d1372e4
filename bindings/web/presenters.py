"""What the templates show, made from models and analysis results: list rows, the path diagram,
rule and target rows, health-check warnings, the applied-fix banner, poll rows.

Functions here take rows already loaded (or read a few more in a constant number of queries) and
return plain values; the views decide what to load and which template to render.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from bindings import models as m
from bindings.analysis.rules import rule_matches as analysis_rule_matches
from bindings.fixes import render as fix_render
from bindings.store.inventory import latest_probes
from bindings.vocabulary import SEVERITIES, VERDICTS, Code, carried

# Labels of the vocabulary's verdicts and severities, in its order (worst severity first).
VERDICT_CHOICES = [(v, v.replace("_", " ")) for v in VERDICTS]
SEVERITY_CHOICES = [(s, s) for s in SEVERITIES]
# How long an applied fix is shown as waiting for the controller before the page stops saying so.
APPLY_WAIT = timedelta(hours=1)


# --- sources' freshness ------------------------------------------------------------------------------


def data_time(cluster: m.Cluster) -> datetime | None:
    """When the binding's data was last fully refreshed: the older of its two sources' polls."""
    times = [cluster.last_success_at]
    if cluster.aws_account is not None:
        times.append(cluster.aws_account.last_success_at)
    if any(t is None for t in times):
        return None
    return min(t for t in times if t is not None)


def stale(cluster: m.Cluster) -> bool:
    return cluster.data_is_stale


def poll_rows(runs: list[m.PollRun]) -> list[dict[str, Any]]:
    return [
        {
            "run": run,
            "calls": run.total_api_calls,
            "breakdown": ", ".join(f"{k} {v}" for k, v in sorted((run.api_calls or {}).items())),
        }
        for run in runs
    ]


# --- bindings list -----------------------------------------------------------------------------------


@dataclass
class BindingRow:
    """What one list row shows."""

    binding: m.TargetGroupBinding
    result: m.BindingResult | None
    verdicts: list[m.ProtocolVerdict]
    top_finding: m.Finding | None
    finding_count: int
    tg_protocol: str
    tg_port: int | None
    data_at: datetime | None
    stale: bool
    probes: list[m.ProbeResult]


def binding_rows(bindings: list[m.TargetGroupBinding]) -> list[BindingRow]:
    """The list's rows for bindings loaded with their verdicts and findings prefetched."""
    arns = {b.target_group_arn for b in bindings if b.target_group_arn}
    groups = {
        (tg.account_id, tg.arn): tg
        for tg in m.TargetGroup.objects.filter(arn__in=arns).only("account_id", "arn", "protocol", "port")
    }
    probes = latest_probes(b.pk for b in bindings)
    rows = []
    for binding in bindings:
        result = getattr(binding, "result", None)
        findings = list(binding.findings.all())
        top = max(findings, key=lambda f: (m.SEVERITY_RANK.get(f.severity, 0), -f.pk), default=None)
        tg = groups.get((binding.cluster.aws_account_id, binding.target_group_arn))
        verdicts = list(binding.verdicts.all())
        rows.append(
            BindingRow(
                binding=binding,
                result=result,
                verdicts=verdicts,
                top_finding=top,
                finding_count=len(findings),
                tg_protocol=(tg.protocol if tg else "") or binding.target_group_protocol,
                tg_port=tg.port if tg else (verdicts[0].port if verdicts else None),
                data_at=data_time(binding.cluster),
                stale=stale(binding.cluster),
                probes=[p for _, p in sorted(probes.get(binding.pk, {}).items())],
            )
        )
    return rows


# --- binding detail ----------------------------------------------------------------------------------


@dataclass
class Hop:
    """One box of the path diagram."""

    kind: str
    title: str
    lines: list[str] = field(default_factory=list)
    state: str = "ok"  # ok | fail | warn | unknown
    note: str = ""


def rule_text(rule: m.SecurityGroupRule) -> str:
    if rule.from_port is None:
        ports = "all ports"
    elif rule.from_port == rule.to_port:
        ports = str(rule.from_port)
    else:
        ports = f"{rule.from_port}-{rule.to_port}"
    protocol = "all" if rule.protocol == "-1" else rule.protocol
    return f"{protocol} {ports} from {rule.source}"


def rule_matches(rule: m.SecurityGroupRule, protocol: str, port: int | None) -> bool:
    """Protocol and port match as the analysis matches them (it also checks the source; this only
    explains). An unknown port matches any rule of the protocol."""
    if port is None:
        return analysis_rule_matches(rule.protocol, None, None, protocol, 0)
    return analysis_rule_matches(rule.protocol, rule.from_port, rule.to_port, protocol, port)


def _listener_hop(
    pv: dict[str, Any], listeners: list[m.Listener], load_balancers: dict[str, m.LoadBalancer]
) -> Hop:
    protocol, verdict = pv.get("protocol", ""), pv.get("verdict", "unknown")
    carrying = [lst for lst in listeners if protocol in carried(lst.protocol)]
    listener_lines = []
    for lst in carrying:
        lb = load_balancers.get(lst.load_balancer_arn)
        lb_text = f"{lb.name} ({lb.scheme})" if lb else "unknown load balancer"
        listener_lines.append(f"{lst.protocol}:{lst.port} on {lb_text}")
    listener = Hop("listener", "Listener", listener_lines or [f"no listener forwards {protocol}"])
    if verdict == "not_offered" or not carrying:
        listener.state = "fail" if verdict == "not_offered" else "unknown"
    if listener.state == "fail":
        listener.note = f"{protocol} is not offered to this target group"
    return listener


def _target_group_hop(pv: dict[str, Any], target_group: m.TargetGroup | None, health: dict[str, Any]) -> Hop:
    if target_group is None:
        return Hop(
            "target-group",
            "Target group",
            ["not found in AWS"],
            state="fail" if pv.get("verdict", "unknown") == "unknown" else "unknown",
        )
    hc_port = health.get("port") or target_group.health_check_port
    return Hop(
        "target-group",
        "Target group",
        [
            f"{target_group.name} {target_group.protocol}:{target_group.port}",
            f"health check {health.get('protocol') or target_group.health_check_protocol} {hc_port}",
        ],
    )


def _acl_hop(pv: dict[str, Any], rules: Hop) -> Hop | None:
    """The network ACL of the targets' subnet, when it refuses: the entries, as the analysis names
    them (rule number, direction, ports). Where the security groups admit the traffic, the rules
    hop is not the one that fails."""
    protocol, port = pv.get("protocol", ""), pv.get("port")
    refused = [t for t in pv.get("targets", []) if t.get("admitted") is False]
    acl_lines = sorted(
        {
            piece.strip()
            for t in refused
            for piece in re.split(r"; |, but ", str(t.get("reason", "")))
            if piece.strip().startswith("network ACL")
        }
    )
    if not acl_lines:
        return None
    acl = Hop("network-acl", "Network ACL (target subnet)", acl_lines[:10], state="fail")
    acl.note = f"{protocol} {port} is refused here (ACLs are stateless: replies need outbound entries)"
    if all(str(t.get("reason", "")).startswith("the security groups admit") for t in refused):
        rules.state, rules.note = "ok", "the security groups admit it"
    return acl


def path_hops(
    pv: dict[str, Any],
    *,
    listeners: list[m.Listener],
    load_balancers: dict[str, m.LoadBalancer],
    target_group: m.TargetGroup | None,
    health: dict[str, Any],
) -> list[Hop]:
    """Clients -> listener -> target group -> targets -> rules, with the failing hop marked."""
    protocol, port, verdict = pv.get("protocol", ""), pv.get("port"), pv.get("verdict", "unknown")
    sources = pv.get("expected_sources") or []
    preserved = pv.get("client_ip_preserved")
    clients = Hop(
        "clients",
        "Clients" if preserved else "Load balancer",
        [", ".join(sources) or "no expected sources known"],
        note="client IP preserved: targets see the clients' addresses"
        if preserved
        else "client IP not preserved: targets see the load balancer's addresses",
    )
    total, admitted = pv.get("targets_total", 0), pv.get("targets_admitted", 0)
    targets = Hop("targets", "Targets", [f"{admitted} of {total} admit {protocol} {port}"])
    matched = sorted({rule for t in pv.get("targets", []) for rule in t.get("matched_rules", [])})
    uncovered = sorted({src for t in pv.get("targets", []) for src in t.get("uncovered_sources", [])})
    rules = Hop("rules", "Security-group rules", matched or [f"no rule admits {protocol.lower()} {port}"])
    if uncovered:
        rules.lines.append("not covered: " + ", ".join(uncovered))
    if verdict == "blocked":
        targets.state, rules.state = "warn", "fail"
        rules.note = f"{protocol} {port} is dropped here"
    elif verdict == "partial":
        targets.state, rules.state = "warn", "fail"
        rules.note = "only part of the targets or sources are admitted"
    elif verdict == "unknown" and target_group is not None:
        targets.state = rules.state = "unknown"
        targets.note = "data needed for the judgement is missing"
    hops = [
        clients,
        _listener_hop(pv, listeners, load_balancers),
        _target_group_hop(pv, target_group, health),
        targets,
        rules,
    ]
    acl = _acl_hop(pv, rules)
    if acl is not None:
        hops.append(acl)
    return hops


def health_warnings(data: dict[str, Any]) -> list[str]:
    """E.g. "TCP 53 healthy proves nothing about UDP 53": a carried protocol the check never uses."""
    health = data.get("health_check") or {}
    hc_protocol = (health.get("protocol") or "").upper()
    if not hc_protocol:
        return []
    hc_family = "TCP" if hc_protocol in ("TCP", "HTTP", "HTTPS") else hc_protocol
    hc_port = health.get("port")
    warnings = []
    for pv in data.get("protocols", []):
        port = pv.get("port")
        shown_port = port if hc_port in (None, "", "traffic-port") else hc_port
        if pv.get("protocol") != hc_family:
            warnings.append(
                f"{hc_protocol} {shown_port} healthy proves nothing about {pv.get('protocol')} {port}: "
                f"NLB health checks never use {pv.get('protocol')}."
            )
        elif hc_port not in (None, "", "traffic-port") and str(hc_port) != str(port):
            warnings.append(
                f"{hc_protocol} {hc_port} healthy proves nothing about "
                f"{pv.get('protocol')} {port}: another port."
            )
    return warnings


def cross_zone(target_group: m.TargetGroup | None, load_balancers: dict[str, m.LoadBalancer]) -> str:
    """The target group's cross-zone attribute, and what it resolves to from its load balancers."""
    if target_group is None or target_group.attributes is None:
        return ""
    value = str(
        target_group.attributes.get("load_balancing.cross_zone.enabled") or "use_load_balancer_configuration"
    )
    if value != "use_load_balancer_configuration":
        return value
    # NLBs default to off at the load balancer level.
    resolved = sorted(
        {
            str((lb.attributes or {}).get("load_balancing.cross_zone.enabled", "false"))
            for lb in load_balancers.values()
            if lb.attributes is not None
        }
    )
    return f"{value} ({', '.join(resolved)} on the load balancer)" if resolved else value


def target_rows(
    data: dict[str, Any],
    registered: list[m.RegisteredTarget],
    enis: dict[str, m.NetworkInterface],
    endpoints: dict[str, dict[str, Any]],
    nodes: dict[str, m.KubeNode],
) -> list[dict[str, Any]]:
    """One row per target: AWS health joined with the per-protocol judgement and Kubernetes names."""
    judged: dict[tuple[str, Any], dict[str, dict[str, Any]]] = {}
    for pv in data.get("protocols", []):
        for t in pv.get("targets", []):
            judged.setdefault((t.get("target_id"), t.get("port")), {})[pv.get("protocol")] = t
    keys = [(r.target_id, r.port) for r in registered]
    keys += [k for k in judged if k not in set(keys)]
    # Targets another cluster registered in a multi-cluster group (`OTHER_CLUSTER_TARGETS`).
    other_cluster = {
        str(label)
        for f in data.get("findings", [])
        if f.get("code") == Code.OTHER_CLUSTER_TARGETS
        for label in (f.get("evidence") or {}).get("targets") or []
    }
    by_key = {(r.target_id, r.port): r for r in registered}
    rows = []
    for key in keys:
        reg = by_key.get(key)
        per_protocol = judged.get(key, {})
        any_t = next(iter(per_protocol.values()), {})
        eni = enis.get(any_t.get("network_interface_id") or "")
        endpoint = endpoints.get(key[0] or "", {})
        node = nodes.get(key[0] or "") or nodes.get(endpoint.get("node_name") or "")
        rows.append(
            {
                "target_id": key[0],
                "port": key[1],
                "zone": (reg.availability_zone if reg else "")
                or (eni.availability_zone if eni else "")
                or (node.zone if node else ""),
                "pod": endpoint.get("pod_name") or "",
                "node": endpoint.get("node_name") or (node.name if node else ""),
                "state": reg.state if reg else "not registered",
                "reason": (reg.reason if reg else "") or "",
                "description": (reg.description if reg else "") or "",
                "other_cluster": f"{key[0]}:{key[1]}" in other_cluster and not per_protocol,
                "quic_server_id": (reg.quic_server_id if reg else "") or "",
                "eni": any_t.get("network_interface_id") or "",
                "security_groups": any_t.get("security_group_ids") or (eni.security_group_ids if eni else []),
                "protocols": [
                    (protocol, t.get("admitted"), t.get("reason", ""))
                    for protocol, t in sorted(per_protocol.items())
                ],
            }
        )
    return rows


# --- the applied fix ---------------------------------------------------------------------------------


def next_poll_seconds(cluster: m.Cluster) -> int | None:
    """Seconds until the poll that would show the controller's work (the account's, which reads
    the security groups; else the cluster's), or None when none is scheduled."""
    account = cluster.aws_account
    due = (account.next_poll_at if account is not None else None) or cluster.next_poll_at
    if due is None:
        return None
    return max(0, int((due - timezone.now()).total_seconds()))


def applied_state(binding: m.TargetGroupBinding, result: m.BindingResult | None) -> dict[str, Any] | None:
    """The newest successful Apply of this binding while it is still news: who, when, and whether
    the verdicts have caught up (`waiting` until every protocol is reachable)."""
    audit = (
        m.FixApplication.objects.filter(binding=binding, status=m.FixApplication.Status.APPLIED)
        .select_related("user")
        .order_by("-at", "-pk")
        .first()
    )
    if audit is None or timezone.now() - audit.at > APPLY_WAIT:
        return None
    verdicts = [pv.get("verdict") for pv in ((result.data or {}).get("protocols") or [])] if result else []
    judged_after = result is not None and result.analyzed_at >= audit.at
    waiting = not (judged_after and verdicts and all(v == "reachable" for v in verdicts))
    seconds = next_poll_seconds(binding.cluster)
    return {
        "audit": audit,
        "by": audit.user.get_username() if audit.user else "unknown user",
        "waiting": waiting,
        "next_poll": f"next poll in ~{seconds} s" if seconds is not None else "no poll scheduled",
    }


def as_text(item: Any) -> str:
    """Alternatives may be plain strings or small dicts; show commands as text either way."""
    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        for key in ("command", "cli", "text"):
            if isinstance(item.get(key), str):
                return item[key]
    return fix_render.to_yaml(item).strip()
