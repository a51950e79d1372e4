"""Data retention and backups on PostgreSQL: history is pruned by age in batches while readers
and writers carry on, and a pg_dump of a polled database restores to the same verdicts.

Both need PostgreSQL (MVCC, pg_dump); on the embedded SQLite defaults they are skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bindings import models as m
from bindings.services import polling
from bindings.store.results import history_prune
from tests.factories import ROOT, wait_for, worker_database_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ROWS = 20_000


@pytest.fixture
def postgres() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL=postgres://...): MVCC readers and pg_dump")


def _seed_history(binding: m.TargetGroupBinding, old: Any, new: Any) -> None:
    m.HistorySample.objects.bulk_create(
        [
            m.HistorySample(binding=binding, at=old - timedelta(seconds=i), verdicts={"UDP": "blocked"})
            for i in range(ROWS)
        ]
        + [m.HistorySample(binding=binding, at=new, verdicts={"UDP": "blocked"}) for _ in range(100)],
        batch_size=5000,
    )
    m.VerdictTransition.objects.bulk_create(
        [
            m.VerdictTransition(binding=binding, protocol="UDP", at=old, old="", new="blocked")
            for _ in range(2000)
        ],
        batch_size=5000,
    )
    m.PollRun.objects.bulk_create(
        [m.PollRun(cluster=binding.cluster, started_at=old, status="success") for _ in range(3000)]
        + [m.PollRun(cluster=binding.cluster, started_at=new, status="success")],
        batch_size=5000,
    )


def test_history_is_pruned_in_batches_while_readers_and_writers_carry_on(postgres, cluster):
    binding = m.TargetGroupBinding.objects.create(
        cluster=cluster, uid="u1", namespace="ns", name="b", api_version="v"
    )
    now = timezone.now()
    cutoff = now - timedelta(days=30)
    _seed_history(binding, cutoff - timedelta(days=1), now)
    stop = threading.Event()
    reads: list[float] = []
    writes: list[float] = []
    errors: list[BaseException] = []

    def reader() -> None:
        # A dashboard page reading recent history, and a poll writing a sample, meanwhile. A
        # lock_timeout turns "blocked by the prune" into an error instead of a slow test.
        try:
            with connections["default"].cursor() as cur:
                cur.execute("SET lock_timeout = '2s'")
            while not stop.is_set():
                t = time.monotonic()
                assert m.HistorySample.objects.filter(at__gte=cutoff).count() >= 100
                reads.append(time.monotonic() - t)
                t = time.monotonic()
                m.HistorySample.objects.create(binding=binding, at=timezone.now(), verdicts={})
                writes.append(time.monotonic() - t)
        except BaseException as exc:  # surfaced by the main thread
            errors.append(exc)
        finally:
            connections["default"].close()

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        wait_for(lambda: bool(writes or errors), 30, "the reader and writer to be under way")
        started = time.monotonic()
        with CaptureQueriesContext(connection) as queries:
            deleted = history_prune(before=cutoff, batch_size=5000)
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        thread.join(30)

    assert not errors, errors
    assert deleted == ROWS + 2000 + 3000
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    sample_deletes = [q for q in deletes if "historysample" in q]
    assert len(sample_deletes) == ROWS // 5000, "one DELETE per batch of 5,000, never one for all"
    assert not m.HistorySample.objects.filter(at__lt=cutoff).exists()
    assert m.HistorySample.objects.filter(at__gte=cutoff).count() == 100 + len(writes)
    assert m.PollRun.objects.count() == 1
    assert reads and writes, "the reader ran during the prune"
    # a blocked statement would hit lock_timeout (2 s); slow CI machines stay well below
    assert max(reads) < 2.0 and max(writes) < 2.0, (max(reads), max(writes))
    # figures for docs/reliability.md
    print(
        f"\npruned {deleted} rows in {elapsed:.2f}s, {len(deletes)} DELETE statements; "
        f"concurrent reads {len(reads)} (max {max(reads) * 1000:.0f} ms), writes {len(writes)} "
        f"(max {max(writes) * 1000:.0f} ms)"
    )


def _pg_env() -> tuple[dict[str, str], list[str]]:
    db = connection.settings_dict
    env = {**os.environ, "PGPASSWORD": db.get("PASSWORD") or ""}
    args = ["-h", db["HOST"] or "127.0.0.1", "-p", str(db["PORT"] or 5432), "-U", db["USER"] or "postgres"]
    return env, args


def _check_bindings(database_url: str) -> list[dict[str, Any]]:
    """What the dashboard reports (the CLI reads the same stored results as the pages)."""
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "manage.py", "check_bindings", "--format", "json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    items = json.loads(out.stdout)["bindings"]
    # Ages move with the clock between the two runs; everything else must be identical.
    return [{k: v for k, v in item.items() if "age" not in k} for item in items]


def test_a_pg_dump_restores_to_the_same_verdicts(postgres, stubbed_world, tmp_path):
    if not shutil.which("pg_dump") or not shutil.which("pg_restore"):
        pytest.skip("pg_dump / pg_restore are not installed")
    polling.cluster_poll(cluster=stubbed_world["cluster"])
    polling.account_poll(account=stubbed_world["account"])
    source_url = worker_database_url()
    before = _check_bindings(source_url)
    assert before, "the poll produced results to compare"

    env, args = _pg_env()
    dump = tmp_path / "bh.dump"
    restored = f"{connection.settings_dict['NAME']}_restore"
    subprocess.run(
        ["pg_dump", *args, "-Fc", "-f", str(dump), connection.settings_dict["NAME"]], env=env, check=True
    )
    subprocess.run(["dropdb", *args, "--if-exists", restored], env=env, check=True)
    subprocess.run(["createdb", *args, restored], env=env, check=True)
    try:
        subprocess.run(["pg_restore", *args, "--no-owner", "-d", restored, str(dump)], env=env, check=True)
        after = _check_bindings(source_url.rsplit("/", 1)[0] + "/" + restored)
    finally:
        subprocess.run(["dropdb", *args, "--if-exists", restored], env=env, check=False)

    assert after == before
    print(f"\nrestored {dump.stat().st_size} bytes; {len(after)} bindings, same verdicts")
