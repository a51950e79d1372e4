"""Kubernetes Events on TargetGroupBindings, against the Kubernetes emulator over HTTP with the
official client (as in production); a 403 comes from a local HTTP receiver, since the emulator
has no RBAC."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from kubernetes import client as k8s

from bindings import models as m
from bindings import tasks
from bindings.demo.emulators import KubeEmulator
from bindings.services import kube_events
from tests.factories import KUBE, granted, load_docs, make_bindings

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def kube():
    with KubeEmulator() as emulator:
        yield emulator


@pytest.fixture
def live(kube, cluster):
    """The cluster points at the emulator and opted in; its bindings have live TGBs there."""
    m.Cluster.objects.filter(pk=cluster.pk).update(api_url=kube.url, emit_kube_events=True)
    cluster.refresh_from_db()
    # The emulator lives for the module while the database is rolled back per test, and SQLite hands
    # out the same primary keys again: names unique per test keep one test's Events out of another's.
    bindings = make_bindings(cluster, 3, prefix=f"ev{uuid.uuid4().hex[:8]}")
    kube.apply(
        [
            {
                "apiVersion": "elbv2.k8s.aws/v1beta1",
                "kind": "TargetGroupBinding",
                "metadata": {"name": b.name, "namespace": b.namespace, "uid": b.uid},
                "spec": {"targetGroupARN": b.target_group_arn, "targetType": "ip"},
            }
            for b in bindings
        ]
    )
    return bindings


def events_on(kube, binding):
    """What `kubectl describe targetgroupbinding` lists: Events whose involvedObject is the TGB."""
    with kube.api_client() as api_client:
        items = k8s.CoreV1Api(api_client).list_namespaced_event(binding.namespace).items
    return [
        e
        for e in items
        if e.involved_object.name == binding.name and e.involved_object.kind == "TargetGroupBinding"
    ]


def transition(binding, old, new, protocol="UDP", at=None):
    return m.VerdictTransition.objects.create(
        binding=binding, protocol=protocol, at=at or timezone.now(), old=old, new=new
    )


@pytest.mark.slow
def test_a_binding_turning_blocked_gets_one_warning_event_with_the_root_cause(live, kube):
    binding = live[0]
    m.Finding.objects.filter(binding=binding).delete()
    m.Finding.objects.create(
        binding=binding,
        code="UDP_NOT_ALLOWED",
        severity="critical",
        protocol="UDP",
        message="no security group rule admits UDP 53 from 10.0.0.0/16",
    )
    t = transition(binding, "reachable", "blocked")

    first = tasks.emit_kube_events_task.apply().get()
    again = tasks.emit_kube_events_task.apply().get()

    assert first["created"] == 1 and again["created"] == 0
    [event] = events_on(kube, binding)
    assert event.reason == "BindingHealthBlocked" and event.type == "Warning"
    assert event.involved_object.uid == binding.uid
    assert event.involved_object.api_version == binding.api_version
    assert event.message.startswith("UDP: reachable → blocked. UDP_NOT_ALLOWED: no security group rule")
    assert event.source.component == "binding-health" and event.count == 1
    assert event.metadata.name == f"{binding.name}.bh-{t.pk}"
    t.refresh_from_db()
    assert t.kube_event == "created"


@pytest.mark.slow
def test_a_repeat_after_a_crash_still_makes_one_event(live, kube):
    """The worker died after creating the Event but before recording it: the name makes it 409."""
    binding = live[0]
    t = transition(binding, "reachable", "partial")
    tasks.emit_kube_events_task.apply()
    m.VerdictTransition.objects.filter(pk=t.pk).update(kube_event="")

    counts = tasks.emit_kube_events_task.apply().get()

    assert counts["created"] == 1 and counts["failed"] == 0
    assert len(events_on(kube, binding)) == 1


@pytest.mark.slow
def test_recovery_is_a_normal_event_and_other_moves_get_none(live, kube):
    recovered, to_unknown, first_seen = live
    start = timezone.now() - timedelta(minutes=3)
    transition(recovered, "blocked", "reachable", protocol="TCP")
    transition(to_unknown, "blocked", "unknown")
    transition(to_unknown, "reachable", "not_offered", protocol="TCP")
    transition(first_seen, "", "unknown", at=start)
    skipped = transition(first_seen, "unknown", "blocked", at=start + timedelta(minutes=1))

    counts = tasks.emit_kube_events_task.apply().get()

    assert counts["created"] == 1
    [event] = events_on(kube, recovered)
    assert (event.reason, event.type) == ("BindingHealthRecovered", "Normal")
    assert event.message == "TCP: blocked → reachable"
    assert events_on(kube, to_unknown) == [] and events_on(kube, first_seen) == []
    skipped.refresh_from_db()
    assert skipped.kube_event.startswith("skipped")


@pytest.mark.slow
def test_a_cluster_that_did_not_opt_in_gets_no_events(live, kube, cluster):
    m.Cluster.objects.filter(pk=cluster.pk).update(emit_kube_events=False)
    transition(live[0], "reachable", "blocked")

    assert tasks.emit_kube_events_task.apply().get()["created"] == 0
    assert events_on(kube, live[0]) == []


@pytest.mark.slow
def test_events_are_rate_limited_per_cluster_and_deferred_then_dropped_when_late(live, kube, settings):
    settings.BH_KUBE_EVENTS_PER_MINUTE = 2
    binding = live[1]
    now = timezone.now()
    for i in range(5):
        transition(
            binding,
            "reachable" if i % 2 == 0 else "blocked",
            "blocked" if i % 2 == 0 else "reachable",
            at=now - timedelta(seconds=50 - i),
        )

    counts = kube_events.emit_for_cluster(binding.cluster, now=now)

    assert counts == {"created": 2, "failed": 0, "deferred": 3, "skipped": 0}
    assert len(events_on(kube, binding)) == 2
    # Past MAX_DELAY the waiting ones are dropped, never sent late, never sent twice.
    later = kube_events.emit_for_cluster(
        binding.cluster, now=now + kube_events.MAX_DELAY + timedelta(minutes=1)
    )
    assert later["skipped"] == 3 and later["created"] == 0
    assert len(events_on(kube, binding)) == 2
    assert m.VerdictTransition.objects.filter(binding=binding, kube_event="").count() == 0


@pytest.mark.slow
def test_an_unreachable_cluster_fails_clearly_and_does_not_stop_another(
    live, kube, cluster, aws_account, caplog
):
    down = m.Cluster.objects.create(
        name="down",
        connection="url",
        api_url="http://127.0.0.1:9",
        aws_account=aws_account,
        emit_kube_events=True,
    )
    [lost, waiting] = make_bindings(down, 2, prefix="down")
    broken = transition(lost, "reachable", "blocked")
    later = transition(waiting, "reachable", "blocked")
    transition(live[2], "reachable", "blocked")

    with caplog.at_level(logging.WARNING):
        counts = tasks.emit_kube_events_task.apply().get()

    assert counts["created"] == 1 and counts["failed"] == 1
    assert len(events_on(kube, live[2])) == 1
    broken.refresh_from_db()
    assert broken.kube_event.startswith("failed: cannot reach the API server")
    assert "cluster down failed: cannot reach the API server" in caplog.text
    # One connection failure per cluster and beat: the next transition waits for the next beat.
    later.refresh_from_db()
    assert later.kube_event == ""


@pytest.mark.slow
def test_a_missing_token_file_is_named(live, cluster, tmp_path):
    m.Cluster.objects.filter(pk=cluster.pk).update(token_file=str(tmp_path / "absent-token"))
    t = transition(live[0], "reachable", "blocked")

    tasks.emit_kube_events_task.apply()

    t.refresh_from_db()
    # The credential check names the cluster, the field and the file.
    assert t.kube_event.startswith("failed: cluster 'demo' token_file") and "absent-token" in t.kube_event


def test_missing_rbac_says_which_component_to_add(httpserver, cluster, client, admin_user):
    """An API server that forbids `create events` (the optional RBAC is not installed)."""
    m.Cluster.objects.filter(pk=cluster.pk).update(api_url=httpserver.url_for(""), emit_kube_events=True)
    [binding] = make_bindings(cluster, 1, prefix="rbac")
    t = transition(binding, "reachable", "blocked")
    forbidden = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "reason": "Forbidden",
        "code": 403,
        "message": 'events is forbidden: User "system:serviceaccount:binding-health:binding-health" '
        "cannot create resource",
    }
    httpserver.expect_request(
        f"/api/v1/namespaces/{binding.namespace}/events", method="POST"
    ).respond_with_json(forbidden, status=403)

    tasks.emit_kube_events_task.apply()

    [(request, _)] = httpserver.log
    sent = json.loads(request.get_data())
    assert sent["involvedObject"]["kind"] == "TargetGroupBinding" and sent["reason"] == "BindingHealthBlocked"
    t.refresh_from_db()
    assert "403" in t.kube_event and "components/kube-events" in t.kube_event
    # The optional component grants exactly what this request needs, nothing more.
    role = next(
        d
        for d in load_docs(KUBE / "components" / "kube-events" / "clusterrole-kube-events.yaml")
        if d["kind"] == "ClusterRole"
    )
    assert request.method == "POST" and request.path.startswith("/api/v1/namespaces/")
    assert granted(role) == {("", "events", "create")}
    # And the admin shows it on the cluster, where events are switched on.
    client.force_login(admin_user)
    page = client.get(f"/admin/bindings/cluster/{cluster.pk}/change/").content.decode()
    assert "failed: HTTP 403 Forbidden: the service account may not create events" in page


def test_event_names_are_valid_for_any_binding_name():
    for name in ("a" * 253, "Weird_Name.", "-"):
        made = kube_events.event_name(name, 123456789)
        assert len(made) <= 253 and made.endswith(".bh-123456789")
        assert made[0].isalnum()
