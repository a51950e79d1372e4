"""Applying a fix to a cluster: permission, review (dry-run), apply of exactly what was reviewed,
refusals, conflict, success, audit rows.

Against the Kubernetes emulator (kmock) over HTTP with the official client, as in production.
kmock ignores `dryRun=All` (it would persist the patch), so `bindings.services.apply` detects that the
server does not declare dry-run support and computes the diff itself; the real server-side
dry-run request and a server-side 409 are checked with pytest-httpserver, which answers exactly
as an API server does.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.utils import timezone
from kubernetes import client as k8s
from werkzeug import Response

from bindings import models as m
from bindings.analysis.bundle import load_bundle
from bindings.demo.emulators import KubeEmulator
from bindings.services import apply, polling
from tests.factories import SCENARIOS, attach_fixes, load_scenario

pytestmark = pytest.mark.django_db

TGB_PATH = "/apis/elbv2.k8s.aws/v1beta1/namespaces/kube-system/targetgroupbindings/coredns-udp"


@pytest.fixture(scope="module")
def kube():
    with KubeEmulator() as emulator:
        yield emulator


def _operator(django_user_model, name: str):
    user = django_user_model.objects.create_user(name, f"{name}@example.invalid", f"{name}-password-1")
    user.user_permissions.add(
        Permission.objects.get(codename="change_cluster", content_type__app_label="bindings"),
        Permission.objects.get(codename="apply_fix", content_type__app_label="bindings"),
    )
    return user


@pytest.fixture
def bob(django_user_model):
    """Bob is an on-call operator: he may poll clusters and apply fixes."""
    return _operator(django_user_model, "bob")


@pytest.fixture
def carol(django_user_model):
    """Carol is another operator with the same rights as Bob."""
    return _operator(django_user_model, "carol")


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


def _review(binding: m.TargetGroupBinding, user) -> apply.Outcome:
    outcome = apply.fix_dry_run(binding=_binding(binding), user=user)
    assert outcome.status == "dry_run", outcome.message
    return outcome


def _set_client_networks(cluster: m.Cluster, cidrs: list[str]) -> None:
    """An operator edits the cluster's client networks; the next analysis regenerates the fixes."""
    m.ClientNetwork.objects.filter(cluster=cluster).delete()
    for cidr in cidrs:
        m.ClientNetwork.objects.create(cluster=cluster, cidr=cidr)
    cluster.refresh_from_db()
    polling.cluster_analyze(cluster=cluster, now=timezone.now())
    attach_fixes(cluster)


@pytest.mark.slow
def test_it_denies_a_user_without_the_permission_and_records_it(live, alice, kube):
    outcome = apply.fix_dry_run(binding=_binding(live), user=alice)

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


@pytest.mark.slow
def test_it_denies_everyone_when_the_cluster_does_not_allow_applying(live, bob, kube):
    review = _review(live, bob)
    m.Cluster.objects.filter(pk=live.cluster_id).update(allow_apply_fix=False)

    outcome = apply.apply_reviewed(review.dry_run_id, bob)

    assert outcome.status == "denied" and "switched off" in outcome.message
    assert outcome.audit.reviewed_id == review.dry_run_id
    assert "networking" not in _live_tgb(kube)["spec"]


@pytest.mark.slow
def test_it_records_the_review_and_shows_a_computed_diff_when_the_server_cannot_dry_run(live, bob, kube):
    before = _live_tgb(kube)

    outcome = apply.fix_dry_run(binding=_binding(live), user=bob)

    assert outcome.status == "dry_run"
    assert outcome.server_dry_run is False
    assert "does not support server-side dry-run" in outcome.message
    added = [line.strip() for line in outcome.diff.splitlines() if line.startswith("+")]
    assert "+networking:" in outcome.diff and "protocol: UDP" in [a.lstrip("+- ").strip() for a in added]
    assert "-# no spec.networking" in outcome.diff
    assert outcome.resource_version == before["metadata"]["resourceVersion"]
    # Nothing was sent that could change the object: kmock would have persisted a "dry-run".
    assert _live_tgb(kube) == before
    # The review: who, when, which object (uid + resourceVersion), the exact patch and its digest.
    audit = m.FixApplication.objects.get()
    assert outcome.dry_run_id == audit.pk
    assert (audit.status, audit.user, audit.diff) == ("dry_run", bob, outcome.diff)
    assert (audit.uid, audit.resource_version) == (before["metadata"]["uid"], outcome.resource_version)
    assert timezone.now() - audit.at < timedelta(seconds=30)
    assert audit.patch_sha256 == hashlib.sha256(audit.patch.encode()).hexdigest()
    body = json.loads(audit.patch)
    assert body == {
        "spec": {"networking": _fix(live)["patch"]["body"]["spec"]["networking"]},
        "metadata": {"resourceVersion": outcome.resource_version},
    }
    assert audit.manifest["spec"]["networking"]["ingress"][0]["ports"][0] == {"protocol": "UDP", "port": 53}


@pytest.mark.slow
def test_it_applies_the_reviewed_patch(live, bob, kube):
    review = _review(live, bob)

    outcome = apply.apply_reviewed(review.dry_run_id, bob)

    assert outcome.status == "applied", outcome.message
    networking = _live_tgb(kube)["spec"]["networking"]
    assert networking["ingress"][0]["from"] == [{"ipBlock": {"cidr": "10.0.0.0/16"}}]
    assert {"protocol": "UDP", "port": 53} in networking["ingress"][0]["ports"]
    assert [a.status for a in m.FixApplication.objects.order_by("pk")] == ["dry_run", "applied"]
    applied = m.FixApplication.objects.get(status="applied")
    reviewed = m.FixApplication.objects.get(status="dry_run")
    # The audit says who reviewed what, and what was sent: the same text and digest.
    assert applied.user == bob and applied.reviewed == reviewed
    assert (applied.patch, applied.patch_sha256) == (reviewed.patch, reviewed.patch_sha256)
    assert reviewed.used_at is not None
    assert "+networking:" in applied.diff and "binding-health" in applied.message
    assert f"dry-run #{reviewed.pk}" in applied.message
    # Once applied, a new dry-run has nothing left to change.
    again = apply.fix_dry_run(binding=_binding(live), user=bob)
    assert again.diff == "" and "changes nothing" in again.message


@pytest.mark.slow
@pytest.mark.parametrize(
    "cidrs",
    [
        ["0.0.0.0/0"],  # wider: everyone
        ["0.0.0.0/0", "::/0"],  # wider, both families
        ["10.0.0.0/8"],  # wider, still private
        ["10.0.5.0/24"],  # narrower: still not what was reviewed
    ],
    ids=["everyone-v4", "everyone-dual", "wider-private", "narrower"],
)
def test_it_refuses_when_the_client_networks_changed_since_the_review(live, bob, kube, cidrs):
    """The regression of issue 15: a change of client networks between dry-run and apply once
    patched the wider rule (0.0.0.0/0) into the live TGB. Now apply never sends anything but the
    reviewed patch, and refuses because the current fix is no longer what was reviewed."""
    review = _review(live, bob)
    reviewed_body = json.loads(review.audit.patch)
    assert reviewed_body["spec"]["networking"]["ingress"][0]["from"] == [{"ipBlock": {"cidr": "10.0.0.0/16"}}]
    _set_client_networks(live.cluster, cidrs)
    current = _fix(live)["patch"]["body"]["spec"]["networking"]
    assert current != reviewed_body["spec"]["networking"]  # the analysis now proposes another rule

    outcome = apply.apply_reviewed(review.dry_run_id, bob)

    assert outcome.status == "refused"
    assert "changed since dry-run" in outcome.message and "Run the dry-run again" in outcome.message
    assert "networking" not in _live_tgb(kube)["spec"]  # nothing was sent
    assert outcome.audit.reviewed_id == review.dry_run_id and outcome.audit.status == "refused"
    assert m.FixApplication.objects.get(pk=review.dry_run_id).used_at is None
    # A new review of the current fix is what may be applied, and it sends that fix.
    fresh = _review(live, bob)
    done = apply.apply_reviewed(fresh.dry_run_id, bob)
    assert done.status == "applied", done.message
    assert _live_tgb(kube)["spec"]["networking"] == current


@pytest.mark.slow
def test_it_sends_the_reviewed_text_even_if_the_stored_fix_is_rewritten_alike(live, bob, kube):
    """Apply never rebuilds the patch from the stored fix: extra parts of a new fix (metadata,
    other spec fields) never reach the cluster, only the reviewed networking."""
    review = _review(live, bob)
    row = m.BindingResult.objects.get(binding=live)
    row.data["fix"]["patch"]["body"]["metadata"] = {"labels": {"evil": "yes"}}
    row.data["fix"]["explanation"] = "rewritten"
    row.save(update_fields=["data"])

    outcome = apply.apply_reviewed(review.dry_run_id, bob)

    assert outcome.status == "applied", outcome.message
    assert "labels" not in _live_tgb(kube)["metadata"] or "evil" not in _live_tgb(kube)["metadata"]["labels"]
    assert outcome.audit.patch == review.audit.patch


@pytest.mark.slow
def test_it_refuses_without_a_usable_dry_run(live, bob, carol, alice, kube, settings):
    review = _review(live, bob)
    failed = apply.fix_dry_run(binding=_binding(live), user=alice)  # denied: not a review
    cases = {
        "none": (None, bob, "needs the id of a dry-run"),
        "garbage": ("1; DROP TABLE", bob, "needs the id of a dry-run"),
        "unknown": (review.dry_run_id + 1000, bob, "needs the id of a dry-run"),
        "not-a-dry-run": (failed.audit.pk, bob, "needs the id of a dry-run"),
        "other-user": (review.dry_run_id, carol, "made by another user"),
    }
    for case, (dry_run_id, user, expected) in cases.items():
        outcome = apply.apply_reviewed(dry_run_id, user)
        assert outcome.status == "refused", case
        assert expected in outcome.message, (case, outcome.message)
        assert "nothing was applied" in outcome.message or "yourself" in outcome.message, case
        assert outcome.audit.user == user and outcome.audit.status == "refused", case
        assert outcome.audit.patch == "", case  # an audit row's patch is what was sent: nothing

    # Expired: the review window (BH_APPLY_REVIEW_SECONDS) has passed.
    settings.BH_APPLY_REVIEW_SECONDS = 60
    m.FixApplication.objects.filter(pk=review.dry_run_id).update(at=timezone.now() - timedelta(seconds=61))
    expired = apply.apply_reviewed(review.dry_run_id, bob)
    assert expired.status == "refused" and "older than the 60 s" in expired.message

    # Altered after the review: the recorded text no longer matches its digest.
    tampered = _review(live, bob)
    wide = tampered.audit.patch.replace("10.0.0.0/16", "0.0.0.0/0")
    m.FixApplication.objects.filter(pk=tampered.dry_run_id).update(patch=wide)
    outcome = apply.apply_reviewed(tampered.dry_run_id, bob)
    assert outcome.status == "refused" and "digest" in outcome.message
    garbled = _review(live, bob)
    m.FixApplication.objects.filter(pk=garbled.dry_run_id).update(patch="{not json")
    assert "digest" in apply.apply_reviewed(garbled.dry_run_id, bob).message

    assert "networking" not in _live_tgb(kube)["spec"]
    assert m.FixApplication.objects.filter(status="applied").count() == 0


@pytest.mark.slow
def test_it_applies_a_review_once(live, bob, kube):
    review = _review(live, bob)
    assert apply.apply_reviewed(review.dry_run_id, bob).status == "applied"

    again = apply.apply_reviewed(review.dry_run_id, bob)

    assert again.status == "refused" and "already applied" in again.message
    assert [a.status for a in m.FixApplication.objects.order_by("pk")] == ["dry_run", "applied", "refused"]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_tabs_applying_one_review_at_once_send_it_once(live, bob, kube):
    """Four tabs press Apply on the same review at the same moment (real threads, real PostgreSQL
    connections): the review is claimed with a compare-and-set, so exactly one sends it."""
    review = _review(live, bob)
    start = threading.Barrier(4)

    def press() -> str:
        try:
            start.wait()
            return apply.apply_reviewed(review.dry_run_id, bob).status
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = sorted(pool.map(lambda _: press(), range(4)))

    assert statuses == ["applied", "refused", "refused", "refused"]
    assert m.FixApplication.objects.filter(reviewed_id=review.dry_run_id, status="applied").count() == 1
    refusals = m.FixApplication.objects.filter(reviewed_id=review.dry_run_id, status="refused")
    assert all("already applied" in r.message for r in refusals)


@pytest.mark.slow
def test_it_stops_with_a_conflict_when_the_binding_changed_since_the_dry_run(live, bob, kube):
    review = _review(live, bob)
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

    outcome = apply.apply_reviewed(review.dry_run_id, bob)

    assert outcome.status == "conflict"
    assert "changed since dry-run" in outcome.message and "resourceVersion" in outcome.message
    assert _live_tgb(kube)["spec"]["networking"] == someone_else  # left as the other writer made it
    assert m.FixApplication.objects.order_by("pk").last().status == "conflict"


@pytest.mark.slow
def test_it_stops_with_a_conflict_when_the_binding_was_recreated(live, bob, kube):
    review = _review(live, bob)
    tgb = next(t for t in _tgb_objects() if t["metadata"]["name"] == "coredns-udp")
    kube.delete("elbv2.k8s.aws/v1beta1", "TargetGroupBinding", "coredns-udp", "kube-system")
    tgb["metadata"]["uid"] = "uid-recreated"
    tgb["metadata"].pop("resourceVersion", None)
    kube.apply([tgb])
    # kmock may hand out the old resourceVersion again; the uid still tells the objects apart.
    m.FixApplication.objects.filter(pk=review.dry_run_id).update(
        resource_version=_live_tgb(kube)["metadata"]["resourceVersion"]
    )

    outcome = apply.apply_reviewed(review.dry_run_id, bob)

    assert outcome.status == "conflict" and "uid" in outcome.message
    assert "networking" not in _live_tgb(kube)["spec"]


@pytest.mark.slow
def test_it_records_a_failure_when_the_cluster_is_unreachable(live, bob):
    m.Cluster.objects.filter(pk=live.cluster_id).update(api_url="http://127.0.0.1:9")

    outcome = apply.fix_dry_run(binding=_binding(live), user=bob)

    assert outcome.status == "failed" and "Cannot reach cluster demo" in outcome.message
    assert m.FixApplication.objects.get().status == "failed"


@pytest.mark.slow
def test_it_refuses_a_binding_without_an_automatic_fix(live, bob):
    row = m.BindingResult.objects.get(binding=live)
    row.data["fix"] = None
    row.save(update_fields=["data"])

    outcome = apply.fix_dry_run(binding=_binding(live), user=bob)

    assert outcome.status == "failed" and "no automatic fix" in outcome.message


@pytest.mark.slow
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


@pytest.mark.slow
def test_it_runs_the_dry_run_then_the_apply_from_the_fix_panel(client, live, bob, kube):
    client.force_login(bob)

    preview = client.post(f"/bindings/{live.pk}/fix/dry-run/", HTTP_HX_REQUEST="true")

    html = preview.content.decode()
    assert preview.status_code == 200
    assert "does not support server-side dry-run" in html
    assert re.search(r'<span class="d-add">\+\s+(- )?protocol: UDP</span>', html)
    review = m.FixApplication.objects.get(status="dry_run")
    assert f'name="dry_run" value="{review.pk}"' in html
    assert review.patch_sha256[:12] in html
    assert f'hx-post="/bindings/{live.pk}/fix/apply/"' in html

    done = client.post(f"/bindings/{live.pk}/fix/apply/", {"dry_run": review.pk}, HTTP_HX_REQUEST="true")

    assert done.status_code == 200 and "✓ Applied" in done.content.decode()
    assert "networking" in _live_tgb(kube)["spec"]
    assert [a.status for a in m.FixApplication.objects.order_by("pk")] == ["dry_run", "applied"]
    # The audit log on the panel names the review each apply used.
    audit_log = client.get(f"/bindings/{live.pk}/fix/").content.decode()
    assert f"of dry-run #{review.pk}" in audit_log


@pytest.mark.slow
def test_the_apply_button_refuses_without_a_review_or_with_another_bindings_review(client, live, bob, kube):
    client.force_login(bob)
    other = m.TargetGroupBinding.objects.get(cluster=live.cluster, name="coredns-tcp")
    review = _review(other, bob) if apply.stored_fix(other) else None

    bare = client.post(f"/bindings/{live.pk}/fix/apply/", {}, HTTP_HX_REQUEST="true")

    assert bare.status_code == 200 and "✗ Refused" in bare.content.decode()
    assert "needs the id of a dry-run" in bare.content.decode()
    if review is not None:
        crossed = client.post(f"/bindings/{live.pk}/fix/apply/", {"dry_run": review.dry_run_id})
        assert "is not a review of this binding" in crossed.content.decode()
    assert "networking" not in _live_tgb(kube)["spec"]
    assert m.FixApplication.objects.filter(status="refused", binding=live).exists()


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
        seen["raw"] = request.data
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

    outcome = apply.fix_dry_run(binding=_binding(api_server_binding), user=bob)

    assert outcome.status == "dry_run", outcome.message
    assert outcome.server_dry_run is True and outcome.audit.server_dry_run is True
    # The server validated the very text that the review recorded (and an apply would send).
    assert seen["raw"] == outcome.audit.patch.encode()
    assert "Server-side dry-run (dryRun=All) accepted" in outcome.message
    assert seen["content_type"] == "application/merge-patch+json"
    assert seen["body"]["metadata"] == {"resourceVersion": "42"}
    assert list(seen["body"]["spec"]) == ["networking"]
    assert re.search(r"^\+\s+(- )?protocol: UDP$", outcome.diff, re.M)
    httpserver.check_assertions()


def _serve_review(httpserver, *, uid: str = "uid-1", rv: str = "42") -> None:
    httpserver.expect_request("/openapi/v3/apis/elbv2.k8s.aws/v1beta1").respond_with_json({"paths": {}})
    live = _live_object(rv=rv)
    live["metadata"]["uid"] = uid
    httpserver.expect_request(TGB_PATH, method="GET").respond_with_json(live)


def test_it_sends_exactly_the_reviewed_bytes(httpserver, api_server_binding, bob):
    _serve_review(httpserver)
    review = apply.fix_dry_run(binding=_binding(api_server_binding), user=bob)
    assert review.status == "dry_run", review.message
    sent = []

    def patch_answer(request):
        sent.append(request.data)
        merged = _live_object(networking=json.loads(request.data)["spec"]["networking"])
        return Response(json.dumps(merged), content_type="application/json")

    httpserver.expect_request(
        TGB_PATH, method="PATCH", query_string={"fieldManager": "binding-health"}
    ).respond_with_handler(patch_answer)

    outcome = apply.apply_reviewed(review.dry_run_id, bob, binding=api_server_binding)

    assert outcome.status == "applied", outcome.message
    assert len(sent) == 1
    assert sent[0] == review.audit.patch.encode()  # byte for byte
    assert hashlib.sha256(sent[0]).hexdigest() == review.audit.patch_sha256 == outcome.audit.patch_sha256
    assert json.loads(sent[0])["metadata"] == {"resourceVersion": "42"}  # the server checks it too


def test_it_records_a_conflict_when_the_server_answers_409(httpserver, api_server_binding, bob):
    status = {
        "kind": "Status",
        "status": "Failure",
        "reason": "Conflict",
        "code": 409,
        "message": "the object has been modified; please apply your changes to the latest version",
    }
    _serve_review(httpserver)
    review = apply.fix_dry_run(binding=_binding(api_server_binding), user=bob)
    httpserver.expect_request(
        TGB_PATH, method="PATCH", query_string={"fieldManager": "binding-health"}
    ).respond_with_json(status, status=409)

    outcome = apply.apply_reviewed(review.dry_run_id, bob)

    assert outcome.status == "conflict"
    assert "the object has been modified" in outcome.message
    audit = outcome.audit
    assert (audit.status, audit.user, audit.reviewed_id) == ("conflict", bob, review.dry_run_id)
    assert audit.patch == review.audit.patch  # it was sent, and the audit says so
    # The patch went out: that review is used up, a retry needs a new dry-run.
    assert apply.apply_reviewed(review.dry_run_id, bob).status == "refused"
