"""The analysis engine: per binding and per carried protocol, can NLB traffic reach the targets?

`analyze(inventory)` is pure: no Django, no clock (staleness is judged at `inventory.now`), no
network. It never raises: malformed input becomes `unknown` verdicts and `INVALID_SPEC` findings
that name the object and the field. One `InventoryIndex` is built per inventory (IP -> ENI, instance ->
primary ENI, target group -> listeners, load balancer -> private addresses, Service -> slices) and
judgements are cached by what decides them (security groups, protocol, port, expected sources), so
10,000 bindings that share node security groups cost little more than the distinct rule sets.

Semantics beyond docs/DESIGN.md, chosen as an SRE would read the data:

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
  (docs/facts.md §6 step 4), or those CIDRs alone when they lie outside the default (on-premises
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

Where things are: this module runs the passes over each binding (`_analyze_binding`). `index`
builds `InventoryIndex` from its parts (`network_acls`, `security_groups`, `targets`,
`load_balancers`); `compiled` holds the rule and judgement records, `results` the fast result
constructors, `context` a binding's state and findings. The passes: `spec`, `resolve`, `sources`
(expected sources), `lb_judge` (the load balancer's own groups), `judge` (per protocol), `health`,
then the findings of `findings`, `networking`, `service`, `features` and `probes`.
"""

from __future__ import annotations

import gc
from operator import attrgetter

from ...freshness import is_stale
from ...vocabulary import Code
from .. import model as m
from .common import EXCLUDED_NODE_LABELS, LB_REFUSES_CLIENTS, LISTENER_CARRIES, UNKNOWN_CLIENTS
from .compiled import AclDenial
from .compiled import _Rule as _Rule  # tests build rules directly
from .context import _Ctx
from .features import _finding_zonal_shift, _findings_lb_features, _quic_health_note
from .findings import _findings_health, _findings_traffic
from .health import _judge_health_check
from .index import InventoryIndex, controller_security_group
from .judge import _judge_protocol
from .networking import _findings_networking
from .probes import _findings_probes
from .resolve import (
    _derive_protocols,
    _resolve_service,
    _resolve_target_group,
    _resolve_targets,
    _unknown_protocol,
)
from .results import _binding_result
from .service import _finding_drift, _finding_service_protocol
from .spec import _check_spec, _check_webhook_rules

# The engine was one module: what other modules import from it keeps this path.
__all__ = [
    "EXCLUDED_NODE_LABELS",
    "LB_REFUSES_CLIENTS",
    "LISTENER_CARRIES",
    "UNKNOWN_CLIENTS",
    "AclDenial",
    "InventoryIndex",
    "analyze",
    "controller_security_group",
]


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
