"""Fix generation: golden fixes per scenario, CRD-schema validity, hostile input, limits.

Golden files live in tests/fixes_golden/<scenario>__<ns>_<name>.yaml (the whole fix as
`fix_to_dict` renders it). Regenerate with `BH_UPDATE_GOLDEN=1 pytest tests/test_fixes.py`, then
read every changed file against docs/facts.md §3.4/§6 before committing it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from bindings.analysis import model as m
from bindings.analysis.bundle import bundle_inventory, load_bundle
from bindings.analysis.engine import analyze
from bindings.fixes import (
    FIXABLE_CODES,
    RULE_LIMIT,
    fix_to_dict,
    fix_to_yaml,
    generate_fix,
    validate_manifest,
)
from tests import factories
from tests.factories import shell_words

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
GOLDEN = Path(__file__).resolve().parent / "fixes_golden"
UPDATE = os.environ.get("BH_UPDATE_GOLDEN") == "1"


def _scenario_results() -> list[tuple[str, m.Inventory, m.BindingResult]]:
    out = []
    for folder in sorted(p for p in SCENARIOS.iterdir() if (p / "aws.json").exists()):
        inventory = bundle_inventory(load_bundle(folder))
        for result in analyze(inventory):
            out.append((folder.name, inventory, result))
    return out


SCENARIO_RESULTS = _scenario_results()
FIXABLE = [
    (name, inv, result) for name, inv, result in SCENARIO_RESULTS if generate_fix(inv, result) is not None
]


def _id(item) -> str:
    return f"{item[0]}:{item[2].key}"


def _golden_path(scenario: str, result: m.BindingResult) -> Path:
    return GOLDEN / f"{scenario}__{result.namespace}_{result.name}.yaml"


def test_every_scenario_with_a_fixable_finding_gets_a_fix() -> None:
    for name, inv, result in SCENARIO_RESULTS:
        codes = {f.code for f in result.findings} & FIXABLE_CODES
        # A SERVICE_PROTOCOL_MISMATCH that is not the TCP/UDP ambiguity has no generated fix.
        if codes == {"SERVICE_PROTOCOL_MISMATCH"} and not any(
            set(f.evidence.get("protocols", [])) >= {"TCP", "UDP"} for f in result.findings
        ):
            continue
        # A health-check port reported at info severity is deliberate (e.g. externalTrafficPolicy
        # Local: kube-proxy answers on healthCheckNodePort, whose TCP rule is in place): nothing to fix.
        if codes == {"HEALTH_CHECK_PORT_MISMATCH"} and all(
            f.severity == "info" for f in result.findings if f.code == "HEALTH_CHECK_PORT_MISMATCH"
        ):
            continue
        if codes:
            assert generate_fix(inv, result) is not None, f"{name} {result.key}: {sorted(codes)}"


class _GoldenDumper(yaml.SafeDumper):
    """Multi-line strings (commands, Terraform, explanations) as literal blocks: reviewable."""


def _str_block(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_GoldenDumper.add_representer(str, _str_block)


def _golden_text(fix) -> str:
    return yaml.dump(fix_to_dict(fix), Dumper=_GoldenDumper, sort_keys=False, allow_unicode=True, width=100)


@pytest.mark.parametrize("item", FIXABLE, ids=_id)
def test_golden_fix(item) -> None:
    scenario, inv, result = item
    rendered = _golden_text(generate_fix(inv, result))
    assert yaml.safe_load(rendered) == fix_to_dict(generate_fix(inv, result))
    path = _golden_path(scenario, result)
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(rendered, encoding="utf-8")
    assert path.exists(), f"missing golden file {path.name}; run with BH_UPDATE_GOLDEN=1 and review it"
    assert path.read_text(encoding="utf-8") == rendered


def test_no_stale_golden_files() -> None:
    expected = {_golden_path(s, r).name for s, _, r in FIXABLE}
    present = {p.name for p in GOLDEN.glob("*.yaml")}
    assert present <= expected, f"golden files without a fix: {sorted(present - expected)}"


@pytest.mark.parametrize("item", FIXABLE, ids=_id)
def test_generated_manifests_validate_and_are_json(item) -> None:
    _, inv, result = item
    fix = generate_fix(inv, result)
    data = fix_to_dict(fix)
    assert json.loads(json.dumps(data)) == data
    if fix.manifest is not None:
        assert validate_manifest(fix.manifest) == []
        assert yaml.safe_load(data["manifestYaml"]) == fix.manifest
        assert yaml.safe_load(fix_to_yaml(fix)) == fix.manifest
        metadata = fix.manifest["metadata"]
        assert set(metadata) <= {"name", "namespace", "labels", "annotations"}
        assert "status" not in fix.manifest
        for rule in fix.manifest["spec"].get("networking", {}).get("ingress", []):
            assert rule["ports"], "never `ports: []`"
    for rule in fix.security_group_rules:
        assert rule.description != m.CONTROLLER_RULE_DESCRIPTION
        assert rule.description.startswith("binding-health: ")


# --- key semantics, spelled out ----------------------------------------------------------------


def _fix_for(scenario: str, key: str):
    for name, inv, result in SCENARIO_RESULTS:
        if name == scenario and result.key == key:
            return inv, result, generate_fix(inv, result)
    raise AssertionError(f"{scenario} {key} not found")


def test_dns_udp_blocked_adds_one_rule_from_the_vpc_for_udp_and_the_tcp_health_check() -> None:
    _, _, fix = _fix_for("dns-udp-blocked", "kube-system/coredns-udp")
    assert fix.mode == "networking"
    assert fix.manifest["spec"]["networking"] == {
        "ingress": [
            {
                "from": [{"ipBlock": {"cidr": "10.0.0.0/16"}}],
                "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
            }
        ]
    }
    # Every other field of the live object stays; server-set fields go.
    assert fix.manifest["spec"]["serviceRef"] == {"name": "coredns-external", "port": "dns-udp"}
    assert fix.manifest["metadata"] == {"name": "coredns-udp", "namespace": "kube-system"}
    assert fix.patch_body == {"spec": {"networking": fix.manifest["spec"]["networking"]}}
    assert {"TRAFFIC_BLOCKED", "MISSING_NETWORKING_RULE"} <= set(fix.targets)
    assert fix.protocols == ("UDP",)


def test_nlb_with_security_group_gets_one_rule_from_that_group() -> None:
    inv = factories.dns_inventory(
        scheme="internet-facing", lb_security_groups=(factories.LB_SG,), net=None, rules=()
    )
    result = analyze(inv)[0]
    fix = generate_fix(inv, result)
    assert fix.manifest["spec"]["networking"]["ingress"] == [
        {
            "from": [{"securityGroup": {"groupID": factories.LB_SG}}],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
        }
    ]
    assert not fix.warnings  # the LB's group filters clients: nothing is opened to the internet


def test_internal_nlb_without_sg_and_narrow_clients_gets_separate_health_check_rule() -> None:
    inv = factories.dns_inventory(net=None, rules=(), client_cidrs=("192.168.0.0/16",))
    fix = generate_fix(inv, analyze(inv)[0])
    assert fix.manifest["spec"]["networking"]["ingress"] == [
        {"from": [{"ipBlock": {"cidr": "192.168.0.0/16"}}], "ports": [{"protocol": "UDP", "port": 53}]},
        {
            "from": [{"ipBlock": {"cidr": "10.0.1.0/24"}}, {"ipBlock": {"cidr": "10.0.2.0/24"}}],
            "ports": [{"protocol": "TCP", "port": 53}],
        },
    ]


def test_instance_targets_get_the_node_port() -> None:
    _, _, fix = _fix_for("instance-service-port", "kube-system/coredns-udp")
    ports = [p for r in fix.manifest["spec"]["networking"]["ingress"] for p in r["ports"]]
    assert ports == [{"protocol": "UDP", "port": 30053}, {"protocol": "TCP", "port": 30053}]
    assert "INSTANCE_PORT_NOT_NODEPORT" in fix.targets


def test_empty_ports_list_is_never_emitted() -> None:
    _, _, fix = _fix_for("udp-empty-ports", "kube-system/coredns-udp")
    assert fix.manifest["spec"]["networking"]["ingress"] == [
        {
            "from": [{"ipBlock": {"cidr": "10.0.0.0/16"}}],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
        }
    ]
    assert "EMPTY_PORTS_LIST" in fix.targets


def test_numeric_service_port_ambiguity_becomes_the_named_port() -> None:
    _, _, fix = _fix_for("service-protocol-mismatch", "kube-system/coredns-udp-numeric")
    assert fix.manifest["spec"]["serviceRef"] == {"name": "coredns-external", "port": "dns-udp"}
    assert fix.patch_body == {"spec": {"serviceRef": {"port": "dns-udp"}}}
    assert fix.targets == ("SERVICE_PROTOCOL_MISMATCH",)


def test_tag_ambiguity_uses_security_group_commands() -> None:
    _, _, fix = _fix_for("sg-tag-ambiguous", "kube-system/coredns-udp")
    assert fix.mode == "security-groups"
    assert fix.manifest is None  # networking is already right; the controller cannot apply it
    required = [r for r in fix.security_group_rules if r.required]
    assert {(r.security_group_id, r.protocol, r.from_port, r.peer) for r in required} == {
        ("sg-0node00000000000a", "udp", 53, "10.0.0.0/16")
    }
    assert "aws ec2 authorize-security-group-ingress" in fix.security_group_commands[0]
    assert 'resource "aws_vpc_security_group_ingress_rule"' in fix.terraform
    assert "SECURITY_GROUP_TAG_AMBIGUOUS" not in fix.targets  # only retagging removes it; explained
    assert "kubernetes.io/cluster/demo" in "\n".join(fix.explanation)


def test_health_check_port_mismatch_moves_the_check_to_the_traffic_port() -> None:
    _, _, fix = _fix_for("health-check-port-mismatch", "kube-system/coredns-udp")
    (change,) = fix.health_checks
    assert shlex.split(change.command.replace("\\\n", " ")) == [
        "aws",
        "elbv2",
        "modify-target-group",
        "--target-group-arn",
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/k8s-dns-udp/97044aff375392b7",
        "--health-check-port",
        "traffic-port",
    ]
    assert "TCP on 53" in change.reason
    assert {"protocol": "TCP", "port": 53} in fix.manifest["spec"]["networking"]["ingress"][0]["ports"]


# --- never the whole internet unless configured ------------------------------------------------


def _all_peers(fix) -> list[str]:
    peers = [r.peer for r in fix.security_group_rules]
    if fix.manifest is not None:
        for rule in fix.manifest["spec"].get("networking", {}).get("ingress", []):
            peers += [p.get("ipBlock", {}).get("cidr", "") for p in rule["from"]]
    return peers


@pytest.mark.parametrize("item", FIXABLE, ids=_id)
def test_no_open_internet_unless_configured(item) -> None:
    _, inv, result = item
    fix = generate_fix(inv, result)
    broad = {"0.0.0.0/0", "::/0"} & set(_all_peers(fix))
    if broad:
        assert any("0.0.0.0/0" in w or "::/0" in w for w in fix.warnings)
        lb = next(iter(inv.load_balancers.values()))
        assert lb.scheme == "internet-facing"
        # Only the load balancer's own group (its front door) may open to everyone when it has one.
        opened = {r.security_group_id for r in fix.security_group_rules if r.peer in ("0.0.0.0/0", "::/0")}
        assert not lb.security_groups or opened <= set(lb.security_groups)


def test_internal_default_never_opens_the_internet() -> None:
    for tg_protocol in ("UDP", "TCP", "TCP_UDP"):
        for target_type in ("ip", "instance"):
            inv = factories.dns_inventory(
                tg_protocol=tg_protocol, target_type=target_type, net=None, rules=()
            )
            fix = generate_fix(inv, analyze(inv)[0])
            assert {"0.0.0.0/0", "::/0"}.isdisjoint(_all_peers(fix)), (tg_protocol, target_type)
            assert not fix.warnings


def test_configured_internet_clients_open_with_a_warning() -> None:
    inv = factories.dns_inventory(net=None, rules=(), cluster_client_cidrs=("0.0.0.0/0",))
    fix = generate_fix(inv, analyze(inv)[0])
    assert "0.0.0.0/0" in _all_peers(fix)
    assert any("whole internet" in w for w in fix.warnings)
    # The TCP health check never rides along to the internet: it gets the LB subnets.
    hc = [
        r
        for r in fix.manifest["spec"]["networking"]["ingress"]
        if {"protocol": "TCP", "port": 53} in r["ports"]
    ]
    assert hc and all(p["ipBlock"]["cidr"] != "0.0.0.0/0" for r in hc for p in r["from"])


# --- hostile input ------------------------------------------------------------------------------

HOSTILE = [
    "x\n  injected: true",
    "a: b",
    "'; rm -rf / #",
    '"quoted" \\ back',
    "${path.module}%{ if true }x%{ endif }",
    "$(touch /tmp/pwned)`id`",
    "-rf",
    "--- !!python/object:os.system",
    "\u2028line\x85sep\t\x1b[31m",
    "# comment & | ; < > *",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_strings_cannot_change_structure(text: str) -> None:
    inv = factories.dns_inventory(net=None, rules=())
    binding = inv.bindings[0]
    binding.name = f"coredns{text}"
    binding.annotations = {f"note{text}": text, m.CLIENT_CIDRS_ANNOTATION: f"10.0.0.0/16,{text}"}
    binding.client_cidrs = ("10.0.0.0/16",)
    binding.raw = {
        "apiVersion": "elbv2.k8s.aws/v1beta1",
        "kind": "TargetGroupBinding",
        "metadata": {
            "name": binding.name,
            "namespace": "kube-system",
            "labels": {"app": text},
            "annotations": dict(binding.annotations),
            "uid": "uid-tgb",
            "resourceVersion": "7",
            "managedFields": [{"manager": "kubectl"}],
        },
        "spec": {
            "serviceRef": {"name": "coredns-external", "port": "dns"},
            "targetGroupARN": factories.TG_ARN,
            "targetType": "ip",
            "networking": {
                "ingress": [
                    {"from": [{"ipBlock": {"cidr": text}}], "ports": [{"protocol": "UDP", "port": 53}]}
                ]
            },
        },
        "status": {"observedGeneration": 1},
    }
    # A hostile security-group id on the ENIs, where commands and Terraform print it.
    hostile_sg = f"sg-{text}"
    inv.security_groups[hostile_sg] = replace(inv.security_groups.pop(factories.NODE_SG), id=hostile_sg)
    for eni in inv.network_interfaces.values():
        eni.security_group_ids = (hostile_sg,)
    result = analyze(inv)[0]
    fix = generate_fix(inv, result)
    assert fix is not None
    data = fix_to_dict(fix)

    # YAML: the document parses back to exactly the object (no key was injected).
    assert yaml.safe_load(data["manifestYaml"]) == fix.manifest
    assert yaml.safe_load(fix_to_yaml(fix)) == fix.manifest
    assert fix.manifest["metadata"]["name"] == binding.name
    assert fix.manifest["metadata"]["labels"] == {"app": text}
    assert set(fix.manifest) == {"apiVersion", "kind", "metadata", "spec"}
    assert validate_manifest(fix.manifest) == []
    # The invalid peer was dropped, not copied: the controller would fail the whole binding on it.
    cidrs = [p["ipBlock"]["cidr"] for r in fix.manifest["spec"]["networking"]["ingress"] for p in r["from"]]
    assert text not in cidrs

    # Shell: each command splits into exactly the intended words, the values intact (read by bash:
    # values with control characters are written with ANSI-C quoting, which shlex does not know).
    words = shell_words(fix.kubectl_patch)
    assert words[:3] == ["kubectl", "patch", f"targetgroupbindings.elbv2.k8s.aws/{binding.name}"]
    assert words[3:5] == ["--namespace", "kube-system"]
    assert json.loads(words[-1]) == fix.patch_body
    for command in fix.security_group_commands:
        words = shell_words(command)
        assert words[:3] == ["aws", "ec2", "authorize-security-group-ingress"]
        group = words[4] if words[3] == "--group-id" else words[3].split("=", 1)[1]
        assert group == hostile_sg
        assert isinstance(json.loads(words[-1]), list)
        for perm in json.loads(words[-1]):
            for entry in perm.get("IpRanges", []) + perm.get("UserIdGroupPairs", []):
                assert all(c.isprintable() for c in entry["Description"])

    # Terraform: one attribute per line, values JSON strings with template sequences escaped.
    assert all(ch == "\n" or ch.isprintable() for ch in fix.terraform)
    for line in fix.terraform.split("\n"):
        if "=" in line and not line.startswith("resource"):
            key, value = (part.strip() for part in line.split("=", 1))
            assert key.isidentifier()
            if value.startswith('"'):
                assert "${" not in value.replace("$${", "") and "%{" not in value.replace("%%{", "")
                unescaped = re.sub(r"\\U([0-9a-f]{8})", lambda g: chr(int(g.group(1), 16)), value)
                decoded = json.loads(unescaped.replace("$${", "${").replace("%%{", "%{"))
                if key == "security_group_id":
                    assert decoded == hostile_sg
    assert fix.terraform.count("resource ") == fix.terraform.count("\n}")


# --- the 60-rule limit ----------------------------------------------------------------------------


def test_rule_limit_is_reported_with_a_merge_proposal() -> None:
    filler = tuple(factories.rule("tcp", 1000 + i, f"172.16.{i}.0/24") for i in range(59))
    inv = factories.dns_inventory(net=None, rules=filler, client_cidrs=("192.168.0.0/24", "192.168.1.0/24"))
    fix = generate_fix(inv, analyze(inv)[0])
    count = fix.rule_counts[factories.NODE_SG]
    assert count["limit"] == RULE_LIMIT
    assert count["current"] == 59 and count["current"] + count["added"] > RULE_LIMIT
    warning = next(w for w in fix.warnings if "limit of 60" in w)
    assert factories.NODE_SG in warning and "merge adjacent ranges" in warning
    assert "udp 53 from 192.168.0.0/24, 192.168.1.0/24 merges into 192.168.0.0/23" in warning


def test_rule_count_within_limit_has_no_warning() -> None:
    inv = factories.dns_inventory(net=None, rules=())
    fix = generate_fix(inv, analyze(inv)[0])
    assert fix.rule_counts[factories.NODE_SG] == {"current": 0, "added": 2, "limit": 60, "family": "IPv4"}
    assert not any("limit" in w for w in fix.warnings)


def test_nothing_fixable_gives_none() -> None:
    inv = factories.dns_inventory()
    assert generate_fix(inv, analyze(inv)[0]) is None


def test_schema_rejects_broken_manifests() -> None:
    good = {
        "apiVersion": "elbv2.k8s.aws/v1beta1",
        "kind": "TargetGroupBinding",
        "metadata": {"name": "a", "namespace": "b"},
        "spec": {"serviceRef": {"name": "s", "port": 53}, "targetGroupARN": "arn", "targetType": "ip"},
    }
    assert validate_manifest(good) == []
    bad_protocol = json.loads(json.dumps(good))
    bad_protocol["spec"]["networking"] = {
        "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}], "ports": [{"protocol": "TCP_UDP"}]}]
    }
    assert validate_manifest(bad_protocol)
    no_from = json.loads(json.dumps(good))
    no_from["spec"]["networking"] = {"ingress": [{"ports": [{"protocol": "UDP", "port": 53}]}]}
    assert validate_manifest(no_from)
    both_peers = json.loads(json.dumps(good))
    both_peers["spec"]["networking"] = {
        "ingress": [
            {"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "securityGroup": {"groupID": "sg-1"}}], "ports": []}
        ]
    }
    assert validate_manifest(both_peers)
    bad_vpc = json.loads(json.dumps(good))
    bad_vpc["spec"]["vpcID"] = "vpc-XYZ"
    assert validate_manifest(bad_vpc)
