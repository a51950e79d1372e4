"""Kubernetes collector: reads what Binding Health needs from one cluster and returns plain dicts.

`collect_cluster` lists, across all namespaces, TargetGroupBindings, Services, EndpointSlices, Pods,
Nodes and the Events about TargetGroupBindings. Every object comes back as a camelCase dict exactly as
``kubectl get -o yaml`` prints it (``apiVersion`` and ``kind`` set, ``managedFields`` dropped as kubectl
does by default), i.e. the ``kubernetes.yaml`` shape of a bundle (docs/DESIGN.md, "Bundles").

Objects are taken from the raw JSON the API server sent (``_preload_content=False``) rather than
round-tripped through the client's typed models: the typed models are strict (a field they don't know
or a missing "required" field breaks deserialisation) and lossy for custom resources, while the raw
JSON is exactly what kubectl prints.

The official client is used unmodified, with a fresh `ApiClient` per connection so that several
clusters can be polled from one process without touching the client's global default configuration.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.incluster_config import (
    SERVICE_CERT_FILENAME,
    SERVICE_TOKEN_FILENAME,
    InClusterConfigLoader,
)
from kubernetes.config.kube_config import load_kube_config

from bindings.collect.errors import KubeError, KubeUnavailable
from bindings.textsafe import without_nul

TGB_GROUP = "elbv2.k8s.aws"
TGB_PLURAL = "targetgroupbindings"
# v1beta1 is the storage version and the only one carrying every field (docs/facts.md §1.1); v1alpha1
# is read only from old controllers (< v2.0) that don't serve v1beta1.
TGB_VERSIONS = ("v1beta1", "v1alpha1")
EVENT_KIND_SELECTOR = "involvedObject.kind=TargetGroupBinding"
DEFAULT_PAGE_SIZE = 500


@dataclass(frozen=True)
class KubeConnection:
    """How to reach one cluster. Exactly one mode must be chosen.

    - kubeconfig: ``kubeconfig_path`` and optional ``context`` (default: the file's current context);
    - in-cluster: ``in_cluster=True`` (the pod's service account token and CA);
    - API URL: ``api_url`` with an optional ``token_file`` (bearer token, re-read on every poll so that
      rotated projected tokens are picked up), optional ``ca_file`` and ``verify_ssl``.
    """

    kubeconfig_path: str | None = None
    context: str | None = None
    in_cluster: bool = False
    api_url: str | None = None
    token_file: str | None = None
    ca_file: str | None = None
    verify_ssl: bool = True

    def __post_init__(self) -> None:
        modes = sum((self.kubeconfig_path is not None, self.in_cluster, self.api_url is not None))
        if modes != 1:
            raise ValueError("KubeConnection needs exactly one of kubeconfig_path, in_cluster or api_url")

    def describe(self) -> str:
        """A short human description for error messages (never includes secrets)."""
        if self.kubeconfig_path is not None:
            return f"kubeconfig {self.kubeconfig_path}" + (f" context {self.context}" if self.context else "")
        if self.in_cluster:
            return "in-cluster service account"
        return f"API {self.api_url}"


@dataclass
class KubeSnapshot:
    """What one poll of a cluster returned: plain dicts only."""

    objects: list[dict[str, Any]] = field(default_factory=list)
    api_calls: dict[str, int] = field(default_factory=dict)
    target_group_api_version: str = f"{TGB_GROUP}/v1beta1"


def tgb_event(
    binding: Any,
    *,
    name: str,
    reason: str,
    event_type: str,
    message: str,
    at: str,
    source: str,
    count: int = 1,
    reporting_instance: str | None = None,
) -> dict[str, Any]:
    """A core/v1 Event about one TargetGroupBinding, as `kubectl describe targetgroupbinding` lists
    it. `binding` is anything with name, namespace, api_version and uid (a stored row or an analysis
    record); `at` is an RFC 3339 UTC time. Product events and the demo's emulated controller use
    this one shape."""
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": binding.namespace},
        "involvedObject": {
            "apiVersion": binding.api_version,
            "kind": "TargetGroupBinding",
            "name": binding.name,
            "namespace": binding.namespace,
            "uid": binding.uid,
        },
        "reason": reason,
        "message": message,
        "type": event_type,
        "source": {"component": source},
        "firstTimestamp": at,
        "lastTimestamp": at,
        "count": count,
    }
    if reporting_instance is not None:
        body["reportingComponent"] = source
        body["reportingInstance"] = reporting_instance
    return body


def api_client_for(conn: KubeConnection, *, retries: int = 1) -> k8s.ApiClient:
    """Build a fresh `ApiClient` for `conn` without mutating the client's global configuration.

    Raises `KubeError` naming the file when a kubeconfig, token or CA file can't be used.
    """
    if conn.kubeconfig_path is not None:
        cfg = k8s.Configuration()
        if not os.path.isfile(conn.kubeconfig_path):
            raise KubeError(f"kubeconfig file {conn.kubeconfig_path} does not exist or is not a file")
        try:
            # persist_config=False: never write refreshed tokens back into an operator's kubeconfig.
            load_kube_config(
                config_file=conn.kubeconfig_path,
                context=conn.context,
                client_configuration=cfg,
                persist_config=False,
            )
        except (ConfigException, OSError, ValueError, TypeError, AttributeError) as exc:
            raise KubeError(f"cannot use kubeconfig {conn.kubeconfig_path}: {exc}") from exc
        except Exception as exc:  # yaml errors and the like: the file is unreadable for us either way
            raise KubeError(f"cannot parse kubeconfig {conn.kubeconfig_path}: {exc}") from exc
    elif conn.in_cluster:
        cfg = k8s.Configuration()
        for path in (SERVICE_TOKEN_FILENAME, SERVICE_CERT_FILENAME):
            if not os.path.isfile(path):
                raise KubeError(f"in-cluster config: service account file {path} is missing")
        try:
            InClusterConfigLoader(
                token_filename=SERVICE_TOKEN_FILENAME, cert_filename=SERVICE_CERT_FILENAME
            ).load_and_set(cfg)
        except ConfigException as exc:
            raise KubeError(f"in-cluster config unusable: {exc}") from exc
    else:
        assert conn.api_url is not None
        cfg = k8s.Configuration(host=conn.api_url.rstrip("/"))
        if conn.token_file is not None:
            try:
                with open(conn.token_file, encoding="utf-8") as fh:
                    token = fh.read().strip()
            except OSError as exc:
                raise KubeError(f"cannot read bearer token file {conn.token_file}: {exc.strerror}") from exc
            if not token:
                raise KubeError(f"bearer token file {conn.token_file} is empty")
            cfg.api_key = {"authorization": token}
            cfg.api_key_prefix = {"authorization": "Bearer"}
        if conn.ca_file is not None:
            if not os.path.isfile(conn.ca_file):
                raise KubeError(f"CA file {conn.ca_file} does not exist")
            cfg.ssl_ca_cert = conn.ca_file
        cfg.verify_ssl = conn.verify_ssl
    # urllib3 retries connection errors itself; keep it small so an outage is reported quickly and
    # the task-level retry (with backoff) decides what happens next.
    cfg.retries = retries
    return k8s.ApiClient(configuration=cfg)


class _Lister:
    """Runs paginated list calls, counts them and turns client failures into our errors."""

    def __init__(self, host: str, request_timeout: float, page_size: int) -> None:
        self.host = host
        self.request_timeout = request_timeout
        self.page_size = page_size
        self.api_calls: dict[str, int] = {}

    def list_all(
        self,
        resource: str,
        call: Callable[..., Any],
        api_version: str,
        kind: str,
        **kwargs: Any,
    ) -> list[dict[str, Any]]:
        """All items of a list call, following ``continue`` tokens; restarts once on 410 Gone."""
        for attempt in (1, 2):
            try:
                return [
                    _as_kubectl(item, api_version, kind) for item in self._pages(resource, call, **kwargs)
                ]
            except k8s.ApiException as exc:
                # 410: the continue token expired mid-list (etcd compaction); only a fresh list is
                # consistent, so start over once before giving up.
                if exc.status == 410 and attempt == 1:
                    continue
                raise self._translate(exc, resource) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _pages(self, resource: str, call: Callable[..., Any], **kwargs: Any) -> Iterator[dict[str, Any]]:
        token: str | None = None
        while True:
            params = dict(kwargs, limit=self.page_size, _request_timeout=self.request_timeout)
            if token:
                params["_continue"] = token
            self.api_calls[resource] = self.api_calls.get(resource, 0) + 1
            try:
                response = call(_preload_content=False, **params)
            except k8s.ApiException:
                raise
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise KubeUnavailable(
                    f"Kubernetes API {self.host} unreachable while listing {resource}: {exc}"
                ) from exc
            try:
                body = json.loads(response.data)
            except ValueError as exc:
                raise KubeUnavailable(
                    f"Kubernetes API {self.host} sent a non-JSON answer listing {resource}"
                ) from exc
            finally:
                response.release_conn()
            items, token = _list_page(body, f"Kubernetes API {self.host} answered listing {resource} with")
            yield from items
            if not token:
                return

    def _translate(self, exc: k8s.ApiException, resource: str) -> Exception:
        status = exc.status or 0
        reason = exc.reason or ""
        where = f"Kubernetes API {self.host} answered {status} {reason} listing {resource}"
        # 410 here means a restarted list expired again: the server is churning, try later.
        if status in (0, 410, 429) or status >= 500:
            return KubeUnavailable(where)
        if status == 404:
            return _NotServed(f"{where}: {_status_message(exc)}")
        if status in (401, 403):
            hint = "check the credentials" if status == 401 else "grant list on it to the poller's identity"
            return KubeError(f"{where} ({hint})")
        return KubeError(f"{where}: {_status_message(exc)}")


def _list_page(body: Any, where: str) -> tuple[list[dict[str, Any]], str | None]:
    """The items and continue token of one page of a list call, after checking it is one.

    A 200 answer that is not a list (a Status object, a proxy's JSON error page, `{}`) must not
    read as "no objects": the poll would succeed and delete every binding with its history
    (issue 15 item 4). It fails instead, naming the call and the field; the previous state stays.
    Transient: a proxy's error page usually is.
    """
    if not isinstance(body, dict):
        raise KubeUnavailable(f"{where} a JSON {type(body).__name__}, not a list object")
    kind = body.get("kind")
    if not isinstance(kind, str) or not kind.endswith("List"):
        what = (
            f"kind {kind[:80]!r}"
            if isinstance(kind, str)
            else "no kind"
            if kind is None
            else "a non-text kind"
        )
        message = body.get("message")
        detail = f" (message: {message[:200]!r})" if isinstance(message, str) and message else ""
        raise KubeUnavailable(f"{where} {what}{detail}: field kind must end in List; not a list answer")
    items = body.get("items")
    if not isinstance(items, list):
        state = "missing" if "items" not in body else f"a {type(items).__name__}"
        raise KubeUnavailable(f"{where} a {kind[:80]} whose field items is {state}, expected a list")
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise KubeUnavailable(
                f"{where} a {kind[:80]} whose field items[{index}] is a {type(item).__name__}, "
                "expected an object"
            )
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise KubeUnavailable(f"{where} a {kind[:80]} whose field metadata is a {type(metadata).__name__}")
    token = (metadata or {}).get("continue")
    if token is not None and not isinstance(token, str):
        raise KubeUnavailable(f"{where} a {kind[:80]} whose field metadata.continue is not text")
    return items, token or None


class _NotServed(KubeError):
    """404 on a list: the resource (or this version of it) is not served by the cluster."""


def _status_message(exc: k8s.ApiException) -> str:
    """The `message` of a Kubernetes Status body, else the raw body (truncated)."""
    try:
        return str(json.loads(exc.body or "{}").get("message") or "")[:300]
    except ValueError:
        return str(exc.body or "")[:300]


def _as_kubectl(item: dict[str, Any], api_version: str, kind: str) -> dict[str, Any]:
    """Shape a list item like ``kubectl get -o yaml``: apiVersion/kind first, no managedFields."""
    obj: dict[str, Any] = {
        "apiVersion": item.get("apiVersion") or api_version,
        "kind": item.get("kind") or kind,
    }
    obj.update((k, v) for k, v in item.items() if k not in ("apiVersion", "kind"))
    metadata = obj.get("metadata")
    if isinstance(metadata, dict) and "managedFields" in metadata:
        obj["metadata"] = {k: v for k, v in metadata.items() if k != "managedFields"}
    return obj


def collect_cluster(
    conn: KubeConnection, *, request_timeout: float = 20, page_size: int = DEFAULT_PAGE_SIZE
) -> KubeSnapshot:
    """List everything Binding Health needs from one cluster, across all namespaces.

    Order of `objects`: TargetGroupBindings, Services, EndpointSlices, Pods, Nodes, Events (the order
    ``kubectl get targetgroupbindings,services,endpointslices,pods,nodes,events`` uses).
    `api_calls` counts HTTP list requests per resource (pages, 404 fallbacks and 410 restarts included).

    Raises `KubeUnavailable` (retry later) or `KubeError` (fix the configuration).
    """
    api = api_client_for(conn)
    try:
        lister = _Lister(api.configuration.host, request_timeout, page_size)
        custom = k8s.CustomObjectsApi(api)
        core = k8s.CoreV1Api(api)
        discovery = k8s.DiscoveryV1Api(api)

        tgbs, tgb_api_version = _list_tgbs(lister, custom)
        objects = list(tgbs)
        objects += lister.list_all("services", core.list_service_for_all_namespaces, "v1", "Service")
        objects += lister.list_all(
            "endpointslices",
            discovery.list_endpoint_slice_for_all_namespaces,
            "discovery.k8s.io/v1",
            "EndpointSlice",
        )
        objects += lister.list_all("pods", core.list_pod_for_all_namespaces, "v1", "Pod")
        objects += lister.list_all("nodes", core.list_node, "v1", "Node")
        events = lister.list_all(
            "events",
            core.list_event_for_all_namespaces,
            "v1",
            "Event",
            field_selector=EVENT_KIND_SELECTOR,
        )
        # Filter client-side as well: emulators (and some proxies) ignore field selectors.
        objects += [e for e in events if (e.get("involvedObject") or {}).get("kind") == "TargetGroupBinding"]
        return KubeSnapshot(
            # No NUL may reach PostgreSQL: one hostile annotation would fail every sync.
            objects=without_nul(objects),
            api_calls=lister.api_calls,
            target_group_api_version=tgb_api_version,
        )
    finally:
        api.close()


def _list_tgbs(lister: _Lister, custom: k8s.CustomObjectsApi) -> tuple[list[dict[str, Any]], str]:
    """TargetGroupBindings from the newest served version (v1beta1, else v1alpha1)."""
    for version in TGB_VERSIONS:
        api_version = f"{TGB_GROUP}/{version}"
        try:
            items = lister.list_all(
                TGB_PLURAL,
                _bind_custom(custom, version),
                api_version,
                "TargetGroupBinding",
            )
        except _NotServed:
            continue  # this version of the CRD is not served; try the older one
        return items, api_version
    raise KubeError(
        f"Kubernetes API {lister.host} serves no TargetGroupBinding CRD ({TGB_GROUP} v1beta1 or v1alpha1): "
        "is the AWS Load Balancer Controller installed?"
    )


def _bind_custom(custom: k8s.CustomObjectsApi, version: str) -> Callable[..., Any]:
    """A list callable for one TGB version with the same keyword interface as the core list calls."""

    def call(**kwargs: Any) -> Any:
        return custom.list_custom_object_for_all_namespaces(TGB_GROUP, version, TGB_PLURAL, **kwargs)

    return call
