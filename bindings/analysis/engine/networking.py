"""Findings on `spec.networking`: missing, unresolvable and unreconciled rules."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from ...vocabulary import Code
from .. import model as m
from ..netset import parse_network
from .common import _norm_ip, _ports_label, _short
from .context import _Ctx
from .findings import _known_bad
from .sources import _traffic_ports


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
    _missing_networking_rules(c, tg)
    if c.target_type == "instance":
        _findings_instance_ports(c)

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
    ambiguous, controller_sg, pods_by_sg = _controller_groups(c, named)
    if ambiguous:
        _finding_ambiguous_groups(c, ambiguous)
    if declared:
        _finding_not_reconciled(c, controller_sg, pods_by_sg)


def _missing_networking_rules(c: _Ctx, tg: m.TargetGroup) -> None:
    """`MISSING_NETWORKING_RULE` for the traffic ports of each offered protocol, and for the
    health-check port when the traffic rules do not cover it."""
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


def _findings_instance_ports(c: _Ctx) -> None:
    """Networking ports of a binding with instance targets: names (which the controller cannot
    resolve without pods) and Service ports where the NodePort receives the traffic."""
    b = c.b
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
    if c.sport is not None and c.sport.node_port:
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


def _controller_groups(
    c: _Ctx, named: bool
) -> tuple[dict[str, list[str]], dict[str, tuple[str, ...]], dict[str, dict[str, m.Pod]]]:
    """Where the controller writes the binding's rules on each target ENI: (ENI id -> the
    candidate groups where it cannot choose, group label -> the groups a declared rule may be in,
    group label -> the pods behind its targets when a port is `named`)."""
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
    return ambiguous, controller_sg, pods_by_sg


def _finding_ambiguous_groups(c: _Ctx, ambiguous: dict[str, list[str]]) -> None:
    cluster_tag = c.ix.cluster_tag
    eni_sg_tags = c.ix.inv.eni_sg_tags
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
    key: tuple[Any, ...] | None = None
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
) -> list[dict[str, str]]:
    missing: list[dict[str, str]] = []
    seen: set[tuple[str, str, int, int, str]] = set()
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
                    numbers: tuple[int, int] | list[int] | None
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


def _add_not_reconciled(c: _Ctx, missing: list[dict[str, str]]) -> None:
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
