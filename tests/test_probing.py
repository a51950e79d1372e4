"""Probing, Django side: enablement, targets, schedule, storage, findings and the tasks.

Engine tests use the hand-built inventories of tests/factories.py; the rest runs the
dns-udp-blocked scenario through the database and probes a DNS server on 127.0.0.1.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from unittest.mock import patch

import pytest
from django.utils import timezone

from bindings import models as m
from bindings.analysis import model as am
from bindings.analysis.bundle import load_bundle
from bindings.analysis.engine import analyze
from bindings.analysis.normalize import normalize_aws, normalize_kubernetes
from bindings.collect import probes
from bindings.demo.emulators import DnsServer
from bindings.services import probing
from bindings.store import inventory, sync
from bindings.store.inventory import cluster_inventory
from bindings.store.results import history_prune
from bindings.tasks import dispatch_probes_task, probe_cluster_task, source_lock
from tests.factories import LB_SG, NOW, SCENARIOS, dns_inventory, rule

LB_DNS = "dns-nlb-0123456789abcdef.elb.us-east-1.amazonaws.com"


# --- engine: disagreement findings (no database) ---------------------------------------------------


def observation(protocol="UDP", status="ok", kind="dns", explicit=False) -> am.ProbeObservation:
    return am.ProbeObservation(protocol, kind, status, "10.0.1.200", 53, 1.5, "detail", NOW, explicit)


def probe_findings(inv: am.Inventory) -> list[am.Finding]:
    [result] = analyze(inv)
    return [f for f in result.findings if f.code.startswith("PROBE_")]


def test_it_flags_a_probe_that_succeeds_while_static_analysis_says_blocked():
    inv = dns_inventory(rules=(rule("tcp", 53),))  # no UDP rule: UDP is blocked
    inv.probes[("uid-tgb", "UDP")] = observation(status="ok", explicit=True)

    [finding] = probe_findings(inv)

    assert finding.code == "PROBE_SUCCEEDS_WHILE_BLOCKED"
    assert finding.severity == "warning" and finding.protocol == "UDP"
    assert "worker's network position (inside the VPC" in finding.message
    assert "client ranges are configured too narrowly" in finding.message
    assert "configured address (10.0.1.200:53)" in finding.message
    assert finding.evidence["probeStatus"] == "ok" and finding.evidence["verdict"] == "blocked"


def test_it_flags_a_probe_that_fails_while_static_analysis_says_reachable():
    inv = dns_inventory(lb_security_groups=(LB_SG,), rules=(rule("-1", None, LB_SG, kind="security_group"),))
    inv.probes[("uid-tgb", "UDP")] = observation(status="failed")

    [finding] = probe_findings(inv)

    assert finding.code == "PROBE_FAILS_WHILE_REACHABLE"
    assert finding.severity == "warning" and finding.protocol == "UDP"
    for cause in ("network ACLs", f"security group inbound rules ({LB_SG})", "nothing listening"):
        assert cause in finding.message
    assert "not a client range" in finding.message and "not yet reconciled" in finding.message
    assert "stale data" in finding.message


@pytest.mark.parametrize(
    ("rules", "status"),
    [
        (None, "ok"),  # reachable and the probe agrees
        ((rule("tcp", 53),), "failed"),  # blocked and the probe agrees
        (None, "inconclusive"),  # silence proves nothing
        ((rule("tcp", 53),), "error"),  # the probe could not run
        ((rule("tcp", 53), rule("udp", 53, "10.0.1.0/24")), "ok"),  # partial: some sources do get in
    ],
)
def test_it_stays_quiet_when_the_probe_agrees_or_proves_nothing(rules, status):
    inv = dns_inventory(rules=rules)
    inv.probes[("uid-tgb", "UDP")] = observation(status=status)

    assert probe_findings(inv) == []


def test_it_matches_probes_by_protocol():
    inv = dns_inventory(tg_protocol="TCP_UDP", rules=(rule("tcp", 53),))
    inv.probes[("uid-tgb", "TCP")] = observation("TCP", status="ok", kind="tcp")  # TCP reachable: agrees

    assert probe_findings(inv) == []


def test_it_keeps_volatile_probe_values_out_of_the_findings():
    # Latency and time change every round; they must not rewrite the stored result each time.
    inv = dns_inventory(rules=(rule("tcp", 53),))
    inv.probes[("uid-tgb", "UDP")] = observation(status="ok")
    first = probe_findings(inv)
    inv.probes[("uid-tgb", "UDP")] = am.ProbeObservation(
        "UDP", "dns", "ok", "10.0.1.200", 53, 99.0, "other detail", NOW + timedelta(minutes=5)
    )

    assert probe_findings(inv) == first


# --- database fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def world(cluster):
    """The dns-udp-blocked scenario, synced and marked freshly polled: UDP blocked, TCP reachable."""
    bundle = load_bundle(SCENARIOS / "dns-udp-blocked")
    sync.cluster_sync(
        cluster=cluster, records=normalize_kubernetes(bundle.kube_objects, cluster=cluster.name)
    )
    sync.account_sync(account=cluster.aws_account, records=normalize_aws(bundle.aws))
    now = timezone.now()
    m.Cluster.objects.filter(pk=cluster.pk).update(last_success_at=now)
    m.AwsAccount.objects.filter(pk=cluster.aws_account_id).update(last_success_at=now)
    cluster.refresh_from_db()
    return cluster


@pytest.fixture
def dns_server(settings):
    """A real DNS server on loopback, which probe settings may then target (never by default)."""
    settings.BH_PROBE_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    with DnsServer() as server:
        yield server


def tgb(name: str) -> m.TargetGroupBinding:
    return m.TargetGroupBinding.objects.get(name=name)


def annotate(name: str, value: str) -> None:
    m.TargetGroupBinding.objects.filter(name=name).update(annotations={am.PROBE_ANNOTATION: value})


def setting(cluster, name: str, **fields) -> m.ProbeSetting:
    fields.setdefault("timeout_seconds", 0.5)
    fields.setdefault("retries", 0)
    return m.ProbeSetting.objects.create(cluster=cluster, namespace="kube-system", name=name, **fields)


def plan(cluster) -> dict[tuple[str, str], probing.PlannedProbe]:
    planned, _skipped = probing.plan_cluster(cluster)
    return {(p.binding.split("/")[1], p.protocol): p for p in planned}


# --- enablement and targets ------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_probes_nothing_by_default(world):
    assert probing.plan_cluster(world) == ([], [])


@pytest.mark.django_db
def test_it_probes_the_load_balancer_name_and_listener_port_for_a_cluster_kind(world):
    world.probe_kind = "dns"
    world.save()

    planned = plan(world)

    assert set(planned) == {("coredns-udp", "UDP"), ("coredns-tcp", "TCP")}
    udp = planned[("coredns-udp", "UDP")]
    assert (udp.spec.host, udp.spec.port, udp.spec.transport) == (LB_DNS, 53, "udp")
    assert (udp.source, udp.explicit, udp.interval_seconds) == ("cluster", False, 60)
    assert planned[("coredns-tcp", "TCP")].spec.transport == "tcp"


@pytest.mark.django_db
def test_it_lets_the_annotation_beat_the_cluster(world):
    world.probe_kind = "dns"
    world.save()
    annotate("coredns-tcp", "tcp")
    annotate("coredns-udp", "off")

    planned = plan(world)

    assert set(planned) == {("coredns-tcp", "TCP")}
    assert planned[("coredns-tcp", "TCP")].kind == "tcp"
    assert planned[("coredns-tcp", "TCP")].source == "annotation"


@pytest.mark.django_db
def test_it_lets_the_setting_beat_the_annotation(world):
    annotate("coredns-udp", "dns")
    annotate("coredns-tcp", "tcp")
    setting(world, "coredns-udp", kind="udp", udp_payload=r"\x00PING", udp_expect="PONG", port=5300)
    setting(world, "coredns-tcp", kind="off")

    planned = plan(world)

    assert set(planned) == {("coredns-udp", "UDP")}
    udp = planned[("coredns-udp", "UDP")]
    assert (udp.kind, udp.source, udp.spec.payload, udp.spec.expect) == (
        "udp",
        "setting",
        b"\x00PING",
        "PONG",
    )
    assert (udp.spec.host, udp.spec.port) == (LB_DNS, 5300)  # the setting's port, the LB's name


@pytest.mark.django_db
def test_it_uses_an_explicit_address_with_the_listener_port(world):
    setting(world, "coredns-udp", kind="dns", address="10.9.8.7", dns_name="example.com", dns_type="A")

    udp = plan(world)[("coredns-udp", "UDP")]

    assert (udp.spec.host, udp.spec.port, udp.explicit) == ("10.9.8.7", 53, True)
    assert (udp.spec.dns_name, udp.spec.dns_type, udp.spec.timeout) == ("example.com", "A", 0.5)


@pytest.mark.django_db
def test_it_skips_protocols_a_kind_cannot_exercise(world):
    annotate("coredns-udp", "tcp")  # a TCP connect says nothing about UDP

    planned, skipped = probing.plan_cluster(world)

    assert planned == []
    assert skipped == [("kube-system/coredns-udp", "UDP not probed: a tcp probe cannot exercise UDP")]


# --- schedule ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_probes_a_binding_again_only_after_its_interval(world):
    setting(world, "coredns-udp", kind="dns", address="127.0.0.1", port=9, interval_seconds=60)
    planned, _ = probing.plan_cluster(world)
    now = timezone.now()
    binding_id = tgb("coredns-udp").pk

    assert probing.due_probes(planned, {}, now) == planned  # never probed
    assert probing.due_probes(planned, {binding_id: now - timedelta(seconds=30)}, now) == []
    assert probing.due_probes(planned, {binding_id: now - timedelta(seconds=60)}, now) == planned


@pytest.mark.django_db
def test_it_reads_the_last_probe_time_from_the_newest_result(world, dns_server):
    setting(world, "coredns-tcp", kind="tcp", address="127.0.0.1", port=dns_server.port, interval_seconds=300)
    now = timezone.now()

    first = probing.probe_cluster(cluster=world, now=now)
    soon = probing.probe_cluster(cluster=world, now=now + timedelta(seconds=60))
    later = probing.probe_cluster(cluster=world, now=now + timedelta(seconds=300))

    assert (first.ran, soon.ran, later.ran) == (1, 0, 1)
    assert m.ProbeResult.objects.count() == 2


# --- a round end to end -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_stores_probes_and_reports_disagreement_end_to_end(world, dns_server):
    # given: DNS over UDP to a server that answers, while the rules say UDP is blocked
    setting(world, "coredns-udp", kind="dns", address="127.0.0.1", port=dns_server.port)
    setting(world, "coredns-tcp", kind="tcp", address="127.0.0.1", port=dns_server.port)

    # when
    round_ = probing.probe_cluster(cluster=world)

    # then
    assert (round_.ran, round_.stored, round_.changed, round_.reanalysed) == (2, 2, 2, True)
    udp = m.ProbeResult.objects.get(binding__name="coredns-udp")
    assert (udp.protocol, udp.kind, udp.status, udp.address, udp.port) == (
        "UDP",
        "dns",
        "ok",
        "127.0.0.1",
        dns_server.port,
    )
    assert m.ProbeResult.objects.get(binding__name="coredns-tcp").status == "ok"
    assert m.ProtocolVerdict.objects.get(binding__name="coredns-udp").verdict == "blocked"
    finding = m.Finding.objects.get(code="PROBE_SUCCEEDS_WHILE_BLOCKED")
    assert (finding.binding.name, finding.protocol, finding.severity) == ("coredns-udp", "UDP", "warning")
    assert not m.Finding.objects.filter(binding__name="coredns-tcp", code__startswith="PROBE_").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("address", "allowed", "why"),
    [
        ("127.0.0.1", [], "the worker's own host"),
        ("localhost", [], "the worker's own host"),
        ("169.254.169.254", [], "instance metadata"),
        ("127.0.0.1", ["10.0.0.0/8"], "outside the networks probes may target"),
    ],
)
def test_it_refuses_a_hand_configured_target_the_worker_may_not_probe(world, settings, address, allowed, why):
    """A probe setting's editor must not turn the worker into a scanner of its own host, the
    metadata service or networks the deployer did not allow: refused, recorded, nothing sent."""
    settings.BH_PROBE_ALLOWED_NETWORKS = allowed
    with DnsServer() as server:
        setting(world, "coredns-udp", kind="dns", address=address, port=server.port)

        round_ = probing.probe_cluster(cluster=world)

        assert server.queries == 0
    assert round_.ran == 1
    result = m.ProbeResult.objects.get(binding__name="coredns-udp")
    assert (result.status, result.address) == ("error", address)
    assert result.detail.startswith("not probed: ") and why in result.detail
    assert not m.Finding.objects.filter(code__startswith="PROBE_").exists()


@pytest.mark.django_db
def test_the_admin_refuses_an_address_the_worker_may_never_probe(client, admin_user, world):
    client.force_login(admin_user)
    form = {
        "cluster": world.pk,
        "namespace": "kube-system",
        "name": "coredns-udp",
        "kind": "dns",
        "address": "169.254.169.254",
        "port": "53",
        "dns_name": ".",
        "dns_type": "NS",
        "udp_payload": "",
        "udp_expect": "",
        "interval_seconds": "60",
        "timeout_seconds": "2",
        "retries": "1",
    }

    refused = client.post("/admin/bindings/probesetting/add/", form)
    accepted = client.post("/admin/bindings/probesetting/add/", form | {"address": "10.0.1.53"})

    assert refused.status_code == 200 and "instance metadata" in refused.content.decode()
    assert accepted.status_code == 302
    assert list(m.ProbeSetting.objects.values_list("address", flat=True)) == ["10.0.1.53"]


@pytest.mark.django_db
def test_it_reanalyses_only_when_a_status_changed(world, dns_server):
    setting(world, "coredns-tcp", kind="tcp", address="127.0.0.1", port=dns_server.port)
    probing.probe_cluster(cluster=world)

    # when: the same outcome again
    with patch("bindings.services.probing.cluster_analyze") as reanalyse:
        again = probing.probe_cluster(cluster=world, force=True)

    assert (again.ran, again.changed, again.reanalysed) == (1, 0, False)
    reanalyse.assert_not_called()

    # when: the service goes away, the TCP probe is refused while the rules say reachable
    dns_server.stop()
    gone = probing.probe_cluster(cluster=world, force=True)

    assert (gone.changed, gone.reanalysed) == (1, True)
    finding = m.Finding.objects.get(code="PROBE_FAILS_WHILE_REACHABLE")
    assert (finding.binding.name, finding.protocol) == ("coredns-tcp", "TCP")


@pytest.mark.django_db
def test_it_respects_the_concurrency_limit(world, settings):
    settings.BH_PROBE_CONCURRENCY = 2
    for name in ("coredns-udp", "coredns-tcp"):
        setting(world, name, kind="dns", address="127.0.0.1", port=9)
    for i in range(4):  # more bindings than the limit, each enabled by the cluster's kind
        binding = tgb("coredns-tcp")
        binding.pk, binding.uid, binding.name = None, f"uid-extra-{i}", f"extra-{i}"
        binding.save()
    world.probe_kind = "tcp"
    world.save()
    lock, in_flight, peak = threading.Lock(), [0], [0]

    def counting(spec):
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        try:
            threading.Event().wait(0.05)
            return probes.ProbeOutcome("ok", 1.0, "counted", spec.host)
        finally:
            with lock:
                in_flight[0] -= 1

    round_ = probing.probe_cluster(cluster=world, probe=counting)

    assert round_.ran == 6
    assert 1 < peak[0] <= 2  # in parallel, never beyond the limit


# --- reading results ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_puts_the_newest_probe_of_enabled_bindings_into_the_inventory(world):
    setting(world, "coredns-udp", kind="dns")
    udp, tcp = tgb("coredns-udp"), tgb("coredns-tcp")
    now = timezone.now()
    for at, status in (
        (now - timedelta(minutes=2), "failed"),
        (now, "ok"),
        (now - timedelta(minutes=1), "error"),
    ):
        m.ProbeResult.objects.create(
            binding=udp, protocol="UDP", kind="dns", address="a", port=53, status=status, at=at
        )
    m.ProbeResult.objects.create(
        binding=tcp, protocol="TCP", kind="tcp", address="a", port=53, status="ok", at=now
    )

    probes_seen = cluster_inventory(world, now=now).probes

    assert set(probes_seen) == {(udp.uid, "UDP")}  # coredns-tcp's probing is off: its old result is ignored
    assert probes_seen[(udp.uid, "UDP")].status == "ok"
    assert probes_seen[(udp.uid, "UDP")].explicit is False


@pytest.mark.django_db
def test_it_reads_the_latest_probes_of_many_bindings_in_one_query(world, django_assert_num_queries):
    udp, tcp = tgb("coredns-udp"), tgb("coredns-tcp")
    now = timezone.now()
    for binding, protocol in ((udp, "UDP"), (tcp, "TCP"), (tcp, "UDP")):
        for age in (3, 2, 1):
            m.ProbeResult.objects.create(
                binding=binding,
                protocol=protocol,
                kind="dns",
                address="a",
                port=53,
                status="ok",
                detail=f"{age} min ago",
                at=now - timedelta(minutes=age),
            )

    with django_assert_num_queries(1):
        latest = inventory.latest_probes([udp.pk, tcp.pk])

    assert {k: {p: r.detail for p, r in v.items()} for k, v in latest.items()} == {
        udp.pk: {"UDP": "1 min ago"},
        tcp.pk: {"TCP": "1 min ago", "UDP": "1 min ago"},
    }
    assert inventory.latest_probes([]) == {}


@pytest.mark.django_db
def test_it_prunes_probe_history_with_the_retention_period(world):
    udp = tgb("coredns-udp")
    now = timezone.now()
    m.ProbeResult.objects.create(binding=udp, protocol="UDP", kind="dns", address="a", status="ok", at=now)
    m.ProbeResult.objects.create(
        binding=udp, protocol="UDP", kind="dns", address="a", status="ok", at=now - timedelta(days=31)
    )

    history_prune(before=now - timedelta(days=30))

    assert list(m.ProbeResult.objects.values_list("at", flat=True)) == [now]


# --- tasks ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_dispatches_only_clusters_with_probing_configured(world, aws_account):
    quiet = m.Cluster.objects.create(name="quiet", connection="url", api_url="http://127.0.0.1:9")
    by_kind = m.Cluster.objects.create(name="by-kind", connection="url", api_url="http://x", probe_kind="tcp")
    m.Cluster.objects.create(
        name="disabled", connection="url", api_url="http://x", probe_kind="tcp", enabled=False
    )
    annotate("coredns-udp", "dns")  # world: enabled by an annotation only

    with patch("bindings.tasks.probe_cluster_task.delay") as delay:
        dispatched = dispatch_probes_task()

    assert dispatched == sorted([world.pk, by_kind.pk])
    assert sorted(call.args[0] for call in delay.call_args_list) == sorted([world.pk, by_kind.pk])
    assert quiet.pk not in dispatched


@pytest.mark.django_db
def test_it_runs_one_round_per_cluster_at_a_time(world, dns_server):
    setting(world, "coredns-tcp", kind="tcp", address="127.0.0.1", port=dns_server.port)

    with source_lock("probe", world.pk):
        assert probe_cluster_task(world.pk) == "locked"
    assert probe_cluster_task(world.pk) == "ok"
    assert probe_cluster_task(world.pk + 1000) == "gone"
    assert m.ProbeResult.objects.count() == 1


def test_it_schedules_the_probe_dispatcher_and_registers_the_tasks(settings):
    from dashboard.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["dispatch-probes"]
    app.loader.import_default_modules()

    assert entry["task"] == "bindings.probe_tasks.dispatch_probes_task"
    assert entry["schedule"] == 30.0 and entry["options"]["expires"] < 30
    assert {"bindings.probe_tasks.dispatch_probes_task", "bindings.probe_tasks.probe_cluster_task"} <= set(
        app.tasks
    )


# --- admin and demo --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_edits_probe_settings_in_the_admin_and_probes_on_demand(client, admin_user, world):
    probe = setting(world, "coredns-udp", kind="dns", address="127.0.0.1", port=5353)
    client.force_login(admin_user)

    listing = client.get("/admin/bindings/probesetting/")
    form = client.get(f"/admin/bindings/probesetting/{probe.pk}/change/")
    cluster_form = client.get(f"/admin/bindings/cluster/{world.pk}/change/")
    with patch("bindings.tasks.probe_cluster_task.delay_on_commit") as delay:
        client.post("/admin/bindings/probesetting/", {"action": "probe_now", "_selected_action": [probe.pk]})

    assert listing.status_code == 200 and "127.0.0.1:5353" in listing.content.decode()
    assert "network position" in form.content.decode()
    assert 'name="probe_kind"' in cluster_form.content.decode()
    delay.assert_called_once_with(world.pk, True)


@pytest.mark.django_db
def test_it_configures_the_demo_probes_against_the_emulators_dns_server():
    from bindings.management.commands.demo import Command

    state = {
        "aws_endpoint": "http://127.0.0.1:9",
        "kube_url": "http://127.0.0.1:9",
        "dns_server": {"host": "127.0.0.1", "port": 5353},
        "closed_udp_port": 5354,
    }

    Command()._configure(state, 60)

    kinds = {
        s.name: (s.kind, s.address, s.port)
        for s in m.ProbeSetting.objects.filter(cluster__name="demo", namespace="kube-system")
    }
    assert kinds == {
        "coredns-udp": ("dns", "127.0.0.1", 5353),
        "coredns-tcp": ("tcp", "127.0.0.1", 5353),
    }
