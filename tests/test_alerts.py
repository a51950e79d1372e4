"""Alerts: one delivery per hook and event, however many beats; webhook and Slack formats; retries."""

from __future__ import annotations

import json
from datetime import timedelta
from unittest.mock import patch

import pytest
from django.utils import timezone
from werkzeug import Response

from bindings import models as m
from bindings import tasks, textsafe
from bindings.services import alerts
from tests.factories import HOSTILE_TEXT, make_bindings

pytestmark = pytest.mark.django_db


@pytest.fixture
def webhook(httpserver, monkeypatch):
    """A generic JSON hook whose URL (a secret) lives in an environment variable."""
    monkeypatch.setenv("BH_TEST_WEBHOOK_URL", httpserver.url_for("/hook"))
    return m.AlertHook.objects.create(
        name="ops", kind="webhook", url_env="BH_TEST_WEBHOOK_URL", on_stale=False
    )


@pytest.fixture
def slack(httpserver, credentials_dir):
    path = credentials_dir / "slack-url"
    path.write_text(httpserver.url_for("/slack") + "\n")
    return m.AlertHook.objects.create(name="slack", kind="slack", url_file=str(path), on_stale=False)


@pytest.fixture
def udp_binding(cluster):
    [binding] = make_bindings(cluster, 1)
    return binding


def transition(binding, old="reachable", new="blocked", **extra):
    return m.VerdictTransition.objects.create(
        binding=binding, protocol="UDP", at=extra.pop("at", timezone.now()), old=old, new=new
    )


def test_it_records_one_delivery_per_hook_and_transition_however_often_it_runs(webhook, slack, udp_binding):
    t = transition(udp_binding)

    first = alerts.alerts_scan()
    second = alerts.alerts_scan()

    assert len(first) == 2 and second == []
    assert set(m.AlertDelivery.objects.values_list("hook__name", "event_key")) == {
        ("ops", f"transition:{t.pk}"),
        ("slack", f"transition:{t.pk}"),
    }


def test_it_records_one_delivery_when_two_beats_race(webhook, udp_binding):
    """Both beats read "nothing delivered yet" before either inserts: the unique key decides."""
    transition(udp_binding)
    real_filter = m.AlertDelivery.objects.filter

    def nothing_seen_yet(*args, **kwargs):
        if "created_at__gte" in kwargs:
            return m.AlertDelivery.objects.none()
        return real_filter(*args, **kwargs)

    with patch.object(m.AlertDelivery.objects, "filter", side_effect=nothing_seen_yet):
        beat_one = alerts.alerts_scan()
        beat_two = alerts.alerts_scan()

    assert len(beat_one) == 1 and beat_two == []
    assert m.AlertDelivery.objects.count() == 1


def test_it_enqueues_each_new_delivery_once_after_commit(
    webhook, udp_binding, django_capture_on_commit_callbacks
):
    transition(udp_binding)

    with patch.object(tasks.deliver_alert_task, "delay") as delay:
        with django_capture_on_commit_callbacks(execute=True):
            assert tasks.send_alerts_task.apply().get() == 1
        with django_capture_on_commit_callbacks(execute=True):
            assert tasks.send_alerts_task.apply().get() == 0

    delay.assert_called_once_with(m.AlertDelivery.objects.get().pk)


def test_it_skips_first_sightings_and_old_transitions(webhook, udp_binding):
    transition(udp_binding, old="", new="blocked")
    transition(udp_binding, at=timezone.now() - alerts.LOOKBACK - timedelta(minutes=1))

    assert alerts.alerts_scan() == []


def test_it_skips_the_first_judgement_after_not_yet_polled(webhook, udp_binding):
    """Cluster polled before its account: unknown, then the first real verdict. Not a change."""
    start = timezone.now() - timedelta(minutes=5)
    transition(udp_binding, old="", new="unknown", at=start)
    transition(udp_binding, old="unknown", new="blocked", at=start + timedelta(minutes=1))

    assert alerts.alerts_scan() == []


def test_it_alerts_a_change_from_unknown_whose_earlier_history_was_pruned(webhook, udp_binding):
    """Stable for longer than the retention: only `unknown -> blocked` is left. It is a change."""
    back = transition(udp_binding, old="unknown", new="blocked")

    created = alerts.alerts_scan()

    assert [d.transition_id for d in m.AlertDelivery.objects.filter(pk__in=created)] == [back.pk]


def test_it_alerts_losing_and_regaining_a_judgement(webhook, udp_binding):
    start = timezone.now() - timedelta(minutes=5)
    transition(udp_binding, old="", new="reachable", at=start)
    lost = transition(udp_binding, old="reachable", new="unknown", at=start + timedelta(minutes=1))
    back = transition(udp_binding, old="unknown", new="blocked", at=start + timedelta(minutes=2))

    created = alerts.alerts_scan()

    assert [d.transition_id for d in m.AlertDelivery.objects.filter(pk__in=created).order_by("pk")] == [
        lost.pk,
        back.pk,
    ]


def test_it_honours_hook_cluster_scopes_and_switches(webhook, udp_binding, aws_account):
    other = m.Cluster.objects.create(
        name="other", connection="url", api_url="http://127.0.0.1:9", aws_account=aws_account
    )
    webhook.clusters.add(other)
    transition(udp_binding)

    assert alerts.alerts_scan() == []
    webhook.clusters.clear()
    m.AlertHook.objects.update(on_transitions=False)
    assert alerts.alerts_scan() == []
    m.AlertHook.objects.update(on_transitions=True, enabled=False)
    assert alerts.alerts_scan() == []


def test_it_delivers_a_generic_json_webhook(webhook, udp_binding, httpserver):
    m.TargetGroupBinding.objects.filter(pk=udp_binding.pk).update(name=HOSTILE_TEXT)
    transition(udp_binding)
    [pk] = alerts.alerts_scan()
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")

    assert tasks.deliver_alert_task.apply(args=(pk,)).get() == "sent"

    [(request, _response)] = httpserver.log
    body = json.loads(request.get_data())
    assert request.headers["Content-Type"] == "application/json"
    assert body["event"] == "verdict_changed" and body["old"] == "reachable" and body["new"] == "blocked"
    assert body["name"] == HOSTILE_TEXT and body["cluster"] == "demo" and body["protocol"] == "UDP"
    delivery = m.AlertDelivery.objects.get()
    assert delivery.status == "sent" and delivery.attempts == 1 and delivery.sent_at is not None
    assert httpserver.url_for("/hook") not in json.dumps(delivery.payload)


def test_it_delivers_slack_format_with_markup_escaped(slack, udp_binding, httpserver):
    m.TargetGroupBinding.objects.filter(pk=udp_binding.pk).update(name="<!channel> & <http://evil|click>")
    transition(udp_binding)
    [pk] = alerts.alerts_scan()
    httpserver.expect_request("/slack", method="POST").respond_with_data("ok")

    tasks.deliver_alert_task.apply(args=(pk,))

    body = json.loads(httpserver.log[0][0].get_data())
    assert set(body) == {"text", "blocks"}
    assert "&lt;!channel&gt; &amp; &lt;http://evil|click&gt;" in body["text"]
    assert "<!channel>" not in json.dumps(body)
    assert (
        body["blocks"][0]["type"] == "section" and "reachable → blocked" in body["blocks"][0]["text"]["text"]
    )


def test_slack_shows_control_and_format_characters_as_escapes(slack, udp_binding, httpserver):
    """Slack renders a bidi override: "dns-\u202eetavirp" would read as "dns-private"."""
    name = "dns-\u202eetavirp\u202c " + HOSTILE_TEXT
    m.TargetGroupBinding.objects.filter(pk=udp_binding.pk).update(name=name)
    transition(udp_binding)
    [pk] = alerts.alerts_scan()
    httpserver.expect_request("/slack", method="POST").respond_with_data("ok")

    tasks.deliver_alert_task.apply(args=(pk,))

    body = json.loads(httpserver.log[0][0].get_data())
    texts = [body["text"], body["blocks"][0]["text"]["text"]]
    # A field is "*key*", our line break, then the value.
    texts += [field["text"].replace("*\n", "*", 1) for field in body["blocks"][1]["fields"]]
    assert "dns-\\u202eetavirp\\u202c" in body["text"] and "\\x1b[31mRED" in body["text"]
    assert any("dns-\\u202eetavirp" in text for text in texts[2:])
    assert not any(textsafe.UNSAFE.search(text) for text in texts)
    assert "&lt;script&gt;" in body["text"]


def test_it_retries_a_5xx_and_records_each_attempt(webhook, udp_binding, httpserver):
    transition(udp_binding)
    [pk] = alerts.alerts_scan()
    httpserver.expect_ordered_request("/hook").respond_with_response(Response("down", status=500))
    httpserver.expect_ordered_request("/hook").respond_with_data("ok")

    tasks.deliver_alert_task.apply(args=(pk,))

    delivery = m.AlertDelivery.objects.get()
    assert len(httpserver.log) == 2
    assert delivery.status == "sent" and delivery.attempts == 2 and delivery.last_error == ""


def test_it_gives_up_after_the_maximum_attempts(webhook, udp_binding, httpserver, settings):
    transition(udp_binding)
    [pk] = alerts.alerts_scan()
    httpserver.expect_request("/hook").respond_with_response(Response("down", status=503))

    tasks.deliver_alert_task.apply(args=(pk,))

    delivery = m.AlertDelivery.objects.get()
    assert delivery.status == "failed" and delivery.attempts == settings.BH_ALERT_MAX_ATTEMPTS
    assert delivery.last_error.startswith("HTTP 503")
    assert len(httpserver.log) == settings.BH_ALERT_MAX_ATTEMPTS


def test_it_retries_connection_errors(webhook, udp_binding, monkeypatch, httpserver):
    transition(udp_binding)
    [pk] = alerts.alerts_scan()
    monkeypatch.setenv("BH_TEST_WEBHOOK_URL", "http://127.0.0.1:9/hook")  # nothing listens on 9

    tasks.deliver_alert_task.apply(args=(pk,))

    delivery = m.AlertDelivery.objects.get()
    assert delivery.status == "failed" and delivery.attempts > 1
    assert delivery.last_error.startswith("connection failed") and "127.0.0.1:9" not in delivery.last_error


def test_it_does_not_retry_a_4xx(webhook, udp_binding, httpserver):
    transition(udp_binding)
    [pk] = alerts.alerts_scan()
    httpserver.expect_request("/hook").respond_with_response(Response("no", status=404))

    tasks.deliver_alert_task.apply(args=(pk,))

    delivery = m.AlertDelivery.objects.get()
    assert (
        delivery.status == "failed" and delivery.attempts == 1 and delivery.last_error.startswith("HTTP 404")
    )


def test_it_fails_a_delivery_whose_hook_has_no_url(webhook, udp_binding, monkeypatch):
    transition(udp_binding)
    [pk] = alerts.alerts_scan()
    monkeypatch.delenv("BH_TEST_WEBHOOK_URL")

    tasks.deliver_alert_task.apply(args=(pk,))

    assert m.AlertDelivery.objects.get().last_error.startswith("no URL")


def test_it_sends_nothing_twice_when_a_delivery_is_redelivered(webhook, udp_binding, httpserver):
    transition(udp_binding)
    [pk] = alerts.alerts_scan()
    httpserver.expect_request("/hook").respond_with_data("ok")

    tasks.deliver_alert_task.apply(args=(pk,))
    tasks.deliver_alert_task.apply(args=(pk,))

    assert len(httpserver.log) == 1


def test_it_alerts_once_per_stale_episode(webhook, cluster):
    m.AlertHook.objects.update(on_stale=True, on_transitions=False)
    old = timezone.now() - timedelta(hours=2)
    m.Cluster.objects.update(last_polled_at=timezone.now(), last_success_at=old)
    m.AwsAccount.objects.update(last_polled_at=timezone.now(), last_success_at=timezone.now())

    first = alerts.alerts_scan()
    again = alerts.alerts_scan()
    m.Cluster.objects.update(last_success_at=timezone.now() - timedelta(hours=1))  # recovered, stale again
    next_episode = alerts.alerts_scan()

    assert len(first) == 1 and again == [] and len(next_episode) == 1
    payload = m.AlertDelivery.objects.get(pk=first[0]).payload
    assert payload["event"] == "source_stale" and payload["kind"] == "cluster" and payload["source"] == "demo"


def test_it_does_not_call_a_source_never_polled_stale(webhook, cluster):
    m.AlertHook.objects.update(on_stale=True)

    assert alerts.alerts_scan() == []


def test_it_alerts_a_stale_account_to_hooks_scoped_to_its_clusters(webhook, cluster):
    m.AlertHook.objects.update(on_stale=True)
    webhook.clusters.add(cluster)
    m.AwsAccount.objects.update(
        last_polled_at=timezone.now(), last_success_at=None, last_error="AccessDenied"
    )

    [pk] = alerts.alerts_scan()

    payload = m.AlertDelivery.objects.get(pk=pk).payload
    assert (
        payload["kind"] == "account"
        and payload["last_success_at"] is None
        and payload["last_error"] == "AccessDenied"
    )


def test_the_hook_boundary_names_pagerduty_as_the_model_does():
    """bindings.collect.hooks imports no models; its spelling of the PagerDuty kind must agree."""
    from bindings.collect import hooks

    assert m.AlertHook.Kind.PAGERDUTY.value == hooks.PAGERDUTY
