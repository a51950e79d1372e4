"""The verdicts: each carried protocol and the health check, judged over the binding's targets."""

from __future__ import annotations

import dataclasses
from functools import lru_cache

from ...vocabulary import Code
from .. import model as m
from .common import _HEALTH_CHECK_TCP, UNKNOWN_CLIENTS, _short
from .compiled import _Eval, _Target, _unique_denials
from .context import _Ctx
from .lb_judge import (
    _explicit_client_refusal,
    _lb_egress_refusal,
    _lb_egress_refuses_any,
    _lb_refusals,
    _refused_eval,
)
from .results import _health_check_result, _protocol_result, _target_verdict
from .sources import (
    _carrying_lbs,
    _client_ip_preserved,
    _client_ranges,
    _forwarded_at_all,
    _source_groups,
    _traffic_ports,
)


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
