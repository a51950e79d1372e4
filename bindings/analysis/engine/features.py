"""Load-balancer features of 2025-26 (issue 19): shared target groups, QUIC, PrivateLink, zonal
shift."""

from __future__ import annotations

import dataclasses
import re

from ...vocabulary import Code
from .. import model as m
from .common import _QUIC, _short
from .context import _Ctx
from .lb_judge import _lb_name

# Listener protocols a QUIC listener may not sit beside on one NLB (ELB create-listener).
_QUIC_EXCLUDES = frozenset({"UDP", "TCP_UDP"})
_QUIC_SERVER_ID = re.compile(r"0x[0-9a-f]{16}")


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
        _findings_listeners(c, tg, lb_arn)
    if tg_proto in _QUIC and c.targets:
        _findings_quic_server_ids(c, tg, tg_proto)
    _findings_privatelink(c)


def _findings_listeners(c: _Ctx, tg: m.TargetGroup, lb_arn: str) -> None:
    """Listeners of one load balancer that AWS would reject: UDP on dual stack with an IPv4
    group, QUIC beside security groups, dual stack, UDP listeners or another QUIC listener."""
    ix = c.ix
    name = tg.name or tg.arn
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
        li for li in listeners if str(li.protocol).upper() in _QUIC and tg.arn in (li.target_group_arns or ())
    ]
    if not quic:
        return
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


def _findings_quic_server_ids(c: _Ctx, tg: m.TargetGroup, tg_proto: str) -> None:
    """The QUIC server id each target must put in its connection ids, and the malformed ones."""
    name = tg.name or tg.arn
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


def _findings_privatelink(c: _Ctx) -> None:
    """Load balancers carrying this binding's traffic behind VPC endpoint services."""
    ix = c.ix
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
