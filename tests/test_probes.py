"""Active probes over real sockets on 127.0.0.1: answers, drops, closed ports, slow and garbage peers.

Every server here is a loopback socket started by the test; timeouts stay at or under 0.5 s.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator

import dns.message
import pytest

from bindings.collect import probes
from bindings.collect.probes import ProbeSpec, probe_dns, probe_tcp, probe_udp
from bindings.demo.emulators import DnsServer, closed_udp_port

HOST = "127.0.0.1"
TIMEOUT = 0.3  # where the probe must time out: keeps the suite fast
OK_TIMEOUT = 0.5  # where an answer is expected: room for a loaded CI machine


class UdpPeer:
    """A UDP socket on the loopback that answers each datagram with `reply(data, n)` (or not).

    `reply` returns the bytes to send back, or None to stay silent; `delay` postpones each reply
    (on its own timer, so several requests can be outstanding). `outstanding`/`peak` count requests
    received and not yet answered: with a probe waiting for each reply, that is probes in flight.
    """

    def __init__(self, reply, delay: float = 0.0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.reply, self.delay = reply, delay
        self.received = 0
        self.outstanding = 0
        self.peak = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.received += 1
                n = self.received
                self.outstanding += 1
                self.peak = max(self.peak, self.outstanding)
            if not self.delay:
                self._answer(data, peer, n)
                continue
            timer = threading.Timer(self.delay, self._answer, (data, peer, n))
            timer.daemon = True
            timer.start()

    def _answer(self, data: bytes, peer, n: int) -> None:
        answer = self.reply(data, n)
        with self._lock:
            self.outstanding -= 1
        if answer is not None and not self._stop.is_set():
            with contextlib.suppress(OSError):
                self.sock.sendto(answer, peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1)
        self.sock.close()


def dns_reply(data: bytes, n: int) -> bytes:
    query = dns.message.from_wire(data)
    return dns.message.make_response(query).to_wire()


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    """The demo's loopback DNS server (UDP and TCP on one port)."""
    with DnsServer() as server:
        yield server


@pytest.fixture
def peer_factory() -> Iterator:
    peers: list[UdpPeer] = []

    def make(reply, delay: float = 0.0) -> UdpPeer:
        peer = UdpPeer(reply, delay)
        peers.append(peer)
        return peer

    yield make
    for peer in peers:
        peer.close()


@pytest.fixture
def closed_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


# --- DNS ---------------------------------------------------------------------------------------------


def test_it_gets_a_well_formed_dns_answer_over_udp(dns_server):
    outcome = probe_dns(HOST, dns_server.port, transport="udp", timeout=OK_TIMEOUT)

    assert outcome.status == "ok"
    assert outcome.address == HOST
    assert outcome.latency_ms is not None and outcome.latency_ms < OK_TIMEOUT * 1000
    assert "DNS over UDP" in outcome.detail and "NOERROR, 1 answer record(s)" in outcome.detail


def test_it_gets_a_well_formed_dns_answer_over_tcp(dns_server):
    outcome = probe_dns(
        HOST, dns_server.port, transport="tcp", name="example.com", rdtype="A", timeout=OK_TIMEOUT
    )

    assert outcome.status == "ok"
    assert "DNS over TCP" in outcome.detail and "1 answer record(s)" in outcome.detail


def test_it_fails_dns_when_udp_is_dropped(peer_factory):
    silent = peer_factory(lambda data, n: None)

    outcome = probe_dns(HOST, silent.port, transport="udp", timeout=TIMEOUT)

    assert outcome.status == "failed"
    assert "no response within" in outcome.detail
    assert silent.received == 1  # the query did arrive: the drop is on the answering side


def test_it_fails_dns_on_a_closed_port(closed_tcp_port):
    udp = probe_dns(HOST, closed_udp_port(), transport="udp", timeout=TIMEOUT)
    tcp = probe_dns(HOST, closed_tcp_port, transport="tcp", timeout=TIMEOUT)

    assert udp.status == "failed"
    assert tcp.status == "failed" and "refused" in tcp.detail


def test_it_fails_dns_when_the_answer_comes_too_late(peer_factory):
    slow = peer_factory(dns_reply, delay=0.8)

    started = time.monotonic()
    outcome = probe_dns(HOST, slow.port, transport="udp", timeout=TIMEOUT)

    assert outcome.status == "failed" and "no response within 0.3s" in outcome.detail
    assert time.monotonic() - started < 0.7


def test_it_fails_dns_over_tcp_when_the_server_never_answers():
    with socket.socket() as listener:
        listener.bind((HOST, 0))
        listener.listen(1)  # accepts the connection (kernel) but never reads or answers

        outcome = probe_dns(HOST, listener.getsockname()[1], transport="tcp", timeout=TIMEOUT)

    assert outcome.status == "failed" and "no response" in outcome.detail


def test_it_fails_dns_on_a_garbage_answer(peer_factory):
    garbage = peer_factory(lambda data, n: data[:2] + b"\xff\x00not dns at all")

    outcome = probe_dns(HOST, garbage.port, transport="udp", timeout=OK_TIMEOUT)

    assert outcome.status == "failed"
    assert "malformed response" in outcome.detail


def test_it_reports_an_invalid_dns_query_as_an_error():
    outcome = probe_dns(HOST, 53, transport="udp", rdtype="NOT-A-TYPE", timeout=TIMEOUT)

    assert outcome.status == "error" and "invalid DNS query" in outcome.detail


# --- TCP connect ---------------------------------------------------------------------------------------


def test_it_connects_over_tcp_with_a_latency(dns_server):
    outcome = probe_tcp(HOST, dns_server.port, timeout=OK_TIMEOUT)

    assert outcome.status == "ok"
    assert outcome.latency_ms is not None and outcome.latency_ms >= 0
    assert "handshake" in outcome.detail


def test_it_fails_tcp_on_a_closed_port(closed_tcp_port):
    outcome = probe_tcp(HOST, closed_tcp_port, timeout=TIMEOUT)

    assert outcome.status == "failed" and "refused" in outcome.detail


def test_it_fails_tcp_when_the_handshake_times_out():
    # A listener with a full accept queue: the kernel drops further SYNs, as a dropping rule would.
    with socket.socket() as listener:
        listener.bind((HOST, 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        for _ in range(3):
            filler = socket.socket()
            filler.settimeout(0.1)
            with contextlib.suppress(OSError):
                filler.connect((HOST, port))
            fillers.append(filler)

        outcome = probe_tcp(HOST, port, timeout=TIMEOUT)

        for filler in fillers:
            filler.close()
    assert outcome.status == "failed" and "timed out" in outcome.detail


def test_it_reports_a_name_that_does_not_resolve_as_an_error(monkeypatch):
    def no_such_name(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)

    outcome = probe_tcp("dns-nlb.example.invalid", 53, timeout=TIMEOUT)

    assert outcome.status == "error" and "cannot resolve dns-nlb.example.invalid" in outcome.detail


def test_it_resolves_names_ipv4_first():
    assert probes.resolve("127.0.0.1") == ["127.0.0.1"]
    assert probes.resolve("localhost")[0] in ("127.0.0.1", "::1")


# --- generic UDP --------------------------------------------------------------------------------------


def test_it_accepts_a_udp_reply_matching_the_expected_pattern(peer_factory):
    echo = peer_factory(lambda data, n: b"PONG " + data)

    outcome = probe_udp(HOST, echo.port, b"PING", expect=r"^PONG PING$", timeout=OK_TIMEOUT)

    assert outcome.status == "ok" and "9-byte reply" in outcome.detail


def test_it_fails_a_udp_reply_that_does_not_match(peer_factory):
    garbage = peer_factory(lambda data, n: b"\x00\x01garbage")

    outcome = probe_udp(HOST, garbage.port, b"PING", expect="PONG", timeout=OK_TIMEOUT)

    assert outcome.status == "failed" and "does not match" in outcome.detail


def test_it_takes_any_reply_as_ok_when_nothing_is_expected(peer_factory):
    garbage = peer_factory(lambda data, n: b"\x00\x01garbage")

    assert probe_udp(HOST, garbage.port, b"PING", timeout=OK_TIMEOUT).status == "ok"


def test_it_calls_silence_inconclusive_never_ok_without_an_expected_reply(peer_factory):
    silent = peer_factory(lambda data, n: None)

    outcome = probe_udp(HOST, silent.port, b"PING", timeout=TIMEOUT)

    assert outcome.status == "inconclusive"
    assert silent.received == 1


def test_it_calls_silence_failed_when_a_reply_is_expected(peer_factory):
    silent = peer_factory(lambda data, n: None)

    assert probe_udp(HOST, silent.port, b"PING", expect="PONG", timeout=TIMEOUT).status == "failed"


def test_it_fails_udp_on_a_closed_port_from_the_icmp_unreachable():
    outcome = probe_udp(HOST, closed_udp_port(), b"PING", timeout=TIMEOUT)

    assert outcome.status == "failed" and "port unreachable" in outcome.detail


def test_it_reports_an_invalid_pattern_as_an_error():
    assert probe_udp(HOST, 9, b"x", expect="(unclosed", timeout=TIMEOUT).status == "error"


def test_it_parses_payload_escapes():
    assert probes.parse_payload(r"\x00\x01PING\r\n\\ é") == b"\x00\x01PING\r\n\\ \xc3\xa9"
    assert probes.parse_payload("") == b""


# --- retries and the runner ----------------------------------------------------------------------------


def test_it_retries_a_lost_datagram(peer_factory):
    # The first query is "lost"; the retry gets an answer.
    flaky = peer_factory(lambda data, n: None if n == 1 else dns_reply(data, n))
    spec = ProbeSpec(kind="dns", host=HOST, port=flaky.port, transport="udp", timeout=OK_TIMEOUT, retries=1)

    outcome = probes.run_with_retries(spec)

    assert outcome.status == "ok"
    assert "(attempt 2 of 2)" in outcome.detail
    assert flaky.received == 2


def test_it_stops_after_the_last_retry(peer_factory):
    silent = peer_factory(lambda data, n: None)
    spec = ProbeSpec(kind="udp", host=HOST, port=silent.port, payload=b"x", timeout=0.1, retries=2)

    outcome = probes.run_with_retries(spec)

    assert outcome.status == "inconclusive" and "(attempt 3 of 3)" in outcome.detail
    assert silent.received == 3


def test_it_does_not_retry_a_configuration_error():
    calls = []

    def broken(spec):
        calls.append(spec)
        return probes.ProbeOutcome("error", None, "bad", "")

    probes.run_with_retries(ProbeSpec(kind="tcp", host=HOST, port=1, retries=3), probe=broken)

    assert len(calls) == 1


def test_it_keeps_at_most_the_concurrency_limit_in_flight(peer_factory):
    # Each reply comes 0.15 s after its query, so a probe is "in flight" from send to reply and
    # the server counts how many queries are waiting for an answer at once.
    slow = peer_factory(dns_reply, delay=0.15)
    specs = [
        ProbeSpec(kind="dns", host=HOST, port=slow.port, transport="udp", timeout=0.5, retries=0, key=i)
        for i in range(9)
    ]

    started = time.monotonic()
    results = probes.run_probes(specs, concurrency=3)

    assert [spec.key for spec, _ in results] == list(range(9))  # input order
    assert all(outcome.status == "ok" for _, outcome in results)
    assert 2 <= slow.peak <= 3  # never more than the limit (and it ran in parallel)
    assert time.monotonic() - started >= 0.44  # at least three waves of 0.15 s: never 9 at once


def test_it_runs_nothing_for_no_specs():
    assert probes.run_probes([], concurrency=4) == []


# --- precedence -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "annotation", "cluster", "expected"),
    [
        (None, None, "", (None, None)),
        (None, None, "tcp", ("tcp", "cluster")),
        (None, "dns", "tcp", ("dns", "annotation")),
        ("udp", "dns", "tcp", ("udp", "setting")),
        ("off", "dns", "tcp", (None, "setting")),
        (None, "off", "tcp", (None, "annotation")),
        (None, "bogus", "tcp", ("tcp", "cluster")),
        (None, " DNS ", "", ("dns", "annotation")),
    ],
)
def test_it_applies_setting_then_annotation_then_cluster(setting, annotation, cluster, expected):
    assert probes.kind_and_source(setting, annotation, cluster) == expected
    assert probes.effective_kind(setting, annotation, cluster) == expected[0]


# --- hand-configured targets are fenced ------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.9.9.9",
        "::1",
        "::ffff:127.0.0.1",
        "169.254.169.254",
        "169.254.169.253",
        "fd00:ec2::254",
        "fe80::1%eth0",
        "0.0.0.0",
        "::",
        "224.0.0.251",
        "255.255.255.255",
        "ff02::1",
        "240.0.0.1",
        "not-an-ip",
    ],
)
def test_a_hand_configured_target_is_never_the_worker_itself_or_metadata(address):
    assert probes.target_refusal(address) != ""


@pytest.mark.parametrize("address", ["10.0.1.53", "172.20.0.10", "192.168.1.1", "8.8.8.8", "2600:1f18::53"])
def test_other_unicast_addresses_may_be_probed_by_default(address):
    assert probes.target_refusal(address) == ""


def test_the_allowed_networks_decide_when_set():
    allowed = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("127.0.0.0/8"))

    assert probes.target_refusal("10.1.2.3", allowed) == ""
    assert probes.target_refusal("127.0.0.1", allowed) == ""  # named, so allowed
    assert "outside the networks" in probes.target_refusal("192.168.1.1", allowed)
    assert "outside the networks" in probes.target_refusal("169.254.169.254", allowed)
    assert "outside the networks" in probes.target_refusal("::ffff:192.168.1.1", allowed)


def test_a_fenced_probe_checks_every_address_and_sends_nothing_when_refused():
    with DnsServer() as server:
        spec = ProbeSpec(
            kind="dns", host="localhost", port=server.port, transport="udp", timeout=0.5, fence=()
        )
        refused = probes.run_once(spec)
        allowed = probes.run_once(
            ProbeSpec(**{**_fields(spec), "fence": (ipaddress.ip_network("127.0.0.0/8"),)})
        )

        assert server.queries == 1  # the allowed probe only
    assert refused.status == "error" and "the worker's own host" in refused.detail
    assert "(localhost resolves to it)" in refused.detail
    assert allowed.status == "ok" and allowed.address == "127.0.0.1"


def test_a_name_is_refused_when_any_of_its_addresses_is(monkeypatch):
    """A name with a harmless first address and a loopback second one must not pass on the first.
    The resolver is replaced here: no local DNS can be made to answer one name with both addresses
    without editing the machine's own configuration."""
    sent: list[str] = []
    monkeypatch.setattr(
        probes, "resolve", lambda host: ["10.0.1.53", "::1"] if host == "dual.example" else [host]
    )
    monkeypatch.setattr(probes, "probe_tcp", lambda host, port, timeout: sent.append(host))
    spec = ProbeSpec(kind="tcp", host="dual.example", port=53)
    only_v4 = (ipaddress.ip_network("10.0.0.0/8"),)
    everything = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))

    by_default = probes.run_once(ProbeSpec(**{**_fields(spec), "fence": ()}))
    outside = probes.run_once(ProbeSpec(**{**_fields(spec), "fence": only_v4}))
    assert sent == []
    probes.run_once(ProbeSpec(**{**_fields(spec), "fence": everything}))

    assert by_default.status == "error" and "::1 is the worker's own host" in by_default.detail
    assert "(dual.example resolves to it)" in by_default.detail
    assert outside.status == "error" and "::1 is outside the networks" in outside.detail
    # Allowed: the probe goes to the checked address, not to the name (no second lookup).
    assert sent == ["10.0.1.53"]


def test_a_target_read_from_aws_is_not_fenced():
    with DnsServer() as server:
        outcome = probes.run_once(ProbeSpec(kind="tcp", host="127.0.0.1", port=server.port, timeout=0.5))

    assert outcome.status == "ok"


def _fields(spec: ProbeSpec) -> dict:
    return {name: getattr(spec, name) for name in ProbeSpec.__slots__}
