"""Findings where the latest active probe of a protocol disagrees with its verdict."""

from __future__ import annotations

from ...vocabulary import Code
from .. import model as m
from .context import _Ctx

_PROBE_LABELS = {"tcp": "TCP connect", "dns": "DNS", "udp": "UDP payload"}


def _findings_probes(c: _Ctx) -> None:
    """Disagreements between a protocol's verdict and the latest active probe of it.

    Only conclusive probes count: ``failed`` against ``reachable`` and ``ok`` against ``blocked``
    (``partial`` already says some sources get through, and ``inconclusive``/``error`` prove
    nothing). The message and evidence avoid per-probe values (latency, time, resolved address),
    so a steady disagreement does not rewrite the stored result on every probe round.
    """
    probes = getattr(c.ix.inv, "probes", None) or {}
    if not probes:
        return
    for result in c.results:
        probe = probes.get((c.b.uid, result.protocol))
        if probe is None:
            continue
        label = _PROBE_LABELS.get(probe.kind, probe.kind)
        if probe.kind == "dns":
            label = f"DNS over {result.protocol}"
        target = f"{probe.address}:{probe.port}" if probe.port is not None else probe.address
        port = f" to port {result.port}" if result.port is not None else ""
        evidence = {
            "probeKind": probe.kind,
            "probeStatus": probe.status,
            "probeTarget": target,
            "explicitAddress": probe.explicit,
            "verdict": result.verdict,
        }
        if result.verdict == "reachable" and probe.status == "failed":
            causes = [
                "network ACLs (return traffic on ephemeral ports is not judged, and ACLs may be missing "
                "from the data)",
            ]
            lbs = [c.ix.inv.load_balancers.get(arn) for arn in c.lbs_by_proto.get(result.protocol, ())]
            lb_sgs = sorted({sg for lb in lbs if lb is not None for sg in lb.security_groups})
            if lb_sgs:
                causes.append(f"the load balancer's own security group inbound rules ({', '.join(lb_sgs)})")
            else:
                causes.append("the load balancer's own security group inbound rules, if it has any")
            causes += [
                "nothing listening on the targets (process down, wrong port)",
                "the probe's network position is not a client range (no route from the worker to the "
                "load balancer, or a firewall on the way)",
                "the controller has not yet reconciled (targets still registering)",
                "stale data (rules removed since the last poll)",
            ]
            c.f.add(
                Code.PROBE_FAILS_WHILE_REACHABLE,
                "warning",
                f"static analysis says {result.protocol}{port} is reachable, but a {label} probe from the "
                f"worker to {target} failed (a refused connection points to nothing listening, a timeout "
                "to traffic dropped on the way). Likely causes: " + "; ".join(causes) + ".",
                result.protocol,
                **evidence,
            )
        elif result.verdict == "blocked" and probe.status == "ok":
            causes = [
                "the probe runs from the worker's network position (inside the VPC or an equivalent "
                "network), which the rules may admit where the expected sources are not: real clients "
                "may still be blocked",
                "the client ranges are configured too narrowly or wrongly (the "
                f"{m.CLIENT_CIDRS_ANNOTATION} annotation or the cluster's client networks), so the "
                "verdict judges sources that are not the real clients",
                "stale data (rules added since the last poll)",
            ]
            if probe.explicit:
                causes.append(
                    f"the probe targets a configured address ({target}), which may not go through this "
                    "binding's load balancer and targets"
                )
            c.f.add(
                Code.PROBE_SUCCEEDS_WHILE_BLOCKED,
                "warning",
                f"static analysis says {result.protocol}{port} is blocked, but a {label} probe from the "
                f"worker to {target} succeeded. Likely causes: " + "; ".join(causes) + ".",
                result.protocol,
                **evidence,
            )
