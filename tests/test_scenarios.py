"""Every sample bundle in tests/scenarios, analysed by the `analyze` command, matches its expected.json.

The expectations were written from DESIGN.md and the facts file, not from the engine's output, so
a failure here is either an engine bug or a scenario bug: read the scenario's README line first.
"""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
FOLDERS = sorted(p for p in SCENARIOS.iterdir() if (p / "expected.json").is_file())


def run_analyze(path: Path, *args: str) -> dict:
    out = StringIO()
    call_command("analyze", str(path), "--format", "json", *args, stdout=out)
    return json.loads(out.getvalue())


@pytest.fixture(params=FOLDERS, ids=[p.name for p in FOLDERS])
def scenario(request) -> Path:
    return request.param


def test_scenarios_exist() -> None:
    assert len(FOLDERS) >= 20


def test_scenario_matches_expected(scenario: Path) -> None:
    expected = json.loads((scenario / "expected.json").read_text())
    report = run_analyze(scenario)
    found = {f"{b['namespace']}/{b['name']}": b for b in report["bindings"]}
    failures = []
    for key, want in expected["bindings"].items():
        got = found.get(key)
        if got is None:
            failures.append(f"{key}: not in the report")
            continue
        verdicts = {p["protocol"]: p["verdict"] for p in got["protocols"]}
        admitted = {
            p["protocol"]: [p["targets"]["admitted"], p["targets"]["total"]] for p in got["protocols"]
        }
        codes = {f["code"] for f in got["findings"]}
        for protocol, verdict in want.get("protocols", {}).items():
            if protocol == "*":
                wrong = {p: v for p, v in verdicts.items() if v != verdict}
                if wrong:
                    failures.append(f"{key}: every protocol should be {verdict}, got {wrong}")
            elif verdicts.get(protocol) != verdict:
                failures.append(f"{key} {protocol}: verdict {verdicts.get(protocol)!r}, expected {verdict!r}")
        for code in want.get("require", []):
            if code not in codes:
                failures.append(f"{key}: missing finding {code} (got {sorted(codes)})")
        for code in want.get("forbid", []):
            if code in codes:
                failures.append(f"{key}: forbidden finding {code} reported")
        for protocol, pair in want.get("admitted", {}).items():
            if admitted.get(protocol) != list(pair):
                failures.append(f"{key} {protocol}: admitted/total {admitted.get(protocol)}, expected {pair}")
    assert not failures, "\n".join(failures)


def test_originals_untouched_by_generator() -> None:
    """The generator derives from dns-udp-blocked and must never list the originals as its own."""
    from tests.scenarios import build_scenarios

    assert not set(build_scenarios.SCENARIOS) & build_scenarios.ORIGINALS


def test_generated_folders_are_up_to_date(tmp_path: Path) -> None:
    """The committed folders equal what build_scenarios.py writes today."""
    from tests.scenarios import build_scenarios

    for name, build in build_scenarios.SCENARIOS.items():
        _, built = build()
        assert json.loads((SCENARIOS / name / "expected.json").read_text()) == built.expected, name
        assert json.loads((SCENARIOS / name / "aws.json").read_text()) == built.aws, name
