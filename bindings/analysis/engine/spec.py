"""Checks of a binding's own spec: malformed fields, and what the controller's admission webhook
rejects."""

from __future__ import annotations

import re
from typing import Any

from ...vocabulary import Code
from .. import model as m
from ..netset import parse_network
from .common import _ANNOTATION_FIELD, _QUIC, _short
from .context import _Ctx


def _check_spec(c: _Ctx) -> None:
    b = c.b
    seen_fields = set()
    for problem in b.problems or ():
        seen_fields.add(problem.field)
        c.f.invalid(problem.object, problem.field, problem.message)
    for i, rule in enumerate(b.networking or ()):
        if not rule.ports and f"spec.networking.ingress[{i}].ports" not in seen_fields:
            # (`ports` missing or not a list is already an INVALID_SPEC naming the field.)
            c.f.add(
                Code.EMPTY_PORTS_LIST,
                "warning",
                f"spec.networking.ingress[{i}] has `ports: []`: the controller creates no rule at all for it "
                "(aws-load-balancer-controller#4907); list each protocol and port explicitly",
                None,
                rule=i,
            )
        for j, peer in enumerate(rule.peers or ()):
            if peer.cidr is not None:
                if parse_network(peer.cidr) is None:
                    field = f"spec.networking.ingress[{i}].from[{j}].ipBlock.cidr"
                    if field not in seen_fields:
                        c.f.invalid(c.obj, field, f"{peer.cidr!r} is not a valid CIDR")
            elif not peer.security_group_id:
                field = f"spec.networking.ingress[{i}].from[{j}]"
                if field not in seen_fields:
                    c.f.invalid(c.obj, field, "a peer needs an ipBlock.cidr or a securityGroup.groupID")
        for j, port in enumerate(rule.ports or ()):
            if str(port.protocol).upper() not in ("TCP", "UDP"):
                field = f"spec.networking.ingress[{i}].ports[{j}].protocol"
                if field not in seen_fields:
                    c.f.invalid(c.obj, field, f"{port.protocol!r} is not TCP or UDP")
    field = _ANNOTATION_FIELD
    for cidr in b.client_cidrs or ():
        if parse_network(cidr) is None and field not in seen_fields:
            c.f.invalid(c.obj, field, f"{cidr!r} is not a valid CIDR; it is ignored")
    for cidr in c.ix.inv.client_cidrs or ():
        if parse_network(cidr) is None:
            c.f.invalid(
                f"cluster {c.ix.inv.cluster}", "client CIDRs", f"{cidr!r} is not a valid CIDR; ignored"
            )


_VPC_ID = re.compile(r"^(?:vpc-[0-9a-f]{8}|vpc-[0-9a-f]{17}|vpc-[0-9a-f]{32})$")
# Most of the rules below run on create only in the controller's admission webhook, and the fields
# are not immutable (or the webhook was not running), so an object that breaks them can exist.
_WEBHOOK = "the controller's admission webhook rejects this"


def _spec_field(b: m.Binding, name: str) -> Any:
    spec = b.raw.get("spec") if isinstance(b.raw, dict) else None
    return spec.get(name) if isinstance(spec, dict) else None


def _check_webhook_rules(c: _Ctx) -> None:
    """The rules of the controller's TargetGroupBinding validator
    (webhooks/elbv2/targetgroupbinding_validator.go) that a bundle can show, as INVALID_SPEC.
    (Required fields are checked by `normalize`; immutable-field changes need the previous
    version of the object, which no bundle holds.)"""
    b, tg = c.b, c.tg
    if b.target_type == "ip" and _spec_field(b, "nodeSelector") is not None:
        c.f.invalid(
            c.obj,
            "spec.nodeSelector",
            f"set with targetType ip; {_WEBHOOK} (nodeSelector is for instance targets)",
        )
    if _spec_field(b, "iamRoleArnToAssume") and b.target_type == "instance":
        c.f.invalid(
            c.obj,
            "spec.iamRoleArnToAssume",
            f"set with targetType instance; {_WEBHOOK} "
            "(a target group in another account takes ip targets only)",
        )
    declared_type = b.ip_address_type
    if declared_type is not None and declared_type not in ("ipv4", "ipv6"):
        c.f.invalid(c.obj, "spec.ipAddressType", f"{declared_type!r} is not ipv4 or ipv6")
    vpc_id = _spec_field(b, "vpcID")
    if vpc_id is not None and vpc_id != "":
        if not isinstance(vpc_id, str) or not _VPC_ID.match(vpc_id):
            c.f.invalid(
                c.obj,
                "spec.vpcID",
                f"{str(vpc_id)[:80]!r} is not a VPC id (vpc- followed by 8, 17 or 32 lowercase hex "
                f"characters); {_WEBHOOK}",
            )
        elif tg is not None and tg.vpc_id and tg.vpc_id != vpc_id:
            c.f.invalid(
                c.obj,
                "spec.vpcID",
                f"{vpc_id} but target group {tg.name or tg.arn} is in {tg.vpc_id}; {_WEBHOOK}",
            )
    if tg is not None:
        tg_type = str(tg.ip_address_type).lower() if tg.ip_address_type else None
        if tg_type is not None and tg_type not in ("ipv4", "ipv6"):
            c.f.invalid(
                f"TargetGroup {tg.arn}",
                "IpAddressType",
                f"{str(tg.ip_address_type)[:40]!r} is not ipv4 or ipv6",
            )
        elif (
            tg_type is not None
            and declared_type in (None, "ipv4", "ipv6")
            and (declared_type or "ipv4") != tg_type
        ):
            c.f.invalid(
                c.obj,
                "spec.ipAddressType",
                f"{declared_type or 'unset (ipv4)'} but target group {tg.name or tg.arn} is "
                f"{tg_type}; {_WEBHOOK}",
            )
        spec_proto = b.target_group_protocol
        if spec_proto is not None and tg.protocol and spec_proto != tg.protocol:
            c.f.invalid(
                c.obj,
                "spec.targetGroupProtocol",
                f"{spec_proto!r} but target group {tg.name or tg.arn} is {tg.protocol!r}; {_WEBHOOK}",
            )
        elif tg.protocol in _QUIC and b.target_type == "instance":
            # The validator checks this only with targetGroupProtocol set, but its mutating
            # webhook sets that field from the target group on every create: every create is checked.
            c.f.invalid(
                c.obj,
                "spec.targetType",
                f"instance targets with a {tg.protocol} target group; {_WEBHOOK} (QUIC needs ip targets)",
            )
    if c.tg_arn:
        others = [o for o in c.ix.bindings_by_tg().get(c.tg_arn, ()) if o is not b]
        if others and not (
            _spec_field(b, "multiClusterTargetGroup") is True
            and all(_spec_field(o, "multiClusterTargetGroup") is True for o in others)
        ):
            c.f.invalid(
                c.obj,
                "spec.targetGroupARN",
                f"target group {c.tg_arn} is also bound by {_short(o.key for o in others)}; {_WEBHOOK} "
                "unless every binding of the group sets multiClusterTargetGroup: true",
            )
