"""The layout's size rules (issue "One home per concept"), checked so they stay true.

Import direction is checked by import-linter (`[tool.importlinter]`, run by scripts/test); these
are the rules it cannot express: no module over 1,000 lines, no function over 120 lines outside
migrations and tests, and at most ten top-level modules in `bindings/` (the rest live in the
layer packages, so the folder tree reads as the architecture).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [
    path
    for top in ("bindings", "dashboard")
    for path in sorted((ROOT / top).rglob("*.py"))
    if "migrations" not in path.parts
]
MAX_MODULE_LINES = 1000
MAX_FUNCTION_LINES = 120
MAX_TOP_LEVEL_MODULES = 10


def test_there_are_sources_to_check():
    assert len(SOURCES) > 50


def test_no_module_is_over_a_thousand_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for p in SOURCES
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long


def test_no_function_is_over_120_lines():
    long = {}
    for path in SOURCES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                start = min([node.lineno] + [d.lineno for d in node.decorator_list])
                length = (node.end_lineno or node.lineno) - start + 1
                if length > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"] = length
    assert not long


def test_the_app_keeps_at_most_ten_top_level_modules():
    top = sorted(p.name for p in (ROOT / "bindings").glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top
