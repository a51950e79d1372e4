"""The load-balancer features of 2025-26 (issue 19) through the database, the pages and the API.

Each test syncs one `lb-` scenario bundle into PostgreSQL (the same path a poll takes), analyses it
from the database, and reads the binding page and `/api/v1/bindings/{id}`: the facts the bundles
carry — other clusters' targets, QUIC server IDs, PrivateLink, the load balancer refusing client
ranges, the cross-zone attribute — must survive the round trip and be shown.
"""

from __future__ import annotations

import pytest

from bindings import models as m
from tests.factories import load_scenario, make_token

pytestmark = pytest.mark.django_db


def _detail(client, token: str, binding: m.TargetGroupBinding) -> dict:
    response = client.get(f"/api/v1/bindings/{binding.pk}", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content
    return response.json()


def test_other_cluster_targets_are_shown_and_not_judged(client, alice, cluster):
    bindings = load_scenario(cluster, "lb-multicluster-other-targets")
    udp = bindings["coredns-udp"]
    client.force_login(alice)
    html = client.get(f"/bindings/{udp.pk}/").content.decode()
    assert html.count("other cluster (not judged)") == 2
    assert "10.0.1.77" in html and "10.0.2.88" in html

    body = _detail(client, make_token(alice), udp)
    assert [(p["protocol"], p["verdict"]) for p in body["protocols"]] == [("UDP", "reachable")]
    assert {t["target_id"] for t in body["protocols"][0]["targets"]} == {"10.0.1.15", "10.0.2.25"}
    other = [f for f in body["findings"] if f["code"] == "OTHER_CLUSTER_TARGETS"]
    assert other and other[0]["evidence"]["targets"] == ["10.0.1.77:53", "10.0.2.88:53"]
    assert not {"TARGET_DRIFT", "INVALID_SPEC"} & {f["code"] for f in body["findings"]}


def test_quic_server_ids_survive_the_database_and_are_shown(client, alice, cluster):
    bindings = load_scenario(cluster, "lb-quic-ok")
    udp = bindings["coredns-udp"]
    stored = dict(
        m.RegisteredTarget.objects.filter(target_group_arn=udp.target_group_arn).values_list(
            "target_id", "quic_server_id"
        )
    )
    assert stored == {"10.0.1.15": "0x0000000000000001", "10.0.2.25": "0x0000000000000002"}
    client.force_login(alice)
    html = client.get(f"/bindings/{udp.pk}/").content.decode()
    assert "QUIC server ID <code>0x0000000000000001</code>" in html
    assert "that HTTP/3 works" in html

    body = _detail(client, make_token(alice), udp)
    ids = next(f for f in body["findings"] if f["code"] == "QUIC_SERVER_IDS")["evidence"]["serverIds"]
    assert ids == {"10.0.1.15": "0x0000000000000001", "10.0.2.25": "0x0000000000000002"}
    assert "HTTP/3" in body["health_check"]["cannot_prove"]


def test_privatelink_without_enforcement_makes_refused_ranges_unknown(client, alice, cluster):
    m.ClientNetwork.objects.create(cluster=cluster, cidr="10.0.0.0/16")
    m.ClientNetwork.objects.create(cluster=cluster, cidr="100.64.0.0/16", description="endpoint consumers")
    bindings = load_scenario(cluster, "lb-privatelink-not-enforced")
    lb = m.LoadBalancer.objects.get()
    assert lb.privatelink_enforce_inbound == "off"
    assert lb.endpoint_services == ["vpce-svc-0123456789abcdef0"]
    client.force_login(alice)
    body = _detail(client, make_token(alice), bindings["coredns-udp"])
    assert body["protocols"][0]["verdict"] == "unknown"
    privatelink = next(f for f in body["findings"] if f["code"] == "PRIVATELINK")
    assert privatelink["evidence"]["endpointServices"] == ["vpce-svc-0123456789abcdef0"]
    assert privatelink["evidence"]["enforceInboundRulesOnPrivateLink"] == "off"
    html = client.get(f"/bindings/{bindings['coredns-udp'].pk}/").content.decode()
    assert "vpce-svc-0123456789abcdef0" in html


@pytest.mark.parametrize(
    ("enforce", "verdict"),
    [("on", "partial"), ("off", "unknown")],
)
def test_privatelink_enforcement_decides_through_the_database(client, alice, cluster, enforce, verdict):
    m.ClientNetwork.objects.create(cluster=cluster, cidr="10.0.0.0/16")
    m.ClientNetwork.objects.create(cluster=cluster, cidr="100.64.0.0/16")
    name = "lb-privatelink-enforced" if enforce == "on" else "lb-privatelink-not-enforced"
    bindings = load_scenario(cluster, name)
    body = _detail(client, make_token(alice), bindings["coredns-udp"])
    assert body["protocols"][0]["verdict"] == verdict


def test_the_load_balancer_refusing_cluster_client_ranges_is_shown(client, alice, cluster):
    m.ClientNetwork.objects.create(cluster=cluster, cidr="10.0.0.0/16")
    m.ClientNetwork.objects.create(cluster=cluster, cidr="192.168.0.0/16", description="VPN")
    bindings = load_scenario(cluster, "lb-clients-some-refused")
    client.force_login(alice)
    token = make_token(alice)
    for name, protocol in (("coredns-udp", "UDP"), ("coredns-tcp", "TCP")):
        body = _detail(client, token, bindings[name])
        result = body["protocols"][0]
        assert (result["protocol"], result["verdict"]) == (protocol, "partial")
        assert any("refuse the client range(s) 192.168.0.0/16" in r for r in result["reasons"])
        blocked = next(f for f in body["findings"] if f["code"] == "TRAFFIC_BLOCKED")
        assert "sg-0nlb00000000000d1" in blocked["message"]


def test_the_cross_zone_attribute_is_shown(client, alice, cluster):
    bindings = load_scenario(cluster, "lb-quic-ok")
    group = m.TargetGroup.objects.get(arn=bindings["coredns-udp"].target_group_arn)
    group.attributes = {**(group.attributes or {}), "load_balancing.cross_zone.enabled": "true"}
    group.save(update_fields=["attributes"])
    client.force_login(alice)
    html = client.get(f"/bindings/{bindings['coredns-udp'].pk}/").content.decode()
    assert "Cross-zone load balancing" in html and "<code>true</code>" in html


def test_a_hostile_quic_server_id_is_invalid_and_shown_escaped(client, alice, cluster):
    from django.utils import timezone

    from bindings.services import polling
    from tests.factories import HOSTILE_HTML, HOSTILE_HTML_ESCAPED

    bindings = load_scenario(cluster, "lb-quic-ok")
    udp = bindings["coredns-udp"]
    m.RegisteredTarget.objects.filter(target_group_arn=udp.target_group_arn, target_id="10.0.1.15").update(
        quic_server_id=HOSTILE_HTML
    )
    polling.cluster_analyze(cluster=cluster, now=timezone.now())
    body = _detail(client, make_token(alice), udp)
    invalid = [f for f in body["findings"] if f["code"] == "INVALID_SPEC"]
    assert invalid and invalid[0]["evidence"]["field"] == "QuicServerId"
    assert "Target 10.0.1.15 of TargetGroup k8s-dns-udp" in invalid[0]["message"]
    client.force_login(alice)
    html = client.get(f"/bindings/{udp.pk}/").content.decode()
    assert HOSTILE_HTML not in html
    assert HOSTILE_HTML_ESCAPED in html


def test_zonal_shift_eligibility_and_cross_zone_are_shown(client, alice, cluster):
    bindings = load_scenario(cluster, "lb-zonal-shift-udp-cross-zone")
    udp = bindings["coredns-udp"]
    body = _detail(client, make_token(alice), udp)
    zonal = next(f for f in body["findings"] if f["code"] == "ZONAL_SHIFT_INELIGIBLE")
    assert zonal["severity"] == "info"
    assert zonal["evidence"]["crossZoneTargetGroup"] == "use_load_balancer_configuration"
    client.force_login(alice)
    html = client.get(f"/bindings/{udp.pk}/").content.decode()
    assert "use_load_balancer_configuration (true on the load balancer)" in html
    assert "ZONAL_SHIFT_INELIGIBLE" in html
