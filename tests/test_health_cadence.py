"""Per-target-group health cadence: stable groups reuse their last health answer for a while,
so the ELB Describe budget goes to the groups with problems (issue: adaptive cadence at scale).

Real collectors against the demo world: coredns-udp is blocked (hot), coredns-tcp is reachable
with healthy targets (stable once nothing has changed for a day).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from bindings import models as m
from bindings.services import polling

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


def poll(live_demo) -> m.PollRun:
    polling.cluster_poll(cluster=live_demo.cluster, trigger="test")
    return polling.account_poll(account=live_demo.account, trigger="test")


def age_results(days: float = 2) -> None:
    m.BindingResult.objects.update(changed_at=timezone.now() - timedelta(days=days))


def test_a_group_that_has_been_reachable_and_healthy_for_a_day_reuses_its_health(live_demo):
    poll(live_demo)
    age_results()
    tcp_tg = m.TargetGroupBinding.objects.get(name="coredns-tcp").target_group_arn

    assert polling.stable_target_groups(live_demo.account, timezone.now()) == {tcp_tg}
    run = poll(live_demo)

    assert run.api_calls["DescribeTargetHealth"] == 1  # the blocked UDP group only
    assert m.RegisteredTarget.objects.filter(target_group_arn=tcp_tg, state="healthy").count() == 2
    assert m.ProtocolVerdict.objects.get(binding__name="coredns-tcp").verdict == "reachable"


def test_the_reused_answer_expires_and_the_group_is_described_again(live_demo, settings, python_clock_cache):
    settings.BH_STABLE_HEALTH_SECONDS = 60
    poll(live_demo)  # every answer is kept for a minute
    age_results()

    with time_machine.travel(timezone.now() + timedelta(seconds=61), tick=True):
        assert poll(live_demo).api_calls["DescribeTargetHealth"] == 2


@pytest.mark.parametrize(
    "change",
    [
        {"changed_at": timezone.now()},  # changed within the day
        {"unhealthy": 1},  # an unhealthy target
        {"worst_verdict": "partial"},
    ],
)
def test_a_group_with_a_recent_change_or_a_problem_is_described_every_poll(live_demo, change):
    poll(live_demo)
    age_results()
    m.BindingResult.objects.filter(binding__name="coredns-tcp").update(**change)

    assert polling.stable_target_groups(live_demo.account, timezone.now()) == set()
    assert poll(live_demo).api_calls["DescribeTargetHealth"] == 2


@pytest.mark.parametrize("setting", [{"BH_POLL_ADAPTIVE": False}, {"BH_STABLE_HEALTH_SECONDS": 0}])
def test_switched_off_every_group_is_described_every_poll(live_demo, settings, setting):
    for name, value in setting.items():
        setattr(settings, name, value)
    poll(live_demo)
    age_results()

    assert polling.stable_target_groups(live_demo.account, timezone.now()) == set()
    assert poll(live_demo).api_calls["DescribeTargetHealth"] == 2
