"""The verdict of each carried protocol, judged over the binding's targets."""

from __future__ import annotations

import dataclasses

from ...vocabulary import Code
from .. import model as m
from .common import UNKNOWN_CLIENTS, _short
from .compiled import SourceGroups, _Eval, _Target, _unique_denials
from .context import _Ctx
from .lb_judge import (
    _explicit_client_refusal,
    _lb_egress_refusal,
    _lb_egress_refuses_any,
    _lb_refusals,
)
from .results import _protocol_result, _target_verdict
from .sources import (
    _carrying_lbs,
    _client_ip_preserved,
    _client_ranges,
    _forwarded_at_all,
    _source_groups,
    _traffic_ports,
)

# Plain tuples, not named ones: built once per binding and protocol, on the hot path.
# Per load balancer, why its own security groups keep clients of a protocol out: (all of them,
# some of the explicit client ranges, maybe).
_LbClients = tuple[dict[str, str], dict[str, str], dict[str, str]]
# The targets' judgement of one protocol, as `_protocol_verdict` sums it up: (verdicts, reason ->
# labels of the targets it describes, the first reason, targets admitting fully, partially, unknown).
_Judged = tuple[list[m.TargetVerdict], dict[str, list[str]], str, int, int, int]


def _judge_protocol(c: _Ctx, proto: m.Protocol) -> m.ProtocolResult:
    tg = c.tg
    assert tg is not None
    lbs = _carrying_lbs(c, proto)
    c.lbs_by_proto[proto] = lbs
    preserved = _client_ip_preserved(c)
    c.preserved[proto] = preserved
    ports = _traffic_ports(c)
    port = ports[0] if ports else None
    total = len(c.targets)
    if not c.health_known:
        return m.ProtocolResult(proto, port, "unknown", 0, 0, preserved, (), ("target health not collected",))
    if not lbs:
        return _not_carried(c, tg, proto, port, total, preserved)

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
    lb_clients = _lb_clients(c, proto, lbs) if lb_sgs else ({}, {}, {})
    lb_refused = lb_clients[0]
    if lb_refused and len(lb_refused) < len(lbs):
        # Only some load balancers refuse: judge the others' traffic, then say what is lost.
        lbs = [lb_arn for lb_arn in lbs if lb_arn not in lb_refused]
        c.lbs_by_proto[proto] = lbs
    elif lb_refused:
        refusal = "; ".join(lb_refused.values())
        if refusal:
            return _refused_by_lbs(c, proto, port, total, preserved, refusal)
    judged, groups = _judge_targets(c, proto, lbs, preserved, lb_sgs)
    return _protocol_verdict(c, proto, port, preserved, lbs, judged, groups, lb_clients)


def _not_carried(
    c: _Ctx, tg: m.TargetGroup, proto: m.Protocol, port: int | None, total: int, preserved: bool
) -> m.ProtocolResult:
    """The result of a protocol no known listener carries to the group (`NO_LISTENER` if none
    forwards anything to it)."""
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


def _lb_clients(c: _Ctx, proto: m.Protocol, lbs: list[str]) -> _LbClients:
    """What the inbound rules of the load balancers with security groups do to the clients."""
    lb_refused = _lb_refusals(c, proto, lbs)
    # Explicit client ranges meet the LB's inbound rules too (issue 19 item 2): those none of its
    # rules admit never get in, whether or not the client IP is preserved.
    lb_narrowed: dict[str, str] = {}
    lb_undecided: dict[str, str] = {}
    if c.b.client_cidrs or c.ix.inv.client_cidrs:  # else no explicit ranges
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
    return lb_refused, lb_narrowed, lb_undecided


def _refused_by_lbs(
    c: _Ctx, proto: m.Protocol, port: int | None, total: int, preserved: bool, refusal: str
) -> m.ProtocolResult:
    """Every load balancer carrying `proto` keeps its clients out: no target receives any."""
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


def _judge_targets(
    c: _Ctx, proto: m.Protocol, lbs: list[str], preserved: bool, lb_sgs: bool
) -> tuple[_Judged, tuple[SourceGroups, ...]]:
    """Judge every target of the binding for `proto`, and the sources judged against per address
    family; records what the findings read on `c`."""
    sg_proto = proto.lower()
    # Source groups per address family, in the order the targets first need them (the summary
    # covers exactly those families, as it always has).
    group_cache: dict[int, SourceGroups] = {}
    lbs_key = tuple(lbs)
    # Outbound rules of the LB depend on each target's address: when they refuse one, judge
    # target by target.
    uniform = c.uniform
    if lb_sgs and uniform is not None:
        tport = uniform[1]
        if _lb_egress_refuses_any(c, lbs, sg_proto, tport, c.targets):
            uniform = None
    if uniform is not None:
        judged, short, distinct = _judge_uniform(c, proto, lbs_key, preserved, uniform, group_cache)
    else:
        judged, short, distinct = _judge_each(c, proto, lbs, lbs_key, preserved, lb_sgs, group_cache)
    c.short[proto] = short
    c.broad_evals[proto] = [e for e in distinct if e.broad]
    c.acl_denials[proto] = _unique_denials(distinct)
    if not group_cache:
        for family in (4, 6):
            group_cache[family] = _source_groups(c, lbs_key, preserved, family, proto=proto)
    return judged, tuple(group_cache.values())


def _judge_uniform(
    c: _Ctx,
    proto: m.Protocol,
    lbs_key: tuple[str, ...],
    preserved: bool,
    uniform: tuple[int, int, int],
    group_cache: dict[int, SourceGroups],
) -> tuple[_Judged, list[tuple[_Target, _Eval]], list[_Eval]]:
    """Every target shares one judgement: judge once, then build the verdicts in one pass (the
    same counts, reasons and order `_judge_each` produces)."""
    sg_proto = proto.lower()
    tails: dict[str, list[str]] = {}
    short: list[tuple[_Target, _Eval]] = []
    full = partial = unknown = 0
    target_verdict = _target_verdict
    jid, tport, family = uniform
    groups = group_cache[family] = _source_groups(c, lbs_key, preserved, family, proto=proto)
    ev = c.ix._evals.get((jid, sg_proto, tport, id(groups)))
    if ev is None:
        ev = c.ix.evaluate(c.targets[0], sg_proto, tport, groups)
    level, first_tail = ev.level, ev.tail
    admitted_all = True if level == "full" else None if level is None else False
    uncovered, labels = ev.uncovered_cidrs, ev.labels
    verdicts = [
        target_verdict(
            t.target_id,
            t.port,
            t.eni.id,  # type: ignore[union-attr]  # every target has an ENI (`_Ctx.uniform`)
            t.sg_ids,
            admitted_all,
            uncovered,
            labels,
            first_tail,
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
    return (verdicts, tails, first_tail, full, partial, unknown), short, [ev]


def _judge_each(
    c: _Ctx,
    proto: m.Protocol,
    lbs: list[str],
    lbs_key: tuple[str, ...],
    preserved: bool,
    lb_sgs: bool,
    group_cache: dict[int, SourceGroups],
) -> tuple[_Judged, list[tuple[_Target, _Eval]], list[_Eval]]:
    """Judge the targets one by one (the judgement of the previous one reused when it applies)."""
    sg_proto = proto.lower()
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
    for target in c.targets:
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
    return (verdicts, tails, first_tail, full, partial, unknown), short, distinct


def _protocol_verdict(
    c: _Ctx,
    proto: m.Protocol,
    port: int | None,
    preserved: bool,
    lbs: list[str],
    judged: _Judged,
    groups: tuple[SourceGroups, ...],
    lb_clients: _LbClients,
) -> m.ProtocolResult:
    """Sum the targets' judgement up: the verdict, its reasons and the expected sources."""
    verdicts, tails, first_tail, full, partial, unknown = judged
    _, expected_text, expected_sources = c.ix.summary(groups, lbs)

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
        reasons = (
            f"all {total} target(s) admit {proto} {port} from {source_text} {expected_text}: {first_tail}",
        )
    else:
        head = f"{full} of {total} target(s) admit {proto} {port} from {source_text} {expected_text}"
        reasons = (head, *(f"{_short(labels)}: {tail}" for tail, labels in tails.items()))
    lb_refused, lb_narrowed, lb_undecided = lb_clients
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
