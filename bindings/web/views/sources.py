"""Sources: a cluster's and an AWS account's pages, and "Poll now" with its progress line."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import trigger_client_event

from bindings import models as m
from bindings.web import http, presenters
from bindings.web.http import HtmxHttpRequest

POLL_QUEUE_PATIENCE = timedelta(minutes=2)


def poll_context(request: HttpRequest, cluster: m.Cluster, since: datetime | None) -> dict[str, Any]:
    """The cluster's newest poll and where a requested one stands (queued, running, waiting...)."""
    latest = m.PollRun.objects.filter(cluster=cluster).order_by("-started_at", "-pk").first()
    now = timezone.now()
    if since is not None and (latest is None or latest.started_at < since):
        state = "waiting" if now - since > POLL_QUEUE_PATIENCE else "queued"
    elif latest is not None and latest.status == m.PollRun.Status.RUNNING:
        state = "running"
    else:
        state = latest.status if latest else "none"
    return {
        "cluster": cluster,
        "latest_poll": latest,
        "poll_state": state,
        "since": since,
        "keep_polling": state in ("queued", "running"),
        "next": request.get_full_path(),
        **http.perms(request),
    }


@require_GET
@login_required
def cluster_poll_status(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The newest poll of a cluster; keeps polling itself while one is queued or running."""
    cluster = get_object_or_404(m.Cluster, pk=pk)
    since = parse_datetime(request.GET.get("since", "")) if request.GET.get("since") else None
    context = poll_context(request, cluster, since)
    context["next"] = request.GET.get("next", "")
    response = render(request, "dashboard/_poll.html", context)
    if since is not None and context["poll_state"] in ("success", "failed"):
        # Let the page's live region refresh now instead of at its next tick.
        trigger_client_event(response, "bh:polled")
    return response


@require_POST
@login_required
def cluster_poll(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Enqueue a poll of the cluster now (permission bindings.poll_cluster), unless one is running:
    then say since when, and queue nothing (the queued poll would find the lock held)."""
    cluster = get_object_or_404(m.Cluster, pk=pk)
    if not request.user.has_perm(http.POLL_PERMISSION):
        return HttpResponseForbidden(
            f"You do not have the permission to poll clusters ({http.POLL_PERMISSION})."
        )
    # the view module must not need Celery to import
    from bindings.tasks import request_poll

    since = timezone.now()
    running_since = request_poll("cluster", cluster.pk, "dashboard")
    next_url = request.POST.get("next", "")
    if http.is_partial(request):
        context = poll_context(request, cluster, None if running_since else since)
        context["next"] = next_url
        context["running_since"] = running_since
        return render(request, "dashboard/_poll.html", context)
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = reverse("dashboard:cluster-detail", args=[cluster.pk])
    return redirect(next_url)


@require_GET
@login_required
def cluster_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """A cluster: connection, poll health, its bindings by verdict, recent polls."""
    cluster = get_object_or_404(m.Cluster.objects.select_related("aws_account"), pk=pk)
    counts = dict(
        m.BindingResult.objects.filter(binding__cluster=cluster)
        .values("worst_verdict")
        .annotate(n=Count("id"))
        .values_list("worst_verdict", "n")
    )
    runs = list(m.PollRun.objects.filter(cluster=cluster).order_by("-started_at", "-pk")[:50])
    context = {
        "cluster": cluster,
        "counts": [(v, counts.get(v, 0)) for v, _ in presenters.VERDICT_CHOICES],
        "polls": presenters.poll_rows(runs),
        "stale": presenters.stale(cluster),
        **poll_context(request, cluster, None),
    }
    return render(request, "dashboard/cluster_detail.html", context)


@require_GET
@login_required
def account_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """An AWS account: poll health, its clusters, recent polls with API calls."""
    account = get_object_or_404(m.AwsAccount, pk=pk)
    runs = list(m.PollRun.objects.filter(account=account).order_by("-started_at", "-pk")[:50])
    context = {
        "account": account,
        "clusters": list(account.clusters.order_by("name")),
        "polls": presenters.poll_rows(runs),
    }
    return render(request, "dashboard/account_detail.html", context)
