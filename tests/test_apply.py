"""Applying a fix to a cluster: permission, dry-run diff, conflict, success, audit rows.

Against the Kubernetes emulator (kmock) over HTTP with the official client, as in production.
kmock ignores `dryRun=All` (it would persist the patch), so `bindings.apply` detects that the
server does not declare dry-run support and computes the diff itself; the real server-side
dry-run request and a server-side 409 are checked with pytest-httpserver, which answers exactly
as an API server does.
"""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth.models import Permission
from kubernetes import client as k8s
from werkzeug import Response

from bindings import apply
from bindings import models as m
from bindings.analysis.bundle import load_bundle
from bindings.emulators import KubeEmulator
from tests.conftest import SCENARIOS
from tests.test_pages import load_scenario

pytestmark = pytest.mark.django_db

TGB_PATH = "/apis/elbv2.k8s.aws/v1beta1/namespaces/kube-system/targetgroupbindings/coredns-udp"


@pytest.fixture(scope="module")
def kube():
    with KubeEmulator() as emulator:
        yield emulator


@pytest.fixture
def bob(django_user_model):
    """Bob is an on-call operator: he may poll clusters and apply fixes."""
    user = django_user_model.objects.create_user("bob", "bob@example.invalid", "bob-password-1")
    user.user_permissions.add(
        Permission.objects.get(codename="change_cluster", content_type__app_label="bindings"),
        Permission.objects.get(codename="apply_fix", content_type__app_label="bindings"),
    )
    return user


def _tgb_objects() -> list[dict]:
    bundle = load_bundle(SCENARIOS / "dns-udp-blocked")
    out = []
    for obj in bundle.kube_objects:
        for item in obj.get("items", [obj]) if obj.get("kind") == "List" else [obj]:
            if item.get("kind") == "TargetGroupBinding":
                out.append(item)
    return out


@pytest.fixture
def live(kube, cluster):
    """The cluster points at the emulator, which holds the scenario's TGBs; apply is allowed."""
    kube.apply(_tgb_objects())
    m.Cluster.objects.filter(pk=cluster.pk).update(api_url=kube.url, allow_apply_fix=True)
    cluster.refresh_from_db()
    bindings = load_scenario(cluster)
    yield bindings["coredns-udp"]
    kube.delete("elbv2.k8s.aws/v1beta1", "TargetGroupBinding", "coredns-udp", "kube-system")
    kube.delete("elbv2.k8s.aws/v1beta1", "TargetGroupBinding", "coredns-tcp", "kube-system")


def _live_tgb(kube: KubeEmulator) -> dict:
    with kube.api_client() as api_client:
        return k8s.CustomObjectsApi(api_client).get_namespaced_custom_object(
            "elbv2.k8s.aws", "v1beta1", "kube-system", "targetgroupbindings", "coredns-udp"
        )


def _fix(binding: m.TargetGroupBinding) -> dict:
    return m.BindingResult.objects.get(binding=binding).data["fix"]


def _binding(binding: m.TargetGroupBinding) -> m.TargetGroupBinding:
    return m.TargetGroupBinding.objects.select_related("cluster", "cluster__aws_account").get(pk=binding.pk)


def test_it_denies_a_user_without_the_permission_and_records_it(live, alice, kube):
    outcome = apply.fix_dry_run(binding=_binding(live), user=alice, fix=_fix(live))

    assert outcome.status == "denied"
    assert "bindings.apply_fix" in outcome.message
    audit = m.FixApplication.objects.get()
    assert (audit.status, audit.user, audit.binding_id, audit.name) == (
        "denied",
        alice,
        live.pk,
        "coredns-udp",
    )
    assert "networking" not in _live_tgb(kube)["spec"]


def test_it_denies_everyone_when_the_cluster_does_not_allow_applying(live, bob, kube):
    m.Cluster.objects.filter(pk=live.cluster_id).update(allow_apply_fix=False)

    outcome = apply.fix_apply(binding=_binding(live), user=bob, fix=_fix(live), resource_version="1")

    assert outcome.status == "denied" and "switched off" in outcome.message
    assert m.FixApplication.objects.get().status == "denied"
    assert "networking" not in _live_tgb(kube)["spec"]


def test_it_shows_a_computed_diff_when_the_server_cannot_dry_run(live, bob, kube):
    before = _live_tgb(kube)

    outcome = apply.fix_dry_run(binding=_binding(live), user=bob, fix=_fix(live))

    assert outcome.status == "dry_run"
    assert outcome.server_dry_run is False
    assert "does not support server-side dry-run" in outcome.message
    added = [line.strip() for line in outcome.diff.splitlines() if line.startswith("+")]
    assert "+networking:" in outcome.diff and "protocol: UDP" in [a.lstrip("+- ").strip() for a in added]
    assert "-# no spec.networking" in outcome.diff
    assert outcome.resource_version == before["metadata"]["resourceVersion"]
    # Nothing was sent that could change the object: kmock would have persisted a "dry-run".
    assert _live_tgb(kube) == before
    audit = m.FixApplication.objects.get()
    assert (audit.status, audit.user, audit.diff) == ("dry_run", bob, outcome.diff)
    assert audit.manifest["spec"]["networking"]["ingress"][0]["ports"][0] == {"protocol": "UDP", "port": 53}


def test_it_applies_after_the_dry_run(live, bob, kube):
    binding = _binding(live)
    preview = apply.fix_dry_run(binding=binding, user=bob, fix=_fix(live))

    outcome = apply.fix_apply(
        binding=binding, user=bob, fix=_fix(live), resource_version=preview.resource_version
    )

    assert outcome.status == "applied", outcome.message
    networking = _live_tgb(kube)["spec"]["networking"]
    assert networking["ingress"][0]["from"] == [{"ipBlock": {"cidr": "10.0.0.0/16"}}]
    assert {"protocol": "UDP", "port": 53} in networking["ingress"][0]["ports"]
    assert [a.status for a in m.FixApplication.objects.order_by("pk")] == ["dry_run", "applied"]
    applied = m.FixApplication.objects.get(status="applied")
    assert applied.user == bob and "+networking:" in applied.diff and "binding-health" in applied.message
    # Once applied, a new dry-run has nothing left to change.
    again = apply.fix_dry_run(binding=binding, user=bob, fix=_fix(live))
    assert again.diff == "" and "changes nothing" in again.message


def test_it_stops_with_a_conflict_when_the_binding_changed_since_the_dry_run(live, bob, kube):
    binding = _binding(live)
    preview = apply.fix_dry_run(binding=binding, user=bob, fix=_fix(live))
    someone_else = {
        "ingress": [
            {"from": [{"ipBlock": {"cidr": "192.0.2.0/24"}}], "ports": [{"protocol": "TCP", "port": 53}]}
        ]
    }
    kube.patch(
        "elbv2.k8s.aws/v1beta1",
        "TargetGroupBinding",
        "coredns-udp",
        "kube-system",
        {"spec": {"networking": someone_else}},
    )

    outcome = apply.fix_apply(
        binding=binding, user=bob, fix=_fix(live), resource_version=preview.resource_version
    )

    assert outcome.status == "conflict"
    assert "changed since the dry-run" in outcome.message
    assert _live_tgb(kube)["spec"]["networking"] == someone_else  # left as the other writer made it
    assert m.FixApplication.objects.order_by("pk").last().status == "conflict"


def test_it_records_a_failure_when_the_cluster_is_unreachable(live, bob):
    m.Cluster.objects.filter(pk=live.cluster_id).update(api_url="http://127.0.0.1:9")

    outcome = apply.fix_dry_run(binding=_binding(live), user=bob, fix=_fix(live))

    assert outcome.status == "failed" and "Cannot reach cluster demo" in outcome.message
    assert m.FixApplication.objects.get().status == "failed"


def test_it_refuses_a_binding_without_an_automatic_fix(live, bob):
    outcome = apply.fix_dry_run(binding=_binding(live), user=bob, fix=None)

    assert outcome.status == "failed" and "no automatic fix" in outcome.message


def test_it_patches_only_spec_networking(live):
    fix = _fix(live)
    fix["patch"]["body"]["metadata"] = {"labels": {"evil": "yes"}}
    fix["patch"]["body"]["spec"]["targetGroupARN"] = "arn:other"

    body = apply.networking_patch(fix)

    assert list(body) == ["spec"] and list(body["spec"]) == ["networking"]


def test_it_merges_like_a_json_merge_patch():
    assert apply.merge_patch({"a": 1, "b": {"c": 2, "d": 3}}, {"b": {"c": None, "e": 4}, "f": [1]}) == {
        "a": 1,
        "b": {"d": 3, "e": 4},
        "f": [1],
    }


# --- the whole flow through the views ----------------------------------------------------------------


def test_it_runs_the_dry_run_then_the_apply_from_the_fix_panel(client, live, bob, kube):
    client.force_login(bob)

    preview = client.post(f"/bindings/{live.pk}/fix/dry-run/", HTTP_HX_REQUEST="true")

    html = preview.content.decode()
    assert preview.status_code == 200
    assert "does not support server-side dry-run" in html
    assert re.search(r'<span class="d-add">\+\s+(- )?protocol: UDP</span>', html)
    rv = _live_tgb(kube)["metadata"]["resourceVersion"]
    assert f'name="resource_version" value="{rv}"' in html
    assert f'hx-post="/bindings/{live.pk}/fix/apply/"' in html

    done = client.post(f"/bindings/{live.pk}/fix/apply/", {"resource_version": rv}, HTTP_HX_REQUEST="true")

    assert done.status_code == 200 and "✓ Applied" in done.content.decode()
    assert "networking" in _live_tgb(kube)["spec"]
    assert [a.status for a in m.FixApplication.objects.order_by("pk")] == ["dry_run", "applied"]


# --- a real API server's answers (pytest-httpserver) -------------------------------------------------


def _openapi_with_dry_run() -> dict:
    return {
        "paths": {
            "/apis/elbv2.k8s.aws/v1beta1/namespaces/{namespace}/targetgroupbindings/{name}": {
                "patch": {
                    "parameters": [{"name": "dryRun", "in": "query"}, {"name": "fieldManager", "in": "query"}]
                }
            }
        }
    }


def _live_object(rv: str = "42", networking: dict | None = None) -> dict:
    obj = {
        "apiVersion": "elbv2.k8s.aws/v1beta1",
        "kind": "TargetGroupBinding",
        "metadata": {"name": "coredns-udp", "namespace": "kube-system", "resourceVersion": rv},
        "spec": {"serviceRef": {"name": "coredns-external", "port": "dns-udp"}, "targetGroupARN": "arn:tg"},
    }
    if networking is not None:
        obj["spec"]["networking"] = networking
    return obj


@pytest.fixture
def api_server_binding(httpserver, cluster):
    m.Cluster.objects.filter(pk=cluster.pk).update(
        api_url=httpserver.url_for("").rstrip("/"), allow_apply_fix=True
    )
    cluster.refresh_from_db()
    return load_scenario(cluster)["coredns-udp"]


def test_it_sends_a_server_side_dry_run_when_the_server_supports_it(httpserver, api_server_binding, bob):
    seen = {}

    def dry_run_answer(request):
        seen["content_type"] = request.headers.get("Content-Type")
        seen["body"] = json.loads(request.data)
        merged = _live_object(networking=seen["body"]["spec"]["networking"])
        return Response(json.dumps(merged), content_type="application/json")

    httpserver.expect_request("/openapi/v3/apis/elbv2.k8s.aws/v1beta1").respond_with_json(
        _openapi_with_dry_run()
    )
    httpserver.expect_request(TGB_PATH, method="GET").respond_with_json(_live_object())
    httpserver.expect_request(
        TGB_PATH, method="PATCH", query_string={"dryRun": "All", "fieldManager": "binding-health"}
    ).respond_with_handler(dry_run_answer)

    outcome = apply.fix_dry_run(binding=_binding(api_server_binding), user=bob, fix=_fix(api_server_binding))

    assert outcome.status == "dry_run", outcome.message
    assert outcome.server_dry_run is True
    assert "Server-side dry-run (dryRun=All) accepted" in outcome.message
    assert seen["content_type"] == "application/merge-patch+json"
    assert seen["body"]["metadata"] == {"resourceVersion": "42"}
    assert list(seen["body"]["spec"]) == ["networking"]
    assert re.search(r"^\+\s+(- )?protocol: UDP$", outcome.diff, re.M)
    httpserver.check_assertions()


def test_it_records_a_conflict_when_the_server_answers_409(httpserver, api_server_binding, bob):
    status = {
        "kind": "Status",
        "status": "Failure",
        "reason": "Conflict",
        "code": 409,
        "message": "the object has been modified; please apply your changes to the latest version",
    }
    httpserver.expect_request(TGB_PATH, method="GET").respond_with_json(_live_object(rv="42"))
    httpserver.expect_request(
        TGB_PATH, method="PATCH", query_string={"fieldManager": "binding-health"}
    ).respond_with_json(status, status=409)

    outcome = apply.fix_apply(
        binding=_binding(api_server_binding), user=bob, fix=_fix(api_server_binding), resource_version="42"
    )

    assert outcome.status == "conflict"
    assert "the object has been modified" in outcome.message
    audit = m.FixApplication.objects.get()
    assert (audit.status, audit.user) == ("conflict", bob)
