"""The overview: counts by verdict and severity per cluster, the worst bindings, source health,
recent transitions."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.db.models import Case, Count, Value, When
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from bindings import models as m
from bindings.analysis import explain
from bindings.vocabulary import Code
from bindings.web import http, presenters
from bindings.web.http import HtmxHttpRequest

WORST_LIMIT = 10


def worst_bindings(limit: int = WORST_LIMIT) -> list[dict[str, Any]]:
    """The blocked, then partial, bindings (most severe findings first): per refused protocol its
    verdict and root-cause sentence. Three queries whatever the limit."""
    results = list(
        m.BindingResult.objects.filter(worst_verdict__in=("blocked", "partial"))
        .select_related("binding", "binding__cluster")
        .annotate(
            vrank=Case(When(worst_verdict="blocked", then=Value(0)), default=Value(1)),
            srank=Case(
                *[When(max_severity=s, then=Value(-rank)) for s, rank in m.SEVERITY_RANK.items() if s],
                default=Value(0),
            ),
        )
        .order_by("vrank", "srank", "-changed_at", "pk")[:limit]
    )
    refused = [
        (result, pv)
        for result in results
        for pv in (result.data or {}).get("protocols") or []
        if pv.get("verdict") in ("blocked", "partial")
    ]
    sg_ids = {
        sg for _, pv in refused for t in pv.get("targets") or [] for sg in t.get("security_group_ids") or []
    }
    rules = [
        explain.Rule(*row)
        for row in m.SecurityGroupRule.objects.filter(
            egress=False, security_group__group_id__in=sg_ids
        ).values_list("security_group__group_id", "protocol", "from_port", "to_port")
    ]
    return [
        {
            "binding": result.binding,
            "protocol": pv.get("protocol"),
            "verdict": pv.get("verdict"),
            "cause": explain.root_cause(pv, rules),
        }
        for result, pv in refused
    ]


def _cluster_rows(clusters: list[m.Cluster]) -> dict[str, Any]:
    """Per cluster its bindings by verdict and by severity, those not judged yet, and the totals."""
    by_verdict: dict[int, dict[str, int]] = {}
    for row in m.BindingResult.objects.values("binding__cluster_id", "worst_verdict").annotate(n=Count("id")):
        by_verdict.setdefault(row["binding__cluster_id"], {})[row["worst_verdict"]] = row["n"]
    by_severity: dict[int, dict[str, int]] = {}
    for row in m.BindingResult.objects.values("binding__cluster_id", "max_severity").annotate(n=Count("id")):
        by_severity.setdefault(row["binding__cluster_id"], {})[row["max_severity"] or "none"] = row["n"]
    pending = dict(
        m.TargetGroupBinding.objects.filter(result__isnull=True)
        .values("cluster_id")
        .annotate(n=Count("id"))
        .values_list("cluster_id", "n")
    )
    verdict_keys = [v for v, _ in presenters.VERDICT_CHOICES]
    severity_keys = [s for s, _ in presenters.SEVERITY_CHOICES] + ["none"]
    rows = []
    totals_v = dict.fromkeys(verdict_keys, 0)
    totals_s = dict.fromkeys(severity_keys, 0)
    total_pending = 0
    for cluster in clusters:
        verdicts = by_verdict.get(cluster.pk, {})
        severities = by_severity.get(cluster.pk, {})
        for key in verdict_keys:
            totals_v[key] += verdicts.get(key, 0)
        for key in severity_keys:
            totals_s[key] += severities.get(key, 0)
        total_pending += pending.get(cluster.pk, 0)
        rows.append(
            {
                "cluster": cluster,
                "verdicts": [(key, verdicts.get(key, 0)) for key in verdict_keys],
                "severities": [(key, severities.get(key, 0)) for key in severity_keys],
                "pending": pending.get(cluster.pk, 0),
                "stale": presenters.stale(cluster),
            }
        )
    return {
        "rows": rows,
        "totals_verdict": list(totals_v.items()),
        "totals_severity": list(totals_s.items()),
        "total_pending": total_pending,
        "total_bindings": sum(totals_v.values()) + total_pending,
    }


@require_GET
@login_required
@vary_on_headers("HX-Request")
def overview(request: HtmxHttpRequest) -> HttpResponse:
    """Counts by verdict and severity per cluster, source health, and recent transitions."""
    clusters = list(m.Cluster.objects.select_related("aws_account").order_by("name"))
    accounts = list(m.AwsAccount.objects.order_by("name"))
    tag = http.etag(
        "overview",
        http.is_partial(request),
        request.user.pk,
        http.newest_change(),
        [http.source_state(c) for c in clusters],
        [http.source_state(a) for a in accounts],
    )
    if http.unchanged(request, tag):
        return http.not_modified(tag)

    counts = _cluster_rows(clusters)
    transitions = list(
        m.VerdictTransition.objects.select_related("binding", "binding__cluster").order_by("-at", "-pk")[:15]
    )
    context = {
        "worst": worst_bindings(),
        "green_but_broken": m.Finding.objects.filter(code=Code.HEALTH_CHECK_MASKS_TRAFFIC)
        .values("binding_id")
        .distinct()
        .count(),
        **counts,
        "clusters": clusters,
        "accounts": accounts,
        "transitions": transitions,
        "now": timezone.now(),
        **http.perms(request),
    }
    return http.with_etag(
        render(request, http.page_template(request, "dashboard/overview.html", "live"), context), tag
    )
