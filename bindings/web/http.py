"""Request helpers the HTML views share: htmx partials, conditional GET (ETags), permissions.

Each page computes an ETag from what it shows (newest result change, source polls, filter
parameters, the user) *before* the expensive queries, so an unchanged refresh answers 304 after
two or three cheap queries.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from django.db.models import Max
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.shortcuts import get_object_or_404
from django.utils.cache import patch_cache_control
from django_htmx.middleware import HtmxDetails

from bindings import models as m
from bindings.services import apply as fix_apply

POLL_PERMISSION = m.Cluster.POLL_PERMISSION


class HtmxHttpRequest(HttpRequest):
    """An HttpRequest after django-htmx's middleware (for type checkers)."""

    htmx: HtmxDetails


def is_partial(request: HtmxHttpRequest) -> bool:
    """Render only a partial for htmx requests; boosted and history-restore requests need pages."""
    htmx = request.htmx
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def page_template(request: HtmxHttpRequest, template: str, partial: str) -> str:
    """`template#partial` for htmx requests, else the whole page."""
    return f"{template}#{partial}" if is_partial(request) else template


def etag(*parts: Any) -> str:
    return '"' + hashlib.sha256(repr(parts).encode()).hexdigest()[:32] + '"'


def unchanged(request: HttpRequest, tag: str) -> bool:
    sent = request.headers.get("If-None-Match", "")
    return any(sent_tag.strip().removeprefix("W/") == tag for sent_tag in sent.split(",") if sent_tag.strip())


def with_etag(response: HttpResponse, tag: str) -> HttpResponse:
    """Browsers (and so htmx's XHRs) revalidate every time and get a 304 when nothing changed."""
    response["ETag"] = tag
    patch_cache_control(response, private=True, no_cache=True)
    return response


def not_modified(tag: str) -> HttpResponse:
    return with_etag(HttpResponseNotModified(), tag)


def source_state(source: m.PolledSource | None) -> tuple[Any, ...]:
    """The part of a polled source that a page shows, for its ETag."""
    if source is None:
        return ()
    # The TLS warning is shown with the cluster (a superuser may fix it without a poll).
    tls = source.tls_warning if isinstance(source, m.Cluster) else ""
    return (source.pk, source.last_success_at, source.last_polled_at, source.last_error, source.is_stale, tls)


def newest_change() -> datetime | None:
    """When any result last changed, read from an index rather than by scanning results.

    `results_store` writes a HistorySample (indexed `at`) in the same transaction as every
    changed result, so the newest sample is at least as new as the newest `changed_at`; scanning
    BindingResult itself reads every wide `data` row (27 ms at 10,000 bindings). Bindings appear
    and vanish only in a poll, which moves its source's timestamps, part of every ETag too.
    """
    return m.HistorySample.objects.aggregate(at=Max("at"))["at"]


def perms(request: HttpRequest, cluster: m.Cluster | None = None) -> dict[str, Any]:
    """What the signed-in user may do here: poll clusters, and (with a cluster) apply its fixes."""
    user = request.user
    return {
        "can_poll": user.has_perm(POLL_PERMISSION),
        "apply_problem": fix_apply.permission_problem(user, cluster) if cluster is not None else "",
    }


def binding_or_404(pk: int) -> m.TargetGroupBinding:
    """Every signed-in user reads every binding; apply/poll rights are checked per action."""
    return get_object_or_404(
        m.TargetGroupBinding.objects.select_related("cluster", "cluster__aws_account", "result"), pk=pk
    )
