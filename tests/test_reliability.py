"""Faults injected for real: a flaky Kubernetes API, Redis and PostgreSQL restarted under a
running worker, and two dispatchers racing. Figures are recorded in docs/reliability.md.

Private servers only: Redis and PostgreSQL are started here on free ports (never the machine's
6379 / 5432, which other suites use) and stopped by the pid this module started.
"""

from __future__ import annotations

import glob
import http.server
import os
import runpy
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection, connections
from django.test import override_settings
from django.utils import timezone
from kombu import pools as kombu_pools

from bindings import models as m
from bindings import tasks
from bindings.collect.errors import TransientSourceError
from bindings.demo.emulators import KubeEmulator, MotoServer, seed_demo_world
from tests.factories import ROOT, celery_worker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- a fault-injecting proxy in front of the Kubernetes emulator ---------------------------------


class KubeFaultProxy:
    """Forwards GETs to the emulator; `plan` maps a path fragment to the faults its next requests
    get, in order ("429", "500", "410", "timeout"), after which requests pass through."""

    def __init__(self, upstream: str, hang_seconds: float = 3.0) -> None:
        self.upstream = upstream
        self.hang_seconds = hang_seconds
        self.plan: dict[str, list[str]] = {}
        self.injected: Counter[str] = Counter()
        self.passed = 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet: pytest captures enough already
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                fault = proxy._next_fault(self.path)
                if fault == "timeout":
                    time.sleep(proxy.hang_seconds)  # longer than the client's request timeout
                    return
                if fault is not None:
                    body = (
                        f'{{"kind":"Status","apiVersion":"v1","status":"Failure","code":{fault},'
                        f'"message":"injected {fault}"}}'
                    ).encode()
                    self.send_response(int(fault))
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                with urllib.request.urlopen(proxy.upstream + self.path, timeout=10) as upstream:
                    body = upstream.read()
                    status = upstream.status
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _next_fault(self, path: str) -> str | None:
        with self.lock:
            for fragment, faults in self.plan.items():
                if fragment in path and faults:
                    fault = faults.pop(0)
                    self.injected[fault] += 1
                    return fault
            self.passed += 1
            return None

    def __enter__(self) -> KubeFaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _state() -> list[tuple[str, str, str]]:
    return sorted(m.TargetGroupBinding.objects.values_list("uid", "name", "resource_version"))


@pytest.fixture
def kube_world() -> Iterator[tuple[m.Cluster, KubeFaultProxy, KubeEmulator]]:
    # No AWS account: these tests are about the Kubernetes side, and a cluster poll that wrote
    # rows would otherwise queue an account poll on the broker.
    with KubeEmulator() as kube:
        with MotoServer() as moto:
            seed_demo_world(aws_endpoint=moto.url, kube=kube)
        with KubeFaultProxy(kube.url) as proxy:
            cluster = m.Cluster.objects.create(
                name="demo", connection=m.Cluster.Connection.URL, api_url=proxy.url
            )
            yield cluster, proxy, kube


def _runs(cluster: m.Cluster) -> list[str]:
    return list(
        m.PollRun.objects.filter(cluster=cluster).order_by("started_at").values_list("status", flat=True)
    )


@override_settings(BH_KUBE_REQUEST_TIMEOUT=1)
def test_kube_429_500_timeouts_and_410_are_ridden_out_within_the_retry_budget(kube_world, monkeypatch):
    cluster, proxy, kube = kube_world
    # The task's retry backoff (5 s, 10 s, ...) only spaces attempts; run them back to back.
    monkeypatch.setattr(tasks.poll_cluster_task, "retry_backoff", False)
    assert tasks.poll_cluster_task.apply(args=(cluster.pk,)).get() == "ok"
    good = _state()
    kube.patch(
        "elbv2.k8s.aws/v1beta1",
        "TargetGroupBinding",
        "coredns-udp",
        "kube-system",
        {"metadata": {"labels": {"x": "1"}}},
    )
    # a 410 on the pods list is restarted inside the same attempt; 429, 500 and a hang that
    # outlives the request timeout (twice: urllib3 retries once) each fail one attempt
    proxy.plan = {
        "/targetgroupbindings": ["429"],
        "/services": ["500"],
        "/pods": ["410"],
        "/nodes": ["timeout", "timeout"],
    }

    result = tasks.poll_cluster_task.apply(args=(cluster.pk,))

    assert result.get() == "ok", result.traceback
    assert proxy.injected == {"429": 1, "500": 1, "410": 1, "timeout": 2}
    # 3 attempts failed, the 4th (max_retries=3) landed; every failure is a visible run
    assert _runs(cluster) == ["success", "failed", "failed", "failed", "success"]
    after = _state()
    assert len(after) == len(good) == 2
    assert after != good, "the change made during the faults landed"
    cluster.refresh_from_db()
    assert cluster.last_error == "" and cluster.last_success_at is not None


@override_settings(BH_KUBE_REQUEST_TIMEOUT=1)
def test_a_kube_outage_beyond_the_retry_budget_fails_cleanly_and_keeps_the_state(kube_world, monkeypatch):
    cluster, proxy, kube = kube_world
    monkeypatch.setattr(tasks.poll_cluster_task, "retry_backoff", False)
    assert tasks.poll_cluster_task.apply(args=(cluster.pk,)).get() == "ok"
    before = _state()
    verdicts = sorted(m.ProtocolVerdict.objects.values_list("binding__uid", "protocol", "verdict"))
    kube.delete("elbv2.k8s.aws/v1beta1", "TargetGroupBinding", "coredns-udp", "kube-system")
    # every list answers 503, then a 410 that repeats on the restarted list
    proxy.plan = {"/targetgroupbindings": ["503"] * 3 + ["410", "410"]}

    result = tasks.poll_cluster_task.apply(args=(cluster.pk,))

    assert isinstance(result.result, TransientSourceError), result.result
    assert proxy.injected == {"503": 3, "410": 2}
    assert _runs(cluster) == ["success"] + ["failed"] * 4
    assert _state() == before, "the failed polls changed nothing"
    assert sorted(m.ProtocolVerdict.objects.values_list("binding__uid", "protocol", "verdict")) == verdicts
    cluster.refresh_from_db()
    assert "410" in cluster.last_error and cluster.last_success_at is not None
    # and once the API is back, the next poll catches up
    assert tasks.poll_cluster_task.apply(args=(cluster.pk,)).get() == "ok"
    assert [name for _, name, _ in _state()] == ["coredns-tcp"]


# --- private Redis and PostgreSQL servers --------------------------------------------------------


class RedisServer:
    """A private redis-server on a free port, no persistence; stop() and start() again keep the
    port, as a restarted Redis service would."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.starts += 1
        wait_for(self.answers, 10, "redis-server to answer PING")

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # only the process this test started, by its pid
            self.proc.wait(10)
        self.proc = None


@pytest.fixture
def private_redis(tmp_path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def broker_and_cache(url: str) -> Iterator[None]:
    """Point this process' cache, rate limiter and Celery producer at `url`, as a web or beat
    process configured with REDIS_URL=url would be."""
    from dashboard.celery import app

    caches = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}}
    saved = (app.conf.broker_url, app.conf.broker_transport_options)

    def reset_pools() -> None:
        if app._pool is not None:
            app._pool.force_close_all()
        app._pool = None
        app.amqp._producer_pool = None
        # kombu also caches producer pools per connection in a global registry; a pool closed
        # above would otherwise be handed to the next test's `.delay()` ("Acquire on closed pool").
        kombu_pools.reset()

    with override_settings(REDIS_URL=url, CACHES=caches, CELERY_BROKER_URL=url):
        app.conf.broker_url, app.conf.broker_transport_options = url, {"visibility_timeout": 3600}
        reset_pools()
        try:
            yield
        finally:
            reset_pools()
            app.conf.broker_url, app.conf.broker_transport_options = saved


def _scheduled_runs(**owner: Any) -> list[str]:
    return list(
        m.PollRun.objects.filter(trigger="schedule", **owner)
        .order_by("started_at")
        .values_list("status", flat=True)
    )


def _finished(statuses: list[str]) -> int:
    return sum(1 for s in statuses if s != "running")


def _lost_broker(log: Path) -> bool:
    """Has the worker logged that its broker connection broke (Celery's consumer messages)?"""
    text = log.read_bytes()
    return b"Connection to broker lost" in text or b"Cannot connect to" in text


def _worker_idle(log: Path) -> bool:
    """Has the worker finished every task it received? Celery logs receipt and each outcome."""
    text = log.read_bytes()
    outcomes = (b"] succeeded in ", b"] raised ", b"] retry: ", b"] ignored")
    return text.count(b"] received") == sum(text.count(outcome) for outcome in outcomes)


def _make_due() -> None:
    past = timezone.now() - timedelta(seconds=1)
    m.Cluster.objects.update(next_poll_at=past)
    m.AwsAccount.objects.update(next_poll_at=past)


def test_redis_stopped_and_restarted_under_a_running_worker(private_redis, client, alice):
    log = Path(settings.DATA_DIR) / "redis-fault-worker.log"
    with (
        broker_and_cache(private_redis.url),
        MotoServer() as moto,
        KubeEmulator() as kube,
        celery_worker(log, REDIS_URL=private_redis.url) as worker,
    ):
        world = seed_demo_world(aws_endpoint=moto.url, kube=kube)
        account = m.AwsAccount.objects.create(
            name="a", account_id=world.account_id, region=world.region, endpoint_url=moto.url
        )
        cluster = m.Cluster.objects.create(
            name="demo", connection=m.Cluster.Connection.URL, api_url=kube.url, aws_account=account
        )
        first = tasks.dispatch_due_polls_task()
        assert first == {"clusters": [cluster.pk], "accounts": [account.pk]}
        wait_for(
            lambda: (
                _scheduled_runs(cluster=cluster) == ["success"]
                and _scheduled_runs(account=account) == ["success"]
                # a run is marked successful before its analysis is stored: wait for the verdicts
                and set(m.ProtocolVerdict.objects.values_list("verdict", flat=True))
                == {"blocked", "reachable"}
            ),
            60,
            "the first polls",
            log,
        )
        verdicts = sorted(m.ProtocolVerdict.objects.values_list("binding__name", "protocol", "verdict"))

        # when: Redis (broker, cache, locks, rate limiter) goes away under the running worker
        private_redis.stop()
        # then: the web keeps serving what needs no Redis, and readiness says what is down
        assert client.get("/healthz").status_code == 200
        assert client.get("/accounts/login/").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["broker"].startswith("failed")
        assert ready.json()["checks"]["database"] == "ok"
        client.force_login(alice)
        assert client.get("/bindings/").status_code == 200, "stored results are served without Redis"
        wait_for(lambda: _lost_broker(log), 30, "the worker to notice the lost broker connection", log)
        assert worker.poll() is None, "the worker survives the outage"

        # when: Redis comes back (empty, as a restarted cache without persistence)
        private_redis.start()
        assert client.get("/readyz").status_code == 200
        _make_due()
        second = tasks.dispatch_due_polls_task()
        assert second == first

        # then: the worker reconnected and the next dispatched polls land, once each: with every
        # task it received done, no duplicate can still be on its way
        wait_for(
            lambda: (
                _finished(_scheduled_runs(cluster=cluster)) == 2
                and _finished(_scheduled_runs(account=account)) == 2
                and _worker_idle(log)
            ),
            60,
            "the polls dispatched after the restart",
            log,
        )
        assert _scheduled_runs(cluster=cluster) == ["success", "success"]
        assert _scheduled_runs(account=account) == ["success", "success"]
        assert (
            sorted(m.ProtocolVerdict.objects.values_list("binding__name", "protocol", "verdict")) == verdicts
        )


# --- PostgreSQL restarted --------------------------------------------------------------------------


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


class PgCluster:
    """A throw-away PostgreSQL cluster in a temp dir on a free port (run as `postgres` when root)."""

    def __init__(self) -> None:
        initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        if not initdb or not pg_ctl:
            pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
        self.initdb, self.pg_ctl = initdb, pg_ctl
        self.dir = Path(tempfile.mkdtemp(prefix="bh-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            # initdb refuses to run as root
            shutil.chown(self.dir, "postgres", "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        self.run(self.initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def ctl(self, action: str, *extra: str) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.run(
            self.pg_ctl,
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.dir / "log"),
            "-w",
            *extra,
            action,
        )

    def url(self, name: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def remove(self) -> None:
        with suppress(subprocess.CalledProcessError):
            self.ctl("stop", "-m", "immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_pg() -> Iterator[PgCluster]:
    pytest.importorskip("psycopg")
    pg = PgCluster()
    try:
        pg.init()
        pg.ctl("start")
        pg.run(
            _pg_bin("createdb") or "createdb", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "bh"
        )
        yield pg
    finally:
        pg.remove()


@contextmanager
def private_alias(url: str) -> Iterator[str]:
    """A connection alias of this process on the private cluster (the default one stays the
    test database, which pytest-django flushes). Registered as a dynamic connection, not in
    settings, which is what Django's test case lets a test open."""
    from django.core.management import call_command
    from django.db.utils import load_backend

    alias = "private"
    # Exactly what dashboard/settings.py makes of DATABASE_URL in production (CONN_MAX_AGE,
    # CONN_HEALTH_CHECKS), so this alias behaves like a web process' connection.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DATABASE_URL", url)
        parsed = runpy.run_path(str(ROOT / "dashboard" / "settings.py"))["DATABASES"]["default"]
    config = connections.configure_settings({"default": connections.settings["default"], alias: parsed})[
        alias
    ]
    connections[alias] = load_backend(config["ENGINE"]).DatabaseWrapper(config, alias)
    try:
        call_command("migrate", database=alias, verbosity=0)
        yield alias
    finally:
        connections[alias].close()
        delattr(connections._connections, alias)


def test_postgresql_restarted_between_two_polls_loses_nothing(private_pg, private_redis):
    from bindings.services.polling import ABANDONED

    log = Path(settings.DATA_DIR) / "pg-fault-worker.log"
    url = private_pg.url("bh")
    with (
        private_alias(url) as db,
        broker_and_cache(private_redis.url),
        MotoServer() as moto,
        KubeEmulator() as kube,
        celery_worker(log, DATABASE_URL=url, REDIS_URL=private_redis.url) as worker,
    ):
        world = seed_demo_world(aws_endpoint=moto.url, kube=kube)
        account = m.AwsAccount.objects.using(db).create(
            name="a", account_id=world.account_id, region=world.region, endpoint_url=moto.url
        )
        cluster = m.Cluster.objects.using(db).create(
            name="demo", connection=m.Cluster.Connection.URL, api_url=kube.url, aws_account=account
        )
        runs = m.PollRun.objects.using(db)

        def landed(n: int) -> bool:
            return (
                runs.filter(cluster=cluster, status="success").count() >= n
                and runs.filter(account=account, status="success").count() >= n
            )

        # a poll lands (the cluster poll wrote rows, so it queues its account poll)
        tasks.poll_cluster_task.delay(cluster.pk, "manual")
        judged = {("TCP", "reachable"), ("UDP", "blocked")}

        def verdicts() -> set[tuple[str, str]]:
            return set(m.ProtocolVerdict.objects.using(db).values_list("protocol", "verdict"))

        # a run is marked successful before its analysis is stored: wait for the verdicts too,
        # and for the worker to go idle, so the restart hits its pooled, idle connection
        wait_for(lambda: landed(1) and verdicts() == judged, 60, "the first polls", log)
        wait_for(lambda: log.read_bytes().count(b"succeeded in") >= 2, 30, "the worker to go idle", log)
        state = sorted(m.ProtocolVerdict.objects.using(db).values_list("binding__uid", "protocol", "verdict"))
        tgbs = sorted(m.TargetGroupBinding.objects.using(db).values_list("uid", flat=True))
        assert len(state) == 2

        # when: PostgreSQL restarts. This process stands for a web worker: its persistent
        # connection (CONN_MAX_AGE) was open before and is dead after.
        assert m.Cluster.objects.using(db).filter(pk=cluster.pk).exists()
        started = time.monotonic()
        private_pg.ctl("restart", "-m", "fast")
        restart_seconds = time.monotonic() - started

        # then: the next request reconnects (Django's request_started runs exactly this; with
        # CONN_HEALTH_CHECKS the dead connection is noticed instead of failing the request)
        connections[db].close_if_unusable_or_obsolete()
        assert m.Cluster.objects.using(db).filter(pk=cluster.pk).exists()

        # then: the next polls reconnect and land; nothing was lost or failed
        tasks.poll_cluster_task.delay(cluster.pk, "manual")
        tasks.poll_account_task.delay(account.pk, "manual")
        wait_for(lambda: landed(2), 60, "the polls after the restart", log)
        assert worker.poll() is None
        assert not runs.filter(status="failed").exists(), list(runs.values_list("error", flat=True))
        assert not runs.filter(error=ABANDONED).exists()
        assert sorted(m.TargetGroupBinding.objects.using(db).values_list("uid", flat=True)) == tgbs
        assert (
            sorted(m.ProtocolVerdict.objects.using(db).values_list("binding__uid", "protocol", "verdict"))
            == state
        )
        assert b"OperationalError" not in log.read_bytes(), log.read_text()[-3000:]
        assert restart_seconds < 30


# --- two dispatchers racing --------------------------------------------------------------------


class _Recorder:
    def __init__(self) -> None:
        self.sent: list[int] = []
        self.lock = threading.Lock()

    def delay(self, pk: int, *args: Any) -> None:
        with self.lock:
            self.sent.append(pk)


def test_two_dispatchers_racing_enqueue_each_source_once_per_period(monkeypatch):
    """Four dispatcher threads (two beats each ticking twice, say) start at the same instant,
    ten periods in a row, against the real database: the compare-and-set on next_poll_at lets
    exactly one of them enqueue each due source."""
    clusters = [
        m.Cluster.objects.create(
            name=f"c{i}", connection=m.Cluster.Connection.URL, api_url="http://127.0.0.1:9"
        )
        for i in range(30)
    ]
    accounts = [
        m.AwsAccount.objects.create(name=f"a{i}", account_id=f"1234567890{i:02d}", region="us-east-1")
        for i in range(10)
    ]
    kube_sent, aws_sent = _Recorder(), _Recorder()
    monkeypatch.setattr(tasks, "poll_cluster_task", kube_sent)
    monkeypatch.setattr(tasks, "poll_account_task", aws_sent)
    racers, periods = 4, 10
    winners: Counter[int] = Counter()
    for _ in range(periods):
        kube_sent.sent.clear()
        aws_sent.sent.clear()
        _make_due()
        barrier = threading.Barrier(racers)
        errors: list[BaseException] = []

        def race(barrier: threading.Barrier = barrier, errors: list[BaseException] = errors) -> None:
            try:
                barrier.wait(10)
                claimed = tasks.dispatch_due_polls_task()
                if claimed["clusters"]:
                    winners[threading.get_ident()] += 1
            except BaseException as exc:  # surfaced below; a thread cannot fail the test itself
                errors.append(exc)
            finally:
                connection.close()  # each thread has its own connection

        threads = [threading.Thread(target=race) for _ in range(racers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        assert sorted(kube_sent.sent) == sorted(c.pk for c in clusters), "each cluster exactly once"
        assert sorted(aws_sent.sent) == sorted(a.pk for a in accounts), "each account exactly once"
        # and a late dispatcher in the same period finds nothing due
        assert tasks.dispatch_due_polls_task() == {"clusters": [], "accounts": []}
