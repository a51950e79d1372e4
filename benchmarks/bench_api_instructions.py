"""API cost per request as a count: CPU instructions of the Django process (valgrind's callgrind).

Wall clock on a shared 2-CPU machine moves with everyone else's load; an instruction count does
not. For each path, one process is run under callgrind twice — `--low` and `--high` requests
after the same warm-up — and the difference divided by `high - low` is one request's instructions
(Django setup, imports and warm-up cancel out; the warm-up's heap is frozen out of the garbage
collector's sight, see `serve`). In-process (Django's test client, the whole
middleware stack, a bearer read token), against the database `bench_api.py` seeds:

    BH_BENCH_DB_SUFFIX=… .venv/bin/python benchmarks/bench_api_instructions.py [--root OTHER_TREE]

`--root` measures another checkout (e.g. the code before a change) against the same database, so
before and after can be read side by side in one run. Prints one JSON line per path and a table;
the ratio is the floor's instructions over the path's (what throughput would be, were the Python
process all the cost: the database's own CPU is not counted here).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench_api import FLOOR, PATHS, database_url

ROOT = Path(__file__).resolve().parent.parent


def serve(path: str, warm: int, requests: int) -> None:
    """The measured process: `warm` requests, then `requests` more, all answering 200."""
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.test import Client

    from bindings import models as m
    from bindings.api.auth import token_generate

    user, _ = User.objects.get_or_create(username="bench")
    token, prefix, digest = token_generate()
    m.ApiToken.objects.create(name="bench-instructions", user=user, prefix=prefix, digest=digest)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_HOST="localhost")
    for i in range(warm + requests):
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code, response.content[:300])
        if i == warm - 1:
            # Whatever setup and warm-up left behind is frozen out of the collector's sight: a full
            # collection over it would land in one run's window and not the other's (±0.4 M per
            # request seen), while the garbage the requests themselves make is still collected.
            gc.collect()
            gc.freeze()


def instructions(root: Path, path: str, warm: int, requests: int, env: dict[str, str]) -> int:
    """Instructions (callgrind's `Ir` total) of one process serving `warm + requests` requests."""
    with tempfile.TemporaryDirectory(prefix="bh-callgrind-") as tmp:
        out = Path(tmp) / "callgrind.out"
        done = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                str(Path(__file__).resolve()),
                "--serve",
                path,
                str(warm),
                str(requests),
            ],
            cwd=root,
            env=dict(env, PYTHONPATH=str(root)),
            capture_output=True,
            text=True,
        )
        if done.returncode:
            sys.exit(f"{path} in {root} failed:\n{done.stderr[-3000:]}")
        text = out.read_text(errors="replace")
    found = re.search(r"^(?:summary|totals):\s*(\d+)", text, re.MULTILINE)
    assert found, "no instruction total in callgrind's output"
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--root", type=Path, action="append", help="checkout(s) to measure (default: this one)"
    )
    parser.add_argument("--warm", type=int, default=20)
    parser.add_argument("--low", type=int, default=20)
    parser.add_argument("--high", type=int, default=60)
    parser.add_argument("--jobs", type=int, default=2, help="valgrind processes at once")
    parser.add_argument("--path", action="append", help="paths to measure (default: bench_api's)")
    parser.add_argument("--serve", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        path, warm, requests = args.serve
        serve(path, int(warm), int(requests))
        return
    if not shutil.which("valgrind"):
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    url = database_url()
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="dashboard.settings",
        LOG_LEVEL="WARNING",
        BH_DATA_DIR=tempfile.mkdtemp(prefix="bh-bench-instr-"),
        # Under valgrind a request takes ~50 times as long: the token would drop out of the
        # 5 s cache now and then, which at full speed it does not. Steady state: always cached.
        BH_API_TOKEN_CACHE_SECONDS="3600",
        # Same string hashes in every run: dict and set layouts, hence instruction counts, repeat.
        PYTHONHASHSEED="0",
    )
    env.pop("REDIS_URL", None)
    if url:
        env["DATABASE_URL"] = url
    roots = args.root or [ROOT]
    paths = args.path or PATHS
    runs = [(root, path, n) for path in paths for root in roots for n in (args.low, args.high)]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        done = pool.map(lambda run: instructions(run[0], run[1], args.warm, run[2], env), runs)
        counts = dict(zip(runs, done, strict=True))
    rows = []
    for root in roots:
        for path in paths:
            per = (counts[root, path, args.high] - counts[root, path, args.low]) / (args.high - args.low)
            rows.append({"root": str(root), "path": path, "instructions": round(per)})
            print(json.dumps(rows[-1]), file=sys.stderr)
    print("| checkout | request | M instructions / request | floor ÷ request |")
    print("|---|---|---:|---:|")
    for root in roots:
        mine = [r for r in rows if r["root"] == str(root)]
        floor = next((r["instructions"] for r in mine if r["path"] == FLOOR), None)
        for r in mine:
            ratio = f"{floor / r['instructions']:.2f}" if floor else "–"
            print(f"| {Path(r['root']).name} | `GET {r['path']}` | {r['instructions'] / 1e6:.2f} | {ratio} |")


if __name__ == "__main__":
    main()
