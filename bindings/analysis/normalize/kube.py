"""Kubernetes objects (TargetGroupBindings, Services, EndpointSlices, Pods, Nodes, Events) to records."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from ..model import (
    CLIENT_CIDRS_ANNOTATION,
    Binding,
    ContainerPort,
    Endpoint,
    EndpointPort,
    EndpointSlice,
    KubeEvent,
    NetworkingPeer,
    NetworkingPort,
    NetworkingRule,
    Node,
    Pod,
    Problem,
    Service,
    ServicePort,
)
from .parsing import (
    _bool,
    _dict,
    _int,
    _list,
    _parse_time,
    _quote,
    _str,
    _str_dict,
    _type_name,
    _unique,
    parse_cidr,
)
from .records import KubeRecords

TGB_GROUP = "elbv2.k8s.aws"
TGB_VERSIONS = frozenset({"v1beta1", "v1alpha1"})
TARGET_TYPES = frozenset({"ip", "instance"})
# spec.targetGroupProtocol enum of the v1beta1 CRD (docs/facts.md §1.2).
TGB_PROTOCOLS = frozenset({"HTTP", "HTTPS", "TCP", "TLS", "UDP", "TCP_UDP", "QUIC", "TCP_QUIC"})
NETWORKING_PROTOCOLS = frozenset({"TCP", "UDP"})
POD_ENI_ANNOTATION = "vpc.amazonaws.com/pod-eni"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"

# The longest pod-ENI annotation parsed: the VPC resource controller writes one entry per branch
# ENI (a pod has a handful at most); anything longer is hostile, not data.
_MAX_POD_ENI = 100_000
_ENI_ID = re.compile(r"eni-[0-9a-zA-Z]+")
_PROVIDER_ID = re.compile(r"^aws://(?:/(?P<zone>[^/]*))?/(?P<instance>i-[0-9A-Za-z]+)$")
# `kind: List` inside `kind: List` is legal but pathological; recursion is bounded.
_MAX_LIST_DEPTH = 8


def _expand(objects: Any, problems: list[Problem], depth: int = 0) -> Iterator[dict[str, Any]]:
    """Yield single objects, expanding `kind: List` and typed lists (`ServiceList`, ...).

    The official client's typed lists carry no kind/apiVersion on their items, so those are
    inferred from the list's own kind ("ServiceList" -> "Service").
    """
    for index, obj in enumerate(_list(objects) if not isinstance(objects, dict) else [objects]):
        if not isinstance(obj, dict):
            problems.append(
                Problem(f"item {index}", "", f"expected a Kubernetes object, got {_type_name(obj)}")
            )
            continue
        kind = obj.get("kind")
        if isinstance(kind, str) and kind.endswith("List") and "items" in obj:
            if depth >= _MAX_LIST_DEPTH:
                problems.append(Problem(f"{kind}", "items", "lists nested too deeply; ignored"))
                continue
            items = obj.get("items")
            if not isinstance(items, list):
                if items is not None:
                    problems.append(Problem(kind, "items", f"expected a list, got {_type_name(items)}"))
                continue
            item_kind = kind[: -len("List")] if kind != "List" else None
            api_version = obj.get("apiVersion")
            filled = []
            for item in items:
                if isinstance(item, dict) and item_kind and not item.get("kind"):
                    item = {**item, "kind": item_kind}
                    if "apiVersion" not in item and isinstance(api_version, str):
                        item["apiVersion"] = api_version
                filled.append(item)
            yield from _expand(filled, problems, depth + 1)
        else:
            yield obj


def _meta(obj: dict[str, Any]) -> tuple[str, str, str, dict[str, Any]]:
    """(namespace, name, uid, metadata) with empty strings for anything missing or mistyped."""
    metadata = _dict(obj.get("metadata"))
    return (
        _str(metadata.get("namespace")) or "",
        _str(metadata.get("name")) or "",
        _str(metadata.get("uid")) or "",
        metadata,
    )


def _split_api_version(value: Any) -> tuple[str, str]:
    text = _str(value) or ""
    group, _, version = text.rpartition("/")
    return group, version


def normalize_kubernetes(objects: Iterable[dict[str, Any]], *, cluster: str) -> KubeRecords:
    """Normalise Kubernetes objects (camelCase dicts, as kubectl or the client serialise them).

    Unknown kinds are ignored; malformed objects are recorded as problems, never raised.
    """
    records = KubeRecords()
    events: list[dict[str, Any]] = []
    seen_bindings: dict[str, Binding] = {}
    try:
        items = list(objects) if not isinstance(objects, dict) else [objects]
    except Exception as exc:  # an iterator that fails halfway still yields what it gave
        records.problems.append(Problem("kubernetes objects", "", f"could not be read: {_quote(exc)}"))
        items = []
    for obj in _expand(items, records.problems):
        kind = obj.get("kind")
        group, version = _split_api_version(obj.get("apiVersion"))
        try:
            if kind == "TargetGroupBinding":
                binding = _binding(obj, group, version)
                if binding is None:
                    continue
                if binding.key in seen_bindings:
                    records.problems.append(
                        Problem(
                            f"TargetGroupBinding {binding.key}",
                            "metadata.name",
                            "duplicate object; later copy ignored",
                        )
                    )
                    continue
                seen_bindings[binding.key] = binding
                records.bindings.append(binding)
            elif kind == "Service" and group == "":
                service = _service(obj)
                _put(records.services, service.key, service, "Service", records.problems)
            elif kind == "EndpointSlice" and group == "discovery.k8s.io":
                records.endpoint_slices.append(_endpoint_slice(obj))
            elif kind == "Pod" and group == "":
                pod = _pod(obj, records.problems)
                _put(records.pods, f"{pod.namespace}/{pod.name}", pod, "Pod", records.problems)
            elif kind == "Node" and group == "":
                node = _node(obj)
                _put(records.nodes, node.name, node, "Node", records.problems)
            elif kind == "Event" and group in ("", "events.k8s.io"):
                events.append(obj)
        except Exception as exc:  # last line of defence: one object must never sink the poll
            namespace, name, _, _ = _meta(obj)
            records.problems.append(
                Problem(
                    f"{_str(kind) or 'object'} {namespace}/{name}",
                    "",
                    f"could not be normalised: {_quote(exc)}",
                )
            )
    _attach_events(records.bindings, events)
    return records


def _put(target: dict[str, Any], key: str, value: Any, kind: str, problems: list[Problem]) -> None:
    if key in target:
        problems.append(Problem(f"{kind} {key}", "metadata.name", "duplicate object; later copy ignored"))
        return
    target[key] = value


def _binding(obj: dict[str, Any], group: str, version: str) -> Binding | None:
    namespace, name, uid, metadata = _meta(obj)
    if group != TGB_GROUP:
        return None  # some other group's kind that happens to share the name
    binding = Binding(uid=uid, namespace=namespace, name=name, raw=obj)
    ref = f"TargetGroupBinding {namespace}/{name}"
    problems = binding.problems
    binding.api_version = f"{group}/{version}"
    if version not in TGB_VERSIONS:
        problems.append(Problem(ref, "apiVersion", f"unknown version {_quote(version)}; read as v1beta1"))
    if not name:
        problems.append(Problem(ref, "metadata.name", "missing"))
    if not namespace:
        problems.append(Problem(ref, "metadata.namespace", "missing"))
    binding.resource_version = _str(metadata.get("resourceVersion")) or ""
    binding.generation = _int(metadata.get("generation"))
    binding.observed_generation = _int(_dict(obj.get("status")).get("observedGeneration"))
    binding.annotations = _str_dict(metadata.get("annotations"))
    binding.client_cidrs = _client_cidrs(binding.annotations.get(CLIENT_CIDRS_ANNOTATION), ref, problems)

    spec = obj.get("spec")
    if not isinstance(spec, dict):
        problems.append(Problem(ref, "spec", f"expected a mapping, got {_type_name(spec)}"))
        return binding

    service_ref = spec.get("serviceRef")
    if not isinstance(service_ref, dict):
        message = "missing" if service_ref is None else f"expected a mapping, got {_type_name(service_ref)}"
        problems.append(Problem(ref, "spec.serviceRef", message))
    else:
        binding.service_name = (
            _str(service_ref.get("name")) if isinstance(service_ref.get("name"), str) else None
        )
        if not binding.service_name:
            problems.append(Problem(ref, "spec.serviceRef.name", "missing or not a string"))
        binding.service_port = _port_value(service_ref.get("port"), ref, "spec.serviceRef.port", problems)
        if binding.service_port is None:
            problems.append(Problem(ref, "spec.serviceRef.port", "missing"))

    arn = spec.get("targetGroupARN")
    binding.target_group_arn = arn if isinstance(arn, str) and arn else None
    tg_name = spec.get("targetGroupName")
    binding.target_group_name = tg_name if isinstance(tg_name, str) and tg_name else None
    if arn is not None and binding.target_group_arn is None:
        problems.append(Problem(ref, "spec.targetGroupARN", f"expected a string, got {_type_name(arn)}"))
    if binding.target_group_arn is None and binding.target_group_name is None:
        problems.append(
            Problem(ref, "spec.targetGroupARN", "neither targetGroupARN nor targetGroupName is set")
        )

    target_type = spec.get("targetType")
    if isinstance(target_type, str) and target_type in TARGET_TYPES:
        binding.target_type = target_type
    elif target_type is None:
        problems.append(Problem(ref, "spec.targetType", "missing (the controller requires ip or instance)"))
    else:
        problems.append(Problem(ref, "spec.targetType", f"unknown target type {_quote(target_type)}"))

    protocol = spec.get("targetGroupProtocol")
    if protocol is not None:
        text = _str(protocol)
        binding.target_group_protocol = text
        if text not in TGB_PROTOCOLS:
            problems.append(Problem(ref, "spec.targetGroupProtocol", f"unknown protocol {_quote(protocol)}"))
    address_type = spec.get("ipAddressType")
    binding.ip_address_type = address_type if isinstance(address_type, str) else None

    binding.networking = _networking(spec.get("networking"), ref, problems)
    return binding


def _port_value(value: object, ref: str, path: str, problems: list[Problem]) -> int | str | None:
    """An int-or-string port exactly as Kubernetes decodes it: a quoted number stays a name."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        problems.append(Problem(ref, path, f"expected a number or a port name, got {_type_name(value)}"))
        return None
    if isinstance(value, int):
        if not 0 <= value <= 65535:
            problems.append(Problem(ref, path, f"port {value} is outside 0-65535"))
        return value
    if not value:
        problems.append(Problem(ref, path, "empty port name"))
        return None
    if value.strip().isdigit():
        # IntOrString keeps "53" a string; the controller then looks for a port NAMED "53".
        problems.append(Problem(ref, path, f"{_quote(value)} is a string, so it is read as a port name"))
    return value


def _client_cidrs(value: str | None, ref: str, problems: list[Problem]) -> tuple[str, ...] | None:
    if value is None:
        return None
    path = f'metadata.annotations["{CLIENT_CIDRS_ANNOTATION}"]'
    valid = []
    for part in value.split(","):
        text = part.strip()
        if not text:
            continue
        if parse_cidr(text) is None:
            problems.append(Problem(ref, path, f"invalid CIDR {_quote(text)}"))
        else:
            valid.append(text)
    if not valid:
        # Fall back to the cluster/bundle/default ranges rather than "no clients at all".
        if value.strip():
            problems.append(Problem(ref, path, "no valid CIDR; the default client ranges apply"))
        return None
    return _unique(valid)


def _networking(value: Any, ref: str, problems: list[Problem]) -> tuple[NetworkingRule, ...] | None:
    """spec.networking.ingress as the controller reads it (docs/facts.md §2.3)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        problems.append(Problem(ref, "spec.networking", f"expected a mapping, got {_type_name(value)}"))
        return None
    ingress = value.get("ingress")
    if ingress is None:
        return None
    if not isinstance(ingress, list):
        problems.append(
            Problem(ref, "spec.networking.ingress", f"expected a list, got {_type_name(ingress)}")
        )
        return None
    rules = []
    for i, rule in enumerate(ingress):
        path = f"spec.networking.ingress[{i}]"
        if not isinstance(rule, dict):
            problems.append(Problem(ref, path, f"expected a mapping, got {_type_name(rule)}"))
            continue
        rules.append(
            NetworkingRule(
                peers=_peers(rule.get("from"), ref, path, problems), ports=_ports(rule, ref, path, problems)
            )
        )
    return tuple(rules)


def _peers(value: Any, ref: str, path: str, problems: list[Problem]) -> tuple[NetworkingPeer, ...]:
    if not isinstance(value, list):
        message = "missing" if value is None else f"expected a list, got {_type_name(value)}"
        problems.append(Problem(ref, f"{path}.from", message))
        return ()
    peers = []
    for j, peer in enumerate(value):
        peer_path = f"{path}.from[{j}]"
        if not isinstance(peer, dict):
            problems.append(Problem(ref, peer_path, f"expected a mapping, got {_type_name(peer)}"))
            continue
        ip_block, group = peer.get("ipBlock"), peer.get("securityGroup")
        if ip_block is not None and group is not None:
            problems.append(
                Problem(ref, peer_path, "sets both ipBlock and securityGroup; exactly one is allowed")
            )
            continue
        if ip_block is not None:
            cidr: Any = _dict(ip_block).get("cidr")  # raw JSON: a str once parse_cidr accepts it
            if parse_cidr(cidr) is None:
                problems.append(Problem(ref, f"{peer_path}.ipBlock.cidr", f"invalid CIDR {_quote(cidr)}"))
                continue
            peers.append(NetworkingPeer(cidr=cidr.strip()))
        elif group is not None:
            group_id = _dict(group).get("groupID")
            if not isinstance(group_id, str) or not group_id:
                problems.append(Problem(ref, f"{peer_path}.securityGroup.groupID", "missing or not a string"))
                continue
            peers.append(NetworkingPeer(security_group_id=group_id))
        else:
            problems.append(Problem(ref, peer_path, "sets neither ipBlock nor securityGroup"))
    return tuple(peers)


def _ports(rule: dict[str, Any], ref: str, path: str, problems: list[Problem]) -> tuple[NetworkingPort, ...]:
    value = rule.get("ports")
    if not isinstance(value, list):
        # The CRD requires `ports`; a rule without it creates nothing, exactly like `ports: []`.
        message = "missing" if value is None else f"expected a list, got {_type_name(value)}"
        problems.append(Problem(ref, f"{path}.ports", message))
        return ()
    ports = []
    for k, item in enumerate(value):
        port_path = f"{path}.ports[{k}]"
        if item is None:
            item = {}  # `- {}` and `- ~` both mean "TCP, all ports" to the controller
        if not isinstance(item, dict):
            problems.append(Problem(ref, port_path, f"expected a mapping, got {_type_name(item)}"))
            continue
        protocol = item.get("protocol")
        if protocol is None:
            protocol = "TCP"  # the controller's default
        elif not isinstance(protocol, str) or protocol not in NETWORKING_PROTOCOLS:
            problems.append(
                Problem(ref, f"{port_path}.protocol", f"unknown protocol {_quote(protocol)} (TCP or UDP)")
            )
            protocol = _str(protocol) or _quote(protocol)
        port = _port_value(item.get("port"), ref, f"{port_path}.port", problems)
        ports.append(NetworkingPort(protocol=protocol, port=port))
    return tuple(ports)


def _attach_events(bindings: list[Binding], events: list[dict[str, Any]]) -> None:
    by_uid = {b.uid: b for b in bindings if b.uid}
    by_name = {(b.namespace, b.name): b for b in bindings}
    attached: dict[int, list[KubeEvent]] = {}
    for obj in events:
        involved = obj.get("involvedObject")
        if not isinstance(involved, dict):
            involved = _dict(obj.get("regarding"))  # events.k8s.io/v1 spelling
        uid = _str(involved.get("uid"))
        binding = by_uid.get(uid) if uid else None
        if binding is None and involved.get("kind") == "TargetGroupBinding":
            namespace = _str(involved.get("namespace")) or _meta(obj)[0]
            binding = by_name.get((namespace, _str(involved.get("name")) or ""))
        if binding is None:
            continue
        series = _dict(obj.get("series"))
        count = _int(obj.get("count")) or _int(series.get("count")) or 1
        last_seen = (
            _parse_time(obj.get("lastTimestamp"))
            or _parse_time(series.get("lastObservedTime"))
            or _parse_time(obj.get("eventTime"))
            or _parse_time(obj.get("firstTimestamp"))
        )
        event = KubeEvent(
            type=_str(obj.get("type")) or "",
            reason=_str(obj.get("reason")) or "",
            message=_str(obj.get("message")) or _str(obj.get("note")) or "",
            count=count,
            last_seen=last_seen,
        )
        attached.setdefault(id(binding), []).append(event)
    for binding in bindings:
        found = attached.get(id(binding))
        if found:
            # Newest first: the dashboard shows the latest controller complaint on top.
            oldest = datetime.min.replace(tzinfo=UTC)
            binding.events = tuple(sorted(found, key=lambda e: e.last_seen or oldest, reverse=True))


def _service(obj: dict[str, Any]) -> Service:
    namespace, name, uid, _ = _meta(obj)
    service = Service(uid=uid, namespace=namespace, name=name)
    ref = f"Service {namespace}/{name}"
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        service.problems.append(Problem(ref, "spec", f"expected a mapping, got {_type_name(spec)}"))
        return service
    service.type = _str(spec.get("type")) or "ClusterIP"
    service.selector = _str_dict(spec.get("selector"))
    ports = []
    for i, item in enumerate(_list(spec.get("ports"))):
        if not isinstance(item, dict):
            service.problems.append(
                Problem(ref, f"spec.ports[{i}]", f"expected a mapping, got {_type_name(item)}")
            )
            continue
        port = _int(item.get("port"))
        if port is None:
            service.problems.append(
                Problem(ref, f"spec.ports[{i}].port", f"invalid port {_quote(item.get('port'))}")
            )
            continue
        target = item.get("targetPort")
        target_port: int | str | None = target if isinstance(target, str) else _int(target)
        ports.append(
            ServicePort(
                name=_str(item.get("name")),
                protocol=_str(item.get("protocol")) or "TCP",
                port=port,
                target_port=target_port,
                node_port=_int(item.get("nodePort")),
            )
        )
    service.ports = tuple(ports)
    return service


def _endpoint_slice(obj: dict[str, Any]) -> EndpointSlice:
    namespace, name, uid, metadata = _meta(obj)
    labels = _str_dict(metadata.get("labels"))
    ports = tuple(
        EndpointPort(
            name=_str(item.get("name")),
            protocol=_str(item.get("protocol")) or "TCP",
            port=_int(item.get("port")),
        )
        for item in _list(obj.get("ports"))
        if isinstance(item, dict)
    )
    endpoints = []
    for item in _list(obj.get("endpoints")):
        if not isinstance(item, dict):
            continue
        conditions = _dict(item.get("conditions"))
        target_ref = _dict(item.get("targetRef"))
        endpoints.append(
            Endpoint(
                addresses=_unique(a for a in _list(item.get("addresses")) if isinstance(a, str)),
                ready=_bool(conditions.get("ready")),
                serving=_bool(conditions.get("serving")),
                terminating=_bool(conditions.get("terminating")),
                node_name=_str(item.get("nodeName")),
                pod_name=_str(target_ref.get("name")) if target_ref.get("kind", "Pod") == "Pod" else None,
                zone=_str(item.get("zone"))
                or _str(_dict(item.get("topology")).get("topology.kubernetes.io/zone")),
            )
        )
    return EndpointSlice(
        uid=uid,
        namespace=namespace,
        name=name,
        service_name=labels.get(SERVICE_NAME_LABEL),
        address_type=_str(obj.get("addressType")) or "IPv4",
        ports=ports,
        endpoints=tuple(endpoints),
    )


def pod_eni_entries(value: Any) -> list[tuple[str, tuple[str, ...]]] | None:
    """The branch ENIs of the pod annotation `vpc.amazonaws.com/pod-eni` (security groups for pods):
    [(eniId, (privateIp, ipv6Addr) that are set)], in the annotation's order; None when the value
    holds no eniId at all (malformed).

    The one parser of this annotation: the engine (which ENI holds a pod IP) and the poller (which
    ENIs to describe) both read it here. The VPC resource controller writes a JSON list of objects
    {"eniId", "ifAddress", "privateIp", "ipv6Addr", "vlanId", "subnetCidr", "subnetV6Cidr"}
    (amazon-vpc-resource-controller-k8s, branch ENI details; the VPC CNI reads the same keys); a
    single object and a bare ENI id (hand-written) are accepted too.
    """
    if not isinstance(value, str) or len(value) > _MAX_POD_ENI:
        return None
    text = value.strip()
    if text.startswith("eni-"):
        return [(text, ())] if _ENI_ID.fullmatch(text) else None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    items = [data] if isinstance(data, dict) else data if isinstance(data, list) else []
    out: list[tuple[str, tuple[str, ...]]] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        eni_id = item.get("eniId")
        if not isinstance(eni_id, str) or not eni_id.strip():
            continue
        addresses = tuple(
            a.strip()
            for a in (item.get("privateIp"), item.get("ipv6Addr"))
            if isinstance(a, str) and a.strip()
        )
        out.append((eni_id.strip(), addresses))
    return out or None


def _pod(obj: dict[str, Any], problems: list[Problem]) -> Pod:
    namespace, name, uid, metadata = _meta(obj)
    spec, status = _dict(obj.get("spec")), _dict(obj.get("status"))
    ips = [_str(_dict(item).get("ip")) for item in _list(status.get("podIPs"))]
    ips.append(_str(status.get("podIP")))
    ready = any(
        _dict(c).get("type") == "Ready" and _dict(c).get("status") == "True"
        for c in _list(status.get("conditions"))
    )
    container_ports = []
    for container in _list(spec.get("containers")):
        for item in _list(_dict(container).get("ports")):
            number = _int(_dict(item).get("containerPort"))
            if number is not None:
                container_ports.append(
                    ContainerPort(
                        name=_str(item.get("name")),
                        container_port=number,
                        protocol=_str(item.get("protocol")) or "TCP",
                    )
                )
    # Kept verbatim (the engine picks the entry whose address is the pod IP); an annotation
    # without any eniId is worth a problem.
    pod_eni = _str_dict(metadata.get("annotations")).get(POD_ENI_ANNOTATION) or None
    if pod_eni and pod_eni_entries(pod_eni) is None:
        problems.append(
            Problem(
                f"Pod {namespace}/{name}",
                f'metadata.annotations["{POD_ENI_ANNOTATION}"]',
                "no eniId in it",
            )
        )
    return Pod(
        uid=uid,
        namespace=namespace,
        name=name,
        node_name=_str(spec.get("nodeName")),
        ips=_unique(ip for ip in ips if ip),
        ready=ready,
        container_ports=tuple(container_ports),
        pod_eni=pod_eni,
    )


def _node(obj: dict[str, Any]) -> Node:
    _, name, uid, metadata = _meta(obj)
    spec, status = _dict(obj.get("spec")), _dict(obj.get("status"))
    labels = _str_dict(metadata.get("labels"))
    provider_id = _str(spec.get("providerID"))
    instance_id = zone = None
    match = _PROVIDER_ID.match(provider_id or "")
    if match:
        instance_id, zone = match["instance"], match["zone"] or None
    internal_ips = _unique(
        _str(_dict(a).get("address")) or ""
        for a in _list(status.get("addresses"))
        if _dict(a).get("type") == "InternalIP"
    )
    ready = any(
        _dict(c).get("type") == "Ready" and _dict(c).get("status") == "True"
        for c in _list(status.get("conditions"))
    )
    return Node(
        uid=uid,
        name=name,
        provider_id=provider_id,
        instance_id=instance_id,
        zone=zone
        or labels.get("topology.kubernetes.io/zone")
        or labels.get("failure-domain.beta.kubernetes.io/zone"),
        internal_ips=internal_ips,
        labels=labels,
        ready=ready,
    )
