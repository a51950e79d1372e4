"""Turn a binding's findings into the change that repairs them (DESIGN.md "Fix manifests").

Pure: no Django, no network, no clock. Input is the `Inventory` the analysis ran on and that
binding's `BindingResult`; output is a `Fix` holding plain data, rendered by `fix_to_dict` /
`fix_to_yaml` and checked by `apply_fix_to_inventory` + the analysis.

What the fix contains, in the order an SRE reaches for it:

1. The TGB itself (the primary lever): `spec.networking.ingress` covering every carried protocol
   on each target's traffic port, and TCP on the health-check port (nlb-udp-facts §3.4, §6).
   Peers: the load balancer's security group when it has one; otherwise the client ranges for
   traffic whose client IP is preserved, and the load balancer's subnets for everything else
   (health checks always). Existing rules that still work are kept; broken ones are repaired
   (`ports: []` creates no rule, §2.3; instance targets need the NodePort, [I#1712]; invalid peers
   make the controller fail the whole binding). A numeric `serviceRef.port` that names both a TCP
   and a UDP Service port becomes the named port (§2.6).
2. Security-group rules: the exact rules missing on the targets' security groups, as
   `aws ec2 authorize-security-group-ingress` commands and Terraform. They are *required* where the
   TGB is not the lever — the controller cannot choose a group (SECURITY_GROUP_TAG_AMBIGUOUS,
   §2.2) or has not applied networking that is already right (NETWORKING_NOT_RECONCILED) — and an
   *alternative* for operators who manage these rules outside the controller otherwise.
3. Health check: `aws elbv2 modify-target-group` when the check probes another port than the
   traffic and the targets also accept TCP on the traffic port.
4. The load balancer's own outbound rules, where they refuse traffic or health checks to targets:
   an egress rule on its first group to the targets' group (`direction: egress`), required.
5. Network ACL entries, where an ACL of the targets' subnet refuses what the security groups admit
   (inbound to the port, or the replies on ephemeral ports): one `allow` entry per refused CIDR,
   numbered just below the refusing entry so AWS evaluates it first
   (`aws ec2 create-network-acl-entry` and Terraform `aws_network_acl_rule`), required.
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Any, Literal

from bindings.analysis import model as m
from bindings.analysis.engine import LB_REFUSES_CLIENTS, LISTENER_CARRIES, controller_security_group
from bindings.analysis.netset import NetSet, parse_network
from bindings.analysis.rules import norm_proto, rule_matches, rule_port_range
from bindings.vocabulary import FIXABLE_CODES, Code

from . import render

# Marks analysis reasons about the load balancer's own security groups (engine `_LB_REFUSAL`).
_LB_MARK = " of load balancer "

RULE_LIMIT = 60  # AWS default quota: inbound rules per security group, per address family
TGB_API_VERSION = "elbv2.k8s.aws/v1beta1"
CHECKPOINT_ANNOTATIONS = frozenset(
    {
        "elbv2.k8s.aws/checkpoint",
        "elbv2.k8s.aws/checkpoint-timestamp",
        # kubectl's client-side bookkeeping: it embeds the *old* spec, so keeping it would make the
        # manifest claim an apply that never happened.
        "kubectl.kubernetes.io/last-applied-configuration",
    }
)
# Labels the controller puts on TGBs it generates from a Service or an Ingress: edits to those
# TGBs are overwritten at the next reconcile of their owner.
GENERATED_TGB_LABELS = ("service.k8s.aws/stack", "ingress.k8s.aws/stack")

# Network ACL entries one fix proposes at most: an ACL holds 20 entries per direction by default.
ACL_ENTRY_LIMIT = 20
_ACL_PROTOCOLS = {"tcp": "6", "udp": "17"}
_FINAL_ACL_RULE = 32767

_HEALTH_CHECK_OVER_TCP = frozenset({"TCP", "HTTP", "HTTPS"})

Peer = tuple[Literal["cidr", "sg"], str]


# --- the result types --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlannedRule:
    """One inbound security-group permission for one source, as we would write it."""

    security_group_id: str
    protocol: str  # "tcp" | "udp"
    from_port: int
    to_port: int
    peer_kind: Literal["cidr", "sg"]
    peer: str
    description: str
    # True: part of the fix (the TGB cannot produce it); False: an alternative to the manifest.
    required: bool
    network_interfaces: tuple[str, ...] = ()
    # "egress": an outbound rule (the load balancer's group to the targets); the peer is the
    # destination.
    direction: Literal["ingress", "egress"] = "ingress"

    def as_model(self) -> m.SecurityGroupRule:
        kind = "cidr" if self.peer_kind == "cidr" else "security_group"
        return m.SecurityGroupRule(
            self.protocol, self.from_port, self.to_port, kind, self.peer, self.description
        )


@dataclass(frozen=True, slots=True)
class PlannedAclEntry:
    """One network-ACL entry to create (DESIGN.md JSON `fix.networkAclEntries`)."""

    network_acl_id: str
    rule_number: int
    egress: bool
    protocol: str  # "6" | "17", as the ACL API spells it
    from_port: int
    to_port: int
    cidr: str
    action: str = "allow"

    def as_model(self) -> m.NetworkAclEntry:
        v6 = _family(self.cidr) == 6
        return m.NetworkAclEntry(
            self.rule_number,
            self.protocol,
            self.action,
            self.egress,
            cidr=None if v6 else self.cidr,
            ipv6_cidr=self.cidr if v6 else None,
            port_from=self.from_port,
            port_to=self.to_port,
        )


@dataclass(frozen=True, slots=True)
class HealthCheckChange:
    target_group_arn: str
    port: str  # the new HealthCheckPort: "traffic-port"
    command: str
    reason: str


@dataclass(slots=True)
class Fix:
    """Everything one binding's fix changes, with the texts that explain it."""

    cluster: str
    namespace: str
    name: str
    uid: str
    target_group_arn: str | None
    mode: Literal["networking", "security-groups", "health-check", "service-ref", "network-acl"]
    summary: str
    explanation: list[str]
    warnings: list[str]
    targets: tuple[str, ...]  # finding codes the fix repairs
    protocols: tuple[str, ...]  # carried protocols the fix turns `reachable`
    manifest: dict | None  # the full TGB, None when the TGB needs no change
    patch_body: dict | None
    kubectl_patch: str
    security_group_rules: tuple[PlannedRule, ...]
    security_group_commands: tuple[str, ...]
    terraform: str
    health_checks: tuple[HealthCheckChange, ...]
    rule_counts: dict[str, dict[str, Any]]
    manifest_errors: list[str] = field(default_factory=list)
    network_acl_entries: tuple[PlannedAclEntry, ...] = ()
    network_acl_commands: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


# --- small helpers -----------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """JSON-able copy of a decoded Kubernetes object (YAML may have produced dates)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


@lru_cache(maxsize=65536)
def _netset(cidrs: tuple[str, ...]) -> NetSet:
    """`NetSet.from_cidrs`, memoised: every fix asks about the same few peers and rule sources."""
    return NetSet.from_cidrs(cidrs)


@lru_cache(maxsize=65536)
def _family(cidr: str) -> int | None:
    network = parse_network(cidr)
    return network.version if network is not None else None


@lru_cache(maxsize=65536)
def _is_everything(cidr: str) -> bool:
    network = parse_network(cidr)
    return network is not None and network.prefixlen == 0


@lru_cache(maxsize=65536)
def _canonical(cidr: str) -> str:
    network = parse_network(cidr)
    return str(network) if network is not None else cidr


def _unique(items: Iterable[Any]) -> list[Any]:
    seen: set = set()
    out = []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


def _short(items: Iterable[object], limit: int = 6) -> str:
    listed = [str(i) for i in items]
    if len(listed) > limit:
        return ", ".join(listed[:limit]) + f" and {len(listed) - limit} more"
    return ", ".join(listed)


def _peer_entry(peer: Peer) -> dict:
    kind, value = peer
    return {"ipBlock": {"cidr": value}} if kind == "cidr" else {"securityGroup": {"groupID": value}}


def _peer_key(entry: dict) -> Peer | None:
    """The peer a valid `from` entry names, canonicalised; None when the entry is invalid."""
    if not isinstance(entry, dict):
        return None
    block, group = entry.get("ipBlock"), entry.get("securityGroup")
    if block is not None and group is not None:
        return None
    if isinstance(block, dict) and set(block) == {"cidr"}:
        cidr = block.get("cidr")
        if isinstance(cidr, str) and parse_network(cidr) is not None and cidr == cidr.strip():
            return ("cidr", _canonical(cidr))
        return None
    if isinstance(group, dict) and set(group) == {"groupID"}:
        group_id = group.get("groupID")
        if isinstance(group_id, str) and group_id:
            return ("sg", group_id)
    return None


# --- the binding's world, resolved once ---------------------------------------------------------


@dataclass(slots=True)
class _Target:
    target_id: str
    port: int | None
    eni: str | None
    sg_ids: tuple[str, ...]
    admitted: dict[str, bool | None]  # protocol -> engine verdict for this target
    pod: m.Pod | None = None


@dataclass(slots=True)
class _Need:
    """A (protocol, port) that must be admitted on some targets from some peers."""

    protocol: str  # "TCP" | "UDP"
    port: int
    peers: tuple[Peer, ...]
    purpose: Literal["traffic", "health check"]
    targets: list[_Target]
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
                    or (p[0] == need[0] == "cidr" and _netset((p[1],)).contains(_netset((need[1],))))
                ),
                need,
            )
            if home not in out:
                out.append(home)
        return out


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

    def __init__(self, inv: m.Inventory):
        # Answers about security-group rules, shared by every binding on the same groups (a few
        # node groups serve thousands of bindings): (group(s), protocol, ports, peer) -> bool.
        self.equivalent: dict[tuple, bool] = {}
        self.admitted: dict[tuple, bool] = {}
        self.acls_by_id: dict[str, m.NetworkAcl] = {a.id: a for a in inv.network_acls or ()}
        # First pod in key order wins an address, as the per-binding scan did.
        self.pods_by_ip: dict[str, m.Pod] = {}
        for key in sorted(inv.pods):
            pod = inv.pods[key]
            for ip in pod.ips or ():
                self.pods_by_ip.setdefault(str(ip), pod)
        # Listeners forwarding to a target group by ARN; the ones naming no target group belong
        # to every target group of their load balancer (`_World._carrying_lbs`).
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


class _World:
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

    def _targets(self) -> list[_Target]:
        pods_by_ip = self.index.pods_by_ip
        found: dict[tuple[str, int | None], _Target] = {}
        for result in self.result.protocols:
            for tv in result.targets:
                key = (tv.target_id, tv.port)
                target = found.get(key)
                if target is None:
                    pod = pods_by_ip.get(tv.target_id) if self.target_type == "ip" else None
                    target = found[key] = _Target(
                        tv.target_id, tv.port, tv.network_interface_id, tuple(tv.security_group_ids), {}, pod
                    )
                target.admitted[result.protocol] = tv.admitted
        return list(found.values())

    def _families(self) -> set[int]:
        if self.target_type == "instance":
            return {6 if str(self.tg.ip_address_type or "").lower() == "ipv6" else 4}
        families = set()
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

    # -- sources ---------------------------------------------------------------------------

    def in_families(self, cidrs: Iterable[str]) -> list[str]:
        return _unique(_canonical(c) for c in cidrs if _family(c) in self.families)

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
        """The client ranges, most specific source first (DESIGN.md "Expected sources")."""
        valid = [c for c in self.b.client_cidrs or () if parse_network(c) is not None]
        if valid:
            return [_canonical(c) for c in valid], f"the annotation {m.CLIENT_CIDRS_ANNOTATION}"
        valid = [c for c in self.inv.client_cidrs or () if parse_network(c) is not None]
        if valid:
            return [_canonical(c) for c in valid], "the cluster's client ranges"
        lb = self.inv.load_balancers.get(lb_arn)
        if lb is not None and str(lb.scheme).lower() == "internal":
            vpc = self.inv.vpcs.get(lb.vpc_id or self.tg.vpc_id or "")
            if vpc is not None:
                return [_canonical(c) for c in (*vpc.cidrs, *vpc.ipv6_cidrs)], (
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

    # -- ports -------------------------------------------------------------------------------

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

    def named_port(self, target: _Target | None, name: str) -> list[int]:
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

    # -- security groups -----------------------------------------------------------------------

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
        return (tagged or list(sg_ids) or [None])[0]

    def admitted_now(self, sg_ids: tuple[str, ...], proto: str, port: int, peer: Peer) -> bool:
        """Do the ENI's groups (their union, as AWS evaluates) admit `proto`/`port` from `peer`?"""
        key = (sg_ids, proto, port, peer)
        known = self.index.admitted.get(key)
        if known is None:
            known = self.index.admitted[key] = self._admitted_now(sg_ids, proto, port, peer)
        return known

    def has_equivalent(self, sg_id: str, proto: str, lo: int, hi: int, peer: Peer) -> bool:
        """`_has_equivalent` for a group of this inventory, remembered in the index."""
        key = (sg_id, proto, lo, hi, peer)
        known = self.index.equivalent.get(key)
        if known is None:
            known = self.index.equivalent[key] = _has_equivalent(
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
        return _netset(tuple(cidrs)).contains(_netset((peer[1],)))


# --- public API ---------------------------------------------------------------------------------


def _is_ambiguity(f: m.Finding) -> bool:
    protocols = f.evidence.get("protocols") if isinstance(f.evidence, dict) else None
    return (
        f.code == Code.SERVICE_PROTOCOL_MISMATCH
        and isinstance(protocols, list)
        and {"TCP", "UDP"} <= set(protocols)
    )


def _is_unresolved_named_port(f: m.Finding) -> bool:
    return f.code == Code.INVALID_SPEC and isinstance(f.evidence, dict) and bool(f.evidence.get("namedPort"))


def generate_fix(
    inventory: m.Inventory, result: m.BindingResult, index: FixIndex | None = None
) -> Fix | None:
    """The change that repairs `result`'s fixable findings, or None when nothing is fixable.

    For more than one result of the same inventory, pass one `FixIndex(inventory)` to every call
    (or use `generate_fixes`): without it each call indexes the whole inventory again.
    """
    codes = {f.code for f in result.findings}
    fixable = codes & FIXABLE_CODES
    if any(_is_unresolved_named_port(f) for f in result.findings):
        # The named port becomes its number in the manifest (`repaired_port`).
        fixable.add(Code.INVALID_SPEC)
    if Code.SERVICE_PROTOCOL_MISMATCH in fixable and not any(_is_ambiguity(f) for f in result.findings):
        fixable.discard(Code.SERVICE_PROTOCOL_MISMATCH)
    if not fixable:
        return None
    tg = inventory.target_groups.get(result.target_group_arn or "")
    if tg is None:
        return None
    index = index if index is not None else FixIndex(inventory)
    binding = index.binding(result)
    if binding is None:
        return None
    return _Planner(_World(inventory, result, binding, tg, index), fixable).plan()


def generate_fixes(inventory: m.Inventory, results: Iterable[m.BindingResult]) -> dict[str, Fix]:
    """The fix of every result that has one, keyed by binding uid; the inventory indexed once."""
    index = FixIndex(inventory)
    out: dict[str, Fix] = {}
    for result in results:
        fix = generate_fix(inventory, result, index)
        if fix is not None:
            out[result.uid] = fix
    return out


# --- planning -----------------------------------------------------------------------------------


class _Planner:
    def __init__(self, world: _World, fixable: set[str]):
        self.w = world
        self.fixable = fixable
        self.explanation: list[str] = []
        self.warnings: list[str] = []
        self.findings = world.result.findings
        self.patch_keys: tuple[str, ...] = ()
        self.acl_complete = True
        self.acl_planned = False

    # -- the pieces ------------------------------------------------------------------------

    def health_check_change(self) -> HealthCheckChange | None:
        w, tg = self.w, self.w.tg
        raw = str(tg.health_check_port or "traffic-port").strip()
        ports = w.traffic_ports()
        if not raw.isdigit() or not ports or all(p == int(raw) for p in ports):
            return None
        if not ({Code.HEALTH_CHECK_PORT_MISMATCH, Code.HEALTH_CHECK_BLOCKED} & self.fixable):
            return None
        if any(
            f.code == Code.HEALTH_CHECK_BLOCKED and f.evidence.get("networkAclDenials") for f in self.findings
        ):
            # A network ACL refuses the checks on their current port: the ACL entries fix that
            # port; moving the check would meet ACL entries nobody judged.
            return None
        if str(tg.health_check_protocol or "TCP").upper() != "TCP":
            return None  # an HTTP(S) check needs its path served on the new port: not ours to assume
        if not all(w.listens_tcp_on(p) for p in ports):
            return None
        what = "the NodePort" if w.target_type == "instance" else "the pods"
        blocked = Code.HEALTH_CHECK_BLOCKED in self.fixable
        reason = (
            f"health checks probe TCP {raw} but traffic goes to port {_short(ports)}; {what} also accept "
            f"TCP on {_short(ports)}, so checking the traffic port tests the process that serves the "
            "traffic"
            + (" and needs no extra rule for a separate port" if blocked else "")
            + ". If Terraform or CloudFormation owns this target group, change health_check.port "
            "there instead, or it will be reverted."
        )
        command = render.shell_join(
            [
                "aws elbv2 modify-target-group",
                render.shell_option("--target-group-arn", tg.arn),
                "--health-check-port traffic-port",
            ]
        )
        return HealthCheckChange(tg.arn, "traffic-port", command, reason)

    def service_ref_change(self) -> str | None:
        w = self.w
        if Code.SERVICE_PROTOCOL_MISMATCH not in self.fixable or not isinstance(w.b.service_port, int):
            return None
        carried = {p.protocol for p in w.result.protocols}
        if len(carried) != 1:
            return None  # TCP_UDP groups use both entries; the name would not remove the ambiguity
        proto = next(iter(carried))
        named = [p for p in w.service_port_matches() if str(p.protocol).upper() == proto and p.name]
        return named[0].name if len(named) == 1 else None

    def needs(self, hc_port_raw: str) -> list[_Need]:
        """Every (protocol, port, peers) the targets must admit, per §3.4."""
        w = self.w
        out: dict[tuple, _Need] = {}

        def add(proto: str, port: int, peers: Iterable[Peer], purpose, target: _Target, cover=()) -> None:
            peers = tuple(_unique(peers))
            if not peers:
                return
            key = (proto, port, peers, tuple(cover))
            need = out.get(key)
            if need is None:
                need = out[key] = _Need(proto, port, peers, purpose, [], tuple(cover))
            if target not in need.targets:
                need.targets.append(target)

        data_peers_by_lb: dict[str, list[tuple[Peer, ...]]] = {}
        for result in w.offered:
            for lb_arn in w.lbs.get(result.protocol, ()):
                groups = w.lb_groups(lb_arn)
                if groups:
                    peers: tuple[Peer, ...] = (("sg", groups[0]),)
                elif result.client_ip_preserved:
                    clients, origin = w.client_cidrs(lb_arn)
                    mine = w.in_families(clients)
                    if any(_family(c) not in w.families for c in clients):
                        # Clients of the other family reach these targets from the LB's own address.
                        mine += w.lb_subnet_cidrs(lb_arn)[0]
                    peers = tuple(("cidr", c) for c in _unique(mine))
                    broad = [c for c in mine if _is_everything(c)]
                    if broad:
                        self.warnings.append(
                            f"{result.protocol} is opened to {_short(broad)}: the client ranges "
                            "are the whole "
                            f"internet ({origin}) and the load balancer has no security group to filter "
                            f"them. Narrow them with the annotation {m.CLIENT_CIDRS_ANNOTATION} or the "
                            "cluster's client ranges if the clients are known."
                        )
                else:
                    peers = tuple(("cidr", c) for c in w.lb_subnet_cidrs(lb_arn)[0])
                data_peers_by_lb.setdefault(lb_arn, []).append(peers)
                for target in w.targets:
                    if isinstance(target.port, int):
                        add(result.protocol, target.port, peers, "traffic", target)
            if not w.targets and isinstance(result.port, int):
                for lb_arn in w.lbs.get(result.protocol, ()):
                    for peers in data_peers_by_lb.get(lb_arn, ()):
                        add(result.protocol, result.port, peers, "traffic", None)  # type: ignore[arg-type]

        hc_proto = str(w.tg.health_check_protocol or "TCP").upper()
        if w.tg.health_check_enabled is False or hc_proto not in _HEALTH_CHECK_OVER_TCP:
            return list(out.values())
        for lb_arn in sorted(data_peers_by_lb):
            groups = w.lb_groups(lb_arn)
            hc_cover: tuple[Peer, ...] = ()
            if groups:
                hc_peers: tuple[Peer, ...] = (("sg", groups[0]),)
            else:
                subnets = w.lb_subnet_cidrs(lb_arn)[0]
                hc_peers = hc_cover = tuple(("cidr", c) for c in subnets)
                # One rule instead of two when the client peers already hold the LB's subnets and
                # are not the whole internet (a TCP port never needs opening to everyone for a check).
                for peers in data_peers_by_lb[lb_arn]:
                    cidrs = [p[1] for p in peers if p[0] == "cidr"]
                    if (
                        cidrs
                        and not any(_is_everything(c) for c in cidrs)
                        and _netset(tuple(cidrs)).contains(_netset(tuple(subnets)))
                    ):
                        hc_peers = peers
                        break
            for target in w.targets:
                port = target.port if hc_port_raw == "traffic-port" else int(hc_port_raw)
                if isinstance(port, int):
                    add("TCP", port, hc_peers, "health check", target, hc_cover)
        return list(out.values())

    # -- the manifest ----------------------------------------------------------------------

    def base_manifest(self) -> dict:
        b = self.w.b
        raw = b.raw if isinstance(b.raw, dict) and b.raw else None
        if raw is not None:
            source_meta = raw.get("metadata") if isinstance(raw.get("metadata"), dict) else {}
            spec = copy.deepcopy(raw.get("spec")) if isinstance(raw.get("spec"), dict) else {}
        else:
            annotations = dict(b.annotations)
            if b.client_cidrs and m.CLIENT_CIDRS_ANNOTATION not in annotations:
                # The parsed client ranges come from this annotation; keep them with the object.
                annotations[m.CLIENT_CIDRS_ANNOTATION] = ",".join(b.client_cidrs)
            source_meta = {"name": b.name, "namespace": b.namespace, "annotations": annotations}
            spec = {"serviceRef": {"name": b.service_name, "port": b.service_port}}
            for key, value in (
                ("targetGroupARN", b.target_group_arn),
                ("targetGroupName", b.target_group_name),
                ("targetType", b.target_type),
                ("targetGroupProtocol", b.target_group_protocol),
                ("ipAddressType", b.ip_address_type),
            ):
                if value is not None:
                    spec[key] = value
        metadata: dict[str, Any] = {"name": b.name, "namespace": b.namespace}
        for key in ("labels", "annotations"):
            value = source_meta.get(key)
            if not isinstance(value, dict):
                continue
            kept = {
                str(k): v
                for k, v in value.items()
                if isinstance(v, str) and not (key == "annotations" and k in CHECKPOINT_ANNOTATIONS)
            }
            if kept:
                metadata[key] = kept
        return {
            "apiVersion": TGB_API_VERSION,
            "kind": "TargetGroupBinding",
            "metadata": _plain(metadata),
            "spec": _plain(spec),
        }

    def repaired_ingress(self, spec: dict) -> tuple[list[dict], bool]:
        """The existing ingress rules with broken parts repaired; (rules, whether anything changed)."""
        w = self.w
        networking = spec.get("networking")
        ingress = networking.get("ingress") if isinstance(networking, dict) else None
        if not isinstance(ingress, list):
            return [], False
        node_ports = {p.port: p.node_port for p in w.service_port_matches() if p.node_port}
        out: list[dict] = []
        changed = False
        for i, rule in enumerate(ingress):
            path = f"spec.networking.ingress[{i}]"
            if not isinstance(rule, dict):
                self.explanation.append(f"{path} is not a mapping; removed (the controller cannot read it).")
                changed = True
                continue
            peers = []
            for j, entry in enumerate(rule.get("from") if isinstance(rule.get("from"), list) else []):
                if _peer_key(entry) is None:
                    self.explanation.append(
                        f"{path}.from[{j}] is not a valid ipBlock.cidr or securityGroup.groupID; removed "
                        "(an invalid peer makes the controller fail the whole binding's networking)."
                    )
                    changed = True
                    continue
                peers.append(copy.deepcopy(entry))
            ports_value = rule.get("ports")
            ports = []
            if not isinstance(ports_value, list) or not ports_value:
                self.explanation.append(
                    f"{path} has `ports: []` (or none): the controller creates no rule at all for it "
                    "(aws-load-balancer-controller#4907); it gets explicit ports or is removed."
                )
                changed = True
            for k, entry in enumerate(ports_value if isinstance(ports_value, list) else []):
                entry = {} if entry is None else entry
                item = self.repaired_port(entry, f"{path}.ports[{k}]", node_ports)
                if item is None:
                    changed = True
                    continue
                if item != entry:
                    changed = True
                if item not in ports:
                    ports.append(item)
            if not peers:
                if rule.get("from"):
                    self.explanation.append(f"{path} has no valid peer left; removed.")
                changed = True
                continue
            repaired = {"from": peers, "ports": ports}
            if set(rule) - {"from", "ports"}:
                changed = True  # unknown keys: the API server prunes them anyway
            out.append(repaired)
        return out, changed

    def repaired_port(self, entry: Any, path: str, node_ports: dict[int, int]) -> dict | None:
        w = self.w
        if not isinstance(entry, dict) or set(entry) - {"protocol", "port"}:
            self.explanation.append(f"{path} is not a {{protocol, port}} mapping; removed.")
            return None
        protocol = entry.get("protocol", "TCP")
        if protocol not in ("TCP", "UDP"):
            self.explanation.append(f"{path}.protocol is not TCP or UDP; removed (the CRD rejects it).")
            return None
        port = entry.get("port")
        if port is None:
            return copy.deepcopy(entry)
        if isinstance(port, bool) or not isinstance(port, int | str) or port == "":
            self.explanation.append(f"{path}.port is not a number or a port name; removed.")
            return None
        if isinstance(port, int) and not 0 <= port <= 65535:
            self.explanation.append(f"{path}.port {port} is outside 0-65535; removed.")
            return None
        if w.target_type == "ip" and isinstance(port, str):
            return self.repaired_named_port(entry, port, path)
        if w.target_type == "instance":
            if isinstance(port, str):
                self.explanation.append(
                    f"{path}.port is the name {port!r}: with instance targets the controller rejects "
                    "named ports (they resolve only for pod endpoints); removed."
                )
                return None
            if port in node_ports and node_ports[port] != port:
                self.explanation.append(
                    f"{path} opens {protocol} {port}, the Service port; instance targets receive traffic on "
                    f"the NodePort, so it becomes {protocol} {node_ports[port]}."
                )
                return {**copy.deepcopy(entry), "port": node_ports[port]}
        return copy.deepcopy(entry)

    def repaired_named_port(self, entry: dict, name: str, path: str) -> dict | None:
        """A port name some target pod does not declare fails the controller's whole networking
        reconcile (computeNumericalPorts): it becomes the number it stands for — the one number
        the declaring pods give it, else the targets' single traffic port — or is removed (the
        needs then add the traffic ports by number)."""
        w = self.w
        pods = [t.pod for t in w.targets if t.pod is not None]
        if not pods or all(any(cp.name == name for cp in p.container_ports or ()) for p in pods):
            return copy.deepcopy(entry)
        numbers = w.named_port(None, name) or w.traffic_ports()
        if len(numbers) == 1:
            self.explanation.append(
                f"{path}.port is the name {name!r}, which some target pods do not declare: the "
                "controller fails the whole binding's networking on it, so none of its rules are "
                f"written; it becomes the number {numbers[0]}."
            )
            return {**copy.deepcopy(entry), "port": numbers[0]}
        self.explanation.append(
            f"{path}.port is the name {name!r}, which some target pods do not declare: the controller "
            "fails the whole binding's networking on it; removed (the traffic ports are added by number)."
        )
        return None

    def declared(
        self, rules: list[dict], proto: str, port: int, target: _Target | None
    ) -> tuple[NetSet, set[str]]:
        """What the (repaired) networking already declares for `proto`/`port`: CIDRs and groups."""
        cidrs: list[str] = []
        groups: set[str] = set()
        for rule in rules:
            hit = False
            for entry in rule["ports"]:
                if entry.get("protocol", "TCP") != proto:
                    continue
                value = entry.get("port")
                if (
                    value is None
                    or value == port
                    or (isinstance(value, str) and port in self.w.named_port(target, value))
                ):
                    hit = True
                    break
            if not hit:
                continue
            for peer in rule["from"]:
                key = _peer_key(peer)
                if key is None:
                    continue
                if key[0] == "cidr":
                    cidrs.append(key[1])
                else:
                    groups.add(key[1])
        return _netset(tuple(cidrs)), groups

    def merge(
        self, rules: list[dict], needs: list[_Need]
    ) -> tuple[list[dict], list[tuple[_Need, list[Peer]]]]:
        """Add what `needs` lack to `rules`: into a rule with the same peers, else a new rule."""
        added: list[tuple[_Need, list[Peer]]] = []
        groups: dict[tuple[Peer, ...], list[dict]] = {}
        # Only a named port makes what is declared depend on the target (its pod's ports); else
        # the first target answers for all of them.
        per_target = any(isinstance(e.get("port"), str) for r in rules for e in r["ports"])
        for need in needs:
            missing: list[Peer] = []
            targets = need.targets or [None]
            for target in targets if per_target else targets[:1]:
                cidrs, sgs = self.declared(rules, need.protocol, need.port, target)
                for peer in need.uncovered(
                    lambda p, cidrs=cidrs, sgs=sgs: (
                        p[1] in sgs if p[0] == "sg" else cidrs.contains(_netset((p[1],)))
                    )
                ):
                    if peer not in missing:
                        missing.append(peer)
            if not missing:
                continue
            added.append((need, missing))
            entry = {"protocol": need.protocol, "port": need.port}
            bucket = groups.setdefault(tuple(missing), [])
            if entry not in bucket:
                bucket.append(entry)
        for peers, entries in groups.items():
            wanted = set(peers)
            home = next(
                (r for r in rules if {_peer_key(p) for p in r["from"]} == wanted),
                None,
            )
            if home is None:
                rules.append({"from": [_peer_entry(p) for p in peers], "ports": list(entries)})
            else:
                home["ports"].extend(e for e in entries if e not in home["ports"])
        return [r for r in rules if r["ports"]], added

    # -- the security groups -------------------------------------------------------------------

    def description(self, proto: str, port: int) -> str:
        b = self.w.b
        return render.aws_description(f"binding-health: {b.namespace}/{b.name} {proto.lower()} {port}")

    def missing_rules(self, needs: list[_Need], hc_admitted: bool | None) -> list[PlannedRule]:
        """Rules no security group of a target ENI holds yet, for every need: exactly what is missing."""
        w = self.w
        planned: dict[tuple, list[_Target]] = {}
        for need in needs:
            # What is uncovered depends on the target's groups only; targets mostly share them.
            uncovered: dict[tuple[str, ...], list[Peer]] = {}
            for target in need.targets:
                if target is None or not target.eni or not target.sg_ids:
                    continue
                if need.purpose == "traffic" and target.admitted.get(need.protocol) is True:
                    continue
                if need.purpose == "health check" and hc_admitted is True:
                    continue
                sg_id = w.write_group(target.sg_ids)
                if sg_id is None:
                    continue
                peers = uncovered.get(target.sg_ids)
                if peers is None:
                    peers = uncovered[target.sg_ids] = need.uncovered(
                        lambda p, t=target, n=need: w.admitted_now(t.sg_ids, n.protocol.lower(), n.port, p)
                    )
                for peer in peers:
                    found = planned.setdefault((sg_id, need.protocol.lower(), need.port, peer), [])
                    if target not in found:
                        found.append(target)
        rules = []
        for (sg_id, proto, port, peer), targets in planned.items():
            # Required where the controller cannot write: no single group it would pick (§2.2).
            required = any(w.controller_group(t.sg_ids) is None for t in targets)
            enis = tuple(_unique(t.eni for t in targets if t.eni))
            rules.append(
                PlannedRule(
                    sg_id, proto, port, port, peer[0], peer[1], self.description(proto, port), required, enis
                )
            )
        return rules

    def lb_inbound_rules(self) -> list[PlannedRule]:
        """Where the analysis found the load balancer's own groups admitting no client of a protocol
        on its listener port: that inbound rule, from the client ranges, on its first group. No
        target rule can stand in for it (clients meet the LB's rules first)."""
        w = self.w
        tg_proto = str(w.tg.protocol).upper()
        rules = []
        for p in w.offered:
            if not any(
                _LB_MARK in r and (" admit no " in r or any(mark in r for mark in LB_REFUSES_CLIENTS))
                for r in p.reasons
            ):
                continue
            for lb_arn in w.lbs.get(p.protocol, ()):
                groups = w.lb_groups(lb_arn)
                if not groups:
                    continue
                ports = sorted(
                    {
                        li.port
                        for li in w.index.listeners_by_tg.get(w.tg.arn, ())
                        if li.load_balancer_arn == lb_arn
                        and isinstance(li.port, int)
                        and w.tg.arn in (li.target_group_arns or ())
                        and p.protocol in LISTENER_CARRIES.get(str(li.protocol).upper(), {}).get(tg_proto, ())
                    }
                )
                cidrs, origin = w.client_cidrs(lb_arn)
                if "VPC not collected" in origin:
                    self.warnings.append(
                        f"the load balancer's security group {groups[0]} admits no {p.protocol} client, but "
                        "its clients are not known (its VPC was not collected): add the inbound rule for "
                        "the real client ranges yourself"
                    )
                    continue
                broad = [c for c in cidrs if _is_everything(c)]
                if ports and broad:
                    self.warnings.append(
                        f"{p.protocol} {_short(ports)} is opened on the load balancer's security group "
                        f"{groups[0]} to {_short(broad)}: the client ranges are the whole internet "
                        f"({origin}). Narrow them with the annotation {m.CLIENT_CIDRS_ANNOTATION} or the "
                        "cluster's client ranges if the clients are known."
                    )
                added = [
                    (port, cidr)
                    for port in ports
                    for cidr in cidrs
                    # Admitted already: only the refused ranges need a rule.
                    if not any(
                        _has_equivalent(
                            w.inv.security_groups.get(g), p.protocol.lower(), port, port, ("cidr", cidr)
                        )
                        for g in groups
                    )
                ]
                if ports and cidrs:
                    refused = _unique(cidr for _, cidr in added)
                    lead = (
                        f"admits no {p.protocol} client on listener port(s) {_short(ports)}"
                        if len(added) == len(ports) * len(cidrs)
                        else f"refuses {p.protocol} from {_short(refused)} on listener port(s) "
                        f"{_short(ports)}"
                    )
                    self.explanation.append(
                        f"The load balancer's security group {groups[0]} {lead}: clients meet its inbound "
                        f"rules before any target rule, so it must admit {p.protocol} from the client ranges "
                        f"({_short(cidrs)}, {origin}). Health checks skip these rules, which is why the "
                        "targets look healthy."
                    )
                for port, cidr in added:
                    text = self.description(p.protocol, port)
                    rules.append(
                        PlannedRule(groups[0], p.protocol.lower(), port, port, "cidr", cidr, text, True)
                    )
        return rules

    def lb_egress_rules(self) -> list[PlannedRule]:
        """Where the load balancer's own outbound rules let traffic or health checks nowhere: the
        egress rule on its first group to each refused target's group (a group reference covers
        every member, ip or instance target). Required: no target rule or manifest stands in."""
        w = self.w
        wanted: dict[tuple[str, str, int, str], None] = {}
        by_id = {t.target_id: t for t in w.targets}
        for p in w.offered:
            for tv in p.targets:
                if _LB_MARK not in tv.reason or " allow no outbound " not in tv.reason:
                    continue
                if not isinstance(tv.port, int):
                    continue
                target = by_id.get(tv.target_id)
                dest = w.write_group(target.sg_ids) if target is not None else None
                for lb_arn in w.lbs.get(p.protocol, ()):
                    groups = w.lb_groups(lb_arn)
                    if groups and dest:
                        wanted[(groups[0], p.protocol.lower(), tv.port, dest)] = None
        for finding in self.findings:
            if finding.code != Code.HEALTH_CHECK_BLOCKED:
                continue
            for item in finding.evidence.get("lbEgress") or ():
                target = by_id.get(str(item.get("target")))
                port = item.get("port")
                dest = w.write_group(target.sg_ids) if target is not None else None
                if not isinstance(port, int) or not dest:
                    continue
                for lb_arn in sorted({lb for lbs in w.lbs.values() for lb in lbs}):
                    groups = w.lb_groups(lb_arn)
                    if groups:
                        wanted[(groups[0], "tcp", port, dest)] = None
        rules = [
            PlannedRule(
                sg_id, proto, port, port, "sg", dest, self.description(proto, port), True, direction="egress"
            )
            for sg_id, proto, port, dest in wanted
        ]
        if rules:
            self.explanation.append(
                "The load balancer's security group lets nothing out to the targets on "
                + _short(_unique(f"{r.protocol} {r.from_port}" for r in rules))
                + ": its outbound rules apply to traffic and health checks alike (nlb-udp-facts §3.5), so "
                "it gets an egress rule to the targets' security group."
            )
        return rules

    def acl_entries(self) -> tuple[list[PlannedAclEntry], bool]:
        """`allow` entries for every network-ACL refusal the analysis names (finding evidence
        `networkAclDenials`), each numbered just below the entry that refused it (free numbers
        only; the final deny when no entry matched); (entries, whether every refusal is covered)."""
        w = self.w
        acls = w.index.acls_by_id
        # Per (ACL, direction, protocol, ports): the union of what every entry refuses there, placed
        # before the first of those entries. Targets in different subnets behind one ACL each miss
        # "everything but my subnet", and a deny-all behind a narrower deny refuses the rest: united,
        # that is the expected sources again, one entry instead of a fragment per subnet or entry.
        # Every refused range lies within the expected sources, so the union never opens more.
        refused: dict[tuple, tuple[list[str], int | None]] = {}
        for finding in self.findings:
            if finding.code in (Code.TRAFFIC_BLOCKED, Code.HEALTH_CHECK_BLOCKED):
                for d in finding.evidence.get("networkAclDenials") or ():
                    key = (d["networkAclId"], d["egress"], d["protocol"], d["fromPort"], d["toPort"])
                    cidrs, first = refused.get(key, ([], None))
                    rule = d["ruleNumber"]
                    if rule is not None:
                        first = rule if first is None else min(first, rule)
                    refused[key] = ([*cidrs, *(d.get("cidrs") or ())], first)
        denials = [
            (acl_id, first, egress, proto, lo, hi, cidr)
            for (acl_id, egress, proto, lo, hi), (cidrs, first) in refused.items()
            for cidr in NetSet.from_cidrs(cidrs).to_cidrs()
        ]
        used: dict[tuple[str, bool], set[int]] = {}
        out: list[PlannedAclEntry] = []
        complete = True
        for acl_id, rule, egress, proto, lo, hi, cidr in denials:
            acl = acls.get(acl_id)
            number_proto = _ACL_PROTOCOLS.get(proto)
            if acl is None or number_proto is None:
                complete = False
                continue
            taken = used.setdefault(
                (acl_id, egress), {e.rule_number for e in acl.entries or () if bool(e.egress) == egress}
            )
            if len([e for e in out if e.network_acl_id == acl_id]) >= ACL_ENTRY_LIMIT:
                complete = False
                continue
            number = _free_rule_number(taken, rule)
            if number is None:
                complete = False
                continue
            taken.add(number)
            out.append(PlannedAclEntry(acl_id, number, egress, number_proto, lo, hi, _canonical(cidr)))
        if not complete:
            self.warnings.append(
                "a network ACL refuses part of this traffic and not every refusal could be planned (ACL not "
                f"collected, no free rule number before the deny, or more than {ACL_ENTRY_LIMIT} entries): "
                "fix the ACL of the targets' subnets by hand too"
            )
        if out:
            self.explanation.append(
                "The security groups are not the only filter: the network ACL of the targets' subnet refuses "
                "part of the traffic (ACLs are stateless, so the replies to ephemeral ports count too). "
                "Each new `allow` entry is numbered just below the entry that refuses it, so it is "
                "evaluated first."
            )
        return out, complete

    def controller_rules(
        self, ingress: list[dict], *, description: str | None = None, ambiguous: bool = False
    ) -> list[PlannedRule]:
        """The rules the controller would write for `ingress` (§2.2/§2.3) that the groups lack.

        With `ambiguous`, the same rules for the ENIs where the controller cannot pick a group: we
        write them to one of the ENI's groups ourselves, unless one of its groups already has them.
        """
        w = self.w
        out: dict[tuple, list[str]] = {}
        for target in w.targets:
            if not target.eni:
                continue
            sg_id = w.controller_group(target.sg_ids)
            if ambiguous:
                if sg_id is not None:
                    continue
                sg_id, candidates = w.write_group(target.sg_ids), target.sg_ids
            else:
                candidates = (sg_id,)
            if sg_id is None:
                continue
            for proto, lo, hi, peer in _permissions(w, ingress, target):
                if any(w.has_equivalent(c, proto, lo, hi, peer) for c in candidates):
                    continue
                enis = out.setdefault((sg_id, proto, lo, hi, peer), [])
                if target.eni not in enis:
                    enis.append(target.eni)
        rules = []
        for (sg_id, proto, lo, hi, peer), enis in out.items():
            text = description if description is not None else self.description(proto, lo)
            rules.append(PlannedRule(sg_id, proto, lo, hi, peer[0], peer[1], text, True, tuple(enis)))
        return rules

    # -- putting it together -----------------------------------------------------------------

    def plan(self) -> Fix | None:
        w = self.w
        b = w.b
        hc_change = self.health_check_change()
        hc_raw = "traffic-port" if hc_change else str(w.tg.health_check_port or "traffic-port").strip()
        if hc_raw != "traffic-port" and not hc_raw.isdigit():
            hc_raw = "traffic-port"
        new_port_name = self.service_ref_change()
        needs = self.needs(hc_raw)

        manifest = self.base_manifest()
        spec = manifest["spec"]
        original_ingress = copy.deepcopy(
            (spec.get("networking") or {}).get("ingress")
            if isinstance(spec.get("networking"), dict)
            else None
        )
        rules, repaired = self.repaired_ingress(spec)
        rules, added = self.merge(rules, needs)
        networking_changed = repaired or bool(added) or (original_ingress is None and bool(rules))
        patch_spec: dict[str, Any] = {}
        if networking_changed and rules:
            spec["networking"] = {"ingress": rules}
            patch_spec["networking"] = {"ingress": copy.deepcopy(rules)}
        elif networking_changed:
            # Nothing valid remains and nothing is needed: no networking at all, never `ports: []`.
            spec.pop("networking", None)
            patch_spec["networking"] = None
        if new_port_name is not None:
            spec.setdefault("serviceRef", {})["port"] = new_port_name
            patch_spec["serviceRef"] = {"port": new_port_name}
        manifest_changed = bool(patch_spec)
        self.patch_keys = tuple(patch_spec)

        # Security groups: rules the controller would write for the new networking, the rules that
        # are missing whatever writes them, and which of those only we can write.
        hc_admitted = (
            None if hc_change else (w.result.health_check.admitted if w.result.health_check else None)
        )
        missing = self.missing_rules(needs, hc_admitted)
        not_reconciled_only = not manifest_changed and Code.NETWORKING_NOT_RECONCILED in self.fixable
        sg_rules: list[PlannedRule] = []
        if not_reconciled_only:
            # The networking is right; the controller has not written it. Write exactly what it
            # would (its rules, our description) so the declared state becomes the real one.
            sg_rules = self.controller_rules(rules)
        # Where the controller cannot pick a group, we write what it would have written; those
        # rules hold every need (the networking covers them all) and match the declared state.
        sg_rules += self.controller_rules(rules, ambiguous=True)
        # Plus, for operators managing these rules outside the controller, the alternative.
        required_keys = {(r.security_group_id, r.protocol, r.from_port, r.to_port, r.peer) for r in sg_rules}
        sg_rules += [
            r
            for r in missing
            if not r.required
            and (r.security_group_id, r.protocol, r.from_port, r.to_port, r.peer) not in required_keys
        ]
        if not_reconciled_only:
            # Without a manifest change nothing else will write these: every missing rule is required.
            sg_rules = [_required(r) for r in sg_rules]
        sg_rules += self.lb_inbound_rules()
        sg_rules += self.lb_egress_rules()
        sg_rules = _dedupe(sg_rules)
        acl_entries, self.acl_complete = self.acl_entries()
        self.acl_planned = bool(acl_entries)

        if not manifest_changed and not sg_rules and hc_change is None and not acl_entries:
            return None

        controller_writes = (
            self.controller_rules(rules, description=m.CONTROLLER_RULE_DESCRIPTION)
            if manifest_changed
            else []
        )
        mode = self.mode(manifest_changed, sg_rules, hc_change, new_port_name)
        if acl_entries and not manifest_changed and not sg_rules and hc_change is None:
            mode = "network-acl"
        targets, protocols = self.targets(manifest_changed, sg_rules, hc_change, new_port_name, needs)
        self.explain(needs, added, sg_rules, hc_change, new_port_name, manifest_changed, controller_writes)
        counts = self.rule_counts(controller_writes + [r for r in sg_rules if r.required])
        self.limit_warnings(counts, controller_writes + [r for r in sg_rules if r.required])
        alt_counts = self.rule_counts([r for r in sg_rules if not r.required])
        self.limit_warnings(alt_counts, [r for r in sg_rules if not r.required], alternative=True)
        self.generated_warning()

        errors: list[str] = []
        if manifest_changed:
            try:
                from .schema import validate_manifest

                errors = validate_manifest(manifest)
            except ImportError:  # jsonschema is a dev dependency today; never fail a fix on it
                errors = []
            if errors:
                self.warnings.append(
                    "the manifest does not validate against the TargetGroupBinding v1beta1 schema: "
                    + "; ".join(errors[:5])
                )
        patch_body = {"spec": patch_spec} if manifest_changed else None
        kubectl = ""
        if patch_body is not None:
            kubectl = render.shell_join(
                [
                    "kubectl patch",
                    render.shell_quote(f"targetgroupbindings.elbv2.k8s.aws/{b.name}"),
                    render.shell_option("--namespace", b.namespace),
                    "--type merge",
                    render.shell_option("--patch", render.compact_json(patch_body)),
                ]
            )
        return Fix(
            cluster=w.inv.cluster,
            namespace=b.namespace,
            name=b.name,
            uid=b.uid,
            target_group_arn=w.tg.arn,
            mode=mode,
            summary=self.summary(added, sg_rules, hc_change, new_port_name, manifest_changed),
            explanation=self.explanation,
            warnings=_unique(self.warnings),
            targets=targets,
            protocols=protocols,
            manifest=manifest if manifest_changed else None,
            patch_body=patch_body,
            kubectl_patch=kubectl,
            security_group_rules=tuple(sg_rules),
            security_group_commands=tuple(_sg_commands(sg_rules)),
            terraform="\n".join(t for t in (_terraform(sg_rules, b), _terraform_acl(acl_entries, b)) if t),
            network_acl_entries=tuple(acl_entries),
            network_acl_commands=tuple(_acl_commands(acl_entries)),
            health_checks=(hc_change,) if hc_change else (),
            rule_counts=counts,
            manifest_errors=errors,
        )

    def mode(self, manifest_changed, sg_rules, hc_change, new_port_name) -> Any:
        """Which lever the fix pulls first (the panel shows that one on top)."""
        if any(r.required for r in sg_rules):
            return "security-groups"
        if manifest_changed and new_port_name is None:
            return "networking"
        if manifest_changed:
            return "networking" if "networking" in (self.patch_keys or ()) else "service-ref"
        return "health-check" if hc_change is not None else "security-groups"

    def targets(
        self, manifest_changed, sg_rules, hc_change, new_port_name, needs
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The finding codes (present today) and protocols this fix repairs, by construction."""
        w = self.w
        codes = {f.code for f in self.findings}
        out: set[str] = set()
        ambiguous_enis = any(t.eni and w.controller_group(t.sg_ids) is None for t in w.targets)
        ambiguous_covered = all(
            r.required for r in sg_rules if r.network_interfaces and self._on_ambiguous(r)
        )
        unknown = any(
            t.eni is None or any(s not in w.inv.security_groups for s in t.sg_ids) for t in w.targets
        ) or any(p.verdict == "unknown" for p in w.offered)
        # The load balancer's own security groups refuse it (inbound from clients, or outbound
        # to the targets): no rule on the targets changes that.
        # (Inbound refusals get their rule on the LB's group in `lb_inbound_rules`.)
        lb_refuses = any(
            _LB_MARK in text and " allow no outbound " in text
            for p in w.result.protocols
            for text in (*p.reasons, *(t.reason for t in p.targets))
        ) and not any(r.direction == "egress" for r in sg_rules)
        if lb_refuses:
            self.warnings.append(
                "the load balancer's own security groups let part of this traffic nowhere (see the "
                "reasons); target rules alone will not make it reachable — add outbound rules to the "
                "targets on the load balancer's groups too"
            )
        nacl = not self.acl_complete or (
            any("network ACL" in reason for p in w.result.protocols for reason in p.reasons)
            and not any(f.evidence.get("networkAclDenials") for f in self.findings)
        )
        if nacl:
            self.warnings.append(
                "a network ACL denies part of this traffic; security-group rules alone will not make it "
                "reachable — fix the ACL of the targets' subnets too"
            )
        if unknown:
            self.warnings.append(
                "some targets' network interfaces or security groups are not in the collected data; the fix "
                "covers what is known and cannot be verified for the rest"
            )
        # The rules land where they are needed: through the controller (new networking, its group
        # pickable) or through our required commands (everything else).
        rules_land = (
            manifest_changed or any(r.required for r in sg_rules) or not needs or self.acl_planned
        ) and (not ambiguous_enis or ambiguous_covered)
        traffic_ok = rules_land and not unknown and not nacl and not lb_refuses
        protocols: list[str] = []
        if traffic_ok:
            for code in (
                Code.TRAFFIC_BLOCKED,
                Code.HEALTH_CHECK_MASKS_TRAFFIC,
                Code.CLIENT_RANGES_NOT_COVERED,
                Code.HEALTH_CHECK_BLOCKED,
            ):
                if code in codes:
                    out.add(code)
            protocols = [p.protocol for p in w.offered if p.verdict in ("blocked", "partial")]
        if manifest_changed or Code.MISSING_NETWORKING_RULE not in codes:
            out |= {
                Code.MISSING_NETWORKING_RULE,
                Code.EMPTY_PORTS_LIST,
                Code.INSTANCE_PORT_NOT_NODEPORT,
            } & codes
        if Code.NETWORKING_NOT_RECONCILED in codes and (
            manifest_changed or any(r.required for r in sg_rules)
        ):
            out.add(Code.NETWORKING_NOT_RECONCILED)
        if hc_change is not None and Code.HEALTH_CHECK_PORT_MISMATCH in codes:
            out.add(Code.HEALTH_CHECK_PORT_MISMATCH)
        if new_port_name is not None:
            out.add(Code.SERVICE_PROTOCOL_MISMATCH)
        if not manifest_changed:
            out -= {Code.MISSING_NETWORKING_RULE, Code.EMPTY_PORTS_LIST, Code.INSTANCE_PORT_NOT_NODEPORT}
        return tuple(sorted(out)), tuple(protocols)

    def _on_ambiguous(self, rule: PlannedRule) -> bool:
        enis = self.w.inv.network_interfaces
        return any(
            e in enis and self.w.controller_group(enis[e].security_group_ids) is None
            for e in rule.network_interfaces
        )

    # -- texts ---------------------------------------------------------------------------------

    def summary(self, added, sg_rules, hc_change, new_port_name, manifest_changed) -> str:
        b = self.w.b
        parts = []
        if added:
            by_peers: dict[tuple, list[str]] = {}
            for need, peers in added:
                label = f"{need.protocol} {need.port}" + (
                    " (health check)" if need.purpose == "health check" else ""
                )
                bucket = by_peers.setdefault(tuple(peers), [])
                if label not in bucket:
                    bucket.append(label)
            for peers, labels in by_peers.items():
                parts.append(f"allow {' and '.join(labels)} from {_short(p[1] for p in peers)}")
            text = f"Add to spec.networking of {b.namespace}/{b.name}: " + "; ".join(parts)
        elif manifest_changed and "networking" in self.patch_keys:
            text = f"Repair spec.networking of {b.namespace}/{b.name}"
        else:
            text = f"Fix {b.namespace}/{b.name}"
        extras = []
        if new_port_name is not None:
            extras.append(f"reference Service port {new_port_name!r} by name")
        required = [r for r in sg_rules if r.required]
        if required:
            groups = _unique(r.security_group_id for r in required)
            extras.append(f"add {len(required)} rule(s) to security group(s) {_short(groups)} directly")
        if hc_change is not None:
            extras.append("health-check the traffic port")
        if self.acl_planned:
            extras.append("allow the refused traffic in the targets' network ACL")
        if extras:
            text += ("; " if text.endswith(tuple("0123456789)")) or added else ": ") + "; ".join(extras)
        return text

    def explain(
        self, needs, added, sg_rules, hc_change, new_port_name, manifest_changed, controller_writes
    ) -> None:
        w = self.w
        lines: list[str] = []
        for result in w.offered:
            proto = result.protocol
            lbs = w.lbs.get(proto, [])
            ports = _short(sorted({n.port for n in needs if n.protocol == proto and n.purpose == "traffic"}))
            if not ports:
                continue
            port_what = "the NodePort" if w.target_type == "instance" else "the pods' port"
            if any(w.lb_groups(lb) for lb in lbs):
                source = (
                    "the load balancer's security group (a rule referencing it admits all its traffic, "
                    "client IP preserved or not)"
                )
            elif result.client_ip_preserved:
                clients = _unique(c for lb in lbs for c in w.client_cidrs(lb)[0])
                origin = _unique(w.client_cidrs(lb)[1] for lb in lbs)
                source = (
                    f"the clients ({_short(clients)}, from {_short(origin)}): the client IP is preserved for "
                    f"{proto}, so targets see the clients' addresses, not the load balancer's"
                )
            else:
                source = (
                    "the load balancer's subnets: client IP is not preserved, targets see the load "
                    "balancer's addresses"
                )
            status = {
                "reachable": "already reachable",
                "blocked": "blocked today",
                "partial": "only partly reachable today",
            }.get(result.verdict, f"{result.verdict} today")
            lines.append(f"{proto} {ports} ({port_what}, {status}) must be admitted from {source}.")
        hc_needs = [n for n in needs if n.purpose == "health check"]
        if hc_needs:
            ports = _short(sorted({n.port for n in hc_needs}))
            peers = _short(_unique(p[1] for n in hc_needs for p in n.peers))
            lines.append(
                f"Health checks are TCP on port {ports} from the load balancer's own addresses, "
                f"so TCP {ports} "
                f"must be admitted from {peers}"
                + (
                    " — the same peers as the traffic, so it shares their rule."
                    if any(n.peers == t.peers for n in hc_needs for t in needs if t.purpose == "traffic")
                    else "."
                )
                + (
                    " A UDP target group is health-checked over TCP only: a green check never proves UDP."
                    if "UDP" in {p.protocol for p in w.offered}
                    else ""
                )
            )
        if added:
            for need, peers in added:
                lines.append(
                    f"spec.networking gains {need.protocol} {need.port} ({need.purpose}) from "
                    f"{_short(p[1] for p in peers)}."
                )
        if manifest_changed and controller_writes:
            groups = _short(_unique(r.security_group_id for r in controller_writes))
            lines.append(
                f"Once applied, the controller writes the rules to {groups} (the security group "
                "it picks on each "
                "target's network interface) with the description "
                f"{m.CONTROLLER_RULE_DESCRIPTION}. Apply with "
                "`kubectl apply --server-side -f` (add --force-conflicts if another manager "
                "owns spec.networking) "
                "or with the kubectl patch below."
            )
        if new_port_name is not None:
            lines.append(
                f"serviceRef.port {w.b.service_port} matches a TCP and a UDP port of the "
                "Service; the controller takes "
                f"the first whatever its protocol, so the binding names {new_port_name!r}, the "
                f"{w.result.protocols[0].protocol} port."
            )
        required = [r for r in sg_rules if r.required]
        if required:
            ambiguous = Code.SECURITY_GROUP_TAG_AMBIGUOUS in self.fixable and any(
                self._on_ambiguous(r) for r in required
            )
            if ambiguous:
                flag = w.inv.eni_sg_tags
                wanted = f"the tag {w.cluster_tag}" + (
                    " and the controller's --service-target-eni-security-group-tags ("
                    + ", ".join(f"{k}={v}" for k, v in sorted(flag.items()))
                    + ")"
                    if flag
                    else ""
                )
                remedy = (
                    "put those tags on exactly one cluster-tagged group per interface"
                    if flag
                    else "leave the cluster tag on exactly one group per interface (or start the "
                    "controller with --service-target-eni-security-group-tags)"
                )
                lines.append(
                    "The controller cannot write networking rules here: a target network interface has "
                    f"several security groups and not exactly one carries {wanted}. The security-group "
                    f"commands add the missing rules directly. To let the controller manage them instead, "
                    f"{remedy}."
                )
            if Code.NETWORKING_NOT_RECONCILED in self.fixable and not manifest_changed and not ambiguous:
                events = [e for e in w.b.events if e.reason == "FailedNetworkReconcile"]
                why = (
                    f" Its last FailedNetworkReconcile event says: {events[-1].message.rstrip('.')}."
                    if events
                    else ""
                )
                lines.append(
                    "spec.networking already declares the right rules, but the controller has "
                    "not written them to "
                    f"the target security groups.{why} Fix that cause (e.g. the controller's IAM "
                    "permissions) — or "
                    "add the rules with the commands below."
                )
                self.warnings.append(
                    "the controller compares rules without their descriptions, so it will count "
                    "these hand-added "
                    "rules as its own and never write (or later revoke) a copy; if spec.networking changes, "
                    "remove the binding-health rules by hand"
                )
        elif sg_rules:
            lines.append(
                "If these rules are managed outside the controller (Terraform, console), the security-group "
                "commands and Terraform below add exactly the missing ones instead of the TGB change."
            )
        if hc_change is not None:
            order = (
                " Apply the TGB change first and the health-check change once the controller has written "
                "the rule, so the check never probes a closed port; the old health-check port's rule can go "
                "afterwards."
                if manifest_changed
                else ""
            )
            lines.append(f"Health check: {hc_change.reason}{order}")
        self.explanation = lines + self.explanation

    def generated_warning(self) -> None:
        labels = self.w.b.raw.get("metadata", {}).get("labels") if isinstance(self.w.b.raw, dict) else None
        if isinstance(labels, dict) and any(k in labels for k in GENERATED_TGB_LABELS):
            self.warnings.append(
                "this TargetGroupBinding is generated by the controller from a Service or "
                "Ingress; edits to it "
                "are overwritten — change the owning Service/Ingress annotations instead, or use the "
                "security-group commands"
            )

    def rule_counts(self, rules: list[PlannedRule]) -> dict[str, dict[str, Any]]:
        rules = [r for r in rules if r.direction == "ingress"]  # the inbound quota
        counts: dict[str, dict[str, Any]] = {}
        for sg_id in sorted({r.security_group_id for r in rules}):
            sg = self.w.inv.security_groups.get(sg_id)
            current = {4: 0, 6: 0}
            for rule in (sg.ingress if sg else ()) or ():
                for fam in _families_of(rule.source_kind, rule.source):
                    current[fam] += 1
            added = {4: 0, 6: 0}
            for rule in rules:
                if rule.security_group_id == sg_id:
                    for fam in _families_of(
                        "cidr" if rule.peer_kind == "cidr" else "security_group", rule.peer
                    ):
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
        self, counts: dict[str, dict[str, Any]], rules: list[PlannedRule], alternative: bool = False
    ) -> None:
        for sg_id, count in counts.items():
            total = count["current"] + count["added"]
            if total <= RULE_LIMIT:
                continue
            proposal = self.merge_proposal(sg_id, rules)
            self.warnings.append(
                f"{'the alternative commands' if alternative else 'this fix'} would give {sg_id} "
                f"{total} inbound "
                f"{count['family']} rules, above the limit of {RULE_LIMIT} per security group: "
                f"{proposal}; or "
                "request a higher quota (Service Quotas: 'Inbound or outbound rules per security group')"
            )

    def merge_proposal(self, sg_id: str, rules: list[PlannedRule]) -> str:
        """How to stay under the limit: merge the ranges of rules that share protocol and ports."""
        sg = self.w.inv.security_groups.get(sg_id)
        proposals = []
        wider = []
        for proto, lo, hi in _unique(
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
            every = _unique(_canonical(c) for c in existing + added)
            merged = _collapse(every)
            ports = str(lo) if lo == hi else f"{lo}-{hi}"
            if len(merged) < len(every):
                proposals.append(f"{proto} {ports} from {_short(every, 4)} merges into {_short(merged, 4)}")
            elif len(added) > 1:
                wider.append(f"{proto} {ports} from {_supernet(added)} (wider than needed)")
        if proposals:
            return "merge adjacent ranges: " + "; ".join(proposals)
        if wider:
            return "merge ranges into one covering rule: " + "; ".join(wider)
        return "reference a security group instead of many ranges, or remove rules no longer needed"


# --- module-level helpers (shared with apply) --------------------------------------------------


def _families_of(kind: str, source: str) -> tuple[int, ...]:
    if kind == "cidr":
        fam = _family(source)
        return (fam,) if fam else ()
    return (4, 6)  # a group or prefix-list reference counts once per family


def _collapse(cidrs: list[str]) -> list[str]:
    out: list[str] = []
    for version in (4, 6):
        networks = [parse_network(c) for c in cidrs]
        family = [n for n in networks if n is not None and n.version == version]
        out.extend(str(n) for n in ipaddress.collapse_addresses(family))  # type: ignore[arg-type]
    return out


def _supernet(cidrs: list[str]) -> str:
    networks = [n for n in (parse_network(c) for c in cidrs) if n is not None]
    if not networks:
        return "(none)"
    version = networks[0].version
    networks = [n for n in networks if n.version == version]
    candidate = networks[0]
    while not all(n.subnet_of(candidate) for n in networks):  # type: ignore[arg-type]
        candidate = candidate.supernet()
    return str(candidate)


def _required(rule: PlannedRule) -> PlannedRule:
    return PlannedRule(
        rule.security_group_id,
        rule.protocol,
        rule.from_port,
        rule.to_port,
        rule.peer_kind,
        rule.peer,
        rule.description,
        True,
        rule.network_interfaces,
    )


def _dedupe(rules: list[PlannedRule]) -> list[PlannedRule]:
    seen: dict[tuple, PlannedRule] = {}
    for rule in rules:
        key = (
            rule.security_group_id,
            rule.direction,
            rule.protocol,
            rule.from_port,
            rule.to_port,
            rule.peer_kind,
            rule.peer,
        )
        if key not in seen or (rule.required and not seen[key].required):
            seen[key] = rule
    return sorted(
        seen.values(),
        key=lambda r: (not r.required, r.security_group_id, r.direction, r.protocol, r.from_port, r.peer),
    )


def _permissions(world: _World, ingress: Iterable[dict], target: _Target) -> list[tuple[str, int, int, Peer]]:
    """(protocol, from, to, peer) the controller computes for one target from networking (§2.3)."""
    out = []
    for rule in ingress:
        peers = [p for p in (_peer_key(e) for e in rule.get("from") or ()) if p is not None]
        for entry in rule.get("ports") or ():
            entry = entry or {}
            proto = str(entry.get("protocol", "TCP")).lower()
            if proto not in ("tcp", "udp"):
                continue
            port = entry.get("port")
            if port is None:
                ranges = [(0, 65535)]
            elif isinstance(port, int) and not isinstance(port, bool):
                ranges = [(port, port)]
            elif isinstance(port, str) and world.target_type == "ip":
                ranges = [(n, n) for n in world.named_port(target, port)]
            else:
                ranges = []  # the controller errors on named ports with instance targets
            for lo, hi in ranges:
                for peer in peers:
                    out.append((proto, lo, hi, peer))
    return out


def _has_equivalent(
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


def _free_rule_number(taken: set[int], before: int | None) -> int | None:
    """The highest free ACL rule number below `before` (the refusing entry), or, when no entry
    refused (the final deny), the number after the highest one in use; None when none is free."""
    if before is None:
        highest = max((n for n in taken if n < _FINAL_ACL_RULE), default=0)
        if highest + 1 < _FINAL_ACL_RULE:
            return highest + 1
        before = _FINAL_ACL_RULE
    for number in range(before - 1, 0, -1):
        if number not in taken:
            return number
    return None


def _acl_commands(entries: Iterable[PlannedAclEntry]) -> list[str]:
    commands = []
    for e in entries:
        v6 = _family(e.cidr) == 6
        commands.append(
            render.shell_join(
                [
                    "aws ec2 create-network-acl-entry",
                    render.shell_option("--network-acl-id", e.network_acl_id),
                    f"--rule-number {int(e.rule_number)}",
                    "--egress" if e.egress else "--ingress",
                    render.shell_option("--protocol", e.protocol),
                    f"--port-range From={int(e.from_port)},To={int(e.to_port)}",
                    render.shell_option("--ipv6-cidr-block" if v6 else "--cidr-block", e.cidr),
                    render.shell_option("--rule-action", e.action),
                ]
            )
        )
    return commands


def _terraform_acl(entries: Iterable[PlannedAclEntry], binding: m.Binding) -> str:
    """`aws_network_acl_rule` blocks, one per entry."""
    blocks = []
    for e in entries:
        name = render.tf_identifier(
            "binding_health_acl",
            binding.namespace,
            binding.name,
            "egress" if e.egress else "ingress",
            e.rule_number,
        )
        v6 = _family(e.cidr) == 6
        blocks.append(
            "\n".join(
                [
                    f'resource "aws_network_acl_rule" "{name}" {{',
                    f"  network_acl_id = {render.tf_string(e.network_acl_id)}",
                    f"  rule_number    = {int(e.rule_number)}",
                    f"  egress         = {'true' if e.egress else 'false'}",
                    f"  protocol       = {render.tf_string(e.protocol)}",
                    f"  rule_action    = {render.tf_string(e.action)}",
                    f"  {'ipv6_cidr_block' if v6 else 'cidr_block    '} = {render.tf_string(e.cidr)}",
                    f"  from_port      = {int(e.from_port)}",
                    f"  to_port        = {int(e.to_port)}",
                    "}",
                ]
            )
        )
    return "\n\n".join(blocks) + ("\n" if blocks else "")


def _sg_commands(rules: Iterable[PlannedRule]) -> list[str]:
    """One `authorize-security-group-ingress` (or `-egress`) per group and direction (required
    first), every value quoted."""
    by_group: dict[tuple[bool, str, str], list[PlannedRule]] = {}
    for rule in rules:
        by_group.setdefault((not rule.required, rule.security_group_id, rule.direction), []).append(rule)
    commands = []
    for (_, sg_id, direction), group in sorted(by_group.items()):
        permissions = []
        for rule in group:
            perm: dict[str, Any] = {
                "IpProtocol": rule.protocol,
                "FromPort": rule.from_port,
                "ToPort": rule.to_port,
            }
            if rule.peer_kind == "sg":
                perm["UserIdGroupPairs"] = [{"GroupId": rule.peer, "Description": rule.description}]
            elif _family(rule.peer) == 6:
                perm["Ipv6Ranges"] = [{"CidrIpv6": rule.peer, "Description": rule.description}]
            else:
                perm["IpRanges"] = [{"CidrIp": rule.peer, "Description": rule.description}]
            permissions.append(perm)
        commands.append(
            render.shell_join(
                [
                    f"aws ec2 authorize-security-group-{direction}",
                    render.shell_option("--group-id", sg_id),
                    render.shell_option("--ip-permissions", render.compact_json(permissions)),
                ]
            )
        )
    return commands


def _terraform(rules: Iterable[PlannedRule], binding: m.Binding) -> str:
    """`aws_vpc_security_group_ingress_rule` blocks, one per rule (that resource holds one source)."""
    blocks = []
    used: set[str] = set()
    for rule in rules:
        name = render.tf_identifier(
            "binding_health", binding.namespace, binding.name, rule.protocol, rule.from_port
        )
        base, n = name, 2
        while name in used:
            name, n = f"{base}_{n}", n + 1
        used.add(name)
        lines = [
            f'resource "aws_vpc_security_group_{rule.direction}_rule" "{name}" {{',
            f"  security_group_id = {render.tf_string(rule.security_group_id)}",
            f"  description       = {render.tf_string(rule.description)}",
            f"  ip_protocol       = {render.tf_string(rule.protocol)}",
            f"  from_port         = {int(rule.from_port)}",
            f"  to_port           = {int(rule.to_port)}",
        ]
        if rule.peer_kind == "sg":
            lines.append(f"  referenced_security_group_id = {render.tf_string(rule.peer)}")
        elif _family(rule.peer) == 6:
            lines.append(f"  cidr_ipv6         = {render.tf_string(rule.peer)}")
        else:
            lines.append(f"  cidr_ipv4         = {render.tf_string(rule.peer)}")
        lines.append("}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + ("\n" if blocks else "")
