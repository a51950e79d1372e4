"""`manage.py poll [--cluster NAME ...] [--account NAME ...]`: poll synchronously, no worker needed.

Clusters are polled first so the AWS poll knows which target groups and nodes they reference.
Exit status 1 when any poll failed (each failure is recorded on its PollRun and source).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from bindings import models as m
from bindings.services import polling
from bindings.tasks import source_lock


class Command(BaseCommand):
    help = "Poll clusters and AWS accounts now, in this process, and print what each poll did."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--cluster", action="append", default=[], help="cluster name (repeatable)")
        parser.add_argument("--account", action="append", default=[], help="AWS account name (repeatable)")
        parser.add_argument(
            "--include-disabled", action="store_true", help="also poll sources that are disabled"
        )

    def handle(self, *args, **opts) -> None:
        clusters = m.Cluster.objects.select_related("aws_account").order_by("name")
        accounts = m.AwsAccount.objects.order_by("name")
        if not opts["include_disabled"]:
            clusters, accounts = clusters.filter(enabled=True), accounts.filter(enabled=True)
        only_some = opts["cluster"] or opts["account"]
        if only_some:
            clusters = clusters.filter(name__in=opts["cluster"])
            accounts = accounts.filter(name__in=opts["account"])
            unknown = (set(opts["cluster"]) - {c.name for c in clusters}) | (
                set(opts["account"]) - {a.name for a in accounts}
            )
            if unknown:
                raise CommandError(f"unknown source(s): {', '.join(sorted(unknown))}")
        sources = [("cluster", c) for c in clusters] + [("AWS account", a) for a in accounts]
        if not sources:
            self.stdout.write("Nothing to poll: add a cluster and an AWS account in the admin.")
            return
        failed = 0
        for index, (kind, source) in enumerate(sources, 1):
            self.stdout.write(f"[{index}/{len(sources)}] polling {kind} {source.name} ...", ending="")
            self.stdout.flush()
            lock_kind = "cluster" if kind == "cluster" else "account"
            try:
                with source_lock(lock_kind, source.pk) as acquired:
                    if not acquired:
                        self.stdout.write(self.style.WARNING(" skipped: a worker is polling it right now"))
                        continue
                    if kind == "cluster":
                        run = polling.cluster_poll(cluster=source, trigger="command")
                    else:
                        run = polling.account_poll(account=source, trigger="command")
            except Exception as exc:
                failed += 1
                self.stdout.write(self.style.ERROR(f" failed: {exc.__class__.__name__}: {exc}"))
                continue
            calls = sum(run.api_calls.values())
            self.stdout.write(
                self.style.SUCCESS(" ok")
                + f" ({run.duration_ms} ms, {calls} API calls, {run.rows_written} rows written)"
            )
        summary = m.ProtocolVerdict.objects.values_list("verdict", flat=True)
        counts: dict[str, int] = {}
        for verdict in summary:
            counts[verdict] = counts.get(verdict, 0) + 1
        if counts:
            self.stdout.write("verdicts: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        if failed:
            raise CommandError(f"{failed} of {len(sources)} poll(s) failed", returncode=1)
