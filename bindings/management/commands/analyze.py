"""`manage.py analyze PATH`: judge a bundle offline, with no database and no network.

Exit status: 0 when the analysis ran, 1 when `--fail-on` matched, 2 when the input is unreadable
(the message on stderr names the file and the field), so CI can tell "broken" from "bad input".
"""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from bindings.analysis.bundle import MAX_FILE_BYTES, BundleError, bundle_inventory, load_bundle
from bindings.analysis.normalize import parse_cidr

FAIL_ON_LEVELS = ("blocked", "partial", "warning")


class Command(BaseCommand):
    help = "Analyse a bundle (directory, .tar.gz or .zip) and print the per-protocol report."
    # System checks may read the database configuration; this command must run without one.
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="bundle directory, .tar.gz/.tgz or .zip")
        parser.add_argument("--format", choices=("text", "json"), default="text", dest="output_format")
        parser.add_argument(
            "--fail-on",
            choices=FAIL_ON_LEVELS,
            default=None,
            help="exit 1 when a result reaches this level (for CI)",
        )
        parser.add_argument(
            "--client-cidr",
            action="append",
            default=None,
            dest="client_cidrs",
            metavar="CIDR",
            help="client range (repeatable); overrides bundle.json clientCidrs",
        )
        parser.add_argument(
            "--max-file-mb",
            type=int,
            default=None,
            metavar="MB",
            help=f"refuse a bundle file larger than this, decompressed (default {MAX_FILE_BYTES // 2**20})",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        client_cidrs = options.get("client_cidrs") or None
        for cidr in client_cidrs or ():
            if parse_cidr(cidr) is None:
                raise CommandError(f"--client-cidr: {cidr!r} is not a valid CIDR", returncode=2)
        try:
            mb = options.get("max_file_mb")
            bundle = load_bundle(options["path"], max_file_bytes=mb * 2**20 if mb and mb > 0 else None)
        except BundleError as exc:
            raise CommandError(str(exc), returncode=2) from exc
        inventory = bundle_inventory(bundle, client_cidrs=client_cidrs)

        from bindings.analysis import report
        from bindings.analysis.engine import analyze
        from bindings.fixes import FixIndex, fix_to_dict, generate_fix

        results = analyze(inventory)
        if options["output_format"] == "json":
            data = report.to_report(results)
            # The report's "fix" is the generated repair (docs/DESIGN.md "Fix manifests"), when any.
            index = FixIndex(inventory)
            for entry, result in zip(data["bindings"], results, strict=True):
                fix = generate_fix(inventory, result, index)
                entry["fix"] = fix_to_dict(fix) if fix is not None else None
            self.stdout.write(json.dumps(data, indent=2, default=str))
        else:
            self.stdout.write(report.to_text(results))
        level = options.get("fail_on")
        if level and report.fail_on_matches(results, level):
            self.stdout.flush()
            sys.exit(1)
