"""The bindings list (filter, sort, paginate) and one binding's detail page."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Case, IntegerField, Prefetch, Q, QuerySet, Value, When
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from bindings import models as m
from bindings.analysis import explain
from bindings.store.querysets import filter_bindings
from bindings.vocabulary import FINDING_HELP
from bindings.web import http, presenters
from bindings.web.forms import SORTS, ordering, parse_filters
from bindings.web.http import HtmxHttpRequest
from bindings.web.presenters import SEVERITY_CHOICES, VERDICT_CHOICES
from bindings.web.views.sources import poll_context

PAGE_SIZE = 50


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


def _sort_links(current: str) -> dict[str, str]:
    """For each column, the sort value its header link sets (a second click reverses)."""
    current = current or "verdict"
    return {key: (f"-{key}" if current == key else key) for key in SORTS}


def _page_rows(filters: dict[str, Any]) -> tuple[Any, list[presenters.BindingRow]]:
    """The requested page of the filtered, sorted list, and its rows."""
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
        .order_by(*ordering(filters.get("sort") or ""))
    )
    # Sort and slice a narrow query (ids only), then load the page's 50 rows by id: sorting
    # 10,000 wide joined rows cost ~3x more in SQLite than sorting their keys.
    paginator = Paginator(qs.values_list("pk", flat=True), PAGE_SIZE)
    page = paginator.get_page(filters.get("page") or 1)
    ids = list(page.object_list)
    by_id = {b.pk: b for b in qs.filter(pk__in=ids).order_by()}
    return page, presenters.binding_rows([by_id[pk] for pk in ids if pk in by_id])


@require_GET
@login_required
@vary_on_headers("HX-Request")
def binding_list(request: HtmxHttpRequest) -> HttpResponse:
    """Every binding, filterable, sortable and paginated; the table alone for htmx requests."""
    filters, errors = parse_filters(request)
    partial = http.is_partial(request)
    clusters = list(m.Cluster.objects.select_related("aws_account").order_by("name"))
    tag = http.etag(
        "list",
        partial,
        request.user.pk,
        sorted((k, str(v)) for k, v in filters.items()),
        http.newest_change(),
        [http.source_state(c) for c in clusters],
        [http.source_state(c.aws_account) for c in clusters],
    )
    if http.unchanged(request, tag):
        return http.not_modified(tag)

    page, rows = _page_rows(filters)
    context: dict[str, Any] = {
        "rows": rows,
        "page": page,
        "filters": filters,
        "filter_errors": errors,
        "sort": filters.get("sort") or "verdict",
        "sort_links": _sort_links(filters.get("sort") or ""),
        "clusters": clusters,
        "now": timezone.now(),
        "filtered": any(
            filters.get(k) for k in ("q", "cluster", "namespace", "protocol", "verdict", "code", "severity")
        ),
    }
    if partial:
        return http.with_etag(render(request, "dashboard/binding_list.html#table", context), tag)
    context["namespaces"] = list(
        m.TargetGroupBinding.objects.order_by("namespace").values_list("namespace", flat=True).distinct()
    )
    context["codes"] = sorted(
        set(m.Finding.objects.values_list("code", flat=True).distinct()) | set(FINDING_HELP)
    )
    context["verdict_choices"] = VERDICT_CHOICES
    context["severity_choices"] = SEVERITY_CHOICES
    return http.with_etag(render(request, "dashboard/binding_list.html", context), tag)


# --- binding detail ---------------------------------------------------------------------------------


@dataclass
class _Inventory:
    """The AWS and Kubernetes objects behind one binding, as the detail page shows them."""

    target_group: m.TargetGroup | None = None
    registered: list[m.RegisteredTarget] = field(default_factory=list)
    listeners: list[m.Listener] = field(default_factory=list)
    load_balancers: dict[str, m.LoadBalancer] = field(default_factory=dict)
    enis: dict[str, m.NetworkInterface] = field(default_factory=dict)
    groups: list[m.SecurityGroup] = field(default_factory=list)
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    nodes: dict[str, m.KubeNode] = field(default_factory=dict)


def _load_aws(inv: _Inventory, binding: m.TargetGroupBinding, data: dict[str, Any]) -> None:
    account = binding.cluster.aws_account
    if account is None:
        return
    if binding.target_group_arn:
        inv.target_group = m.TargetGroup.objects.filter(account=account, arn=binding.target_group_arn).first()
        inv.registered = list(
            m.RegisteredTarget.objects.filter(
                account=account, target_group_arn=binding.target_group_arn
            ).order_by("target_id", "port")
        )
    if inv.target_group is not None and inv.target_group.load_balancer_arns:
        lb_arns = inv.target_group.load_balancer_arns
        inv.load_balancers = {
            lb.arn: lb for lb in m.LoadBalancer.objects.filter(account=account, arn__in=lb_arns)
        }
        inv.listeners = [
            lst
            for lst in m.Listener.objects.filter(account=account, load_balancer_arn__in=lb_arns).order_by(
                "port", "protocol"
            )
            if binding.target_group_arn in (lst.target_group_arns or [])
        ]
    targets = [t for pv in data.get("protocols", []) for t in pv.get("targets", [])]
    eni_ids = {t.get("network_interface_id") for t in targets}
    eni_ids.discard(None)
    if eni_ids:
        inv.enis = {
            e.eni_id: e for e in m.NetworkInterface.objects.filter(account=account, eni_id__in=eni_ids)
        }
    sg_ids = {sg for t in targets for sg in t.get("security_group_ids", [])}
    if sg_ids:
        inbound = m.SecurityGroupRule.objects.filter(egress=False).order_by("protocol", "from_port")
        inv.groups = list(
            m.SecurityGroup.objects.filter(account=account, group_id__in=sg_ids)
            .prefetch_related(Prefetch("rules", queryset=inbound))
            .order_by("group_id")
        )


def _load_kube(inv: _Inventory, binding: m.TargetGroupBinding) -> None:
    if binding.service_name:
        for eps in m.KubeEndpointSlice.objects.filter(
            cluster=binding.cluster, namespace=binding.namespace, service_name=binding.service_name
        ).only("endpoints"):
            for endpoint in eps.endpoints or []:
                for address in endpoint.get("addresses") or []:
                    inv.endpoints[address] = endpoint
    instance_ids = [r.target_id for r in inv.registered if r.target_id.startswith("i-")]
    node_names = [e.get("node_name") for e in inv.endpoints.values() if e.get("node_name")]
    if instance_ids or node_names:
        for node in m.KubeNode.objects.filter(cluster=binding.cluster).filter(
            Q(instance_id__in=instance_ids) | Q(name__in=node_names)
        ):
            inv.nodes[node.name] = node
            if node.instance_id:
                inv.nodes[node.instance_id] = node


def _rule_rows(groups: list[m.SecurityGroup], protocols: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "group": group,
            "rule": rule,
            "text": presenters.rule_text(rule),
            "matches": [
                (pv.get("protocol"), presenters.rule_matches(rule, pv.get("protocol", ""), pv.get("port")))
                for pv in protocols
            ],
        }
        for group in groups
        for rule in group.rules.all()
    ]


def _findings(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The result's findings, most severe first, with their help text and evidence as text."""
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
    return findings


def _causes(
    data: dict[str, Any], groups: list[m.SecurityGroup], applied: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """Per protocol its root-cause sentence, and whether the fix button sits beside it."""
    target_rules = [
        explain.Rule(group.group_id, rule.protocol, rule.from_port, rule.to_port)
        for group in groups
        for rule in group.rules.all()
    ]
    fix = data.get("fix")
    return [
        {
            "pv": pv,
            "sentence": explain.root_cause(pv, target_rules),
            # The fix button sits beside the protocol it fixes, and only while there is one to review.
            "show_fix": bool(fix)
            and pv.get("verdict") in ("blocked", "partial")
            and pv.get("protocol") in (fix or {}).get("protocols", [pv.get("protocol")])
            and not (applied and applied["waiting"]),
        }
        for pv in data.get("protocols", [])
    ]


def _probes(binding: m.TargetGroupBinding, causes: list[dict[str, Any]]) -> dict[str, Any]:
    """Live probes: the newest result per protocol next to the static verdict, and the recent ones."""
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
    return {"probes_latest": [latest[k] for k in sorted(latest)], "probe_history": probe_history}


def binding_context(binding: m.TargetGroupBinding) -> dict[str, Any]:
    """Everything the detail page shows, in a constant number of queries."""
    result: m.BindingResult | None = getattr(binding, "result", None)
    data = result.data if result else {}
    inv = _Inventory()
    _load_aws(inv, binding, data)
    _load_kube(inv, binding)
    protocols = data.get("protocols", [])
    health = data.get("health_check") or {}
    paths = [
        {
            "pv": pv,
            "hops": presenters.path_hops(
                pv,
                listeners=inv.listeners,
                load_balancers=inv.load_balancers,
                target_group=inv.target_group,
                health=health,
            ),
        }
        for pv in protocols
    ]
    rule_rows = _rule_rows(inv.groups, protocols)
    findings = _findings(data)
    applied = presenters.applied_state(binding, result)
    causes = _causes(data, inv.groups, applied)
    since = timezone.now() - timedelta(days=7)
    samples = list(m.HistorySample.objects.filter(binding=binding, at__gte=since).order_by("-at")[:500])
    samples.reverse()
    transitions = list(m.VerdictTransition.objects.filter(binding=binding).order_by("-at", "-pk")[:20])
    probes = _probes(binding, causes)
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
        "health_warnings": presenters.health_warnings(data),
        "cross_zone": presenters.cross_zone(inv.target_group, inv.load_balancers),
        "target_group": inv.target_group,
        "load_balancers": list(inv.load_balancers.values()),
        "listeners": inv.listeners,
        "targets": presenters.target_rows(data, inv.registered, inv.enis, inv.endpoints, inv.nodes),
        "rule_rows": rule_rows,
        "groups": inv.groups,
        "findings": findings,
        "finding_groups": explain.group_findings(findings),
        "causes": causes,
        "applied": applied,
        "events": binding.events or [],
        "samples": samples,
        "transitions": transitions,
        "data_at": presenters.data_time(binding.cluster),
        "stale": presenters.stale(binding.cluster),
        "now": timezone.now(),
        "has_fix": bool(data.get("fix")),
        **probes,
    }


def _detail_etag(
    request: HtmxHttpRequest, binding: m.TargetGroupBinding, result: m.BindingResult | None
) -> str:
    return http.etag(
        "detail",
        http.is_partial(request),
        request.user.pk,
        binding.pk,
        binding.resource_version,
        result.changed_at if result else None,
        http.source_state(binding.cluster),
        http.source_state(binding.cluster.aws_account),
        m.FixApplication.objects.filter(binding=binding)
        .order_by("-at", "-pk")
        .values_list("pk", flat=True)
        .first(),
    )


@require_GET
@login_required
@vary_on_headers("HX-Request")
def binding_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """One binding: per-protocol paths, health check, targets, rules, findings, timeline."""
    binding = http.binding_or_404(pk)
    result = getattr(binding, "result", None)
    tag = _detail_etag(request, binding, result)
    if http.unchanged(request, tag):
        return http.not_modified(tag)
    context = binding_context(binding)
    # The last-poll line is part of the live region: it refreshes with the verdicts.
    context.update(poll_context(request, binding.cluster, None))
    context.update(http.perms(request, binding.cluster))
    return http.with_etag(
        render(request, http.page_template(request, "dashboard/binding_detail.html", "live"), context), tag
    )
