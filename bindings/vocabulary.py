"""The stable vocabulary, one home: verdicts, severities, carried protocols and finding codes.

Pure (no Django, no I/O): the analysis emits these codes, the fix generator reads which are
fixable, the pages and the API show their help. The strings are a public contract (stored
results, API responses, alerts, the equivalence goldens): add codes, never rename one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Verdict = Literal["reachable", "partial", "blocked", "not_offered", "unknown"]
Severity = Literal["critical", "warning", "info"]
Protocol = Literal["TCP", "UDP"]

VERDICTS: tuple[Verdict, ...] = ("reachable", "partial", "blocked", "not_offered", "unknown")
SEVERITIES: tuple[Severity, ...] = ("critical", "warning", "info")
# Worse is higher: a binding's worst verdict and its findings' highest severity ("" = no finding).
VERDICT_RANK: dict[str, int] = {"reachable": 0, "not_offered": 1, "unknown": 2, "partial": 3, "blocked": 4}
SEVERITY_RANK: dict[str, int] = {"": 0, "info": 1, "warning": 2, "critical": 3}

# Target-group (or listener) protocol -> the transport protocols it carries.
CARRIED_PROTOCOLS: dict[str, tuple[Protocol, ...]] = {
    "TCP": ("TCP",),
    "TLS": ("TCP",),
    "UDP": ("UDP",),
    "QUIC": ("UDP",),
    "TCP_UDP": ("TCP", "UDP"),
    "TCP_QUIC": ("TCP", "UDP"),
}


def carried(protocol: str | None) -> tuple[Protocol, ...]:
    """The transport protocols a target-group or listener protocol carries; () when unknown."""
    return CARRIED_PROTOCOLS.get((protocol or "").upper(), ())


class Code:
    """Finding codes, as constants: a typo is an AttributeError, not a finding nobody knows."""

    TRAFFIC_BLOCKED = "TRAFFIC_BLOCKED"
    HEALTH_CHECK_MASKS_TRAFFIC = "HEALTH_CHECK_MASKS_TRAFFIC"
    HEALTH_CHECK_PROTOCOL_MISMATCH = "HEALTH_CHECK_PROTOCOL_MISMATCH"
    HEALTH_CHECK_PORT_MISMATCH = "HEALTH_CHECK_PORT_MISMATCH"
    HEALTH_CHECK_BLOCKED = "HEALTH_CHECK_BLOCKED"
    ALL_TARGETS_UNHEALTHY = "ALL_TARGETS_UNHEALTHY"
    MISSING_NETWORKING_RULE = "MISSING_NETWORKING_RULE"
    NETWORKING_NOT_RECONCILED = "NETWORKING_NOT_RECONCILED"
    EMPTY_PORTS_LIST = "EMPTY_PORTS_LIST"
    INSTANCE_PORT_NOT_NODEPORT = "INSTANCE_PORT_NOT_NODEPORT"
    CLIENT_RANGES_NOT_COVERED = "CLIENT_RANGES_NOT_COVERED"
    OVERLY_BROAD_SOURCE = "OVERLY_BROAD_SOURCE"
    SERVICE_PROTOCOL_MISMATCH = "SERVICE_PROTOCOL_MISMATCH"
    NO_LISTENER = "NO_LISTENER"
    TARGET_GROUP_NOT_FOUND = "TARGET_GROUP_NOT_FOUND"
    TARGET_DRIFT = "TARGET_DRIFT"
    UNHEALTHY_TARGETS = "UNHEALTHY_TARGETS"
    SECURITY_GROUP_TAG_AMBIGUOUS = "SECURITY_GROUP_TAG_AMBIGUOUS"
    INVALID_SPEC = "INVALID_SPEC"
    STALE_DATA = "STALE_DATA"
    PROBE_FAILS_WHILE_REACHABLE = "PROBE_FAILS_WHILE_REACHABLE"
    PROBE_SUCCEEDS_WHILE_BLOCKED = "PROBE_SUCCEEDS_WHILE_BLOCKED"
    OTHER_CLUSTER_TARGETS = "OTHER_CLUSTER_TARGETS"
    QUIC_SERVER_IDS = "QUIC_SERVER_IDS"
    PRIVATELINK = "PRIVATELINK"
    ZONAL_SHIFT_INELIGIBLE = "ZONAL_SHIFT_INELIGIBLE"


@dataclass(frozen=True, slots=True)
class FindingKind:
    """What one finding code means: the severities the analysis gives it, a plain-language "why it
    matters / what to do", and whether the fix generator proposes a change for it."""

    code: str
    severities: tuple[Severity, ...]
    help: str
    fixable: bool = False


_KINDS = (
    FindingKind(
        Code.TRAFFIC_BLOCKED,
        ("critical", "warning"),
        "Security-group rules on the targets' network interfaces do not admit this protocol and port "
        "from the sources that send it. Packets are dropped before they reach the pod or node.",
        fixable=True,
    ),
    FindingKind(
        Code.HEALTH_CHECK_MASKS_TRAFFIC,
        ("critical",),
        "Targets look healthy because the health check takes another path (TCP) than the traffic "
        "(UDP). The console shows green while clients get no answer.",
    ),
    FindingKind(
        Code.HEALTH_CHECK_PROTOCOL_MISMATCH,
        ("warning", "info"),
        "NLB health checks for UDP target groups are TCP, HTTP or HTTPS only, so a healthy target "
        "proves the TCP path, never the UDP path.",
    ),
    FindingKind(
        Code.HEALTH_CHECK_PORT_MISMATCH,
        ("info",),
        "The health check probes another port than the traffic port, so it cannot vouch for the "
        "traffic port's rules.",
        fixable=True,
    ),
    FindingKind(
        Code.HEALTH_CHECK_BLOCKED,
        ("critical",),
        "Rules do not admit health checks from the load balancer: targets turn unhealthy.",
        fixable=True,
    ),
    FindingKind(
        Code.ALL_TARGETS_UNHEALTHY,
        ("critical",),
        "Every target is unhealthy; the NLB then fails open and sends traffic to all.",
    ),
    FindingKind(
        Code.MISSING_NETWORKING_RULE,
        ("warning", "info"),
        "A TargetGroupBinding gets security-group rules only for what spec.networking.ingress "
        "declares, each protocol and port explicitly (UDP is never implied).",
        fixable=True,
    ),
    FindingKind(
        Code.NETWORKING_NOT_RECONCILED,
        ("warning",),
        "spec.networking declares the rule but the security group lacks it: the controller has not "
        "applied it or failed (see the events).",
        fixable=True,
    ),
    FindingKind(
        Code.EMPTY_PORTS_LIST,
        ("warning",),
        "ports: [] makes the controller create no rule at all.",
        fixable=True,
    ),
    FindingKind(
        Code.INSTANCE_PORT_NOT_NODEPORT,
        ("warning",),
        "Instance targets receive traffic on the NodePort, not the service port.",
        fixable=True,
    ),
    FindingKind(
        Code.CLIENT_RANGES_NOT_COVERED,
        ("warning",),
        "The client IP is preserved (always for UDP), so targets must admit the clients' own "
        "addresses, not only the load balancer's.",
        fixable=True,
    ),
    FindingKind(
        Code.OVERLY_BROAD_SOURCE,
        ("warning", "info"),
        "A rule admitting this traffic is open to the whole internet.",
    ),
    FindingKind(
        Code.SERVICE_PROTOCOL_MISMATCH,
        ("warning",),
        "The Service port's protocol is not one the target group carries.",
        fixable=True,
    ),
    FindingKind(
        Code.NO_LISTENER,
        ("warning",),
        "No listener forwards to this target group, so no traffic is offered.",
    ),
    FindingKind(
        Code.TARGET_GROUP_NOT_FOUND,
        ("critical",),
        "The target group named by the binding does not exist in the polled account.",
    ),
    FindingKind(
        Code.TARGET_DRIFT,
        ("warning",),
        "Registered targets and ready endpoints differ: the controller is behind or failing.",
    ),
    FindingKind(
        Code.UNHEALTHY_TARGETS,
        ("warning",),
        "Some targets fail their health checks (reason codes listed).",
    ),
    FindingKind(
        Code.SECURITY_GROUP_TAG_AMBIGUOUS,
        ("warning",),
        "The controller needs exactly one security group tagged kubernetes.io/cluster/<name> (and, "
        "with --service-target-eni-security-group-tags, those tags) on each target ENI to apply "
        "networking rules.",
        fixable=True,
    ),
    FindingKind(
        Code.INVALID_SPEC,
        ("warning",),
        "The binding or an object it depends on is malformed or missing, or breaks a rule of the "
        "controller's admission webhook.",
    ),
    FindingKind(
        Code.STALE_DATA,
        ("warning",),
        "The newest successful poll is older than three poll intervals: this may be out of date.",
    ),
    FindingKind(
        Code.PROBE_FAILS_WHILE_REACHABLE,
        ("warning",),
        "The rules say this protocol is reachable, but an active probe from the worker got no "
        "answer: look beyond the rules (the application, a firewall outside AWS, routing).",
    ),
    FindingKind(
        Code.PROBE_SUCCEEDS_WHILE_BLOCKED,
        ("warning",),
        "The rules say this protocol is blocked, but an active probe from the worker got an answer: "
        "the collected data may be incomplete (a rule or prefix list not polled) or out of date.",
    ),
    FindingKind(
        Code.OTHER_CLUSTER_TARGETS,
        ("info",),
        "The target group is shared across clusters (multiClusterTargetGroup): targets registered by "
        "other clusters are listed, not judged and not drift.",
    ),
    FindingKind(
        Code.QUIC_SERVER_IDS,
        ("info",),
        "QUIC targets carry a server ID that the backend must put in its connection IDs; without it "
        "HTTP/3 fails even when UDP gets through.",
    ),
    FindingKind(
        Code.PRIVATELINK,
        ("info",),
        "The load balancer is behind a VPC endpoint service; its inbound rules filter endpoint traffic "
        "only when EnforceSecurityGroupInboundRulesOnPrivateLinkTraffic is on.",
    ),
    FindingKind(
        Code.ZONAL_SHIFT_INELIGIBLE,
        ("info",),
        "On a cross-zone NLB, zonal shift needs every target group to be TCP or TLS with cross-zone not "
        "turned off (ELB/ARC prerequisites).",
    ),
)

FINDINGS: dict[str, FindingKind] = {kind.code: kind for kind in _KINDS}
FINDING_HELP: dict[str, str] = {kind.code: kind.help for kind in _KINDS}
FIXABLE_CODES: frozenset[str] = frozenset(kind.code for kind in _KINDS if kind.fixable)


# Appended to a source's stored error when AWS still throttled after the SDK's retries; /metrics
# counts throttled polls by it (bindings/api/metrics.py), so the collector and the reader share it.
THROTTLED_MARK = "(still throttled after retries)"
