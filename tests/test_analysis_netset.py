"""Address-range set arithmetic."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bindings.analysis.netset import (
    ALL_V4,
    ALL_V6,
    EMPTY,
    NetSet,
    coverage,
    is_valid_cidr,
    parse_network,
    parse_network_strict,
)


def test_it_parses_cidrs_leniently():
    assert str(parse_network(" 10.0.1.5/16 ")) == "10.0.0.0/16"
    assert str(parse_network("10.0.0.1")) == "10.0.0.1/32"
    assert str(parse_network("2001:db8::1/32")) == "2001:db8::/32"


@pytest.mark.parametrize("text", ["", "nonsense", "10.0.0.0/33", "10.0.0.999/8", "10.0.0.0 /8", None, 42])
def test_it_rejects_what_is_not_a_cidr(text):
    assert parse_network(text) is None
    assert not is_valid_cidr(text)
    with pytest.raises(ValueError, match="not a valid"):
        parse_network_strict(text)


def test_from_cidrs_skips_bad_entries_unless_strict():
    assert NetSet.from_cidrs(["10.0.0.0/8", "bad"]).to_cidrs() == ("10.0.0.0/8",)
    with pytest.raises(ValueError, match="'bad'"):
        NetSet.from_cidrs(["bad"], strict=True)


def test_union_merges_adjacent_and_overlapping_ranges():
    assert NetSet.of("10.0.0.0/25", "10.0.0.128/25").to_cidrs() == ("10.0.0.0/24",)
    assert NetSet.of("10.0.0.0/16", "10.0.1.0/24").to_cidrs() == ("10.0.0.0/16",)


def test_it_keeps_address_families_apart():
    both = NetSet.of("0.0.0.0/0", "::/0")
    assert both.family(4) == ALL_V4 and both.family(6) == ALL_V6
    assert both.is_everything(4) and both.is_everything(6)
    assert coverage(ALL_V4, ALL_V6) == "none"


def test_coverage_is_full_partial_or_none():
    vpc = NetSet.of("10.0.0.0/16")
    assert coverage(NetSet.of("10.0.0.0/8"), vpc) == "full"
    assert coverage(NetSet.of("10.0.0.0/17"), vpc) == "partial"
    assert coverage(NetSet.of("192.168.0.0/16"), vpc) == "none"
    assert coverage(NetSet.of("10.0.0.0/17", "10.0.128.0/17"), vpc) == "full"
    assert coverage(EMPTY, vpc) == "none"
    assert coverage(EMPTY, EMPTY) == "full"


def test_the_uncovered_remainder_is_given_as_cidrs():
    remainder = NetSet.of("10.0.0.0/16") - NetSet.of("10.0.1.0/24")
    assert remainder.to_cidrs() == (
        "10.0.0.0/24",
        "10.0.2.0/23",
        "10.0.4.0/22",
        "10.0.8.0/21",
        "10.0.16.0/20",
        "10.0.32.0/19",
        "10.0.64.0/18",
        "10.0.128.0/17",
    )
    assert (ALL_V6 - NetSet.of("::/1")).to_cidrs() == ("8000::/1",)


def test_intersection_and_contains():
    a = NetSet.of("10.0.0.0/16", "2001:db8::/32")
    b = NetSet.of("10.0.128.0/17", "192.168.0.0/16")
    assert (a & b).to_cidrs() == ("10.0.128.0/17",)
    assert a.contains(NetSet.of("10.0.3.0/24"))
    assert not a.contains(b)
    assert str(EMPTY) == "(nothing)"


networks_v4 = st.builds(
    lambda addr, plen: str(ipaddress.ip_network(f"{ipaddress.IPv4Address(addr)}/{plen}", strict=False)),
    st.integers(0, 2**32 - 1),
    st.integers(0, 32),
)
networks_v6 = st.builds(
    lambda addr, plen: str(ipaddress.ip_network(f"{ipaddress.IPv6Address(addr)}/{plen}", strict=False)),
    st.integers(0, 2**128 - 1),
    st.integers(0, 128),
)
netsets = st.lists(st.one_of(networks_v4, networks_v6), max_size=6).map(NetSet.from_cidrs)


@given(netsets, netsets)
def test_set_laws_hold(a, b):
    assert (a | b) - b == a - b
    assert (a - b) & b == EMPTY
    assert ((a - b) | (a & b)) == a
    assert a.size() + b.size() == (a | b).size() + (a & b).size()
    assert coverage(a | b, a) == "full"


@given(netsets)
def test_to_cidrs_round_trips(a):
    assert NetSet.from_cidrs(a.to_cidrs()) == a
