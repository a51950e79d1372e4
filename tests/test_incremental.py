"""Incremental polling: unchanged sources skip sync, unchanged bindings skip re-analysis.

Real collectors over HTTP against the emulators (the demo world: coredns-udp blocked, coredns-tcp
reachable), with spies on the sync and analysis entry points `bindings.services.polling` calls.
"""

from __future__ import annotations

from datetime import timedelta

import boto3
import pytest
from django.core.cache import cache
from django.utils import timezone

from bindings import models as m
from bindings.demo.emulators import DEMO_CREDENTIALS
from bindings.services import polling

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture
def world(live_demo):
    return live_demo.cluster, live_demo.account, live_demo.kube, live_demo.moto, live_demo.world


class Spy:
    """Counts the calls of the sync functions and the bindings handed to the analysis."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.synced: list[str] = []
        self.analysed: list[list[str]] = []
        for name in ("cluster_sync", "account_sync"):
            real = getattr(polling, name)
            monkeypatch.setattr(polling, name, self._wrap_sync(name, real))
        real_analyze = polling.analyze

        def analyze(inventory):
            self.analysed.append(sorted(b.name for b in inventory.bindings))
            return real_analyze(inventory)

        monkeypatch.setattr(polling, "analyze", analyze)

    def _wrap_sync(self, name, real):
        def wrapper(**kwargs):
            self.synced.append(name)
            return real(**kwargs)

        return wrapper

    def reset(self) -> None:
        self.synced.clear()
        self.analysed.clear()


@pytest.fixture
def spy(monkeypatch):
    return Spy(monkeypatch)


def cycle(cluster: m.Cluster, account: m.AwsAccount) -> tuple[m.PollRun, m.PollRun]:
    return polling.cluster_poll(cluster=cluster), polling.account_poll(account=account)


def test_a_second_unchanged_cycle_syncs_nothing_and_analyses_nothing(world, spy):
    cluster, account, *_ = world
    cycle(cluster, account)
    assert spy.synced == ["cluster_sync", "account_sync"]
    assert ["coredns-tcp", "coredns-udp"] in spy.analysed
    results_before = dict(m.BindingResult.objects.values_list("binding__name", "analyzed_at"))
    spy.reset()

    cluster_run, account_run = cycle(cluster, account)

    assert cluster_run.status == account_run.status == m.PollRun.Status.SUCCESS
    assert spy.synced == [], "unchanged payloads are not normalised and diffed again"
    assert spy.analysed == [], "no binding's inputs changed, so nothing is re-judged"
    assert cluster_run.rows_written == account_run.rows_written == 0
    assert dict(m.BindingResult.objects.values_list("binding__name", "analyzed_at")) == results_before
    # The sources still record a successful poll: skipping work is not skipping the poll.
    cluster.refresh_from_db()
    assert cluster.last_success_at == cluster_run.started_at


def test_one_changed_tgb_re_analyses_only_that_binding(world, spy):
    cluster, account, kube, *_ = world
    cycle(cluster, account)
    udp = m.TargetGroupBinding.objects.get(name="coredns-udp")
    udp_result = (udp.result.analyzed_at, udp.result.digest)
    spy.reset()
    kube.patch(
        "elbv2.k8s.aws/v1beta1",
        "TargetGroupBinding",
        "coredns-tcp",
        "kube-system",
        {"metadata": {"annotations": {"binding-health/client-cidrs": "10.0.0.0/16"}}},
    )

    run = polling.cluster_poll(cluster=cluster)

    assert spy.synced == ["cluster_sync"]
    assert spy.analysed == [["coredns-tcp"]], "the unchanged UDP binding is not re-judged"
    tcp = m.TargetGroupBinding.objects.get(name="coredns-tcp")
    assert tcp.annotations["binding-health/client-cidrs"] == "10.0.0.0/16"
    udp.result.refresh_from_db()
    assert (udp.result.analyzed_at, udp.result.digest) == udp_result
    assert run.rows_written > 0


def test_a_shared_input_change_re_judges_every_binding_and_the_verdict_follows(world, spy):
    cluster, account, _kube, moto, demo = world
    cycle(cluster, account)
    spy.reset()
    ec2 = boto3.session.Session(region_name=demo.region, **DEMO_CREDENTIALS).client(
        "ec2", endpoint_url=moto.url
    )
    ec2.authorize_security_group_ingress(
        GroupId=demo.node_security_group_id,
        IpPermissions=[
            {"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "IpRanges": [{"CidrIp": "10.0.0.0/16"}]}
        ],
    )

    polling.account_poll(account=account)

    # Security groups are shared by all bindings: both are re-judged, and UDP is now admitted.
    assert spy.synced == ["account_sync"]
    assert spy.analysed == [["coredns-tcp", "coredns-udp"]]
    udp = m.TargetGroupBinding.objects.get(name="coredns-udp")
    assert udp.verdicts.get().verdict == "reachable"


def test_a_lost_cache_or_a_new_engine_means_a_full_re_analysis(world, spy, monkeypatch):
    cluster, account, *_ = world
    cycle(cluster, account)
    spy.reset()

    cache.clear()  # a restarted Redis, an evicted key
    cycle(cluster, account)
    assert spy.synced == ["cluster_sync", "account_sync"], "no fingerprint: sync again"
    assert ["coredns-tcp", "coredns-udp"] in spy.analysed
    spy.reset()

    monkeypatch.setattr(polling, "_engine_version", lambda: "a deploy changed the rules")
    polling.cluster_poll(cluster=cluster)
    assert spy.analysed == [["coredns-tcp", "coredns-udp"]]


def test_rows_deleted_behind_the_pollers_back_force_a_full_sync(world, spy):
    cluster, account, *_ = world
    cycle(cluster, account)
    arns = set(m.TargetGroup.objects.values_list("arn", flat=True))
    m.TargetGroup.objects.all().delete()
    spy.reset()

    polling.account_poll(account=account)

    assert spy.synced == ["account_sync"]
    assert set(m.TargetGroup.objects.values_list("arn", flat=True)) == arns


def test_skipped_bindings_still_get_their_due_history_samples(world, spy, settings):
    cluster, account, *_ = world
    cycle(cluster, account)
    old = timezone.now() - timedelta(seconds=settings.BH_HISTORY_SAMPLE_SECONDS + 1)
    m.HistorySample.objects.update(at=old)
    spy.reset()

    polling.cluster_poll(cluster=cluster)

    assert spy.analysed == []
    newest = {
        s.binding.name: s
        for s in m.HistorySample.objects.filter(at__gt=old).select_related("binding").order_by("at")
    }
    assert set(newest) == {"coredns-tcp", "coredns-udp"}
    assert newest["coredns-udp"].verdicts == {"UDP": "blocked"}
    assert newest["coredns-tcp"].healthy == 2


def test_incremental_off_restores_the_full_cycle(world, spy, settings):
    cluster, account, *_ = world
    cycle(cluster, account)
    settings.BH_INCREMENTAL_ANALYSIS = False
    spy.reset()

    cluster_run, account_run = cycle(cluster, account)

    assert spy.synced == ["cluster_sync", "account_sync"]
    assert spy.analysed == [["coredns-tcp", "coredns-udp"]] * 2
    assert cluster_run.rows_written == account_run.rows_written == 0
