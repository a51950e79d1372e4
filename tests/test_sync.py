"""Sync writes what collectors returned idempotently, in one transaction per source."""

from __future__ import annotations

import copy
from datetime import timedelta
from unittest.mock import patch

import pytest
from django.utils import timezone

from bindings import models as m
from bindings.analysis.bundle import bundle_inventory, load_bundle
from bindings.analysis.engine import analyze
from bindings.analysis.normalize import normalize_aws, normalize_kubernetes
from bindings.store import sync
from bindings.store.inventory import cluster_inventory
from bindings.store.results import results_store
from tests.factories import SCENARIOS

pytestmark = pytest.mark.django_db


@pytest.fixture
def blocked_bundle():
    return load_bundle(SCENARIOS / "dns-udp-blocked")


def _flat(objects):
    """The bundle keeps `kind: List` documents; tests edit single objects."""
    out = []
    for o in copy.deepcopy(objects):
        out.extend(o["items"] if o.get("kind") == "List" else [o])
    return out


def _sync_all(cluster, kube_objects, aws):
    stats = sync.cluster_sync(
        cluster=cluster, records=normalize_kubernetes(kube_objects, cluster=cluster.name)
    )
    stats.add(sync.account_sync(account=cluster.aws_account, records=normalize_aws(aws)))
    return stats


def _mark_polled(cluster):
    now = timezone.now()
    m.Cluster.objects.filter(pk=cluster.pk).update(last_success_at=now)
    m.AwsAccount.objects.filter(pk=cluster.aws_account_id).update(last_success_at=now)
    cluster.refresh_from_db()


def test_it_stores_every_kind_of_object_from_a_bundle(cluster, blocked_bundle):
    stats = _sync_all(cluster, blocked_bundle.kube_objects, blocked_bundle.aws)

    assert stats.created > 0
    assert set(m.TargetGroupBinding.objects.values_list("name", flat=True)) == {"coredns-udp", "coredns-tcp"}
    assert m.KubeService.objects.get().name == "coredns-external"
    assert m.KubePod.objects.count() == 2
    assert m.KubeNode.objects.filter(instance_id="i-0aaaaaaaaaaaaaaa1").exists()
    assert m.TargetGroup.objects.get(protocol="UDP").health_check_protocol == "TCP"
    assert m.RegisteredTarget.objects.filter(state="healthy").count() == 4
    assert m.NetworkInterface.objects.get(eni_id="eni-00000000000000001").private_ips == [
        "10.0.1.10",
        "10.0.1.15",
    ]
    node_sg = m.SecurityGroup.objects.get(group_id="sg-0node00000000000a")
    assert {(r.protocol, r.from_port, r.source) for r in node_sg.rules.filter(egress=False)} == {
        ("tcp", 53, "10.0.0.0/16"),
        ("tcp", 10250, "10.0.0.0/16"),
    }
    assert m.LoadBalancer.objects.get().scheme == "internal"
    assert m.Listener.objects.count() == 2


def test_it_writes_nothing_when_a_poll_repeats_unchanged_data(cluster, blocked_bundle):
    _sync_all(cluster, blocked_bundle.kube_objects, blocked_bundle.aws)

    again = _sync_all(cluster, copy.deepcopy(blocked_bundle.kube_objects), copy.deepcopy(blocked_bundle.aws))

    assert again.rows_written == 0


def test_it_writes_only_the_changed_rows(cluster, blocked_bundle):
    _sync_all(cluster, blocked_bundle.kube_objects, blocked_bundle.aws)
    aws = copy.deepcopy(blocked_bundle.aws)
    health = next(iter(aws["DescribeTargetHealth"].values()))
    health["TargetHealthDescriptions"][0]["TargetHealth"] = {
        "State": "unhealthy",
        "Reason": "Target.FailedHealthChecks",
    }

    stats = sync.account_sync(account=cluster.aws_account, records=normalize_aws(aws))

    assert (stats.created, stats.updated, stats.deleted) == (0, 1, 0)
    assert (
        m.RegisteredTarget.objects.filter(state="unhealthy", reason="Target.FailedHealthChecks").count() == 1
    )


def test_it_deletes_a_binding_that_vanished_from_kubernetes(cluster, blocked_bundle):
    _sync_all(cluster, blocked_bundle.kube_objects, blocked_bundle.aws)
    objects = [
        o
        for o in _flat(blocked_bundle.kube_objects)
        if not (o.get("kind") == "TargetGroupBinding" and o["metadata"]["name"] == "coredns-tcp")
    ]

    stats = sync.cluster_sync(cluster=cluster, records=normalize_kubernetes(objects, cluster="demo"))

    assert stats.deleted == 1
    assert list(m.TargetGroupBinding.objects.values_list("name", flat=True)) == ["coredns-udp"]


def test_it_keeps_the_previous_state_when_sync_crashes_midway(cluster, blocked_bundle):
    _sync_all(cluster, blocked_bundle.kube_objects, blocked_bundle.aws)
    before = sorted(m.TargetGroupBinding.objects.values_list("name", "resource_version"))
    objects = _flat(blocked_bundle.kube_objects)
    for o in objects:
        o["metadata"]["resourceVersion"] = "9999"
    objects = [o for o in objects if o.get("kind") != "Pod"]  # the crash must also undo deletions
    real_upsert = sync.upsert

    def crash_on_pods(model, **kwargs):
        if model is m.KubePod:
            raise RuntimeError("worker killed mid-sync")
        return real_upsert(model, **kwargs)

    with patch("bindings.store.sync.upsert", side_effect=crash_on_pods), pytest.raises(RuntimeError):
        sync.cluster_sync(cluster=cluster, records=normalize_kubernetes(objects, cluster="demo"))

    assert sorted(m.TargetGroupBinding.objects.values_list("name", "resource_version")) == before
    assert m.KubePod.objects.count() == 2


def test_it_stores_malformed_bindings_with_their_problems_without_aborting(cluster, blocked_bundle):
    objects = _flat(blocked_bundle.kube_objects)
    broken = copy.deepcopy(next(o for o in objects if o.get("kind") == "TargetGroupBinding"))
    broken["metadata"].update(name="no-service-ref", uid="uid-broken-1")
    del broken["spec"]["serviceRef"]
    bad_cidr = copy.deepcopy(broken)
    bad_cidr["metadata"].update(name="bad-cidr", uid="uid-broken-2")
    bad_cidr["spec"]["serviceRef"] = {"name": "does-not-exist", "port": 53}
    bad_cidr["spec"]["targetGroupProtocol"] = "SCTP_OVER_PIGEON"
    bad_cidr["spec"]["networking"] = {
        "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/33"}}], "ports": []}]
    }
    objects += [broken, bad_cidr]

    sync.cluster_sync(cluster=cluster, records=normalize_kubernetes(objects, cluster="demo"))

    assert m.TargetGroupBinding.objects.count() == 4
    no_ref = m.TargetGroupBinding.objects.get(name="no-service-ref")
    assert any("serviceRef" in p["field"] for p in no_ref.problems)
    bad = m.TargetGroupBinding.objects.get(name="bad-cidr")
    fields = " ".join(p["field"] for p in bad.problems)
    assert "ipBlock.cidr" in fields
    assert "targetGroupProtocol" in fields


def test_it_rebuilds_from_the_database_the_inventory_the_bundle_gives(cluster, blocked_bundle):
    _sync_all(cluster, blocked_bundle.kube_objects, blocked_bundle.aws)
    _mark_polled(cluster)
    now = timezone.now()
    from_bundle = bundle_inventory(blocked_bundle)
    from_bundle.now = now
    from_bundle.sources = []

    from_db = cluster_inventory(cluster, now=now)
    from_db.sources = []

    assert sorted(from_db.bindings, key=lambda b: b.uid) == sorted(from_bundle.bindings, key=lambda b: b.uid)
    assert from_db.services == from_bundle.services
    assert from_db.pods == from_bundle.pods
    assert from_db.nodes == from_bundle.nodes
    assert from_db.target_groups == from_bundle.target_groups
    assert from_db.load_balancers == from_bundle.load_balancers
    assert from_db.network_interfaces == from_bundle.network_interfaces
    assert from_db.security_groups == from_bundle.security_groups
    assert from_db.subnets == from_bundle.subnets and from_db.vpcs == from_bundle.vpcs
    assert analyze(from_db) == analyze(from_bundle)


def test_it_stores_results_once_and_records_verdict_transitions(cluster, blocked_bundle):
    _sync_all(cluster, blocked_bundle.kube_objects, blocked_bundle.aws)
    _mark_polled(cluster)
    now = timezone.now()

    first = results_store(cluster=cluster, results=analyze(cluster_inventory(cluster, now=now)), now=now)
    again = results_store(cluster=cluster, results=analyze(cluster_inventory(cluster, now=now)), now=now)

    assert first.rows_written > 0
    assert again.rows_written == 0, "an unchanged analysis must write nothing"
    udp = m.TargetGroupBinding.objects.get(name="coredns-udp")
    assert udp.verdicts.get(protocol="UDP").verdict == "blocked"
    assert udp.result.worst_verdict == "blocked"
    assert udp.result.max_severity == "critical"
    assert set(udp.findings.values_list("code", flat=True)) >= {
        "TRAFFIC_BLOCKED",
        "HEALTH_CHECK_MASKS_TRAFFIC",
    }
    assert list(udp.transitions.values_list("old", "new")) == [("", "blocked")]
    assert udp.history.count() == 1


def test_it_samples_history_again_after_the_sample_period(cluster, blocked_bundle, settings):
    settings.BH_HISTORY_SAMPLE_SECONDS = 60
    _sync_all(cluster, blocked_bundle.kube_objects, blocked_bundle.aws)
    _mark_polled(cluster)
    now = timezone.now()
    results = analyze(cluster_inventory(cluster, now=now))
    results_store(cluster=cluster, results=results, now=now)

    later = now + timedelta(seconds=61)
    results_store(cluster=cluster, results=results, now=later)

    assert m.HistorySample.objects.filter(at=later).count() == 2
    assert m.VerdictTransition.objects.count() == 2  # one per binding, none for the unchanged rerun


def test_a_stored_group_without_registered_targets_reads_back_as_empty_not_unknown(cluster, aws_account):
    from bindings.store.inventory import cluster_inventory as inventory_of

    m.TargetGroup.objects.create(
        account=aws_account,
        arn="arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/empty/1",
        name="empty",
    )

    inv = inventory_of(cluster)

    assert inv.target_health["arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/empty/1"] == []


@pytest.mark.parametrize(
    "scenario", ["prefix-list-resolved", "nacl-denies-udp-inbound", "malformed-network-rules"]
)
def test_prefix_lists_acls_and_their_problems_read_back_as_the_bundle_gives_them(cluster, scenario):
    """Prefix-list entries, ACL entries and the problems of malformed rules, ACL entries and prefix
    lists survive the database: the dashboard judges them exactly as `analyze` does offline."""
    bundle = load_bundle(SCENARIOS / scenario)
    _sync_all(cluster, bundle.kube_objects, bundle.aws)
    _mark_polled(cluster)
    now = timezone.now()
    from_bundle = bundle_inventory(bundle)
    from_bundle.now = now
    from_bundle.sources = []
    from_db = cluster_inventory(cluster, now=now)
    from_db.sources = []

    assert from_db.prefix_lists == from_bundle.prefix_lists
    assert from_db.network_acls == from_bundle.network_acls
    assert from_db.security_groups == from_bundle.security_groups
    assert analyze(from_db) == analyze(from_bundle)
    if scenario == "malformed-network-rules":
        invalid = [f for r in analyze(from_db) for f in r.findings if f.code == "INVALID_SPEC"]
        fields = {f.evidence["field"] for f in invalid}
        assert {"IpPermissions[2].FromPort", "Entries[0].Cidr", "Entries[0].RuleNumber"} <= fields
    # A second, unchanged poll writes nothing.
    assert _sync_all(cluster, copy.deepcopy(bundle.kube_objects), copy.deepcopy(bundle.aws)).rows_written == 0
