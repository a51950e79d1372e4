"""The Kubernetes collector, over HTTP through the unmodified official client.

Behaviour tests run against the kmock-backed `KubeEmulator`; exact wire-contract tests (paths, query
parameters, error statuses) run against pytest-httpserver.
"""

from __future__ import annotations

import json
import time

import pytest

from bindings.collect.errors import KubeError, KubeUnavailable, TransientSourceError
from bindings.collect.kube import KubeConnection, collect_cluster
from bindings.demo.emulators import KubeEmulator

ARN_PREFIX = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup"


def tgb(name: str, namespace: str, *, version: str = "v1beta1", port: str | int = 53) -> dict:
    return {
        "apiVersion": f"elbv2.k8s.aws/{version}",
        "kind": "TargetGroupBinding",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "serviceRef": {"name": "coredns-external", "port": port},
            "targetGroupARN": f"{ARN_PREFIX}/{name}/0123456789abcdef",
            "targetType": "ip",
        },
    }


def pod(name: str, namespace: str = "kube-system", ip: str = "10.0.1.15") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"k8s-app": "kube-dns"}},
        "spec": {"containers": [{"name": "coredns", "image": "coredns:1"}]},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]},
    }


def event(name: str, kind: str, involved: str, reason: str = "FailedNetworkReconcile") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": "kube-system"},
        "involvedObject": {"kind": kind, "name": involved, "namespace": "kube-system"},
        "reason": reason,
        "message": "expected exactly one securityGroup tagged with kubernetes.io/cluster/demo",
        "type": "Warning",
    }


@pytest.fixture
def kube():
    with KubeEmulator() as emulator:
        yield emulator


def kinds(snapshot, kind):
    return [o for o in snapshot.objects if o["kind"] == kind]


@pytest.mark.slow
def test_collects_bindings_in_two_namespaces_in_kubectl_shape(kube):
    kube.apply([tgb("coredns-udp", "kube-system"), tgb("web", "team-a"), pod("coredns-1")])

    snapshot = collect_cluster(KubeConnection(api_url=kube.url))

    bindings = kinds(snapshot, "TargetGroupBinding")
    assert {(b["metadata"]["namespace"], b["metadata"]["name"]) for b in bindings} == {
        ("kube-system", "coredns-udp"),
        ("team-a", "web"),
    }
    assert snapshot.target_group_api_version == "elbv2.k8s.aws/v1beta1"
    first = bindings[0]
    assert list(first)[:2] == ["apiVersion", "kind"]
    assert first["apiVersion"] == "elbv2.k8s.aws/v1beta1"
    assert first["spec"]["targetGroupARN"].startswith("arn:aws:elasticloadbalancing:")
    assert {"uid", "resourceVersion", "creationTimestamp"} <= set(first["metadata"])
    (coredns,) = kinds(snapshot, "Pod")
    assert coredns["apiVersion"] == "v1"
    assert coredns["status"]["podIP"] == "10.0.1.15"  # camelCase, as kubectl prints it
    assert snapshot.api_calls == {
        "targetgroupbindings": 1,
        "services": 1,
        "endpointslices": 1,
        "pods": 1,
        "nodes": 1,
        "events": 1,
    }
    json.dumps(snapshot.objects)  # plain data only


@pytest.mark.slow
def test_falls_back_to_v1alpha1_when_v1beta1_is_not_served():
    with KubeEmulator(served_tgb_versions=()) as kube:
        kube.apply(tgb("legacy", "default", version="v1alpha1"))

        snapshot = collect_cluster(KubeConnection(api_url=kube.url))

    (binding,) = kinds(snapshot, "TargetGroupBinding")
    assert binding["apiVersion"] == "elbv2.k8s.aws/v1alpha1"
    assert snapshot.target_group_api_version == "elbv2.k8s.aws/v1alpha1"
    assert snapshot.api_calls["targetgroupbindings"] == 2  # the v1beta1 404, then v1alpha1


@pytest.mark.slow
def test_no_binding_crd_at_all_is_a_configuration_error():
    with (
        KubeEmulator(served_tgb_versions=()) as kube,
        pytest.raises(KubeError, match="TargetGroupBinding CRD"),
    ):
        collect_cluster(KubeConnection(api_url=kube.url))


@pytest.mark.slow
def test_service_with_tcp_and_udp_ports_of_the_same_number_is_kept_whole(kube):
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "coredns-external", "namespace": "kube-system"},
            "spec": {
                "selector": {"k8s-app": "kube-dns"},
                "ports": [
                    {"name": "dns-udp", "protocol": "UDP", "port": 53, "targetPort": 53},
                    {"name": "dns-tcp", "protocol": "TCP", "port": 53, "targetPort": 53},
                ],
            },
        }
    )

    (service,) = kinds(collect_cluster(KubeConnection(api_url=kube.url)), "Service")

    assert [(p["protocol"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [
        ("UDP", 53, 53),
        ("TCP", 53, 53),
    ]


@pytest.mark.slow
def test_endpointslice_keeps_not_ready_endpoints(kube):
    kube.apply(
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "coredns-external-abcde",
                "namespace": "kube-system",
                "labels": {"kubernetes.io/service-name": "coredns-external"},
            },
            "addressType": "IPv4",
            "ports": [{"name": "dns-udp", "protocol": "UDP", "port": 53}],
            "endpoints": [
                {"addresses": ["10.0.1.15"], "conditions": {"ready": True, "serving": True}},
                {
                    "addresses": ["10.0.2.25"],
                    "conditions": {"ready": False, "serving": False, "terminating": True},
                },
            ],
        }
    )

    (eps,) = kinds(collect_cluster(KubeConnection(api_url=kube.url)), "EndpointSlice")

    assert eps["apiVersion"] == "discovery.k8s.io/v1"
    assert [e["conditions"]["ready"] for e in eps["endpoints"]] == [True, False]
    assert eps["endpoints"][1]["conditions"]["terminating"] is True


@pytest.mark.slow
def test_events_are_filtered_to_target_group_bindings(kube):
    # kmock ignores fieldSelector, like some proxies: the collector must filter on its side too.
    kube.apply(
        [
            event("tgb-event", "TargetGroupBinding", "coredns-udp"),
            event("pod-event", "Pod", "coredns-1", reason="BackOff"),
        ]
    )

    events = kinds(collect_cluster(KubeConnection(api_url=kube.url)), "Event")

    assert [e["metadata"]["name"] for e in events] == ["tgb-event"]
    assert events[0]["reason"] == "FailedNetworkReconcile"


@pytest.mark.slow
def test_lists_are_paginated_until_the_last_page(kube):
    kube.apply([pod(f"pod-{i}", ip=f"10.0.1.{i + 20}") for i in range(7)])

    snapshot = collect_cluster(KubeConnection(api_url=kube.url), page_size=3)

    assert len(kinds(snapshot, "Pod")) == 7
    assert snapshot.api_calls["pods"] == 3  # 3 + 3 + 1


@pytest.mark.slow
def test_patch_and_delete_through_the_emulator(kube):
    kube.apply(tgb("coredns-udp", "kube-system"))
    kube.patch(
        "elbv2.k8s.aws/v1beta1",
        "TargetGroupBinding",
        "coredns-udp",
        "kube-system",
        {
            "spec": {
                "networking": {"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/16"}}], "ports": []}]}
            }
        },
    )
    (binding,) = kinds(collect_cluster(KubeConnection(api_url=kube.url)), "TargetGroupBinding")
    assert binding["spec"]["networking"]["ingress"][0]["from"][0]["ipBlock"]["cidr"] == "10.0.0.0/16"
    assert binding["spec"]["serviceRef"]["name"] == "coredns-external"

    kube.delete("elbv2.k8s.aws/v1beta1", "TargetGroupBinding", "coredns-udp", "kube-system")
    assert kinds(collect_cluster(KubeConnection(api_url=kube.url)), "TargetGroupBinding") == []


@pytest.mark.slow
def test_kubeconfig_with_context_reaches_the_cluster(kube, tmp_path):
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "demo", "cluster": {"server": kube.url}}],
                "users": [{"name": "poller", "user": {"token": "secret"}}],
                "contexts": [
                    {"name": "other", "context": {"cluster": "demo", "user": "poller"}},
                    {"name": "demo", "context": {"cluster": "demo", "user": "poller"}},
                ],
                "current-context": "other",
            }
        )
    )
    kube.apply(tgb("coredns-udp", "kube-system"))

    snapshot = collect_cluster(KubeConnection(kubeconfig_path=str(kubeconfig), context="demo"))

    assert len(kinds(snapshot, "TargetGroupBinding")) == 1


def test_unreadable_kubeconfig_names_the_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(KubeError, match="nope.yaml"):
        collect_cluster(KubeConnection(kubeconfig_path=str(missing)))
    garbage = tmp_path / "garbage.yaml"
    garbage.write_text("clusters: [\n")
    with pytest.raises(KubeError, match="garbage.yaml"):
        collect_cluster(KubeConnection(kubeconfig_path=str(garbage)))


def test_unreachable_url_is_transient():
    started = time.monotonic()
    with pytest.raises(KubeUnavailable) as caught:
        collect_cluster(KubeConnection(api_url="http://127.0.0.1:9"), request_timeout=2)
    assert isinstance(caught.value, TransientSourceError)
    assert not isinstance(caught.value, KubeError)
    assert time.monotonic() - started < 10


def test_missing_token_file_names_the_file(tmp_path):
    token_file = tmp_path / "token"
    with pytest.raises(KubeError, match=str(token_file)):
        collect_cluster(KubeConnection(api_url="http://127.0.0.1:9", token_file=str(token_file)))


def test_connection_needs_exactly_one_mode():
    with pytest.raises(ValueError):
        KubeConnection()
    with pytest.raises(ValueError):
        KubeConnection(kubeconfig_path="/x", api_url="http://y")


# -- wire contract (pytest-httpserver) ----------------------------------------------------------------
TGB_PATH = "/apis/elbv2.k8s.aws/v1beta1/targetgroupbindings"
LIST_PATHS = {
    "services": "/api/v1/services",
    "endpointslices": "/apis/discovery.k8s.io/v1/endpointslices",
    "pods": "/api/v1/pods",
    "nodes": "/api/v1/nodes",
}
EVENTS_PATH = "/api/v1/events"


def empty_list(kind: str = "List") -> dict:
    return {"apiVersion": "v1", "kind": kind, "metadata": {"resourceVersion": "1"}, "items": []}


def serve_empty_lists(httpserver, *, skip: tuple[str, ...] = ()) -> None:
    for name, path in LIST_PATHS.items():
        if name not in skip:
            httpserver.expect_request(path, method="GET", query_string={"limit": "500"}).respond_with_json(
                empty_list()
            )
    if "events" not in skip:
        httpserver.expect_request(
            EVENTS_PATH,
            method="GET",
            query_string={"limit": "500", "fieldSelector": "involvedObject.kind=TargetGroupBinding"},
        ).respond_with_json(empty_list())
    if "targetgroupbindings" not in skip:
        httpserver.expect_request(TGB_PATH, method="GET", query_string={"limit": "500"}).respond_with_json(
            empty_list()
        )


def test_contract_paths_limit_field_selector_and_bearer_token(httpserver, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("s3cr3t\n")
    serve_empty_lists(httpserver)

    snapshot = collect_cluster(KubeConnection(api_url=httpserver.url_for("/"), token_file=str(token_file)))

    assert snapshot.objects == []
    paths = [(req.path, dict(req.args)) for req, _ in httpserver.log]
    assert paths == [
        (TGB_PATH, {"limit": "500"}),
        (LIST_PATHS["services"], {"limit": "500"}),
        (LIST_PATHS["endpointslices"], {"limit": "500"}),
        (LIST_PATHS["pods"], {"limit": "500"}),
        (LIST_PATHS["nodes"], {"limit": "500"}),
        (EVENTS_PATH, {"limit": "500", "fieldSelector": "involvedObject.kind=TargetGroupBinding"}),
    ]
    assert all(req.headers["Authorization"] == "Bearer s3cr3t" for req, _ in httpserver.log)


def test_gone_continue_token_restarts_the_list_once(httpserver):
    pod_a, pod_b = pod("a"), pod("b")
    del pod_a["apiVersion"], pod_a["kind"], pod_b["apiVersion"], pod_b["kind"]  # as a real list sends
    serve_empty_lists(httpserver, skip=("pods",))
    first_page = {"kind": "PodList", "apiVersion": "v1", "metadata": {"continue": "tok1"}, "items": [pod_a]}
    gone = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Expired", "code": 410}
    last_page = {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": [pod_b]}
    httpserver.expect_request("/api/v1/pods", query_string={"limit": "500"}).respond_with_json(first_page)
    httpserver.expect_oneshot_request(
        "/api/v1/pods", query_string={"limit": "500", "continue": "tok1"}
    ).respond_with_json(gone, status=410)
    httpserver.expect_request(
        "/api/v1/pods", query_string={"limit": "500", "continue": "tok1"}
    ).respond_with_json(last_page)

    snapshot = collect_cluster(KubeConnection(api_url=httpserver.url_for("/")))

    pods = kinds(snapshot, "Pod")
    assert [p["metadata"]["name"] for p in pods] == ["a", "b"]  # no duplicate from the first attempt
    assert pods[0]["apiVersion"] == "v1"
    assert snapshot.api_calls["pods"] == 4


def test_gone_twice_is_transient(httpserver):
    serve_empty_lists(httpserver, skip=("pods",))
    httpserver.expect_request("/api/v1/pods").respond_with_json({"kind": "Status", "code": 410}, status=410)

    with pytest.raises(KubeUnavailable, match="410"):
        collect_cluster(KubeConnection(api_url=httpserver.url_for("/")))


@pytest.mark.parametrize("status", [429, 500, 503])
def test_overload_and_server_errors_are_transient(httpserver, status):
    httpserver.expect_request(TGB_PATH).respond_with_json({"kind": "Status", "code": status}, status=status)

    with pytest.raises(KubeUnavailable, match=str(status)):
        collect_cluster(KubeConnection(api_url=httpserver.url_for("/")))


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failures_are_configuration_errors_naming_the_status(httpserver, status):
    serve_empty_lists(httpserver, skip=("services",))
    httpserver.expect_request("/api/v1/services").respond_with_json(
        {"kind": "Status", "code": status, "message": "services is forbidden"}, status=status
    )

    with pytest.raises(KubeError, match=f"{status}.*services"):
        collect_cluster(KubeConnection(api_url=httpserver.url_for("/")))
