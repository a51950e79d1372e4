"""/metrics: Prometheus text, protected by a token, client CIDRs, or loopback only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from bindings import models as m
from bindings.vocabulary import THROTTLED_MARK
from tests.factories import make_bindings, seed_scenario

pytestmark = pytest.mark.django_db


def scrape(client, **extra):
    return client.get("/metrics", **extra)


def sample(text, line_start):
    """The value of the one sample line starting with `line_start`."""
    [line] = [line for line in text.splitlines() if line.startswith(line_start)]
    return float(line.rsplit(" ", 1)[1])


def test_it_exposes_verdicts_findings_and_poll_figures(client, cluster, aws_account):
    seed_scenario(cluster)
    m.PollRun.objects.create(
        cluster=cluster,
        status="success",
        finished_at=timezone.now(),
        duration_ms=1500,
        api_calls={"list": 4, "get": 2},
    )
    m.PollRun.objects.create(
        account=aws_account, status="failed", finished_at=timezone.now(), duration_ms=200
    )
    m.AwsAccount.objects.update(last_error="boom")

    response = scrape(client)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    text = response.content.decode()
    assert sample(text, 'bh_binding_protocols{protocol="UDP",verdict="blocked"}') == 1
    assert sample(text, 'bh_binding_protocols{protocol="TCP",verdict="reachable"}') == 1
    assert sample(text, 'bh_bindings{verdict="blocked"}') == 1
    assert sample(text, 'bh_findings{code="HEALTH_CHECK_MASKS_TRAFFIC",severity="critical"}') == 1
    assert sample(text, 'bh_last_poll_duration_seconds{kind="cluster",source="demo"}') == 1.5
    assert sample(text, 'bh_last_poll_api_calls{kind="cluster",source="demo"}') == 6
    assert sample(text, 'bh_poll_errors{kind="account",source="prod"}') == 1
    assert sample(text, 'bh_poll_errors{kind="cluster",source="demo"}') == 0
    assert sample(text, 'bh_cluster_binding_protocols{cluster="demo",protocol="UDP",verdict="blocked"}') == 1
    assert sample(text, 'bh_green_but_broken_bindings{cluster="demo"}') == 1
    assert (
        sample(text, 'bh_poll_interval_seconds{kind="cluster",source="demo"}')
        == cluster.poll_interval_seconds
    )
    assert sample(text, 'bh_poll_throttled{kind="account",source="prod"}') == 0
    assert sample(text, 'bh_source_last_poll_failed{kind="account",source="prod"}') == 1
    assert 0 <= sample(text, 'bh_data_age_seconds{kind="cluster",source="demo"}') < 60
    assert sample(text, 'bh_source_stale{kind="cluster",source="demo"}') == 0
    assert "# TYPE bh_findings gauge" in text and text.endswith("\n")


def test_it_shows_never_polled_sources_as_infinitely_old(client, cluster):
    text = scrape(client).content.decode()

    assert 'bh_data_age_seconds{kind="cluster",source="demo"} +Inf' in text
    assert sample(text, 'bh_source_stale{kind="cluster",source="demo"}') == 1


def test_it_escapes_label_values(client, cluster):
    m.Cluster.objects.update(name='we"ird\\name\nx')

    text = scrape(client).content.decode()

    assert 'source="we\\"ird\\\\name\\nx"' in text


def test_it_scrapes_in_constant_queries(client, cluster, django_assert_num_queries):
    make_bindings(cluster, 1, prefix="a")
    # 1 verdict counts, 2 the same per cluster, 3 green-but-broken bindings per cluster,
    # 4 worst-verdict counts, 5 finding counts, 6 clusters with their last run and recent
    # failures (subqueries), 7 accounts likewise.
    with django_assert_num_queries(7):
        scrape(client)
    make_bindings(cluster, 19, prefix="b")
    for _ in range(3):
        m.PollRun.objects.create(cluster=cluster, status="failed", finished_at=timezone.now())
    with django_assert_num_queries(7):
        scrape(client)


def test_it_counts_polls_aws_kept_throttling(client, aws_account):
    for error in (f"DescribeTargetHealth: Throttling: Rate exceeded {THROTTLED_MARK}", "AccessDenied"):
        m.PollRun.objects.create(
            account=aws_account, status="failed", finished_at=timezone.now(), error=error
        )

    text = scrape(client).content.decode()

    assert sample(text, 'bh_poll_throttled{kind="account",source="prod"}') == 1
    assert sample(text, 'bh_poll_errors{kind="account",source="prod"}') == 2


def test_it_counts_only_recent_poll_errors(client, cluster):
    m.PollRun.objects.create(cluster=cluster, status="failed", started_at=timezone.now() - timedelta(days=2))

    assert sample(scrape(client).content.decode(), 'bh_poll_errors{kind="cluster",source="demo"}') == 0


# --- access -------------------------------------------------------------------------------------


def test_it_allows_only_loopback_when_nothing_is_configured(client, settings):
    settings.BH_METRICS_TOKEN = ""
    settings.BH_METRICS_ALLOWED_CIDRS = []

    assert scrape(client, REMOTE_ADDR="127.0.0.1").status_code == 200
    assert scrape(client, REMOTE_ADDR="::1").status_code == 200
    assert scrape(client, REMOTE_ADDR="10.0.0.5").status_code == 403
    assert scrape(client, REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="127.0.0.1").status_code == 403


def test_it_allows_a_bearer_token_from_anywhere(client, settings):
    settings.BH_METRICS_TOKEN = "s3cret-metrics"
    settings.BH_METRICS_ALLOWED_CIDRS = []

    assert (
        scrape(client, REMOTE_ADDR="10.0.0.5", HTTP_AUTHORIZATION="Bearer s3cret-metrics").status_code == 200
    )
    wrong = scrape(client, REMOTE_ADDR="10.0.0.5", HTTP_AUTHORIZATION="Bearer nope")
    missing = scrape(client, REMOTE_ADDR="10.0.0.5")
    assert wrong.status_code == 403 and missing.status_code == 401
    assert missing["WWW-Authenticate"].startswith("Bearer")
    # A token configured means loopback is no longer trusted by itself.
    assert scrape(client, REMOTE_ADDR="127.0.0.1").status_code == 401


def test_it_allows_configured_cidrs(client, settings):
    settings.BH_METRICS_TOKEN = ""
    settings.BH_METRICS_ALLOWED_CIDRS = ["10.0.0.0/8", "fd00::/8"]

    assert scrape(client, REMOTE_ADDR="10.1.2.3").status_code == 200
    assert scrape(client, REMOTE_ADDR="::ffff:10.1.2.3").status_code == 200
    assert scrape(client, REMOTE_ADDR="fd00::1").status_code == 200
    assert scrape(client, REMOTE_ADDR="192.168.1.1").status_code == 403
    assert scrape(client, REMOTE_ADDR="127.0.0.1").status_code == 403


def test_it_reads_the_token_setting_from_a_file(monkeypatch, tmp_path):
    from dashboard.settings import envsecret

    path = tmp_path / "token"
    path.write_text("from-file\n")
    monkeypatch.setenv("BH_METRICS_TOKEN_FILE", str(path))

    assert envsecret("BH_METRICS_TOKEN") == "from-file"
