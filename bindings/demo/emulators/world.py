"""The demo world: the "DNS over UDP is blocked" case seeded into both emulators, the collection
cases `scripts/collect-bundle.sh` must survive, and a kubeconfig for kubectl."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import boto3

from bindings.demo.emulators.kube import KubeEmulator, apply_objects

DEMO_CLUSTER = "demo"
DEMO_ACCOUNT_ID = "123456789012"  # moto's default account
# Dummy credentials: moto accepts anything, but botocore refuses to sign without some.
DEMO_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@dataclass
class DemoWorld:
    """Ids and ARNs of what `seed_demo_world` created."""

    region: str
    account_id: str
    vpc_id: str
    subnet_ids: list[str]
    node_security_group_id: str
    instance_ids: list[str]
    node_names: list[str]
    pod_ips: list[str]
    load_balancer_arn: str
    target_group_arns: dict[str, str]  # "udp" / "tcp" -> ARN
    listener_arns: list[str]
    cluster: str = DEMO_CLUSTER
    kube_objects: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def to_json(self) -> dict[str, Any]:
        """JSON-safe dict (without the seeded Kubernetes objects)."""
        data = asdict(self)
        data.pop("kube_objects")
        return data


def seed_demo_world(*, aws_endpoint: str, kube: KubeEmulator | str, region: str = "us-east-1") -> DemoWorld:
    """Build the DNS-over-UDP-blocked case in moto (boto3) and the Kubernetes emulator (official client).

    Pod addressing: each node's primary ENI carries its CoreDNS pod IP as a **secondary** private IP,
    as the VPC CNI does. moto's ``addresses.private-ip-address`` filter only matches primary IPs, so the
    collector finds these pods through its first path — DescribeInstances for the node instance ids,
    then the node ENI whose secondary IPs hold the pod IP (docs/facts.md §2.2 (b)) — exactly as
    the controller does. No ``vpc.amazonaws.com/pod-eni`` branch ENIs are needed.

    The node security group (tagged ``kubernetes.io/cluster/demo=owned``) admits TCP 53 and kubelet
    10250 from the VPC only, so UDP 53 is blocked while both target groups report every target healthy.
    """
    session = boto3.session.Session(region_name=region, **DEMO_CREDENTIALS)
    ec2 = session.client("ec2", endpoint_url=aws_endpoint)
    elbv2 = session.client("elbv2", endpoint_url=aws_endpoint)

    zones = [f"{region}a", f"{region}b"]
    vpc_id, subnet_ids, sg_id = _seed_node_network(ec2, zones)
    node_ips = ["10.0.1.10", "10.0.2.20"]
    pod_ips = ["10.0.1.15", "10.0.2.25"]
    instance_ids = _seed_nodes(ec2, subnet_ids=subnet_ids, sg_id=sg_id, node_ips=node_ips, pod_ips=pod_ips)
    lb_arn, tg_arns, listener_arns = _seed_load_balancer(
        elbv2, vpc_id=vpc_id, subnet_ids=subnet_ids, pod_ips=pod_ips
    )

    node_names = [f"ip-{ip.replace('.', '-')}.ec2.internal" for ip in node_ips]
    objects = _demo_kube_objects(
        node_names=node_names,
        node_ips=node_ips,
        zones=zones,
        instance_ids=instance_ids,
        pod_ips=pod_ips,
        tg_arns=tg_arns,
    )
    stored = kube.apply(objects) if isinstance(kube, KubeEmulator) else apply_objects(kube, objects)

    return DemoWorld(
        region=region,
        account_id=DEMO_ACCOUNT_ID,
        vpc_id=vpc_id,
        subnet_ids=subnet_ids,
        node_security_group_id=sg_id,
        instance_ids=instance_ids,
        node_names=node_names,
        pod_ips=pod_ips,
        load_balancer_arn=lb_arn,
        target_group_arns=tg_arns,
        listener_arns=listener_arns,
        kube_objects=stored,
    )


def _seed_node_network(ec2: Any, zones: list[str]) -> tuple[str, list[str], str]:
    """The VPC, one subnet per zone and the node security group with its rules (TCP 53 and kubelet
    from the VPC, CoreDNS metrics from a managed prefix list): (vpc id, subnet ids, group id)."""
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet_ids = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.0.{i + 1}.0/24", AvailabilityZone=zone)["Subnet"][
            "SubnetId"
        ]
        for i, zone in enumerate(zones)
    ]
    sg_id = ec2.create_security_group(
        GroupName="eks-node",
        Description="eks-node",
        VpcId=vpc_id,
        TagSpecifications=[
            {
                "ResourceType": "security-group",
                "Tags": [
                    {"Key": "Name", "Value": "eks-node"},
                    {"Key": f"kubernetes.io/cluster/{DEMO_CLUSTER}", "Value": "owned"},
                ],
            }
        ],
    )["GroupId"]
    monitoring_list = ec2.create_managed_prefix_list(
        PrefixListName="monitoring",
        AddressFamily="IPv4",
        MaxEntries=5,
        Entries=[{"Cidr": "10.200.0.0/24", "Description": "prometheus"}],
    )["PrefixList"]["PrefixListId"]
    ec2.authorize_security_group_ingress(
        GroupId=sg_id,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 53,
                "ToPort": 53,
                "IpRanges": [{"CidrIp": "10.0.0.0/16", "Description": "dns over tcp from vpc"}],
            },
            {
                "IpProtocol": "tcp",
                "FromPort": 10250,
                "ToPort": 10250,
                "IpRanges": [{"CidrIp": "10.0.0.0/16", "Description": "kubelet"}],
            },
            {
                # CoreDNS metrics for the monitoring network, through a managed prefix list (as
                # corporate ranges usually are): the poller collects its entries.
                "IpProtocol": "tcp",
                "FromPort": 9153,
                "ToPort": 9153,
                "PrefixListIds": [{"PrefixListId": monitoring_list, "Description": "coredns metrics"}],
            },
        ],
    )
    return vpc_id, subnet_ids, sg_id


def _seed_nodes(
    ec2: Any, *, subnet_ids: list[str], sg_id: str, node_ips: list[str], pod_ips: list[str]
) -> list[str]:
    """One node instance per subnet, its pod IP a secondary address of its primary ENI (as the
    VPC CNI assigns it): the instance ids."""
    instance_ids: list[str] = []
    for subnet_id, node_ip, pod_ip in zip(subnet_ids, node_ips, pod_ips, strict=True):
        instance = ec2.run_instances(
            ImageId="ami-12c6146b",  # an AMI id moto ships with
            InstanceType="m5.large",
            MinCount=1,
            MaxCount=1,
            NetworkInterfaces=[
                {
                    "DeviceIndex": 0,
                    "SubnetId": subnet_id,
                    "PrivateIpAddress": node_ip,
                    "Groups": [sg_id],
                }
            ],
        )["Instances"][0]
        instance_ids.append(instance["InstanceId"])
        eni_id = instance["NetworkInterfaces"][0]["NetworkInterfaceId"]
        ec2.assign_private_ip_addresses(NetworkInterfaceId=eni_id, PrivateIpAddresses=[pod_ip])
    return instance_ids


def _seed_load_balancer(
    elbv2: Any, *, vpc_id: str, subnet_ids: list[str], pod_ips: list[str]
) -> tuple[str, dict[str, str], list[str]]:
    """The internal NLB with a UDP and a TCP target group on port 53 (TCP health checks, the pods
    registered) and a listener for each: (load balancer ARN, {"udp"/"tcp": target group ARN},
    listener ARNs)."""
    lb = elbv2.create_load_balancer(
        Name="dns-nlb", Subnets=subnet_ids, Scheme="internal", Type="network", IpAddressType="ipv4"
    )["LoadBalancers"][0]
    lb_arn = lb["LoadBalancerArn"]
    tg_arns: dict[str, str] = {}
    listener_arns: list[str] = []
    for proto in ("UDP", "TCP"):
        tg = elbv2.create_target_group(
            Name=f"k8s-dns-{proto.lower()}",
            Protocol=proto,
            Port=53,
            VpcId=vpc_id,
            TargetType="ip",
            HealthCheckProtocol="TCP",
            HealthCheckPort="traffic-port",
        )["TargetGroups"][0]
        tg_arns[proto.lower()] = tg["TargetGroupArn"]
        elbv2.register_targets(
            TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": ip, "Port": 53} for ip in pod_ips]
        )
        listener = elbv2.create_listener(
            LoadBalancerArn=lb_arn,
            Protocol=proto,
            Port=53,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}],
        )["Listeners"][0]
        listener_arns.append(listener["ListenerArn"])
    return lb_arn, tg_arns, listener_arns


def _demo_kube_objects(
    *,
    node_names: list[str],
    node_ips: list[str],
    zones: list[str],
    instance_ids: list[str],
    pod_ips: list[str],
    tg_arns: dict[str, str],
) -> list[dict[str, Any]]:
    """The Kubernetes half of the demo world (the shape of tests/scenarios/dns-udp-blocked)."""
    return [
        *_node_objects(node_names=node_names, node_ips=node_ips, zones=zones, instance_ids=instance_ids),
        *_coredns_objects(node_names=node_names, pod_ips=pod_ips),
        *_coredns_bindings(tg_arns),
    ]


def _node_objects(
    *, node_names: list[str], node_ips: list[str], zones: list[str], instance_ids: list[str]
) -> list[dict[str, Any]]:
    """The Nodes, each with its zone, provider id (the EC2 instance) and InternalIP."""
    objects: list[dict[str, Any]] = []
    for name, ip, zone, instance_id in zip(node_names, node_ips, zones, instance_ids, strict=True):
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "labels": {"topology.kubernetes.io/zone": zone, "kubernetes.io/hostname": name},
                },
                "spec": {"providerID": f"aws:///{zone}/{instance_id}"},
                "status": {
                    "addresses": [
                        {"type": "InternalIP", "address": ip},
                        {"type": "Hostname", "address": name},
                    ],
                    "conditions": [{"type": "Ready", "status": "True"}],
                },
            }
        )
    return objects


def _coredns_objects(*, node_names: list[str], pod_ips: list[str]) -> list[dict[str, Any]]:
    """CoreDNS: a pod on each node, the Service in front of them and its EndpointSlice."""
    ns = "kube-system"
    labels = {"k8s-app": "kube-dns"}
    objects: list[dict[str, Any]] = []
    pod_names = ["coredns-6d4b75cb6d-a1b2c", "coredns-6d4b75cb6d-d3e4f"]
    for pod_name, node_name, ip in zip(pod_names, node_names, pod_ips, strict=True):
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": pod_name, "namespace": ns, "labels": dict(labels)},
                "spec": {
                    "nodeName": node_name,
                    "containers": [
                        {
                            "name": "coredns",
                            "image": "registry.k8s.io/coredns/coredns:v1.11.1",
                            "ports": [
                                {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                                {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                            ],
                        }
                    ],
                },
                "status": {
                    "phase": "Running",
                    "podIP": ip,
                    "podIPs": [{"ip": ip}],
                    "conditions": [{"type": "Ready", "status": "True"}],
                },
            }
        )
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "coredns-external", "namespace": ns},
            "spec": {
                "type": "ClusterIP",
                "selector": dict(labels),
                "ports": [
                    {"name": "dns-udp", "protocol": "UDP", "port": 53, "targetPort": 53},
                    {"name": "dns-tcp", "protocol": "TCP", "port": 53, "targetPort": 53},
                ],
                "clusterIP": "172.20.0.10",
                "clusterIPs": ["172.20.0.10"],
                "ipFamilies": ["IPv4"],
            },
        }
    )
    objects.append(
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "coredns-external-abcde",
                "namespace": ns,
                "labels": {
                    "kubernetes.io/service-name": "coredns-external",
                    "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                },
            },
            "addressType": "IPv4",
            "ports": [
                {"name": "dns-udp", "protocol": "UDP", "port": 53},
                {"name": "dns-tcp", "protocol": "TCP", "port": 53},
            ],
            "endpoints": [
                {
                    "addresses": [ip],
                    "conditions": {"ready": True, "serving": True, "terminating": False},
                    "nodeName": node_name,
                    "targetRef": {"kind": "Pod", "namespace": ns, "name": pod_name},
                }
                for ip, node_name, pod_name in zip(pod_ips, node_names, pod_names, strict=True)
            ],
        }
    )
    return objects


def _coredns_bindings(tg_arns: dict[str, str]) -> list[dict[str, Any]]:
    """The two TargetGroupBindings: UDP without networking (the blocked case), TCP with an ingress
    rule for the VPC."""
    ns = "kube-system"
    objects: list[dict[str, Any]] = []
    for proto, port_name in (("udp", "dns-udp"), ("tcp", "dns-tcp")):
        spec: dict[str, Any] = {
            "serviceRef": {"name": "coredns-external", "port": port_name},
            "targetGroupARN": tg_arns[proto],
            "targetType": "ip",
            "targetGroupProtocol": proto.upper(),
        }
        if proto == "tcp":
            spec["networking"] = {
                "ingress": [
                    {
                        "from": [{"ipBlock": {"cidr": "10.0.0.0/16"}}],
                        "ports": [{"protocol": "TCP", "port": 53}],
                    }
                ]
            }
        objects.append(
            {
                "apiVersion": "elbv2.k8s.aws/v1beta1",
                "kind": "TargetGroupBinding",
                "metadata": {"name": f"coredns-{proto}", "namespace": ns},
                "spec": spec,
                "status": {"observedGeneration": 1},
            }
        )
    return objects


@dataclass
class CollectionCases:
    """What `seed_collection_cases` added to the demo world."""

    deleted_target_group_arn: str  # deleted before any collection; a binding still names it
    spare_target_group_arn: str  # exists, on no load balancer (a test deletes it mid-collection)
    named_target_group_arn: str  # a binding names it by targetGroupName
    misspelled_name: str  # a binding's targetGroupName that matches no target group
    prefix_list_id: str  # named by a node security-group rule


def seed_collection_cases(
    world: DemoWorld, *, aws_endpoint: str, kube: KubeEmulator | str, misspelled_name: str = "k8s-dns-ucp"
) -> CollectionCases:
    """Add what a first collection of a real cluster meets to the demo world: a binding on a deleted
    target group, one on a misspelled `targetGroupName`, one on a correct name (behind a TCP 5353
    listener), one on a target group no load balancer uses, and a node security-group rule (TCP 8443,
    a port no binding uses, so verdicts do not hang on it) whose source is a managed prefix list.
    """
    session = boto3.session.Session(region_name=world.region, **DEMO_CREDENTIALS)
    elbv2 = session.client("elbv2", endpoint_url=aws_endpoint)
    ec2 = session.client("ec2", endpoint_url=aws_endpoint)

    def target_group(name: str) -> str:
        arn = elbv2.create_target_group(
            Name=name, Protocol="TCP", Port=53, VpcId=world.vpc_id, TargetType="ip", HealthCheckProtocol="TCP"
        )["TargetGroups"][0]["TargetGroupArn"]
        elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": ip, "Port": 53} for ip in world.pod_ips])
        return arn

    deleted = target_group("k8s-deleted")
    elbv2.delete_target_group(TargetGroupArn=deleted)
    spare = target_group("k8s-spare")
    named = target_group("k8s-named")
    elbv2.create_listener(
        LoadBalancerArn=world.load_balancer_arn,
        Protocol="TCP",
        Port=5353,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": named}],
    )
    prefix_list = ec2.create_managed_prefix_list(
        PrefixListName="office",
        AddressFamily="IPv4",
        MaxEntries=5,
        Entries=[{"Cidr": "192.0.2.0/24", "Description": "office"}],
    )["PrefixList"]["PrefixListId"]
    ec2.authorize_security_group_ingress(
        GroupId=world.node_security_group_id,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 8443,
                "ToPort": 8443,
                "PrefixListIds": [{"PrefixListId": prefix_list}],
            }
        ],
    )

    def binding(name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": "elbv2.k8s.aws/v1beta1",
            "kind": "TargetGroupBinding",
            "metadata": {"name": name, "namespace": "kube-system"},
            "spec": {
                "serviceRef": {"name": "coredns-external", "port": "dns-tcp"},
                "targetType": "ip",
                **spec,
            },
        }

    objects = [
        binding("on-deleted-tg", {"targetGroupARN": deleted}),
        binding("misspelled-name", {"targetGroupName": misspelled_name}),
        binding("by-name", {"targetGroupName": "k8s-named"}),
        binding("spare", {"targetGroupARN": spare}),
    ]
    if isinstance(kube, KubeEmulator):
        kube.apply(objects)
    else:
        apply_objects(kube, objects)
    return CollectionCases(deleted, spare, named, misspelled_name, prefix_list)


def write_kubeconfig(path: str, server: str) -> None:
    """A kubeconfig whose current context ("demo") is the emulator at `server` (plain HTTP, no user)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "emulator", "cluster": {"server": server}}],
        "users": [{"name": "emulator", "user": {}}],
        "contexts": [{"name": DEMO_CLUSTER, "context": {"cluster": "emulator", "user": "emulator"}}],
        "current-context": DEMO_CLUSTER,
    }
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(config, fh, indent=1)  # JSON is YAML: kubectl reads it
