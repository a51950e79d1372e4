"""One parser for the pod annotation `vpc.amazonaws.com/pod-eni` (security groups for pods).

The engine (which ENI holds a pod IP) and the poller (which branch ENIs to describe) both read it
through `normalize.pod_eni_entries`. The value shapes are the ones the VPC resource controller
writes (a JSON list of {"eniId", "ifAddress", "privateIp", "ipv6Addr", "vlanId", "subnetCidr",
"subnetV6Cidr"}, amazon-vpc-resource-controller-k8s branch ENI details; the VPC CNI reads the same
keys, spelling the VLAN "vlanID"), plus a bare ENI id written by hand.
"""

from __future__ import annotations

import json

import pytest

from bindings import models as dbm
from bindings.analysis import model as m
from bindings.analysis.engine import analyze
from bindings.analysis.normalize import pod_eni_entries
from bindings.services.polling import account_references
from tests.factories import POD_IPS, VPC, dns_inventory, rule

BRANCH = "eni-0branch00000000001"
OTHER = "eni-0branch00000000002"
POD_SG = "sg-0pods000000000001"

RESOURCE_CONTROLLER = json.dumps(
    [
        {
            "eniId": BRANCH,
            "ifAddress": "02:7a:1b:2c:3d:4e",
            "privateIp": POD_IPS[0],
            "vlanId": 1,
            "subnetCidr": "10.0.1.0/24",
        }
    ]
)
DUAL_STACK = json.dumps(
    [
        {
            "eniId": OTHER,
            "ifAddress": "02:7a:1b:2c:3d:4f",
            "privateIp": "10.0.1.99",
            "ipv6Addr": "2600:1f18:1234:5601::99",
            "vlanId": 2,
            "subnetCidr": "10.0.1.0/24",
            "subnetV6Cidr": "2600:1f18:1234:5601::/64",
        },
        {
            "eniId": BRANCH,
            "ifAddress": "02:7a:1b:2c:3d:4e",
            "privateIp": POD_IPS[0],
            "ipv6Addr": "2600:1f18:1234:5601::15",
            "vlanID": 1,
            "subnetCidr": "10.0.1.0/24",
            "subnetV6Cidr": "2600:1f18:1234:5601::/64",
        },
    ]
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (RESOURCE_CONTROLLER, [(BRANCH, (POD_IPS[0],))]),
        (
            DUAL_STACK,
            [
                (OTHER, ("10.0.1.99", "2600:1f18:1234:5601::99")),
                (BRANCH, (POD_IPS[0], "2600:1f18:1234:5601::15")),
            ],
        ),
        (json.dumps({"eniId": BRANCH, "privateIp": POD_IPS[0]}), [(BRANCH, (POD_IPS[0],))]),
        (BRANCH, [(BRANCH, ())]),
        (f"  {BRANCH}\n", [(BRANCH, ())]),
        (json.dumps([{"eniId": BRANCH}, "junk", {"privateIp": "10.0.0.1"}]), [(BRANCH, ())]),
    ],
    ids=["resource-controller", "dual-stack-two-enis", "single-object", "bare-id", "bare-id-spaced", "junk"],
)
def test_the_shapes_the_vpc_cni_writes_are_read(value, expected):
    assert pod_eni_entries(value) == expected


@pytest.mark.parametrize(
    "value",
    ["{", "[]", "{}", '[{"ifAddress": "02:00"}]', "eni-", "eni-0;rm -rf", "x" * 200_000, None, 42, "null"],
)
def test_values_without_an_eni_id_are_malformed(value):
    assert pod_eni_entries(value) is None


def _with_branch(annotation: str) -> m.Inventory:
    """Node groups admit no UDP; the pod's own branch ENI (its group) admits everything."""
    inv = dns_inventory(rules=(rule("tcp", 53),))
    pod = inv.pods["kube-system/coredns-0"]
    pod.pod_eni = annotation
    inv.security_groups[POD_SG] = m.SecurityGroup(
        POD_SG, "pods", VPC, {"kubernetes.io/cluster/demo": "owned"}, (rule("-1", None, "0.0.0.0/0"),)
    )
    inv.network_interfaces[BRANCH] = m.NetworkInterface(
        BRANCH, "branch", "", "subnet-a", VPC, "us-east-1a", (POD_IPS[0],), security_group_ids=(POD_SG,)
    )
    return inv


@pytest.mark.parametrize("annotation", [RESOURCE_CONTROLLER, DUAL_STACK, BRANCH])
def test_the_engine_judges_the_pod_on_its_branch_eni_for_every_shape(annotation):
    (result,) = analyze(_with_branch(annotation))
    (udp,) = result.protocols
    by_target = {t.target_id: t for t in udp.targets}
    assert by_target[POD_IPS[0]].network_interface_id == BRANCH
    assert by_target[POD_IPS[0]].admitted is True
    assert by_target[POD_IPS[1]].admitted is False  # the other pod stays on the node's groups


@pytest.mark.django_db
def test_the_poller_describes_the_branch_enis_of_every_shape(cluster, aws_account):
    for i, value in enumerate([RESOURCE_CONTROLLER, DUAL_STACK, "eni-0handwritten0000001", "{"]):
        dbm.KubePod.objects.create(
            cluster=cluster, uid=f"uid-{i}", namespace="n", name=f"p{i}", pod_eni=value
        )

    refs = account_references(aws_account)

    # The bare id is described too (it used to be dropped by the poller's own parser).
    assert refs["pod_eni_ids"] == sorted({BRANCH, OTHER, "eni-0handwritten0000001"})
