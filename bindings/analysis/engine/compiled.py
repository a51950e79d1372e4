"""Compiled security-group rules and the judgement records the index caches and the findings read."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import model as m
from ..netset import EMPTY, NetSet, Network, parse_network
from ..rules import norm_proto, rule_port_range
from .common import _cidrs, _ports_label, _short
from .results import _new

# (LB security groups, expected CIDRs) per load balancer: the sources a target is judged against.
SourceGroups = tuple[tuple[frozenset[str], NetSet], ...]


class _Rule:
    """One compiled rule. A prefix-list source is `resolved` when its entries are known: its `cidr`
    is then their union and it is judged exactly like CIDR rules; unresolved, it may admit anything."""

    __slots__ = (
        "sg_id",
        "proto",
        "lo",
        "hi",
        "kind",
        "source",
        "cidr",
        "label",
        "broad",
        "description",
        "resolved",
    )

    def __init__(
        self, sg_id: str, rule: m.SecurityGroupRule, prefix_lists: dict[str, m.PrefixList] | None = None
    ) -> None:
        self.sg_id = sg_id
        self.proto = norm_proto(rule.protocol)
        self.lo, self.hi = rule_port_range(self.proto, rule.from_port, rule.to_port)
        self.kind = rule.source_kind
        self.source = str(rule.source)
        self.description = str(rule.description or "")
        self.resolved = self.kind == "cidr"
        if self.kind == "cidr":
            self.cidr = NetSet.from_cidrs([self.source])
            network = parse_network(self.source)
            self.broad = network is not None and network.prefixlen == 0
        elif self.kind == "prefix_list" and prefix_lists and self.source in prefix_lists:
            entries = prefix_lists[self.source].cidrs
            self.cidr = NetSet.from_cidrs(entries)
            self.resolved = True
            self.broad = any((n := parse_network(c)) is not None and n.prefixlen == 0 for c in entries)
        else:
            self.cidr = EMPTY
            self.broad = False
        label = f"{sg_id} {self.proto} {_ports_label(self.proto, self.lo, self.hi)} from {self.source}"
        if self.kind == "prefix_list" and self.resolved:
            label += f" [{_short(_cidrs(self.cidr), 3) or 'no entries'}]"
        if self.description:
            label += f" ({self.description})"
        self.label = label

    def matches(self, proto: str, port: int) -> bool:
        return (self.proto == proto or self.proto == "-1") and self.lo <= port <= self.hi


class _Match:
    """The rules of a set of security groups that match one protocol and port."""

    __slots__ = ("allowed", "sg_refs", "prefix_lists", "rules", "missing_sgs")

    def __init__(self) -> None:
        self.allowed = EMPTY
        self.sg_refs: frozenset[str] = frozenset()
        self.prefix_lists: tuple[str, ...] = ()
        self.rules: tuple[_Rule, ...] = ()
        self.missing_sgs: tuple[str, ...] = ()


class _Eval:
    """One target's admission of one protocol/port from one set of expected sources."""

    __slots__ = (
        "level",
        "uncovered",
        "via_sg",
        "rules",
        "tail",
        "broad",
        "cidr_level",
        "labels",
        "uncovered_cidrs",
        "sg_level",
        "sg_uncovered",
        "acl_denials",
    )

    def __init__(self, level: str | None, uncovered: NetSet, via_sg: bool, rules: tuple[_Rule, ...]):
        self.level = level  # full | partial | none | None (unknown)
        self.uncovered = uncovered
        self.via_sg = via_sg
        self.rules = rules
        self.tail = ""
        self.broad: tuple[_Rule, ...] = ()
        self.cidr_level = level
        self.labels = tuple(r.label for r in rules)
        self.uncovered_cidrs = _cidrs(uncovered) if level not in (None, "full") else ()
        # What the security groups alone admit (CLIENT_RANGES_NOT_COVERED is about them only),
        # and the network-ACL entries that refuse the rest (`AclDenial`).
        self.sg_level = level
        self.sg_uncovered = uncovered
        self.acl_denials: tuple[AclDenial, ...] = ()


class AclDenial(tuple[Any, ...]):
    """One network-ACL refusal: (acl id, rule number — None when no entry matches and the final
    deny applies —, egress, protocol (tcp|udp|-1), from port, to port, refused CIDRs)."""

    __slots__ = ()

    def __new__(
        cls, acl_id: str, rule: int | None, egress: bool, proto: str, lo: int, hi: int, cidrs: NetSet
    ) -> AclDenial:
        return tuple.__new__(cls, (acl_id, rule, egress, proto, lo, hi, cidrs))

    acl_id = property(lambda self: self[0])
    rule_number = property(lambda self: self[1])
    egress = property(lambda self: self[2])
    proto = property(lambda self: self[3])
    lo = property(lambda self: self[4])
    hi = property(lambda self: self[5])
    cidrs = property(lambda self: self[6])

    @property
    def text(self) -> str:
        ports = str(self.lo) if self.lo == self.hi else f"{self.lo}-{self.hi}"
        way = (
            f"outbound {self.proto} to port {ports} of"
            if self.egress
            else f"inbound {self.proto} {ports} from"
        )
        rule = (
            f"rule {self.rule_number}"
            if self.rule_number is not None
            else "no entry allows it (final deny *)"
        )
        cidrs = _short(_cidrs(self.cidrs), 5)
        if self.rule_number is not None:
            return f"network ACL {self.acl_id} {rule} denies {way} {cidrs}"
        return f"network ACL {self.acl_id} denies {way} {cidrs}: {rule}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "networkAclId": self.acl_id,
            "ruleNumber": self.rule_number,
            "egress": self.egress,
            "protocol": self.proto,
            "fromPort": self.lo,
            "toPort": self.hi,
            "cidrs": list(_cidrs(self.cidrs)),
        }


class _Target:
    """A registered target resolved to its network interface.

    `jid` numbers the (security groups, network ACL) pair that decides every judgement of the
    target, so judgement cache keys hold a small int instead of a tuple of group ids; `sgs_known`
    says all those groups are in the inventory. `ip` is the canonical address (None for instance
    targets and bad ids). Built by `InventoryIndex.resolve_new` (every slot set) or `clone`.
    """

    __slots__ = (
        "health",
        "target_id",
        "port",
        "eni",
        "sg_ids",
        "family",
        "problem",
        "nacl",
        "jid",
        "sgs_known",
        "ip",
    )
    health: m.TargetHealth
    target_id: str
    port: int | None
    eni: m.NetworkInterface | None
    sg_ids: tuple[str, ...]
    family: int
    problem: str | None
    nacl: m.NetworkAcl | None
    jid: int
    sgs_known: bool
    ip: str | None

    def clone(self, health: m.TargetHealth, port: int | None) -> _Target:
        """The same resolution for another registration (its own health and port)."""
        other = _new(_Target)
        other.health = health
        other.target_id = self.target_id
        other.port = port
        other.eni = self.eni
        other.sg_ids = self.sg_ids
        other.family = self.family
        other.problem = self.problem
        other.nacl = self.nacl
        other.jid = self.jid
        other.sgs_known = self.sgs_known
        other.ip = self.ip
        return other

    @property
    def label(self) -> str:
        # Only targets that are not admitted are named: formatted on demand.
        eni = self.eni.id if self.eni else "no ENI"
        return f"{self.target_id} ({eni})"


def _unique_denials(evals: Iterable[_Eval]) -> list[AclDenial]:
    """The network-ACL refusals of the judgements short of full admission, each once, in order."""
    seen: dict[AclDenial, None] = {}
    for ev in evals:
        if ev.level not in ("full", None):
            seen.update(dict.fromkeys(ev.acl_denials))
    return list(seen)


def _equivalent(
    rule: _Rule, proto: str, lo: int, hi: int, peer_net: Network | None, peer_sg: str | None
) -> bool:
    """Would the controller accept `rule` as the networking rule (protocol, ports, peer)?"""
    if rule.proto != proto or not (rule.lo <= lo and hi <= rule.hi):
        return False
    if peer_net is not None:
        return rule.kind == "cidr" and parse_network(rule.source) == peer_net
    return rule.kind == "security_group" and rule.source == peer_sg
