"""The inbound-rule quota of a security group: how many rules a fix leaves on each group (per
address family), and the warning, with a way to merge ranges, when that is above the limit."""

from __future__ import annotations

import ipaddress
from typing import Any, TypeVar

from bindings.analysis import model as m
from bindings.analysis.netset import parse_network
from bindings.analysis.rules import norm_proto

from .model import RULE_LIMIT, PlannedRule
from .peers import canonical, family
from .text import short, unique

_Net = TypeVar("_Net", ipaddress.IPv4Network, ipaddress.IPv6Network)


def rule_counts(inv: m.Inventory, rules: list[PlannedRule]) -> dict[str, dict[str, Any]]:
    """Per group the inbound rules of `rules` will touch: the ones it has and the ones added, in
    the family that holds the most (the quota counts each family on its own)."""
    rules = [r for r in rules if r.direction == "ingress"]  # the inbound quota
    counts: dict[str, dict[str, Any]] = {}
    for sg_id in sorted({r.security_group_id for r in rules}):
        sg = inv.security_groups.get(sg_id)
        current = {4: 0, 6: 0}
        for existing in (sg.ingress if sg else ()) or ():
            for fam in _families_of(existing.source_kind, existing.source):
                current[fam] += 1
        added = {4: 0, 6: 0}
        for rule in rules:
            if rule.security_group_id == sg_id:
                for fam in _families_of("cidr" if rule.peer_kind == "cidr" else "security_group", rule.peer):
                    added[fam] += 1
        fam = max((4, 6), key=lambda f: (current[f] + added[f], f == 4))
        counts[sg_id] = {
            "current": current[fam],
            "added": added[fam],
            "limit": RULE_LIMIT,
            "family": f"IPv{fam}",
        }
    return counts


def limit_warnings(
    inv: m.Inventory, counts: dict[str, dict[str, Any]], rules: list[PlannedRule], alternative: bool = False
) -> list[str]:
    """A warning for every group `counts` puts above the limit, with how to stay under it."""
    warnings = []
    for sg_id, count in counts.items():
        total = count["current"] + count["added"]
        if total <= RULE_LIMIT:
            continue
        proposal = merge_proposal(inv, sg_id, rules)
        warnings.append(
            f"{'the alternative commands' if alternative else 'this fix'} would give {sg_id} "
            f"{total} inbound "
            f"{count['family']} rules, above the limit of {RULE_LIMIT} per security group: "
            f"{proposal}; or "
            "request a higher quota (Service Quotas: 'Inbound or outbound rules per security group')"
        )
    return warnings


def merge_proposal(inv: m.Inventory, sg_id: str, rules: list[PlannedRule]) -> str:
    """How to stay under the limit: merge the ranges of rules that share protocol and ports."""
    sg = inv.security_groups.get(sg_id)
    proposals = []
    wider = []
    for proto, lo, hi in unique(
        (r.protocol, r.from_port, r.to_port) for r in rules if r.security_group_id == sg_id
    ):
        added = [
            r.peer
            for r in rules
            if r.security_group_id == sg_id
            and r.peer_kind == "cidr"
            and (r.protocol, r.from_port, r.to_port) == (proto, lo, hi)
        ]
        existing = [
            r.source
            for r in (sg.ingress if sg else ()) or ()
            if r.source_kind == "cidr"
            and norm_proto(r.protocol) == proto
            and (r.from_port, r.to_port) == (lo, hi)
        ]
        every = unique(canonical(c) for c in existing + added)
        merged = _collapse(every)
        ports = str(lo) if lo == hi else f"{lo}-{hi}"
        if len(merged) < len(every):
            proposals.append(f"{proto} {ports} from {short(every, 4)} merges into {short(merged, 4)}")
        elif len(added) > 1:
            wider.append(f"{proto} {ports} from {_supernet(added)} (wider than needed)")
    if proposals:
        return "merge adjacent ranges: " + "; ".join(proposals)
    if wider:
        return "merge ranges into one covering rule: " + "; ".join(wider)
    return "reference a security group instead of many ranges, or remove rules no longer needed"


def _families_of(kind: str, source: str) -> tuple[int, ...]:
    if kind == "cidr":
        fam = family(source)
        return (fam,) if fam else ()
    return (4, 6)  # a group or prefix-list reference counts once per family


def _collapse(cidrs: list[str]) -> list[str]:
    networks = [parse_network(c) for c in cidrs]
    v4 = [n for n in networks if isinstance(n, ipaddress.IPv4Network)]
    v6 = [n for n in networks if isinstance(n, ipaddress.IPv6Network)]
    return [str(n) for n in ipaddress.collapse_addresses(v4)] + [
        str(n) for n in ipaddress.collapse_addresses(v6)
    ]


def _supernet(cidrs: list[str]) -> str:
    networks = [n for n in (parse_network(c) for c in cidrs) if n is not None]
    if not networks:
        return "(none)"
    if isinstance(networks[0], ipaddress.IPv4Network):
        return str(_covering([n for n in networks if isinstance(n, ipaddress.IPv4Network)]))
    return str(_covering([n for n in networks if isinstance(n, ipaddress.IPv6Network)]))


def _covering(networks: list[_Net]) -> _Net:
    """The smallest supernet of the first network that holds them all (one family)."""
    candidate = networks[0]
    while not all(n.subnet_of(candidate) for n in networks):
        candidate = candidate.supernet()
    return candidate
