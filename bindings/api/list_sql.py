"""`GET /api/v1/bindings` on PostgreSQL: the page's JSON, built by the database in one query.

Each binding's item waits ready in `BindingListing` (kept by triggers, migration 0011); the
query filters and pages the bindings, puts id, url and cluster name before each stored item and
the data age and staleness (`bindings.freshness`, judged at the request's `now`) after it, and
joins the page into one text: Python handles one row whatever the page size, and writes the
bytes as they come. The other database vendors take `list_python`, which builds the same JSON
from rows in Python; tests hold the two to the same output.

The filters stay `bindings.store.querysets.filter_bindings` (one definition for the UI and the
API): the ORM compiles them, and their SQL is kept per set of filter values, so a request in the
steady state compiles nothing. The keyset cursor and the limit are parameters of the outer query.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import psycopg
from django.core.exceptions import EmptyResultSet
from django.db import DatabaseError, InterfaceError, OperationalError, connection
from django.http import HttpRequest, HttpResponse

from bindings import freshness
from bindings import models as m
from bindings.api.pagination import BINDING_ORDER, MAX_PAGE_SIZE, encode_cursor, next_link
from bindings.api.serializers import BINDING_URL
from bindings.store.querysets import filter_bindings

_TABLES = {
    "cluster": m.Cluster._meta.db_table,
    "account": m.AwsAccount._meta.db_table,
    "listing": m.BindingListing._meta.db_table,
}


# The list's order and cursor (`pagination.BINDING_ORDER`). A row comparison is the condition
# `pagination.after` builds for the ORM over these keys (none is NULL), and one range of the
# index on them.
def _keys(alias: str) -> str:
    return ", ".join(f"{alias}.{key}" for key in BINDING_ORDER)


_AFTER = f"WHERE ({_keys('f')}) > ({', '.join('%s' for _ in BINDING_ORDER)})"


# A listing row missing (triggers off during a restore, say) is built on the spot, never skipped.
_MISSING = "bh_listing_json(p.id)"


def _cluster_sql() -> str:
    """Per cluster: the text an item has between its url and its stored part (`head`) and after it
    (`tail`). Data age and staleness belong to the cluster and the clock, so they are worked out
    once per cluster, not once per binding."""
    # The binding's data is as old as the older of its cluster's and its account's last success.
    age = (
        "CASE WHEN c.last_success_at IS NULL OR (c.aws_account_id IS NOT NULL AND a.last_success_at IS NULL) "
        "THEN 'null' ELSE greatest(0, trunc(extract(epoch FROM args.now - "
        "least(c.last_success_at, a.last_success_at))))::bigint::text END"
    )
    cluster_stale = freshness.stale_sql("c.last_success_at", "c.poll_interval_seconds", "args.now")
    account_stale = freshness.stale_sql("a.last_success_at", "a.poll_interval_seconds", "args.now")
    stale = f"({cluster_stale} OR (c.aws_account_id IS NOT NULL AND {account_stale}))"
    # Table names and fixed expressions only: nothing from a request.
    return (
        f"""SELECT c.id, '", "cluster": ' || to_json(c.name)::text AS head, """  # noqa: S608
        f"""', "data_age_seconds": ' || {age} || ', "stale": ' """
        f"""|| CASE WHEN {stale} THEN 'true' ELSE 'false' END || '}}' AS tail """
        f"FROM {_TABLES['cluster']} c CROSS JOIN args "
        f"LEFT JOIN {_TABLES['account']} a ON a.id = c.aws_account_id"
    )


# One item's JSON: {id, url, cluster, <stored item>, data_age_seconds, stale}.
_ITEM = (
    """'{"id": ' || p.id::text || ', "url": "' || args.url || p.id::text"""
    f" || cs.head || coalesce(l.json, {_MISSING}) || cs.tail"
)


def _page_sql(filtered: str, paged: bool, limit: int) -> str:
    """The page query around the filters' SQL. Parameters, in order: now, limit, url prefix, the
    filters' own, the cursor's four keys (when `paged`).

    `limit + 1` is written into the text, not passed: with a parameter there PostgreSQL cannot
    cost the prepared statement's generic plan (it guesses a tenth of the table), so it plans the
    query anew on every request, which costs more than running it. With the number in the text
    the generic plan is the index walk and is kept (5 custom plans, then generic ones).
    """
    if not isinstance(limit, int) or not 0 < limit <= MAX_PAGE_SIZE:  # never text from a request
        raise ValueError(f"page size out of range: {limit!r}")
    last = "FILTER (WHERE p.rn = args.lim)"
    # `filtered` is the ORM's SQL with placeholders; every value is a parameter.
    return f"""
WITH args AS (SELECT %s::timestamptz AS now, %s::integer AS lim, %s::text AS url),
page AS (
    SELECT q.*, row_number() OVER (ORDER BY {_keys("q")}) AS rn
    FROM (
        SELECT {_keys("f")} FROM ({filtered}) f
        {_AFTER if paged else ""}
        ORDER BY {_keys("f")}
        LIMIT {limit + 1:d}
    ) q
),
cs AS MATERIALIZED ({_cluster_sql()})
SELECT count(*),
    string_agg({_ITEM}, ', ' ORDER BY p.rn) FILTER (WHERE p.rn <= args.lim),
    {", ".join(f"min(p.{key}) {last}" for key in BINDING_ORDER)}
FROM page p
CROSS JOIN args
JOIN cs ON cs.id = p.cluster_id
LEFT JOIN {_TABLES["listing"]} l ON l.binding_id = p.id
"""  # noqa: S608


# Page SQL and the filters' parameters per (filter values, paged, page size): a client pages
# through a few filter sets, so this stays small; bounded all the same, as the values come from requests.
_COMPILED: dict[tuple[Any, ...], tuple[str, tuple[Any, ...]]] = {}
_MAX_COMPILED = 256


def _compiled(filters: Any, paged: bool) -> tuple[str, tuple[Any, ...]] | None:
    """The page SQL and the filters' parameters; None when the filters match nothing for sure
    (`stale=true` with no stale cluster: Django compiles no query for that)."""
    values = filters.queryset_filters()
    key = (*values.values(), paged, filters.limit)
    # With `stale=`, its clusters are read now (`filter_bindings`): never kept.
    found = _COMPILED.get(key) if filters.stale is None else None
    if found is not None:
        return found
    qs = filter_bindings(m.TargetGroupBinding.objects.order_by(), **values).values(*BINDING_ORDER)
    try:
        sql, params = qs.query.sql_with_params()
    except EmptyResultSet:
        return None
    found = (_page_sql(sql, paged, filters.limit), tuple(params))
    if filters.stale is None:
        if len(_COMPILED) >= _MAX_COMPILED:
            _COMPILED.clear()
        _COMPILED[key] = found
    return found


class _PreparedCursor(psycopg.Cursor):
    """A server-side binding cursor whose statements are prepared on the connection."""

    def execute(self, query: Any, params: Any = None, *, prepare: bool | None = True, **kwargs: Any) -> Any:
        return super().execute(query, params, prepare=prepare, **kwargs)


# psycopg prepares nothing on a connection whose prepare_threshold is None (Django's default, kept
# for connection poolers): this number lets the explicit prepare above through and still never
# prepares anything automatically. Django's own cursors bind client-side and never prepare.
_EXPLICIT_ONLY = 1 << 30
_prepared = {"enabled": True}


def _prepared_cursor() -> Any:
    """A cursor on Django's connection, opened as `connection.cursor()` opens one but for the
    health check (`_fetch_prepared` does that), wrapped as Django wraps its own (errors, execute
    wrappers, the query log tests count)."""
    connection.ensure_connection()
    raw = connection.connection
    if raw.prepare_threshold is None:
        raw.prepare_threshold = _EXPLICIT_ONLY
    cursor = _PreparedCursor(raw)
    if connection.queries_logged:
        return connection.make_debug_cursor(cursor)
    return connection.make_cursor(cursor)


def _fetch_prepared(sql: str, params: tuple[Any, ...]) -> tuple[Any, ...]:
    """The page's row, the page query serving as the connection's health check.

    With CONN_HEALTH_CHECKS Django sends `SELECT 1` before a request's first query, so that a
    connection a database restart or failover killed is replaced instead of failing the request.
    Here that round trip (a third of the list's waits) is skipped: when the page query fails on a
    connection that turns out dead, the connection is replaced and the page asked for once more,
    which is what the check would have done.
    """
    checked = not connection.health_check_enabled or connection.health_check_done
    try:
        with _prepared_cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
    except (OperationalError, InterfaceError):
        if checked or connection.in_atomic_block or connection.is_usable():
            raise
        connection.close()
        with _prepared_cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
    connection.health_check_done = True
    return row


def _fetch(sql: str, params: tuple[Any, ...]) -> tuple[Any, ...]:
    """The page's one row. Prepared: the statement is parsed and planned once per connection, not
    per request (half of the database's CPU for a page, and the client-side quoting of ~3 KB of
    SQL). Behind a pooler that cannot keep prepared statements (PgBouncer in transaction mode
    before 1.21), the first failure turns preparing off for the process and the page is asked
    for again, unprepared."""
    if _prepared["enabled"]:
        try:
            return _fetch_prepared(sql, params)
        except DatabaseError as exc:
            if not isinstance(exc.__cause__, _POOLER_ERRORS) or connection.in_atomic_block:
                raise
            _prepared["enabled"] = False
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


_POOLER_ERRORS = (psycopg.errors.InvalidSqlStatementName, psycopg.errors.DuplicatePreparedStatement)


def list_response(request: HttpRequest, filters: Any, keys: list[Any] | None, now: datetime) -> HttpResponse:
    """The page after `keys` (a decoded cursor, or None for the first) as a JSON response."""
    compiled = _compiled(filters, keys is not None)
    limit = filters.limit
    count, items, last = 0, None, []
    if compiled is not None:
        sql, params = compiled
        count, items, *last = _fetch(sql, (now, limit, BINDING_URL, *params, *(keys or ())))
    cursor_token = encode_cursor(last) if count > limit else None
    body = (
        f'{{"items": [{items or ""}], "next_cursor": {json.dumps(cursor_token)}, '
        f'"next": {json.dumps(next_link(request, cursor_token))}}}'
    )
    return HttpResponse(body if body.isascii() else _ascii_escaped(body), content_type="application/json")


_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code > 0xFFFF:  # outside the BMP: a surrogate pair, as JSON (and json.dumps) spells it
        code -= 0x10000
        return f"\\u{0xD800 | (code >> 10):04x}\\u{0xDC00 | (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def _ascii_escaped(body: str) -> str:
    """The body as json.dumps writes it (ensure_ascii): PostgreSQL writes strings in UTF-8, and a
    raw bidirectional override or zero-width character from a Kubernetes name must not reach a
    terminal running `curl` unescaped. Only strings hold non-ASCII, so escaping every such
    character keeps the JSON valid and makes the bytes the Python path's."""
    return _NON_ASCII.sub(_escape, body)
