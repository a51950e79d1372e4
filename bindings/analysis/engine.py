"""The analysis engine: per binding and per carried protocol, can NLB traffic reach the targets?

`analyze(inventory)` is pure: no Django, no clock (staleness is judged at `inventory.now`), no
network. It never raises: malformed input becomes `unknown` verdicts and `INVALID_SPEC` findings
that name the object and the field. One `InventoryIndex` is built per inventory (IP -> ENI, instance ->
primary ENI, target group -> listeners, load balancer -> private addresses, Service -> slices) and
judgements are cached by what decides them (security groups, protocol, port, expected sources), so
10,000 bindings that share node security groups cost little more than the distinct rule sets.

Semantics beyond DESIGN.md, chosen as an SRE would read the data:

* A listener forwards to a target group when the group's ARN is in its forward actions; a listener
  with no parsed forward target on a load balancer the group names in `LoadBalancerArns` is
  assumed to forward to it (the action was not collected, not absent).
* With `aws_complete` False, a protocol no known listener carries is `unknown`, not `not_offered`.
* `NO_LISTENER` only when no listener forwards anything to the group: a TCP_UDP (TCP_QUIC) group
  behind a listener carrying one of its protocols is `not_offered` for the other, with no finding
  (its targets are in use, so no "Target.NotInUse" either). A listener whose protocol can carry
  nothing to the group (TCP -> TLS) forwards nothing.
* Targets in state `draining` are not judged. A target whose ENI or one of whose security groups
  is missing is `unknown`; a verdict counts a target as admitted only when every expected source
  is admitted. A target with no expected source of its address family (e.g. IPv6-only client
  ranges and an LB without IPv6 addresses) is `unknown` for that protocol. With unjudged targets
  the verdict is `unknown` unless judged ones both admit and refuse (`partial`); targets known to
  refuse are still reported (`TRAFFIC_BLOCKED`, `HEALTH_CHECK_MASKS_TRAFFIC`).
* The load balancer's own security groups, when it has them and they were collected: no inbound
  rule for the protocol on a listener port blocks the protocol for every target (health checks
  ignore inbound rules, so targets stay healthy); outbound rules must let the traffic and the
  TCP health checks out to each target (a CIDR holding its address, or one of its groups).
* Several load balancers on one group: each LB's sources are judged on their own (an LB
  security-group reference admits only that LB's traffic), then united.
* Expected sources list the LB security groups first (a rule referencing one admits everything
  that LB sends), then the CIDRs.
* Default client ranges of a load balancer with (collected) security groups: the scheme's default
  narrowed by the CIDRs its inbound rules admit on the listener ports that forward to the group
  (nlb-udp-facts §6 step 4), or those CIDRs alone when they lie outside the default (on-premises
  clients of an internal LB) or the default is not known.
* Client ranges from the annotation or the cluster setting that fail to parse are reported as
  `INVALID_SPEC` and dropped; if none remain, the next source of client ranges applies. The
  internet-facing default adds `::/0` only for dualstack load balancers. When the LB (its scheme)
  or an internal LB's VPC is not in the inventory, the client ranges are unknown: the targets are
  judged against every address, and only `reachable` or `blocked` (true for any clients) stand;
  anything else is `unknown`.
* `not_offered` protocols get no rule-based findings (no traffic to judge).
* `MISSING_NETWORKING_RULE` for the health-check port is skipped when the group carries TCP on
  the same port (the TCP finding already says it); its severity is `warning` when health checks
  are not admitted and `info` otherwise.
* Network ACLs: the target subnet's ACL (explicit association, else the VPC default ACL) is
  evaluated in rule-number order for the inbound protocol and port, and — ACLs being stateless —
  for the replies: outbound to the same sources on every ephemeral port 1024-65535 (an ACL with
  no outbound entries in the data is not judged outbound). Denied addresses are not admitted.
  Only sources outside the target's own subnet meet it (AWS VPC user guide, "Network ACL basics":
  rules are evaluated as traffic enters and leaves the subnet, not within it); when the subnet
  was not collected, every source is judged against the ACL. Each refusal is kept as an
  `AclDenial` (ACL, rule number or the final deny, direction, protocol, ports, CIDRs): the reasons,
  `TRAFFIC_BLOCKED` / `HEALTH_CHECK_BLOCKED` (evidence `networkAclDenials`) and the fix read it.
  `CLIENT_RANGES_NOT_COVERED` is judged on the security groups alone: an ACL refusal is not it.
  The load balancer subnets' ACLs are not judged.
* Prefix lists: a rule naming a managed prefix list counts as the list's entries
  (`Inventory.prefix_lists`) everywhere a CIDR rule counts (target rules, the LB's inbound and
  outbound rules). A list whose entries were not collected may hold any address: a target that a
  matching rule of such a list could complete is `unknown` (the list named), never refused.
* Malformed input (a security-group rule, ACL entry or prefix-list entry the normaliser dropped,
  `problems` on those objects) is `INVALID_SPEC` naming the object and field on every binding whose
  judgement reads it (its targets' groups, ACL and the prefix lists their rules name, its load
  balancers' groups), worked out once per (groups, ACL, subnet); the rest is still judged.
* `TARGET_DRIFT` for instance targets compares against ready nodes minus the controller's default
  exclusions and a `spec.nodeSelector.matchLabels` (skipped when `matchExpressions` is used).
* A target whose rules admit health checks from only some LB addresses counts as
  `HEALTH_CHECK_BLOCKED` (the LB node in the uncovered zone marks it unhealthy).
* `CLIENT_RANGES_NOT_COVERED` is not raised when a rule referencing the LB's security group admits
  the traffic; `OVERLY_BROAD_SOURCE` is `info` only when the client ranges of that protocol are the
  whole address space of the rule's family (preserved client IP and 0.0.0.0/0 or ::/0 clients).
* The group the controller writes a binding's rules to on a target ENI is `controller_security_group`
  (its resolveEndpointSGForENI): the only group, else the one cluster-tagged group that also
  carries every tag of `--service-target-eni-security-group-tags` (`inventory.eni_sg_tags`).
  Named networking ports are resolved per such group, from the pods behind that group's targets
  only; a name that a target pod does not declare is `INVALID_SPEC` (the controller then fails the
  binding's whole networking and writes none of its rules).
* What the controller's admission webhook rejects is `INVALID_SPEC` even on an existing object
  (most checks run on create only): `targetGroupProtocol` or `ipAddressType` (unset meaning ipv4)
  other than the target group's; `vpcID` malformed or not the group's VPC; `nodeSelector` with ip
  targets; `iamRoleArnToAssume` or a QUIC/TCP_QUIC group with instance targets (the mutating
  webhook sets `targetGroupProtocol` on create, so the validator always sees it); two bindings of
  one target group unless all set `multiClusterTargetGroup` (reported on each of them).
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

import dataclasses
import gc
import ipaddress
import re
import socket
from collections import defaultdict
from collections.abc import Iterable, Sequence
from functools import lru_cache
from operator import attrgetter
from typing import Any

from ..freshness import is_stale
from ..vocabulary import SEVERITY_RANK, Code
from . import model as m
from .netset import EMPTY, NetSet, coverage, parse_network, union_all
from .normalize import pod_eni_entries
from .rules import norm_proto, rule_port_range

# Listener protocol -> {target-group protocol: protocols that listener carries to it}.
LISTENER_CARRIES: dict[str, dict[str, tuple[m.Protocol, ...]]] = {
    "TCP": {"TCP": ("TCP",), "TCP_UDP": ("TCP",)},  # a TCP listener cannot forward to a TLS group
    "TLS": {"TCP": ("TCP",), "TLS": ("TCP",)},
    "UDP": {"UDP": ("UDP",), "TCP_UDP": ("UDP",)},
    "TCP_UDP": {"TCP_UDP": ("TCP", "UDP")},
    "QUIC": {"QUIC": ("UDP",)},
    "TCP_QUIC": {"TCP_QUIC": ("TCP", "UDP")},
}

# The same, flat: (listener protocol, target-group protocol) -> carried protocols.
_CARRIES: dict[tuple[str, str], tuple[m.Protocol, ...]] = {
    (listener, group): carried
    for listener, groups in LISTENER_CARRIES.items()
    for group, carried in groups.items()
}

# Findings sort worst first: the vocabulary's rank, negated.
_SEVERITY_RANK = {s: -rank for s, rank in SEVERITY_RANK.items() if s}
_HEALTH_CHECK_TCP = frozenset({"TCP", "HTTP", "HTTPS"})
# Nodes the controller never registers as instance targets (its default node selector).
EXCLUDED_NODE_LABELS = (
    "node-role.kubernetes.io/master",
    "node.kubernetes.io/exclude-from-external-load-balancers",
    "alpha.service-controller.kubernetes.io/exclude-balancer",
)
_MAX_LISTED = 10
# Marks reasons where the load balancer's own security groups refuse the traffic.
_LB_REFUSAL = " of load balancer "
# Origin text of default client ranges that could not be known (see `InventoryIndex.default_clients`).
UNKNOWN_CLIENTS = "unknown: "
# Reasons where a load balancer's inbound rules refuse all or part of the explicit client ranges
# (`_explicit_client_refusal`); the fix generator adds the missing inbound rules on seeing them.
LB_REFUSES_CLIENTS = (" admit none of the client ranges ", " refuse the client range(s) ")
_ANNOTATION_FIELD = f"metadata.annotations[{m.CLIENT_CIDRS_ANNOTATION}]"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_DOTTED_QUAD = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


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


_V4_LAST = (1 << 32) - 1
_V6_LAST = (1 << 128) - 1


def _ip_key(text: str) -> tuple[int, int] | None:
    """(version, integer) of a canonical address; dotted quads without ipaddress (hot path)."""
    if _DOTTED_QUAD.fullmatch(text):
        return 4, int.from_bytes(socket.inet_aton(text), "big")
    try:
        ip = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    return ip.version, int(ip)


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


# --- fast construction of result objects -------------------------------------------------------
#
# The results are frozen, slotted dataclasses: their generated __init__ sets each field through
# object.__setattr__, about three times slower than writing the slots directly, and one analysis of
# 10,000 bindings builds ~125,000 of them (one TargetVerdict per target and protocol). The
# constructors below write the slots through their descriptors. They are used only when the class
# has exactly the fields listed (in that order) and no __post_init__; otherwise (e.g. model.py gained
# an optional field) the dataclass itself is used, so a model change can never leave a slot unset.

_new = object.__new__


def _slot_setters(cls: type, names: tuple[str, ...]) -> tuple | None:
    fields = tuple(f.name for f in dataclasses.fields(cls))
    if fields != names or tuple(getattr(cls, "__slots__", ())) != names or hasattr(cls, "__post_init__"):
        return None
    return tuple(cls.__dict__[name].__set__ for name in names)


_TV_SET = _slot_setters(
    m.TargetVerdict,
    (
        "target_id",
        "port",
        "network_interface_id",
        "security_group_ids",
        "admitted",
        "uncovered_sources",
        "matched_rules",
        "reason",
    ),
)
_FINDING_SET = _slot_setters(m.Finding, ("code", "severity", "message", "protocol", "evidence"))
_PR_SET = _slot_setters(
    m.ProtocolResult,
    (
        "protocol",
        "port",
        "verdict",
        "targets_total",
        "targets_admitted",
        "client_ip_preserved",
        "expected_sources",
        "reasons",
        "targets",
    ),
)

_BR_SET = _slot_setters(
    m.BindingResult,
    (
        "cluster",
        "namespace",
        "name",
        "uid",
        "target_group_arn",
        "target_type",
        "target_group_protocol",
        "protocols",
        "health_check",
        "findings",
    ),
)
_HC_SET = _slot_setters(
    m.HealthCheckResult,
    ("protocol", "port", "path", "proves", "cannot_prove", "admitted", "healthy", "unhealthy", "other"),
)

if _TV_SET is not None:
    _tv0, _tv1, _tv2, _tv3, _tv4, _tv5, _tv6, _tv7 = _TV_SET

    def _target_verdict(target_id, port, eni_id, sg_ids, admitted, uncovered, rules, reason):
        obj = _new(m.TargetVerdict)
        _tv0(obj, target_id)
        _tv1(obj, port)
        _tv2(obj, eni_id)
        _tv3(obj, sg_ids)
        _tv4(obj, admitted)
        _tv5(obj, uncovered)
        _tv6(obj, rules)
        _tv7(obj, reason)
        return obj

else:
    _target_verdict = m.TargetVerdict

if _FINDING_SET is not None:
    _f0, _f1, _f2, _f3, _f4 = _FINDING_SET

    def _finding(code, severity, message, protocol, evidence):
        obj = _new(m.Finding)
        _f0(obj, code)
        _f1(obj, severity)
        _f2(obj, message)
        _f3(obj, protocol)
        _f4(obj, evidence)
        return obj

else:
    _finding = m.Finding

if _PR_SET is not None:
    _p0, _p1, _p2, _p3, _p4, _p5, _p6, _p7, _p8 = _PR_SET

    def _protocol_result(protocol, port, verdict, total, admitted, preserved, expected, reasons, targets=()):
        obj = _new(m.ProtocolResult)
        _p0(obj, protocol)
        _p1(obj, port)
        _p2(obj, verdict)
        _p3(obj, total)
        _p4(obj, admitted)
        _p5(obj, preserved)
        _p6(obj, expected)
        _p7(obj, reasons)
        _p8(obj, targets)
        return obj

else:
    _protocol_result = m.ProtocolResult

if _BR_SET is not None:
    _b0, _b1, _b2, _b3, _b4, _b5, _b6, _b7, _b8, _b9 = _BR_SET

    def _binding_result(
        cluster, namespace, name, uid, arn, target_type, tg_protocol, protocols, hc, findings
    ):
        obj = _new(m.BindingResult)
        _b0(obj, cluster)
        _b1(obj, namespace)
        _b2(obj, name)
        _b3(obj, uid)
        _b4(obj, arn)
        _b5(obj, target_type)
        _b6(obj, tg_protocol)
        _b7(obj, protocols)
        _b8(obj, hc)
        _b9(obj, findings)
        return obj

else:
    _binding_result = m.BindingResult

if _HC_SET is not None:
    _h0, _h1, _h2, _h3, _h4, _h5, _h6, _h7, _h8 = _HC_SET

    def _health_check_result(protocol, port, path, proves, cannot_prove, admitted, healthy, unhealthy, other):
        obj = _new(m.HealthCheckResult)
        _h0(obj, protocol)
        _h1(obj, port)
        _h2(obj, path)
        _h3(obj, proves)
        _h4(obj, cannot_prove)
        _h5(obj, admitted)
        _h6(obj, healthy)
        _h7(obj, unhealthy)
        _h8(obj, other)
        return obj

else:
    _health_check_result = m.HealthCheckResult


# --- compiled security-group rules ---------------------------------------------------------------


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


class AclDenial(tuple):
    """One network-ACL refusal: (acl id, rule number — None when no entry matches and the final
    deny applies —, egress, protocol (tcp|udp|-1), from port, to port, refused CIDRs)."""

    __slots__ = ()

    def __new__(
        cls, acl_id: str, rule: int | None, egress: bool, proto: str, lo: int, hi: int, cidrs: NetSet
    ):
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

    def as_dict(self) -> dict:
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


# --- the index ---------------------------------------------------------------------------------


def controller_security_group(
    sg_ids: Sequence[str],
    security_groups: dict[str, m.SecurityGroup],
    cluster: str,
    eni_sg_tags: dict[str, str] | None = None,
) -> str | tuple[str, ...] | None:
    """The security group the controller writes a binding's networking rules to on one ENI.

    The controller's `resolveEndpointSGForENI` (pkg/networking/networking_manager.go): the only
    group of the ENI, whatever its tags; else the one group carrying the tag key
    `kubernetes.io/cluster/<cluster>` and, when the controller runs with
    `--service-target-eni-security-group-tags`, every one of those tags with the same value (an
    empty value must be present and empty). Returns the group id; a tuple of the matching ids
    (empty or several) when the controller errors because not exactly one matches; None when a
    group of the ENI is not in `security_groups` (the choice cannot be known).

    Pure and the one home of this choice: the analysis, the fix generator and the demo's emulated
    controller all call it.
    """
    ids = tuple(sg_ids)
    if len(ids) == 1:
        return ids[0]
    groups = [security_groups.get(s) for s in ids]
    if any(g is None for g in groups):
        return None
    cluster_tag = f"kubernetes.io/cluster/{cluster}"
    required = eni_sg_tags or {}
    matching = []
    for sg_id, group in zip(ids, groups, strict=True):
        tags = (group.tags if group is not None else None) or {}
        if cluster_tag in tags and all(k in tags and tags[k] == v for k, v in required.items()):
            matching.append(sg_id)
    return matching[0] if len(matching) == 1 else tuple(matching)


class InventoryIndex:
    """Lookups built once per inventory, and caches of judgements shared by all bindings.

    Public for the emulated controller, which resolves a binding's endpoints to ENIs exactly as the
    analysis does: `InventoryIndex(inventory)`, its tables and `eni_for_ip`."""

    def __init__(self, inv: m.Inventory) -> None:
        self.inv = inv
        # Built once per analysis and timed with it: the loops bind their tables to locals.
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
        self.tg_by_name = {tg.name: tg for tg in inv.target_groups.values() if tg.name}

        self.eni_by_ip: dict[str, m.NetworkInterface] = {}
        self.eni_prefixes: dict[tuple[int, int], dict[int, m.NetworkInterface]] = defaultdict(dict)
        self.primary_eni_by_instance: dict[str, m.NetworkInterface] = {}
        self.enis_by_description: dict[str, list[m.NetworkInterface]] = defaultdict(list)
        enis = sorted(inv.network_interfaces.values(), key=lambda e: str(e.id))
        # The first ENI (by id) holding an address wins. Filling the table from the last ENI to
        # the first lets C-level dict updates (one per ENI, not one call per address) keep that
        # rule: an earlier ENI overwrites a later one. `_norm_ip` never returns "".
        eni_by_ip = self.eni_by_ip
        norm_ip = _norm_ip
        for eni in reversed(enis):
            addresses = (*(eni.private_ips or ()), *(eni.ipv6_addresses or ()))
            eni_by_ip.update(dict.fromkeys(filter(None, map(norm_ip, addresses)), eni))
        for eni in enis:
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

        # The pods of pods_by_ip that have their own ENI (security groups for pods): usually none,
        # so most target lookups skip this table.
        self.pod_eni_pods_by_ip = {ip: pod for ip, pod in self.pods_by_ip.items() if pod.pod_eni}

        slices_by_service: dict[tuple[str, str], list[m.EndpointSlice]] = defaultdict(list)
        for eps in inv.endpoint_slices or ():
            if eps.service_name:
                slices_by_service[(eps.namespace, eps.service_name)].append(eps)
        self.slices_by_service = slices_by_service

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
        self._nacl: dict[tuple, tuple[NetSet, tuple[AclDenial, ...]]] = {}
        self._lb_private: dict[str, tuple[NetSet, str]] = {}
        self._lb_rules: dict[tuple[str, bool], tuple[tuple[str, ...], tuple[_Rule, ...]] | None] = {}
        self._egress_rules: dict[tuple[str, str, int], tuple[tuple[str, Any], ...]] = {}
        self._egress_none: set[tuple[str, str, int]] = set()
        self._egress_open: dict[tuple, frozenset[int]] = {}
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
        self._targets: dict[tuple, _Target] = {}
        self._jids: dict[tuple, int] = {}
        # Per jid: the target subnet's addresses (exempt from its ACL) and the malformed-input
        # problems of its security groups, their prefix lists and its ACL.
        self.jid_subnet: dict[int, NetSet] = {}
        self.jid_problems: dict[int, tuple[m.Problem, ...]] = {}
        self._sg_problems: dict[tuple[str, ...], tuple[m.Problem, ...]] = {}
        # id(ENI) -> (security group ids, network ACL, jid, groups all known); the ENIs live in
        # the inventory for the whole analysis, so id() is stable.
        self._eni_info: dict[int, tuple] = {}
        self._equivalent: dict[tuple, bool] = {}
        self._summary: dict[int | tuple, tuple[NetSet, str, tuple[str, ...]]] = {}
        self._sgs_known: dict[tuple[str, ...], bool] = {}
        self._controller_sg: dict[tuple[str, ...], object] = {}
        self._bindings_by_tg: dict[str, list[m.Binding]] | None = None
        self.client_cache: dict[tuple, tuple[NetSet, str]] = {}
        self.groups_cache: dict[tuple, tuple] = {}
        self.groups_intern: dict[tuple, tuple] = {}
        self.cluster_tag = f"kubernetes.io/cluster/{inv.cluster}"
        self._flat_rules: dict[tuple[str, ...], tuple[_Rule, ...] | None] = {}
        self._unreconciled: dict[tuple, tuple[dict, ...]] = {}

    def controller_sg(self, sg_ids: tuple[str, ...]) -> str | tuple[str, ...] | None:
        """`controller_security_group` for this inventory's cluster and tag flag, cached per ENI groups."""
        found = self._controller_sg.get(sg_ids, self)
        if found is not self:
            return found  # type: ignore[return-value]
        inv = self.inv
        result = controller_security_group(sg_ids, inv.security_groups, inv.cluster, inv.eni_sg_tags)
        self._controller_sg[sg_ids] = result
        return result

    def bindings_by_tg(self) -> dict[str, list[m.Binding]]:
        """The bindings of this cluster by target group ARN (built on first use)."""
        found = self._bindings_by_tg
        if found is None:
            found = self._bindings_by_tg = defaultdict(list)
            for binding in self.inv.bindings:
                arn = binding.target_group_arn
                if arn is None and binding.target_group_name:
                    tg = self.tg_by_name.get(binding.target_group_name)
                    arn = tg.arn if tg is not None else None
                if arn:
                    found[arn].append(binding)
        return found

    def sgs_known(self, sg_ids: tuple[str, ...]) -> bool:
        found = self._sgs_known.get(sg_ids)
        if found is None:
            found = self._sgs_known[sg_ids] = all(s in self.inv.security_groups for s in sg_ids)
        return found

    def summary(self, group_sets: tuple[tuple, ...], lbs: list[str]) -> tuple[NetSet, str, tuple[str, ...]]:
        """Expected sources of a protocol (union, text, LB groups + CIDRs), cached: bindings share them."""
        # The groups are interned by content, so their ids say everything that decides the
        # summary (the LBs only select them): bindings of different LBs with equal sources share it.
        key = id(group_sets[0]) if len(group_sets) == 1 else tuple(map(id, group_sets))
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

    def flat_rules(self, sg_ids: tuple[str, ...]) -> tuple[_Rule, ...] | None:
        """The rules of all the groups, in order; None when one of them is not known."""
        try:
            return self._flat_rules[sg_ids]
        except KeyError:
            pass
        found = [self.rules_of(s) for s in sg_ids]
        flat = None if any(r is None for r in found) else tuple(r for group in found for r in group or ())
        self._flat_rules[sg_ids] = flat
        return flat

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
        if found is None:
            matching = self._egress_rules[key] = ()
            self._egress_none.add(key)
        else:
            rules = []
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

    def rules_of(self, sg_id: str) -> tuple[_Rule, ...] | None:
        found = self._rules.get(sg_id)
        if found is None:
            sg = self.inv.security_groups.get(sg_id)
            if sg is None:
                return None
            found = tuple(_Rule(sg_id, rule, self.inv.prefix_lists) for rule in sg.ingress or ())
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
                if rule.resolved:
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
        self, nacl: m.NetworkAcl, proto: str, port: int, sources: NetSet, *, egress: bool = False
    ) -> tuple[NetSet, tuple[AclDenial, ...]]:
        """The part of `sources` the ACL lets in (with `egress`: lets out to, on `port`), and the
        entries that denied the rest."""
        key = (nacl.id, proto, port, sources, egress)
        found = self._nacl.get(key)
        if found is not None:
            return found
        remaining = sources
        allowed = EMPTY
        denials: list[AclDenial] = []
        entries = sorted(
            (e for e in nacl.entries or () if bool(e.egress) == egress),
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
                denials.append(AclDenial(nacl.id, entry.rule_number, egress, proto, port, port, hit))
            remaining = remaining - hit
        if remaining:
            denials.append(AclDenial(nacl.id, None, egress, proto, port, port, remaining))
        found = (allowed, tuple(denials))
        self._nacl[key] = found
        return found

    def nacl_replies(
        self, nacl: m.NetworkAcl, proto: str, peers: NetSet
    ) -> tuple[NetSet, tuple[AclDenial, ...]]:
        """The part of `peers` the ACL lets the targets' replies out to, on every ephemeral port
        (1024-65535), and why the rest is refused. ACLs are stateless: a reply is a new packet
        (nlb-udp-facts §3.6). An ACL without outbound entries in the data (AWS always lists at least
        its final deny) is not judged."""
        key = (nacl.id, proto, peers, "replies")
        found = self._nacl.get(key)
        if found is not None:
            return found
        outbound = [e for e in nacl.entries or () if e.egress]
        if not outbound:
            found = (peers, ())
            self._nacl[key] = found
            return found
        # Elementary port intervals: within one, every outbound entry decides the same way.
        bounds = {1024}
        for e in outbound:
            if norm_proto(e.protocol) in ("-1", proto) and e.port_from is not None:
                hi = e.port_to if e.port_to is not None else e.port_from
                bounds |= {b for b in (e.port_from, hi + 1) if 1024 < b <= 65535}
        points = sorted(bounds)
        allowed = peers
        denials: list[AclDenial] = []
        for i, lo in enumerate(points):
            ok, refused = self.nacl_allowed(nacl, proto, lo, peers, egress=True)
            allowed = allowed & ok
            if refused:
                hi = points[i + 1] - 1 if i + 1 < len(points) else 65535
                # The replies' refusal holds across the whole interval (elementary by construction).
                denials.extend(
                    AclDenial(d.acl_id, d.rule_number, True, d.proto, lo, hi, d.cidrs) for d in refused
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

    # -- targets --------------------------------------------------------------------------

    def resolve_target(self, th: m.TargetHealth, port: int | None, target_type: str | None, tg) -> _Target:
        # The resolution does not depend on the port: cached per id, type and address type (the
        # first registration's object serves as the prototype), cloned for every later
        # registration so each binding's health and port stay its own.
        key = (th.target_id, target_type, tg.ip_address_type)
        found = self._targets.get(key)
        if found is not None:
            return found.clone(th, port)
        return self.resolve_new(key, th, port, target_type, tg)

    def resolve_new(self, key: tuple, th: m.TargetHealth, port: int | None, target_type, tg) -> _Target:
        """Resolve a target not seen before (`key` as in `resolve_target`) and cache it."""
        target = _new(_Target)
        target.health = th
        target.target_id = str(th.target_id)
        target.port = port
        target.eni = target.problem = target.nacl = target.ip = None
        target.sg_ids = ()
        target.family = 4
        target.jid = -1
        target.sgs_known = True
        if target_type == "instance":
            target.family = 6 if str(tg.ip_address_type or "").lower() == "ipv6" else 4
            eni = self.primary_eni_by_instance.get(target.target_id)
            if eni is None:
                target.problem = (
                    f"no primary network interface (DeviceIndex 0) found for instance {target.target_id}"
                )
        elif target_type == "ip":
            ip = _norm_ip(target.target_id)
            target.ip = ip
            eni = None
            if ip is None:
                target.problem = f"target id {target.target_id!r} is not an IP address"
            else:
                target.family = 6 if ":" in ip else 4
                # Without pods on their own ENIs the secondary-address table answers directly.
                eni = (None if self.pod_eni_pods_by_ip else self.eni_by_ip.get(ip)) or self.eni_for_ip(ip)
                if eni is None:
                    target.problem = f"no network interface holds {ip}"
        else:
            eni = None
            target.problem = f"target type {target_type!r} is not ip or instance"
        if eni is not None:
            target.eni = eni
            # Many targets share an ENI (pod IPs on a node's primary ENI): what the ENI decides
            # is worked out once per ENI.
            info = self._eni_info.get(id(eni))
            if info is None:
                sg_ids = tuple(eni.security_group_ids or ())
                nacl = self.nacl_for(eni)
                # The ACL filters only at its subnet's boundary: the subnet is part of what decides.
                subnet_id = (eni.subnet_id or "") if nacl is not None else None
                jid = self._jids.get((sg_ids, nacl.id if nacl else None, subnet_id))
                if jid is None:
                    jid = self._jids[(sg_ids, nacl.id if nacl else None, subnet_id)] = len(self._jids)
                    self.jid_subnet[jid] = self.subnet_net(subnet_id) if subnet_id else EMPTY
                    self.jid_problems[jid] = self.object_problems(sg_ids, nacl)
                info = self._eni_info[id(eni)] = (sg_ids, nacl, jid, self.sgs_known(sg_ids))
            target.sg_ids, target.nacl, target.jid, target.sgs_known = info
        # Cached only once complete: a resolution that raised is retried (and raises) again.
        self._targets[key] = target
        return target

    def eni_for_ip(self, ip: str) -> m.NetworkInterface | None:
        pod = self.pod_eni_pods_by_ip.get(ip) if self.pod_eni_pods_by_ip else None
        if pod is not None:
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
        # `groups` are interned in `groups_intern`, alive for the whole analysis: id() is a cheap,
        # stable key; `jid` stands for the target's (security groups, network ACL).
        key = (target.jid, proto, port, id(groups))
        found = self._evals.get(key)
        if found is not None:
            return found
        found = self._evaluate(
            target.sg_ids, target.nacl, proto, port, groups, self.jid_subnet.get(target.jid, EMPTY)
        )
        self._evals[key] = found
        return found

    def subnet_net(self, subnet_id: str) -> NetSet:
        subnet = self.inv.subnets.get(subnet_id)
        if subnet is None:
            return EMPTY
        return NetSet.from_cidrs([c for c in (subnet.cidr, *(subnet.ipv6_cidrs or ())) if c])

    def lb_sg_problems(self, lb_arn: str) -> tuple[m.Problem, ...]:
        """`sg_problems` of a load balancer's security groups, cached per LB (asked per binding)."""
        found = self._lb_sg_problems.get(lb_arn)
        if found is None:
            lb = self.inv.load_balancers.get(lb_arn)
            groups = tuple(lb.security_groups or ()) if lb is not None else ()
            found = self._lb_sg_problems[lb_arn] = self.sg_problems(groups) if groups else ()
        return found

    def sg_problems(self, sg_ids: tuple[str, ...]) -> tuple[m.Problem, ...]:
        """Malformed input in these groups and in the prefix lists their rules name (cached)."""
        found = self._sg_problems.get(sg_ids)
        if found is None:
            out: list[m.Problem] = []
            lists: set[str] = set()
            for sg_id in sg_ids:
                sg = self.inv.security_groups.get(sg_id)
                if sg is None:
                    continue
                out.extend(sg.problems or ())
                lists.update(
                    r.source
                    for r in (*(sg.ingress or ()), *(sg.egress or ()))
                    if r.source_kind == "prefix_list"
                )
            for list_id in sorted(lists):
                pl = self.inv.prefix_lists.get(list_id)
                if pl is not None:
                    out.extend(pl.problems or ())
            found = self._sg_problems[sg_ids] = tuple(out)
        return found

    def object_problems(self, sg_ids: tuple[str, ...], nacl: m.NetworkAcl | None) -> tuple[m.Problem, ...]:
        return self.sg_problems(sg_ids) + tuple(nacl.problems or () if nacl is not None else ())

    def _evaluate(self, sg_ids, nacl, proto, port, groups, subnet: NetSet = EMPTY) -> _Eval:
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
        sg_allowed = allowed
        denials: tuple[AclDenial, ...] = ()
        if nacl is not None:
            # Only traffic crossing the subnet boundary meets the ACL (AWS VPC user guide, "Network
            # ACL basics": rules are evaluated when traffic enters and leaves the subnet, not as it
            # is routed within it), e.g. an LB node in the target's own subnet.
            inside = expected & subnet if subnet else EMPTY
            outside = expected - inside if inside else expected
            nacl_ok, denials = self.nacl_allowed(nacl, proto, port, outside)
            replies_ok, reply_denials = self.nacl_replies(nacl, proto, outside)
            nacl_ok = (nacl_ok & replies_ok) | inside
            denials += reply_denials
            allowed = allowed & nacl_ok
            cidr_allowed = cidr_allowed & nacl_ok
        level = coverage(allowed, expected)
        uncovered = expected - allowed
        unknown_lists = match.prefix_lists
        sg_level = coverage(sg_allowed, expected)
        if unknown_lists and sg_level != "full" and not denials:
            # An uncollected prefix list may hold exactly the uncovered range: no refusal is claimed
            # (unless a network ACL refuses part of the sources anyway: that holds whatever the
            # list holds).
            ev = _Eval(None, uncovered, via_sg, match.rules)
            ev.tail = (
                f"prefix list(s) {_short(unknown_lists)} admit {proto} {port} but their entries were not "
                f"collected (GetManagedPrefixListEntries); {uncovered} could lie in them"
            )
            ev.acl_denials = denials
            return ev
        ev = _Eval(level, uncovered, via_sg, match.rules)
        ev.sg_level = sg_level
        ev.sg_uncovered = expected - sg_allowed
        ev.acl_denials = denials
        ev.cidr_level = coverage(cidr_allowed, expected)
        # Open to everyone in the family the targets are judged in (`::/0` says nothing about IPv4).
        ev.broad = tuple(r for r in match.rules if r.broad and r.cidr & expected)
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
        if unknown_lists and sg_level != "full":
            ev.tail += f"; prefix list(s) {_short(unknown_lists)} not collected (they may admit more)"
        if denials and level != "full":
            if ev.sg_level == "full":
                ev.tail = (
                    f"the security groups admit {proto} {port} "
                    f"({_short((r.label for r in used), 3) or 'via the load balancer'}), but "
                )
            else:
                ev.tail += "; "
            ev.tail += "; ".join(d.text for d in denials)
        return ev


def _all_sgs(groups) -> frozenset[str]:
    out: set[str] = set()
    for lb_sgs, _ in groups:
        out |= lb_sgs
    return frozenset(out)


def _pod_eni_ids(annotation: str, ip: str) -> list[str]:
    """ENI ids of the pod annotation (`pod_eni_entries`, the one parser): the entry whose address
    is the pod IP first."""
    matching: list[str] = []
    others: list[str] = []
    for eni_id, addresses in pod_eni_entries(annotation) or ():
        (matching if ip in {_norm_ip(a) for a in addresses} else others).append(eni_id)
    return matching or others


# --- findings collector ------------------------------------------------------------------------


class _Findings:
    """A binding's findings, deduplicated by (code, protocol, message), sorted at the end.

    `keys` holds each finding's sort key, built when it is added, so the final sort compares
    tuples in C instead of calling a key function per finding.
    """

    __slots__ = ("items", "keys", "_seen")

    def __init__(self) -> None:
        self.items: list[m.Finding] = []
        self.keys: list[tuple] = []
        self._seen: set[tuple] = set()

    def extend_unchecked(self, findings: Iterable[m.Finding]) -> None:
        """Add findings without deduplication (the inventory-wide ones, e.g. stale data)."""
        for f in findings:
            self.items.append(f)
            self.keys.append((_SEVERITY_RANK.get(f.severity, 3), f.code, f.protocol or "", f.message))

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
        self.items.append(_finding(code, severity, message, protocol, evidence))
        self.keys.append((_SEVERITY_RANK.get(severity, 3), code, protocol or "", message))

    def invalid(self, obj: str, field: str, message: str) -> None:
        self.add(Code.INVALID_SPEC, "warning", f"{obj}: {field}: {message}", None, object=obj, field=field)

    def sorted(self) -> tuple[m.Finding, ...]:
        items = self.items
        if len(items) < 2:
            return tuple(items)
        # A stable sort of the positions by key: equal keys keep the order they were added in.
        keys = self.keys
        return tuple([items[i] for i in sorted(range(len(items)), key=keys.__getitem__)])


# --- per-binding analysis ----------------------------------------------------------------------


class _Ctx:
    """Everything one binding's analysis computes and the findings read."""

    __slots__ = (
        "ix",
        "b",
        "f",
        "tg",
        "tg_arn",
        "service",
        "sport",
        "sport_matches",
        "target_type",
        "carried",
        "targets",
        "health_known",
        "results",
        "preserved",
        "hc_blocked",
        "hc_admitted",
        "named_ports",
        "lbs_by_proto",
        "traffic_ports",
        "carriers",
        "client_ip_preserved",
        "short",
        "broad_evals",
        "state_counts",
        "unhealthy",
        "declared_ports",
        "uniform",
        "other_cluster",
        "acl_denials",
        "lb_front",
    )

    def __init__(self, ix: InventoryIndex, binding: m.Binding) -> None:
        self.ix = ix
        self.b = binding
        self.f = _Findings()
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
        self.preserved: dict[str, bool] = {}
        # Gathered while judging, for the findings passes (which then need no loop of their own):
        # per protocol, the targets short of the client ranges (not admitted via an LB group) and
        # the distinct judgements with over-broad rules; the health-checked targets not admitted.
        self.short: dict[str, list[tuple[_Target, _Eval]]] = {}
        self.broad_evals: dict[str, list[_Eval]] = {}
        self.hc_blocked: list[tuple[_Target, _Eval, int | None]] = []
        self.hc_admitted: bool | None = None
        self.named_ports: dict[str, set[int]] | None = None
        self.lbs_by_proto: dict[str, list[str]] = {}
        self.traffic_ports: list[int] | None = None
        self.carriers: dict[str, list[str]] | None = None
        self.client_ip_preserved: bool | None = None
        # (healthy, unhealthy, other) over every registration, draining included (health check).
        self.state_counts = (0, 0, 0)
        self.unhealthy: list[_Target] = []  # judged targets whose state starts with "unhealthy"
        self.declared_ports: list[tuple[str, int | str | None]] | None = None
        # (jid, port, family) when every target has an ENI, an int port and shares all three:
        # then each protocol and the health check need one judgement for the whole binding.
        self.uniform: tuple[int, int, int] | None = None
        # Registrations of a multi-cluster target group that belong to other clusters: neither
        # judged nor drift (`_own_target_test`).
        self.other_cluster: list[m.TargetHealth] = []
        # Per protocol (and "health" for the health checks): the network-ACL entries refusing it.
        self.acl_denials: dict[str, list[AclDenial]] = {}
        # Per (LB, protocol): `_lb_front`, shared by the inbound refusal, the explicit-client check
        # and the client ranges of the binding.
        self.lb_front: dict[tuple[str, str], tuple[tuple[int, ...], tuple[int, ...]] | None] = {}

    @property
    def obj(self) -> str:
        # Named only in INVALID_SPEC findings, which most bindings never get: built on demand.
        return f"TargetGroupBinding {self.b.namespace}/{self.b.name}"


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
        ix = InventoryIndex(inventory)
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
    key = attrgetter("namespace", "name", "uid")
    try:
        if all(type(v) is str for b in bindings for v in key(b)):
            # str(x) is x for these: the same order, with the key built in C.
            return sorted(bindings, key=key)
    except AttributeError:
        pass
    return sorted(bindings, key=lambda b: (str(b.namespace), str(b.name), str(b.uid)))


def _crashed(inventory: m.Inventory, binding: m.Binding, exc: Exception) -> m.BindingResult:
    obj = f"TargetGroupBinding {getattr(binding, 'namespace', '?')}/{getattr(binding, 'name', '?')}"
    finding = m.Finding(
        Code.INVALID_SPEC,
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
            if not is_stale(source.last_success_at, interval, inv.now):
                continue
            if source.last_success_at is None:
                message = f"{label} has never been polled successfully; its data may be missing or old"
                age = None
            else:
                age = int((inv.now - source.last_success_at).total_seconds())
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
                Code.STALE_DATA,
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


def _analyze_binding(ix: InventoryIndex, b: m.Binding, stale: list[m.Finding]) -> m.BindingResult:
    c = _Ctx(ix, b)
    if stale:
        c.f.extend_unchecked(stale)
    _check_spec(c)
    _resolve_target_group(c)
    _check_webhook_rules(c)
    _resolve_service(c)
    _derive_protocols(c)
    if c.tg is not None:
        _resolve_targets(c)
        for proto in c.carried:
            c.results.append(_judge_protocol(c, proto))
        health = _quic_health_note(c, _judge_health_check(c))
        _findings_traffic(c)
        _findings_health(c)
        _findings_networking(c)
        _finding_drift(c)
        _findings_lb_features(c)
        _finding_zonal_shift(c)
    else:
        health = None
        for proto in c.carried:
            c.results.append(_unknown_protocol(c, proto))
    _finding_service_protocol(c)
    _findings_probes(c)
    return _binding_result(
        ix.inv.cluster,
        b.namespace,
        b.name,
        b.uid,
        c.tg_arn,
        c.target_type,
        c.tg.protocol if c.tg is not None and c.tg.protocol else b.target_group_protocol,
        tuple(c.results),
        health,
        c.f.sorted(),
    )


def _check_spec(c: _Ctx) -> None:
    b = c.b
    seen_fields = set()
    for problem in b.problems or ():
        seen_fields.add(problem.field)
        c.f.invalid(problem.object, problem.field, problem.message)
    for i, rule in enumerate(b.networking or ()):
        if not rule.ports and f"spec.networking.ingress[{i}].ports" not in seen_fields:
            # (`ports` missing or not a list is already an INVALID_SPEC naming the field.)
            c.f.add(
                Code.EMPTY_PORTS_LIST,
                "warning",
                f"spec.networking.ingress[{i}] has `ports: []`: the controller creates no rule at all for it "
                "(aws-load-balancer-controller#4907); list each protocol and port explicitly",
                None,
                rule=i,
            )
        for j, peer in enumerate(rule.peers or ()):
            if peer.cidr is not None:
                if parse_network(peer.cidr) is None:
                    field = f"spec.networking.ingress[{i}].from[{j}].ipBlock.cidr"
                    if field not in seen_fields:
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
    field = _ANNOTATION_FIELD
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
            Code.TARGET_GROUP_NOT_FOUND,
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


_VPC_ID = re.compile(r"^(?:vpc-[0-9a-f]{8}|vpc-[0-9a-f]{17}|vpc-[0-9a-f]{32})$")
_QUIC = frozenset({"QUIC", "TCP_QUIC"})
# Most of the rules below run on create only in the controller's admission webhook, and the fields
# are not immutable (or the webhook was not running), so an object that breaks them can exist.
_WEBHOOK = "the controller's admission webhook rejects this"


def _spec_field(b: m.Binding, name: str) -> Any:
    spec = b.raw.get("spec") if isinstance(b.raw, dict) else None
    return spec.get(name) if isinstance(spec, dict) else None


def _check_webhook_rules(c: _Ctx) -> None:
    """The rules of the controller's TargetGroupBinding validator
    (webhooks/elbv2/targetgroupbinding_validator.go) that a bundle can show, as INVALID_SPEC.
    (Required fields are checked by `normalize`; immutable-field changes need the previous
    version of the object, which no bundle holds.)"""
    b, tg = c.b, c.tg
    if b.target_type == "ip" and _spec_field(b, "nodeSelector") is not None:
        c.f.invalid(
            c.obj,
            "spec.nodeSelector",
            f"set with targetType ip; {_WEBHOOK} (nodeSelector is for instance targets)",
        )
    if _spec_field(b, "iamRoleArnToAssume") and b.target_type == "instance":
        c.f.invalid(
            c.obj,
            "spec.iamRoleArnToAssume",
            f"set with targetType instance; {_WEBHOOK} "
            "(a target group in another account takes ip targets only)",
        )
    declared_type = b.ip_address_type
    if declared_type is not None and declared_type not in ("ipv4", "ipv6"):
        c.f.invalid(c.obj, "spec.ipAddressType", f"{declared_type!r} is not ipv4 or ipv6")
    vpc_id = _spec_field(b, "vpcID")
    if vpc_id is not None and vpc_id != "":
        if not isinstance(vpc_id, str) or not _VPC_ID.match(vpc_id):
            c.f.invalid(
                c.obj,
                "spec.vpcID",
                f"{str(vpc_id)[:80]!r} is not a VPC id (vpc- followed by 8, 17 or 32 lowercase hex "
                f"characters); {_WEBHOOK}",
            )
        elif tg is not None and tg.vpc_id and tg.vpc_id != vpc_id:
            c.f.invalid(
                c.obj,
                "spec.vpcID",
                f"{vpc_id} but target group {tg.name or tg.arn} is in {tg.vpc_id}; {_WEBHOOK}",
            )
    if tg is not None:
        tg_type = str(tg.ip_address_type).lower() if tg.ip_address_type else None
        if tg_type is not None and tg_type not in ("ipv4", "ipv6"):
            c.f.invalid(
                f"TargetGroup {tg.arn}",
                "IpAddressType",
                f"{str(tg.ip_address_type)[:40]!r} is not ipv4 or ipv6",
            )
        elif (
            tg_type is not None
            and declared_type in (None, "ipv4", "ipv6")
            and (declared_type or "ipv4") != tg_type
        ):
            c.f.invalid(
                c.obj,
                "spec.ipAddressType",
                f"{declared_type or 'unset (ipv4)'} but target group {tg.name or tg.arn} is "
                f"{tg_type}; {_WEBHOOK}",
            )
        spec_proto = b.target_group_protocol
        if spec_proto is not None and tg.protocol and spec_proto != tg.protocol:
            c.f.invalid(
                c.obj,
                "spec.targetGroupProtocol",
                f"{spec_proto!r} but target group {tg.name or tg.arn} is {tg.protocol!r}; {_WEBHOOK}",
            )
        elif tg.protocol in _QUIC and b.target_type == "instance":
            # The validator checks this only with targetGroupProtocol set, but its mutating
            # webhook sets that field from the target group on every create: every create is checked.
            c.f.invalid(
                c.obj,
                "spec.targetType",
                f"instance targets with a {tg.protocol} target group; {_WEBHOOK} (QUIC needs ip targets)",
            )
    if c.tg_arn:
        others = [o for o in c.ix.bindings_by_tg().get(c.tg_arn, ()) if o is not b]
        if others and not (
            _spec_field(b, "multiClusterTargetGroup") is True
            and all(_spec_field(o, "multiClusterTargetGroup") is True for o in others)
        ):
            c.f.invalid(
                c.obj,
                "spec.targetGroupARN",
                f"target group {c.tg_arn} is also bound by {_short(o.key for o in others)}; {_WEBHOOK} "
                "unless every binding of the group sets multiClusterTargetGroup: true",
            )


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
    ix = c.ix
    health = ix.inv.target_health.get(tg.arn)
    if health is None:
        # Not collected (an empty list is a group with no targets): nothing to judge.
        c.health_known = False
        return
    resolved = ix._targets
    resolve_new = ix.resolve_new
    target_type = c.target_type
    address_type = tg.ip_address_type
    targets = c.targets
    healthy = unhealthy_count = other = 0
    own = _own_target_test(c)
    jid_problems = ix.jid_problems
    seen_jids: set[int] = set()
    for lb_arn in tg.load_balancer_arns or ():
        if lb_arn in ix.lbs_with_sgs:
            for problem in ix.lb_sg_problems(lb_arn):
                c.f.invalid(problem.object, problem.field, problem.message)
    for th in health or ():
        if own is not None and not own(th.target_id):
            c.other_cluster.append(th)
            continue
        # The health check's counts cover every registration, draining ones included.
        state = th.state
        if state == "healthy":
            healthy += 1
            bad = False
        elif isinstance(state, str):
            bad = state.startswith("unhealthy")
            if bad:
                unhealthy_count += 1
            else:
                other += 1
                if state == "draining":
                    continue
        else:
            other += 1
            bad = str(state).startswith("unhealthy")
        port = th.port if isinstance(th.port, int) else tg.port
        key = (th.target_id, target_type, address_type)
        found = resolved.get(key)
        target = found.clone(th, port) if found is not None else resolve_new(key, th, port, target_type, tg)
        targets.append(target)
        if target.jid not in seen_jids:
            # Malformed rules, ACL entries or prefix lists this target's judgement reads.
            seen_jids.add(target.jid)
            for problem in jid_problems.get(target.jid, ()):
                c.f.invalid(problem.object, problem.field, problem.message)
        if bad:
            c.unhealthy.append(target)
        if target.problem:
            c.f.invalid(
                f"Target {target.target_id} of TargetGroup {tg.name or tg.arn}",
                "network interface",
                target.problem,
            )
        elif target.eni is not None and not target.sgs_known:
            for sg_id in target.sg_ids:
                if sg_id not in ix.inv.security_groups:
                    c.f.invalid(
                        f"NetworkInterface {target.eni.id}",
                        "Groups",
                        f"security group {sg_id} not found in AWS data",
                    )
    c.state_counts = (healthy, unhealthy_count, other)
    if targets:
        first = targets[0]
        jid, port, family = first.jid, first.port, first.family
        if (
            jid >= 0  # an ENI was found
            and isinstance(port, int)
            and all(
                t.jid == jid and t.family == family and t.port == port and isinstance(t.port, int)
                for t in targets
            )
        ):
            c.uniform = (jid, port, family)


def _traffic_ports(c: _Ctx) -> list[int]:
    if c.traffic_ports is None:
        c.traffic_ports = _traffic_ports_uncached(c)
    return c.traffic_ports


def _traffic_ports_uncached(c: _Ctx) -> list[int]:
    if c.uniform is not None:
        return [c.targets[0].port]  # type: ignore[list-item]  # every target has this int port
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
        listeners: Iterable[m.Listener] = c.ix.listeners_by_tg.get(tg.arn, ())
        unparsed = c.ix.unparsed_listeners_by_lb
        if not unparsed and len(listeners) == 1:  # type: ignore[arg-type]
            # The usual case, one listener: the same mapping without sets and sorting.
            (listener,) = listeners
            lb_arn = listener.load_balancer_arn
            carried = _CARRIES.get((str(listener.protocol).upper(), tg_proto), ())
            c.carriers = {p: [lb_arn] for p in carried}
            return c.carriers.get(proto, [])
        if unparsed:
            listeners = list(listeners)
            for lb_arn in tg.load_balancer_arns or ():
                listeners.extend(unparsed.get(lb_arn, ()))
        for listener in listeners:
            for carried in _CARRIES.get((str(listener.protocol).upper(), tg_proto), ()):
                found.setdefault(carried, set()).add(listener.load_balancer_arn)
        c.carriers = {p: sorted(lbs) for p, lbs in found.items()}
    return c.carriers.get(proto, [])


def _forwarded_at_all(c: _Ctx) -> bool:
    """Does any listener forward to the binding's group, whatever it carries?"""
    tg = c.tg
    assert tg is not None
    tg_proto = str(tg.protocol).upper()
    unparsed = c.ix.unparsed_listeners_by_lb
    listeners = [
        *c.ix.listeners_by_tg.get(tg.arn, ()),
        *(li for lb_arn in tg.load_balancer_arns or () for li in unparsed.get(lb_arn, ())),
    ]
    # A listener whose protocol cannot carry anything to this group (TCP -> TLS) forwards nothing.
    return any(_CARRIES.get((str(li.protocol).upper(), tg_proto)) for li in listeners)


def _client_ip_preserved(c: _Ctx) -> bool:
    if c.client_ip_preserved is None:
        c.client_ip_preserved = _client_ip_preserved_uncached(c)
    return c.client_ip_preserved


def _client_ip_preserved_uncached(c: _Ctx) -> bool:
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


def _front_rules(c: _Ctx, lb_arn: str, proto: str) -> tuple[int, ...]:
    """Which inbound rules of the LB (positions) match the listener ports forwarding `proto` to
    this group: all `InventoryIndex.lb_front_door` reads of them. The cache key of the client ranges: keyed
    by the listener ports instead, every binding (a listener port of its own) missed the cache."""
    if proto:
        front = _lb_front(c, lb_arn, proto)
        return front[1] if front is not None else ()
    found = c.ix.lb_rules(lb_arn, egress=False)
    if found is None:
        return ()
    tg = c.tg
    assert tg is not None
    tg_proto = str(tg.protocol).upper()
    by_port = c.ix._front_by_port
    matched: set[int] = set()
    for li in c.ix.listeners_by_tg.get(tg.arn, ()):
        if li.load_balancer_arn != lb_arn or not isinstance(li.port, int):
            continue
        for carried in _CARRIES.get((str(li.protocol).upper(), tg_proto), ()):
            key = (lb_arn, carried.lower(), li.port)
            hits = by_port.get(key)
            if hits is None:
                hits = by_port[key] = tuple(i for i, r in enumerate(found[1]) if r.matches(key[1], li.port))
            matched.update(hits)
    return tuple(sorted(matched))


def _client_ranges(c: _Ctx, lb_arn: str, proto: str = "") -> tuple[NetSet, str]:
    assert c.tg is not None
    key: tuple = (c.b.client_cidrs, lb_arn, c.tg.vpc_id)
    if lb_arn in c.ix.lbs_with_sgs:
        # Its inbound rules narrow the default: by the ones matching the listeners forwarding here.
        key += (_front_rules(c, lb_arn, proto),)
    found = c.ix.client_cache.get(key)
    if found is None:
        found = c.ix.client_cache[key] = _client_ranges_uncached(c, lb_arn, proto)
    return found


def _client_ranges_uncached(c: _Ctx, lb_arn: str, proto: str = "") -> tuple[NetSet, str]:
    explicit = _explicit_clients(c)
    if explicit is not None:
        clients, origin = explicit
        front = c.ix.lb_front_door(lb_arn, c.tg, proto) if lb_arn in c.ix.lbs_with_sgs and c.tg else None
        if front is not None:
            # Only the clients the LB's inbound rules admit reach a target (the rest are refused
            # at the LB: `_explicit_client_refusal`).
            inside = clients & front[0]
            if inside and inside != clients:
                return inside, f"{origin}, within {front[2]}"
        return clients, origin
    assert c.tg is not None
    return c.ix.default_clients(lb_arn, c.tg, proto)


def _source_groups(
    c: _Ctx, lbs: Sequence[str], preserved: bool, family: int, hc: bool = False, proto: str = ""
) -> tuple[tuple[frozenset[str], NetSet], ...]:
    """(LB security groups, expected CIDRs of `family`) per load balancer."""
    assert c.tg is not None
    key: tuple = (
        lbs if type(lbs) is tuple else tuple(lbs),
        preserved and not hc,
        family,
        c.b.client_cidrs,
        c.tg.vpc_id,
    )
    with_sgs = c.ix.lbs_with_sgs
    if preserved and not hc and with_sgs and not with_sgs.isdisjoint(lbs):
        # Client ranges per listener and protocol (`_client_ranges`).
        if len(lbs) == 1:  # the usual case, without a generator
            key += ((_front_rules(c, lbs[0], proto),), proto)
        else:
            key += (tuple(_front_rules(c, lb, proto) for lb in lbs), proto)
    found = c.ix.groups_cache.get(key)
    if found is None:
        found = _source_groups_uncached(c, lbs, preserved, family, hc, proto)
        # Interned by content: the judgement caches key on id(groups), and load balancers that
        # present the same sources (e.g. every internal LB of a VPC for preserved client IPs)
        # then share one judgement per rule set instead of one per LB.
        found = c.ix.groups_cache[key] = c.ix.groups_intern.setdefault(found, found)
    return found


def _source_groups_uncached(
    c: _Ctx, lbs: Sequence[str], preserved: bool, family: int, hc: bool, proto: str = ""
) -> tuple[tuple[frozenset[str], NetSet], ...]:
    groups = []
    for lb_arn in lbs:
        lb = c.ix.inv.load_balancers.get(lb_arn)
        lb_sgs = frozenset(lb.security_groups or ()) if lb is not None else frozenset()
        private, _ = c.ix.lb_private(lb_arn)
        if preserved and not hc:
            clients, _ = _client_ranges(c, lb_arn, proto)
            sources = clients.family(family)
            other = clients.family(10 - family)  # 4 <-> 6
            if other:
                # Clients of the other family reach this target from the LB's own address.
                sources = sources | private.family(family)
        else:
            sources = private.family(family)
        groups.append((lb_sgs, sources))
    return tuple(groups)


def _listener_ports(c: _Ctx, lb_arn: str, proto: str) -> tuple[int, ...]:
    """The ports on which listeners of load balancer `lb_arn` carry `proto` to this target group,
    sorted: what the LB's inbound rules must admit for clients to get in."""
    tg = c.tg
    assert tg is not None
    tg_proto = str(tg.protocol).upper()
    listeners = c.ix.listeners_by_tg.get(tg.arn, ())
    if len(listeners) == 1:
        # The usual case, one listener: the same answer without a set and sorting.
        (li,) = listeners
        if c.carriers is not None and not c.ix.unparsed_listeners_by_lb:
            # `_carrying_lbs` read this one listener already: it lists `lb_arn` for `proto` exactly
            # when the listener is on that LB and carries `proto`.
            carries = lb_arn in c.carriers.get(proto, ())
        else:
            carries = li.load_balancer_arn == lb_arn and proto in _CARRIES.get(
                (str(li.protocol).upper(), tg_proto), ()
            )
        return (li.port,) if carries and isinstance(li.port, int) else ()
    return tuple(
        sorted(
            {
                li.port
                for li in listeners
                if li.load_balancer_arn == lb_arn
                and isinstance(li.port, int)
                and proto in _CARRIES.get((str(li.protocol).upper(), tg_proto), ())
            }
        )
    )


_UNSET = object()  # a cache's "not asked yet", where None is an answer


def _lb_front(c: _Ctx, lb_arn: str, proto: str) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """(the listener ports carrying `proto` to this group on load balancer `lb_arn`, the positions
    of its inbound rules matching any of them), or None when it has no collected security groups.
    Once per binding, LB and protocol, for the inbound refusal, the explicit client ranges and the
    client ranges' cache key alike; the matching itself is the index's (`lb_inbound_hits`)."""
    key = (lb_arn, proto)
    front = c.lb_front.get(key, _UNSET)
    if front is not _UNSET:
        return front  # type: ignore[return-value]
    ix = c.ix
    found = None
    if lb_arn in ix.lbs_with_rules:
        found = ix._lb_rules.get((lb_arn, False)) or ix.lb_rules(lb_arn, egress=False)
    front = None
    if found is not None:
        ports = _listener_ports(c, lb_arn, proto)
        front = (ports, ix.lb_inbound_hits(lb_arn, proto.lower(), ports, found[1]) if ports else ())
    c.lb_front[key] = front
    return front


def _lb_refusals(c: _Ctx, proto: str, lbs: Sequence[str]) -> dict[str, str]:
    """Per load balancer carrying `proto` whose security groups admit no client of it on the
    listener ports: why. Clients meet the LB's inbound rules before any target rule; health checks
    do not (nlb-udp-facts §3.5), so the targets stay healthy."""
    refused: dict[str, str] = {}
    for lb_arn in lbs:
        front = _lb_front(c, lb_arn, proto)
        if front is None or not front[0] or front[1]:
            continue  # no groups to judge, no listener port, or a rule admits some client
        ports = front[0]
        sg_ids = c.ix.lb_rules(lb_arn, egress=False)[0]  # type: ignore[index]
        refused[lb_arn] = (
            f"the security group(s) {', '.join(sg_ids)} of load balancer {_lb_name(c, lb_arn)} admit no "
            f"{proto.lower()} on listener port(s) {_short(ports, 5)}, so no client traffic gets in"
        )
    return refused


def _explicit_client_refusal(c: _Ctx, lb_arn: str, proto: str) -> tuple[str, str] | None:
    """How the inbound rules of a load balancer with security groups treat explicitly given client
    ranges (annotation or cluster setting) on the listener ports carrying `proto`: ("all" | "some" |
    "undecided", why), or None when they admit every one of them, or nothing decides it (no
    explicit ranges, no collected groups). Rules naming a security group or prefix list may admit
    the rest, so a remainder next to them is undecided rather than refused."""
    explicit = _explicit_clients(c)
    if explicit is None:
        return None
    clients, origin = explicit
    front = _lb_front(c, lb_arn, proto)
    if front is None or not front[0]:
        return None
    ports, hits = front
    sg_ids, rules = c.ix.lb_rules(lb_arn, egress=False)  # type: ignore[misc]
    matching = [rules[i] for i in hits]
    admitted = union_all(r.cidr for r in matching if r.kind == "cidr")
    refused = clients - admitted
    if not refused:
        return None
    where = (
        f"the inbound rules of the security group(s) {', '.join(sg_ids)} of load balancer "
        f"{_lb_name(c, lb_arn)} on {proto.lower()} port(s) {_short(ports, 5)}"
    )
    lb = c.ix.inv.load_balancers.get(lb_arn)
    if lb is not None and lb.endpoint_services and str(lb.privatelink_enforce_inbound or "").lower() != "on":
        # Endpoint traffic skips the inbound rules when enforcement is off: refused ranges may be
        # endpoint consumers, and only the user knows.
        off = str(lb.privatelink_enforce_inbound or "").lower() == "off"
        return "undecided", (
            f"client ranges unknown at the load balancer: {where} refuse {_short(_cidrs(refused), 5)} "
            f"({origin}) unless they reach it through VPC endpoint service(s) "
            f"{_short(lb.endpoint_services, 3)}, whose traffic those rules "
            + (
                "do not filter (EnforceSecurityGroupInboundRulesOnPrivateLinkTraffic off)"
                if off
                else "may not filter (EnforceSecurityGroupInboundRulesOnPrivateLinkTraffic not collected)"
            )
        )
    if any(r.kind != "cidr" for r in matching):
        return "undecided", (
            f"client ranges unknown at the load balancer: {where} admit {_short(_cidrs(refused), 5)} "
            f"({origin}) only if those clients are in the security groups or prefix lists they name"
        )
    if refused == clients:
        return "all", f"{where}{LB_REFUSES_CLIENTS[0]}{_short(_cidrs(clients), 5)} ({origin})"
    return "some", (
        f"{where}{LB_REFUSES_CLIENTS[1]}{_short(_cidrs(refused), 5)} of {_short(_cidrs(clients), 5)} "
        f"({origin}), whether or not the client IP is preserved"
    )


def _explicit_clients(c: _Ctx) -> tuple[NetSet, str] | None:
    """The client ranges given explicitly (annotation, then cluster setting), as
    `_client_ranges_uncached` reads them; None when the default applies."""
    if c.b.client_cidrs:
        found = NetSet.from_cidrs(c.b.client_cidrs)
        if found:
            return found, f"annotation {m.CLIENT_CIDRS_ANNOTATION}"
    if c.ix.inv.client_cidrs:
        found = NetSet.from_cidrs(c.ix.inv.client_cidrs)
        if found:
            return found, "cluster client ranges"
    return None


def _unique_denials(evals: Iterable[_Eval]) -> list[AclDenial]:
    seen: dict[AclDenial, None] = {}
    for ev in evals:
        if ev.level not in ("full", None):
            seen.update(dict.fromkeys(ev.acl_denials))
    return list(seen)


def _refused_eval(tail: str) -> _Eval:
    ev = _Eval("none", EMPTY, False, ())
    ev.tail = tail
    return ev


def _lb_name(c: _Ctx, lb_arn: str) -> str:
    lb = c.ix.inv.load_balancers.get(lb_arn)
    return (lb.name if lb is not None and lb.name else "") or lb_arn


def _lb_egress_refuses_any(
    c: _Ctx, lbs: Sequence[str], proto: str, port: int, targets: Sequence[_Target]
) -> bool:
    """`any(_lb_egress_refusal(...) for t in targets)`, without the per-target check when the load
    balancers let this traffic out to their whole address family (the usual outbound rule)."""
    ix = c.ix
    lbs_key = lbs if type(lbs) is tuple else tuple(lbs)
    families = ix._egress_open.get((lbs_key, proto, port))
    if families is None:
        families = ix.lb_egress_open(lbs_key, proto, port)
    # An `ip` target's address is canonical and its family read from it (`resolve_new`); any
    # other target (instance, no address) goes through the full check.
    if families:
        uniform = c.uniform
        if targets is c.targets and uniform is not None and c.target_type == "ip":
            # Every target has an ENI (`_Ctx.uniform`), which an `ip` target only gets through its
            # address, and they share one family: no need to look at each.
            if uniform[2] in families:
                return False
        elif all(t.ip is not None and t.family in families for t in targets):
            return False
    return any(_lb_egress_refusal(c, lbs, proto, port, t) for t in targets)


def _lb_egress_refusal(c: _Ctx, lbs: Sequence[str], proto: str, port: int, target: _Target) -> str:
    """Why a load balancer's security groups let nothing out to `target` on `proto`/`port` ('' if
    they do, or cannot be judged). Outbound rules apply to traffic and health checks alike."""
    eni = target.eni
    dest = target.ip
    if dest is None and eni is not None:
        # An instance target gets the LB's packets on its primary address of the target's family.
        addresses = eni.ipv6_addresses if target.family == 6 else eni.private_ips
        dest = addresses[0] if addresses else None
    ix = c.ix
    for lb_arn in lbs:
        allowed = ix.lb_egress_allows(lb_arn, proto, port, dest, target.sg_ids)
        if allowed is False:
            sg_ids = ix.lb_rules(lb_arn, egress=True)[0]  # type: ignore[index]  # judged, so known
            return (
                f"the security group(s) {', '.join(sg_ids)} of load balancer {_lb_name(c, lb_arn)} allow "
                f"no outbound {proto} {port} to {dest or target.target_id}"
            )
    return ""


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
        if _forwarded_at_all(c):
            # A listener forwards the group's other protocol (a TCP_UDP group behind a TCP or UDP
            # listener): this one is simply not offered; the targets are in use, not NotInUse.
            return m.ProtocolResult(proto, port, "not_offered", total, 0, preserved, (), (reason,))
        c.f.add(
            Code.NO_LISTENER,
            "warning",
            f"no listener forwards {proto} to target group {tg.name or tg.arn}: {proto} traffic never "
            "reaches these targets (targets show unused / Target.NotInUse)",
            proto,
            targetGroup=tg.arn,
            loadBalancers=list(tg.load_balancer_arns),
        )
        return m.ProtocolResult(proto, port, "not_offered", total, 0, preserved, (), (reason,))

    # Without the load balancer's addresses there is nothing to judge against.
    if not preserved:
        for lb_arn in lbs:
            if not c.ix.lb_private(lb_arn)[0]:
                reason = (
                    f"the private addresses of load balancer {lb_arn} are unknown (neither its zones, "
                    "its network interfaces nor its subnets were collected)"
                )
                return m.ProtocolResult(proto, port, "unknown", total, 0, preserved, (), (reason,))

    # The load balancer's own security groups, when it has them: clients meet their inbound
    # rules first, and their outbound rules must let the traffic out to each target.
    with_rules = c.ix.lbs_with_rules
    lb_sgs = bool(with_rules) and not with_rules.isdisjoint(lbs)
    lb_refused = _lb_refusals(c, proto, lbs) if lb_sgs else {}
    # Explicit client ranges meet the LB's inbound rules too (issue 19 item 2): those none of its
    # rules admit never get in, whether or not the client IP is preserved.
    lb_narrowed: dict[str, str] = {}
    lb_undecided: dict[str, str] = {}
    if lb_sgs and (c.b.client_cidrs or c.ix.inv.client_cidrs):  # else no explicit ranges
        for lb_arn in lbs:
            if lb_arn in lb_refused:
                continue
            found = _explicit_client_refusal(c, lb_arn, proto)
            if found is None:
                continue
            kind, why = found
            if kind == "all":
                lb_refused[lb_arn] = why
            elif kind == "some":
                lb_narrowed[lb_arn] = why
            else:
                lb_undecided[lb_arn] = why
    if lb_refused and len(lb_refused) < len(lbs):
        # Only some load balancers refuse: judge the others' traffic, then say what is lost.
        lbs = [lb_arn for lb_arn in lbs if lb_arn not in lb_refused]
        c.lbs_by_proto[proto] = lbs
    elif lb_refused:
        refusal = "; ".join(lb_refused.values())
        if refusal:
            refused = tuple(
                _target_verdict(
                    t.target_id,
                    t.port,
                    t.eni.id if t.eni is not None else None,
                    t.sg_ids,
                    None if t.eni is None else False,
                    (),
                    (),
                    refusal if t.eni is not None else (t.problem or "not judged"),
                )
                for t in c.targets
            )
            n_unknown = sum(1 for v in refused if v.admitted is None)
            return _protocol_result(
                proto,
                port,
                "unknown" if n_unknown else "blocked",
                total,
                0,
                preserved,
                (),
                (f"0 of {total} target(s) receive {proto} {port}: {refusal}",),
                refused,
            )

    # Source groups per address family, in the order the targets first need them (the summary
    # below covers exactly those families, as it always has).
    group_cache: dict[int, tuple] = {}
    lbs_key = tuple(lbs)
    eval_cache = c.ix._evals
    evaluate = c.ix.evaluate
    verdicts: list[m.TargetVerdict] = []
    append = verdicts.append
    tails: dict[str, list[str]] = {}
    short: list[tuple[_Target, _Eval]] = []
    distinct: list[_Eval] = []
    first_tail = ""
    full = partial = unknown = 0
    target_verdict = _target_verdict
    # A binding's targets mostly share security groups, ACL, family and port: the previous
    # target's judgement is reused without building a cache key.
    last_jid = last_port = last_family = -1
    ev: _Eval | None = None
    # Outbound rules of the LB depend on each target's address: when they refuse one, judge
    # target by target.
    uniform = c.uniform
    if lb_sgs and uniform is not None:
        tport = uniform[1]
        if _lb_egress_refuses_any(c, lbs, sg_proto, tport, c.targets):
            uniform = None
    targets = c.targets if uniform is None else ()
    if uniform is not None:
        # Every target shares one judgement: judge once, then build the verdicts in one pass
        # (the same counts, reasons and order the loop below produces).
        jid, tport, family = uniform
        groups = group_cache[family] = _source_groups(c, lbs_key, preserved, family, proto=proto)
        ev = eval_cache.get((jid, sg_proto, tport, id(groups)))
        if ev is None:
            ev = evaluate(c.targets[0], sg_proto, tport, groups)
        distinct.append(ev)
        level, first_tail = ev.level, ev.tail
        admitted_all = True if level == "full" else None if level is None else False
        uncovered, labels = ev.uncovered_cidrs, ev.labels
        verdicts = [
            target_verdict(
                t.target_id, t.port, t.eni.id, t.sg_ids, admitted_all, uncovered, labels, first_tail
            )
            for t in c.targets
        ]
        n = len(verdicts)
        if level == "full":
            full = n
        else:
            if level is None:
                unknown = n
            else:
                if level == "partial":
                    partial = n
                if not ev.via_sg and ev.sg_level != "full":
                    short = [(t, ev) for t in c.targets]
            tails[first_tail] = [t.label for t in c.targets]
    for target in targets:
        tport = target.port
        eni = target.eni
        if eni is None or not isinstance(tport, int):
            unknown += 1
            tail = target.problem or "no traffic port registered"
            append(target_verdict(target.target_id, tport, None, target.sg_ids, None, (), (), tail))
            tails.setdefault(tail, []).append(target.label)
            if not first_tail:
                first_tail = tail
            continue
        family = target.family
        if target.jid != last_jid or tport != last_port or family != last_family:
            groups = group_cache.get(family)
            if groups is None:
                groups = group_cache[family] = _source_groups(c, lbs_key, preserved, family, proto=proto)
            ev = eval_cache.get((target.jid, sg_proto, tport, id(groups)))
            if ev is None:
                ev = evaluate(target, sg_proto, tport, groups)
            last_jid, last_port, last_family = target.jid, tport, family
            distinct.append(ev)
        assert ev is not None
        level = ev.level
        tail = ev.tail
        uncovered_cidrs, labels = ev.uncovered_cidrs, ev.labels
        if lb_sgs and level is not None:
            refusal = _lb_egress_refusal(c, lbs, sg_proto, tport, target)
            if refusal:
                level, tail, uncovered_cidrs, labels = "none", refusal, (), ()
        if not first_tail:
            first_tail = tail
        if level == "full":
            admitted: bool | None = True
            full += 1
        else:
            if level is None:
                admitted = None
                unknown += 1
            else:
                admitted = False
                if level == "partial":
                    partial += 1
                if not ev.via_sg and tail is ev.tail and ev.sg_level != "full":
                    short.append((target, ev))
            tails.setdefault(tail, []).append(target.label)
        append(
            target_verdict(
                target.target_id,
                tport,
                eni.id,
                target.sg_ids,
                admitted,
                uncovered_cidrs,
                labels,
                tail,
            )
        )
    c.short[proto] = short
    c.broad_evals[proto] = [e for e in distinct if e.broad]
    c.acl_denials[proto] = _unique_denials(distinct)
    if not group_cache:
        for family in (4, 6):
            group_cache[family] = _source_groups(c, lbs_key, preserved, family, proto=proto)
    expected, expected_text, expected_sources = c.ix.summary(tuple(group_cache.values()), lbs)

    total = len(verdicts)
    if total == 0:
        return m.ProtocolResult(
            proto, port, "blocked", 0, 0, preserved, expected_sources, ("no registered targets",)
        )
    bad = total - full - unknown  # targets known not to admit every expected source
    if full == total:
        verdict: m.Verdict = "reachable"
    elif full and bad:
        verdict = "partial"  # some admit and some don't, whatever the unjudged ones do
    elif unknown:
        verdict = "unknown"  # the unjudged targets decide between the possible verdicts
    elif partial:
        verdict = "partial"
    else:
        verdict = "blocked"
    unknown_clients = (
        [
            origin[len(UNKNOWN_CLIENTS) :]
            for origin in (_client_ranges(c, lb, proto)[1] for lb in lbs)
            if origin.startswith(UNKNOWN_CLIENTS)
        ]
        if preserved and c.ix.unknown_clients
        else []
    )
    # Judged against every address: "reachable" and "blocked" hold whatever the real client ranges
    # are; where a verdict depends on them it is none, and no target counts as refusing the clients.
    # A mix of targets admitting every address and targets admitting none is `partial` for any
    # clients too; only a target admitting part of the addresses makes the verdict depend on them.
    if unknown_clients and partial:
        c.short[proto] = []
        c.broad_evals[proto] = []
        verdicts = [dataclasses.replace(v, admitted=None) if v.admitted is False else v for v in verdicts]
        reasons = tuple(f"client ranges unknown: {why}" for why in unknown_clients)
        return _protocol_result(proto, port, "unknown", total, full, preserved, (), reasons, tuple(verdicts))
    source_text = (
        "client ranges (client IP preserved)" if preserved else "the load balancer's private addresses"
    )
    if unknown_clients:
        source_text = "any address (the client ranges are unknown: " + "; ".join(unknown_clients) + ")"
    if verdict == "reachable":
        reasons: tuple[str, ...] = (
            f"all {total} target(s) admit {proto} {port} from {source_text} {expected_text}: {first_tail}",
        )
    else:
        head = f"{full} of {total} target(s) admit {proto} {port} from {source_text} {expected_text}"
        reasons = (head, *(f"{_short(labels)}: {tail}" for tail, labels in tails.items()))
    if lb_refused or lb_narrowed:
        # The traffic of the other load balancers (or the admitted clients) was judged above;
        # these refused clients carry none of it.
        if verdict == "reachable":
            verdict = "partial"
        reasons = (*reasons, *(f"but {why}" for why in (*lb_refused.values(), *lb_narrowed.values())))
    if lb_undecided and verdict == "reachable":
        verdict = "unknown"
        reasons = (*reasons, *lb_undecided.values())
    return _protocol_result(
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
    healthy, unhealthy, other = c.state_counts
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
        hc_blocked = c.hc_blocked
        n_full = n_false = 0
        last_jid = last_port = last_family = -1
        ev: _Eval | None = None
        with_rules = c.ix.lbs_with_rules
        lb_sgs = bool(with_rules) and not with_rules.isdisjoint(lbs)
        targets_all = c.targets
        uniform = c.uniform
        if lb_sgs and uniform is not None:
            hc_port = uniform[1] if traffic else fixed_port
            if hc_port is None or _lb_egress_refuses_any(c, lbs, "tcp", hc_port, targets_all):
                uniform = None
        targets = c.targets
        if uniform is not None and (traffic or fixed_port is not None):
            # One judgement for all targets (see `_Ctx.uniform`); same counts as the loop.
            jid, port, family = uniform
            if not traffic:
                port = fixed_port
            groups = group_cache[family] = _source_groups(c, lbs, False, family, hc=True)
            ev = eval_cache.get((jid, "tcp", port, id(groups)))
            if ev is None:
                ev = c.ix.evaluate(targets[0], "tcp", port, groups)
            level = ev.level
            if level == "full":
                n_full = len(targets)
            elif level is not None:
                n_false = len(targets)
                if level in ("none", "partial"):
                    # Each target's own port, as the loop records it (equal, not always identical).
                    hc_blocked.extend([(t, ev, t.port if traffic else port) for t in targets])
            targets = []
        for target in targets:
            port = target.port if traffic else fixed_port
            if target.eni is None or port is None:
                continue
            family = target.family
            if target.jid != last_jid or port != last_port or family != last_family:
                groups = group_cache.get(family)
                if groups is None:
                    groups = group_cache[family] = _source_groups(c, lbs, False, family, hc=True)
                ev = eval_cache.get((target.jid, "tcp", port, id(groups)))
                if ev is None:
                    ev = c.ix.evaluate(target, "tcp", port, groups)
                last_jid, last_port, last_family = target.jid, port, family
            assert ev is not None
            level = ev.level
            if lb_sgs and level is not None:
                refusal = _lb_egress_refusal(c, lbs, "tcp", port, target)
                if refusal:
                    n_false += 1
                    hc_blocked.append((target, _refused_eval(refusal), port))
                    continue
            if level == "full":
                n_full += 1
            elif level is not None:
                n_false += 1
                if level in ("none", "partial"):
                    hc_blocked.append((target, ev, port))
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
    return _health_check_result(
        tg.health_check_protocol,
        tg.health_check_port,
        tg.health_check_path,
        proves,
        cannot_prove,
        admitted,
        healthy,
        unhealthy,
        other,
    )


# --- findings ----------------------------------------------------------------------------------


def _clients_of(c: _Ctx, proto: str) -> NetSet:
    return union_all(_client_ranges(c, lb, proto)[0] for lb in c.lbs_by_proto.get(proto, ()))


def _known_bad(result: m.ProtocolResult) -> bool:
    """Blocked or partial — or unknown overall while some targets are known not to admit it."""
    if result.verdict in ("blocked", "partial"):
        return bool(result.targets_total)
    return result.verdict == "unknown" and any(t.admitted is False for t in result.targets)


def _findings_traffic(c: _Ctx) -> None:
    states: dict[tuple[str, int | None], str] | None = None
    for result in c.results:
        proto = result.protocol
        verdict = result.verdict
        if (verdict == "blocked" or verdict == "partial" or verdict == "unknown") and _known_bad(result):
            if states is None:
                states = {(t.target_id, t.port): t.health.state for t in c.targets}
            bad = [t for t in result.targets if t.admitted is False]
            severity: m.Severity = "critical" if result.verdict == "blocked" else "warning"
            sources = (
                "the client ranges" if result.client_ip_preserved else "the load balancer's private addresses"
            )
            unjudged = sum(1 for t in result.targets if t.admitted is None)
            lost = [r[4:] for r in result.reasons if r.startswith("but ")]
            if not bad and lost:
                # Every target admits it, but a load balancer refuses its clients (`_judge_protocol`).
                c.f.add(
                    Code.TRAFFIC_BLOCKED,
                    "warning",
                    f"{proto} {result.port} is {result.verdict}: " + "; ".join(lost),
                    proto,
                    verdict=result.verdict,
                    port=result.port,
                    targets=[],
                    uncovered=[],
                )
            elif bad:
                denials = c.acl_denials.get(proto) or []
                sg_refuses = bool(c.short.get(proto)) or any(
                    "network ACL" not in t.reason and _LB_REFUSAL not in t.reason for t in bad
                )
                if any(_LB_REFUSAL in t.reason for t in bad):
                    where = "(the load balancer's security groups refuse it; see the reasons)"
                elif denials:
                    where = (
                        "in their security groups, and the network ACL of their subnet refuses it too: "
                        if sg_refuses
                        else "(their security groups admit it; the network ACL of their subnet refuses it): "
                    ) + "; ".join(d.text for d in denials[:_MAX_LISTED])
                else:
                    where = "in their security groups"
                c.f.add(
                    Code.TRAFFIC_BLOCKED,
                    severity,
                    f"{proto} {result.port} is {result.verdict}: {len(bad)} of {result.targets_total} "
                    f"target(s) do not admit {proto.lower()} {result.port} from {sources} {where}"
                    + (f"; {unjudged} could not be judged" if unjudged else ""),
                    proto,
                    verdict=result.verdict,
                    port=result.port,
                    targets=[t.target_id for t in bad][:50],
                    uncovered=sorted({u for t in bad for u in t.uncovered_sources})[:50],
                    # Only where an ACL refuses (the evidence of other refusals is unchanged).
                    **(
                        {
                            "layer": "security groups and network ACL" if sg_refuses else "network ACL",
                            "networkAclDenials": [d.as_dict() for d in denials[:50]],
                        }
                        if denials
                        else {}
                    ),
                )
                healthy_bad = [t.target_id for t in bad if states.get((t.target_id, t.port)) == "healthy"]
                if healthy_bad:
                    c.f.add(
                        Code.HEALTH_CHECK_MASKS_TRAFFIC,
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
            # Judged targets neither fully admitted nor admitted via an LB group (gathered while
            # judging the protocol).
            short = c.short.get(proto, ())
            if short:
                uncovered = sorted({cidr for _, ev in short for cidr in _cidrs(ev.sg_uncovered)})
                clients = _clients_of(c, proto)
                c.f.add(
                    Code.CLIENT_RANGES_NOT_COVERED,
                    "warning",
                    f"client IP is preserved for {proto}, so targets must admit the clients' addresses "
                    f"({clients}); the rules of {len(short)} target(s) leave {_short(uncovered, 5)} "
                    f"uncovered",
                    proto,
                    clientRanges=list(_cidrs(clients)),
                    uncovered=uncovered[:50],
                    targets=[t.target_id for t, _ in short][:50],
                )
        broad_evals = c.broad_evals.get(proto)
        broad = sorted({r.label for ev in broad_evals for r in ev.broad}) if broad_evals else None
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
                Code.OVERLY_BROAD_SOURCE,
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
        udp = None
        for r in c.results:
            if r.protocol == "UDP":
                udp = r
                break
        ok = udp is not None and udp.verdict == "reachable"
        c.f.add(
            Code.HEALTH_CHECK_PROTOCOL_MISMATCH,
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
                Code.HEALTH_CHECK_PORT_MISMATCH,
                "info",
                f"health checks go to port {hc_port}, traffic to {_short(ports, 3)}: a healthy "
                f"target says nothing "
                "about the traffic port, and the health-check port needs its own TCP rule",
                None,
                healthCheckPort=hc_port,
                trafficPorts=ports,
            )
    blocked = c.hc_blocked
    if blocked:
        denials = _unique_denials(ev for _, ev, _ in blocked)
        c.acl_denials["health"] = denials
        acl_only = bool(denials) and all(ev.sg_level == "full" for _, ev, _ in blocked)
        c.f.add(
            Code.HEALTH_CHECK_BLOCKED,
            "critical",
            (
                f"TCP health checks from the load balancer do not reach {len(blocked)} target(s) (refused "
                "by their security groups or the load balancer's outbound rules), so they will be marked "
                "unhealthy: "
                if any(_LB_REFUSAL in ev.tail for _, ev, _ in blocked)
                else f"the network ACL of the subnet of {len(blocked)} target(s) refuses TCP health checks "
                "from the load balancer's private addresses (their security groups admit them), so they "
                "will be marked unhealthy: "
                if acl_only
                else f"the security groups of {len(blocked)} target(s) do not admit TCP health checks from "
                "the load balancer's private addresses"
                + (" (and a network ACL refuses them)" if denials else "")
                + ", so they will be marked unhealthy: "
            )
            + "; ".join(f"{t.label} port {port}: {ev.tail}" for t, ev, port in blocked[:5]),
            None,
            targets=[t.target_id for t, _, _ in blocked][:50],
            ports=sorted({p for _, _, p in blocked if p is not None}),
            **({"networkAclDenials": [d.as_dict() for d in denials[:50]]} if denials else {}),
            # The registrations the load balancer's outbound rules refuse (the fix plans those).
            **(
                {
                    "lbEgress": [
                        {"target": t.target_id, "port": p} for t, ev, p in blocked if _LB_REFUSAL in ev.tail
                    ][:50]
                }
                if any(_LB_REFUSAL in ev.tail for _, ev, _ in blocked)
                else {}
            ),
        )
    n_states = len(c.targets)
    unhealthy = c.unhealthy
    if n_states and len(unhealthy) == n_states:
        c.f.add(
            Code.ALL_TARGETS_UNHEALTHY,
            "critical",
            f"all {n_states} target(s) of {name} are unhealthy: the NLB fails open and sends "
            f"traffic to all "
            "of them anyway, so health no longer steers traffic away from broken targets",
            None,
            reasons=_reason_counts(unhealthy),
        )
    elif unhealthy:
        counts = _reason_counts(unhealthy)
        c.f.add(
            Code.UNHEALTHY_TARGETS,
            "warning",
            f"{len(unhealthy)} of {n_states} target(s) are unhealthy ("
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


def _pod_port_numbers(pods: Iterable[m.Pod], name: str) -> list[int]:
    """The numbers a port name resolves to on these pods (LookupContainerPort: by name only)."""
    return sorted({cp.container_port for pod in pods for cp in pod.container_ports or () if cp.name == name})


def _port_numbers(c: _Ctx, port: int | str | None) -> tuple[int, int] | list[int] | None:
    """A networking port as a range (None/int) or the resolved numbers of a named port."""
    if port is None:
        return (0, 65535)
    if isinstance(port, int):
        return (port, port)
    if c.target_type == "instance":
        # The controller resolves port names through pods only: for instance targets it fails.
        return []
    # A string is a name even when it looks like a number: IntOrString keeps "53" a string and the
    # controller then looks for a container port NAMED "53".
    return sorted(_named_ports(c).get(str(port), ()))


def _declared(c: _Ctx, proto: str, port: int) -> bool:
    declared = c.declared_ports
    if declared is None:
        # Every networking port entry as (PROTOCOL, port), in rule order, once per binding.
        # A rule without peers (`from: []`) makes the controller write nothing for its ports.
        declared = c.declared_ports = [
            (str(entry.protocol).upper(), entry.port)
            for rule in c.b.networking or ()
            if rule.peers
            for entry in rule.ports or ()
        ]
    for entry_proto, entry_port in declared:
        if entry_proto != proto:
            continue
        numbers = _port_numbers(c, entry_port)
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
        # Without spec.networking nothing is declared: every port is missing.
        missing = [p for p in ports if not _declared(c, proto, p)] if b.networking else list(ports)
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
        missing = [p for p in hc_ports if not _declared(c, "TCP", p)] if b.networking else list(hc_ports)
        if missing:
            _missing_rule(c, "TCP", missing, c.hc_admitted is True, "health check")

    if c.target_type == "instance":
        for i, rule in enumerate(b.networking or ()):
            for j, entry in enumerate(rule.ports or ()):
                if isinstance(entry.port, str):
                    c.f.invalid(
                        c.obj,
                        f"spec.networking.ingress[{i}].ports[{j}].port",
                        f"named port {entry.port!r} with instance targets: the controller resolves port "
                        "names through pods only, so it fails to write this binding's rules; use the "
                        "NodePort number",
                    )
    if c.target_type == "instance" and c.sport is not None and c.sport.node_port:
        svc_ports: dict[int, int] = {}
        for p in c.sport_matches:
            if p.node_port:
                svc_ports.setdefault(p.port, p.node_port)  # the controller registers the first match
        for i, rule in enumerate(b.networking or ()):
            for entry in rule.ports or ():
                if (
                    isinstance(entry.port, int)
                    and entry.port in svc_ports
                    and entry.port != svc_ports[entry.port]
                ):
                    c.f.add(
                        Code.INSTANCE_PORT_NOT_NODEPORT,
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

    # Port names need the pods; most bindings name none and skip that work.
    named = c.target_type == "ip" and any(
        isinstance(entry.port, str) for rule in b.networking or () for entry in rule.ports or ()
    )
    if named:
        _finding_unresolved_named_ports(c)

    needs_rules = any(_known_bad(r) for r in c.results) or c.hc_admitted is False
    declared = bool(b.networking)
    if not (declared or needs_rules):
        return
    cluster_tag = c.ix.cluster_tag
    eni_sg_tags = c.ix.inv.eni_sg_tags
    ambiguous: dict[str, list[str]] = {}
    controller_sg: dict[str, tuple[str, ...]] = {}
    # The pods behind the targets, by the group their ENI makes the controller write to: it
    # resolves named ports per group, from that group's pods only
    # (computeIngressPermissionsPerSGWithPodEndpoints).
    pods_by_sg: dict[str, dict[str, m.Pod]] = defaultdict(dict)
    pods_by_ip = c.ix.pods_by_ip if named else {}
    controller_sg_of = c.ix.controller_sg
    # Equal jids mean equal security groups: consecutive targets mostly share them.
    last_jid = -1
    choice: str | tuple[str, ...] | None = None
    for target in c.targets:
        eni = target.eni
        if eni is None:
            continue
        if target.jid != last_jid:
            last_jid = target.jid
            choice = controller_sg_of(target.sg_ids)
        if isinstance(choice, str):
            label = choice
            controller_sg[choice] = (choice,)
        elif choice is not None:
            ambiguous[eni.id] = list(choice)
            # The controller cannot write anywhere: a declared rule is in place only if some
            # group on the ENI already holds it.
            label = " or ".join(target.sg_ids)
            controller_sg[label] = target.sg_ids
        else:
            continue
        if pods_by_ip:
            ip = _norm_ip(target.target_id)
            pod = pods_by_ip.get(ip) if ip else None
            if pod is not None:
                pods_by_sg[label][f"{pod.namespace}/{pod.name}"] = pod
    if ambiguous:
        wanted = f"the tag {cluster_tag}" + (
            " and " + ", ".join(f"{k}={v}" for k, v in sorted(eni_sg_tags.items())) if eni_sg_tags else ""
        )
        c.f.add(
            Code.SECURITY_GROUP_TAG_AMBIGUOUS,
            "warning",
            f"{len(ambiguous)} target network interface(s) have several security groups and "
            f"{'none' if not any(ambiguous.values()) else 'more than one'} carries {wanted}: the "
            f"controller cannot choose where to write networking rules ({_short(ambiguous)})",
            None,
            networkInterfaces=dict(sorted(ambiguous.items())),
            tag=cluster_tag,
            **({"requiredTags": dict(sorted(eni_sg_tags.items()))} if eni_sg_tags else {}),
        )
    if declared:
        _finding_not_reconciled(c, controller_sg, pods_by_sg)


def _finding_unresolved_named_ports(c: _Ctx) -> None:
    """A named networking port that a target pod does not declare: the controller's lookup of that
    name on that pod fails (computeNumericalPorts), which fails the binding's whole networking
    reconcile, so none of its declared rules are written."""
    by_key: dict[str, m.Pod] = {}
    for target in c.targets:
        ip = _norm_ip(target.target_id)
        pod = c.ix.pods_by_ip.get(ip) if ip else None
        if pod is not None:
            by_key.setdefault(f"{pod.namespace}/{pod.name}", pod)
    pods = list(by_key.values())
    if not pods:
        return
    ports = sorted({t.port for t in c.targets if isinstance(t.port, int)})
    for i, rule in enumerate(c.b.networking or ()):
        if not rule.peers:
            continue  # without peers the controller never looks the ports up
        for j, entry in enumerate(rule.ports or ()):
            name = entry.port
            if not isinstance(name, str):
                continue
            lacking = [
                f"{p.namespace}/{p.name}"
                for p in pods
                if not any(cp.name == name for cp in p.container_ports or ())
            ]
            if not lacking:
                continue
            field = f"spec.networking.ingress[{i}].ports[{j}].port"
            obj = c.obj
            c.f.add(
                Code.INVALID_SPEC,
                "warning",
                f"{obj}: {field}: named port {name!r} is declared by no container port of pod(s) "
                f"{_short(lacking, 5)}: the controller cannot resolve it and fails this binding's "
                "networking reconcile, so none of its declared rules will be written (rules an "
                "earlier reconcile wrote stay); use the port number"
                + (f" ({_short(ports, 3)}, the targets' port)" if ports else ""),
                None,
                object=obj,
                field=field,
                namedPort=name,
                pods=lacking[:50],
            )


def _missing_rule(c: _Ctx, proto: str, missing: list[int], ok: bool, what: str) -> None:
    absent = c.b.networking is None
    c.f.add(
        Code.MISSING_NETWORKING_RULE,
        "info" if ok else "warning",
        _missing_rule_message(absent, proto, tuple(missing), ok, what),
        proto,  # type: ignore[arg-type]
        ports=missing,
        purpose=what,
        networkingDeclared=not absent,
    )


@lru_cache(maxsize=4096)
def _missing_rule_message(absent: bool, proto: str, missing: tuple[int, ...], ok: bool, what: str) -> str:
    """The message depends on none of the binding's names: most bindings share a few of them."""
    ports = _short(missing, 5)
    if absent:
        head = "spec.networking is absent, so the controller manages no security-group rule for this binding"
    else:
        head = f"spec.networking.ingress declares no {proto} rule for port {ports}"
    tail = (
        f"; {proto} {ports} ({what}) is admitted today only by rules managed outside the controller"
        if ok
        else f"; nothing admits {proto} {ports} ({what}) for the load balancer"
    )
    return head + tail


def _finding_not_reconciled(
    c: _Ctx, controller_sg: dict[str, tuple[str, ...]], pods_by_sg: dict[str, dict[str, m.Pod]]
) -> None:
    """Declared rules missing from the group(s) they should be in, keyed by the group label."""
    # What is missing depends only on the groups and the declared rules, which many bindings
    # share (same protocol, port and peers): cached by content, unless a port is named (then it
    # depends on this binding's pods) or the spec holds something unhashable.
    key: tuple | None = None
    networking = c.b.networking or ()
    try:
        if not any(isinstance(entry.port, str) for rule in networking for entry in rule.ports or ()):
            key = (tuple(sorted(controller_sg.items())), networking)
            cached = c.ix._unreconciled.get(key)
            if cached is not None:
                _add_not_reconciled(c, [dict(x) for x in cached])
                return
    except (TypeError, AttributeError):
        key = None
    missing = _missing_declared(c, controller_sg, pods_by_sg)
    if key is not None:
        c.ix._unreconciled[key] = tuple(dict(x) for x in missing)
    _add_not_reconciled(c, missing)


def _missing_declared(
    c: _Ctx, controller_sg: dict[str, tuple[str, ...]], pods_by_sg: dict[str, dict[str, m.Pod]]
) -> list[dict]:
    missing: list[dict] = []
    seen: set[tuple] = set()
    for sg_id in sorted(controller_sg):
        rules = c.ix.flat_rules(controller_sg[sg_id])
        if rules is None:
            continue
        group_pods = pods_by_sg.get(sg_id)
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
                    if isinstance(entry.port, str) and group_pods:
                        # A name is resolved against this group's own pods only.
                        numbers = _pod_port_numbers(group_pods.values(), entry.port)
                    else:
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
    return missing


def _add_not_reconciled(c: _Ctx, missing: list[dict]) -> None:
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
            Code.NETWORKING_NOT_RECONCILED,
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
            Code.SERVICE_PROTOCOL_MISMATCH,
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
            Code.SERVICE_PROTOCOL_MISMATCH,
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
                Code.SERVICE_PROTOCOL_MISMATCH,
                "warning",
                f"the target group carries TCP and UDP, but Service {svc.key} has no "
                f"{'UDP' if 'UDP' not in same else 'TCP'} port {sp.port} next to the {sp_proto} one",
                None,
                servicePort=ref,
            )
        elif c.target_type == "instance" and same["TCP"].node_port != same["UDP"].node_port:
            c.f.add(
                Code.SERVICE_PROTOCOL_MISMATCH,
                "warning",
                f"Service {svc.key} port {sp.port}: the TCP and UDP entries have different NodePorts "
                f"({same['TCP'].node_port} and {same['UDP'].node_port}); instance targets register only one",
                None,
                servicePort=ref,
            )
        elif c.target_type == "ip" and str(same["TCP"].target_port) != str(same["UDP"].target_port):
            c.f.add(
                Code.SERVICE_PROTOCOL_MISMATCH,
                "warning",
                f"Service {svc.key} port {sp.port}: the TCP and UDP entries have different target ports "
                f"({same['TCP'].target_port} and {same['UDP'].target_port}); each pod is registered on one "
                "port, so one protocol reaches the wrong port",
                None,
                servicePort=ref,
                targetPorts={"TCP": same["TCP"].target_port, "UDP": same["UDP"].target_port},
            )


def _finding_drift(c: _Ctx) -> None:
    tg, svc, sp = c.tg, c.service, c.sport
    if tg is None or svc is None or sp is None or not c.health_known:
        return
    if c.target_type == "ip":
        # `t.ip` is the canonical address the resolution already worked out.
        registered = {(t.ip or t.target_id, t.port) for t in c.targets}
        expected: set[tuple[str, int | None]] = set()
        norm_ip = _norm_ip
        port_name = sp.name or None
        for eps in c.ix.slices_by_service.get((svc.namespace, svc.name), ()):
            ports = [p.port for p in eps.ports if (p.name or None) == port_name]
            expected.update(
                (norm_ip(address) or address, port)
                for ep in eps.endpoints
                if ep.ready is not False and not ep.terminating
                for address in ep.addresses
                for port in ports
            )
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
                any(k in labels for k in EXCLUDED_NODE_LABELS)
                or labels.get("eks.amazonaws.com/compute-type") == "fargate"
            ):
                continue
            if any(labels.get(k) != v for k, v in match_labels.items()):
                continue
            expected.add((node.instance_id, None))
        fmt = lambda pair: str(pair[0])  # noqa: E731
    else:
        return
    if expected == registered:
        return
    missing = sorted(expected - registered, key=str)
    extra = sorted(registered - expected, key=str)
    parts = []
    if missing:
        parts.append(f"{len(missing)} ready endpoint(s) not registered ({_short(map(fmt, missing), 5)})")
    if extra:
        parts.append(
            f"{len(extra)} registered target(s) with no ready endpoint ({_short(map(fmt, extra), 5)})"
        )
    c.f.add(
        Code.TARGET_DRIFT,
        "warning",
        "registered targets and ready endpoints differ: " + "; ".join(parts),
        None,
        notRegistered=[fmt(x) for x in missing[:50]],
        notReady=[fmt(x) for x in extra[:50]],
    )


# --- load-balancer features of 2025-26 (issue 19) -----------------------------------------------

# Listener protocols a QUIC listener may not sit beside on one NLB (ELB create-listener).
_QUIC_EXCLUDES = frozenset({"UDP", "TCP_UDP"})
_QUIC_SERVER_ID = re.compile(r"0x[0-9a-f]{16}")


def _own_target_test(c: _Ctx) -> Any:
    """For a binding with `spec.multiClusterTargetGroup: true`, a test of whether a registered
    target id belongs to this cluster (a pod or endpoint address of it for ip targets, one of its
    nodes for instance targets); None otherwise, when every registration is this binding's."""
    if _spec_field(c.b, "multiClusterTargetGroup") is not True:
        return None
    ix = c.ix
    if c.target_type == "instance":
        # Built once per inventory (no per-binding scan of the nodes).
        instances = ix.__dict__.get("_node_instances")
        if instances is None:
            instances = ix.__dict__["_node_instances"] = frozenset(
                n.instance_id for n in ix.inv.nodes.values() if n.instance_id
            )
        return instances.__contains__
    if c.target_type != "ip":
        return None
    pods = ix.pods_by_ip
    addresses: set[str] = set()
    svc = c.service
    if svc is not None:
        for eps in ix.slices_by_service.get((svc.namespace, svc.name), ()):
            for ep in eps.endpoints:
                addresses.update(_norm_ip(a) or a for a in ep.addresses)

    def own(target_id: str) -> bool:
        ip = _norm_ip(target_id) or target_id
        return ip in pods or ip in addresses

    return own


def _findings_lb_features(c: _Ctx) -> None:
    """Other clusters' targets, QUIC listeners the API would reject, QUIC server ids, PrivateLink."""
    tg = c.tg
    assert tg is not None
    name = tg.name or tg.arn
    if c.other_cluster:
        labels = [f"{th.target_id}:{th.port if th.port is not None else tg.port}" for th in c.other_cluster]
        c.f.add(
            Code.OTHER_CLUSTER_TARGETS,
            "info",
            f"target group {name} is shared across clusters (multiClusterTargetGroup): "
            f"{len(labels)} registered target(s) belong to other clusters and are not judged here: "
            f"{_short(labels, 5)}",
            None,
            targets=labels[:50],
            states=sorted({th.state for th in c.other_cluster}),
        )
    ix = c.ix
    tg_proto = str(tg.protocol).upper()
    for lb_arn in sorted(
        set(tg.load_balancer_arns or ()) | {li.load_balancer_arn for li in ix.listeners_by_tg.get(tg.arn, ())}
    ):
        listeners = ix.listeners_by_lb.get(lb_arn, ())
        lb = ix.inv.load_balancers.get(lb_arn)
        udp_here = sorted(
            {
                f"{li.protocol} {li.port}"
                for li in listeners
                if str(li.protocol).upper() in _QUIC_EXCLUDES and tg.arn in (li.target_group_arns or ())
            }
        )
        if (
            udp_here
            and lb is not None
            and "dualstack" in str(lb.ip_address_type or "").lower()
            and str(tg.ip_address_type or "ipv4").lower() != "ipv6"
        ):
            c.f.invalid(
                f"TargetGroup {name}",
                "IpAddressType",
                f"{_short(udp_here, 3)} on dual-stack load balancer {_lb_name(c, lb_arn)} forwards to an "
                f"{tg.ip_address_type or 'ipv4'} target group; a UDP listener on a dual-stack load "
                "balancer needs an IPv6 target group (AWS rejects this configuration)",
            )
        quic = [
            li
            for li in listeners
            if str(li.protocol).upper() in _QUIC and tg.arn in (li.target_group_arns or ())
        ]
        if not quic:
            continue
        obj = f"LoadBalancer {_lb_name(c, lb_arn)}"
        kinds = "/".join(sorted({str(li.protocol).upper() for li in quic}))
        if lb is not None and lb.security_groups:
            c.f.invalid(
                obj,
                "SecurityGroups",
                f"a {kinds} listener is not allowed on a load balancer with security groups "
                f"({', '.join(lb.security_groups)}); AWS rejects this configuration",
            )
        if lb is not None and "dualstack" in str(lb.ip_address_type or "").lower():
            c.f.invalid(
                obj,
                "IpAddressType",
                f"a {kinds} listener is not allowed on a dual-stack load balancer ({lb.ip_address_type}); "
                "AWS rejects this configuration",
            )
        beside = sorted(
            {f"{li.protocol} {li.port}" for li in listeners if str(li.protocol).upper() in _QUIC_EXCLUDES}
        )
        if beside:
            c.f.invalid(
                obj,
                "Listeners",
                f"a {kinds} listener is not allowed beside UDP or TCP_UDP listeners ({_short(beside, 5)}); "
                "AWS rejects this configuration",
            )
        every_quic = [li for li in listeners if str(li.protocol).upper() in _QUIC]
        if len(every_quic) > 1:
            c.f.invalid(
                obj,
                "Listeners",
                f"{len(every_quic)} QUIC/TCP_QUIC listeners; a load balancer may have only one",
            )
    if tg_proto in _QUIC and c.targets:
        ids = {t.target_id: t.health.quic_server_id for t in c.targets}
        shown = [f"{tid} -> {sid or '(none collected)'}" for tid, sid in ids.items()]
        malformed = sorted(tid for tid, sid in ids.items() if sid and not _QUIC_SERVER_ID.fullmatch(sid))
        c.f.add(
            Code.QUIC_SERVER_IDS,
            "info",
            f"{tg_proto} target group {name}: each target needs its QUIC server ID in the connection IDs "
            f"it issues, or HTTP/3 fails while UDP gets through: {_short(shown, 5)}",
            None,
            serverIds=dict(list(ids.items())[:50]),
        )
        for tid in malformed:
            c.f.invalid(
                f"Target {tid} of TargetGroup {name}",
                "QuicServerId",
                f"{ids[tid]!r} is not 0x followed by 16 lowercase hexadecimal digits",
            )
    for lb_arn in sorted({lb for lbs in c.lbs_by_proto.values() for lb in lbs}):
        lb = ix.inv.load_balancers.get(lb_arn)
        if lb is None or not lb.endpoint_services:
            continue
        enforce = (lb.privatelink_enforce_inbound or "").lower()
        if not lb.security_groups:
            rules = "it has no security groups, so no inbound rules filter any traffic"
        elif enforce == "off":
            rules = (
                "its inbound security-group rules are not enforced on PrivateLink traffic "
                "(EnforceSecurityGroupInboundRulesOnPrivateLinkTraffic off)"
            )
        elif enforce == "on":
            rules = (
                "its inbound security-group rules filter PrivateLink traffic too "
                "(EnforceSecurityGroupInboundRulesOnPrivateLinkTraffic on)"
            )
        else:
            rules = "whether its inbound rules filter PrivateLink traffic was not collected"
        c.f.add(
            Code.PRIVATELINK,
            "info",
            f"load balancer {_lb_name(c, lb_arn)} is behind VPC endpoint service(s) "
            f"{_short(lb.endpoint_services, 3)}: {rules}; give the endpoint consumers' ranges as client "
            f"ranges ({m.CLIENT_CIDRS_ANNOTATION}) to have them judged",
            None,
            loadBalancer=lb_arn,
            endpointServices=list(lb.endpoint_services),
            enforceInboundRulesOnPrivateLink=lb.privatelink_enforce_inbound,
        )


_ZONAL_SHIFT_PROTOCOLS = frozenset({"TCP", "TLS"})


def _finding_zonal_shift(c: _Ctx) -> None:
    """A cross-zone NLB whose group is not TCP/TLS (or turns cross-zone off) cannot take a zonal
    shift, per the ELB and ARC prerequisites. Judged only where the load balancer's attributes were
    collected: without them nothing is said."""
    tg = c.tg
    assert tg is not None
    tg_proto = str(tg.protocol).upper()
    tg_cross = str(
        (tg.attributes or {}).get("load_balancing.cross_zone.enabled") or "use_load_balancer_configuration"
    )
    for lb_arn in sorted(set(tg.load_balancer_arns or ())):
        lb = c.ix.inv.load_balancers.get(lb_arn)
        if lb is None or lb.attributes is None:
            continue
        if str(lb.attributes.get("load_balancing.cross_zone.enabled", "false")).lower() != "true":
            continue
        why = []
        if tg_proto not in _ZONAL_SHIFT_PROTOCOLS:
            why.append(f"its protocol is {tg_proto}, not TCP or TLS")
        if tg_cross.lower() == "false":
            why.append("its load_balancing.cross_zone.enabled is false")
        if not why:
            continue
        c.f.add(
            Code.ZONAL_SHIFT_INELIGIBLE,
            "info",
            f"load balancer {_lb_name(c, lb_arn)} has cross-zone load balancing on, and target group "
            f"{tg.name or tg.arn} keeps it from zonal shift: {'; '.join(why)} (ELB/ARC zonal-shift "
            "prerequisites; AWS's ELB document history of 2026-09-24 lifts this for UDP groups, so "
            "check the console before acting)",
            None,
            loadBalancer=lb_arn,
            crossZoneLoadBalancer="true",
            crossZoneTargetGroup=tg_cross,
            zonalShiftEnabled=lb.attributes.get("zonal_shift.config.enabled"),
        )


def _quic_health_note(c: _Ctx, health: m.HealthCheckResult) -> m.HealthCheckResult:
    """A QUIC group's health check (and a working UDP path) never proves HTTP/3."""
    tg = c.tg
    if tg is None or str(tg.protocol).upper() not in _QUIC:
        return health
    note = (
        "that HTTP/3 works: a UDP path that works does not prove it (the backend must put the "
        "target's QUIC server ID in its connection IDs)"
    )
    text = f"{health.cannot_prove}; {note}" if health.cannot_prove else note
    return dataclasses.replace(health, cannot_prove=text)


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
                Code.PROBE_FAILS_WHILE_REACHABLE,
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
                Code.PROBE_SUCCEEDS_WHILE_BLOCKED,
                "warning",
                f"static analysis says {result.protocol}{port} is blocked, but a {label} probe from the "
                f"worker to {target} succeeded. Likely causes: " + "; ".join(causes) + ".",
                result.protocol,
                **evidence,
            )
