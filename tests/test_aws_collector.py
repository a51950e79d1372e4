"""The AWS collector against moto over HTTP (`ThreadedMotoServer` + ``endpoint_url``).

Throttling and access errors are injected through botocore's event system: a ``before-send``
handler registered on the session returns a canned error response instead of sending the request.
Unlike botocore's Stubber (which short-circuits at ``before-call``, before the retry machinery), this
goes through botocore's real retry handler, so "throttled, retried, then succeeded" and "retries
exhausted" exercise the adaptive-retry configuration the collector sets.
"""

from __future__ import annotations

import json
import logging
import pathlib
import time
from collections import Counter

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.retries import bucket, standard

from bindings.collect import aws
from bindings.collect.aws import AwsTarget, collect_account
from bindings.collect.errors import AwsError, AwsThrottled, AwsUnavailable, TransientSourceError
from bindings.demo.emulators import DEMO_CREDENTIALS, KubeEmulator, MotoServer, seed_demo_world

SAMPLE = pathlib.Path(__file__).parent / "scenarios" / "dns-udp-blocked" / "aws.json"
REGION = "us-east-1"
OPTIONAL_KEYS = {
    "DescribeLoadBalancerAttributes",
    "DescribeInstances",
    "DescribeNetworkAcls",
    "DescribeVpcEndpointServiceConfigurations",
    "GetManagedPrefixListEntries",
}


@pytest.fixture(scope="module")
def moto_server():
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with MotoServer() as server:
        yield server


@pytest.fixture(scope="module")
def world(moto_server):
    """The demo world, seeded once: tests only add resources with their own names."""
    with KubeEmulator() as kube:
        yield seed_demo_world(aws_endpoint=moto_server.url, kube=kube, region=REGION)


@pytest.fixture(autouse=True)
def credentials(monkeypatch, tmp_path):
    for key, value in {
        "AWS_ACCESS_KEY_ID": DEMO_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": DEMO_CREDENTIALS["aws_secret_access_key"],
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    aws.clear_session_cache()


@pytest.fixture
def no_backoff(monkeypatch):
    """Retries without sleeping: zero backoff and an always-full adaptive token bucket."""
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)
    monkeypatch.setattr(bucket.TokenBucket, "acquire", lambda self, amount=1, block=True: True)


def target_for(moto_server, **kwargs) -> AwsTarget:
    return AwsTarget(account_id="123456789012", region=REGION, endpoint_url=moto_server.url, **kwargs)


def clients(moto_server):
    session = boto3.session.Session(region_name=REGION, **DEMO_CREDENTIALS)
    return (
        session.client("ec2", endpoint_url=moto_server.url),
        session.client("elbv2", endpoint_url=moto_server.url),
    )


class Counting:
    """A before_call hook that counts HTTP attempts per operation, as the lead's rate limiter does."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def __call__(self, operation: str) -> None:
        self.calls[operation] += 1


class DictCache:
    def __init__(self) -> None:
        self.data: dict = {}
        self.timeouts: dict = {}

    def get(self, key):
        return self.data.get(key)

    def set(self, key, value, timeout=None):
        self.data[key] = value
        self.timeouts[key] = timeout


def inject_errors(monkeypatch, operation: str, code: str, *, times: int, status: int = 400) -> list[int]:
    """Make the next `times` HTTP attempts of `operation` answer an AWS error; returns a hit counter."""
    hits = [0]
    body = (
        f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>injected</Message></Error>"
        "<RequestId>test</RequestId></ErrorResponse>"
    ).encode()

    class Raw:
        def stream(self, **_):
            yield body

    def before_send(request, event_name, **_):
        if event_name.endswith("." + operation) and hits[0] < times:
            hits[0] += 1
            return AWSResponse(request.url, status, {"Content-Type": "text/xml"}, Raw())
        return None

    real = aws._new_session

    def session_with_injection(**kwargs):
        session = real(**kwargs)
        session.events.register("before-send", before_send)
        return session

    monkeypatch.setattr(aws, "_new_session", session_with_injection)
    return hits


# -- shape and content ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_demo_world_is_collected_end_to_end_in_bundle_shape(moto_server, world):
    counting = Counting()

    snapshot = collect_account(
        target_for(moto_server),
        target_group_arns=list(world.target_group_arns.values()),
        node_instance_ids=world.instance_ids,
        before_call=counting,
    )

    sample = json.loads(SAMPLE.read_text())
    responses = snapshot.responses
    assert set(responses) - OPTIONAL_KEYS == set(sample) - OPTIONAL_KEYS
    assert set(responses) == set(aws.AWS_OPERATIONS)
    for key, value in sample.items():
        if key in ("DescribeTargetHealth", "DescribeTargetGroupAttributes", "DescribeLoadBalancerAttributes"):
            assert {k for v in responses[key].values() for k in v} == {k for v in value.values() for k in v}
        else:
            assert set(responses[key]) == set(value), key
    json.dumps(responses)  # datetimes became strings; no SDK objects
    assert "ResponseMetadata" not in json.dumps(responses)

    assert snapshot.missing_target_groups == []
    assert set(responses["DescribeTargetHealth"]) == set(world.target_group_arns.values())
    assert [lb["LoadBalancerArn"] for lb in responses["DescribeLoadBalancers"]["LoadBalancers"]] == [
        world.load_balancer_arn
    ]
    assert len(responses["DescribeListeners"]["Listeners"]) == 2
    # The pod IPs are secondary addresses of the nodes' primary ENIs, found via DescribeInstances.
    enis = responses["DescribeNetworkInterfaces"]["NetworkInterfaces"]
    held = {a["PrivateIpAddress"] for e in enis for a in e["PrivateIpAddresses"]}
    assert set(world.pod_ips) <= held
    (node_sg,) = responses["DescribeSecurityGroups"]["SecurityGroups"]
    assert node_sg["GroupId"] == world.node_security_group_id
    assert {"Key": "kubernetes.io/cluster/demo", "Value": "owned"} in node_sg["Tags"]
    assert {(p["IpProtocol"], p["FromPort"]) for p in node_sg["IpPermissions"]} == {
        ("tcp", 53),
        ("tcp", 10250),
        ("tcp", 9153),  # from the monitoring prefix list
    }
    (monitoring,) = responses["GetManagedPrefixListEntries"].values()
    assert [e["Cidr"] for e in monitoring["Entries"]] == ["10.200.0.0/24"]
    assert {s["SubnetId"] for s in responses["DescribeSubnets"]["Subnets"]} == set(world.subnet_ids)
    assert [v["VpcId"] for v in responses["DescribeVpcs"]["Vpcs"]] == [world.vpc_id]
    assert responses["DescribeNetworkAcls"]["NetworkAcls"]
    assert isinstance(responses["DescribeLoadBalancers"]["LoadBalancers"][0]["CreatedTime"], str)

    # One call per target group for health and attributes; everything else batched into one call.
    assert snapshot.api_calls == {
        "DescribeTargetGroups": 1,
        "DescribeTargetHealth": 2,
        "DescribeTargetGroupAttributes": 2,
        "DescribeLoadBalancers": 1,
        "DescribeLoadBalancerAttributes": 1,
        "DescribeListeners": 1,
        "DescribeInstances": 1,
        "DescribeNetworkInterfaces": 2,  # node ENIs by id + the load balancer's ENIs by description
        "DescribeSecurityGroups": 1,
        "DescribeSubnets": 1,
        "DescribeVpcs": 1,
        "DescribeNetworkAcls": 1,
        "DescribeVpcEndpointServiceConfigurations": 1,  # one paged listing: it cannot filter by LB
        "DescribeManagedPrefixLists": 1,
        "GetManagedPrefixListEntries": 1,
    }
    assert counting.calls == Counter(snapshot.api_calls)


@pytest.mark.slow
def test_target_groups_are_described_twenty_per_call(moto_server, world):
    _, elbv2 = clients(moto_server)
    arns = [
        elbv2.create_target_group(
            Name=f"batch-{i}", Protocol="UDP", Port=53, VpcId=world.vpc_id, TargetType="ip"
        )["TargetGroups"][0]["TargetGroupArn"]
        for i in range(25)
    ]
    counting = Counting()

    snapshot = collect_account(target_for(moto_server), target_group_arns=arns, before_call=counting)

    assert counting.calls["DescribeTargetGroups"] == 2  # 20 + 5
    assert counting.calls["DescribeTargetHealth"] == 25
    assert {tg["TargetGroupArn"] for tg in snapshot.responses["DescribeTargetGroups"]["TargetGroups"]} == set(
        arns
    )


@pytest.mark.slow
def test_missing_target_groups_are_reported_and_the_rest_collected(moto_server, world):
    gone = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/deleted/0123456789abcdef"
    arns = [world.target_group_arns["udp"], gone, world.target_group_arns["tcp"]]

    snapshot = collect_account(
        target_for(moto_server), target_group_arns=arns, target_group_names=["no-such-name", "k8s-dns-udp"]
    )

    assert snapshot.missing_target_groups == [gone, "no-such-name"]
    found = {tg["TargetGroupArn"] for tg in snapshot.responses["DescribeTargetGroups"]["TargetGroups"]}
    assert found == set(world.target_group_arns.values())
    assert gone not in snapshot.responses["DescribeTargetHealth"]


@pytest.mark.slow
def test_many_instances_and_enis_are_paged_and_chunked(moto_server, world):
    ec2, elbv2 = clients(moto_server)
    subnet = ec2.create_subnet(VpcId=world.vpc_id, CidrBlock="10.0.8.0/21")["Subnet"]["SubnetId"]
    sgs = [
        ec2.create_security_group(GroupName=f"pods-{i}", Description="pods", VpcId=world.vpc_id)["GroupId"]
        for i in range(3)
    ]
    # 210 Fargate-style pods: each IP is the primary address of its own ENI, so the collector must
    # search by address filter, 199 values per call.
    ips = [f"10.0.{8 + i // 200}.{10 + i % 200}" for i in range(210)]
    for i, ip in enumerate(ips):
        ec2.create_network_interface(SubnetId=subnet, PrivateIpAddress=ip, Groups=[sgs[i % 3]])
    tg_arn = elbv2.create_target_group(
        Name="many-pods", Protocol="UDP", Port=53, VpcId=world.vpc_id, TargetType="ip"
    )["TargetGroups"][0]["TargetGroupArn"]
    elbv2.register_targets(TargetGroupArn=tg_arn, Targets=[{"Id": ip, "Port": 53} for ip in ips])
    # 101 nodes, one reservation each: moto pages DescribeInstances at 100 reservations.
    node_ids = [
        ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=subnet)["Instances"][0][
            "InstanceId"
        ]
        for _ in range(101)
    ]
    counting = Counting()

    snapshot = collect_account(
        target_for(moto_server), target_group_arns=[tg_arn], node_instance_ids=node_ids, before_call=counting
    )

    responses = snapshot.responses
    instances = [i for r in responses["DescribeInstances"]["Reservations"] for i in r["Instances"]]
    assert len(instances) == 101
    assert counting.calls["DescribeInstances"] == 2  # one paginated call, two pages
    enis = responses["DescribeNetworkInterfaces"]["NetworkInterfaces"]
    assert {e["PrivateIpAddress"] for e in enis} >= set(ips)
    assert counting.calls["DescribeNetworkInterfaces"] == 2  # 199 + 11 addresses; no LB for this TG
    assert {g["GroupId"] for g in responses["DescribeSecurityGroups"]["SecurityGroups"]} >= set(sgs)


@pytest.mark.slow
def test_attributes_come_from_the_cache_on_the_second_collect(moto_server, world):
    cache = DictCache()
    arns = list(world.target_group_arns.values())

    first = collect_account(target_for(moto_server), target_group_arns=arns, cache=cache, attribute_ttl=123)
    second = collect_account(target_for(moto_server), target_group_arns=arns, cache=cache, attribute_ttl=123)

    assert first.api_calls["DescribeTargetGroupAttributes"] == 2
    assert first.api_calls["DescribeLoadBalancerAttributes"] == 1
    assert "DescribeTargetGroupAttributes" not in second.api_calls
    assert "DescribeLoadBalancerAttributes" not in second.api_calls
    assert second.responses == first.responses
    assert set(cache.timeouts.values()) == {123}
    assert second.api_calls["DescribeTargetHealth"] == 2  # health is never cached


@pytest.mark.slow
def test_assume_role_with_external_id_and_session_reuse(moto_server, world, monkeypatch):
    seen: list[dict] = []
    real = aws._new_session

    def recording_session(**kwargs):
        session = real(**kwargs)
        session.events.register(
            "before-parameter-build.sts.AssumeRole", lambda params, **_: seen.append(dict(params))
        )
        return session

    monkeypatch.setattr(aws, "_new_session", recording_session)
    target = target_for(
        moto_server, role_arn="arn:aws:iam::123456789012:role/binding-health-reader", external_id="ext-42"
    )
    arns = [world.target_group_arns["udp"]]

    first = collect_account(target, target_group_arns=arns)
    second = collect_account(target, target_group_arns=arns)

    assert first.api_calls["AssumeRole"] == 1
    assert "AssumeRole" not in second.api_calls  # session cached until shortly before expiry
    assert seen == [
        {
            "RoleArn": "arn:aws:iam::123456789012:role/binding-health-reader",
            "RoleSessionName": "binding-health",
            "ExternalId": "ext-42",
        }
    ]
    (session, _expiry) = next(iter(aws._assumed_sessions.values()))
    assert session.get_credentials().access_key != DEMO_CREDENTIALS["aws_access_key_id"]
    assert first.responses["DescribeTargetGroups"]["TargetGroups"][0]["TargetGroupArn"] == arns[0]


# -- errors ---------------------------------------------------------------------------------------
@pytest.mark.slow
def test_throttling_is_retried_then_succeeds(moto_server, world, monkeypatch, no_backoff):
    hits = inject_errors(monkeypatch, "DescribeTargetHealth", "Throttling", times=2)
    counting = Counting()

    snapshot = collect_account(
        target_for(moto_server, max_attempts=4),
        target_group_arns=[world.target_group_arns["udp"]],
        before_call=counting,
    )

    assert hits[0] == 2
    assert counting.calls["DescribeTargetHealth"] == 3  # before_call sees every HTTP attempt
    assert snapshot.api_calls["DescribeTargetHealth"] == 1  # api_calls counts logical calls
    assert snapshot.responses["DescribeTargetHealth"][world.target_group_arns["udp"]][
        "TargetHealthDescriptions"
    ]


@pytest.mark.slow
def test_throttling_exhausted_raises_aws_throttled(moto_server, world, monkeypatch, no_backoff):
    inject_errors(monkeypatch, "DescribeTargetGroups", "ThrottlingException", times=100)

    with pytest.raises(AwsThrottled, match="DescribeTargetGroups") as caught:
        collect_account(
            target_for(moto_server, max_attempts=3), target_group_arns=[world.target_group_arns["udp"]]
        )

    assert isinstance(caught.value, TransientSourceError)
    assert caught.value.operation == "DescribeTargetGroups"
    assert caught.value.code == "ThrottlingException"


@pytest.mark.slow
def test_access_denied_is_a_permanent_error_naming_the_operation(moto_server, world, monkeypatch):
    inject_errors(monkeypatch, "DescribeSecurityGroups", "UnauthorizedOperation", times=100, status=403)

    with pytest.raises(AwsError, match="DescribeSecurityGroups: UnauthorizedOperation") as caught:
        collect_account(
            target_for(moto_server),
            target_group_arns=list(world.target_group_arns.values()),
            node_instance_ids=world.instance_ids,
        )

    assert not isinstance(caught.value, TransientSourceError)


@pytest.mark.slow
def test_server_errors_are_transient(moto_server, world, monkeypatch, no_backoff):
    inject_errors(monkeypatch, "DescribeTargetGroups", "ServiceUnavailable", times=100, status=503)

    with pytest.raises(AwsUnavailable, match="DescribeTargetGroups"):
        collect_account(
            target_for(moto_server, max_attempts=2), target_group_arns=[world.target_group_arns["udp"]]
        )


def test_unreachable_endpoint_fails_fast_as_unavailable():
    target = AwsTarget(
        account_id="123456789012",
        region=REGION,
        endpoint_url="http://127.0.0.1:9",
        max_attempts=1,
        connect_timeout=1,
        read_timeout=1,
    )
    started = time.monotonic()

    with pytest.raises(AwsUnavailable, match="DescribeTargetGroups"):
        collect_account(
            target, target_group_arns=["arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/x/1"]
        )

    assert time.monotonic() - started < 5


# -- PrivateLink (issue 19) -------------------------------------------------------------------------
@pytest.mark.slow
def test_endpoint_services_in_front_of_collected_load_balancers_are_kept(moto_server, world):
    ec2, elbv2 = clients(moto_server)
    tg_arns = list(world.target_group_arns.values())
    lb_arn = elbv2.describe_target_groups(TargetGroupArns=tg_arns[:1])["TargetGroups"][0]["LoadBalancerArns"][
        0
    ]
    other = elbv2.create_load_balancer(
        Name="lbf-unrelated", Type="network", Scheme="internal", Subnets=world.subnet_ids[:1]
    )["LoadBalancers"][0]["LoadBalancerArn"]
    mine = ec2.create_vpc_endpoint_service_configuration(NetworkLoadBalancerArns=[lb_arn])
    theirs = ec2.create_vpc_endpoint_service_configuration(NetworkLoadBalancerArns=[other])
    try:
        snapshot = collect_account(target_for(moto_server), target_group_arns=tg_arns)
        configurations = snapshot.responses["DescribeVpcEndpointServiceConfigurations"][
            "ServiceConfigurations"
        ]
        # Only the service in front of a collected load balancer, as the AWS CLI prints it.
        assert [c["ServiceId"] for c in configurations] == [mine["ServiceConfiguration"]["ServiceId"]]
        assert configurations[0]["NetworkLoadBalancerArns"] == [lb_arn]
        from bindings.analysis.normalize import normalize_aws

        records = normalize_aws(snapshot.responses)
        assert records.load_balancers[lb_arn].endpoint_services == (
            mine["ServiceConfiguration"]["ServiceId"],
        )
    finally:
        ec2.delete_vpc_endpoint_service_configurations(
            ServiceIds=[
                mine["ServiceConfiguration"]["ServiceId"],
                theirs["ServiceConfiguration"]["ServiceId"],
            ]
        )
        elbv2.delete_load_balancer(LoadBalancerArn=other)


@pytest.mark.slow
def test_endpoint_services_denied_leaves_the_key_out_and_the_poll_goes_on(moto_server, world, monkeypatch):
    # EC2 answers errors in its own XML shape (Response/Errors/Error), which botocore's EC2 parser reads.
    body = (
        b"<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>You are not authorized"
        b"</Message></Error></Errors><RequestID>test</RequestID></Response>"
    )

    class Raw:
        def stream(self, **_):
            yield body

    def before_send(request, event_name, **_):
        if event_name.endswith(".DescribeVpcEndpointServiceConfigurations"):
            return AWSResponse(request.url, 403, {"Content-Type": "text/xml"}, Raw())
        return None

    real = aws._new_session

    def session_with_denial(**kwargs):
        session = real(**kwargs)
        session.events.register("before-send", before_send)
        return session

    monkeypatch.setattr(aws, "_new_session", session_with_denial)
    aws.clear_session_cache()
    snapshot = collect_account(
        target_for(moto_server), target_group_arns=list(world.target_group_arns.values())
    )
    assert "DescribeVpcEndpointServiceConfigurations" not in snapshot.responses
    assert snapshot.responses["DescribeLoadBalancers"]["LoadBalancers"]
    from bindings.analysis.normalize import normalize_aws

    assert all(
        lb.endpoint_services is None for lb in normalize_aws(snapshot.responses).load_balancers.values()
    )


def test_quic_server_ids_and_privatelink_enforcement_are_read_as_the_cli_prints_them() -> None:
    from bindings.analysis.normalize import normalize_aws

    lb_arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/q/1"
    tg_arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/q/2"
    records = normalize_aws(
        {
            "DescribeLoadBalancers": {
                "LoadBalancers": [
                    {
                        "LoadBalancerArn": lb_arn,
                        "Type": "network",
                        "EnforceSecurityGroupInboundRulesOnPrivateLinkTraffic": "off",
                    }
                ]
            },
            "DescribeTargetHealth": {
                tg_arn: {
                    "TargetHealthDescriptions": [
                        {
                            "Target": {"Id": "10.0.1.15", "Port": 443, "QuicServerId": "0x0123456789abcdef"},
                            "TargetHealth": {"State": "healthy"},
                        }
                    ]
                }
            },
        }
    )
    assert records.load_balancers[lb_arn].privatelink_enforce_inbound == "off"
    assert records.load_balancers[lb_arn].endpoint_services is None  # not collected: unknown
    assert records.target_health[tg_arn][0].quic_server_id == "0x0123456789abcdef"


# -- managed prefix lists ----------------------------------------------------------------------------


@pytest.mark.slow
def test_prefix_lists_named_by_rules_are_collected_once_per_version(moto_server, world):
    """Entries of every list a rule names, in the bundle shape; cached per (id, version): an unchanged
    list costs only the batched DescribeManagedPrefixLists, a changed one is fetched again."""
    ec2, _ = clients(moto_server)
    created = ec2.create_managed_prefix_list(
        PrefixListName="corp-ranges",
        AddressFamily="IPv4",
        MaxEntries=5,
        Entries=[{"Cidr": "192.168.0.0/16", "Description": "office"}],
    )["PrefixList"]
    list_id = created["PrefixListId"]
    group = ec2.create_security_group(GroupName="pl-users", Description="pl", VpcId=world.vpc_id)["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[
            {"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "PrefixListIds": [{"PrefixListId": list_id}]}
        ],
    )
    # The group sits on a node ENI, so the collector describes it.
    eni = ec2.describe_network_interfaces(
        Filters=[{"Name": "group-id", "Values": [world.node_security_group_id]}]
    )["NetworkInterfaces"][0]
    groups = [g["GroupId"] for g in eni["Groups"]]
    ec2.modify_network_interface_attribute(
        NetworkInterfaceId=eni["NetworkInterfaceId"], Groups=[*groups, group]
    )
    try:
        cache = DictCache()
        arns = list(world.target_group_arns.values())
        first = collect_account(
            target_for(moto_server), target_group_arns=arns, node_instance_ids=world.instance_ids, cache=cache
        )
        entries = first.responses["GetManagedPrefixListEntries"][list_id]["Entries"]
        assert [e["Cidr"] for e in entries] == ["192.168.0.0/16"]
        assert first.api_calls["GetManagedPrefixListEntries"] == 2  # this list and the demo's own
        assert first.api_calls["DescribeManagedPrefixLists"] == 1

        second = collect_account(
            target_for(moto_server), target_group_arns=arns, node_instance_ids=world.instance_ids, cache=cache
        )
        assert "GetManagedPrefixListEntries" not in second.api_calls
        assert (
            second.responses["GetManagedPrefixListEntries"] == first.responses["GetManagedPrefixListEntries"]
        )

        ec2.modify_managed_prefix_list(
            PrefixListId=list_id, CurrentVersion=created["Version"], AddEntries=[{"Cidr": "172.16.0.0/12"}]
        )
        third = collect_account(
            target_for(moto_server), target_group_arns=arns, node_instance_ids=world.instance_ids, cache=cache
        )
        cidrs = {e["Cidr"] for e in third.responses["GetManagedPrefixListEntries"][list_id]["Entries"]}
        assert cidrs == {"192.168.0.0/16", "172.16.0.0/12"}
        assert third.api_calls["GetManagedPrefixListEntries"] == 1
    finally:
        ec2.modify_network_interface_attribute(NetworkInterfaceId=eni["NetworkInterfaceId"], Groups=groups)
