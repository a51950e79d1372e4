"""The analysis engine reproduces, exactly, the output pinned in tests/analysis_golden.

The golden file was written by the engine before its performance work (see
tests/analysis_golden/generate.py): every field of every result — verdicts, reasons, per-target
verdicts, expected sources, health check, findings with their evidence — and the JSON report must
come out identical, so an optimisation can never change what an SRE reads.
"""

from __future__ import annotations

import copy
import json

import pytest

from bindings.analysis import model as m
from bindings.analysis.engine import analyze
from tests.analysis_golden.generate import cases, dumps, read_golden, snapshot

GOLDEN = read_golden()
CASES = dict(cases())


def test_golden_covers_every_case() -> None:
    assert sorted(GOLDEN) == sorted(CASES)
    assert len(CASES) >= 150


def _first_difference(want: object, got: object, path: str = "") -> str:
    """Where two JSON values first differ, for a readable failure."""
    if type(want) is not type(got):
        return f"{path}: {want!r} != {got!r}"
    if isinstance(want, dict):
        assert isinstance(got, dict)
        for key in sorted(set(want) | set(got)):
            if want.get(key) != got.get(key):
                return _first_difference(want.get(key), got.get(key), f"{path}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list)
        for i, (a, b) in enumerate(zip(want, got, strict=False)):
            if a != b:
                return _first_difference(a, b, f"{path}[{i}]")
        if len(want) != len(got):
            return f"{path}: {len(want)} items != {len(got)} items"
    return f"{path}: {want!r} != {got!r}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_engine_reproduces_golden(name: str) -> None:
    got = snapshot(analyze(CASES[name]()))
    want = GOLDEN[name]
    assert got == want, _first_difference(want, got)
    # Byte-identical serialisation too (ordering, types).
    assert dumps(got) == dumps(want)


def test_repeated_analysis_is_identical() -> None:
    """Per-inventory caches must not leak between runs, nor results depend on input order."""
    inventory: m.Inventory = CASES["bench-mixed-300"]()
    first = analyze(inventory)
    again = analyze(inventory)
    shuffled = copy.deepcopy(inventory)
    shuffled.bindings.reverse()
    shuffled.network_interfaces = dict(reversed(list(shuffled.network_interfaces.items())))
    shuffled.listeners.reverse()
    assert first == again
    assert json.dumps(snapshot(analyze(shuffled))) == json.dumps(snapshot(first))
