"""How each mirrored AWS kind is stored: model column <-> analysis record attribute.

`sync.account_sync` writes rows from the normalised records (`row_of`); `inventory` reads the
rows back into the same records for the analysis (`record_of`). Both directions come from the one
table below, so a field added to a model and its record is mapped once and cannot drift apart.

A kind names how a value crosses the boundary: text columns are NOT NULL (None is stored as ""),
sequences are JSON lists in the database and tuples in the frozen records, and so on.
Kubernetes kinds keep their hand-written mapping in `sync`/`inventory`: their nested port and
endpoint structures rename keys on the way, which a table would only obscure.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields, is_dataclass
from datetime import datetime
from typing import Any

from django.db import models

from bindings import models as m
from bindings.analysis import model as am

_SCALARS = frozenset({str, int, float, bool, type(None)})
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def jsonable(value: Any) -> Any:
    """Dataclasses/tuples/datetimes -> JSON values, so JSON columns compare equal on re-read.

    One walk, the same values as `asdict` followed by the conversion: `asdict` deep-copied
    every leaf and the result was walked a second time, which was a third of storing a poll's
    results (docs/performance.md, "Poll cycle").
    """
    cls = value.__class__
    if cls in _SCALARS:
        return value
    names = _FIELD_NAMES.get(cls)
    if names is None and is_dataclass(cls):
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls))
    if names is not None:
        return {name: jsonable(getattr(value, name)) for name in names}
    if cls is dict or isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if cls is list or cls is tuple:
        return [jsonable(v) for v in value]
    if isinstance(value, set | frozenset):
        # Sets: the order `asdict` gave (it rebuilt the set from converted members).
        return jsonable(asdict_order(value))
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def asdict_order(value: set | frozenset) -> list:
    """A set's members in the order `dataclasses.asdict` yields them (it rebuilds the set)."""
    return list(asdict(_Holder(value)).get("value", ()))


@dataclass
class _Holder:
    value: Any


def problems_of(items: Any) -> list[am.Problem]:
    """Stored problems (JSON objects) back to records; anything malformed is dropped."""
    out = []
    for p in items or []:
        if isinstance(p, dict):
            out.append(
                am.Problem(str(p.get("object", "")), str(p.get("field", "")), str(p.get("message", "")))
            )
    return out


Convert = Callable[[Any], Any]


def _same(v: Any) -> Any:
    return v


def _text(v: Any) -> Any:
    return v or ""


def _none_if_empty(v: Any) -> Any:
    return v or None


def _optional_dict(v: Any) -> Any:
    return None if v is None else dict(v)


def _zones(v: Any) -> tuple[am.LoadBalancerZone, ...]:
    return tuple(
        am.LoadBalancerZone(z.get("zone_name", ""), z.get("subnet_id"), tuple(z.get("addresses", ())))
        for z in v
    )


def _acl_entries(v: Any) -> tuple[am.NetworkAclEntry, ...]:
    return tuple(am.NetworkAclEntry(**entry) for entry in v)


# kind -> (record value -> column value, column value -> record value)
KINDS: dict[str, tuple[Convert, Convert]] = {
    "plain": (_same, _same),
    "text": (_text, _same),  # required text: None stored as "", read back as stored
    "optional": (_text, _none_if_empty),  # optional text: None <-> ""
    "seq": (list, tuple),
    "optional seq": (lambda v: None if v is None else list(v), lambda v: None if v is None else tuple(v)),
    "dict": (lambda v: dict(v or {}), lambda v: dict(v or {})),
    "optional dict": (_optional_dict, _optional_dict),
    "bool": (bool, _same),
    "problems": (lambda v: jsonable(v or []), problems_of),
    "zones": (jsonable, _zones),
    "acl entries": (jsonable, _acl_entries),
}


@dataclass(frozen=True)
class FieldMap:
    model: type[models.Model]
    record: type
    key: tuple[str, ...]  # columns identifying a row within its account
    fields: tuple[tuple[str, str, str], ...]  # (column, record attribute, kind)

    def row_of(self, record: Any) -> dict[str, Any]:
        """The columns to store for `record`."""
        return {column: KINDS[kind][0](getattr(record, attr)) for column, attr, kind in self.fields}

    def record_of(self, row: models.Model, **extra: Any) -> Any:
        """The analysis record a stored row stands for (`extra`: attributes stored elsewhere).

        Text values are interned: a worker holds a whole account's records at once, and most of
        their text repeats (each target's group ARN and health state, subnet, VPC and group ids)."""
        values = {}
        for column, attr, kind in self.fields:
            value = KINDS[kind][1](getattr(row, column))
            values[attr] = sys.intern(value) if type(value) is str else value
        return self.record(**values, **extra)


TARGET_GROUP = FieldMap(
    m.TargetGroup,
    am.TargetGroup,
    ("arn",),
    (
        ("arn", "arn", "plain"),
        ("name", "name", "text"),
        ("protocol", "protocol", "text"),
        ("port", "port", "plain"),
        ("vpc_id", "vpc_id", "optional"),
        ("target_type", "target_type", "optional"),
        ("ip_address_type", "ip_address_type", "optional"),
        ("health_check_protocol", "health_check_protocol", "optional"),
        ("health_check_port", "health_check_port", "optional"),
        ("health_check_enabled", "health_check_enabled", "plain"),
        ("health_check_interval", "health_check_interval", "plain"),
        ("health_check_timeout", "health_check_timeout", "plain"),
        ("healthy_threshold", "healthy_threshold", "plain"),
        ("unhealthy_threshold", "unhealthy_threshold", "plain"),
        ("health_check_path", "health_check_path", "optional"),
        ("matcher", "matcher", "optional"),
        ("load_balancer_arns", "load_balancer_arns", "seq"),
        ("attributes", "attributes", "optional dict"),
        ("problems", "problems", "problems"),
    ),
)

REGISTERED_TARGET = FieldMap(
    m.RegisteredTarget,
    am.TargetHealth,
    ("target_group_arn", "target_id", "port"),
    (
        ("target_group_arn", "target_group_arn", "plain"),
        ("target_id", "target_id", "plain"),
        ("port", "port", "plain"),
        ("availability_zone", "availability_zone", "optional"),
        ("health_check_port", "health_check_port", "optional"),
        ("state", "state", "text"),
        ("reason", "reason", "optional"),
        ("description", "description", "optional"),
        ("quic_server_id", "quic_server_id", "optional"),
    ),
)

LOAD_BALANCER = FieldMap(
    m.LoadBalancer,
    am.LoadBalancer,
    ("arn",),
    (
        ("arn", "arn", "plain"),
        ("name", "name", "text"),
        ("type", "type", "text"),
        ("scheme", "scheme", "text"),
        ("vpc_id", "vpc_id", "optional"),
        ("state", "state", "optional"),
        ("ip_address_type", "ip_address_type", "optional"),
        ("dns_name", "dns_name", "optional"),
        ("security_groups", "security_groups", "seq"),
        ("zones", "zones", "zones"),
        ("attributes", "attributes", "optional dict"),
        ("privatelink_enforce_inbound", "privatelink_enforce_inbound", "optional"),
        ("endpoint_services", "endpoint_services", "optional seq"),
    ),
)

LISTENER = FieldMap(
    m.Listener,
    am.Listener,
    ("arn",),
    (
        ("arn", "arn", "plain"),
        ("load_balancer_arn", "load_balancer_arn", "text"),
        ("port", "port", "plain"),
        ("protocol", "protocol", "text"),
        ("target_group_arns", "target_group_arns", "seq"),
    ),
)

NETWORK_INTERFACE = FieldMap(
    m.NetworkInterface,
    am.NetworkInterface,
    ("eni_id",),
    (
        ("eni_id", "id", "plain"),
        ("interface_type", "interface_type", "optional"),
        ("description", "description", "text"),
        ("subnet_id", "subnet_id", "optional"),
        ("vpc_id", "vpc_id", "optional"),
        ("availability_zone", "availability_zone", "optional"),
        ("private_ips", "private_ips", "seq"),
        ("ipv6_addresses", "ipv6_addresses", "seq"),
        ("ipv4_prefixes", "ipv4_prefixes", "seq"),
        ("ipv6_prefixes", "ipv6_prefixes", "seq"),
        ("security_group_ids", "security_group_ids", "seq"),
        ("instance_id", "instance_id", "optional"),
        ("device_index", "device_index", "plain"),
    ),
)

INSTANCE = FieldMap(
    m.Instance,
    am.Instance,
    ("instance_id",),
    (
        ("instance_id", "id", "plain"),
        ("vpc_id", "vpc_id", "optional"),
        ("subnet_id", "subnet_id", "optional"),
        ("availability_zone", "availability_zone", "optional"),
        ("private_ip", "private_ip", "optional"),
        ("network_interface_ids", "network_interface_ids", "seq"),
        ("primary_network_interface_id", "primary_network_interface_id", "optional"),
    ),
)

# The rules live in their own table (`sync._sync_rules`); the group row holds the rest.
SECURITY_GROUP = FieldMap(
    m.SecurityGroup,
    am.SecurityGroup,
    ("group_id",),
    (
        ("group_id", "id", "plain"),
        ("name", "name", "text"),
        ("vpc_id", "vpc_id", "optional"),
        ("tags", "tags", "dict"),
        ("problems", "problems", "problems"),
    ),
)

SUBNET = FieldMap(
    m.Subnet,
    am.Subnet,
    ("subnet_id",),
    (
        ("subnet_id", "id", "plain"),
        ("vpc_id", "vpc_id", "optional"),
        ("cidr", "cidr", "optional"),
        ("ipv6_cidrs", "ipv6_cidrs", "seq"),
        ("availability_zone", "availability_zone", "optional"),
    ),
)

VPC = FieldMap(
    m.Vpc,
    am.Vpc,
    ("vpc_id",),
    (
        ("vpc_id", "id", "plain"),
        ("cidrs", "cidrs", "seq"),
        ("ipv6_cidrs", "ipv6_cidrs", "seq"),
    ),
)

NETWORK_ACL = FieldMap(
    m.NetworkAcl,
    am.NetworkAcl,
    ("acl_id",),
    (
        ("acl_id", "id", "plain"),
        ("vpc_id", "vpc_id", "optional"),
        ("is_default", "is_default", "bool"),
        ("subnet_ids", "subnet_ids", "seq"),
        ("entries", "entries", "acl entries"),
        ("problems", "problems", "problems"),
    ),
)

PREFIX_LIST = FieldMap(
    m.ManagedPrefixList,
    am.PrefixList,
    ("prefix_list_id",),
    (
        ("prefix_list_id", "id", "plain"),
        ("cidrs", "cidrs", "seq"),
        ("problems", "problems", "problems"),
    ),
)
