"""Controller parity: the analysis agrees with the AWS Load Balancer Controller's own unit tests.

The `parity-*` bundles in tests/scenarios turn the informative cases of the controller's
`pkg/networking/networking_manager_test.go` and `webhooks/elbv2/targetgroupbinding_validator_test.go`
(kubernetes-sigs/aws-load-balancer-controller) into bundles whose expected results follow from the
controller's expected results; each binding names its cases in `controllerTests`. Future changes
must keep passing them. Beside the bundles: the security-group choice against the controller's
`resolveEndpointSGForENI` table, and the fixes for the parity findings, verified by re-analysis.
"""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from hypothesis import given, settings
from hypothesis import strategies as st

from bindings.analysis import controller_security_group, parse_eni_sg_tags
from bindings.analysis import model as m
from bindings.analysis.bundle import BundleError, bundle_inventory, load_bundle, write_bundle
from bindings.analysis.engine import analyze
from bindings.fixes import apply_fix_to_inventory, fix_to_dict, generate_fix
from tests import factories
from tests.scenarios.expectations import report_failures

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
PARITY = sorted(
    p for p in SCENARIOS.iterdir() if p.name.startswith("parity-") and (p / "expected.json").is_file()
)
NODE_SG = "sg-0node00000000000a"
NODE_B_SG = "sg-0nodeb0000000000b"
EXTRA_SG = "sg-0extra0000000000c"
UDP_KEY = "kube-system/coredns-udp"


def _report(folder: Path) -> dict:
    out = StringIO()
    call_command("analyze", str(folder), "--format", "json", stdout=out)
    return json.loads(out.getvalue())


def _result(folder: str, key: str = UDP_KEY) -> tuple[m.Inventory, m.BindingResult]:
    inv = bundle_inventory(load_bundle(SCENARIOS / folder))
    return inv, {r.key: r for r in analyze(inv)}[key]


def _findings(result: m.BindingResult, code: str) -> list[m.Finding]:
    return [f for f in result.findings if f.code == code]


# --- the suite ------------------------------------------------------------------------------------


def test_the_suite_covers_every_area_the_controller_tests() -> None:
    areas = {p.name.split("-")[1] for p in PARITY}
    assert areas == {"permission", "named", "sg", "aggregation", "webhook"}
    assert len(PARITY) >= 30


@pytest.mark.parametrize("folder", PARITY, ids=[p.name for p in PARITY])
def test_parity_bundle_matches_the_controllers_expected_result(folder: Path) -> None:
    expected = json.loads((folder / "expected.json").read_text())
    for key, want in expected["bindings"].items():
        cited = want.get("controllerTests")
        assert cited and all(isinstance(c, str) and ": " in c for c in cited), (
            f"{key} cites no controller test"
        )
    failures = report_failures(expected, _report(folder))
    assert not failures, "\n".join(failures)


def test_every_parity_bundle_is_listed_in_the_scenarios_readme() -> None:
    readme = (SCENARIOS / "README.md").read_text()
    assert [p.name for p in PARITY if f"`{p.name}`" not in readme] == []


# --- the security-group choice: resolveEndpointSGForENI's table -----------------------------------

_TAGGED = {"kubernetes.io/cluster/cluster-a": "owned"}
_B_TAGS = {"keyA": "valueA", "keyB": "valueB2", "keyC": "valueC", "keyD": "valueD"}


def _groups(b_tags: dict[str, str]) -> dict[str, m.SecurityGroup]:
    return {"sg-a": m.SecurityGroup("sg-a", tags=dict(_TAGGED)), "sg-b": m.SecurityGroup("sg-b", tags=b_tags)}


_CHOICES = [
    ("Only one security group in eniInfo returns early", ["sg-a"], {}, {}, "sg-a"),
    ("No security group in eniInfo returns error", [], {}, {}, ()),
    (
        "A single security group with cluster name tag and no service target tags set",
        ["sg-a", "sg-b"],
        _B_TAGS,
        {},
        "sg-a",
    ),
    (
        "A single security group with cluster name tag and one service target tag set",
        ["sg-a", "sg-b"],
        {**_TAGGED, **_B_TAGS},
        {"keyA": "valueA"},
        "sg-b",
    ),
    (
        "A single security group with cluster name tag and one service target tag set with no matches",
        ["sg-a", "sg-b"],
        {**_TAGGED, **_B_TAGS},
        {"keyA": "valueNotA"},
        (),
    ),
    (
        "A single security group with cluster name tag and multiple service target tags set",
        ["sg-a", "sg-b"],
        {**_TAGGED, **_B_TAGS},
        {"keyA": "valueA", "keyB": "valueB2"},
        "sg-b",
    ),
    (
        "A single security group with cluster name tag and multiple service target tags set with no matches",
        ["sg-a", "sg-b"],
        {**_TAGGED, **_B_TAGS},
        {"keyA": "valueA", "keyB": "valueNotB2"},
        (),
    ),
    (
        "A single security group with cluster name tag and a service target tags with an empty value",
        ["sg-a", "sg-b"],
        {**_TAGGED, **_B_TAGS, "keyA": ""},
        {"keyA": ""},
        "sg-b",
    ),
    (
        "A single security group with cluster name tag and a service target tag with an empty value "
        "with no matches",
        ["sg-a", "sg-b"],
        {**_TAGGED, **_B_TAGS, "keyA": ""},
        {"keyE": ""},
        (),
    ),
    # Beyond the table: two cluster-tagged groups and no flag is the ambiguity itself.
    ("(two cluster-tagged groups, no flag)", ["sg-a", "sg-b"], {**_TAGGED}, {}, ("sg-a", "sg-b")),
]


@pytest.mark.parametrize(
    ("case", "sg_ids", "b_tags", "flag", "want"), [pytest.param(*c, id=c[0]) for c in _CHOICES]
)
def test_the_security_group_choice_follows_resolve_endpoint_sg_for_eni(
    case, sg_ids, b_tags, flag, want
) -> None:
    assert controller_security_group(sg_ids, _groups(b_tags), "cluster-a", flag) == want, case


def test_the_choice_is_unknown_when_a_group_of_the_eni_was_not_collected() -> None:
    assert controller_security_group(["sg-a", "sg-gone"], _groups({}), "cluster-a") is None


# --- the tag flag as input ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (["keyA=valueA"], "must be an object"),
        ({"keyA": 1}, "value must be a string"),
        ({"": "x"}, "tag key"),
        ({"k" * 129: "x"}, "tag key"),
        ({"keyA": "v" * 257}, "at most 256"),
        ({f"k{i}": "v" for i in range(51)}, "at most 50"),
    ],
)
def test_a_malformed_tag_flag_is_a_bundle_error_naming_the_field(tmp_path, value, message) -> None:
    source = SCENARIOS / "parity-sg-choice-flag-match"
    bundle = load_bundle(source)
    target = write_bundle(
        tmp_path / "b",
        kube_objects=bundle.kube_objects,
        aws=bundle.aws,
        meta={**bundle.meta, "serviceTargetEniSecurityGroupTags": value},
    )
    with pytest.raises(BundleError) as raised:
        load_bundle(target)
    assert "bundle.json" in str(raised.value) and "serviceTargetEniSecurityGroupTags" in str(raised.value)
    assert message in str(raised.value)
    with pytest.raises(ValueError, match=message):
        parse_eni_sg_tags(value)


def test_the_tag_flag_survives_a_bundle_round_trip_and_decides_the_verdict(tmp_path) -> None:
    bundle = load_bundle(SCENARIOS / "parity-sg-choice-flag-match")
    assert bundle_inventory(bundle).eni_sg_tags == {"keyA": "valueA"}
    archive = write_bundle(
        tmp_path / "b.tar.gz", kube_objects=bundle.kube_objects, aws=bundle.aws, meta=bundle.meta
    )
    assert bundle_inventory(load_bundle(archive)).eni_sg_tags == {"keyA": "valueA"}
    # Without the flag the same cluster reads as ambiguous: the false finding the flag removes.
    without = {k: v for k, v in bundle.meta.items() if k != "serviceTargetEniSecurityGroupTags"}
    plain = write_bundle(tmp_path / "plain", kube_objects=bundle.kube_objects, aws=bundle.aws, meta=without)
    codes = {
        f.code for f in {r.key: r for r in analyze(bundle_inventory(load_bundle(plain)))}[UDP_KEY].findings
    }
    assert "SECURITY_GROUP_TAG_AMBIGUOUS" in codes


# --- findings that name what the controller does ---------------------------------------------------


def test_named_ports_are_checked_per_group_against_that_groups_pods_only() -> None:
    _, result = _result("parity-named-port-per-group-wrong")
    (finding,) = _findings(result, "NETWORKING_NOT_RECONCILED")
    missing = {(x["securityGroup"], x["protocol"], x["ports"]) for x in finding.evidence["missing"]}
    # The second group lacks its own pod's 5353; 53 (the first group's pod) is not asked of it,
    # and 5353 is not asked of the first group.
    assert missing == {(NODE_B_SG, "udp", "5353"), (NODE_B_SG, "tcp", "5353")}


@pytest.mark.parametrize("folder", ["parity-named-port-undeclared", "parity-named-port-undeclared-ipv6"])
def test_an_undeclared_named_port_is_invalid_spec_naming_the_port_and_the_pods(folder) -> None:
    _, result = _result(folder)
    named = [f for f in _findings(result, "INVALID_SPEC") if f.evidence.get("namedPort")]
    assert {f.evidence["namedPort"] for f in named} == {"dns", "dns-tcp"}
    for finding in named:
        assert finding.evidence["pods"] == ["kube-system/coredns-6d4b75cb6d-d3e4f"]
        assert "none of its declared rules will be written" in finding.message
        assert finding.evidence["field"].startswith("spec.networking.ingress[")


def test_a_hostile_port_name_is_reported_escaped() -> None:
    _, result = _result("parity-named-port-hostile")
    (finding,) = [f for f in _findings(result, "INVALID_SPEC") if f.evidence.get("namedPort")]
    assert "\u202e" not in finding.message and "\\u202e" in finding.message
    assert set(finding.evidence["pods"]) == {
        "kube-system/coredns-6d4b75cb6d-a1b2c",
        "kube-system/coredns-6d4b75cb6d-d3e4f",
    }


def test_the_ambiguity_message_names_the_flags_tags() -> None:
    _, result = _result("parity-sg-choice-flag-no-match")
    (finding,) = _findings(result, "SECURITY_GROUP_TAG_AMBIGUOUS")
    assert "keyA=valueNotA" in finding.message
    assert finding.evidence["requiredTags"] == {"keyA": "valueNotA"}


@pytest.mark.parametrize(
    ("folder", "key", "field"),
    [
        ("parity-webhook-tg-protocol-mismatch", UDP_KEY, "spec.targetGroupProtocol"),
        ("parity-webhook-node-selector-ip", UDP_KEY, "spec.nodeSelector"),
        ("parity-webhook-vpc-mismatch", UDP_KEY, "spec.vpcID"),
        ("parity-webhook-vpc-malformed", UDP_KEY, "spec.vpcID"),
        ("parity-webhook-ip-address-type", UDP_KEY, "spec.ipAddressType"),
        ("parity-webhook-ip-address-type-unset", UDP_KEY, "spec.ipAddressType"),
        ("parity-webhook-quic-instance", UDP_KEY, "spec.targetType"),
        ("parity-webhook-assume-role-instance", UDP_KEY, "spec.iamRoleArnToAssume"),
        ("parity-webhook-duplicate-target-group", UDP_KEY, "spec.targetGroupARN"),
        ("parity-webhook-duplicate-target-group", "kube-system/coredns-udp-copy", "spec.targetGroupARN"),
    ],
)
def test_each_webhook_rejection_names_its_field(folder, key, field) -> None:
    _, result = _result(folder, key)
    fields = {f.evidence.get("field") for f in _findings(result, "INVALID_SPEC")}
    assert field in fields


# --- fixes, verified by re-analysis ---------------------------------------------------------------


def _apply(folder: str) -> tuple[dict, m.BindingResult, m.BindingResult]:
    inv, before = _result(folder)
    fix = generate_fix(inv, before)
    assert fix is not None, folder
    after = {r.key: r for r in analyze(apply_fix_to_inventory(inv, fix))}[UDP_KEY]
    return fix_to_dict(fix), before, after


@pytest.mark.parametrize(
    "folder",
    ["parity-named-port-undeclared", "parity-named-port-undeclared-ipv6", "parity-named-port-hostile"],
)
def test_the_fix_for_an_undeclared_named_port_uses_the_number(folder) -> None:
    fix, _, after = _apply(folder)
    ports = [p.get("port") for r in fix["manifest"]["spec"]["networking"]["ingress"] for p in r["ports"]]
    assert ports and all(isinstance(p, int) for p in ports), ports
    assert 53 in ports
    assert not [f for f in after.findings if f.code == "INVALID_SPEC" and f.evidence.get("namedPort")]
    assert {p.protocol: p.verdict for p in after.protocols} == {"UDP": "reachable"}


def test_the_fix_writes_to_the_group_the_tag_flag_picks() -> None:
    fix, _, after = _apply("parity-sg-choice-flag-match-all")
    groups = {r["securityGroup"] for r in fix["securityGroupRules"]}
    assert groups == {EXTRA_SG}
    assert {p.protocol: p.verdict for p in after.protocols} == {"UDP": "reachable"}
    assert "NETWORKING_NOT_RECONCILED" not in {f.code for f in after.findings}


def test_the_fix_for_a_named_port_per_group_adds_each_groups_own_number() -> None:
    fix, _, after = _apply("parity-named-port-per-group-wrong")
    written = {(r["securityGroup"], r["protocol"], r["fromPort"]) for r in fix["securityGroupRules"]}
    assert written == {(NODE_B_SG, "udp", 5353), (NODE_B_SG, "tcp", 5353)}
    assert {p.protocol: p.verdict for p in after.protocols} == {"UDP": "reachable"}


# --- property: the engine and the fix generator choose exactly as the one function does ----------

_TAG_KEYS = st.sampled_from(["kubernetes.io/cluster/demo", "kubernetes.io/cluster/other", "team", "tier"])
_TAG_VALUES = st.sampled_from(["", "owned", "dns", "web"])
_TAGS = st.dictionaries(_TAG_KEYS, _TAG_VALUES, max_size=4)


@settings(max_examples=150, deadline=None)
@given(
    node_tags=_TAGS,
    extra_tags=_TAGS,
    flag=st.dictionaries(st.sampled_from(["team", "tier"]), _TAG_VALUES, max_size=2),
)
def test_findings_and_fixes_follow_the_one_security_group_choice(node_tags, extra_tags, flag) -> None:
    inv = factories.dns_inventory(rules=())
    inv.eni_sg_tags = flag
    inv.security_groups[factories.NODE_SG].tags = node_tags
    inv.security_groups["sg-0extra"] = m.SecurityGroup("sg-0extra", "extra", factories.VPC, extra_tags, ())
    eni = inv.network_interfaces["eni-00000000000000001"]
    eni.security_group_ids = (factories.NODE_SG, "sg-0extra")
    choice = controller_security_group(eni.security_group_ids, inv.security_groups, "demo", flag)

    (result,) = analyze(inv)
    codes = {f.code for f in result.findings}
    assert ("SECURITY_GROUP_TAG_AMBIGUOUS" in codes) == isinstance(choice, tuple)
    if isinstance(choice, str):
        # Both ENIs have a group the controller writes to: the rules it lacks are asked of those.
        (finding,) = [f for f in result.findings if f.code == "NETWORKING_NOT_RECONCILED"]
        assert {x["securityGroup"] for x in finding.evidence["missing"]} == {choice, factories.NODE_SG}
        fix = generate_fix(inv, result)
        assert fix is not None
        assert {r.security_group_id for r in fix.security_group_rules} <= {choice, factories.NODE_SG}
        after = {r.key: r for r in analyze(apply_fix_to_inventory(inv, fix))}[result.key]
        assert {p.verdict for p in after.protocols} == {"reachable"}
