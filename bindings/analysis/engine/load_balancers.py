"""The load-balancer part of `InventoryIndex`: listeners, the load balancer's own security groups
(inbound per listener port, outbound per target), its private addresses and default client ranges."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from .. import model as m
from ..netset import NetSet, parse_network, union_all
from .common import _CARRIES, _V4_LAST, _V6_LAST, UNKNOWN_CLIENTS, _cidrs, _host_cidr, _ip_key, _lb_suffix
from .compiled import _Rule
from .targets import _TargetIndex


class _LoadBalancerIndex(_TargetIndex):
    """Listeners by target group and load balancer, and what a load balancer's own security groups
    say: inbound rules per listener port, outbound rules per target, default client ranges."""

    def _index_listeners(self, inv: m.Inventory) -> None:
        listeners_by_tg: dict[str, list[m.Listener]] = defaultdict(list)
        listeners_by_lb: dict[str, list[m.Listener]] = defaultdict(list)
        # Listeners whose forward actions were not collected: they may forward to any group.
        unparsed_by_lb: dict[str, list[m.Listener]] = defaultdict(list)
        for listener in inv.listeners or ():
            lb_arn = listener.load_balancer_arn
            listeners_by_lb[lb_arn].append(listener)
            arns = listener.target_group_arns
            if not arns:
                unparsed_by_lb[lb_arn].append(listener)
            for arn in arns or ():
                listeners_by_tg[arn].append(listener)
        self.listeners_by_tg = listeners_by_tg
        self.listeners_by_lb = listeners_by_lb
        self.unparsed_listeners_by_lb = unparsed_by_lb

    def _index_load_balancers(self, inv: m.Inventory) -> None:
        self._lb_private: dict[str, tuple[NetSet, str]] = {}
        self._lb_rules: dict[tuple[str, bool], tuple[tuple[str, ...], tuple[_Rule, ...]] | None] = {}
        self._egress_rules: dict[tuple[str, str, int], tuple[tuple[str, Any], ...]] = {}
        self._egress_none: set[tuple[str, str, int]] = set()
        self._egress_open: dict[tuple[tuple[str, ...], str, int], frozenset[int]] = {}
        # (LB, protocol, listener port) -> positions of the LB's inbound rules matching it.
        self._front_by_port: dict[tuple[str, str, int], tuple[int, ...]] = {}
        # (LB, protocol) -> those positions for any listener port when no rule depends on the port,
        # None when one does; then (LB, protocol, listener ports) -> positions (`lb_inbound_hits`).
        self._front_any_port: dict[tuple[str, str], tuple[int, ...] | None] = {}
        self._front_by_ports: dict[tuple[str, str, tuple[int, ...]], tuple[int, ...]] = {}
        self._lb_sg_problems: dict[str, tuple[m.Problem, ...]] = {}
        self._addresses: dict[str, Any] = {}
        # Most load balancers have no security groups: skip their checks without a lookup.
        self.lbs_with_sgs = frozenset(arn for arn, lb in inv.load_balancers.items() if lb.security_groups)
        # Of those, the ones whose groups were all collected: `lb_rules` is not None exactly for
        # these (inbound and outbound alike), so "any LB to judge?" is one set operation.
        groups = inv.security_groups
        self.lbs_with_rules = frozenset(
            arn
            for arn in self.lbs_with_sgs
            if all(groups.get(g) is not None for g in inv.load_balancers[arn].security_groups or ())
        )
        # Load balancers whose default client ranges could not be known, and why.
        self.unknown_clients: dict[str, str] = {}

    def lb_rules(self, lb_arn: str, *, egress: bool) -> tuple[tuple[str, ...], tuple[_Rule, ...]] | None:
        """(security group ids, their inbound or outbound rules) of a load balancer that has security
        groups, all of them collected; None otherwise (no groups to judge, or not known)."""
        key = (lb_arn, egress)
        if key in self._lb_rules:
            return self._lb_rules[key]
        lb = self.inv.load_balancers.get(lb_arn)
        sg_ids = tuple(lb.security_groups or ()) if lb is not None else ()
        groups = [self.inv.security_groups.get(sg_id) for sg_id in sg_ids]
        found = None
        if sg_ids and all(g is not None for g in groups):
            found = (
                sg_ids,
                tuple(
                    _Rule(g.id, r, self.inv.prefix_lists)
                    for g in groups
                    if g is not None
                    for r in ((g.egress if egress else g.ingress) or ())
                ),
            )
        self._lb_rules[key] = found
        return found

    def lb_inbound_hits(
        self, lb_arn: str, proto: str, ports: tuple[int, ...], rules: tuple[_Rule, ...]
    ) -> tuple[int, ...]:
        """Positions (sorted) of the load balancer's inbound `rules` that match `proto` (lower case)
        on any of the listener `ports` (sorted, not empty). Worked out once per (LB, protocol) when
        none of its rules depends on the port (all ports, or another protocol), else once per
        (LB, protocol, ports): never per binding or target."""
        key = (lb_arn, proto)
        try:
            any_port = self._front_any_port[key]
        except KeyError:
            any_port = ()
            for i, r in enumerate(rules):
                if r.proto != proto and r.proto != "-1":
                    continue
                if r.lo > 0 or r.hi < 65535:
                    any_port = None
                    break
                any_port += (i,)
            self._front_any_port[key] = any_port
        if any_port is not None and ports[0] >= 0 and ports[-1] <= 65535:
            return any_port
        long_key = (lb_arn, proto, ports)
        found = self._front_by_ports.get(long_key)
        if found is None:
            found = self._front_by_ports[long_key] = tuple(
                i for i, r in enumerate(rules) if any(r.matches(proto, p) for p in ports)
            )
        return found

    def lb_egress_allows(
        self, lb_arn: str, proto: str, port: int, dest: str | None, dest_sgs: tuple[str, ...]
    ) -> bool | None:
        """Do the load balancer's outbound rules let `proto`/`port` out to `dest` (an address) or to
        a member of `dest_sgs`? None when the LB has no collected groups. On the judging path of
        every target behind an LB with groups: the matching rules are worked out once per LB,
        protocol and port, and addresses are parsed once."""
        key = (lb_arn, proto, port)
        matching = self._egress_rules.get(key)
        if matching is None:
            matching = self._egress_matching(key)
        if key in self._egress_none:
            return None
        ip = self._addresses.get(dest) if dest else None
        if dest and ip is None and dest not in self._addresses:
            ip = self._addresses[dest] = _ip_key(dest)
        for kind, what in matching:
            if kind == "cidr":
                if ip is not None and ip[0] == what[0] and what[1] <= ip[1] <= what[2]:
                    return True
            elif kind == "security_group":
                if what in dest_sgs:
                    return True
            else:
                return True  # an unknown prefix list: it may hold the address, so no refusal is claimed
        return False

    def lb_egress_open(self, lbs: tuple[str, ...], proto: str, port: int) -> frozenset[int]:
        """The address families to which every load balancer of `lbs` lets `proto`/`port` out to
        any address (a rule open to the whole family, a prefix list, or no groups to judge): a
        target of those families needs no check of its own. Cached per (LBs, protocol, port)."""
        key = (lbs, proto, port)
        found = self._egress_open.get(key)
        if found is None:
            families = {4, 6}
            for lb_arn in lbs:
                one = (lb_arn, proto, port)
                matching = self._egress_rules.get(one)
                if matching is None:
                    matching = self._egress_matching(one)
                if one in self._egress_none:
                    continue
                open_to: set[int] = set()
                for kind, what in matching:
                    if kind == "cidr":
                        if what[1] == 0 and what[2] == (_V4_LAST if what[0] == 4 else _V6_LAST):
                            open_to.add(what[0])
                    elif kind != "security_group":
                        open_to.update((4, 6))
                families &= open_to
            found = self._egress_open[key] = frozenset(families)
        return found

    def _egress_matching(self, key: tuple[str, str, int]) -> tuple[tuple[str, Any], ...]:
        """The outbound rules of load balancer `key[0]` matching protocol and port `key[1:]`,
        cidrs as (version, first, last) integers; registers LBs with nothing to judge."""
        lb_arn, proto, port = key
        found = self.lb_rules(lb_arn, egress=True)
        matching: tuple[tuple[str, Any], ...]
        if found is None:
            matching = self._egress_rules[key] = ()
            self._egress_none.add(key)
        else:
            rules: list[tuple[str, Any]] = []
            for r in found[1]:
                if not r.matches(proto, port):
                    continue
                if r.resolved:  # a CIDR, or a prefix list's entries
                    for cidr in _cidrs(r.cidr):
                        net = parse_network(cidr)
                        if net is not None:  # as (version, first, last) integers: compared fast
                            rules.append(
                                (
                                    "cidr",
                                    (net.version, int(net.network_address), int(net.broadcast_address)),
                                )
                            )
                else:
                    rules.append((r.kind, r.source))
            matching = self._egress_rules[key] = tuple(rules)
        return matching

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

    def lb_front_door(self, lb_arn: str, tg: m.TargetGroup, proto: str) -> tuple[NetSet, NetSet, str] | None:
        """What the inbound rules of a load balancer with security groups say about its clients on
        the listener ports that forward `proto` to `tg`: (every CIDR they admit, the CIDRs of its
        rules narrower than /0, where from). None when it has no groups, they were not collected,
        or a matching rule admits a security group or prefix list (clients the CIDRs do not name)."""
        found = self.lb_rules(lb_arn, egress=False)
        if found is None:
            return None
        sg_ids, rules = found
        tg_proto = str(tg.protocol).upper()
        wanted = {
            (carried.lower(), li.port)
            for li in self.listeners_by_tg.get(tg.arn, ())
            if li.load_balancer_arn == lb_arn and isinstance(li.port, int)
            for carried in _CARRIES.get((str(li.protocol).upper(), tg_proto), ())
            if not proto or carried == proto
        }
        matching = [r for r in rules if any(r.matches(p, port) for p, port in wanted)]
        if not matching or any(not r.resolved for r in matching):
            return None
        every = union_all(r.cidr for r in matching)
        specific = union_all(r.cidr for r in matching if not r.broad)
        return (
            every,
            specific,
            f"the inbound rules of the load balancer's security group(s) {', '.join(sg_ids)}",
        )

    def default_clients(self, lb_arn: str, tg: m.TargetGroup, proto: str = "") -> tuple[NetSet, str]:
        """The default client ranges: the scheme's (internet-facing: everywhere; internal: the
        VPC); for a load balancer with security groups, the part of it their inbound rules admit
        plus the specific ranges they name outside it (on-premises clients of an internal LB) —
        a rule open to everything does not widen the scheme's range. When nothing decides them,
        every address, marked unknown: guessing would judge the rules against the wrong sources
        (`_judge_protocol`)."""
        lb = self.inv.load_balancers.get(lb_arn)
        default: tuple[NetSet, str] | None = None
        why = ""
        if lb is None:
            why = f"load balancer {lb_arn} was not collected (its scheme decides the client ranges)"
        elif str(lb.scheme).lower() == "internal":
            vpc_id = lb.vpc_id or tg.vpc_id or ""
            vpc = self.inv.vpcs.get(vpc_id)
            if vpc is not None:
                default = NetSet.from_cidrs((*vpc.cidrs, *vpc.ipv6_cidrs)), f"VPC {vpc.id} CIDRs (internal)"
            else:
                why = (
                    f"VPC {vpc_id or '(unknown)'} was not collected "
                    "(an internal load balancer's clients are its CIDRs)"
                )
        else:
            everything = ["0.0.0.0/0"]
            if "dualstack" in str(lb.ip_address_type or "").lower():
                everything.append("::/0")
            default = NetSet.from_cidrs(everything), "the internet (internet-facing)"
        front = self.lb_front_door(lb_arn, tg, proto) if lb is not None else None
        if front is not None:
            every, specific, origin = front
            clients = (every & default[0]) | (specific - default[0]) if default is not None else specific
            if clients:
                if default is not None and clients == default[0]:
                    return default
                return clients, origin + (f", within {default[1]}" if default is not None else "")
        if default is not None:
            return default
        self.unknown_clients[lb_arn] = why
        return NetSet.from_cidrs(("0.0.0.0/0", "::/0")), f"{UNKNOWN_CLIENTS}{why}"

    def lb_sg_problems(self, lb_arn: str) -> tuple[m.Problem, ...]:
        """`sg_problems` of a load balancer's security groups, cached per LB (asked per binding)."""
        found = self._lb_sg_problems.get(lb_arn)
        if found is None:
            lb = self.inv.load_balancers.get(lb_arn)
            groups = tuple(lb.security_groups or ()) if lb is not None else ()
            found = self._lb_sg_problems[lb_arn] = self.sg_problems(groups) if groups else ()
        return found
