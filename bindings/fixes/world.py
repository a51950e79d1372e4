"""One binding's world as a fix sees it: the inventory indexed once (`FixIndex`), and per binding
its targets, load balancers, client and subnet ranges, ports and security groups (`World`).

`PlanPart` is what every part of the plan shares: the world it reads, the codes it may fix, and
the fix's explanation and warnings (the same lists for every part, so the texts keep the order in
which the parts ran).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bindings.analysis import model as m
from bindings.analysis.engine import LISTENER_CARRIES, controller_security_group
from bindings.analysis.netset import parse_network
from bindings.analysis.rules import rule_matches

from .model import Purpose
from .peers import Peer, canonical, family, has_equivalent, netset
from .text import unique


class FixIndex:
    """What fix generation looks up per binding, indexed once per inventory.

    Every binding's fix needs the pods by address, its listeners and the binding itself; scanning
    the inventory for them per binding made a run quadratic (10,000 bindings, half broken: the
    live poll's fixes alone took minutes). Build one index per inventory and pass it to every
    `generate_fix` of that inventory; the index does not follow later changes to the inventory.
    """

    __slots__ = (
        "acls_by_id",
        "admitted",
        "bindings_by_key",
        "bindings_by_name",
        "equivalent",
        "listeners_by_lb",
        "listeners_by_tg",
        "pods_by_ip",
    )

    def __init__(self, inv: m.Inventory) -> None:
        # Answers about security-group rules, shared by every binding on the same groups (a few
        # node groups serve thousands of bindings): (group(s), protocol, ports, peer) -> bool.
        self.equivalent: dict[tuple[str, str, int, int, Peer], bool] = {}
        self.admitted: dict[tuple[tuple[str, ...], str, int, Peer], bool] = {}
        self.acls_by_id: dict[str, m.NetworkAcl] = {a.id: a for a in inv.network_acls or ()}
        # First pod in key order wins an address, as the per-binding scan did.
        self.pods_by_ip: dict[str, m.Pod] = {}
        for key in sorted(inv.pods):
            pod = inv.pods[key]
            for ip in pod.ips or ():
                self.pods_by_ip.setdefault(str(ip), pod)
        # Listeners forwarding to a target group by ARN; the ones naming no target group belong
        # to every target group of their load balancer (`World._carrying_lbs`).
        self.listeners_by_tg: dict[str, list[m.Listener]] = {}
        self.listeners_by_lb: dict[str, list[m.Listener]] = {}
        for listener in inv.listeners or ():
            if listener.target_group_arns:
                for arn in dict.fromkeys(listener.target_group_arns):
                    self.listeners_by_tg.setdefault(arn, []).append(listener)
            else:
                self.listeners_by_lb.setdefault(listener.load_balancer_arn, []).append(listener)
        # First binding wins, as in the scan `_find_binding` replaced.
        self.bindings_by_key: dict[tuple[str, str, str], m.Binding] = {}
        self.bindings_by_name: dict[tuple[str, str], m.Binding] = {}
        for b in inv.bindings:
            if b.uid:
                self.bindings_by_key.setdefault((b.uid, b.namespace, b.name), b)
            self.bindings_by_name.setdefault((b.namespace, b.name), b)

    def binding(self, result: m.BindingResult) -> m.Binding | None:
        found = self.bindings_by_key.get((result.uid, result.namespace, result.name)) if result.uid else None
        return found if found is not None else self.bindings_by_name.get((result.namespace, result.name))

    def listeners_of(self, tg: m.TargetGroup) -> list[m.Listener]:
        """The listeners that may forward to `tg`: by ARN, or with no target group on its LBs."""
        out = list(self.listeners_by_tg.get(tg.arn, ()))
        for lb_arn in dict.fromkeys(tg.load_balancer_arns or ()):
            out.extend(self.listeners_by_lb.get(lb_arn, ()))
        return out


@dataclass(slots=True)
class Target:
    """One target (address or instance, and port) with its ENI, groups and the engine's verdicts."""

    target_id: str
    port: int | None
    eni: str | None
    sg_ids: tuple[str, ...]
    admitted: dict[str, bool | None]  # protocol -> engine verdict for this target
    pod: m.Pod | None = None


@dataclass(slots=True)
class Need:
    """A (protocol, port) that must be admitted on some targets from some peers."""

    protocol: str  # "TCP" | "UDP"
    port: int
    peers: tuple[Peer, ...]
    purpose: Purpose
    # None: a need of a target group without targets (its port from the listener).
    targets: list[Target | None]
    # What must be admitted (the health check needs only the LB's subnets, even when it shares
    # the broader client peers); empty = the peers themselves.
    cover: tuple[Peer, ...] = ()

    def uncovered(self, covered: Callable[[Peer], bool]) -> list[Peer]:
        """The peers to write for what `covered` does not admit: a preferred peer holding it, else itself."""
        out: list[Peer] = []
        for need in self.cover or self.peers:
            if covered(need):
                continue
            home = next(
                (
                    p
                    for p in self.peers
                    if p == need
                    or (p[0] == need[0] == "cidr" and netset((p[1],)).contains(netset((need[1],))))
                ),
                need,
            )
            if home not in out:
                out.append(home)
        return out


# What the networking gains: each need with the peers it lacked.
Added = list[tuple[Need, list[Peer]]]


class World:
    """One binding's world, resolved once: what every part of its plan looks up."""

    def __init__(
        self,
        inv: m.Inventory,
        result: m.BindingResult,
        binding: m.Binding,
        tg: m.TargetGroup,
        index: FixIndex | None = None,
    ):
        self.inv = inv
        self.index = index if index is not None else FixIndex(inv)
        self.result = result
        self.b = binding
        self.tg = tg
        self.target_type = result.target_type or binding.target_type or tg.target_type
        self.cluster_tag = f"kubernetes.io/cluster/{inv.cluster}"
        self.service = inv.services.get(f"{binding.namespace}/{binding.service_name}")
        self.offered = [p for p in result.protocols if p.verdict != "not_offered"]
        self.targets = self._targets()
        self.families = self._families()
        self.lbs = {p.protocol: self._carrying_lbs(p.protocol) for p in self.offered}

    def _targets(self) -> list[Target]:
        pods_by_ip = self.index.pods_by_ip
        found: dict[tuple[str, int | None], Target] = {}
        for result in self.result.protocols:
            for tv in result.targets:
                key = (tv.target_id, tv.port)
                target = found.get(key)
                if target is None:
                    pod = pods_by_ip.get(tv.target_id) if self.target_type == "ip" else None
                    target = found[key] = Target(
                        tv.target_id, tv.port, tv.network_interface_id, tuple(tv.security_group_ids), {}, pod
                    )
                target.admitted[result.protocol] = tv.admitted
        return list(found.values())

    def _families(self) -> set[int]:
        if self.target_type == "instance":
            return {6 if str(self.tg.ip_address_type or "").lower() == "ipv6" else 4}
        families: set[int] = set()
        for t in self.targets:
            try:
                families.add(ipaddress.ip_address(t.target_id).version)
            except ValueError:
                continue
        return families or {6 if str(self.tg.ip_address_type or "").lower() == "ipv6" else 4}

    def _carrying_lbs(self, proto: str) -> list[str]:
        tg_proto = str(self.tg.protocol).upper()
        lbs: set[str] = set()
        for listener in self.index.listeners_of(self.tg):
            forwards = self.tg.arn in (listener.target_group_arns or ()) or (
                not listener.target_group_arns and listener.load_balancer_arn in self.tg.load_balancer_arns
            )
            if forwards and proto in LISTENER_CARRIES.get(str(listener.protocol).upper(), {}).get(
                tg_proto, ()
            ):
                lbs.add(listener.load_balancer_arn)
        return sorted(lbs)

    def in_families(self, cidrs: Iterable[str]) -> list[str]:
        return unique(canonical(c) for c in cidrs if family(c) in self.families)

    def lb_subnet_cidrs(self, lb_arn: str) -> tuple[list[str], str]:
        """Where the load balancer's own packets (health checks, non-preserved traffic) come from."""
        lb = self.inv.load_balancers.get(lb_arn)
        cidrs: list[str] = []
        if lb is not None:
            for zone in lb.zones or ():
                subnet = self.inv.subnets.get(zone.subnet_id or "")
                if subnet is not None:
                    cidrs.extend(c for c in (subnet.cidr, *(subnet.ipv6_cidrs or ())) if c)
        cidrs = self.in_families(cidrs)
        if cidrs:
            return cidrs, "the load balancer's subnets"
        vpc = self.inv.vpcs.get((lb.vpc_id if lb else None) or self.tg.vpc_id or "")
        if vpc is not None:
            cidrs = self.in_families((*vpc.cidrs, *vpc.ipv6_cidrs))
            if cidrs:
                return cidrs, f"the CIDRs of VPC {vpc.id}"
        hosts = []
        for zone in (lb.zones if lb else ()) or ():
            for address in zone.addresses or ():
                network = parse_network(address)
                if network is not None:
                    hosts.append(str(network))
        return self.in_families(hosts), "the load balancer's addresses"

    def client_cidrs(self, lb_arn: str) -> tuple[list[str], str]:
        """The client ranges, most specific source first (docs/DESIGN.md "Expected sources")."""
        valid = [c for c in self.b.client_cidrs or () if parse_network(c) is not None]
        if valid:
            return [canonical(c) for c in valid], f"the annotation {m.CLIENT_CIDRS_ANNOTATION}"
        valid = [c for c in self.inv.client_cidrs or () if parse_network(c) is not None]
        if valid:
            return [canonical(c) for c in valid], "the cluster's client ranges"
        lb = self.inv.load_balancers.get(lb_arn)
        if lb is not None and str(lb.scheme).lower() == "internal":
            vpc = self.inv.vpcs.get(lb.vpc_id or self.tg.vpc_id or "")
            if vpc is not None:
                return [canonical(c) for c in (*vpc.cidrs, *vpc.ipv6_cidrs)], (
                    f"the default for an internal load balancer (VPC {vpc.id})"
                )
            cidrs, _ = self.lb_subnet_cidrs(lb_arn)
            return cidrs, "the default for an internal load balancer (its subnets; VPC not collected)"
        everything = ["0.0.0.0/0"]
        if lb is not None and "dualstack" in str(lb.ip_address_type or "").lower():
            everything.append("::/0")
        return everything, "the default for an internet-facing load balancer"

    def lb_groups(self, lb_arn: str) -> tuple[str, ...]:
        lb = self.inv.load_balancers.get(lb_arn)
        return tuple(lb.security_groups or ()) if lb is not None else ()

    def traffic_ports(self) -> list[int]:
        ports = sorted({t.port for t in self.targets if isinstance(t.port, int)})
        if ports:
            return ports
        return sorted({p.port for p in self.offered if isinstance(p.port, int)})

    def service_port_matches(self) -> list[m.ServicePort]:
        ref = self.b.service_port
        if self.service is None or ref is None or isinstance(ref, bool):
            return []
        if isinstance(ref, int):
            return [p for p in self.service.ports if p.port == ref]
        return [p for p in self.service.ports if p.name == ref]

    def named_port(self, target: Target | None, name: str) -> list[int]:
        """A named networking port as the controller resolves it: per pod container port."""
        pods = (
            [target.pod]
            if target is not None and target.pod is not None
            else [t.pod for t in self.targets if t.pod is not None]
        )
        return sorted(
            {cp.container_port for pod in pods for cp in pod.container_ports or () if cp.name == name}
        )

    def listens_tcp_on(self, port: int) -> bool:
        """Do the targets accept TCP on `port` (so a TCP health check there means something)?"""
        if self.target_type == "instance":
            return self.service is not None and any(
                p.protocol.upper() == "TCP" and p.node_port == port for p in self.service.ports
            )
        pods = [t.pod for t in self.targets]
        if not pods or any(p is None for p in pods):
            return False
        return all(
            any(cp.container_port == port and str(cp.protocol).upper() == "TCP" for cp in pod.container_ports)
            for pod in pods
            if pod is not None
        )

    def controller_group(self, sg_ids: tuple[str, ...]) -> str | None:
        """The group the controller writes networking rules to on an ENI (§2.2), None if it can't."""
        choice = controller_security_group(
            sg_ids, self.inv.security_groups, self.inv.cluster, self.inv.eni_sg_tags
        )
        return choice if isinstance(choice, str) else None

    def write_group(self, sg_ids: tuple[str, ...]) -> str | None:
        """Where we write a rule ourselves: the controller's group, else the first of the groups
        it considered (several match), else a cluster-tagged one, else the first."""
        choice = controller_security_group(
            sg_ids, self.inv.security_groups, self.inv.cluster, self.inv.eni_sg_tags
        )
        if isinstance(choice, str):
            return choice
        if choice:
            return choice[0]
        tagged = [
            s
            for s in sg_ids
            if s in self.inv.security_groups and self.cluster_tag in (self.inv.security_groups[s].tags or {})
        ]
        candidates = tagged or list(sg_ids)
        return candidates[0] if candidates else None

    def admitted_now(self, sg_ids: tuple[str, ...], proto: str, port: int, peer: Peer) -> bool:
        """Do the ENI's groups (their union, as AWS evaluates) admit `proto`/`port` from `peer`?"""
        key = (sg_ids, proto, port, peer)
        known = self.index.admitted.get(key)
        if known is None:
            known = self.index.admitted[key] = self._admitted_now(sg_ids, proto, port, peer)
        return known

    def has_equivalent(self, sg_id: str, proto: str, lo: int, hi: int, peer: Peer) -> bool:
        """`has_equivalent` for a group of this inventory, remembered in the index."""
        key = (sg_id, proto, lo, hi, peer)
        known = self.index.equivalent.get(key)
        if known is None:
            known = self.index.equivalent[key] = has_equivalent(
                self.inv.security_groups.get(sg_id), proto, lo, hi, peer
            )
        return known

    def _admitted_now(self, sg_ids: tuple[str, ...], proto: str, port: int, peer: Peer) -> bool:
        cidrs: list[str] = []
        refs: set[str] = set()
        for sg_id in sg_ids:
            sg = self.inv.security_groups.get(sg_id)
            for rule in (sg.ingress if sg else ()) or ():
                if not rule_matches(rule.protocol, rule.from_port, rule.to_port, proto, port):
                    continue
                if rule.source_kind == "cidr":
                    cidrs.append(rule.source)
                elif rule.source_kind == "security_group":
                    refs.add(rule.source)
                elif rule.source_kind == "prefix_list" and rule.source in self.inv.prefix_lists:
                    cidrs.extend(self.inv.prefix_lists[rule.source].cidrs)
        if peer[0] == "sg":
            return peer[1] in refs
        return netset(tuple(cidrs)).contains(netset((peer[1],)))


class PlanPart:
    """One part of a binding's plan (see the module docstring)."""

    def __init__(self, world: World, fixable: set[str], explanation: list[str], warnings: list[str]) -> None:
        self.w = world
        self.fixable = fixable
        self.findings = world.result.findings
        self.explanation = explanation
        self.warnings = warnings
