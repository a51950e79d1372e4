"""The fix works: applied to the inventory and re-analysed, what it targets is repaired.

For every scenario bundle and for hypothesis-generated inventories: `analyze(apply_fix_to_inventory(
inv, fix))` reports the targeted protocols `reachable` and none of the targeted finding codes. The
targets themselves are checked too, so the property cannot hold by a fix that targets nothing:
every fixable code the engine reports must be targeted, except the ones a fix cannot remove by
construction (documented below).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bindings.analysis import model as m
from bindings.analysis.bundle import bundle_inventory, load_bundle
from bindings.analysis.engine import analyze
from bindings.fixes import FIXABLE_CODES, apply_fix_to_inventory, generate_fix
from tests import factories

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
# Codes a fix may leave in place on purpose:
# - SECURITY_GROUP_TAG_AMBIGUOUS: only retagging a security group removes it; the fix adds the
#   rules directly and explains the retagging instead of guessing which group to untag.
# - SERVICE_PROTOCOL_MISMATCH other than the TCP/UDP ambiguity (a port of the wrong protocol,
#   TCP_UDP pairs): changing which Service port a binding targets is not a network fix.
# - HEALTH_CHECK_PORT_MISMATCH when the targets do not accept TCP on the traffic port: the
#   separate health-check port is then deliberate, and it gets its rule instead.
UNTARGETED_OK = {"SECURITY_GROUP_TAG_AMBIGUOUS", "SERVICE_PROTOCOL_MISMATCH", "HEALTH_CHECK_PORT_MISMATCH"}


def _check(inv: m.Inventory, result: m.BindingResult) -> None:
    fix = generate_fix(inv, result)
    if fix is None:
        return
    after_inv = apply_fix_to_inventory(inv, fix)
    after = {r.key: r for r in analyze(after_inv)}[result.key]
    after_codes = {f.code for f in after.findings}
    left = set(fix.targets) & after_codes
    assert not left, (
        f"{result.key}: still reported after the fix: {sorted(left)}\n"
        + "\n".join(f"  after: {f.code}: {f.message}" for f in after.findings if f.code in left)
        + f"\n  fix: {fix.summary}; rules: {fix.security_group_rules}"
    )
    verdicts = {p.protocol: p.verdict for p in after.protocols}
    for proto in fix.protocols:
        assert verdicts.get(proto) == "reachable", f"{result.key}: {proto} is {verdicts.get(proto)}"
    # Nothing the fix did not mean to touch got worse.
    before = {p.protocol: p.verdict for p in result.protocols}
    for proto, verdict in before.items():
        if verdict == "reachable":
            assert verdicts.get(proto) == "reachable", (
                f"{result.key}: {proto} regressed to {verdicts.get(proto)}"
            )
    # The original inventory is untouched (the fix works on a deep copy).
    assert {r.key: r for r in analyze(inv)}[result.key].findings == result.findings


def _untargeted(result: m.BindingResult, fix) -> set[str]:
    codes = {f.code for f in result.findings} & FIXABLE_CODES
    return codes - set(fix.targets) - UNTARGETED_OK


def _scenarios() -> list[tuple[str, m.Inventory]]:
    return [
        (folder.name, bundle_inventory(load_bundle(folder)))
        for folder in sorted(p for p in SCENARIOS.iterdir() if (p / "aws.json").exists())
    ]


@pytest.mark.parametrize(("name", "inv"), _scenarios(), ids=lambda v: v if isinstance(v, str) else "")
def test_fix_repairs_what_it_targets_in_every_scenario(name: str, inv: m.Inventory) -> None:
    for result in analyze(inv):
        fix = generate_fix(inv, result)
        if fix is None:
            continue
        _check(inv, result)
        assert not _untargeted(result, fix), f"{name} {result.key}: {sorted(_untargeted(result, fix))}"


def test_dns_udp_blocked_becomes_reachable_with_the_controllers_rules() -> None:
    inv = bundle_inventory(load_bundle(SCENARIOS / "dns-udp-blocked"))
    result = {r.key: r for r in analyze(inv)}["kube-system/coredns-udp"]
    fix = generate_fix(inv, result)
    after = apply_fix_to_inventory(inv, fix)
    rules = after.security_groups["sg-0node00000000000a"].ingress
    written = {(r.protocol, r.from_port, r.source) for r in rules if r.controller_owned}
    # The TCP 53 rule already exists by hand: the controller (which diffs without descriptions)
    # only writes the UDP one.
    assert written == {("udp", 53, "10.0.0.0/16")}
    verdicts = {r.key: {p.protocol: p.verdict for p in r.protocols} for r in analyze(after)}
    assert verdicts["kube-system/coredns-udp"] == {"UDP": "reachable"}
    assert verdicts["kube-system/coredns-tcp"] == {"TCP": "reachable"}


# --- random inventories -------------------------------------------------------------------------

PROTOCOLS = st.sampled_from(["UDP", "TCP", "TCP_UDP"])
RULE_SOURCES = st.sampled_from(["10.0.0.0/16", "10.0.0.0/17", "10.0.1.0/24", "192.168.0.0/16", "0.0.0.0/0"])


@st.composite
def sg_rules(draw, target_type: str) -> tuple[m.SecurityGroupRule, ...]:
    port = factories.NODE_PORT if target_type == "instance" else 53
    out = []
    for _ in range(draw(st.integers(0, 4))):
        proto = draw(st.sampled_from(["tcp", "udp", "-1", "17"]))
        rule_port = draw(st.sampled_from([port, 53, 8080, None]))
        description = draw(st.sampled_from(["", m.CONTROLLER_RULE_DESCRIPTION, "by hand"]))
        out.append(factories.rule(proto, rule_port, draw(RULE_SOURCES), description=description))
    return tuple(out)


@st.composite
def networkings(draw, target_type: str):
    port = factories.NODE_PORT if target_type == "instance" else 53
    choice = draw(
        st.sampled_from(["none", "empty-ports", "udp-only", "tcp-only", "service-port", "both", "sg"])
    )
    if choice == "none":
        return None
    if choice == "empty-ports":
        return (m.NetworkingRule((m.NetworkingPeer(cidr="10.0.0.0/16"),), ()),)
    if choice == "udp-only":
        return factories.networking(("UDP", port))
    if choice == "tcp-only":
        return factories.networking(("TCP", port))
    if choice == "service-port":
        return factories.networking(("UDP", 53), ("TCP", 53))
    if choice == "sg":
        return factories.networking(("UDP", port), ("TCP", port), cidrs=(), sgs=(factories.LB_SG,))
    return factories.networking(("UDP", port), ("TCP", port), cidrs=(draw(RULE_SOURCES),))


@st.composite
def inventories(draw) -> m.Inventory:
    target_type = draw(st.sampled_from(["ip", "instance"]))
    tg_protocol = draw(PROTOCOLS)
    scheme = draw(st.sampled_from(["internal", "internet-facing"]))
    lb_sgs = draw(st.sampled_from([(), (factories.LB_SG,)]))
    clients = draw(st.sampled_from([None, ("192.168.0.0/16",), ("10.0.0.0/16", "172.16.0.0/12")]))
    hc_port = draw(st.sampled_from(["traffic-port", "traffic-port", "8080"]))
    service_port = draw(st.sampled_from(["dns", 53]))
    return factories.dns_inventory(
        tg_protocol=tg_protocol,
        target_type=target_type,
        rules=draw(sg_rules(target_type)),
        net=draw(networkings(target_type)),
        scheme=scheme,
        lb_security_groups=lb_sgs,
        client_cidrs=clients,
        hc_port=hc_port,
        service_port=service_port,
        states=draw(
            st.sampled_from([("healthy", "healthy"), ("unhealthy", "unhealthy"), ("healthy", "unhealthy")])
        ),
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inventories())
def test_fix_repairs_what_it_targets_in_random_inventories(inv: m.Inventory) -> None:
    for result in analyze(inv):
        fix = generate_fix(inv, result)
        if fix is None:
            continue
        _check(inv, result)
        assert not _untargeted(result, fix), sorted(_untargeted(result, fix))


@settings(max_examples=100, deadline=None)
@given(inventories(), st.booleans())
def test_ambiguous_groups_are_fixed_with_direct_rules(inv: m.Inventory, both_tagged: bool) -> None:
    extra = "sg-0extra0000000000c"
    tags = {"kubernetes.io/cluster/demo": "shared"} if both_tagged else {}
    inv.security_groups[extra] = m.SecurityGroup(extra, "extra", factories.VPC, tags, ())
    if not both_tagged:
        inv.security_groups[factories.NODE_SG].tags = {}
    for eni in inv.network_interfaces.values():
        eni.security_group_ids = (factories.NODE_SG, extra)
    for result in analyze(inv):
        fix = generate_fix(inv, result)
        if fix is None:
            continue
        _check(inv, result)
        if "TRAFFIC_BLOCKED" in fix.targets:
            assert fix.mode == "security-groups"
            assert all(r.description != m.CONTROLLER_RULE_DESCRIPTION for r in fix.security_group_rules)


# --- network ACL and load-balancer outbound refusals --------------------------------------------

ACL_DENIALS = st.lists(
    st.tuples(
        st.integers(1, 99),  # rule number, below the allow-all at 100
        st.sampled_from(["6", "17", "-1"]),
        st.booleans(),  # egress (the replies) or inbound
        st.sampled_from(["0.0.0.0/0", "10.0.0.0/16", "10.0.2.0/24", "192.168.0.0/16"]),
    ),
    min_size=1,
    max_size=3,
    unique_by=lambda d: (d[0], d[2]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inventories(), ACL_DENIALS, st.booleans())
def test_acl_and_lb_egress_refusals_are_fixed_and_verified(
    inv: m.Inventory, denials, egress_shut: bool
) -> None:
    """Whatever deny entries the targets' ACL has in front of its allow-all, and whether the LB's
    group lets anything out: the fix plans the ACL entries and egress rules, and re-analysis
    finds what it targets repaired."""
    entries = [
        m.NetworkAclEntry(
            number,
            proto,
            "deny",
            egress,
            cidr,
            port_from=None if proto == "-1" else (1024 if egress else 0),
            port_to=None if proto == "-1" else 65535,
        )
        for number, proto, egress, cidr in denials
    ]
    entries += [
        m.NetworkAclEntry(100, "-1", "allow", False, "0.0.0.0/0"),
        m.NetworkAclEntry(100, "-1", "allow", True, "0.0.0.0/0"),
        m.NetworkAclEntry(32767, "-1", "deny", False, "0.0.0.0/0"),
        m.NetworkAclEntry(32767, "-1", "deny", True, "0.0.0.0/0"),
    ]
    inv.network_acls.append(
        m.NetworkAcl("acl-0t", factories.VPC, subnet_ids=("subnet-a", "subnet-b"), entries=tuple(entries))
    )
    lb_sg = inv.security_groups.get(factories.LB_SG)
    if lb_sg is not None and egress_shut:
        lb_sg.egress = (factories.rule("tcp", 443, "0.0.0.0/0"),)
    for result in analyze(inv):
        fix = generate_fix(inv, result)
        if fix is None:
            continue
        _check(inv, result)
        # A deny at rule 1 (or too few free numbers below it) leaves no room for an entry that
        # AWS would evaluate first: the fix says so and does not claim those codes.
        unplannable = any("not every refusal could be planned" in w for w in fix.warnings)
        if not unplannable:
            assert not _untargeted(result, fix), sorted(_untargeted(result, fix))
        refused_by_acl = any(f.evidence.get("networkAclDenials") for f in result.findings)
        if refused_by_acl:
            assert fix.network_acl_entries or unplannable
            assert all(e.action == "allow" and 1 <= e.rule_number < 32767 for e in fix.network_acl_entries)
            if min(d[0] for d in denials) > 20:  # room below every deny: always plannable
                assert not unplannable
