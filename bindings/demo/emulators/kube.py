"""The Kubernetes API emulator: kmock (pinned at 0.8) on a real HTTP port, and helpers that
write objects to any API server over plain HTTP (the emulator's or a real one's URL).

Every kmock workaround lives here (shared/reference/emulators.md): metadata kmock leaves empty is
filled in on `apply`, list pagination (``limit``/``continue``) is added, the request log is trimmed,
the core resources are declared so empty lists answer 200, discovery documents carry real kinds,
verbs and scopes (so real kubectl works against it), and ``stop`` cancels the loop's other tasks
first so that an open watch can't hang shutdown.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import re
import threading
import uuid
import warnings
from collections.abc import Iterable
from typing import Any

import attrs
import kmock
from kubernetes import client as k8s

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
