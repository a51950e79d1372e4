"""Resolving a binding: its target group, Service port, carried protocols and registered targets."""

from __future__ import annotations

from typing import Any

from ...vocabulary import Code
from .. import model as m
from .common import _norm_ip
from .context import _Ctx
from .spec import _spec_field


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
