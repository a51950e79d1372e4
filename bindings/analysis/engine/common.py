"""Constants and small helpers every part of the engine shares: what listeners carry, limits,
address parsing and the text of lists."""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from functools import lru_cache

from ...vocabulary import SEVERITY_RANK
from .. import model as m
from ..netset import NetSet

# Listener protocol -> {target-group protocol: protocols that listener carries to it}.
LISTENER_CARRIES: dict[str, dict[str, tuple[m.Protocol, ...]]] = {
    "TCP": {"TCP": ("TCP",), "TCP_UDP": ("TCP",)},  # a TCP listener cannot forward to a TLS group
    "TLS": {"TCP": ("TCP",), "TLS": ("TCP",)},
    "UDP": {"UDP": ("UDP",), "TCP_UDP": ("UDP",)},
    "TCP_UDP": {"TCP_UDP": ("TCP", "UDP")},
    "QUIC": {"QUIC": ("UDP",)},
    "TCP_QUIC": {"TCP_QUIC": ("TCP", "UDP")},
}

# The same, flat: (listener protocol, target-group protocol) -> carried protocols.
_CARRIES: dict[tuple[str, str], tuple[m.Protocol, ...]] = {
    (listener, group): carried
    for listener, groups in LISTENER_CARRIES.items()
    for group, carried in groups.items()
}

# Findings sort worst first: the vocabulary's rank, negated.
_SEVERITY_RANK = {s: -rank for s, rank in SEVERITY_RANK.items() if s}
_HEALTH_CHECK_TCP = frozenset({"TCP", "HTTP", "HTTPS"})
# Nodes the controller never registers as instance targets (its default node selector).
EXCLUDED_NODE_LABELS = (
    "node-role.kubernetes.io/master",
    "node.kubernetes.io/exclude-from-external-load-balancers",
    "alpha.service-controller.kubernetes.io/exclude-balancer",
)
_MAX_LISTED = 10
# Marks reasons where the load balancer's own security groups refuse the traffic.
_LB_REFUSAL = " of load balancer "
# Origin text of default client ranges that could not be known (see `InventoryIndex.default_clients`).
UNKNOWN_CLIENTS = "unknown: "
# Reasons where a load balancer's inbound rules refuse all or part of the explicit client ranges
# (`_explicit_client_refusal`); the fix generator adds the missing inbound rules on seeing them.
LB_REFUSES_CLIENTS = (" admit none of the client ranges ", " refuse the client range(s) ")
_ANNOTATION_FIELD = f"metadata.annotations[{m.CLIENT_CIDRS_ANNOTATION}]"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_DOTTED_QUAD = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


@lru_cache(maxsize=262144)
def _norm_ip(text: object) -> str | None:
    """The canonical spelling of an address (None when it is not one); dotted quads fast."""
    if not isinstance(text, str):
        return None
    if _DOTTED_QUAD.fullmatch(text):
        return text
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


_V4_LAST = (1 << 32) - 1
_V6_LAST = (1 << 128) - 1


def _ip_key(text: str) -> tuple[int, int] | None:
    """(version, integer) of a canonical address; dotted quads without ipaddress (hot path)."""
    if _DOTTED_QUAD.fullmatch(text):
        return 4, int.from_bytes(socket.inet_aton(text), "big")
    try:
        ip = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    return ip.version, int(ip)


def _host_cidr(address: str) -> str | None:
    ip = _norm_ip(address)
    if ip is None:
        return None
    return f"{ip}/32" if ":" not in ip else f"{ip}/128"


@lru_cache(maxsize=65536)
def _cidrs(netset: NetSet) -> tuple[str, ...]:
    return netset.to_cidrs()


def _ports_label(proto: str, lo: int, hi: int) -> str:
    if proto == "-1" or (lo <= 0 and hi >= 65535):
        return "all ports"
    return str(lo) if lo == hi else f"{lo}-{hi}"


def _short(items: Iterable[object], limit: int = _MAX_LISTED) -> str:
    listed = [str(i) for i in items]
    if len(listed) > limit:
        return ", ".join(listed[:limit]) + f" and {len(listed) - limit} more"
    return ", ".join(listed)


def _lb_suffix(lb_arn: str) -> str | None:
    """`net/<name>/<id>` from a load balancer ARN: NLB node ENIs are described "ELB " + that."""
    marker = ":loadbalancer/"
    pos = lb_arn.find(marker)
    return lb_arn[pos + len(marker) :] if pos >= 0 else None


# The QUIC target-group protocols (the webhook refuses instance targets for them; listener rules).
_QUIC = frozenset({"QUIC", "TCP_QUIC"})
