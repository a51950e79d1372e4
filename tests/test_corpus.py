"""Hostile and malformed input, end to end: every file of tests/corpus/ goes through a real poll
(normalise -> sync into the database -> analysis) and the rendered pages and API.

Each corpus file is added to a healthy world (the `dns-udp-blocked` sample bundle: one UDP binding
that is blocked, one TCP binding that is reachable). Whatever the file holds, the poll must
succeed, every defect must be visible (INVALID_SPEC findings on the binding, or the `problems` of
the object / source, naming object and field), the pages must render, and the two healthy
bindings must still get exactly the verdicts they get without the corpus file.

Corpus conventions (tests/corpus/README.md): `@@1MB@@` is expanded to a 1 MiB string;
`# expect: TEXT` (YAML) or `"_expect": [...]` (JSON) lists texts that must appear in a recorded
problem; `# expect-none` / `"_expect_none": true` says the file is valid and no problem may be
invented for its objects.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.utils.html import escape

from bindings import models as m
from bindings import textsafe
from bindings.analysis.bundle import _parse_json, _parse_yaml
from bindings.services import polling
from bindings.textsafe import visible_markup
from tests.factories import SCENARIOS

CORPUS = Path(__file__).parent / "corpus"
BASELINE = SCENARIOS / "dns-udp-blocked"
HUGE = "@@1MB@@"
HUGE_VALUE = "n" * (1024 * 1024)
FILES = sorted(p for p in CORPUS.iterdir() if p.suffix in (".yaml", ".json"))

pytestmark = pytest.mark.django_db


def _expand(value: Any) -> Any:
    """Replace the @@1MB@@ placeholder (keeps the corpus small in git; the test sees 1 MiB)."""
    if isinstance(value, str):
        return HUGE_VALUE if value == HUGE else value
    if isinstance(value, dict):
        return {_expand(k): _expand(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v) for v in value]
    return value


def _load(path: Path) -> tuple[list[dict], dict, list[str], bool]:
    """(kubernetes objects, AWS responses, expected problem texts, expect no problem)."""
    data = path.read_bytes()
    # The bundle loader's own parsers. Offline bundles are refused past MAX_DEPTH levels (see
    # test_a_bundle_bomb_is_refused_in_seconds_and_bounded_memory); the poll reads whatever depth
    # the API sends, so the corpus is parsed without that bound. 1000 levels of nesting need a
    # deeper stack than Python's default for the json module.
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        if path.suffix == ".yaml":
            kube_objects, responses = _parse_yaml(data, path.name, max_depth=5_000), {}
            text = data.decode()
            lines = text.splitlines()
            expects = [line.split(":", 1)[1].strip() for line in lines if line.startswith("# expect:")]
            none = "# expect-none" in text
        else:
            responses = _parse_json(data, path.name, max_depth=5_000)
            kube_objects = []
            expects = responses.pop("_expect", [])
            none = bool(responses.pop("_expect_none", False))
            responses.pop("_about", None)
        if HUGE.encode() in data:
            kube_objects, responses = _expand(kube_objects), _expand(responses)
    finally:
        sys.setrecursionlimit(limit)
    return kube_objects, responses, expects, none


def _merge(base: dict, extra: dict) -> dict:
    """The baseline responses plus the corpus ones: lists are extended, new keys added."""
    # One level of copying is enough (lists are concatenated, never mutated); a deep copy would
    # recurse through the corpus' 1000-level values.
    out = {op: dict(v) if isinstance(v, dict) else v for op, v in base.items()}
    for operation, response in extra.items():
        if not isinstance(response, dict) or not isinstance(out.get(operation), dict):
            out[operation] = response
            continue
        for key, value in response.items():
            if isinstance(value, list) and isinstance(out[operation].get(key), list):
                out[operation][key] = out[operation][key] + value
            else:
                out[operation][key] = value
    return out


def _all_problems(cluster: m.Cluster, account: m.AwsAccount) -> list[dict]:
    problems: list[Any] = [*cluster.problems, *account.problems]
    for model in (m.TargetGroupBinding, m.KubeService, m.KubeEndpointSlice, m.KubePod, m.KubeNode):
        for rows in model.objects.filter(cluster=cluster).values_list("problems", flat=True):
            problems += rows
    for rows in m.TargetGroup.objects.filter(account=account).values_list("problems", flat=True):
        problems += rows
    return [p if isinstance(p, dict) else {"message": str(p)} for p in problems]


def _text(problem: dict) -> str:
    return " ".join(str(problem.get(k, "")) for k in ("object", "field", "message"))


def _baseline_verdicts() -> dict[str, dict[str, str]]:
    expected = json.loads((BASELINE / "expected.json").read_text())
    return {key.split("/", 1)[1]: spec["protocols"] for key, spec in expected["bindings"].items()}


def _poll(stubbed_world: dict[str, Any]) -> tuple[m.PollRun, m.PollRun]:
    cluster, account = stubbed_world["cluster"], stubbed_world["account"]
    cluster_run = polling.cluster_poll(cluster=cluster)
    account_run = polling.account_poll(account=account)
    cluster.refresh_from_db()
    account.refresh_from_db()
    return cluster_run, account_run


@pytest.mark.parametrize(
    "path",
    # 1 MiB strings take seconds to store and render: slow, like the other multi-second tests
    [pytest.param(p, marks=[pytest.mark.slow] if "huge" in p.name else []) for p in FILES],
    ids=[p.name for p in FILES],
)
def test_a_hostile_file_is_polled_judged_and_rendered_and_its_defects_are_visible(
    path, stubbed_world, client, alice
):
    kube_objects, responses, expects, expect_none = _load(path)
    stubbed_world["kube"] = stubbed_world["kube"] + kube_objects
    stubbed_world["aws"] = _merge(stubbed_world["aws"], responses)
    cluster, account = stubbed_world["cluster"], stubbed_world["account"]

    cluster_run, account_run = _poll(stubbed_world)

    # nothing crashed: both polls stored their data
    assert cluster_run.status == m.PollRun.Status.SUCCESS, cluster_run.error
    assert account_run.status == m.PollRun.Status.SUCCESS, account_run.error
    problems = _all_problems(cluster, account)
    texts = [_text(p) for p in problems]
    for expected in expects:
        assert any(expected in t for t in texts), f"no problem mentions {expected!r}: {texts[:20]}"
    if expect_none:
        own = [t for t in texts if "corpus" in t or "v6" in t]
        assert not own, f"a valid file got problems: {own}"
    elif kube_objects or responses:
        assert problems, "a hostile file left no visible problem"

    # every binding problem is an INVALID_SPEC finding naming the same object and field
    for row in m.TargetGroupBinding.objects.filter(cluster=cluster).select_related("result"):
        assert hasattr(row, "result"), f"binding {row.uid[:80]} was never judged"
        invalid = {
            (f["evidence"].get("object"), f["evidence"].get("field"))
            for f in m.Finding.objects.filter(binding=row, code="INVALID_SPEC").values("evidence")
        }
        for p in row.problems:
            assert (p["object"], p["field"]) in invalid, (p, invalid)

    # the healthy bindings next to the bad ones are judged exactly as without them
    verdicts: dict[str, dict[str, str]] = {}
    for name, protocol, verdict in m.ProtocolVerdict.objects.filter(
        binding__cluster=cluster, binding__namespace="kube-system"
    ).values_list("binding__name", "protocol", "verdict"):
        verdicts.setdefault(name, {})[protocol] = verdict
    assert verdicts == _baseline_verdicts()

    # rendering: pages and API answer for every binding, problems of the sources are shown
    # Control and format characters (bidi overrides, ANSI escapes) show as visible escapes.
    client.force_login(alice)
    bindings = m.TargetGroupBinding.objects.filter(cluster=cluster).values_list("pk", flat=True)
    for url in (
        "/",
        "/bindings/",
        f"/clusters/{cluster.pk}/",
        f"/accounts/aws/{account.pk}/",
        *(f"/bindings/{pk}/" for pk in bindings[:20]),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        raw = {c for c in textsafe.UNSAFE.findall(response.content.decode()) if c not in "\t\n\r"}
        assert not raw, (url, sorted(raw))
    page = client.get(f"/clusters/{cluster.pk}/").content.decode()
    for p in cluster.problems[:50]:
        assert visible_markup(escape(p["message"])) in page, p
    page = client.get(f"/accounts/aws/{account.pk}/").content.decode()
    for p in account.problems[:50]:
        assert visible_markup(escape(p["message"])) in page, p
    api = client.get("/api/v1/bindings", {"limit": 200})
    assert api.status_code == 200
    listed = {item["id"] for item in api.json()["items"]}
    for pk in m.TargetGroupBinding.objects.filter(cluster=cluster).values_list("pk", flat=True):
        assert pk in listed
        assert client.get(f"/bindings/{pk}/").status_code == 200, pk
        assert client.get(f"/api/v1/bindings/{pk}").status_code == 200, pk


@pytest.mark.slow
def test_the_whole_corpus_at_once_still_judges_the_healthy_bindings(stubbed_world, client, alice):
    """Every hostile file in one poll: defects of different kinds must not compound."""
    for path in FILES:
        kube_objects, responses, _, _ = _load(path)
        stubbed_world["kube"] = stubbed_world["kube"] + kube_objects
        stubbed_world["aws"] = _merge(stubbed_world["aws"], responses)

    cluster_run, account_run = _poll(stubbed_world)
    # a second, identical poll is a no-op even with hostile data (digests are stable)
    again = polling.cluster_poll(cluster=stubbed_world["cluster"])

    assert cluster_run.status == account_run.status == again.status == m.PollRun.Status.SUCCESS
    assert again.rows_written == 0
    healthy = {
        name: {protocol: verdict}
        for name, protocol, verdict in m.ProtocolVerdict.objects.filter(
            binding__cluster=stubbed_world["cluster"], binding__namespace="kube-system"
        ).values_list("binding__name", "protocol", "verdict")
    }
    assert healthy == _baseline_verdicts()
    client.force_login(alice)
    assert client.get("/bindings/").status_code == 200
    assert client.get("/api/v1/bindings", {"limit": 200}).status_code == 200


# --- bundle bombs: the offline reader (issue 15 item 3) ---------------------------------------------
#
# Each bomb is built here (the big ones would be hundreds of MB in git) and given to
# `manage.py analyze` in a child process: it must exit 2 with a message naming the file, in
# seconds, without the memory the bomb asks for. Peak memory is the child's ru_maxrss, read by a
# small wrapper process: Linux carries a parent's peak over to a child it spawns (vfork + exec),
# so measured from pytest the figure would be pytest's own.

ROOT = Path(__file__).resolve().parent.parent
BOMB_SECONDS = 20  # a shared 2-CPU CI runner; the bombs take 1-3 s here, mostly Django's start
BOMB_MAX_RSS_MB = 250  # `analyze` on a small bundle peaks at ~80 MB
MIB = 1024 * 1024
_MEASURE = """
import json, resource, subprocess, sys, time
start = time.monotonic()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True, timeout=300)
print(json.dumps({
    "returncode": done.returncode,
    "stderr": done.stderr[-3000:],
    "seconds": time.monotonic() - start,
    "maxrss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
}))
"""


def analyze_measured(path: Path, *args: str) -> dict[str, Any]:
    """`manage.py analyze PATH` in a child: exit status, stderr, wall seconds and peak RSS."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    wrapper = subprocess.run(
        [sys.executable, "-c", _MEASURE, sys.executable, "manage.py", "analyze", str(path), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(wrapper.stdout)


def _folder(tmp: Path, kube: bytes, aws_json: bytes = b"{}") -> Path:
    folder = tmp / "bomb"
    folder.mkdir()
    (folder / "kubernetes.yaml").write_bytes(kube)
    (folder / "aws.json").write_bytes(aws_json)
    return folder


def _tar_bytes(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _tar_gz_bomb(path: Path, big_name: str, big_mib: int, fill: bytes, rest: dict[str, bytes]) -> Path:
    """A .tar.gz whose first member is `big_mib` MiB of `fill`, then `rest`: a gzip file may hold
    several members back to back, so one compressed MiB repeated makes ~1 KB per MiB on disk."""
    info = tarfile.TarInfo(big_name)
    info.size = big_mib * MIB
    block = gzip.compress(fill * MIB, mtime=0)
    with path.open("wb") as out:
        out.write(gzip.compress(info.tobuf(), mtime=0))
        for _ in range(big_mib):
            out.write(block)
        out.write(gzip.compress(_tar_bytes(rest), mtime=0))
    return path


def _alias_bomb(tmp: Path) -> tuple[Path, str, str]:
    folder = tmp / "bomb"
    shutil.copytree(BASELINE, folder)
    laughs = (CORPUS / "bundles" / "alias-bomb.kubernetes.yaml").read_bytes()
    with (folder / "kubernetes.yaml").open("ab") as kube:
        kube.write(b"---\n" + laughs)
    return folder, "kubernetes.yaml", "aliases expand"


def _deep_flow(tmp: Path) -> tuple[Path, str, str]:
    kube = b"apiVersion: v1\nkind: List\nitems: " + b"[" * 25_000 + b"]" * 25_000 + b"\n"
    return _folder(tmp, kube), "kubernetes.yaml", "nested deeper than 256 levels"


def _deep_block(tmp: Path) -> tuple[Path, str, str]:
    # Block style: compact nested sequences, "- - - ... x", one level per two characters.
    kube = b"apiVersion: v1\nkind: List\nitems:\n" + b"- " * 25_000 + b"x\n"
    return _folder(tmp, kube), "kubernetes.yaml", "nested deeper than 256 levels"


def _deep_json_kube(tmp: Path) -> tuple[Path, str, str]:
    kube = b'{"kind": "List", "items": ' + b"[" * 25_000 + b"]" * 25_000 + b"}"
    return _folder(tmp, kube), "kubernetes.yaml", "nested deeper than 256 levels"


def _deep_json_aws(tmp: Path) -> tuple[Path, str, str]:
    aws_json = b'{"a": ' * 25_000 + b"1" + b"}" * 25_000
    return _folder(tmp, b"kind: List\nitems: []\n", aws_json), "aws.json", "nested deeper than 256 levels"


def _gzip_member_bomb(tmp: Path) -> tuple[Path, str, str]:
    # ~250 KB on disk, 250 MiB of kubernetes.yaml: under the old 256 MiB cap, read whole, decoded
    # and parsed (~700 MB) before anything was refused.
    path = _tar_gz_bomb(tmp / "bomb.tar.gz", "bomb/kubernetes.yaml", 250, b" ", {"bomb/aws.json": b"{}"})
    return path, "bomb/kubernetes.yaml", "larger than"


def _gzip_stream_bomb(tmp: Path) -> tuple[Path, str, str]:
    # The bomb is a member nobody reads; the real bundle follows it.
    rest = {"bomb/kubernetes.yaml": b"kind: List\nitems: []\n", "bomb/aws.json": b"{}"}
    path = _tar_gz_bomb(tmp / "bomb.tar.gz", "bomb/padding.bin", 400, b"\0", rest)
    return path, "bomb.tar.gz", "expands to more than"


def _zip_bomb(tmp: Path) -> tuple[Path, str, str]:
    path = tmp / "bomb.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb/aws.json", "{}")
        with archive.open("bomb/kubernetes.yaml", "w", force_zip64=True) as member:
            for _ in range(100):
                member.write(b" " * MIB)
    return path, "bomb/kubernetes.yaml", "larger than"


BUNDLE_BOMBS: dict[str, Callable[[Path], tuple[Path, str, str]]] = {
    "yaml-aliases-10^8-items": _alias_bomb,
    "yaml-25000-nested-flow": _deep_flow,
    "yaml-25000-nested-block": _deep_block,
    "json-25000-nested-kubernetes": _deep_json_kube,
    "json-25000-nested-aws": _deep_json_aws,
    "gzip-member-250mib": _gzip_member_bomb,
    "gzip-stream-400mib-unread-member": _gzip_stream_bomb,
    "zip-member-100mib": _zip_bomb,
}


@pytest.mark.slow
@pytest.mark.parametrize("bomb", list(BUNDLE_BOMBS))
def test_a_bundle_bomb_is_refused_in_seconds_and_bounded_memory(bomb: str, tmp_path: Path) -> None:
    path, file, message = BUNDLE_BOMBS[bomb](tmp_path)
    outcome = analyze_measured(path, "--format", "json")  # json: fixes are generated too
    assert outcome["returncode"] == 2, outcome  # not 0, not 1, not -11 (SIGSEGV), not -9 (OOM)
    assert file in outcome["stderr"] and message in outcome["stderr"], outcome["stderr"]
    assert outcome["seconds"] < BOMB_SECONDS, outcome
    assert outcome["maxrss_mb"] < BOMB_MAX_RSS_MB, outcome
