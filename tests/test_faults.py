"""Faults injected for real: a worker killed with SIGKILL in the middle of a sync."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache

from bindings import models as m
from bindings import tasks
from bindings.analysis.bundle import load_bundle
from bindings.analysis.normalize import normalize_kubernetes
from bindings.demo.emulators import KubeEmulator, MotoServer, seed_demo_world
from bindings.services import polling
from bindings.store import sync
from tests.factories import ROOT, SCENARIOS, wait_for, worker_environment

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_a_worker_killed_mid_sync_leaves_the_previous_state_and_the_next_poll_completes(
    tmp_path, monkeypatch
):
    # given: state from an earlier poll (the sample bundle), and a cluster whose API now serves
    # a different world (the demo world: same names, new uids)
    bundle = load_bundle(SCENARIOS / "dns-udp-blocked")
    with MotoServer() as moto, KubeEmulator() as kube:
        seed_demo_world(aws_endpoint=moto.url, kube=kube)
        account = m.AwsAccount.objects.create(
            name="a", account_id="123456789012", region="us-east-1", endpoint_url=moto.url
        )
        cluster = m.Cluster.objects.create(
            name="demo", connection="url", api_url=kube.url, aws_account=account
        )
        sync.cluster_sync(cluster=cluster, records=normalize_kubernetes(bundle.kube_objects, cluster="demo"))
        before = sorted(m.TargetGroupBinding.objects.values_list("uid", "name"))

        marker = tmp_path / "marker"
        env = worker_environment(BH_FAULT_MARKER=str(marker), BH_POLL_LOCK_SECONDS="3")
        log_path = Path(settings.DATA_DIR) / "fault-worker.log"
        with open(log_path, "wb") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "tests.fault_worker"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                # when: the worker is inside the sync transaction and gets SIGKILL
                tasks.poll_cluster_task.delay(cluster.pk)
                deadline = time.monotonic() + 60
                while not marker.exists():
                    assert worker.poll() is None, log_path.read_text()[-3000:]
                    assert time.monotonic() < deadline, log_path.read_text()[-3000:]
                    time.sleep(0.2)
                os.kill(worker.pid, signal.SIGKILL)
                worker.wait(timeout=10)
            finally:
                if worker.poll() is None:
                    worker.kill()

        # then: nothing it wrote was kept, and its run is visibly unfinished
        assert sorted(m.TargetGroupBinding.objects.values_list("uid", "name")) == before
        assert m.PollRun.objects.get(cluster=cluster).status == m.PollRun.Status.RUNNING
        assert cache.get(f"bh:poll-lock:cluster:{cluster.pk}") is not None, "the dead worker's lock is held"

        # and: the lock expires (on the cache's clock: Redis keeps its own), and the next poll
        # completes and closes the abandoned run
        lock = f"bh:poll-lock:cluster:{cluster.pk}"
        wait_for(lambda: cache.get(lock) is None, 15, "the dead worker's poll lock to expire")
        assert tasks.poll_cluster_task.run(cluster.pk) == "ok"
        runs = list(m.PollRun.objects.filter(cluster=cluster).order_by("started_at"))
        assert [r.status for r in runs] == ["failed", "success"]
        assert runs[0].error == polling.ABANDONED
        assert sorted(m.TargetGroupBinding.objects.values_list("name", flat=True)) == [
            "coredns-tcp",
            "coredns-udp",
        ]
        assert sorted(m.TargetGroupBinding.objects.values_list("uid", "name")) != before


class FaultInjector:
    """Fails a share of AWS HTTP attempts (throttling or 5xx) in front of moto, via botocore's
    before-send hook, and counts what it injected."""

    def __init__(self, share: float, seed: int = 7) -> None:
        import random

        self.share = share
        self.random = random.Random(seed)
        self.injected = {"Throttling": 0, "ServiceUnavailable": 0}
        self.passed = 0

    def before_send(self, request, **_):
        from botocore.awsrequest import AWSResponse

        if self.random.random() >= self.share:
            self.passed += 1
            return None
        code, status = ("Throttling", 400) if self.random.random() < 0.5 else ("ServiceUnavailable", 503)
        self.injected[code] += 1
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>injected</Message>"
            "</Error><RequestId>fault</RequestId></ErrorResponse>"
        ).encode()

        class Raw:
            def stream(self, **_):
                yield body

        return AWSResponse(request.url, status, {"Content-Type": "text/xml"}, Raw())

    def install(self, monkeypatch) -> None:
        from bindings.collect import aws

        real = aws._new_session

        def session(**kwargs):
            s = real(**kwargs)
            s.events.register("before-send", self.before_send)
            return s

        monkeypatch.setattr(aws, "_new_session", session)
        aws.clear_session_cache()


@pytest.fixture
def demo_sources():
    with MotoServer() as moto, KubeEmulator() as kube:
        seed_demo_world(aws_endpoint=moto.url, kube=kube)
        account = m.AwsAccount.objects.create(
            name="a", account_id="123456789012", region="us-east-1", endpoint_url=moto.url
        )
        cluster = m.Cluster.objects.create(
            name="demo", connection="url", api_url=kube.url, aws_account=account
        )
        yield cluster, account


def _aws_state():
    return (
        sorted(m.TargetGroup.objects.values_list("arn", "protocol")),
        sorted(m.RegisteredTarget.objects.values_list("target_id", "state")),
        sorted(m.SecurityGroupRule.objects.values_list("protocol", "from_port", "source")),
        sorted(m.NetworkInterface.objects.values_list("eni_id", flat=True)),
    )


def test_aws_polls_complete_through_a_third_of_calls_throttled_or_failing(
    demo_sources, monkeypatch, fast_retries
):
    cluster, account = demo_sources
    polling.cluster_poll(cluster=cluster)
    polling.account_poll(account=account)
    clean = _aws_state()
    m.TargetGroup.objects.all().delete()  # make the faulty poll rebuild everything
    faults = FaultInjector(share=0.33)
    faults.install(monkeypatch)

    run = polling.account_poll(account=account)

    assert run.status == m.PollRun.Status.SUCCESS
    assert sum(faults.injected.values()) >= 5, faults.injected
    assert _aws_state() == clean, "nothing lost or duplicated under faults"


def test_an_aws_outage_fails_the_poll_cleanly_and_keeps_the_old_state(
    demo_sources, monkeypatch, fast_retries
):
    cluster, account = demo_sources
    polling.cluster_poll(cluster=cluster)
    polling.account_poll(account=account)
    before = _aws_state()
    faults = FaultInjector(share=1.0)
    faults.install(monkeypatch)

    from bindings.collect.errors import TransientSourceError

    with pytest.raises(TransientSourceError):
        polling.account_poll(account=account)

    assert _aws_state() == before
    account.refresh_from_db()
    assert account.last_error and account.polls.first().status == m.PollRun.Status.FAILED
    udp = m.TargetGroupBinding.objects.get(name="coredns-udp")
    assert udp.verdicts.get().verdict == "blocked", "the last good verdict stays until data is stale"
