"""Active probes over sockets: what actually happens when a client sends traffic.

Static analysis says what the rules allow; a probe says what happens from where it runs (the
Celery worker's network position, which is not necessarily a client range). No Django here: these
functions take hosts, ports and timeouts and return a `ProbeOutcome`; `bindings.services.probing` decides
what to probe and stores the outcomes.

Statuses (the values of `ProbeResult.Status`):

* ``ok`` — the target answered as the probe requires (TCP handshake completed, a well-formed DNS
  response arrived, a UDP reply arrived and matched the expected pattern if one was given).
* ``failed`` — conclusive evidence the path or the service is broken: connection refused, an ICMP
  port unreachable, a timeout where an answer was required, a malformed or non-matching reply.
* ``inconclusive`` — UDP without an expected reply and no reply within the timeout: UDP services
  may stay silent by design, so silence proves nothing either way (never ``ok``).
* ``error`` — the probe could not run: the name did not resolve, the configuration is invalid,
  or a configured target points where probes may not go (`target_refusal`).

A target configured by hand (a probe setting's address) may point anywhere its editor likes, so
it is fenced: never the worker's own host (loopback), link-local addresses (the instance
metadata service and the VPC resolver's link-local address), AWS's IPv6 metadata addresses or
what is not a unicast host; with BH_PROBE_ALLOWED_NETWORKS set, only inside those networks.
Every address the name resolves to is checked, and the probe connects to the checked address,
so a name cannot resolve to an allowed address for the check and another for the probe.
Targets read from AWS (a load balancer's DNS name) are not fenced.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Literal

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

Status = Literal["ok", "failed", "inconclusive", "error"]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Kind = Literal["tcp", "dns", "udp"]
KINDS: tuple[Kind, ...] = ("tcp", "dns", "udp")
# Annotation/setting values that switch probing off explicitly (beating a cluster-wide default).
OFF_VALUES = frozenset({"off", "none", "false", "no", "0", "disabled"})

_DETAIL_MAX = 500


@dataclass(frozen=True, slots=True)
class ProbeOutcome:
    """What one probe (after its retries) observed. `address` is the IP actually probed."""

    status: Status
    latency_ms: float | None
    detail: str
    address: str


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    """One probe to run: a kind, a target and its parameters.

    `transport` matters for DNS probes only ("udp" or "tcp"); TCP-connect probes always use TCP
    and generic UDP probes always UDP. `key` is opaque to this module (the caller's identifier).
    """

    kind: Kind
    host: str
    port: int
    transport: Literal["tcp", "udp"] = "tcp"
    timeout: float = 2.0
    retries: int = 1
    dns_name: str = "."
    dns_type: str = "NS"
    payload: bytes = b""
    expect: str | None = None
    key: object = None
    # A target configured by hand: the networks it may resolve into (empty: anywhere but the
    # never-probed ones, `target_refusal`). None: a target read from AWS, not fenced.
    fence: tuple[Network, ...] | None = None


# --- name resolution -----------------------------------------------------------------------------


def resolve(host: str) -> list[str]:
    """The addresses `host` resolves to, IPv4 first, without duplicates. Raises `OSError`.

    An IP literal is returned as is (no lookup). A load balancer's DNS name resolves to one address
    per zone; the caller probes the first, which is one sample of the path, not every zone's.
    """
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    seen: dict[str, int] = {}
    for family, _type, _proto, _canon, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in seen:
            seen[address] = 0 if family == socket.AF_INET else 1
    return sorted(seen, key=lambda a: seen[a])  # stable: IPv4 keeps resolver order, then IPv6


# Never a probe target unless BH_PROBE_ALLOWED_NETWORKS names them: (networks, what they are).
_NEVER: tuple[tuple[tuple[Network, ...], str], ...] = tuple(
    (tuple(ipaddress.ip_network(n) for n in networks), why)
    for networks, why in (
        (("127.0.0.0/8", "::1/128"), "the worker's own host (loopback)"),
        (
            ("169.254.0.0/16", "fe80::/10", "fd00:ec2::/32"),
            "link-local or AWS-internal (instance metadata, the VPC resolver's link-local address)",
        ),
        (("0.0.0.0/8", "::/128"), "not a host address"),
        (("224.0.0.0/4", "255.255.255.255/32", "ff00::/8"), "multicast or broadcast"),
        (("240.0.0.0/4",), "reserved"),
    )
)


def target_refusal(address: str, allowed: Sequence[Network] = ()) -> str:
    """Why a target configured by hand may not be probed at `address` ('' when it may)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # a scoped IPv6 address keeps its zone
    except ValueError:
        return f"{address!r} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if allowed:
        if any(ip.version == n.version and ip in n for n in allowed):
            return ""
        names = ", ".join(str(n) for n in allowed)
        return f"{address} is outside the networks probes may target (BH_PROBE_ALLOWED_NETWORKS: {names})"
    for networks, why in _NEVER:
        if any(ip.version == n.version and ip in n for n in networks):
            return f"{address} is {why}: never a probe target unless BH_PROBE_ALLOWED_NETWORKS allows it"
    return ""


def _fenced(spec: ProbeSpec) -> ProbeSpec | ProbeOutcome:
    """`spec` aimed at the checked address of its hand-configured target, or why it is refused."""
    if spec.fence is None:
        return spec
    try:
        addresses = resolve(spec.host)
    except OSError as exc:
        return ProbeOutcome("error", None, _short(f"cannot resolve {spec.host}: {exc}"), "")
    if not addresses:
        return ProbeOutcome("error", None, _short(f"cannot resolve {spec.host}: no address"), "")
    for address in addresses:
        why = target_refusal(address, spec.fence)
        if why:
            via = "" if address == spec.host else f" ({spec.host} resolves to it)"
            return ProbeOutcome("error", None, _short(f"not probed: {why}{via}"), address)
    return replace(spec, host=addresses[0])


def _family(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def _short(text: str) -> str:
    return text if len(text) <= _DETAIL_MAX else text[: _DETAIL_MAX - 1] + "…"


# --- the probes ------------------------------------------------------------------------------------


def probe_tcp(host: str, port: int, timeout: float = 2.0) -> ProbeOutcome:
    """Open a TCP connection to `host:port` and close it; latency is the handshake time."""
    try:
        address = resolve(host)[0]
    except (OSError, IndexError) as exc:
        return ProbeOutcome("error", None, _short(f"cannot resolve {host}: {exc}"), "")
    sock = socket.socket(_family(address), socket.SOCK_STREAM)
    sock.settimeout(timeout)
    started = time.perf_counter()
    try:
        sock.connect((address, port))
        return ProbeOutcome("ok", _ms(started), f"TCP handshake with {address}:{port} completed", address)
    except TimeoutError:
        return ProbeOutcome(
            "failed",
            None,
            f"TCP connect to {address}:{port} timed out after {timeout}s "
            "(SYN unanswered: dropped by a rule, or nothing routes there)",
            address,
        )
    except ConnectionRefusedError:
        return ProbeOutcome(
            "failed",
            _ms(started),
            f"TCP connect to {address}:{port} refused (reset: nothing listening, or the target rejects it)",
            address,
        )
    except OSError as exc:
        return ProbeOutcome("failed", None, _short(f"TCP connect to {address}:{port}: {exc}"), address)
    finally:
        sock.close()


def probe_dns(
    host: str,
    port: int,
    *,
    transport: Literal["udp", "tcp"] = "udp",
    name: str = ".",
    rdtype: str = "NS",
    timeout: float = 2.0,
) -> ProbeOutcome:
    """Send a real DNS query over `transport` and require a well-formed response.

    Any response code counts as ``ok`` (REFUSED and SERVFAIL still prove a DNS server answered over
    this path); the rcode and the answer count are in the detail. A timeout, a refused connection
    or bytes that are not a DNS response to this query are ``failed``.
    """
    try:
        query = dns.message.make_query(name or ".", rdtype or "NS")
    except (dns.exception.DNSException, ValueError) as exc:
        return ProbeOutcome("error", None, _short(f"invalid DNS query {name!r} {rdtype!r}: {exc}"), "")
    try:
        address = resolve(host)[0]
    except (OSError, IndexError) as exc:
        return ProbeOutcome("error", None, _short(f"cannot resolve {host}: {exc}"), "")
    label = f"DNS over {transport.upper()} to {address}:{port}"
    started = time.perf_counter()
    try:
        if transport == "tcp":
            response = dns.query.tcp(query, address, timeout=timeout, port=port)
        else:
            response = dns.query.udp(query, address, timeout=timeout, port=port)
    except dns.exception.Timeout:
        return ProbeOutcome("failed", None, f"{label}: no response within {timeout}s", address)
    except ConnectionRefusedError:
        return ProbeOutcome("failed", _ms(started), f"{label}: connection refused", address)
    except (dns.exception.DNSException, EOFError, ValueError) as exc:
        # FormError, ShortHeader, TrailingJunk, BadResponse...: something answered, but not DNS.
        return ProbeOutcome(
            "failed",
            _ms(started),
            _short(f"{label}: malformed response ({type(exc).__name__}: {exc})"),
            address,
        )
    except OSError as exc:
        return ProbeOutcome("failed", None, _short(f"{label}: {exc}"), address)
    latency = _ms(started)
    rcode = dns.rcode.to_text(response.rcode())
    answers = sum(len(rrset) for rrset in response.answer)
    truncated = " (truncated)" if response.flags & dns.flags.TC else ""
    return ProbeOutcome("ok", latency, f"{label}: {rcode}, {answers} answer record(s){truncated}", address)


def probe_udp(
    host: str, port: int, payload: bytes, expect: str | None = None, timeout: float = 2.0
) -> ProbeOutcome:
    """Send `payload` in one datagram and wait for a reply.

    With `expect` (a regular expression, matched against the reply's bytes): a matching reply is
    ``ok``, a non-matching reply or silence is ``failed``. Without it: any reply is ``ok`` and
    silence is ``inconclusive`` (the service may not answer this payload). An ICMP port unreachable
    (seen as a refused connection on a connected socket) is ``failed`` either way.
    """
    try:
        pattern = re.compile(expect.encode("utf-8")) if expect else None
    except re.error as exc:
        return ProbeOutcome("error", None, _short(f"invalid expected-reply pattern {expect!r}: {exc}"), "")
    try:
        address = resolve(host)[0]
    except (OSError, IndexError) as exc:
        return ProbeOutcome("error", None, _short(f"cannot resolve {host}: {exc}"), "")
    label = f"UDP to {address}:{port}"
    # Connected, so the kernel reports an ICMP port unreachable as ECONNREFUSED on recv.
    sock = socket.socket(_family(address), socket.SOCK_DGRAM)
    sock.settimeout(timeout)
    started = time.perf_counter()
    try:
        sock.connect((address, port))
        sock.send(payload)
        reply = sock.recv(65535)
    except TimeoutError:
        if pattern is None:
            return ProbeOutcome(
                "inconclusive",
                None,
                f"{label}: no reply within {timeout}s (no reply expected, so "
                "silence proves nothing: dropped, or the service ignores this payload)",
                address,
            )
        return ProbeOutcome("failed", None, f"{label}: no reply within {timeout}s", address)
    except ConnectionRefusedError:
        return ProbeOutcome("failed", _ms(started), f"{label}: port unreachable (ICMP)", address)
    except OSError as exc:
        return ProbeOutcome("failed", None, _short(f"{label}: {exc}"), address)
    finally:
        sock.close()
    latency = _ms(started)
    if pattern is not None and not pattern.search(reply):
        return ProbeOutcome(
            "failed", latency, _short(f"{label}: reply {reply[:40]!r} does not match {expect!r}"), address
        )
    return ProbeOutcome("ok", latency, _short(f"{label}: {len(reply)}-byte reply {reply[:40]!r}"), address)


# --- configuration helpers -------------------------------------------------------------------------

_ESCAPE = re.compile(r"\\(x[0-9A-Fa-f]{2}|[\\nrt0])")
_SIMPLE_ESCAPES = {"\\": b"\\", "n": b"\n", "r": b"\r", "t": b"\t", "0": b"\0"}


def parse_payload(text: str) -> bytes:
    """The bytes of an admin-entered payload: UTF-8 text with ``\\xNN``, ``\\n``, ``\\r``, ``\\t``,
    ``\\0`` and ``\\\\`` escapes (binary protocols need arbitrary bytes; the admin field is text).
    """
    out = bytearray()
    pos = 0
    for match in _ESCAPE.finditer(text or ""):
        out += text[pos : match.start()].encode("utf-8")
        token = match.group(1)
        out += bytes([int(token[1:], 16)]) if token[0] == "x" else _SIMPLE_ESCAPES[token]
        pos = match.end()
    out += (text or "")[pos:].encode("utf-8")
    return bytes(out)


def normalise_kind(value: object) -> str | None:
    """A configured kind as "tcp"/"dns"/"udp", "off" for an explicit off, None when unset/invalid."""
    text = str(value or "").strip().lower()
    if not text:
        return None
    if text in OFF_VALUES:
        return "off"
    return text if text in KINDS else None


def kind_and_source(setting: object, annotation: object, cluster: object) -> tuple[Kind | None, str | None]:
    """The probe kind that applies to a binding and the level that decided it.

    Precedence: ProbeSetting ("setting") > annotation ("annotation") > cluster ("cluster"). An
    explicit "off" at a more specific level beats a kind at a less specific one; an invalid value
    is ignored (the next level decides) rather than guessed at. (None, None): nothing configured.
    """
    for source, value in (("setting", setting), ("annotation", annotation), ("cluster", cluster)):
        kind = normalise_kind(value)
        if kind == "off":
            return None, source
        if kind is not None:
            return kind, source  # type: ignore[return-value]
    return None, None


def effective_kind(setting: object, annotation: object, cluster: object) -> Kind | None:
    """The probe kind that applies to a binding (see `kind_and_source`); None = off."""
    return kind_and_source(setting, annotation, cluster)[0]


# --- running many ------------------------------------------------------------------------------------


def run_once(spec: ProbeSpec) -> ProbeOutcome:
    """One attempt of `spec`."""
    fenced = _fenced(spec)
    if isinstance(fenced, ProbeOutcome):
        return fenced
    spec = fenced
    if spec.kind == "tcp":
        return probe_tcp(spec.host, spec.port, spec.timeout)
    if spec.kind == "dns":
        return probe_dns(
            spec.host,
            spec.port,
            transport="tcp" if spec.transport == "tcp" else "udp",
            name=spec.dns_name,
            rdtype=spec.dns_type,
            timeout=spec.timeout,
        )
    if spec.kind == "udp":
        return probe_udp(spec.host, spec.port, spec.payload, spec.expect or None, spec.timeout)
    return ProbeOutcome("error", None, f"unknown probe kind {spec.kind!r}", "")


def run_with_retries(spec: ProbeSpec, probe: Callable[[ProbeSpec], ProbeOutcome] = run_once) -> ProbeOutcome:
    """Run `spec` until it is ``ok`` or `spec.retries` extra attempts are used; the last outcome wins.

    Only non-ok outcomes are retried (one lost datagram must not flag a working path); an ``error``
    is not retried, since bad configuration does not heal in a second. The detail counts attempts.
    """
    attempts = max(0, int(spec.retries)) + 1
    outcome = ProbeOutcome("error", None, "not run", "")
    attempt = 0
    while attempt < attempts:
        attempt += 1
        try:
            outcome = probe(spec)
        except Exception as exc:  # a probe bug must not take the whole round down
            outcome = ProbeOutcome("error", None, _short(f"probe crashed: {type(exc).__name__}: {exc}"), "")
        if outcome.status in ("ok", "error"):
            break
    if attempt > 1:
        outcome = replace(outcome, detail=_short(f"{outcome.detail} (attempt {attempt} of {attempts})"))
    return outcome


def run_probes(
    specs: Sequence[ProbeSpec] | Iterable[ProbeSpec],
    *,
    concurrency: int = 8,
    probe: Callable[[ProbeSpec], ProbeOutcome] = run_once,
) -> list[tuple[ProbeSpec, ProbeOutcome]]:
    """Run every spec (with its retries) at most `concurrency` at a time; results in input order.

    Probes block on sockets, so threads are the right tool; the bound keeps a cluster with many
    bindings from opening hundreds of sockets at once from the worker.
    """
    items = list(specs)
    if not items:
        return []
    workers = max(1, min(int(concurrency), len(items)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="probe") as pool:
        outcomes = list(pool.map(lambda s: run_with_retries(s, probe), items))
    return list(zip(items, outcomes, strict=True))
