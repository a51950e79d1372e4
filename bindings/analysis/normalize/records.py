"""What the normalisers produce (`KubeRecords`, `AwsRecords`) and the `Inventory` they join into."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from ..model import (
    Binding,
    EndpointSlice,
    Instance,
    Inventory,
    Listener,
    LoadBalancer,
    NetworkAcl,
    NetworkInterface,
    Node,
    Pod,
    PrefixList,
    Problem,
    SecurityGroup,
    Service,
    SourceStatus,
    Subnet,
    TargetGroup,
    TargetHealth,
    Vpc,
)
from .parsing import _quote, _unique, parse_cidr

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
