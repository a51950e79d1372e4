"""API latency: `GET /api/v1/bindings` p50/p95 at 20 concurrent clients over 10,000 bindings.

Seeds 10,000 analysed bindings (one verdict and one finding each, a full result JSON with five
targets) into PostgreSQL `bh_bench` (created when missing; SQLite in a temporary folder when
PostgreSQL does not answer), serves the app with gunicorn on 127.0.0.1, and drives it from a
separate process with 20 threads, each on its own keep-alive connection with a read token. Run:

    .venv/bin/python benchmarks/bench_api.py [--seconds 20] [--clients 20] [--workers N]
        [--root OTHER_CHECKOUT] [--no-web-pass] [--write]

Every row is measured against the floor (`GET /api/v1/whoami`, authentication only) of the same
checkout: throughput as a ratio, and CPU per request of the gunicorn workers, the database's
backends and the load generator (read from /proc, so the ratio holds up on a machine others load
too). `--root` serves another checkout (say, the code before a change) side by side, path by path
interleaved, against the same database. `--write` appends the figures to docs/performance.md under
"API latency". Not a test: the goals (p95 <= 100 ms at 20 clients; list throughput >= 0.5 x the
floor's; DESIGN.md: list p95 <= 400 ms at 10,000 bindings, paginated) are checked by reading the
figures. `bench_api_instructions.py` counts a request's instructions instead.
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
            # What autovacuum does within a minute of a bulk load (PostgreSQL 13+ vacuums after
            # inserts too): planner statistics, and a visibility map, so that an index-only scan
            # of the list's order needs no heap visits.
            cursor.execute("VACUUM ANALYZE")
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


class CpuSampler:
    """CPU seconds (user + system) of the processes serving the benchmark, sampled from /proc.

    The machine may be shared: wall-clock throughput then moves with everyone else's load, while
    CPU time per request moves much less. Sampled every 0.2 s so that a database backend which
    exits mid-row (connections live CONN_MAX_AGE seconds) loses at most its last 0.2 s.
    """

    def __init__(self, database: str) -> None:
        self.database = database
        self.masters: list[int] = []
        self._seen: dict[tuple[str, int], tuple[float, float]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def _cpu(pid: int) -> float | None:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _processes(self) -> list[tuple[str, int]]:
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
                status = (entry / "status").read_text()
            except OSError:
                continue
            ppid = next((line.split()[1] for line in status.splitlines() if line.startswith("PPid:")), "")
            if cmdline.startswith(b"postgres: ") and f" {self.database} ".encode() in cmdline:
                found.append(("db", int(entry.name)))
            elif ppid.isdigit() and int(ppid) in self.masters:
                found.append((f"web:{ppid}", int(entry.name)))
        return found

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.sample()

    def sample(self) -> None:
        for key in self._processes():
            cpu = self._cpu(key[1])
            if cpu is not None:
                with self._lock:
                    first = self._seen.get(key, (cpu, cpu))[0]
                    self._seen[key] = (first, cpu)

    def totals(self) -> dict[str, float]:
        """CPU seconds used by each kind ("db", "web:<master pid>") since the sampler started."""
        self.sample()
        out: dict[str, float] = {}
        with self._lock:
            for (kind, _pid), (first, last) in self._seen.items():
                out[kind] = out.get(kind, 0.0) + last - first
        return out

    def stop(self) -> None:
        self._stop.set()


def start_server(root: Path, env: dict[str, str], workers: int) -> tuple[subprocess.Popen, int]:
    """gunicorn serving the checkout at `root` on a free loopback port, once it accepts."""
    port = _free_port()
    gunicorn = Path(sys.executable).with_name("gunicorn")
    server = subprocess.Popen(
        [
            str(gunicorn),
            "dashboard.wsgi",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            str(workers),
            "--log-level",
            "warning",
        ],
        cwd=root,
        env=dict(env, PYTHONPATH=str(root)),
    )
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.2)
    return server, port


def run_load(port: int, path: str, token: str, clients: int, seconds: float) -> tuple[dict, float]:
    """One load-generator process; its result and the CPU seconds it used."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--load",
            str(port),
            path,
            token,
            "--seconds",
            str(seconds),
            "--clients",
            str(clients),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return json.loads(out), cpu


def measure(
    servers: dict[str, tuple[subprocess.Popen, int]], seeded: dict, args, sampler: CpuSampler
) -> list[dict]:
    """Every path on every server, interleaved (path by path), with CPU per request by process kind."""
    rows = []
    for path in PATHS:
        for label, (server, port) in servers.items():
            run_load(port, path, seeded["token"], 4, 3)  # warm-up: connections, imports, caches
            before = sampler.totals()
            row, client_cpu = run_load(port, path, seeded["token"], args.clients, args.seconds)
            after = sampler.totals()
            n = max(row["requests"], 1)
            web = after.get(f"web:{server.pid}", 0.0) - before.get(f"web:{server.pid}", 0.0)
            db = after.get("db", 0.0) - before.get("db", 0.0)
            row.update(
                checkout=label,
                cpu_ms={
                    "web": round(1000 * web / n, 3),
                    "db": round(1000 * db / n, 3),
                    "client": round(1000 * client_cpu / n, 3),
                    "total": round(1000 * (web + db + client_cpu) / n, 3),
                },
                load=round(os.getloadavg()[0], 1),
            )
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
    for label in servers:
        mine = [r for r in rows if r["checkout"] == label]
        floor = next(r for r in mine if r["path"] == FLOOR)
        for r in mine:
            r["ratio"] = round(r["rps"] / floor["rps"], 2) if floor["rps"] else 0.0
            total = r["cpu_ms"]["total"]
            r["cpu_ratio"] = round(floor["cpu_ms"]["total"] / total, 2) if total else 0.0
    return rows


def report(rows: list[dict], seeded: dict, args, url: str, memory: str, workers: int) -> str:
    from importlib.metadata import version

    db = "SQLite"
    if url:
        import psycopg

        with psycopg.connect(url.replace("postgres://", "postgresql://"), connect_timeout=3) as c:
            db = f"PostgreSQL {c.execute('SHOW server_version').fetchone()[0]}"
    gunicorn = Path(sys.executable).with_name("gunicorn")
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
        f"{gunicorn_version} ({workers} sync workers), {db}; load average at the end "
        f"{os.getloadavg()[0]:.1f}.",
        f"{seeded['bindings']:,} bindings (4 clusters, one verdict and one finding each); "
        f"{args.clients} concurrent keep-alive clients with a read token, from a separate process "
        f"on the same machine, for "
        f"{args.seconds:.0f} s per row after a 3 s warm-up. Default page size 50. CPU ms are per "
        "request, summed over the gunicorn workers, the database's backends and the load generator; "
        "`× floor` is the throughput ratio to the floor, `× floor (CPU)` the floor's CPU per request "
        "over the row's (what the throughput ratio would be on a machine running nothing else).",
        "",
        "| checkout | request | requests | errors | req/s | × floor | p50 ms | p95 ms | p99 ms "
        "| CPU ms web + db + client = total | × floor (CPU) | load |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        c = r["cpu_ms"]
        lines.append(
            f"| {r['checkout']} | `GET {r['path']}` | {r['requests']} | {r['errors']} | {r['rps']} | "
            f"{r['ratio']} | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | "
            f"{c['web']:.2f} + {c['db']:.2f} + {c['client']:.2f} = {c['total']:.2f} | {r['cpu_ratio']} | "
            f"{r['load']} |"
        )
    lines += [
        "",
        memory,
        "",
        "Goals: p95 <= 100 ms for `GET /api/v1/bindings` at 20 concurrent clients (the API issue); "
        "list throughput >= 0.5 x the floor's (issue 16); p95 <= 400 ms at 10,000 bindings, paginated "
        "(DESIGN.md). The load generator shares the CPUs with gunicorn and PostgreSQL, so the figures "
        "are pessimistic for a dedicated host.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--workers", type=int, default=(os.cpu_count() or 1) * 2 + 1)
    parser.add_argument(
        "--root",
        type=Path,
        action="append",
        help="also serve this checkout (e.g. the code before a change), path by path interleaved "
        "with this one, against the same database",
    )
    parser.add_argument("--no-web-pass", action="store_true", help="skip the web-memory pass")
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

    roots = {root.resolve().name: root.resolve() for root in args.root or []}
    roots[ROOT.name] = ROOT
    sampler = CpuSampler(url.rsplit("/", 1)[-1] if url else "-")
    servers = {label: start_server(root, env, args.workers) for label, root in roots.items()}
    sampler.masters = [server.pid for server, _ in servers.values()]
    memory = "Web memory: not measured (--no-web-pass)."
    try:
        rows = measure(servers, seeded, args, sampler)
        if not args.no_web_pass:
            server, port = servers[ROOT.name]
            served = web_pass(port, seeded)
            peaks = _workers_peak_rss_mb(server.pid)
            print(f"web pass: {served} requests; worker peak RSS MB: {peaks}", file=sys.stderr)
            memory = (
                f"Web memory ({ROOT.name}): after the latency rows, three passes over every kind of page "
                f"and API read of the {seeded['bindings']:,} bindings ({served} requests: overview, list, "
                f"filtered list, details, /metrics, every API page of 200); peak RSS (VmHWM) per gunicorn "
                f"worker: {', '.join(f'{p:.0f}' for p in peaks)} MB."
            )
    finally:
        sampler.stop()
        for server, _ in servers.values():
            server.terminate()
        for server, _ in servers.values():
            server.wait(timeout=30)

    text = report(rows, seeded, args, url, memory, args.workers)
    print(text)
    if args.write:
        with (ROOT / "docs" / "performance.md").open("a") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
