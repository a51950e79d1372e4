"""A load balancer's own security groups, per binding: inbound rules that refuse the clients,
outbound rules that refuse a target."""

from __future__ import annotations

from collections.abc import Sequence

from ..netset import EMPTY, union_all
from .common import LB_REFUSES_CLIENTS, _cidrs, _short
from .compiled import _Eval, _Target
from .context import _Ctx
from .sources import _explicit_clients, _lb_front


def _lb_refusals(c: _Ctx, proto: str, lbs: Sequence[str]) -> dict[str, str]:
    """Per load balancer carrying `proto` whose security groups admit no client of it on the
    listener ports: why. Clients meet the LB's inbound rules before any target rule; health checks
    do not (docs/facts.md §3.5), so the targets stay healthy."""
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
