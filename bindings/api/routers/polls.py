"""`GET /polls` (poll runs, newest first) and `POST /polls` (enqueue one)."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from ninja import Query, Router, Status
from ninja.errors import HttpError

from bindings import models as m
from bindings.api.auth import can_write
from bindings.api.pagination import next_link, pk_page
from bindings.api.params import PollFilters, PollRequest
from bindings.api.problems import ERRORS, Problem, problem
from bindings.api.schemas import PollPage, PollQueued
from bindings.api.serializers import poll_summary

router = Router()


@router.get("/polls", response={200: PollPage, **ERRORS}, operation_id="list_polls")
def list_polls(request: HttpRequest, filters: Query[PollFilters]) -> dict[str, Any]:
    """Poll runs, newest first, cursor-paginated. Queries: runs joined with their source (1)."""
    qs = m.PollRun.objects.select_related("cluster", "account").defer(
        "cluster__problems", "account__problems"
    )
    if filters.cluster is not None:
        qs = qs.filter(cluster__name=filters.cluster)
    if filters.account is not None:
        qs = qs.filter(account__name=filters.account)
    if filters.status is not None:
        qs = qs.filter(status=filters.status)
    rows, cursor = pk_page(qs, filters.cursor, filters.limit, newest_first=True)
    items = []
    for run in rows:
        item = poll_summary(run)
        assert item is not None
        source: m.PolledSource | None = run.cluster if run.cluster_id else run.account
        item.update(
            kind="cluster" if run.cluster_id else "account",
            source_id=run.cluster_id or run.account_id or 0,
            source=getattr(source, "name", ""),
            rows_written=run.rows_written,
        )
        items.append(item)
    return {"items": items, "next_cursor": cursor, "next": next_link(request, cursor)}


@router.post(
    "/polls",
    response={202: PollQueued, 409: Problem, **ERRORS},
    operation_id="create_poll",
)
def create_poll(request: HttpRequest, body: PollRequest) -> Status | HttpResponse:
    """Enqueue a poll of one cluster or one account (after the request's transaction commits).

    Needs `bindings.poll_cluster` (clusters) or `bindings.poll_awsaccount` (accounts): held by the
    session's user, or by the owner of a read-write token. 409 when the source is disabled or a
    poll of it is running already. Queries: the source (1), the permission check (≤ 2).
    """
    from bindings.tasks import request_poll

    if (body.cluster is None) == (body.account is None):
        raise HttpError(400, 'Give exactly one of "cluster" or "account" (a name).')
    kind = "cluster" if body.cluster is not None else "account"
    model: type[m.Cluster | m.AwsAccount] = m.Cluster if kind == "cluster" else m.AwsAccount
    permission = model.POLL_PERMISSION
    if not can_write(request, permission):
        raise HttpError(
            403,
            f"Polling needs the {permission} permission (a token: read-write, and its owner has it).",
        )
    source = model.objects.filter(name=body.cluster or body.account).first()
    if source is None:
        raise Http404(f"No {kind} named {body.cluster or body.account!r}.")
    if not source.enabled:
        raise HttpError(409, f"The {kind} {source.name!r} is disabled; enable it in the admin first.")
    since = request_poll(kind, source.pk, "api")
    if since is not None:
        return problem(
            409,
            "Conflict",
            f"A poll of the {kind} {source.name!r} is already running since "
            f"{since.isoformat(timespec='seconds')}; its result will show in GET /api/v1/polls.",
            running_since=since.isoformat(),
        )
    return Status(202, {"kind": kind, "id": source.pk, "name": source.name, "status": "queued"})
