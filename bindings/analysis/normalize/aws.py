"""The AWS describe responses to records: `normalize_aws`, and the ELBv2 part (load balancers,
listeners, target groups, target health)."""

from __future__ import annotations

from typing import Any

from ..model import (
    Listener,
    LoadBalancer,
    LoadBalancerZone,
    Problem,
    TargetGroup,
    TargetHealth,
)
from .ec2 import (
    _instances,
    _network_acls,
    _network_interfaces,
    _prefix_lists,
    _security_groups,
    _subnets,
    _vpcs,
)
from .parsing import (
    _attributes,
    _bool,
    _dict,
    _int,
    _items,
    _keyed,
    _list,
    _put_aws,
    _quote,
    _str,
    _type_name,
    _unique,
)
from .records import AwsRecords

# Target-group protocols AWS can return; NLB ones plus the ALB/GWLB ones a TGB may still point at.
AWS_TG_PROTOCOLS = frozenset({"TCP", "TLS", "UDP", "TCP_UDP", "QUIC", "TCP_QUIC", "HTTP", "HTTPS", "GENEVE"})
AWS_TARGET_TYPES = frozenset({"ip", "instance", "lambda", "alb"})


def normalize_aws(responses: dict[str, Any]) -> AwsRecords:
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


def _load_balancers(responses: dict[str, Any], records: AwsRecords) -> None:
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


def _endpoint_services(responses: dict[str, Any], problems: list[Problem]) -> dict[str, set[str]] | None:
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


def _listeners(responses: dict[str, Any], records: AwsRecords) -> None:
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


def _target_groups(responses: dict[str, Any], records: AwsRecords) -> None:
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


def _target_health(responses: dict[str, Any], records: AwsRecords) -> None:
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
