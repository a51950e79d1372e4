"""How a scenario's expected.json is compared with an `analyze --format json` report.

Shared by tests/test_scenarios.py (every bundle) and tests/test_controller_parity.py (the
`parity-*` bundles), so both suites read expected.json the same way.
"""

from __future__ import annotations


def report_failures(expected: dict, report: dict) -> list[str]:
    """Every way `report` departs from `expected` (empty when it matches)."""
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
    return failures
