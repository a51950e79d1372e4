"""Generate the scenario bundles from the `dns-udp-blocked` base by small, named mutations.

Run `python tests/scenarios/build_scenarios.py` from the project root; it rewrites every folder it
owns (never the two hand-written originals). Each scenario's `expected.json` is written here,
next to the mutation, and comes from the documented semantics (docs/DESIGN.md "Vocabulary" and
`docs/facts.md`), never from running the engine, so the bundles can catch engine mistakes.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
BASE = HERE / "dns-udp-blocked"
ORIGINALS = frozenset({"dns-udp-blocked", "dns-udp-fixed"})

ACCOUNT = "123456789012"
LB_ARN = f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:loadbalancer/net/dns-nlb/2c404b1a74052ed7"
UDP_TG = f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:targetgroup/k8s-dns-udp/97044aff375392b7"
TCP_TG = f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:targetgroup/k8s-dns-tcp/f55c9a8764aece4f"
TCPUDP_TG = f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:targetgroup/k8s-dns-tcpudp/0d1e2f3a4b5c6d7e"
NODE_SG = "sg-0node00000000000a"
NODE_B_SG = "sg-0nodeb0000000000b"
EXTRA_SG = "sg-0extra0000000000c"
NLB_SG = "sg-0nlb00000000000d1"
VPC = "vpc-0a1b2c3d4e5f60718"
VPC_CIDR = "10.0.0.0/16"
VPC_V6 = "2600:1f18:1234:5600::/56"
CONTROLLER = "elbv2.k8s.aws/targetGroupBinding=shared"
NODE_ENIS = ("eni-00000000000000001", "eni-00000000000000002")
INSTANCES = ("i-0aaaaaaaaaaaaaaa1", "i-0bbbbbbbbbbbbbbb2")


@dataclass
class Scenario:
    """One bundle under construction: the base, mutated in place by the scenario function."""

    kube: dict
    aws: dict
    meta: dict
    expected: dict = field(default_factory=lambda: {"bindings": {}})

    # --- Kubernetes ---------------------------------------------------------------------------
    @property
    def items(self) -> list[dict]:
        return self.kube["items"]

    def obj(self, kind: str, name: str) -> dict:
        return next(i for i in self.items if i["kind"] == kind and i["metadata"]["name"] == name)

    def tgb(self, name: str) -> dict:
        return self.obj("TargetGroupBinding", name)

    def drop(self, kind: str, name: str) -> None:
        self.kube["items"] = [
            i for i in self.items if not (i["kind"] == kind and i["metadata"]["name"] == name)
        ]

    def add_tgb(self, name: str, spec: dict, annotations: dict | None = None) -> dict:
        tgb = {
            "apiVersion": "elbv2.k8s.aws/v1beta1",
            "kind": "TargetGroupBinding",
            "metadata": {
                "name": name,
                "namespace": "kube-system",
                "uid": f"uid-tgb-{name}",
                "resourceVersion": "5002",
                "generation": 1,
            },
            "spec": spec,
            "status": {"observedGeneration": 1},
        }
        if annotations:
            tgb["metadata"]["annotations"] = annotations
        self.items.append(tgb)
        return tgb

    def event(self, tgb: str, reason: str, message: str) -> None:
        self.items.append(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": f"{tgb}.1", "namespace": "kube-system", "uid": f"uid-ev-{tgb}"},
                "involvedObject": {
                    "apiVersion": "elbv2.k8s.aws/v1beta1",
                    "kind": "TargetGroupBinding",
                    "name": tgb,
                    "namespace": "kube-system",
                    "uid": f"uid-tgb-{tgb}",
                },
                "type": "Warning",
                "reason": reason,
                "message": message,
                "count": 3,
                "lastTimestamp": "2026-11-26T05:58:00Z",
            }
        )

    # --- AWS ----------------------------------------------------------------------------------
    def tg(self, arn: str) -> dict:
        return next(t for t in self.aws["DescribeTargetGroups"]["TargetGroups"] if t["TargetGroupArn"] == arn)

    def sg(self, group_id: str) -> dict:
        return next(
            g for g in self.aws["DescribeSecurityGroups"]["SecurityGroups"] if g["GroupId"] == group_id
        )

    def enis(self) -> list[dict]:
        return self.aws["DescribeNetworkInterfaces"]["NetworkInterfaces"]

    def eni(self, eni_id: str) -> dict:
        return next(e for e in self.enis() if e["NetworkInterfaceId"] == eni_id)

    def instance_enis(self, eni_id: str) -> list[dict]:
        """The copies of an ENI inside DescribeInstances (kept in step with DescribeNetworkInterfaces)."""
        found = []
        for reservation in self.aws.get("DescribeInstances", {}).get("Reservations", []):
            for instance in reservation["Instances"]:
                found += [e for e in instance["NetworkInterfaces"] if e["NetworkInterfaceId"] == eni_id]
        return found

    def set_eni_groups(self, eni_id: str, groups: list[str]) -> None:
        for eni in [self.eni(eni_id), *self.instance_enis(eni_id)]:
            eni["Groups"] = [{"GroupId": g, "GroupName": g} for g in groups]

    def add_sg(self, group_id: str, name: str, ingress: list[dict], tags: dict | None = None) -> None:
        self.aws["DescribeSecurityGroups"]["SecurityGroups"].append(
            {
                "GroupId": group_id,
                "GroupName": name,
                "Description": name,
                "VpcId": VPC,
                "OwnerId": ACCOUNT,
                "IpPermissions": ingress,
                "IpPermissionsEgress": [perm("-1", None, cidrs=["0.0.0.0/0"], description="")],
                "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()],
            }
        )

    def health(self, arn: str, state: str, reason: str | None = None, only: str | None = None) -> None:
        for description in self.aws["DescribeTargetHealth"][arn]["TargetHealthDescriptions"]:
            if only and description["Target"]["Id"] != only:
                continue
            description["TargetHealth"] = {"State": state}
            if reason:
                description["TargetHealth"]["Reason"] = reason
                description["TargetHealth"]["Description"] = {
                    "Target.FailedHealthChecks": "Health checks failed",
                    "Target.NotInUse": "Target group is not configured to receive traffic from the load "
                    "balancer",
                }.get(reason, reason)

    # --- expectations -------------------------------------------------------------------------
    def expect(
        self,
        key: str,
        protocols: dict[str, str],
        require: list[str] = (),  # type: ignore[assignment]
        forbid: list[str] = (),  # type: ignore[assignment]
        admitted: dict[str, list[int]] | None = None,
        cites: list[str] = (),  # type: ignore[assignment]
    ) -> None:
        entry: dict = {"protocols": protocols, "require": list(require), "forbid": list(forbid)}
        if admitted:
            entry["admitted"] = admitted
        if cites:
            # The aws-load-balancer-controller test cases (file: Test function: case name) whose
            # expected result this entry follows from (the "controller parity" suite).
            entry["controllerTests"] = list(cites)
        self.expected["bindings"][f"kube-system/{key}"] = entry


def perm(
    protocol: str,
    port: int | None,
    *,
    cidrs: list[str] = (),  # type: ignore[assignment]
    groups: list[str] = (),  # type: ignore[assignment]
    description: str = CONTROLLER,
) -> dict:
    """One IpPermissions entry as DescribeSecurityGroups returns it (v4 and v6 CIDRs split)."""
    entry: dict = {
        "IpProtocol": protocol,
        "IpRanges": [{"CidrIp": c, "Description": description} for c in cidrs if ":" not in c],
        "Ipv6Ranges": [{"CidrIpv6": c, "Description": description} for c in cidrs if ":" in c],
        "PrefixListIds": [],
        "UserIdGroupPairs": [{"GroupId": g, "UserId": ACCOUNT, "Description": description} for g in groups],
    }
    if port is not None:
        entry["FromPort"] = entry["ToPort"] = port
    return entry


def ingress(*rules: tuple[list[str], list[tuple[str, int]]], groups: bool = False) -> dict:
    """spec.networking from (peers, [(protocol, port)]) pairs; peers are CIDRs or SG ids."""
    out = []
    for peers, ports in rules:
        source = [
            {"securityGroup": {"groupID": p}} if p.startswith("sg-") else {"ipBlock": {"cidr": p}}
            for p in peers
        ]
        out.append({"from": source, "ports": [{"protocol": proto, "port": port} for proto, port in ports]})
    return {"ingress": out}


def base() -> Scenario:
    kube = yaml.safe_load((BASE / "kubernetes.yaml").read_text())
    aws = json.loads((BASE / "aws.json").read_text())
    meta = json.loads((BASE / "bundle.json").read_text())
    # Deep copies: the base YAML shares the pod label mapping through an anchor.
    return Scenario(kube=copy.deepcopy(kube), aws=aws, meta=meta)


def udp_only(s: Scenario) -> Scenario:
    """Keep only the UDP binding: most scenarios are about it, and fewer bindings, fewer doubts."""
    s.drop("TargetGroupBinding", "coredns-tcp")
    return s


def fixed_udp(s: Scenario) -> Scenario:
    """The `dns-udp-fixed` state for the UDP binding: networking and controller rules in place."""
    udp_only(s)
    s.tgb("coredns-udp")["spec"]["networking"] = ingress(([VPC_CIDR], [("UDP", 53), ("TCP", 53)]))
    s.sg(NODE_SG)["IpPermissions"] = [perm("udp", 53, cidrs=[VPC_CIDR]), perm("tcp", 53, cidrs=[VPC_CIDR])]
    return s


# --- scenarios -----------------------------------------------------------------------------------
# Each returns (description for README.md, scenario). Comments give the semantic reason for every
# expectation; `nlb-udp-facts` sections are cited as §n.


def udp_rule_all_protocols() -> tuple[str, Scenario]:
    s = udp_only(base())
    # A hand-made `-1` rule from 10.0.0.0/8 admits every protocol and port from a superset of the
    # internal NLB's client ranges (the VPC, 10.0.0.0/16) and of its node addresses.
    s.sg(NODE_SG)["IpPermissions"].append(perm("-1", None, cidrs=["10.0.0.0/8"], description="corp"))
    s.expect(
        "coredns-udp",
        {"UDP": "reachable"},
        require=["HEALTH_CHECK_PROTOCOL_MISMATCH", "MISSING_NETWORKING_RULE"],  # no networking at all
        forbid=[
            "TRAFFIC_BLOCKED",
            "HEALTH_CHECK_MASKS_TRAFFIC",
            "HEALTH_CHECK_BLOCKED",
            "OVERLY_BROAD_SOURCE",
            "CLIENT_RANGES_NOT_COVERED",
        ],
        admitted={"UDP": [2, 2]},
    )
    return (
        "UDP group whose only UDP-capable rule is `-1` from 10.0.0.0/8: reachable (protocol -1 and a "
        "covering supernet count), yet no networking rule declares it.",
        s,
    )


def partial_two_rules() -> tuple[str, Scenario]:
    s = fixed_udp(base())
    # Two UDP rules cover 10.0.0.0/17 and 10.0.128.0/18: together 3/4 of the VPC client range.
    s.tgb("coredns-udp")["spec"]["networking"] = ingress(
        (["10.0.0.0/17", "10.0.128.0/18"], [("UDP", 53)]), ([VPC_CIDR], [("TCP", 53)])
    )
    s.sg(NODE_SG)["IpPermissions"] = [
        perm("udp", 53, cidrs=["10.0.0.0/17"]),
        perm("udp", 53, cidrs=["10.0.128.0/18"]),
        perm("tcp", 53, cidrs=[VPC_CIDR]),
    ]
    s.expect(
        "coredns-udp",
        {"UDP": "partial"},
        require=["TRAFFIC_BLOCKED", "CLIENT_RANGES_NOT_COVERED", "HEALTH_CHECK_MASKS_TRAFFIC"],
        forbid=[
            "MISSING_NETWORKING_RULE",
            "NETWORKING_NOT_RECONCILED",
            "HEALTH_CHECK_BLOCKED",
            "ALL_TARGETS_UNHEALTHY",
        ],
    )
    return (
        "two UDP rules (10.0.0.0/17 + 10.0.128.0/18) cover only part of the VPC client range: partial, "
        "client ranges not covered, health check green.",
        s,
    )


def two_rules_cover() -> tuple[str, Scenario]:
    s = fixed_udp(base())
    # 10.0.0.0/17 + 10.0.128.0/17 = 10.0.0.0/16: coverage is set arithmetic across rules. One
    # permission spells UDP as the protocol number "17", as rules created by number may read.
    s.tgb("coredns-udp")["spec"]["networking"] = ingress(
        (["10.0.0.0/17", "10.0.128.0/17"], [("UDP", 53)]), ([VPC_CIDR], [("TCP", 53)])
    )
    s.sg(NODE_SG)["IpPermissions"] = [
        perm("udp", 53, cidrs=["10.0.0.0/17"]),
        perm("17", 53, cidrs=["10.0.128.0/17"]),
        perm("tcp", 53, cidrs=[VPC_CIDR]),
    ]
    s.expect(
        "coredns-udp",
        {"UDP": "reachable"},
        require=["HEALTH_CHECK_PROTOCOL_MISMATCH"],
        forbid=[
            "TRAFFIC_BLOCKED",
            "CLIENT_RANGES_NOT_COVERED",
            "HEALTH_CHECK_MASKS_TRAFFIC",
            "MISSING_NETWORKING_RULE",
        ],
        admitted={"UDP": [2, 2]},
    )
    return 'two UDP rules (one written as protocol "17") whose /17s add up to the VPC: reachable.', s


def partial_one_target() -> tuple[str, Scenario]:
    s = fixed_udp(base())
    # The second node's ENI carries its own group, which the controller never updated: one of two
    # targets admits UDP 53 (partial); both still pass the TCP health check.
    s.add_sg(
        NODE_B_SG,
        "eks-node-b",
        [perm("tcp", 53, cidrs=[VPC_CIDR], description="dns over tcp")],
        tags={"kubernetes.io/cluster/demo": "owned"},
    )
    s.set_eni_groups(NODE_ENIS[1], [NODE_B_SG])
    s.expect(
        "coredns-udp",
        {"UDP": "partial"},
        require=["TRAFFIC_BLOCKED", "NETWORKING_NOT_RECONCILED", "HEALTH_CHECK_MASKS_TRAFFIC"],
        forbid=["MISSING_NETWORKING_RULE", "HEALTH_CHECK_BLOCKED", "ALL_TARGETS_UNHEALTHY"],
        admitted={"UDP": [1, 2]},
    )
    return (
        "one of two targets sits behind a security group without the UDP rule: partial, 1 of 2 admitted.",
        s,
    )


def not_reconciled() -> tuple[str, Scenario]:
    s = udp_only(base())
    # Networking declares UDP 53 but the node group still has only the hand-made TCP rule.
    s.tgb("coredns-udp")["spec"]["networking"] = ingress(([VPC_CIDR], [("UDP", 53), ("TCP", 53)]))
    s.event(
        "coredns-udp",
        "FailedNetworkReconcile",
        "UnauthorizedOperation: not authorized to perform: ec2:AuthorizeSecurityGroupIngress",
    )
    s.expect(
        "coredns-udp",
        {"UDP": "blocked"},
        require=["TRAFFIC_BLOCKED", "NETWORKING_NOT_RECONCILED", "HEALTH_CHECK_MASKS_TRAFFIC"],
        forbid=["MISSING_NETWORKING_RULE", "HEALTH_CHECK_BLOCKED"],
        admitted={"UDP": [0, 2]},
    )
    return (
        "networking declares UDP 53 but the controller failed to write it (FailedNetworkReconcile event): "
        "blocked, not reconciled.",
        s,
    )


def empty_ports() -> tuple[str, Scenario]:
    s = udp_only(base())
    # `ports: []` is documented as "all TCP ports" but the controller creates no rule (§2.3 bug).
    s.tgb("coredns-udp")["spec"]["networking"] = {
        "ingress": [{"from": [{"ipBlock": {"cidr": VPC_CIDR}}], "ports": []}]
    }
    s.expect(
        "coredns-udp",
        {"UDP": "blocked"},
        require=["EMPTY_PORTS_LIST", "TRAFFIC_BLOCKED", "HEALTH_CHECK_MASKS_TRAFFIC"],
        forbid=["HEALTH_CHECK_BLOCKED"],
        admitted={"UDP": [0, 2]},
    )
    return "networking rule with `ports: []`, which the controller turns into no rule: blocked.", s


def _instance(s: Scenario, port: int) -> Scenario:
    """Instance targets: NodePort Service, targets are the nodes' instances on the NodePort."""
    udp_only(s)
    service = s.obj("Service", "coredns-external")
    service["spec"]["type"] = "NodePort"
    service["spec"]["ports"][0]["nodePort"] = 30053
    service["spec"]["ports"][1]["nodePort"] = 30054
    spec = s.tgb("coredns-udp")["spec"]
    spec["targetType"] = "instance"
    spec["networking"] = ingress(([VPC_CIDR], [("UDP", port), ("TCP", port)]))
    group = s.tg(UDP_TG)
    group["TargetType"] = "instance"
    group["Port"] = 30053
    for description, instance in zip(
        s.aws["DescribeTargetHealth"][UDP_TG]["TargetHealthDescriptions"], INSTANCES, strict=True
    ):
        description["Target"]["Id"] = instance
        description["Target"]["Port"] = 30053
        description["HealthCheckPort"] = "30053"
    # The controller writes exactly the port the networking names (§2.3, [I#1712]).
    s.sg(NODE_SG)["IpPermissions"] = [
        perm("udp", port, cidrs=[VPC_CIDR]),
        perm("tcp", port, cidrs=[VPC_CIDR]),
    ]
    return s


def instance_nodeport() -> tuple[str, Scenario]:
    s = _instance(base(), 30053)
    # Instance targets preserve the client IP; clients (the VPC) and the NLB nodes are covered on
    # the NodePort for UDP (data) and TCP (health check on traffic-port = 30053).
    s.expect(
        "coredns-udp",
        {"UDP": "reachable"},
        require=["HEALTH_CHECK_PROTOCOL_MISMATCH"],
        forbid=[
            "INSTANCE_PORT_NOT_NODEPORT",
            "TRAFFIC_BLOCKED",
            "MISSING_NETWORKING_RULE",
            "NETWORKING_NOT_RECONCILED",
            "HEALTH_CHECK_BLOCKED",
        ],
        admitted={"UDP": [2, 2]},
    )
    return "instance targets on NodePort 30053 with networking on the NodePort: reachable.", s


def instance_service_port() -> tuple[str, Scenario]:
    s = _instance(base(), 53)
    # Networking names the service port 53; the targets listen on NodePort 30053, so neither UDP
    # data nor the TCP health check is admitted, and every target fails its health check.
    s.health(UDP_TG, "unhealthy", "Target.FailedHealthChecks")
    s.expect(
        "coredns-udp",
        {"UDP": "blocked"},
        require=[
            "INSTANCE_PORT_NOT_NODEPORT",
            "TRAFFIC_BLOCKED",
            "HEALTH_CHECK_BLOCKED",
            "ALL_TARGETS_UNHEALTHY",
        ],
        forbid=["HEALTH_CHECK_MASKS_TRAFFIC", "NETWORKING_NOT_RECONCILED"],
        admitted={"UDP": [0, 2]},
    )
    return (
        "instance targets whose networking uses the service port 53 instead of NodePort 30053: blocked, "
        "health checks blocked, all targets unhealthy.",
        s,
    )


def health_check_port_mismatch() -> tuple[str, Scenario]:
    s = fixed_udp(base())
    group = s.tg(UDP_TG)
    group["HealthCheckPort"] = "8080"
    for description in s.aws["DescribeTargetHealth"][UDP_TG]["TargetHealthDescriptions"]:
        description["HealthCheckPort"] = "8080"
    s.tgb("coredns-udp")["spec"]["networking"] = ingress(([VPC_CIDR], [("UDP", 53), ("TCP", 8080)]))
    s.sg(NODE_SG)["IpPermissions"] = [perm("udp", 53, cidrs=[VPC_CIDR]), perm("tcp", 8080, cidrs=[VPC_CIDR])]
    s.expect(
        "coredns-udp",
        {"UDP": "reachable"},
        require=["HEALTH_CHECK_PORT_MISMATCH", "HEALTH_CHECK_PROTOCOL_MISMATCH"],
        forbid=["HEALTH_CHECK_BLOCKED", "TRAFFIC_BLOCKED", "HEALTH_CHECK_MASKS_TRAFFIC"],
        admitted={"UDP": [2, 2]},
    )
    return "UDP 53 checked by TCP on port 8080, both admitted: reachable, health-check port mismatch.", s


def health_check_blocked() -> tuple[str, Scenario]:
    s = udp_only(base())
    # Only UDP 53 is admitted; the TCP health check on traffic-port 53 is not, so all targets are
    # unhealthy, and the NLB fails open (§3.2): UDP is still admitted everywhere.
    s.tgb("coredns-udp")["spec"]["networking"] = ingress(([VPC_CIDR], [("UDP", 53)]))
    s.sg(NODE_SG)["IpPermissions"] = [perm("udp", 53, cidrs=[VPC_CIDR])]
    s.health(UDP_TG, "unhealthy", "Target.FailedHealthChecks")
    s.expect(
        "coredns-udp",
        {"UDP": "reachable"},
        require=["HEALTH_CHECK_BLOCKED", "ALL_TARGETS_UNHEALTHY", "HEALTH_CHECK_PROTOCOL_MISMATCH"],
        forbid=["TRAFFIC_BLOCKED", "HEALTH_CHECK_MASKS_TRAFFIC"],
        admitted={"UDP": [2, 2]},
    )
    return (
        "UDP admitted but the TCP health check is not: health check blocked, all targets unhealthy "
        "(fail-open).",
        s,
    )


def unhealthy_some() -> tuple[str, Scenario]:
    s = fixed_udp(base())
    s.health(UDP_TG, "unhealthy", "Target.FailedHealthChecks", only="10.0.2.25")
    s.expect(
        "coredns-udp",
        {"UDP": "reachable"},
        require=["UNHEALTHY_TARGETS"],
        forbid=["ALL_TARGETS_UNHEALTHY", "TRAFFIC_BLOCKED", "HEALTH_CHECK_BLOCKED"],
        admitted={"UDP": [2, 2]},
    )
    return (
        "rules fine, one target fails its health check (the app, not the network): unhealthy targets only.",
        s,
    )


def no_listener() -> tuple[str, Scenario]:
    s = fixed_udp(base())
    # The UDP listener is gone and the group is attached to no load balancer.
    s.aws["DescribeListeners"]["Listeners"] = [
        lst for lst in s.aws["DescribeListeners"]["Listeners"] if lst["Protocol"] != "UDP"
    ]
    s.tg(UDP_TG)["LoadBalancerArns"] = []
    s.health(UDP_TG, "unused", "Target.NotInUse")
    s.expect(
        "coredns-udp",
        {"UDP": "not_offered"},
        require=["NO_LISTENER"],
        forbid=["TRAFFIC_BLOCKED", "HEALTH_CHECK_MASKS_TRAFFIC", "ALL_TARGETS_UNHEALTHY"],
    )
    return "no listener forwards to the UDP group (targets unused): not offered.", s


def tg_not_found() -> tuple[str, Scenario]:
    s = udp_only(base())
    s.tgb("coredns-udp")["spec"]["targetGroupARN"] = (
        f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:targetgroup/k8s-dns-gone/0123456789abcdef"
    )
    s.expect("coredns-udp", {"*": "unknown"}, require=["TARGET_GROUP_NOT_FOUND"], forbid=["TRAFFIC_BLOCKED"])
    return (
        "the TGB's target group does not exist in the (complete) AWS data: unknown, target group not found.",
        s,
    )


def eni_not_found() -> tuple[str, Scenario]:
    s = fixed_udp(base())
    # Neither DescribeNetworkInterfaces nor DescribeInstances knows the targets' interfaces.
    s.aws["DescribeNetworkInterfaces"]["NetworkInterfaces"] = [
        e for e in s.enis() if e["NetworkInterfaceId"] not in NODE_ENIS
    ]
    del s.aws["DescribeInstances"]
    s.expect("coredns-udp", {"UDP": "unknown"}, require=["INVALID_SPEC"], forbid=["TRAFFIC_BLOCKED"])
    return "the targets' network interfaces are missing from the AWS data: unknown (ENI not found).", s


def target_drift() -> tuple[str, Scenario]:
    s = fixed_udp(base())
    # A third CoreDNS pod is ready in the EndpointSlice but was never registered.
    pod = copy.deepcopy(s.obj("Pod", "coredns-6d4b75cb6d-a1b2c"))
    pod["metadata"].update(name="coredns-6d4b75cb6d-x9y8z", uid="uid-coredns-6d4b75cb6d-x9y8z")
    pod["status"].update(podIP="10.0.1.16", podIPs=[{"ip": "10.0.1.16"}])
    s.items.append(pod)
    endpoint = copy.deepcopy(s.obj("EndpointSlice", "coredns-external-abcde")["endpoints"][0])
    endpoint["addresses"] = ["10.0.1.16"]
    endpoint["targetRef"]["name"] = "coredns-6d4b75cb6d-x9y8z"
    s.obj("EndpointSlice", "coredns-external-abcde")["endpoints"].append(endpoint)
    for eni in [s.eni(NODE_ENIS[0]), *s.instance_enis(NODE_ENIS[0])]:
        eni["PrivateIpAddresses"].append({"Primary": False, "PrivateIpAddress": "10.0.1.16"})
    s.expect(
        "coredns-udp",
        {"UDP": "reachable"},
        require=["TARGET_DRIFT"],
        forbid=["TRAFFIC_BLOCKED", "ALL_TARGETS_UNHEALTHY"],
    )
    return "a ready endpoint (10.0.1.16) is not registered in the target group: target drift.", s


def sg_tag_ambiguous() -> tuple[str, Scenario]:
    s = udp_only(base())
    s.tgb("coredns-udp")["spec"]["networking"] = ingress(([VPC_CIDR], [("UDP", 53), ("TCP", 53)]))
    # Both groups on each node ENI carry the cluster tag, so the controller cannot pick one (§2.2).
    s.add_sg(
        EXTRA_SG,
        "eks-extra",
        [perm("tcp", 22, cidrs=["10.0.0.0/24"], description="ssh")],
        tags={"kubernetes.io/cluster/demo": "shared"},
    )
    for eni in NODE_ENIS:
        s.set_eni_groups(eni, [NODE_SG, EXTRA_SG])
    s.event(
        "coredns-udp",
        "FailedNetworkReconcile",
        f"expected exactly one securityGroup tagged with kubernetes.io/cluster/demo for eni {NODE_ENIS[0]}, "
        f"got: [{NODE_SG} {EXTRA_SG}] (clusterName: demo)",
    )
    s.expect(
        "coredns-udp",
        {"UDP": "blocked"},
        require=["SECURITY_GROUP_TAG_AMBIGUOUS", "NETWORKING_NOT_RECONCILED", "TRAFFIC_BLOCKED"],
        forbid=["MISSING_NETWORKING_RULE"],
        admitted={"UDP": [0, 2]},
    )
    return (
        "node ENIs carry two cluster-tagged groups, so the controller cannot apply networking: blocked, "
        "tag ambiguous.",
        s,
    )


def overly_broad() -> tuple[str, Scenario]:
    s = fixed_udp(base())
    s.tgb("coredns-udp")["spec"]["networking"] = ingress(
        (["0.0.0.0/0"], [("UDP", 53)]), ([VPC_CIDR], [("TCP", 53)])
    )
    s.sg(NODE_SG)["IpPermissions"] = [perm("udp", 53, cidrs=["0.0.0.0/0"]), perm("tcp", 53, cidrs=[VPC_CIDR])]
    s.expect(
        "coredns-udp",
        {"UDP": "reachable"},
        require=["OVERLY_BROAD_SOURCE"],
        forbid=["TRAFFIC_BLOCKED", "CLIENT_RANGES_NOT_COVERED"],
        admitted={"UDP": [2, 2]},
    )
    return "UDP 53 open to 0.0.0.0/0 for an internal NLB: reachable, overly broad source.", s


def service_protocol_mismatch() -> tuple[str, Scenario]:
    s = fixed_udp(base())
    # A UDP group bound to the TCP ServicePort; and a second TGB with numeric port 53, which
    # matches both the UDP and the TCP ServicePort (the controller takes the first, §2.6).
    s.tgb("coredns-udp")["spec"]["serviceRef"]["port"] = "dns-tcp"
    numeric = copy.deepcopy(s.tgb("coredns-udp")["spec"])
    numeric["serviceRef"]["port"] = 53
    s.add_tgb("coredns-udp-numeric", numeric)
    for key in ("coredns-udp", "coredns-udp-numeric"):
        s.expect(key, {"UDP": "reachable"}, require=["SERVICE_PROTOCOL_MISMATCH"], forbid=["TRAFFIC_BLOCKED"])
    return (
        "UDP group bound to the TCP ServicePort, and one bound by a numeric port matching TCP and UDP: "
        "service protocol mismatch (rules themselves fine).",
        s,
    )


def _tcp_udp(s: Scenario, ports: list[tuple[str, int]]) -> Scenario:
    """One TCP_UDP listener and group replace the two single-protocol ones."""
    s.drop("TargetGroupBinding", "coredns-tcp")
    group = copy.deepcopy(s.tg(UDP_TG))
    group.update(TargetGroupArn=TCPUDP_TG, TargetGroupName="k8s-dns-tcpudp", Protocol="TCP_UDP")
    s.aws["DescribeTargetGroups"]["TargetGroups"] = [group]
    s.aws["DescribeTargetHealth"] = {TCPUDP_TG: s.aws["DescribeTargetHealth"][UDP_TG]}
    s.aws["DescribeTargetGroupAttributes"] = {TCPUDP_TG: s.aws["DescribeTargetGroupAttributes"][UDP_TG]}
    listener = s.aws["DescribeListeners"]["Listeners"][0]
    listener["Protocol"] = "TCP_UDP"
    # Forward target only through ForwardConfig, as weighted forward actions spell it.
    action = listener["DefaultActions"][0]
    del action["TargetGroupArn"]
    action["ForwardConfig"]["TargetGroups"][0]["TargetGroupArn"] = TCPUDP_TG
    s.aws["DescribeListeners"]["Listeners"] = [listener]
    spec = s.tgb("coredns-udp")["spec"]
    spec.update(targetGroupARN=TCPUDP_TG, targetGroupProtocol="TCP_UDP")
    spec["networking"] = ingress(([VPC_CIDR], ports))
    s.sg(NODE_SG)["IpPermissions"] = [perm(p.lower(), n, cidrs=[VPC_CIDR]) for p, n in ports]
    return s


def tcp_udp() -> tuple[str, Scenario]:
    s = _tcp_udp(base(), [("UDP", 53), ("TCP", 53)])
    s.expect(
        "coredns-udp",
        {"TCP": "reachable", "UDP": "reachable"},
        require=["HEALTH_CHECK_PROTOCOL_MISMATCH"],
        forbid=["TRAFFIC_BLOCKED", "MISSING_NETWORKING_RULE", "CLIENT_RANGES_NOT_COVERED"],
        admitted={"TCP": [2, 2], "UDP": [2, 2]},
    )
    return "TCP_UDP listener and group, UDP and TCP 53 admitted from the VPC: two results, both reachable.", s


def tcp_udp_udp_blocked() -> tuple[str, Scenario]:
    s = _tcp_udp(base(), [("TCP", 53)])
    s.expect(
        "coredns-udp",
        {"TCP": "reachable", "UDP": "blocked"},
        require=[
            "TRAFFIC_BLOCKED",
            "HEALTH_CHECK_MASKS_TRAFFIC",
            "MISSING_NETWORKING_RULE",
            "HEALTH_CHECK_PROTOCOL_MISMATCH",
        ],
        forbid=["HEALTH_CHECK_BLOCKED"],
        admitted={"TCP": [2, 2], "UDP": [0, 2]},
    )
    return "TCP_UDP group with networking for TCP only: TCP reachable, UDP blocked, health check green.", s


def _internet_facing(s: Scenario) -> Scenario:
    s.aws["DescribeLoadBalancers"]["LoadBalancers"][0]["Scheme"] = "internet-facing"
    return s


def internet_facing_vpc_only() -> tuple[str, Scenario]:
    s = _internet_facing(fixed_udp(base()))
    # Internet-facing, no NLB security group: clients default to 0.0.0.0/0 and their IPs are
    # preserved, but the rules admit the VPC only.
    s.expect(
        "coredns-udp",
        {"UDP": "partial"},
        require=["CLIENT_RANGES_NOT_COVERED", "TRAFFIC_BLOCKED", "HEALTH_CHECK_MASKS_TRAFFIC"],
        forbid=["HEALTH_CHECK_BLOCKED", "MISSING_NETWORKING_RULE", "NETWORKING_NOT_RECONCILED"],
    )
    return (
        "internet-facing NLB without security groups, UDP admitted from the VPC only: partial, client "
        "ranges not covered.",
        s,
    )


def internet_facing_nlb_sg() -> tuple[str, Scenario]:
    s = _internet_facing(udp_only(base()))
    lb = s.aws["DescribeLoadBalancers"]["LoadBalancers"][0]
    lb["SecurityGroups"] = [NLB_SG]
    s.add_sg(
        NLB_SG,
        "k8s-kubesyst-corednse",
        [
            perm("udp", 53, cidrs=["0.0.0.0/0"], description="dns"),
            perm("tcp", 53, cidrs=["0.0.0.0/0"], description="dns"),
        ],
    )
    for eni in s.enis():
        if eni["InterfaceType"] == "network_load_balancer":
            eni["Groups"] = [{"GroupId": NLB_SG, "GroupName": "k8s-kubesyst-corednse"}]
    # The target rule references the NLB's group: it admits that NLB's traffic, data and health
    # checks, whatever the client address (DESIGN "Expected sources", §3.4).
    s.tgb("coredns-udp")["spec"]["networking"] = ingress(([NLB_SG], [("UDP", 53), ("TCP", 53)]))
    s.sg(NODE_SG)["IpPermissions"] = [perm("udp", 53, groups=[NLB_SG]), perm("tcp", 53, groups=[NLB_SG])]
    s.expect(
        "coredns-udp",
        {"UDP": "reachable"},
        require=["HEALTH_CHECK_PROTOCOL_MISMATCH"],
        forbid=[
            "TRAFFIC_BLOCKED",
            "CLIENT_RANGES_NOT_COVERED",
            "HEALTH_CHECK_BLOCKED",
            "MISSING_NETWORKING_RULE",
            "NETWORKING_NOT_RECONCILED",
        ],
        admitted={"UDP": [2, 2]},
    )
    return (
        "internet-facing NLB with a security group that the target rule references: reachable for "
        "every client.",
        s,
    )


def _ipv6(s: Scenario, udp_sources: list[str]) -> Scenario:
    fixed_udp(s)
    v6 = {"a": "2600:1f18:1234:5601", "b": "2600:1f18:1234:5602"}
    pod_ips = {"10.0.1.15": f"{v6['a']}:a::15", "10.0.2.25": f"{v6['b']}:b::25"}
    vpc = s.aws["DescribeVpcs"]["Vpcs"][0]
    vpc["Ipv6CidrBlockAssociationSet"] = [
        {
            "AssociationId": "vpc-cidr-assoc-6",
            "Ipv6CidrBlock": VPC_V6,
            "Ipv6CidrBlockState": {"State": "associated"},
        }
    ]
    for subnet, zone in zip(s.aws["DescribeSubnets"]["Subnets"], "ab", strict=True):
        subnet["Ipv6CidrBlockAssociationSet"] = [
            {"Ipv6CidrBlock": f"{v6[zone]}::/64", "Ipv6CidrBlockState": {"State": "associated"}}
        ]
    lb = s.aws["DescribeLoadBalancers"]["LoadBalancers"][0]
    lb["IpAddressType"] = "dualstack"
    lb["EnablePrefixForIpv6SourceNat"] = "on"  # required for UDP over IPv6 (§2.5C)
    for zone, letter in zip(lb["AvailabilityZones"], "ab", strict=True):
        zone["LoadBalancerAddresses"][0]["IPv6Address"] = f"{v6[letter]}::200"
    for eni in s.enis():
        letter = "a" if eni["SubnetId"].startswith("subnet-0aaa") else "b"
        if eni["InterfaceType"] == "network_load_balancer":
            eni["Ipv6Addresses"] = [{"Ipv6Address": f"{v6[letter]}::200"}]
    # Pod IPv6 addresses come from prefixes delegated to the node ENIs (VPC CNI IPv6 mode).
    for eni_id, letter in zip(NODE_ENIS, "ab", strict=True):
        for eni in [s.eni(eni_id), *s.instance_enis(eni_id)]:
            eni["Ipv6Prefixes"] = [{"Ipv6Prefix": f"{v6[letter]}:{letter}::/80"}]
    for pod in (i for i in s.items if i["kind"] == "Pod"):
        ip = pod_ips[pod["status"]["podIP"]]
        pod["status"].update(podIP=ip, podIPs=[{"ip": ip}])
    eps = s.obj("EndpointSlice", "coredns-external-abcde")
    eps["addressType"] = "IPv6"
    for endpoint in eps["endpoints"]:
        endpoint["addresses"] = [pod_ips[endpoint["addresses"][0]]]
    s.obj("Service", "coredns-external")["spec"]["ipFamilies"] = ["IPv6"]
    group = s.tg(UDP_TG)
    group["IpAddressType"] = "ipv6"
    for description in s.aws["DescribeTargetHealth"][UDP_TG]["TargetHealthDescriptions"]:
        description["Target"]["Id"] = pod_ips[description["Target"]["Id"]]
    tgb = s.tgb("coredns-udp")
    tgb["spec"]["ipAddressType"] = "ipv6"
    # Clients: the VPC's IPv6 range and an on-premises IPv6 range, set by the TGB annotation.
    tgb["metadata"]["annotations"] = {"binding-health/client-cidrs": f"{VPC_V6}, 2001:db8:100::/48"}
    tgb["spec"]["networking"] = ingress((udp_sources, [("UDP", 53)]), ([VPC_V6, VPC_CIDR], [("TCP", 53)]))
    s.sg(NODE_SG)["IpPermissions"] = [
        perm("udp", 53, cidrs=udp_sources),
        perm("tcp", 53, cidrs=[VPC_V6, VPC_CIDR]),
    ]
    return s


def ipv6_reachable() -> tuple[str, Scenario]:
    s = _ipv6(base(), [VPC_V6, "2001:db8:100::/48"])
    s.expect(
        "coredns-udp",
        {"UDP": "reachable"},
        require=["HEALTH_CHECK_PROTOCOL_MISMATCH"],
        forbid=[
            "TRAFFIC_BLOCKED",
            "CLIENT_RANGES_NOT_COVERED",
            "HEALTH_CHECK_BLOCKED",
            "OVERLY_BROAD_SOURCE",
        ],
        admitted={"UDP": [2, 2]},
    )
    return (
        "IPv6 ip targets (pod IPs from delegated prefixes), client ranges from the TGB annotation, "
        "covered by Ipv6Ranges rules: reachable.",
        s,
    )


def ipv6_blocked() -> tuple[str, Scenario]:
    s = _ipv6(base(), [VPC_CIDR])
    # An IPv4 rule never covers IPv6 clients.
    s.expect(
        "coredns-udp",
        {"UDP": "blocked"},
        require=["TRAFFIC_BLOCKED", "CLIENT_RANGES_NOT_COVERED", "HEALTH_CHECK_MASKS_TRAFFIC"],
        forbid=["HEALTH_CHECK_BLOCKED"],
        admitted={"UDP": [0, 2]},
    )
    return "IPv6 targets whose UDP rule admits the IPv4 VPC range only: blocked for the IPv6 clients.", s


def client_cidrs_bundle() -> tuple[str, Scenario]:
    s = base()
    s.tgb("coredns-udp")["spec"]["networking"] = ingress(([VPC_CIDR], [("UDP", 53), ("TCP", 53)]))
    s.sg(NODE_SG)["IpPermissions"] = [perm("udp", 53, cidrs=[VPC_CIDR]), perm("tcp", 53, cidrs=[VPC_CIDR])]
    # Clients also come over a VPN from 192.168.0.0/16 (bundle.json clientCidrs). UDP preserves
    # their IPs (partial); the TCP ip group does not, so its sources stay the NLB's addresses.
    s.meta["clientCidrs"] = [VPC_CIDR, "192.168.0.0/16"]
    s.expect(
        "coredns-udp",
        {"UDP": "partial"},
        require=["CLIENT_RANGES_NOT_COVERED", "TRAFFIC_BLOCKED"],
        forbid=["NETWORKING_NOT_RECONCILED", "MISSING_NETWORKING_RULE"],
    )
    s.expect(
        "coredns-tcp",
        {"TCP": "reachable"},
        forbid=["CLIENT_RANGES_NOT_COVERED", "TRAFFIC_BLOCKED"],
        admitted={"TCP": [2, 2]},
    )
    return (
        "bundle.json clientCidrs adds a VPN range: UDP (client IP preserved) partial, TCP (not preserved) "
        "still reachable.",
        s,
    )


def malformed_objects() -> tuple[str, Scenario]:
    s = fixed_udp(base())
    healthy = s.tgb("coredns-udp")["spec"]
    # The broken copies bind the same target group: the controller's webhook allows that only in
    # multi-cluster mode on every binding of the group (checkExistingTargetGroups).
    healthy["multiClusterTargetGroup"] = True
    no_ref = copy.deepcopy(healthy)
    del no_ref["serviceRef"]
    s.add_tgb("broken-no-service-ref", no_ref)
    bad_cidr = copy.deepcopy(healthy)
    bad_cidr["networking"] = ingress((["10.0.0.0/33"], [("UDP", 53)]))
    s.add_tgb("broken-cidr", bad_cidr)
    missing_service = copy.deepcopy(healthy)
    missing_service["serviceRef"] = {"name": "does-not-exist", "port": "dns-udp"}
    s.add_tgb("broken-missing-service", missing_service)
    # Junk next to them: a list item that is no object, and a TGB whose spec is a list.
    s.items.append("not an object")  # type: ignore[arg-type]
    s.add_tgb("broken-spec-type", [])  # type: ignore[arg-type]
    for key in ("broken-no-service-ref", "broken-cidr", "broken-missing-service", "broken-spec-type"):
        s.expect(key, {}, require=["INVALID_SPEC"])
    s.expect(
        "coredns-udp",
        {"UDP": "reachable"},
        forbid=["INVALID_SPEC", "TRAFFIC_BLOCKED"],
        admitted={"UDP": [2, 2]},
    )
    return (
        "malformed TGBs (no serviceRef, CIDR 10.0.0.0/33, missing Service, spec of the wrong type) and a "
        "junk list item next to a healthy binding: invalid spec for each, the healthy one still reachable.",
        s,
    )


# --- controller parity ---------------------------------------------------------------------------
# Scenarios whose expected results follow from the AWS Load Balancer Controller's own unit tests
# (kubernetes-sigs/aws-load-balancer-controller, pkg/networking/networking_manager_test.go and
# webhooks/elbv2/targetgroupbinding_validator_test.go): each binding's `controllerTests` names the
# cases. What the controller writes decides "reconciled"; what its webhook rejects is INVALID_SPEC.

NM = "pkg/networking/networking_manager_test.go"
VT = "webhooks/elbv2/targetgroupbinding_validator_test.go"
CLIENT_SG = "sg-0client000000000e"
CLUSTER_TAG = {"kubernetes.io/cluster/demo": "owned"}
RECONCILED_OK = ["TRAFFIC_BLOCKED", "NETWORKING_NOT_RECONCILED", "MISSING_NETWORKING_RULE", "INVALID_SPEC"]


def _pod(s: Scenario, ip: str) -> dict:
    return next(i for i in s.items if i["kind"] == "Pod" and i["status"]["podIP"] == ip)


def _pod_ports(s: Scenario, ip: str, ports: list[tuple[str, int, str]]) -> None:
    """Replace a pod's container ports with (name, number, protocol) entries."""
    _pod(s, ip)["spec"]["containers"][0]["ports"] = [
        {"name": name, "containerPort": number, "protocol": proto} for name, number, proto in ports
    ]


def _register_port(s: Scenario, arn: str, ip: str, port: int) -> None:
    """The target group registers the pod on the port its named targetPort resolves to."""
    for description in s.aws["DescribeTargetHealth"][arn]["TargetHealthDescriptions"]:
        if description["Target"]["Id"] == ip:
            description["Target"]["Port"] = port
            description["HealthCheckPort"] = str(port)


def _named_target_ports(s: Scenario, second_pod_port: int) -> Scenario:
    """Service targetPorts by name ("dns"/"dns-tcp"); the second pod names them `second_pod_port`,
    so the endpoints split into one EndpointSlice per port number, as Kubernetes writes them."""
    udp_only(s)
    service = s.obj("Service", "coredns-external")
    service["spec"]["ports"][0]["targetPort"] = "dns"
    service["spec"]["ports"][1]["targetPort"] = "dns-tcp"
    _pod_ports(s, "10.0.2.25", [("dns", second_pod_port, "UDP"), ("dns-tcp", second_pod_port, "TCP")])
    _register_port(s, UDP_TG, "10.0.2.25", second_pod_port)
    if second_pod_port != 53:
        eps = s.obj("EndpointSlice", "coredns-external-abcde")
        other = copy.deepcopy(eps)
        other["metadata"]["name"] = "coredns-external-fghij"
        other["metadata"]["uid"] = "uid-eps-coredns-external-2"
        eps["endpoints"] = [e for e in eps["endpoints"] if e["addresses"] == ["10.0.1.15"]]
        other["endpoints"] = [e for e in other["endpoints"] if e["addresses"] == ["10.0.2.25"]]
        for port in other["ports"]:
            port["port"] = second_pod_port
        s.items.append(other)
    s.tgb("coredns-udp")["spec"]["networking"] = ingress(([VPC_CIDR], [("UDP", "dns"), ("TCP", "dns-tcp")]))
    return s


def _second_node_group(s: Scenario, rules: list[dict]) -> None:
    """The second node in its own node group: its ENI carries only NODE_B_SG (cluster-tagged)."""
    s.add_sg(NODE_B_SG, "eks-node-b", rules, tags=CLUSTER_TAG)
    s.set_eni_groups(NODE_ENIS[1], [NODE_B_SG])


def parity_permission_peers_ports() -> tuple[str, Scenario]:
    s = fixed_udp(base())
    s.add_sg(CLIENT_SG, "dns-clients", [])
    # One rule, two peers (a group and a CIDR), two ports: the controller writes one permission
    # per peer and port, four in all, and the group holds exactly those.
    s.tgb("coredns-udp")["spec"]["networking"] = ingress(([CLIENT_SG, VPC_CIDR], [("UDP", 53), ("TCP", 53)]))
    s.sg(NODE_SG)["IpPermissions"] = [
        perm("udp", 53, groups=[CLIENT_SG]),
        perm("tcp", 53, groups=[CLIENT_SG]),
        perm("udp", 53, cidrs=[VPC_CIDR]),
        perm("tcp", 53, cidrs=[VPC_CIDR]),
    ]
    s.expect(
        "coredns-udp",
        {"UDP": "reachable"},
        forbid=RECONCILED_OK,
        admitted={"UDP": [2, 2]},
        cites=[
            f"{NM}: Test_defaultNetworkingManager_computeIngressPermissionsForTGBNetworking: "
            "with one rule / multiple peer / multiple port",
            f"{NM}: Test_defaultNetworkingManager_computePermissionsForPeerPort: permission for "
            "securityGroup peer",
            f"{NM}: Test_defaultNetworkingManager_computePermissionsForPeerPort: "
            "permission for IPBlock peer with IPv4 CIDR",
        ],
    )
    return (
        "one networking rule with a group peer and a CIDR peer on UDP and TCP 53: four "
        "permissions, all held: reconciled.",
        s,
    )


def parity_permission_missing_group_peer() -> tuple[str, Scenario]:
    _, s = parity_permission_peers_ports()
    # The group-peer UDP permission is missing: the CIDR still admits the clients, but the
    # controller's state is not reached.
    s.sg(NODE_SG)["IpPermissions"] = [
        p for p in s.sg(NODE_SG)["IpPermissions"] if p["UserIdGroupPairs"] == [] or p["IpProtocol"] != "udp"
    ]
    s.expected = {"bindings": {}}
    s.expect(
        "coredns-udp",
        {"UDP": "reachable"},
        require=["NETWORKING_NOT_RECONCILED"],
        forbid=["TRAFFIC_BLOCKED", "MISSING_NETWORKING_RULE", "INVALID_SPEC"],
        cites=[
            f"{NM}: Test_defaultNetworkingManager_computeIngressPermissionsForTGBNetworking: "
            "with multiple rule / one peer / one port",
            f"{NM}: Test_defaultNetworkingManager_computePermissionsForPeerPort: permission for "
            "securityGroup peer",
        ],
    )
    return (
        "the same with the group-peer UDP permission missing: reachable through the CIDR, not reconciled.",
        s,
    )


def parity_permission_defaults() -> tuple[str, Scenario]:
    s = fixed_udp(base())
    # `{port: 53}` is TCP 53; `{protocol: UDP}` is UDP on every port (0-65535).
    s.tgb("coredns-udp")["spec"]["networking"] = {
        "ingress": [{"from": [{"ipBlock": {"cidr": VPC_CIDR}}], "ports": [{"port": 53}, {"protocol": "UDP"}]}]
    }
    udp_all = perm("udp", None, cidrs=[VPC_CIDR])
    udp_all["FromPort"], udp_all["ToPort"] = 0, 65535
    s.sg(NODE_SG)["IpPermissions"] = [perm("tcp", 53, cidrs=[VPC_CIDR]), udp_all]
    s.expect(
        "coredns-udp",
        {"UDP": "reachable"},
        forbid=RECONCILED_OK,
        admitted={"UDP": [2, 2]},
        cites=[
            f"{NM}: Test_defaultNetworkingManager_computePermissionsForPeerPort: permission when "
            "protocol defaults to tcp",
            f"{NM}: Test_defaultNetworkingManager_computePermissionsForPeerPort: permission when "
            "port defaults to all ports",
            f"{NM}: Test_defaultNetworkingManager_computeNumericalPorts: numerical port can always "
            "be resolved",
        ],
    )
    return (
        "ports without a protocol (TCP) and without a port (all ports), both written as such: reconciled.",
        s,
    )


def parity_named_port_same_number() -> tuple[str, Scenario]:
    s = _named_target_ports(base(), 53)
    s.sg(NODE_SG)["IpPermissions"] = [perm("udp", 53, cidrs=[VPC_CIDR]), perm("tcp", 53, cidrs=[VPC_CIDR])]
    s.expect(
        "coredns-udp",
        {"UDP": "reachable"},
        forbid=RECONCILED_OK,
        admitted={"UDP": [2, 2]},
        cites=[
            f"{NM}: Test_defaultNetworkingManager_computeNumericalPorts: named port resolves to "
            "same numerical port"
        ],
    )
    return "named ports `dns`/`dns-tcp` that every pod declares as 53: one number, written: reconciled.", s


def parity_named_port_two_numbers() -> tuple[str, Scenario]:
    s = _named_target_ports(base(), 5353)
    # Both pods sit behind the same group: it gets both numbers.
    s.sg(NODE_SG)["IpPermissions"] = [
        perm(proto, port, cidrs=[VPC_CIDR]) for proto in ("udp", "tcp") for port in (53, 5353)
    ]
    s.expect(
        "coredns-udp",
        {"UDP": "reachable"},
        forbid=RECONCILED_OK,
        admitted={"UDP": [2, 2]},
        cites=[
            f"{NM}: Test_defaultNetworkingManager_computeNumericalPorts: named port resolves to "
            "different numerical port",
            f"{NM}: Test_defaultNetworkingManager_computePermissionsForPeerPort: "
            "permission when named ports maps to multiple numeric port",
        ],
    )
    return (
        "named port `dns` is 53 on one pod and 5353 on the other, one group: both numbers "
        "written: reconciled.",
        s,
    )


def parity_named_port_per_group() -> tuple[str, Scenario]:
    s = _named_target_ports(base(), 5353)
    # Each node group's group gets only the numbers of its own pods
    # (computeIngressPermissionsPerSGWithPodEndpoints): 53 on the first, 5353 on the second.
    s.sg(NODE_SG)["IpPermissions"] = [perm("udp", 53, cidrs=[VPC_CIDR]), perm("tcp", 53, cidrs=[VPC_CIDR])]
    _second_node_group(s, [perm("udp", 5353, cidrs=[VPC_CIDR]), perm("tcp", 5353, cidrs=[VPC_CIDR])])
    s.expect(
        "coredns-udp",
        {"UDP": "reachable"},
        forbid=RECONCILED_OK,
        admitted={"UDP": [2, 2]},
        cites=[
            "pkg/networking/networking_manager.go: computeIngressPermissionsPerSGWithPodEndpoints "
            "(pods grouped by the group resolveEndpointSGForENI picks; no unit test of its own)",
            f"{NM}: Test_defaultNetworkingManager_computeNumericalPorts: named port resolves to "
            "different numerical port",
        ],
    )
    return (
        "named port `dns` is 53 on a pod of one node group and 5353 on a pod of another: each group holds "
        "only its own pods' number: reconciled (not NETWORKING_NOT_RECONCILED).",
        s,
    )


def parity_named_port_per_group_wrong() -> tuple[str, Scenario]:
    _, s = parity_named_port_per_group()
    # The second group holds its neighbour's number (53) instead of its own pod's (5353).
    s.sg(NODE_B_SG)["IpPermissions"] = [perm("udp", 53, cidrs=[VPC_CIDR]), perm("tcp", 53, cidrs=[VPC_CIDR])]
    s.expected = {"bindings": {}}
    s.expect(
        "coredns-udp",
        {"UDP": "partial"},
        require=["NETWORKING_NOT_RECONCILED", "TRAFFIC_BLOCKED"],
        forbid=["MISSING_NETWORKING_RULE", "INVALID_SPEC"],
        admitted={"UDP": [1, 2]},
        cites=[
            "pkg/networking/networking_manager.go: computeIngressPermissionsPerSGWithPodEndpoints",
            f"{NM}: Test_defaultNetworkingManager_computeNumericalPorts: named port resolves to "
            "different numerical port",
        ],
    )
    return (
        "the same, but the second group holds 53 instead of its pod's 5353: partial, not reconciled there.",
        s,
    )


def parity_named_port_undeclared() -> tuple[str, Scenario]:
    s = udp_only(base())
    # The Service targets port 53 by number; the networking names the pods' ports. The second pod
    # names them differently: looking `dns` up on it fails, the controller fails the whole
    # binding's networking and writes none of its rules.
    s.tgb("coredns-udp")["spec"]["networking"] = ingress(([VPC_CIDR], [("UDP", "dns"), ("TCP", "dns-tcp")]))
    _pod_ports(s, "10.0.2.25", [("domain", 53, "UDP"), ("domain-tcp", 53, "TCP")])
    s.event(
        "coredns-udp",
        "FailedNetworkReconcile",
        "unable to find port dns on pod kube-system/coredns-6d4b75cb6d-d3e4f",
    )
    s.expect(
        "coredns-udp",
        {"UDP": "blocked"},
        require=["INVALID_SPEC", "TRAFFIC_BLOCKED", "HEALTH_CHECK_MASKS_TRAFFIC"],
        admitted={"UDP": [0, 2]},
        cites=[
            "pkg/k8s/pod_info.go: PodInfo.LookupContainerPort ('unable to find port ... on pod ...'), "
            "called by computeNumericalPorts for every pod",
            f"{NM}: Test_defaultNetworkingManager_computeNumericalPorts: named port resolves to "
            "same numerical port",
        ],
    )
    return (
        "named port `dns` that one target pod does not declare: invalid spec (no rule is written), blocked.",
        s,
    )


def parity_named_port_undeclared_ipv6() -> tuple[str, Scenario]:
    s = _ipv6(base(), [VPC_V6, "2001:db8:100::/48"])
    s.tgb("coredns-udp")["spec"]["networking"] = ingress(
        ([VPC_V6, "2001:db8:100::/48"], [("UDP", "dns")]), ([VPC_V6, VPC_CIDR], [("TCP", "dns-tcp")])
    )
    second = next(i for i in s.items if i["kind"] == "Pod" and i["metadata"]["name"].endswith("d3e4f"))
    second["spec"]["containers"][0]["ports"] = [{"name": "domain", "containerPort": 53, "protocol": "UDP"}]
    s.sg(NODE_SG)["IpPermissions"] = [perm("tcp", 53, cidrs=[VPC_CIDR], description="dns over tcp")]
    s.expect(
        "coredns-udp",
        {"UDP": "blocked"},
        require=["INVALID_SPEC", "TRAFFIC_BLOCKED"],
        cites=[
            "pkg/k8s/pod_info.go: PodInfo.LookupContainerPort, called by computeNumericalPorts for every pod"
        ],
    )
    return "IPv6 targets, named ports that one pod does not declare: invalid spec, blocked.", s


def parity_named_port_instance() -> tuple[str, Scenario]:
    s = _instance(base(), 30053)
    s.tgb("coredns-udp")["spec"]["networking"] = ingress(([VPC_CIDR], [("UDP", "dns"), ("TCP", 30053)]))
    s.sg(NODE_SG)["IpPermissions"] = [perm("tcp", 30053, cidrs=[VPC_CIDR])]
    s.expect(
        "coredns-udp",
        {"UDP": "blocked"},
        require=["INVALID_SPEC", "TRAFFIC_BLOCKED"],
        cites=[
            f"{NM}: Test_defaultNetworkingManager_computeNumericalPorts: numerical port cannot be "
            "used without pods"
        ],
    )
    return (
        "instance targets with a named networking port: the controller rejects names without "
        "pods: invalid spec.",
        s,
    )


def parity_named_port_hostile() -> tuple[str, Scenario]:
    s = udp_only(base())
    hostile = "<img src=x onerror=alert(1)>\u202edns"
    s.tgb("coredns-udp")["spec"]["networking"] = ingress(([VPC_CIDR], [("UDP", hostile), ("TCP", 53)]))
    s.expect(
        "coredns-udp",
        {"UDP": "blocked"},
        require=["INVALID_SPEC", "TRAFFIC_BLOCKED"],
        cites=[
            "pkg/k8s/pod_info.go: PodInfo.LookupContainerPort, called by computeNumericalPorts for every pod"
        ],
    )
    return (
        "a hostile port name (markup, a bidi override) that no pod declares: invalid spec on that binding.",
        s,
    )


def _two_groups(s: Scenario, extra_tags: dict, flag: dict | None) -> Scenario:
    """Both node ENIs carry NODE_SG and EXTRA_SG; `flag` is the controller's
    --service-target-eni-security-group-tags (bundle.json)."""
    fixed_udp(s)
    s.add_sg(EXTRA_SG, "eks-extra", [], tags=extra_tags)
    for eni in NODE_ENIS:
        s.set_eni_groups(eni, [NODE_SG, EXTRA_SG])
    if flag is not None:
        s.meta["serviceTargetEniSecurityGroupTags"] = flag
    return s


def _rules_in(s: Scenario, group: str) -> None:
    """The networking's rules live in `group` (and not in the other node group)."""
    held = [perm("udp", 53, cidrs=[VPC_CIDR]), perm("tcp", 53, cidrs=[VPC_CIDR])]
    for gid in (NODE_SG, EXTRA_SG):
        s.sg(gid)["IpPermissions"] = copy.deepcopy(held) if gid == group else []


SG_CHOICE = f"{NM}: Test_defaultNetworkingManager_resolveEndpointSGForENI"
EXTRA_TAGS = {"keyA": "valueA", "keyB": "valueB2", "keyC": "valueC", "keyD": "valueD"}


def parity_sg_choice_single_group() -> tuple[str, Scenario]:
    s = fixed_udp(base())
    # One group on the ENI: the controller uses it, without looking at tags (the flag included).
    s.sg(NODE_SG)["Tags"] = [{"Key": "Name", "Value": "eks-node"}]
    s.meta["serviceTargetEniSecurityGroupTags"] = {"keyA": "valueA"}
    s.expect(
        "coredns-udp",
        {"UDP": "reachable"},
        forbid=["SECURITY_GROUP_TAG_AMBIGUOUS", *RECONCILED_OK],
        admitted={"UDP": [2, 2]},
        cites=[f"{SG_CHOICE}: Only one security group in eniInfo returns early"],
    )
    return "one untagged group on each ENI, the tag flag set: that group, no ambiguity: reconciled.", s


def parity_sg_choice_cluster_tag() -> tuple[str, Scenario]:
    s = _two_groups(base(), EXTRA_TAGS, None)
    _rules_in(s, NODE_SG)
    s.expect(
        "coredns-udp",
        {"UDP": "reachable"},
        forbid=["SECURITY_GROUP_TAG_AMBIGUOUS", *RECONCILED_OK],
        admitted={"UDP": [2, 2]},
        cites=[f"{SG_CHOICE}: A single security group with cluster name tag and no service target tags set"],
    )
    return (
        "two groups per ENI, only one with the cluster tag, no flag: that one holds the rules: reconciled.",
        s,
    )


def parity_sg_choice_flag_match() -> tuple[str, Scenario]:
    s = _two_groups(base(), {**CLUSTER_TAG, **EXTRA_TAGS}, {"keyA": "valueA"})
    _rules_in(s, EXTRA_SG)
    s.expect(
        "coredns-udp",
        {"UDP": "reachable"},
        forbid=["SECURITY_GROUP_TAG_AMBIGUOUS", *RECONCILED_OK],
        admitted={"UDP": [2, 2]},
        cites=[f"{SG_CHOICE}: A single security group with cluster name tag and one service target tag set"],
    )
    return (
        "two cluster-tagged groups per ENI, the flag keyA=valueA picks the one carrying it, which holds "
        "the rules: reconciled, no SECURITY_GROUP_TAG_AMBIGUOUS.",
        s,
    )


def parity_sg_choice_flag_match_all() -> tuple[str, Scenario]:
    s = _two_groups(base(), {**CLUSTER_TAG, **EXTRA_TAGS}, {"keyA": "valueA", "keyB": "valueB2"})
    # The rules are missing: the fix must aim at the group the flag picks (EXTRA_SG).
    _rules_in(s, "none")
    s.sg(NODE_SG)["IpPermissions"] = [perm("tcp", 53, cidrs=[VPC_CIDR], description="dns over tcp")]
    s.expect(
        "coredns-udp",
        {"UDP": "blocked"},
        require=["NETWORKING_NOT_RECONCILED", "TRAFFIC_BLOCKED"],
        forbid=["SECURITY_GROUP_TAG_AMBIGUOUS", "MISSING_NETWORKING_RULE", "INVALID_SPEC"],
        admitted={"UDP": [0, 2]},
        cites=[
            f"{SG_CHOICE}: A single security group with cluster name tag and multiple service target tags set"
        ],
    )
    return (
        "the flag with two tags picks the group carrying both; its rules are missing: not reconciled, and "
        "the fix writes to that group.",
        s,
    )


def parity_sg_choice_flag_no_match() -> tuple[str, Scenario]:
    s = _two_groups(base(), {**CLUSTER_TAG, **EXTRA_TAGS}, {"keyA": "valueNotA"})
    # The controller errors, so it has written nothing anywhere.
    _rules_in(s, "none")
    s.expect(
        "coredns-udp",
        {"UDP": "blocked"},
        require=["SECURITY_GROUP_TAG_AMBIGUOUS", "NETWORKING_NOT_RECONCILED", "TRAFFIC_BLOCKED"],
        cites=[
            f"{SG_CHOICE}: A single security group with cluster name tag and one service target "
            "tag set with no matches",
            f"{SG_CHOICE}: A single security group with cluster name tag and multiple service "
            "target tags set "
            "with no matches",
        ],
    )
    return (
        "the flag's tag value matches no cluster-tagged group: the controller errors and writes nothing: "
        "tag ambiguous, blocked.",
        s,
    )


def parity_sg_choice_flag_empty_value() -> tuple[str, Scenario]:
    s = _two_groups(base(), {**CLUSTER_TAG, **EXTRA_TAGS, "keyA": ""}, {"keyA": ""})
    _rules_in(s, EXTRA_SG)
    s.expect(
        "coredns-udp",
        {"UDP": "reachable"},
        forbid=["SECURITY_GROUP_TAG_AMBIGUOUS", *RECONCILED_OK],
        admitted={"UDP": [2, 2]},
        cites=[
            f"{SG_CHOICE}: A single security group with cluster name tag and a service target tags "
            "with an empty value"
        ],
    )
    return (
        'the flag keyA="" matches the group whose keyA is empty: that group holds the rules: reconciled.',
        s,
    )


def parity_sg_choice_flag_empty_value_missing() -> tuple[str, Scenario]:
    s = _two_groups(base(), {**CLUSTER_TAG, **EXTRA_TAGS, "keyA": ""}, {"keyE": ""})
    # The controller errors, so it has written nothing anywhere.
    _rules_in(s, "none")
    s.expect(
        "coredns-udp",
        {"UDP": "blocked"},
        require=["SECURITY_GROUP_TAG_AMBIGUOUS", "NETWORKING_NOT_RECONCILED", "TRAFFIC_BLOCKED"],
        cites=[
            f"{SG_CHOICE}: A single security group with cluster name tag and a service target tag "
            "with an empty "
            "value with no matches"
        ],
    )
    return 'the flag keyE="" names a tag no group carries: tag ambiguous, nothing written, blocked.', s


def parity_aggregation_restricted() -> tuple[str, Scenario]:
    s = base()
    lb = s.aws["DescribeLoadBalancers"]["LoadBalancers"][0]
    lb["SecurityGroups"] = [NLB_SG]
    s.add_sg(
        NLB_SG,
        "k8s-kubesyst-corednse",
        [perm("udp", 53, cidrs=[VPC_CIDR]), perm("tcp", 53, cidrs=[VPC_CIDR])],
    )
    for eni in s.enis():
        if eni["InterfaceType"] == "network_load_balancer":
            eni["Groups"] = [{"GroupId": NLB_SG, "GroupName": "k8s-kubesyst-corednse"}]
    # Two bindings declare TCP from the NLB's group on 53 and 8080: the controller merges the
    # permissions from one source group and protocol into one range (restricted rules, its
    # default), so the node group holds tcp 53-8080 from the NLB group, not two rules.
    s.tgb("coredns-udp")["spec"]["networking"] = ingress(([NLB_SG], [("UDP", 53), ("TCP", 53)]))
    s.tgb("coredns-tcp")["spec"]["networking"] = ingress(([NLB_SG], [("TCP", 53), ("TCP", 8080)]))
    merged = perm("tcp", None, groups=[NLB_SG])
    merged["FromPort"], merged["ToPort"] = 53, 8080
    s.sg(NODE_SG)["IpPermissions"] = [perm("udp", 53, groups=[NLB_SG]), merged]
    for key, proto in (("coredns-udp", "UDP"), ("coredns-tcp", "TCP")):
        s.expect(
            key,
            {proto: "reachable"},
            forbid=RECONCILED_OK,
            admitted={proto: [2, 2]},
            cites=[
                f"{NM}: Test_defaultNetworkingManager_computeRestrictedIngressPermissionsPerSG: "
                "single sg, single protocol",
                f"{NM}: Test_defaultNetworkingManager_computeRestrictedIngressPermissionsPerSG: "
                "multiple sg,  multiple protocols",
                f"{NM}: Test_defaultNetworkingManager_computeRestrictedIngressPermissionsPerSG: "
                "test for both sg and CIDRs",
            ],
        )
    return (
        "two bindings' group-peer TCP rules (53 and 8080) merged by the controller into one tcp 53-8080 "
        "rule: both reconciled.",
        s,
    )


def parity_aggregation_cidrs() -> tuple[str, Scenario]:
    s = fixed_udp(base())
    # CIDR permissions are never merged: each stays its own rule.
    s.tgb("coredns-udp")["spec"]["networking"] = ingress(
        (["10.0.0.0/17"], [("UDP", 53)]), (["10.0.128.0/17"], [("UDP", 53)]), ([VPC_CIDR], [("TCP", 53)])
    )
    s.sg(NODE_SG)["IpPermissions"] = [
        perm("udp", 53, cidrs=["10.0.0.0/17"]),
        perm("udp", 53, cidrs=["10.0.128.0/17"]),
        perm("tcp", 53, cidrs=[VPC_CIDR]),
    ]
    s.expect(
        "coredns-udp",
        {"UDP": "reachable"},
        forbid=RECONCILED_OK,
        admitted={"UDP": [2, 2]},
        cites=[
            f"{NM}: Test_defaultNetworkingManager_computeRestrictedIngressPermissionsPerSG: test for CIDRs",
            f"{NM}: Test_defaultNetworkingManager_computeUnrestrictedIngressPermissionsPerSG: single tgb",
        ],
    )
    return "CIDR permissions kept one rule each (never merged): reconciled.", s


def parity_aggregation_all_ports() -> tuple[str, Scenario]:
    s = fixed_udp(base())
    s.add_sg(CLIENT_SG, "dns-clients", [])
    # A port-less entry from a group is written as 0-65535 and absorbs every other range of that
    # group and protocol.
    s.tgb("coredns-udp")["spec"]["networking"] = {
        "ingress": [
            {
                "from": [{"securityGroup": {"groupID": CLIENT_SG}}],
                "ports": [{"protocol": "TCP"}, {"protocol": "TCP", "port": 53}],
            },
            {
                "from": [{"ipBlock": {"cidr": VPC_CIDR}}],
                "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
            },
        ]
    }
    all_tcp = perm("tcp", None, groups=[CLIENT_SG])
    all_tcp["FromPort"], all_tcp["ToPort"] = 0, 65535
    s.sg(NODE_SG)["IpPermissions"] = [
        all_tcp,
        perm("udp", 53, cidrs=[VPC_CIDR]),
        perm("tcp", 53, cidrs=[VPC_CIDR]),
    ]
    s.expect(
        "coredns-udp",
        {"UDP": "reachable"},
        forbid=RECONCILED_OK,
        admitted={"UDP": [2, 2]},
        cites=[
            f"{NM}: Test_defaultNetworkingManager_computeRestrictedIngressPermissionsPerSG: single "
            "sg, port not assigned",
            f"{NM}: Test_defaultNetworkingManager_computeRestrictedIngressPermissionsPerSG: single "
            "sg, port range 0 - 65535",
        ],
    )
    return "a group peer on every TCP port next to TCP 53: one tcp 0-65535 rule holds both: reconciled.", s


def _webhook(name: str, mutate: Callable[[Scenario], None], cites: list[str], text: str, ok: bool = False):
    def build() -> tuple[str, Scenario]:
        s = fixed_udp(base())
        mutate(s)
        if ok:
            accepted = ["INVALID_SPEC", "TARGET_DRIFT"]
            s.expect("coredns-udp", {"UDP": "reachable"}, forbid=accepted, cites=cites)
        else:
            s.expect("coredns-udp", {}, require=["INVALID_SPEC"], cites=cites)
        return text, s

    build.__name__ = name
    return build


def _spec(**fields):
    def mutate(s: Scenario) -> None:
        s.tgb("coredns-udp")["spec"].update(fields)

    return mutate


def _quic(target_type: str, protocol: str = "QUIC", declared: bool = True):
    def mutate(s: Scenario) -> None:
        if target_type == "instance":
            _instance(s, 30053)
        s.tg(UDP_TG)["Protocol"] = protocol
        for listener in s.aws["DescribeListeners"]["Listeners"]:
            if listener["Protocol"] == "UDP":
                listener["Protocol"] = protocol
        spec = s.tgb("coredns-udp")["spec"]
        if declared:
            spec["targetGroupProtocol"] = protocol
        else:
            # Created without the mutating webhook, which sets it from the target group.
            spec.pop("targetGroupProtocol", None)

    return mutate


DUPLICATE = f"{VT}: Test_targetGroupBindingValidator_checkExistingTargetGroups"


def _duplicate(multi_cluster: bool):
    def mutate(s: Scenario) -> None:
        spec = s.tgb("coredns-udp")["spec"]
        if multi_cluster:
            spec["multiClusterTargetGroup"] = True
        s.add_tgb("coredns-udp-copy", copy.deepcopy(spec))
        if multi_cluster:
            cites = [f"{DUPLICATE}: [ok] duplicate target groups with multi cluster support"]
            s.expect("coredns-udp-copy", {"UDP": "reachable"}, forbid=["INVALID_SPEC"], cites=cites)
        else:
            cites = [f"{DUPLICATE}: [err] duplicate target groups - one target group binding"]
            s.expect("coredns-udp-copy", {}, require=["INVALID_SPEC"], cites=cites)

    return mutate


def _ipv6_unset(s: Scenario) -> None:
    v6 = _ipv6(base(), [VPC_V6, "2001:db8:100::/48"])
    s.kube, s.aws = v6.kube, v6.aws
    del s.tgb("coredns-udp")["spec"]["ipAddressType"]


def _required_fields(s: Scenario) -> None:
    spec = s.tgb("coredns-udp")["spec"]
    no_type = copy.deepcopy(spec)
    del no_type["targetType"]
    no_type["multiClusterTargetGroup"] = True
    spec["multiClusterTargetGroup"] = True
    s.add_tgb("coredns-no-target-type", no_type)
    no_arn = copy.deepcopy(spec)
    del no_arn["targetGroupARN"]
    s.add_tgb("coredns-no-target-group", no_arn)
    for key in ("coredns-no-target-type", "coredns-no-target-group"):
        s.expect(
            key,
            {},
            require=["INVALID_SPEC"],
            cites=[
                f"{VT}: Test_targetGroupBindingValidator_checkRequiredFields: targetType is not set",
                f"{VT}: Test_targetGroupBindingValidator_checkRequiredFields: "
                "either TargetGroupARN or TargetGroupName must be specified",
            ],
        )


def _by_name(s: Scenario) -> None:
    spec = s.tgb("coredns-udp")["spec"]
    del spec["targetGroupARN"]
    spec["targetGroupName"] = "k8s-dns-udp"


def _instance_node_selector(s: Scenario) -> None:
    _instance(s, 30053)
    # Every node has a zone label: the selector keeps both targets (no drift).
    s.tgb("coredns-udp")["spec"]["nodeSelector"] = {
        "matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "Exists"}]
    }


CREATE = f"{VT}: Test_targetGroupBindingValidator_ValidateCreate"
WEBHOOK_SCENARIOS = {
    "parity-webhook-tg-protocol-mismatch": _webhook(
        "tg_protocol_mismatch",
        _spec(targetGroupProtocol="TCP"),
        [f"{CREATE}: tg protocol provided doesnt match TG protocol mismatch"],
        "spec.targetGroupProtocol TCP on a UDP target group: invalid spec.",
    ),
    "parity-webhook-node-selector-ip": _webhook(
        "node_selector_ip",
        _spec(nodeSelector={"matchLabels": {"kubernetes.io/os": "linux"}}),
        [
            f"{CREATE}: [err] targetType is ip, nodeSelector is set",
            f"{VT}: Test_targetGroupBindingValidator_ValidateUpdate: [err] targetType is ip, "
            "nodeSelector is set",
        ],
        "spec.nodeSelector with targetType ip: invalid spec.",
    ),
    "parity-webhook-vpc-mismatch": _webhook(
        "vpc_mismatch",
        _spec(vpcID="vpc-0123456789abcdef0"),
        [f"{CREATE}: VpcID provided doesnt match TG VpcID mismatch"],
        "spec.vpcID that is not the target group's VPC: invalid spec.",
    ),
    "parity-webhook-vpc-malformed": _webhook(
        "vpc_malformed",
        _spec(vpcID="vpcid-0a1b2c3d"),
        [
            f"{VT}: Test_targetGroupBindingValidator_checkTargetGroupVpcID: [err] vpcID 8 chars is "
            "not valid - invalid prefix"
        ],
        "spec.vpcID that is not a VPC id: invalid spec.",
    ),
    "parity-webhook-ip-address-type": _webhook(
        "ip_address_type",
        _spec(ipAddressType="ipv6"),
        [f"{CREATE}: ipAddressType mismatch with TargetGroup"],
        "spec.ipAddressType ipv6 on an ipv4 target group: invalid spec.",
    ),
    "parity-webhook-ip-address-type-unset": _webhook(
        "ip_address_type_unset",
        _ipv6_unset,
        [f"{CREATE}: ipAddressType unspecified in tgb, ipv6 in TargetGroup"],
        "no spec.ipAddressType on an ipv6 target group: invalid spec.",
    ),
    "parity-webhook-quic-instance": _webhook(
        "quic_instance",
        _quic("instance"),
        [
            f"{CREATE}: QUIC and Instance Target Type should produce error",
            f"{CREATE}: TCP_QUIC and Instance Target Type should produce error",
        ],
        "a QUIC target group with instance targets (targetGroupProtocol QUIC): invalid spec.",
    ),
    "parity-webhook-tcp-quic-instance-undeclared": _webhook(
        "tcp_quic_instance_undeclared",
        _quic("instance", "TCP_QUIC", declared=False),
        [
            f"{CREATE}: TCP_QUIC and Instance Target Type should produce error",
            "webhooks/elbv2/targetgroupbinding_mutator.go: defaultingTargetGroupProtocol "
            "(sets spec.targetGroupProtocol from the target group on create, before the validator runs)",
        ],
        "a TCP_QUIC target group with instance targets and no targetGroupProtocol in the object: invalid "
        "spec all the same (the mutating webhook sets it on create).",
    ),
    "parity-webhook-assume-role-instance": _webhook(
        "assume_role_instance",
        lambda s: (_instance(s, 30053), _spec(iamRoleArnToAssume=f"arn:aws:iam::{ACCOUNT}:role/tgb")(s)),
        [f"{VT}: TestCheckAssumeRoleConfig: instance with assume role"],
        "spec.iamRoleArnToAssume with instance targets: invalid spec.",
    ),
    "parity-webhook-duplicate-target-group": _webhook(
        "duplicate_target_group",
        _duplicate(False),
        [f"{DUPLICATE}: [err] duplicate target groups - one target group binding"],
        "two bindings of one target group without multiClusterTargetGroup: invalid spec on both.",
    ),
    "parity-webhook-required-fields": _webhook(
        "required_fields",
        _required_fields,
        [f"{DUPLICATE}: [ok] duplicate target groups with multi cluster support"],
        "bindings without targetType or without a target group, next to a valid one (all multi-cluster): "
        "invalid spec on the two, none on the valid one.",
        ok=True,
    ),
    "parity-webhook-target-group-name": _webhook(
        "target_group_name",
        _by_name,
        [f"{CREATE}: TargetGroupName can be resolved"],
        "a binding that names its target group instead of giving the ARN: resolved, no invalid spec.",
        ok=True,
    ),
    "parity-webhook-accepted": _webhook(
        "accepted",
        _spec(vpcID=VPC, ipAddressType="ipv4", targetGroupProtocol="UDP"),
        [
            f"{CREATE}: protocol in spec matches with TG protocol",
            f"{CREATE}: VpcID in spec matches with TG vpc",
            f"{CREATE}: ipAddressType matches TargetGroup",
        ],
        "targetGroupProtocol, vpcID and ipAddressType that match the target group: no invalid spec.",
        ok=True,
    ),
    "parity-webhook-multi-cluster": _webhook(
        "multi_cluster",
        _duplicate(True),
        [f"{DUPLICATE}: [ok] duplicate target groups with multi cluster support"],
        "two bindings of one target group, both multiClusterTargetGroup: no invalid spec.",
        ok=True,
    ),
    "parity-webhook-quic-ip": _webhook(
        "quic_ip",
        _quic("ip"),
        [f"{CREATE}: QUIC and IP Target Type should produce error (expects no error)"],
        "a QUIC target group with ip targets: accepted, no invalid spec.",
        ok=True,
    ),
    "parity-webhook-instance-node-selector": _webhook(
        "instance_node_selector",
        _instance_node_selector,
        [
            f"{VT}: Test_targetGroupBindingValidator_checkNodeSelector: [ok] targetType is "
            "instance, nodeSelector is set"
        ],
        "spec.nodeSelector with instance targets: accepted, no invalid spec.",
        ok=True,
    ),
}

# --- load-balancer features of 2025-26 (issue 19) ------------------------------------------------
OTHER_CLUSTER_IPS = ("10.0.1.77", "10.0.2.88")


def _nlb_sg(s: Scenario, udp: list[str], tcp: list[str], prefix_list: str | None = None) -> Scenario:
    """The NLB gets a security group whose inbound rules admit `udp`/`tcp` CIDRs on 53; both
    bindings' targets admit that group, so only the LB's own rules decide which clients get in."""
    lb = s.aws["DescribeLoadBalancers"]["LoadBalancers"][0]
    lb["SecurityGroups"] = [NLB_SG]
    rules = [perm("udp", 53, cidrs=udp, description="dns"), perm("tcp", 53, cidrs=tcp, description="dns")]
    if prefix_list:
        rules[0]["PrefixListIds"] = [{"PrefixListId": prefix_list, "Description": "partners"}]
    s.add_sg(NLB_SG, "k8s-kubesyst-corednse", rules)
    for eni in s.enis():
        if eni["InterfaceType"] == "network_load_balancer":
            eni["Groups"] = [{"GroupId": NLB_SG, "GroupName": "k8s-kubesyst-corednse"}]
    for name in ("coredns-udp", "coredns-tcp"):
        s.tgb(name)["spec"]["networking"] = ingress(([NLB_SG], [("UDP", 53), ("TCP", 53)]))
    s.sg(NODE_SG)["IpPermissions"] = [perm("udp", 53, groups=[NLB_SG]), perm("tcp", 53, groups=[NLB_SG])]
    return s


def lb_clients_some_refused() -> tuple[str, Scenario]:
    s = _nlb_sg(base(), [VPC_CIDR], [VPC_CIDR])
    # The VPN range is a client (bundle.json) but the NLB's group admits the VPC only: those
    # clients are refused at the LB, preserved client IP (UDP) or not (TCP ip targets).
    s.meta["clientCidrs"] = [VPC_CIDR, "192.168.0.0/16"]
    for key, proto in (("coredns-udp", "UDP"), ("coredns-tcp", "TCP")):
        s.expect(
            key,
            {proto: "partial"},
            require=["TRAFFIC_BLOCKED"],
            forbid=["CLIENT_RANGES_NOT_COVERED", "HEALTH_CHECK_BLOCKED", "NETWORKING_NOT_RECONCILED"],
        )
    return (
        "NLB security group admits the VPC only, cluster client ranges add a VPN range: partial for UDP "
        "(client IP preserved) and TCP (not preserved) alike, refused at the load balancer.",
        s,
    )


def lb_clients_all_refused() -> tuple[str, Scenario]:
    s = _nlb_sg(base(), [VPC_CIDR], [VPC_CIDR])
    # The annotation names clients none of the NLB's rules admit: nothing gets in.
    for key in ("coredns-udp", "coredns-tcp"):
        s.tgb(key)["metadata"]["annotations"] = {
            "binding-health/client-cidrs": "192.168.0.0/16, 172.16.0.0/12"
        }
    for key, proto in (("coredns-udp", "UDP"), ("coredns-tcp", "TCP")):
        s.expect(
            key,
            {proto: "blocked"},
            require=["TRAFFIC_BLOCKED", "HEALTH_CHECK_MASKS_TRAFFIC"],
            forbid=["HEALTH_CHECK_BLOCKED", "CLIENT_RANGES_NOT_COVERED"],
            admitted={proto: [0, 2]},
        )
    return (
        "annotation client ranges that the NLB's inbound rules do not admit at all: blocked for UDP and "
        "TCP, the targets stay healthy (health checks skip the inbound rules).",
        s,
    )


def lb_clients_admitted() -> tuple[str, Scenario]:
    s = _nlb_sg(base(), [VPC_CIDR, "192.168.0.0/16"], [VPC_CIDR, "192.168.0.0/16"])
    s.meta["clientCidrs"] = [VPC_CIDR, "192.168.0.0/16"]
    for key, proto in (("coredns-udp", "UDP"), ("coredns-tcp", "TCP")):
        s.expect(
            key,
            {proto: "reachable"},
            forbid=["TRAFFIC_BLOCKED", "CLIENT_RANGES_NOT_COVERED"],
            admitted={proto: [2, 2]},
        )
    return "NLB security group admits every configured client range: reachable.", s


def lb_clients_prefix_list() -> tuple[str, Scenario]:
    s = _nlb_sg(base(), [VPC_CIDR], [VPC_CIDR], prefix_list="pl-0partners000000a")
    udp_only(s)
    # A prefix list (entries not collected) may or may not hold the VPN range: not decidable.
    s.meta["clientCidrs"] = [VPC_CIDR, "192.168.0.0/16"]
    s.expect("coredns-udp", {"UDP": "unknown"}, forbid=["CLIENT_RANGES_NOT_COVERED"])
    return (
        "NLB inbound UDP rule names an uncollected prefix list beside the VPC: whether the VPN clients "
        "get in is unknown.",
        s,
    )


def lb_clients_ipv6_refused() -> tuple[str, Scenario]:
    s = _ipv6(base(), [VPC_V6, "2001:db8:100::/48"])
    lb = s.aws["DescribeLoadBalancers"]["LoadBalancers"][0]
    lb["SecurityGroups"] = [NLB_SG]
    # The NLB admits the VPC's IPv6 range only; the annotation's on-premises IPv6 range is refused.
    s.add_sg(
        NLB_SG, "k8s-kubesyst-corednse", [perm("udp", 53, cidrs=[VPC_V6]), perm("tcp", 53, cidrs=[VPC_V6])]
    )
    s.sg(NLB_SG)["IpPermissionsEgress"] = [perm("-1", None, cidrs=["0.0.0.0/0", "::/0"], description="")]
    s.expect("coredns-udp", {"UDP": "partial"}, require=["TRAFFIC_BLOCKED"], forbid=["HEALTH_CHECK_BLOCKED"])
    return (
        "IPv6 targets, NLB group admits the VPC IPv6 range but not the annotated 2001:db8:100::/48: partial.",
        s,
    )


def _other_cluster_targets(s: Scenario, arn: str, ids: tuple[str, ...], port: int) -> None:
    """Another cluster's controller registered `ids` in the same target group."""
    for target_id, zone in zip(ids, ("us-east-1a", "us-east-1b"), strict=False):
        target: dict = {"Id": target_id, "Port": port}
        if not target_id.startswith("i-"):
            target["AvailabilityZone"] = zone
        s.aws["DescribeTargetHealth"][arn]["TargetHealthDescriptions"].append(
            {"Target": target, "HealthCheckPort": str(port), "TargetHealth": {"State": "healthy"}}
        )


def lb_multicluster_other_targets() -> tuple[str, Scenario]:
    s = fixed_udp(base())
    s.tgb("coredns-udp")["spec"]["multiClusterTargetGroup"] = True
    _other_cluster_targets(s, UDP_TG, OTHER_CLUSTER_IPS, 53)
    # The other cluster's pods are not in this cluster's data (nor their ENIs): they are neither
    # drift, nor unknown targets, nor refusals; this cluster's two targets are judged as usual.
    s.expect(
        "coredns-udp",
        {"UDP": "reachable"},
        require=["OTHER_CLUSTER_TARGETS"],
        forbid=["TARGET_DRIFT", "INVALID_SPEC", "TRAFFIC_BLOCKED"],
        admitted={"UDP": [2, 2]},
    )
    return (
        "multiClusterTargetGroup: two targets of another cluster in the UDP group: shown as other "
        "cluster, not drift or unknown; this cluster's targets reachable.",
        s,
    )


def lb_multicluster_missing_registration() -> tuple[str, Scenario]:
    s = fixed_udp(base())
    s.tgb("coredns-udp")["spec"]["multiClusterTargetGroup"] = True
    health = s.aws["DescribeTargetHealth"][UDP_TG]["TargetHealthDescriptions"]
    health[:] = [d for d in health if d["Target"]["Id"] != "10.0.2.25"]
    _other_cluster_targets(s, UDP_TG, OTHER_CLUSTER_IPS, 53)
    # This cluster's ready endpoint 10.0.2.25 is not registered: still drift.
    s.expect(
        "coredns-udp",
        {"UDP": "reachable"},
        require=["OTHER_CLUSTER_TARGETS", "TARGET_DRIFT"],
        forbid=["INVALID_SPEC"],
        admitted={"UDP": [1, 1]},
    )
    return (
        "multiClusterTargetGroup with another cluster's targets and one of this cluster's endpoints "
        "not registered: that missing registration is still drift.",
        s,
    )


def lb_multicluster_flag_off() -> tuple[str, Scenario]:
    s = fixed_udp(base())
    _other_cluster_targets(s, UDP_TG, OTHER_CLUSTER_IPS, 53)
    # Without the flag every registration is this binding's: the foreign ones are drift and their
    # network interfaces are not found.
    s.expect(
        "coredns-udp",
        {"UDP": "unknown"},
        require=["TARGET_DRIFT", "INVALID_SPEC"],
        forbid=["OTHER_CLUSTER_TARGETS"],
    )
    return "the same foreign targets without multiClusterTargetGroup: drift, their ENIs unknown.", s


def lb_multicluster_instance() -> tuple[str, Scenario]:
    s = _instance(base(), 30053)
    s.tgb("coredns-udp")["spec"]["multiClusterTargetGroup"] = True
    _other_cluster_targets(s, UDP_TG, ("i-0ccccccccccccccc3",), 30053)
    s.expect(
        "coredns-udp",
        {"UDP": "reachable"},
        require=["OTHER_CLUSTER_TARGETS"],
        forbid=["TARGET_DRIFT", "INVALID_SPEC"],
        admitted={"UDP": [2, 2]},
    )
    return "multiClusterTargetGroup, instance targets: another cluster's instance is not judged.", s


def lb_multicluster_ipv6() -> tuple[str, Scenario]:
    s = _ipv6(base(), [VPC_V6, "2001:db8:100::/48"])
    s.tgb("coredns-udp")["spec"]["multiClusterTargetGroup"] = True
    _other_cluster_targets(s, UDP_TG, ("2600:1f18:1234:5601:c::77",), 53)
    s.expect(
        "coredns-udp",
        {"UDP": "reachable"},
        require=["OTHER_CLUSTER_TARGETS"],
        forbid=["TARGET_DRIFT", "INVALID_SPEC"],
        admitted={"UDP": [2, 2]},
    )
    return "multiClusterTargetGroup with IPv6 targets: another cluster's IPv6 target is not judged.", s


def _quic(s: Scenario, protocol: str = "QUIC") -> Scenario:
    """The UDP listener and group become QUIC (passthrough) ones; targets carry server ids."""
    fixed_udp(s)
    for listener in s.aws["DescribeListeners"]["Listeners"]:
        if listener["Protocol"] == "UDP":
            listener["Protocol"] = protocol
    s.tg(UDP_TG)["Protocol"] = protocol
    s.tgb("coredns-udp")["spec"]["targetGroupProtocol"] = protocol
    for n, description in enumerate(s.aws["DescribeTargetHealth"][UDP_TG]["TargetHealthDescriptions"]):
        description["Target"]["QuicServerId"] = f"0x{n + 1:016x}"
    return s


def lb_quic_ok() -> tuple[str, Scenario]:
    s = _quic(base())
    # QUIC preserves the client IP (DESIGN "Expected sources"); the rules admit the VPC on UDP.
    s.expect(
        "coredns-udp",
        {"UDP": "reachable"},
        require=["QUIC_SERVER_IDS", "HEALTH_CHECK_PROTOCOL_MISMATCH"],
        forbid=["INVALID_SPEC", "TRAFFIC_BLOCKED"],
        admitted={"UDP": [2, 2]},
    )
    return "QUIC listener and group on an NLB without security groups: reachable, server ids shown.", s


def lb_quic_with_sg() -> tuple[str, Scenario]:
    s = _quic(base())
    s.aws["DescribeLoadBalancers"]["LoadBalancers"][0]["SecurityGroups"] = [NLB_SG]
    s.add_sg(
        NLB_SG,
        "k8s-kubesyst-corednse",
        [perm("udp", 53, cidrs=[VPC_CIDR]), perm("tcp", 53, cidrs=[VPC_CIDR])],
    )
    s.expect("coredns-udp", {"UDP": "reachable"}, require=["INVALID_SPEC", "QUIC_SERVER_IDS"])
    return "QUIC listener on an NLB with a security group: invalid (AWS rejects it).", s


def lb_quic_dualstack() -> tuple[str, Scenario]:
    s = _quic(base())
    s.aws["DescribeLoadBalancers"]["LoadBalancers"][0]["IpAddressType"] = "dualstack"
    s.expect("coredns-udp", {"UDP": "reachable"}, require=["INVALID_SPEC"])
    return "QUIC listener on a dual-stack NLB: invalid (AWS rejects it).", s


def lb_quic_beside_udp() -> tuple[str, Scenario]:
    s = _quic(base())
    udp = copy.deepcopy(
        next(li for li in s.aws["DescribeListeners"]["Listeners"] if li["Protocol"] == "QUIC")
    )
    udp["ListenerArn"] += "0"
    udp["Protocol"] = "UDP"
    udp["Port"] = 5353
    s.aws["DescribeListeners"]["Listeners"].append(udp)
    s.expect("coredns-udp", {"UDP": "reachable"}, require=["INVALID_SPEC"])
    return "QUIC listener beside a UDP listener on one NLB: invalid (AWS rejects it).", s


def lb_tcp_quic_blocked() -> tuple[str, Scenario]:
    s = _tcp_udp(base(), [("TCP", 53)])
    s.aws["DescribeListeners"]["Listeners"][0]["Protocol"] = "TCP_QUIC"
    s.tg(TCPUDP_TG)["Protocol"] = "TCP_QUIC"
    del s.tgb("coredns-udp")["spec"]["targetGroupProtocol"]
    for n, description in enumerate(s.aws["DescribeTargetHealth"][TCPUDP_TG]["TargetHealthDescriptions"]):
        description["Target"]["QuicServerId"] = f"0x{n + 1:016x}"
    # TCP_QUIC carries TCP and UDP; the rules admit TCP only, so QUIC (UDP) is blocked while the
    # TCP health check passes; client IP preserved for both.
    s.sg(NODE_SG)["IpPermissions"] = [perm("tcp", 53, cidrs=[VPC_CIDR])]
    s.expect(
        "coredns-udp",
        {"TCP": "reachable", "UDP": "blocked"},
        require=["TRAFFIC_BLOCKED", "HEALTH_CHECK_MASKS_TRAFFIC", "QUIC_SERVER_IDS"],
        forbid=["INVALID_SPEC"],
    )
    return "TCP_QUIC group whose rules admit TCP only: UDP (QUIC) blocked, green but broken.", s


def _privatelink(s: Scenario, enforce: str | None) -> Scenario:
    _nlb_sg(s, [VPC_CIDR], [VPC_CIDR])
    udp_only(s)
    # The endpoint consumers' range is given as a client range.
    s.meta["clientCidrs"] = [VPC_CIDR, "100.64.0.0/16"]
    lb = s.aws["DescribeLoadBalancers"]["LoadBalancers"][0]
    if enforce is not None:
        lb["EnforceSecurityGroupInboundRulesOnPrivateLinkTraffic"] = enforce
    s.aws["DescribeVpcEndpointServiceConfigurations"] = {
        "ServiceConfigurations": [
            {
                "ServiceType": [{"ServiceType": "Interface"}],
                "ServiceId": "vpce-svc-0123456789abcdef0",
                "ServiceName": "com.amazonaws.vpce.us-east-1.vpce-svc-0123456789abcdef0",
                "ServiceState": "Available",
                "AvailabilityZones": ["us-east-1a", "us-east-1b"],
                "AcceptanceRequired": True,
                "ManagesVpcEndpoints": False,
                "NetworkLoadBalancerArns": [LB_ARN],
                "SupportedIpAddressTypes": ["ipv4"],
                "BaseEndpointDnsNames": ["vpce-svc-0123456789abcdef0.us-east-1.vpce.amazonaws.com"],
                "PrivateDnsNameConfiguration": {},
                "PayerResponsibility": "ServiceOwner",
                "Tags": [],
            }
        ]
    }
    return s


def lb_privatelink_enforced() -> tuple[str, Scenario]:
    s = _privatelink(base(), "on")
    # Enforced: endpoint traffic meets the inbound rules too, which admit the VPC only.
    s.expect("coredns-udp", {"UDP": "partial"}, require=["PRIVATELINK", "TRAFFIC_BLOCKED"])
    return (
        "NLB behind an endpoint service, inbound rules enforced on PrivateLink traffic: consumers refused.",
        s,
    )


def lb_privatelink_not_enforced() -> tuple[str, Scenario]:
    s = _privatelink(base(), "off")
    # Not enforced: the refused range may be endpoint consumers, whom no inbound rule filters.
    s.expect("coredns-udp", {"UDP": "unknown"}, require=["PRIVATELINK"], forbid=["TRAFFIC_BLOCKED"])
    return "NLB behind an endpoint service, inbound rules not enforced on PrivateLink traffic: unknown.", s


def lb_privatelink_old_bundle() -> tuple[str, Scenario]:
    s = _privatelink(base(), None)
    del s.aws["DescribeVpcEndpointServiceConfigurations"]
    # An older bundle: no endpoint services collected, so the LB's rules are judged as for direct
    # clients (enforcement defaults to on).
    s.expect("coredns-udp", {"UDP": "partial"}, require=["TRAFFIC_BLOCKED"], forbid=["PRIVATELINK"])
    return (
        "the same without DescribeVpcEndpointServiceConfigurations (an older bundle): judged as "
        "direct clients.",
        s,
    )


def lb_privatelink_enforcement_unknown() -> tuple[str, Scenario]:
    s = _privatelink(base(), None)
    # An endpoint service is in front, but DescribeLoadBalancers did not return the enforcement
    # field: whether the refused range gets in through PrivateLink is unknown.
    s.expect("coredns-udp", {"UDP": "unknown"}, require=["PRIVATELINK"], forbid=["TRAFFIC_BLOCKED"])
    return "NLB behind an endpoint service, enforcement field not returned: unknown.", s


def lb_dualstack_udp_ipv4_group() -> tuple[str, Scenario]:
    s = fixed_udp(base())
    s.aws["DescribeLoadBalancers"]["LoadBalancers"][0]["IpAddressType"] = "dualstack"
    s.expect("coredns-udp", {"UDP": "reachable"}, require=["INVALID_SPEC"])
    return "UDP listener on a dual-stack NLB forwarding to an IPv4 group: invalid (needs an IPv6 group).", s


def lb_dualstack_udp_ipv4_clients() -> tuple[str, Scenario]:
    s = _ipv6(base(), [VPC_V6, "2001:db8:100::/48"])
    # IPv4 clients of the dual-stack NLB reach the IPv6 targets from the NLB's IPv6 addresses,
    # which the rules (VPC IPv6 range) cover.
    s.tgb("coredns-udp")["metadata"]["annotations"] = {
        "binding-health/client-cidrs": f"{VPC_V6}, 2001:db8:100::/48, 192.168.0.0/16"
    }
    s.expect(
        "coredns-udp",
        {"UDP": "reachable"},
        forbid=["INVALID_SPEC", "TRAFFIC_BLOCKED"],
        admitted={"UDP": [2, 2]},
    )
    return "dual-stack UDP, IPv6 targets, IPv4 clients too: they arrive from the NLB's IPv6 addresses.", s


def _pod_eni(s: Scenario, groups: list[str]) -> Scenario:
    """Security groups for pods: the first pod gets its own branch ENI with `groups`."""
    fixed_udp(s)
    pod = _pod(s, "10.0.1.15")
    pod["metadata"]["annotations"] = {
        "vpc.amazonaws.com/pod-eni": json.dumps(
            [
                {
                    "eniId": "eni-0b0b0b0b0b0b0b0b1",
                    "ifAddress": "02:aa:bb:cc:dd:ee",
                    "privateIp": "10.0.1.15",
                    "vlanId": 1,
                    "subnetCidr": "10.0.1.0/24",
                }
            ]
        )
    }
    node = s.eni(NODE_ENIS[0])
    for eni in [node, *s.instance_enis(NODE_ENIS[0])]:
        eni["PrivateIpAddresses"] = [
            a for a in eni["PrivateIpAddresses"] if a["PrivateIpAddress"] != "10.0.1.15"
        ]
    branch = copy.deepcopy(node)
    branch.update(
        NetworkInterfaceId="eni-0b0b0b0b0b0b0b0b1",
        InterfaceType="branch",
        Description="aws-k8s-branch-eni",
        PrivateIpAddress="10.0.1.15",
        PrivateIpAddresses=[{"Primary": True, "PrivateIpAddress": "10.0.1.15"}],
        Groups=[{"GroupId": g, "GroupName": g} for g in groups],
    )
    branch.pop("Attachment", None)
    s.enis().append(branch)
    return s


def lb_pod_eni_blocked() -> tuple[str, Scenario]:
    s = _pod_eni(base(), [EXTRA_SG])
    s.add_sg(EXTRA_SG, "pod-sg", [perm("tcp", 53, cidrs=[VPC_CIDR])])
    # The pod's own ENI carries only the pod security group, which admits TCP: its UDP is refused
    # although the node group admits it.
    s.expect(
        "coredns-udp",
        {"UDP": "partial"},
        require=["TRAFFIC_BLOCKED", "HEALTH_CHECK_MASKS_TRAFFIC"],
        admitted={"UDP": [1, 2]},
    )
    return "security groups for pods: one pod's branch ENI admits TCP only: UDP partial.", s


def lb_pod_eni_ok() -> tuple[str, Scenario]:
    s = _pod_eni(base(), [EXTRA_SG])
    s.add_sg(EXTRA_SG, "pod-sg", [perm("udp", 53, cidrs=[VPC_CIDR]), perm("tcp", 53, cidrs=[VPC_CIDR])])
    s.expect("coredns-udp", {"UDP": "reachable"}, forbid=["TRAFFIC_BLOCKED"], admitted={"UDP": [2, 2]})
    return "security groups for pods: the branch ENI's group admits UDP and TCP 53: reachable.", s


def lb_etp_local() -> tuple[str, Scenario]:
    s = _instance(base(), 30053)
    service = s.obj("Service", "coredns-external")
    service["spec"]["externalTrafficPolicy"] = "Local"
    service["spec"]["healthCheckNodePort"] = 32100
    group = s.tg(UDP_TG)
    group["HealthCheckProtocol"] = "HTTP"
    group["HealthCheckPort"] = "32100"
    group["HealthCheckPath"] = "/healthz"
    # The kube-proxy health check answers on healthCheckNodePort; UDP is the only traffic, so the
    # rules admit UDP on the NodePort and TCP on the health-check port only (as a controller-built
    # binding for such a Service would).
    s.sg(NODE_SG)["IpPermissions"] = [
        perm("udp", 30053, cidrs=[VPC_CIDR]),
        perm("tcp", 32100, cidrs=[VPC_CIDR]),
    ]
    s.tgb("coredns-udp")["spec"]["networking"] = ingress(([VPC_CIDR], [("UDP", 30053), ("TCP", 32100)]))
    # The node without a local CoreDNS pod fails the kube-proxy health check: it is expected to be
    # unhealthy, and both instances still admit UDP on the NodePort.
    s.health(UDP_TG, "unhealthy", "Target.FailedHealthChecks", only=INSTANCES[1])
    s.expect(
        "coredns-udp",
        {"UDP": "reachable"},
        require=["UNHEALTHY_TARGETS"],
        forbid=[
            "TRAFFIC_BLOCKED",
            "HEALTH_CHECK_BLOCKED",
            "ALL_TARGETS_UNHEALTHY",
            "MISSING_NETWORKING_RULE",
        ],
        admitted={"UDP": [2, 2]},
    )
    return (
        "externalTrafficPolicy Local, instance targets, HTTP health check on healthCheckNodePort: "
        "reachable; the node without a local pod is unhealthy.",
        s,
    )


def _cross_zone(
    s: Scenario, lb_value: str | None, tg_value: str = "use_load_balancer_configuration", udp: bool = True
) -> Scenario:
    if udp:
        fixed_udp(s)
    if lb_value is not None:
        s.aws["DescribeLoadBalancerAttributes"] = {
            LB_ARN: {
                "Attributes": [
                    {"Key": "load_balancing.cross_zone.enabled", "Value": lb_value},
                    {"Key": "zonal_shift.config.enabled", "Value": "false"},
                    {"Key": "deletion_protection.enabled", "Value": "false"},
                ]
            }
        }
    for attribute in s.aws["DescribeTargetGroupAttributes"][UDP_TG]["Attributes"]:
        if attribute["Key"] == "load_balancing.cross_zone.enabled":
            attribute["Value"] = tg_value
    return s


def lb_zonal_shift_udp_cross_zone() -> tuple[str, Scenario]:
    s = _cross_zone(base(), "true")
    s.expect(
        "coredns-udp", {"UDP": "reachable"}, require=["ZONAL_SHIFT_INELIGIBLE"], admitted={"UDP": [2, 2]}
    )
    return "UDP group on a cross-zone NLB: info, not eligible for zonal shift (ELB/ARC prerequisites).", s


def lb_zonal_shift_udp_no_cross_zone() -> tuple[str, Scenario]:
    s = _cross_zone(base(), "false")
    s.expect("coredns-udp", {"UDP": "reachable"}, forbid=["ZONAL_SHIFT_INELIGIBLE"])
    return "UDP group on an NLB with cross-zone off: zonal shift is not restricted, no finding.", s


def lb_zonal_shift_no_attributes() -> tuple[str, Scenario]:
    s = _cross_zone(base(), None)
    s.expect("coredns-udp", {"UDP": "reachable"}, forbid=["ZONAL_SHIFT_INELIGIBLE"])
    return "no DescribeLoadBalancerAttributes (an older bundle): nothing said about zonal shift.", s


def lb_zonal_shift_tcp_group_cross_zone_off() -> tuple[str, Scenario]:
    s = _cross_zone(base(), "true", tg_value="false", udp=False)
    s.drop("TargetGroupBinding", "coredns-udp")
    s.expect("coredns-tcp", {"TCP": "reachable"}, forbid=["ZONAL_SHIFT_INELIGIBLE"])
    return "TCP group on a cross-zone NLB (the UDP group turns cross-zone off): the TCP group is eligible.", s


LB_SCENARIOS: dict[str, Callable[[], tuple[str, Scenario]]] = {
    "lb-clients-some-refused": lb_clients_some_refused,
    "lb-clients-all-refused": lb_clients_all_refused,
    "lb-clients-admitted": lb_clients_admitted,
    "lb-clients-prefix-list": lb_clients_prefix_list,
    "lb-clients-ipv6-refused": lb_clients_ipv6_refused,
    "lb-multicluster-other-targets": lb_multicluster_other_targets,
    "lb-multicluster-missing-registration": lb_multicluster_missing_registration,
    "lb-multicluster-flag-off": lb_multicluster_flag_off,
    "lb-multicluster-instance": lb_multicluster_instance,
    "lb-multicluster-ipv6": lb_multicluster_ipv6,
    "lb-quic-ok": lb_quic_ok,
    "lb-quic-with-sg": lb_quic_with_sg,
    "lb-quic-dualstack": lb_quic_dualstack,
    "lb-quic-beside-udp": lb_quic_beside_udp,
    "lb-tcp-quic-blocked": lb_tcp_quic_blocked,
    "lb-privatelink-enforced": lb_privatelink_enforced,
    "lb-privatelink-not-enforced": lb_privatelink_not_enforced,
    "lb-privatelink-old-bundle": lb_privatelink_old_bundle,
    "lb-privatelink-enforcement-unknown": lb_privatelink_enforcement_unknown,
    "lb-dualstack-udp-ipv4-group": lb_dualstack_udp_ipv4_group,
    "lb-dualstack-udp-ipv4-clients": lb_dualstack_udp_ipv4_clients,
    "lb-pod-eni-blocked": lb_pod_eni_blocked,
    "lb-pod-eni-ok": lb_pod_eni_ok,
    "lb-etp-local": lb_etp_local,
    "lb-zonal-shift-udp-cross-zone": lb_zonal_shift_udp_cross_zone,
    "lb-zonal-shift-udp-no-cross-zone": lb_zonal_shift_udp_no_cross_zone,
    "lb-zonal-shift-no-attributes": lb_zonal_shift_no_attributes,
    "lb-zonal-shift-tcp-group-cross-zone-off": lb_zonal_shift_tcp_group_cross_zone_off,
}

PARITY: dict[str, Callable[[], tuple[str, Scenario]]] = {
    "parity-permission-peers-ports": parity_permission_peers_ports,
    "parity-permission-missing-group-peer": parity_permission_missing_group_peer,
    "parity-permission-defaults": parity_permission_defaults,
    "parity-named-port-same-number": parity_named_port_same_number,
    "parity-named-port-two-numbers": parity_named_port_two_numbers,
    "parity-named-port-per-group": parity_named_port_per_group,
    "parity-named-port-per-group-wrong": parity_named_port_per_group_wrong,
    "parity-named-port-undeclared": parity_named_port_undeclared,
    "parity-named-port-undeclared-ipv6": parity_named_port_undeclared_ipv6,
    "parity-named-port-instance": parity_named_port_instance,
    "parity-named-port-hostile": parity_named_port_hostile,
    "parity-sg-choice-single-group": parity_sg_choice_single_group,
    "parity-sg-choice-cluster-tag": parity_sg_choice_cluster_tag,
    "parity-sg-choice-flag-match": parity_sg_choice_flag_match,
    "parity-sg-choice-flag-match-all": parity_sg_choice_flag_match_all,
    "parity-sg-choice-flag-no-match": parity_sg_choice_flag_no_match,
    "parity-sg-choice-flag-empty-value": parity_sg_choice_flag_empty_value,
    "parity-sg-choice-flag-empty-value-missing": parity_sg_choice_flag_empty_value_missing,
    "parity-aggregation-restricted": parity_aggregation_restricted,
    "parity-aggregation-cidrs": parity_aggregation_cidrs,
    "parity-aggregation-all-ports": parity_aggregation_all_ports,
    **WEBHOOK_SCENARIOS,
}


# --- issue 14: prefix lists, network ACLs, listeners, LB outbound rules, malformed rules -----------

SUBNETS = ("subnet-0aaa1111bbbb2222c", "subnet-0bbb3333cccc4444d")
CORP_PL = "pl-0c0rp000000000001"
ACL = "acl-0b1n0000000000001"


def _prefix_list_rule(s: Scenario, port: int, entries: list[str] | None) -> Scenario:
    """UDP admitted only through a managed prefix list (TCP for the health check from the VPC)."""
    udp_rule = perm("udp", port, description="corp")
    udp_rule["PrefixListIds"] = [{"PrefixListId": CORP_PL, "Description": "corp"}]
    s.sg(NODE_SG)["IpPermissions"] = [udp_rule, perm("tcp", port, cidrs=[VPC_CIDR])]
    if entries is not None:
        s.aws["GetManagedPrefixListEntries"] = {CORP_PL: {"Entries": [{"Cidr": c} for c in entries]}}
    return s


def prefix_list_resolved() -> tuple[str, Scenario]:
    s = _prefix_list_rule(fixed_udp(base()), 53, ["10.0.0.0/17", "10.0.128.0/17", "192.168.0.0/16"])
    # The list's entries cover the VPC (the internal NLB's clients): the rule admits them all
    # (DESIGN "A prefix-list source counts as its entries").
    s.expect(
        "coredns-udp",
        {"UDP": "reachable"},
        forbid=["TRAFFIC_BLOCKED", "HEALTH_CHECK_MASKS_TRAFFIC", "CLIENT_RANGES_NOT_COVERED"],
        admitted={"UDP": [2, 2]},
    )
    return "UDP admitted only through a managed prefix list whose entries cover the VPC: reachable.", s


def prefix_list_unknown() -> tuple[str, Scenario]:
    s = _prefix_list_rule(fixed_udp(base()), 53, None)
    # Entries not collected: the uncovered clients could lie in the list, so no refusal is claimed.
    s.expect(
        "coredns-udp",
        {"UDP": "unknown"},
        forbid=["TRAFFIC_BLOCKED", "HEALTH_CHECK_MASKS_TRAFFIC", "CLIENT_RANGES_NOT_COVERED"],
        admitted={"UDP": [0, 2]},
    )
    return (
        "UDP admitted only through a prefix list whose entries were not collected: unknown, never blocked.",
        s,
    )


def prefix_list_partial() -> tuple[str, Scenario]:
    s = _prefix_list_rule(fixed_udp(base()), 53, ["10.0.1.0/24"])
    # Known entries that hold only one subnet of the VPC: the clients elsewhere are refused.
    s.expect(
        "coredns-udp",
        {"UDP": "partial"},
        require=["TRAFFIC_BLOCKED", "CLIENT_RANGES_NOT_COVERED"],
        admitted={"UDP": [0, 2]},
    )
    return (
        "UDP admitted through a prefix list holding one subnet only: partial, client ranges not covered.",
        s,
    )


def prefix_list_instance() -> tuple[str, Scenario]:
    s = _prefix_list_rule(_instance(base(), 30053), 30053, [VPC_CIDR])
    s.expect("coredns-udp", {"UDP": "reachable"}, forbid=["TRAFFIC_BLOCKED"], admitted={"UDP": [2, 2]})
    return "instance targets, UDP NodePort admitted through a collected prefix list: reachable.", s


def _acl(s: Scenario, entries: list[dict]) -> Scenario:
    """A network ACL on both target subnets: `entries`, then allow-all both ways, then the final deny."""
    base_entries = [
        {
            "RuleNumber": 100,
            "Protocol": "-1",
            "RuleAction": "allow",
            "Egress": False,
            "CidrBlock": "0.0.0.0/0",
        },
        {
            "RuleNumber": 100,
            "Protocol": "-1",
            "RuleAction": "allow",
            "Egress": True,
            "CidrBlock": "0.0.0.0/0",
        },
        {
            "RuleNumber": 101,
            "Protocol": "-1",
            "RuleAction": "allow",
            "Egress": False,
            "Ipv6CidrBlock": "::/0",
        },
        {"RuleNumber": 101, "Protocol": "-1", "RuleAction": "allow", "Egress": True, "Ipv6CidrBlock": "::/0"},
        {
            "RuleNumber": 32767,
            "Protocol": "-1",
            "RuleAction": "deny",
            "Egress": False,
            "CidrBlock": "0.0.0.0/0",
        },
        {
            "RuleNumber": 32767,
            "Protocol": "-1",
            "RuleAction": "deny",
            "Egress": True,
            "CidrBlock": "0.0.0.0/0",
        },
    ]
    s.aws["DescribeNetworkAcls"] = {
        "NetworkAcls": [
            {
                "NetworkAclId": ACL,
                "VpcId": VPC,
                "IsDefault": False,
                "Associations": [{"SubnetId": subnet, "NetworkAclId": ACL} for subnet in SUBNETS],
                "Entries": entries + base_entries,
            }
        ]
    }
    return s


def _deny(number: int, proto: str, lo: int, hi: int, *, egress: bool, cidr: str = "0.0.0.0/0") -> dict:
    entry = {
        "RuleNumber": number,
        "Protocol": proto,
        "RuleAction": "deny",
        "Egress": egress,
        "PortRange": {"From": lo, "To": hi},
    }
    entry["Ipv6CidrBlock" if ":" in cidr else "CidrBlock"] = cidr
    return entry


def nacl_denies_udp_inbound() -> tuple[str, Scenario]:
    s = _acl(fixed_udp(base()), [_deny(90, "17", 53, 53, egress=False)])
    # The security groups admit the VPC; the ACL refuses UDP 53 from everything outside each target's
    # own subnet (an ACL filters only at the subnet boundary): partial, blamed on the ACL only.
    s.expect(
        "coredns-udp",
        {"UDP": "partial"},
        require=["TRAFFIC_BLOCKED", "HEALTH_CHECK_MASKS_TRAFFIC"],
        forbid=["CLIENT_RANGES_NOT_COVERED", "HEALTH_CHECK_BLOCKED", "MISSING_NETWORKING_RULE"],
        admitted={"UDP": [0, 2]},
    )
    return (
        "security groups admit UDP 53 from the VPC, the subnets' network ACL denies it (rule 90): partial, "
        "the ACL entry is named, no client-range finding; the fix adds an ACL entry numbered below 90.",
        s,
    )


def nacl_denies_replies_instance() -> tuple[str, Scenario]:
    s = _acl(_instance(base(), 30053), [_deny(90, "17", 1024, 65535, egress=True)])
    # Stateless: the UDP replies to the clients' ephemeral ports are refused going out.
    s.expect(
        "coredns-udp",
        {"UDP": "partial"},
        require=["TRAFFIC_BLOCKED"],
        forbid=["CLIENT_RANGES_NOT_COVERED", "HEALTH_CHECK_BLOCKED"],
        admitted={"UDP": [0, 2]},
    )
    return (
        "instance targets whose subnets' ACL denies outbound UDP 1024-65535 (the replies): partial, the "
        "outbound ACL entry is named and fixed.",
        s,
    )


def nacl_denies_health_checks() -> tuple[str, Scenario]:
    s = _acl(fixed_udp(base()), [_deny(50, "6", 53, 53, egress=False, cidr="10.0.0.0/16")])
    # The LB node in the other subnet cannot health-check the target over TCP 53; the one in the
    # same subnet can. UDP itself is untouched.
    s.expect(
        "coredns-udp",
        {"UDP": "reachable"},
        require=["HEALTH_CHECK_BLOCKED"],
        forbid=["TRAFFIC_BLOCKED", "CLIENT_RANGES_NOT_COVERED"],
        admitted={"UDP": [2, 2]},
    )
    return "network ACL denies TCP 53 from the VPC: health checks from the other zone's LB node refused.", s


def nacl_ipv6() -> tuple[str, Scenario]:
    s = _acl(_ipv6(base(), [VPC_CIDR, VPC_V6]), [_deny(80, "17", 53, 53, egress=False, cidr="::/0")])
    s.expect(
        "coredns-udp",
        {"UDP": "partial"},
        # The bundle's clients include 2001:db8:100::/48, which no rule admits (the security groups'
        # part); the rest of the VPC's IPv6 clients is refused by the ACL.
        require=["TRAFFIC_BLOCKED", "CLIENT_RANGES_NOT_COVERED"],
    )
    return (
        "IPv6 targets, the subnets' ACL denies UDP 53 from ::/0 (rule 80) and the rules miss one client "
        "range: partial, both layers named, the fix adds the rule and the ACL entries.",
        s,
    )


def _lb_with_group(s: Scenario, egress: list[dict]) -> Scenario:
    lb = s.aws["DescribeLoadBalancers"]["LoadBalancers"][0]
    lb["SecurityGroups"] = [NLB_SG]
    s.add_sg(NLB_SG, "k8s-nlb", [perm("udp", 53, cidrs=[VPC_CIDR], description="dns")])
    s.sg(NLB_SG)["IpPermissionsEgress"] = egress
    return s


def nlb_sg_egress_refuses() -> tuple[str, Scenario]:
    s = _lb_with_group(fixed_udp(base()), [perm("tcp", 443, cidrs=["0.0.0.0/0"], description="https")])
    # The NLB's outbound rules let nothing out on 53: traffic and health checks (docs/facts.md §3.5).
    s.expect(
        "coredns-udp",
        {"UDP": "blocked"},
        require=["TRAFFIC_BLOCKED", "HEALTH_CHECK_BLOCKED"],
        admitted={"UDP": [0, 2]},
    )
    return (
        "NLB with a security group whose outbound rules allow only TCP 443: UDP and health checks cannot "
        "leave it; the fix adds egress rules on the NLB's group.",
        s,
    )


def nlb_sg_egress_instance() -> tuple[str, Scenario]:
    s = _lb_with_group(_instance(base(), 30053), [perm("udp", 30053, cidrs=[VPC_CIDR], description="data")])
    # UDP may leave, the TCP health checks to the NodePort may not.
    s.expect(
        "coredns-udp",
        {"UDP": "reachable"},
        require=["HEALTH_CHECK_BLOCKED"],
        forbid=["TRAFFIC_BLOCKED"],
        admitted={"UDP": [2, 2]},
    )
    return "instance targets, the NLB's group lets UDP out but no TCP health check: health checks blocked.", s


def tcp_udp_udp_listener_only() -> tuple[str, Scenario]:
    s = _tcp_udp(base(), [("UDP", 53), ("TCP", 53)])
    s.aws["DescribeListeners"]["Listeners"][0]["Protocol"] = "UDP"
    # A listener forwards to the group, carrying UDP only: TCP is not offered, with no finding.
    s.expect(
        "coredns-udp",
        {"TCP": "not_offered", "UDP": "reachable"},
        forbid=["NO_LISTENER", "TRAFFIC_BLOCKED"],
        admitted={"UDP": [2, 2]},
    )
    return "TCP_UDP group behind a UDP listener: TCP not offered without NO_LISTENER, UDP reachable.", s


def tcp_udp_tcp_listener_instance() -> tuple[str, Scenario]:
    s = _tcp_udp(_instance(base(), 30053), [("UDP", 30053), ("TCP", 30053)])
    s.aws["DescribeListeners"]["Listeners"][0]["Protocol"] = "TCP"
    s.expect(
        "coredns-udp",
        {"TCP": "reachable", "UDP": "not_offered"},
        forbid=["NO_LISTENER"],
        admitted={"TCP": [2, 2]},
    )
    return "instance targets, TCP_UDP group behind a TCP listener: UDP not offered without NO_LISTENER.", s


def malformed_network_rules() -> tuple[str, Scenario]:
    s = fixed_udp(base())
    s.sg(NODE_SG)["IpPermissions"].append(
        {"IpProtocol": "udp", "FromPort": "fifty", "ToPort": 53, "IpRanges": []}
    )
    bad_pl = perm("udp", 5353, description="corp")
    bad_pl["PrefixListIds"] = [{"PrefixListId": CORP_PL}]
    s.sg(NODE_SG)["IpPermissions"].append(bad_pl)
    s.aws["GetManagedPrefixListEntries"] = {CORP_PL: {"Entries": [{"Cidr": "10.0.0.0/33"}]}}
    _acl(s, [{"RuleNumber": "ninety", "Protocol": "17", "RuleAction": "deny", "Egress": False}])
    # Each malformed object is named (id and field) on the binding that reads it; the rest is judged.
    s.expect("coredns-udp", {"UDP": "reachable"}, require=["INVALID_SPEC"], admitted={"UDP": [2, 2]})
    return (
        'a security-group rule with FromPort "fifty", a prefix list entry 10.0.0.0/33 and an ACL entry with '
        'RuleNumber "ninety": INVALID_SPEC naming each, the binding still judged (reachable).',
        s,
    )


SCENARIOS: dict[str, Callable[[], tuple[str, Scenario]]] = {
    "udp-rule-all-protocols": udp_rule_all_protocols,
    "udp-partial-two-rules": partial_two_rules,
    "udp-two-rules-cover": two_rules_cover,
    "udp-partial-one-target": partial_one_target,
    "udp-not-reconciled": not_reconciled,
    "udp-empty-ports": empty_ports,
    "instance-nodeport": instance_nodeport,
    "instance-service-port": instance_service_port,
    "health-check-port-mismatch": health_check_port_mismatch,
    "health-check-blocked": health_check_blocked,
    "unhealthy-some-targets": unhealthy_some,
    "no-listener": no_listener,
    "target-group-not-found": tg_not_found,
    "eni-not-found": eni_not_found,
    "target-drift": target_drift,
    "sg-tag-ambiguous": sg_tag_ambiguous,
    "overly-broad-source": overly_broad,
    "service-protocol-mismatch": service_protocol_mismatch,
    "tcp-udp": tcp_udp,
    "tcp-udp-udp-blocked": tcp_udp_udp_blocked,
    "internet-facing-vpc-only": internet_facing_vpc_only,
    "internet-facing-nlb-sg": internet_facing_nlb_sg,
    "ipv6-reachable": ipv6_reachable,
    "ipv6-blocked": ipv6_blocked,
    "client-cidrs-bundle": client_cidrs_bundle,
    "malformed-objects": malformed_objects,
    "prefix-list-resolved": prefix_list_resolved,
    "prefix-list-unknown": prefix_list_unknown,
    "prefix-list-partial": prefix_list_partial,
    "prefix-list-instance": prefix_list_instance,
    "nacl-denies-udp-inbound": nacl_denies_udp_inbound,
    "nacl-denies-replies-instance": nacl_denies_replies_instance,
    "nacl-denies-health-checks": nacl_denies_health_checks,
    "nacl-ipv6": nacl_ipv6,
    "nlb-sg-egress-refuses": nlb_sg_egress_refuses,
    "nlb-sg-egress-instance": nlb_sg_egress_instance,
    "tcp-udp-udp-listener-only": tcp_udp_udp_listener_only,
    "tcp-udp-tcp-listener-instance": tcp_udp_tcp_listener_instance,
    "malformed-network-rules": malformed_network_rules,
    **PARITY,
    **LB_SCENARIOS,
}


class _NoAliasDumper(yaml.SafeDumper):
    """kubectl never prints anchors; neither do we."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def write(name: str, scenario: Scenario) -> None:
    folder = HERE / name
    folder.mkdir(exist_ok=True)
    (folder / "kubernetes.yaml").write_text(
        yaml.dump(scenario.kube, Dumper=_NoAliasDumper, sort_keys=False, allow_unicode=True)
    )
    for file, data in (
        ("aws.json", scenario.aws),
        ("bundle.json", scenario.meta),
        ("expected.json", scenario.expected),
    ):
        (folder / file).write_text(json.dumps(data, indent=1) + "\n")


def main() -> int:
    lines = []
    for name, build in SCENARIOS.items():
        assert name not in ORIGINALS
        description, scenario = build()
        write(name, scenario)
        lines.append(f"- `{name}` — {description}")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
