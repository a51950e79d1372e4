"""The normalisers: each rule, malformed input as problems (never exceptions), and fuzzing."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bindings.analysis.bundle import BundleError, load_bundle
from bindings.analysis.model import NetworkingPeer, NetworkingPort
from bindings.analysis.normalize import build_inventory, normalize_aws, normalize_kubernetes

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
BLOCKED = SCENARIOS / "dns-udp-blocked"
UDP_TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/k8s-dns-udp/97044aff375392b7"


@pytest.fixture
def coredns_objects() -> list[dict]:
    return list(yaml.safe_load_all((BLOCKED / "kubernetes.yaml").read_text()))


@pytest.fixture
def coredns_aws() -> dict:
    return json.loads((BLOCKED / "aws.json").read_text())


def tgb(spec: object, name: str = "dns", version: str = "v1beta1", **metadata: object) -> dict:
    return {
        "apiVersion": f"elbv2.k8s.aws/{version}",
        "kind": "TargetGroupBinding",
        "metadata": {"name": name, "namespace": "kube-system", "uid": f"uid-{name}", **metadata},
        "spec": spec,
    }


def valid_spec(**overrides: object) -> dict:
    spec = {
        "serviceRef": {"name": "coredns", "port": "dns-udp"},
        "targetGroupARN": UDP_TG,
        "targetType": "ip",
    }
    spec.update(overrides)
    return spec


def only_binding(obj: dict):
    records = normalize_kubernetes([obj], cluster="demo")
    assert len(records.bindings) == 1
    return records.bindings[0]


def fields(binding) -> set[str]:
    return {p.field for p in binding.problems}


# --- Kubernetes ----------------------------------------------------------------------------------


def test_sample_bundle_normalises_cleanly(coredns_objects: list[dict]) -> None:
    records = normalize_kubernetes(coredns_objects, cluster="demo")
    assert {b.key for b in records.bindings} == {"kube-system/coredns-udp", "kube-system/coredns-tcp"}
    assert not records.problems and not any(b.problems for b in records.bindings)
    udp = next(b for b in records.bindings if b.name == "coredns-udp")
    assert udp.networking is None  # no spec.networking at all
    assert udp.service_port == "dns-udp" and udp.target_group_protocol == "UDP"
    assert udp.raw["metadata"]["name"] == "coredns-udp"
    assert set(records.services) == {"kube-system/coredns-external"}
    assert {p.protocol for p in records.services["kube-system/coredns-external"].ports} == {"UDP", "TCP"}
    assert records.pods["kube-system/coredns-6d4b75cb6d-a1b2c"].ips == ("10.0.1.15",)
    assert records.pods["kube-system/coredns-6d4b75cb6d-a1b2c"].ready is True
    slice_ = records.endpoint_slices[0]
    assert slice_.service_name == "coredns-external"
    assert slice_.endpoints[0].ready is True and slice_.endpoints[0].pod_name == "coredns-6d4b75cb6d-a1b2c"
    node = records.nodes["ip-10-0-1-10.ec2.internal"]
    assert node.instance_id == "i-0aaaaaaaaaaaaaaa1" and node.zone == "us-east-1a" and node.ready


def test_networking_defaults_as_the_controller_reads_them() -> None:
    spec = valid_spec(
        networking={
            "ingress": [
                {
                    "from": [{"ipBlock": {"cidr": "10.0.0.0/16"}}],
                    "ports": [{"port": 53}, {"protocol": "UDP"}],
                },
                {"from": [{"securityGroup": {"groupID": "sg-1"}}], "ports": []},
                {
                    "from": [{"ipBlock": {"cidr": "::/0"}}],
                    "ports": [{"protocol": "UDP", "port": "dns"}, None],
                },
            ]
        }
    )
    binding = only_binding(tgb(spec))
    first, second, third = binding.networking
    assert first.peers == (NetworkingPeer(cidr="10.0.0.0/16"),)
    assert first.ports == (NetworkingPort("TCP", 53), NetworkingPort("UDP", None))  # TCP default, None = all
    assert (
        second.peers == (NetworkingPeer(security_group_id="sg-1"),) and second.ports == ()
    )  # `ports: []` kept
    assert third.ports == (
        NetworkingPort("UDP", "dns"),
        NetworkingPort("TCP", None),
    )  # named port kept as str
    assert not binding.problems


def test_networking_without_ingress_is_none() -> None:
    assert only_binding(tgb(valid_spec(networking={}))).networking is None
    assert only_binding(tgb(valid_spec(networking={"ingress": []}))).networking == ()


@pytest.mark.parametrize(
    ("networking", "field"),
    [
        (
            {"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/33"}}], "ports": [{"port": 53}]}]},
            "spec.networking.ingress[0].from[0].ipBlock.cidr",
        ),
        (
            {"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0"}}], "ports": []}]},
            "spec.networking.ingress[0].from[0].ipBlock.cidr",
        ),
        ({"ingress": [{"from": [{}], "ports": []}]}, "spec.networking.ingress[0].from[0]"),
        (
            {
                "ingress": [
                    {
                        "from": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "securityGroup": {"groupID": "sg-1"}}],
                        "ports": [],
                    }
                ]
            },
            "spec.networking.ingress[0].from[0]",
        ),
        (
            {"ingress": [{"from": [{"securityGroup": {}}], "ports": []}]},
            "spec.networking.ingress[0].from[0].securityGroup.groupID",
        ),
        ({"ingress": [{"ports": []}]}, "spec.networking.ingress[0].from"),
        ({"ingress": [{"from": []}]}, "spec.networking.ingress[0].ports"),
        (
            {"ingress": [{"from": [], "ports": [{"protocol": "SCTP"}]}]},
            "spec.networking.ingress[0].ports[0].protocol",
        ),
        ({"ingress": [{"from": [], "ports": [{"port": 70000}]}]}, "spec.networking.ingress[0].ports[0].port"),
        ({"ingress": [{"from": [], "ports": [{"port": True}]}]}, "spec.networking.ingress[0].ports[0].port"),
        ({"ingress": "everything"}, "spec.networking.ingress"),
        ({"ingress": ["x"]}, "spec.networking.ingress[0]"),
        ("open", "spec.networking"),
    ],
)
def test_bad_networking_is_a_problem(networking: object, field: str) -> None:
    binding = only_binding(tgb(valid_spec(networking=networking)))
    assert field in fields(binding)
    problem = next(p for p in binding.problems if p.field == field)
    assert problem.object == "TargetGroupBinding kube-system/dns"


def test_invalid_cidr_peer_is_dropped_valid_ones_kept() -> None:
    networking = {
        "ingress": [
            {
                "from": [{"ipBlock": {"cidr": "10.0.0.0/33"}}, {"ipBlock": {"cidr": "10.0.0.0/16"}}],
                "ports": [{}],
            }
        ]
    }
    binding = only_binding(tgb(valid_spec(networking=networking)))
    assert binding.networking[0].peers == (NetworkingPeer(cidr="10.0.0.0/16"),)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"targetGroupARN": UDP_TG, "targetType": "ip"}, "spec.serviceRef"),
        (valid_spec(serviceRef="coredns"), "spec.serviceRef"),
        (valid_spec(serviceRef={"port": 53}), "spec.serviceRef.name"),
        (valid_spec(serviceRef={"name": "coredns"}), "spec.serviceRef.port"),
        (valid_spec(serviceRef={"name": "coredns", "port": [53]}), "spec.serviceRef.port"),
        (valid_spec(serviceRef={"name": "coredns", "port": "53"}), "spec.serviceRef.port"),
        (valid_spec(targetGroupARN=None), "spec.targetGroupARN"),
        (valid_spec(targetGroupARN=7), "spec.targetGroupARN"),
        (valid_spec(targetType="lambda"), "spec.targetType"),
        (valid_spec(targetType=None), "spec.targetType"),
        (valid_spec(targetGroupProtocol="SCTP"), "spec.targetGroupProtocol"),
        ([], "spec"),
        (None, "spec"),
    ],
)
def test_bad_spec_is_a_problem(spec: object, field: str) -> None:
    assert field in fields(only_binding(tgb(spec)))


def test_unknown_enums_kept_verbatim() -> None:
    binding = only_binding(tgb(valid_spec(targetGroupProtocol="GENEVE", targetType="lambda")))
    assert binding.target_group_protocol == "GENEVE"
    assert binding.target_type is None  # the model keeps only ip/instance; the problem names the value
    assert any("lambda" in p.message for p in binding.problems)


def test_target_group_name_alone_is_fine() -> None:
    binding = only_binding(tgb(valid_spec(targetGroupARN=None, targetGroupName="k8s-dns-udp")))
    assert binding.target_group_name == "k8s-dns-udp" and not binding.problems


def test_v1alpha1_binding() -> None:
    binding = only_binding(tgb(valid_spec(), version="v1alpha1"))
    assert binding.api_version == "elbv2.k8s.aws/v1alpha1" and not binding.problems


def test_other_group_with_same_kind_ignored() -> None:
    obj = tgb(valid_spec())
    obj["apiVersion"] = "example.com/v1"
    assert normalize_kubernetes([obj], cluster="demo").bindings == []


def test_client_cidrs_annotation() -> None:
    annotations = {"binding-health/client-cidrs": " 10.0.0.0/8, 2001:db8::/32,,192.168.0.0/33"}
    binding = only_binding(tgb(valid_spec(), annotations=annotations))
    assert binding.client_cidrs == ("10.0.0.0/8", "2001:db8::/32")
    assert 'metadata.annotations["binding-health/client-cidrs"]' in fields(binding)


def test_client_cidrs_annotation_all_invalid_falls_back() -> None:
    binding = only_binding(tgb(valid_spec(), annotations={"binding-health/client-cidrs": "nope"}))
    assert binding.client_cidrs is None and binding.problems


def test_generation_and_observed_generation() -> None:
    obj = tgb(valid_spec(), generation="3")
    obj["status"] = {"observedGeneration": 2}
    binding = only_binding(obj)
    assert (binding.generation, binding.observed_generation) == (3, 2)


def test_events_attach_by_uid_then_by_name() -> None:
    by_uid = {
        "apiVersion": "v1",
        "kind": "Event",
        "involvedObject": {"kind": "TargetGroupBinding", "uid": "uid-dns", "name": "renamed"},
        "type": "Warning",
        "reason": "FailedNetworkReconcile",
        "message": "expected exactly one securityGroup",
        "count": "4",
        "lastTimestamp": "2026-11-26T05:00:00Z",
    }
    by_name = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"namespace": "kube-system"},
        "regarding": {"kind": "TargetGroupBinding", "name": "dns", "namespace": "kube-system"},
        "type": "Normal",
        "reason": "SuccessfullyReconciled",
        "note": "ok",
        "eventTime": "2026-11-26T06:00:00.000000Z",
    }
    unrelated = {**by_uid, "involvedObject": {"kind": "Pod", "uid": "other", "name": "dns"}}
    records = normalize_kubernetes(
        [tgb(valid_spec()), by_uid, by_name, unrelated, {"kind": "Event"}], cluster="c"
    )
    events = records.bindings[0].events
    assert [e.reason for e in events] == ["SuccessfullyReconciled", "FailedNetworkReconcile"]  # newest first
    assert events[1].count == 4 and events[0].message == "ok"


def test_typed_list_items_without_kind(coredns_objects: list[dict]) -> None:
    """The client's V1ServiceList.items carry no kind; the list's kind says what they are."""
    services = [i for i in coredns_objects[0]["items"] if i["kind"] == "Service"]
    for service in services:
        del service["kind"]
    records = normalize_kubernetes(
        [{"apiVersion": "v1", "kind": "ServiceList", "items": services}], cluster="c"
    )
    assert set(records.services) == {"kube-system/coredns-external"}


def test_service_ports_and_node_ports() -> None:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s", "namespace": "n"},
        "spec": {
            "type": "NodePort",
            "ports": [
                {"name": "dns", "protocol": "UDP", "port": "53", "targetPort": "dns", "nodePort": 30053},
                {"port": 80},
                {"port": "eighty"},
                "junk",
            ],
        },
    }
    svc = normalize_kubernetes([service], cluster="c").services["n/s"]
    assert svc.ports[0].port == 53 and svc.ports[0].target_port == "dns" and svc.ports[0].node_port == 30053
    assert svc.ports[1].protocol == "TCP" and svc.ports[1].target_port is None
    assert {p.field for p in svc.problems} == {"spec.ports[2].port", "spec.ports[3]"}


def test_pod_eni_annotation_kept() -> None:
    annotation = '[{"eniId":"eni-0branch","ifAddress":"02:00","privateIp":"10.0.1.15","vlanId":1}]'
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "n", "annotations": {"vpc.amazonaws.com/pod-eni": annotation}},
        "status": {"podIP": "10.0.1.15"},
    }
    records = normalize_kubernetes(
        [
            pod,
            {
                **pod,
                "metadata": {
                    **pod["metadata"],
                    "name": "q",
                    "annotations": {"vpc.amazonaws.com/pod-eni": "{"},
                },
            },
        ],
        cluster="c",
    )
    assert records.pods["n/p"].pod_eni == annotation
    assert [p.object for p in records.problems] == ["Pod n/q"]


@pytest.mark.parametrize(
    ("provider_id", "instance", "zone"),
    [
        ("aws:///us-east-1a/i-0abc123", "i-0abc123", "us-east-1a"),
        ("aws:///eu-west-1b/fargate-ip-10-0-1-2", None, None),
        ("gce://p/z/n", None, None),
        (None, None, None),
    ],
)
def test_node_provider_id(provider_id: str | None, instance: str | None, zone: str | None) -> None:
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "n"},
        "spec": {"providerID": provider_id},
    }
    parsed = normalize_kubernetes([node], cluster="c").nodes["n"]
    assert (parsed.instance_id, parsed.zone) == (instance, zone)


def test_duplicates_and_junk_are_problems(coredns_objects: list[dict]) -> None:
    items = coredns_objects[0]["items"]
    objects = [
        *items,
        copy.deepcopy(items[-1]),
        42,
        None,
        {"kind": "List", "items": "x"},
        {"kind": "Mystery"},
    ]
    records = normalize_kubernetes(objects, cluster="demo")
    assert len(records.bindings) == 2
    assert any("duplicate" in p.message for p in records.problems)
    assert any("got int" in p.message for p in records.problems)


def test_deep_lists_are_bounded() -> None:
    obj: dict = tgb(valid_spec())
    for _ in range(50):
        obj = {"kind": "List", "items": [obj]}
    records = normalize_kubernetes([obj], cluster="c")
    assert records.bindings == [] and records.problems


# --- AWS -----------------------------------------------------------------------------------------


def test_sample_aws_normalises(coredns_aws: dict) -> None:
    records = normalize_aws(coredns_aws)
    assert not records.problems
    group = records.target_groups[UDP_TG]
    assert (group.protocol, group.target_type, group.health_check_port) == ("UDP", "ip", "traffic-port")
    assert group.attributes["preserve_client_ip.enabled"] == "true"
    assert [t.state for t in records.target_health[UDP_TG]] == ["healthy", "healthy"]
    lb = next(iter(records.load_balancers.values()))
    assert lb.scheme == "internal" and lb.security_groups == () and lb.zones[0].addresses == ("10.0.1.200",)
    assert lb.attributes is None
    assert records.instances["i-0aaaaaaaaaaaaaaa1"].primary_network_interface_id == "eni-00000000000000001"
    assert records.network_interfaces["eni-00000000000000003"].interface_type == "network_load_balancer"
    assert records.vpcs["vpc-0a1b2c3d4e5f60718"].cidrs == ("10.0.0.0/16",)
    assert records.subnets["subnet-0aaa1111bbbb2222c"].cidr == "10.0.1.0/24"


def test_security_group_rules_exploded_per_source() -> None:
    responses = {
        "DescribeSecurityGroups": {
            "SecurityGroups": [
                {
                    "GroupId": "sg-1",
                    "Tags": [{"Key": "kubernetes.io/cluster/demo", "Value": "owned"}, {"Key": "Name"}],
                    "IpPermissions": [
                        {
                            "IpProtocol": "17",
                            "FromPort": 53,
                            "ToPort": "53",
                            "IpRanges": [
                                {
                                    "CidrIp": "10.0.0.0/16",
                                    "Description": "elbv2.k8s.aws/targetGroupBinding=shared",
                                }
                            ],
                            "Ipv6Ranges": [{"CidrIpv6": "2600::/56"}],
                            "UserIdGroupPairs": [{"GroupId": "sg-nlb", "UserId": "1"}],
                            "PrefixListIds": [{"PrefixListId": "pl-1"}],
                        },
                        {
                            "IpProtocol": "-1",
                            "FromPort": -1,
                            "ToPort": -1,
                            "IpRanges": [{"CidrIp": "10.0.0.0/8"}],
                        },
                        {"IpProtocol": "6", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "bad"}]},
                        {"IpProtocol": "58", "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
                        {
                            "IpProtocol": "TCP",
                            "FromPort": 1,
                            "ToPort": 2,
                            "IpRanges": [{"CidrIp": "10.0.0.0/8"}],
                        },
                    ],
                }
            ]
        }
    }
    records = normalize_aws(responses)
    group = records.security_groups["sg-1"]
    assert group.tags == {"kubernetes.io/cluster/demo": "owned", "Name": ""}
    rules = group.ingress
    assert [(r.protocol, r.source_kind, r.source) for r in rules[:4]] == [
        ("udp", "cidr", "10.0.0.0/16"),
        ("udp", "cidr", "2600::/56"),
        ("udp", "security_group", "sg-nlb"),
        ("udp", "prefix_list", "pl-1"),
    ]
    assert rules[0].controller_owned and rules[0].to_port == 53
    assert (rules[4].protocol, rules[4].from_port, rules[4].to_port) == ("-1", None, None)
    assert [r.protocol for r in rules[5:]] == ["icmpv6", "tcp"]
    assert any("bad" in p.message for p in records.problems)


def test_listener_forward_targets_from_both_places() -> None:
    listeners = {
        "Listeners": [
            {
                "ListenerArn": "l1",
                "LoadBalancerArn": "lb",
                "Port": "53",
                "Protocol": "TCP_UDP",
                "DefaultActions": [
                    {"Type": "forward", "TargetGroupArn": "tg-a"},
                    {
                        "Type": "forward",
                        "ForwardConfig": {
                            "TargetGroups": [{"TargetGroupArn": "tg-b"}, {"TargetGroupArn": "tg-a"}]
                        },
                    },
                    {"Type": "fixed-response", "TargetGroupArn": "tg-c"},
                    "junk",
                ],
            }
        ]
    }
    (listener,) = normalize_aws({"DescribeListeners": listeners}).listeners
    assert listener.target_group_arns == ("tg-a", "tg-b") and listener.port == 53


def test_instance_enis_merged_with_describe_network_interfaces() -> None:
    responses = {
        "DescribeInstances": {
            "Reservations": [
                {
                    "Instances": [
                        {
                            "InstanceId": "i-1",
                            "Placement": {"AvailabilityZone": "us-east-1a"},
                            "NetworkInterfaces": [
                                {
                                    "NetworkInterfaceId": "eni-1",
                                    "Attachment": {"DeviceIndex": 0},
                                    "Groups": [{"GroupId": "sg-1"}],
                                    "PrivateIpAddresses": [{"PrivateIpAddress": "10.0.1.10"}],
                                    "Ipv4Prefixes": [{"Ipv4Prefix": "10.0.1.32/28"}],
                                },
                                {"NetworkInterfaceId": "eni-2", "Attachment": {"DeviceIndex": 1}},
                            ],
                        }
                    ]
                }
            ]
        },
        "DescribeNetworkInterfaces": {
            "NetworkInterfaces": [{"NetworkInterfaceId": "eni-1", "InterfaceType": "interface", "Groups": []}]
        },
    }
    records = normalize_aws(responses)
    eni = records.network_interfaces["eni-1"]
    assert eni.interface_type == "interface" and eni.instance_id == "i-1" and eni.device_index == 0
    assert eni.security_group_ids == ("sg-1",)  # filled from the instance's copy
    assert eni.ipv4_prefixes == ("10.0.1.32/28",) and eni.availability_zone == "us-east-1a"
    assert records.network_interfaces["eni-2"].instance_id == "i-1"
    assert records.instances["i-1"].network_interface_ids == ("eni-1", "eni-2")


def test_unknown_target_group_enums_kept_and_noted() -> None:
    groups = {
        "TargetGroups": [{"TargetGroupArn": "tg", "Protocol": "SCTP", "TargetType": "pod", "Port": "53"}, 5]
    }
    records = normalize_aws({"DescribeTargetGroups": groups})
    group = records.target_groups["tg"]
    assert (group.protocol, group.target_type, group.port) == ("SCTP", "pod", 53)
    assert {p.field for p in group.problems} == {"Protocol", "TargetType"}
    assert records.problems


@pytest.mark.parametrize(
    "responses",
    [
        {"DescribeTargetGroups": []},
        {"DescribeTargetGroups": {"TargetGroups": {"a": 1}}},
        {"DescribeTargetHealth": {"tg": [1]}},
        {"DescribeTargetHealth": ["x"]},
        {
            "DescribeSecurityGroups": {
                "SecurityGroups": [{"GroupId": "sg", "IpPermissions": [None, {"IpProtocol": None}]}]
            }
        },
        {"DescribeLoadBalancers": {"LoadBalancers": [{"LoadBalancerArn": None}]}},
    ],
)
def test_malformed_aws_is_a_problem(responses: dict) -> None:
    assert normalize_aws(responses).problems


def test_network_acls() -> None:
    acls = {
        "NetworkAcls": [
            {
                "NetworkAclId": "acl-1",
                "IsDefault": True,
                "Associations": [{"SubnetId": "subnet-1"}],
                "Entries": [
                    {
                        "RuleNumber": 32767,
                        "Protocol": "-1",
                        "RuleAction": "deny",
                        "Egress": False,
                        "CidrBlock": "0.0.0.0/0",
                    },
                    {
                        "RuleNumber": 100,
                        "Protocol": "17",
                        "RuleAction": "allow",
                        "Egress": False,
                        "CidrBlock": "0.0.0.0/0",
                        "PortRange": {"From": 53, "To": 53},
                    },
                ],
            }
        ]
    }
    (acl,) = normalize_aws({"DescribeNetworkAcls": acls}).network_acls
    assert acl.subnet_ids == ("subnet-1",) and [e.rule_number for e in acl.entries] == [100, 32767]
    assert acl.entries[0].port_from == 53


# --- inventory -----------------------------------------------------------------------------------


def test_build_inventory(coredns_objects: list[dict], coredns_aws: dict) -> None:
    kube = normalize_kubernetes(coredns_objects, cluster="demo")
    inventory = build_inventory(
        cluster="demo", kube=kube, aws=normalize_aws(coredns_aws), client_cidrs=["10.0.0.0/8", "x"]
    )
    assert inventory.aws_complete and UDP_TG in inventory.target_groups
    assert inventory.client_cidrs == ("10.0.0.0/8",)
    assert [p.field for p in inventory.problems] == ["clientCidrs[1]"]
    without_aws = build_inventory(cluster="demo", kube=kube, aws=None)
    assert not without_aws.aws_complete and not without_aws.target_groups


# --- fuzzing: never raise ------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True)
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=30,
)
# Plausible keys make the fuzzer reach deep into the real code paths, not just the type checks.
K8S_KEYS = st.sampled_from(
    [
        "apiVersion",
        "kind",
        "metadata",
        "spec",
        "status",
        "items",
        "name",
        "namespace",
        "uid",
        "serviceRef",
        "port",
        "networking",
        "ingress",
        "from",
        "ports",
        "protocol",
        "ipBlock",
        "cidr",
        "securityGroup",
        "groupID",
        "targetGroupARN",
        "targetType",
        "annotations",
        "involvedObject",
        "endpoints",
        "addresses",
        "conditions",
        "providerID",
        "podIPs",
        "containers",
        "nodePort",
        "targetPort",
        "generation",
        "labels",
    ]
)
K8S_VALUES = st.sampled_from(
    [
        "TargetGroupBinding",
        "Service",
        "EndpointSlice",
        "Pod",
        "Node",
        "Event",
        "List",
        "ServiceList",
        "elbv2.k8s.aws/v1beta1",
        "elbv2.k8s.aws/v1alpha1",
        "v1",
        "discovery.k8s.io/v1",
        "UDP",
        "TCP",
        "ip",
        "instance",
        "10.0.0.0/33",
        "10.0.0.0/16",
        "::/0",
        "aws:///us-east-1a/i-0abc",
        "dns",
        "53",
    ]
)
k8s_like = st.recursive(
    scalars | K8S_VALUES,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(K8S_KEYS, children, max_size=6),
    max_leaves=40,
)
AWS_KEYS = st.sampled_from(
    [
        "DescribeLoadBalancers",
        "DescribeListeners",
        "DescribeTargetGroups",
        "DescribeTargetHealth",
        "DescribeTargetGroupAttributes",
        "DescribeLoadBalancerAttributes",
        "DescribeNetworkInterfaces",
        "DescribeInstances",
        "DescribeSecurityGroups",
        "DescribeSubnets",
        "DescribeVpcs",
        "DescribeNetworkAcls",
        "LoadBalancers",
        "Listeners",
        "TargetGroups",
        "TargetHealthDescriptions",
        "Attributes",
        "NetworkInterfaces",
        "Reservations",
        "Instances",
        "SecurityGroups",
        "Subnets",
        "Vpcs",
        "NetworkAcls",
        "IpPermissions",
        "IpRanges",
        "UserIdGroupPairs",
        "IpProtocol",
        "FromPort",
        "ToPort",
        "CidrIp",
        "GroupId",
        "TargetGroupArn",
        "LoadBalancerArn",
        "DefaultActions",
        "ForwardConfig",
        "Target",
        "Id",
        "Port",
        "Protocol",
        "Entries",
        "AvailabilityZones",
        "LoadBalancerAddresses",
        "PrivateIpAddresses",
        "Attachment",
        "Groups",
        "Key",
        "Value",
    ]
)
aws_like = st.recursive(
    scalars | st.sampled_from(["tcp", "udp", "-1", "17", "10.0.0.0/16", "arn:tg", "sg-1", "forward"]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(AWS_KEYS | st.text(max_size=8), children, max_size=6)
    ),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(k8s_like | json_values, max_size=5))
def test_fuzz_normalize_kubernetes_never_raises(objects: list) -> None:
    records = normalize_kubernetes(objects, cluster="fuzz")
    build_inventory(cluster="fuzz", kube=records, aws=None)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(aws_like | json_values)
def test_fuzz_normalize_aws_never_raises(responses: object) -> None:
    normalize_aws(responses)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(k8s_like)
def test_fuzz_mutated_tgb_never_raises(spec: object) -> None:
    binding = only_binding(tgb(spec))
    assert isinstance(binding.problems, list)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(kube=st.lists(k8s_like, max_size=3), aws=aws_like, meta=json_values, raw=st.binary(max_size=64))
def test_fuzz_load_bundle_raises_only_bundle_error(tmp_path_factory, kube, aws, meta, raw) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "kubernetes.yaml").write_text(yaml.safe_dump_all(kube) if kube else "")
    (folder / "aws.json").write_text(json.dumps(aws))
    (folder / "bundle.json").write_bytes(raw if meta is None else json.dumps(meta).encode())
    try:
        bundle = load_bundle(folder)
    except BundleError as exc:
        assert str(folder) in str(exc)
        return
    from bindings.analysis.bundle import bundle_inventory

    bundle_inventory(bundle)
