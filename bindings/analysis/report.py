"""Render analysis results: the JSON report of docs/DESIGN.md "Bundles", a terminal report, `--fail-on`.

Every string in a result may come from Kubernetes or AWS (names, descriptions, messages that quote
them) and may be hostile: `to_text` shows every control and format character (ANSI escape
sequences start with one, bidirectional overrides are ones) as a visible `\\xNN` / `\\uNNNN`
escape (`bindings.textsafe.visible`), so a crafted rule description cannot rewrite the terminal.
The JSON report leaves escaping to the JSON encoder (`ensure_ascii`: every non-ASCII character is
a `\\uNNNN` escape).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bindings.textsafe import visible as sanitize

from .model import BindingResult, HealthCheckResult

__all__ = ["FAIL_ON_LEVELS", "fail_on_matches", "sanitize", "to_report", "to_text"]

FAIL_ON_LEVELS = ("blocked", "partial", "warning")


def _health_check(hc: HealthCheckResult | None) -> dict[str, Any] | None:
    if hc is None:
        return None
    return {
        "protocol": hc.protocol,
        "port": hc.port,
        "path": hc.path,
        "proves": hc.proves,
        "cannotProve": hc.cannot_prove,
        "admitted": hc.admitted,
        "healthy": hc.healthy,
        "unhealthy": hc.unhealthy,
        "other": hc.other,
    }


def to_report(results: Iterable[BindingResult]) -> dict[str, Any]:
    """The JSON report (docs/DESIGN.md "Bundles"). `fix` stays null until the fix generator lands."""
    bindings = []
    for r in results:
        bindings.append(
            {
                "cluster": r.cluster,
                "namespace": r.namespace,
                "name": r.name,
                "targetGroupArn": r.target_group_arn,
                "targetType": r.target_type,
                "targetGroupProtocol": r.target_group_protocol,
                "protocols": [
                    {
                        "protocol": p.protocol,
                        "port": p.port,
                        "verdict": p.verdict,
                        "targets": {"total": p.targets_total, "admitted": p.targets_admitted},
                        "reasons": list(p.reasons),
                    }
                    for p in r.protocols
                ],
                "healthCheck": _health_check(r.health_check),
                "findings": [
                    {"code": f.code, "severity": f.severity, "protocol": f.protocol, "message": f.message}
                    for f in r.findings
                ],
                "fix": None,
            }
        )
    return {"bindings": bindings}


_MARK = {
    "reachable": "OK",
    "partial": "PARTIAL",
    "blocked": "BLOCKED",
    "not_offered": "NOT OFFERED",
    "unknown": "?",
}


def to_text(results: Iterable[BindingResult]) -> str:
    """A readable terminal report: one block per binding, verdicts first, then findings."""
    s = sanitize
    lines: list[str] = []
    results = list(results)
    for r in results:
        lines.append(f"{s(r.cluster)} {s(r.namespace)}/{s(r.name)}")
        lines.append(
            f"  target group: {s(r.target_group_arn) or '-'}  ({s(r.target_group_protocol) or '?'}, "
            f"{s(r.target_type) or '?'} targets)"
        )
        for p in r.protocols:
            port = p.port if p.port is not None else "?"
            lines.append(
                f"  {p.protocol} {port}: {_MARK.get(p.verdict, p.verdict)} "
                f"({p.targets_admitted}/{p.targets_total} targets admit it)"
            )
            for reason in p.reasons:
                lines.append(f"      - {s(reason)}")
        hc = r.health_check
        if hc is not None:
            admitted = {True: "admitted", False: "NOT admitted", None: "unknown"}[hc.admitted]
            lines.append(
                f"  health check: {s(hc.protocol) or 'TCP'} port {s(hc.port) or 'traffic-port'} — "
                f"{admitted}; "
                f"{hc.healthy} healthy, {hc.unhealthy} unhealthy, {hc.other} other"
            )
            lines.append(f"      proves: {s(hc.proves)}")
            lines.append(f"      cannot prove: {s(hc.cannot_prove)}")
        if r.findings:
            lines.append("  findings:")
            for f in r.findings:
                proto = f" [{f.protocol}]" if f.protocol else ""
                lines.append(f"    {f.severity.upper():8} {f.code}{proto}: {s(f.message)}")
        lines.append("")
    counts: dict[str, int] = {}
    for r in results:
        for p in r.protocols:
            counts[p.verdict] = counts.get(p.verdict, 0) + 1
    summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "nothing judged"
    lines.append(f"{len(results)} binding(s): {summary}")
    return "\n".join(lines) + "\n"


def fail_on_matches(results: Iterable[BindingResult], level: str) -> bool:
    """True when `--fail-on LEVEL` should fail the run.

    blocked: any protocol blocked; partial: any blocked or partial; warning: any finding of severity
    warning or critical.
    """
    if level not in FAIL_ON_LEVELS:
        raise ValueError(f"--fail-on must be one of {', '.join(FAIL_ON_LEVELS)}, not {level!r}")
    for r in results:
        if level == "warning":
            if any(f.severity in ("warning", "critical") for f in r.findings):
                return True
            continue
        bad = {"blocked"} if level == "blocked" else {"blocked", "partial"}
        if any(p.verdict in bad for p in r.protocols):
            return True
    return False
