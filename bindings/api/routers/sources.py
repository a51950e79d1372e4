"""`GET /clusters` and `GET /accounts`: the polled sources and how fresh their data is."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, OuterRef
from django.http import HttpRequest
from django.utils import timezone
from ninja import Router

from bindings import models as m
from bindings.api.problems import ERRORS
from bindings.api.schemas import AccountOut, ClusterOut
from bindings.api.serializers import age_seconds, poll_summary

router = Router()


@router.get("/clusters", response={200: list[ClusterOut], **ERRORS}, operation_id="list_clusters")
def list_clusters(request: HttpRequest) -> list[dict[str, Any]]:
    """Every cluster with its poll status. Queries: clusters joined with accounts (1), binding
    counts (1)."""
    now = timezone.now()
    clusters = m.Cluster.objects.select_related("aws_account").order_by("name")
    counts = dict(
        m.TargetGroupBinding.objects.order_by()
        .values("cluster_id")
        .annotate(n=Count("pk"))
        .values_list("cluster_id", "n")
    )
    return [
        {
            "id": c.pk,
            "name": c.name,
            "enabled": c.enabled,
            "connection": c.connection,
            "aws_account": c.aws_account.name if c.aws_account_id else None,
            "poll_interval_seconds": c.poll_interval_seconds,
            "last_polled_at": c.last_polled_at,
            "last_success_at": c.last_success_at,
            "next_poll_at": c.next_poll_at,
            "last_error": c.last_error,
            "stale": c.is_stale,
            "data_age_seconds": age_seconds(c.last_success_at, now),
            "bindings": counts.get(c.pk, 0),
        }
        for c in clusters
    ]


@router.get("/accounts", response={200: list[AccountOut], **ERRORS}, operation_id="list_accounts")
def list_accounts(request: HttpRequest) -> list[dict[str, Any]]:
    """Every AWS account with its poll status and last finished poll. Queries: accounts (1), the
    latest run of each (1)."""
    now = timezone.now()
    accounts = list(m.AwsAccount.objects.order_by("name"))
    latest_ids = [
        run_id
        for run_id in (
            m.AwsAccount.objects.filter(pk__in=[a.pk for a in accounts])
            .annotate(
                last_run=m.PollRun.objects.filter(account=OuterRef("pk"))
                .order_by("-started_at", "-pk")
                .values("pk")[:1]
            )
            .values_list("last_run", flat=True)
        )
        if run_id
    ]
    runs = {r.account_id: r for r in m.PollRun.objects.filter(pk__in=latest_ids)} if latest_ids else {}
    return [
        {
            "id": a.pk,
            "name": a.name,
            "account_id": a.account_id,
            "region": a.region,
            "enabled": a.enabled,
            "poll_interval_seconds": a.poll_interval_seconds,
            "last_polled_at": a.last_polled_at,
            "last_success_at": a.last_success_at,
            "next_poll_at": a.next_poll_at,
            "last_error": a.last_error,
            "stale": a.is_stale,
            "data_age_seconds": age_seconds(a.last_success_at, now),
            "last_poll": poll_summary(runs.get(a.pk)),
        }
        for a in accounts
    ]
