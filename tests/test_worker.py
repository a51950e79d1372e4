"""A real Celery worker process takes a poll from the broker and lands it in the database.

The broker is Redis when REDIS_URL is set (CI), else the embedded filesystem transport; the
database is the test database, shared with the worker through DATABASE_URL / BH_DATA_DIR.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from bindings import models as m
from bindings.demo.emulators import KubeEmulator, MotoServer, seed_demo_world
from bindings.tasks import dispatch_due_polls_task

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent


def _worker_database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return ""  # the worker finds the file-backed test database through BH_DATA_DIR
    auth = quote(db["USER"] or "")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            pytest.fail(f"timed out waiting for {what}\n{tail}")
        time.sleep(0.2)


@contextmanager
def celery_worker(log: Path, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    """A real worker subprocess (solo pool) on the test database and broker, `env` on top of ours;
    yielded once it says it is ready, stopped afterwards."""
    full = {**os.environ, "BH_DATA_DIR": str(settings.DATA_DIR), "PYTHONUNBUFFERED": "1", **env}
    if "DATABASE_URL" not in env:
        url = _worker_database_url()
        if url:
            full["DATABASE_URL"] = url
        else:
            full["BH_SQLITE_PATH"] = str(connection.settings_dict["NAME"])
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "dashboard",
                "worker",
                "--pool",
                "solo",
                "--loglevel",
                "INFO",
                "--without-mingle",
                "--without-gossip",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=full,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(lambda: b"ready." in log.read_bytes(), 60, "the worker to be ready", log)
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@pytest.fixture
def worker():
    with celery_worker(Path(settings.DATA_DIR) / "test-worker.log") as proc:
        yield proc


def test_a_real_worker_polls_the_sources_the_dispatcher_enqueued(worker):
    with MotoServer() as moto, KubeEmulator() as kube:
        world = seed_demo_world(aws_endpoint=moto.url, kube=kube)
        account = m.AwsAccount.objects.create(
            name="demo-account", account_id=world.account_id, region=world.region, endpoint_url=moto.url
        )
        m.Cluster.objects.create(
            name="demo", connection=m.Cluster.Connection.URL, api_url=kube.url, aws_account=account
        )

        dispatched = dispatch_due_polls_task()

        assert dispatched["clusters"] and dispatched["accounts"]
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if m.ProtocolVerdict.objects.filter(verdict="blocked", protocol="UDP").exists() and (
                m.PollRun.objects.filter(account=account, status="success").exists()
            ):
                break
            assert worker.poll() is None, (Path(settings.DATA_DIR) / "test-worker.log").read_text()[-3000:]
            time.sleep(0.5)
        else:
            pytest.fail(
                "no poll landed: " + (Path(settings.DATA_DIR) / "test-worker.log").read_text()[-3000:]
            )

    assert m.TargetGroupBinding.objects.count() == 2
    assert m.TargetGroup.objects.count() == 2
    assert m.PollRun.objects.filter(cluster__name="demo", status="success").exists()
    assert dispatch_due_polls_task() == {"clusters": [], "accounts": []}, "nothing is due twice"
