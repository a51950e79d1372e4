"""One vocabulary (`bindings.vocabulary`): every code the engine emits is in it, with the
severities it really carries, help the pages show, and the fixable set the fix generator uses."""

from __future__ import annotations

import ast
import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bindings import vocabulary as v
from bindings.analysis import model as am
from bindings.fixes import FIXABLE_CODES
from bindings.fixes import generate as fix_generate

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).parent / "analysis_golden" / "analysis.json.gz"


def _code_members() -> dict[str, str]:
    return {name: value for name, value in vars(v.Code).items() if name.isupper()}


def test_each_code_constant_is_its_own_name_and_has_a_kind():
    members = _code_members()

    assert all(name == value for name, value in members.items())
    assert set(members.values()) == set(v.FINDINGS)
    assert all(kind.help and kind.severities for kind in v.FINDINGS.values())
    assert all(set(kind.severities) <= set(v.SEVERITIES) for kind in v.FINDINGS.values())


def test_the_analysis_and_the_fix_generator_name_codes_only_through_the_vocabulary():
    """No finding code as a bare string literal in the engine, the explainer or the fix generator."""
    codes = set(v.FINDINGS)
    for path in (
        *sorted((ROOT / "bindings/analysis/engine").glob("*.py")),
        ROOT / "bindings/analysis/explain.py",
        ROOT / "bindings/fixes/generate.py",
    ):
        tree = ast.parse(path.read_text())
        literals = {
            node.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in codes
        }
        assert literals == set(), f"{path.name} spells {sorted(literals)} as literals"
        used = {
            node.attr
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "Code"
        }
        assert used <= codes


def _golden_findings() -> list[dict]:
    data = json.loads(gzip.decompress(GOLDEN.read_bytes()))
    out = []
    for case in data.values():
        for binding in case["report"]["bindings"]:
            out.extend(binding["findings"])
    return out


def test_every_golden_finding_has_a_known_code_and_one_of_its_severities():
    findings = _golden_findings()
    assert findings

    for finding in findings:
        kind = v.FINDINGS[finding["code"]]
        assert finding["severity"] in kind.severities, finding


def test_the_fixable_set_is_the_vocabularys():
    assert FIXABLE_CODES is v.FIXABLE_CODES
    assert fix_generate.FIXABLE_CODES is v.FIXABLE_CODES
    # Probes, staleness and health are observations, not rule changes.
    assert not FIXABLE_CODES & {
        v.Code.PROBE_FAILS_WHILE_REACHABLE,
        v.Code.PROBE_SUCCEEDS_WHILE_BLOCKED,
        v.Code.STALE_DATA,
        v.Code.ALL_TARGETS_UNHEALTHY,
        v.Code.UNHEALTHY_TARGETS,
    }


def test_the_analysis_model_reexports_the_vocabulary():
    assert am.VERDICTS is v.VERDICTS
    assert am.SEVERITIES is v.SEVERITIES
    assert am.CARRIED_PROTOCOLS is v.CARRIED_PROTOCOLS


@pytest.mark.parametrize(
    ("protocol", "carried"),
    [("TCP_UDP", ("TCP", "UDP")), ("tls", ("TCP",)), ("quic", ("UDP",)), ("HTTP", ()), (None, ()), ("", ())],
)
def test_carried_protocols(protocol, carried):
    assert v.carried(protocol) == carried


@pytest.mark.slow
def test_the_vocabulary_imports_no_django():
    """Analysis and fixes import it, and they stay pure."""
    code = (
        "import sys, bindings.vocabulary, bindings.freshness;"
        "print(any(m.startswith('django') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)

    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
