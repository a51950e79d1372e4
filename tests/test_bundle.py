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
from hypothesis import given
from hypothesis import strategies as st

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


@pytest.mark.slow
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


# --- scripts/collect-bundle.sh (run with the real CLIs in tests/test_collect_bundle.py) ---------------


def test_collect_bundle_script_syntax() -> None:
    assert subprocess.run(["bash", "-n", str(ROOT / "scripts" / "collect-bundle.sh")]).returncode == 0


# --- reader bounds and the JSON path (issue 15 item 3, issue 16) -----------------------------------
# The bombs themselves (aliases, 25,000 levels, archive bombs) run through `manage.py analyze` in
# tests/test_corpus.py; these pin the boundaries and the equivalences.

SCENARIOS = sorted(p for p in (ROOT / "tests" / "scenarios").iterdir() if (p / "kubernetes.yaml").is_file())


def _report(folder: Path) -> dict:
    out = StringIO()
    call_command("analyze", str(folder), "--format", "json", stdout=out)
    return json.loads(out.getvalue())


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[p.name for p in SCENARIOS])
def test_kubectl_json_text_reads_and_judges_exactly_like_the_yaml(scenario: Path, tmp_path: Path) -> None:
    """`kubectl get -o json` output in kubernetes.yaml takes the json module's path: same objects,
    same report and fixes as the YAML it was converted from."""
    yaml_bundle = load_bundle(scenario)
    folder = tmp_path / scenario.name
    shutil.copytree(scenario, folder)
    documents = yaml_bundle.kube_objects
    kube = documents[0] if len(documents) == 1 else {"apiVersion": "v1", "kind": "List", "items": documents}
    (folder / "kubernetes.yaml").write_text(json.dumps(kube, indent=4, ensure_ascii=False))

    json_bundle = load_bundle(folder)

    assert json_bundle.kube_objects == [kube]
    assert _report(folder) == _report(scenario)


def test_json_text_that_json_refuses_is_read_as_yaml(coredns_bundle: Path) -> None:
    kube = coredns_bundle / "kubernetes.yaml"
    # Flow-style YAML (unquoted keys) and NaN (not JSON; a string in YAML) go to the YAML reader.
    kube.write_text(
        '{kind: List, items: [{kind: Event, apiVersion: v1, note: NaN, metadata: {name: "a[{"}}]}'
    )
    [document] = load_bundle(coredns_bundle).kube_objects
    assert document["items"][0]["note"] == "NaN"
    assert document["items"][0]["metadata"]["name"] == "a[{"


def _nested(depth: int, *, style: str) -> str:
    """A kind: List whose items nest to exactly `depth` levels in all (the List itself is 1)."""
    inner = depth - 1  # lists, the items list included, inside the List mapping
    if style == "json":
        return '{"kind": "List", "items": ' + "[" * inner + '"x"' + "]" * inner + "}"
    if style == "flow":
        return "kind: List\nitems: " + "[" * inner + "x" + "]" * inner + "\n"
    return "kind: List\nitems:\n" + "- " * inner + "x\n"  # block style


@pytest.mark.parametrize("style", ["json", "flow", "block"])
def test_nesting_is_refused_just_past_max_depth_naming_the_file(coredns_bundle: Path, style: str) -> None:
    from bindings.analysis.bundle import MAX_DEPTH

    kube = coredns_bundle / "kubernetes.yaml"
    kube.write_text(_nested(MAX_DEPTH, style=style))
    [document] = load_bundle(coredns_bundle).kube_objects
    value = document["items"]
    for _ in range(MAX_DEPTH - 1):
        [value] = value
    assert value == "x"
    kube.write_text(_nested(MAX_DEPTH + 1, style=style))
    with pytest.raises(
        BundleError, match=rf"kubernetes\.yaml line \d+ column \d+: .*deeper than {MAX_DEPTH}"
    ):
        load_bundle(coredns_bundle)


def test_deep_aws_json_is_refused_before_parsing(coredns_bundle: Path) -> None:
    from bindings.analysis.bundle import MAX_DEPTH

    (coredns_bundle / "aws.json").write_text('{"a": ' * MAX_DEPTH + "1" + "}" * MAX_DEPTH)
    load_bundle(coredns_bundle)
    (coredns_bundle / "aws.json").write_text('{"a": ' * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1))
    with pytest.raises(BundleError, match=rf"aws\.json: nested deeper than {MAX_DEPTH} levels"):
        load_bundle(coredns_bundle)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\/,:ab\u00e9\U0001f600 \n\t'),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(alphabet='[]{}"\\ab'), children, max_size=3)
        ),
        max_leaves=30,
    )
)
def test_json_depth_is_exact_for_any_json(value: object) -> None:
    from bindings.analysis.bundle import json_depth

    def depth(v: object) -> int:
        children = list(v.values()) if isinstance(v, dict) else v if isinstance(v, list) else None
        return 0 if children is None else 1 + max((depth(c) for c in children), default=0)

    for text in (json.dumps(value), json.dumps(value, indent=2, ensure_ascii=False)):
        assert json_depth(text.encode()) == depth(value)


def test_aliases_may_share_but_not_multiply(coredns_bundle: Path) -> None:
    # The hand-written sample bundles share a labels mapping through an alias: still read.
    assert b"*id001" in (coredns_bundle / "kubernetes.yaml").read_bytes()
    assert load_bundle(coredns_bundle).kube_objects
    kube = coredns_bundle / "kubernetes.yaml"
    kube.write_text("kind: List\nitems: &a\n- *a\n")
    with pytest.raises(
        BundleError, match=r"kubernetes\.yaml line 3 column 3: .*refers to a node that contains it"
    ):
        load_bundle(coredns_bundle)
    kube.write_text("kind: List\nitems: [*nowhere]\n")
    with pytest.raises(BundleError, match=r"kubernetes\.yaml line 2.*undefined alias"):
        load_bundle(coredns_bundle)
    # 12,000 items added to a 10-item document: past the allowance.
    laughs = "kind: List\nx: &a [1, 2, 3]\nitems: [" + ", ".join(["*a"] * 3_000) + "]\n"
    kube.write_text(laughs)
    with pytest.raises(BundleError, match="aliases expand this document"):
        load_bundle(coredns_bundle)


def test_the_file_cap_is_per_file_and_can_be_raised(coredns_bundle: Path) -> None:
    size = max(p.stat().st_size for p in coredns_bundle.iterdir())
    with pytest.raises(BundleError, match=r"(kubernetes\.yaml|aws\.json): larger than 1000 bytes"):
        load_bundle(coredns_bundle, max_file_bytes=1000)
    assert load_bundle(coredns_bundle, max_file_bytes=size).kube_objects
    (coredns_bundle / "aws.json").write_bytes(b" " * (2 * 1024 * 1024) + b"{}")
    with pytest.raises(CommandError, match=r"aws\.json: larger than 1048576 bytes") as caught:
        call_command("analyze", str(coredns_bundle), "--max-file-mb", "1", stdout=StringIO())
    assert caught.value.returncode == 2
    call_command("analyze", str(coredns_bundle), "--max-file-mb", "3", stdout=StringIO())


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE, tarfile.LNKTYPE])
def test_tar_member_named_like_a_bundle_file_must_be_a_regular_file(tmp_path: Path, kind: bytes) -> None:
    path = tmp_path / "special.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for name, data in _files(BLOCKED).items():
            if name != "kubernetes.yaml":
                info = tarfile.TarInfo(f"special/{name}")
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("special/kubernetes.yaml")
        info.type = kind
        info.linkname = "special/aws.json" if kind == tarfile.LNKTYPE else ""
        archive.addfile(info)
    with pytest.raises(BundleError, match=r"special\.tar\.gz: member 'special/kubernetes\.yaml' is a"):
        load_bundle(path)


def test_zip_symlink_member_rejected(tmp_path: Path) -> None:
    path = tmp_path / "link.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("aws.json", "{}")
        info = zipfile.ZipInfo("kubernetes.yaml")
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, "/etc/passwd")
    with pytest.raises(BundleError, match=r"link\.zip: member 'kubernetes\.yaml' is a link"):
        load_bundle(path)


def test_zip_reads_only_the_chosen_folder(tmp_path: Path) -> None:
    path = tmp_path / "two.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in _files(BLOCKED).items():
            archive.writestr(f"two/{name}", data)
        # A deeper copy that would fail the read if it were read at all.
        archive.writestr("two/old/kubernetes.yaml", b"[" * 100_000)
    assert load_bundle(path).name == "two"
