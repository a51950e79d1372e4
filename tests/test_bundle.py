"""Bundles: directories and archives, safe extraction, unreadable input, and the collect script."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import zipfile
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from bindings.analysis.bundle import BundleError, bundle_inventory, load_bundle, write_bundle

ROOT = Path(__file__).resolve().parent.parent
BLOCKED = ROOT / "tests" / "scenarios" / "dns-udp-blocked"


@pytest.fixture
def coredns_bundle(tmp_path: Path) -> Path:
    """A writable copy of the dns-udp-blocked bundle."""
    target = tmp_path / "coredns"
    shutil.copytree(BLOCKED, target)
    return target


def _tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


# --- reading -------------------------------------------------------------------------------------


def test_directory_bundle_loads() -> None:
    bundle = load_bundle(BLOCKED)
    assert bundle.meta["cluster"] == "demo"
    assert "DescribeTargetGroups" in bundle.aws
    assert bundle.kube_objects[0]["kind"] == "List"
    assert bundle.name == "dns-udp-blocked"


def test_bundle_inventory_uses_bundle_json() -> None:
    inventory = bundle_inventory(load_bundle(BLOCKED))
    assert inventory.cluster == "demo"
    assert inventory.now == datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
    assert inventory.aws_complete
    assert {b.name for b in inventory.bindings} == {"coredns-udp", "coredns-tcp"}
    assert inventory.client_cidrs is None


def test_without_bundle_json_the_cluster_is_the_one_its_security_group_tags_name(
    coredns_bundle: Path,
) -> None:
    """Not the folder's name: that would make every tagged node group look untagged."""
    (coredns_bundle / "bundle.json").unlink()
    tagged = json.loads((coredns_bundle / "aws.json").read_text())
    groups = tagged["DescribeSecurityGroups"]["SecurityGroups"]
    groups.append(
        {"GroupId": "sg-0extra", "VpcId": groups[0].get("VpcId"), "Tags": [{"Key": "team", "Value": "x"}]}
    )
    (coredns_bundle / "aws.json").write_text(json.dumps(tagged))

    inventory = bundle_inventory(load_bundle(coredns_bundle))

    assert inventory.cluster == "demo"


def test_without_bundle_json_or_one_agreed_tag_the_folder_names_the_cluster(coredns_bundle: Path) -> None:
    (coredns_bundle / "bundle.json").unlink()
    data = json.loads((coredns_bundle / "aws.json").read_text())
    for group in data["DescribeSecurityGroups"]["SecurityGroups"]:
        group["Tags"] = [
            {"Key": "kubernetes.io/cluster/a", "Value": "owned"},
            {"Key": "kubernetes.io/cluster/b", "Value": "owned"},
        ]
    (coredns_bundle / "aws.json").write_text(json.dumps(data))

    inventory = bundle_inventory(load_bundle(coredns_bundle))

    assert inventory.cluster == "coredns" and inventory.now is None


def test_client_cidr_override_beats_bundle_json(coredns_bundle: Path) -> None:
    meta = json.loads((coredns_bundle / "bundle.json").read_text())
    meta["clientCidrs"] = ["192.168.0.0/16"]
    (coredns_bundle / "bundle.json").write_text(json.dumps(meta))
    bundle = load_bundle(coredns_bundle)
    assert bundle_inventory(bundle).client_cidrs == ("192.168.0.0/16",)
    assert bundle_inventory(bundle, client_cidrs=["172.16.0.0/12"]).client_cidrs == ("172.16.0.0/12",)


def test_tar_gz_with_top_folder(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "x.tar.gz", {f"prod-east/{k}": v for k, v in _files(BLOCKED).items()})
    bundle = load_bundle(archive)
    assert bundle.meta["cluster"] == "demo"
    assert bundle.name == "prod-east"


def test_tgz_flat(tmp_path: Path) -> None:
    bundle = load_bundle(_tar(tmp_path / "flat.tgz", _files(BLOCKED)))
    assert bundle.name == "flat"
    assert len(bundle.aws) > 5


def test_zip(tmp_path: Path) -> None:
    path = tmp_path / "b.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in _files(BLOCKED).items():
            archive.writestr(f"b/{name}", data)
    assert load_bundle(path).meta["cluster"] == "demo"


@pytest.mark.parametrize("suffix", ["out", "out.tar.gz", "out.zip"])
def test_write_bundle_round_trips(tmp_path: Path, suffix: str) -> None:
    source = load_bundle(BLOCKED)
    aws = dict(source.aws, Extra={"When": datetime(2026, 1, 1, tzinfo=UTC)})
    path = write_bundle(tmp_path / suffix, kube_objects=source.kube_objects, aws=aws, meta=source.meta)
    again = load_bundle(path)
    assert again.meta == source.meta
    assert again.aws["DescribeTargetGroups"] == source.aws["DescribeTargetGroups"]
    assert again.aws["Extra"] == {"When": "2026-01-01T00:00:00+00:00"}
    assert len(bundle_inventory(again).bindings) == 2


def test_unquoted_timestamps_stay_strings(coredns_bundle: Path) -> None:
    text = (coredns_bundle / "kubernetes.yaml").read_text()
    (coredns_bundle / "kubernetes.yaml").write_text(
        text.replace("  metadata:\n", "  metadata:\n    created: 2026-01-01T00:00:00Z\n", 1)
    )
    first = load_bundle(coredns_bundle).kube_objects[0]["items"][0]
    assert first["metadata"]["created"] == "2026-01-01T00:00:00Z"


# --- safe extraction -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["../evil/kubernetes.yaml", "/etc/kubernetes.yaml", "a/../../kubernetes.yaml"]
)
def test_tar_path_traversal_rejected(tmp_path: Path, name: str) -> None:
    archive = _tar(tmp_path / "evil.tar.gz", {name: b"kind: List\n", "aws.json": b"{}"})
    with pytest.raises(BundleError, match="evil.tar.gz"):
        load_bundle(archive)
    assert not (tmp_path.parent / "evil").exists()


def test_zip_path_traversal_rejected(tmp_path: Path) -> None:
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("../kubernetes.yaml", "kind: List\n")
        archive.writestr("aws.json", "{}")
    with pytest.raises(BundleError, match="traversal"):
        load_bundle(path)


def test_tar_symlink_member_rejected(tmp_path: Path) -> None:
    path = tmp_path / "link.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo("kubernetes.yaml")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        archive.addfile(info)
    with pytest.raises(BundleError, match="link"):
        load_bundle(path)


def test_oversized_member_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bindings.analysis.bundle.MAX_FILE_BYTES", 100)
    archive = _tar(tmp_path / "big.tar.gz", _files(BLOCKED))
    with pytest.raises(BundleError, match="larger than"):
        load_bundle(archive)


# --- unreadable input: BundleError and exit 2, naming the file (and field/line) -------------------


def _break(folder: Path, file: str, content: str | None) -> None:
    if content is None:
        (folder / file).unlink()
    else:
        (folder / file).write_text(content)


UNREADABLE = [
    ("kubernetes.yaml", None, r"kubernetes\.yaml.*missing"),
    ("aws.json", None, r"aws\.json.*missing"),
    ("kubernetes.yaml", "items: [\n  - a\n  b: c\n", r"kubernetes\.yaml line \d+"),
    ("kubernetes.yaml", "- 1\n- 2\n", r"kubernetes\.yaml: document 1"),
    ("aws.json", '{"DescribeTargetGroups": {', r"aws\.json line 1 column \d+"),
    ("aws.json", "[]", r"aws\.json: top level is list"),
    ("aws.json", '{"DescribeTargetGroups": []}', r"aws\.json: field DescribeTargetGroups"),
    ("bundle.json", "{nope", r"bundle\.json line 1"),
    ("bundle.json", '"demo"', r"bundle\.json: top level"),
    (
        "bundle.json",
        '{"clientCidrs": ["10.0.0.0/8", "10.0.0.0/33"]}',
        r"bundle\.json: field clientCidrs\[1\]",
    ),
    ("bundle.json", '{"clientCidrs": "10.0.0.0/8"}', r"bundle\.json: field clientCidrs"),
    ("bundle.json", '{"collectedAt": "yesterday"}', r"bundle\.json: field collectedAt"),
    ("bundle.json", '{"cluster": 7}', r"bundle\.json: field cluster"),
]


@pytest.mark.parametrize(("file", "content", "pattern"), UNREADABLE)
def test_unreadable_input_raises_bundle_error(
    coredns_bundle: Path, file: str, content: str | None, pattern: str
) -> None:
    _break(coredns_bundle, file, content)
    with pytest.raises(BundleError, match=pattern):
        load_bundle(coredns_bundle)


def test_non_utf8_named(coredns_bundle: Path) -> None:
    (coredns_bundle / "aws.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(BundleError, match=r"aws\.json: not UTF-8"):
        load_bundle(coredns_bundle)


@pytest.mark.parametrize("path", ["does-not-exist", "file.txt", "broken.tar.gz", "broken.zip"])
def test_not_a_bundle(tmp_path: Path, path: str) -> None:
    target = tmp_path / path
    if path != "does-not-exist":
        target.write_bytes(b"garbage")
    with pytest.raises(BundleError, match=path.replace(".", r"\.")):
        load_bundle(target)


@pytest.mark.parametrize(("file", "content", "pattern"), UNREADABLE)
def test_analyze_exits_2_naming_the_file(
    coredns_bundle: Path, file: str, content: str | None, pattern: str
) -> None:
    _break(coredns_bundle, file, content)
    with pytest.raises(CommandError, match=pattern) as caught:
        call_command("analyze", str(coredns_bundle), stdout=StringIO())
    assert caught.value.returncode == 2


def test_analyze_rejects_bad_client_cidr() -> None:
    with pytest.raises(CommandError, match="--client-cidr") as caught:
        call_command("analyze", str(BLOCKED), "--client-cidr", "10.0.0.0/33", stdout=StringIO())
    assert caught.value.returncode == 2


def test_analyze_subprocess_exit_codes(coredns_bundle: Path) -> None:
    """Through manage.py, as CI runs it: 2 with the file on stderr; 1 when --fail-on matches."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    (coredns_bundle / "aws.json").write_text("[1, 2]")
    broken = subprocess.run(
        [sys.executable, "manage.py", "analyze", str(coredns_bundle)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
    )
    assert broken.returncode == 2
    assert "aws.json" in broken.stderr

    failing = subprocess.run(
        [sys.executable, "manage.py", "analyze", str(BLOCKED), "--fail-on", "blocked", "--format", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
    )
    assert failing.returncode == 1, failing.stderr
    assert json.loads(failing.stdout)["bindings"]


def test_analyze_ok_exit_0_and_text() -> None:
    out = StringIO()
    call_command("analyze", str(ROOT / "tests" / "scenarios" / "dns-udp-fixed"), stdout=out)
    assert "coredns-udp" in out.getvalue()


def test_analyze_fail_on_blocked_exits_1() -> None:
    with pytest.raises(SystemExit) as caught:
        call_command("analyze", str(BLOCKED), "--fail-on", "blocked", stdout=StringIO())
    assert caught.value.code == 1


# --- scripts/collect-bundle.sh with stub kubectl and aws -------------------------------------------

STUB_KUBECTL = """#!/usr/bin/env python3
import json, sys, yaml
doc = yaml.safe_load(open(sys.argv[0] + ".yaml"))
args = sys.argv[1:]
if "config" in args:
    print("arn:aws:eks:us-east-1:123456789012:cluster/demo")
elif args[-2:] == ["-o", "json"]:
    items = [i for i in doc["items"] if i["kind"] == "TargetGroupBinding"]
    print(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
else:
    print(yaml.safe_dump(doc))
"""

STUB_AWS = """#!/usr/bin/env python3
import json, sys
aws = json.load(open(sys.argv[0] + ".json"))
args = [a for a in sys.argv[1:]]
with open(sys.argv[0] + ".log", "a") as log:
    log.write(" ".join(args) + "\\n")
def value(flag):
    return args[args.index(flag) + 1]
op = next(a for a in args if a.startswith("describe-"))
name = "".join(p.capitalize() for p in op.split("-"))
if name in ("DescribeTargetHealth", "DescribeTargetGroupAttributes"):
    print(json.dumps(aws[name][value("--target-group-arn")]))
elif name == "DescribeLoadBalancerAttributes":
    print(json.dumps({"Attributes": [{"Key": "load_balancing.cross_zone.enabled", "Value": "false"}]}))
elif name == "DescribeListeners":
    lb = value("--load-balancer-arn")
    print(json.dumps({"Listeners": [l for l in aws[name]["Listeners"] if l["LoadBalancerArn"] == lb]}))
else:
    print(json.dumps(aws.get(name, {})))
"""


def _stub(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(body.replace("#!/usr/bin/env python3", f"#!{sys.executable}", 1))
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_collect_bundle_script_syntax() -> None:
    assert subprocess.run(["bash", "-n", str(ROOT / "scripts" / "collect-bundle.sh")]).returncode == 0


def _collect_with_stubs(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, Path, Path]:
    """Run collect-bundle.sh against stub kubectl/aws serving the dns-udp-blocked bundle."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _stub(bin_dir, "kubectl", STUB_KUBECTL)
    shutil.copy(BLOCKED / "kubernetes.yaml", bin_dir / "kubectl.yaml")
    _stub(bin_dir, "aws", STUB_AWS)
    shutil.copy(BLOCKED / "aws.json", bin_dir / "aws.json")
    out = tmp_path / "demo.tar.gz"
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "collect-bundle.sh"), "-o", str(out), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    return result, out, bin_dir


def test_collect_bundle_with_stubs(tmp_path: Path) -> None:
    result, out, bin_dir = _collect_with_stubs(tmp_path, "--client-cidr", "10.0.0.0/8")
    assert result.returncode == 0, result.stderr
    bundle = load_bundle(out)
    assert bundle.meta["cluster"] == "demo"
    assert bundle.meta["clientCidrs"] == ["10.0.0.0/8"]
    expected = json.loads((BLOCKED / "aws.json").read_text())
    assert bundle.aws["DescribeTargetHealth"] == expected["DescribeTargetHealth"]
    assert bundle.aws["DescribeTargetGroups"] == expected["DescribeTargetGroups"]
    assert len(bundle.aws["DescribeListeners"]["Listeners"]) == 2
    inventory = bundle_inventory(bundle)
    assert len(inventory.target_groups) == 2
    assert len(inventory.bindings) == 2
    assert inventory.security_groups
    # Only the referenced target groups were asked about, 20 ARNs at most per call.
    log = (bin_dir / "aws.log").read_text()
    assert "describe-target-groups --target-group-arns" in log


def test_collect_bundle_records_the_controllers_eni_sg_tags(tmp_path: Path) -> None:
    result, out, _ = _collect_with_stubs(tmp_path, "--eni-sg-tags", "team=dns,tier=")
    assert result.returncode == 0, result.stderr
    bundle = load_bundle(out)
    assert bundle.meta["serviceTargetEniSecurityGroupTags"] == {"team": "dns", "tier": ""}
    assert bundle_inventory(bundle).eni_sg_tags == {"team": "dns", "tier": ""}


def test_collect_bundle_rejects_a_malformed_eni_sg_tag(tmp_path: Path) -> None:
    result, out, _ = _collect_with_stubs(tmp_path, "--eni-sg-tags", "team")
    assert result.returncode != 0
    assert "--eni-sg-tags: 'team' is not KEY=VALUE" in result.stderr
    assert not out.exists()
