"""Tasks are thin: the dispatcher claims due sources once, polls hold a per-source lock."""

from __future__ import annotations

from datetime import timedelta
from unittest.mock import patch

import pytest
from django.utils import timezone

from bindings import models as m
from bindings import tasks
from bindings.collect.errors import AwsThrottled, KubeError

pytestmark = pytest.mark.django_db


def test_the_dispatcher_enqueues_each_due_source_once(cluster, aws_account):
    with (
        patch.object(tasks.poll_cluster_task, "delay") as cluster_delay,
        patch.object(tasks.poll_account_task, "delay") as account_delay,
    ):
        first = tasks.dispatch_due_polls_task()
        second = tasks.dispatch_due_polls_task()  # a second beat in the same period

    assert first == {"clusters": [cluster.pk], "accounts": [aws_account.pk]}
    assert second == {"clusters": [], "accounts": []}
    cluster_delay.assert_called_once_with(cluster.pk)
    account_delay.assert_called_once_with(aws_account.pk)
    cluster.refresh_from_db()
    assert cluster.next_poll_at > timezone.now() + timedelta(seconds=290)


def test_the_dispatcher_skips_disabled_and_not_yet_due_sources(cluster, aws_account):
    m.Cluster.objects.filter(pk=cluster.pk).update(enabled=False)
    m.AwsAccount.objects.filter(pk=aws_account.pk).update(next_poll_at=timezone.now() + timedelta(minutes=1))

    with patch.object(tasks.poll_cluster_task, "delay"), patch.object(tasks.poll_account_task, "delay"):
        assert tasks.dispatch_due_polls_task() == {"clusters": [], "accounts": []}


def test_a_poll_is_skipped_while_another_holds_the_source_lock(cluster):
    with (
        tasks.source_lock("cluster", cluster.pk) as acquired,
        patch("bindings.services.polling.cluster_poll") as poll,
    ):
        assert acquired
        assert tasks.poll_cluster_task.run(cluster.pk) == "locked"
    poll.assert_not_called()


def test_the_lock_is_released_after_a_poll(cluster):
    with patch("bindings.services.polling.cluster_poll") as poll:
        poll.return_value.rows_written = 0
        assert tasks.poll_cluster_task.run(cluster.pk) == "ok"
        assert tasks.poll_cluster_task.run(cluster.pk) == "ok"
    assert poll.call_count == 2


def test_a_poll_of_a_deleted_source_returns_quietly():
    assert tasks.poll_cluster_task.run(999_999) == "gone"
    assert tasks.poll_account_task.run(999_999) == "gone"


def test_transient_errors_are_retried_and_permanent_ones_are_not(cluster, aws_account):
    assert AwsThrottled in tasks.poll_account_task.autoretry_for or any(
        issubclass(AwsThrottled, e) for e in tasks.poll_account_task.autoretry_for
    )
    with patch("bindings.services.polling.cluster_poll", side_effect=KubeError("401 Unauthorized")):
        assert tasks.poll_cluster_task.run(cluster.pk) == "failed"
    with (
        patch("bindings.services.polling.account_poll", side_effect=AwsThrottled("Rate exceeded")),
        pytest.raises(AwsThrottled),
    ):
        tasks.poll_account_task.run(aws_account.pk)


def test_a_changed_cluster_triggers_its_account_poll(cluster, aws_account):
    with (
        patch("bindings.services.polling.cluster_poll") as poll,
        patch.object(tasks.poll_account_task, "delay") as delay,
    ):
        poll.return_value.rows_written = 3
        tasks.poll_cluster_task.run(cluster.pk)
    delay.assert_called_once_with(aws_account.pk, "cluster-changed")


def test_history_is_pruned_by_age(cluster):
    tgb = m.TargetGroupBinding.objects.create(
        cluster=cluster, uid="u1", namespace="ns", name="t", api_version="v1"
    )
    old = timezone.now() - timedelta(days=40)
    m.HistorySample.objects.create(binding=tgb, at=old, verdicts={"UDP": "blocked"})
    m.HistorySample.objects.create(binding=tgb, at=timezone.now(), verdicts={"UDP": "blocked"})

    assert tasks.prune_history_task() == 1
    assert m.HistorySample.objects.count() == 1


def test_a_requested_account_poll_is_deferred_not_lost_while_another_runs(aws_account):
    with (
        tasks.source_lock("account", aws_account.pk),
        patch.object(tasks.poll_account_task, "apply_async") as later,
        patch("bindings.services.polling.account_poll") as poll,
    ):
        assert tasks.poll_account_task.run(aws_account.pk, "cluster-changed") == "deferred"
        assert tasks.poll_account_task.run(aws_account.pk) == "locked"
    poll.assert_not_called()
    later.assert_called_once_with((aws_account.pk, "cluster-changed"), countdown=tasks.DEFER_SECONDS)


@pytest.mark.django_db
def test_request_poll_enqueues_once_and_reports_a_running_poll(cluster):
    """One "Poll now" for the dashboard, the admin and the API: queued when idle; when a poll
    holds the lock, nothing is queued and the caller learns since when it runs."""
    with patch("bindings.tasks.poll_cluster_task.delay_on_commit") as delay:
        assert tasks.request_poll("cluster", cluster.pk, "api") is None
        delay.assert_called_once_with(cluster.pk, "api")
    with (
        tasks.source_lock("cluster", cluster.pk) as acquired,
        patch("bindings.tasks.poll_cluster_task.delay_on_commit") as delay,
    ):
        assert acquired
        since = tasks.request_poll("cluster", cluster.pk, "dashboard")
        assert since is not None
        delay.assert_not_called()
