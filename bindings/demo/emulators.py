"""Emulated AWS and Kubernetes for the tests and the demo.

- `KubeEmulator` hosts kmock (a Kubernetes API emulator, pinned at 0.8) on a real HTTP port in a
  background thread. Every kmock workaround lives in this module (shared/reference/emulators.md):
  metadata kmock leaves empty is filled in on `apply`, list pagination (``limit``/``continue``) is
  added, the request log is trimmed, the core resources are declared so empty lists answer 200,
  discovery documents carry real kinds, verbs and scopes (so real kubectl works against it), and
  ``stop`` cancels the loop's other tasks first so that an open watch can't hang shutdown.
- `MotoServer` wraps moto's `ThreadedMotoServer` on a free port.
- `seed_demo_world` builds the "DNS over UDP is blocked" case in both emulators;
  `seed_collection_cases` adds the missing-resource cases that `scripts/collect-bundle.sh` must survive.
- `DnsServer` answers DNS over UDP and TCP on one loopback port (dnspython builds the answers), and
  `closed_udp_port` finds a UDP port nothing listens on: the demo's active probes target them.

Run ``python -m bindings.demo.emulators --state-file PATH`` to start both emulators, seed the demo world,
write a JSON state file for the dashboard (and a kubeconfig beside it, ``PATH.kubeconfig``, for
kubectl) and serve until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import json
import logging
import os
import re
import signal
import socket
import struct
import threading
import urllib.request
import uuid
import warnings
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import attrs
import boto3
import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import kmock
from kubernetes import client as k8s

DEMO_CLUSTER = "demo"
DEMO_ACCOUNT_ID = "123456789012"  # moto's default account
# Dummy credentials: moto accepts anything, but botocore refuses to sign without some.
DEMO_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}

# kind -> (plural, namespaced) for the kinds the product reads or writes. Unknown kinds fall back to
# a lower-cased "s" plural, namespaced.
_KINDS: dict[str, tuple[str, bool]] = {
    "Pod": ("pods", True),
    "Service": ("services", True),
    "Event": ("events", True),
    "Node": ("nodes", False),
    "Namespace": ("namespaces", False),
    "ConfigMap": ("configmaps", True),
    "EndpointSlice": ("endpointslices", True),
    "TargetGroupBinding": ("targetgroupbindings", True),
}
# Declared up front so that listing a resource with no objects yet answers 200 with an empty list:
# kmock only "serves" resources it has objects for or that are declared.
_CORE_RESOURCES = (
    "v1/pods",
    "v1/services",
    "v1/nodes",
    "v1/events",
    "v1/namespaces",
    "discovery.k8s.io/v1/endpointslices",
)
_REQUEST_LOG_KEEP = 50
# The TargetGroupBinding CRD's discovery entry, as the controller's CRD declares it
# (kubernetes-sigs/aws-load-balancer-controller, config/crd/bases/elbv2.k8s.aws_targetgroupbindings.yaml:
# kind TargetGroupBinding, singular targetgroupbinding, scope Namespaced, a status subresource, no
# short names). Real clients (kubectl) resolve "targetgroupbindings" through this entry.
_TGB_DISCOVERY: dict[str, Any] = {
    "kind": "TargetGroupBinding",
    "singular": "targetgroupbinding",
    "namespaced": True,
    "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
    "subresources": ["status"],
}


def _version_priority(version: str) -> tuple[int, int, int]:
    """Kubernetes' version order, highest first when sorted: v2 > v1 > v1beta2 > v1beta1 > v1alpha1.

    kmock picks a group's preferred version from an unordered set; a real API server prefers the
    highest by this order, and kubectl reads objects at the preferred version.
    """
    match = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if match is None:
        return (-1, 0, 0)  # not a Kubernetes-style version: last
    stage = {"alpha": 0, "beta": 1, None: 2}[match.group(2)]
    return (stage, int(match.group(1)), int(match.group(3) or 0))


def _declare_discovery(emulator: kmock.KubernetesEmulator, tgb_versions: Iterable[str]) -> None:
    """Give every resource the emulator serves a real discovery entry (kind, verbs, namespaced...).

    kmock guesses entries it has no data for ("Services", no verbs, ``namespaced: null``), which
    real kubectl rejects ("the server doesn't have a resource type"). The core resources take the
    entries kmock ships (recorded from a real cluster), kept to the ones this emulator serves.
    """
    wanted = {_resource_key(r) for r in _CORE_RESOURCES}
    with warnings.catch_warnings():
        # kmock 0.8 reads its data with importlib.resources.read_binary, deprecated on 3.11/3.12.
        warnings.simplefilter("ignore", DeprecationWarning)
        emulator.resources.load_bundled()
    for resource in list(emulator.resources):
        if (resource.group, resource.version, resource.plural) not in wanted:
            del emulator.resources[resource]
    for resource in _CORE_RESOURCES:
        emulator.resources[resource]  # noqa: B018 - declares it (auto-created), if kmock had no entry
    for version in tgb_versions:
        emulator.resources[f"elbv2.k8s.aws/{version}/targetgroupbindings"] = dict(_TGB_DISCOVERY)


def _resource_key(resource: str) -> tuple[str, str, str]:
    parts = resource.split("/")
    return ("", parts[0], parts[1]) if len(parts) == 2 else (parts[0], parts[1], parts[2])


@attrs.define(kw_only=True)
class _PagingEmulator(kmock.KubernetesEmulator):
    """kmock's emulator plus list pagination and a bounded request log."""

    async def __call__(self, raw_request: Any) -> Any:
        try:
            return await super().__call__(raw_request)
        finally:
            # kmock logs every request forever and scans the log when matching, so latency grows
            # with uptime (3.7 ms -> 49 ms per list after 2,000 requests): keep only the tail.
            del self._requests[:-_REQUEST_LOG_KEEP]
            for payload in self._payloads:
                reqs = getattr(payload, "_requests", None)
                if isinstance(reqs, list):
                    del reqs[:-_REQUEST_LOG_KEEP]

    async def _serve_version(self, request: Any) -> Any:
        result = await super()._serve_version(request)
        # kmock writes the core group's version as "/v1"; the API server (and kubectl) say "v1".
        result["groupVersion"] = result["groupVersion"].lstrip("/")
        for entry in result["resources"]:
            if "/" in entry["name"]:
                # kmock copies the parent's entry to a subresource (x/status); the API server gives
                # subresources no singular name, short names or categories, and only these verbs.
                entry.update(singularName="", verbs=["get", "patch", "update"], shortNames=[], categories=[])
        return result

    async def _serve_apis(self, request: Any) -> Any:
        result = await super()._serve_apis(request)
        for group in result["groups"]:
            _prefer_highest(group)
        result["groups"].sort(key=lambda g: g["name"])
        return result

    async def _serve_group(self, request: Any) -> Any:
        return _prefer_highest(await super()._serve_group(request))

    async def _serve_list(self, request: Any) -> Any:
        # kmock ignores `limit`/`continue`; a real API server honours them, and the collector pages.
        result = await super()._serve_list(request)
        items = result["items"]
        try:
            limit = int(request.params.get("limit") or 0)
            start = int(request.params.get("continue") or 0)
        except ValueError:
            raise kmock.KubernetesError(
                status=400, reason="BadRequest", message="bad limit/continue"
            ) from None
        metadata: dict[str, Any] = {"resourceVersion": "1"}
        if limit > 0:
            if start + limit < len(items):
                metadata["continue"] = str(start + limit)
            items = items[start : start + limit]
        return {"apiVersion": "v1", "kind": "List", "metadata": metadata, "items": items}


def _prefer_highest(group: dict[str, Any]) -> dict[str, Any]:
    group["versions"].sort(key=lambda v: _version_priority(v["version"]), reverse=True)
    if group["versions"]:
        group["preferredVersion"] = dict(group["versions"][0])
    return group


class KubeEmulator:
    """A kmock-backed Kubernetes API on ``http://127.0.0.1:<port>``, hosted in a background thread.

    Use as a context manager, or `start()` / `stop()`. `served_tgb_versions` declares which
    TargetGroupBinding versions answer an (empty) list before any object exists; creating an object of
    another version makes that version served too (kmock serves what it stores).
    """

    def __init__(self, *, port: int = 0, served_tgb_versions: Iterable[str] = ("v1beta1",)) -> None:
        self._port = port
        self._served_tgb_versions = tuple(served_tgb_versions)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._rv = itertools.count(1000)
        self.url = ""

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> KubeEmulator:
        """Start the server thread and wait until it listens."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="kube-emulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise RuntimeError(f"kube emulator did not start: {self._error!r}")
        return self

    def stop(self) -> None:
        """Stop the server and join its thread."""
        if self._loop is None or self._thread is None:
            return
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self._thread = None

    def __enter__(self) -> KubeEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as exc:  # surface start-up failures to start()
            self._error = exc
            self._ready.set()
        finally:
            self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        emulator = _PagingEmulator()
        _declare_discovery(emulator, self._served_tgb_versions)
        async with emulator, kmock.Server(emulator, port=self._port or None) as server:
            self.url = str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()
            # An open watch keeps a handler task waiting on kmock's bus forever; exiting the server
            # first would wait for it. Cancel every other task on this loop, then exit.
            current = asyncio.current_task()
            others = [t for t in asyncio.all_tasks() if t is not current]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

    # -- client helpers ----------------------------------------------------------------------------
    def api_client(self) -> k8s.ApiClient:
        """A fresh official-client `ApiClient` pointed at this emulator."""
        return k8s.ApiClient(k8s.Configuration(host=self.url))

    def apply(self, objects: dict[str, Any] | Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Create objects (or replace existing ones) over HTTP; returns them as stored.

        Fills what kmock leaves empty: metadata.namespace ("default" for namespaced kinds),
        uid, resourceVersion, creationTimestamp and generation. ``kind: List`` is unpacked.
        """
        return apply_objects(self.url, objects, rv=self._rv)

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> None:
        """Delete one object over HTTP (404 is ignored)."""
        delete_object(self.url, api_version, kind, name, namespace)

    def patch(
        self, api_version: str, kind: str, name: str, namespace: str | None, patch: dict[str, Any]
    ) -> dict[str, Any]:
        """JSON-merge-patch one object over HTTP; returns the patched object."""
        return patch_object(self.url, api_version, kind, name, namespace, patch, rv=self._rv)


# -- generic object helpers (official client, any kind) ------------------------------------------------
def _resource_path(api_version: str, kind: str, namespace: str | None, name: str | None = None) -> str:
    plural, namespaced = _KINDS.get(kind, (kind.lower() + "s", True))
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    path = base + (f"/namespaces/{namespace}" if namespaced and namespace else "") + f"/{plural}"
    return path + (f"/{name}" if name else "")


def _call(
    url: str, method: str, path: str, body: Any = None, content_type: str = "application/json"
) -> dict[str, Any]:
    api = k8s.ApiClient(k8s.Configuration(host=url))
    try:
        response = api.call_api(
            method,
            api.configuration.host + path,
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            body=body,
            _request_timeout=10,
        )
        response.read()
        if not 200 <= response.status <= 299:
            raise k8s.ApiException(status=response.status, reason=response.reason)
        return json.loads(response.data or b"{}")
    finally:
        api.close()


def _filled(obj: dict[str, Any], rv: Iterable[int]) -> dict[str, Any]:
    obj = json.loads(json.dumps(obj))  # deep copy; also rejects non-JSON values early
    meta = obj.setdefault("metadata", {})
    _, namespaced = _KINDS.get(obj["kind"], ("", True))
    if namespaced:
        meta.setdefault("namespace", "default")
    meta.setdefault("uid", str(uuid.uuid4()))
    meta["resourceVersion"] = str(next(iter(rv)))
    meta.setdefault("creationTimestamp", dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    meta.setdefault("generation", 1)
    return obj


def _flatten(objects: dict[str, Any] | Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    items = [objects] if isinstance(objects, dict) else list(objects)
    out: list[dict[str, Any]] = []
    for obj in items:
        if obj.get("kind") == "List":
            out += _flatten(obj.get("items") or [])
        else:
            out.append(obj)
    return out


_default_rv = itertools.count(100000)


def apply_objects(
    url: str, objects: dict[str, Any] | Iterable[dict[str, Any]], *, rv: Iterable[int] | None = None
) -> list[dict[str, Any]]:
    """Create (or replace) objects in the Kubernetes emulator at `url`; see `KubeEmulator.apply`."""
    counter = rv if rv is not None else _default_rv
    stored = []
    for raw in _flatten(objects):
        obj = _filled(raw, counter)
        meta = obj["metadata"]
        ns = meta.get("namespace")
        collection = _resource_path(obj["apiVersion"], obj["kind"], ns)
        try:
            stored.append(_call(url, "POST", collection, obj))
        except k8s.ApiException as exc:
            if exc.status != 409:
                raise
            # kmock answers PUT with 404, so "replace" is delete + create.
            delete_object(url, obj["apiVersion"], obj["kind"], meta["name"], ns)
            stored.append(_call(url, "POST", collection, obj))
    return stored


def delete_object(url: str, api_version: str, kind: str, name: str, namespace: str | None = None) -> None:
    """Delete one object from the emulator at `url`; a missing object is not an error."""
    try:
        _call(url, "DELETE", _resource_path(api_version, kind, namespace, name))
    except k8s.ApiException as exc:
        if exc.status != 404:
            raise


def patch_object(
    url: str,
    api_version: str,
    kind: str,
    name: str,
    namespace: str | None,
    patch: dict[str, Any],
    *,
    rv: Iterable[int] | None = None,
) -> dict[str, Any]:
    """Merge-patch one object in the emulator at `url`, bumping its resourceVersion."""
    counter = rv if rv is not None else _default_rv
    body = json.loads(json.dumps(patch))
    body.setdefault("metadata", {})["resourceVersion"] = str(next(iter(counter)))
    return _call(
        url,
        "PATCH",
        _resource_path(api_version, kind, namespace, name),
        body,
        content_type="application/merge-patch+json",
    )


# -- moto ------------------------------------------------------------------------------------------
class MotoServer:
    """moto's threaded HTTP server on 127.0.0.1 and a free (or given) port.

    moto keeps its state in process-global backends, shared by every server in the process; `start`
    therefore resets it. Don't run two `MotoServer`s at once in one process.
    """

    def __init__(self, *, port: int = 0) -> None:
        from moto.server import ThreadedMotoServer  # imported lazily: moto is heavy and test/demo-only

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self.url = ""

    def start(self) -> MotoServer:
        """Start serving; `url` is set afterwards."""
        _network_load_balancer_arns()
        # werkzeug logs every request at INFO; that drowns test output and the demo's console.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        # moto's backends are process-global: a server started after another one in the same process
        # (e.g. the next test module) would see its resources. Start every server from a clean slate.
        self.reset()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.stop()

    def reset(self) -> None:
        """Drop every emulated AWS resource."""
        # Our own http://127.0.0.1 URL, never user input.
        request = urllib.request.Request(self.url + "/moto-api/reset", method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            response.read()

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


_ARN_LOCK = threading.Lock()


def _network_load_balancer_arns() -> None:
    """moto (5.2) names every load balancer ``loadbalancer/app/...``; AWS names network load
    balancers ``loadbalancer/net/...`` (and their listeners ``listener/net/...``). Wrap moto's
    CreateLoadBalancer so an NLB gets the ARN AWS would give it. Idempotent."""
    from moto.elbv2 import models, utils

    if getattr(models.ELBv2Backend.create_load_balancer, "bh_net_arns", False):
        return
    original = models.ELBv2Backend.create_load_balancer

    def net_arn(**kwargs: Any) -> str:
        return utils.make_arn_for_load_balancer(**kwargs).replace(":loadbalancer/app/", ":loadbalancer/net/")

    def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("loadbalancer_type") != "network":
            return original(self, *args, **kwargs)
        # The ARN is made by a module-level helper: swap it for this one call only.
        with _ARN_LOCK:
            models.make_arn_for_load_balancer = net_arn
            try:
                return original(self, *args, **kwargs)
            finally:
                models.make_arn_for_load_balancer = utils.make_arn_for_load_balancer

    create.bh_net_arns = True  # type: ignore[attr-defined]
    models.ELBv2Backend.create_load_balancer = create  # type: ignore[method-assign]


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


# -- the demo world ------------------------------------------------------------------------------------
@dataclass
class DemoWorld:
    """Ids and ARNs of what `seed_demo_world` created."""

    region: str
    account_id: str
    vpc_id: str
    subnet_ids: list[str]
    node_security_group_id: str
    instance_ids: list[str]
    node_names: list[str]
    pod_ips: list[str]
    load_balancer_arn: str
    target_group_arns: dict[str, str]  # "udp" / "tcp" -> ARN
    listener_arns: list[str]
    cluster: str = DEMO_CLUSTER
    kube_objects: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def to_json(self) -> dict[str, Any]:
        """JSON-safe dict (without the seeded Kubernetes objects)."""
        data = asdict(self)
        data.pop("kube_objects")
        return data


def seed_demo_world(*, aws_endpoint: str, kube: KubeEmulator | str, region: str = "us-east-1") -> DemoWorld:
    """Build the DNS-over-UDP-blocked case in moto (boto3) and the Kubernetes emulator (official client).

    Pod addressing: each node's primary ENI carries its CoreDNS pod IP as a **secondary** private IP,
    as the VPC CNI does. moto's ``addresses.private-ip-address`` filter only matches primary IPs, so the
    collector finds these pods through its first path — DescribeInstances for the node instance ids,
    then the node ENI whose secondary IPs hold the pod IP (nlb-udp-facts §2.2 (b)) — exactly as
    the controller does. No ``vpc.amazonaws.com/pod-eni`` branch ENIs are needed.

    The node security group (tagged ``kubernetes.io/cluster/demo=owned``) admits TCP 53 and kubelet
    10250 from the VPC only, so UDP 53 is blocked while both target groups report every target healthy.
    """
    session = boto3.session.Session(region_name=region, **DEMO_CREDENTIALS)
    ec2 = session.client("ec2", endpoint_url=aws_endpoint)
    elbv2 = session.client("elbv2", endpoint_url=aws_endpoint)

    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    zones = [f"{region}a", f"{region}b"]
    subnet_ids = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.0.{i + 1}.0/24", AvailabilityZone=zone)["Subnet"][
            "SubnetId"
        ]
        for i, zone in enumerate(zones)
    ]
    sg_id = ec2.create_security_group(
        GroupName="eks-node",
        Description="eks-node",
        VpcId=vpc_id,
        TagSpecifications=[
            {
                "ResourceType": "security-group",
                "Tags": [
                    {"Key": "Name", "Value": "eks-node"},
                    {"Key": f"kubernetes.io/cluster/{DEMO_CLUSTER}", "Value": "owned"},
                ],
            }
        ],
    )["GroupId"]
    monitoring_list = ec2.create_managed_prefix_list(
        PrefixListName="monitoring",
        AddressFamily="IPv4",
        MaxEntries=5,
        Entries=[{"Cidr": "10.200.0.0/24", "Description": "prometheus"}],
    )["PrefixList"]["PrefixListId"]
    ec2.authorize_security_group_ingress(
        GroupId=sg_id,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 53,
                "ToPort": 53,
                "IpRanges": [{"CidrIp": "10.0.0.0/16", "Description": "dns over tcp from vpc"}],
            },
            {
                "IpProtocol": "tcp",
                "FromPort": 10250,
                "ToPort": 10250,
                "IpRanges": [{"CidrIp": "10.0.0.0/16", "Description": "kubelet"}],
            },
            {
                # CoreDNS metrics for the monitoring network, through a managed prefix list (as
                # corporate ranges usually are): the poller collects its entries.
                "IpProtocol": "tcp",
                "FromPort": 9153,
                "ToPort": 9153,
                "PrefixListIds": [{"PrefixListId": monitoring_list, "Description": "coredns metrics"}],
            },
        ],
    )

    node_ips = ["10.0.1.10", "10.0.2.20"]
    pod_ips = ["10.0.1.15", "10.0.2.25"]
    instance_ids: list[str] = []
    for subnet_id, node_ip, pod_ip in zip(subnet_ids, node_ips, pod_ips, strict=True):
        instance = ec2.run_instances(
            ImageId="ami-12c6146b",  # an AMI id moto ships with
            InstanceType="m5.large",
            MinCount=1,
            MaxCount=1,
            NetworkInterfaces=[
                {
                    "DeviceIndex": 0,
                    "SubnetId": subnet_id,
                    "PrivateIpAddress": node_ip,
                    "Groups": [sg_id],
                }
            ],
        )["Instances"][0]
        instance_ids.append(instance["InstanceId"])
        eni_id = instance["NetworkInterfaces"][0]["NetworkInterfaceId"]
        ec2.assign_private_ip_addresses(NetworkInterfaceId=eni_id, PrivateIpAddresses=[pod_ip])

    lb = elbv2.create_load_balancer(
        Name="dns-nlb", Subnets=subnet_ids, Scheme="internal", Type="network", IpAddressType="ipv4"
    )["LoadBalancers"][0]
    lb_arn = lb["LoadBalancerArn"]
    tg_arns: dict[str, str] = {}
    listener_arns: list[str] = []
    for proto in ("UDP", "TCP"):
        tg = elbv2.create_target_group(
            Name=f"k8s-dns-{proto.lower()}",
            Protocol=proto,
            Port=53,
            VpcId=vpc_id,
            TargetType="ip",
            HealthCheckProtocol="TCP",
            HealthCheckPort="traffic-port",
        )["TargetGroups"][0]
        tg_arns[proto.lower()] = tg["TargetGroupArn"]
        elbv2.register_targets(
            TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": ip, "Port": 53} for ip in pod_ips]
        )
        listener = elbv2.create_listener(
            LoadBalancerArn=lb_arn,
            Protocol=proto,
            Port=53,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}],
        )["Listeners"][0]
        listener_arns.append(listener["ListenerArn"])

    node_names = [f"ip-{ip.replace('.', '-')}.ec2.internal" for ip in node_ips]
    objects = _demo_kube_objects(
        node_names=node_names,
        node_ips=node_ips,
        zones=zones,
        instance_ids=instance_ids,
        pod_ips=pod_ips,
        tg_arns=tg_arns,
    )
    stored = kube.apply(objects) if isinstance(kube, KubeEmulator) else apply_objects(kube, objects)

    return DemoWorld(
        region=region,
        account_id=DEMO_ACCOUNT_ID,
        vpc_id=vpc_id,
        subnet_ids=subnet_ids,
        node_security_group_id=sg_id,
        instance_ids=instance_ids,
        node_names=node_names,
        pod_ips=pod_ips,
        load_balancer_arn=lb_arn,
        target_group_arns=tg_arns,
        listener_arns=listener_arns,
        kube_objects=stored,
    )


def _demo_kube_objects(
    *,
    node_names: list[str],
    node_ips: list[str],
    zones: list[str],
    instance_ids: list[str],
    pod_ips: list[str],
    tg_arns: dict[str, str],
) -> list[dict[str, Any]]:
    """The Kubernetes half of the demo world (the shape of tests/scenarios/dns-udp-blocked)."""
    ns = "kube-system"
    labels = {"k8s-app": "kube-dns"}
    objects: list[dict[str, Any]] = []
    pod_names = ["coredns-6d4b75cb6d-a1b2c", "coredns-6d4b75cb6d-d3e4f"]
    for name, ip, zone, instance_id in zip(node_names, node_ips, zones, instance_ids, strict=True):
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "labels": {"topology.kubernetes.io/zone": zone, "kubernetes.io/hostname": name},
                },
                "spec": {"providerID": f"aws:///{zone}/{instance_id}"},
                "status": {
                    "addresses": [
                        {"type": "InternalIP", "address": ip},
                        {"type": "Hostname", "address": name},
                    ],
                    "conditions": [{"type": "Ready", "status": "True"}],
                },
            }
        )
    for pod_name, node_name, ip in zip(pod_names, node_names, pod_ips, strict=True):
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": pod_name, "namespace": ns, "labels": dict(labels)},
                "spec": {
                    "nodeName": node_name,
                    "containers": [
                        {
                            "name": "coredns",
                            "image": "registry.k8s.io/coredns/coredns:v1.11.1",
                            "ports": [
                                {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                                {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                            ],
                        }
                    ],
                },
                "status": {
                    "phase": "Running",
                    "podIP": ip,
                    "podIPs": [{"ip": ip}],
                    "conditions": [{"type": "Ready", "status": "True"}],
                },
            }
        )
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "coredns-external", "namespace": ns},
            "spec": {
                "type": "ClusterIP",
                "selector": dict(labels),
                "ports": [
                    {"name": "dns-udp", "protocol": "UDP", "port": 53, "targetPort": 53},
                    {"name": "dns-tcp", "protocol": "TCP", "port": 53, "targetPort": 53},
                ],
                "clusterIP": "172.20.0.10",
                "clusterIPs": ["172.20.0.10"],
                "ipFamilies": ["IPv4"],
            },
        }
    )
    objects.append(
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "coredns-external-abcde",
                "namespace": ns,
                "labels": {
                    "kubernetes.io/service-name": "coredns-external",
                    "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                },
            },
            "addressType": "IPv4",
            "ports": [
                {"name": "dns-udp", "protocol": "UDP", "port": 53},
                {"name": "dns-tcp", "protocol": "TCP", "port": 53},
            ],
            "endpoints": [
                {
                    "addresses": [ip],
                    "conditions": {"ready": True, "serving": True, "terminating": False},
                    "nodeName": node_name,
                    "targetRef": {"kind": "Pod", "namespace": ns, "name": pod_name},
                }
                for ip, node_name, pod_name in zip(pod_ips, node_names, pod_names, strict=True)
            ],
        }
    )
    for proto, port_name in (("udp", "dns-udp"), ("tcp", "dns-tcp")):
        spec: dict[str, Any] = {
            "serviceRef": {"name": "coredns-external", "port": port_name},
            "targetGroupARN": tg_arns[proto],
            "targetType": "ip",
            "targetGroupProtocol": proto.upper(),
        }
        if proto == "tcp":
            spec["networking"] = {
                "ingress": [
                    {
                        "from": [{"ipBlock": {"cidr": "10.0.0.0/16"}}],
                        "ports": [{"protocol": "TCP", "port": 53}],
                    }
                ]
            }
        objects.append(
            {
                "apiVersion": "elbv2.k8s.aws/v1beta1",
                "kind": "TargetGroupBinding",
                "metadata": {"name": f"coredns-{proto}", "namespace": ns},
                "spec": spec,
                "status": {"observedGeneration": 1},
            }
        )
    return objects


@dataclass
class CollectionCases:
    """What `seed_collection_cases` added to the demo world."""

    deleted_target_group_arn: str  # deleted before any collection; a binding still names it
    spare_target_group_arn: str  # exists, on no load balancer (a test deletes it mid-collection)
    named_target_group_arn: str  # a binding names it by targetGroupName
    misspelled_name: str  # a binding's targetGroupName that matches no target group
    prefix_list_id: str  # named by a node security-group rule


def seed_collection_cases(
    world: DemoWorld, *, aws_endpoint: str, kube: KubeEmulator | str, misspelled_name: str = "k8s-dns-ucp"
) -> CollectionCases:
    """Add what a first collection of a real cluster meets to the demo world: a binding on a deleted
    target group, one on a misspelled `targetGroupName`, one on a correct name (behind a TCP 5353
    listener), one on a target group no load balancer uses, and a node security-group rule (TCP 8443,
    a port no binding uses, so verdicts do not hang on it) whose source is a managed prefix list.
    """
    session = boto3.session.Session(region_name=world.region, **DEMO_CREDENTIALS)
    elbv2 = session.client("elbv2", endpoint_url=aws_endpoint)
    ec2 = session.client("ec2", endpoint_url=aws_endpoint)

    def target_group(name: str) -> str:
        arn = elbv2.create_target_group(
            Name=name, Protocol="TCP", Port=53, VpcId=world.vpc_id, TargetType="ip", HealthCheckProtocol="TCP"
        )["TargetGroups"][0]["TargetGroupArn"]
        elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": ip, "Port": 53} for ip in world.pod_ips])
        return arn

    deleted = target_group("k8s-deleted")
    elbv2.delete_target_group(TargetGroupArn=deleted)
    spare = target_group("k8s-spare")
    named = target_group("k8s-named")
    elbv2.create_listener(
        LoadBalancerArn=world.load_balancer_arn,
        Protocol="TCP",
        Port=5353,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": named}],
    )
    prefix_list = ec2.create_managed_prefix_list(
        PrefixListName="office",
        AddressFamily="IPv4",
        MaxEntries=5,
        Entries=[{"Cidr": "192.0.2.0/24", "Description": "office"}],
    )["PrefixList"]["PrefixListId"]
    ec2.authorize_security_group_ingress(
        GroupId=world.node_security_group_id,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 8443,
                "ToPort": 8443,
                "PrefixListIds": [{"PrefixListId": prefix_list}],
            }
        ],
    )

    def binding(name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": "elbv2.k8s.aws/v1beta1",
            "kind": "TargetGroupBinding",
            "metadata": {"name": name, "namespace": "kube-system"},
            "spec": {
                "serviceRef": {"name": "coredns-external", "port": "dns-tcp"},
                "targetType": "ip",
                **spec,
            },
        }

    objects = [
        binding("on-deleted-tg", {"targetGroupARN": deleted}),
        binding("misspelled-name", {"targetGroupName": misspelled_name}),
        binding("by-name", {"targetGroupName": "k8s-named"}),
        binding("spare", {"targetGroupARN": spare}),
    ]
    if isinstance(kube, KubeEmulator):
        kube.apply(objects)
    else:
        apply_objects(kube, objects)
    return CollectionCases(deleted, spare, named, misspelled_name, prefix_list)


def write_kubeconfig(path: str, server: str) -> None:
    """A kubeconfig whose current context ("demo") is the emulator at `server` (plain HTTP, no user)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "emulator", "cluster": {"server": server}}],
        "users": [{"name": "emulator", "user": {}}],
        "contexts": [{"name": DEMO_CLUSTER, "context": {"cluster": "emulator", "user": "emulator"}}],
        "current-context": DEMO_CLUSTER,
    }
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(config, fh, indent=1)  # JSON is YAML: kubectl reads it


# -- entry point ------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """Start both emulators and the probe targets, seed the demo world, write the state file, serve
    until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m bindings.demo.emulators", description=main.__doc__)
    parser.add_argument("--state-file", required=True, help="where to write the JSON state")
    parser.add_argument("--kube-port", type=int, default=0, help="Kubernetes emulator port (0: any free)")
    parser.add_argument("--aws-port", type=int, default=0, help="moto port (0: any free)")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--dns-port", type=int, default=0, help="loopback DNS server port (0: any free)")
    parser.add_argument(
        "--controller-interval",
        type=float,
        default=2.0,
        help="seconds between the emulated controller's reconciles (0: no emulated controller)",
    )
    parser.add_argument(
        "--collection-cases",
        action="store_true",
        help="add bindings on a deleted target group, a misspelled and a correct targetGroupName, and a "
        "prefix-list rule (docs/bundles.md: collecting a bundle from the emulators)",
    )
    args = parser.parse_args(argv)

    stop = threading.Event()
    # The handlers only set a flag; the main thread does the (blocking) shutdown work.
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    kube = KubeEmulator(port=args.kube_port).start()
    moto = MotoServer(port=args.aws_port).start()
    # Real local services for the demo's active probes: a DNS server (UDP and TCP) and a UDP port
    # with nothing behind it.
    dns_server = DnsServer(port=args.dns_port).start()
    controller: threading.Thread | None = None
    try:
        world = seed_demo_world(aws_endpoint=moto.url, kube=kube, region=args.region)
        if args.collection_cases:
            seed_collection_cases(world, aws_endpoint=moto.url, kube=kube)
        kubeconfig = args.state_file + ".kubeconfig"
        write_kubeconfig(kubeconfig, kube.url)
        if args.controller_interval > 0:
            # Plays the AWS Load Balancer Controller: an applied fix reaches the security groups.
            from bindings.demo.emulated_controller import EmulatedController

            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
            emulated = EmulatedController(
                kube_url=kube.url, aws_endpoint=moto.url, cluster=world.cluster, region=args.region
            )
            controller = threading.Thread(
                target=emulated.run,
                args=(stop, args.controller_interval),
                name="emulated-controller",
                daemon=True,
            )
            controller.start()
        state = {
            "kube_url": kube.url,
            "kubeconfig": os.path.abspath(kubeconfig),
            "aws_endpoint": moto.url,
            "region": args.region,
            "account_id": world.account_id,
            "cluster": world.cluster,
            "target_group_arns": sorted(world.target_group_arns.values()),
            "aws_credentials": {"access_key_id": "testing", "secret_access_key": "testing"},
            "pid": os.getpid(),
            "world": world.to_json(),
            "dns_server": {"host": dns_server.host, "port": dns_server.port},
            "closed_udp_port": closed_udp_port(),
        }
        tmp = args.state_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(state, fh, indent=1)
        os.replace(tmp, args.state_file)  # atomic: a reader never sees a half-written file
        while not stop.wait(0.5):
            pass
    finally:
        stop.set()
        if controller is not None:
            controller.join(15)
        dns_server.stop()
        kube.stop()
        moto.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
