"""The JSON API under /api/v1/ (django-ninja; see README "API" for why).

Read-only except `POST /polls`. Every endpoint reads the database only and answers in a constant
number of queries whatever the number of rows (each view's docstring lists them). Every error
under /api/ is an RFC 9457 problem (`application/problem+json`: type, title, status, detail),
including 404s of unknown paths, 405s and validation errors.

The OpenAPI document at /api/v1/openapi.json is generated from the same schemas that serialise
the responses, and the test suite checks the running app against it with schemathesis.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any, Literal

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.db.models import OuterRef
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern, URLResolver, path, re_path
from django.utils import timezone
from ninja import Field, NinjaAPI, Query, Schema, Status
from ninja.errors import HttpError, ValidationError
from ninja.params import Path

from bindings import freshness
from bindings import models as m
from bindings.api import list_sql
from bindings.api.auth import BrowserSessionAuth, TokenAuth, can_write
from bindings.api.pagination import MAX_ID, PageParams, after, decode_cursor, encode_cursor, next_link
from bindings.fixes import render as fix_render
from bindings.store.querysets import filter_bindings
from bindings.vocabulary import Protocol, Severity, Verdict

logger = logging.getLogger(__name__)

PROBLEM_TYPE = "application/problem+json"
# Names in filters and poll requests hold no control characters: no cluster, account or namespace
# name does, and PostgreSQL refuses NUL in a query (that would be a 500, not a 400).
NAME_PATTERN = r"^[^\x00-\x1f\x7f]*$"


# --- problems ---------------------------------------------------------------------------------


def problem(status: int, title: str, detail: str = "", **extra: Any) -> JsonResponse:
    """An RFC 9457 problem response; `type` stays about:blank (the status says it all)."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail or title}
    body.update(extra)
    response = JsonResponse(body, status=status, content_type=PROBLEM_TYPE)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="binding-health"'
    return response


_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    500: "Internal Server Error",
}


class Problem(Schema):
    """RFC 9457 problem details."""

    type: str = Field(..., examples=["about:blank"])
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = Field(None, description="Validation errors (400 only).")


class ProblemAPI(NinjaAPI):
    """NinjaAPI whose OpenAPI document says what the wrapper below makes true: errors are
    `application/problem+json`, every operation may answer 401/405, and the fix is also YAML."""

    def get_openapi_schema(self, *, path_prefix: str | None = None, path_params: Any = None) -> Any:
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        problem_ref = {"$ref": "#/components/schemas/Problem"}
        for item in schema["paths"].values():
            for operation in item.values():
                # ninja keys responses by int; JSON turns them into strings anyway.
                responses = {str(k): v for k, v in operation.get("responses", {}).items()}
                operation["responses"] = responses
                for code in ("400", "401", "404", "405"):
                    responses.setdefault(code, {"description": _TITLES[int(code)]})
                for code, response in responses.items():
                    if code.startswith(("4", "5")):
                        response["content"] = {PROBLEM_TYPE: {"schema": problem_ref}}
                if operation.get("operationId") == "binding_fix":
                    responses["200"]["content"]["application/yaml"] = {
                        "schema": {"description": "The fixed TargetGroupBinding manifest (YAML)."}
                    }
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = Problem.model_json_schema()
        return schema


def _read_only_document(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The OpenAPI document answers GET and HEAD; ninja's own view would answer any method."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            response = problem(405, "Method Not Allowed", f"{request.method} is not allowed here.")
            response["Allow"] = "GET, HEAD"
            return response
        return view(request, *args, **kwargs)

    return wrapper


api = ProblemAPI(
    title="Binding Health API",
    version="1",
    description="Per-protocol reachability of AWS Load Balancer Controller TargetGroupBindings.",
    urls_namespace="api-v1",
    # Swagger UI from django-ninja's own static files ("ninja" in INSTALLED_APPS): no CDN, and
    # nothing inline the Content-Security-Policy would refuse. Public, like the document it shows.
    docs_url="/docs",
    docs_decorator=_read_only_document,
    auth=[TokenAuth(), BrowserSessionAuth()],
)


@api.exception_handler(ValidationError)
def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    errors = [
        {"loc": [str(part) for part in e.get("loc", ())], "msg": str(e.get("msg", ""))} for e in exc.errors
    ]
    detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors) or "Invalid request."
    return problem(400, "Bad Request", detail, errors=errors)


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    status = exc.status_code
    return problem(status, _TITLES.get(status, "Error"), str(exc))


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return problem(404, "Not Found", str(exc) or "No such resource.")


@api.exception_handler(Exception)
def _server_error(request: HttpRequest, exc: Exception) -> HttpResponse:
    # The traceback goes to the log (no request headers, so no token); the client gets no details.
    logger.exception("API error on %s %s", request.method, request.path)
    return problem(500, "Internal Server Error", "The server failed to answer; see its log.")


def _as_problem(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Turn the few error responses ninja builds itself (405, its root 404) into problems."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            response = view(request, *args, **kwargs)
        except Http404:
            return problem(404, "Not Found", "No API endpoint at this path.")
        if response.status_code >= 400 and not response.get("Content-Type", "").startswith(PROBLEM_TYPE):
            replaced = problem(response.status_code, _TITLES.get(response.status_code, "Error"))
            if response.has_header("Allow"):
                replaced["Allow"] = response["Allow"]
            return replaced
        return response

    wrapper.csrf_exempt = True  # type: ignore[attr-defined]  # ninja checks CSRF for sessions
    return wrapper


def unknown_api_path(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Anything else under /api/: a 404 problem, not the HTML 404 page."""
    return problem(404, "Not Found", "No API endpoint at this path.")


unknown_api_path.csrf_exempt = True  # type: ignore[attr-defined]


def api_urlpatterns() -> list[URLPattern | URLResolver]:
    """URL patterns for bindings/urls.py: /api/v1/… (problem-wrapped) and the /api/ catch-all."""
    patterns: list[URLPattern | URLResolver] = []
    for pattern in api.urls[0]:
        assert isinstance(pattern, URLPattern)
        patterns.append(URLPattern(pattern.pattern, _as_problem(pattern.callback), None, pattern.name))
    return [
        path("api/v1/", (patterns, "ninja", "api-v1")),
        re_path(r"^api(?:/(?P<rest>.*))?$", unknown_api_path),
    ]


# --- shared helpers ---------------------------------------------------------------------------


def _age_seconds(when: datetime | None, now: datetime) -> int | None:
    return None if when is None else max(0, int((now - when).total_seconds()))


def _binding_freshness(cluster: m.Cluster, now: datetime) -> tuple[int | None, bool]:
    """(data age, stale) of a binding: the older of its cluster's and its account's last success."""
    sources = cluster.data_sources()
    successes = [s.last_success_at for s in sources]
    age = None if None in successes else _age_seconds(min(successes), now)
    return age, any(freshness.is_stale(s.last_success_at, s.poll_interval_seconds, now) for s in sources)


# --- schemas ----------------------------------------------------------------------------------


class PollSummary(Schema):
    id: int
    status: Literal["running", "success", "failed", "held"]
    trigger: str
    started_at: datetime
    finished_at: datetime | None
    duration_ms: int | None
    api_calls: dict[str, int]
    error: str
    note: str = Field("", description="Why a held poll stored nothing (it waits for the next poll to agree).")


class ClusterOut(Schema):
    id: int
    name: str
    enabled: bool
    connection: str
    aws_account: str | None = Field(..., description="Name of the AWS account, if any.")
    poll_interval_seconds: int
    last_polled_at: datetime | None
    last_success_at: datetime | None
    next_poll_at: datetime | None
    last_error: str
    stale: bool = Field(..., description="No successful poll within three intervals.")
    data_age_seconds: int | None = Field(..., description="Seconds since the last successful poll.")
    bindings: int


class AccountOut(Schema):
    id: int
    name: str
    account_id: str
    region: str
    enabled: bool
    poll_interval_seconds: int
    last_polled_at: datetime | None
    last_success_at: datetime | None
    next_poll_at: datetime | None
    last_error: str
    stale: bool
    data_age_seconds: int | None
    last_poll: PollSummary | None


class ProtocolSummary(Schema):
    protocol: str
    port: int | None
    verdict: str
    targets_total: int
    targets_admitted: int


class FindingSummary(Schema):
    code: str
    severity: str
    protocol: str


class HealthCounts(Schema):
    healthy: int
    unhealthy: int
    other: int


class BindingOut(Schema):
    id: int
    url: str
    cluster: str
    namespace: str
    name: str
    uid: str
    target_group_arn: str
    target_type: str
    target_group_protocol: str
    verdict: str = Field(..., description="The worst verdict over the carried protocols.")
    max_severity: str = Field(..., description="The highest finding severity, '' when none.")
    protocols: list[ProtocolSummary]
    findings: list[FindingSummary]
    health: HealthCounts
    analyzed_at: datetime | None
    changed_at: datetime | None
    data_age_seconds: int | None
    stale: bool


class BindingPage(Schema):
    items: list[BindingOut]
    next_cursor: str | None = Field(..., description="Pass as ?cursor= for the next page; null at the end.")
    next: str | None


class TargetOut(Schema):
    target_id: str = ""
    port: int | None = None
    network_interface_id: str | None = None
    security_group_ids: list[str] = []
    admitted: bool | None = None
    uncovered_sources: list[str] = []
    matched_rules: list[str] = []
    reason: str = ""


class ProtocolDetail(ProtocolSummary):
    client_ip_preserved: bool = False
    expected_sources: list[str] = []
    reasons: list[str] = []
    targets: list[TargetOut] = []


class HealthCheckOut(Schema):
    protocol: str | None = None
    port: str | None = None
    path: str | None = None
    proves: str = ""
    cannot_prove: str = ""
    admitted: bool | None = None
    healthy: int = 0
    unhealthy: int = 0
    other: int = 0


class FindingDetail(Schema):
    code: str
    severity: str
    protocol: str | None = None
    message: str = ""
    evidence: dict[str, Any] = {}


class SourceFreshness(Schema):
    kind: Literal["cluster", "account"]
    name: str
    last_success_at: datetime | None
    last_error: str
    stale: bool


class BindingDetail(BindingOut):
    protocols: list[ProtocolDetail]  # type: ignore[assignment]
    health_check: HealthCheckOut | None
    findings: list[FindingDetail]  # type: ignore[assignment]
    problems: list[Any]
    has_fix: bool
    sources: list[SourceFreshness]


class HistorySampleOut(Schema):
    at: datetime
    verdicts: dict[str, str]
    healthy: int
    unhealthy: int
    other: int


class TransitionOut(Schema):
    at: datetime
    protocol: str
    old: str
    new: str


class HistoryOut(Schema):
    binding: int
    samples: list[HistorySampleOut]
    transitions: list[TransitionOut]


class BindingRef(Schema):
    id: int
    cluster: str
    namespace: str
    name: str


class FindingOut(Schema):
    id: int
    binding: BindingRef
    code: str
    severity: str
    protocol: str
    message: str
    evidence: dict[str, Any]


class FindingPage(Schema):
    items: list[FindingOut]
    next_cursor: str | None
    next: str | None


class PollOut(PollSummary):
    kind: Literal["cluster", "account"]
    source_id: int
    source: str
    rows_written: int


class PollPage(Schema):
    items: list[PollOut]
    next_cursor: str | None
    next: str | None


class PollRequest(Schema):
    """Exactly one of `cluster` or `account`, by name."""

    model_config = {"extra": "forbid", "json_schema_extra": {"minProperties": 1, "maxProperties": 1}}

    # Not nullable, so the document's "one property" rule is exactly what the view accepts.
    cluster: str = Field(  # type: ignore[assignment]
        None, min_length=1, max_length=100, pattern=NAME_PATTERN, description="Name of a cluster to poll."
    )
    account: str = Field(  # type: ignore[assignment]
        None,
        min_length=1,
        max_length=100,
        pattern=NAME_PATTERN,
        description="Name of an AWS account to poll.",
    )


class PollQueued(Schema):
    kind: Literal["cluster", "account"]
    id: int
    name: str
    status: Literal["queued"]


# --- query parameters -------------------------------------------------------------------------

_Name = Field(None, max_length=253, pattern=NAME_PATTERN)


class BindingFilters(PageParams):
    cluster: str | None = _Name
    namespace: str | None = _Name
    protocol: Protocol | None = None
    verdict: Verdict | None = Field(
        None,
        description="Has a protocol verdict of this value (for `protocol`, if given). `unknown` without "
        "`protocol` also matches bindings not analysed yet, whose `verdict` is `unknown` too.",
    )
    code: str | None = Field(
        None, max_length=64, pattern=r"^[A-Za-z0-9_]*$", description="Has a finding with this code."
    )
    severity: Severity | None = Field(
        None, description="Has a finding with this severity; with `code`, one finding with both."
    )
    stale: bool | None = Field(None, description="Only bindings whose data is (not) stale.")


class FindingFilters(PageParams):
    cluster: str | None = _Name
    namespace: str | None = _Name
    protocol: Protocol | None = None
    code: str | None = Field(None, max_length=64, pattern=r"^[A-Za-z0-9_]*$")
    severity: Severity | None = None


class PollFilters(PageParams):
    cluster: str | None = _Name
    account: str | None = _Name
    status: Literal["running", "success", "failed", "held"] | None = None


class FixParams(Schema):
    format: Literal["json", "yaml"] | None = Field(None, description="Overrides the Accept header.")


class HistoryParams(Schema):
    limit: int = Field(200, ge=1, le=2000, description="The newest samples and transitions, oldest first.")


_ERRORS = {400: Problem, 401: Problem, 403: Problem, 404: Problem}

# --- who am I ----------------------------------------------------------------------------------


class WhoAmI(Schema):
    username: str
    scope: Literal["read", "write", "session"] = Field(
        ..., description="The token's scope, or `session` for the dashboard's login session."
    )


@api.get("/whoami", response={200: WhoAmI, **_ERRORS}, operation_id="whoami")
def whoami(request: HttpRequest) -> dict[str, Any]:
    """Who the credentials belong to. Authentication and nothing else: a client's credential
    check, and the floor `benchmarks/bench_api.py` measures the list endpoint against."""
    api_token = getattr(request, "api_token", None)
    return {
        "username": request.user.get_username(),
        "scope": str(api_token.scope) if api_token is not None else "session",
    }


# --- sources ----------------------------------------------------------------------------------


def _poll_summary(run: m.PollRun | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "id": run.pk,
        "status": run.status,
        "trigger": run.trigger,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "duration_ms": run.duration_ms,
        "api_calls": run.api_calls if isinstance(run.api_calls, dict) else {},
        "error": run.error,
        "note": run.note,
    }


@api.get("/clusters", response={200: list[ClusterOut], **_ERRORS}, operation_id="list_clusters")
def list_clusters(request: HttpRequest) -> list[dict[str, Any]]:
    """Every cluster with its poll status. Queries: clusters joined with accounts (1), binding
    counts (1)."""
    from django.db.models import Count

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
            "data_age_seconds": _age_seconds(c.last_success_at, now),
            "bindings": counts.get(c.pk, 0),
        }
        for c in clusters
    ]


@api.get("/accounts", response={200: list[AccountOut], **_ERRORS}, operation_id="list_accounts")
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
            "data_age_seconds": _age_seconds(a.last_success_at, now),
            "last_poll": _poll_summary(runs.get(a.pk)),
        }
        for a in accounts
    ]


# --- bindings ---------------------------------------------------------------------------------

BINDING_ORDER = ["cluster_id", "namespace", "name", "id"]
_CURSOR_TYPES = (int, str, str, int)


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
            age = None if None in successes else _age_seconds(min(successes), now)
            found = fresh[r["cluster_id"]] = (age, stale)
        analysed = r["result__analyzed_at"] is not None
        out.append(
            {
                "id": r["id"],
                "url": f"{list_sql.BINDING_URL}{r['id']}",
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
        cluster_name=filters.cluster,
        namespace=filters.namespace,
        protocol=filters.protocol,
        verdict=filters.verdict,
        code=filters.code,
        severity=filters.severity,
        stale=filters.stale,
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


def _result_of(binding: m.TargetGroupBinding) -> m.BindingResult | None:
    try:
        return binding.result
    except m.BindingResult.DoesNotExist:
        return None  # synced, not analysed yet


@api.get("/bindings", response={200: BindingPage, **_ERRORS}, operation_id="list_bindings")
def list_bindings(request: HttpRequest, filters: Query[BindingFilters]) -> HttpResponse:
    """Bindings, filtered, in a stable order (cluster, namespace, name, id), cursor-paginated.

    Queries on PostgreSQL: one, the page's JSON built by the database (`list_sql`); with
    `stale=`, the clusters first (1). Elsewhere three (`list_generic`). Filters are EXISTS
    subqueries in the same query.
    """
    now = timezone.now()
    keys = decode_cursor(filters.cursor, _CURSOR_TYPES) if filters.cursor else None
    if connection.vendor == "postgresql":
        return list_sql.list_response(request, filters, keys, now)
    return list_generic(request, filters, keys, now)


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


@api.get("/bindings/{binding_id}", response={200: BindingDetail, **_ERRORS}, operation_id="get_binding")
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
    age, stale = _binding_freshness(binding.cluster, now)
    protocols = [p for p in data.get("protocols") or [] if isinstance(p, dict)]
    findings = [f for f in data.get("findings") or [] if isinstance(f, dict)]
    sources = [binding.cluster] + ([binding.cluster.aws_account] if binding.cluster.aws_account_id else [])
    return {
        "id": binding.pk,
        "url": f"{list_sql.BINDING_URL}{binding.pk}",
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


@api.get(
    "/bindings/{binding_id}/fix",
    response={200: dict[str, Any], **_ERRORS},
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


@api.get(
    "/bindings/{binding_id}/history", response={200: HistoryOut, **_ERRORS}, operation_id="binding_history"
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


# --- findings ---------------------------------------------------------------------------------


@api.get("/findings", response={200: FindingPage, **_ERRORS}, operation_id="list_findings")
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
    if filters.cursor:
        qs = qs.filter(pk__gt=decode_cursor(filters.cursor, (int,))[0])
    rows = list(qs.order_by("pk")[: filters.limit + 1])
    cursor = None
    if len(rows) > filters.limit:
        rows = rows[: filters.limit]
        cursor = encode_cursor([rows[-1].pk])
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


# --- polls ------------------------------------------------------------------------------------


@api.get("/polls", response={200: PollPage, **_ERRORS}, operation_id="list_polls")
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
    if filters.cursor:
        qs = qs.filter(pk__lt=decode_cursor(filters.cursor, (int,))[0])
    rows = list(qs.order_by("-pk")[: filters.limit + 1])
    cursor = None
    if len(rows) > filters.limit:
        rows = rows[: filters.limit]
        cursor = encode_cursor([rows[-1].pk])
    items = []
    for run in rows:
        item = _poll_summary(run)
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


@api.post(
    "/polls",
    response={202: PollQueued, 409: Problem, **_ERRORS},
    operation_id="create_poll",
)
def create_poll(request: HttpRequest, body: PollRequest) -> Status | HttpResponse:
    """Enqueue a poll of one cluster or one account (after the request's transaction commits).

    Needs `bindings.poll_cluster` (clusters) or `bindings.poll_awsaccount` (accounts): held by the
    session's user, or by the owner of a read-write token. 409 when the source is disabled or a
    poll of it is running already. Queries: the source (1), the permission check (≤ 2).
    """
    from bindings.tasks import poll_account_task, poll_cluster_task, poll_running_since

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
    since = poll_running_since(kind, source.pk)
    if since is not None:
        return problem(
            409,
            "Conflict",
            f"A poll of the {kind} {source.name!r} is already running since "
            f"{since.isoformat(timespec='seconds')}; its result will show in GET /api/v1/polls.",
            running_since=since.isoformat(),
        )
    task = poll_cluster_task if kind == "cluster" else poll_account_task
    task.delay_on_commit(source.pk, "api")
    return Status(202, {"kind": kind, "id": source.pk, "name": source.name, "status": "queued"})
