"""`GET /api/v1/bindings` built by PostgreSQL (`bindings.api.list_sql`) answers what the Python
path (`bindings.api.list_python`, SQLite's) answers: same bytes, same pages; and the per-binding
JSON the triggers keep (`BindingListing`, migration 0011) follows every kind of write."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from unittest.mock import patch

import pytest
import time_machine
from django.db import DatabaseError, connection
from django.http import QueryDict
from django.test import RequestFactory

from bindings import freshness
from bindings import models as m
from bindings.api import list_sql
from bindings.api.list_python import list_generic
from bindings.api.pagination import BINDING_KEY_TYPES, decode_cursor
from bindings.api.params import BindingFilters

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the database-built list is PostgreSQL's"),
]

HOSTILE = 'q" b\\ t\t n\n \x07 / <b>'
NOW = datetime(2026, 12, 6, 12, 0, 0, 123456, tzinfo=UTC)


def _binding(cluster: m.Cluster, name: str, **fields) -> m.TargetGroupBinding:
    defaults = {
        "uid": f"uid-{name}",
        "namespace": "apps",
        "api_version": "elbv2.k8s.aws/v1beta1",
        "target_group_arn": f"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/{name}/x",
        "target_type": "ip",
        "target_group_protocol": "TCP_UDP",
    }
    return m.TargetGroupBinding.objects.create(cluster=cluster, name=name, **(defaults | fields))


def _analyse(binding: m.TargetGroupBinding, at: datetime, verdicts: dict, findings: list) -> None:
    m.BindingResult.objects.create(
        binding=binding,
        analyzed_at=at,
        changed_at=at - timedelta(minutes=3),
        worst_verdict=max(verdicts.values(), key=m.VERDICT_RANK.get, default="unknown"),
        max_severity="critical" if findings else "",
        healthy=2,
        unhealthy=1,
        other=0,
        digest="x",
        data={},
    )
    for protocol, verdict in verdicts.items():
        m.ProtocolVerdict.objects.create(
            binding=binding,
            protocol=protocol,
            port=None if protocol == "TCP" else 53,
            verdict=verdict,
            targets_total=3,
            targets_admitted=1,
        )
    for code, severity, protocol in findings:
        m.Finding.objects.create(
            binding=binding, code=code, severity=severity, protocol=protocol, message="m"
        )


@pytest.fixture
def world(cluster, aws_account):
    """Two clusters (one fresh with its account, one never polled and without an account), and
    bindings in every state the list shows: analysed or not, several verdicts and findings, a port
    missing, timestamps with and without a fraction, hostile and non-ASCII strings."""
    m.Cluster.objects.filter(pk=cluster.pk).update(
        last_success_at=NOW - timedelta(seconds=42, microseconds=999_999), poll_interval_seconds=60
    )
    m.AwsAccount.objects.filter(pk=aws_account.pk).update(last_success_at=NOW - timedelta(minutes=2))
    lonely = m.Cluster.objects.create(name="lonely ünïcode", connection="url", api_url="http://127.0.0.1:9")
    a = _binding(cluster, "a-both")
    _analyse(
        a,
        NOW.replace(microsecond=0),
        {"UDP": "blocked", "TCP": "reachable"},
        [
            ("TRAFFIC_BLOCKED", "critical", "UDP"),
            ("HEALTH_CHECK_MASKS_TRAFFIC", "warning", "UDP"),
            ("B", "info", ""),
        ],
    )
    _binding(cluster, "b-new")  # synced, not analysed yet
    # Control characters stay out of the keys a cursor carries (it refuses them): uid and type.
    c = _binding(cluster, "c-hostile", namespace='q" b\\ / <b>', uid=HOSTILE, target_type=HOSTILE)
    _analyse(c, NOW - timedelta(microseconds=500), {"UDP": "partial"}, [("X", "warning", "UDP")])
    for i in range(4):
        d = _binding(lonely, f"d-{i}", namespace="other")
        _analyse(d, NOW - timedelta(days=i, microseconds=999_999), {"UDP": "unknown"}, [])
    return cluster


def _pages(build, query: str, now: datetime = NOW) -> list[bytes]:
    """Every page of `query` through `build` (list_sql.list_response or list_generic)."""
    factory = RequestFactory()
    pages, url = [], "/api/v1/bindings"
    data: QueryDict | None = QueryDict(query)
    while url:
        request = factory.get(url, data)
        data = None  # the next link carries the query
        filters = BindingFilters(**request.GET.dict())
        keys = decode_cursor(filters.cursor, BINDING_KEY_TYPES) if filters.cursor else None
        response = build(request, filters, keys, now)
        assert response.status_code == 200 and response["Content-Type"] == "application/json"
        pages.append(response.content)
        url = json.loads(response.content)["next"]
    return pages


def _assert_same(fast: list[bytes], slow: list[bytes]) -> None:
    """The same bytes: pages, values, key order, and non-ASCII characters escaped (`\\u00fc`)."""
    assert len(fast) == len(slow)
    for f, s in zip(fast, slow, strict=True):
        assert f == s


QUERIES = [
    "",
    "limit=1",
    "limit=2",
    "limit=200",
    "verdict=blocked",
    "verdict=unknown",
    "verdict=unknown&protocol=UDP",
    "protocol=TCP&verdict=reachable",
    "code=TRAFFIC_BLOCKED&severity=critical",
    "severity=warning&limit=1",
    "cluster=demo&limit=2",
    "cluster=lonely ünïcode",
    "namespace=other&limit=3",
    "stale=true&limit=2",
    "stale=false",
    "code=NOPE",
]


@pytest.mark.parametrize("query", QUERIES)
def test_the_database_builds_every_page_the_python_path_builds(world, query):
    _assert_same(_pages(list_sql.list_response, query), _pages(list_generic, query))


def test_every_state_reaches_the_comparison(world):
    items = [i for page in _pages(list_sql.list_response, "") for i in json.loads(page)["items"]]

    assert len(items) == 7
    assert {i["verdict"] for i in items} == {"blocked", "unknown", "partial"}
    assert "lonely ünïcode" in {i["cluster"] for i in items}  # non-ASCII, sent escaped
    assert any(i["analyzed_at"] is None for i in items) and any(i["data_age_seconds"] is None for i in items)
    assert {i["stale"] for i in items} == {True, False}
    assert any(p["port"] is None for i in items for p in i["protocols"])
    assert any("." not in (i["analyzed_at"] or ".") for i in items)  # a whole second: no fraction


@pytest.mark.parametrize("seconds_later", [0, 1, 179, 180, 181, 3600])
def test_age_and_staleness_follow_the_clock_as_freshness_says(world, seconds_later):
    now = NOW + timedelta(seconds=seconds_later, microseconds=1)

    _assert_same(_pages(list_sql.list_response, "", now), _pages(list_generic, "", now))


@pytest.mark.parametrize(
    ("age", "interval"),
    [
        (None, 60),
        (timedelta(seconds=180), 60),  # exactly at the limit: still fresh
        (timedelta(seconds=180, microseconds=1), 60),
        (timedelta(days=9), 0),  # no cadence: never stale by age
        (timedelta(days=9), -5),
        (timedelta(seconds=-30), 60),  # a clock ahead of ours
    ],
)
def test_the_sql_staleness_is_freshness_is_stale(age, interval):
    last = None if age is None else NOW - age
    sql = freshness.stale_sql("%s::timestamptz", "%s::integer", "%s::timestamptz")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {sql}",  # noqa: S608 - placeholders only
            [last, interval, NOW, last, interval],
        )
        (in_sql,) = cursor.fetchone()

    assert in_sql is freshness.is_stale(last, interval, NOW)


def _stored(binding_id: int) -> str | None:
    row = m.BindingListing.objects.filter(binding_id=binding_id).values_list("json", flat=True).first()
    with connection.cursor() as cursor:
        cursor.execute("SELECT json FROM bh_listing_rows(ARRAY[%s]::bigint[])", [binding_id])
        fresh = cursor.fetchone()
    assert row == (fresh[0] if fresh else None), "the stored item lags its rows"
    return row


def test_the_stored_item_follows_every_write(world):
    binding = m.TargetGroupBinding.objects.get(name="b-new")
    assert '"verdict": "unknown"' in _stored(binding.pk)

    _analyse(binding, NOW, {"UDP": "blocked"}, [("TRAFFIC_BLOCKED", "critical", "UDP")])
    assert '"verdict": "blocked"' in _stored(binding.pk)

    m.ProtocolVerdict.objects.filter(binding=binding).update(verdict="reachable", port=5353)
    assert '"port": 5353, "verdict": "reachable"' in _stored(binding.pk)

    m.Finding.objects.filter(binding=binding).delete()
    assert '"findings": []' in _stored(binding.pk)

    m.TargetGroupBinding.objects.filter(pk=binding.pk).update(namespace="moved")
    assert '"namespace": "moved"' in _stored(binding.pk)

    m.TargetGroupBinding.objects.filter(pk=binding.pk).update(events=["seen"])  # not shown: kept
    m.BindingResult.objects.filter(binding=binding).delete()
    assert '"verdict": "unknown"' in _stored(binding.pk)

    binding.delete()
    assert _stored(binding.pk) is None


def test_a_bulk_upsert_of_results_refreshes_each_binding_once_per_statement(world):
    ids = list(m.TargetGroupBinding.objects.values_list("pk", flat=True))
    m.BindingResult.objects.bulk_create(
        [
            m.BindingResult(
                binding_id=pk, analyzed_at=NOW, changed_at=NOW, worst_verdict="partial", digest="y", data={}
            )
            for pk in ids
        ],
        update_conflicts=True,
        unique_fields=["binding"],
        update_fields=["analyzed_at", "changed_at", "worst_verdict", "digest"],
    )

    assert all('"verdict": "partial"' in _stored(pk) for pk in ids)


def test_a_missing_stored_item_is_built_on_the_spot(world):
    m.BindingListing.objects.all().delete()  # as if the triggers had been off during a restore

    _assert_same(_pages(list_sql.list_response, ""), _pages(list_generic, ""))


def test_it_asks_again_unprepared_behind_a_pooler_that_loses_prepared_statements(world):
    import psycopg

    lost = DatabaseError("prepared statement does not exist")
    lost.__cause__ = psycopg.errors.InvalidSqlStatementName()
    expected = _pages(list_generic, "")
    with (
        patch.object(list_sql, "_fetch_prepared", side_effect=lost),
        patch.dict(list_sql._prepared, {"enabled": True}),
        patch.object(connection, "in_atomic_block", False),
    ):
        _assert_same(_pages(list_sql.list_response, ""), expected)
        assert list_sql._prepared["enabled"] is False


def _prepared_statements() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements")
        return cursor.fetchone()[0]


def test_the_list_is_one_query_prepared_once_per_connection(world, client, alice, django_assert_num_queries):
    client.force_login(alice)
    with django_assert_num_queries(3):  # session, user, the page
        assert client.get("/api/v1/bindings").status_code == 200
    prepared = _prepared_statements()
    for _ in range(3):
        client.get("/api/v1/bindings")

    assert prepared >= 1 and _prepared_statements() == prepared


@pytest.mark.parametrize("query", ["", "?limit=200", "?verdict=blocked&protocol=UDP"])
def test_the_prepared_page_keeps_one_plan_instead_of_planning_every_request(world, client, alice, query):
    """PostgreSQL plans a prepared statement anew on each run until its generic plan costs no more
    than the custom ones; a page size passed as a parameter kept it planning forever (the
    planning cost more than the page). First page and next pages both settle on a kept plan."""
    # The planner's costs follow the table's statistics: a real-sized list, analysed.
    m.TargetGroupBinding.objects.bulk_create(
        m.TargetGroupBinding(
            cluster=world,
            uid=f"uid-bulk-{i}",
            namespace=f"ns-{i % 40}",
            name=f"svc-{i:05d}",
            api_version="elbv2.k8s.aws/v1beta1",
            target_group_arn=f"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/b{i}/x",
            target_type="ip",
        )
        for i in range(5000)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    client.force_login(alice)
    paged = f"/api/v1/bindings?{query.lstrip('?')}&limit=1"
    with time_machine.travel(NOW, tick=False):  # the same data age on every page
        first = client.get(f"/api/v1/bindings{query}").json()
        for _ in range(8):  # PostgreSQL tries five custom plans before it compares
            assert client.get(f"/api/v1/bindings{query}").json() == first
            assert client.get(paged).status_code == 200
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE %s",
            ["%string_agg%"],
        )
        plans = cursor.fetchall()
    assert plans and all(generic >= 3 and custom <= 5 for generic, custom in plans), plans


def test_the_listing_refresh_is_never_jit_compiled():
    """Before the tables have statistics, a refresh's estimate passed `jit_above_cost` and each
    trigger spent ~300 ms compiling a few milliseconds of work (a first poll of 10,000 bindings:
    55 s of database CPU instead of 4 s). The functions carry `jit = off` themselves."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT proname, proconfig FROM pg_proc "
            "WHERE proname IN ('bh_listing_refresh', 'bh_listing_json')"
        )
        config = dict(cursor.fetchall())
        assert config == {"bh_listing_refresh": ["jit=off"], "bh_listing_json": ["jit=off"]}
        # Whatever the session says: the setting is the function's own.
        cursor.execute("SET LOCAL jit = on")
        cursor.execute("SET LOCAL jit_above_cost = 0")
        cursor.execute("SELECT bh_listing_json(-1)")
        assert cursor.fetchone() == (None,)
        cursor.execute("SHOW jit")
        assert cursor.fetchone() == ("on",)


def test_the_page_size_is_never_text_from_a_request():
    with pytest.raises(ValueError, match="page size"):
        list_sql._page_sql("SELECT 1", False, "50; DROP TABLE x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="page size"):
        list_sql._page_sql("SELECT 1", False, 10_000)


@pytest.mark.django_db(transaction=True)
def test_a_connection_the_database_dropped_is_replaced_without_a_health_check_round_trip(world):
    expected = _pages(list_generic, "")
    connection.ensure_connection()
    connection.connection.close()  # as a database restart would leave it
    connection.health_check_enabled, connection.health_check_done = True, False  # a new request

    _assert_same(_pages(list_sql.list_response, ""), expected)
    assert connection.health_check_done is True


def test_the_page_query_stands_in_for_the_health_check(world):
    connection.health_check_enabled, connection.health_check_done = True, False

    with patch.object(connection, "is_usable", side_effect=AssertionError("a SELECT 1 round trip")):
        _assert_same(_pages(list_sql.list_response, ""), _pages(list_generic, ""))


def test_non_ascii_is_escaped_as_json_dumps_escapes_it():
    """A bidi override, a zero-width space, a BMP letter and an emoji (a surrogate pair)."""
    value = {"name": "evil\u202egpj.exe \u200b ü 🦆", "n": 1}
    raw = json.dumps(value, ensure_ascii=False)

    assert list_sql._ascii_escaped(raw) == json.dumps(value)
