"""The typed inventory the analysis runs on, and the results it produces.

Everything here is plain data: no Django, no SDK objects, no clock. The same `Inventory` is built
from the database (`bindings.store.inventory`) or from a bundle on disk (`bindings.analysis.bundle`),
so the dashboard and the offline `analyze` command judge with one engine.

Field names follow the AWS and Kubernetes APIs, in snake_case. Strings are kept exactly as the
source gave them (they may be hostile); the renderers escape them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

# The vocabulary's home is `bindings.vocabulary`; the model re-exports it for the analysis' users.
from ..vocabulary import CARRIED_PROTOCOLS as CARRIED_PROTOCOLS
from ..vocabulary import SEVERITIES as SEVERITIES
from ..vocabulary import VERDICTS as VERDICTS
from ..vocabulary import Protocol as Protocol
from ..vocabulary import Severity as Severity
from ..vocabulary import Verdict as Verdict

# Target groups that preserve the client IP whatever their attributes say (docs/facts.md §3.3).
ALWAYS_PRESERVE_CLIENT_IP = frozenset({"UDP", "TCP_UDP", "QUIC", "TCP_QUIC"})

CONTROLLER_RULE_DESCRIPTION = "elbv2.k8s.aws/targetGroupBinding=shared"
CLIENT_CIDRS_ANNOTATION = "binding-health/client-cidrs"
PROBE_ANNOTATION = "binding-health/probe"


@dataclass(frozen=True, slots=True)
class Problem:
    """A malformed or missing input, named precisely enough for an SRE to find and fix it."""

    object: str  # e.g. "TargetGroupBinding kube-system/coredns-udp"
    field: str  # e.g. "spec.networking.ingress[0].from[0].ipBlock.cidr"
    message: str


# --- Kubernetes side ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NetworkingPeer:
    """One `from` entry of a TGB networking rule: exactly one of the two is set when valid."""

    cidr: str | None = None
    security_group_id: str | None = None


@dataclass(frozen=True, slots=True)
class NetworkingPort:
    """One `ports` entry. `port` None means "all ports" (0-65535), as the controller reads it."""

    protocol: str = "TCP"  # "TCP" or "UDP" when valid; kept verbatim otherwise
    port: int | str | None = None  # int, a named pod port, or None


@dataclass(frozen=True, slots=True)
class NetworkingRule:
    peers: tuple[NetworkingPeer, ...]
    ports: tuple[NetworkingPort, ...]  # empty tuple = the `ports: []` case


@dataclass(frozen=True, slots=True)
class KubeEvent:
    type: str  # Normal / Warning
    reason: str
    message: str
    count: int = 1
    last_seen: datetime | None = None


@dataclass(slots=True)
class Binding:
    """A TargetGroupBinding, normalised. `raw` is the object as read (for fix manifests)."""

    uid: str
    namespace: str
    name: str
    api_version: str = "elbv2.k8s.aws/v1beta1"
    resource_version: str = ""
    generation: int | None = None
    observed_generation: int | None = None
    target_group_arn: str | None = None
    target_group_name: str | None = None
    target_type: str | None = None  # "ip" | "instance" | None when unset/invalid
    target_group_protocol: str | None = None  # spec.targetGroupProtocol (may be absent)
    ip_address_type: str | None = None
    service_name: str | None = None
    service_port: int | str | None = None
    # None: spec.networking (or its ingress) is absent. A tuple (maybe empty) otherwise.
    networking: tuple[NetworkingRule, ...] | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    client_cidrs: tuple[str, ...] | None = None  # parsed from the client-cidrs annotation
    events: tuple[KubeEvent, ...] = ()
    problems: list[Problem] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class ServicePort:
    name: str | None
    protocol: str  # TCP | UDP | SCTP
    port: int
    target_port: int | str | None = None
    node_port: int | None = None


@dataclass(slots=True)
class Service:
    uid: str
    namespace: str
    name: str
    type: str = "ClusterIP"
    ports: tuple[ServicePort, ...] = ()
    selector: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class EndpointPort:
    name: str | None
    protocol: str
    port: int | None


@dataclass(frozen=True, slots=True)
class Endpoint:
    addresses: tuple[str, ...]
    ready: bool | None = None  # None = unknown, which Kubernetes says to read as ready
    serving: bool | None = None
    terminating: bool | None = None
    node_name: str | None = None
    pod_name: str | None = None
    zone: str | None = None


@dataclass(slots=True)
class EndpointSlice:
    uid: str
    namespace: str
    name: str
    service_name: str | None
    address_type: str = "IPv4"
    ports: tuple[EndpointPort, ...] = ()
    endpoints: tuple[Endpoint, ...] = ()


@dataclass(frozen=True, slots=True)
class ContainerPort:
    name: str | None
    container_port: int
    protocol: str = "TCP"


@dataclass(slots=True)
class Pod:
    uid: str
    namespace: str
    name: str
    node_name: str | None = None
    ips: tuple[str, ...] = ()
    ready: bool = False
    container_ports: tuple[ContainerPort, ...] = ()
    pod_eni: str | None = None  # annotation vpc.amazonaws.com/pod-eni (security groups for pods)


@dataclass(slots=True)
class Node:
    uid: str
    name: str
    provider_id: str | None = None
    instance_id: str | None = None  # from providerID aws:///<az>/i-...
    zone: str | None = None
    internal_ips: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    ready: bool = False


# --- AWS side ----------------------------------------------------------------------------------


@dataclass(slots=True)
class TargetGroup:
    arn: str
    name: str = ""
    protocol: str = ""  # TCP | TLS | UDP | TCP_UDP | QUIC | TCP_QUIC (HTTP/HTTPS for ALBs)
    port: int | None = None
    vpc_id: str | None = None
    target_type: str | None = None
    ip_address_type: str | None = None
    health_check_protocol: str | None = None
    health_check_port: str | None = None  # "traffic-port" or a number as a string
    health_check_enabled: bool | None = None
    health_check_interval: int | None = None
    health_check_timeout: int | None = None
    healthy_threshold: int | None = None
    unhealthy_threshold: int | None = None
    health_check_path: str | None = None
    matcher: str | None = None
    load_balancer_arns: tuple[str, ...] = ()
    attributes: dict[str, str] | None = None  # None = not fetched
    problems: list[Problem] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TargetHealth:
    target_group_arn: str
    target_id: str  # IP address (ip) or instance id (instance)
    port: int | None = None
    availability_zone: str | None = None
    health_check_port: str | None = None
    state: str = "unavailable"  # healthy | unhealthy | initial | unused | draining | unavailable | ...
    reason: str | None = None
    description: str | None = None
    quic_server_id: str | None = None  # Target.QuicServerId (QUIC / TCP_QUIC groups only)


@dataclass(frozen=True, slots=True)
class LoadBalancerZone:
    zone_name: str
    subnet_id: str | None
    addresses: tuple[str, ...] = ()  # private IPv4/IPv6 addresses of the LB node in that zone


@dataclass(slots=True)
class LoadBalancer:
    arn: str
    name: str = ""
    type: str = "network"
    scheme: str = "internet-facing"
    vpc_id: str | None = None
    state: str | None = None
    ip_address_type: str | None = None
    dns_name: str | None = None
    security_groups: tuple[str, ...] = ()  # empty = an NLB without security groups, for good
    zones: tuple[LoadBalancerZone, ...] = ()
    attributes: dict[str, str] | None = None
    # EnforceSecurityGroupInboundRulesOnPrivateLinkTraffic ("on" | "off"; None = not returned).
    privatelink_enforce_inbound: str | None = None
    # Ids of the VPC endpoint services in front of it (DescribeVpcEndpointServiceConfigurations);
    # None = that call's answer was not collected (an older bundle).
    endpoint_services: tuple[str, ...] | None = None


@dataclass(slots=True)
class Listener:
    arn: str
    load_balancer_arn: str
    port: int | None
    protocol: str
    target_group_arns: tuple[str, ...] = ()  # every group any forward action sends to


@dataclass(slots=True)
class NetworkInterface:
    id: str
    interface_type: str | None = None
    description: str = ""
    subnet_id: str | None = None
    vpc_id: str | None = None
    availability_zone: str | None = None
    private_ips: tuple[str, ...] = ()  # primary first, then secondaries
    ipv6_addresses: tuple[str, ...] = ()
    ipv4_prefixes: tuple[str, ...] = ()
    ipv6_prefixes: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    instance_id: str | None = None
    device_index: int | None = None


@dataclass(slots=True)
class Instance:
    id: str
    vpc_id: str | None = None
    subnet_id: str | None = None
    availability_zone: str | None = None
    private_ip: str | None = None
    network_interface_ids: tuple[str, ...] = ()
    primary_network_interface_id: str | None = None  # DeviceIndex 0


@dataclass(frozen=True, slots=True)
class SecurityGroupRule:
    """One inbound (or outbound) permission for ONE source, as AWS evaluates it."""

    protocol: str  # "tcp" | "udp" | "icmp" | "icmpv6" | "-1" | another number, normalised
    from_port: int | None  # None with protocol -1 = all ports
    to_port: int | None
    source_kind: Literal["cidr", "security_group", "prefix_list"]
    source: str  # a CIDR (v4 or v6), a group id or a prefix-list id
    description: str = ""
    rule_id: str | None = None

    @property
    def controller_owned(self) -> bool:
        return self.description == CONTROLLER_RULE_DESCRIPTION


@dataclass(slots=True)
class SecurityGroup:
    id: str
    name: str = ""
    vpc_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    ingress: tuple[SecurityGroupRule, ...] = ()
    egress: tuple[SecurityGroupRule, ...] = ()
    # Malformed permissions (dropped from the rules): INVALID_SPEC on the bindings that use the group.
    problems: list[Problem] = field(default_factory=list)


@dataclass(slots=True)
class Subnet:
    id: str
    vpc_id: str | None = None
    cidr: str | None = None
    ipv6_cidrs: tuple[str, ...] = ()
    availability_zone: str | None = None


@dataclass(slots=True)
class Vpc:
    id: str
    cidrs: tuple[str, ...] = ()
    ipv6_cidrs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NetworkAclEntry:
    rule_number: int
    protocol: str  # "-1", "6", "17", ... as the API gives it
    action: str  # allow | deny
    egress: bool
    cidr: str | None = None
    ipv6_cidr: str | None = None
    port_from: int | None = None
    port_to: int | None = None


@dataclass(slots=True)
class NetworkAcl:
    id: str
    vpc_id: str | None = None
    is_default: bool = False
    subnet_ids: tuple[str, ...] = ()
    entries: tuple[NetworkAclEntry, ...] = ()
    # Malformed entries (dropped): INVALID_SPEC on the bindings whose targets sit behind the ACL.
    problems: list[Problem] = field(default_factory=list)


@dataclass(slots=True)
class PrefixList:
    """A managed prefix list's entries (GetManagedPrefixListEntries): a rule naming it admits them.

    A list a rule names that is absent from `Inventory.prefix_lists` is unknown, never empty."""

    id: str
    cidrs: tuple[str, ...] = ()
    problems: list[Problem] = field(default_factory=list)


# --- Sources and the whole inventory -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """How fresh one source's data is: the analysis judges staleness against `Inventory.now`."""

    kind: Literal["cluster", "aws"]
    name: str
    last_success_at: datetime | None
    poll_interval_seconds: int
    last_error: str = ""


@dataclass(frozen=True, slots=True)
class ProbeObservation:
    """The latest active probe of one binding and protocol, from the worker's network position.

    `status` is "ok" | "failed" | "inconclusive" | "error" (see `bindings.collect.probes`). `explicit`
    says the probe targeted a configured address rather than the load balancer's DNS name.
    """

    protocol: Protocol
    kind: str  # "tcp" | "dns" | "udp"
    status: str
    address: str = ""
    port: int | None = None
    latency_ms: float | None = None
    detail: str = ""
    at: datetime | None = None
    explicit: bool = False


@dataclass(slots=True)
class Inventory:
    """Everything known about one cluster and the AWS resources its bindings reference."""

    cluster: str
    now: datetime | None = None  # the analysis never reads the clock; callers pass it
    client_cidrs: tuple[str, ...] | None = None  # cluster (admin) or bundle override
    # The controller's `--service-target-eni-security-group-tags` (cluster setting or bundle.json
    # `serviceTargetEniSecurityGroupTags`): tags that the group it writes to must also carry.
    eni_sg_tags: dict[str, str] = field(default_factory=dict)
    bindings: list[Binding] = field(default_factory=list)
    services: dict[str, Service] = field(default_factory=dict)  # "ns/name" -> Service
    endpoint_slices: list[EndpointSlice] = field(default_factory=list)
    pods: dict[str, Pod] = field(default_factory=dict)  # "ns/name" -> Pod
    nodes: dict[str, Node] = field(default_factory=dict)  # name -> Node
    # AWS side; `aws_complete` False means the AWS poll failed or never ran: judgements that
    # need AWS data become `unknown`, and a missing target group is not "not found".
    aws_complete: bool = True
    target_groups: dict[str, TargetGroup] = field(default_factory=dict)  # arn -> TG
    target_health: dict[str, list[TargetHealth]] = field(default_factory=dict)  # tg arn -> list
    load_balancers: dict[str, LoadBalancer] = field(default_factory=dict)  # arn -> LB
    listeners: list[Listener] = field(default_factory=list)
    network_interfaces: dict[str, NetworkInterface] = field(default_factory=dict)  # id -> ENI
    instances: dict[str, Instance] = field(default_factory=dict)  # id -> Instance
    security_groups: dict[str, SecurityGroup] = field(default_factory=dict)  # id -> SG
    subnets: dict[str, Subnet] = field(default_factory=dict)
    vpcs: dict[str, Vpc] = field(default_factory=dict)
    network_acls: list[NetworkAcl] = field(default_factory=list)
    prefix_lists: dict[str, PrefixList] = field(default_factory=dict)  # id -> entries
    sources: list[SourceStatus] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)  # problems tied to no binding
    # Latest probe per (binding uid, protocol); empty when probes are off or offline (bundles).
    probes: dict[tuple[str, str], ProbeObservation] = field(default_factory=dict)


# --- Results -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    severity: Severity
    message: str
    protocol: Protocol | None = None
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TargetVerdict:
    """One target's admission for one protocol, with the rules that decided it."""

    target_id: str
    port: int | None
    network_interface_id: str | None
    security_group_ids: tuple[str, ...]
    admitted: bool | None  # None = unknown (ENI or SG missing)
    uncovered_sources: tuple[str, ...] = ()  # CIDRs of expected sources no rule admits
    matched_rules: tuple[str, ...] = ()  # human-readable rule descriptions
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ProtocolResult:
    protocol: Protocol
    port: int | None
    verdict: Verdict
    targets_total: int
    targets_admitted: int
    client_ip_preserved: bool
    expected_sources: tuple[str, ...]  # CIDRs, or "sg-…" when the LB's group is the source
    reasons: tuple[str, ...]
    targets: tuple[TargetVerdict, ...] = ()


@dataclass(frozen=True, slots=True)
class HealthCheckResult:
    protocol: str | None
    port: str | None  # "traffic-port" or number
    path: str | None
    proves: str
    cannot_prove: str
    admitted: bool | None  # do the target rules admit the health checks?
    healthy: int = 0
    unhealthy: int = 0
    other: int = 0


@dataclass(frozen=True, slots=True)
class BindingResult:
    cluster: str
    namespace: str
    name: str
    uid: str
    target_group_arn: str | None
    target_type: str | None
    target_group_protocol: str | None
    protocols: tuple[ProtocolResult, ...]
    health_check: HealthCheckResult | None
    findings: tuple[Finding, ...]

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"
