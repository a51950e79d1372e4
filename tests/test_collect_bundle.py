"""scripts/collect-bundle.sh with the real kubectl and the real AWS CLI against the emulators.

The Kubernetes emulator and moto serve the demo world plus the cases a first-time user meets:
a binding whose target group was deleted, one with a misspelled `targetGroupName`, one bound by a
correct name, one whose target group vanishes mid-run, and a security-group rule naming a managed
prefix list. `analyze` of the collected bundle must agree with the dashboard's poll of that world.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tarfile
import time
import urllib.request
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from bindings import models as m
from bindings.analysis.bundle import load_bundle
from bindings.demo.emulators import (
    CollectionCases,
    DemoWorld,
    KubeEmulator,
    MotoServer,
    seed_collection_cases,
    seed_demo_world,
    write_kubeconfig,
)
from bindings.services import polling

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "collect-bundle.sh"
VENV_BIN = ROOT / ".venv" / "bin"
KUBECTL = shutil.which("kubectl")
AWS = shutil.which("aws", path=str(VENV_BIN)) or shutil.which("aws")

needs_clis = pytest.mark.skipif(
    KUBECTL is None or AWS is None,
    reason=(
        "needs the real kubectl (Debian: apt-get install kubernetes-client; .ci/run installs it) "
        "and the AWS CLI (awscli in requirements-dev.txt)"
    ),
)
MISSPELLED = "k8s-dns-ucp"  # the demo's "k8s-dns-udp", one letter off


def test_help_documents_the_positional_cluster_and_the_docs_agree() -> None:
    result = subprocess.run(["bash", str(SCRIPT), "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    assert result.stdout.startswith("Usage: scripts/collect-bundle.sh [CLUSTER] [options]")
    for option in (
        "--profile",
        "--endpoint-url",
        "--elbv2-endpoint-url",
        "--parallel",
        "AWS_USE_FIPS_ENDPOINT",
    ):
        assert option in result.stdout
    docs = (ROOT / "docs" / "bundles.md").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "scripts/collect-bundle.sh my-cluster" in readme and "scripts/collect-bundle.sh my-cluster" in docs
    for variable in ("AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2", "AWS_USE_FIPS_ENDPOINT", "--profile"):
        assert variable in docs


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["one", "two"], "one cluster only: got 'one' and 'two'"),
        (["--bogus"], "unknown option: --bogus"),
        (["--parallel", "0"], "--parallel must be 1 to 64"),
        (["--parallel", "lots"], "--parallel must be 1 to 64"),
        (["-o"], "-o needs a value"),
        (["--eni-sg-tags", "team"], "--eni-sg-tags: 'team' is not KEY=VALUE"),
        (["--eni-sg-tags", "=dns"], "--eni-sg-tags: '=dns' is not KEY=VALUE"),
    ],
)
def test_bad_usage_exits_2_naming_the_argument(args: list[str], message: str) -> None:
    result = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True)
    assert result.returncode == 2
    assert message in result.stderr


# --- the emulated world ---------------------------------------------------------------------------
@dataclass
class World:
    moto: MotoServer
    kube: KubeEmulator
    demo: DemoWorld
    cases: CollectionCases


def _tgb(name: str, arn: str) -> dict[str, Any]:
    return {
        "apiVersion": "elbv2.k8s.aws/v1beta1",
        "kind": "TargetGroupBinding",
        "metadata": {"name": name, "namespace": "kube-system"},
        "spec": {"serviceRef": {"name": "coredns-external", "port": "dns-tcp"}, "targetGroupARN": arn},
    }


@pytest.fixture
def world() -> Any:
    """The demo world plus the missing-resource cases, fresh per test (moto's state is global)."""
    with MotoServer() as moto, KubeEmulator() as kube:
        demo = seed_demo_world(aws_endpoint=moto.url, kube=kube)
        cases = seed_collection_cases(demo, aws_endpoint=moto.url, kube=kube, misspelled_name=MISSPELLED)
        yield World(moto, kube, demo, cases)


def _home(tmp_path: Path, kube_url: str) -> Path:
    """An isolated HOME: a kubeconfig for the emulator, no AWS CLI config or kubectl cache."""
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    write_kubeconfig(str(home / ".kube" / "config"), kube_url)
    return home


def _env(home: Path, **extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KUBE"))}
    path = os.pathsep.join([str(Path(AWS).parent), str(Path(KUBECTL).parent), keep.get("PATH", "")])
    return {**keep, "HOME": str(home), "PATH": path, **extra}


def _collect(
    tmp_path: Path, args: list[str], env: dict[str, str]
) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    result = subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
    )
    return result, time.monotonic() - started


def _analyze(path: Path) -> dict[tuple[str, str], Any]:
    out = StringIO()
    call_command("analyze", str(path), "--format", "json", stdout=out)
    report = json.loads(out.getvalue())
    return {
        b["name"]: (
            {p["protocol"]: p["verdict"] for p in b["protocols"]},
            {f["code"] for f in b["findings"]},
        )
        for b in report["bindings"]
    }


def _dashboard(world: World, eni_sg_tags: dict[str, str] | None = None) -> dict[str, Any]:
    account = m.AwsAccount.objects.create(
        name="demo-account",
        account_id=world.demo.account_id,
        region=world.demo.region,
        endpoint_url=world.moto.url,
    )
    cluster = m.Cluster.objects.create(
        name="demo",
        connection=m.Cluster.Connection.URL,
        api_url=world.kube.url,
        aws_account=account,
        service_target_eni_sg_tags=eni_sg_tags or {},
    )
    assert polling.cluster_poll(cluster=cluster, trigger="test").status == m.PollRun.Status.SUCCESS
    assert polling.account_poll(account=account, trigger="test").status == m.PollRun.Status.SUCCESS
    return {
        b.name: (
            dict(b.verdicts.values_list("protocol", "verdict")),
            set(b.findings.values_list("code", flat=True)),
        )
        for b in m.TargetGroupBinding.objects.all()
    }


def _hook(tmp_path: Path, command: str, delete: list[str]) -> Path:
    """A folder with an `aws` that runs the real AWS CLI, but first — on the first call of `command`
    only (mkdir is the atomic "first" among parallel calls) — runs `aws DELETE...`: a resource
    vanishes between two of the script's calls, against the real emulator."""
    folder = tmp_path / "hook"
    folder.mkdir()
    quoted = " ".join(shlex.quote(a) for a in delete)
    (folder / "aws").write_text(
        "#!/usr/bin/env bash\n"
        f'if [[ " $* " == *" {command} "* ]] && mkdir "{tmp_path}/hooked" 2>/dev/null; then\n'
        f"  {shlex.quote(str(AWS))} {quoted} >/dev/null\n"
        "fi\n"
        f'exec {shlex.quote(str(AWS))} "$@"\n'
    )
    (folder / "aws").chmod(0o755)
    return folder


# --- the real CLIs ----------------------------------------------------------------------------------
@needs_clis
@pytest.mark.slow
@pytest.mark.django_db
def test_the_readme_commands_collect_a_bundle_that_analyses_like_the_dashboard(tmp_path: Path, world) -> None:
    home = _home(tmp_path, world.kube.url)
    env = _env(
        home,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=world.demo.region,
    )
    result, seconds = _collect(tmp_path, ["demo", "--endpoint-url", world.moto.url], env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "demo-bundle.tar.gz"
    archive = tmp_path / "demo-bundle.tar.gz"
    # One progress line per stage, ending at its total.
    for line in (
        "target groups 1/1",
        "target groups (one by one) 4/4",
        "target health 4/4",
        "VPC networking 6/6",
    ):
        assert f"collect-bundle: {line}" in result.stderr, result.stderr
    assert f"not found (targetGroupNames): {MISSPELLED}" in result.stderr

    bundle = load_bundle(archive)
    assert bundle.meta["cluster"] == "demo"
    assert bundle.meta["missing"] == {
        "targetGroups": [world.cases.deleted_target_group_arn],
        "targetGroupNames": [MISSPELLED],
        "loadBalancers": [],
        "prefixLists": [],
    }
    # Every list a security-group rule names is collected (the demo's own monitoring list too).
    named = {
        ref["PrefixListId"]
        for group in bundle.aws["DescribeSecurityGroups"]["SecurityGroups"]
        for perm in group.get("IpPermissions", []) + group.get("IpPermissionsEgress", [])
        for ref in perm.get("PrefixListIds", [])
    }
    entries = bundle.aws["GetManagedPrefixListEntries"]
    assert world.cases.prefix_list_id in named
    assert set(entries) == named
    assert entries[world.cases.prefix_list_id] == {
        "Entries": [{"Cidr": "192.0.2.0/24", "Description": "office"}]
    }
    tgs = {tg["TargetGroupArn"] for tg in bundle.aws["DescribeTargetGroups"]["TargetGroups"]}
    assert tgs == {
        *world.demo.target_group_arns.values(),
        world.cases.spare_target_group_arn,
        world.cases.named_target_group_arn,
    }
    assert set(bundle.aws["DescribeTargetHealth"]) == tgs
    # kubectl's JSON text in kubernetes.yaml, which the bundle reader reads as YAML.
    with tarfile.open(archive) as tar:
        kube_text = tar.extractfile("demo/kubernetes.yaml").read()  # type: ignore[union-attr]
    assert json.loads(kube_text)["kind"] == "List"
    kinds = {o.get("kind") for obj in bundle.kube_objects for o in obj.get("items", [obj])}
    assert {"TargetGroupBinding", "Service", "Pod", "Node", "EndpointSlice"} <= kinds

    offline = _analyze(archive)
    online = _dashboard(world)
    assert offline == online
    for name in ("on-deleted-tg", "misspelled-name"):
        assert "TARGET_GROUP_NOT_FOUND" in offline[name][1], name
    assert offline["coredns-udp"][0] == {"UDP": "blocked"}
    assert offline["coredns-tcp"][0] == {"TCP": "reachable"}
    assert offline["by-name"][0] == {"TCP": "reachable"}
    assert "TARGET_GROUP_NOT_FOUND" not in offline["by-name"][1]
    print(f"collect-bundle against the demo emulators: {seconds:.1f} s")


@needs_clis
@pytest.mark.slow
@pytest.mark.django_db
def test_profile_and_per_service_endpoint_variables_and_a_target_group_deleted_mid_run(
    tmp_path: Path, world
) -> None:
    home = _home(tmp_path, world.kube.url)
    (home / ".aws").mkdir()
    (home / ".aws" / "credentials").write_text(
        "[emu]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    (home / ".aws" / "config").write_text(f"[profile emu]\nregion = {world.demo.region}\n")
    # Before the first DescribeTargetHealth the spare target group is deleted, as if someone removed
    # it between the script's calls.
    hook_bin = _hook(
        tmp_path,
        "describe-target-health",
        ["--profile", "emu", "--endpoint-url", world.moto.url, "elbv2", "delete-target-group"]
        + ["--target-group-arn", world.cases.spare_target_group_arn],
    )
    env = _env(
        home,
        AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2=world.moto.url,
        AWS_ENDPOINT_URL_EC2=world.moto.url,
    )
    env["PATH"] = f"{hook_bin}{os.pathsep}{env['PATH']}"
    out = tmp_path / "custom.tgz"

    result, _ = _collect(
        tmp_path,
        [
            "-c",
            "demo",
            "--profile",
            "emu",
            "-o",
            str(out),
            "--parallel",
            "2",
            "--eni-sg-tags",
            "team=dns,tier=",
        ],
        env,
    )

    assert result.returncode == 0, result.stderr
    bundle = load_bundle(out)
    assert sorted(bundle.meta["missing"]["targetGroups"]) == sorted(
        [world.cases.deleted_target_group_arn, world.cases.spare_target_group_arn]
    )
    assert world.cases.spare_target_group_arn not in bundle.aws["DescribeTargetHealth"]
    assert world.cases.spare_target_group_arn not in bundle.aws["DescribeTargetGroupAttributes"]
    # PrivateLink (issue 19): read through the EC2 endpoint; the demo NLBs have no endpoint service.
    assert bundle.aws["DescribeVpcEndpointServiceConfigurations"] == {"ServiceConfigurations": []}
    offline = _analyze(out)
    assert "TARGET_GROUP_NOT_FOUND" in offline["spare"][1]
    # The controller's tag flag, in bundle.json as the dashboard's cluster setting holds it.
    assert bundle.meta["serviceTargetEniSecurityGroupTags"] == {"team": "dns", "tier": ""}
    assert offline == _dashboard(world, eni_sg_tags={"team": "dns", "tier": ""})


@needs_clis
@pytest.mark.slow
@pytest.mark.django_db
def test_a_load_balancer_deleted_mid_run_is_listed_missing_and_the_rest_judged(tmp_path: Path, world) -> None:
    lb = world.demo.load_balancer_arn
    hook_bin = _hook(
        tmp_path,
        "describe-listeners",
        ["--endpoint-url", world.moto.url, "elbv2", "delete-load-balancer", "--load-balancer-arn", lb],
    )
    env = _env(
        _home(tmp_path, world.kube.url),
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=world.demo.region,
    )
    env["PATH"] = f"{hook_bin}{os.pathsep}{env['PATH']}"

    result, _ = _collect(tmp_path, ["demo", "--endpoint-url", world.moto.url], env)

    assert result.returncode == 0, result.stderr
    bundle = load_bundle(tmp_path / "demo-bundle.tar.gz")
    assert bundle.meta["missing"]["loadBalancers"] == [lb]
    assert bundle.aws["DescribeLoadBalancers"] == {"LoadBalancers": []}
    assert bundle.aws["DescribeListeners"] == {"Listeners": []}
    assert bundle.aws["DescribeLoadBalancerAttributes"] == {}
    offline = _analyze(tmp_path / "demo-bundle.tar.gz")
    assert {"on-deleted-tg", "misspelled-name", "coredns-udp", "coredns-tcp", "by-name", "spare"} == set(
        offline
    )
    assert "TARGET_GROUP_NOT_FOUND" in offline["on-deleted-tg"][1]
    assert offline == _dashboard(world)


@needs_clis
@pytest.mark.slow
def test_any_other_aws_error_stops_the_run_naming_the_step_and_the_error(tmp_path: Path, httpserver) -> None:
    """ELBv2 answers AccessDenied (a real local HTTP receiver speaking the ELBv2 error format)."""
    httpserver.expect_request("/", method="POST").respond_with_data(
        '<ErrorResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"><Error>'
        "<Type>Sender</Type><Code>AccessDenied</Code><Message>User: arn:aws:iam::123456789012:user/sre "
        "is not authorized to perform: elasticloadbalancing:DescribeTargetGroups</Message></Error>"
        "<RequestId>0</RequestId></ErrorResponse>",
        status=403,
        content_type="text/xml",
    )
    with KubeEmulator() as kube:
        kube.apply([_tgb("coredns-udp", "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/x/1")])
        env = _env(
            _home(tmp_path, kube.url),
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION="us-east-1",
        )
        result, _ = _collect(tmp_path, ["demo", "--elbv2-endpoint-url", httpserver.url_for("/")], env)

    assert result.returncode == 1
    expected = "step 'target groups' failed: DescribeTargetGroups: AccessDenied: User: arn:aws:iam::"
    assert expected in result.stderr, result.stderr
    assert not (tmp_path / "demo-bundle.tar.gz").exists()


# --- the Kubernetes emulator's discovery documents, as kubectl reads them ---------------------------
def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - the emulator on loopback
        return json.loads(response.read())


@pytest.mark.slow
def test_the_emulator_serves_discovery_documents_real_clients_accept() -> None:
    with KubeEmulator(served_tgb_versions=("v1alpha1", "v1beta1")) as kube:
        assert _get(kube.url + "/api")["versions"] == ["v1"]
        core = _get(kube.url + "/api/v1")
        groups = _get(kube.url + "/apis")
        elbv2 = _get(kube.url + "/apis/elbv2.k8s.aws")
        tgbs = _get(kube.url + "/apis/elbv2.k8s.aws/v1alpha1")
        slices = _get(kube.url + "/apis/discovery.k8s.io/v1")

    assert core["groupVersion"] == "v1"
    entries = {r["name"]: r for r in core["resources"]}
    expected = {
        "services": ("Service", True, "svc"),
        "pods": ("Pod", True, "po"),
        "nodes": ("Node", False, "no"),
        "events": ("Event", True, "ev"),
        "namespaces": ("Namespace", False, "ns"),
    }
    for name, (kind, namespaced, short) in expected.items():
        entry = entries[name]
        assert (entry["kind"], entry["namespaced"], entry["singularName"]) == (kind, namespaced, kind.lower())
        assert {"get", "list", "watch"} <= set(entry["verbs"]) and short in entry["shortNames"]
    for name, entry in entries.items():
        if "/" in name:  # subresources: the parent's kind and scope, no names of their own
            parent = entries[name.split("/")[0]]
            assert (entry["kind"], entry["namespaced"]) == (parent["kind"], parent["namespaced"])
            assert entry["singularName"] == "" and entry["shortNames"] == []
    (slice_entry,) = [r for r in slices["resources"] if r["name"] == "endpointslices"]
    assert (slice_entry["kind"], slice_entry["namespaced"]) == ("EndpointSlice", True)

    by_name = {g["name"]: g for g in groups["groups"]}
    assert set(by_name) == {"discovery.k8s.io", "elbv2.k8s.aws"}
    # v1beta1 is preferred over v1alpha1, as a real API server orders versions.
    for group in (by_name["elbv2.k8s.aws"], elbv2):
        assert group["preferredVersion"] == {"groupVersion": "elbv2.k8s.aws/v1beta1", "version": "v1beta1"}
        assert [v["version"] for v in group["versions"]] == ["v1beta1", "v1alpha1"]
    (tgb,) = [r for r in tgbs["resources"] if r["name"] == "targetgroupbindings"]
    assert tgb["kind"] == "TargetGroupBinding" and tgb["singularName"] == "targetgroupbinding"
    assert tgb["namespaced"] is True and {"get", "list", "watch"} <= set(tgb["verbs"])


@needs_clis
@pytest.mark.slow
def test_real_kubectl_lists_every_kind_the_bundle_needs(tmp_path: Path) -> None:
    with KubeEmulator() as kube:
        kube.apply(
            [
                {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1", "namespace": "kube-system"}},
                _tgb("coredns-udp", "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/x/1"),
            ]
        )
        env = _env(_home(tmp_path, kube.url))
        result = subprocess.run(
            [
                KUBECTL,
                "get",
                "services,pods,nodes,endpointslices,events,targetgroupbindings",
                "-A",
                "-o",
                "json",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        short = subprocess.run(
            [KUBECTL, "get", "svc,po,no,ev", "-A", "-o", "name"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
    assert result.returncode == 0, result.stderr
    kinds = [item["kind"] for item in json.loads(result.stdout)["items"]]
    assert kinds == ["Event", "TargetGroupBinding"]
    assert short.returncode == 0, short.stderr
    assert short.stdout.split() == ["event/e1"]


@needs_clis
@pytest.mark.slow
def test_a_cli_error_without_an_aws_code_stops_the_run_with_the_cli_message(tmp_path: Path) -> None:
    with KubeEmulator() as kube:
        kube.apply([_tgb("coredns-udp", "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/x/1")])
        env = _env(_home(tmp_path, kube.url), AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
        result, _ = _collect(tmp_path, ["demo"], env)  # no region anywhere

    assert result.returncode == 1
    assert "step 'target groups' failed: aws elbv2 describe-target-groups exited" in result.stderr
    assert "You must specify a region" in result.stderr
