"""Analysis throughput: binding-protocol results per second on one core.

Builds a synthetic inventory of 10,000 bindings x 5 ip targets (a third each UDP, TCP and
TCP_UDP groups, so ~13,300 binding-protocol results), spread over 250 nodes whose primary ENIs
hold the pod IPs (as the VPC CNI does), four node security-group variants (one admits nothing for
UDP, one admits only part of the client ranges) and 500 NLBs. Run:

    .venv/bin/python benchmarks/bench_analysis.py [--bindings N] [--repeat R]

Not a test: the budget (>= 20,000 results/s, docs/DESIGN.md) is checked by reading the figure.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

if not __package__:  # run as a script: the repository root is not on the path yet
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bindings.analysis import model as m  # noqa: E402
from bindings.analysis.engine import analyze  # noqa: E402

VPC = "vpc-0bench"
PROTOCOLS = ("UDP", "TCP", "TCP_UDP")
# Node security group by node number % 10: most nodes admit everything they should.
VARIANT = ("sg-full",) * 7 + ("sg-tcp-only", "sg-partial", "sg-split")
# `broken_half`: a shared security-group change broke half the bindings (their nodes admit nothing).
BROKEN_HALF = ("sg-full", "sg-none") * 5
LB_SG = "sg-0lb-clients"
PORTS = (53, 80, 443, 5060, 8080, 8443, 9000, 9090, 10000, 11211)


def _rule(proto: str, port: int | None, source: str, description: str = "") -> m.SecurityGroupRule:
    return m.SecurityGroupRule(proto, port, port, "cidr", source, description)


def build(
    bindings: int = 10_000, targets: int = 5, *, broken_half: bool = False, lb_security_groups: bool = False
) -> m.Inventory:
    """The benchmark inventory; `lb_security_groups` gives every NLB a security group of its own
    (the controller's default for new NLBs) admitting the clients and letting everything out."""
    variant = BROKEN_HALF if broken_half else VARIANT
    inv = m.Inventory(cluster="bench", now=datetime(2026, 11, 26, tzinfo=UTC), aws_complete=True)
    inv.vpcs[VPC] = m.Vpc(VPC, cidrs=("10.0.0.0/8",))
    sg_rules = {
        "sg-full": tuple(_rule(p, port, "10.0.0.0/8") for p in ("tcp", "udp") for port in PORTS),
        "sg-tcp-only": tuple(_rule("tcp", port, "10.0.0.0/8") for port in PORTS),
        "sg-partial": tuple(_rule(p, port, "10.0.0.0/9") for p in ("tcp", "udp") for port in PORTS),
        "sg-split": tuple(
            _rule(p, port, cidr)
            for p in ("tcp", "udp")
            for port in PORTS
            for cidr in ("10.0.0.0/9", "10.128.0.0/9")
        ),
        "sg-none": (),
    }
    for sg_id, rules in sg_rules.items():
        inv.security_groups[sg_id] = m.SecurityGroup(
            sg_id, vpc_id=VPC, tags={"kubernetes.io/cluster/bench": "owned"}, ingress=rules
        )
    nodes = 250
    pods_per_node = bindings * targets // nodes + 10
    node_ips: list[list[str]] = []
    for n in range(nodes):
        ks = [n * pods_per_node + i for i in range(pods_per_node)]
        ips = [f"10.{1 + k // 60000}.{k // 240 % 250}.{k % 240 + 10}" for k in ks]
        node_ips.append(ips)
        eni_id = f"eni-node{n:05d}"
        inv.network_interfaces[eni_id] = m.NetworkInterface(
            eni_id,
            subnet_id=f"subnet-{n % 3}",
            vpc_id=VPC,
            private_ips=(f"10.200.{n // 250}.{n % 250}", *ips),
            security_group_ids=(variant[n % 10],),
            instance_id=f"i-{n:017d}",
            device_index=0,
        )
    for z in range(3):
        inv.subnets[f"subnet-{z}"] = m.Subnet(
            f"subnet-{z}", VPC, f"10.{210 + z}.0.0/16", availability_zone=f"az{z}"
        )
    if lb_security_groups:
        inv.security_groups[LB_SG] = m.SecurityGroup(
            LB_SG,
            vpc_id=VPC,
            ingress=(_rule("-1", None, "10.0.0.0/8", "clients"),),
            egress=(_rule("-1", None, "0.0.0.0/0"),),
        )
    lbs = max(1, bindings // 20)
    for i in range(lbs):
        arn = f"arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/net/lb{i}/{i:016x}"
        inv.load_balancers[arn] = m.LoadBalancer(
            arn,
            name=f"lb{i}",
            scheme="internal",
            vpc_id=VPC,
            security_groups=(LB_SG,) if lb_security_groups else (),
            zones=tuple(
                m.LoadBalancerZone(f"az{z}", f"subnet-{z}", (f"10.{210 + z}.{i // 250}.{i % 250}",))
                for z in range(3)
            ),
        )
    used = [0] * nodes
    for b in range(bindings):
        proto = PROTOCOLS[b % 3]
        port = PORTS[b % len(PORTS)]
        lb_arn = f"arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/net/lb{b % lbs}/{b % lbs:016x}"
        tg_arn = f"arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/tg{b}/{b:016x}"
        inv.target_groups[tg_arn] = m.TargetGroup(
            tg_arn,
            name=f"tg{b}",
            protocol=proto,
            port=port,
            vpc_id=VPC,
            target_type="ip",
            health_check_protocol="TCP",
            health_check_port="traffic-port",
            load_balancer_arns=(lb_arn,),
            attributes={"preserve_client_ip.enabled": "false"},
        )
        inv.listeners.append(m.Listener(f"{lb_arn}/l{b}", lb_arn, 10000 + b, proto, (tg_arn,)))
        health = []
        for _ in range(targets):
            # All targets of a binding sit on nodes of one security-group variant.
            n = (b % 10) + 10 * ((b // 10 * targets + len(health)) % (nodes // 10))
            ip = node_ips[n][used[n]]
            used[n] += 1
            health.append(m.TargetHealth(tg_arn, ip, port, state="unhealthy" if b % 13 == 0 else "healthy"))
        inv.target_health[tg_arn] = health
        ns = f"ns{b % 50}"
        svc = f"svc{b}"
        inv.services[f"{ns}/{svc}"] = m.Service(
            f"svc-uid-{b}",
            ns,
            svc,
            ports=tuple(
                m.ServicePort(f"p-{p.lower()}", p, port, port)
                for p in ("TCP", "UDP")
                if p in proto or proto == "TCP_UDP"
            ),
        )
        inv.endpoint_slices.append(
            m.EndpointSlice(
                f"eps-uid-{b}",
                ns,
                f"{svc}-abcde",
                svc,
                ports=tuple(m.EndpointPort(f"p-{p.lower()}", p, port) for p in ("TCP", "UDP") if p in proto),
                endpoints=tuple(m.Endpoint((th.target_id,), ready=True) for th in health),
            )
        )
        ports = [m.NetworkingPort(p, port) for p in ("TCP", "UDP") if p in proto]
        inv.bindings.append(
            m.Binding(
                uid=f"tgb-{b}",
                namespace=ns,
                name=f"tgb{b}",
                target_group_arn=tg_arn,
                target_type="ip",
                target_group_protocol=proto,
                service_name=svc,
                service_port=f"p-{'udp' if proto == 'UDP' else 'tcp'}",
                networking=(m.NetworkingRule((m.NetworkingPeer(cidr="10.0.0.0/8"),), tuple(ports)),)
                if b % 2
                else None,
            )
        )
    return inv


def _summary(results: list) -> tuple[int, Counter, int]:
    count = sum(len(r.protocols) for r in results)
    verdicts = Counter(p.verdict for r in results for p in r.protocols)
    return count, verdicts, sum(len(r.findings) for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bindings", type=int, default=10_000)
    parser.add_argument("--targets", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--plain-only", action="store_true", help="skip the inventory with a security group on every LB"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    inventories = {"plain": build(args.bindings, args.targets)}
    if not args.plain_only:
        inventories["LB security groups"] = build(args.bindings, args.targets, lb_security_groups=True)
    built = time.perf_counter() - started
    print(f"built {len(inventories)} inventories ({args.bindings} bindings x {args.targets}) in {built:.1f}s")
    best: dict[str, float] = {}
    results: dict[str, list] = {}
    # Interleaved in one process, so the ratio holds whatever else the machine runs meanwhile.
    for _ in range(args.repeat):
        for name, inventory in inventories.items():
            started = time.perf_counter()
            results[name] = analyze(inventory)
            elapsed = time.perf_counter() - started
            best[name] = min(best.get(name, elapsed), elapsed)
    print(f"python {platform.python_version()} on {platform.machine()}, best of {args.repeat}, interleaved")
    # A shared machine's other work slows every run: the figure is only comparable with its load.
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average (1, 5, 15 min) after the runs: {load} on {os.cpu_count()} CPU(s)")
    throughput = {}
    for name in inventories:
        count, verdicts, findings = _summary(results[name])
        throughput[name] = count / best[name]
        print(f"[{name}] {count} binding-protocol results, {findings} findings in {best[name]:.3f}s")
        print(f"[{name}] verdicts: {dict(sorted(verdicts.items()))}")
        print(f"[{name}] throughput: {throughput[name]:,.0f} binding-protocol results per second")
    if len(throughput) == 2:
        ratio = throughput["LB security groups"] / throughput["plain"]
        print(f"ratio LB security groups / plain: {ratio:.2f} (target >= 0.90)")


if __name__ == "__main__":
    main()
