"""Polls end to end: the real collectors over HTTP against the emulators, into the database."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from bindings import models as m
from bindings.collect.errors import SourceError
from bindings.demo.emulators import KubeEmulator, MotoServer, seed_demo_world
from bindings.services import polling

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture(scope="module")
def emulators():
    """One seeded moto server and Kubernetes emulator for the module (seeding takes ~1 s)."""
    with MotoServer() as moto, KubeEmulator() as kube:
        world = seed_demo_world(aws_endpoint=moto.url, kube=kube)
        yield moto, kube, world


@pytest.fixture
def demo_account(emulators):
    moto, _kube, world = emulators
    return m.AwsAccount.objects.create(
        name="demo-account", account_id=world.account_id, region=world.region, endpoint_url=moto.url
    )


@pytest.fixture
def demo_cluster(emulators, demo_account):
    _moto, kube, _world = emulators
    return m.Cluster.objects.create(
        name="demo", connection=m.Cluster.Connection.URL, api_url=kube.url, aws_account=demo_account
    )


def test_it_polls_the_demo_world_into_the_database_and_analyses_it(demo_cluster, demo_account, emulators):
    _moto, _kube, world = emulators

    cluster_run = polling.cluster_poll(cluster=demo_cluster, trigger="test")
    account_run = polling.account_poll(account=demo_account, trigger="test")

    assert cluster_run.status == account_run.status == m.PollRun.Status.SUCCESS
    assert cluster_run.api_calls and account_run.api_calls["DescribeTargetHealth"] == 2
    assert set(m.TargetGroupBinding.objects.values_list("name", flat=True)) == {"coredns-udp", "coredns-tcp"}
    assert set(m.TargetGroup.objects.values_list("arn", flat=True)) == set(world.target_group_arns.values())
    assert m.RegisteredTarget.objects.filter(state="healthy").count() == 4
    assert m.SecurityGroupRule.objects.filter(
        security_group__group_id=world.node_security_group_id, protocol="tcp", from_port=53
    ).exists()
    assert m.NetworkInterface.objects.exists()
    udp = m.TargetGroupBinding.objects.get(name="coredns-udp")
    assert dict(udp.verdicts.values_list("protocol", "verdict")) == {"UDP": "blocked"}
    assert {"TRAFFIC_BLOCKED", "HEALTH_CHECK_MASKS_TRAFFIC", "MISSING_NETWORKING_RULE"} <= set(
        udp.findings.values_list("code", flat=True)
    )
    fix = udp.result.data["fix"]
    ingress = fix["manifest"]["spec"]["networking"]["ingress"]
    assert {"protocol": "UDP", "port": 53} in [p for rule in ingress for p in rule["ports"]]
    tcp = m.TargetGroupBinding.objects.get(name="coredns-tcp")
    assert dict(tcp.verdicts.values_list("protocol", "verdict")) == {"TCP": "reachable"}
    assert tcp.result.data["fix"] is None
    demo_cluster.refresh_from_db()
    assert demo_cluster.last_success_at is not None and demo_cluster.last_error == ""


def test_it_writes_no_rows_on_a_second_unchanged_poll(demo_cluster, demo_account):
    polling.cluster_poll(cluster=demo_cluster)
    polling.account_poll(account=demo_account)

    again_cluster = polling.cluster_poll(cluster=demo_cluster)
    again_account = polling.account_poll(account=demo_account)

    assert again_cluster.rows_written == 0
    assert again_account.rows_written == 0
    assert again_account.api_calls.get("DescribeTargetGroupAttributes", 0) == 0, (
        "attributes come from the cache"
    )


def test_it_records_an_unreachable_account_as_failed_and_keeps_polling_others(demo_cluster, demo_account):
    polling.cluster_poll(cluster=demo_cluster)
    polling.account_poll(account=demo_account)
    before = m.TargetGroup.objects.count()
    broken = m.AwsAccount.objects.create(
        name="gone", account_id="210987654321", region="eu-west-1", endpoint_url="http://127.0.0.1:9"
    )
    other = m.Cluster.objects.create(
        name="other", connection="url", api_url="http://127.0.0.1:9", aws_account=broken
    )
    m.TargetGroupBinding.objects.create(
        cluster=other,
        uid="uid-x",
        namespace="default",
        name="web",
        api_version="elbv2.k8s.aws/v1beta1",
        target_group_arn="arn:aws:elasticloadbalancing:eu-west-1:210987654321:targetgroup/web/0123456789abcdef",
    )

    with pytest.raises(SourceError):
        polling.account_poll(account=broken)
    ok_run = polling.account_poll(account=demo_account)

    failed = broken.polls.get()
    assert failed.status == m.PollRun.Status.FAILED and failed.error
    broken.refresh_from_db()
    assert broken.last_error and broken.last_success_at is None
    assert ok_run.status == m.PollRun.Status.SUCCESS
    assert m.TargetGroup.objects.count() == before


def test_it_keeps_the_previous_state_when_the_cluster_becomes_unreachable(demo_cluster, demo_account):
    polling.cluster_poll(cluster=demo_cluster)
    polling.account_poll(account=demo_account)
    demo_cluster.api_url = "http://127.0.0.1:9"
    demo_cluster.save()

    with pytest.raises(SourceError):
        polling.cluster_poll(cluster=demo_cluster)

    assert m.TargetGroupBinding.objects.filter(cluster=demo_cluster).count() == 2
    demo_cluster.refresh_from_db()
    assert "Kube" in demo_cluster.last_error
    assert demo_cluster.polls.first().status == m.PollRun.Status.FAILED


def test_the_poll_command_polls_every_source_and_reports(demo_cluster, demo_account, capsys):
    call_command("poll")

    out = capsys.readouterr().out
    assert "polling cluster demo ... ok" in out
    assert "polling AWS account demo-account ... ok" in out
    assert "blocked 1" in out and "reachable 1" in out


def test_it_exports_what_was_polled_as_a_bundle_that_analyses_the_same(
    demo_cluster, demo_account, tmp_path, capsys
):
    import json

    polling.cluster_poll(cluster=demo_cluster)
    polling.account_poll(account=demo_account)

    call_command("export_bundle", "demo", str(tmp_path / "demo.tar.gz"))
    capsys.readouterr()
    call_command("analyze", str(tmp_path / "demo.tar.gz"), "--format", "json")

    report = json.loads(capsys.readouterr().out)
    verdicts = {(b["name"], p["protocol"]): p["verdict"] for b in report["bindings"] for p in b["protocols"]}
    stored = {
        (v.binding.name, v.protocol): v.verdict for v in m.ProtocolVerdict.objects.select_related("binding")
    }
    assert verdicts == stored == {("coredns-udp", "UDP"): "blocked", ("coredns-tcp", "TCP"): "reachable"}


def test_the_clusters_eni_security_group_tags_reach_the_analysis_and_the_export(
    demo_cluster, demo_account, tmp_path
):
    from bindings.analysis.bundle import bundle_inventory, load_bundle
    from bindings.services.exports import cluster_bundle_write
    from bindings.store.inventory import cluster_inventory

    demo_cluster.service_target_eni_sg_tags = {"team": "dns"}
    demo_cluster.save()
    polling.cluster_poll(cluster=demo_cluster)
    polling.account_poll(account=demo_account)

    assert cluster_inventory(demo_cluster).eni_sg_tags == {"team": "dns"}
    exported = load_bundle(cluster_bundle_write(demo_cluster, tmp_path / "demo.tar.gz"))
    assert exported.meta["serviceTargetEniSecurityGroupTags"] == {"team": "dns"}
    assert bundle_inventory(exported).eni_sg_tags == {"team": "dns"}

    # A value stored around the admin's validation is a cluster problem, not a failed analysis.
    m.Cluster.objects.filter(pk=demo_cluster.pk).update(service_target_eni_sg_tags=["team=dns"])
    demo_cluster.refresh_from_db()
    inventory = cluster_inventory(demo_cluster)
    assert inventory.eni_sg_tags == {}
    assert [(p.object, p.field) for p in inventory.problems] == [
        ("Cluster demo", "service_target_eni_sg_tags")
    ]
