"""API authentication: sessions for browsers, bearer tokens for scripts, problems for refusals."""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta
from unittest.mock import patch

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from bindings import models as m
from bindings.api.auth import token_authenticate
from tests.factories import make_token

pytestmark = pytest.mark.django_db


def _bearer(token):
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def _assert_problem(response, status):
    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["type"] and body["title"] and body["detail"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"HTTP_AUTHORIZATION": "Bearer bh_not-a-real-token"},
        {"HTTP_AUTHORIZATION": "Bearer "},
        {"HTTP_AUTHORIZATION": "Basic YWxpY2U6cGFzcw=="},
        {"HTTP_AUTHORIZATION": "Bearer something-else"},
    ],
)
def test_it_answers_401_to_requests_without_valid_credentials(client, headers):
    response = client.get("/api/v1/bindings", **headers)

    _assert_problem(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_it_accepts_a_live_token(client, alice):
    token = make_token(alice)

    assert client.get("/api/v1/clusters", **_bearer(token)).status_code == 200


@pytest.mark.parametrize(
    "fields",
    [{"revoked": True}, {"expires_at": timezone.now() - timedelta(seconds=1)}],
    ids=["revoked", "expired"],
)
def test_it_refuses_revoked_and_expired_tokens(client, alice, fields):
    token = make_token(alice, **fields)

    _assert_problem(client.get("/api/v1/clusters", **_bearer(token)), 401)


def test_it_accepts_a_token_until_it_expires(client, alice):
    token = make_token(alice, expires_at=timezone.now() + timedelta(hours=1))

    assert client.get("/api/v1/clusters", **_bearer(token)).status_code == 200
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        _assert_problem(client.get("/api/v1/clusters", **_bearer(token)), 401)


def test_it_refuses_the_token_of_a_deactivated_user(client, alice):
    token = make_token(alice)
    alice.is_active = False
    alice.save()

    _assert_problem(client.get("/api/v1/clusters", **_bearer(token)), 401)


def test_it_does_not_fall_back_to_the_session_when_a_bad_token_is_sent(client, alice):
    client.force_login(alice)

    _assert_problem(client.get("/api/v1/clusters", HTTP_AUTHORIZATION="Bearer bh_wrong"), 401)


def test_it_forbids_polls_with_a_read_only_token(client, alice, cluster):
    token = make_token(alice, "read")

    with patch("bindings.tasks.poll_cluster_task.delay_on_commit") as delay:
        response = client.post(
            "/api/v1/polls", {"cluster": "demo"}, content_type="application/json", **_bearer(token)
        )

    _assert_problem(response, 403)
    delay.assert_not_called()


def test_it_forbids_polls_to_a_session_user_without_permission(client, alice, cluster):
    client.force_login(alice)

    with patch("bindings.tasks.poll_cluster_task.delay_on_commit") as delay:
        response = client.post("/api/v1/polls", {"cluster": "demo"}, content_type="application/json")

    _assert_problem(response, 403)
    delay.assert_not_called()


def test_it_checks_csrf_for_session_posts(admin_user, cluster):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(admin_user)

    with patch("bindings.tasks.poll_cluster_task.delay_on_commit") as delay:
        response = browser.post("/api/v1/polls", {"cluster": "demo"}, content_type="application/json")

    _assert_problem(response, 403)
    delay.assert_not_called()


def test_it_needs_no_csrf_token_with_a_bearer_token(alice, cluster):
    script = Client(enforce_csrf_checks=True)
    alice.user_permissions.add(Permission.objects.get(codename="poll_cluster"))
    token = make_token(alice, "write")

    with patch("bindings.tasks.poll_cluster_task.delay_on_commit"):
        response = script.post(
            "/api/v1/polls", {"cluster": "demo"}, content_type="application/json", **_bearer(token)
        )

    assert response.status_code == 202


def test_it_records_last_use_at_most_once_a_minute(client, alice):
    token = make_token(alice)
    start = timezone.now()

    with time_machine.travel(start, tick=False):
        client.get("/api/v1/clusters", **_bearer(token))
    first = m.ApiToken.objects.get().last_used_at
    with time_machine.travel(start + timedelta(seconds=30), tick=False):
        client.get("/api/v1/clusters", **_bearer(token))
    unchanged = m.ApiToken.objects.get().last_used_at
    with time_machine.travel(start + timedelta(seconds=61), tick=False):
        client.get("/api/v1/clusters", **_bearer(token))
    later = m.ApiToken.objects.get().last_used_at

    assert first == unchanged == start
    assert later == start + timedelta(seconds=61)


def test_it_writes_last_use_without_an_extra_query_within_the_minute(
    alice, django_assert_num_queries, settings
):
    settings.BH_API_TOKEN_CACHE_SECONDS = 0
    token = make_token(alice)
    token_authenticate(token)

    with django_assert_num_queries(1):  # the token joined with its user; no UPDATE
        assert token_authenticate(token) is not None


def test_it_answers_a_token_verified_seconds_ago_from_memory(alice, django_assert_num_queries):
    token = make_token(alice)
    first = token_authenticate(token)

    with django_assert_num_queries(0):
        again = token_authenticate(token)

    assert again is not None and again.pk == first.pk and again.user.username == "alice"
    assert again is not first and again.user is not first.user  # no shared mutable objects


def test_a_revocation_here_takes_effect_at_once(alice):
    token = make_token(alice)
    assert token_authenticate(token) is not None
    api_token = m.ApiToken.objects.get()

    api_token.revoked = True
    api_token.save()

    assert token_authenticate(token) is None


def test_a_deactivated_user_loses_access_at_once(alice):
    token = make_token(alice)
    assert token_authenticate(token) is not None

    alice.is_active = False
    alice.save()

    assert token_authenticate(token) is None


def test_a_revocation_by_another_process_takes_effect_within_the_cache_time(alice, settings):
    token = make_token(alice)
    start = timezone.now()
    assert token_authenticate(token, now=start) is not None

    m.ApiToken.objects.update(revoked=True)  # no signal here: as if another process did it

    assert token_authenticate(token, now=start + timedelta(seconds=1)) is not None
    later = start + timedelta(seconds=settings.BH_API_TOKEN_CACHE_SECONDS)
    assert token_authenticate(token, now=later) is None


def test_an_expiry_is_exact_even_from_memory(alice):
    start = timezone.now()
    token = make_token(alice, expires_at=start + timedelta(seconds=2))
    assert token_authenticate(token, now=start) is not None

    assert token_authenticate(token, now=start + timedelta(seconds=2)) is None


def test_it_never_logs_tokens(client, alice, caplog, settings):
    settings.DEBUG = True  # ninja's stock bearer auth logs unexpected headers under DEBUG
    good = make_token(alice, "read")
    bad = "bh_" + "x" * 43
    caplog.set_level(logging.DEBUG)

    client.get("/api/v1/clusters", **_bearer(good))
    client.get("/api/v1/clusters", **_bearer(bad))
    client.get("/api/v1/clusters", HTTP_AUTHORIZATION=f"Token {good}")
    client.post("/api/v1/polls", {"cluster": "x"}, content_type="application/json", **_bearer(good))
    client.get("/api/v1/nope", **_bearer(good))

    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert good not in logged and bad not in logged and good[:20] not in logged


# --- the admin issues tokens --------------------------------------------------------------------


def test_it_issues_a_token_in_the_admin_and_shows_it_once(client, admin_user, alice):
    client.force_login(admin_user)

    response = client.post(
        "/admin/bindings/apitoken/add/",
        {"name": "ci gate", "user": alice.pk, "scope": "write", "expires_at_0": "", "expires_at_1": ""},
        follow=True,
    )

    assert response.status_code == 200
    [message] = [str(msg) for msg in response.context["messages"] if "<code>" in str(msg)]
    token = message.split("<code>")[1].split("</code>")[0]
    stored = m.ApiToken.objects.get()
    assert stored.digest == hashlib.sha256(token.encode()).hexdigest()
    assert (
        token.startswith(stored.prefix)
        and len(stored.prefix) < len(token)
        and token not in str(m.ApiToken.objects.values().get())
    )
    assert stored.scope == "write" and stored.user == alice and stored.expires_at is None
    again = client.get(f"/admin/bindings/apitoken/{stored.pk}/change/")
    assert token not in again.content.decode()
    assert client.get("/api/v1/clusters", **_bearer(token)).status_code == 200


def test_it_lists_tokens_and_alert_admin_pages(client, admin_user, alice):
    client.force_login(admin_user)
    make_token(alice)
    hook = m.AlertHook.objects.create(name="ops", url_env="BH_TEST_HOOK")
    m.AlertDelivery.objects.create(hook=hook, event_key="k")

    for url in [
        "/admin/bindings/apitoken/",
        "/admin/bindings/apitoken/add/",
        "/admin/bindings/alerthook/",
        f"/admin/bindings/alerthook/{hook.pk}/change/",
        "/admin/bindings/alertdelivery/",
    ]:
        assert client.get(url).status_code == 200, url
    assert client.get("/admin/bindings/alertdelivery/add/").status_code == 403


# --- whoami: authentication and nothing else ------------------------------------------------------


@pytest.mark.parametrize("scope", ["read", "write"])
def test_whoami_names_the_tokens_user_and_scope(client, alice, scope, django_assert_max_num_queries):
    token = make_token(alice, scope=scope)
    response = client.get("/api/v1/whoami", **_bearer(token))
    assert response.status_code == 200
    assert response.json() == {"username": alice.get_username(), "scope": scope}
    # Verified seconds ago: answered from memory, no query at all.
    with django_assert_max_num_queries(0):
        assert client.get("/api/v1/whoami", **_bearer(token)).json()["scope"] == scope


def test_whoami_names_the_session_user(client, alice):
    client.force_login(alice)
    assert client.get("/api/v1/whoami").json() == {"username": alice.get_username(), "scope": "session"}


@pytest.mark.parametrize("fields", [{"revoked": True}, {"expires_at": timezone.now() - timedelta(seconds=1)}])
def test_whoami_refuses_what_every_endpoint_refuses(client, alice, fields):
    _assert_problem(client.get("/api/v1/whoami"), 401)
    _assert_problem(client.get("/api/v1/whoami", **_bearer(make_token(alice, **fields))), 401)
