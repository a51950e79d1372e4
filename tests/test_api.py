"""The JSON API: every endpoint, filters, pagination, problems, constant queries, hostile strings."""

from __future__ import annotations

import json
from datetime import timedelta
from unittest.mock import patch

import pytest
import yaml
from django.db import connection
from django.utils import timezone

from bindings import models as m
from tests.factories import HOSTILE_TEXT, make_bindings, make_token, seed_scenario

pytestmark = pytest.mark.django_db


# --- fixtures: objects --------------------------------------------------------------------------


@pytest.fixture
def seeded(cluster):
    """The dns-udp-blocked scenario, polled and analysed: coredns-udp blocked, coredns-tcp fine."""
    seed_scenario(cluster)
    return cluster


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture
def read_token(alice):
    return make_token(alice, "read")


def _get(client, url, token=None, **extra):
    if token:
        extra["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client.get(url, **extra)


def _udp(client):
    items = client.get("/api/v1/bindings?protocol=UDP").json()["items"]
    return next(i for i in items if i["name"] == "coredns-udp")


# --- sources ------------------------------------------------------------------------------------


def test_it_lists_clusters_with_their_poll_status(alice_client, seeded):
    response = alice_client.get("/api/v1/clusters")

    assert response.status_code == 200
    [item] = response.json()
    assert item["name"] == "demo" and item["aws_account"] == "prod"
    assert item["bindings"] == 2 and item["stale"] is False and item["data_age_seconds"] is not None


def test_it_lists_accounts_with_their_last_poll(alice_client, aws_account):
    m.PollRun.objects.create(account=aws_account, status="failed", error="boom", api_calls={"DescribeX": 3})
    newest = m.PollRun.objects.create(
        account=aws_account, status="success", api_calls={"DescribeTargetHealth": 2}
    )

    [item] = alice_client.get("/api/v1/accounts").json()

    assert item["name"] == "prod" and item["account_id"] == "123456789012" and item["region"] == "us-east-1"
    assert item["last_poll"]["id"] == newest.pk and item["last_poll"]["api_calls"] == {
        "DescribeTargetHealth": 2
    }
    assert item["stale"] is True and item["data_age_seconds"] is None  # never succeeded
    assert "role_arn" not in item and "external_id" not in item


# --- bindings: list, filters, pagination ----------------------------------------------------------


def test_it_lists_bindings_with_verdicts_and_findings(alice_client, seeded):
    response = alice_client.get("/api/v1/bindings")

    assert response.status_code == 200
    body = response.json()
    by_name = {i["name"]: i for i in body["items"]}
    assert set(by_name) == {"coredns-udp", "coredns-tcp"}
    udp = by_name["coredns-udp"]
    assert udp["verdict"] == "blocked" and udp["max_severity"] == "critical"
    assert [(p["protocol"], p["verdict"]) for p in udp["protocols"]] == [("UDP", "blocked")]
    assert {"TRAFFIC_BLOCKED", "HEALTH_CHECK_MASKS_TRAFFIC"} <= {f["code"] for f in udp["findings"]}
    assert udp["url"] == f"/api/v1/bindings/{udp['id']}"
    assert body["next_cursor"] is None and body["next"] is None


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("verdict=blocked", {"coredns-udp"}),
        ("verdict=reachable", {"coredns-tcp"}),
        ("protocol=TCP", {"coredns-tcp"}),
        ("protocol=UDP&verdict=blocked", {"coredns-udp"}),
        ("protocol=TCP&verdict=blocked", set()),
        ("code=HEALTH_CHECK_MASKS_TRAFFIC", {"coredns-udp"}),
        ("severity=critical", {"coredns-udp"}),
        ("code=NO_SUCH_CODE", set()),
        ("cluster=demo", {"coredns-udp", "coredns-tcp"}),
        ("cluster=other", set()),
        ("namespace=kube-system", {"coredns-udp", "coredns-tcp"}),
        ("namespace=default", set()),
        ("stale=false", {"coredns-udp", "coredns-tcp"}),
        ("stale=true", set()),
    ],
)
def test_it_filters_bindings(alice_client, seeded, query, names):
    response = alice_client.get(f"/api/v1/bindings?{query}")

    assert response.status_code == 200, response.content
    assert {i["name"] for i in response.json()["items"]} == names


def test_it_filters_stale_bindings_by_their_sources(alice_client, seeded):
    m.AwsAccount.objects.update(last_success_at=timezone.now() - timedelta(hours=1))

    stale = alice_client.get("/api/v1/bindings?stale=true").json()["items"]
    fresh = alice_client.get("/api/v1/bindings?stale=false").json()["items"]

    assert len(stale) == 2 and all(i["stale"] for i in stale) and fresh == []


@pytest.mark.parametrize(
    "query",
    [
        "verdict=green",
        "protocol=SCTP",
        "severity=fatal",
        "limit=0",
        "limit=201",
        "limit=x",
        "stale=maybe",
        # NUL would reach PostgreSQL, which refuses it (a 500 before): a 400 names the field.
        "cluster=demo%00",
        "namespace=%00",
        "code=TRAFFIC_BLOCKED%00",
        "cluster=a%0Ab",
    ],
)
def test_it_rejects_bad_filters_with_a_400_problem(alice_client, seeded, query):
    response = alice_client.get(f"/api/v1/bindings?{query}")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 400 and body["title"] == "Bad Request" and body["type"] == "about:blank"
    assert body["detail"] and body["errors"]


@pytest.mark.parametrize("body", [{"cluster": "demo\u0000"}, {"account": "a\u0000b"}, {"cluster": "x\ny"}])
def test_it_rejects_a_poll_request_naming_a_control_character_with_a_400(client, seeded, admin_user, body):
    token = make_token(admin_user, "write")

    response = client.post(
        "/api/v1/polls", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )

    assert response.status_code == 400 and response["Content-Type"] == "application/problem+json"


def _cursor(values) -> str:
    import base64
    import json

    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "values",
    [
        [1, "default\u0000", "x", 1],  # NUL would reach PostgreSQL
        [1, "\ud800", "x", 1],  # a lone surrogate cannot be encoded for the driver
        [2**70, "default", "x", 1],  # beyond a 64-bit key
        [1, "default", "x", -(2**70)],
    ],
)
def test_it_rejects_a_forged_cursor_with_values_the_database_cannot_hold(alice_client, seeded, values):
    response = alice_client.get(f"/api/v1/bindings?cursor={_cursor(values)}")

    assert response.status_code == 400 and response["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize("path", ["/api/v1/findings", "/api/v1/polls"])
def test_it_rejects_an_id_cursor_beyond_64_bits(alice_client, seeded, path):
    assert alice_client.get(f"{path}?cursor={_cursor([2**70])}").status_code == 400


@pytest.mark.parametrize("cursor", ["!!!", "bm90IGpzb24", "WzEsMl0", "eyJhIjogMX0"])
def test_it_rejects_a_forged_cursor(alice_client, seeded, cursor):
    response = alice_client.get(f"/api/v1/bindings?cursor={cursor}")

    assert response.status_code == 400 and "cursor" in response.json()["detail"]


def test_it_pages_through_bindings_in_a_stable_order_without_gaps(alice_client, cluster):
    make_bindings(cluster, 7)
    seen, url, pages = [], "/api/v1/bindings?limit=3&namespace=apps", 0
    while url:
        body = alice_client.get(url).json()
        seen += [i["name"] for i in body["items"]]
        url, pages = body["next"], pages + 1

    assert pages == 3
    assert seen == [f"svc-{i:04d}" for i in range(7)]


@pytest.mark.parametrize(
    ("count", "limit", "has_next"), [(3, 3, False), (4, 3, True), (0, 1, False), (1, 1, False)]
)
def test_it_reports_a_next_page_only_when_one_exists(alice_client, cluster, count, limit, has_next):
    make_bindings(cluster, count)

    body = alice_client.get(f"/api/v1/bindings?limit={limit}").json()

    assert len(body["items"]) == min(count, limit)
    assert (body["next_cursor"] is not None) is has_next
    if has_next:
        rest = alice_client.get(f"/api/v1/bindings?limit={limit}&cursor={body['next_cursor']}").json()
        assert len(rest["items"]) == count - limit and rest["next_cursor"] is None


def test_it_keeps_filters_in_the_next_link(alice_client, cluster):
    make_bindings(cluster, 3)

    body = alice_client.get("/api/v1/bindings?limit=1&verdict=blocked").json()

    assert "verdict=blocked" in body["next"] and "cursor=" in body["next"]


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?limit=3",
        "?cursor=abc&limit=3",
        "?namespace=a%20b%26c&cluster=%C3%BC&x=1&x=2",
        "?cursor=a&cursor=b&a=1",
    ],
)
def test_the_next_link_is_the_query_with_the_new_cursor_in_place(rf, query):
    from bindings.api.pagination import next_link

    request = rf.get(f"/api/v1/bindings{query}")
    params = request.GET.copy()
    params["cursor"] = "c-_1"

    assert next_link(request, "c-_1") == f"/api/v1/bindings?{params.urlencode()}"


# The list's own queries: one on PostgreSQL (the page's JSON built by the database), three
# elsewhere. tests/test_api_list_sql.py holds the two ways to the same output.
_LIST_QUERIES = 1 if connection.vendor == "postgresql" else 3


def test_it_lists_bindings_in_the_same_number_of_queries_for_1_and_20(
    client, cluster, read_token, django_assert_num_queries
):
    make_bindings(cluster, 1, prefix="one")
    m.ApiToken.objects.update(last_used_at=timezone.now())  # no last_used_at write this minute
    # 1 token joined with its user, 2 the page (on PostgreSQL all of it; elsewhere the bindings
    # joined with cluster/account/result, then 3 verdicts and 4 findings).
    with django_assert_num_queries(1 + _LIST_QUERIES):
        one = _get(client, "/api/v1/bindings", read_token)
    make_bindings(cluster, 19, prefix="more")
    with django_assert_num_queries(_LIST_QUERIES):  # the token was verified a moment ago: from memory
        twenty = _get(client, "/api/v1/bindings", read_token)

    assert len(one.json()["items"]) == 1 and len(twenty.json()["items"]) == 20


def test_it_lists_bindings_for_a_session_in_constant_queries(
    alice_client, cluster, django_assert_num_queries
):
    make_bindings(cluster, 20)
    m.Cluster.objects.update(last_success_at=timezone.now())
    m.AwsAccount.objects.update(last_success_at=timezone.now())
    # 1 session, 2 user, 3 clusters (the stale filter needs every cluster's freshness), then the
    # page (one query on PostgreSQL, three elsewhere).
    with django_assert_num_queries(3 + _LIST_QUERIES):
        response = alice_client.get("/api/v1/bindings?stale=false&verdict=blocked&code=TRAFFIC_BLOCKED")

    assert len(response.json()["items"]) == 20


# --- one binding ------------------------------------------------------------------------------


def test_it_shows_a_bindings_full_result(alice_client, seeded, django_assert_num_queries):
    udp = _udp(alice_client)

    # 1 session, 2 user, 3 the binding with cluster, account and result.
    with django_assert_num_queries(3):
        response = alice_client.get(udp["url"])

    assert response.status_code == 200
    body = response.json()
    [protocol] = body["protocols"]
    assert (
        protocol["verdict"] == "blocked" and protocol["reasons"] and protocol["client_ip_preserved"] is True
    )
    assert len(protocol["targets"]) == 2 and protocol["targets"][0]["admitted"] is False
    assert body["health_check"]["healthy"] == 2 and body["health_check"]["protocol"] == "TCP"
    codes = {f["code"] for f in body["findings"]}
    assert "HEALTH_CHECK_MASKS_TRAFFIC" in codes and all("message" in f for f in body["findings"])
    assert body["data_age_seconds"] is not None and body["stale"] is False
    assert {s["kind"] for s in body["sources"]} == {"cluster", "account"}


@pytest.mark.parametrize(
    "url", ["/api/v1/bindings/999999", "/api/v1/bindings/999999/history", "/api/v1/bindings/999999/fix"]
)
def test_it_answers_404_problems_for_unknown_bindings(alice_client, url):
    response = alice_client.get(url)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["title"] == "Not Found"


def test_it_rejects_a_non_numeric_binding_id(alice_client):
    assert alice_client.get("/api/v1/bindings/abc").status_code == 400
    assert alice_client.get(f"/api/v1/bindings/{2**64}").status_code == 400


def test_it_shows_a_binding_not_analysed_yet(alice_client, cluster):
    b = m.TargetGroupBinding.objects.create(
        cluster=cluster, uid="u", namespace="n", name="fresh", api_version="v1"
    )

    body = alice_client.get(f"/api/v1/bindings/{b.pk}").json()

    assert body["verdict"] == "unknown" and body["protocols"] == [] and body["analyzed_at"] is None
    assert alice_client.get(f"/api/v1/bindings/{b.pk}/fix").status_code == 404


# --- fix ----------------------------------------------------------------------------------------

MANIFEST = f"""apiVersion: elbv2.k8s.aws/v1beta1
kind: TargetGroupBinding
metadata:
  name: coredns-udp
  annotations:
    note: {json.dumps(HOSTILE_TEXT)}
"""


@pytest.fixture
def fixed(seeded):
    """coredns-udp with a generated fix in its stored result (as bindings/fixes/ writes)."""
    result = m.BindingResult.objects.get(binding__name="coredns-udp")
    result.data["fix"] = {"manifestYaml": MANIFEST, "patch": "kubectl patch …", "note": HOSTILE_TEXT}
    result.save()
    return result.binding


def test_it_returns_the_fix_as_json(alice_client, fixed):
    response = alice_client.get(f"/api/v1/bindings/{fixed.pk}/fix")

    assert response.status_code == 200 and response["Content-Type"].startswith("application/json")
    assert response.json()["manifestYaml"] == MANIFEST and response.json()["note"] == HOSTILE_TEXT
    assert b"<script>" not in response.content or b"\\u001b" in response.content
    assert b"\x1b" not in response.content and b"\n" not in response.content.strip()


@pytest.mark.parametrize("how", [{"HTTP_ACCEPT": "application/yaml"}, {"QUERY_STRING": "format=yaml"}])
def test_it_returns_the_fix_manifest_as_yaml(alice_client, fixed, how):
    response = alice_client.get(f"/api/v1/bindings/{fixed.pk}/fix", **how)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/yaml")
    assert response.content.decode() == MANIFEST
    assert yaml.safe_load(response.content)["metadata"]["annotations"]["note"] == HOSTILE_TEXT


def test_it_prefers_the_format_parameter_over_accept(alice_client, fixed):
    response = alice_client.get(
        f"/api/v1/bindings/{fixed.pk}/fix?format=json", HTTP_ACCEPT="application/yaml"
    )

    assert response["Content-Type"].startswith("application/json")


def test_it_dumps_a_fix_without_manifest_as_yaml_that_round_trips(alice_client, fixed):
    result = fixed.result
    result.data["fix"] = {"commands": [HOSTILE_TEXT]}
    result.save()

    response = alice_client.get(f"/api/v1/bindings/{fixed.pk}/fix?format=yaml")

    assert yaml.safe_load(response.content) == {"commands": [HOSTILE_TEXT]}
    assert b"\x1b" not in response.content  # YAML escapes control characters


@pytest.mark.parametrize("fix", ["missing", None, {}])
def test_it_answers_404_when_there_is_no_fix(alice_client, seeded, fix):
    result = m.BindingResult.objects.get(binding__name="coredns-tcp")
    if fix != "missing":
        result.data["fix"] = fix
        result.save()

    response = alice_client.get(f"/api/v1/bindings/{result.binding_id}/fix")

    assert response.status_code == 404 and "no fix" in response.json()["detail"]


# --- history, findings, hostile strings -----------------------------------------------------------


def test_it_shows_history_and_transitions_oldest_first(alice_client, seeded, django_assert_num_queries):
    udp = _udp(alice_client)
    b = m.TargetGroupBinding.objects.get(pk=udp["id"])
    later = timezone.now() + timedelta(minutes=5)
    m.HistorySample.objects.create(binding=b, at=later, verdicts={"UDP": "reachable"}, healthy=2)
    m.VerdictTransition.objects.create(binding=b, protocol="UDP", at=later, old="blocked", new="reachable")

    # 1 session, 2 user, 3 binding exists, 4 samples, 5 transitions.
    with django_assert_num_queries(5):
        body = alice_client.get(f"{udp['url']}/history").json()

    assert [s["verdicts"]["UDP"] for s in body["samples"]] == ["blocked", "reachable"]
    assert [(t["old"], t["new"]) for t in body["transitions"]] == [("", "blocked"), ("blocked", "reachable")]
    limited = alice_client.get(f"{udp['url']}/history?limit=1").json()
    assert [s["verdicts"]["UDP"] for s in limited["samples"]] == ["reachable"]


def test_it_lists_and_filters_findings(alice_client, seeded, django_assert_num_queries):
    # 1 session, 2 user, 3 findings joined with binding and cluster.
    with django_assert_num_queries(3):
        everything = alice_client.get("/api/v1/findings").json()
    critical = alice_client.get("/api/v1/findings?severity=critical&protocol=UDP").json()
    paged = alice_client.get("/api/v1/findings?limit=1").json()

    assert {f["binding"]["name"] for f in everything["items"]} >= {"coredns-udp"}
    assert critical["items"] and all(f["severity"] == "critical" for f in critical["items"])
    assert len(paged["items"]) == 1 and paged["next_cursor"]
    second = alice_client.get(paged["next"]).json()
    assert second["items"][0]["id"] > paged["items"][0]["id"]
    assert alice_client.get("/api/v1/findings?code=NOPE").json()["items"] == []


def test_it_returns_hostile_strings_intact_and_json_escaped(alice_client, cluster):
    [b] = make_bindings(cluster, 1)
    m.TargetGroupBinding.objects.filter(pk=b.pk).update(name=HOSTILE_TEXT)
    m.Finding.objects.filter(binding=b).update(message=HOSTILE_TEXT)

    listed = alice_client.get("/api/v1/bindings")
    findings = alice_client.get("/api/v1/findings")

    assert listed.json()["items"][0]["name"] == HOSTILE_TEXT
    assert findings.json()["items"][0]["message"] == HOSTILE_TEXT
    for raw in (listed.content, findings.content):
        assert b"\x1b" not in raw and b"\n" not in raw
        assert listed["Content-Type"].startswith("application/json")


# --- polls ----------------------------------------------------------------------------------------


def test_it_lists_polls_newest_first_with_filters(alice_client, cluster, aws_account):
    m.PollRun.objects.create(cluster=cluster, status="success", duration_ms=120, api_calls={"list": 6})
    m.PollRun.objects.create(account=aws_account, status="failed", error="throttled")

    body = alice_client.get("/api/v1/polls").json()
    failed = alice_client.get("/api/v1/polls?status=failed").json()
    of_cluster = alice_client.get("/api/v1/polls?cluster=demo").json()

    assert [i["kind"] for i in body["items"]] == ["account", "cluster"]
    assert body["items"][1]["source"] == "demo" and body["items"][1]["api_calls"] == {"list": 6}
    assert [i["error"] for i in failed["items"]] == ["throttled"]
    assert [i["kind"] for i in of_cluster["items"]] == ["cluster"]


def test_it_pages_polls(alice_client, cluster):
    for _ in range(3):
        m.PollRun.objects.create(cluster=cluster, status="success")

    first = alice_client.get("/api/v1/polls?limit=2").json()
    second = alice_client.get(first["next"]).json()

    assert len(first["items"]) == 2 and len(second["items"]) == 1 and second["next_cursor"] is None
    assert first["items"][1]["id"] > second["items"][0]["id"]


@pytest.mark.parametrize(
    ("body", "task"), [({"cluster": "demo"}, "poll_cluster_task"), ({"account": "prod"}, "poll_account_task")]
)
def test_it_enqueues_a_poll_with_a_write_token(
    client, alice, cluster, body, task, django_capture_on_commit_callbacks
):
    from django.contrib.auth.models import Permission

    # A token acts with at most its owner's rights: Alice may poll clusters and accounts.
    alice.user_permissions.add(*Permission.objects.filter(codename__in=("poll_cluster", "poll_awsaccount")))
    token = make_token(alice, "write")

    with patch(f"bindings.tasks.{task}.delay") as delay, django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/polls", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
        )

    assert response.status_code == 202, response.content
    assert response.json()["status"] == "queued"
    source_pk = cluster.pk if "cluster" in body else cluster.aws_account_id
    delay.assert_called_once_with(source_pk, "api")


def test_it_enqueues_a_poll_for_a_session_user_with_permission(client, alice, cluster):
    from django.contrib.auth.models import Permission

    alice.user_permissions.add(Permission.objects.get(codename="poll_cluster"))
    client.force_login(alice)

    with patch("bindings.tasks.poll_cluster_task.delay_on_commit") as delay:
        response = client.post("/api/v1/polls", {"cluster": "demo"}, content_type="application/json")

    assert response.status_code == 202
    delay.assert_called_once_with(cluster.pk, "api")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({}, 400),
        ({"cluster": "demo", "account": "prod"}, 400),
        ({"cluster": "nope"}, 404),
        ({"cluster": 5}, 400),
    ],
)
def test_it_rejects_bad_poll_requests(client, admin_user, cluster, body, status):
    client.force_login(admin_user)

    with patch("bindings.tasks.poll_cluster_task.delay_on_commit") as delay:
        response = client.post("/api/v1/polls", body, content_type="application/json")

    assert response.status_code == status and response["Content-Type"] == "application/problem+json"
    delay.assert_not_called()


def test_it_refuses_to_poll_a_disabled_source(client, admin_user, cluster):
    client.force_login(admin_user)
    m.Cluster.objects.update(enabled=False)

    response = client.post("/api/v1/polls", {"cluster": "demo"}, content_type="application/json")

    assert response.status_code == 409 and response.json()["status"] == 409


def test_it_rejects_malformed_json_with_a_problem(client, admin_user, cluster):
    client.force_login(admin_user)

    response = client.post("/api/v1/polls", "{not json", content_type="application/json")

    assert response.status_code == 400 and response["Content-Type"] == "application/problem+json"


# --- the /api/ namespace ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["/api/v1/nope", "/api/v2/bindings", "/api/", "/api/v1/", "/api/v1/bindings/"]
)
def test_it_answers_unknown_api_paths_with_a_404_problem(alice_client, url):
    response = alice_client.get(url)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert set(response.json()) >= {"type", "title", "status", "detail"}


def test_it_answers_a_wrong_method_with_a_405_problem(alice_client):
    response = alice_client.delete("/api/v1/bindings")

    assert response.status_code == 405
    assert response["Content-Type"] == "application/problem+json"
    assert response["Allow"] == "GET"


def test_it_publishes_an_openapi_document_for_every_endpoint(client):
    response = client.get("/api/v1/openapi.json")

    assert response.status_code == 200
    doc = response.json()
    assert set(doc["paths"]) == {
        "/api/v1/clusters",
        "/api/v1/accounts",
        "/api/v1/bindings",
        "/api/v1/bindings/{binding_id}",
        "/api/v1/bindings/{binding_id}/fix",
        "/api/v1/bindings/{binding_id}/history",
        "/api/v1/findings",
        "/api/v1/polls",
        "/api/v1/whoami",
    }
    fix = doc["paths"]["/api/v1/bindings/{binding_id}/fix"]["get"]["responses"]
    assert set(fix["200"]["content"]) == {"application/json", "application/yaml"}
    assert set(fix["404"]["content"]) == {"application/problem+json"}
    assert {"TokenAuth", "BrowserSessionAuth"} <= set(doc["components"]["securitySchemes"])


def test_the_openapi_document_answers_only_reads(client):
    response = client.post("/api/v1/openapi.json", {}, content_type="application/json")

    assert response.status_code == 405 and response["Allow"] == "GET, HEAD"
    assert response["Content-Type"] == "application/problem+json"
    assert client.head("/api/v1/openapi.json").status_code == 200


# --- the OpenAPI document matches the responses (schemathesis) ----------------------------------

import schemathesis  # noqa: E402 - grouped with the only test that needs it
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.specs.openapi.checks import positive_data_acceptance  # noqa: E402


@pytest.fixture
def wsgi_app():
    """The real WSGI app, as gunicorn serves it, minus the per-request connection close: the test
    database lives in one transaction (Django's own test client does the same)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    from dashboard.wsgi import application

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield application
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(wsgi_app):
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", wsgi_app)


openapi = schemathesis.pytest.from_fixture("api_schema")


@openapi.parametrize()
@settings(
    max_examples=12,  # ~1 s per operation: bounded so the whole run stays well under a minute
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_it_answers_as_its_openapi_document_says(case, seeded, admin_user):
    token = make_token(admin_user, "write") if not m.ApiToken.objects.exists() else None
    if token is None:
        token = test_it_answers_as_its_openapi_document_says.token  # type: ignore[attr-defined]
    test_it_answers_as_its_openapi_document_says.token = token  # type: ignore[attr-defined]
    with (
        patch("bindings.tasks.poll_cluster_task.delay_on_commit"),
        patch("bindings.tasks.poll_account_task.delay_on_commit"),
    ):
        # An opaque cursor is schema-valid as any url-safe string, yet only ours decode: a 400 for
        # a made-up cursor is right, so "valid data accepted" cannot hold for that one parameter.
        excluded = [positive_data_acceptance] if "cursor" in (case.query or {}) else []
        case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, excluded_checks=excluded)
