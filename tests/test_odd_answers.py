"""Odd answers must not delete anything (issue 15 item 4).

A Kubernetes API (or a proxy in front of it) that answers 200 with something that is not a list,
and an AWS endpoint whose 200 lacks the documented list, used to read as "no objects": the poll
succeeded and deleted every binding with its history. Now the poll fails naming the call and the
field, and the previous state stays. Second guard: an answer that would delete most of a
source's bindings at once waits for a second poll that agrees (the PollRun says why).

The Kubernetes API is pytest-httpserver, read by the official client through the real collector;
AWS is moto for the good state and pytest-httpserver for the odd answers.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from werkzeug import Request, Response

from bindings import models as m
from bindings.collect.errors import SourceError
from bindings.demo.emulators import KubeEmulator, MotoServer, seed_demo_world
from bindings.services import polling
from tests.factories import SCENARIOS

pytestmark = pytest.mark.django_db

TGB_PATH = "/apis/elbv2.k8s.aws/v1beta1/targetgroupbindings"
PATHS = {
    "TargetGroupBinding": TGB_PATH,
    "Service": "/api/v1/services",
    "EndpointSlice": "/apis/discovery.k8s.io/v1/endpointslices",
    "Pod": "/api/v1/pods",
    "Node": "/api/v1/nodes",
    "Event": "/api/v1/events",
}


def _objects(bindings: int) -> list[dict[str, Any]]:
    """The dns-udp-blocked cluster, its UDP binding cloned until there are `bindings` of them."""
    [document] = yaml.safe_load_all((SCENARIOS / "dns-udp-blocked" / "kubernetes.yaml").read_text())
    items = document["items"]
    others = [o for o in items if o["kind"] != "TargetGroupBinding"]
    tgbs = [o for o in items if o["kind"] == "TargetGroupBinding"]
    while len(tgbs) < bindings:
        clone = copy.deepcopy(tgbs[0])
        clone["metadata"]["name"] = f"coredns-udp-{len(tgbs)}"
        clone["metadata"]["uid"] = f"uid-tgb-coredns-udp-{len(tgbs)}"
        tgbs.append(clone)
    return others + tgbs


class KubeApi:
    """A Kubernetes API on pytest-httpserver: `objects` as list answers, or `odd[path]` instead."""

    def __init__(self, httpserver: Any) -> None:
        self.objects: list[dict[str, Any]] = []
        self.odd: dict[str, tuple[int, str]] = {}
        for kind, path in PATHS.items():
            httpserver.expect_request(path, method="GET").respond_with_handler(self._handler(kind, path))
        self.url = httpserver.url_for("").rstrip("/")

    def _handler(self, kind: str, path: str) -> Callable[[Request], Response]:
        def answer(request: Request) -> Response:
            if path in self.odd:
                status, body = self.odd[path]
                return Response(body, status=status, content_type="application/json")
            items = [o for o in self.objects if o["kind"] == kind]
            body = {
                "apiVersion": "v1",
                "kind": f"{kind}List",
                "metadata": {"resourceVersion": "1"},
                "items": items,
            }
            return Response(json.dumps(body), content_type="application/json")

        return answer


@pytest.fixture
def kube_api(httpserver) -> KubeApi:
    return KubeApi(httpserver)


@pytest.fixture
def cluster(kube_api: KubeApi) -> m.Cluster:
    return m.Cluster.objects.create(name="demo", connection=m.Cluster.Connection.URL, api_url=kube_api.url)


def _state(cluster: m.Cluster) -> dict[str, tuple[int, int, str | None]]:
    """Per binding: history samples, transitions and worst verdict: what must survive."""
    return {
        b.uid: (
            b.history.count(),
            b.transitions.count(),
            getattr(getattr(b, "result", None), "worst_verdict", None),
        )
        for b in m.TargetGroupBinding.objects.filter(cluster=cluster).select_related("result")
    }


def _poll(cluster: m.Cluster) -> m.PollRun:
    # A failure is recorded on the run; the caller (Celery) decides on retries.
    with contextlib.suppress(SourceError):
        polling.cluster_poll(cluster=cluster, trigger="test")
    return m.PollRun.objects.filter(cluster=cluster).latest("started_at")


STATUS = {
    "apiVersion": "v1",
    "kind": "Status",
    "status": "Failure",
    "message": "the server is currently unable to handle the request",
    "reason": "ServiceUnavailable",
    "code": 503,
}
ODD_KUBE_ANSWERS = [
    # (resource path, body, text the error must name)
    pytest.param(TGB_PATH, STATUS, "kind 'Status'", id="tgbs-status-object"),
    pytest.param(TGB_PATH, {"error": "upstream connect error"}, "no kind", id="tgbs-proxy-json-page"),
    pytest.param(TGB_PATH, {}, "no kind", id="tgbs-empty-object"),
    pytest.param(
        TGB_PATH, {"kind": "TargetGroupBindingList"}, "field items is missing", id="tgbs-list-without-items"
    ),
    pytest.param(
        TGB_PATH,
        {"kind": "TargetGroupBindingList", "items": None},
        "items is a NoneType",
        id="tgbs-items-null",
    ),
    pytest.param(
        TGB_PATH, {"kind": "TargetGroupBindingList", "items": {}}, "items is a dict", id="tgbs-items-object"
    ),
    pytest.param(
        TGB_PATH, {"kind": "TargetGroupBindingList", "items": [1]}, "items[0] is a int", id="tgbs-item-number"
    ),
    pytest.param(TGB_PATH, [], "a JSON list, not a list object", id="tgbs-bare-array"),
    pytest.param("/api/v1/pods", STATUS, "listing pods with kind 'Status'", id="pods-status-object"),
    pytest.param(
        "/api/v1/services",
        {"kind": "ServiceList", "items": "none"},
        "listing services",
        id="services-items-text",
    ),
    pytest.param(
        "/apis/discovery.k8s.io/v1/endpointslices",
        {"kind": "EndpointSliceList", "items": [], "metadata": {"continue": 7}},
        "metadata.continue is not text",
        id="endpointslices-bad-continue",
    ),
]


@pytest.mark.parametrize(("path", "body", "named"), ODD_KUBE_ANSWERS)
def test_an_odd_kubernetes_answer_fails_the_poll_and_keeps_every_binding(
    kube_api, cluster, path, body, named
):
    kube_api.objects = _objects(3)
    assert _poll(cluster).status == m.PollRun.Status.SUCCESS
    _poll(cluster)  # a second sample of history
    before = _state(cluster)
    assert len(before) == 3 and all(samples for samples, _, _ in before.values())

    kube_api.odd[path] = (200, json.dumps(body))
    run = _poll(cluster)

    assert run.status == m.PollRun.Status.FAILED
    assert named in run.error and "Kubernetes API" in run.error, run.error
    cluster.refresh_from_db()
    assert named in cluster.last_error
    after = _state(cluster)
    assert set(after) == set(before)  # nothing deleted
    for uid, (samples, transitions, verdict) in before.items():
        assert after[uid][0] >= samples and after[uid][1] >= transitions and after[uid][2] == verdict


def test_a_non_json_answer_still_fails_the_poll(kube_api, cluster):
    kube_api.objects = _objects(2)
    _poll(cluster)
    kube_api.odd[TGB_PATH] = (200, "<html>Bad gateway</html>")
    run = _poll(cluster)
    assert run.status == m.PollRun.Status.FAILED and "non-JSON" in run.error
    assert m.TargetGroupBinding.objects.filter(cluster=cluster).count() == 2


# --- the second guard: most of a source's bindings at once ------------------------------------------


def test_a_mass_deletion_waits_for_a_second_poll_that_agrees(kube_api, cluster):
    kube_api.objects = _objects(10)
    _poll(cluster)
    before = _state(cluster)
    assert len(before) == 10

    # A valid answer that lost 8 of 10 bindings (a half-restored API, the wrong cluster behind
    # a load balancer): the poll waits and says why.
    kube_api.objects = [o for o in _objects(10) if not o["metadata"]["name"].startswith("coredns-udp-")]
    held = _poll(cluster)
    assert held.status == m.PollRun.Status.HELD
    assert "would delete 8 of the 10 TargetGroupBindings" in held.note and "next poll" in held.note
    assert held.rows_written == 0
    assert set(_state(cluster)) == set(before)
    cluster.refresh_from_db()
    assert cluster.last_error == "" and cluster.last_success_at < held.started_at

    # The next poll gets the same answer: it agrees, the 8 go.
    agreed = _poll(cluster)
    assert agreed.status == m.PollRun.Status.SUCCESS, agreed.note
    assert m.TargetGroupBinding.objects.filter(cluster=cluster).count() == 2


def test_a_mass_deletion_the_next_poll_contradicts_deletes_nothing(kube_api, cluster):
    kube_api.objects = _objects(10)
    _poll(cluster)
    before = _state(cluster)

    kube_api.objects = [o for o in _objects(10) if o["kind"] != "TargetGroupBinding"]
    assert _poll(cluster).status == m.PollRun.Status.HELD

    kube_api.objects = _objects(10)  # the API is whole again
    assert _poll(cluster).status == m.PollRun.Status.SUCCESS
    assert set(_state(cluster)) == set(before)

    # The held deletions were forgotten: the same odd answer later waits again.
    kube_api.objects = [o for o in _objects(10) if o["kind"] != "TargetGroupBinding"]
    assert _poll(cluster).status == m.PollRun.Status.HELD
    assert set(_state(cluster)) == set(before)


def test_deletions_below_the_thresholds_go_through_at_once(kube_api, cluster, settings):
    kube_api.objects = _objects(10)
    _poll(cluster)
    # Half of them is not "most" (BH_MASS_DELETE_FRACTION 0.5 means more than half).
    kube_api.objects = [o for o in _objects(10) if o["metadata"].get("name", "")[-1:] not in "56789"]
    assert _poll(cluster).status == m.PollRun.Status.SUCCESS
    assert m.TargetGroupBinding.objects.filter(cluster=cluster).count() == 5
    # All of a small cluster's bindings: not more than BH_MASS_DELETE_MIN.
    kube_api.objects = [o for o in _objects(10) if o["kind"] != "TargetGroupBinding"]
    assert _poll(cluster).status == m.PollRun.Status.SUCCESS
    assert not m.TargetGroupBinding.objects.filter(cluster=cluster).exists()


def test_the_thresholds_are_settings(kube_api, cluster, settings):
    settings.BH_MASS_DELETE_FRACTION = 0.2
    settings.BH_MASS_DELETE_MIN = 1
    kube_api.objects = _objects(10)
    _poll(cluster)
    kube_api.objects = [o for o in _objects(10) if o["metadata"].get("name", "")[-1:] not in "789"]
    run = _poll(cluster)
    assert run.status == m.PollRun.Status.HELD and "3 of the 10" in run.note
    assert m.TargetGroupBinding.objects.filter(cluster=cluster).count() == 10


def test_a_held_poll_is_shown_with_its_reason(kube_api, cluster, client, alice):
    kube_api.objects = _objects(10)
    _poll(cluster)
    kube_api.objects = [o for o in _objects(10) if o["kind"] != "TargetGroupBinding"]
    run = _poll(cluster)
    client.force_login(alice)
    page = client.get(f"/clusters/{cluster.pk}/").content.decode()
    assert "held" in page and "would delete 10 of the 10 TargetGroupBindings" in page
    api = client.get("/api/v1/polls", {"status": "held"})
    assert api.status_code == 200, api.content
    [item] = [i for i in api.json()["items"] if i["id"] == run.pk]
    assert item["status"] == "held" and "would delete" in item["note"]


# --- AWS -------------------------------------------------------------------------------------------


@pytest.fixture
def aws_world():
    """The demo world in moto and the Kubernetes emulator, polled once: two target groups.
    Function-scoped: moto's state is process-global and one test deletes from it."""
    with MotoServer() as moto, KubeEmulator() as kube:
        world = seed_demo_world(aws_endpoint=moto.url, kube=kube)
        account = m.AwsAccount.objects.create(
            name="demo-account", account_id=world.account_id, region=world.region, endpoint_url=moto.url
        )
        cluster = m.Cluster.objects.create(
            name="demo", connection=m.Cluster.Connection.URL, api_url=kube.url, aws_account=account
        )
        polling.cluster_poll(cluster=cluster, trigger="test")
        run = polling.account_poll(account=account, trigger="test")
        assert run.status == m.PollRun.Status.SUCCESS
        assert m.TargetGroup.objects.filter(account=account).count() == 2
        yield account, cluster, world


def _elb_xml(operation: str, result: str) -> str:
    return (
        f'<{operation}Response xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/">'
        f"<{operation}Result>{result}</{operation}Result>"
        f"<ResponseMetadata><RequestId>odd</RequestId></ResponseMetadata></{operation}Response>"
    )


def _account_poll(account: m.AwsAccount) -> m.PollRun:
    with contextlib.suppress(SourceError):
        polling.account_poll(account=account, trigger="test")
    return m.PollRun.objects.filter(account=account).latest("started_at")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("odd_operation", "named"),
    [
        ("DescribeTargetGroups", "DescribeTargetGroups: the answer's field TargetGroups is missing"),
        (
            "DescribeTargetHealth",
            "DescribeTargetHealth: the answer's field TargetHealthDescriptions is missing",
        ),
        ("DescribeLoadBalancers", "DescribeLoadBalancers: the answer's field LoadBalancers is missing"),
    ],
)
def test_an_aws_answer_without_its_documented_list_fails_the_poll(
    aws_world, httpserver, monkeypatch, odd_operation, named
):
    """A local endpoint answers the ELB calls: the real ones up to `odd_operation`, which gets a
    well-formed 200 whose result lacks the documented list (botocore reads that as no key)."""
    account, cluster, world = aws_world
    tgs = m.TargetGroup.objects.filter(account=account)
    arns = sorted(tgs.values_list("arn", flat=True))
    lb_arn = world.load_balancer_arn
    members = "".join(
        f"<member><TargetGroupArn>{a}</TargetGroupArn><TargetGroupName>tg{i}</TargetGroupName>"
        f"<Protocol>UDP</Protocol><Port>53</Port><TargetType>ip</TargetType><VpcId>{world.vpc_id}</VpcId>"
        f"<LoadBalancerArns><member>{lb_arn}</member></LoadBalancerArns></member>"
        for i, a in enumerate(arns)
    )
    good = {
        "DescribeTargetGroups": f"<TargetGroups>{members}</TargetGroups>",
        "DescribeTargetHealth": "<TargetHealthDescriptions></TargetHealthDescriptions>",
        "DescribeTargetGroupAttributes": "<Attributes></Attributes>",
    }

    def answer(request: Request) -> Response:
        operation = request.form.get("Action", "")
        result = "" if operation == odd_operation else good.get(operation, "")
        return Response(_elb_xml(operation, result), content_type="text/xml")

    httpserver.expect_request("/", method="POST").respond_with_handler(answer)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    m.AwsAccount.objects.filter(pk=account.pk).update(endpoint_url=httpserver.url_for("").rstrip("/"))
    account.refresh_from_db()
    before = set(tgs.values_list("arn", flat=True))
    bindings = _state(cluster)

    run = _account_poll(account)

    assert run.status == m.PollRun.Status.FAILED
    assert named in run.error, run.error
    assert set(m.TargetGroup.objects.filter(account=account).values_list("arn", flat=True)) == before
    assert _state(cluster).keys() == bindings.keys()


@pytest.mark.slow
def test_an_aws_error_page_with_200_fails_the_poll(aws_world, httpserver, monkeypatch):
    account, _cluster, _world = aws_world
    httpserver.expect_request("/", method="POST").respond_with_data(
        '{"message": "proxy says no"}', status=200
    )
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    m.AwsAccount.objects.filter(pk=account.pk).update(endpoint_url=httpserver.url_for("").rstrip("/"))
    account.refresh_from_db()
    run = _account_poll(account)
    assert run.status == m.PollRun.Status.FAILED, run.error
    assert "DescribeTargetGroups: the answer is not an AWS response" in run.error, run.error
    assert m.TargetGroup.objects.filter(account=account).count() == 2


@pytest.mark.slow
def test_target_groups_that_all_vanish_wait_for_a_second_poll(aws_world, settings):
    """Valid answers (moto) in which every target group is gone: the account poll waits once."""
    import boto3

    account, cluster, world = aws_world
    settings.BH_MASS_DELETE_MIN = 1
    elbv2 = boto3.client(
        "elbv2",
        region_name=world.region,
        endpoint_url=account.endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    for listener in world.listener_arns:
        elbv2.delete_listener(ListenerArn=listener)
    for arn in world.target_group_arns.values():
        elbv2.delete_target_group(TargetGroupArn=arn)

    held = _account_poll(account)
    assert held.status == m.PollRun.Status.HELD, held.error
    assert "would delete 2 of the 2 target groups" in held.note
    assert m.TargetGroup.objects.filter(account=account).count() == 2

    agreed = _account_poll(account)
    assert agreed.status == m.PollRun.Status.SUCCESS, agreed.error
    assert not m.TargetGroup.objects.filter(account=account).exists()
