"""What to tell an SRE first: per protocol, one sentence of root cause, and the findings grouped
so that the cause leads and the findings restating it are folded under it.

Pure: it reads a stored result (the report shape of `report.py`: `protocols`, `findings`) and the
inbound rules of the targets' security groups, and returns plain values for the detail page.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# Findings that describe what a broken rule does to a protocol rather than why it is broken:
# they fold under the root-cause finding of the same protocol.
CONSEQUENCES = frozenset(
    {
        "TRAFFIC_BLOCKED",
        "HEALTH_CHECK_MASKS_TRAFFIC",
        "CLIENT_RANGES_NOT_COVERED",
        "HEALTH_CHECK_PROTOCOL_MISMATCH",
        "PROBE_SUCCEEDS_WHILE_BLOCKED",
    }
)
# Why a protocol is refused, most specific first: the first present leads its protocol's group.
ROOT_CAUSES = (
    "TARGET_GROUP_NOT_FOUND",
    "NO_LISTENER",
    "INVALID_SPEC",
    "SECURITY_GROUP_TAG_AMBIGUOUS",
    "EMPTY_PORTS_LIST",
    "INSTANCE_PORT_NOT_NODEPORT",
    "NETWORKING_NOT_RECONCILED",
    "SERVICE_PROTOCOL_MISMATCH",
    "MISSING_NETWORKING_RULE",
)
_OTHER = {"TCP": "UDP", "UDP": "TCP"}
_NACL = re.compile(r"network ACL \S+[^;]*")
_LB = " of load balancer "


@dataclass(frozen=True)
class Rule:
    """One inbound rule of a target security group: enough to say what it admits."""

    group_id: str
    protocol: str  # tcp | udp | -1 | icmp ...
    from_port: int | None
    to_port: int | None

    def covers(self, protocol: str, port: int) -> bool:
        if self.protocol == "-1":
            return True
        lo = 0 if self.from_port is None else self.from_port
        hi = 65535 if self.to_port is None else self.to_port
        return self.protocol == protocol.lower() and lo <= port <= hi


@dataclass
class FindingGroup:
    """A root-cause finding (or a lone one) and the findings that restate it."""

    root: dict[str, Any]
    consequences: list[dict[str, Any]] = field(default_factory=list)


def _who(pv: Mapping[str, Any]) -> str:
    return "clients" if pv.get("client_ip_preserved") else "load balancer addresses"


def _sources(pv: Mapping[str, Any]) -> str:
    sources = ", ".join(str(s) for s in pv.get("expected_sources") or ()) or "unknown"
    return f"{_who(pv)} {sources}"


def _suffix(pv: Mapping[str, Any]) -> str:
    return f"; {_sources(pv)}" if pv.get("expected_sources") else ""


def root_cause(pv: Mapping[str, Any], rules: Sequence[Rule] | None = None) -> str:
    """One sentence per protocol: the verdict and which layer refuses what from whom.

    `rules` are the inbound rules of the targets' security groups; None when not loaded, and then
    the sentence names the refusing groups without saying what they admit instead.
    """
    proto = str(pv.get("protocol") or "?")
    port = pv.get("port")
    verdict = str(pv.get("verdict") or "unknown")
    head = f"{proto} {port}" if port is not None else proto
    targets = [t for t in pv.get("targets") or () if isinstance(t, Mapping)]
    total = pv.get("targets_total", len(targets))
    admitted = pv.get("targets_admitted", sum(1 for t in targets if t.get("admitted")))
    if verdict == "reachable":
        return f"{head} reachable: {admitted} of {total} target(s) admit it from {_sources(pv)}"
    if verdict == "not_offered":
        return f"{proto} not offered: no listener forwards {proto} to this target group"
    reasons = [str(r) for r in pv.get("reasons") or ()]
    refusing = [t for t in targets if t.get("admitted") is False]
    if verdict not in ("blocked", "partial") or not refusing:
        detail = reasons[-1] if reasons else "the data that decides it is missing"
        return f"{head} {verdict}: {detail}"
    lead = f"{head} {verdict}: " + (
        f"{len(refusing)} of {total} target(s) refuse it; " if verdict == "partial" else ""
    )
    texts = [str(t.get("reason") or "") for t in refusing]
    lb = next((t for t in texts if _LB in t), "")
    if lb:
        return lead + lb.split("; ")[0] + _suffix(pv)
    nacl = next((m.group(0) for t in texts for m in [_NACL.search(t)] if m), "")
    if nacl:
        return lead + nacl.strip() + _suffix(pv)
    groups = sorted({str(g) for t in refusing for g in t.get("security_group_ids") or ()})
    named = ", ".join(groups) or "the target security groups"
    mine = [r for r in rules or () if r.group_id in groups]
    if rules is None:
        what = f"{named} refuse{'s' if len(groups) == 1 else ''} {head}"
    elif isinstance(port, int) and any(r.covers(proto, port) for r in mine):
        uncovered = sorted({str(s) for t in refusing for s in t.get("uncovered_sources") or ()})
        verb = "admits" if len(groups) == 1 else "admit"
        if uncovered and set(uncovered) >= {str(s) for s in pv.get("expected_sources") or ()}:
            what = f"{named} {verb} {head} only from sources other than the {_who(pv)}"
        else:
            what = f"{named} {verb} {head} from only part of the sources"
            what += f" (uncovered {', '.join(uncovered)})" if uncovered else ""
    elif isinstance(port, int) and proto in _OTHER and any(r.covers(_OTHER[proto], port) for r in mine):
        what = f"{named} admit{'s' if len(groups) == 1 else ''} {_OTHER[proto]} {port} only"
    else:
        what = f"no rule in {named} admits {head}"
    return lead + what + _suffix(pv)


def group_findings(findings: Sequence[Mapping[str, Any]]) -> list[FindingGroup]:
    """Root causes first, each with the consequences of its protocol folded under it.

    A protocol's root is the most specific root-cause finding of that protocol or of none (a
    binding-wide cause such as NETWORKING_NOT_RECONCILED); informational ones never lead.
    """
    items = [dict(f) for f in findings]
    rank = {code: i for i, code in enumerate(ROOT_CAUSES)}
    candidates = [f for f in items if f.get("code") in rank and f.get("severity") != "info"]
    roots: dict[str, dict[str, Any]] = {}
    for proto in sorted({str(f.get("protocol") or "") for f in items if f.get("code") in CONSEQUENCES}):
        mine = [f for f in candidates if str(f.get("protocol") or "") in (proto, "")]
        if proto and mine:
            roots[proto] = min(mine, key=lambda f: rank[f["code"]])
    groups: dict[int, FindingGroup] = {id(root): FindingGroup(root) for root in roots.values()}
    loose: list[FindingGroup] = []
    for f in items:
        if id(f) in groups:
            continue
        root = roots.get(str(f.get("protocol") or ""))
        if f.get("code") in CONSEQUENCES and root is not None:
            groups[id(root)].consequences.append(f)
        else:
            loose.append(FindingGroup(f))
    return list(groups.values()) + loose


def probe_disagreement(verdict: str | None, probe_status: str | None) -> str:
    """Why a live probe can disagree with the static verdict ('' when it does not): the verdict
    judges the expected sources through the load balancer, a probe sees one network position."""
    if probe_status == "ok" and verdict in ("blocked", "partial"):
        return (
            "probe disagrees: the probe runs from the Binding Health worker, inside the VPC, and may "
            "reach the targets without passing the load balancer or from a source the rules admit; "
            "the clients the verdict judges are still refused"
        )
    if probe_status == "failed" and verdict == "reachable":
        return (
            "probe disagrees: the rules admit the clients, so the probe's own path (its address, a "
            "firewall near the worker) or the service itself does not answer"
        )
    return ""
