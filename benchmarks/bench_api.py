"""API latency: `GET /api/v1/bindings` p50/p95 at 20 concurrent clients over 10,000 bindings.

Seeds 10,000 analysed bindings (one verdict and one finding each, a full result JSON with five
targets) into PostgreSQL `bh_bench` (created when missing; SQLite in a temporary folder when
PostgreSQL does not answer), serves the app with gunicorn on 127.0.0.1, and drives it from a
separate process with 20 threads, each on its own keep-alive connection with a read token. Run:

    .venv/bin/python benchmarks/bench_api.py [--seconds 20] [--clients 20] [--workers N] [--write]

`--write` appends the figures to docs/performance.md under "API latency". Not a test: the goals
(p95 <= 100 ms at 20 clients; docs/DESIGN.md: list p95 <= 400 ms at 10,000 bindings, paginated) are
checked by reading the figures.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from benchdb import bench_database

ROOT = Path(__file__).resolve().parent.parent
BINDINGS = 10_000
# The floor first: a trivial authenticated endpoint (token check, one JSON object), measured in
# the same run, so the list's cost reads as a ratio to what Django, gunicorn and the token cost
# anyway (issue 16: list throughput >= 0.5 x the floor's).
FLOOR = "/api/v1/whoami"
PATHS = [
    FLOOR,
    "/api/v1/bindings",
    "/api/v1/bindings?verdict=blocked&protocol=UDP",
    "/api/v1/bindings?limit=200",
]


def database_url() -> str:
    return bench_database("bh_bench")


def seed(n: int) -> dict:
    """Seed `n` analysed bindings (idempotent) and a fresh read token; runs in its own process."""
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.utils import timezone

    from bindings import models as m
    from bindings.api.auth import token_generate

    account, _ = m.AwsAccount.objects.get_or_create(
        name="bench", defaults={"account_id": "123456789012", "region": "us-east-1"}
    )
    now = timezone.now()
    clusters = []
    for i in range(4):
        c, _ = m.Cluster.objects.get_or_create(
            name=f"bench-{i}",
            defaults={"connection": "url", "api_url": "http://127.0.0.1:9", "aws_account": account},
        )
        clusters.append(c)
    m.Cluster.objects.update(last_success_at=now, last_polled_at=now)
    m.AwsAccount.objects.update(last_success_at=now, last_polled_at=now)
    have = m.TargetGroupBinding.objects.count()
    if have < n:
        verdicts = ("reachable",) * 6 + ("blocked", "partial", "unknown", "not_offered")
        batch = []
        for i in range(have, n):
            batch.append(
                m.TargetGroupBinding(
                    cluster=clusters[i % 4],
                    uid=f"uid-{i}",
                    namespace=f"ns-{i % 50}",
                    name=f"svc-{i:05d}",
                    api_version="elbv2.k8s.aws/v1beta1",
                    target_group_arn=f"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/tg{i}/x",
                    target_type="ip",
                    target_group_protocol="UDP" if i % 3 == 0 else "TCP",
                )
            )
        created = m.TargetGroupBinding.objects.bulk_create(batch, batch_size=1000)
        results, pvs, fs = [], [], []
        for b in created:
            i = int(b.uid.split("-")[1])
            v = verdicts[i % len(verdicts)]
            proto = b.target_group_protocol
            targets = [
                {
                    "target_id": f"10.0.{i % 250}.{t}",
                    "port": 53,
                    "network_interface_id": f"eni-{i}{t}",
                    "security_group_ids": ["sg-1"],
                    "admitted": v == "reachable",
                    "uncovered_sources": [],
                    "matched_rules": ["udp 53 from 10.0.0.0/16"],
                    "reason": "",
                }
                for t in range(5)
            ]
            data = {
                "cluster": b.cluster.name,
                "namespace": b.namespace,
                "name": b.name,
                "uid": b.uid,
                "target_group_arn": b.target_group_arn,
                "target_type": "ip",
                "target_group_protocol": proto,
                "protocols": [
                    {
                        "protocol": proto,
                        "port": 53,
                        "verdict": v,
                        "targets_total": 5,
                        "targets_admitted": 5 if v == "reachable" else 0,
                        "client_ip_preserved": True,
                        "expected_sources": ["10.0.0.0/16"],
                        "reasons": ["bench"],
                        "targets": targets,
                    }
                ],
                "health_check": {
                    "protocol": "TCP",
                    "port": "traffic-port",
                    "path": None,
                    "proves": "TCP",
                    "cannot_prove": "UDP",
                    "admitted": True,
                    "healthy": 5,
                    "unhealthy": 0,
                    "other": 0,
                },
                "findings": [
                    {
                        "code": "TRAFFIC_BLOCKED",
                        "severity": "critical",
                        "message": "bench",
                        "protocol": proto,
                        "evidence": {},
                    }
                ],
            }
            results.append(
                m.BindingResult(
                    binding=b,
                    analyzed_at=now,
                    changed_at=now,
                    worst_verdict=v,
                    max_severity="critical",
                    healthy=5,
                    digest="x",
                    data=data,
                )
            )
            pvs.append(
                m.ProtocolVerdict(
                    binding=b, protocol=proto, port=53, verdict=v, targets_total=5, targets_admitted=0
                )
            )
            fs.append(
                m.Finding(
                    binding=b, code="TRAFFIC_BLOCKED", severity="critical", protocol=proto, message="bench"
                )
            )
        m.BindingResult.objects.bulk_create(results, batch_size=1000)
        m.ProtocolVerdict.objects.bulk_create(pvs, batch_size=1000)
        m.Finding.objects.bulk_create(fs, batch_size=1000)
    user, _ = User.objects.get_or_create(username="bench")
    token, prefix, digest = token_generate()
    m.ApiToken.objects.create(name="bench", user=user, prefix=prefix, digest=digest)
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # Fresh planner statistics, as autovacuum would have after a bulk load in production.
            cursor.execute("ANALYZE")
    from django.test import Client

    browser = Client()
    browser.force_login(user)  # a dashboard session for the web-memory pass
    return {
        "token": token,
        "session": browser.cookies["sessionid"].value,
        "bindings": m.TargetGroupBinding.objects.count(),
        "ids": list(m.TargetGroupBinding.objects.order_by("pk").values_list("pk", flat=True)[::500]),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load(port: int, path: str, token: str, clients: int, seconds: float) -> dict:
    """Run in its own process: `clients` threads, each a keep-alive connection, for `seconds`."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine, bad = [], 0
        while time.monotonic() < deadline:
            start = time.perf_counter()
            try:
                conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                ok = False
            if ok:
                mine.append(time.perf_counter() - start)
            else:
                bad += 1
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latencies.sort()
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0] * 99
    return {
        "path": path,
        "requests": len(latencies),
        "errors": errors[0],
        "rps": round(len(latencies) / seconds, 1),
        "p50_ms": round(q[49] * 1000, 1),
        "p95_ms": round(q[94] * 1000, 1),
        "p99_ms": round(q[98] * 1000, 1),
    }


def _workers_peak_rss_mb(master: int) -> list[float]:
    """VmHWM (peak resident set) of each gunicorn worker, the master's children, in MB."""
    peaks = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(master) and "VmHWM" in fields:
            peaks.append(int(fields["VmHWM"].split()[0]) / 1024)
    return sorted(peaks)


def web_pass(port: int, seeded: dict) -> int:
    """Every kind of page and API read a web worker serves, over the whole 10,000 bindings: the
    dashboard (overview, list, filtered list, details), /metrics, and every API page of 200."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    session = {"Cookie": f"sessionid={seeded['session']}"}
    bearer = {"Authorization": f"Bearer {seeded['token']}"}
    paths = [
        ("/", session),
        ("/bindings/", session),
        ("/bindings/?verdict=blocked", session),
        ("/metrics", {}),
    ]
    paths += [(f"/bindings/{pk}/", session) for pk in seeded["ids"]]
    paths += [(f"/api/v1/bindings/{pk}", bearer) for pk in seeded["ids"]]
    served = 0
    for _ in range(3):  # each worker should see every kind of request
        for path, headers in paths:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            assert response.status == 200, (path, response.status)
            served += 1
        path: str | None = "/api/v1/bindings?limit=200"
        while path:
            conn.request("GET", path, headers=bearer)
            response = conn.getresponse()
            page = json.loads(response.read())
            served += 1
            path = page["next"] and page["next"].split(f":{port}", 1)[-1]
    return served


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--workers", type=int, default=(os.cpu_count() or 1) * 2 + 1)
    parser.add_argument("--write", action="store_true", help="append the figures to docs/performance.md")
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--load", nargs=3, metavar=("PORT", "PATH", "TOKEN"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed:  # the seeding process (Django settings from the environment)
        sys.path.insert(0, str(ROOT))
        print(json.dumps(seed(args.seed)))
        return
    if args.load:  # the load-generator process
        port, path, token = args.load
        print(json.dumps(load(int(port), path, token, args.clients, args.seconds)))
        return

    tmp = tempfile.mkdtemp(prefix="bh-bench-api-")
    env = dict(os.environ, BH_DATA_DIR=tmp, DJANGO_SETTINGS_MODULE="dashboard.settings", LOG_LEVEL="WARNING")
    env.pop("REDIS_URL", None)
    url = database_url()
    if url:
        env["DATABASE_URL"] = url
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    t0 = time.monotonic()
    seeded = json.loads(
        subprocess.run(
            [python, __file__, "--seed", str(BINDINGS)],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    print(f"seeded {seeded['bindings']} bindings in {time.monotonic() - t0:.1f} s", file=sys.stderr)

    port = _free_port()
    gunicorn = Path(python).with_name("gunicorn")
    server = subprocess.Popen(
        [
            str(gunicorn),
            "dashboard.wsgi",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            str(args.workers),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        rows = []
        for path in PATHS:
            # Warm-up: connections, imports and the database's caches.
            subprocess.run(
                [
                    python,
                    __file__,
                    "--load",
                    str(port),
                    path,
                    seeded["token"],
                    "--seconds",
                    "3",
                    "--clients",
                    "4",
                ],
                check=True,
                capture_output=True,
            )
            out = subprocess.run(
                [
                    python,
                    __file__,
                    "--load",
                    str(port),
                    path,
                    seeded["token"],
                    "--seconds",
                    str(args.seconds),
                    "--clients",
                    str(args.clients),
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            rows.append(json.loads(out))
            print(json.dumps(rows[-1]), file=sys.stderr)
        served = web_pass(port, seeded)
        peaks = _workers_peak_rss_mb(server.pid)
        print(f"web pass: {served} requests; worker peak RSS MB: {peaks}", file=sys.stderr)
    finally:
        server.terminate()
        server.wait(timeout=30)

    from importlib.metadata import version

    db = "PostgreSQL (bh_bench)" if url else "SQLite"
    if url:
        import psycopg

        with psycopg.connect(url.replace("postgres://", "postgresql://"), connect_timeout=3) as c:
            db = f"PostgreSQL {c.execute('SHOW server_version').fetchone()[0]}"
    gunicorn_version = subprocess.run(
        [str(gunicorn), "--version"], capture_output=True, text=True
    ).stdout.strip()
    lines = [
        "",
        "## API latency",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `benchmarks/bench_api.py`: "
        f"{os.cpu_count()} CPUs (nproc), {platform.machine()}, Linux {platform.release()}; Python "
        f"{platform.python_version()}, Django {version('django')}, django-ninja {version('django-ninja')}, "
        f"{gunicorn_version} ({args.workers} sync workers), {db}; load average at the end "
        f"{os.getloadavg()[0]:.1f}.",
        f"{seeded['bindings']:,} bindings (4 clusters, one verdict and one finding each); "
        f"{args.clients} concurrent keep-alive clients with a read token, from a separate process "
        f"on the same machine, for "
        f"{args.seconds:.0f} s per row after a 3 s warm-up. Default page size 50.",
        "",
        "| request | requests | errors | req/s | × floor | p50 ms | p95 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    floor = next(r for r in rows if r["path"] == FLOOR)
    for r in rows:
        r["ratio"] = round(r["rps"] / floor["rps"], 2) if floor["rps"] else 0.0
    memory = (
        f"Web memory: after the latency rows, three passes over every kind of page and API read of "
        f"the {seeded['bindings']:,} bindings ({served} requests: overview, list, filtered list, "
        f"details, /metrics, every API page of 200); peak RSS (VmHWM) per gunicorn worker: "
        f"{', '.join(f'{p:.0f}' for p in peaks)} MB."
    )
    for r in rows:
        lines.append(
            f"| `GET {r['path']}` | {r['requests']} | {r['errors']} | {r['rps']} | {r['ratio']} | "
            f"{r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} |"
        )
    lines += [
        "",
        memory,
        "",
        "Goals: p95 <= 100 ms for `GET /api/v1/bindings` at 20 concurrent clients (the API issue); "
        "p95 <= 400 ms at 10,000 bindings, paginated (docs/DESIGN.md). The load generator shares the CPUs "
        "with gunicorn and PostgreSQL, so the figures are pessimistic for a dedicated host.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        with (ROOT / "docs" / "performance.md").open("a") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
