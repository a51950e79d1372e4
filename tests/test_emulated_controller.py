"""The demo's emulated AWS Load Balancer Controller, against moto and the Kubernetes emulator.

Each test changes the seeded demo world (two CoreDNS pods on two nodes whose primary ENIs carry
the node security group, tagged for the cluster) and checks what the controller leaves in EC2:
the semantics of docs/facts.md §2.2-2.4, one shape per test.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from bindings.analysis.normalize import normalize_kubernetes
from bindings.collect import kube as kube_collector
from bindings.demo.emulated_controller import LABEL, EmulatedController
from bindings.demo.emulators import DEMO_CREDENTIALS, KubeEmulator, MotoServer, seed_demo_world

pytestmark = pytest.mark.slow

TGB = "elbv2.k8s.aws/v1beta1"
VPC = {"ipBlock": {"cidr": "10.0.0.0/16"}}


class World:
    def __init__(self, moto: MotoServer, kube: KubeEmulator) -> None:
        self.kube = kube
        self.world = seed_demo_world(aws_endpoint=moto.url, kube=kube)
        self.sg = self.world.node_security_group_id
        self.ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=moto.url, **DEMO_CREDENTIALS)
        self.controller = EmulatedController(kube_url=kube.url, aws_endpoint=moto.url, cluster="demo")

    def networking(self, name: str, ingress: list[dict[str, Any]] | None) -> None:
        value = None if ingress is None else {"ingress": ingress}
        self.kube.patch(TGB, "TargetGroupBinding", name, "kube-system", {"spec": {"networking": value}})

    def rules(self, group: str | None = None) -> set[tuple[str, int, int, str, str]]:
        """(protocol, from, to, source, description) of every inbound rule of the group."""
        [sg] = self.ec2.describe_security_groups(GroupIds=[group or self.sg])["SecurityGroups"]
        out = set()
        for p in sg["IpPermissions"]:
            for r in p.get("IpRanges", []):
                out.add((p["IpProtocol"], p["FromPort"], p["ToPort"], r["CidrIp"], r.get("Description", "")))
            for r in p.get("Ipv6Ranges", []):
                out.add(
                    (p["IpProtocol"], p["FromPort"], p["ToPort"], r["CidrIpv6"], r.get("Description", ""))
                )
            for r in p.get("UserIdGroupPairs", []):
                out.add((p["IpProtocol"], p["FromPort"], p["ToPort"], r["GroupId"], r.get("Description", "")))
        return out

    def labelled(self, group: str | None = None) -> set[tuple[str, int, int, str]]:
        return {r[:4] for r in self.rules(group) if r[4] == LABEL}

    def events(self, name: str) -> list[Any]:
        snapshot = kube_collector.collect_cluster(kube_collector.KubeConnection(api_url=self.kube.url))
        records = normalize_kubernetes(snapshot.objects, cluster="demo")
        [binding] = [b for b in records.bindings if b.name == name]
        return list(binding.events)

    def new_group(self, name: str, tags: dict[str, str] | None = None) -> str:
        spec = [
            {
                "ResourceType": "security-group",
                "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()],
            }
        ]
        return self.ec2.create_security_group(
            GroupName=name,
            Description=name,
            VpcId=self.world.vpc_id,
            **({"TagSpecifications": spec} if tags else {}),
        )["GroupId"]

    def node_enis(self) -> list[str]:
        reservations = self.ec2.describe_instances(InstanceIds=self.world.instance_ids)["Reservations"]
        return [i["NetworkInterfaces"][0]["NetworkInterfaceId"] for r in reservations for i in r["Instances"]]


@pytest.fixture
def w():
    with MotoServer() as moto, KubeEmulator() as kube:
        yield World(moto, kube)


def test_the_seeded_world_needs_nothing_and_unlabelled_rules_count_as_present(w):
    before = w.rules()

    report = w.controller.reconcile()

    # coredns-tcp declares TCP 53 from the VPC, which the (unlabelled) node rule already admits.
    assert report.authorized == report.revoked == [] and report.failures == {}
    assert w.rules() == before


def test_applied_udp_rule_is_written_once_labelled_and_revoked_when_networking_goes(w):
    w.networking("coredns-udp", [{"from": [VPC], "ports": [{"protocol": "UDP", "port": 53}]}])

    first = w.controller.reconcile()
    second = w.controller.reconcile()

    assert [(g, p.text()) for g, p in first.authorized] == [(w.sg, "UDP 53 from 10.0.0.0/16")]
    assert second.authorized == second.revoked == []
    assert w.labelled() == {("udp", 53, 53, "10.0.0.0/16")}

    w.networking("coredns-udp", None)
    third = w.controller.reconcile()

    assert [(g, p.text()) for g, p in third.revoked] == [(w.sg, "UDP 53 from 10.0.0.0/16")]
    assert w.labelled() == set()
    # The rules nobody labelled are never touched.
    assert ("tcp", 53, 53, "10.0.0.0/16", "dns over tcp from vpc") in w.rules()
    assert ("tcp", 10250, 10250, "10.0.0.0/16", "kubelet") in w.rules()


def test_empty_ports_and_empty_from_write_nothing_and_a_missing_port_opens_the_whole_range(w):
    w.networking(
        "coredns-udp",
        [
            {"from": [VPC], "ports": []},  # the controller's open bug: no rule at all
            {"from": [], "ports": [{"protocol": "UDP", "port": 5353}]},
            {"from": [{"ipBlock": {"cidr": "192.168.0.0/24"}}], "ports": [{"protocol": "UDP"}]},
        ],
    )

    w.controller.reconcile()

    assert w.labelled() == {("udp", 0, 65535, "192.168.0.0/24")}


def test_ipv6_peers_go_to_ipv6_ranges(w):
    w.networking(
        "coredns-udp",
        [{"from": [{"ipBlock": {"cidr": "2600:1f18::/56"}}], "ports": [{"protocol": "UDP", "port": 53}]}],
    )

    w.controller.reconcile()

    assert w.labelled() == {("udp", 53, 53, "2600:1f18::/56")}


def test_named_ports_resolve_against_the_pods_and_a_missing_name_fails_with_an_event(w):
    w.networking("coredns-udp", [{"from": [VPC], "ports": [{"protocol": "UDP", "port": "dns"}]}])
    w.controller.reconcile()
    assert w.labelled() == {("udp", 53, 53, "10.0.0.0/16")}

    w.networking("coredns-udp", [{"from": [VPC], "ports": [{"protocol": "UDP", "port": "no-such-port"}]}])
    report = w.controller.reconcile()

    assert (
        "unable to find port no-such-port on pod kube-system/coredns-"
        in report.failures["kube-system/coredns-udp"]
    )
    # While a binding fails its rules are unknown: nothing is revoked.
    assert report.revoked == [] and w.labelled() == {("udp", 53, 53, "10.0.0.0/16")}
    [event] = w.events("coredns-udp")
    assert (event.type, event.reason) == ("Warning", "FailedNetworkReconcile")
    assert "no-such-port" in event.message and w.events("coredns-tcp") == []


def test_a_quoted_number_is_a_port_name_not_a_number(w):
    w.networking("coredns-udp", [{"from": [VPC], "ports": [{"protocol": "UDP", "port": "53"}]}])

    report = w.controller.reconcile()

    assert "unable to find port 53" in report.failures["kube-system/coredns-udp"]
    assert w.labelled() == set()


def test_the_group_is_chosen_by_the_cluster_tag_and_two_tagged_groups_fail(w):
    extra = w.new_group("untagged-extra")
    for eni in w.node_enis():
        w.ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=[w.sg, extra])
    w.networking("coredns-udp", [{"from": [VPC], "ports": [{"protocol": "UDP", "port": 53}]}])

    w.controller.reconcile()

    assert w.labelled() == {("udp", 53, 53, "10.0.0.0/16")} and w.labelled(extra) == set()

    tagged = w.new_group("tagged-too", {"kubernetes.io/cluster/demo": "shared"})
    for eni in w.node_enis():
        w.ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=[w.sg, tagged])
    report = w.controller.reconcile()

    message = report.failures["kube-system/coredns-udp"]
    assert "expected exactly one securityGroup tagged with kubernetes.io/cluster/demo for eni" in message
    assert w.labelled(tagged) == set()


def test_group_sources_merge_into_one_range_per_protocol_and_group(w):
    backend = w.new_group("k8s-traffic-demo")
    peer = {"securityGroup": {"groupID": backend}}
    w.networking("coredns-udp", [{"from": [peer], "ports": [{"protocol": "UDP", "port": 53}]}])
    w.networking(
        "coredns-tcp",
        [
            {"from": [VPC], "ports": [{"protocol": "TCP", "port": 53}]},
            {"from": [peer], "ports": [{"protocol": "UDP", "port": 8080}]},
        ],
    )

    w.controller.reconcile()

    assert w.labelled() == {("udp", 53, 8080, backend)}


def test_instance_targets_use_the_nodes_primary_interfaces_and_refuse_named_ports(w):
    w.kube.apply(
        {
            "apiVersion": TGB,
            "kind": "TargetGroupBinding",
            "metadata": {"name": "dns-nodes", "namespace": "kube-system"},
            "spec": {
                "serviceRef": {"name": "coredns-external", "port": 53},
                "targetGroupARN": w.world.target_group_arns["udp"],
                "targetType": "instance",
                "networking": {"ingress": [{"from": [VPC], "ports": [{"protocol": "UDP", "port": 30053}]}]},
            },
        }
    )
    w.controller.reconcile()
    assert w.labelled() == {("udp", 30053, 30053, "10.0.0.0/16")}

    w.kube.patch(
        TGB,
        "TargetGroupBinding",
        "dns-nodes",
        "kube-system",
        {
            "spec": {
                "networking": {"ingress": [{"from": [VPC], "ports": [{"protocol": "UDP", "port": "dns"}]}]}
            }
        },
    )
    report = w.controller.reconcile()

    assert report.failures == {"kube-system/dns-nodes": "named ports can only be used with pod endpoints"}


def test_a_cluster_group_no_binding_uses_loses_its_labelled_rules(w):
    stale = w.new_group("old-nodes", {"kubernetes.io/cluster/demo": "owned"})
    w.ec2.authorize_security_group_ingress(
        GroupId=stale,
        IpPermissions=[
            {
                "IpProtocol": "udp",
                "FromPort": 53,
                "ToPort": 53,
                "IpRanges": [{"CidrIp": "10.0.0.0/16", "Description": LABEL}],
            },
            {
                "IpProtocol": "udp",
                "FromPort": 123,
                "ToPort": 123,
                "IpRanges": [{"CidrIp": "10.0.0.0/16", "Description": "ntp"}],
            },
        ],
    )

    w.controller.reconcile()

    assert w.rules(stale) == {("udp", 123, 123, "10.0.0.0/16", "ntp")}


def test_the_emulated_nlb_has_the_arns_aws_gives_network_load_balancers(w):
    assert ":loadbalancer/net/dns-nlb/" in w.world.load_balancer_arn
    assert all(":listener/net/dns-nlb/" in arn for arn in w.world.listener_arns)


def test_an_ec2_refusal_becomes_an_event_on_the_bindings_writing_to_that_group(w):
    # 70 ports: more rules than a VPC security group may hold (60), so EC2 refuses the write.
    ports = [{"protocol": "UDP", "port": 20000 + i} for i in range(70)]
    w.networking("coredns-udp", [{"from": [VPC], "ports": ports}])

    report = w.controller.reconcile()

    message = report.failures["kube-system/coredns-udp"]
    assert message.startswith(f"failed to reconcile {w.sg}: RulesPerSecurityGroupLimitExceeded")
    # The group's reconcile failed for every binding that writes to it (coredns-tcp does too).
    assert report.failures["kube-system/coredns-tcp"] == message
    [event] = w.events("coredns-udp")
    assert event.reason == "FailedNetworkReconcile" and "RulesPerSecurityGroupLimitExceeded" in event.message
    # (moto keeps the rules up to the limit where EC2 would keep none: not asserted either way.)
    assert len(w.labelled()) < 70


def test_with_the_tag_flag_the_group_must_also_carry_those_tags(w):
    both = w.new_group("nodes-extra", {"kubernetes.io/cluster/demo": "owned", "team": "dns"})
    for eni in w.node_enis():
        w.ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=[w.sg, both])
    w.networking("coredns-udp", [{"from": [VPC], "ports": [{"protocol": "UDP", "port": 53}]}])
    # Two groups carry the cluster tag: without the flag the controller cannot choose.
    assert (
        "expected exactly one securityGroup" in w.controller.reconcile().failures["kube-system/coredns-udp"]
    )

    flagged = EmulatedController(
        kube_url=w.kube.url,
        aws_endpoint=w.controller.ec2.meta.endpoint_url,
        cluster="demo",
        eni_sg_tags={"team": "dns"},
    )
    report = flagged.reconcile()

    # Every binding now writes to the group with the flag's tags (coredns-tcp's TCP 53 too: the
    # unlabelled TCP 53 rule is on the other group).
    assert report.failures == {}
    assert w.labelled(both) == {("udp", 53, 53, "10.0.0.0/16"), ("tcp", 53, 53, "10.0.0.0/16")}
    assert w.labelled() == set()
