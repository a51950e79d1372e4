"""The expected sources of a binding's traffic: traffic ports, the load balancers carrying each
protocol, client IP preservation, client ranges, and the (LB groups, CIDRs) groups targets are
judged against."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .. import model as m
from ..netset import NetSet
from .common import _CARRIES
from .context import _Ctx


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
            carries = _CARRIES.get((str(listener.protocol).upper(), tg_proto), ())
            c.carriers = {p: [lb_arn] for p in carries}
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
    key: tuple[Any, ...] = (c.b.client_cidrs, lb_arn, c.tg.vpc_id)
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
    key: tuple[Any, ...] = (
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
