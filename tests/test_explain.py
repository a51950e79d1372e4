"""Root-cause sentences and finding groups (bindings/analysis/explain.py) on real analyses of the
scenario bundles: one shape per layer that can refuse, every verdict, IPv4 and IPv6."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from bindings.analysis import explain
from bindings.analysis.bundle import bundle_inventory, load_bundle
from bindings.analysis.engine import analyze
from bindings.store.fieldmaps import jsonable

SCENARIOS = Path(__file__).parent / "scenarios"


def explained(folder: Path, name: str = "coredns-udp") -> tuple[dict, list[explain.Rule]]:
    inv = bundle_inventory(load_bundle(folder))
    # The shape the detail page reads: the result as stored (bindings/store/results.py).
    [binding] = [jsonable(r) for r in analyze(inv) if r.name == name]
    rules = [
        explain.Rule(g.id, r.protocol, r.from_port, r.to_port)
        for g in inv.security_groups.values()
        for r in g.ingress
    ]
    return binding, rules


def sentence(folder: str | Path, protocol: str = "UDP", name: str = "coredns-udp") -> str:
    binding, rules = explained(folder if isinstance(folder, Path) else SCENARIOS / folder, name)
    [pv] = [p for p in binding["protocols"] if p["protocol"] == protocol]
    return explain.root_cause(pv, rules)


def test_blocked_by_a_group_that_admits_only_the_other_protocol():
    assert re.fullmatch(
        r"UDP 53 blocked: sg-\S+ admits TCP 53 only; clients 10\.0\.0\.0/16", sentence("dns-udp-blocked")
    )


def test_reachable_says_how_many_targets_admit_it_from_whom():
    assert re.fullmatch(
        r"UDP 53 reachable: 2 of 2 target\(s\) admit it from clients \S+", sentence("dns-udp-fixed")
    )


def test_ipv6_clients_are_named():
    text = sentence("ipv6-blocked")
    assert re.fullmatch(
        r"UDP 53 blocked: sg-\S+ admits UDP 53 only from sources other than the clients; "
        r"clients 2001:db8:100::/48, 2600:1f18:1234:5600::/56",
        text,
    ), text


def test_the_load_balancers_own_group_is_named_as_the_refusing_layer():
    text = sentence("nlb-sg-refuses-udp")
    assert "UDP 53 blocked: the security group(s) sg-" in text and " of load balancer " in text


def test_partial_counts_the_refusing_targets():
    text = sentence("udp-partial-one-target")
    assert re.match(r"UDP 53 partial: 1 of 2 target\(s\) refuse it; ", text), text


def test_partial_coverage_names_the_uncovered_sources():
    text = sentence("udp-partial-two-rules")
    assert "admit" in text and "from only part of the sources (uncovered " in text, text


def test_a_network_acl_entry_is_named_when_it_is_the_refusing_layer(tmp_path):
    folder = tmp_path / "nacl"
    shutil.copytree(SCENARIOS / "dns-udp-fixed", folder)
    aws = json.loads((folder / "aws.json").read_text())
    subnets = sorted({e["SubnetId"] for e in aws["DescribeNetworkInterfaces"]["NetworkInterfaces"]})
    allow = {"RuleNumber": 100, "Protocol": "-1", "RuleAction": "allow", "CidrBlock": "0.0.0.0/0"}
    aws["DescribeNetworkAcls"] = {
        "NetworkAcls": [
            {
                "NetworkAclId": "acl-0deny53",
                "VpcId": aws["DescribeVpcs"]["Vpcs"][0]["VpcId"],
                "IsDefault": False,
                "Associations": [{"SubnetId": s} for s in subnets],
                "Entries": [
                    {
                        "RuleNumber": 90,
                        "Protocol": "17",
                        "RuleAction": "deny",
                        "Egress": False,
                        "CidrBlock": "0.0.0.0/0",
                        "PortRange": {"From": 53, "To": 53},
                    },
                    {**allow, "Egress": False},
                    {**allow, "Egress": True},
                ],
            }
        ]
    }
    (folder / "aws.json").write_text(json.dumps(aws))

    text = sentence(folder)

    # Partial since the ACL filters only at the subnet boundary (clients inside a target's subnet
    # pass); either way the sentence names the ACL entry as the refusing layer.
    assert re.match(
        r"UDP 53 (blocked|partial): (2 of 2 target\(s\) refuse it; )?network ACL acl-0deny53 rule 90 denies",
        text,
    ), text


def test_unknown_and_not_offered_say_why():
    assert sentence("eni-not-found").startswith("UDP 53 unknown: ")
    binding, _ = explained(SCENARIOS / "no-listener", name=explained_name("no-listener"))
    texts = [explain.root_cause(pv) for pv in binding["protocols"]]
    assert texts and all(re.match(r"(TCP|UDP) not offered: no listener forwards", t) for t in texts)


def explained_name(folder: str) -> str:
    inv = bundle_inventory(load_bundle(SCENARIOS / folder))
    return inv.bindings[0].name


def test_findings_fold_the_consequences_under_the_missing_rule():
    binding, _ = explained(SCENARIOS / "dns-udp-blocked")

    groups = explain.group_findings(binding["findings"])

    assert groups[0].root["code"] == "MISSING_NETWORKING_RULE" and groups[0].root["protocol"] == "UDP"
    assert {f["code"] for f in groups[0].consequences} == {
        "TRAFFIC_BLOCKED",
        "HEALTH_CHECK_MASKS_TRAFFIC",
        "CLIENT_RANGES_NOT_COVERED",
        "HEALTH_CHECK_PROTOCOL_MISMATCH",
    }
    # Nothing is lost: every finding is a root or a consequence exactly once.
    flat = [g.root for g in groups] + [f for g in groups for f in g.consequences]
    assert sorted(json.dumps(f, sort_keys=True) for f in flat) == sorted(
        json.dumps(f, sort_keys=True) for f in binding["findings"]
    )


@pytest.mark.parametrize(
    ("folder", "root"),
    [("udp-not-reconciled", "NETWORKING_NOT_RECONCILED"), ("udp-empty-ports", "EMPTY_PORTS_LIST")],
)
def test_other_causes_lead_their_protocol(folder, root):
    binding, _ = explained(SCENARIOS / folder)

    groups = explain.group_findings(binding["findings"])

    assert any(g.root["code"] == root and g.consequences for g in groups), [g.root["code"] for g in groups]


def test_a_lone_symptom_stays_a_finding_of_its_own():
    findings = [{"code": "TRAFFIC_BLOCKED", "severity": "critical", "protocol": "UDP", "message": "x"}]

    [group] = explain.group_findings(findings)

    assert group.root == findings[0] and group.consequences == []


@pytest.mark.parametrize(
    ("verdict", "status", "disagrees"),
    [
        ("blocked", "ok", True),
        ("partial", "ok", True),
        ("reachable", "failed", True),
        ("blocked", "failed", False),
        ("reachable", "ok", False),
        ("unknown", "ok", False),
        ("blocked", None, False),
    ],
)
def test_probe_disagreement_has_a_likely_reason(verdict, status, disagrees):
    text = explain.probe_disagreement(verdict, status)

    assert bool(text) is disagrees
    if text:
        assert text.startswith("probe disagrees: ")
