"""The analysis engine: per binding and per carried protocol, can NLB traffic reach the targets?

`analyze(inventory)` is pure: no Django, no clock (staleness is judged at `inventory.now`), no
network. It never raises: malformed input becomes `unknown` verdicts and `INVALID_SPEC` findings
that name the object and the field. One `_Index` is built per inventory (IP -> ENI, instance ->
primary ENI, target group -> listeners, load balancer -> private addresses, Service -> slices) and
judgements are cached by what decides them (security groups, protocol, port, expected sources), so
10,000 bindings that share node security groups cost little more than the distinct rule sets.

Semantics beyond DESIGN.md, chosen as an SRE would read the data:

* A listener forwards to a target group when the group's ARN is in its forward actions; a listener
  with no parsed forward target on a load balancer the group names in `LoadBalancerArns` is
  assumed to forward to it (the action was not collected, not absent).
* With `aws_complete` False, a protocol no known listener carries is `unknown`, not `not_offered`.
* Targets in state `draining` are not judged. A target whose ENI or one of whose security groups
  is missing is `unknown`; a verdict counts a target as admitted only when every expected source
  is admitted. A target with no expected source of its address family (e.g. IPv6-only client
  ranges and an LB without IPv6 addresses) is `unknown` for that protocol.
* Several load balancers on one group: each LB's sources are judged on their own (an LB
  security-group reference admits only that LB's traffic), then united.
* Expected sources list the LB security groups first (a rule referencing one admits everything
  that LB sends), then the CIDRs.
* Client ranges from the annotation or the cluster setting that fail to parse are reported as
  `INVALID_SPEC` and dropped; if none remain, the next source of client ranges applies. The
  internet-facing default adds `::/0` only for dualstack load balancers. An internal LB whose VPC
  is not in the inventory falls back to its subnets' CIDRs.
* `not_offered` protocols get no rule-based findings (no traffic to judge).
* `MISSING_NETWORKING_RULE` for the health-check port is skipped when the group carries TCP on
  the same port (the TCP finding already says it); its severity is `warning` when health checks
  are not admitted and `info` otherwise.
* Network ACLs: the target subnet's ACL (explicit association, else the VPC default ACL) is
  evaluated in rule-number order for the inbound protocol and port; denied addresses are not
  admitted. Return traffic (ephemeral ports) is not judged.
* `TARGET_DRIFT` for instance targets compares against ready nodes minus the controller's default
  exclusions and a `spec.nodeSelector.matchLabels` (skipped when `matchExpressions` is used).
* A target whose rules admit health checks from only some LB addresses counts as
  `HEALTH_CHECK_BLOCKED` (the LB node in the uncovered zone marks it unhealthy).
* `CLIENT_RANGES_NOT_COVERED` is not raised when a rule referencing the LB's security group admits
  the traffic; `OVERLY_BROAD_SOURCE` is `info` only when the client ranges of that protocol are the
  whole address space of the rule's family (preserved client IP and 0.0.0.0/0 or ::/0 clients).
* `inventory.problems` (tied to no binding) are not copied onto bindings; a binding's own,
  its Service's and its target group's problems are.
* Probes (`inventory.probes`, the latest per binding and protocol) only add findings:
  `PROBE_FAILS_WHILE_REACHABLE` (probe `failed`, verdict `reachable`) and
  `PROBE_SUCCEEDS_WHILE_BLOCKED` (probe `ok`, verdict `blocked`), both `warning`. They never
  change a verdict: a probe sees one network position, the verdict judges the expected sources.
* Cyclic garbage collection is paused while `analyze` runs (restored afterwards): the judgement
  allocates many small acyclic objects next to a large inventory, and GC passes cost half the time.
"""

from __future__ import annotations

import gc
import ipaddress
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from datetime import timedelta
from functools import lru_cache
from typing import Any

from . import model as m
from .netset import EMPTY, NetSet, coverage, parse_network, union_all

# Listener protocol -> {target-group protocol: protocols that listener carries to it}.
LISTENER_CARRIES: dict[str, dict[str, tuple[m.Protocol, ...]]] = {
    "TCP": {"TCP": ("TCP",), "TLS": ("TCP",), "TCP_UDP": ("TCP",)},
    "TLS": {"TCP": ("TCP",), "TLS": ("TCP",)},
    "UDP": {"UDP": ("UDP",), "TCP_UDP": ("UDP",)},
    "TCP_UDP": {"TCP_UDP": ("TCP", "UDP")},
    "QUIC": {"QUIC": ("UDP",)},
    "TCP_QUIC": {"TCP_QUIC": ("TCP", "UDP")},
}

_PROTO_NAMES = {
    "tcp": "tcp",
    "6": "tcp",
    "udp": "udp",
    "17": "udp",
    "-1": "-1",
    "all": "-1",
    "icmp": "icmp",
    "1": "icmp",
    "icmpv6": "icmpv6",
    "58": "icmpv6",
}
_SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
_HEALTH_CHECK_TCP = frozenset({"TCP", "HTTP", "HTTPS"})
# Nodes the controller never registers as instance targets (its default node selector).
_EXCLUDED_NODE_LABELS = (
    "node-role.kubernetes.io/master",
    "node.kubernetes.io/exclude-from-external-load-balancers",
    "alpha.service-controller.kubernetes.io/exclude-balancer",
)
_MAX_LISTED = 10
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_DOTTED_QUAD = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


def norm_proto(value: object) -> str:
    """Security-group and NACL protocols in one spelling: tcp, udp, -1, icmp, or the raw text."""
    text = str(value).strip().lower()
    return _PROTO_NAMES.get(text, text)


@lru_cache(maxsize=262144)
def _norm_ip(text: object) -> str | None:
    """The canonical spelling of an address (None when it is not one); dotted quads fast."""
    if not isinstance(text, str):
        return None
    if _DOTTED_QUAD.fullmatch(text):
        return text
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


def _host_cidr(address: str) -> str | None:
    ip = _norm_ip(address)
    if ip is None:
        return None
    return f"{ip}/32" if ":" not in ip else f"{ip}/128"


@lru_cache(maxsize=65536)
def _cidrs(netset: NetSet) -> tuple[str, ...]:
    return netset.to_cidrs()


def _ports_label(proto: str, lo: int, hi: int) -> str:
    if proto == "-1" or (lo <= 0 and hi >= 65535):
        return "all ports"
    return str(lo) if lo == hi else f"{lo}-{hi}"


def _short(items: Iterable[object], limit: int = _MAX_LISTED) -> str:
    listed = [str(i) for i in items]
    if len(listed) > limit:
        return ", ".join(listed[:limit]) + f" and {len(listed) - limit} more"
    return ", ".join(listed)


def _lb_suffix(lb_arn: str) -> str | None:
    """`net/<name>/<id>` from a load balancer ARN: NLB node ENIs are described "ELB " + that."""
    marker = ":loadbalancer/"
    pos = lb_arn.find(marker)
    return lb_arn[pos + len(marker) :] if pos >= 0 else None


# --- compiled security-group rules ---------------------------------------------------------------


class _Rule:
    __slots__ = ("sg_id", "proto", "lo", "hi", "kind", "source", "cidr", "label", "broad", "description")

    def __init__(self, sg_id: str, rule: m.SecurityGroupRule) -> None:
        self.sg_id = sg_id
        self.proto = norm_proto(rule.protocol)
        if self.proto == "-1" or rule.from_port is None or rule.from_port < 0:
            self.lo, self.hi = 0, 65535
        else:
            self.lo = rule.from_port
            self.hi = rule.to_port if isinstance(rule.to_port, int) and rule.to_port >= 0 else 65535
        self.kind = rule.source_kind
        self.source = str(rule.source)
        self.description = str(rule.description or "")
        self.cidr = NetSet.from_cidrs([self.source]) if self.kind == "cidr" else EMPTY
        network = parse_network(self.source) if self.kind == "cidr" else None
        self.broad = network is not None and network.prefixlen == 0
        label = f"{sg_id} {self.proto} {_ports_label(self.proto, self.lo, self.hi)} from {self.source}"
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


class _Target:
    """A registered target resolved to its network interface."""

    __slots__ = ("health", "target_id", "port", "eni", "sg_ids", "family", "problem", "nacl")

    def __init__(self, health: m.TargetHealth, port: int | None) -> None:
        self.health = health
        self.target_id = str(health.target_id)
        self.port = port
        self.eni: m.NetworkInterface | None = None
        self.sg_ids: tuple[str, ...] = ()
        self.family = 4
        self.problem: str | None = None
        self.nacl: m.NetworkAcl | None = None

    @property
    def label(self) -> str:
        eni = self.eni.id if self.eni else "no ENI"
        return f"{self.target_id} ({eni})"


# --- the index ---------------------------------------------------------------------------------


class _Index:
    """Lookups built once per inventory, and caches of judgements shared by all bindings."""

    def __init__(self, inv: m.Inventory) -> None:
        self.inv = inv
        self.listeners_by_tg: dict[str, list[m.Listener]] = defaultdict(list)
        self.listeners_by_lb: dict[str, list[m.Listener]] = defaultdict(list)
        # Listeners whose forward actions were not collected: they may forward to any group.
        self.unparsed_listeners_by_lb: dict[str, list[m.Listener]] = defaultdict(list)
        for listener in inv.listeners or ():
            self.listeners_by_lb[listener.load_balancer_arn].append(listener)
            if not listener.target_group_arns:
                self.unparsed_listeners_by_lb[listener.load_balancer_arn].append(listener)
            for arn in listener.target_group_arns or ():
                self.listeners_by_tg[arn].append(listener)
        self.tg_by_name = {tg.name: tg for tg in inv.target_groups.values() if tg.name}

        self.eni_by_ip: dict[str, m.NetworkInterface] = {}
        self.eni_prefixes: dict[tuple[int, int], dict[int, m.NetworkInterface]] = defaultdict(dict)
        self.primary_eni_by_instance: dict[str, m.NetworkInterface] = {}
        self.enis_by_description: dict[str, list[m.NetworkInterface]] = defaultdict(list)
        for eni in sorted(inv.network_interfaces.values(), key=lambda e: str(e.id)):
            for address in (*(eni.private_ips or ()), *(eni.ipv6_addresses or ())):
                ip = _norm_ip(address)
                if ip is not None:
                    self.eni_by_ip.setdefault(ip, eni)
            for prefix in (*(eni.ipv4_prefixes or ()), *(eni.ipv6_prefixes or ())):
                network = parse_network(prefix)
                if network is not None:
                    key = (network.version, network.prefixlen)
                    self.eni_prefixes[key].setdefault(int(network.network_address), eni)
            if eni.instance_id and eni.device_index == 0:
                self.primary_eni_by_instance.setdefault(eni.instance_id, eni)
            if eni.description:
                self.enis_by_description[eni.description].append(eni)
        for instance in inv.instances.values():
            if instance.primary_network_interface_id:
                eni = inv.network_interfaces.get(instance.primary_network_interface_id)
                if eni is not None:
                    self.primary_eni_by_instance[instance.id] = eni

        self.pods_by_ip: dict[str, m.Pod] = {}
        for key in sorted(inv.pods):
            pod = inv.pods[key]
            for address in pod.ips or ():
                ip = _norm_ip(address)
                if ip is not None:
                    self.pods_by_ip.setdefault(ip, pod)

        self.slices_by_service: dict[tuple[str, str], list[m.EndpointSlice]] = defaultdict(list)
        for eps in inv.endpoint_slices or ():
            if eps.service_name:
                self.slices_by_service[(eps.namespace, eps.service_name)].append(eps)

        self.nacl_by_subnet: dict[str, m.NetworkAcl] = {}
        self.default_nacl_by_vpc: dict[str, m.NetworkAcl] = {}
        for nacl in inv.network_acls or ():
            for subnet_id in nacl.subnet_ids or ():
                self.nacl_by_subnet.setdefault(subnet_id, nacl)
            if nacl.is_default and nacl.vpc_id:
                self.default_nacl_by_vpc.setdefault(nacl.vpc_id, nacl)

        self._rules: dict[str, tuple[_Rule, ...]] = {}
        self._matches: dict[tuple, _Match] = {}
        self._evals: dict[tuple, _Eval] = {}
        self._nacl: dict[tuple, tuple[NetSet, tuple[str, ...]]] = {}
        self._lb_private: dict[str, tuple[NetSet, str]] = {}
        self._targets: dict[tuple, _Target] = {}
        self._equivalent: dict[tuple, bool] = {}
        self._summary: dict[tuple, tuple[NetSet, str, tuple[str, ...]]] = {}
        self._sgs_known: dict[tuple[str, ...], bool] = {}
        self._controller_sg: dict[tuple[str, ...], object] = {}
        self.client_cache: dict[tuple, tuple[NetSet, str]] = {}
        self.groups_cache: dict[tuple, tuple] = {}

    def controller_sg(self, sg_ids: tuple[str, ...], cluster_tag: str) -> str | tuple[str, ...] | None:
        """The group the controller writes networking rules to (§2.2): the only one, else the one
        carrying the cluster tag; a tuple of the tagged groups when that is ambiguous; None when
        the groups are not all known."""
        found = self._controller_sg.get(sg_ids, self)
        if found is not self:
            return found  # type: ignore[return-value]
        groups = [self.inv.security_groups.get(s) for s in sg_ids]
        result: str | tuple[str, ...] | None
        if len(sg_ids) == 1:
            result = sg_ids[0]
        elif not sg_ids or any(g is None for g in groups):
            result = None
        else:
            tagged = tuple(g.id for g in groups if g is not None and cluster_tag in (g.tags or {}))
            result = tagged[0] if len(tagged) == 1 else tagged
        self._controller_sg[sg_ids] = result
        return result

    def sgs_known(self, sg_ids: tuple[str, ...]) -> bool:
        found = self._sgs_known.get(sg_ids)
        if found is None:
            found = self._sgs_known[sg_ids] = all(s in self.inv.security_groups for s in sg_ids)
        return found

    def summary(self, group_sets: tuple[tuple, ...], lbs: list[str]) -> tuple[NetSet, str, tuple[str, ...]]:
        """Expected sources of a protocol (union, text, LB groups + CIDRs), cached: bindings share them."""
        key = (tuple(id(g) for g in group_sets), tuple(lbs))
        found = self._summary.get(key)
        if found is None:
            union = union_all(cidrs for groups in group_sets for _, cidrs in groups)
            lb_sgs = sorted({sg for groups in group_sets for sgs, _ in groups for sg in sgs})
            found = self._summary[key] = (union, str(union), tuple(lb_sgs) + _cidrs(union))
        return found

    def has_equivalent(self, sg_id, rules, proto, lo, hi, peer_net, peer_sg) -> bool:
        """Does the group hold a rule the controller would accept as this networking rule?"""
        key = (sg_id, proto, lo, hi, peer_net, peer_sg)
        found = self._equivalent.get(key)
        if found is None:
            found = any(_equivalent(r, proto, lo, hi, peer_net, peer_sg) for r in rules)
            self._equivalent[key] = found
        return found

    # -- security groups -------------------------------------------------------------------

    def rules_of(self, sg_id: str) -> tuple[_Rule, ...] | None:
        found = self._rules.get(sg_id)
        if found is None:
            sg = self.inv.security_groups.get(sg_id)
            if sg is None:
                return None
            found = tuple(_Rule(sg_id, rule) for rule in sg.ingress or ())
            self._rules[sg_id] = found
        return found

    def match(self, sg_ids: tuple[str, ...], proto: str, port: int) -> _Match:
        key = (sg_ids, proto, port)
        found = self._matches.get(key)
        if found is not None:
            return found
        found = _Match()
        cidrs: list[NetSet] = []
        refs: set[str] = set()
        prefix_lists: list[str] = []
        rules: list[_Rule] = []
        missing: list[str] = []
        for sg_id in sg_ids:
            sg_rules = self.rules_of(sg_id)
            if sg_rules is None:
                missing.append(sg_id)
                continue
            for rule in sg_rules:
                if not rule.matches(proto, port):
                    continue
                rules.append(rule)
                if rule.kind == "cidr":
                    cidrs.append(rule.cidr)
                elif rule.kind == "security_group":
                    refs.add(rule.source)
                else:
                    prefix_lists.append(rule.source)
        found.allowed = union_all(cidrs)
        found.sg_refs = frozenset(refs)
        found.prefix_lists = tuple(prefix_lists)
        found.rules = tuple(rules)
        found.missing_sgs = tuple(missing)
        self._matches[key] = found
        return found

    # -- network ACLs ---------------------------------------------------------------------

    def nacl_for(self, eni: m.NetworkInterface) -> m.NetworkAcl | None:
        if not self.nacl_by_subnet and not self.default_nacl_by_vpc:
            return None
        if eni.subnet_id and eni.subnet_id in self.nacl_by_subnet:
            return self.nacl_by_subnet[eni.subnet_id]
        return self.default_nacl_by_vpc.get(eni.vpc_id or "")

    def nacl_allowed(
        self, nacl: m.NetworkAcl, proto: str, port: int, sources: NetSet
    ) -> tuple[NetSet, tuple[str, ...]]:
        """The part of `sources` the ACL lets in, and the entries that denied the rest."""
        key = (nacl.id, proto, port, sources)
        found = self._nacl.get(key)
        if found is not None:
            return found
        remaining = sources
        allowed = EMPTY
        denials: list[str] = []
        entries = sorted(
            (e for e in nacl.entries or () if not e.egress),
            key=lambda e: e.rule_number if isinstance(e.rule_number, int) else 1 << 30,
        )
        for entry in entries:
            if not remaining:
                break
            entry_proto = norm_proto(entry.protocol)
            if entry_proto not in ("-1", proto):
                continue
            if entry_proto != "-1" and entry.port_from is not None:
                hi = entry.port_to if entry.port_to is not None else entry.port_from
                if not (entry.port_from <= port <= hi):
                    continue
            scope = NetSet.from_cidrs([c for c in (entry.cidr, entry.ipv6_cidr) if c])
            hit = remaining & scope
            if not hit:
                continue
            if str(entry.action).lower() == "allow":
                allowed = allowed | hit
            else:
                denials.append(
                    f"network ACL {nacl.id} rule {entry.rule_number} denies {proto} {port} from {hit}"
                )
            remaining = remaining - hit
        if remaining:
            denials.append(
                f"network ACL {nacl.id} denies {proto} {port} from {remaining} (no entry allows it)"
            )
        found = (allowed, tuple(denials))
        self._nacl[key] = found
        return found

    # -- load balancers -------------------------------------------------------------------

    def lb_private(self, lb_arn: str) -> tuple[NetSet, str]:
        """The LB's private addresses (as /32, /128) and where they came from."""
        found = self._lb_private.get(lb_arn)
        if found is not None:
            return found
        lb = self.inv.load_balancers.get(lb_arn)
        cidrs: list[str] = []
        origin = ""
        if lb is not None:
            for zone in lb.zones or ():
                cidrs.extend(c for c in (_host_cidr(a) for a in zone.addresses or ()) if c)
            origin = "load balancer addresses" if cidrs else ""
        if not cidrs:
            suffix = _lb_suffix(lb_arn)
            for eni in self.enis_by_description.get(f"ELB {suffix}", ()) if suffix else ():
                for address in (*(eni.private_ips or ()), *(eni.ipv6_addresses or ())):
                    cidr = _host_cidr(address)
                    if cidr:
                        cidrs.append(cidr)
            origin = "load balancer network interfaces" if cidrs else ""
        if not cidrs and lb is not None:
            for zone in lb.zones or ():
                subnet = self.inv.subnets.get(zone.subnet_id or "")
                if subnet is not None:
                    cidrs.extend(c for c in (subnet.cidr, *(subnet.ipv6_cidrs or ())) if c)
            origin = "load balancer subnets" if cidrs else ""
        found = (NetSet.from_cidrs(cidrs), origin)
        self._lb_private[lb_arn] = found
        return found

    def default_clients(self, lb_arn: str, tg: m.TargetGroup) -> tuple[NetSet, str]:
        lb = self.inv.load_balancers.get(lb_arn)
        if lb is not None and str(lb.scheme).lower() == "internal":
            vpc = self.inv.vpcs.get(lb.vpc_id or tg.vpc_id or "")
            if vpc is not None:
                return NetSet.from_cidrs((*vpc.cidrs, *vpc.ipv6_cidrs)), f"VPC {vpc.id} CIDRs (internal)"
            subnets = [self.inv.subnets.get(z.subnet_id or "") for z in lb.zones or ()]
            cidrs = [c for s in subnets if s is not None for c in (s.cidr, *s.ipv6_cidrs) if c]
            return NetSet.from_cidrs(cidrs), "load balancer subnets (internal; VPC not collected)"
        everything = ["0.0.0.0/0"]
        if lb is not None and "dualstack" in str(lb.ip_address_type or "").lower():
            everything.append("::/0")
        return NetSet.from_cidrs(everything), "the internet (internet-facing)"

    # -- targets --------------------------------------------------------------------------

    def resolve_target(self, th: m.TargetHealth, port: int | None, target_type: str | None, tg) -> _Target:
        key = (th.target_id, port, target_type, tg.ip_address_type)
        found = self._targets.get(key)
        if found is not None:
            # A fresh wrapper so per-binding health stays the binding's own.
            clone = _Target(th, port)
            clone.eni, clone.sg_ids, clone.family = found.eni, found.sg_ids, found.family
            clone.problem, clone.nacl = found.problem, found.nacl
            return clone
        target = _Target(th, port)
        if target_type == "instance":
            target.family = 6 if str(tg.ip_address_type or "").lower() == "ipv6" else 4
            eni = self.primary_eni_by_instance.get(target.target_id)
            if eni is None:
                target.problem = (
                    f"no primary network interface (DeviceIndex 0) found for instance {target.target_id}"
                )
        elif target_type == "ip":
            ip = _norm_ip(target.target_id)
            eni = None
            if ip is None:
                target.problem = f"target id {target.target_id!r} is not an IP address"
            else:
                target.family = 6 if ":" in ip else 4
                eni = self._eni_for_ip(ip)
                if eni is None:
                    target.problem = f"no network interface holds {ip}"
        else:
            eni = None
            target.problem = f"target type {target_type!r} is not ip or instance"
        if eni is not None:
            target.eni = eni
            target.sg_ids = tuple(eni.security_group_ids or ())
            target.nacl = self.nacl_for(eni)
        self._targets[key] = target
        return target

    def _eni_for_ip(self, ip: str) -> m.NetworkInterface | None:
        pod = self.pods_by_ip.get(ip)
        if pod is not None and pod.pod_eni:
            for eni_id in _pod_eni_ids(pod.pod_eni, ip):
                eni = self.inv.network_interfaces.get(eni_id)
                if eni is not None:
                    return eni
        eni = self.eni_by_ip.get(ip)
        if eni is not None:
            return eni
        if self.eni_prefixes:
            address = ipaddress.ip_address(ip)
            value = int(address)
            bits = address.max_prefixlen
            for (version, plen), table in self.eni_prefixes.items():
                if version != address.version:
                    continue
                masked = value >> (bits - plen) << (bits - plen) if plen else 0
                if masked in table:
                    return table[masked]
        return None

    # -- evaluation -----------------------------------------------------------------------

    def evaluate(
        self,
        target: _Target,
        proto: str,
        port: int,
        groups: tuple[tuple[frozenset[str], NetSet], ...],
    ) -> _Eval:
        """Admission of `proto`/`port` on the target from each (LB groups, expected CIDRs) group."""
        nacl = target.nacl
        # `groups` come from `groups_cache`, alive for the whole analysis: id() is a cheap, stable key.
        key = (target.sg_ids, nacl.id if nacl else None, proto, port, id(groups))
        found = self._evals.get(key)
        if found is not None:
            return found
        found = self._evaluate(target.sg_ids, nacl, proto, port, groups)
        self._evals[key] = found
        return found

    def _evaluate(self, sg_ids, nacl, proto, port, groups) -> _Eval:
        match = self.match(sg_ids, proto, port)
        expected = union_all(g[1] for g in groups)
        if match.missing_sgs:
            ev = _Eval(None, expected, False, match.rules)
            ev.tail = f"security group(s) {_short(match.missing_sgs)} not found; cannot judge {proto} {port}"
            return ev
        if not expected:
            ev = _Eval(None, EMPTY, False, match.rules)
            ev.tail = "no expected source of this address family could be determined"
            return ev
        allowed_parts: list[NetSet] = []
        cidr_parts: list[NetSet] = []
        via_sg = False
        for lb_sgs, sources in groups:
            cidr_part = match.allowed & sources
            cidr_parts.append(cidr_part)
            if lb_sgs and match.sg_refs & lb_sgs:
                via_sg = True
                allowed_parts.append(sources)
            else:
                allowed_parts.append(cidr_part)
        allowed = union_all(allowed_parts)
        cidr_allowed = union_all(cidr_parts)
        denials: tuple[str, ...] = ()
        if nacl is not None:
            nacl_ok, denials = self.nacl_allowed(nacl, proto, port, expected)
            allowed = allowed & nacl_ok
            cidr_allowed = cidr_allowed & nacl_ok
        level = coverage(allowed, expected)
        uncovered = expected - allowed
        ev = _Eval(level, uncovered, via_sg, match.rules)
        ev.cidr_level = coverage(cidr_allowed, expected)
        ev.broad = tuple(r for r in match.rules if r.broad)
        # The reason names the exact rules; for the classic trap (tcp admitted, udp not) it names
        # the rule of the other protocol so the SRE sees why "port 53 is open" is not enough.
        used = [
            r for r in match.rules if r.kind != "security_group" or (via_sg and r.source in _all_sgs(groups))
        ]
        if level == "full":
            how = _short((r.label for r in used), 3) or "the load balancer's security group"
            ev.tail = f"admits {proto} {port} via {how}"
        elif not used:
            other = {"tcp": "udp", "udp": "tcp"}.get(proto)
            hint = ""
            if other:
                other_rules = self.match(sg_ids, other, port).rules
                if other_rules:
                    hint = f"{_short((r.label for r in other_rules), 3)} admits {other} {port} but "
            ev.tail = f"{hint}no rule admits {proto} {port} from the expected sources; uncovered: {uncovered}"
        else:
            ev.tail = (
                f"{_short((r.label for r in used), 3)} admits {proto} {port} from "
                f"{allowed or 'none of them'}; "
                f"uncovered: {uncovered}"
            )
        if match.prefix_lists:
            ev.tail += f"; prefix list(s) {_short(match.prefix_lists)} not resolved (not counted)"
        if denials and level != "full":
            ev.tail += "; " + "; ".join(denials)
        return ev


def _all_sgs(groups) -> frozenset[str]:
    out: set[str] = set()
    for lb_sgs, _ in groups:
        out |= lb_sgs
    return frozenset(out)


def _pod_eni_ids(annotation: str, ip: str) -> list[str]:
    """ENI ids from `vpc.amazonaws.com/pod-eni`: the entry whose privateIp is the pod IP first."""
    text = annotation.strip()
    if text.startswith("eni-"):
        return [text]
    try:
        data = json.loads(text)
    except ValueError:
        return []
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        return []
    matching: list[str] = []
    others: list[str] = []
    for entry in data:
        if not isinstance(entry, dict):
            continue
        eni_id = entry.get("eniId")
        if not isinstance(eni_id, str):
            continue
        addresses = {_norm_ip(entry.get("privateIp")), _norm_ip(entry.get("ipv6Addr"))}
        (matching if ip in addresses else others).append(eni_id)
    return matching or others


# --- findings collector ------------------------------------------------------------------------


class _Findings:
    def __init__(self) -> None:
        self.items: list[m.Finding] = []
        self._seen: set[tuple] = set()

    def add(
        self,
        code: str,
        severity: m.Severity,
        message: str,
        protocol: m.Protocol | None = None,
        **evidence: Any,
    ) -> None:
        key = (code, protocol, message)
        if key in self._seen:
            return
        self._seen.add(key)
        self.items.append(m.Finding(code, severity, message, protocol, evidence))

    def invalid(self, obj: str, field: str, message: str) -> None:
        self.add("INVALID_SPEC", "warning", f"{obj}: {field}: {message}", None, object=obj, field=field)

    def sorted(self) -> tuple[m.Finding, ...]:
        return tuple(
            sorted(
                self.items,
                key=lambda f: (_SEVERITY_RANK.get(f.severity, 3), f.code, f.protocol or "", f.message),
            )
        )


# --- per-binding analysis ----------------------------------------------------------------------


class _Ctx:
    """Everything one binding's analysis computes and the findings read."""

    def __init__(self, ix: _Index, binding: m.Binding) -> None:
        self.ix = ix
        self.b = binding
        self.f = _Findings()
        self.obj = f"TargetGroupBinding {binding.namespace}/{binding.name}"
        self.tg: m.TargetGroup | None = None
        self.tg_arn: str | None = None
        self.service: m.Service | None = None
        self.sport: m.ServicePort | None = None
        self.sport_matches: list[m.ServicePort] = []
        self.target_type: str | None = None
        self.carried: tuple[m.Protocol, ...] = ()
        self.targets: list[_Target] = []
        self.health_known = True
        self.results: list[m.ProtocolResult] = []
        self.evals: dict[str, list[tuple[_Target, _Eval | None]]] = {}
        self.preserved: dict[str, bool] = {}
        self.clients: dict[str, NetSet] = {}
        self.hc_evals: list[tuple[_Target, _Eval | None, int | None]] = []
        self.hc_admitted: bool | None = None
        self.named_ports: dict[str, set[int]] | None = None
        self.lbs_by_proto: dict[str, list[str]] = {}
        self.traffic_ports: list[int] | None = None
        self.carriers: dict[str, list[str]] | None = None


def analyze(inventory: m.Inventory) -> list[m.BindingResult]:
    """Judge every binding of the inventory; results sorted by namespace/name. Never raises."""
    # The analysis allocates many short-lived, acyclic objects next to a large inventory; cyclic
    # GC passes over that inventory cost about half the run time, so collection waits until the end.
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        return _analyze(inventory)
    finally:
        if paused:
            gc.enable()


def _analyze(inventory: m.Inventory) -> list[m.BindingResult]:
    try:
        ix = _Index(inventory)
    except Exception as exc:  # the index only reads; a failure means malformed data everywhere
        return [_crashed(inventory, b, exc) for b in _sorted_bindings(inventory)]
    stale = _stale_sources(inventory)
    results: list[m.BindingResult] = []
    for binding in _sorted_bindings(inventory):
        try:
            results.append(_analyze_binding(ix, binding, stale))
        except Exception as exc:  # one malformed binding must not hide the others
            results.append(_crashed(inventory, binding, exc))
    return results


def _sorted_bindings(inventory: m.Inventory) -> list[m.Binding]:
    try:
        bindings = list(inventory.bindings or ())
    except TypeError:
        return []
    return sorted(bindings, key=lambda b: (str(b.namespace), str(b.name), str(b.uid)))


def _crashed(inventory: m.Inventory, binding: m.Binding, exc: Exception) -> m.BindingResult:
    obj = f"TargetGroupBinding {getattr(binding, 'namespace', '?')}/{getattr(binding, 'name', '?')}"
    finding = m.Finding(
        "INVALID_SPEC",
        "warning",
        f"{obj}: the analysis could not interpret this binding or its dependencies "
        f"({type(exc).__name__}: {exc})",
        None,
        {"object": obj, "field": "", "error": type(exc).__name__},
    )
    protocol = m.ProtocolResult(
        "TCP", None, "unknown", 0, 0, False, (), ("analysis failed on malformed data",)
    )
    return m.BindingResult(
        cluster=str(getattr(inventory, "cluster", "")),
        namespace=str(getattr(binding, "namespace", "")),
        name=str(getattr(binding, "name", "")),
        uid=str(getattr(binding, "uid", "")),
        target_group_arn=getattr(binding, "target_group_arn", None),
        target_type=getattr(binding, "target_type", None),
        target_group_protocol=getattr(binding, "target_group_protocol", None),
        protocols=(protocol,),
        health_check=None,
        findings=(finding,),
    )


def _stale_sources(inv: m.Inventory) -> list[m.Finding]:
    if inv.now is None:
        return []
    out: list[m.Finding] = []
    for source in inv.sources or ():
        label = f"{source.kind} {source.name}"
        try:
            interval = int(source.poll_interval_seconds)
            if source.last_success_at is None:
                message = f"{label} has never been polled successfully; its data may be missing or old"
                age = None
            else:
                age_delta = inv.now - source.last_success_at
                if interval <= 0 or age_delta <= timedelta(seconds=3 * interval):
                    continue
                age = int(age_delta.total_seconds())
                message = (
                    f"{label} was last polled successfully {age}s ago, more than three poll intervals "
                    f"({interval}s each); the verdicts may describe an old state"
                )
        except (TypeError, ValueError, OverflowError):
            continue  # naive vs aware datetimes: cannot judge, say nothing rather than guess
        if source.last_error:
            message += f" (last error: {source.last_error})"
        out.append(
            m.Finding(
                "STALE_DATA",
                "warning",
                message,
                None,
                {
                    "source": source.name,
                    "kind": source.kind,
                    "ageSeconds": age,
                    "pollIntervalSeconds": interval,
                    "lastError": source.last_error,
                },
            )
        )
    return out


def _analyze_binding(ix: _Index, b: m.Binding, stale: list[m.Finding]) -> m.BindingResult:
    c = _Ctx(ix, b)
    for finding in stale:
        c.f.items.append(finding)
    _check_spec(c)
    _resolve_target_group(c)
    _resolve_service(c)
    _derive_protocols(c)
    if c.tg is not None:
        _resolve_targets(c)
        for proto in c.carried:
            c.results.append(_judge_protocol(c, proto))
        health = _judge_health_check(c)
        _findings_traffic(c)
        _findings_health(c)
        _findings_networking(c)
        _finding_drift(c)
    else:
        health = None
        for proto in c.carried:
            c.results.append(_unknown_protocol(c, proto))
    _finding_service_protocol(c)
    _findings_probes(c)
    return m.BindingResult(
        cluster=ix.inv.cluster,
        namespace=b.namespace,
        name=b.name,
        uid=b.uid,
        target_group_arn=c.tg_arn,
        target_type=c.target_type,
        target_group_protocol=(
            c.tg.protocol if c.tg is not None and c.tg.protocol else b.target_group_protocol
        ),
        protocols=tuple(c.results),
        health_check=health,
        findings=c.f.sorted(),
    )


def _check_spec(c: _Ctx) -> None:
    b = c.b
    seen_fields = set()
    for problem in b.problems or ():
        seen_fields.add(problem.field)
        c.f.invalid(problem.object, problem.field, problem.message)
    for i, rule in enumerate(b.networking or ()):
        if not rule.ports:
            c.f.add(
                "EMPTY_PORTS_LIST",
                "warning",
                f"spec.networking.ingress[{i}] has `ports: []`: the controller creates no rule at all for it "
                "(aws-load-balancer-controller#4907); list each protocol and port explicitly",
                None,
                rule=i,
            )
        for j, peer in enumerate(rule.peers or ()):
            if peer.cidr is not None:
                field = f"spec.networking.ingress[{i}].from[{j}].ipBlock.cidr"
                if parse_network(peer.cidr) is None and field not in seen_fields:
                    c.f.invalid(c.obj, field, f"{peer.cidr!r} is not a valid CIDR")
            elif not peer.security_group_id:
                field = f"spec.networking.ingress[{i}].from[{j}]"
                if field not in seen_fields:
                    c.f.invalid(c.obj, field, "a peer needs an ipBlock.cidr or a securityGroup.groupID")
        for j, port in enumerate(rule.ports or ()):
            if str(port.protocol).upper() not in ("TCP", "UDP"):
                field = f"spec.networking.ingress[{i}].ports[{j}].protocol"
                if field not in seen_fields:
                    c.f.invalid(c.obj, field, f"{port.protocol!r} is not TCP or UDP")
    field = f"metadata.annotations[{m.CLIENT_CIDRS_ANNOTATION}]"
    for cidr in b.client_cidrs or ():
        if parse_network(cidr) is None and field not in seen_fields:
            c.f.invalid(c.obj, field, f"{cidr!r} is not a valid CIDR; it is ignored")
    for cidr in c.ix.inv.client_cidrs or ():
        if parse_network(cidr) is None:
            c.f.invalid(
                f"cluster {c.ix.inv.cluster}", "client CIDRs", f"{cidr!r} is not a valid CIDR; ignored"
            )


def _resolve_target_group(c: _Ctx) -> None:
    b, inv = c.b, c.ix.inv
    arn = b.target_group_arn
    tg = inv.target_groups.get(arn) if arn else None
    if tg is None and not arn and b.target_group_name:
        tg = c.ix.tg_by_name.get(b.target_group_name)
        arn = tg.arn if tg is not None else None
    c.tg_arn, c.tg = arn, tg
    c.target_type = b.target_type or (tg.target_type if tg is not None else None)
    if not arn and not b.target_group_name:
        c.f.invalid(
            c.obj, "spec.targetGroupARN", "no target group is referenced (targetGroupARN/targetGroupName)"
        )
    elif tg is None and inv.aws_complete:
        ref = arn or b.target_group_name
        c.f.add(
            "TARGET_GROUP_NOT_FOUND",
            "critical",
            f"target group {ref} does not exist in AWS (or is in another account/region): the controller "
            "cannot register targets and no traffic reaches them",
            None,
            targetGroup=ref,
        )
    if tg is not None:
        for problem in tg.problems or ():
            c.f.invalid(problem.object, problem.field, problem.message)
        if b.target_type and tg.target_type and b.target_type != tg.target_type:
            c.f.invalid(
                c.obj, "spec.targetType", f"{b.target_type!r} but the target group is {tg.target_type!r}"
            )
    if c.target_type not in ("ip", "instance") and (tg is not None or b.target_type is not None):
        c.f.invalid(c.obj, "spec.targetType", f"{c.target_type!r} is not ip or instance")


def _resolve_service(c: _Ctx) -> None:
    b, inv = c.b, c.ix.inv
    if not b.service_name:
        c.f.invalid(c.obj, "spec.serviceRef.name", "no Service is referenced")
        return
    svc = inv.services.get(f"{b.namespace}/{b.service_name}")
    if svc is None:
        c.f.invalid(
            c.obj, "spec.serviceRef.name", f"Service {b.namespace}/{b.service_name} not found in the cluster"
        )
        return
    c.service = svc
    for problem in svc.problems or ():
        c.f.invalid(problem.object, problem.field, problem.message)
    ref = b.service_port
    if isinstance(ref, bool) or ref is None:
        c.f.invalid(c.obj, "spec.serviceRef.port", "no Service port is referenced")
        return
    # The controller's LookupServicePort: an int matches the port number (first match wins,
    # whatever the protocol); a string matches the port name.
    if isinstance(ref, int):
        c.sport_matches = [p for p in svc.ports if p.port == ref]
    else:
        c.sport_matches = [p for p in svc.ports if p.name == ref]
    if not c.sport_matches:
        c.f.invalid(
            c.obj,
            "spec.serviceRef.port",
            f"Service {svc.key} has no port {'numbered' if isinstance(ref, int) else 'named'} {ref!r}",
        )
        return
    c.sport = c.sport_matches[0]


def _derive_protocols(c: _Ctx) -> None:
    tg_proto = str(c.tg.protocol).upper() if c.tg is not None and c.tg.protocol else None
    if tg_proto in m.CARRIED_PROTOCOLS:
        c.carried = m.CARRIED_PROTOCOLS[tg_proto]
        return
    if c.tg is not None:
        c.f.invalid(
            f"TargetGroup {c.tg.arn}",
            "Protocol",
            f"{c.tg.protocol!r} is not a network load balancer protocol",
        )
    spec_proto = str(c.b.target_group_protocol or "").upper()
    if spec_proto in m.CARRIED_PROTOCOLS:
        c.carried = m.CARRIED_PROTOCOLS[spec_proto]
    elif c.sport is not None and c.sport.protocol.upper() in ("TCP", "UDP"):
        c.carried = (c.sport.protocol.upper(),)  # type: ignore[assignment]
    else:
        c.carried = ("TCP",)
    if c.tg is not None:
        # The group exists but its protocol is unusable: judge nothing rather than guess.
        c.tg = None


def _unknown_protocol(c: _Ctx, proto: m.Protocol) -> m.ProtocolResult:
    if not c.tg_arn and not c.b.target_group_name:
        reason = "no target group is referenced"
    elif not c.ix.inv.aws_complete:
        reason = "AWS data is incomplete (poll failed or never ran): target group not known"
    elif c.tg_arn and c.tg_arn in c.ix.inv.target_groups:
        reason = "the target group's protocol is not one a network load balancer carries"
    else:
        reason = "target group not found in AWS"
    port = c.sport.port if c.sport is not None else None
    return m.ProtocolResult(proto, port, "unknown", 0, 0, False, (), (reason,))


def _resolve_targets(c: _Ctx) -> None:
    tg = c.tg
    assert tg is not None
    health = c.ix.inv.target_health.get(tg.arn)
    if health is None and not c.ix.inv.aws_complete:
        c.health_known = False
        return
    for th in health or ():
        if th.state == "draining":
            continue
        port = th.port if isinstance(th.port, int) else tg.port
        target = c.ix.resolve_target(th, port, c.target_type, tg)
        c.targets.append(target)
        if target.problem:
            c.f.invalid(
                f"Target {target.target_id} of TargetGroup {tg.name or tg.arn}",
                "network interface",
                target.problem,
            )
        elif target.eni is not None and not c.ix.sgs_known(target.sg_ids):
            for sg_id in target.sg_ids:
                if sg_id not in c.ix.inv.security_groups:
                    c.f.invalid(
                        f"NetworkInterface {target.eni.id}",
                        "Groups",
                        f"security group {sg_id} not found in AWS data",
                    )


def _traffic_ports(c: _Ctx) -> list[int]:
    if c.traffic_ports is None:
        c.traffic_ports = _traffic_ports_uncached(c)
    return c.traffic_ports


def _traffic_ports_uncached(c: _Ctx) -> list[int]:
    ports = sorted({t.port for t in c.targets if isinstance(t.port, int)})
    if ports:
        return ports
    sp = c.sport
    if sp is not None:
        if c.target_type == "instance" and sp.node_port:
            return [sp.node_port]
        if c.target_type == "ip" and isinstance(sp.target_port, int):
            return [sp.target_port]
    return [c.tg.port] if c.tg is not None and isinstance(c.tg.port, int) else []


def _carrying_lbs(c: _Ctx, proto: str) -> list[str]:
    """The load balancers with a listener that carries `proto` to the binding's group."""
    if c.carriers is None:
        tg = c.tg
        assert tg is not None
        tg_proto = str(tg.protocol).upper()
        found: dict[str, set[str]] = {}
        listeners = list(c.ix.listeners_by_tg.get(tg.arn, ()))
        for lb_arn in tg.load_balancer_arns or ():
            listeners.extend(c.ix.unparsed_listeners_by_lb.get(lb_arn, ()))
        for listener in listeners:
            for carried in LISTENER_CARRIES.get(str(listener.protocol).upper(), {}).get(tg_proto, ()):
                found.setdefault(carried, set()).add(listener.load_balancer_arn)
        c.carriers = {p: sorted(lbs) for p, lbs in found.items()}
    return c.carriers.get(proto, [])


def _client_ip_preserved(c: _Ctx) -> bool:
    tg = c.tg
    assert tg is not None
    tg_proto = str(tg.protocol).upper()
    if tg_proto in m.ALWAYS_PRESERVE_CLIENT_IP:
        return True
    value = str((tg.attributes or {}).get("preserve_client_ip.enabled", "")).strip().lower()
    if value == "true":
        return True
    if value == "false":
        return False
    return c.target_type == "instance"


def _client_ranges(c: _Ctx, lb_arn: str) -> tuple[NetSet, str]:
    assert c.tg is not None
    key = (c.b.client_cidrs, lb_arn, c.tg.vpc_id)
    found = c.ix.client_cache.get(key)
    if found is None:
        found = c.ix.client_cache[key] = _client_ranges_uncached(c, lb_arn)
    return found


def _client_ranges_uncached(c: _Ctx, lb_arn: str) -> tuple[NetSet, str]:
    if c.b.client_cidrs:
        found = NetSet.from_cidrs(c.b.client_cidrs)
        if found:
            return found, f"annotation {m.CLIENT_CIDRS_ANNOTATION}"
    if c.ix.inv.client_cidrs:
        found = NetSet.from_cidrs(c.ix.inv.client_cidrs)
        if found:
            return found, "cluster client ranges"
    assert c.tg is not None
    return c.ix.default_clients(lb_arn, c.tg)


def _source_groups(
    c: _Ctx, lbs: list[str], preserved: bool, family: int, hc: bool = False
) -> tuple[tuple[frozenset[str], NetSet], ...]:
    """(LB security groups, expected CIDRs of `family`) per load balancer."""
    assert c.tg is not None
    key = (tuple(lbs), preserved and not hc, family, c.b.client_cidrs, c.tg.vpc_id)
    found = c.ix.groups_cache.get(key)
    if found is None:
        found = c.ix.groups_cache[key] = _source_groups_uncached(c, lbs, preserved, family, hc)
    return found


def _source_groups_uncached(
    c: _Ctx, lbs: list[str], preserved: bool, family: int, hc: bool
) -> tuple[tuple[frozenset[str], NetSet], ...]:
    groups = []
    for lb_arn in lbs:
        lb = c.ix.inv.load_balancers.get(lb_arn)
        lb_sgs = frozenset(lb.security_groups or ()) if lb is not None else frozenset()
        private, _ = c.ix.lb_private(lb_arn)
        if preserved and not hc:
            clients, _ = _client_ranges(c, lb_arn)
            sources = clients.family(family)
            other = clients.family(10 - family)  # 4 <-> 6
            if other:
                # Clients of the other family reach this target from the LB's own address.
                sources = sources | private.family(family)
        else:
            sources = private.family(family)
        groups.append((lb_sgs, sources))
    return tuple(groups)


def _judge_protocol(c: _Ctx, proto: m.Protocol) -> m.ProtocolResult:
    tg = c.tg
    assert tg is not None
    lbs = _carrying_lbs(c, proto)
    c.lbs_by_proto[proto] = lbs
    preserved = _client_ip_preserved(c)
    c.preserved[proto] = preserved
    ports = _traffic_ports(c)
    port = ports[0] if ports else None
    sg_proto = proto.lower()
    total = len(c.targets)
    if not c.health_known:
        return m.ProtocolResult(proto, port, "unknown", 0, 0, preserved, (), ("target health not collected",))
    if not lbs:
        if not c.ix.inv.aws_complete:
            reason = f"no known listener carries {proto} to this target group, but AWS data is incomplete"
            return m.ProtocolResult(proto, port, "unknown", total, 0, preserved, (), (reason,))
        attached = ", ".join(tg.load_balancer_arns) or "no load balancer"
        reason = f"no listener forwards {proto} to target group {tg.name or tg.arn} (attached to {attached})"
        c.f.add(
            "NO_LISTENER",
            "warning",
            f"no listener forwards {proto} to target group {tg.name or tg.arn}: {proto} traffic never "
            "reaches these targets (targets show unused / Target.NotInUse)",
            proto,
            targetGroup=tg.arn,
            loadBalancers=list(tg.load_balancer_arns),
        )
        return m.ProtocolResult(proto, port, "not_offered", total, 0, preserved, (), (reason,))

    group_cache: dict[int, tuple] = {}
    eval_cache = c.ix._evals
    evaluate = c.ix.evaluate
    evals: list[tuple[_Target, _Eval | None]] = []
    verdicts: list[m.TargetVerdict] = []
    tails: dict[str, list[str]] = {}
    full = partial = unknown = 0
    target_verdict = m.TargetVerdict
    for target in c.targets:
        tport = target.port
        if target.eni is None or not isinstance(tport, int):
            ev = None
        else:
            groups = group_cache.get(target.family)
            if groups is None:
                groups = group_cache[target.family] = _source_groups(c, lbs, preserved, target.family)
            nacl = target.nacl
            ev = eval_cache.get((target.sg_ids, nacl.id if nacl else None, sg_proto, tport, id(groups)))
            if ev is None:
                ev = evaluate(target, sg_proto, tport, groups)
        evals.append((target, ev))
        if ev is None:
            unknown += 1
            admitted = None
            tail = target.problem or "no traffic port registered"
            verdicts.append(target_verdict(target.target_id, tport, None, target.sg_ids, None, (), (), tail))
        else:
            level = ev.level
            tail = ev.tail
            if level == "full":
                admitted = True
                full += 1
            else:
                admitted = None if level is None else False
                if level is None:
                    unknown += 1
                elif level == "partial":
                    partial += 1
                tails.setdefault(tail, []).append(target.label)
            verdicts.append(
                target_verdict(
                    target.target_id,
                    tport,
                    target.eni.id,
                    target.sg_ids,
                    admitted,
                    ev.uncovered_cidrs,
                    ev.labels,
                    tail,
                )
            )
        if ev is None:
            tails.setdefault(tail, []).append(target.label)
    c.evals[proto] = evals
    if not group_cache:
        for family in (4, 6):
            group_cache[family] = _source_groups(c, lbs, preserved, family)
    expected, expected_text, expected_sources = c.ix.summary(tuple(group_cache.values()), lbs)

    total = len(verdicts)
    if total == 0:
        return m.ProtocolResult(
            proto, port, "blocked", 0, 0, preserved, expected_sources, ("no registered targets",)
        )
    if full == total:
        verdict: m.Verdict = "reachable"
    elif unknown == total or (unknown and not full and not partial):
        verdict = "unknown"
    elif not full and not partial:
        verdict = "blocked"
    else:
        verdict = "partial"
    source_text = (
        "client ranges (client IP preserved)" if preserved else "the load balancer's private addresses"
    )
    if verdict == "reachable":
        sample = evals[0][1].tail  # type: ignore[union-attr]
        reasons = (
            f"all {total} target(s) admit {proto} {port} from {source_text} {expected_text}: {sample}",
        )
    else:
        head = f"{full} of {total} target(s) admit {proto} {port} from {source_text} {expected_text}"
        reasons = (head, *(f"{_short(labels)}: {tail}" for tail, labels in tails.items()))
    return m.ProtocolResult(
        proto, port, verdict, total, full, preserved, expected_sources, reasons, tuple(verdicts)
    )


@lru_cache(maxsize=4096)
def _health_check_texts(
    hc_proto: str,
    raw_port: str,
    path: str | None,
    matcher: str | None,
    enabled: bool,
    ports: tuple[int, ...],
    carries_udp: bool,
    preserved: bool,
) -> tuple[str, str]:
    """What a passing health check proves and what it cannot (shared by most bindings)."""
    port_text = (_short(ports, 3) or "the traffic port") if raw_port == "traffic-port" else raw_port
    if not enabled:
        proves = "nothing: health checks are disabled"
    elif hc_proto in ("HTTP", "HTTPS"):
        with_code = f" with HTTP code {matcher}" if matcher else ""
        proves = f"{hc_proto} {path or '/'} on TCP port {port_text} answers the load balancer{with_code}"
    else:
        proves = f"TCP port {port_text} accepts connections from the load balancer"
    cannot: list[str] = []
    if carries_udp:
        cannot.append(
            f"that UDP datagrams on port {_short(ports, 3) or 'the traffic port'} reach the targets"
        )
    if preserved:
        cannot.append("that the targets admit the clients' own addresses (client IP is preserved)")
    return proves, "; ".join(cannot) or "that the application itself answers correctly"


def _judge_health_check(c: _Ctx) -> m.HealthCheckResult:
    tg = c.tg
    assert tg is not None
    hc_proto = str(tg.health_check_protocol or "TCP").upper()
    healthy = unhealthy = other = 0
    for th in c.ix.inv.target_health.get(tg.arn, ()) or ():
        state = th.state
        if state == "healthy":
            healthy += 1
        elif isinstance(state, str) and state.startswith("unhealthy"):
            unhealthy += 1
        else:
            other += 1
    if len(c.carried) == 1:
        lbs = c.lbs_by_proto.get(c.carried[0]) or sorted(tg.load_balancer_arns or ())
    else:
        lbs = sorted({lb for proto in c.carried for lb in c.lbs_by_proto.get(proto, ())}) or sorted(
            tg.load_balancer_arns or ()
        )
    judged = tg.health_check_enabled is not False and hc_proto in _HEALTH_CHECK_TCP and lbs
    admitted: bool | None = None
    if judged:
        group_cache: dict[int, tuple] = {}
        raw_hc = str(tg.health_check_port or "traffic-port").strip()
        fixed_port = int(raw_hc) if raw_hc.isdigit() else None
        traffic = raw_hc in ("traffic-port", "")
        eval_cache = c.ix._evals
        hc_evals = c.hc_evals
        n_full = n_false = 0
        for target in c.targets:
            port = target.port if traffic else fixed_port
            if target.eni is None or port is None:
                hc_evals.append((target, None, port))
                continue
            groups = group_cache.get(target.family)
            if groups is None:
                groups = group_cache[target.family] = _source_groups(c, lbs, False, target.family, hc=True)
            nacl = target.nacl
            ev = eval_cache.get((target.sg_ids, nacl.id if nacl else None, "tcp", port, id(groups)))
            if ev is None:
                ev = c.ix.evaluate(target, "tcp", port, groups)
            hc_evals.append((target, ev, port))
            if ev.level == "full":
                n_full += 1
            elif ev.level is not None:
                n_false += 1
        if n_false:
            admitted = False
        elif c.targets and n_full == len(c.targets):
            admitted = True
    c.hc_admitted = admitted

    proves, cannot_prove = _health_check_texts(
        hc_proto,
        str(tg.health_check_port or "traffic-port"),
        tg.health_check_path,
        tg.matcher,
        tg.health_check_enabled is not False,
        tuple(_traffic_ports(c)),
        "UDP" in c.carried,
        any(c.preserved.values()),
    )
    return m.HealthCheckResult(
        protocol=tg.health_check_protocol,
        port=tg.health_check_port,
        path=tg.health_check_path,
        proves=proves,
        cannot_prove=cannot_prove,
        admitted=admitted,
        healthy=healthy,
        unhealthy=unhealthy,
        other=other,
    )


# --- findings ----------------------------------------------------------------------------------


def _clients_of(c: _Ctx, proto: str) -> NetSet:
    return union_all(_client_ranges(c, lb)[0] for lb in c.lbs_by_proto.get(proto, ()))


def _findings_traffic(c: _Ctx) -> None:
    states = {(t.target_id, t.port): t.health.state for t in c.targets}
    for result in c.results:
        proto = result.protocol
        evals = c.evals.get(proto, [])
        if result.verdict in ("blocked", "partial") and result.targets_total:
            bad = [t for t in result.targets if t.admitted is False]
            severity: m.Severity = "critical" if result.verdict == "blocked" else "warning"
            sources = (
                "the client ranges" if result.client_ip_preserved else "the load balancer's private addresses"
            )
            c.f.add(
                "TRAFFIC_BLOCKED",
                severity,
                f"{proto} {result.port} is {result.verdict}: {len(bad)} of {result.targets_total} target(s) "
                f"do not admit {proto.lower()} {result.port} from {sources} in their security groups",
                proto,
                verdict=result.verdict,
                port=result.port,
                targets=[t.target_id for t in bad][:50],
                uncovered=sorted({u for t in bad for u in t.uncovered_sources})[:50],
            )
            healthy_bad = [t.target_id for t in bad if states.get((t.target_id, t.port)) == "healthy"]
            if healthy_bad:
                c.f.add(
                    "HEALTH_CHECK_MASKS_TRAFFIC",
                    "critical",
                    f"{len(healthy_bad)} target(s) are healthy while {proto} {result.port} is "
                    f"{result.verdict}: "
                    f"the {c.tg.health_check_protocol or 'TCP'} health check passes but {proto} "
                    f"traffic does not "
                    f"get in (green but broken): {_short(healthy_bad)}",
                    proto,
                    targets=healthy_bad[:50],
                )
        if result.verdict == "not_offered":
            continue
        # Client ranges: only when the client address is what the target sees.
        if result.client_ip_preserved:
            short = [
                (t, ev) for t, ev in evals if ev is not None and ev.level is not None and ev.level != "full"
            ]
            short = [(t, ev) for t, ev in short if not ev.via_sg]
            if short:
                uncovered = sorted({cidr for _, ev in short for cidr in _cidrs(ev.uncovered)})
                clients = _clients_of(c, proto)
                c.f.add(
                    "CLIENT_RANGES_NOT_COVERED",
                    "warning",
                    f"client IP is preserved for {proto}, so targets must admit the clients' addresses "
                    f"({clients}); the rules of {len(short)} target(s) leave {_short(uncovered, 5)} "
                    f"uncovered",
                    proto,
                    clientRanges=list(_cidrs(clients)),
                    uncovered=uncovered[:50],
                    targets=[t.target_id for t, _ in short][:50],
                )
        broad = sorted({r.label for _, ev in evals if ev is not None for r in ev.broad})
        if broad:
            clients = _clients_of(c, proto) if result.client_ip_preserved else EMPTY
            internet = clients.is_everything(4) or clients.is_everything(6)
            severity = "info" if internet else "warning"
            why = (
                "the client ranges are the whole internet, so this is expected"
                if internet
                else "wider than the expected sources"
            )
            c.f.add(
                "OVERLY_BROAD_SOURCE",
                severity,
                f"{proto} {result.port} is admitted from anywhere by {_short(broad, 3)}; {why}",
                proto,
                rules=broad,
            )


def _findings_health(c: _Ctx) -> None:
    tg = c.tg
    assert tg is not None
    name = tg.name or tg.arn
    hc_proto = str(tg.health_check_protocol or "TCP").upper()
    if "UDP" in c.carried:
        udp = next((r for r in c.results if r.protocol == "UDP"), None)
        ok = udp is not None and udp.verdict == "reachable"
        c.f.add(
            "HEALTH_CHECK_PROTOCOL_MISMATCH",
            "info" if ok else "warning",
            f"target group {name} carries UDP but health-checks over {hc_proto}: a healthy target proves the "
            f"TCP path only, never that UDP datagrams reach it"
            + ("" if ok else f" (UDP is {udp.verdict if udp else 'not judged'})"),
            "UDP",
            healthCheckProtocol=hc_proto,
        )
    raw = str(tg.health_check_port or "traffic-port").strip()
    if raw.isdigit():
        hc_port = int(raw)
        ports = _traffic_ports(c)
        if ports and any(p != hc_port for p in ports):
            c.f.add(
                "HEALTH_CHECK_PORT_MISMATCH",
                "info",
                f"health checks go to port {hc_port}, traffic to {_short(ports, 3)}: a healthy "
                f"target says nothing "
                "about the traffic port, and the health-check port needs its own TCP rule",
                None,
                healthCheckPort=hc_port,
                trafficPorts=ports,
            )
    blocked = [
        (t, ev, port) for t, ev, port in c.hc_evals if ev is not None and ev.level in ("none", "partial")
    ]
    if blocked:
        c.f.add(
            "HEALTH_CHECK_BLOCKED",
            "critical",
            f"the security groups of {len(blocked)} target(s) do not admit TCP health checks from the load "
            f"balancer's private addresses, so they will be marked unhealthy: "
            + "; ".join(f"{t.label} port {port}: {ev.tail}" for t, ev, port in blocked[:5]),
            None,
            targets=[t.target_id for t, _, _ in blocked][:50],
            ports=sorted({p for _, _, p in blocked if p is not None}),
        )
    states = [t.health.state for t in c.targets]
    unhealthy = [t for t in c.targets if str(t.health.state).startswith("unhealthy")]
    if states and len(unhealthy) == len(states):
        c.f.add(
            "ALL_TARGETS_UNHEALTHY",
            "critical",
            f"all {len(states)} target(s) of {name} are unhealthy: the NLB fails open and sends "
            f"traffic to all "
            "of them anyway, so health no longer steers traffic away from broken targets",
            None,
            reasons=_reason_counts(unhealthy),
        )
    elif unhealthy:
        counts = _reason_counts(unhealthy)
        c.f.add(
            "UNHEALTHY_TARGETS",
            "warning",
            f"{len(unhealthy)} of {len(states)} target(s) are unhealthy ("
            + ", ".join(f"{k}: {v}" for k, v in counts.items())
            + ")",
            None,
            reasons=counts,
            targets=[t.target_id for t in unhealthy][:50],
        )


def _reason_counts(targets: list[_Target]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for target in targets:
        key = str(target.health.reason or "unknown")
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


def _named_ports(c: _Ctx) -> dict[str, set[int]]:
    """Container port numbers by name, over the pods behind this binding's targets."""
    if c.named_ports is not None:
        return c.named_ports
    out: dict[str, set[int]] = defaultdict(set)
    pods: list[m.Pod] = []
    for target in c.targets:
        ip = _norm_ip(target.target_id)
        pod = c.ix.pods_by_ip.get(ip) if ip else None
        if pod is not None:
            pods.append(pod)
    if not pods and c.service is not None:
        for eps in c.ix.slices_by_service.get((c.b.namespace, c.service.name), ()):
            for ep in eps.endpoints:
                pod = c.ix.inv.pods.get(f"{eps.namespace}/{ep.pod_name}") if ep.pod_name else None
                if pod is not None:
                    pods.append(pod)
    for pod in pods:
        for cp in pod.container_ports or ():
            if cp.name:
                out[cp.name].add(cp.container_port)
    c.named_ports = out
    return out


def _port_numbers(c: _Ctx, port: int | str | None) -> tuple[int, int] | list[int] | None:
    """A networking port as a range (None/int) or the resolved numbers of a named port."""
    if port is None:
        return (0, 65535)
    if isinstance(port, int):
        return (port, port)
    if str(port).isdigit():
        return (int(port), int(port))
    return sorted(_named_ports(c).get(str(port), ()))


def _declared(c: _Ctx, proto: str, port: int) -> bool:
    for rule in c.b.networking or ():
        for entry in rule.ports or ():
            if str(entry.protocol).upper() != proto:
                continue
            numbers = _port_numbers(c, entry.port)
            if isinstance(numbers, tuple):
                if numbers[0] <= port <= numbers[1]:
                    return True
            elif numbers and port in numbers:
                return True
    return False


def _findings_networking(c: _Ctx) -> None:
    tg = c.tg
    assert tg is not None
    b = c.b
    ports = _traffic_ports(c)
    by_proto = {r.protocol: r for r in c.results}
    for proto in c.carried:
        result = by_proto.get(proto)
        if result is None or result.verdict == "not_offered" or not ports:
            continue
        missing = [p for p in ports if not _declared(c, proto, p)]
        if missing:
            reachable = result.verdict == "reachable"
            _missing_rule(c, proto, missing, reachable, "traffic")
    raw = str(tg.health_check_port or "traffic-port").strip()
    hc_ports = [int(raw)] if raw.isdigit() else ports
    tcp_offered = (
        "TCP" in c.carried and by_proto.get("TCP") is not None and by_proto["TCP"].verdict != "not_offered"
    )
    needs_hc_rule = "UDP" in c.carried or (raw.isdigit() and any(p != int(raw) for p in ports))
    if needs_hc_rule and hc_ports and not (tcp_offered and set(hc_ports) <= set(ports)):
        missing = [p for p in hc_ports if not _declared(c, "TCP", p)]
        if missing:
            _missing_rule(c, "TCP", missing, c.hc_admitted is True, "health check")

    if c.target_type == "instance" and c.sport is not None and c.sport.node_port:
        svc_ports = {p.port: p.node_port for p in c.sport_matches if p.node_port}
        for i, rule in enumerate(b.networking or ()):
            for entry in rule.ports or ():
                if (
                    isinstance(entry.port, int)
                    and entry.port in svc_ports
                    and entry.port != svc_ports[entry.port]
                ):
                    c.f.add(
                        "INSTANCE_PORT_NOT_NODEPORT",
                        "warning",
                        f"spec.networking.ingress[{i}] opens port {entry.port}, the Service port; "
                        f"instance targets "
                        f"receive traffic on the NodePort {svc_ports[entry.port]}, so the rule "
                        f"opens the wrong port",
                        None,
                        rule=i,
                        port=entry.port,
                        nodePort=svc_ports[entry.port],
                    )

    needs_rules = any(r.verdict in ("blocked", "partial") for r in c.results) or c.hc_admitted is False
    declared = bool(b.networking)
    if not (declared or needs_rules):
        return
    cluster_tag = f"kubernetes.io/cluster/{c.ix.inv.cluster}"
    ambiguous: dict[str, list[str]] = {}
    controller_sg: dict[str, tuple[str, ...]] = {}
    for target in c.targets:
        eni = target.eni
        if eni is None:
            continue
        choice = c.ix.controller_sg(target.sg_ids, cluster_tag)
        if isinstance(choice, str):
            controller_sg[choice] = (choice,)
        elif choice is not None:
            ambiguous[eni.id] = list(choice)
            # The controller cannot write anywhere: a declared rule is in place only if some
            # group on the ENI already holds it.
            controller_sg[" or ".join(target.sg_ids)] = target.sg_ids
    if ambiguous:
        c.f.add(
            "SECURITY_GROUP_TAG_AMBIGUOUS",
            "warning",
            f"{len(ambiguous)} target network interface(s) have several security groups and "
            f"{'none' if not any(ambiguous.values()) else 'more than one'} carries the tag "
            f"{cluster_tag}: the "
            f"controller cannot choose where to write networking rules ({_short(ambiguous)})",
            None,
            networkInterfaces=dict(sorted(ambiguous.items())),
            tag=cluster_tag,
        )
    if declared:
        _finding_not_reconciled(c, controller_sg)


def _missing_rule(c: _Ctx, proto: str, missing: list[int], ok: bool, what: str) -> None:
    ports = _short(missing, 5)
    if c.b.networking is None:
        head = "spec.networking is absent, so the controller manages no security-group rule for this binding"
    else:
        head = f"spec.networking.ingress declares no {proto} rule for port {ports}"
    tail = (
        f"; {proto} {ports} ({what}) is admitted today only by rules managed outside the controller"
        if ok
        else f"; nothing admits {proto} {ports} ({what}) for the load balancer"
    )
    c.f.add(
        "MISSING_NETWORKING_RULE",
        "info" if ok else "warning",
        head + tail,
        proto,  # type: ignore[arg-type]
        ports=missing,
        purpose=what,
        networkingDeclared=c.b.networking is not None,
    )


def _finding_not_reconciled(c: _Ctx, controller_sg: dict[str, tuple[str, ...]]) -> None:
    """Declared rules missing from the group(s) they should be in, keyed by the group label."""
    missing: list[dict] = []
    seen: set[tuple] = set()
    for sg_id in sorted(controller_sg):
        found = [c.ix.rules_of(s) for s in controller_sg[sg_id]]
        if any(r is None for r in found):
            continue
        rules = tuple(r for group in found for r in group or ())
        for rule in c.b.networking or ():
            for peer in rule.peers or ():
                peer_net = parse_network(peer.cidr) if peer.cidr is not None else None
                if peer.cidr is not None and peer_net is None:
                    continue
                if peer.cidr is None and not peer.security_group_id:
                    continue
                for entry in rule.ports or ():
                    proto = str(entry.protocol).lower()
                    if proto not in ("tcp", "udp"):
                        continue
                    numbers = _port_numbers(c, entry.port)
                    ranges = [numbers] if isinstance(numbers, tuple) else [(n, n) for n in numbers or ()]
                    for lo, hi in ranges:
                        if c.ix.has_equivalent(sg_id, rules, proto, lo, hi, peer_net, peer.security_group_id):
                            continue
                        peer_text = str(peer_net) if peer_net is not None else str(peer.security_group_id)
                        key = (sg_id, proto, lo, hi, peer_text)
                        if key not in seen:
                            seen.add(key)
                            missing.append(
                                {
                                    "securityGroup": sg_id,
                                    "protocol": proto,
                                    "ports": _ports_label(proto, lo, hi),
                                    "peer": peer_text,
                                }
                            )
    if missing:
        pending = (
            c.b.generation is not None
            and c.b.observed_generation is not None
            and c.b.observed_generation < c.b.generation
        )
        listed = "; ".join(
            f"{x['securityGroup']} {x['protocol']} {x['ports']} from {x['peer']}" for x in missing[:5]
        )
        c.f.add(
            "NETWORKING_NOT_RECONCILED",
            "warning",
            f"spec.networking declares rules the target security group lacks: {listed}"
            + (
                " (the controller has not yet observed the latest generation)"
                if pending
                else " (check the binding's FailedNetworkReconcile events)"
            ),
            None,
            missing=missing[:50],
            pendingGeneration=pending,
        )


def _equivalent(rule: _Rule, proto: str, lo: int, hi: int, peer_net, peer_sg: str | None) -> bool:
    if rule.proto != proto or not (rule.lo <= lo and hi <= rule.hi):
        return False
    if peer_net is not None:
        return rule.kind == "cidr" and parse_network(rule.source) == peer_net
    return rule.kind == "security_group" and rule.source == peer_sg


def _finding_service_protocol(c: _Ctx) -> None:
    sp, svc = c.sport, c.service
    if sp is None or svc is None:
        return
    carried = c.carried
    if c.tg is None and not (
        c.b.target_group_protocol and str(c.b.target_group_protocol).upper() in m.CARRIED_PROTOCOLS
    ):
        return  # protocols were derived from this very Service port: nothing to compare
    ref = c.b.service_port
    sp_proto = str(sp.protocol).upper()
    protos = {str(p.protocol).upper() for p in c.sport_matches}
    if isinstance(ref, int) and {"TCP", "UDP"} <= protos:
        c.f.add(
            "SERVICE_PROTOCOL_MISMATCH",
            "warning",
            f"serviceRef.port {ref} matches both a TCP and a UDP port of Service {svc.key}; the "
            f"controller picks "
            f"the first ({sp_proto} {sp.name or sp.port}) — reference the port by name instead",
            None,
            servicePort=ref,
            picked=sp.name,
            protocols=sorted(protos),
        )
    if sp_proto not in carried:
        c.f.add(
            "SERVICE_PROTOCOL_MISMATCH",
            "warning",
            f"serviceRef.port {ref!r} resolves to {sp_proto} port {sp.port} of Service {svc.key}, "
            f"but the target "
            f"group carries {'/'.join(carried)}",
            None,
            servicePort=ref,
            serviceProtocol=sp_proto,
            carried=list(carried),
        )
    if len(carried) == 2:
        same = {str(p.protocol).upper(): p for p in svc.ports if p.port == sp.port}
        if not {"TCP", "UDP"} <= set(same):
            c.f.add(
                "SERVICE_PROTOCOL_MISMATCH",
                "warning",
                f"the target group carries TCP and UDP, but Service {svc.key} has no "
                f"{'UDP' if 'UDP' not in same else 'TCP'} port {sp.port} next to the {sp_proto} one",
                None,
                servicePort=ref,
            )
        elif c.target_type == "instance" and same["TCP"].node_port != same["UDP"].node_port:
            c.f.add(
                "SERVICE_PROTOCOL_MISMATCH",
                "warning",
                f"Service {svc.key} port {sp.port}: the TCP and UDP entries have different NodePorts "
                f"({same['TCP'].node_port} and {same['UDP'].node_port}); instance targets register only one",
                None,
                servicePort=ref,
            )


def _finding_drift(c: _Ctx) -> None:
    tg, svc, sp = c.tg, c.service, c.sport
    if tg is None or svc is None or sp is None or not c.health_known:
        return
    if c.target_type == "ip":
        registered = {(_norm_ip(t.target_id) or t.target_id, t.port) for t in c.targets}
        expected: set[tuple[str, int | None]] = set()
        for eps in c.ix.slices_by_service.get((svc.namespace, svc.name), ()):
            ports = [p.port for p in eps.ports if (p.name or None) == (sp.name or None)]
            for ep in eps.endpoints:
                if ep.ready is False or ep.terminating:
                    continue
                for address in ep.addresses:
                    for port in ports:
                        expected.add((_norm_ip(address) or address, port))
        fmt = lambda pair: f"{pair[0]}:{pair[1]}"  # noqa: E731
    elif c.target_type == "instance":
        selector = (
            ((c.b.raw or {}).get("spec") or {}).get("nodeSelector") if isinstance(c.b.raw, dict) else None
        )
        if isinstance(selector, dict) and selector.get("matchExpressions"):
            return
        match_labels = (selector or {}).get("matchLabels") or {} if isinstance(selector, dict) else {}
        registered = {(t.target_id, None) for t in c.targets}
        expected = set()
        for node in c.ix.inv.nodes.values():
            labels = node.labels or {}
            if not node.ready or not node.instance_id:
                continue
            if (
                any(k in labels for k in _EXCLUDED_NODE_LABELS)
                or labels.get("eks.amazonaws.com/compute-type") == "fargate"
            ):
                continue
            if any(labels.get(k) != v for k, v in match_labels.items()):
                continue
            expected.add((node.instance_id, None))
        fmt = lambda pair: str(pair[0])  # noqa: E731
    else:
        return
    missing = sorted(expected - registered, key=str)
    extra = sorted(registered - expected, key=str)
    if not missing and not extra:
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} ready endpoint(s) not registered ({_short(map(fmt, missing), 5)})")
    if extra:
        parts.append(
            f"{len(extra)} registered target(s) with no ready endpoint ({_short(map(fmt, extra), 5)})"
        )
    c.f.add(
        "TARGET_DRIFT",
        "warning",
        "registered targets and ready endpoints differ: " + "; ".join(parts),
        None,
        notRegistered=[fmt(x) for x in missing[:50]],
        notReady=[fmt(x) for x in extra[:50]],
    )


# --- active probes ------------------------------------------------------------------------------

_PROBE_LABELS = {"tcp": "TCP connect", "dns": "DNS", "udp": "UDP payload"}


def _findings_probes(c: _Ctx) -> None:
    """Disagreements between a protocol's verdict and the latest active probe of it.

    Only conclusive probes count: ``failed`` against ``reachable`` and ``ok`` against ``blocked``
    (``partial`` already says some sources get through, and ``inconclusive``/``error`` prove
    nothing). The message and evidence avoid per-probe values (latency, time, resolved address),
    so a steady disagreement does not rewrite the stored result on every probe round.
    """
    probes = getattr(c.ix.inv, "probes", None) or {}
    if not probes:
        return
    for result in c.results:
        probe = probes.get((c.b.uid, result.protocol))
        if probe is None:
            continue
        label = _PROBE_LABELS.get(probe.kind, probe.kind)
        if probe.kind == "dns":
            label = f"DNS over {result.protocol}"
        target = f"{probe.address}:{probe.port}" if probe.port is not None else probe.address
        port = f" to port {result.port}" if result.port is not None else ""
        evidence = {
            "probeKind": probe.kind,
            "probeStatus": probe.status,
            "probeTarget": target,
            "explicitAddress": probe.explicit,
            "verdict": result.verdict,
        }
        if result.verdict == "reachable" and probe.status == "failed":
            causes = [
                "network ACLs (return traffic on ephemeral ports is not judged, and ACLs may be missing "
                "from the data)",
            ]
            lbs = [c.ix.inv.load_balancers.get(arn) for arn in c.lbs_by_proto.get(result.protocol, ())]
            lb_sgs = sorted({sg for lb in lbs if lb is not None for sg in lb.security_groups})
            if lb_sgs:
                causes.append(f"the load balancer's own security group inbound rules ({', '.join(lb_sgs)})")
            else:
                causes.append("the load balancer's own security group inbound rules, if it has any")
            causes += [
                "nothing listening on the targets (process down, wrong port)",
                "the probe's network position is not a client range (no route from the worker to the "
                "load balancer, or a firewall on the way)",
                "the controller has not yet reconciled (targets still registering)",
                "stale data (rules removed since the last poll)",
            ]
            c.f.add(
                "PROBE_FAILS_WHILE_REACHABLE",
                "warning",
                f"static analysis says {result.protocol}{port} is reachable, but a {label} probe from the "
                f"worker to {target} failed (a refused connection points to nothing listening, a timeout "
                "to traffic dropped on the way). Likely causes: " + "; ".join(causes) + ".",
                result.protocol,
                **evidence,
            )
        elif result.verdict == "blocked" and probe.status == "ok":
            causes = [
                "the probe runs from the worker's network position (inside the VPC or an equivalent "
                "network), which the rules may admit where the expected sources are not: real clients "
                "may still be blocked",
                "the client ranges are configured too narrowly or wrongly (the "
                f"{m.CLIENT_CIDRS_ANNOTATION} annotation or the cluster's client networks), so the "
                "verdict judges sources that are not the real clients",
                "stale data (rules added since the last poll)",
            ]
            if probe.explicit:
                causes.append(
                    f"the probe targets a configured address ({target}), which may not go through this "
                    "binding's load balancer and targets"
                )
            c.f.add(
                "PROBE_SUCCEEDS_WHILE_BLOCKED",
                "warning",
                f"static analysis says {result.protocol}{port} is blocked, but a {label} probe from the "
                f"worker to {target} succeeded. Likely causes: " + "; ".join(causes) + ".",
                result.protocol,
                **evidence,
            )
