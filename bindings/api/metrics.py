"""`/metrics`: Prometheus text exposition of what the database holds about bindings and polls.

Every value is computed from the database at scrape time in a constant number of queries (seven),
so any web replica can answer and no in-process state is needed. Counters of the kind "errors
since start" would need such state; poll errors are therefore a gauge over the last 24 hours.

Access: a bearer token (`BH_METRICS_TOKEN` or `_FILE`), or a client address in
`BH_METRICS_ALLOWED_CIDRS`; with neither configured, loopback only. The client address is
`bindings.security.client_address`: REMOTE_ADDR unless `BH_TRUSTED_PROXIES` says how many
reverse proxies' X-Forwarded-For entries to trust.
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, IntegerField, JSONField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from bindings import models as m
from bindings.security import address_in, client_address, parse_address
from bindings.services import polling
from bindings.vocabulary import Code

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
ERROR_WINDOW = timedelta(hours=24)
# The finding code of the "green but broken" case (DESIGN.md): health checks pass, traffic is refused.
GREEN_BUT_BROKEN = Code.HEALTH_CHECK_MASKS_TRAFFIC


# --- access -----------------------------------------------------------------------------------


def _client_allowed(address: str, cidrs: Iterable[str]) -> bool:
    cidrs = tuple(cidrs)
    if not cidrs:
        ip = parse_address(address)
        return ip is not None and ip.is_loopback
    return address_in(address, cidrs)


def metrics_access(request: HttpRequest) -> int:
    """0 when the scrape may proceed, else the HTTP status to answer (401 or 403)."""
    token = getattr(settings, "BH_METRICS_TOKEN", "")
    cidrs = getattr(settings, "BH_METRICS_ALLOWED_CIDRS", [])
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return 0
    if (cidrs or not token) and _client_allowed(client_address(request), cidrs):
        return 0
    return 401 if token and not header else 403


# --- exposition -------------------------------------------------------------------------------


def _label(value: object) -> str:
    """Escape a label value as the text format requires (backslash, quote, newline)."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float | int) -> str:
    if isinstance(value, float) and math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value) if isinstance(value, float) else str(value)


class Exposition:
    """Collects metric families and renders them in the text format (0.0.4)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, help_text: str, samples: Iterable[tuple[dict[str, object], float]]) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} gauge")
        for labels, value in samples:
            rendered = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            self.lines.append(
                f"{name}{{{rendered}}} {_number(value)}" if rendered else f"{name} {_number(value)}"
            )

    def render(self) -> str:
        return "\n".join(self.lines) + "\n"


def _with_last_run(qs: QuerySet, fk: str, since: datetime) -> QuerySet:
    """Annotate sources with their last finished poll's duration and API calls, and recent errors."""
    finished = m.PollRun.objects.filter(**{fk: OuterRef("pk")}, finished_at__isnull=False).order_by(
        "-started_at", "-pk"
    )
    failures = (
        m.PollRun.objects.filter(
            **{fk: OuterRef("pk")}, status=m.PollRun.Status.FAILED, started_at__gte=since
        )
        .order_by()
        .values(fk)
        .annotate(n=Count("pk"))
        .values("n")
    )
    throttled = polling.throttled_runs(failures)
    return qs.annotate(
        last_duration_ms=Subquery(finished.values("duration_ms")[:1], output_field=IntegerField()),
        last_api_calls=Subquery(finished.values("api_calls")[:1], output_field=JSONField()),
        recent_failures=Coalesce(Subquery(failures, output_field=IntegerField()), Value(0)),
        recent_throttled=Coalesce(Subquery(throttled, output_field=IntegerField()), Value(0)),
    )


def metrics_text(now: datetime | None = None) -> str:
    """The whole exposition. Queries: verdicts (2), worst verdicts (1), findings (2), clusters (1),
    accounts (1)."""
    out = Exposition()
    _binding_families(out)
    _source_families(out, now or timezone.now())
    return out.render()


def _binding_families(out: Exposition) -> None:
    """Bindings by protocol verdict, worst verdict and finding: five aggregate queries."""
    out.family(
        "bh_binding_protocols",
        "Binding results per carried protocol and verdict.",
        (
            ({"protocol": row["protocol"], "verdict": row["verdict"]}, row["n"])
            for row in m.ProtocolVerdict.objects.order_by("protocol", "verdict")
            .values("protocol", "verdict")
            .annotate(n=Count("pk"))
        ),
    )
    out.family(
        "bh_cluster_binding_protocols",
        "Binding results per cluster, carried protocol and verdict.",
        (
            (
                {
                    "cluster": row["binding__cluster__name"],
                    "protocol": row["protocol"],
                    "verdict": row["verdict"],
                },
                row["n"],
            )
            for row in m.ProtocolVerdict.objects.order_by("binding__cluster__name", "protocol", "verdict")
            .values("binding__cluster__name", "protocol", "verdict")
            .annotate(n=Count("pk"))
        ),
    )
    out.family(
        "bh_green_but_broken_bindings",
        "Bindings per cluster whose health checks pass while a carried protocol is refused "
        "(HEALTH_CHECK_MASKS_TRAFFIC).",
        (
            ({"cluster": row["binding__cluster__name"]}, row["n"])
            for row in m.Finding.objects.filter(code=GREEN_BUT_BROKEN)
            .order_by("binding__cluster__name")
            .values("binding__cluster__name")
            .annotate(n=Count("binding_id", distinct=True))
        ),
    )
    out.family(
        "bh_bindings",
        "Bindings per worst verdict over their protocols.",
        (
            ({"verdict": row["worst_verdict"]}, row["n"])
            for row in m.BindingResult.objects.order_by("worst_verdict")
            .values("worst_verdict")
            .annotate(n=Count("pk"))
        ),
    )
    out.family(
        "bh_findings",
        "Findings per code and severity.",
        (
            ({"code": row["code"], "severity": row["severity"]}, row["n"])
            for row in m.Finding.objects.order_by("code", "severity")
            .values("code", "severity")
            .annotate(n=Count("pk"))
        ),
    )


def _source_families(out: Exposition, now: datetime) -> None:
    """Each cluster's and account's polls and freshness: two queries."""
    since = now - ERROR_WINDOW
    sources: list[tuple[str, m.PolledSource]] = [
        ("cluster", c) for c in _with_last_run(m.Cluster.objects.order_by("name"), "cluster", since)
    ] + [("account", a) for a in _with_last_run(m.AwsAccount.objects.order_by("name"), "account", since)]

    def per_source(value_of) -> Iterable[tuple[dict[str, object], float]]:
        for kind, source in sources:
            value = value_of(source)
            if value is not None:
                yield {"kind": kind, "source": source.name}, value

    out.family(
        "bh_last_poll_duration_seconds",
        "Duration of the last finished poll of a source.",
        per_source(lambda s: None if s.last_duration_ms is None else s.last_duration_ms / 1000),
    )
    out.family(
        "bh_last_poll_api_calls",
        "API calls made by the last finished poll of a source.",
        per_source(
            lambda s: (
                sum(v for v in s.last_api_calls.values() if isinstance(v, int))
                if isinstance(s.last_api_calls, dict)
                else None
            )
        ),
    )
    out.family(
        "bh_poll_errors",
        "Failed polls of a source in the last 24 hours.",
        per_source(lambda s: s.recent_failures),
    )
    out.family(
        "bh_poll_throttled",
        "Failed polls of a source in the last 24 hours that AWS kept throttling after retries.",
        per_source(lambda s: s.recent_throttled),
    )
    out.family(
        "bh_poll_interval_seconds",
        "Configured poll interval of a source (API calls per poll / this = call rate).",
        per_source(lambda s: s.poll_interval_seconds),
    )
    out.family(
        "bh_source_last_poll_failed",
        "1 when the last poll of a source failed.",
        per_source(lambda s: 1 if s.last_error else 0),
    )
    out.family(
        "bh_data_age_seconds",
        "Seconds since the last successful poll of a source (+Inf: never).",
        per_source(
            lambda s: (
                math.inf if s.last_success_at is None else round((now - s.last_success_at).total_seconds(), 3)
            )
        ),
    )
    out.family(
        "bh_source_stale",
        "1 when a source has had no successful poll within three poll intervals.",
        per_source(lambda s: 1 if s.is_stale else 0),
    )


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus scrape endpoint (see the module docstring for access rules)."""
    denied = metrics_access(request)
    if denied:
        response = HttpResponse(
            "Forbidden\n" if denied == 403 else "Unauthorized\n", status=denied, content_type="text/plain"
        )
        if denied == 401:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE)
