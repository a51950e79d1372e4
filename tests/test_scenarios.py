"""Every sample bundle in tests/scenarios, analysed by the `analyze` command, matches its expected.json.

The expectations were written from docs/DESIGN.md and the facts file, not from the engine's output, so
a failure here is either an engine bug or a scenario bug: read the scenario's README line first.
"""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.scenarios.expectations import report_failures

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
    failures = report_failures(expected, run_analyze(scenario))
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
