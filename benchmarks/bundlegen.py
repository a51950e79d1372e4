"""A synthetic cluster of N bindings as a bundle (`kubectl get -o json` + the AWS responses).

Shared by `bench_offline.py` and the linear-work test of fix generation (tests/test_scale.py).
The shape is what the issue measured on: 2 `ip` targets (pods) per binding, a third each UDP, TCP
and TCP_UDP target groups, 50 listeners per NLB (the quota), pods as secondary addresses of their
node's primary ENI (VPC CNI, 50 per node), half the NLBs with a security group of their own, and
half the bindings broken: their pods run on nodes whose security group admits nothing from the
load balancers, so each gets a fix. The other half declare `spec.networking` and are reachable.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ACCOUNT = "123456789012"
REGION = "us-east-1"
VPC = "vpc-0a1b2c3d4e5f60718"
VPC_CIDR = "10.0.0.0/16"
CLUSTER = "bench"
PROTOCOLS = ("UDP", "TCP", "TCP_UDP")
TARGETS = 2
PODS_PER_NODE = 50
LISTENERS_PER_NLB = 50
GOOD_SG = "sg-0000000000000good"
BAD_SG = "sg-00000000000000bad"
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")


def _ip(k: int) -> str:
    """Address k of the three /18 node subnets (10.0.0.0 - 10.0.191.255), skipping the first 10."""
    subnet, offset = divmod(k, 16_000)
    value = subnet * 64 * 256 + 10 + offset
    return f"10.0.{value // 256}.{value % 256}"


def _perm(proto: str, lo: int | None, hi: int | None, cidr: str, description: str = "") -> dict:
    perm: dict[str, Any] = {
        "IpProtocol": proto,
        "IpRanges": [{"CidrIp": cidr, "Description": description}],
        "Ipv6Ranges": [],
        "PrefixListIds": [],
        "UserIdGroupPairs": [],
    }
    if lo is not None:
        perm["FromPort"], perm["ToPort"] = lo, hi
    return perm


def _sg(group_id: str, name: str, ingress: list[dict], cluster_tag: bool) -> dict:
    tags = [{"Key": "Name", "Value": name}]
    if cluster_tag:
        tags.append({"Key": f"kubernetes.io/cluster/{CLUSTER}", "Value": "owned"})
    return {
        "GroupId": group_id,
        "GroupName": name,
        "Description": name,
        "VpcId": VPC,
        "OwnerId": ACCOUNT,
        "IpPermissions": ingress,
        "IpPermissionsEgress": [_perm("-1", None, None, "0.0.0.0/0")],
        "Tags": tags,
    }


def make_bundle(n: int) -> tuple[list[dict], dict[str, Any], dict[str, Any]]:
    """(Kubernetes objects, aws.json, bundle.json) of a cluster with `n` bindings."""
    items: list[dict] = []
    enis: list[dict] = []
    groups = [
        # Good nodes admit TCP and UDP from the VPC (clients, NLB addresses, health checks), in
        # rules that also hold every binding's declared networking; bad nodes only the kubelet port.
        _sg(
            GOOD_SG,
            "eks-nodes-good",
            [_perm(p, 0, 65535, VPC_CIDR, "elbv2.k8s.aws/targetGroupBinding=shared") for p in ("tcp", "udp")],
            True,
        ),
        _sg(BAD_SG, "eks-nodes-bad", [_perm("tcp", 10250, 10250, VPC_CIDR, "kubelet")], True),
    ]
    pods = n * TARGETS
    nodes = 2 * -(-pods // (2 * PODS_PER_NODE))  # as many good nodes as bad ones
    # Node i is good when even; binding b's pods sit on nodes of parity b % 2.
    slots: dict[int, list[int]] = {0: [], 1: []}
    for node in range(nodes):
        zone = node % 3
        node_ip = f"10.0.{192 + zone * 16 + node // 250 % 16}.{node % 250 + 1}"
        ips = [_ip(node * PODS_PER_NODE + i) for i in range(PODS_PER_NODE)]
        slots[node % 2].extend(node * PODS_PER_NODE + i for i in range(PODS_PER_NODE))
        name = f"ip-{node_ip.replace('.', '-')}.ec2.internal"
        instance = f"i-{node:017x}"
        items.append(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": name, "uid": f"uid-node-{node}", "resourceVersion": "1001"},
                "spec": {"providerID": f"aws:///{ZONES[zone]}/{instance}"},
                "status": {
                    "addresses": [{"type": "InternalIP", "address": node_ip}],
                    "conditions": [{"type": "Ready", "status": "True"}],
                },
            }
        )
        enis.append(
            {
                "NetworkInterfaceId": f"eni-{node:017x}",
                "InterfaceType": "interface",
                "SubnetId": f"subnet-{zone:017x}",
                "VpcId": VPC,
                "AvailabilityZone": ZONES[zone],
                "Status": "in-use",
                "PrivateIpAddress": node_ip,
                "PrivateIpAddresses": [{"Primary": True, "PrivateIpAddress": node_ip}]
                + [{"Primary": False, "PrivateIpAddress": ip} for ip in ips],
                "Groups": [{"GroupId": GOOD_SG if node % 2 == 0 else BAD_SG, "GroupName": "nodes"}],
                "Attachment": {"InstanceId": instance, "DeviceIndex": 0, "Status": "attached"},
            }
        )
    node_names = [i["metadata"]["name"] for i in items]
    lbs = max(1, -(-n // LISTENERS_PER_NLB))
    load_balancers, listeners, target_groups = [], [], []
    health: dict[str, Any] = {}
    attributes: dict[str, Any] = {}
    for i in range(lbs):
        arn = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:loadbalancer/net/lb{i}/{i:016x}"
        addresses = [f"10.0.{240 + z}.{i % 250 + 1}" for z in range(3)]
        lb_groups = [f"sg-{i:013x}nlb"] if i % 2 == 0 else []
        load_balancers.append(
            {
                "LoadBalancerArn": arn,
                "LoadBalancerName": f"lb{i}",
                "Type": "network",
                "Scheme": "internal",
                "VpcId": VPC,
                "State": {"Code": "active"},
                "IpAddressType": "ipv4",
                "AvailabilityZones": [
                    {
                        "ZoneName": ZONES[z],
                        "SubnetId": f"subnet-{z:017x}",
                        "LoadBalancerAddresses": [{"PrivateIPv4Address": addresses[z]}],
                    }
                    for z in range(3)
                ],
                "SecurityGroups": lb_groups,
            }
        )
        for group in lb_groups:
            ports = range(10000 + i * LISTENERS_PER_NLB, 10000 + (i + 1) * LISTENERS_PER_NLB - 1)
            groups.append(
                _sg(
                    group,
                    f"k8s-lb{i}",
                    [_perm(p, ports.start, ports.stop, VPC_CIDR, "clients") for p in ("tcp", "udp")],
                    False,
                )
            )
        for z in range(3):
            enis.append(
                {
                    "NetworkInterfaceId": f"eni-lb{i:06d}{z:08d}",
                    "InterfaceType": "network_load_balancer",
                    "Description": f"ELB net/lb{i}/{i:016x}",
                    "SubnetId": f"subnet-{z:017x}",
                    "VpcId": VPC,
                    "AvailabilityZone": ZONES[z],
                    "Status": "in-use",
                    "PrivateIpAddress": addresses[z],
                    "PrivateIpAddresses": [{"Primary": True, "PrivateIpAddress": addresses[z]}],
                    "Groups": [{"GroupId": g, "GroupName": g} for g in lb_groups],
                }
            )
    used = {0: 0, 1: 0}
    for b in range(n):
        proto = PROTOCOLS[b % 3]
        carried = ("TCP", "UDP") if proto == "TCP_UDP" else (proto,)
        port = 8000 + b % 1000
        lb = b // LISTENERS_PER_NLB
        lb_arn = load_balancers[lb]["LoadBalancerArn"]
        tg_arn = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/tg{b}/{b:016x}"
        ns, svc, name = f"ns{b % 20}", f"svc{b}", f"tgb{b}"
        target_groups.append(
            {
                "TargetGroupArn": tg_arn,
                "TargetGroupName": f"tg{b}",
                "Protocol": proto,
                "Port": port,
                "VpcId": VPC,
                "HealthCheckProtocol": "TCP",
                "HealthCheckPort": "traffic-port",
                "HealthCheckEnabled": True,
                "TargetType": "ip",
                "IpAddressType": "ipv4",
                "LoadBalancerArns": [lb_arn],
            }
        )
        listeners.append(
            {
                "ListenerArn": f"{lb_arn.replace(':loadbalancer/', ':listener/')}/{b:016x}",
                "LoadBalancerArn": lb_arn,
                "Port": 10000 + b,
                "Protocol": proto,
                "DefaultActions": [{"Type": "forward", "TargetGroupArn": tg_arn}],
            }
        )
        attributes[tg_arn] = {
            "Attributes": [
                {"Key": "preserve_client_ip.enabled", "Value": "true" if proto != "TCP" else "false"}
            ]
        }
        port_names = {p: f"p-{p.lower()}" for p in carried}
        pod_ports = [{"name": port_names[p], "containerPort": port, "protocol": p} for p in carried]
        endpoints, descriptions = [], []
        for t in range(TARGETS):
            k = slots[b % 2][used[b % 2]]
            used[b % 2] += 1
            ip, node = _ip(k), k // PODS_PER_NODE
            pod = f"{svc}-{t}"
            items.append(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {
                        "name": pod,
                        "namespace": ns,
                        "uid": f"uid-pod-{b}-{t}",
                        "labels": {"app": svc},
                    },
                    "spec": {
                        "nodeName": node_names[node],
                        "containers": [{"name": "main", "image": "app:1", "ports": pod_ports}],
                    },
                    "status": {
                        "phase": "Running",
                        "podIP": ip,
                        "podIPs": [{"ip": ip}],
                        "conditions": [{"type": "Ready", "status": "True"}],
                    },
                }
            )
            endpoints.append(
                {
                    "addresses": [ip],
                    "conditions": {"ready": True, "serving": True, "terminating": False},
                    "nodeName": node_names[node],
                    "targetRef": {"kind": "Pod", "namespace": ns, "name": pod},
                }
            )
            descriptions.append(
                {
                    "Target": {"Id": ip, "Port": port, "AvailabilityZone": ZONES[node % 3]},
                    "HealthCheckPort": str(port),
                    "TargetHealth": {"State": "healthy"}
                    if b % 2 == 0
                    else {"State": "unhealthy", "Reason": "Target.FailedHealthChecks"},
                }
            )
        health[tg_arn] = {"TargetHealthDescriptions": descriptions}
        ports = [{"name": port_names[p], "protocol": p, "port": port, "targetPort": port} for p in carried]
        items.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": svc, "namespace": ns, "uid": f"uid-svc-{b}"},
                "spec": {"type": "ClusterIP", "selector": {"app": svc}, "ports": ports},
            }
        )
        items.append(
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": f"{svc}-abcde",
                    "namespace": ns,
                    "uid": f"uid-eps-{b}",
                    "labels": {"kubernetes.io/service-name": svc},
                },
                "addressType": "IPv4",
                "ports": [{"name": port_names[p], "protocol": p, "port": port} for p in carried],
                "endpoints": endpoints,
            }
        )
        spec: dict[str, Any] = {
            "serviceRef": {"name": svc, "port": port_names[carried[-1]]},
            "targetGroupARN": tg_arn,
            "targetType": "ip",
            "targetGroupProtocol": proto,
        }
        if b % 2 == 0:
            wanted = sorted(set(carried) | {"TCP"})
            spec["networking"] = {
                "ingress": [
                    {
                        "from": [{"ipBlock": {"cidr": VPC_CIDR}}],
                        "ports": [{"protocol": p, "port": port} for p in wanted],
                    }
                ]
            }
        items.append(
            {
                "apiVersion": "elbv2.k8s.aws/v1beta1",
                "kind": "TargetGroupBinding",
                "metadata": {"name": name, "namespace": ns, "uid": f"uid-tgb-{b}", "generation": 1},
                "spec": spec,
                "status": {"observedGeneration": 1},
            }
        )
    aws = {
        "DescribeLoadBalancers": {"LoadBalancers": load_balancers},
        "DescribeListeners": {"Listeners": listeners},
        "DescribeTargetGroups": {"TargetGroups": target_groups},
        "DescribeTargetHealth": health,
        "DescribeTargetGroupAttributes": attributes,
        "DescribeNetworkInterfaces": {"NetworkInterfaces": enis},
        "DescribeSecurityGroups": {"SecurityGroups": groups},
        "DescribeSubnets": {
            "Subnets": [
                {
                    "SubnetId": f"subnet-{z:017x}",
                    "VpcId": VPC,
                    "CidrBlock": f"10.0.{z * 64}.0/18",
                    "AvailabilityZone": ZONES[z],
                    "State": "available",
                }
                for z in range(3)
            ]
        },
        "DescribeVpcs": {"Vpcs": [{"VpcId": VPC, "CidrBlock": VPC_CIDR, "State": "available"}]},
    }
    return items, aws, {"cluster": CLUSTER, "collectedAt": "2026-12-06T00:00:00Z"}


def write_bundle_json(path: Path, n: int) -> Path:
    """The bundle as a folder; kubernetes.yaml holds what `kubectl get ... -o json` prints."""
    items, aws, meta = make_bundle(n)
    path.mkdir(parents=True, exist_ok=True)
    (path / "kubernetes.yaml").write_text(
        json.dumps(
            {"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}},
            indent=4,
        )
    )
    (path / "aws.json").write_text(json.dumps(aws, indent=1))
    (path / "bundle.json").write_text(json.dumps(meta))
    return path
