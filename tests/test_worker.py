"""A real Celery worker process takes a poll from the broker and lands it in the database.

The broker is Redis when REDIS_URL is set (CI), else the embedded filesystem transport; the
database is the test database, shared with the worker through DATABASE_URL / BH_DATA_DIR.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.conf import settings

from bindings import models as m
from bindings.demo.emulators import KubeEmulator, MotoServer, seed_demo_world
from bindings.tasks import dispatch_due_polls_task
from tests.factories import celery_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


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
