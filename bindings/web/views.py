"""HTML views of the SRE dashboard: overview, bindings list, binding detail, fix panel, sources.

Function views, one template per page with inline partials (`dashboard/<page>.html#<partial>`
for htmx requests). Views read the database only; the one exception is the permission-guarded
fix dry-run/apply, which goes through `bindings.services.apply`.

Query counts are constant per page whatever the number of bindings (tests/test_pages.py asserts
them): lists page in the database and prefetch what a page of rows shows.

Live regions poll every 10 s while the tab is visible. Each page computes an ETag from what it
shows (newest result change, source polls, filter parameters, the user) *before* the expensive
queries, so an unchanged refresh answers 304 after two or three cheap queries.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import (
    Case,
    Count,
    F,
    IntegerField,
    Max,
    Prefetch,
    Q,
    QuerySet,
    Value,
    When,
)
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, HttpResponseNotModified
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.utils.dateparse import parse_datetime
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import trigger_client_event
from django_htmx.middleware import HtmxDetails

from bindings import models as m
from bindings.analysis import explain
from bindings.analysis.rules import rule_matches
from bindings.fixes import render as fix_render
from bindings.services import apply as fix_apply_module
from bindings.store.inventory import latest_probes
from bindings.store.querysets import filter_bindings
from bindings.vocabulary import FINDING_HELP, SEVERITIES, VERDICTS, Code, carried

PAGE_SIZE = 50
POLL_PERMISSION = m.Cluster.POLL_PERMISSION
# Labels of the vocabulary's verdicts and severities, in its order (worst severity first).
VERDICT_CHOICES = [(v, v.replace("_", " ")) for v in VERDICTS]
SEVERITY_CHOICES = [(s, s) for s in SEVERITIES]
CODE_RE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")


# --- plumbing ---------------------------------------------------------------------------------------


class HtmxHttpRequest(HttpRequest):
    """An HttpRequest after django-htmx's middleware (for type checkers)."""

    htmx: HtmxDetails


def _partial(request: HtmxHttpRequest) -> bool:
    """Render only a partial for htmx requests; boosted and history-restore requests need pages."""
    htmx = request.htmx
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def _etag(*parts: Any) -> str:
    return '"' + hashlib.sha256(repr(parts).encode()).hexdigest()[:32] + '"'


def _unchanged(request: HttpRequest, etag: str) -> bool:
    sent = request.headers.get("If-None-Match", "")
    return any(tag.strip().removeprefix("W/") == etag for tag in sent.split(",") if tag.strip())


def _with_etag(response: HttpResponse, etag: str) -> HttpResponse:
    """Browsers (and so htmx's XHRs) revalidate every time and get a 304 when nothing changed."""
    response["ETag"] = etag
    patch_cache_control(response, private=True, no_cache=True)
    return response


def _not_modified(etag: str) -> HttpResponse:
    return _with_etag(HttpResponseNotModified(), etag)


def _source_state(source: m.PolledSource | None) -> tuple[Any, ...]:
    if source is None:
        return ()
    # The TLS warning is shown with the cluster (a superuser may fix it without a poll).
    tls = source.tls_warning if isinstance(source, m.Cluster) else ""
    return (source.pk, source.last_success_at, source.last_polled_at, source.last_error, source.is_stale, tls)


def _newest_change() -> datetime | None:
    """When any result last changed, read from an index rather than by scanning results.

    `results_store` writes a HistorySample (indexed `at`) in the same transaction as every
    changed result, so the newest sample is at least as new as the newest `changed_at`; scanning
    BindingResult itself reads every wide `data` row (27 ms at 10,000 bindings). Bindings appear
    and vanish only in a poll, which moves its source's timestamps, part of every ETag too.
    """
    return m.HistorySample.objects.aggregate(at=Max("at"))["at"]


def _data_time(cluster: m.Cluster) -> datetime | None:
    """When the binding's data was last fully refreshed: the older of its two sources' polls."""
    times = [cluster.last_success_at]
    if cluster.aws_account is not None:
        times.append(cluster.aws_account.last_success_at)
    if any(t is None for t in times):
        return None
    return min(t for t in times if t is not None)


def _stale(cluster: m.Cluster) -> bool:
    return cluster.data_is_stale


def _perms(request: HttpRequest, cluster: m.Cluster | None = None) -> dict[str, Any]:
    user = request.user
    return {
        "can_poll": user.has_perm(POLL_PERMISSION),
        "apply_problem": fix_apply_module.permission_problem(user, cluster) if cluster is not None else "",
    }


# --- overview ---------------------------------------------------------------------------------------


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


@require_GET
@login_required
@vary_on_headers("HX-Request")
def overview(request: HtmxHttpRequest) -> HttpResponse:
    """Counts by verdict and severity per cluster, source health, and recent transitions."""
    clusters = list(m.Cluster.objects.select_related("aws_account").order_by("name"))
    accounts = list(m.AwsAccount.objects.order_by("name"))
    etag = _etag(
        "overview",
        _partial(request),
        request.user.pk,
        _newest_change(),
        [_source_state(c) for c in clusters],
        [_source_state(a) for a in accounts],
    )
    if _unchanged(request, etag):
        return _not_modified(etag)

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
    verdict_keys = [v for v, _ in VERDICT_CHOICES]
    severity_keys = [s for s, _ in SEVERITY_CHOICES] + ["none"]
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
                "stale": _stale(cluster),
            }
        )
    transitions = list(
        m.VerdictTransition.objects.select_related("binding", "binding__cluster").order_by("-at", "-pk")[:15]
    )
    context = {
        "worst": worst_bindings(),
        "green_but_broken": m.Finding.objects.filter(code=Code.HEALTH_CHECK_MASKS_TRAFFIC)
        .values("binding_id")
        .distinct()
        .count(),
        "rows": rows,
        "totals_verdict": list(totals_v.items()),
        "totals_severity": list(totals_s.items()),
        "total_pending": total_pending,
        "total_bindings": sum(totals_v.values()) + total_pending,
        "clusters": clusters,
        "accounts": accounts,
        "transitions": transitions,
        "now": timezone.now(),
        **_perms(request),
    }
    template = "dashboard/overview.html#live" if _partial(request) else "dashboard/overview.html"
    return _with_etag(render(request, template, context), etag)


# --- bindings list ----------------------------------------------------------------------------------

SORTS = {
    # key: (label, ordering when ascending); "-key" reverses every term.
    "verdict": ("verdict", [("vrank", True), ("srank", True), ("namespace", False), ("name", False)]),
    "severity": ("severity", [("srank", True), ("vrank", True), ("namespace", False), ("name", False)]),
    "name": ("name", [("namespace", False), ("name", False), ("cluster__name", False)]),
    "cluster": ("cluster", [("cluster__name", False), ("namespace", False), ("name", False)]),
    "health": ("health", [("result__unhealthy", True), ("namespace", False), ("name", False)]),
    "changed": ("changed", [("result__changed_at", True), ("namespace", False), ("name", False)]),
}


class BindingFilterForm(forms.Form):
    """The list's query parameters. Invalid values are dropped, never a server error."""

    q = forms.CharField(required=False, max_length=200, strip=True)
    cluster = forms.IntegerField(required=False, min_value=1)
    namespace = forms.CharField(required=False, max_length=253, strip=True)
    protocol = forms.ChoiceField(required=False, choices=[("", "any"), ("TCP", "TCP"), ("UDP", "UDP")])
    verdict = forms.ChoiceField(required=False, choices=[("", "any"), *VERDICT_CHOICES])
    code = forms.CharField(required=False, max_length=64, strip=True)
    severity = forms.ChoiceField(required=False, choices=[("", "any"), *SEVERITY_CHOICES])
    sort = forms.ChoiceField(
        required=False, choices=[(k, k) for k in SORTS] + [(f"-{k}", f"-{k}") for k in SORTS]
    )
    page = forms.IntegerField(required=False, min_value=1)

    def clean_code(self) -> str:
        code = self.cleaned_data.get("code", "")
        if code and not CODE_RE.match(code):
            raise forms.ValidationError("not a finding code")
        return code


def _filters(request: HttpRequest) -> tuple[dict[str, Any], list[str]]:
    form = BindingFilterForm(request.GET)
    form.is_valid()
    values = {name: form.cleaned_data.get(name) for name in form.fields if name in form.cleaned_data}
    errors = [f"{name}: {'; '.join(errs)}" for name, errs in form.errors.items()]
    return values, errors


def _ordering(sort: str) -> list[Any]:
    key = sort.lstrip("-") if sort else "verdict"
    reverse = sort.startswith("-")
    terms = []
    for name, descending in SORTS.get(key, SORTS["verdict"])[1]:
        descending = descending != reverse
        expr = F(name)
        terms.append(expr.desc(nulls_last=True) if descending else expr.asc(nulls_last=True))
    return terms


def binding_queryset(filters: dict[str, Any]) -> QuerySet[m.TargetGroupBinding]:
    """Bindings matching the list filters, annotated with sortable verdict/severity ranks."""
    qs = filter_bindings(
        m.TargetGroupBinding.objects.all(),
        cluster_id=filters.get("cluster"),
        namespace=filters.get("namespace"),
        protocol=filters.get("protocol"),
        verdict=filters.get("verdict"),
        code=filters.get("code"),
        severity=filters.get("severity"),
        text=filters.get("q"),
    )
    return qs.annotate(
        vrank=Case(
            *[When(result__worst_verdict=v, then=Value(rank)) for v, rank in m.VERDICT_RANK.items()],
            default=Value(m.VERDICT_RANK["unknown"]),
            output_field=IntegerField(),
        ),
        srank=Case(
            *[When(result__max_severity=s, then=Value(rank)) for s, rank in m.SEVERITY_RANK.items() if s],
            default=Value(0),
            output_field=IntegerField(),
        ),
    )


@dataclass
class BindingRow:
    """What one list row shows."""

    binding: m.TargetGroupBinding
    result: m.BindingResult | None
    verdicts: list[m.ProtocolVerdict]
    top_finding: m.Finding | None
    finding_count: int
    tg_protocol: str
    tg_port: int | None
    data_at: datetime | None
    stale: bool
    probes: list[m.ProbeResult]


def _rows(bindings: list[m.TargetGroupBinding]) -> list[BindingRow]:
    arns = {b.target_group_arn for b in bindings if b.target_group_arn}
    groups = {
        (tg.account_id, tg.arn): tg
        for tg in m.TargetGroup.objects.filter(arn__in=arns).only("account_id", "arn", "protocol", "port")
    }
    probes = latest_probes(b.pk for b in bindings)
    rows = []
    for binding in bindings:
        result = getattr(binding, "result", None)
        findings = list(binding.findings.all())
        top = max(findings, key=lambda f: (m.SEVERITY_RANK.get(f.severity, 0), -f.pk), default=None)
        tg = groups.get((binding.cluster.aws_account_id, binding.target_group_arn))
        verdicts = list(binding.verdicts.all())
        rows.append(
            BindingRow(
                binding=binding,
                result=result,
                verdicts=verdicts,
                top_finding=top,
                finding_count=len(findings),
                tg_protocol=(tg.protocol if tg else "") or binding.target_group_protocol,
                tg_port=tg.port if tg else (verdicts[0].port if verdicts else None),
                data_at=_data_time(binding.cluster),
                stale=_stale(binding.cluster),
                probes=[p for _, p in sorted(probes.get(binding.pk, {}).items())],
            )
        )
    return rows


def _sort_links(request: HttpRequest, current: str) -> dict[str, str]:
    """For each column, the sort value its header link sets (a second click reverses)."""
    current = current or "verdict"
    return {key: (f"-{key}" if current == key else key) for key in SORTS}


@require_GET
@login_required
@vary_on_headers("HX-Request")
def binding_list(request: HtmxHttpRequest) -> HttpResponse:
    """Every binding, filterable, sortable and paginated; the table alone for htmx requests."""
    filters, errors = _filters(request)
    partial = _partial(request)
    clusters = list(m.Cluster.objects.select_related("aws_account").order_by("name"))
    latest = _newest_change()
    etag = _etag(
        "list",
        partial,
        request.user.pk,
        sorted((k, str(v)) for k, v in filters.items()),
        latest,
        [_source_state(c) for c in clusters],
        [_source_state(c.aws_account) for c in clusters],
    )
    if _unchanged(request, etag):
        return _not_modified(etag)

    qs = (
        binding_queryset(filters)
        .select_related("cluster", "cluster__aws_account", "result")
        .defer("raw", "networking", "annotations", "events", "result__data")
        .prefetch_related(
            Prefetch("verdicts", queryset=m.ProtocolVerdict.objects.order_by("protocol")),
            Prefetch(
                "findings",
                queryset=m.Finding.objects.only(
                    "pk", "binding_id", "code", "severity", "protocol", "message"
                ),
            ),
        )
        .order_by(*_ordering(filters.get("sort") or ""))
    )
    # Sort and slice a narrow query (ids only), then load the page's 50 rows by id: sorting
    # 10,000 wide joined rows cost ~3x more in SQLite than sorting their keys.
    paginator = Paginator(qs.values_list("pk", flat=True), PAGE_SIZE)
    page = paginator.get_page(filters.get("page") or 1)
    ids = list(page.object_list)
    by_id = {b.pk: b for b in qs.filter(pk__in=ids).order_by()}
    rows = _rows([by_id[pk] for pk in ids if pk in by_id])
    context: dict[str, Any] = {
        "rows": rows,
        "page": page,
        "filters": filters,
        "filter_errors": errors,
        "sort": filters.get("sort") or "verdict",
        "sort_links": _sort_links(request, filters.get("sort") or ""),
        "clusters": clusters,
        "now": timezone.now(),
        "filtered": any(
            filters.get(k) for k in ("q", "cluster", "namespace", "protocol", "verdict", "code", "severity")
        ),
    }
    if partial:
        return _with_etag(render(request, "dashboard/binding_list.html#table", context), etag)
    context["namespaces"] = list(
        m.TargetGroupBinding.objects.order_by("namespace").values_list("namespace", flat=True).distinct()
    )
    context["codes"] = sorted(
        set(m.Finding.objects.values_list("code", flat=True).distinct()) | set(FINDING_HELP)
    )
    context["verdict_choices"] = VERDICT_CHOICES
    context["severity_choices"] = SEVERITY_CHOICES
    return _with_etag(render(request, "dashboard/binding_list.html", context), etag)


# --- binding detail ---------------------------------------------------------------------------------


@dataclass
class Hop:
    """One box of the path diagram."""

    kind: str
    title: str
    lines: list[str] = field(default_factory=list)
    state: str = "ok"  # ok | fail | warn | unknown
    note: str = ""


def _rule_text(rule: m.SecurityGroupRule) -> str:
    if rule.from_port is None:
        ports = "all ports"
    elif rule.from_port == rule.to_port:
        ports = str(rule.from_port)
    else:
        ports = f"{rule.from_port}-{rule.to_port}"
    protocol = "all" if rule.protocol == "-1" else rule.protocol
    return f"{protocol} {ports} from {rule.source}"


def _rule_matches(rule: m.SecurityGroupRule, protocol: str, port: int | None) -> bool:
    """Protocol and port match as the analysis matches them (it also checks the source; this only
    explains). An unknown port matches any rule of the protocol."""
    if port is None:
        return rule_matches(rule.protocol, None, None, protocol, 0)
    return rule_matches(rule.protocol, rule.from_port, rule.to_port, protocol, port)


def _path(
    pv: dict[str, Any],
    *,
    listeners: list[m.Listener],
    load_balancers: dict[str, m.LoadBalancer],
    target_group: m.TargetGroup | None,
    health: dict[str, Any],
) -> list[Hop]:
    """Clients -> listener -> target group -> targets -> rules, with the failing hop marked."""
    protocol, port, verdict = pv.get("protocol", ""), pv.get("port"), pv.get("verdict", "unknown")
    sources = pv.get("expected_sources") or []
    preserved = pv.get("client_ip_preserved")
    clients = Hop(
        "clients",
        "Clients" if preserved else "Load balancer",
        [", ".join(sources) or "no expected sources known"],
        note="client IP preserved: targets see the clients' addresses"
        if preserved
        else "client IP not preserved: targets see the load balancer's addresses",
    )
    carrying = [lst for lst in listeners if protocol in carried(lst.protocol)]
    listener_lines = []
    for lst in carrying:
        lb = load_balancers.get(lst.load_balancer_arn)
        lb_text = f"{lb.name} ({lb.scheme})" if lb else "unknown load balancer"
        listener_lines.append(f"{lst.protocol}:{lst.port} on {lb_text}")
    listener = Hop("listener", "Listener", listener_lines or [f"no listener forwards {protocol}"])
    if verdict == "not_offered" or not carrying:
        listener.state = "fail" if verdict == "not_offered" else "unknown"
    if target_group is None:
        group = Hop(
            "target-group",
            "Target group",
            ["not found in AWS"],
            state="fail" if verdict == "unknown" else "unknown",
        )
    else:
        hc_port = health.get("port") or target_group.health_check_port
        group = Hop(
            "target-group",
            "Target group",
            [
                f"{target_group.name} {target_group.protocol}:{target_group.port}",
                f"health check {health.get('protocol') or target_group.health_check_protocol} {hc_port}",
            ],
        )
    total, admitted = pv.get("targets_total", 0), pv.get("targets_admitted", 0)
    targets = Hop("targets", "Targets", [f"{admitted} of {total} admit {protocol} {port}"])
    matched = sorted({rule for t in pv.get("targets", []) for rule in t.get("matched_rules", [])})
    uncovered = sorted({src for t in pv.get("targets", []) for src in t.get("uncovered_sources", [])})
    rules = Hop("rules", "Security-group rules", matched or [f"no rule admits {protocol.lower()} {port}"])
    if uncovered:
        rules.lines.append("not covered: " + ", ".join(uncovered))
    if verdict == "blocked":
        targets.state, rules.state = "warn", "fail"
        rules.note = f"{protocol} {port} is dropped here"
    elif verdict == "partial":
        targets.state, rules.state = "warn", "fail"
        rules.note = "only part of the targets or sources are admitted"
    elif verdict == "unknown" and target_group is not None:
        targets.state = rules.state = "unknown"
        targets.note = "data needed for the judgement is missing"
    if listener.state == "fail":
        listener.note = f"{protocol} is not offered to this target group"
    hops = [clients, listener, group, targets, rules]
    # The network ACL of the targets' subnet, when it refuses: the entries, as the analysis names
    # them (rule number, direction, ports). Where the security groups admit the traffic, the
    # rules hop is not the one that fails.
    refused = [t for t in pv.get("targets", []) if t.get("admitted") is False]
    acl_lines = sorted(
        {
            piece.strip()
            for t in refused
            for piece in re.split(r"; |, but ", str(t.get("reason", "")))
            if piece.strip().startswith("network ACL")
        }
    )
    if acl_lines:
        acl = Hop("network-acl", "Network ACL (target subnet)", acl_lines[:10], state="fail")
        acl.note = f"{protocol} {port} is refused here (ACLs are stateless: replies need outbound entries)"
        if all(str(t.get("reason", "")).startswith("the security groups admit") for t in refused):
            rules.state, rules.note = "ok", "the security groups admit it"
        hops.append(acl)
    return hops


def _health_warnings(data: dict[str, Any], target_group: m.TargetGroup | None) -> list[str]:
    """E.g. "TCP 53 healthy proves nothing about UDP 53": a carried protocol the check never uses."""
    health = data.get("health_check") or {}
    hc_protocol = (health.get("protocol") or "").upper()
    if not hc_protocol:
        return []
    hc_family = "TCP" if hc_protocol in ("TCP", "HTTP", "HTTPS") else hc_protocol
    hc_port = health.get("port")
    warnings = []
    for pv in data.get("protocols", []):
        port = pv.get("port")
        shown_port = port if hc_port in (None, "", "traffic-port") else hc_port
        if pv.get("protocol") != hc_family:
            warnings.append(
                f"{hc_protocol} {shown_port} healthy proves nothing about {pv.get('protocol')} {port}: "
                f"NLB health checks never use {pv.get('protocol')}."
            )
        elif hc_port not in (None, "", "traffic-port") and str(hc_port) != str(port):
            warnings.append(
                f"{hc_protocol} {hc_port} healthy proves nothing about "
                f"{pv.get('protocol')} {port}: another port."
            )
    return warnings


def _cross_zone(target_group: m.TargetGroup | None, load_balancers: dict[str, m.LoadBalancer]) -> str:
    """The target group's cross-zone attribute, and what it resolves to from its load balancers."""
    if target_group is None or target_group.attributes is None:
        return ""
    value = str(
        target_group.attributes.get("load_balancing.cross_zone.enabled") or "use_load_balancer_configuration"
    )
    if value != "use_load_balancer_configuration":
        return value
    # NLBs default to off at the load balancer level.
    resolved = sorted(
        {
            str((lb.attributes or {}).get("load_balancing.cross_zone.enabled", "false"))
            for lb in load_balancers.values()
            if lb.attributes is not None
        }
    )
    return f"{value} ({', '.join(resolved)} on the load balancer)" if resolved else value


def _target_rows(
    data: dict[str, Any],
    registered: list[m.RegisteredTarget],
    enis: dict[str, m.NetworkInterface],
    endpoints: dict[str, dict[str, Any]],
    nodes: dict[str, m.KubeNode],
) -> list[dict[str, Any]]:
    """One row per target: AWS health joined with the per-protocol judgement and Kubernetes names."""
    judged: dict[tuple[str, Any], dict[str, dict[str, Any]]] = {}
    for pv in data.get("protocols", []):
        for t in pv.get("targets", []):
            judged.setdefault((t.get("target_id"), t.get("port")), {})[pv.get("protocol")] = t
    keys = [(r.target_id, r.port) for r in registered]
    keys += [k for k in judged if k not in set(keys)]
    # Targets another cluster registered in a multi-cluster group (`OTHER_CLUSTER_TARGETS`).
    other_cluster = {
        str(label)
        for f in data.get("findings", [])
        if f.get("code") == Code.OTHER_CLUSTER_TARGETS
        for label in (f.get("evidence") or {}).get("targets") or []
    }
    by_key = {(r.target_id, r.port): r for r in registered}
    rows = []
    for key in keys:
        reg = by_key.get(key)
        per_protocol = judged.get(key, {})
        any_t = next(iter(per_protocol.values()), {})
        eni = enis.get(any_t.get("network_interface_id") or "")
        endpoint = endpoints.get(key[0] or "", {})
        node = nodes.get(key[0] or "") or nodes.get(endpoint.get("node_name") or "")
        rows.append(
            {
                "target_id": key[0],
                "port": key[1],
                "zone": (reg.availability_zone if reg else "")
                or (eni.availability_zone if eni else "")
                or (node.zone if node else ""),
                "pod": endpoint.get("pod_name") or "",
                "node": endpoint.get("node_name") or (node.name if node else ""),
                "state": reg.state if reg else "not registered",
                "reason": (reg.reason if reg else "") or "",
                "description": (reg.description if reg else "") or "",
                "other_cluster": f"{key[0]}:{key[1]}" in other_cluster and not per_protocol,
                "quic_server_id": (reg.quic_server_id if reg else "") or "",
                "eni": any_t.get("network_interface_id") or "",
                "security_groups": any_t.get("security_group_ids") or (eni.security_group_ids if eni else []),
                "protocols": [
                    (protocol, t.get("admitted"), t.get("reason", ""))
                    for protocol, t in sorted(per_protocol.items())
                ],
            }
        )
    return rows


def _binding_for_user(request: HttpRequest, pk: int) -> m.TargetGroupBinding:
    """Every signed-in user reads every binding; apply/poll rights are checked per action."""
    return get_object_or_404(
        m.TargetGroupBinding.objects.select_related("cluster", "cluster__aws_account", "result"), pk=pk
    )


def _detail_etag(
    request: HtmxHttpRequest, binding: m.TargetGroupBinding, result: m.BindingResult | None
) -> str:
    return _etag(
        "detail",
        _partial(request),
        request.user.pk,
        binding.pk,
        binding.resource_version,
        result.changed_at if result else None,
        _source_state(binding.cluster),
        _source_state(binding.cluster.aws_account),
        m.FixApplication.objects.filter(binding=binding)
        .order_by("-at", "-pk")
        .values_list("pk", flat=True)
        .first(),
    )


# How long an applied fix is shown as waiting for the controller before the page stops saying so.
APPLY_WAIT = timedelta(hours=1)


def next_poll_seconds(cluster: m.Cluster) -> int | None:
    """Seconds until the poll that would show the controller's work (the account's, which reads
    the security groups; else the cluster's), or None when none is scheduled."""
    account = cluster.aws_account
    due = (account.next_poll_at if account is not None else None) or cluster.next_poll_at
    if due is None:
        return None
    return max(0, int((due - timezone.now()).total_seconds()))


def applied_state(binding: m.TargetGroupBinding, result: m.BindingResult | None) -> dict[str, Any] | None:
    """The newest successful Apply of this binding while it is still news: who, when, and whether
    the verdicts have caught up (`waiting` until every protocol is reachable)."""
    audit = (
        m.FixApplication.objects.filter(binding=binding, status=m.FixApplication.Status.APPLIED)
        .select_related("user")
        .order_by("-at", "-pk")
        .first()
    )
    if audit is None or timezone.now() - audit.at > APPLY_WAIT:
        return None
    verdicts = [pv.get("verdict") for pv in ((result.data or {}).get("protocols") or [])] if result else []
    judged_after = result is not None and result.analyzed_at >= audit.at
    waiting = not (judged_after and verdicts and all(v == "reachable" for v in verdicts))
    seconds = next_poll_seconds(binding.cluster)
    return {
        "audit": audit,
        "by": audit.user.get_username() if audit.user else "unknown user",
        "waiting": waiting,
        "next_poll": f"next poll in ~{seconds} s" if seconds is not None else "no poll scheduled",
    }


def binding_context(binding: m.TargetGroupBinding) -> dict[str, Any]:
    """Everything the detail page shows, in a constant number of queries."""
    result: m.BindingResult | None = getattr(binding, "result", None)
    data = result.data if result else {}
    account = binding.cluster.aws_account
    target_group = None
    registered: list[m.RegisteredTarget] = []
    listeners: list[m.Listener] = []
    load_balancers: dict[str, m.LoadBalancer] = {}
    enis: dict[str, m.NetworkInterface] = {}
    groups: list[m.SecurityGroup] = []
    if account is not None and binding.target_group_arn:
        target_group = m.TargetGroup.objects.filter(account=account, arn=binding.target_group_arn).first()
        registered = list(
            m.RegisteredTarget.objects.filter(
                account=account, target_group_arn=binding.target_group_arn
            ).order_by("target_id", "port")
        )
    if target_group is not None and target_group.load_balancer_arns:
        load_balancers = {
            lb.arn: lb
            for lb in m.LoadBalancer.objects.filter(account=account, arn__in=target_group.load_balancer_arns)
        }
        listeners = [
            lst
            for lst in m.Listener.objects.filter(
                account=account, load_balancer_arn__in=target_group.load_balancer_arns
            ).order_by("port", "protocol")
            if binding.target_group_arn in (lst.target_group_arns or [])
        ]
    eni_ids = {
        t.get("network_interface_id") for pv in data.get("protocols", []) for t in pv.get("targets", [])
    }
    eni_ids.discard(None)
    if account is not None and eni_ids:
        enis = {e.eni_id: e for e in m.NetworkInterface.objects.filter(account=account, eni_id__in=eni_ids)}
    sg_ids = {
        sg
        for pv in data.get("protocols", [])
        for t in pv.get("targets", [])
        for sg in t.get("security_group_ids", [])
    }
    if account is not None and sg_ids:
        groups = list(
            m.SecurityGroup.objects.filter(account=account, group_id__in=sg_ids)
            .prefetch_related(
                Prefetch(
                    "rules",
                    queryset=m.SecurityGroupRule.objects.filter(egress=False).order_by(
                        "protocol", "from_port"
                    ),
                )
            )
            .order_by("group_id")
        )
    endpoints: dict[str, dict[str, Any]] = {}
    if binding.service_name:
        for eps in m.KubeEndpointSlice.objects.filter(
            cluster=binding.cluster, namespace=binding.namespace, service_name=binding.service_name
        ).only("endpoints"):
            for endpoint in eps.endpoints or []:
                for address in endpoint.get("addresses") or []:
                    endpoints[address] = endpoint
    instance_ids = [r.target_id for r in registered if r.target_id.startswith("i-")]
    node_names = [e.get("node_name") for e in endpoints.values() if e.get("node_name")]
    nodes: dict[str, m.KubeNode] = {}
    if instance_ids or node_names:
        for node in m.KubeNode.objects.filter(cluster=binding.cluster).filter(
            Q(instance_id__in=instance_ids) | Q(name__in=node_names)
        ):
            nodes[node.name] = node
            if node.instance_id:
                nodes[node.instance_id] = node

    protocols = data.get("protocols", [])
    health = data.get("health_check") or {}
    paths = [
        {
            "pv": pv,
            "hops": _path(
                pv,
                listeners=listeners,
                load_balancers=load_balancers,
                target_group=target_group,
                health=health,
            ),
        }
        for pv in protocols
    ]
    rule_rows = []
    for group in groups:
        for rule in group.rules.all():
            rule_rows.append(
                {
                    "group": group,
                    "rule": rule,
                    "text": _rule_text(rule),
                    "matches": [
                        (pv.get("protocol"), _rule_matches(rule, pv.get("protocol", ""), pv.get("port")))
                        for pv in protocols
                    ],
                }
            )
    findings = sorted(
        data.get("findings", []),
        key=lambda f: (-m.SEVERITY_RANK.get(f.get("severity", ""), 0), f.get("code", "")),
    )
    for finding in findings:
        finding["help"] = FINDING_HELP.get(finding.get("code", ""), "")
        finding["evidence_items"] = [
            (key, ", ".join(str(v) for v in value) if isinstance(value, list | tuple) else str(value))
            for key, value in (finding.get("evidence") or {}).items()
        ]
    target_rules = [
        explain.Rule(group.group_id, rule.protocol, rule.from_port, rule.to_port)
        for group in groups
        for rule in group.rules.all()
    ]
    applied = applied_state(binding, result)
    has_fix = bool(data.get("fix"))
    causes = [
        {
            "pv": pv,
            "sentence": explain.root_cause(pv, target_rules),
            # The fix button sits beside the protocol it fixes, and only while there is one to review.
            "show_fix": has_fix
            and pv.get("verdict") in ("blocked", "partial")
            and pv.get("protocol") in (data.get("fix") or {}).get("protocols", [pv.get("protocol")])
            and not (applied and applied["waiting"]),
        }
        for pv in protocols
    ]
    since = timezone.now() - timedelta(days=7)
    samples = list(m.HistorySample.objects.filter(binding=binding, at__gte=since).order_by("-at")[:500])
    samples.reverse()
    transitions = list(m.VerdictTransition.objects.filter(binding=binding).order_by("-at", "-pk")[:20])
    # Live probes: the newest result per protocol next to the static verdict, and the recent ones.
    probe_history = list(m.ProbeResult.objects.filter(binding=binding).order_by("-at", "-pk")[:20])
    latest: dict[str, m.ProbeResult] = {}
    for probe in probe_history:
        latest.setdefault(probe.protocol, probe)
    for cause in causes:
        probe = latest.get(cause["pv"].get("protocol"))
        cause["disagrees"] = explain.probe_disagreement(
            cause["pv"].get("verdict"), probe.status if probe else None
        )
        if probe is not None:
            probe.disagrees = cause["disagrees"]  # the probe table marks it too
    labels = ((binding.raw or {}).get("metadata") or {}).get("labels") or {}
    return {
        "binding": binding,
        "labels": labels if isinstance(labels, dict) else {},
        "result": result,
        "data": data,
        "protocols": protocols,
        "protocol_names": [pv.get("protocol") for pv in protocols],
        "paths": paths,
        "health": health,
        "health_warnings": _health_warnings(data, target_group),
        "cross_zone": _cross_zone(target_group, load_balancers),
        "target_group": target_group,
        "load_balancers": list(load_balancers.values()),
        "listeners": listeners,
        "targets": _target_rows(data, registered, enis, endpoints, nodes),
        "rule_rows": rule_rows,
        "groups": groups,
        "findings": findings,
        "finding_groups": explain.group_findings(findings),
        "causes": causes,
        "applied": applied,
        "events": binding.events or [],
        "samples": samples,
        "transitions": transitions,
        "data_at": _data_time(binding.cluster),
        "stale": _stale(binding.cluster),
        "now": timezone.now(),
        "has_fix": has_fix,
        "probes_latest": [latest[k] for k in sorted(latest)],
        "probe_history": probe_history,
    }


@require_GET
@login_required
@vary_on_headers("HX-Request")
def binding_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """One binding: per-protocol paths, health check, targets, rules, findings, timeline."""
    binding = _binding_for_user(request, pk)
    result = getattr(binding, "result", None)
    etag = _detail_etag(request, binding, result)
    if _unchanged(request, etag):
        return _not_modified(etag)
    context = binding_context(binding)
    # The last-poll line is part of the live region: it refreshes with the verdicts.
    context.update(_poll_context(request, binding.cluster, None))
    context.update(_perms(request, binding.cluster))
    template = "dashboard/binding_detail.html#live" if _partial(request) else "dashboard/binding_detail.html"
    return _with_etag(render(request, template, context), etag)


# --- fix panel, download, dry-run and apply -----------------------------------------------------------


def _as_text(item: Any) -> str:
    """Alternatives may be plain strings or small dicts; show commands as text either way."""
    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        for key in ("command", "cli", "text"):
            if isinstance(item.get(key), str):
                return item[key]
    return fix_render.to_yaml(item).strip()


def _fix_context(request: HttpRequest, binding: m.TargetGroupBinding) -> dict[str, Any]:
    fix = fix_apply_module.stored_fix(binding)
    manifest_yaml = fix_render.stored_manifest_yaml(fix)
    health_commands = []
    for item in (fix or {}).get("healthCheck") or []:
        if isinstance(item, dict):
            health_commands.append({"command": _as_text(item), "reason": item.get("reason", "")})
        else:
            health_commands.append({"command": _as_text(item), "reason": ""})
    return {
        "binding": binding,
        "fix": fix,
        "manifest_yaml": manifest_yaml,
        "patch_command": ((fix or {}).get("patch") or {}).get("kubectl", "") if fix else "",
        "sg_commands": [_as_text(c) for c in (fix or {}).get("securityGroupCommands") or []],
        "acl_commands": [_as_text(c) for c in (fix or {}).get("networkAclCommands") or []],
        "terraform": (fix or {}).get("terraform") or "",
        "health_commands": health_commands,
        "warnings": [_as_text(w) for w in (fix or {}).get("warnings") or []],
        "fix_targets": (fix or {}).get("targets") or [],
        "explanation": [
            line for line in str((fix or {}).get("explanation") or "").splitlines() if line.strip()
        ],
        "audits": list(
            m.FixApplication.objects.filter(binding=binding).select_related("user").order_by("-at", "-pk")[:5]
        ),
        "applied": applied_state(binding, getattr(binding, "result", None)),
        **_perms(request, binding.cluster),
    }


@require_GET
@login_required
def binding_fix(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The stored fix: manifest, patch command, alternatives, explanation, apply controls."""
    binding = _binding_for_user(request, pk)
    context = _fix_context(request, binding)
    template = "dashboard/binding_fix.html#panel" if _partial(request) else "dashboard/binding_fix.html"
    return render(request, template, context)


@require_GET
@login_required
def binding_fix_yaml(request: HttpRequest, pk: int) -> HttpResponse:
    """Download the fix manifest as a YAML file."""
    binding = _binding_for_user(request, pk)
    text = fix_render.stored_manifest_yaml(fix_apply_module.stored_fix(binding))
    if not text:
        return HttpResponse("No automatic fix for this binding.\n", status=404, content_type="text/plain")
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{binding.namespace}-{binding.name}")[:150]
    response = HttpResponse(text, content_type="application/yaml; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{safe}-fix.yaml"'
    return response


def _apply_response(
    request: HtmxHttpRequest, binding: m.TargetGroupBinding, outcome: fix_apply_module.Outcome, step: str
) -> HttpResponse:
    context = _fix_context(request, binding)
    context.update(
        {"outcome": outcome, "step": step, "review_minutes": max(1, settings.BH_APPLY_REVIEW_SECONDS // 60)}
    )
    status = 403 if outcome.status == m.FixApplication.Status.DENIED else 200
    template = "dashboard/binding_fix.html#apply" if _partial(request) else "dashboard/binding_fix.html"
    response = render(request, template, context, status=status)
    if outcome.status == m.FixApplication.Status.APPLIED:
        # The detail page's live region shows "waiting for the controller" at once, not at its next tick.
        trigger_client_event(response, "bh:applied")
    return response


@require_POST
@login_required
def binding_fix_dry_run(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Step 1 of applying, the review: a server-side dry-run (or a clearly labelled local diff),
    recorded with the exact patch an apply of it sends."""
    binding = _binding_for_user(request, pk)
    outcome = fix_apply_module.fix_dry_run(binding=binding, user=request.user)
    return _apply_response(request, binding, outcome, "dry-run")


@require_POST
@login_required
def binding_fix_apply(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Step 2: send the patch of the dry-run named in the form (`bindings.services.apply.apply_reviewed`)."""
    binding = _binding_for_user(request, pk)
    outcome = fix_apply_module.apply_reviewed(
        request.POST.get("dry_run", "")[:20], request.user, binding=binding
    )
    return _apply_response(request, binding, outcome, "apply")


# --- polls: "Poll now" and its progress ----------------------------------------------------------------

POLL_QUEUE_PATIENCE = timedelta(minutes=2)


def _poll_context(request: HttpRequest, cluster: m.Cluster, since: datetime | None) -> dict[str, Any]:
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
        **_perms(request),
    }


@require_GET
@login_required
def cluster_poll_status(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The newest poll of a cluster; keeps polling itself while one is queued or running."""
    cluster = get_object_or_404(m.Cluster, pk=pk)
    since = parse_datetime(request.GET.get("since", "")) if request.GET.get("since") else None
    context = _poll_context(request, cluster, since)
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
    if not request.user.has_perm(POLL_PERMISSION):
        return HttpResponseForbidden(f"You do not have the permission to poll clusters ({POLL_PERMISSION}).")
    # the view module must not need Celery to import
    from bindings.tasks import poll_cluster_task, poll_running_since

    running_since = poll_running_since("cluster", cluster.pk)
    since = timezone.now()
    if running_since is None:
        poll_cluster_task.delay_on_commit(cluster.pk, "dashboard")
    next_url = request.POST.get("next", "")
    if _partial(request):
        context = _poll_context(request, cluster, None if running_since else since)
        context["next"] = next_url
        context["running_since"] = running_since
        return render(request, "dashboard/_poll.html", context)
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = reverse("dashboard:cluster-detail", args=[cluster.pk])
    return redirect(next_url)


# --- sources -------------------------------------------------------------------------------------------


def _poll_rows(runs: list[m.PollRun]) -> list[dict[str, Any]]:
    return [
        {
            "run": run,
            "calls": run.total_api_calls,
            "breakdown": ", ".join(f"{k} {v}" for k, v in sorted((run.api_calls or {}).items())),
        }
        for run in runs
    ]


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
        "counts": [(v, counts.get(v, 0)) for v, _ in VERDICT_CHOICES],
        "polls": _poll_rows(runs),
        "stale": _stale(cluster),
        **_poll_context(request, cluster, None),
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
        "polls": _poll_rows(runs),
    }
    return render(request, "dashboard/account_detail.html", context)
