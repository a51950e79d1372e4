"""Address-range set arithmetic for IPv4 and IPv6.

Security-group coverage is a question about sets of addresses: several rules may together cover a
client range that no single rule covers, and the part no rule covers is what an SRE needs to see.
`NetSet` keeps each address family as a sorted tuple of disjoint, non-adjacent inclusive integer
intervals, so union, intersection and difference are linear merges and the objects are hashable
(the engine caches judgements keyed by them).

Parsing is lenient the way operators write CIDRs: surrounding whitespace is ignored, host bits may
be set (`10.0.1.5/16` means `10.0.0.0/16`, as AWS and the controller read it) and a bare address
means a single host. Anything else is rejected: `parse_network` returns None, `parse_network_strict`
raises a ValueError that quotes the text.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

Coverage = Literal["full", "partial", "none"]
Interval = tuple[int, int]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_V4_MAX = (1 << 32) - 1
_V6_MAX = (1 << 128) - 1


@lru_cache(maxsize=65536)
def parse_network(text: object) -> Network | None:
    """Parse a CIDR or a bare address leniently; None when it is not one."""
    if not isinstance(text, str):
        return None
    candidate = text.strip()
    # ipaddress accepts things like "10/8"-less integers only via int; strings stay strict enough,
    # but an empty string or one with spaces inside is never a network.
    if not candidate or any(ch.isspace() for ch in candidate):
        return None
    try:
        return ipaddress.ip_network(candidate, strict=False)
    except ValueError:
        return None


def parse_network_strict(text: object) -> Network:
    """Parse like `parse_network`, raising a ValueError that quotes the offending text."""
    network = parse_network(text)
    if network is None:
        raise ValueError(f"not a valid IPv4/IPv6 CIDR or address: {text!r}")
    return network


def is_valid_cidr(text: object) -> bool:
    return parse_network(text) is not None


@lru_cache(maxsize=65536)
def _interval(text: object) -> tuple[int, int, int] | None:
    """(version, first, last) of a CIDR as integers, cached: rule sources repeat a lot."""
    network = parse_network(text)
    if network is None:
        return None
    first = int(network.network_address)
    return network.version, first, first + network.num_addresses - 1


@lru_cache(maxsize=65536)
def address_version(text: object) -> int | None:
    """4 or 6 for a bare address (or CIDR), None when it is not one."""
    found = _interval(text)
    return found[0] if found else None


def _merge(intervals: Iterable[Interval]) -> tuple[Interval, ...]:
    ordered = sorted(intervals)
    if not ordered:
        return ()
    merged: list[list[int]] = [list(ordered[0])]
    for lo, hi in ordered[1:]:
        last = merged[-1]
        # Adjacent ranges merge too, so 10.0.0.0/25 + 10.0.0.128/25 prints as 10.0.0.0/24.
        if lo <= last[1] + 1:
            if hi > last[1]:
                last[1] = hi
        else:
            merged.append([lo, hi])
    return tuple((lo, hi) for lo, hi in merged)


def _intersect(a: tuple[Interval, ...], b: tuple[Interval, ...]) -> tuple[Interval, ...]:
    out: list[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo = max(a[i][0], b[j][0])
        hi = min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def _subtract(a: tuple[Interval, ...], b: tuple[Interval, ...]) -> tuple[Interval, ...]:
    out: list[Interval] = []
    j = 0
    for lo, hi in a:
        cur = lo
        while j < len(b) and b[j][1] < cur:
            j += 1
        k = j
        while k < len(b) and b[k][0] <= hi:
            if b[k][0] > cur:
                out.append((cur, b[k][0] - 1))
            cur = max(cur, b[k][1] + 1)
            if cur > hi:
                break
            k += 1
        if cur <= hi:
            out.append((cur, hi))
    return tuple(out)


@lru_cache(maxsize=16384)
def _to_cidrs(version: int, lo: int, hi: int) -> tuple[str, ...]:
    cls = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    return tuple(str(n) for n in ipaddress.summarize_address_range(cls(lo), cls(hi)))


@dataclass(frozen=True, slots=True)
class NetSet:
    """An immutable set of IPv4 and IPv6 addresses."""

    v4: tuple[Interval, ...] = ()
    v6: tuple[Interval, ...] = ()

    @classmethod
    def from_cidrs(cls, cidrs: Iterable[object], *, strict: bool = False) -> NetSet:
        """Union of the given CIDRs; bad ones are skipped, or raise ValueError when `strict`."""
        v4: list[Interval] = []
        v6: list[Interval] = []
        for text in cidrs:
            found = _interval(text)
            if found is None:
                if strict:
                    parse_network_strict(text)
                continue
            version, lo, hi = found
            (v4 if version == 4 else v6).append((lo, hi))
        return cls(_merge(v4), _merge(v6))

    @classmethod
    def of(cls, *cidrs: str) -> NetSet:
        return cls.from_cidrs(cidrs, strict=True)

    def is_empty(self) -> bool:
        return not self.v4 and not self.v6

    def __bool__(self) -> bool:
        return bool(self.v4 or self.v6)

    def family(self, version: int) -> NetSet:
        """Only the addresses of one family (4 or 6)."""
        return NetSet(v4=self.v4) if version == 4 else NetSet(v6=self.v6)

    def union(self, other: NetSet) -> NetSet:
        if not other:
            return self
        if not self:
            return other
        return NetSet(_merge(self.v4 + other.v4), _merge(self.v6 + other.v6))

    def intersection(self, other: NetSet) -> NetSet:
        return NetSet(_intersect(self.v4, other.v4), _intersect(self.v6, other.v6))

    def difference(self, other: NetSet) -> NetSet:
        if not other:
            return self
        return NetSet(_subtract(self.v4, other.v4), _subtract(self.v6, other.v6))

    __or__ = union
    __and__ = intersection
    __sub__ = difference

    def contains(self, other: NetSet) -> bool:
        return not other.difference(self)

    def coverage_of(self, expected: NetSet) -> Coverage:
        """How much of `expected` this set holds: all of it, some of it, or none of it."""
        return coverage(self, expected)

    def size(self) -> int:
        return sum(hi - lo + 1 for lo, hi in self.v4) + sum(hi - lo + 1 for lo, hi in self.v6)

    def to_cidrs(self) -> tuple[str, ...]:
        """The set as the fewest CIDR strings (IPv4 first), e.g. for "uncovered:" evidence."""
        out: list[str] = []
        for lo, hi in self.v4:
            out.extend(_to_cidrs(4, lo, hi))
        for lo, hi in self.v6:
            out.extend(_to_cidrs(6, lo, hi))
        return tuple(out)

    def is_everything(self, version: int) -> bool:
        """True when the family is the whole address space (0.0.0.0/0 or ::/0)."""
        if version == 4:
            return self.v4 == ((0, _V4_MAX),)
        return self.v6 == ((0, _V6_MAX),)

    def __str__(self) -> str:
        return ", ".join(self.to_cidrs()) or "(nothing)"


EMPTY = NetSet()
ALL_V4 = NetSet(v4=((0, _V4_MAX),))
ALL_V6 = NetSet(v6=((0, _V6_MAX),))


def coverage(allowed: NetSet, expected: NetSet) -> Coverage:
    """`full` when `allowed` holds every expected address, `none` when it holds none of them.

    An empty `expected` is trivially `full`: callers that treat "no sources known" differently
    must check for it first.
    """
    if not expected:
        return "full"
    if not allowed:
        return "none"
    remainder = expected.difference(allowed)
    if not remainder:
        return "full"
    if remainder == expected:
        return "none"
    return "partial"


def union_all(sets: Iterable[NetSet]) -> NetSet:
    v4: list[Interval] = []
    v6: list[Interval] = []
    for item in sets:
        v4.extend(item.v4)
        v6.extend(item.v6)
    return NetSet(_merge(v4), _merge(v6))
