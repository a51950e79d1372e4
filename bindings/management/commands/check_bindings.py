"""`manage.py check_bindings`: the stored results, with CI/cron-friendly exit codes.

Reads the database only (what the poller last stored; nothing is polled). Exit 0 when nothing
matches `--fail-on`, 1 when something does, 2 on bad arguments (an unknown cluster).
Text output passes every stored string through `report.sanitize`: names and messages come from
Kubernetes and AWS and may carry ANSI escapes or control characters meant for a terminal.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from bindings import models as m
from bindings.analysis.report import FAIL_ON_LEVELS, sanitize


def _matches(item: dict[str, Any], level: str) -> bool:
    """Same rule as `analyze --fail-on` (report.fail_on_matches), on stored rows."""
    if level == "warning":
        return any(f["severity"] in ("warning", "critical") for f in item["findings"])
    bad = {"blocked"} if level == "blocked" else {"blocked", "partial"}
    return any(p["verdict"] in bad for p in item["protocols"])


def stored_results(clusters: list[str] | None = None) -> list[dict[str, Any]]:
    """Every binding with its stored verdicts and findings. Queries: bindings (1), verdicts (1),
    findings (1)."""
    qs = (
        m.TargetGroupBinding.objects.select_related("cluster__aws_account")
        .only(
            "id",
            "namespace",
            "name",
            "target_group_arn",
            "cluster__name",
            "cluster__poll_interval_seconds",
            "cluster__last_success_at",
            "cluster__aws_account__name",
            "cluster__aws_account__poll_interval_seconds",
            "cluster__aws_account__last_success_at",
        )
        .prefetch_related("verdicts", "findings")
        .order_by("cluster__name", "namespace", "name", "pk")
    )
    if clusters:
        qs = qs.filter(cluster__name__in=clusters)
    out = []
    for b in qs:
        sources = [b.cluster] + ([b.cluster.aws_account] if b.cluster.aws_account_id else [])
        out.append(
            {
                "cluster": b.cluster.name,
                "namespace": b.namespace,
                "name": b.name,
                "target_group_arn": b.target_group_arn,
                "stale": any(s.is_stale for s in sources),
                "protocols": [
                    {
                        "protocol": v.protocol,
                        "port": v.port,
                        "verdict": v.verdict,
                        "targets_total": v.targets_total,
                        "targets_admitted": v.targets_admitted,
                    }
                    for v in sorted(b.verdicts.all(), key=lambda v: v.protocol)
                ],
                "findings": [
                    {
                        "code": f.code,
                        "severity": f.severity,
                        "protocol": f.protocol or None,
                        "message": f.message,
                    }
                    for f in sorted(
                        b.findings.all(), key=lambda f: (-m.SEVERITY_RANK.get(f.severity, 0), f.code, f.pk)
                    )
                ],
            }
        )
    return out


class Command(BaseCommand):
    help = "Check the stored binding results; exit 1 when --fail-on matches (for CI and cron)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--cluster", action="append", default=None, metavar="NAME", help="only this cluster (repeatable)"
        )
        parser.add_argument("--fail-on", choices=FAIL_ON_LEVELS, default=None, help="exit 1 at this level")
        parser.add_argument("--format", choices=("text", "json"), default="text", dest="output_format")

    def handle(self, *args: Any, **options: Any) -> None:
        clusters = options.get("cluster") or None
        if clusters:
            known = set(m.Cluster.objects.filter(name__in=clusters).values_list("name", flat=True))
            missing = [c for c in clusters if c not in known]
            if missing:
                raise CommandError(f"unknown cluster: {', '.join(map(sanitize, missing))}", returncode=2)
        items = stored_results(clusters)
        level = options.get("fail_on")
        matched = [i for i in items if level and _matches(i, level)]
        if options["output_format"] == "json":
            payload = {"fail_on": level, "matched": len(matched), "bindings": items}
            self.stdout.write(json.dumps(payload, indent=2))
        else:
            self.stdout.write(self.render_text(items, level, matched))
        if matched:
            self.stdout.flush()
            sys.exit(1)

    def render_text(
        self, items: list[dict[str, Any]], level: str | None, matched: list[dict[str, Any]]
    ) -> str:
        s = sanitize
        lines = []
        for item in items:
            flag = "  [stale data]" if item["stale"] else ""
            lines.append(f"{s(item['cluster'])} {s(item['namespace'])}/{s(item['name'])}{flag}")
            if not item["protocols"]:
                lines.append("  not analysed yet")
            for p in item["protocols"]:
                port = p["port"] if p["port"] is not None else "?"
                lines.append(
                    f"  {s(p['protocol'])} {port}: {s(p['verdict'])} "
                    f"({p['targets_admitted']}/{p['targets_total']} targets admit it)"
                )
            for f in item["findings"]:
                proto = f" [{s(f['protocol'])}]" if f["protocol"] else ""
                lines.append(f"    {s(f['severity']).upper():8} {s(f['code'])}{proto}: {s(f['message'])}")
        counts: dict[str, int] = {}
        for item in items:
            for p in item["protocols"]:
                counts[p["verdict"]] = counts.get(p["verdict"], 0) + 1
        summary = ", ".join(f"{n} {s(v)}" for v, n in sorted(counts.items())) or "nothing judged"
        lines.append(f"{len(items)} binding(s): {summary}")
        if level:
            lines.append(f"--fail-on {level}: {len(matched)} binding(s) match")
        return "\n".join(lines) + "\n"
