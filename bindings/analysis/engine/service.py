"""Findings comparing the Service with the target group (protocols) and the registered targets
(drift)."""

from __future__ import annotations

from collections.abc import Callable

from ...vocabulary import Code
from .. import model as m
from .common import EXCLUDED_NODE_LABELS, _norm_ip, _short
from .context import _Ctx


def _finding_service_protocol(c: _Ctx) -> None:
    sp, svc = c.sport, c.service
    if sp is None or svc is None:
        return
    carried = c.carried
    if c.tg is None and not (
        c.b.target_group_protocol and str(c.b.target_group_protocol).upper() in m.CARRIED_PROTOCOLS
    ):
        return  # protocols were derived from this very Service port: nothing to compare
    ref = c.b.service_port
    sp_proto = str(sp.protocol).upper()
    protos = {str(p.protocol).upper() for p in c.sport_matches}
    if isinstance(ref, int) and {"TCP", "UDP"} <= protos:
        c.f.add(
            Code.SERVICE_PROTOCOL_MISMATCH,
            "warning",
            f"serviceRef.port {ref} matches both a TCP and a UDP port of Service {svc.key}; the "
            f"controller picks "
            f"the first ({sp_proto} {sp.name or sp.port}) — reference the port by name instead",
            None,
            servicePort=ref,
            picked=sp.name,
            protocols=sorted(protos),
        )
    if sp_proto not in carried:
        c.f.add(
            Code.SERVICE_PROTOCOL_MISMATCH,
            "warning",
            f"serviceRef.port {ref!r} resolves to {sp_proto} port {sp.port} of Service {svc.key}, "
            f"but the target "
            f"group carries {'/'.join(carried)}",
            None,
            servicePort=ref,
            serviceProtocol=sp_proto,
            carried=list(carried),
        )
    if len(carried) == 2:
        same = {str(p.protocol).upper(): p for p in svc.ports if p.port == sp.port}
        if not {"TCP", "UDP"} <= set(same):
            c.f.add(
                Code.SERVICE_PROTOCOL_MISMATCH,
                "warning",
                f"the target group carries TCP and UDP, but Service {svc.key} has no "
                f"{'UDP' if 'UDP' not in same else 'TCP'} port {sp.port} next to the {sp_proto} one",
                None,
                servicePort=ref,
            )
        elif c.target_type == "instance" and same["TCP"].node_port != same["UDP"].node_port:
            c.f.add(
                Code.SERVICE_PROTOCOL_MISMATCH,
                "warning",
                f"Service {svc.key} port {sp.port}: the TCP and UDP entries have different NodePorts "
                f"({same['TCP'].node_port} and {same['UDP'].node_port}); instance targets register only one",
                None,
                servicePort=ref,
            )
        elif c.target_type == "ip" and str(same["TCP"].target_port) != str(same["UDP"].target_port):
            c.f.add(
                Code.SERVICE_PROTOCOL_MISMATCH,
                "warning",
                f"Service {svc.key} port {sp.port}: the TCP and UDP entries have different target ports "
                f"({same['TCP'].target_port} and {same['UDP'].target_port}); each pod is registered on one "
                "port, so one protocol reaches the wrong port",
                None,
                servicePort=ref,
                targetPorts={"TCP": same["TCP"].target_port, "UDP": same["UDP"].target_port},
            )


def _finding_drift(c: _Ctx) -> None:
    tg, svc, sp = c.tg, c.service, c.sport
    if tg is None or svc is None or sp is None or not c.health_known:
        return
    fmt: Callable[[tuple[str, int | None]], str]
    if c.target_type == "ip":
        # `t.ip` is the canonical address the resolution already worked out.
        registered = {(t.ip or t.target_id, t.port) for t in c.targets}
        expected: set[tuple[str, int | None]] = set()
        norm_ip = _norm_ip
        port_name = sp.name or None
        for eps in c.ix.slices_by_service.get((svc.namespace, svc.name), ()):
            ports = [p.port for p in eps.ports if (p.name or None) == port_name]
            expected.update(
                (norm_ip(address) or address, port)
                for ep in eps.endpoints
                if ep.ready is not False and not ep.terminating
                for address in ep.addresses
                for port in ports
            )
        fmt = lambda pair: f"{pair[0]}:{pair[1]}"  # noqa: E731
    elif c.target_type == "instance":
        selector = (
            ((c.b.raw or {}).get("spec") or {}).get("nodeSelector") if isinstance(c.b.raw, dict) else None
        )
        if isinstance(selector, dict) and selector.get("matchExpressions"):
            return
        match_labels = (selector or {}).get("matchLabels") or {} if isinstance(selector, dict) else {}
        registered = {(t.target_id, None) for t in c.targets}
        expected = set()
        for node in c.ix.inv.nodes.values():
            labels = node.labels or {}
            if not node.ready or not node.instance_id:
                continue
            if (
                any(k in labels for k in EXCLUDED_NODE_LABELS)
                or labels.get("eks.amazonaws.com/compute-type") == "fargate"
            ):
                continue
            if any(labels.get(k) != v for k, v in match_labels.items()):
                continue
            expected.add((node.instance_id, None))
        fmt = lambda pair: str(pair[0])  # noqa: E731
    else:
        return
    if expected == registered:
        return
    missing = sorted(expected - registered, key=str)
    extra = sorted(registered - expected, key=str)
    parts = []
    if missing:
        parts.append(f"{len(missing)} ready endpoint(s) not registered ({_short(map(fmt, missing), 5)})")
    if extra:
        parts.append(
            f"{len(extra)} registered target(s) with no ready endpoint ({_short(map(fmt, extra), 5)})"
        )
    c.f.add(
        Code.TARGET_DRIFT,
        "warning",
        "registered targets and ready endpoints differ: " + "; ".join(parts),
        None,
        notRegistered=[fmt(x) for x in missing[:50]],
        notReady=[fmt(x) for x in extra[:50]],
    )
