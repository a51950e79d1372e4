"""A loopback DNS server and a closed UDP port: the targets of the demo's active probes."""

from __future__ import annotations

import socket
import struct
import threading

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset


# -- a loopback DNS server (the demo's probe target) ------------------------------------------------
class DnsServer:
    """A tiny authoritative-looking DNS server on ``host:port`` over UDP and TCP, in threads.

    Answers ``. NS`` with ``ns.demo.invalid.``, any ``A`` query with 192.0.2.53 and everything else
    with an empty NOERROR; bytes that are not a DNS query are ignored (as a real server drops
    them). It stands in for CoreDNS behind the NLB, so the demo's probes see a real DNS exchange.
    """

    ROOT_NS = "ns.demo.invalid."
    A_ANSWER = "192.0.2.53"  # TEST-NET-1: never routable

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self._want_port = port
        self.port = 0
        self._udp: socket.socket | None = None
        self._tcp: socket.socket | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.queries = 0  # messages received over either transport, well-formed or not

    def start(self) -> DnsServer:
        """Bind UDP and TCP on the same port number (retrying when TCP's is taken) and serve."""
        for _ in range(20):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind((self.host, self._want_port))
            port = udp.getsockname()[1]
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                tcp.bind((self.host, port))
            except OSError:
                udp.close()
                tcp.close()
                if self._want_port:
                    raise
                continue  # the free UDP port's TCP twin is in use: try another
            tcp.listen(16)
            self._udp, self._tcp, self.port = udp, tcp, port
            break
        else:
            raise RuntimeError("no port free for both UDP and TCP on the loopback interface")
        # Short timeouts so the loops notice `stop()` without closing sockets under a blocked call.
        udp.settimeout(0.2)
        tcp.settimeout(0.2)
        for target, name in ((self._serve_udp, "dns-udp"), (self._serve_tcp, "dns-tcp")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop serving and close both sockets."""
        self._stop.set()
        for thread in self._threads:
            thread.join(2)
        for sock in (self._udp, self._tcp):
            if sock is not None:
                sock.close()

    def __enter__(self) -> DnsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def answer(self, wire: bytes) -> bytes | None:
        """The response to one query in wire format, or None for bytes that are not a query."""
        self.queries += 1
        try:
            query = dns.message.from_wire(wire)
        except (dns.exception.DNSException, ValueError):
            return None
        if query.flags & dns.flags.QR or len(query.question) != 1:
            return None
        response = dns.message.make_response(query)
        question = query.question[0]
        if question.rdtype == dns.rdatatype.NS and question.name.to_text() == ".":
            response.answer.append(dns.rrset.from_text(".", 3600, "IN", "NS", self.ROOT_NS))
        elif question.rdtype == dns.rdatatype.A:
            response.answer.append(dns.rrset.from_text(question.name, 60, "IN", "A", self.A_ANSWER))
        response.set_rcode(dns.rcode.NOERROR)
        return response.to_wire()

    def _serve_udp(self) -> None:
        assert self._udp is not None
        while not self._stop.is_set():
            try:
                wire, peer = self._udp.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            reply = self.answer(wire)
            if reply is not None:
                self._udp.sendto(reply, peer)

    def _serve_tcp(self) -> None:
        assert self._tcp is not None
        while not self._stop.is_set():
            try:
                conn, _peer = self._tcp.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve_conn, args=(conn,), name="dns-tcp-conn", daemon=True).start()

    def _serve_conn(self, conn: socket.socket) -> None:
        # DNS over TCP: each message is prefixed by its 2-byte length (RFC 1035 4.2.2).
        conn.settimeout(5)
        with conn:
            while not self._stop.is_set():
                try:
                    header = _recv_exactly(conn, 2)
                    if header is None:
                        return
                    wire = _recv_exactly(conn, struct.unpack("!H", header)[0])
                    if wire is None:
                        return
                except OSError:
                    return
                reply = self.answer(wire)
                if reply is None:
                    return
                conn.sendall(struct.pack("!H", len(reply)) + reply)


def _recv_exactly(conn: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def closed_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port nothing listens on right now (the kernel answers it with ICMP port unreachable).

    Found by binding port 0 and closing it; another process could take it later, which on a
    demo machine is unlikely and would only turn the demo's "closed" probe into a different one.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
