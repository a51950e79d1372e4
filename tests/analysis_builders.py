"""Hand-made inventories for the analysis tests.

`dns_inventory()` mirrors the sample bundles in tests/scenarios (cluster `demo`, VPC 10.0.0.0/16,
an internal NLB with private addresses 10.0.1.200 and 10.0.2.200, two CoreDNS pods 10.0.1.15 and
10.0.2.25 held as secondary addresses by the nodes' primary ENIs, one node security group). Every
knob defaults to the healthy, fixed case; tests change one thing and look at what the engine says.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from bindings.analysis import model as m

VPC = "vpc-0a1b2c3d4e5f60718"
LB_ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/dns-nlb/2c404b1a74052ed7"
TG_ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/k8s-dns/97044aff375392b7"
NODE_SG = "sg-0node00000000000a"
LB_SG = "sg-0lb0000000000000b"
NOW = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
POD_IPS = ("10.0.1.15", "10.0.2.25")
INSTANCES = ("i-0aaaaaaaaaaaaaaa1", "i-0bbbbbbbbbbbbbbb2")
NODE_PORT = 30053


def rule(
    protocol: str,
    port: int | None,
    source: str = "10.0.0.0/16",
    kind: str = "cidr",
    description: str = "",
    to_port: int | None = None,
) -> m.SecurityGroupRule:
    return m.SecurityGroupRule(
        protocol,
        port,
        to_port if to_port is not None else port,
        kind,
        source,
        description,  # type: ignore[arg-type]
    )


def allow_all() -> tuple[m.SecurityGroupRule, ...]:
    return (rule("-1", None, "0.0.0.0/0"), rule("-1", None, "::/0"))


def networking(
    *ports: tuple[str, int | str | None], cidrs: Iterable[str] = ("10.0.0.0/16",), sgs: Iterable[str] = ()
) -> tuple[m.NetworkingRule, ...]:
    peers = tuple(m.NetworkingPeer(cidr=c) for c in cidrs) + tuple(
        m.NetworkingPeer(security_group_id=s) for s in sgs
    )
    return (m.NetworkingRule(peers, tuple(m.NetworkingPort(p, n) for p, n in ports)),)


def dns_inventory(
    *,
    tg_protocol: str = "UDP",
    target_type: str = "ip",
    rules: Iterable[m.SecurityGroupRule] | None = None,
    net: tuple[m.NetworkingRule, ...] | None | str = "default",
    states: Iterable[str] = ("healthy", "healthy"),
    reasons: Iterable[str | None] | None = None,
    listener_protocols: Iterable[str] | None = None,
    scheme: str = "internal",
    lb_security_groups: tuple[str, ...] = (),
    attributes: dict[str, str] | None = None,
    hc_port: str = "traffic-port",
    hc_protocol: str = "TCP",
    service_port: int | str = "dns",
    service_ports: tuple[m.ServicePort, ...] | None = None,
    client_cidrs: tuple[str, ...] | None = None,
    cluster_client_cidrs: tuple[str, ...] | None = None,
) -> m.Inventory:
    """The DNS cluster with one binding `kube-system/coredns` on a `tg_protocol` group on port 53."""
    carried = m.CARRIED_PROTOCOLS.get(tg_protocol, ("TCP",))
    instance = target_type == "instance"
    traffic_port = NODE_PORT if instance else 53
    if rules is None:
        rules = tuple(
            rule(p.lower(), traffic_port, description=m.CONTROLLER_RULE_DESCRIPTION) for p in carried
        )
        if "TCP" not in carried:
            rules += (rule("tcp", traffic_port, description=m.CONTROLLER_RULE_DESCRIPTION),)
    if net == "default":
        ports = {(p, traffic_port) for p in carried} | {("TCP", traffic_port)}
        net = networking(*sorted(ports))
    inv = m.Inventory(cluster="demo", now=NOW, client_cidrs=cluster_client_cidrs)
    inv.vpcs[VPC] = m.Vpc(VPC, ("10.0.0.0/16",))
    inv.subnets["subnet-a"] = m.Subnet("subnet-a", VPC, "10.0.1.0/24", availability_zone="us-east-1a")
    inv.subnets["subnet-b"] = m.Subnet("subnet-b", VPC, "10.0.2.0/24", availability_zone="us-east-1b")
    inv.security_groups[NODE_SG] = m.SecurityGroup(
        NODE_SG, "eks-node", VPC, {"kubernetes.io/cluster/demo": "owned"}, tuple(rules)
    )
    for i, (zone, subnet, node_ip, pod_ip) in enumerate(
        (
            ("us-east-1a", "subnet-a", "10.0.1.10", POD_IPS[0]),
            ("us-east-1b", "subnet-b", "10.0.2.20", POD_IPS[1]),
        )
    ):
        eni_id = f"eni-0000000000000000{i + 1}"
        inv.network_interfaces[eni_id] = m.NetworkInterface(
            eni_id,
            "interface",
            "",
            subnet,
            VPC,
            zone,
            (node_ip, pod_ip),
            security_group_ids=(NODE_SG,),
            instance_id=INSTANCES[i],
            device_index=0,
        )
        inv.instances[INSTANCES[i]] = m.Instance(
            INSTANCES[i], VPC, subnet, zone, node_ip, (eni_id,), primary_network_interface_id=eni_id
        )
        node_name = f"ip-{node_ip.replace('.', '-')}.ec2.internal"
        inv.nodes[node_name] = m.Node(
            f"uid-{node_name}",
            node_name,
            f"aws:///{zone}/{INSTANCES[i]}",
            INSTANCES[i],
            zone,
            (node_ip,),
            ready=True,
        )
        pod_name = f"coredns-{i}"
        inv.pods[f"kube-system/{pod_name}"] = m.Pod(
            f"uid-{pod_name}",
            "kube-system",
            pod_name,
            node_name,
            (pod_ip,),
            True,
            (m.ContainerPort("dns", 53, "UDP"), m.ContainerPort("dns-tcp", 53, "TCP")),
        )
    inv.load_balancers[LB_ARN] = m.LoadBalancer(
        LB_ARN,
        "dns-nlb",
        "network",
        scheme,
        VPC,
        "active",
        "ipv4",
        security_groups=lb_security_groups,
        zones=(
            m.LoadBalancerZone("us-east-1a", "subnet-a", ("10.0.1.200",)),
            m.LoadBalancerZone("us-east-1b", "subnet-b", ("10.0.2.200",)),
        ),
    )
    for i, proto in enumerate(listener_protocols if listener_protocols is not None else (tg_protocol,)):
        inv.listeners.append(m.Listener(f"{LB_ARN}/listener{i}", LB_ARN, 53, proto, (TG_ARN,)))
    if attributes is None:
        attributes = {"preserve_client_ip.enabled": "true" if tg_protocol != "TCP" or instance else "false"}
    inv.target_groups[TG_ARN] = m.TargetGroup(
        TG_ARN,
        "k8s-dns",
        tg_protocol,
        53,
        VPC,
        target_type,
        "ipv4",
        hc_protocol,
        hc_port,
        True,
        load_balancer_arns=(LB_ARN,),
        attributes=attributes,
    )
    ids = INSTANCES if instance else POD_IPS
    reasons = list(reasons) if reasons is not None else [None] * len(ids)
    inv.target_health[TG_ARN] = [
        m.TargetHealth(TG_ARN, target_id, traffic_port, state=state, reason=reason)
        for target_id, state, reason in zip(ids, states, reasons, strict=False)
    ]
    if service_ports is None:
        service_ports = (
            m.ServicePort("dns", "UDP" if "UDP" in carried else "TCP", 53, 53, NODE_PORT),
            m.ServicePort("dns-tcp", "TCP", 53, 53, NODE_PORT + 1),
        )
        if tg_protocol == "TCP_UDP":
            service_ports = (
                m.ServicePort("dns", "UDP", 53, 53, NODE_PORT),
                m.ServicePort("dns-tcp", "TCP", 53, 53, NODE_PORT),
            )
    inv.services["kube-system/coredns-external"] = m.Service(
        "uid-svc", "kube-system", "coredns-external", "NodePort" if instance else "ClusterIP", service_ports
    )
    inv.endpoint_slices.append(
        m.EndpointSlice(
            "uid-eps",
            "kube-system",
            "coredns-external-abcde",
            "coredns-external",
            ports=tuple(m.EndpointPort(p.name, p.protocol, 53) for p in service_ports),
            endpoints=tuple(
                m.Endpoint((ip,), ready=True, pod_name=f"coredns-{i}") for i, ip in enumerate(POD_IPS)
            ),
        )
    )
    inv.bindings.append(
        m.Binding(
            uid="uid-tgb",
            namespace="kube-system",
            name="coredns",
            generation=1,
            observed_generation=1,
            target_group_arn=TG_ARN,
            target_type=target_type,
            target_group_protocol=tg_protocol,
            service_name="coredns-external",
            service_port=service_port,
            networking=net,  # type: ignore[arg-type]
            client_cidrs=client_cidrs,
        )
    )
    return inv


# Missing-data mutations of `dns_inventory`, shared by the hypothesis properties and the golden
# file's seeded random cases (tests/analysis_golden/generate.py) so both cover the same inputs.
MUTATIONS = ("none", "none", "none", "drop-eni", "drop-sg", "drop-tg", "drop-lb", "drop-vpc", "second-sg")


def mutate(
    inv: m.Inventory, mutation: str, other_rules: Callable[[], tuple[m.SecurityGroupRule, ...]]
) -> None:
    """Apply one of MUTATIONS; `other_rules` (called only for "second-sg") makes the second group's rules."""
    if mutation == "drop-eni":
        inv.network_interfaces.pop("eni-00000000000000001")
    elif mutation == "drop-sg":
        inv.network_interfaces["eni-00000000000000002"].security_group_ids = ("sg-missing",)
    elif mutation == "drop-tg":
        inv.target_groups.clear()
    elif mutation == "drop-lb":
        inv.load_balancers.clear()
    elif mutation == "drop-vpc":
        inv.vpcs.clear()
    elif mutation == "second-sg":
        inv.security_groups["sg-other"] = m.SecurityGroup("sg-other", ingress=other_rules())
        inv.network_interfaces["eni-00000000000000002"].security_group_ids = (NODE_SG, "sg-other")
