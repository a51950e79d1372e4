"""The analysis engine, judged on hand-made inventories (see tests/factories.py)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from bindings.analysis import analyze
from bindings.analysis import model as m
from bindings.analysis.report import fail_on_matches, sanitize, to_report, to_text
from tests.factories import (
    INSTANCES,
    LB_ARN,
    LB_SG,
    NODE_PORT,
    NODE_SG,
    NOW,
    POD_IPS,
    SCENARIOS,
    TG_ARN,
    VPC,
    allow_all,
    dns_inventory,
    networking,
    rule,
)


def one(inv: m.Inventory) -> m.BindingResult:
    results = analyze(inv)
    assert len(results) == 1
    return results[0]


def verdicts(result: m.BindingResult) -> dict[str, str]:
    return {p.protocol: p.verdict for p in result.protocols}


def protocol(result: m.BindingResult, name: str) -> m.ProtocolResult:
    return next(p for p in result.protocols if p.protocol == name)


def codes(result: m.BindingResult) -> set[str]:
    return {f.code for f in result.findings}


def findings(result: m.BindingResult, code: str) -> list[m.Finding]:
    return [f for f in result.findings if f.code == code]


def blocked_dns() -> m.Inventory:
    """The dns-udp-blocked bundle: no networking, the node group admits TCP 53 only."""
    return dns_inventory(
        net=None, rules=(rule("tcp", 53, description="dns over tcp from vpc"), rule("tcp", 10250))
    )


ALL_CODES = (
    "TRAFFIC_BLOCKED",
    "HEALTH_CHECK_MASKS_TRAFFIC",
    "HEALTH_CHECK_PORT_MISMATCH",
    "HEALTH_CHECK_BLOCKED",
    "ALL_TARGETS_UNHEALTHY",
    "MISSING_NETWORKING_RULE",
    "NETWORKING_NOT_RECONCILED",
    "EMPTY_PORTS_LIST",
    "INSTANCE_PORT_NOT_NODEPORT",
    "CLIENT_RANGES_NOT_COVERED",
    "OVERLY_BROAD_SOURCE",
    "SERVICE_PROTOCOL_MISMATCH",
    "NO_LISTENER",
    "TARGET_GROUP_NOT_FOUND",
    "TARGET_DRIFT",
    "UNHEALTHY_TARGETS",
    "SECURITY_GROUP_TAG_AMBIGUOUS",
    "INVALID_SPEC",
    "STALE_DATA",
)


# --- the sample bundles, rebuilt by hand -----------------------------------------------------


def _check_expected(results: list[m.BindingResult], expected: dict, rename: dict[str, str]) -> None:
    by_key = {rename.get(r.key, r.key): r for r in results}
    for key, want in expected["bindings"].items():
        result = by_key[key]
        for proto, verdict in want["protocols"].items():
            assert verdicts(result)[proto] == verdict, (key, proto)
        assert set(want["require"]) <= codes(result), key
        assert not set(want["forbid"]) & codes(result), key
        for proto, (admitted, total) in want.get("admitted", {}).items():
            p = protocol(result, proto)
            assert (p.targets_admitted, p.targets_total) == (admitted, total)


def _bundle_pair(blocked: bool) -> m.Inventory:
    """Both bindings of the sample bundles: coredns-udp (UDP group) and coredns-tcp (TCP group)."""
    node_rules = (
        (rule("tcp", 53, description="dns over tcp from vpc"), rule("tcp", 10250, description="kubelet"))
        if blocked
        else (
            rule("tcp", 53, description=m.CONTROLLER_RULE_DESCRIPTION),
            rule("udp", 53, description=m.CONTROLLER_RULE_DESCRIPTION),
        )
    )
    udp = dns_inventory(
        rules=node_rules,
        net=None if blocked else networking(("UDP", 53), ("TCP", 53)),
        service_ports=(m.ServicePort("dns-udp", "UDP", 53, 53), m.ServicePort("dns-tcp", "TCP", 53, 53)),
        service_port="dns-udp",
    )
    tcp = dns_inventory(
        tg_protocol="TCP",
        rules=node_rules,
        net=networking(("TCP", 53)),
        service_ports=(m.ServicePort("dns-udp", "UDP", 53, 53), m.ServicePort("dns-tcp", "TCP", 53, 53)),
        service_port="dns-tcp",
    )
    tcp_tg = replace(tcp.target_groups[TG_ARN], arn=TG_ARN + "-tcp", name="k8s-dns-tcp")
    udp.target_groups[tcp_tg.arn] = tcp_tg
    udp.target_health[tcp_tg.arn] = [
        replace(t, target_group_arn=tcp_tg.arn) for t in tcp.target_health[TG_ARN]
    ]
    udp.listeners.append(m.Listener(LB_ARN + "/tcp", LB_ARN, 53, "TCP", (tcp_tg.arn,)))
    tcp_binding = tcp.bindings[0]
    tcp_binding.name, tcp_binding.uid, tcp_binding.target_group_arn = "coredns-tcp", "uid-tcp", tcp_tg.arn
    udp.bindings[0].name = "coredns-udp"
    udp.bindings.append(tcp_binding)
    return udp


@pytest.mark.parametrize("name", ["dns-udp-blocked", "dns-udp-fixed"])
def test_it_matches_the_expected_results_of_the_sample_bundles(name):
    expected = json.loads((SCENARIOS / name / "expected.json").read_text())
    results = analyze(_bundle_pair(blocked=name.endswith("blocked")))
    _check_expected(results, expected, {})


def test_it_matches_the_sample_bundles_through_the_bundle_loader_when_available():
    bundle = pytest.importorskip("bindings.analysis.bundle")
    for name in ("dns-udp-blocked", "dns-udp-fixed"):
        expected = json.loads((SCENARIOS / name / "expected.json").read_text())
        inv = bundle.bundle_inventory(bundle.load_bundle(SCENARIOS / name))
        _check_expected(analyze(inv), expected, {})


# --- verdicts --------------------------------------------------------------------------------


def test_it_reports_udp_reachable_when_networking_and_rules_admit_the_vpc():
    result = one(dns_inventory())
    assert verdicts(result) == {"UDP": "reachable"}
    udp = protocol(result, "UDP")
    assert (udp.targets_admitted, udp.targets_total) == (2, 2)
    assert udp.client_ip_preserved
    assert udp.expected_sources == ("10.0.0.0/16",)


def test_it_blocks_udp_when_only_tcp_rule_exists():
    udp = protocol(one(blocked_dns()), "UDP")
    assert udp.verdict == "blocked"
    assert udp.targets_admitted == 0
    assert all(t.admitted is False for t in udp.targets)
    assert all(t.uncovered_sources == ("10.0.0.0/16",) for t in udp.targets)


def test_its_reason_names_the_eni_the_tcp_rule_and_the_uncovered_range():
    reasons = " ".join(protocol(one(blocked_dns()), "UDP").reasons)
    assert "eni-00000000000000001" in reasons and "10.0.1.15" in reasons
    assert f"{NODE_SG} tcp 53 from 10.0.0.0/16 (dns over tcp from vpc)" in reasons
    assert "no rule admits udp 53" in reasons
    assert "uncovered: 10.0.0.0/16" in reasons


def test_it_reports_partial_when_one_target_lacks_the_rule():
    inv = dns_inventory()
    inv.security_groups["sg-other"] = m.SecurityGroup("sg-other", tags={"kubernetes.io/cluster/demo": ""})
    inv.network_interfaces["eni-00000000000000002"].security_group_ids = ("sg-other",)
    udp = protocol(one(inv), "UDP")
    assert udp.verdict == "partial"
    assert [t.admitted for t in udp.targets] == [True, False]


def test_it_reports_partial_when_rules_cover_only_part_of_the_client_ranges():
    udp = protocol(one(dns_inventory(rules=(rule("udp", 53, "10.0.0.0/17"), rule("tcp", 53)))), "UDP")
    assert udp.verdict == "partial"
    assert udp.targets[0].uncovered_sources == ("10.0.128.0/17",)


def test_it_unions_several_rules_to_cover_one_range():
    rules = (rule("udp", 53, "10.0.0.0/17"), rule("udp", 50, "10.0.128.0/17", to_port=60), rule("tcp", 53))
    assert verdicts(one(dns_inventory(rules=rules))) == {"UDP": "reachable"}


def test_it_accepts_numeric_protocols_and_all_protocols():
    assert verdicts(one(dns_inventory(rules=(rule("17", 53), rule("6", 53))))) == {"UDP": "reachable"}
    assert verdicts(one(dns_inventory(rules=(rule("-1", None),)))) == {"UDP": "reachable"}


def test_a_tcp_udp_group_behind_a_udp_listener_is_not_offered_for_tcp_without_a_finding():
    """A listener forwards to the group: TCP is simply not offered; no NO_LISTENER, no NotInUse."""
    result = one(dns_inventory(tg_protocol="TCP_UDP", listener_protocols=("UDP",)))
    assert verdicts(result) == {"TCP": "not_offered", "UDP": "reachable"}
    assert "NO_LISTENER" not in codes(result)
    assert not any("NotInUse" in f.message for f in result.findings)


def test_no_listener_at_all_is_no_listener_for_each_protocol_of_a_tcp_udp_group():
    inv = dns_inventory(tg_protocol="TCP_UDP", listener_protocols=("UDP",))
    inv.listeners.clear()
    result = one(inv)
    assert verdicts(result) == {"TCP": "not_offered", "UDP": "not_offered"}
    assert {f.protocol for f in findings(result, "NO_LISTENER")} == {"TCP", "UDP"}


def test_a_tcp_listener_does_not_carry_udp_to_a_udp_group():
    result = one(dns_inventory(listener_protocols=("TCP",)))
    assert verdicts(result) == {"UDP": "not_offered"}


def test_it_treats_a_listener_without_parsed_actions_on_the_groups_lb_as_forwarding():
    inv = dns_inventory()
    inv.listeners[0].target_group_arns = ()
    assert verdicts(one(inv)) == {"UDP": "reachable"}


def test_it_is_unknown_when_the_target_group_is_missing_and_aws_is_incomplete():
    inv = dns_inventory()
    inv.target_groups.clear()
    inv.aws_complete = False
    result = one(inv)
    assert verdicts(result) == {"UDP": "unknown"}
    assert "TARGET_GROUP_NOT_FOUND" not in codes(result)


def test_it_reports_target_group_not_found_when_aws_is_complete():
    inv = dns_inventory()
    inv.target_groups.clear()
    result = one(inv)
    assert verdicts(result) == {"UDP": "unknown"}
    [finding] = findings(result, "TARGET_GROUP_NOT_FOUND")
    assert finding.severity == "critical"


def test_it_derives_protocols_from_the_service_port_when_nothing_else_says():
    inv = dns_inventory()
    inv.target_groups.clear()
    inv.bindings[0].target_group_protocol = None
    assert verdicts(one(inv)) == {"UDP": "unknown"}


def test_it_is_unknown_when_no_target_eni_is_found():
    inv = dns_inventory()
    inv.network_interfaces.clear()
    inv.instances.clear()
    result = one(inv)
    assert verdicts(result) == {"UDP": "unknown"}
    assert any("10.0.1.15" in f.message for f in findings(result, "INVALID_SPEC"))


def test_it_is_unknown_for_a_target_whose_security_group_is_missing():
    inv = dns_inventory()
    inv.network_interfaces["eni-00000000000000001"].security_group_ids = ("sg-gone",)
    inv.network_interfaces["eni-00000000000000002"].security_group_ids = ("sg-gone",)
    result = one(inv)
    assert verdicts(result) == {"UDP": "unknown"}
    assert any("sg-gone" in f.message for f in findings(result, "INVALID_SPEC"))


def test_it_blocks_without_traffic_blocked_when_no_target_is_registered():
    inv = dns_inventory()
    inv.target_health[TG_ARN] = []
    result = one(inv)
    udp = protocol(result, "UDP")
    assert udp.verdict == "blocked" and udp.reasons == ("no registered targets",)
    assert "TRAFFIC_BLOCKED" not in codes(result)


def test_it_ignores_draining_targets():
    inv = blocked_dns()
    inv.target_health[TG_ARN][0] = replace(inv.target_health[TG_ARN][0], state="draining")
    assert protocol(one(inv), "UDP").targets_total == 1


def test_it_judges_instance_targets_on_the_primary_eni_and_the_node_port():
    result = one(dns_inventory(target_type="instance"))
    udp = protocol(result, "UDP")
    assert udp.verdict == "reachable" and udp.port == NODE_PORT
    assert [t.network_interface_id for t in udp.targets] == ["eni-00000000000000001", "eni-00000000000000002"]


def test_it_uses_the_pod_eni_annotation_for_security_groups_for_pods():
    inv = dns_inventory()
    inv.security_groups["sg-pod"] = m.SecurityGroup("sg-pod", ingress=allow_all())
    inv.network_interfaces["eni-branch"] = m.NetworkInterface(
        "eni-branch", private_ips=(), security_group_ids=("sg-pod",)
    )
    inv.network_interfaces["eni-00000000000000001"].security_group_ids = ("sg-nothing",)
    inv.security_groups["sg-nothing"] = m.SecurityGroup("sg-nothing")
    inv.pods["kube-system/coredns-0"].pod_eni = json.dumps(
        [{"eniId": "eni-branch", "privateIp": "10.0.1.15"}]
    )
    udp = protocol(one(inv), "UDP")
    assert udp.targets[0].network_interface_id == "eni-branch"
    assert udp.targets[0].admitted is True


def test_it_finds_the_eni_through_a_delegated_prefix():
    inv = dns_inventory()
    eni = inv.network_interfaces["eni-00000000000000001"]
    eni.private_ips = ("10.0.1.10",)
    eni.ipv4_prefixes = ("10.0.1.0/28",)
    assert protocol(one(inv), "UDP").targets[0].network_interface_id == eni.id


def test_it_expects_the_load_balancer_addresses_when_client_ip_is_not_preserved():
    tcp = protocol(one(dns_inventory(tg_protocol="TCP")), "TCP")
    assert not tcp.client_ip_preserved
    assert tcp.expected_sources == ("10.0.1.200/32", "10.0.2.200/32")


def test_it_preserves_the_client_ip_for_instance_targets_unless_disabled():
    default = protocol(one(dns_inventory(tg_protocol="TCP", target_type="instance", attributes={})), "TCP")
    off = one(
        dns_inventory(
            tg_protocol="TCP", target_type="instance", attributes={"preserve_client_ip.enabled": "false"}
        )
    )
    assert default.client_ip_preserved
    assert not protocol(off, "TCP").client_ip_preserved


def test_it_falls_back_to_lb_enis_then_subnets_for_private_addresses():
    inv = dns_inventory(tg_protocol="TCP")
    lb = inv.load_balancers[LB_ARN]
    lb.zones = tuple(replace(z, addresses=()) for z in lb.zones)
    inv.network_interfaces["eni-lb"] = m.NetworkInterface(
        "eni-lb", description="ELB net/dns-nlb/2c404b1a74052ed7", private_ips=("10.0.1.201",)
    )
    assert protocol(one(inv), "TCP").expected_sources == ("10.0.1.201/32",)
    del inv.network_interfaces["eni-lb"]
    assert protocol(one(inv), "TCP").expected_sources == ("10.0.1.0/24", "10.0.2.0/24")


def test_it_uses_the_whole_internet_for_an_internet_facing_lb():
    udp = protocol(one(dns_inventory(scheme="internet-facing")), "UDP")
    assert udp.expected_sources == ("0.0.0.0/0",)
    assert udp.verdict == "partial"


def test_the_client_cidrs_annotation_beats_the_cluster_setting():
    inv = dns_inventory(client_cidrs=("10.0.5.0/24",), cluster_client_cidrs=("192.168.0.0/16",))
    assert protocol(one(inv), "UDP").expected_sources == ("10.0.5.0/24",)
    inv.bindings[0].client_cidrs = None
    assert protocol(one(inv), "UDP").expected_sources == ("192.168.0.0/16",)


def test_an_ipv4_target_sees_ipv6_clients_from_the_lb_address():
    udp = protocol(one(dns_inventory(client_cidrs=("10.0.0.0/16", "2001:db8::/32"))), "UDP")
    assert udp.expected_sources == ("10.0.0.0/16",)  # the LB addresses are inside the VPC range


def test_a_rule_referencing_the_lb_security_group_admits_everything_it_sends():
    rules = (rule("udp", 53, LB_SG, kind="security_group"), rule("tcp", 53, LB_SG, kind="security_group"))
    result = one(dns_inventory(scheme="internet-facing", lb_security_groups=(LB_SG,), rules=rules))
    udp = protocol(result, "UDP")
    assert udp.verdict == "reachable"
    assert udp.expected_sources[0] == LB_SG
    assert result.health_check.admitted is True
    assert "CLIENT_RANGES_NOT_COVERED" not in codes(result)


def test_a_reference_to_another_security_group_does_not_admit_the_lb():
    rules = (rule("udp", 53, "sg-someone", kind="security_group"), rule("tcp", 53))
    assert verdicts(one(dns_inventory(rules=rules))) == {"UDP": "blocked"}


def test_an_uncollected_prefix_list_makes_the_verdict_unknown_never_blocked():
    udp = protocol(
        one(dns_inventory(rules=(rule("udp", 53, "pl-123", kind="prefix_list"), rule("tcp", 53)))), "UDP"
    )
    assert udp.verdict == "unknown"
    assert "pl-123" in " ".join(udp.reasons)


def test_a_collected_prefix_list_counts_as_its_entries():
    inv = dns_inventory(rules=(rule("udp", 53, "pl-123", kind="prefix_list"), rule("tcp", 53)))
    inv.prefix_lists["pl-123"] = m.PrefixList("pl-123", ("10.0.0.0/16",))
    assert verdicts(one(inv)) == {"UDP": "reachable"}
    inv = dns_inventory(rules=(rule("udp", 53, "pl-123", kind="prefix_list"), rule("tcp", 53)))
    inv.prefix_lists["pl-123"] = m.PrefixList("pl-123", ("10.0.0.0/24",))
    assert verdicts(one(inv)) in ({"UDP": "partial"}, {"UDP": "blocked"})


def test_a_network_acl_deny_blocks_what_the_security_group_admits():
    inv = dns_inventory()
    inv.network_acls.append(
        m.NetworkAcl(
            "acl-1",
            VPC,
            subnet_ids=("subnet-a", "subnet-b"),
            entries=(
                m.NetworkAclEntry(90, "17", "deny", False, "10.0.0.0/17", port_from=53, port_to=53),
                m.NetworkAclEntry(100, "-1", "allow", False, "0.0.0.0/0"),
            ),
        )
    )
    udp = protocol(one(inv), "UDP")
    assert udp.verdict == "partial"
    assert "acl-1 rule 90" in " ".join(udp.reasons)


def test_an_allowing_network_acl_changes_nothing():
    inv = dns_inventory()
    inv.network_acls.append(
        m.NetworkAcl("acl-1", VPC, True, entries=(m.NetworkAclEntry(100, "-1", "allow", False, "0.0.0.0/0"),))
    )
    assert verdicts(one(inv)) == {"UDP": "reachable"}


# --- findings: each fires, and stays quiet in the healthy case --------------------------------


@pytest.mark.parametrize("tg_protocol", ["UDP", "TCP", "TCP_UDP"])
@pytest.mark.parametrize("target_type", ["ip", "instance"])
def test_a_healthy_binding_has_no_problem_findings(tg_protocol, target_type):
    result = one(dns_inventory(tg_protocol=tg_protocol, target_type=target_type))
    assert set(verdicts(result).values()) == {"reachable"}
    assert not codes(result) & set(ALL_CODES)
    if tg_protocol == "TCP":
        assert "HEALTH_CHECK_PROTOCOL_MISMATCH" not in codes(result)


def test_it_flags_the_green_but_broken_case():
    result = one(blocked_dns())
    [masks] = findings(result, "HEALTH_CHECK_MASKS_TRAFFIC")
    assert masks.severity == "critical" and masks.protocol == "UDP"
    assert masks.evidence["targets"] == list(POD_IPS)
    [blocked] = findings(result, "TRAFFIC_BLOCKED")
    assert blocked.severity == "critical"


def test_traffic_blocked_is_a_warning_when_partial():
    result = one(dns_inventory(rules=(rule("udp", 53, "10.0.0.0/17"), rule("tcp", 53))))
    assert findings(result, "TRAFFIC_BLOCKED")[0].severity == "warning"


def test_masks_traffic_stays_quiet_when_the_blocked_targets_are_unhealthy():
    result = one(dns_inventory(net=None, rules=(), states=("unhealthy", "unhealthy")))
    assert "HEALTH_CHECK_MASKS_TRAFFIC" not in codes(result)


def test_health_check_protocol_mismatch_is_a_warning_when_udp_is_not_reachable():
    assert findings(one(blocked_dns()), "HEALTH_CHECK_PROTOCOL_MISMATCH")[0].severity == "warning"
    assert findings(one(dns_inventory()), "HEALTH_CHECK_PROTOCOL_MISMATCH")[0].severity == "info"


def test_it_reports_a_health_check_port_that_differs_from_the_traffic_port():
    rules = (rule("udp", 53), rule("tcp", 8080))
    result = one(dns_inventory(hc_port="8080", rules=rules, net=networking(("UDP", 53), ("TCP", 8080))))
    [finding] = findings(result, "HEALTH_CHECK_PORT_MISMATCH")
    assert finding.severity == "info"
    assert result.health_check.admitted is True
    assert "MISSING_NETWORKING_RULE" not in codes(result)


def test_it_reports_health_checks_the_rules_do_not_admit():
    result = one(dns_inventory(rules=(rule("udp", 53),), net=networking(("UDP", 53))))
    [finding] = findings(result, "HEALTH_CHECK_BLOCKED")
    assert finding.severity == "critical"
    assert finding.evidence["targets"] == list(POD_IPS)
    assert result.health_check.admitted is False
    missing = findings(result, "MISSING_NETWORKING_RULE")
    assert [(f.protocol, f.severity) for f in missing] == [("TCP", "warning")]


def test_it_reports_all_targets_unhealthy_and_says_the_nlb_fails_open():
    result = one(
        dns_inventory(states=("unhealthy", "unhealthy"), reasons=("Target.Timeout", "Target.Timeout"))
    )
    [finding] = findings(result, "ALL_TARGETS_UNHEALTHY")
    assert finding.severity == "critical" and "fails open" in finding.message
    assert "UNHEALTHY_TARGETS" not in codes(result)


def test_it_lists_the_reason_codes_of_some_unhealthy_targets():
    result = one(dns_inventory(states=("healthy", "unhealthy"), reasons=(None, "Target.FailedHealthChecks")))
    [finding] = findings(result, "UNHEALTHY_TARGETS")
    assert finding.evidence["reasons"] == {"Target.FailedHealthChecks": 1}
    assert "ALL_TARGETS_UNHEALTHY" not in codes(result)
    assert result.health_check.healthy == 1 and result.health_check.unhealthy == 1


def test_missing_networking_rule_is_info_when_outside_rules_admit_the_traffic():
    result = one(dns_inventory(net=networking(("TCP", 53))))
    [finding] = findings(result, "MISSING_NETWORKING_RULE")
    assert (finding.protocol, finding.severity) == ("UDP", "info")


def test_missing_networking_rule_resolves_named_ports_and_port_ranges():
    assert "MISSING_NETWORKING_RULE" not in codes(
        one(dns_inventory(net=networking(("UDP", "dns"), ("TCP", None))))
    )
    assert "MISSING_NETWORKING_RULE" in codes(
        one(dns_inventory(net=networking(("UDP", "http"), ("TCP", None))))
    )


def test_it_reports_networking_the_controller_has_not_reconciled():
    result = one(dns_inventory(rules=(rule("tcp", 53),), net=networking(("UDP", 53), ("TCP", 53))))
    [finding] = findings(result, "NETWORKING_NOT_RECONCILED")
    assert finding.evidence["missing"] == [
        {"securityGroup": NODE_SG, "protocol": "udp", "ports": "53", "peer": "10.0.0.0/16"}
    ]


def test_a_rule_with_another_description_counts_as_reconciled():
    rules = (rule("udp", 50, "10.0.0.0/16", description="mine", to_port=60), rule("tcp", 53))
    assert "NETWORKING_NOT_RECONCILED" not in codes(one(dns_inventory(rules=rules)))


def test_it_reports_an_empty_ports_list():
    net = (m.NetworkingRule((m.NetworkingPeer(cidr="10.0.0.0/16"),), ()),)
    result = one(dns_inventory(net=net))
    assert findings(result, "EMPTY_PORTS_LIST")[0].severity == "warning"


def test_it_reports_a_service_port_where_the_node_port_belongs():
    net = networking(("UDP", 53), ("TCP", NODE_PORT))
    result = one(dns_inventory(target_type="instance", net=net))
    [finding] = findings(result, "INSTANCE_PORT_NOT_NODEPORT")
    assert finding.evidence == {"rule": 0, "port": 53, "nodePort": NODE_PORT}


def test_it_reports_client_ranges_the_rules_do_not_cover():
    result = one(dns_inventory(scheme="internet-facing"))
    [finding] = findings(result, "CLIENT_RANGES_NOT_COVERED")
    assert "10.0.0.0/16" not in finding.evidence["uncovered"]
    assert "0.0.0.0/5" in finding.evidence["uncovered"]


def test_client_ranges_not_covered_is_not_about_tcp_groups_without_preservation():
    result = one(dns_inventory(tg_protocol="TCP", rules=(rule("tcp", 53, "10.0.1.200/32"),)))
    assert protocol(result, "TCP").verdict == "partial"
    assert "CLIENT_RANGES_NOT_COVERED" not in codes(result)


def test_overly_broad_source_is_info_when_the_clients_are_the_internet():
    rules = (rule("udp", 53, "0.0.0.0/0"), rule("tcp", 53))
    result = one(dns_inventory(scheme="internet-facing", rules=rules, net=None))
    assert findings(result, "OVERLY_BROAD_SOURCE")[0].severity == "info"


def test_overly_broad_source_is_a_warning_for_an_internal_lb():
    rules = (rule("udp", 53, "0.0.0.0/0"), rule("tcp", 53))
    result = one(dns_inventory(rules=rules))
    assert findings(result, "OVERLY_BROAD_SOURCE")[0].severity == "warning"


def test_it_reports_a_numeric_service_port_that_matches_tcp_and_udp():
    result = one(dns_inventory(service_port=53))
    [finding] = findings(result, "SERVICE_PROTOCOL_MISMATCH")
    assert "by name" in finding.message


def test_it_reports_a_service_port_protocol_the_group_does_not_carry():
    result = one(dns_inventory(service_port="dns-tcp"))
    [finding] = findings(result, "SERVICE_PROTOCOL_MISMATCH")
    assert finding.evidence["serviceProtocol"] == "TCP"


def test_it_reports_a_tcp_udp_group_whose_service_lacks_the_udp_port():
    ports = (m.ServicePort("dns-tcp", "TCP", 53, 53),)
    result = one(dns_inventory(tg_protocol="TCP_UDP", service_ports=ports, service_port="dns-tcp"))
    assert "SERVICE_PROTOCOL_MISMATCH" in codes(result)


def test_it_reports_registered_targets_that_differ_from_ready_endpoints():
    inv = dns_inventory()
    eps = inv.endpoint_slices[0]
    inv.endpoint_slices[0] = replace(
        eps, endpoints=(eps.endpoints[0], replace(eps.endpoints[1], ready=False))
    )
    [finding] = findings(one(inv), "TARGET_DRIFT")
    assert finding.evidence["notReady"] == ["10.0.2.25:53"]


def test_it_reports_drift_of_instance_targets_against_ready_nodes():
    inv = dns_inventory(target_type="instance")
    next(iter(inv.nodes.values())).ready = False
    [finding] = findings(one(inv), "TARGET_DRIFT")
    assert finding.evidence["notReady"] == [INSTANCES[0]]


def test_it_reports_several_security_groups_without_exactly_one_cluster_tag():
    inv = dns_inventory()
    inv.security_groups["sg-extra"] = m.SecurityGroup(
        "sg-extra", tags={"kubernetes.io/cluster/demo": "shared"}
    )
    for eni in inv.network_interfaces.values():
        eni.security_group_ids = (NODE_SG, "sg-extra")
    result = one(inv)
    [finding] = findings(result, "SECURITY_GROUP_TAG_AMBIGUOUS")
    assert finding.severity == "warning"
    assert verdicts(result) == {"UDP": "reachable"}


def test_one_tagged_group_among_several_is_not_ambiguous():
    inv = dns_inventory()
    inv.security_groups["sg-extra"] = m.SecurityGroup("sg-extra")
    for eni in inv.network_interfaces.values():
        eni.security_group_ids = (NODE_SG, "sg-extra")
    assert "SECURITY_GROUP_TAG_AMBIGUOUS" not in codes(one(inv))


def test_it_reports_problems_and_bad_cidrs_as_invalid_spec_naming_object_and_field():
    inv = dns_inventory(net=networking(("UDP", 53), ("TCP", 53), cidrs=("10.0.0.0/16", "10.0.0.999/8")))
    inv.bindings[0].problems.append(
        m.Problem("TargetGroupBinding kube-system/coredns", "spec.vpcID", "bad vpc")
    )
    result = one(inv)
    fields = {f.evidence["field"] for f in findings(result, "INVALID_SPEC")}
    assert fields == {"spec.vpcID", "spec.networking.ingress[0].from[1].ipBlock.cidr"}
    assert all("kube-system/coredns" in f.message for f in findings(result, "INVALID_SPEC"))


def test_it_reports_a_missing_service_and_a_missing_service_port():
    inv = dns_inventory(service_port="nope")
    assert any(f.evidence["field"] == "spec.serviceRef.port" for f in findings(one(inv), "INVALID_SPEC"))
    inv.services.clear()
    assert any(f.evidence["field"] == "spec.serviceRef.name" for f in findings(one(inv), "INVALID_SPEC"))


def test_it_reports_a_bad_client_cidr_annotation_and_ignores_it():
    result = one(dns_inventory(client_cidrs=("nonsense",)))
    assert any(m.CLIENT_CIDRS_ANNOTATION in f.evidence["field"] for f in findings(result, "INVALID_SPEC"))
    assert protocol(result, "UDP").expected_sources == ("10.0.0.0/16",)


def test_it_reports_stale_sources_at_inventory_now():
    inv = dns_inventory()
    inv.sources = [
        m.SourceStatus("aws", "prod", NOW - timedelta(minutes=10), 60, "throttled"),
        m.SourceStatus("cluster", "demo", NOW - timedelta(minutes=2), 60),
        m.SourceStatus("cluster", "never", None, 60),
    ]
    stale = findings(one(inv), "STALE_DATA")
    assert sorted(f.evidence["source"] for f in stale) == ["never", "prod"]
    inv.now = None
    assert "STALE_DATA" not in codes(one(inv))


# --- health check result, determinism, robustness ----------------------------------------------


def test_the_health_check_result_says_what_it_proves_and_what_it_cannot():
    hc = one(dns_inventory()).health_check
    assert hc.proves == "TCP port 53 accepts connections from the load balancer"
    assert "that UDP datagrams on port 53 reach the targets" in hc.cannot_prove
    assert (hc.admitted, hc.healthy, hc.unhealthy, hc.other) == (True, 2, 0, 0)


def test_results_are_sorted_and_deterministic():
    inv = _bundle_pair(blocked=True)
    inv.bindings.reverse()
    first = analyze(inv)
    assert [r.name for r in first] == ["coredns-tcp", "coredns-udp"]
    assert first == analyze(inv)


def test_it_never_raises_on_garbage():
    inv = dns_inventory()
    inv.bindings.append(m.Binding(uid="x", namespace="z", name="garbage", target_group_arn=123))  # type: ignore[arg-type]
    inv.bindings.append(m.Binding(uid="y", namespace="z", name="no-tg"))
    inv.target_health[TG_ARN].append(m.TargetHealth(TG_ARN, "not-an-ip", None, state=None))  # type: ignore[arg-type]
    inv.security_groups[NODE_SG].ingress += (
        m.SecurityGroupRule("udp", "x", None, "cidr", "bogus"),  # type: ignore[arg-type]
    )
    results = analyze(inv)
    assert [r.name for r in results] == ["coredns", "garbage", "no-tg"]
    assert all(p.verdict == "unknown" for r in results[1:] for p in r.protocols)


def test_it_analyzes_an_empty_inventory():
    assert analyze(m.Inventory(cluster="empty")) == []


# --- report ------------------------------------------------------------------------------------


def test_the_json_report_has_the_documented_shape():
    report = to_report(analyze(_bundle_pair(blocked=True)))
    json.dumps(report)
    binding = report["bindings"][1]
    assert set(binding) == {
        "cluster",
        "namespace",
        "name",
        "targetGroupArn",
        "targetType",
        "targetGroupProtocol",
        "protocols",
        "healthCheck",
        "findings",
        "fix",
    }
    assert binding["fix"] is None
    assert binding["protocols"][0]["targets"] == {"total": 2, "admitted": 0}
    assert set(binding["protocols"][0]) == {"protocol", "port", "verdict", "targets", "reasons"}
    assert set(binding["findings"][0]) == {"code", "severity", "protocol", "message"}


def test_the_text_report_neutralises_terminal_escapes_from_cloud_data():
    inv = dns_inventory(rules=(rule("tcp", 53, description="\x1b[2J\x1b]0;pwned\x07evil\r\nline"),), net=None)
    text = to_text(analyze(inv))
    assert "\x1b" not in text and "\r" not in text and "\x07" not in text
    assert "evil\\x0d\\x0aline" in text
    assert sanitize("a\u202eb") == "a\\u202eb"


@pytest.mark.parametrize(
    ("level", "blocked", "fixed"),
    [("blocked", True, False), ("partial", True, False), ("warning", True, False)],
)
def test_fail_on_matches_the_levels(level, blocked, fixed):
    assert fail_on_matches(analyze(_bundle_pair(blocked=True)), level) is blocked
    assert fail_on_matches(analyze(_bundle_pair(blocked=False)), level) is fixed


def test_fail_on_partial_matches_partial_but_blocked_does_not():
    results = analyze(dns_inventory(rules=(rule("udp", 53, "10.0.0.0/17"), rule("tcp", 53))))
    assert fail_on_matches(results, "partial")
    assert not fail_on_matches(results, "blocked")


def test_fail_on_rejects_an_unknown_level():
    with pytest.raises(ValueError, match="fail-on"):
        fail_on_matches([], "sometimes")


def test_networking_on_an_ambiguous_eni_is_not_reconciled_unless_a_group_already_holds_it():
    inv = dns_inventory(rules=(rule("tcp", 53),))
    inv.security_groups["sg-extra"] = m.SecurityGroup(
        "sg-extra", tags={"kubernetes.io/cluster/demo": "shared"}
    )
    for eni in inv.network_interfaces.values():
        eni.security_group_ids = (NODE_SG, "sg-extra")
    result = one(inv)
    assert {"SECURITY_GROUP_TAG_AMBIGUOUS", "NETWORKING_NOT_RECONCILED"} <= codes(result)
    [finding] = findings(result, "NETWORKING_NOT_RECONCILED")
    assert [x["protocol"] for x in finding.evidence["missing"]] == ["udp"]


# --- missing data: say unknown, but never hide what is known --------------------------------------


def _without_second_eni(inv: m.Inventory) -> m.Inventory:
    del inv.network_interfaces["eni-00000000000000002"]
    return inv


def test_an_unjudged_target_beside_an_admitting_one_makes_the_verdict_unknown_not_partial():
    result = one(_without_second_eni(dns_inventory()))

    assert verdicts(result) == {"UDP": "unknown"}
    assert "TRAFFIC_BLOCKED" not in codes(result)
    assert [t.admitted for t in protocol(result, "UDP").targets] == [True, None]


def test_a_target_known_to_refuse_is_reported_even_when_another_cannot_be_judged():
    result = one(_without_second_eni(dns_inventory(rules=(rule("tcp", 53),))))

    assert verdicts(result) == {"UDP": "unknown"}
    [blocked] = findings(result, "TRAFFIC_BLOCKED")
    assert blocked.severity == "warning" and "1 could not be judged" in blocked.message
    assert blocked.evidence["targets"] == [POD_IPS[0]]
    assert findings(result, "HEALTH_CHECK_MASKS_TRAFFIC")[0].evidence["targets"] == [POD_IPS[0]]


def test_known_admitting_and_refusing_targets_are_partial_whatever_the_unjudged_one_does():
    inv = _without_second_eni(dns_inventory(rules=(rule("udp", 53), rule("tcp", 53))))
    eni = "eni-00000000000000003"
    inv.security_groups["sg-tcp-only"] = m.SecurityGroup("sg-tcp-only", "tcp", VPC, {}, (rule("tcp", 53),))
    inv.network_interfaces[eni] = m.NetworkInterface(
        eni,
        "interface",
        "",
        "subnet-b",
        VPC,
        "us-east-1b",
        ("10.0.2.30",),
        security_group_ids=("sg-tcp-only",),
    )
    health = inv.target_health[TG_ARN]
    inv.target_health[TG_ARN] = [*health, replace(health[0], target_id="10.0.2.30")]

    result = one(inv)

    assert verdicts(result) == {"UDP": "partial"}
    assert [t.admitted for t in protocol(result, "UDP").targets] == [True, None, False]


def test_a_load_balancer_missing_from_the_aws_data_leaves_the_client_ranges_unknown():
    inv = dns_inventory(rules=(rule("udp", 53, "10.0.0.0/16"), rule("tcp", 53)))
    del inv.load_balancers[LB_ARN]

    result = one(inv)

    assert verdicts(result) == {"UDP": "unknown"}
    assert "was not collected" in protocol(result, "UDP").reasons[0]
    assert not codes(result) & {"TRAFFIC_BLOCKED", "HEALTH_CHECK_MASKS_TRAFFIC", "CLIENT_RANGES_NOT_COVERED"}


@pytest.mark.parametrize(
    ("rules", "verdict"),
    [((rule("tcp", 53),), "blocked"), (allow_all(), "reachable")],
)
def test_with_unknown_client_ranges_what_holds_for_every_address_is_still_judged(rules, verdict):
    inv = dns_inventory(rules=rules)
    del inv.load_balancers[LB_ARN]

    result = one(inv)

    assert verdicts(result) == {"UDP": verdict}
    assert "the client ranges are unknown" in protocol(result, "UDP").reasons[0]


def test_an_internal_load_balancer_without_its_vpc_leaves_the_client_ranges_unknown():
    """Not its subnets instead: a rule admitting only them would look like full coverage."""
    subnets_only = (rule("udp", 53, "10.0.1.0/24"), rule("udp", 53, "10.0.2.0/24"), rule("tcp", 53))
    inv = dns_inventory(rules=subnets_only)
    del inv.vpcs[VPC]

    result = one(inv)

    assert verdicts(result) == {"UDP": "unknown"}
    assert f"VPC {VPC} was not collected" in protocol(result, "UDP").reasons[0]


# --- networking the controller cannot apply ------------------------------------------------------


def test_a_networking_rule_without_peers_declares_nothing():
    no_peers = (m.NetworkingRule((), (m.NetworkingPort("UDP", 53),)),) + networking(("TCP", 53))

    result = one(dns_inventory(net=no_peers))

    [missing] = findings(result, "MISSING_NETWORKING_RULE")
    assert missing.protocol == "UDP"


def test_a_named_networking_port_with_instance_targets_is_invalid_and_declares_nothing():
    net = networking(("UDP", "dns"), ("TCP", NODE_PORT))

    result = one(dns_inventory(target_type="instance", net=net))

    [invalid] = findings(result, "INVALID_SPEC")
    assert "spec.networking.ingress[0].ports[0].port" in invalid.message and "NodePort" in invalid.message
    assert [f.protocol for f in findings(result, "MISSING_NETWORKING_RULE")] == ["UDP"]


def test_a_quoted_number_as_networking_port_is_a_port_name():
    """IntOrString keeps "53" a string: the controller looks for a container port named "53"."""
    result = one(dns_inventory(net=networking(("UDP", "53"), ("TCP", 53))))

    assert [f.protocol for f in findings(result, "MISSING_NETWORKING_RULE")] == ["UDP"]


# --- the load balancer's own security groups (docs/facts.md §3.5, §6 step 7) --------------------


def _with_lb_group(inv: m.Inventory, ingress, egress) -> m.Inventory:
    inv.security_groups[LB_SG] = m.SecurityGroup(LB_SG, "nlb", VPC, {}, tuple(ingress), tuple(egress))
    inv.load_balancers[LB_ARN] = replace(inv.load_balancers[LB_ARN], security_groups=(LB_SG,))
    return inv


ANY_OUT = (rule("-1", None, "0.0.0.0/0"),)


def test_an_lb_group_that_admits_no_udp_client_blocks_udp_while_targets_stay_healthy():
    """Health checks ignore the LB's inbound rules, so this is green but broken too."""
    inv = _with_lb_group(dns_inventory(), ingress=(rule("tcp", 53, "0.0.0.0/0"),), egress=ANY_OUT)

    result = one(inv)

    assert verdicts(result) == {"UDP": "blocked"}
    assert (
        f"security group(s) {LB_SG} of load balancer dns-nlb admit no udp"
        in protocol(result, "UDP").reasons[0]
    )
    assert {"TRAFFIC_BLOCKED", "HEALTH_CHECK_MASKS_TRAFFIC"} <= codes(result)
    assert result.health_check.admitted is True


def test_an_lb_group_without_an_outbound_rule_to_the_targets_blocks_traffic_and_health_checks():
    inv = _with_lb_group(dns_inventory(), ingress=(rule("-1", None, "0.0.0.0/0"),), egress=(rule("tcp", 53),))

    result = one(inv)

    assert verdicts(result) == {"UDP": "blocked"}
    assert "allow no outbound udp 53 to 10.0.1.15" in protocol(result, "UDP").targets[0].reason
    assert result.health_check.admitted is True  # TCP 53 may leave: the health checks get through


def test_an_lb_group_letting_health_checks_out_to_part_of_the_targets_only():
    egress = (rule("-1", None, "10.0.1.0/24"),)  # only the first target's subnet
    inv = _with_lb_group(dns_inventory(), ingress=(rule("-1", None, "0.0.0.0/0"),), egress=egress)

    result = one(inv)

    assert verdicts(result) == {"UDP": "partial"}
    assert result.health_check.admitted is False
    [blocked] = findings(result, "HEALTH_CHECK_BLOCKED")
    assert blocked.evidence["targets"] == [POD_IPS[1]] and "outbound rules" in blocked.message


def test_an_outbound_rule_to_the_targets_security_group_lets_traffic_out():
    egress = (rule("-1", None, NODE_SG, kind="security_group"),)
    inv = _with_lb_group(dns_inventory(), ingress=(rule("udp", 53, "0.0.0.0/0"),), egress=egress)

    assert verdicts(one(inv)) == {"UDP": "reachable"}


def test_lb_groups_that_were_not_collected_are_not_judged():
    inv = dns_inventory(lb_security_groups=("sg-not-collected",))

    assert verdicts(one(inv)) == {"UDP": "reachable"}


def test_the_fix_opens_the_lb_group_to_the_clients_when_it_refuses_them_and_that_is_enough():
    from bindings.fixes import apply_fix_to_inventory, generate_fix

    inv = _with_lb_group(dns_inventory(net=None), (rule("tcp", 53, "10.0.0.0/16"),), ANY_OUT)
    result = one(inv)

    fix = generate_fix(inv, result)

    assert fix is not None
    lb_rules = [r for r in fix.security_group_rules if r.security_group_id == LB_SG]
    assert [(r.protocol, r.from_port, r.peer, r.required) for r in lb_rules] == [
        ("udp", 53, "10.0.0.0/16", True)
    ]
    assert verdicts(one(apply_fix_to_inventory(inv, fix))) == {"UDP": "reachable"}


def test_the_fix_says_target_rules_cannot_help_when_the_lb_group_lets_nothing_out():
    from bindings.fixes import generate_fix

    inv = _with_lb_group(
        dns_inventory(rules=(rule("tcp", 53),), net=None), (rule("-1", None, "0.0.0.0/0"),), ()
    )
    result = one(inv)

    fix = generate_fix(inv, result)

    # The fix plans the egress rule on the load balancer's group (it no longer only warns).
    assert fix is not None and not any("let part of this traffic nowhere" in w for w in fix.warnings)
    egress = [r for r in fix.security_group_rules if r.direction == "egress"]
    assert egress and all(r.security_group_id == LB_SG and r.required for r in egress)
    assert any("authorize-security-group-egress" in c for c in fix.security_group_commands)


def test_a_tcp_listener_does_not_forward_to_a_tls_group():
    result = one(dns_inventory(tg_protocol="TLS", listener_protocols=("TCP",)))

    assert verdicts(result) == {"TCP": "not_offered"} and "NO_LISTENER" in codes(result)


def test_the_node_port_named_for_a_numeric_service_port_is_the_first_match_the_controller_registers():
    ports = (
        m.ServicePort("dns", "UDP", 53, 53, NODE_PORT),
        m.ServicePort("dns-tcp", "TCP", 53, 53, NODE_PORT + 1),
    )
    net = networking(("UDP", 53), ("TCP", NODE_PORT))

    result = one(dns_inventory(target_type="instance", service_port=53, service_ports=ports, net=net))

    [finding] = findings(result, "INSTANCE_PORT_NOT_NODEPORT")
    assert finding.evidence["nodePort"] == NODE_PORT


# --- network ACLs are stateless: the replies need their own outbound entries ---------------------


def _with_acl(inv: m.Inventory, *entries: m.NetworkAclEntry) -> m.Inventory:
    inbound = m.NetworkAclEntry(100, "-1", "allow", False, "0.0.0.0/0")
    inv.network_acls.append(
        m.NetworkAcl("acl-1", VPC, subnet_ids=("subnet-a", "subnet-b"), entries=(inbound, *entries))
    )
    return inv


def test_an_acl_that_lets_no_reply_out_blocks_the_traffic():
    inv = _with_acl(dns_inventory(), m.NetworkAclEntry(32767, "-1", "deny", True, "0.0.0.0/0"))

    result = one(inv)

    # The sources in the target's own subnet never cross its ACL (AWS VPC user guide, "Network
    # ACL basics"): the rest of the VPC's clients get no reply.
    assert verdicts(result) == {"UDP": "partial"}
    assert "outbound udp to port 1024-65535" in protocol(result, "UDP").targets[0].reason
    assert result.health_check.admitted is False  # the other zone's LB node gets no answer either


def test_an_acl_letting_replies_out_to_part_of_the_ephemeral_ports_only():
    inv = _with_acl(
        dns_inventory(),
        m.NetworkAclEntry(100, "17", "allow", True, "0.0.0.0/0", port_from=1024, port_to=32767),
        m.NetworkAclEntry(32767, "-1", "deny", True, "0.0.0.0/0"),
    )

    reason = protocol(one(inv), "UDP").targets[0].reason

    assert verdicts(one(inv)) == {"UDP": "partial"} and "outbound udp to port 32768-65535" in reason


def test_an_acl_allowing_replies_on_every_ephemeral_port_to_the_clients_is_fine():
    inv = _with_acl(
        dns_inventory(),
        m.NetworkAclEntry(100, "17", "allow", True, "10.0.0.0/16", port_from=1024, port_to=65535),
        m.NetworkAclEntry(110, "6", "allow", True, "10.0.0.0/16", port_from=1024, port_to=65535),
        m.NetworkAclEntry(32767, "-1", "deny", True, "0.0.0.0/0"),
    )

    assert verdicts(one(inv)) == {"UDP": "reachable"}


def test_a_group_whose_health_was_not_collected_is_unknown_not_empty():
    inv = dns_inventory()
    del inv.target_health[TG_ARN]

    result = one(inv)

    assert verdicts(result) == {"UDP": "unknown"}
    assert protocol(result, "UDP").reasons == ("target health not collected",)


def test_it_reports_a_tcp_udp_group_whose_service_ports_target_different_pod_ports():
    ports = (m.ServicePort("dns", "UDP", 53, 53), m.ServicePort("dns-tcp", "TCP", 53, 5353))

    result = one(dns_inventory(tg_protocol="TCP_UDP", service_ports=ports))

    [finding] = findings(result, "SERVICE_PROTOCOL_MISMATCH")
    assert finding.evidence["targetPorts"] == {"TCP": 5353, "UDP": 53}


def test_an_lb_group_admitting_only_some_clients_narrows_the_expected_client_ranges():
    """Internet-facing, but the NLB's group lets in 203.0.113.0/24 only: those are the clients."""
    rules = (rule("udp", 53, "203.0.113.0/24"), rule("tcp", 53))
    inv = _with_lb_group(
        dns_inventory(scheme="internet-facing", rules=rules), (rule("udp", 53, "203.0.113.0/24"),), ANY_OUT
    )

    result = one(inv)

    assert verdicts(result) == {"UDP": "reachable"}
    assert protocol(result, "UDP").expected_sources == (LB_SG, "203.0.113.0/24")
    assert "CLIENT_RANGES_NOT_COVERED" not in codes(result)


def test_an_internal_lb_group_open_to_everyone_keeps_the_vpc_as_the_clients():
    inv = _with_lb_group(dns_inventory(), (rule("-1", None, "0.0.0.0/0"),), ANY_OUT)

    assert protocol(one(inv), "UDP").expected_sources == (LB_SG, "10.0.0.0/16")


def test_an_internal_lb_group_admitting_on_premises_clients_makes_them_the_clients():
    rules = (rule("udp", 53, "192.168.0.0/16"), rule("tcp", 53))
    inv = _with_lb_group(dns_inventory(rules=rules), (rule("udp", 53, "192.168.0.0/16"),), ANY_OUT)

    result = one(inv)

    assert verdicts(result) == {"UDP": "reachable"}
    assert protocol(result, "UDP").expected_sources == (LB_SG, "192.168.0.0/16")


# --- load balancer groups: regressions found in review -----------------------------------------


def test_client_ranges_narrowed_by_one_listener_do_not_leak_to_another_group_on_the_same_lb():
    """Cache keys carry the group and protocol: results equal whether analysed together or alone."""
    inv = _with_lb_group(
        dns_inventory(scheme="internet-facing", rules=(rule("udp", 53), rule("tcp", 53))),
        (rule("udp", 53, "10.0.0.0/16"), rule("udp", 5353, "0.0.0.0/0")),
        ANY_OUT,
    )
    tg2 = TG_ARN + "-2"
    inv.target_groups[tg2] = replace(inv.target_groups[TG_ARN], arn=tg2, name="k8s-dns2")
    inv.target_health[tg2] = [replace(t, target_group_arn=tg2) for t in inv.target_health[TG_ARN]]
    inv.listeners.append(m.Listener(f"{LB_ARN}/listener-5353", LB_ARN, 5353, "UDP", (tg2,)))
    a = replace(inv.bindings[0], name="a")
    b = replace(inv.bindings[0], uid="uid-b", name="b", target_group_arn=tg2)

    alone = {}
    for binding in (a, b):
        inv.bindings[:] = [binding]
        alone[binding.name] = verdicts(one(inv))
    inv.bindings[:] = [a, b]
    together = {r.name: verdicts(r) for r in analyze(inv)}

    assert together == alone == {"a": {"UDP": "reachable"}, "b": {"UDP": "partial"}}


@pytest.mark.parametrize(
    "lb_inbound",
    [
        (rule("udp", 53, "10.0.1.0/24"), rule("udp", 53, "sg-clients", kind="security_group")),
        (rule("udp", 53, "10.0.1.0/24"), rule("udp", 53, "pl-123", kind="prefix_list")),
        (rule("udp", 53, "10.0.0.0/16"), rule("udp", 53, "192.168.0.0/16")),
    ],
    ids=["group-referenced-clients", "prefix-list-clients", "on-premises-next-to-the-vpc"],
)
def test_the_lb_group_never_narrows_away_clients_it_admits(lb_inbound):
    targets_admit = (rule("udp", 53, "10.0.1.0/24"), rule("tcp", 53))
    inv = _with_lb_group(dns_inventory(rules=targets_admit), lb_inbound, ANY_OUT)

    assert verdicts(one(inv)) == {"UDP": "partial"}


def test_one_of_two_load_balancers_refusing_the_protocol_makes_it_partial():
    inv = _with_lb_group(dns_inventory(), (rule("tcp", 53, "0.0.0.0/0"),), ANY_OUT)
    other = LB_ARN.replace("dns-nlb", "dns-nlb-2")
    inv.load_balancers[other] = replace(
        inv.load_balancers[LB_ARN], arn=other, name="dns-nlb-2", security_groups=()
    )
    inv.listeners.append(m.Listener(f"{other}/listener", other, 53, "UDP", (TG_ARN,)))

    result = one(inv)

    assert verdicts(result) == {"UDP": "partial"}
    [blocked] = findings(result, "TRAFFIC_BLOCKED")
    assert "load balancer dns-nlb admit no udp" in blocked.message


def test_a_tcp_udp_group_judges_each_protocol_against_its_own_lb_inbound_ranges():
    rules = (rule("tcp", 53, "0.0.0.0/0"), rule("udp", 53, "10.0.0.0/16"))
    inv = _with_lb_group(
        dns_inventory(tg_protocol="TCP_UDP", scheme="internet-facing", rules=rules), rules, ANY_OUT
    )

    assert verdicts(one(inv)) == {"TCP": "reachable", "UDP": "reachable"}


def test_an_ipv6_open_rule_is_not_called_overly_broad_for_ipv4_targets():
    rules = (rule("udp", 53), rule("tcp", 53), rule("-1", None, "::/0"))

    assert "OVERLY_BROAD_SOURCE" not in codes(one(dns_inventory(rules=rules)))


def test_a_missing_ports_list_is_invalid_spec_not_an_empty_ports_list():
    inv = dns_inventory()
    problem = m.Problem(
        "TargetGroupBinding kube-system/coredns", "spec.networking.ingress[0].ports", "missing"
    )
    inv.bindings[0] = replace(
        inv.bindings[0],
        networking=(m.NetworkingRule((m.NetworkingPeer(cidr="10.0.0.0/16"),), ()),),
        problems=(problem,),
    )

    result = one(inv)

    assert "EMPTY_PORTS_LIST" not in codes(result)
    assert any("ports" in f.message for f in findings(result, "INVALID_SPEC"))


def test_with_unknown_client_ranges_a_mix_of_open_and_shut_targets_is_still_partial():
    """One target admits every address, the other none (its ACL): partial whoever the clients are."""
    inv = dns_inventory(rules=allow_all())
    del inv.load_balancers[LB_ARN]
    # The shut subnet's own addresses are not filtered by its ACL: without its CIDR in the data
    # nothing is exempt, and the target admits no address at all.
    del inv.subnets["subnet-a"]
    inv.network_acls.append(m.NetworkAcl("acl-shut", VPC, subnet_ids=("subnet-a",), entries=()))

    assert verdicts(one(inv)) == {"UDP": "partial"}


def test_malformed_rules_acls_and_prefix_lists_are_invalid_spec_only_where_they_are_read():
    """Bad input is named (object and field) on the bindings whose judgement reads it; the verdict
    is still judged from the well-formed rest, and objects no binding reads stay silent."""
    bad = m.Problem(
        "SecurityGroup sg-0node00000000000a", "IpPermissions[3].FromPort", "'x'-53 is not a port range"
    )
    inv = dns_inventory(rules=allow_all())
    inv.security_groups["sg-0unused"] = m.SecurityGroup("sg-0unused", problems=[bad])
    inv.network_acls.append(
        m.NetworkAcl(
            "acl-0elsewhere",
            VPC,
            subnet_ids=("subnet-z",),
            problems=[m.Problem("NetworkAcl acl-0elsewhere", "Entries[0].RuleNumber", "bad")],
        )
    )
    inv.prefix_lists["pl-0unnamed"] = m.PrefixList(
        "pl-0unnamed", (), [m.Problem("PrefixList pl-0unnamed", "Entries[0].Cidr", "bad")]
    )
    untouched = one(inv)
    assert "INVALID_SPEC" not in codes(untouched) and verdicts(untouched) == {"UDP": "reachable"}

    inv.security_groups[NODE_SG].problems.append(bad)
    inv.security_groups[NODE_SG].ingress += (rule("tcp", 9153, "pl-0unnamed", kind="prefix_list"),)
    acl = m.NetworkAcl(
        "acl-0targets",
        VPC,
        subnet_ids=("subnet-a", "subnet-b"),
        entries=(
            m.NetworkAclEntry(100, "-1", "allow", False, "0.0.0.0/0"),
            m.NetworkAclEntry(100, "-1", "allow", True, "0.0.0.0/0"),
        ),
        problems=[
            m.Problem("NetworkAcl acl-0targets", "Entries[2].PortRange", "None is not a From-To range")
        ],
    )
    inv.network_acls.append(acl)
    touched = one(inv)
    invalid = {(f.evidence["object"], f.evidence["field"]) for f in findings(touched, "INVALID_SPEC")}
    assert invalid == {
        ("SecurityGroup sg-0node00000000000a", "IpPermissions[3].FromPort"),
        ("PrefixList pl-0unnamed", "Entries[0].Cidr"),
        ("NetworkAcl acl-0targets", "Entries[2].PortRange"),
    }
    assert verdicts(touched) == {"UDP": "reachable"}  # still judged from the well-formed rest


def test_hostile_network_input_is_rejected_by_the_normaliser_with_the_field_named():
    from bindings.analysis.normalize import normalize_aws

    records = normalize_aws(
        {
            "DescribeSecurityGroups": {
                "SecurityGroups": [
                    {
                        "GroupId": "sg-1",
                        "IpPermissions": [
                            {
                                "IpProtocol": "udp",
                                "FromPort": 70000,
                                "ToPort": 70001,
                                "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                            },
                            {
                                "IpProtocol": "tcp",
                                "FromPort": 53,
                                "ToPort": 53,
                                "IpRanges": [{"CidrIp": "10.0.0.0/8"}],
                            },
                        ],
                    }
                ]
            },
            "DescribeNetworkAcls": {
                "NetworkAcls": [
                    {
                        "NetworkAclId": "acl-1",
                        "Entries": [
                            {
                                "RuleNumber": 99999,
                                "Protocol": "17",
                                "RuleAction": "deny",
                                "CidrBlock": "0.0.0.0/0",
                            },
                            {
                                "RuleNumber": 10,
                                "Protocol": "udp\u202e",
                                "RuleAction": "deny",
                                "CidrBlock": "0.0.0.0/0",
                            },
                            {
                                "RuleNumber": 11,
                                "Protocol": "17",
                                "RuleAction": "maybe",
                                "CidrBlock": "0.0.0.0/0",
                            },
                            {
                                "RuleNumber": 12,
                                "Protocol": "17",
                                "RuleAction": "deny",
                                "CidrBlock": "300.0.0.0/8",
                            },
                            {
                                "RuleNumber": 13,
                                "Protocol": "17",
                                "RuleAction": "deny",
                                "CidrBlock": "0.0.0.0/0",
                            },
                            {
                                "RuleNumber": 14,
                                "Protocol": "-1",
                                "RuleAction": "allow",
                                "CidrBlock": "0.0.0.0/0",
                            },
                        ],
                    }
                ]
            },
            "GetManagedPrefixListEntries": {
                "pl-1": {"Entries": [{"Cidr": "10.0.0.0/8"}, {"Cidr": "x" * 10_000}]}
            },
        }
    )
    sg = records.security_groups["sg-1"]
    assert [r.from_port for r in sg.ingress] == [53]
    assert [p.field for p in sg.problems] == ["IpPermissions[0].FromPort"]
    (acl,) = records.network_acls
    assert [e.rule_number for e in acl.entries] == [14]
    assert [p.field for p in acl.problems] == [
        "Entries[0].RuleNumber",
        "Entries[1].Protocol",
        "Entries[2].RuleAction",
        "Entries[3].CidrBlock",
        "Entries[4].PortRange",
    ]
    pl = records.prefix_lists["pl-1"]
    assert pl.cidrs == ("10.0.0.0/8",) and [p.field for p in pl.problems] == ["Entries[1].Cidr"]
    assert all(len(p.message) < 300 for p in (*sg.problems, *acl.problems, *pl.problems))  # quoted, bounded


def test_an_acl_refusal_holds_whatever_an_uncollected_prefix_list_holds():
    inv = dns_inventory(rules=(rule("udp", 53, "pl-123", kind="prefix_list"), rule("tcp", 53)))
    inv = _with_acl(inv)  # inbound allow-all only; outbound: nothing, so no reply leaves
    inv.network_acls[0].entries += (m.NetworkAclEntry(32767, "-1", "deny", True, "0.0.0.0/0"),)
    udp = protocol(one(inv), "UDP")
    assert udp.verdict in ("blocked", "partial")  # refused replies: known, list or not
    assert "pl-123" in " ".join(t.reason for t in udp.targets)
