"""Scale design: sharded poll queues, a Redis rate limit shared by worker processes, adaptive
cadence, topology caching and bulk result writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from bindings import models as m
from bindings import tasks
from bindings.analysis import model as am
from bindings.services import polling

ROOT = Path(__file__).resolve().parent.parent
# This worker's own Redis database when the suite runs on Redis (tests/isolation.py: another
# worker's cache.clear() would flush a shared one mid-test); else a local Redis if one answers.
REDIS_URL = os.environ.get("BH_TEST_REDIS_URL") or os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/12"


# --- sharded queues ------------------------------------------------------------------------------


def test_one_shard_keeps_every_poll_on_the_default_queue(settings):
    settings.BH_POLL_SHARDS = 1
    assert tasks.route_poll("bindings.tasks.poll_cluster_task", (7,), {}, {}) is None
    assert tasks.route_poll("bindings.tasks.poll_account_task", (7, "schedule"), {}, {}) is None


def test_polls_go_to_their_sources_shard_and_other_tasks_stay_put(settings):
    settings.BH_POLL_SHARDS = 4
    assert tasks.route_poll("bindings.tasks.poll_cluster_task", (7,), {}, {}) == {"queue": "polls.kube.3"}
    assert tasks.route_poll("bindings.tasks.poll_account_task", (8, "cluster-changed"), {}, {}) == {
        "queue": "polls.aws.0"
    }
    assert tasks.route_poll("bindings.tasks.poll_account_task", (), {"account_id": 5}, {}) == {
        "queue": "polls.aws.1"
    }
    assert tasks.route_poll("bindings.tasks.dispatch_due_polls_task", (), {}, {}) is None
    assert tasks.route_poll("bindings.alerts.send_alerts_task", (), {}, {}) is None


def test_celery_applies_the_router_to_every_send(settings):
    """The router is wired through CELERY_TASK_ROUTES, so delay()/apply_async() anywhere
    (dispatcher, admin "Poll now", API, deferred retries) picks the shard."""
    from dashboard.celery import app

    settings.BH_POLL_SHARDS = 3
    router = app.amqp.Router(create_missing=True)
    options = router.route({}, "bindings.tasks.poll_cluster_task", args=(5,), kwargs={})
    assert options["queue"].name == "polls.kube.2"
    options = router.route({}, "bindings.tasks.prune_history_task", args=(), kwargs={})
    assert options["queue"].name == app.conf.task_default_queue


# --- shared rate limit across processes ----------------------------------------------------------

_TAKER = textwrap.dedent(
    """
    import json, time
    from bindings.collect.ratelimit import TokenBucket
    bucket = TokenBucket({key!r}, rate={rate}, redis_url={url!r})
    start = {start}
    while time.time() < start:
        time.sleep(0.001)
    stamps = []
    for _ in range({n}):
        bucket.take()
        stamps.append(time.time())
    print(json.dumps(stamps))
    """
)


def _redis_or_skip() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis at {REDIS_URL} unreachable: {exc}")


@pytest.mark.slow
def test_two_worker_processes_sharing_redis_never_exceed_the_rate():
    _redis_or_skip()
    rate, per_process = 10.0, 12
    key = f"test-scale-{uuid.uuid4().hex}"
    start = time.time() + 1.5  # both interpreters are up before either takes a token
    code = _TAKER.format(key=key, rate=rate, url=REDIS_URL, start=start, n=per_process)
    procs = [
        # `python -c` imports from its working directory: the repository root.
        subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    stamps = sorted(s for p in procs for s in json.loads(p.communicate(timeout=60)[0]))
    assert all(p.returncode == 0 for p in procs)

    # A bucket of capacity 1 refilling at `rate`: between any two takes i < j at most
    # 1 + rate * (t_j - t_i) tokens can have been handed out, whoever took them.
    slack = 0.02  # clock reads happen after the Redis round trip
    for i in range(len(stamps)):
        for j in range(i + 1, len(stamps)):
            assert j - i <= 1 + rate * (stamps[j] - stamps[i] + slack), (i, j, stamps[j] - stamps[i])
    assert stamps[-1] - stamps[0] >= (2 * per_process - 1) / rate - 0.1


# --- adaptive cadence ----------------------------------------------------------------------------


def _binding(cluster: m.Cluster, name: str, verdict: str, changed_ago: timedelta) -> m.TargetGroupBinding:
    b = m.TargetGroupBinding.objects.create(
        cluster=cluster, uid=f"uid-{cluster.pk}-{name}", namespace="ns", name=name
    )
    at = timezone.now() - changed_ago
    m.BindingResult.objects.create(
        binding=b, analyzed_at=at, changed_at=at, worst_verdict=verdict, digest="x", data={}
    )
    return b


@pytest.fixture
def cadence(settings):
    settings.BH_POLL_ADAPTIVE = True
    settings.BH_POLL_INTERVAL_MIN_SECONDS = 120
    settings.BH_POLL_INTERVAL_MAX_SECONDS = 900
    return settings


@pytest.mark.django_db
def test_problems_halve_the_interval_and_stability_doubles_it_within_bounds(cadence, aws_account):
    def cluster(name: str, interval: int) -> m.Cluster:
        return m.Cluster.objects.create(
            name=name, api_url="http://127.0.0.1:9", connection="url", poll_interval_seconds=interval
        )

    blocked, churning, stable, fresh, empty = (
        cluster("blocked", 300),
        cluster("churning", 300),
        cluster("stable", 600),
        cluster("fresh", 300),
        cluster("empty", 300),
    )
    _binding(blocked, "a", "blocked", timedelta(days=3))
    _binding(blocked, "b", "reachable", timedelta(days=3))
    _binding(churning, "a", "reachable", timedelta(minutes=20))
    _binding(stable, "a", "reachable", timedelta(days=2))
    _binding(stable, "b", "not_offered", timedelta(days=2))
    _binding(fresh, "a", "reachable", timedelta(hours=5))

    got = polling.adaptive_intervals(
        m.Cluster, m.Cluster.objects.values_list("pk", flat=True), timezone.now()
    )

    assert got[blocked.pk] == 150, "a blocked verdict: half of 300"
    assert got[churning.pk] == 150, "a change within the hour: half"
    assert got[stable.pk] == 900, "stable for a day: double 600, capped at the max"
    assert got[fresh.pk] == 300, "neither hot nor a day stable: as configured"
    assert got[empty.pk] == 600, "nothing to watch: double"


@pytest.mark.django_db
def test_bounds_never_push_an_interval_further_out_and_errors_block_slowing_down(cadence):
    fast = m.Cluster.objects.create(
        name="fast", api_url="http://x:1", connection="url", poll_interval_seconds=200
    )
    slow = m.Cluster.objects.create(
        name="slow", api_url="http://x:1", connection="url", poll_interval_seconds=3600
    )
    failing = m.Cluster.objects.create(
        name="failing", api_url="http://x:1", connection="url", poll_interval_seconds=300, last_error="boom"
    )
    _binding(fast, "a", "partial", timedelta(days=3))
    _binding(slow, "a", "reachable", timedelta(days=3))

    got = polling.adaptive_intervals(m.Cluster, [fast.pk, slow.pk, failing.pk], timezone.now())

    assert got[fast.pk] == 120, "half of 200 is 100: held at the 120 s minimum"
    assert got[slow.pk] == 3600, "an operator's interval above the max is kept, not doubled or cut"
    assert got[failing.pk] == 300, "a failing source is not slowed down"


@pytest.mark.django_db
def test_an_account_follows_the_bindings_of_its_clusters(cadence, aws_account, cluster):
    aws_account.poll_interval_seconds = 600
    aws_account.save()
    _binding(cluster, "a", "reachable", timedelta(days=3))
    assert polling.adaptive_intervals(m.AwsAccount, [aws_account.pk], timezone.now()) == {aws_account.pk: 900}
    _binding(cluster, "b", "blocked", timedelta(days=3))
    assert polling.adaptive_intervals(m.AwsAccount, [aws_account.pk], timezone.now()) == {aws_account.pk: 300}


@pytest.mark.django_db
def test_adaptive_off_keeps_the_configured_interval(cadence, cluster):
    cadence.BH_POLL_ADAPTIVE = False
    _binding(cluster, "a", "blocked", timedelta(days=3))
    assert polling.adaptive_intervals(m.Cluster, [cluster.pk], timezone.now()) == {cluster.pk: 300}


@pytest.mark.django_db
def test_a_finished_poll_schedules_the_adaptive_interval(cadence, cluster):
    _binding(cluster, "a", "blocked", timedelta(days=3))
    now = timezone.now()
    cluster.next_poll_at = now + timedelta(seconds=300)
    cluster.save()

    polling._reschedule(cluster, now)

    cluster.refresh_from_db()
    assert cluster.next_poll_at == now + timedelta(seconds=150)


# --- bulk result writes --------------------------------------------------------------------------


def _result(uid: str, verdict: str) -> am.BindingResult:
    return am.BindingResult(
        cluster="demo",
        namespace="ns",
        name=uid,
        uid=uid,
        target_group_arn=None,
        target_type="ip",
        target_group_protocol="UDP",
        protocols=(am.ProtocolResult("UDP", 53, verdict, 2, 0, True, ("10.0.0.0/16",), ("why",)),),
        health_check=None,
        findings=(am.Finding("TRAFFIC_BLOCKED", "critical", "blocked", "UDP"),),
    )


@pytest.mark.django_db
@pytest.mark.parametrize("n", [3, 40])
def test_results_store_writes_in_a_constant_number_of_queries(cluster, n, django_assert_max_num_queries):
    from bindings.store.results import results_store

    for i in range(n):
        m.TargetGroupBinding.objects.create(cluster=cluster, uid=f"u{i}", namespace="ns", name=f"u{i}")
    now = timezone.now()
    # Whatever n: 4 reads, one upsert, two deletes, four inserts, plus savepoint bookkeeping.
    with django_assert_max_num_queries(14):
        stats = results_store(
            cluster=cluster, results=[_result(f"u{i}", "blocked") for i in range(n)], now=now
        )
    assert m.BindingResult.objects.filter(worst_verdict="blocked").count() == n
    assert stats.updated == n
    later = now + timedelta(minutes=1)
    with django_assert_max_num_queries(14):
        results_store(cluster=cluster, results=[_result(f"u{i}", "reachable") for i in range(n)], now=later)
    assert m.BindingResult.objects.filter(worst_verdict="reachable", changed_at=later).count() == n
    assert m.VerdictTransition.objects.filter(new="reachable").count() == n


# --- topology caching ----------------------------------------------------------------------------


@pytest.mark.slow
def test_subnets_and_vpcs_come_from_the_cache_for_their_ttl():
    from django.core.cache import cache

    from bindings.collect import aws
    from bindings.demo.emulators import KubeEmulator, MotoServer, seed_demo_world

    with MotoServer() as moto, KubeEmulator() as kube:
        world = seed_demo_world(aws_endpoint=moto.url, kube=kube)
        target = aws.AwsTarget(account_id=world.account_id, region=world.region, endpoint_url=moto.url)
        arns = list(world.target_group_arns.values())
        ids = {"node_instance_ids": world.instance_ids}

        first = aws.collect_account(target, target_group_arns=arns, cache=cache, topology_ttl=3600, **ids)
        second = aws.collect_account(target, target_group_arns=arns, cache=cache, topology_ttl=3600, **ids)
        uncached = aws.collect_account(target, target_group_arns=arns, cache=cache, topology_ttl=0, **ids)

    assert first.api_calls["DescribeSubnets"] == first.api_calls["DescribeVpcs"] == 1
    assert "DescribeSubnets" not in second.api_calls and "DescribeVpcs" not in second.api_calls
    assert second.responses["DescribeSubnets"] == first.responses["DescribeSubnets"]
    assert second.responses["DescribeVpcs"] == first.responses["DescribeVpcs"]
    # Security groups, ENIs and NACLs are what the analysis must see change: never cached.
    assert second.api_calls["DescribeSecurityGroups"] == second.api_calls["DescribeNetworkAcls"] == 1
    assert uncached.api_calls["DescribeSubnets"] == 1
