"""`GET /bindings` (the list), `/bindings/{id}` (one result in full), its fix and its history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Query, Router
from ninja.params import Path

from bindings import models as m
from bindings.api import list_python, list_sql
from bindings.api.pagination import BINDING_KEY_TYPES, MAX_ID, decode_cursor
from bindings.api.params import BindingFilters, FixParams, HistoryParams
from bindings.api.problems import ERRORS
from bindings.api.schemas import BindingDetail, BindingPage, HistoryOut
from bindings.api.serializers import BINDING_URL, binding_freshness
from bindings.fixes import render as fix_render

router = Router()


def _result_of(binding: m.TargetGroupBinding) -> m.BindingResult | None:
    try:
        return binding.result
    except m.BindingResult.DoesNotExist:
        return None  # synced, not analysed yet


@router.get("/bindings", response={200: BindingPage, **ERRORS}, operation_id="list_bindings")
def list_bindings(request: HttpRequest, filters: Query[BindingFilters]) -> HttpResponse:
    """Bindings, filtered, in a stable order (cluster, namespace, name, id), cursor-paginated.

    Queries on PostgreSQL: one, the page's JSON built by the database (`list_sql`); with
    `stale=`, the clusters first (1). Elsewhere three (`list_python`). Filters are EXISTS
    subqueries in the same query.
    """
    now = timezone.now()
    keys = decode_cursor(filters.cursor, BINDING_KEY_TYPES) if filters.cursor else None
    if connection.vendor == "postgresql":
        return list_sql.list_response(request, filters, keys, now)
    return list_python.list_generic(request, filters, keys, now)


BindingId = Path(..., ge=1, le=MAX_ID)


def _get_binding_for_detail(binding_id: int) -> m.TargetGroupBinding:
    binding = (
        m.TargetGroupBinding.objects.select_related("cluster__aws_account", "result")
        .defer("raw", "events", "annotations", "networking")
        .filter(pk=binding_id)
        .first()
    )
    if binding is None:
        raise Http404(f"No binding with id {binding_id}.")
    return binding


@router.get("/bindings/{binding_id}", response={200: BindingDetail, **ERRORS}, operation_id="get_binding")
def get_binding(request: HttpRequest, binding_id: int = BindingId) -> dict[str, Any]:
    """One binding's full result: per-protocol verdicts with reasons and targets, the health check,
    findings with evidence, data age. Queries: the binding joined with cluster, account, result (1);
    its verdicts and findings come from the stored result, not from more queries."""
    now = timezone.now()
    binding = _get_binding_for_detail(binding_id)
    result = _result_of(binding)
    data = result.data if result and isinstance(result.data, dict) else {}
    item = _binding_dict_detail(binding, result, data, now)
    return item


def _binding_dict_detail(
    binding: m.TargetGroupBinding, result: m.BindingResult | None, data: dict[str, Any], now: datetime
) -> dict[str, Any]:
    age, stale = binding_freshness(binding.cluster, now)
    protocols = [p for p in data.get("protocols") or [] if isinstance(p, dict)]
    findings = [f for f in data.get("findings") or [] if isinstance(f, dict)]
    sources = [binding.cluster] + ([binding.cluster.aws_account] if binding.cluster.aws_account_id else [])
    return {
        "id": binding.pk,
        "url": f"{BINDING_URL}{binding.pk}",
        "cluster": binding.cluster.name,
        "namespace": binding.namespace,
        "name": binding.name,
        "uid": binding.uid,
        "target_group_arn": binding.target_group_arn,
        "target_type": binding.target_type,
        "target_group_protocol": binding.target_group_protocol,
        "verdict": result.worst_verdict if result else "unknown",
        "max_severity": result.max_severity if result else "",
        "protocols": protocols,
        "findings": findings,
        "health": {
            "healthy": result.healthy if result else 0,
            "unhealthy": result.unhealthy if result else 0,
            "other": result.other if result else 0,
        },
        "health_check": data.get("health_check") if isinstance(data.get("health_check"), dict) else None,
        "analyzed_at": result.analyzed_at if result else None,
        "changed_at": result.changed_at if result else None,
        "data_age_seconds": age,
        "stale": stale,
        "problems": binding.problems if isinstance(binding.problems, list) else [],
        "has_fix": bool(data.get("fix")),
        "sources": [
            {
                "kind": "cluster" if isinstance(s, m.Cluster) else "account",
                "name": s.name,
                "last_success_at": s.last_success_at,
                "last_error": s.last_error,
                "stale": s.is_stale,
            }
            for s in sources
        ],
    }


_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


def _wants_yaml(request: HttpRequest, fmt: str | None) -> bool:
    if fmt is not None:
        return fmt == "yaml"
    accept = request.headers.get("Accept", "")
    return any(t in accept for t in _YAML_TYPES)


@router.get(
    "/bindings/{binding_id}/fix",
    response={200: dict[str, Any], **ERRORS},
    operation_id="binding_fix",
)
def binding_fix(
    request: HttpRequest, params: Query[FixParams], binding_id: int = BindingId
) -> HttpResponse | dict[str, Any]:
    """The generated fix: JSON (the fix object), or the manifest as YAML with
    `Accept: application/yaml` or `?format=yaml`. 404 problem when the binding has no fix.
    Queries: the binding and its result (1)."""
    binding = _get_binding_for_detail(binding_id)
    result = _result_of(binding)
    fix = result.data.get("fix") if result and isinstance(result.data, dict) else None
    if not isinstance(fix, dict) or not fix:
        raise Http404(f"Binding {binding_id} has no fix: nothing to change, or not analysed yet.")
    if _wants_yaml(request, params.format):
        text = fix_render.stored_manifest_yaml(fix) or fix_render.to_yaml(fix)
        response = HttpResponse(text, content_type="application/yaml; charset=utf-8")
        response["Content-Disposition"] = f'inline; filename="tgb-fix-{binding.pk}.yaml"'
        response["Vary"] = "Accept"
        return response
    return fix


@router.get(
    "/bindings/{binding_id}/history", response={200: HistoryOut, **ERRORS}, operation_id="binding_history"
)
def binding_history(
    request: HttpRequest, params: Query[HistoryParams], binding_id: int = BindingId
) -> dict[str, Any]:
    """Verdict history (samples) and transitions, newest `limit` of each, oldest first.
    Queries: the binding exists (1), samples (1), transitions (1)."""
    if not m.TargetGroupBinding.objects.filter(pk=binding_id).exists():
        raise Http404(f"No binding with id {binding_id}.")
    samples = list(
        m.HistorySample.objects.filter(binding_id=binding_id).order_by("-at", "-pk")[: params.limit]
    )
    transitions = list(
        m.VerdictTransition.objects.filter(binding_id=binding_id).order_by("-at", "-pk")[: params.limit]
    )
    return {
        "binding": binding_id,
        "samples": [
            {
                "at": s.at,
                "verdicts": s.verdicts if isinstance(s.verdicts, dict) else {},
                "healthy": s.healthy,
                "unhealthy": s.unhealthy,
                "other": s.other,
            }
            for s in reversed(samples)
        ],
        "transitions": [
            {"at": t.at, "protocol": t.protocol, "old": t.old, "new": t.new} for t in reversed(transitions)
        ],
    }
