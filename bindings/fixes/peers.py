"""Peers as `spec.networking` names them, the CIDR questions a fix asks about them, and whether
a security group already holds a rule the controller would accept as the one we plan."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

from bindings.analysis import model as m
from bindings.analysis.netset import NetSet, parse_network
from bindings.analysis.rules import norm_proto, rule_port_range

Peer = tuple[Literal["cidr", "sg"], str]


@lru_cache(maxsize=65536)
def netset(cidrs: tuple[str, ...]) -> NetSet:
    """`NetSet.from_cidrs`, memoised: every fix asks about the same few peers and rule sources."""
    return NetSet.from_cidrs(cidrs)


@lru_cache(maxsize=65536)
def family(cidr: str) -> int | None:
    network = parse_network(cidr)
    return network.version if network is not None else None


@lru_cache(maxsize=65536)
def is_everything(cidr: str) -> bool:
    network = parse_network(cidr)
    return network is not None and network.prefixlen == 0


@lru_cache(maxsize=65536)
def canonical(cidr: str) -> str:
    network = parse_network(cidr)
    return str(network) if network is not None else cidr


def peer_entry(peer: Peer) -> dict[str, dict[str, str]]:
    kind, value = peer
    return {"ipBlock": {"cidr": value}} if kind == "cidr" else {"securityGroup": {"groupID": value}}


def peer_key(entry: Any) -> Peer | None:
    """The peer a valid `from` entry names, canonicalised; None when the entry is invalid."""
    if not isinstance(entry, dict):
        return None
    block, group = entry.get("ipBlock"), entry.get("securityGroup")
    if block is not None and group is not None:
        return None
    if isinstance(block, dict) and set(block) == {"cidr"}:
        cidr = block.get("cidr")
        if isinstance(cidr, str) and parse_network(cidr) is not None and cidr == cidr.strip():
            return ("cidr", canonical(cidr))
        return None
    if isinstance(group, dict) and set(group) == {"groupID"}:
        group_id = group.get("groupID")
        if isinstance(group_id, str) and group_id:
            return ("sg", group_id)
    return None


def has_equivalent(
    sg: m.SecurityGroup | None, proto: str, lo: int, hi: int, peer: Peer, *, egress: bool = False
) -> bool:
    """A rule the controller would accept as this one (same protocol, covering range, same source)."""
    if sg is None:
        return False
    for rule in (sg.egress if egress else sg.ingress) or ():
        rule_proto = norm_proto(rule.protocol)
        if rule_proto != proto:
            continue
        r_lo, r_hi = rule_port_range(rule_proto, rule.from_port, rule.to_port)
        if not (r_lo <= lo and hi <= r_hi):
            continue
        if (
            peer[0] == "cidr"
            and rule.source_kind == "cidr"
            and parse_network(rule.source) == parse_network(peer[1])
        ):
            return True
        if peer[0] == "sg" and rule.source_kind == "security_group" and rule.source == peer[1]:
            return True
    return False
