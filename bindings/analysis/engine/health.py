"""The health check, judged over the binding's targets: whether its TCP probes are admitted, and
what a passing check proves."""

from __future__ import annotations

from functools import lru_cache

from .. import model as m
from .common import _HEALTH_CHECK_TCP, _short
from .compiled import SourceGroups, _Eval
from .context import _Ctx
from .lb_judge import _lb_egress_refusal, _lb_egress_refuses_any, _refused_eval
from .results import _health_check_result
from .sources import _source_groups, _traffic_ports


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
        group_cache: dict[int, SourceGroups] = {}
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
        port: int | None
        groups: SourceGroups | None
        if uniform is not None and (traffic or fixed_port is not None):
            # One judgement for all targets (see `_Ctx.uniform`); same counts as the loop.
            jid, port, family = uniform
            if not traffic:
                assert fixed_port is not None  # (the condition above)
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
