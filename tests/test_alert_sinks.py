"""PagerDuty Events API v2 and Microsoft Teams sinks, delivered to real local HTTP receivers.

Payload shapes follow the public docs: PagerDuty Events API v2 (`routing_key`, `event_action`
trigger/resolve, `dedup_key` <= 255 chars, `payload.summary` <= 1024 chars, `source`, `severity` in
critical/error/warning/info); Teams workflow webhooks take a `message` whose attachment has
contentType `application/vnd.microsoft.card.adaptive` and an AdaptiveCard as `content`.
"""

from __future__ import annotations

import json
import shutil
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from werkzeug import Response

from bindings import models as m
from bindings import tasks, textsafe
from bindings.services import alerts
from tests.factories import HOSTILE_TEXT, make_bindings

pytestmark = pytest.mark.django_db

ROUTING_KEY = "R0ut1ngKeyR0ut1ngKeyR0ut1ngKey12"  # 32 letters and digits, like an integration key
PD_ACCEPTED = {"status": "success", "message": "Event processed"}


@pytest.fixture
def secrets_dir(settings):
    """Key files live under the data directory, where the worker may read credentials from."""
    directory = Path(settings.DATA_DIR) / f"test-credentials-{uuid.uuid4().hex}"
    directory.mkdir()
    yield directory
    shutil.rmtree(directory)


@pytest.fixture
def pagerduty(httpserver, secrets_dir, settings):
    settings.BH_PAGERDUTY_EVENTS_URL = httpserver.url_for("/v2/enqueue")
    key = secrets_dir / "pd-routing-key"
    key.write_text(ROUTING_KEY + "\n")
    return m.AlertHook.objects.create(name="pd", kind="pagerduty", url_file=str(key), on_stale=False)


@pytest.fixture
def teams(httpserver, monkeypatch):
    monkeypatch.setenv("BH_TEST_TEAMS_URL", httpserver.url_for("/workflows/teams"))
    return m.AlertHook.objects.create(name="teams", kind="teams", url_env="BH_TEST_TEAMS_URL", on_stale=False)


@pytest.fixture
def bindings(cluster):
    return make_bindings(cluster, 3)


def transition(binding, old, new, protocol="UDP", at=None):
    return m.VerdictTransition.objects.create(
        binding=binding, protocol=protocol, at=at or timezone.now(), old=old, new=new
    )


def accept_pagerduty(httpserver):
    httpserver.expect_request("/v2/enqueue", method="POST").respond_with_json(PD_ACCEPTED, status=202)


def deliver_all(created):
    return [tasks.deliver_alert_task.apply(args=(pk,)).get() for pk in created]


def sent_bodies(httpserver, path):
    return [json.loads(req.get_data()) for req, _resp in httpserver.log if req.path == path]


def test_pagerduty_triggers_on_blocked_and_partial_and_resolves_on_recovery(pagerduty, bindings, httpserver):
    first, second, _ = bindings
    start = timezone.now() - timedelta(minutes=10)
    transition(first, "reachable", "partial", at=start)
    transition(first, "partial", "blocked", at=start + timedelta(minutes=1))
    transition(first, "blocked", "reachable", at=start + timedelta(minutes=2))
    transition(first, "reachable", "blocked", protocol="TCP", at=start + timedelta(minutes=3))
    transition(second, "reachable", "blocked", at=start + timedelta(minutes=4))
    accept_pagerduty(httpserver)

    assert deliver_all(alerts.alerts_scan()) == ["sent"] * 5

    bodies = sent_bodies(httpserver, "/v2/enqueue")
    assert [(b["event_action"], b.get("payload", {}).get("severity")) for b in bodies] == [
        ("trigger", "error"),
        ("trigger", "critical"),
        ("resolve", None),
        ("trigger", "critical"),
        ("trigger", "critical"),
    ]
    keys = [b["dedup_key"] for b in bodies]
    # One PagerDuty alert per binding and protocol: the same key triggers, updates and resolves.
    assert keys[0] == keys[1] == keys[2]
    assert len({keys[0], keys[3], keys[4]}) == 3
    assert all(len(k) <= 255 for k in keys)
    for body in bodies:
        assert body["routing_key"] == ROUTING_KEY
        assert set(body) <= {"routing_key", "event_action", "dedup_key", "payload", "client"}
    trigger = bodies[0]
    assert set(trigger["payload"]) >= {"summary", "source", "severity", "timestamp"}
    assert trigger["payload"]["source"] == f"demo/apps/{first.name}"
    assert "reachable → partial" in trigger["payload"]["summary"]
    assert trigger["payload"]["custom_details"]["protocol"] == "UDP"
    # The routing key is a credential: sent, never stored.
    assert ROUTING_KEY not in json.dumps(list(m.AlertDelivery.objects.values_list("payload", flat=True)))


def test_pagerduty_is_not_paged_for_moves_that_are_not_an_outage_and_resolves_after_unknown(
    pagerduty, bindings, httpserver, monkeypatch
):
    """To unknown/not_offered: generic hooks hear it, PagerDuty does not. blocked → unknown →
    reachable (a failed poll during the outage) still resolves the incident."""
    monkeypatch.setenv("BH_TEST_WEBHOOK_URL", httpserver.url_for("/hook"))
    m.AlertHook.objects.create(name="ops", kind="webhook", url_env="BH_TEST_WEBHOOK_URL", on_stale=False)
    first, second, third = bindings
    start = timezone.now() - timedelta(minutes=5)
    transition(first, "blocked", "unknown", at=start)
    transition(second, "reachable", "not_offered", at=start + timedelta(minutes=1))
    transition(third, "blocked", "unknown", at=start + timedelta(minutes=2))
    back = transition(third, "unknown", "reachable", at=start + timedelta(minutes=3))

    created = alerts.alerts_scan()

    rows = list(
        m.AlertDelivery.objects.filter(pk__in=created).values_list("hook__name", "transition_id", "payload")
    )
    assert sorted(name for name, _, _ in rows) == ["ops"] * 4 + ["pd"]
    [(_, transition_id, payload)] = [row for row in rows if row[0] == "pd"]
    assert transition_id == back.pk
    assert payload == {"event_action": "resolve", "dedup_key": f"binding-health/binding/{third.pk}/UDP"}


def test_pagerduty_summary_carries_the_root_cause_and_is_capped(pagerduty, bindings, httpserver):
    [binding, *_] = bindings
    m.TargetGroupBinding.objects.filter(pk=binding.pk).update(name="n" * 240)
    m.Finding.objects.filter(binding=binding).delete()
    m.Finding.objects.create(
        binding=binding, code="UDP_NOT_ALLOWED", severity="critical", protocol="UDP", message="x" * 2000
    )
    m.Finding.objects.create(binding=binding, code="MINOR", severity="info", protocol="", message="minor")
    transition(binding, "reachable", "blocked")
    accept_pagerduty(httpserver)

    deliver_all(alerts.alerts_scan())

    [body] = sent_bodies(httpserver, "/v2/enqueue")
    assert "UDP_NOT_ALLOWED: xxx" in body["payload"]["summary"]
    assert len(body["payload"]["summary"]) <= alerts.PD_SUMMARY_MAX
    assert len(body["payload"]["source"]) <= 255 and len(body["dedup_key"]) <= 255
    assert body["payload"]["custom_details"]["root_cause"].startswith("UDP_NOT_ALLOWED")


def test_pagerduty_shows_a_responder_control_and_format_characters_as_escapes(
    pagerduty, bindings, httpserver
):
    """A bidi override in a name would make the page read another binding's name."""
    [binding, *_] = bindings
    name = "payments\u202eslaved\u202c-dns" + HOSTILE_TEXT
    m.TargetGroupBinding.objects.filter(pk=binding.pk).update(name=name, namespace="ns\u200b")
    transition(binding, "reachable", "blocked")
    accept_pagerduty(httpserver)

    deliver_all(alerts.alerts_scan())

    [body] = sent_bodies(httpserver, "/v2/enqueue")
    shown = body["payload"]
    assert textsafe.visible(name) in shown["summary"] and "\\u202e" in shown["source"]
    assert shown["component"] == textsafe.visible(f"ns\u200b/{name}")
    for text in (shown["summary"], shown["source"], shown["component"], json.dumps(shown["custom_details"])):
        assert not textsafe.UNSAFE.search(text), text
    assert shown["custom_details"]["name"] == textsafe.visible(name)
    # The dedup key is the binding's id: the recovery of the same binding still resolves it.
    assert body["dedup_key"] == f"binding-health/binding/{binding.pk}/UDP"


def test_pagerduty_pages_a_stale_source_as_a_warning(pagerduty, cluster, httpserver):
    m.AlertHook.objects.update(on_stale=True, on_transitions=False)
    m.Cluster.objects.update(
        last_polled_at=timezone.now(), last_success_at=timezone.now() - timedelta(hours=2)
    )
    m.AwsAccount.objects.update(last_polled_at=timezone.now(), last_success_at=timezone.now())
    accept_pagerduty(httpserver)

    deliver_all(alerts.alerts_scan())

    [body] = sent_bodies(httpserver, "/v2/enqueue")
    assert body["event_action"] == "trigger" and body["payload"]["severity"] == "warning"
    assert body["dedup_key"] == "binding-health/cluster/demo/stale"


def test_a_wrong_routing_key_fails_clearly_without_sending_and_other_sinks_still_deliver(
    pagerduty, teams, bindings, httpserver, caplog
):
    """A webhook URL pasted where the routing key belongs: no request, a message naming the field."""
    key_file = pagerduty.url_file
    with open(key_file, "w") as fh:
        fh.write("https://outlook.office.com/webhook/not-a-key")
    transition(bindings[0], "reachable", "blocked")
    httpserver.expect_request("/workflows/teams", method="POST").respond_with_data("", status=202)

    created = alerts.alerts_scan()
    with caplog.at_level("WARNING"):
        results = dict(zip(created, deliver_all(created), strict=True))

    pd_delivery = m.AlertDelivery.objects.get(hook=pagerduty)
    assert results[pd_delivery.pk] == "failed" and pd_delivery.attempts == 1
    assert "routing key is not a PagerDuty integration key" in pd_delivery.last_error
    assert "outlook" not in pd_delivery.last_error and "outlook" not in caplog.text
    assert "hook pd failed" in caplog.text
    assert sent_bodies(httpserver, "/v2/enqueue") == []
    assert m.AlertDelivery.objects.get(hook=teams).status == "sent"


def test_a_routing_key_pagerduty_rejects_is_not_retried_and_says_why(pagerduty, bindings, httpserver):
    transition(bindings[0], "reachable", "blocked")
    httpserver.expect_request("/v2/enqueue").respond_with_json(
        {"status": "invalid event", "message": "Event object is invalid", "errors": ["Invalid routing key"]},
        status=400,
    )

    assert deliver_all(alerts.alerts_scan()) == ["failed"]

    delivery = m.AlertDelivery.objects.get()
    assert delivery.attempts == 1 and len(httpserver.log) == 1
    assert delivery.last_error.startswith("HTTP 400") and "check the routing key" in delivery.last_error


def test_pagerduty_throttling_is_retried(pagerduty, bindings, httpserver):
    transition(bindings[0], "reachable", "blocked")
    httpserver.expect_ordered_request("/v2/enqueue").respond_with_response(Response("slow down", status=429))
    httpserver.expect_ordered_request("/v2/enqueue").respond_with_json(PD_ACCEPTED, status=202)

    assert deliver_all(alerts.alerts_scan()) == ["sent"]
    assert m.AlertDelivery.objects.get().attempts == 2


def test_an_unreachable_pagerduty_endpoint_fails_after_retries(pagerduty, bindings, settings):
    settings.BH_PAGERDUTY_EVENTS_URL = "http://127.0.0.1:9/v2/enqueue"  # nothing listens on 9
    transition(bindings[0], "reachable", "blocked")

    assert deliver_all(alerts.alerts_scan()) == ["failed"]

    delivery = m.AlertDelivery.objects.get()
    assert delivery.attempts == settings.BH_ALERT_MAX_ATTEMPTS
    assert delivery.last_error.startswith("connection failed") and ROUTING_KEY not in delivery.last_error


def test_pagerduty_records_one_delivery_per_event_however_often_it_scans(pagerduty, bindings):
    transition(bindings[0], "reachable", "blocked")

    assert len(alerts.alerts_scan()) == 1
    assert alerts.alerts_scan() == []


def _texts(element):
    """Every text an Adaptive Card element shows, with the element type that shows it."""
    if isinstance(element, dict):
        if "text" in element and isinstance(element["text"], str):
            yield element.get("type"), element["text"]
        for value in element.values():
            yield from _texts(value)
    elif isinstance(element, list):
        for value in element:
            yield from _texts(value)


def test_teams_gets_an_adaptive_card_with_hostile_names_as_plain_text(teams, bindings, httpserver):
    [binding, *_] = bindings
    name = "[click](https://evil.example) **bold** " + HOSTILE_TEXT
    m.TargetGroupBinding.objects.filter(pk=binding.pk).update(name=name)
    transition(binding, "reachable", "blocked")
    httpserver.expect_request("/workflows/teams", method="POST").respond_with_data("", status=202)

    assert deliver_all(alerts.alerts_scan()) == ["sent"]

    [request] = [req for req, _ in httpserver.log]
    assert request.headers["Content-Type"] == "application/json"
    body = json.loads(request.get_data())
    assert body["type"] == "message"
    [attachment] = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    texts = list(_texts(card["body"]))
    # Markdown-rendering elements never carry cluster-supplied text; TextRuns render it verbatim.
    assert {kind for kind, _ in texts} == {"TextRun"}
    # TextRuns show it as plain text; its control characters (ESC, the newline) as escapes.
    assert any(textsafe.visible(name) in text for _, text in texts)
    assert not any(textsafe.UNSAFE.search(text) for _, text in texts)
    assert any("reachable → blocked" in text for _, text in texts)
    assert card["body"][0]["style"] == "attention"


def test_teams_recovery_and_stale_cards(teams, bindings, cluster, httpserver):
    m.AlertHook.objects.update(on_stale=True)
    transition(bindings[0], "blocked", "reachable")
    m.Cluster.objects.update(last_polled_at=timezone.now(), last_success_at=None, last_error="Unauthorized")
    httpserver.expect_request("/workflows/teams").respond_with_data("", status=202)

    assert deliver_all(alerts.alerts_scan()) == ["sent", "sent"]

    styles = sorted(
        b["attachments"][0]["content"]["body"][0]["style"]
        for b in sent_bodies(httpserver, "/workflows/teams")
    )
    assert styles == ["good", "warning"]


def test_a_redirect_from_a_sink_is_not_followed(pagerduty, teams, bindings, httpserver):
    """A 3xx could carry the routing key or card to another host: it is a failed delivery."""
    transition(bindings[0], "reachable", "blocked")
    elsewhere = httpserver.url_for("/elsewhere")
    for path in ("/v2/enqueue", "/workflows/teams"):
        httpserver.expect_request(path).respond_with_response(
            Response("", status=302, headers={"Location": elsewhere})
        )
    httpserver.expect_request("/elsewhere").respond_with_data("ok")

    assert deliver_all(alerts.alerts_scan()) == ["failed", "failed"]
    assert [req.path for req, _ in httpserver.log if req.path == "/elsewhere"] == []


def test_the_admin_shows_why_a_hook_failed(pagerduty, bindings, client, admin_user):
    with open(pagerduty.url_file, "w") as fh:
        fh.write("short<b>")
    transition(bindings[0], "reachable", "blocked")
    deliver_all(alerts.alerts_scan())
    client.force_login(admin_user)

    page = client.get("/admin/bindings/alerthook/").content.decode()

    assert "failed: the routing key is not a PagerDuty integration key" in page
    assert "routing key: file " in page and "short<b>" not in page


def test_sinks_obey_the_webhook_host_allow_list(pagerduty, teams, bindings, settings):
    """PagerDuty's endpoint and Teams' URL go through the one delivery path and its host rule."""
    settings.BH_WEBHOOK_ALLOWED_HOSTS = ["events.pagerduty.com", "*.logic.azure.com"]
    transition(bindings[0], "reachable", "blocked")

    assert deliver_all(alerts.alerts_scan()) == ["failed", "failed"]

    errors = set(m.AlertDelivery.objects.values_list("hook__name", "last_error"))
    assert errors == {
        ("pd", "the hook's host 'localhost' is not in BH_WEBHOOK_ALLOWED_HOSTS"),
        ("teams", "the hook's host 'localhost' is not in BH_WEBHOOK_ALLOWED_HOSTS"),
    }


def test_a_routing_key_file_outside_the_credential_directories_is_refused(
    pagerduty, bindings, settings, tmp_path
):
    outside = tmp_path / "elsewhere-key"
    outside.write_text(ROUTING_KEY)
    m.AlertHook.objects.filter(pk=pagerduty.pk).update(url_file=str(outside))
    transition(bindings[0], "reachable", "blocked")

    assert deliver_all(alerts.alerts_scan()) == ["failed"]

    error = m.AlertDelivery.objects.get().last_error
    assert "routing key file" in error and "BH_CREDENTIALS_DIRS" in error and ROUTING_KEY not in error
