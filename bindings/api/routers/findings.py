"""`GET /findings`: every binding's findings, cursor-paginated."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Query, Router

from bindings import models as m
from bindings.api.pagination import next_link, pk_page
from bindings.api.params import FindingFilters
from bindings.api.problems import ERRORS
from bindings.api.schemas import FindingPage

router = Router()


@router.get("/findings", response={200: FindingPage, **ERRORS}, operation_id="list_findings")
def list_findings(request: HttpRequest, filters: Query[FindingFilters]) -> dict[str, Any]:
    """Findings of every binding, newest binding state first by id, cursor-paginated.
    Queries: findings joined with binding and cluster (1)."""
    qs = m.Finding.objects.select_related("binding__cluster").only(
        "id",
        "code",
        "severity",
        "protocol",
        "message",
        "evidence",
        "binding__id",
        "binding__namespace",
        "binding__name",
        "binding__cluster__name",
    )
    if filters.cluster is not None:
        qs = qs.filter(binding__cluster__name=filters.cluster)
    if filters.namespace is not None:
        qs = qs.filter(binding__namespace=filters.namespace)
    if filters.protocol is not None:
        qs = qs.filter(protocol=filters.protocol)
    if filters.code is not None:
        qs = qs.filter(code=filters.code)
    if filters.severity is not None:
        qs = qs.filter(severity=filters.severity)
    rows, cursor = pk_page(qs, filters.cursor, filters.limit)
    return {
        "items": [
            {
                "id": f.pk,
                "binding": {
                    "id": f.binding.pk,
                    "cluster": f.binding.cluster.name,
                    "namespace": f.binding.namespace,
                    "name": f.binding.name,
                },
                "code": f.code,
                "severity": f.severity,
                "protocol": f.protocol,
                "message": f.message,
                "evidence": f.evidence if isinstance(f.evidence, dict) else {},
            }
            for f in rows
        ],
        "next_cursor": cursor,
        "next": next_link(request, cursor),
    }
