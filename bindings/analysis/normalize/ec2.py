"""The EC2 part of the AWS responses: instances, network interfaces, security groups, subnets,
VPCs, network ACLs and managed prefix lists."""

from __future__ import annotations

from typing import Any

from ..model import (
    Instance,
    NetworkAcl,
    NetworkAclEntry,
    NetworkInterface,
    PrefixList,
    Problem,
    SecurityGroup,
    SecurityGroupRule,
    Subnet,
    Vpc,
)
from .parsing import (
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
    parse_cidr,
)
from .records import AwsRecords

# Network ACL rule numbers a user may set (32767 is the implicit final deny AWS lists too).
_ACL_RULE_NUMBERS = range(1, 32768)

# IANA protocol numbers that security-group rules may carry instead of names.
_SG_PROTOCOL_NAMES = {"6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6", "-1": "-1", "all": "-1"}


def _eni_fields(item: dict[str, Any]) -> dict[str, Any]:
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


def _instances(responses: dict[str, Any], records: AwsRecords) -> None:
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


def _network_interfaces(responses: dict[str, Any], records: AwsRecords) -> None:
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


def _security_groups(responses: dict[str, Any], records: AwsRecords) -> None:
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


def _subnets(responses: dict[str, Any], records: AwsRecords) -> None:
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


def _vpcs(responses: dict[str, Any], records: AwsRecords) -> None:
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


def _network_acls(responses: dict[str, Any], records: AwsRecords) -> None:
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


def _prefix_lists(responses: dict[str, Any], records: AwsRecords) -> None:
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
