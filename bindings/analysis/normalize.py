"""Turn raw Kubernetes objects and AWS describe responses into the typed inventory records.

Pure functions: no Django, no network, no clock. The same code reads what the poller fetched and
what an offline bundle holds, so both paths judge identical data.

Every input is treated as hostile: any field may be missing, null, of the wrong type, duplicated
or absurdly long. Nothing here raises on bad data; the defect is recorded as a `Problem` on the
record it affects (or in the records' `problems` list) and normalisation carries on, because one
broken TargetGroupBinding must not hide the health of the other hundred.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bindings.analysis.model import (
    CLIENT_CIDRS_ANNOTATION,
    Binding,
    ContainerPort,
    Endpoint,
    EndpointPort,
    EndpointSlice,
    Instance,
    Inventory,
    KubeEvent,
    Listener,
    LoadBalancer,
    LoadBalancerZone,
    NetworkAcl,
    NetworkAclEntry,
    NetworkingPeer,
    NetworkingPort,
    NetworkingRule,
    NetworkInterface,
    Node,
    Pod,
    PrefixList,
    Problem,
    SecurityGroup,
    SecurityGroupRule,
    Service,
    ServicePort,
    SourceStatus,
    Subnet,
    TargetGroup,
    TargetHealth,
    Vpc,
)

__all__ = [
    "AwsRecords",
    "KubeRecords",
    "build_inventory",
    "normalize_aws",
    "normalize_kubernetes",
    "parse_cidr",
    "pod_eni_entries",
]

TGB_GROUP = "elbv2.k8s.aws"
TGB_VERSIONS = frozenset({"v1beta1", "v1alpha1"})
TARGET_TYPES = frozenset({"ip", "instance"})
# spec.targetGroupProtocol enum of the v1beta1 CRD (nlb-udp-facts §1.2).
TGB_PROTOCOLS = frozenset({"HTTP", "HTTPS", "TCP", "TLS", "UDP", "TCP_UDP", "QUIC", "TCP_QUIC"})
NETWORKING_PROTOCOLS = frozenset({"TCP", "UDP"})
# Target-group protocols AWS can return; NLB ones plus the ALB/GWLB ones a TGB may still point at.
AWS_TG_PROTOCOLS = frozenset({"TCP", "TLS", "UDP", "TCP_UDP", "QUIC", "TCP_QUIC", "HTTP", "HTTPS", "GENEVE"})
AWS_TARGET_TYPES = frozenset({"ip", "instance", "lambda", "alb"})
POD_ENI_ANNOTATION = "vpc.amazonaws.com/pod-eni"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"

# The longest pod-ENI annotation parsed: the VPC resource controller writes one entry per branch
# ENI (a pod has a handful at most); anything longer is hostile, not data.
_MAX_POD_ENI = 100_000
# Network ACL rule numbers a user may set (32767 is the implicit final deny AWS lists too).
_ACL_RULE_NUMBERS = range(1, 32768)
_ENI_ID = re.compile(r"eni-[0-9a-zA-Z]+")

# IANA protocol numbers that security-group rules may carry instead of names.
_SG_PROTOCOL_NAMES = {"6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6", "-1": "-1", "all": "-1"}
_PROVIDER_ID = re.compile(r"^aws://(?:/(?P<zone>[^/]*))?/(?P<instance>i-[0-9A-Za-z]+)$")
# Problem messages quote offending values; a hostile multi-megabyte value must not be copied.
_MAX_QUOTED = 80
# `kind: List` inside `kind: List` is legal but pathological; recursion is bounded.
_MAX_LIST_DEPTH = 8
# Deeper nesting than this is cut (see `bound_depth`); real objects stay far below it.
MAX_NESTING = 64


# --- small, type-safe accessors ---------------------------------------------------------------


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list:
    return list(value) if isinstance(value, list | tuple) else []


def _str(value: Any) -> str | None:
    """A string, or a number rendered as one; anything else (dicts, lists, bools, null) is None."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _int(value: Any) -> int | None:
    """An int, also from a numeric string ("53") or an integral float; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"[+-]?\d{1,18}", text):
            return int(text)
    return None


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _quote(value: Any) -> str:
    """A short, printable rendering of an offending value for a problem message."""
    try:
        text = repr(value)
    except Exception:  # a hostile __repr__ must not turn a problem into a crash
        text = f"<{type(value).__name__}>"
    return text if len(text) <= _MAX_QUOTED else text[: _MAX_QUOTED - 1] + "…"


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def _str_dict(value: Any) -> dict[str, str]:
    """Labels, annotations, selectors and tags: string keys and values only."""
    out: dict[str, str] = {}
    for key, item in _dict(value).items():
        text = _str(item)
        if isinstance(key, str) and text is not None:
            out[key] = text
    return out


# The most tags a security group can carry (AWS tag quota), and the longest key and value.
MAX_ENI_SG_TAGS = 50
_MAX_TAG_KEY = 128
_MAX_TAG_VALUE = 256


def parse_eni_sg_tags(value: object, where: str = "serviceTargetEniSecurityGroupTags") -> dict[str, str]:
    """The controller's `--service-target-eni-security-group-tags` as a {key: value} mapping.

    Raises ValueError naming `where` and the offending entry. The one validator for the cluster
    setting (admin) and bundle.json, so both accept exactly the same values.
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be an object of tag key to value, got {type(value).__name__}")
    if len(value) > MAX_ENI_SG_TAGS:
        raise ValueError(f"{where} has {len(value)} tags; a security group carries at most {MAX_ENI_SG_TAGS}")
    out: dict[str, str] = {}
    for key, tag_value in value.items():
        if not isinstance(key, str) or not key.strip() or len(key) > _MAX_TAG_KEY:
            raise ValueError(f"{where}: tag key {str(key)[:80]!r} must be 1-{_MAX_TAG_KEY} characters")
        if not isinstance(tag_value, str) or len(tag_value) > _MAX_TAG_VALUE:
            raise ValueError(
                f"{where}[{key[:80]!r}]: the value must be a string of at most {_MAX_TAG_VALUE} characters"
            )
        out[key] = tag_value
    return out


def parse_cidr(text: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """Parse a CIDR the way Go's net.ParseCIDR does: a prefix length is required, host bits allowed."""
    if not isinstance(text, str) or "/" not in text or len(text) > 64:
        return None
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    """Ordered de-duplication: AWS and kubectl output may repeat entries."""
    return tuple(dict.fromkeys(v for v in values if v))


def bound_depth(value: Any, max_depth: int = MAX_NESTING) -> Any:
    """A copy of a JSON-like value with containers deeper than `max_depth` replaced by a marker.

    A collector can return objects nested arbitrarily deep (a custom resource's status, an
    unknown field); hashing, storing and re-reading them recurses once per level and would raise
    RecursionError past ~1000 levels, failing the whole poll. Iterative, so it cannot recurse
    itself. Fields the normaliser reads that were cut become wrong-type problems as usual.
    """
    if not _too_deep(value, max_depth):
        return value  # the usual case: no copy
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any, int]] = [(value, root, 0, 0)]
    while stack:
        item, parent, key, depth = stack.pop()
        if isinstance(item, dict | list | tuple) and depth >= max_depth:
            parent[key] = f"<nested deeper than {max_depth} levels: dropped>"
        elif isinstance(item, dict):
            copy: dict = dict.fromkeys(item)  # keeps the key order
            parent[key] = copy
            stack.extend((v, copy, k, depth + 1) for k, v in item.items())
        elif isinstance(item, list | tuple):
            seq: list[Any] = [None] * len(item)
            parent[key] = seq
            stack.extend((v, seq, i, depth + 1) for i, v in enumerate(item))
        else:
            parent[key] = item
    return root[0]


def _too_deep(value: Any, max_depth: int) -> bool:
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterable[Any] = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth >= max_depth:
            return True
        stack.extend((v, depth + 1) for v in children)
    return False


# --- Kubernetes ---------------------------------------------------------------------------------


@dataclass(slots=True)
class KubeRecords:
    """What one cluster's objects normalise to. Keys match `Inventory` ("ns/name", node name)."""

    bindings: list[Binding] = field(default_factory=list)
    services: dict[str, Service] = field(default_factory=dict)
    endpoint_slices: list[EndpointSlice] = field(default_factory=list)
    pods: dict[str, Pod] = field(default_factory=dict)
    nodes: dict[str, Node] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def _expand(objects: Any, problems: list[Problem], depth: int = 0) -> Iterator[dict]:
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


def _meta(obj: dict) -> tuple[str, str, str, dict]:
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


def normalize_kubernetes(objects: Iterable[dict], *, cluster: str) -> KubeRecords:
    """Normalise Kubernetes objects (camelCase dicts, as kubectl or the client serialise them).

    Unknown kinds are ignored; malformed objects are recorded as problems, never raised.
    """
    records = KubeRecords()
    events: list[dict] = []
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


def _put(target: dict, key: str, value: Any, kind: str, problems: list[Problem]) -> None:
    if key in target:
        problems.append(Problem(f"{kind} {key}", "metadata.name", "duplicate object; later copy ignored"))
        return
    target[key] = value


def _binding(obj: dict, group: str, version: str) -> Binding | None:
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


def _port_value(value: Any, ref: str, path: str, problems: list[Problem]) -> int | str | None:
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
    """spec.networking.ingress as the controller reads it (nlb-udp-facts §2.3)."""
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
            cidr = _dict(ip_block).get("cidr")
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


def _ports(rule: dict, ref: str, path: str, problems: list[Problem]) -> tuple[NetworkingPort, ...]:
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


def _attach_events(bindings: list[Binding], events: list[dict]) -> None:
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


def _service(obj: dict) -> Service:
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


def _endpoint_slice(obj: dict) -> EndpointSlice:
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


def _pod(obj: dict, problems: list[Problem]) -> Pod:
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


def _node(obj: dict) -> Node:
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


# --- AWS ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class AwsRecords:
    """What one set of AWS describe responses normalises to. Keys match `Inventory`."""

    target_groups: dict[str, TargetGroup] = field(default_factory=dict)
    target_health: dict[str, list[TargetHealth]] = field(default_factory=dict)
    load_balancers: dict[str, LoadBalancer] = field(default_factory=dict)
    listeners: list[Listener] = field(default_factory=list)
    network_interfaces: dict[str, NetworkInterface] = field(default_factory=dict)
    instances: dict[str, Instance] = field(default_factory=dict)
    security_groups: dict[str, SecurityGroup] = field(default_factory=dict)
    subnets: dict[str, Subnet] = field(default_factory=dict)
    vpcs: dict[str, Vpc] = field(default_factory=dict)
    network_acls: list[NetworkAcl] = field(default_factory=list)
    prefix_lists: dict[str, PrefixList] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def _items(responses: dict, operation: str, key: str, problems: list[Problem]) -> list[dict]:
    """The list `responses[operation][key]`, keeping only mappings and noting anything else."""
    response = responses.get(operation)
    if response is None:
        return []
    if not isinstance(response, dict):
        problems.append(Problem(operation, "", f"expected a mapping, got {_type_name(response)}"))
        return []
    items = response.get(key)
    if items is None:
        return []
    if not isinstance(items, list):
        problems.append(Problem(operation, key, f"expected a list, got {_type_name(items)}"))
        return []
    out = []
    for i, item in enumerate(items):
        if isinstance(item, dict):
            out.append(item)
        else:
            problems.append(Problem(operation, f"{key}[{i}]", f"expected a mapping, got {_type_name(item)}"))
    return out


def _keyed(responses: dict, operation: str, problems: list[Problem]) -> dict[str, dict]:
    """Per-ARN responses `{arn: response}`; non-mapping entries are noted and dropped."""
    response = responses.get(operation)
    if response is None:
        return {}
    if not isinstance(response, dict):
        problems.append(
            Problem(operation, "", f"expected a mapping keyed by ARN, got {_type_name(response)}")
        )
        return {}
    out = {}
    for arn, value in response.items():
        if isinstance(arn, str) and isinstance(value, dict):
            out[arn] = value
        else:
            problems.append(
                Problem(operation, _quote(arn), f"expected a response mapping, got {_type_name(value)}")
            )
    return out


def _attributes(response: dict) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in _list(response.get("Attributes")):
        key, value = _str(_dict(item).get("Key")), _dict(item).get("Value")
        if key is not None:
            text = _str(value) if not isinstance(value, bool) else str(value).lower()
            out[key] = text if text is not None else ""
    return out


def normalize_aws(responses: dict) -> AwsRecords:
    """Normalise the bundle's `aws.json` (or the poller's responses), keyed by operation name.

    Every operation is optional; malformed entries become problems, never exceptions.
    """
    records = AwsRecords()
    if not isinstance(responses, dict):
        records.problems.append(
            Problem("aws responses", "", f"expected a mapping, got {_type_name(responses)}")
        )
        return records
    steps = (
        _load_balancers,
        _listeners,
        _target_groups,
        _target_health,
        _instances,
        _network_interfaces,
        _security_groups,
        _subnets,
        _vpcs,
        _network_acls,
        _prefix_lists,
    )
    for step in steps:
        try:
            step(responses, records)
        except Exception as exc:  # defensive: a surprise in one operation keeps the others
            records.problems.append(
                Problem(step.__name__.strip("_"), "", f"could not be normalised: {_quote(exc)}")
            )
    return records


def _load_balancers(responses: dict, records: AwsRecords) -> None:
    problems = records.problems
    attributes = _keyed(responses, "DescribeLoadBalancerAttributes", problems)
    endpoint_services = _endpoint_services(responses, problems)
    for item in _items(responses, "DescribeLoadBalancers", "LoadBalancers", problems):
        arn = _str(item.get("LoadBalancerArn"))
        if not arn:
            problems.append(Problem("DescribeLoadBalancers", "LoadBalancerArn", "missing"))
            continue
        zones = []
        for zone in _list(item.get("AvailabilityZones")):
            zone = _dict(zone)
            addresses = []
            for address in _list(zone.get("LoadBalancerAddresses")):
                address = _dict(address)
                addresses += [_str(address.get("PrivateIPv4Address")), _str(address.get("IPv6Address"))]
            zones.append(
                LoadBalancerZone(
                    zone_name=_str(zone.get("ZoneName")) or "",
                    subnet_id=_str(zone.get("SubnetId")),
                    addresses=_unique(a for a in addresses if a),
                )
            )
        lb = LoadBalancer(
            arn=arn,
            name=_str(item.get("LoadBalancerName")) or "",
            type=_str(item.get("Type")) or "network",
            scheme=_str(item.get("Scheme")) or "internet-facing",
            vpc_id=_str(item.get("VpcId")),
            state=_str(_dict(item.get("State")).get("Code")),
            ip_address_type=_str(item.get("IpAddressType")),
            dns_name=_str(item.get("DNSName")),
            security_groups=_unique(g for g in _list(item.get("SecurityGroups")) if isinstance(g, str)),
            zones=tuple(zones),
            attributes=_attributes(attributes[arn]) if arn in attributes else None,
            privatelink_enforce_inbound=_str(
                item.get("EnforceSecurityGroupInboundRulesOnPrivateLinkTraffic")
            ),
            endpoint_services=(
                None if endpoint_services is None else tuple(sorted(endpoint_services.get(arn, ())))
            ),
        )
        _put_aws(records.load_balancers, arn, lb, "DescribeLoadBalancers", problems)


def _endpoint_services(responses: dict, problems: list[Problem]) -> dict[str, set[str]] | None:
    """Load balancer ARN -> ids of the VPC endpoint services in front of it; None when
    DescribeVpcEndpointServiceConfigurations was not collected (then nobody knows)."""
    if "DescribeVpcEndpointServiceConfigurations" not in responses:
        return None
    found: dict[str, set[str]] = {}
    for item in _items(
        responses, "DescribeVpcEndpointServiceConfigurations", "ServiceConfigurations", problems
    ):
        service_id = _str(item.get("ServiceId")) or _str(item.get("ServiceName")) or "(unnamed)"
        for lb_arn in _list(item.get("NetworkLoadBalancerArns")):
            if isinstance(lb_arn, str) and lb_arn:
                found.setdefault(lb_arn, set()).add(service_id)
    return found


def _put_aws(target: dict, key: str, value: Any, operation: str, problems: list[Problem]) -> None:
    if key in target:
        problems.append(Problem(operation, _quote(key), "duplicate entry; later copy ignored"))
        return
    target[key] = value


def _listeners(responses: dict, records: AwsRecords) -> None:
    for item in _items(responses, "DescribeListeners", "Listeners", records.problems):
        arns: list[str] = []
        for action in _list(item.get("DefaultActions")):
            action = _dict(action)
            if action.get("Type", "forward") != "forward":
                continue
            arns.append(_str(action.get("TargetGroupArn")) or "")
            for group in _list(_dict(action.get("ForwardConfig")).get("TargetGroups")):
                arns.append(_str(_dict(group).get("TargetGroupArn")) or "")
        records.listeners.append(
            Listener(
                arn=_str(item.get("ListenerArn")) or "",
                load_balancer_arn=_str(item.get("LoadBalancerArn")) or "",
                port=_int(item.get("Port")),
                protocol=_str(item.get("Protocol")) or "",
                target_group_arns=_unique(arns),
            )
        )


def _target_groups(responses: dict, records: AwsRecords) -> None:
    problems = records.problems
    attributes = _keyed(responses, "DescribeTargetGroupAttributes", problems)
    for item in _items(responses, "DescribeTargetGroups", "TargetGroups", problems):
        arn = _str(item.get("TargetGroupArn"))
        if not arn:
            problems.append(Problem("DescribeTargetGroups", "TargetGroupArn", "missing"))
            continue
        ref = f"TargetGroup {arn}"
        group = TargetGroup(
            arn=arn,
            name=_str(item.get("TargetGroupName")) or "",
            protocol=_str(item.get("Protocol")) or "",
            port=_int(item.get("Port")),
            vpc_id=_str(item.get("VpcId")),
            target_type=_str(item.get("TargetType")),
            ip_address_type=_str(item.get("IpAddressType")),
            health_check_protocol=_str(item.get("HealthCheckProtocol")),
            health_check_port=_str(item.get("HealthCheckPort")),
            health_check_enabled=_bool(item.get("HealthCheckEnabled")),
            health_check_interval=_int(item.get("HealthCheckIntervalSeconds")),
            health_check_timeout=_int(item.get("HealthCheckTimeoutSeconds")),
            healthy_threshold=_int(item.get("HealthyThresholdCount")),
            unhealthy_threshold=_int(item.get("UnhealthyThresholdCount")),
            health_check_path=_str(item.get("HealthCheckPath")),
            matcher=_matcher(item.get("Matcher")),
            load_balancer_arns=_unique(a for a in _list(item.get("LoadBalancerArns")) if isinstance(a, str)),
            attributes=_attributes(attributes[arn]) if arn in attributes else None,
        )
        if group.protocol not in AWS_TG_PROTOCOLS:
            group.problems.append(
                Problem(ref, "Protocol", f"unknown protocol {_quote(item.get('Protocol'))}")
            )
        if group.target_type not in AWS_TARGET_TYPES:
            group.problems.append(
                Problem(ref, "TargetType", f"unknown target type {_quote(item.get('TargetType'))}")
            )
        _put_aws(records.target_groups, arn, group, "DescribeTargetGroups", problems)


def _matcher(value: Any) -> str | None:
    matcher = _dict(value)
    return _str(matcher.get("HttpCode")) or _str(matcher.get("GrpcCode"))


def _target_health(responses: dict, records: AwsRecords) -> None:
    for arn, response in _keyed(responses, "DescribeTargetHealth", records.problems).items():
        found = []
        for item in _list(response.get("TargetHealthDescriptions")):
            item = _dict(item)
            target, health = _dict(item.get("Target")), _dict(item.get("TargetHealth"))
            target_id = _str(target.get("Id"))
            if not target_id:
                records.problems.append(Problem("DescribeTargetHealth", arn, "a target without an Id"))
                continue
            found.append(
                TargetHealth(
                    target_group_arn=arn,
                    target_id=target_id,
                    port=_int(target.get("Port")),
                    availability_zone=_str(target.get("AvailabilityZone")),
                    health_check_port=_str(item.get("HealthCheckPort")),
                    state=_str(health.get("State")) or "unavailable",
                    reason=_str(health.get("Reason")),
                    description=_str(health.get("Description")),
                    quic_server_id=_str(target.get("QuicServerId")),
                )
            )
        records.target_health[arn] = found


def _eni_fields(item: dict) -> dict[str, Any]:
    """The fields DescribeNetworkInterfaces and DescribeInstances' NetworkInterfaces share."""
    private = [_str(item.get("PrivateIpAddress"))]
    private += [_str(_dict(a).get("PrivateIpAddress")) for a in _list(item.get("PrivateIpAddresses"))]
    attachment = _dict(item.get("Attachment"))
    return {
        "subnet_id": _str(item.get("SubnetId")),
        "vpc_id": _str(item.get("VpcId")),
        "private_ips": _unique(ip for ip in private if ip),
        "ipv6_addresses": _unique(
            _str(_dict(a).get("Ipv6Address")) or "" for a in _list(item.get("Ipv6Addresses"))
        ),
        "ipv4_prefixes": _unique(
            _str(_dict(p).get("Ipv4Prefix")) or "" for p in _list(item.get("Ipv4Prefixes"))
        ),
        "ipv6_prefixes": _unique(
            _str(_dict(p).get("Ipv6Prefix")) or "" for p in _list(item.get("Ipv6Prefixes"))
        ),
        "security_group_ids": _unique(_str(_dict(g).get("GroupId")) or "" for g in _list(item.get("Groups"))),
        "instance_id": _str(attachment.get("InstanceId")),
        "device_index": _int(attachment.get("DeviceIndex")),
    }


def _instances(responses: dict, records: AwsRecords) -> None:
    for reservation in _items(responses, "DescribeInstances", "Reservations", records.problems):
        for item in _list(reservation.get("Instances")):
            item = _dict(item)
            instance_id = _str(item.get("InstanceId"))
            if not instance_id:
                continue
            zone = _str(_dict(item.get("Placement")).get("AvailabilityZone"))
            eni_ids, primary = [], None
            for eni in _list(item.get("NetworkInterfaces")):
                eni = _dict(eni)
                eni_id = _str(eni.get("NetworkInterfaceId"))
                if not eni_id:
                    continue
                fields = _eni_fields(eni)
                fields["instance_id"] = fields["instance_id"] or instance_id
                fields["availability_zone"] = zone
                eni_ids.append(eni_id)
                if fields["device_index"] == 0:
                    primary = eni_id
                if eni_id not in records.network_interfaces:
                    records.network_interfaces[eni_id] = NetworkInterface(
                        id=eni_id, interface_type=_str(eni.get("InterfaceType")), **fields
                    )
            instance = Instance(
                id=instance_id,
                vpc_id=_str(item.get("VpcId")),
                subnet_id=_str(item.get("SubnetId")),
                availability_zone=zone,
                private_ip=_str(item.get("PrivateIpAddress")),
                network_interface_ids=_unique(eni_ids),
                primary_network_interface_id=primary,
            )
            _put_aws(records.instances, instance_id, instance, "DescribeInstances", records.problems)


def _network_interfaces(responses: dict, records: AwsRecords) -> None:
    """DescribeNetworkInterfaces is the fuller view: it wins over the copy inside DescribeInstances."""
    seen: set[str] = set()
    for item in _items(responses, "DescribeNetworkInterfaces", "NetworkInterfaces", records.problems):
        eni_id = _str(item.get("NetworkInterfaceId"))
        if not eni_id:
            records.problems.append(Problem("DescribeNetworkInterfaces", "NetworkInterfaceId", "missing"))
            continue
        if eni_id in seen:
            records.problems.append(
                Problem("DescribeNetworkInterfaces", eni_id, "duplicate entry; later copy ignored")
            )
            continue
        seen.add(eni_id)
        fields = _eni_fields(item)
        previous = records.network_interfaces.get(eni_id)
        if previous is not None:
            # Fill what this response lacks from the instance's copy rather than dropping it.
            for name, value in fields.items():
                if value in (None, ()):
                    fields[name] = getattr(previous, name)
        records.network_interfaces[eni_id] = NetworkInterface(
            id=eni_id,
            interface_type=_str(item.get("InterfaceType")),
            description=_str(item.get("Description")) or "",
            availability_zone=_str(item.get("AvailabilityZone"))
            or (previous.availability_zone if previous else None),
            **fields,
        )


def _sg_protocol(value: Any) -> str | None:
    text = _str(value)
    if text is None:
        return None
    text = text.strip().lower()
    return _SG_PROTOCOL_NAMES.get(text, text)


def _permissions(
    group_id: str, value: Any, direction: str, problems: list[Problem]
) -> tuple[SecurityGroupRule, ...]:
    rules = []
    for i, permission in enumerate(_list(value)):
        path = f"{direction}[{i}]"
        if not isinstance(permission, dict):
            problems.append(
                Problem(
                    f"SecurityGroup {group_id}", path, f"expected a mapping, got {_type_name(permission)}"
                )
            )
            continue
        protocol = _sg_protocol(permission.get("IpProtocol"))
        if protocol is None:
            problems.append(Problem(f"SecurityGroup {group_id}", f"{path}.IpProtocol", "missing"))
            continue
        from_port, to_port = _int(permission.get("FromPort")), _int(permission.get("ToPort"))
        if protocol == "-1":
            from_port = to_port = None  # all protocols means all ports, whatever the fields say
        elif protocol in ("tcp", "udp") and not (
            from_port is not None and to_port is not None and 0 <= from_port <= to_port <= 65535
        ):
            # AWS never returns such a rule; one in the data cannot be judged (nor guessed open).
            problems.append(
                Problem(
                    f"SecurityGroup {group_id}",
                    f"{path}.FromPort",
                    f"{_quote(permission.get('FromPort'))}-{_quote(permission.get('ToPort'))} is not a "
                    "port range within 0-65535",
                )
            )
            continue
        sources: list[tuple[str, str, str]] = []
        for entry in _list(permission.get("IpRanges")):
            sources.append(
                ("cidr", _str(_dict(entry).get("CidrIp")) or "", _str(_dict(entry).get("Description")) or "")
            )
        for entry in _list(permission.get("Ipv6Ranges")):
            sources.append(
                (
                    "cidr",
                    _str(_dict(entry).get("CidrIpv6")) or "",
                    _str(_dict(entry).get("Description")) or "",
                )
            )
        for entry in _list(permission.get("UserIdGroupPairs")):
            sources.append(
                (
                    "security_group",
                    _str(_dict(entry).get("GroupId")) or "",
                    _str(_dict(entry).get("Description")) or "",
                )
            )
        for entry in _list(permission.get("PrefixListIds")):
            sources.append(
                (
                    "prefix_list",
                    _str(_dict(entry).get("PrefixListId")) or "",
                    _str(_dict(entry).get("Description")) or "",
                )
            )
        for kind, source, description in sources:
            if not source or (kind == "cidr" and parse_cidr(source) is None):
                problems.append(
                    Problem(f"SecurityGroup {group_id}", path, f"invalid {kind} source {_quote(source)}")
                )
                continue
            rules.append(
                SecurityGroupRule(
                    protocol=protocol,
                    from_port=from_port,
                    to_port=to_port,
                    source_kind=kind,  # type: ignore[arg-type]
                    source=source,
                    description=description,
                )
            )
    return tuple(dict.fromkeys(rules))


def _security_groups(responses: dict, records: AwsRecords) -> None:
    for item in _items(responses, "DescribeSecurityGroups", "SecurityGroups", records.problems):
        group_id = _str(item.get("GroupId"))
        if not group_id:
            records.problems.append(Problem("DescribeSecurityGroups", "GroupId", "missing"))
            continue
        tags = {}
        for tag in _list(item.get("Tags")):
            key = _str(_dict(tag).get("Key"))
            if key is not None:
                tags[key] = _str(_dict(tag).get("Value")) or ""
        group = SecurityGroup(
            id=group_id,
            name=_str(item.get("GroupName")) or "",
            vpc_id=_str(item.get("VpcId")),
            tags=tags,
        )
        group.ingress = _permissions(group_id, item.get("IpPermissions"), "IpPermissions", group.problems)
        group.egress = _permissions(
            group_id, item.get("IpPermissionsEgress"), "IpPermissionsEgress", group.problems
        )
        records.problems.extend(group.problems)
        _put_aws(records.security_groups, group_id, group, "DescribeSecurityGroups", records.problems)


def _subnets(responses: dict, records: AwsRecords) -> None:
    for item in _items(responses, "DescribeSubnets", "Subnets", records.problems):
        subnet_id = _str(item.get("SubnetId"))
        if not subnet_id:
            continue
        cidr = _str(item.get("CidrBlock"))
        subnet = Subnet(
            id=subnet_id,
            vpc_id=_str(item.get("VpcId")),
            cidr=cidr if parse_cidr(cidr) else None,
            ipv6_cidrs=_unique(
                c
                for c in (
                    _str(_dict(a).get("Ipv6CidrBlock"))
                    for a in _list(item.get("Ipv6CidrBlockAssociationSet"))
                )
                if c and parse_cidr(c)
            ),
            availability_zone=_str(item.get("AvailabilityZone")),
        )
        _put_aws(records.subnets, subnet_id, subnet, "DescribeSubnets", records.problems)


def _associated(entry: Any, state_key: str) -> bool:
    state = _str(_dict(_dict(entry).get(state_key)).get("State"))
    return state in (None, "associated", "associating")


def _vpcs(responses: dict, records: AwsRecords) -> None:
    for item in _items(responses, "DescribeVpcs", "Vpcs", records.problems):
        vpc_id = _str(item.get("VpcId"))
        if not vpc_id:
            continue
        cidrs = [_str(item.get("CidrBlock"))]
        cidrs += [
            _str(_dict(a).get("CidrBlock"))
            for a in _list(item.get("CidrBlockAssociationSet"))
            if _associated(a, "CidrBlockState")
        ]
        ipv6 = [
            _str(_dict(a).get("Ipv6CidrBlock"))
            for a in _list(item.get("Ipv6CidrBlockAssociationSet"))
            if _associated(a, "Ipv6CidrBlockState")
        ]
        vpc = Vpc(
            id=vpc_id,
            cidrs=_unique(c for c in cidrs if c and parse_cidr(c)),
            ipv6_cidrs=_unique(c for c in ipv6 if c and parse_cidr(c)),
        )
        _put_aws(records.vpcs, vpc_id, vpc, "DescribeVpcs", records.problems)


def _network_acls(responses: dict, records: AwsRecords) -> None:
    for item in _items(responses, "DescribeNetworkAcls", "NetworkAcls", records.problems):
        acl_id = _str(item.get("NetworkAclId"))
        if not acl_id:
            continue
        problems: list[Problem] = []
        entries = []
        for i, entry in enumerate(_list(item.get("Entries"))):
            entry = _acl_entry(acl_id, i, entry, problems)
            if entry is not None:
                entries.append(entry)
        records.problems.extend(problems)
        records.network_acls.append(
            NetworkAcl(
                id=acl_id,
                vpc_id=_str(item.get("VpcId")),
                is_default=_bool(item.get("IsDefault")) is True,
                subnet_ids=_unique(
                    _str(_dict(a).get("SubnetId")) or "" for a in _list(item.get("Associations"))
                ),
                entries=tuple(sorted(entries, key=lambda e: (e.egress, e.rule_number))),
                problems=problems,
            )
        )


def _acl_entry(acl_id: str, i: int, value: Any, problems: list[Problem]) -> NetworkAclEntry | None:
    """One ACL entry, or None (with a problem naming the field) when AWS could not evaluate it as
    written: a malformed entry is dropped, and the bindings behind the ACL say so (INVALID_SPEC)."""
    obj, path = f"NetworkAcl {acl_id}", f"Entries[{i}]"
    if not isinstance(value, dict):
        problems.append(Problem(obj, path, f"expected a mapping, got {_type_name(value)}"))
        return None
    number = _int(value.get("RuleNumber"))
    if number is None or number not in _ACL_RULE_NUMBERS:
        problems.append(
            Problem(obj, f"{path}.RuleNumber", f"{_quote(value.get('RuleNumber'))} is not 1-32767")
        )
        return None
    protocol = (_str(value.get("Protocol")) or "").strip()
    if not (protocol == "-1" or (protocol.isdigit() and int(protocol) <= 255)):
        problems.append(
            Problem(obj, f"{path}.Protocol", f"{_quote(value.get('Protocol'))} is not -1 or 0-255")
        )
        return None
    action = (_str(value.get("RuleAction")) or "").strip().lower()
    if action not in ("allow", "deny"):
        problems.append(
            Problem(obj, f"{path}.RuleAction", f"{_quote(value.get('RuleAction'))} is not allow or deny")
        )
        return None
    cidr, ipv6 = _str(value.get("CidrBlock")), _str(value.get("Ipv6CidrBlock"))
    for key, text in (("CidrBlock", cidr), ("Ipv6CidrBlock", ipv6)):
        if text is not None and parse_cidr(text) is None:
            problems.append(Problem(obj, f"{path}.{key}", f"invalid CIDR {_quote(text)}"))
            return None
    if cidr is None and ipv6 is None:
        problems.append(Problem(obj, f"{path}.CidrBlock", "missing (and no Ipv6CidrBlock)"))
        return None
    port_range = value.get("PortRange")
    lo = hi = None
    if protocol in ("6", "17"):
        lo, hi = _int(_dict(port_range).get("From")), _int(_dict(port_range).get("To"))
        if lo is None or hi is None or not (0 <= lo <= hi <= 65535):
            problems.append(
                Problem(
                    obj, f"{path}.PortRange", f"{_quote(port_range)} is not a From-To range within 0-65535"
                )
            )
            return None
    return NetworkAclEntry(
        rule_number=number,
        protocol=protocol,
        action=action,
        egress=_bool(value.get("Egress")) is True,
        cidr=cidr,
        ipv6_cidr=ipv6,
        port_from=lo,
        port_to=hi,
    )


def _prefix_lists(responses: dict, records: AwsRecords) -> None:
    """`GetManagedPrefixListEntries` {prefixListId: {Entries: [{Cidr, Description}]}}."""
    for list_id, response in _keyed(responses, "GetManagedPrefixListEntries", records.problems).items():
        problems: list[Problem] = []
        cidrs = []
        entries = response.get("Entries")
        if not isinstance(entries, list):
            problems.append(
                Problem(f"PrefixList {list_id}", "Entries", f"expected a list, got {_type_name(entries)}")
            )
            entries = []
        for i, entry in enumerate(entries):
            text = _str(_dict(entry).get("Cidr"))
            if text is None or parse_cidr(text) is None:
                problems.append(
                    Problem(f"PrefixList {list_id}", f"Entries[{i}].Cidr", f"invalid CIDR {_quote(text)}")
                )
                continue
            cidrs.append(text.strip())
        records.problems.extend(problems)
        records.prefix_lists[list_id] = PrefixList(id=list_id, cidrs=_unique(cidrs), problems=problems)


# --- the whole inventory ------------------------------------------------------------------------


def build_inventory(
    *,
    cluster: str,
    kube: KubeRecords,
    aws: AwsRecords | None,
    client_cidrs: Iterable[str] | None = None,
    now: datetime | None = None,
    sources: Iterable[SourceStatus] = (),
    eni_sg_tags: dict[str, str] | None = None,
) -> Inventory:
    """Join one cluster's records with the AWS records into the `Inventory` the engine judges.

    `aws` None means the AWS side was not collected: the inventory says so (`aws_complete`
    False) and the engine answers `unknown` instead of "target group not found".
    """
    problems = list(kube.problems)
    cidrs: tuple[str, ...] | None = None
    if client_cidrs is not None:
        valid = []
        for i, cidr in enumerate(client_cidrs):
            if parse_cidr(cidr) is None:
                problems.append(
                    Problem(f"Cluster {cluster}", f"clientCidrs[{i}]", f"invalid CIDR {_quote(cidr)}")
                )
            else:
                valid.append(cidr.strip())
        cidrs = _unique(valid) or None
    inventory = Inventory(
        cluster=cluster,
        now=now,
        client_cidrs=cidrs,
        bindings=list(kube.bindings),
        services=dict(kube.services),
        endpoint_slices=list(kube.endpoint_slices),
        pods=dict(kube.pods),
        nodes=dict(kube.nodes),
        aws_complete=aws is not None,
        sources=list(sources),
        problems=problems,
        eni_sg_tags=dict(eni_sg_tags or {}),
    )
    if aws is not None:
        inventory.target_groups = dict(aws.target_groups)
        inventory.target_health = {arn: list(items) for arn, items in aws.target_health.items()}
        inventory.load_balancers = dict(aws.load_balancers)
        inventory.listeners = list(aws.listeners)
        inventory.network_interfaces = dict(aws.network_interfaces)
        inventory.instances = dict(aws.instances)
        inventory.security_groups = dict(aws.security_groups)
        inventory.subnets = dict(aws.subnets)
        inventory.vpcs = dict(aws.vpcs)
        inventory.network_acls = list(aws.network_acls)
        inventory.prefix_lists = dict(aws.prefix_lists)
        inventory.problems.extend(aws.problems)
    return inventory
