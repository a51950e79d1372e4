"""Findings on the judged traffic and the health checks."""

from __future__ import annotations

from ...vocabulary import Code
from .. import model as m
from ..netset import EMPTY, NetSet, union_all
from .common import _LB_REFUSAL, _MAX_LISTED, _cidrs, _short
from .compiled import _Target, _unique_denials
from .context import _Ctx
from .sources import _client_ranges, _traffic_ports


def _clients_of(c: _Ctx, proto: str) -> NetSet:
    return union_all(_client_ranges(c, lb, proto)[0] for lb in c.lbs_by_proto.get(proto, ()))


def _known_bad(result: m.ProtocolResult) -> bool:
    """Blocked or partial — or unknown overall while some targets are known not to admit it."""
    if result.verdict in ("blocked", "partial"):
        return bool(result.targets_total)
    return result.verdict == "unknown" and any(t.admitted is False for t in result.targets)


def _findings_traffic(c: _Ctx) -> None:
    assert c.tg is not None  # judged only with the target group
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
