"""End to end offline: a bundle of N bindings -> `manage.py analyze BUNDLE --format json` (fixes
included), in a subprocess, at 1k, 4k and 10k bindings.

The bundles come from `bundlegen.py` (`kubectl get -o json` text in kubernetes.yaml, half the
NLBs with a security group, half the bindings broken so each gets a fix). Every size runs in the
same invocation, in turn, `--repeat` times (best kept), so the ratios are comparable even on a
shared machine. Reports wall and CPU seconds, peak RSS (VmHWM of the analyze process), the
marginal bindings/s between the two smallest sizes and the largest size's time ratio to the
smallest. Targets (issue 16): marginal >= 1,000 bindings/s, 10k <= 11 x 1k.

    .venv/bin/python benchmarks/bench_offline.py [--sizes 1000 4000 10000] [--repeat 2] [--profile N]

`--profile N` instead times the phases (load, inventory, analysis, fixes, report) in-process.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bundlegen  # noqa: E402

# Runs `manage.py analyze` and then prints its own peak RSS and CPU time to stderr (VmHWM, not
# ru_maxrss: Linux carries the parent's peak over into a child's ru_maxrss).
_CHILD = """
import os, resource, sys
sys.argv = ["manage.py", "analyze", sys.argv[1], "--format", "json"]
sys.path.insert(0, os.getcwd())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
from django.core.management import execute_from_command_line
try:
    execute_from_command_line(sys.argv)
finally:
    sys.stdout.flush()
    hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1]
    u = resource.getrusage(resource.RUSAGE_SELF)
    print(f"BENCH {int(hwm) / 1024:.1f} {u.ru_utime + u.ru_stime:.3f}", file=sys.stderr)
"""


def run_analyze(bundle: Path) -> dict[str, float]:
    env = dict(os.environ, DATABASE_URL="", BH_DATA_DIR=tempfile.mkdtemp(prefix="bh-bench-offline-"))
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(bundle)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"analyze failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    report = json.loads(proc.stdout)
    line = next(x for x in proc.stderr.splitlines() if x.startswith("BENCH "))
    rss, cpu = (float(v) for v in line.split()[1:])
    fixes = sum(1 for b in report["bindings"] if b.get("fix"))
    return {"wall": wall, "cpu": cpu, "rss_mb": rss, "bindings": len(report["bindings"]), "fixes": fixes}


def profile(n: int) -> None:
    """Phase times in this process (no subprocess, no Django startup)."""
    from bindings.analysis import report
    from bindings.analysis.bundle import bundle_inventory, load_bundle
    from bindings.analysis.engine import analyze
    from bindings.fixes import FixIndex, fix_to_dict, generate_fix

    with tempfile.TemporaryDirectory() as tmp:
        path = bundlegen.write_bundle_json(Path(tmp) / f"bundle-{n}", n)
        t = [time.perf_counter()]
        bundle = load_bundle(path)
        t.append(time.perf_counter())
        inv = bundle_inventory(bundle)
        t.append(time.perf_counter())
        results = analyze(inv)
        t.append(time.perf_counter())
        index = FixIndex(inv)
        fixes = [generate_fix(inv, r, index) for r in results]
        t.append(time.perf_counter())
        data = report.to_report(results)
        for entry, fix in zip(data["bindings"], fixes, strict=True):
            entry["fix"] = fix_to_dict(fix) if fix is not None else None
        json.dumps(data, indent=2, default=str)
        t.append(time.perf_counter())
    names = ("load bundle", "inventory", "analysis", "fixes", "report + JSON")
    for name, a, b in zip(names, t, t[1:], strict=False):
        print(f"{name:>14}: {b - a:7.2f} s  ({n / max(b - a, 1e-9):,.0f} bindings/s)")
    print(f"{'total':>14}: {t[-1] - t[0]:7.2f} s; {sum(f is not None for f in fixes)} fixes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000, 10000])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--profile", type=int, help="time the phases in-process for this many bindings")
    args = parser.parse_args()
    if args.profile:
        profile(args.profile)
        return
    sizes = sorted(args.sizes)
    with tempfile.TemporaryDirectory(prefix="bh-bench-offline-") as tmp:
        bundles = {n: bundlegen.write_bundle_json(Path(tmp) / f"bundle-{n}", n) for n in sizes}
        best: dict[int, dict[str, float]] = {}
        # Interleaved rounds: a burst of load elsewhere hits every size, not just one.
        for _ in range(args.repeat):
            for n in sizes:
                run = run_analyze(bundles[n])
                if n not in best or run["wall"] < best[n]["wall"]:
                    best[n] = run
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"python {platform.python_version()}, nproc {os.cpu_count()}, load average after: {load}")
    print(f"best of {args.repeat}, sizes interleaved")
    print("| bindings | fixes | wall s | CPU s | bindings/s (wall) | peak RSS MB |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n in sizes:
        r = best[n]
        print(
            f"| {n:,} | {int(r['fixes']):,} | {r['wall']:.2f} | {r['cpu']:.2f} | "
            f"{n / r['wall']:,.0f} | {r['rss_mb']:.0f} |"
        )
    if len(sizes) >= 2:
        a, b = sizes[0], sizes[1]
        for kind in ("wall", "cpu"):
            delta = best[b][kind] - best[a][kind]
            marginal = (b - a) / delta if delta > 0 else float("inf")
            ratio = best[sizes[-1]][kind] / best[a][kind]
            print(
                f"{kind}: marginal {marginal:,.0f} bindings/s between {a:,} and {b:,} (target >= 1,000); "
                f"{sizes[-1]:,} / {a:,} time ratio {ratio:.2f} (target <= {1.1 * sizes[-1] / a:.1f})"
            )


if __name__ == "__main__":
    main()
