"""What a fix is made of: the planned security-group rules, network-ACL entries and health-check
change, and the `Fix` that holds them with the texts that explain them (plain data)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from bindings.analysis import model as m

from .peers import family

FixMode = Literal["networking", "security-groups", "health-check", "service-ref", "network-acl"]
Purpose = Literal["traffic", "health check"]

RULE_LIMIT = 60  # AWS default quota: inbound rules per security group, per address family


@dataclass(frozen=True, slots=True)
class PlannedRule:
    """One inbound security-group permission for one source, as we would write it."""

    security_group_id: str
    protocol: str  # "tcp" | "udp"
    from_port: int
    to_port: int
    peer_kind: Literal["cidr", "sg"]
    peer: str
    description: str
    # True: part of the fix (the TGB cannot produce it); False: an alternative to the manifest.
    required: bool
    network_interfaces: tuple[str, ...] = ()
    # "egress": an outbound rule (the load balancer's group to the targets); the peer is the
    # destination.
    direction: Literal["ingress", "egress"] = "ingress"

    def as_model(self) -> m.SecurityGroupRule:
        kind: Literal["cidr", "security_group"] = "cidr" if self.peer_kind == "cidr" else "security_group"
        return m.SecurityGroupRule(
            self.protocol, self.from_port, self.to_port, kind, self.peer, self.description
        )


@dataclass(frozen=True, slots=True)
class PlannedAclEntry:
    """One network-ACL entry to create (docs/DESIGN.md JSON `fix.networkAclEntries`)."""

    network_acl_id: str
    rule_number: int
    egress: bool
    protocol: str  # "6" | "17", as the ACL API spells it
    from_port: int
    to_port: int
    cidr: str
    action: str = "allow"

    def as_model(self) -> m.NetworkAclEntry:
        v6 = family(self.cidr) == 6
        return m.NetworkAclEntry(
            self.rule_number,
            self.protocol,
            self.action,
            self.egress,
            cidr=None if v6 else self.cidr,
            ipv6_cidr=self.cidr if v6 else None,
            port_from=self.from_port,
            port_to=self.to_port,
        )


@dataclass(frozen=True, slots=True)
class HealthCheckChange:
    target_group_arn: str
    port: str  # the new HealthCheckPort: "traffic-port"
    command: str
    reason: str


@dataclass(slots=True)
class Fix:
    """Everything one binding's fix changes, with the texts that explain it."""

    cluster: str
    namespace: str
    name: str
    uid: str
    target_group_arn: str | None
    mode: FixMode
    summary: str
    explanation: list[str]
    warnings: list[str]
    targets: tuple[str, ...]  # finding codes the fix repairs
    protocols: tuple[str, ...]  # carried protocols the fix turns `reachable`
    manifest: dict[str, Any] | None  # the full TGB, None when the TGB needs no change
    patch_body: dict[str, Any] | None
    kubectl_patch: str
    security_group_rules: tuple[PlannedRule, ...]
    security_group_commands: tuple[str, ...]
    terraform: str
    health_checks: tuple[HealthCheckChange, ...]
    rule_counts: dict[str, dict[str, Any]]
    manifest_errors: list[str] = field(default_factory=list)
    network_acl_entries: tuple[PlannedAclEntry, ...] = ()
    network_acl_commands: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"
