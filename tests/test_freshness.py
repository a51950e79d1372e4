"""Staleness, one rule (`bindings.freshness`) for the STALE_DATA finding, the models, the API
and alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from bindings import freshness
from bindings import models as m
from bindings.analysis import model as am
from bindings.analysis.engine import _stale_sources
from bindings.services import alerts

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("age", "interval", "stale"),
    [
        (None, 300, True),  # never polled successfully
        (timedelta(seconds=900), 300, False),  # exactly three intervals: still fresh
        (timedelta(seconds=901), 300, True),
        (timedelta(seconds=0), 30, False),
        (timedelta(days=30), 0, False),  # no cadence: never late
        (timedelta(days=30), -5, False),
        (None, 0, True),  # never polled is stale whatever the interval
    ],
)
def test_the_rule(age, interval, stale):
    last = None if age is None else NOW - age

    assert freshness.is_stale(last, interval, NOW) is stale


def test_naive_and_aware_times_are_an_error_not_a_guess():
    with pytest.raises(TypeError):
        freshness.is_stale(datetime(2026, 1, 1), 300, NOW)


@pytest.mark.parametrize(
    ("age", "interval"),
    [(None, 300), (timedelta(seconds=900), 300), (timedelta(seconds=901), 300), (timedelta(days=9), 0)],
)
def test_the_engine_finding_agrees_with_the_rule(age, interval):
    last = None if age is None else NOW - age
    source = am.SourceStatus(
        kind="cluster", name="demo", last_success_at=last, poll_interval_seconds=interval
    )
    inventory = am.Inventory(cluster="demo", now=NOW, sources=[source])

    found = [f.code for f in _stale_sources(inventory)]

    assert (found == ["STALE_DATA"]) is freshness.is_stale(last, interval, NOW)


@pytest.mark.django_db
@pytest.mark.parametrize(("age", "stale"), [(None, True), (899, False), (901, True)])
def test_the_model_the_cluster_and_the_alert_scan_agree(cluster, aws_account, age, stale):
    now = timezone.now()
    last = None if age is None else now - timedelta(seconds=age)
    m.AwsAccount.objects.filter(pk=aws_account.pk).update(
        last_success_at=last, last_polled_at=now, poll_interval_seconds=300
    )
    m.Cluster.objects.filter(pk=cluster.pk).update(last_success_at=now, last_polled_at=now)
    cluster = m.Cluster.objects.select_related("aws_account").get(pk=cluster.pk)

    assert cluster.aws_account.is_stale is stale
    assert cluster.data_is_stale is stale
    assert cluster.is_stale is False
    assert alerts._stale(cluster.aws_account, now) is stale


@pytest.mark.django_db
def test_alerts_skip_sources_never_tried_or_disabled(aws_account):
    now = timezone.now()
    assert aws_account.is_stale  # never polled: stale on the pages
    assert not alerts._stale(aws_account, now)  # but not an outage worth paging for
    aws_account.last_polled_at = now
    assert alerts._stale(aws_account, now)
    aws_account.enabled = False
    assert not alerts._stale(aws_account, now)
