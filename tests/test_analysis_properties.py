"""Properties of `analyze` over random inventories (hypothesis)."""

from __future__ import annotations

import copy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bindings.analysis import analyze
from bindings.analysis import model as m
from tests.factories import LB_SG, MUTATIONS, NODE_SG, TG_ARN, VPC, allow_all, dns_inventory, mutate

RANK = {"blocked": 0, "partial": 1, "reachable": 2}
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

cidrs = st.one_of(
    st.sampled_from(["10.0.0.0/16", "10.0.0.0/17", "10.0.1.0/24", "10.0.1.200/32", "0.0.0.0/0", "::/0"]),
    st.sampled_from(["2001:db8::/32", "192.168.0.0/16", "10.0.128.0/17", "bogus", "", "10.0.0.999/8"]),
)
ports = st.one_of(st.none(), st.sampled_from([0, 53, 53, 53, 54, 8080, 30053, 30053, 65535, -1]))
sg_rules = st.builds(
    lambda proto, lo, width, kind, cidr, sg: m.SecurityGroupRule(
        proto,
        lo,
        None if lo is None else lo + width,
        kind,
        cidr if kind == "cidr" else (sg if kind == "security_group" else "pl-1234"),
        "",
    ),
    st.sampled_from(["tcp", "udp", "-1", "6", "17", "icmp", "TCP", "weird"]),
    ports,
    st.integers(0, 100),
    st.sampled_from(["cidr", "cidr", "security_group", "prefix_list"]),
    cidrs,
    st.sampled_from([LB_SG, NODE_SG, "sg-other"]),
)
net_ports = st.builds(
    m.NetworkingPort,
    st.sampled_from(["TCP", "UDP", "SCTP"]),
    st.one_of(st.none(), st.sampled_from([53, 30053, 8080, "dns", "nope"])),
)
net_rules = st.builds(
    m.NetworkingRule,
    st.lists(
        st.one_of(
            st.builds(m.NetworkingPeer, cidr=cidrs),
            st.builds(m.NetworkingPeer, security_group_id=st.sampled_from([LB_SG, "sg-x"])),
            st.just(m.NetworkingPeer()),
        ),
        max_size=3,
    ).map(tuple),
    st.lists(net_ports, max_size=3).map(tuple),
)
nacl_entries = st.builds(
    m.NetworkAclEntry,
    st.integers(1, 200),
    st.sampled_from(["-1", "6", "17"]),
    st.sampled_from(["allow", "deny"]),
    st.booleans(),
    cidrs,
    st.none(),
    st.one_of(st.none(), st.just(53)),
    st.one_of(st.none(), st.just(60)),
)


@st.composite
def inventories(draw) -> m.Inventory:
    kwargs = {
        "tg_protocol": draw(
            st.sampled_from(
                ["UDP", "UDP", "TCP", "TCP", "TCP_UDP", "TCP_UDP", "TLS", "QUIC", "TCP_QUIC", "HTTP", ""]
            )
        ),
        "target_type": draw(st.sampled_from(["ip", "ip", "ip", "instance", "instance", "lambda"])),
        "rules": draw(st.one_of(st.none(), st.lists(sg_rules, max_size=5))),
        "net": draw(st.one_of(st.none(), st.just("default"), st.lists(net_rules, max_size=2).map(tuple))),
        "states": draw(
            st.lists(st.sampled_from(["healthy", "healthy", "unhealthy", "draining", "initial"]), max_size=2)
            if draw(st.integers(0, 4)) == 0
            else st.lists(
                st.sampled_from(["healthy", "healthy", "unhealthy", "draining", "initial"]),
                min_size=1,
                max_size=2,
            )
        ),
        "listener_protocols": draw(
            st.none()
            | st.none()
            | st.lists(st.sampled_from(["TCP", "UDP", "TCP_UDP", "TLS", "QUIC"]), max_size=2)
        ),
        "scheme": draw(st.sampled_from(["internal", "internet-facing"])),
        "lb_security_groups": draw(st.sampled_from([(), (LB_SG,)])),
        "attributes": draw(
            st.sampled_from(
                [None, {}, {"preserve_client_ip.enabled": "true"}, {"preserve_client_ip.enabled": "false"}]
            )
        ),
        "hc_port": draw(st.sampled_from(["traffic-port", "8080", "53", "abc"])),
        "hc_protocol": draw(st.sampled_from(["TCP", "HTTP", "UDP"])),
        "service_port": draw(st.sampled_from(["dns", "dns-tcp", 53, "missing"])),
        "client_cidrs": draw(st.one_of(st.none(), st.lists(cidrs, max_size=3).map(tuple))),
        "cluster_client_cidrs": draw(st.one_of(st.none(), st.lists(cidrs, max_size=2).map(tuple))),
    }
    inv = dns_inventory(**kwargs)
    inv.aws_complete = draw(st.sampled_from([True, True, False]))
    if draw(st.integers(0, 3)) == 0:
        inv.network_acls.append(
            m.NetworkAcl(
                "acl-1",
                VPC,
                draw(st.booleans()),
                ("subnet-a",),
                tuple(draw(st.lists(nacl_entries, max_size=4))),
            )
        )
    mutate(inv, draw(st.sampled_from(MUTATIONS)), lambda: tuple(draw(st.lists(sg_rules, max_size=3))))
    if draw(st.integers(0, 5)) == 0:
        inv.target_groups.get(TG_ARN, m.TargetGroup("x")).load_balancer_arns = ()
    return inv


def _verdicts(inv: m.Inventory) -> dict[tuple[str, str], str]:
    return {(r.key, p.protocol): p.verdict for r in analyze(inv) for p in r.protocols}


def _with_rules(inv: m.Inventory, change) -> m.Inventory:
    other = copy.deepcopy(inv)
    for sg in other.security_groups.values():
        sg.ingress = change(sg.ingress)
    return other


@SETTINGS
@given(inventories())
def test_analyze_never_raises_and_judges_every_binding(inv):
    results = analyze(inv)
    assert [r.key for r in results] == [b.key for b in inv.bindings]
    for result in results:
        assert result.protocols
        assert all(p.verdict in m.VERDICTS for p in result.protocols)
        assert all(f.severity in m.SEVERITIES for f in result.findings)


@SETTINGS
@given(inventories())
def test_analyze_is_deterministic(inv):
    assert analyze(inv) == analyze(copy.deepcopy(inv))


@SETTINGS
@given(inventories())
def test_allowing_everything_never_makes_a_verdict_worse(inv):
    before = _verdicts(inv)
    after = _verdicts(_with_rules(inv, lambda rules: tuple(rules) + allow_all()))
    for key, old in before.items():
        new = after[key]
        if old == "not_offered":
            assert new == "not_offered", key
        elif old in RANK:
            if old == "blocked" and new == "unknown" and inv.network_acls:
                # Unknown client ranges and an ACL that shuts a target: its own subnet's clients
                # never cross that ACL, so with every rule open the target admits exactly its
                # subnet — blocked or partial depending on where the unknown clients are.
                continue
            assert new in RANK and RANK[new] >= RANK[old], (key, old, new)
        else:
            # Unknown targets keep it unknown. Unknown client ranges (judged against every
            # address) turn into reachable — allowing everything admits any client — or partial
            # where something besides the rules (a network ACL) still shuts some targets.
            assert new in ("unknown", "reachable", "partial"), (key, old, new)


@SETTINGS
@given(inventories())
def test_removing_all_rules_never_makes_a_verdict_better(inv):
    before = _verdicts(inv)
    after = _verdicts(_with_rules(inv, lambda rules: ()))
    for key, old in before.items():
        new = after[key]
        if old == "not_offered":
            assert new == "not_offered", key
        elif new in RANK and old in RANK:
            assert RANK[new] <= RANK[old], (key, old, new)
        elif new == "unknown":
            # Some targets unknown and the known ones no longer admit anything.
            assert old in ("unknown", "partial"), (key, old, new)
        elif old == "unknown":
            # Unknown client ranges: with no rule left, no client gets in, whoever they are.
            assert new == "blocked", (key, old, new)
        else:
            raise AssertionError(f"{key}: removing rules turned {old} into {new}")
