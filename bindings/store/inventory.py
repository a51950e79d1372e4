"""Build the analysis `Inventory` of one cluster from the database.

The mirror of `bindings.analysis.bundle.bundle_inventory`: the same dataclasses, read from the rows
the poller wrote, so the dashboard judges exactly as the offline `analyze` command does. A fixed
number of queries per cluster, whatever its size.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db.models import OuterRef, Prefetch, Q, QuerySet, Subquery

from bindings import models as m
from bindings.analysis import model as am
from bindings.analysis.normalize import parse_eni_sg_tags
from bindings.collect.probes import effective_kind
from bindings.store import fieldmaps as fm


def _dt(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def networking_from_json(value: Any) -> tuple[am.NetworkingRule, ...] | None:
    if value is None:
        return None
    rules = []
    for rule in value:
        peers = tuple(
            am.NetworkingPeer(cidr=p.get("cidr"), security_group_id=p.get("security_group_id"))
            for p in rule.get("peers", [])
        )
        ports = tuple(
            am.NetworkingPort(protocol=p.get("protocol", "TCP"), port=p.get("port"))
            for p in rule.get("ports", [])
        )
        rules.append(am.NetworkingRule(peers=peers, ports=ports))
    return tuple(rules)


def binding_record(row: m.TargetGroupBinding) -> am.Binding:
    port: int | str | None = row.service_port or None
    if row.service_port_is_number and port is not None:
        port = int(port)
    return am.Binding(
        uid=row.uid,
        namespace=row.namespace,
        name=row.name,
        api_version=row.api_version,
        resource_version=row.resource_version,
        generation=row.generation,
        observed_generation=row.observed_generation,
        target_group_arn=row.target_group_arn or None,
        target_group_name=row.target_group_name or None,
        target_type=row.target_type or None,
        target_group_protocol=row.target_group_protocol or None,
        ip_address_type=row.ip_address_type or None,
        service_name=row.service_name or None,
        service_port=port,
        networking=networking_from_json(row.networking),
        annotations=dict(row.annotations or {}),
        client_cidrs=None if row.client_cidrs is None else tuple(row.client_cidrs),
        events=tuple(
            am.KubeEvent(
                type=e.get("type", ""),
                reason=e.get("reason", ""),
                message=e.get("message", ""),
                count=e.get("count") or 1,
                last_seen=_dt(e.get("last_seen")),
            )
            for e in row.events or []
        ),
        problems=fm.problems_of(row.problems),
        raw=row.raw or {},
    )


def source_statuses(cluster: m.Cluster) -> list[am.SourceStatus]:
    sources = [
        am.SourceStatus(
            kind="cluster",
            name=cluster.name,
            last_success_at=cluster.last_success_at,
            poll_interval_seconds=cluster.poll_interval_seconds,
            last_error=cluster.last_error,
        )
    ]
    account = cluster.aws_account
    if account is not None:
        sources.append(
            am.SourceStatus(
                kind="aws",
                name=account.name,
                last_success_at=account.last_success_at,
                poll_interval_seconds=account.poll_interval_seconds,
                last_error=account.last_error,
            )
        )
    return sources


def _eni_sg_tags(cluster: m.Cluster, problems: list[am.Problem]) -> dict[str, str]:
    """The cluster's tag setting. A value saved around the admin's validation is reported as a
    cluster problem and counts as unset, rather than failing the whole analysis."""
    try:
        return parse_eni_sg_tags(cluster.service_target_eni_sg_tags)
    except ValueError as exc:
        problems.append(am.Problem(f"Cluster {cluster.name}", "service_target_eni_sg_tags", str(exc)))
        return {}


def cluster_inventory(cluster: m.Cluster, *, now: datetime | None = None) -> am.Inventory:
    """Everything the analysis needs for `cluster`, from its rows and its AWS account's rows."""
    problems = fm.problems_of(cluster.problems)
    inv = am.Inventory(
        cluster=cluster.name,
        now=now,
        client_cidrs=tuple(cluster.client_cidrs()) or None,
        eni_sg_tags=_eni_sg_tags(cluster, problems),
        sources=source_statuses(cluster),
        problems=problems,
    )
    inv.bindings = [binding_record(r) for r in m.TargetGroupBinding.objects.filter(cluster=cluster)]
    for s in m.KubeService.objects.filter(cluster=cluster):
        inv.services[f"{s.namespace}/{s.name}"] = am.Service(
            uid=s.uid,
            namespace=s.namespace,
            name=s.name,
            type=s.type,
            ports=tuple(
                am.ServicePort(
                    name=p.get("name"),
                    protocol=p.get("protocol", "TCP"),
                    port=p.get("port"),
                    target_port=p.get("target_port"),
                    node_port=p.get("node_port"),
                )
                for p in s.ports
            ),
            selector=dict(s.selector or {}),
            problems=fm.problems_of(s.problems),
        )
    for e in m.KubeEndpointSlice.objects.filter(cluster=cluster):
        inv.endpoint_slices.append(
            am.EndpointSlice(
                uid=e.uid,
                namespace=e.namespace,
                name=e.name,
                service_name=e.service_name or None,
                address_type=e.address_type,
                ports=tuple(
                    am.EndpointPort(p.get("name"), p.get("protocol", "TCP"), p.get("port")) for p in e.ports
                ),
                endpoints=tuple(
                    am.Endpoint(
                        addresses=tuple(ep.get("addresses", ())),
                        ready=ep.get("ready"),
                        serving=ep.get("serving"),
                        terminating=ep.get("terminating"),
                        node_name=ep.get("node_name"),
                        pod_name=ep.get("pod_name"),
                        zone=ep.get("zone"),
                    )
                    for ep in e.endpoints
                ),
            )
        )
    for p in m.KubePod.objects.filter(cluster=cluster):
        inv.pods[f"{p.namespace}/{p.name}"] = am.Pod(
            uid=p.uid,
            namespace=p.namespace,
            name=p.name,
            node_name=p.node_name or None,
            ips=tuple(p.ips),
            ready=p.ready,
            container_ports=tuple(
                am.ContainerPort(c.get("name"), c.get("container_port"), c.get("protocol", "TCP"))
                for c in p.container_ports
            ),
            pod_eni=p.pod_eni or None,
        )
    for n in m.KubeNode.objects.filter(cluster=cluster):
        inv.nodes[n.name] = am.Node(
            uid=n.uid,
            name=n.name,
            provider_id=n.provider_id or None,
            instance_id=n.instance_id or None,
            zone=n.zone or None,
            internal_ips=tuple(n.internal_ips),
            labels=dict(n.labels or {}),
            ready=n.ready,
        )
    inv.probes = probe_observations(cluster, inv.bindings)
    account = cluster.aws_account
    if account is None or account.last_success_at is None:
        inv.aws_complete = False
    if account is not None:
        inv.problems.extend(fm.problems_of(account.problems))
        _add_aws(inv, account)
    return inv


def newest_probe_results(bindings: QuerySet[m.TargetGroupBinding]) -> QuerySet[m.ProbeResult]:
    """The newest `ProbeResult` per binding (of `bindings`) and protocol, as one SQL query.

    Probe history is large (one row per binding, protocol and probe interval for the retention
    period), so neither a ROW_NUMBER window nor DISTINCT ON, which both read every row of the
    history, is used: per binding and protocol a correlated subquery takes the first row of the
    (binding, protocol, -at) index. Protocols are the two the analysis knows, so this is one
    query on SQLite and PostgreSQL alike. Ties on `at` go to the higher primary key.
    """
    condition = Q()
    for protocol in ("TCP", "UDP"):
        newest = (
            m.ProbeResult.objects.filter(binding=OuterRef("pk"), protocol=protocol)
            .order_by("-at", "-pk")
            .values("pk")[:1]
        )
        condition |= Q(pk__in=bindings.annotate(newest_probe=Subquery(newest)).values("newest_probe"))
    return m.ProbeResult.objects.filter(condition)


def latest_probes(binding_ids: Iterable[int]) -> dict[int, dict[str, m.ProbeResult]]:
    """The newest `ProbeResult` per binding and protocol: {binding_id: {"UDP": result, ...}}.

    One query whatever the number of bindings (for list and detail pages). Bindings never probed
    are absent. Results are returned even if probing has since been switched off: show their age.
    """
    ids = list(binding_ids)
    if not ids:
        return {}
    out: dict[int, dict[str, m.ProbeResult]] = {}
    for result in newest_probe_results(m.TargetGroupBinding.objects.filter(pk__in=ids)):
        out.setdefault(result.binding_id, {})[result.protocol] = result
    return out


def probe_observations(
    cluster: m.Cluster, bindings: list[am.Binding]
) -> dict[tuple[str, str], am.ProbeObservation]:
    """The latest probe per (binding uid, protocol), for the bindings whose probing is on now.

    A binding whose probing was switched off keeps its old results until they are pruned; they
    must not keep raising disagreement findings, so only enabled bindings are read. Two queries:
    the cluster's probe settings, then (only if anything is enabled) the newest results.
    """
    settings = {(s.namespace, s.name): s for s in m.ProbeSetting.objects.filter(cluster=cluster)}
    enabled: dict[str, m.ProbeSetting | None] = {}
    for b in bindings:
        setting = settings.get((b.namespace, b.name))
        kind = effective_kind(
            setting.kind if setting else None,
            (b.annotations or {}).get(am.PROBE_ANNOTATION),
            cluster.probe_kind,
        )
        if kind is not None:
            enabled[b.uid] = setting
    if not enabled:
        return {}
    rows = newest_probe_results(m.TargetGroupBinding.objects.filter(cluster=cluster)).values(
        "binding__uid", "protocol", "kind", "status", "address", "port", "latency_ms", "detail", "at"
    )
    out: dict[tuple[str, str], am.ProbeObservation] = {}
    for row in rows:
        uid, protocol = row["binding__uid"], row["protocol"]
        if protocol not in ("TCP", "UDP") or uid not in enabled:
            continue
        setting = enabled[uid]
        out[(uid, protocol)] = am.ProbeObservation(
            protocol=protocol,
            kind=row["kind"],
            status=row["status"],
            address=row["address"],
            port=row["port"],
            latency_ms=row["latency_ms"],
            detail=row["detail"],
            at=row["at"],
            explicit=bool(setting is not None and setting.address),
        )
    return out


def _add_aws(inv: am.Inventory, account: m.AwsAccount) -> None:
    def rows(fmap: fm.FieldMap) -> Any:
        return fmap.model.objects.filter(account=account)

    for tg in rows(fm.TARGET_GROUP):
        inv.target_groups[tg.arn] = fm.TARGET_GROUP.record_of(tg)
        # Every stored group had its health described: no rows means no registered targets.
        inv.target_health[tg.arn] = []
    for t in rows(fm.REGISTERED_TARGET).order_by("pk"):
        inv.target_health.setdefault(t.target_group_arn, []).append(fm.REGISTERED_TARGET.record_of(t))
    for lb in rows(fm.LOAD_BALANCER):
        inv.load_balancers[lb.arn] = fm.LOAD_BALANCER.record_of(lb)
    inv.listeners = [fm.LISTENER.record_of(li) for li in rows(fm.LISTENER)]
    for e in rows(fm.NETWORK_INTERFACE):
        inv.network_interfaces[e.eni_id] = fm.NETWORK_INTERFACE.record_of(e)
    for i in rows(fm.INSTANCE):
        inv.instances[i.instance_id] = fm.INSTANCE.record_of(i)
    rules = Prefetch("rules", queryset=m.SecurityGroupRule.objects.order_by("pk"))
    for sg in rows(fm.SECURITY_GROUP).prefetch_related(rules):
        ingress, egress = [], []
        for r in sg.rules.all():
            rule = am.SecurityGroupRule(
                protocol=r.protocol,
                from_port=r.from_port,
                to_port=r.to_port,
                source_kind=r.source_kind,  # type: ignore[arg-type]
                source=r.source,
                description=r.description,
                rule_id=r.rule_id or None,
            )
            (egress if r.egress else ingress).append(rule)
        inv.security_groups[sg.group_id] = fm.SECURITY_GROUP.record_of(
            sg, ingress=tuple(ingress), egress=tuple(egress)
        )
    for s in rows(fm.SUBNET):
        inv.subnets[s.subnet_id] = fm.SUBNET.record_of(s)
    for v in rows(fm.VPC):
        inv.vpcs[v.vpc_id] = fm.VPC.record_of(v)
    inv.network_acls.extend(fm.NETWORK_ACL.record_of(n) for n in rows(fm.NETWORK_ACL))
    for pl in rows(fm.PREFIX_LIST):
        inv.prefix_lists[pl.prefix_list_id] = fm.PREFIX_LIST.record_of(pl)
