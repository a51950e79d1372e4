"""Security-group rule matching, one home (`bindings.analysis.rules`): the engine, the fix
generator and the binding page answer alike, for every spelling AWS uses."""

from __future__ import annotations

import pytest

from bindings import models as dm
from bindings.analysis import model as am
from bindings.analysis.engine import _Rule
from bindings.analysis.rules import norm_proto, rule_matches, rule_port_range
from bindings.fixes.generate import _has_equivalent
from bindings.web.views import _rule_matches as page_rule_matches

# (rule protocol, from, to, asked protocol, port, matches)
CASES = [
    ("udp", 53, 53, "UDP", 53, True),
    ("17", 53, 53, "udp", 53, True),  # AWS may answer with the protocol number
    ("6", 53, 53, "udp", 53, False),
    ("tcp", 1000, 2000, "tcp", 2000, True),
    ("tcp", 1000, 2000, "tcp", 2001, False),
    ("-1", None, None, "udp", 53, True),
    ("all", 80, 80, "udp", 53, True),  # an all-protocols rule covers every port
    ("-1", -1, -1, "tcp", 65535, True),
    ("udp", None, None, "udp", 1, True),  # no ports: all of them
    ("udp", -1, -1, "udp", 53, True),
    ("udp", 53, None, "udp", 8000, True),  # open upwards, as the engine has always judged
    ("udp", 53, None, "udp", 52, False),
    ("icmp", -1, -1, "udp", 53, False),
    ("UDP ", 53, 53, "udp", 53, True),  # spelling noise
]


def _db_rule(proto: str, lo: int | None, hi: int | None) -> dm.SecurityGroupRule:
    """An unsaved row: the page explains from the stored rules."""
    return dm.SecurityGroupRule(
        protocol=proto, from_port=lo, to_port=hi, source_kind="cidr", source="10.0.0.0/8"
    )


@pytest.mark.parametrize(("proto", "lo", "hi", "asked", "port", "expected"), CASES)
def test_the_rule(proto, lo, hi, asked, port, expected):
    assert rule_matches(proto, lo, hi, asked, port) is expected


@pytest.mark.parametrize(("proto", "lo", "hi", "asked", "port", "expected"), CASES)
def test_the_engine_agrees(proto, lo, hi, asked, port, expected):
    rule = am.SecurityGroupRule(
        protocol=proto, from_port=lo, to_port=hi, source_kind="cidr", source="10.0.0.0/8"
    )

    assert _Rule("sg-1", rule).matches(norm_proto(asked), port) is expected


@pytest.mark.parametrize(("proto", "lo", "hi", "asked", "port", "expected"), CASES)
def test_the_page_agrees(proto, lo, hi, asked, port, expected):
    rule = dm.SecurityGroupRule(
        protocol=proto, from_port=lo, to_port=hi, source_kind="cidr", source="10.0.0.0/8"
    )

    assert page_rule_matches(rule, asked, port) is expected


@pytest.mark.parametrize(("proto", "lo", "hi", "asked", "port", "expected"), CASES)
def test_the_fix_generator_agrees(proto, lo, hi, asked, port, expected):
    """A rule already in the group makes a proposed rule for one port redundant exactly when it matches."""
    rule = am.SecurityGroupRule(
        protocol=proto, from_port=lo, to_port=hi, source_kind="cidr", source="10.0.0.0/8"
    )
    sg = am.SecurityGroup(id="sg-1", ingress=(rule,))
    asked = norm_proto(asked)
    same_protocol = norm_proto(proto) == asked

    # `_has_equivalent` wants the same protocol (the controller would not accept -1 for udp).
    assert _has_equivalent(sg, asked, port, port, ("cidr", "10.0.0.0/8")) is (expected and same_protocol)


def test_an_unknown_port_on_the_page_matches_any_rule_of_the_protocol():
    rule = dm.SecurityGroupRule(
        protocol="udp", from_port=53, to_port=53, source_kind="cidr", source="10.0.0.0/8"
    )

    assert page_rule_matches(rule, "UDP", None)
    assert not page_rule_matches(rule, "TCP", None)


def test_port_ranges():
    assert rule_port_range("-1", 53, 53) == (0, 65535)
    assert rule_port_range("tcp", "53", 53) == (0, 65535)  # not a number: cannot narrow
    assert rule_port_range("tcp", 10, 20) == (10, 20)
