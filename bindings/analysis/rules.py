"""Security-group rule matching, one home: which protocol and ports a rule covers.

The engine judges with it, the fix generator checks what is already admitted with it, and the
binding page explains with it, so the three cannot disagree on what a rule matches.

- Protocols are compared in one spelling (`norm_proto`): AWS returns names ("tcp") or numbers
  ("6"), and "-1" (or "all") for every protocol.
- An all-protocols rule covers every port, whatever ports it carries.
- A missing or negative `from_port` covers every port; a missing or negative `to_port` is open
  upwards (to 65535).
"""

from __future__ import annotations

PROTOCOL_NAMES = {
    "tcp": "tcp",
    "6": "tcp",
    "udp": "udp",
    "17": "udp",
    "-1": "-1",
    "all": "-1",
    "icmp": "icmp",
    "1": "icmp",
    "icmpv6": "icmpv6",
    "58": "icmpv6",
}
ALL_PORTS = (0, 65535)


def norm_proto(value: object) -> str:
    """Security-group and NACL protocols in one spelling: tcp, udp, -1, icmp, or the raw text."""
    text = str(value).strip().lower()
    return PROTOCOL_NAMES.get(text, text)


def rule_port_range(protocol: str, from_port: object, to_port: object) -> tuple[int, int]:
    """The ports (inclusive) a rule of (normalised) `protocol` covers."""
    if protocol == "-1" or not isinstance(from_port, int) or from_port < 0:
        return ALL_PORTS
    return from_port, to_port if isinstance(to_port, int) and to_port >= 0 else 65535


def rule_matches(rule_protocol: object, from_port: object, to_port: object, protocol: str, port: int) -> bool:
    """Whether a rule covers `protocol` (any spelling) on `port`; the source is the caller's."""
    rule_proto = norm_proto(rule_protocol)
    if rule_proto not in ("-1", norm_proto(protocol)):
        return False
    lo, hi = rule_port_range(rule_proto, from_port, to_port)
    return lo <= port <= hi
