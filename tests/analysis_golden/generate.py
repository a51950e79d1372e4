"""Golden analysis output for tests/test_analysis_equivalence.py, and the inventories it covers.

The golden file pins what the engine reports (the JSON report, every finding's evidence and every
other field of the results, per-target verdicts included) so that performance work on
`bindings/analysis/engine/` and `netset.py` can prove it changed no output. It was written with
the engine as it stood before the optimisation; to regenerate it from that same engine, keep a copy
of its `engine.py` and `netset.py` in a directory and run

    .venv/bin/python -m tests.analysis_golden.generate --engine-dir /tmp/orig_engine

Without `--engine-dir` the current engine writes the file: only do that for an intended change of
output, never to make the equivalence test pass.

Cases: the benchmark's synthetic inventory at 300 bindings, the same with a deterministic mix of
what the benchmark lacks (NACLs, LB security groups, IPv6, prefixes, instance targets, draining and
unresolvable targets, client ranges, probes, stale sources, drift) so bindings share the engine's
caches across many different keys, every bundle in tests/scenarios, and seeded random variants of
the DNS inventory of tests/factories.py (the same knobs as the hypothesis properties).
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import importlib
import json
import random
import sys
import types
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

from benchmarks.bench_analysis import build as bench_build
from bindings.analysis import model as m
from bindings.analysis.bundle import bundle_inventory, load_bundle
from bindings.analysis.report import to_report
from tests.factories import (
    LB_SG,
    MUTATIONS,
    NODE_SG,
    TG_ARN,
    VPC,
    dns_inventory,
    mutate,
)

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
# Gzipped (about 0.3 MB instead of 7 MB); `zcat` it to read. mtime=0 keeps the bytes reproducible.
GOLDEN = Path(__file__).resolve().parent / "analysis.json.gz"

Analyze = Callable[[m.Inventory], list[m.BindingResult]]


# --- inventories ---------------------------------------------------------------------------------


def bench_mixed(bindings: int = 300) -> m.Inventory:
    """The benchmark inventory plus, deterministically, every kind of input the benchmark lacks."""
    inv = bench_build(bindings, 5)
    vpc = inv.vpcs["vpc-0bench"]
    vpc.ipv6_cidrs = ("2600:1f18:aaaa::/56",)
    # LB security groups, and node groups that reference them (alone and next to a CIDR group).
    # sg-lb-0 admits every client and lets everything out (AWS's default outbound rule);
    # sg-lb-1 admits TCP clients only (UDP stops at the LB) and lets traffic out to part of the VPC.
    everywhere = (
        m.SecurityGroupRule("-1", None, None, "cidr", "0.0.0.0/0", ""),
        m.SecurityGroupRule("-1", None, None, "cidr", "::/0", ""),
    )
    inv.security_groups["sg-lb-0"] = m.SecurityGroup(
        "sg-lb-0", vpc_id=vpc.id, ingress=everywhere, egress=everywhere
    )
    inv.security_groups["sg-lb-1"] = m.SecurityGroup(
        "sg-lb-1",
        vpc_id=vpc.id,
        ingress=(m.SecurityGroupRule("tcp", 0, 65535, "cidr", "0.0.0.0/0", "tcp clients"),),
        egress=(m.SecurityGroupRule("-1", None, None, "cidr", "10.1.0.0/21", "part of the VPC"),),
    )
    ref_rules = tuple(
        m.SecurityGroupRule(p, None, None, "security_group", "sg-lb-0", "lb ref") for p in ("tcp", "udp")
    ) + (
        m.SecurityGroupRule("udp", 53, 53, "prefix_list", "pl-0123", ""),
        m.SecurityGroupRule("-1", None, None, "cidr", "::/0", "v6 anywhere"),
        m.SecurityGroupRule("17", 5060, 5070, "cidr", "10.0.0.0/10", m.CONTROLLER_RULE_DESCRIPTION),
    )
    inv.security_groups["sg-ref"] = m.SecurityGroup("sg-ref", vpc_id=vpc.id, ingress=ref_rules)
    inv.security_groups["sg-broad"] = m.SecurityGroup(
        "sg-broad",
        vpc_id=vpc.id,
        tags={"kubernetes.io/cluster/bench": "owned"},
        ingress=(m.SecurityGroupRule("udp", 0, 65535, "cidr", "0.0.0.0/0", ""),),
    )
    enis = sorted(inv.network_interfaces)
    # A binding's targets sit on nodes n = v + 10k of one class v = b % 10 (see bench_analysis.py):
    # change whole classes, or some k of a class, so that reachable, partial and blocked all occur.
    for n, eni_id in enumerate(enis):
        eni = inv.network_interfaces[eni_id]
        v, k = n % 10, n // 10
        if v == 1:
            eni.security_group_ids = ("sg-ref",)
        elif v == 2 and k % 2 == 0:
            eni.security_group_ids = ("sg-full", "sg-ref")
        elif v == 3:
            eni.security_group_ids = ("sg-full", "sg-broad")
        elif v == 4 and k == 3:
            eni.security_group_ids = ("sg-missing",)
        elif v == 5 and k % 3 == 0:
            eni.security_group_ids = ("sg-tcp-only", "sg-full")  # both tagged: ambiguous
        elif v == 6 and k % 2 == 0:
            eni.subnet_id = "subnet-9"  # behind the explicit network ACL
        if v == 2 and k % 5 == 0:
            eni.ipv6_addresses = (f"2600:1f18:aaaa:{n:x}::10", f"2600:1f18:aaaa:{n:x}::11")
        if n in (1, 41):
            eni.ipv4_prefixes = (f"10.240.{n}.0/28",)
    # Network ACLs: one subnet with an explicit ACL, the others on the VPC default.
    inv.network_acls.append(
        m.NetworkAcl(
            "acl-explicit",
            vpc.id,
            False,
            ("subnet-9",),
            (
                m.NetworkAclEntry(90, "17", "deny", False, "10.0.0.0/12", None, 53, 60),
                m.NetworkAclEntry(100, "-1", "deny", False, "10.64.0.0/10"),
                m.NetworkAclEntry(110, "6", "allow", False, "10.0.0.0/8", None, 1, 65535),
                m.NetworkAclEntry(120, "17", "allow", False, "10.0.0.0/9"),
                m.NetworkAclEntry(130, "-1", "allow", True, "0.0.0.0/0"),
            ),
        )
    )
    inv.network_acls.append(
        m.NetworkAcl(
            "acl-default",
            vpc.id,
            True,
            ("subnet-2",),
            (
                m.NetworkAclEntry(100, "-1", "allow", False, "0.0.0.0/0"),
                m.NetworkAclEntry(101, "-1", "allow", False, None, "::/0"),
            ),
        )
    )
    for z in range(3):
        inv.subnets[f"subnet-{z}"].ipv6_cidrs = (f"2600:1f18:aaaa:{z}::/64",)
    # Load balancers: some with security groups, some internet-facing (dualstack), one unknown VPC.
    for i, arn in enumerate(sorted(inv.load_balancers)):
        lb = inv.load_balancers[arn]
        if i % 4 == 0:
            lb.security_groups = (f"sg-lb-{i % 8 // 4}",)
        if i % 5 == 1:
            lb.scheme = "internet-facing"
            lb.ip_address_type = "dualstack" if i % 10 == 1 else "ipv4"
        if i % 7 == 2:
            lb.vpc_id = "vpc-unknown"
        if i % 6 == 5:
            # No zone addresses: the private addresses come from ELB network interfaces or subnets.
            lb.zones = tuple(m.LoadBalancerZone(z.zone_name, z.subnet_id, ()) for z in lb.zones)
            if i % 12 == 5:
                suffix = arn.split(":loadbalancer/")[1]
                inv.network_interfaces[f"eni-elb-{i}"] = m.NetworkInterface(
                    f"eni-elb-{i}",
                    description=f"ELB {suffix}",
                    subnet_id="subnet-0",
                    vpc_id=vpc.id,
                    private_ips=(f"10.210.99.{i % 250}",),
                )
    # Nodes for instance targets.
    instances = []
    for i, eni_id in enumerate(enis[:12]):
        eni = inv.network_interfaces[eni_id]
        node = f"node-{i}"
        labels = {"pool": "a" if i % 2 else "b"}
        if i == 3:
            labels["node.kubernetes.io/exclude-from-external-load-balancers"] = ""
        inv.nodes[node] = m.Node(f"uid-{node}", node, None, eni.instance_id, "az0", (), labels, i != 5)
        instances.append(eni.instance_id)
    # Bindings, target groups and their health.
    by_arn = {b.target_group_arn: b for b in inv.bindings}
    for index, binding in enumerate(inv.bindings):
        tg = inv.target_groups[binding.target_group_arn]
        health = inv.target_health[tg.arn]
        if index % 7 == 0:
            binding.client_cidrs = ("10.0.0.0/12", "192.168.0.0/16", "bogus")
        elif index % 7 == 4:
            binding.client_cidrs = ("2600:1f18:aaaa::/56", "10.0.0.0/8")
        if index % 6 == 0:
            tg.health_check_port = "8080"
        if index % 11 == 0:
            tg.health_check_protocol = "HTTP"
            tg.health_check_path = "/healthz"
            tg.matcher = "200-399"
        if index % 17 == 0:
            tg.health_check_enabled = False
        if index % 13 == 6:
            tg.attributes = {"preserve_client_ip.enabled": "true"}
        elif index % 13 == 7:
            tg.attributes = None
        if index % 9 == 0 and health:
            health[0] = dataclasses.replace(health[0], state="draining")
        if index % 19 == 0:
            health.append(m.TargetHealth(tg.arn, "10.250.0.1", tg.port, state="initial", reason="Elb.Init"))
        if index % 23 == 0:
            health.append(m.TargetHealth(tg.arn, "not-an-ip", None, state="unhealthy"))
        if index % 31 == 0:
            # An IPv6 target, in a non-canonical spelling every other time.
            address = "2600:1f18:aaaa:2::10" if index % 62 else "2600:1f18:aaaa:0002:0:0:0:11"
            health.append(m.TargetHealth(tg.arn, address, tg.port, state="healthy"))
        if index % 40 == 2:
            health.append(m.TargetHealth(tg.arn, "10.240.1.5", tg.port, state="healthy"))
        if index % 29 == 0:
            tg.target_type = "instance"
            binding.target_type = "instance"
            inv.target_health[tg.arn] = [
                m.TargetHealth(tg.arn, iid, 30000 + index, state="healthy") for iid in instances[:4]
            ]
            svc = inv.services[f"{binding.namespace}/{binding.service_name}"]
            svc.ports = tuple(dataclasses.replace(p, node_port=30000 + index) for p in svc.ports)
            if index % 58 == 0:
                binding.raw = {"spec": {"nodeSelector": {"matchLabels": {"pool": "a"}}}}
        if index % 8 == 3:
            binding.networking = (
                m.NetworkingRule(
                    (m.NetworkingPeer(cidr="10.0.0.0/8"), m.NetworkingPeer(security_group_id="sg-lb-0")),
                    (m.NetworkingPort("UDP", None), m.NetworkingPort("TCP", "p-tcp")),
                ),
                m.NetworkingRule((m.NetworkingPeer(cidr="10.0.0.0/8"),), ()),
            )
            binding.generation, binding.observed_generation = 3, 2
        if index % 10 == 4:
            eps = next(e for e in inv.endpoint_slices if e.service_name == binding.service_name)
            eps.endpoints = (
                *eps.endpoints[1:],
                m.Endpoint(("10.99.0.1",), ready=True),
                m.Endpoint(("10.99.0.2",), ready=False),
            )
    # Listeners: some groups lose theirs, some listeners' actions were not collected.
    kept = []
    for i, listener in enumerate(inv.listeners):
        binding = by_arn.get(listener.target_group_arns[0])
        if i % 37 == 5:
            continue
        if i % 41 == 6:
            listener.target_group_arns = ()
        if i % 43 == 7:
            listener.protocol = "TCP_UDP"
        kept.append(listener)
        if binding is not None and i % 47 == 8:
            kept.append(
                m.Listener(f"{listener.arn}-extra", listener.load_balancer_arn, 20000 + i, "UDP", (TG_ARN,))
            )
    inv.listeners = kept
    # Probes and freshness.
    for index, binding in enumerate(inv.bindings):
        if index % 5 == 0:
            inv.probes[(binding.uid, "UDP")] = m.ProbeObservation("UDP", "dns", "failed", "10.1.2.3", 53)
            inv.probes[(binding.uid, "TCP")] = m.ProbeObservation(
                "TCP", "tcp", "ok", "10.1.2.3", None, explicit=True
            )
    inv.sources = [
        m.SourceStatus("aws", "prod", inv.now - timedelta(hours=2), 300, "throttled"),  # type: ignore[operator]
        m.SourceStatus("cluster", "bench", None, 60),
        m.SourceStatus("cluster", "fresh", inv.now, 60),
    ]
    inv.client_cidrs = None
    return inv


# The knobs of tests/test_analysis_properties.py, drawn from a seeded generator instead.
_CIDRS = [
    "10.0.0.0/16",
    "10.0.0.0/17",
    "10.0.1.0/24",
    "10.0.1.200/32",
    "0.0.0.0/0",
    "::/0",
    "2001:db8::/32",
    "192.168.0.0/16",
    "10.0.128.0/17",
    "bogus",
    "",
    "10.0.0.999/8",
]
_PORTS = [None, 0, 53, 53, 53, 54, 8080, 30053, 30053, 65535, -1]


def _random_dns(rng: random.Random) -> m.Inventory:
    def sg_rule() -> m.SecurityGroupRule:
        lo = rng.choice(_PORTS)
        kind = rng.choice(["cidr", "cidr", "security_group", "prefix_list"])
        source = {
            "cidr": rng.choice(_CIDRS),
            "security_group": rng.choice([LB_SG, NODE_SG, "sg-other"]),
            "prefix_list": "pl-1234",
        }[kind]
        return m.SecurityGroupRule(
            rng.choice(["tcp", "udp", "-1", "6", "17", "icmp", "TCP", "weird"]),
            lo,
            None if lo is None else lo + rng.randint(0, 100),
            kind,  # type: ignore[arg-type]
            source,
            rng.choice(["", "", m.CONTROLLER_RULE_DESCRIPTION, "ops"]),
        )

    def net_rule() -> m.NetworkingRule:
        peers = []
        for _ in range(rng.randint(0, 3)):
            pick = rng.randint(0, 2)
            if pick == 0:
                peers.append(m.NetworkingPeer(cidr=rng.choice(_CIDRS)))
            elif pick == 1:
                peers.append(m.NetworkingPeer(security_group_id=rng.choice([LB_SG, "sg-x"])))
            else:
                peers.append(m.NetworkingPeer())
        ports = tuple(
            m.NetworkingPort(
                rng.choice(["TCP", "UDP", "SCTP"]), rng.choice([None, 53, 30053, 8080, "dns", "nope"])
            )
            for _ in range(rng.randint(0, 3))
        )
        return m.NetworkingRule(tuple(peers), ports)

    states = ["healthy", "healthy", "unhealthy", "draining", "initial"]
    net_pick = rng.randint(0, 2)
    kwargs = {
        "tg_protocol": rng.choice(
            ["UDP", "UDP", "TCP", "TCP", "TCP_UDP", "TCP_UDP", "TLS", "QUIC", "TCP_QUIC", "HTTP", ""]
        ),
        "target_type": rng.choice(["ip", "ip", "ip", "instance", "instance", "lambda"]),
        "rules": None if rng.random() < 0.3 else [sg_rule() for _ in range(rng.randint(0, 5))],
        "net": None
        if net_pick == 0
        else "default"
        if net_pick == 1
        else tuple(net_rule() for _ in range(rng.randint(0, 2))),
        "states": [rng.choice(states) for _ in range(rng.randint(0 if rng.random() < 0.2 else 1, 2))],
        "listener_protocols": None
        if rng.random() < 0.6
        else [rng.choice(["TCP", "UDP", "TCP_UDP", "TLS", "QUIC"]) for _ in range(rng.randint(0, 2))],
        "scheme": rng.choice(["internal", "internet-facing"]),
        "lb_security_groups": rng.choice([(), (LB_SG,)]),
        "attributes": rng.choice(
            [None, {}, {"preserve_client_ip.enabled": "true"}, {"preserve_client_ip.enabled": "false"}]
        ),
        "hc_port": rng.choice(["traffic-port", "8080", "53", "abc"]),
        "hc_protocol": rng.choice(["TCP", "HTTP", "UDP"]),
        "service_port": rng.choice(["dns", "dns-tcp", 53, "missing"]),
        "client_cidrs": None
        if rng.random() < 0.5
        else tuple(rng.choice(_CIDRS) for _ in range(rng.randint(0, 3))),
        "cluster_client_cidrs": None
        if rng.random() < 0.6
        else tuple(rng.choice(_CIDRS) for _ in range(rng.randint(0, 2))),
    }
    inv = dns_inventory(**kwargs)  # type: ignore[arg-type]
    inv.aws_complete = rng.choice([True, True, False])
    if rng.random() < 0.3:
        entries = tuple(
            m.NetworkAclEntry(
                rng.randint(1, 200),
                rng.choice(["-1", "6", "17"]),
                rng.choice(["allow", "deny"]),
                rng.random() < 0.3,
                rng.choice(_CIDRS),
                None,
                rng.choice([None, 53]),
                rng.choice([None, 60]),
            )
            for _ in range(rng.randint(0, 4))
        )
        inv.network_acls.append(m.NetworkAcl("acl-1", VPC, rng.random() < 0.5, ("subnet-a",), entries))
    mutate(inv, rng.choice(MUTATIONS), lambda: tuple(sg_rule() for _ in range(rng.randint(0, 3))))
    if rng.random() < 0.15:
        inv.target_groups.get(TG_ARN, m.TargetGroup("x")).load_balancer_arns = ()
    if rng.random() < 0.3:
        uid = inv.bindings[0].uid
        for proto in ("TCP", "UDP"):
            inv.probes[(uid, proto)] = m.ProbeObservation(
                proto,  # type: ignore[arg-type]
                rng.choice(["tcp", "dns", "udp"]),
                rng.choice(["ok", "failed", "inconclusive"]),
                "10.0.1.200",
                rng.choice([None, 53]),
                explicit=rng.random() < 0.5,
            )
    return inv


RANDOM_CASES = 150


def cases() -> Iterator[tuple[str, Callable[[], m.Inventory]]]:
    """(name, inventory factory): a fresh inventory per call, so no case sees another's edits."""
    yield "bench-300", lambda: bench_build(300, 5)
    yield "bench-mixed-300", bench_mixed
    for folder in sorted(p for p in (TESTS / "scenarios").iterdir() if (p / "bundle.json").is_file()):
        yield f"scenario-{folder.name}", lambda folder=folder: bundle_inventory(load_bundle(folder))
    for seed in range(RANDOM_CASES):
        yield f"random-{seed:03d}", lambda seed=seed: _random_dns(random.Random(seed))


# --- snapshots -----------------------------------------------------------------------------------


def _jsonable(value: object) -> object:
    return json.loads(json.dumps(value, default=str))


def snapshot(results: list[m.BindingResult]) -> dict:
    """The JSON report, and every field of every result (per-target verdicts, evidence)."""
    return {
        "report": _jsonable(to_report(results)),
        "results": _jsonable([dataclasses.asdict(r) for r in results]),
    }


def dumps(data: dict) -> str:
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def read_golden() -> dict:
    return json.loads(gzip.decompress(GOLDEN.read_bytes()))


def generate(analyze: Analyze) -> dict:
    return {name: snapshot(analyze(factory())) for name, factory in cases()}


def load_engine(directory: Path) -> Analyze:
    """`analyze` from a copy of engine.py and netset.py in `directory` (the real model.py)."""
    name = "_bh_golden_engine"
    package = types.ModuleType(name)
    package.__path__ = [str(directory)]
    sys.modules[name] = package
    sys.modules[f"{name}.model"] = m
    importlib.import_module(f"{name}.netset")
    return importlib.import_module(f"{name}.engine").analyze


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine-dir", type=Path, help="directory holding the reference engine.py/netset.py")
    args = parser.parse_args()
    if args.engine_dir is not None:
        analyze = load_engine(args.engine_dir)
    else:
        from bindings.analysis.engine import analyze
    data = generate(analyze)
    GOLDEN.write_bytes(gzip.compress(dumps(data).encode(), mtime=0))
    count = sum(len(case["results"]) for case in data.values())
    print(f"wrote {GOLDEN.relative_to(ROOT)}: {len(data)} cases, {count} binding results")


if __name__ == "__main__":
    main()
