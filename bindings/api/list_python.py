"""`GET /api/v1/bindings` on any database: rows read by the ORM, serialised in Python.

SQLite's path (embedded mode), and the reference `list_sql` (PostgreSQL) is held to: the same
items, keys, order and bytes (tests/test_api_list_sql.py). Three queries per page.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse, JsonResponse

from bindings import freshness
from bindings import models as m
from bindings.api.pagination import BINDING_ORDER, after, encode_cursor, next_link
from bindings.api.params import BindingFilters
from bindings.api.serializers import BINDING_URL, age_seconds
from bindings.store.querysets import filter_bindings

# Columns of the list, read as plain values: building model instances (binding, cluster, account,
# result, verdicts, findings) cost ~30 ms per page of 50 in the benchmark; tuples cost a tenth.
_LIST_COLUMNS = (
    "id",
    "cluster_id",
    "namespace",
    "name",
    "uid",
    "target_group_arn",
    "target_type",
    "target_group_protocol",
    "cluster__name",
    "cluster__poll_interval_seconds",
    "cluster__last_success_at",
    "cluster__aws_account_id",
    "cluster__aws_account__poll_interval_seconds",
    "cluster__aws_account__last_success_at",
    "result__worst_verdict",
    "result__max_severity",
    "result__healthy",
    "result__unhealthy",
    "result__other",
    "result__analyzed_at",
    "result__changed_at",
)


def _list_rows(rows: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """Serialise list rows with their verdicts and findings (one query each, by binding id).
    The PostgreSQL path (`list_sql`) builds the same items in the database."""
    ids = [r["id"] for r in rows]
    verdicts: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    findings: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    if ids:
        for v in (
            m.ProtocolVerdict.objects.filter(binding_id__in=ids)
            .order_by("binding_id", "protocol")
            .values("binding_id", "protocol", "port", "verdict", "targets_total", "targets_admitted")
        ):
            verdicts[v.pop("binding_id")].append(v)
        for f in (
            m.Finding.objects.filter(binding_id__in=ids)
            .order_by("binding_id", "code", "protocol", "pk")
            .values("binding_id", "code", "severity", "protocol")
        ):
            findings[f.pop("binding_id")].append(f)
    out = []
    # A page's rows come from a few clusters: their freshness is worked out once per cluster.
    fresh: dict[int, tuple[int | None, bool]] = {}
    for r in rows:
        found = fresh.get(r["cluster_id"])
        if found is None:
            successes = [r["cluster__last_success_at"]]
            stale = freshness.is_stale(
                r["cluster__last_success_at"], r["cluster__poll_interval_seconds"], now
            )
            if r["cluster__aws_account_id"]:
                successes.append(r["cluster__aws_account__last_success_at"])
                stale = stale or freshness.is_stale(
                    r["cluster__aws_account__last_success_at"],
                    r["cluster__aws_account__poll_interval_seconds"],
                    now,
                )
            age = None if None in successes else age_seconds(min(successes), now)
            found = fresh[r["cluster_id"]] = (age, stale)
        analysed = r["result__analyzed_at"] is not None
        out.append(
            {
                "id": r["id"],
                "url": f"{BINDING_URL}{r['id']}",
                "cluster": r["cluster__name"],
                "namespace": r["namespace"],
                "name": r["name"],
                "uid": r["uid"],
                "target_group_arn": r["target_group_arn"],
                "target_type": r["target_type"],
                "target_group_protocol": r["target_group_protocol"],
                "verdict": r["result__worst_verdict"] if analysed else "unknown",
                "max_severity": r["result__max_severity"] if analysed else "",
                "protocols": verdicts[r["id"]],
                "findings": findings[r["id"]],
                "health": {
                    "healthy": r["result__healthy"] or 0,
                    "unhealthy": r["result__unhealthy"] or 0,
                    "other": r["result__other"] or 0,
                },
                "analyzed_at": r["result__analyzed_at"],
                "changed_at": r["result__changed_at"],
                "data_age_seconds": found[0],
                "stale": found[1],
            }
        )
    return out


def list_generic(
    request: HttpRequest, filters: BindingFilters, keys: list[Any] | None, now: datetime
) -> HttpResponse:
    """The list from rows serialised in Python: any database (SQLite in embedded mode).

    Queries: bindings joined with cluster, account and result (1), their verdicts (1) and findings
    (1), the last two skipped on an empty page; with `stale=`, the clusters first (1).
    """
    qs = filter_bindings(
        m.TargetGroupBinding.objects.order_by(*BINDING_ORDER).values(*_LIST_COLUMNS),
        **filters.queryset_filters(),
    )
    if keys is not None:
        qs = qs.filter(after(BINDING_ORDER, keys))
    # One extra row tells whether a next page exists without a COUNT.
    rows = list(qs[: filters.limit + 1])
    cursor = None
    if len(rows) > filters.limit:
        rows = rows[: filters.limit]
        last = rows[-1]
        cursor = encode_cursor([last["cluster_id"], last["namespace"], last["name"], last["id"]])
    page = {"items": _list_rows(rows, now), "next_cursor": cursor, "next": next_link(request, cursor)}
    # Skips ninja's per-field re-validation of what was just built (a third of its CPU time at 50
    # rows); the schemathesis test holds this output to BindingPage instead.
    return JsonResponse(page, encoder=DjangoJSONEncoder)
