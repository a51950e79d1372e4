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

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from django.utils.html import escape

from bindings import aws, kube, polling, textsafe
from bindings import models as m
from bindings.analysis.bundle import _parse_json, _parse_yaml, load_bundle
from bindings.textsafe import visible_markup
from tests.conftest import SCENARIOS

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
    # The bundle loader's own parsers: the corpus also proves they accept (or cleanly refuse)
    # what an offline bundle could hold. 1000 levels of nesting need a deeper stack than
    # Python's default; the loader maps a RecursionError to a BundleError, which would fail here.
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        if path.suffix == ".yaml":
            kube_objects, responses = _parse_yaml(data, path.name), {}
            text = data.decode()
            lines = text.splitlines()
            expects = [line.split(":", 1)[1].strip() for line in lines if line.startswith("# expect:")]
            none = "# expect-none" in text
        else:
            responses = _parse_json(data, path.name)
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


@pytest.fixture
def world(monkeypatch) -> dict[str, Any]:
    """Sources whose collectors return the baseline (plus whatever the test adds): the poll
    path from normalisation on is the product's own."""
    bundle = load_bundle(BASELINE)
    account = m.AwsAccount.objects.create(name="corpus", account_id="123456789012", region="us-east-1")
    cluster = m.Cluster.objects.create(
        name="demo", connection=m.Cluster.Connection.URL, api_url="http://127.0.0.1:9", aws_account=account
    )
    state: dict[str, Any] = {"kube": list(bundle.kube_objects), "aws": bundle.aws}
    monkeypatch.setattr(
        kube, "collect_cluster", lambda conn, **_: kube.KubeSnapshot(objects=state["kube"], api_calls={})
    )
    monkeypatch.setattr(aws, "collect_account", lambda target, **_: aws.AwsSnapshot(responses=state["aws"]))
    state.update(cluster=cluster, account=account)
    return state


def _poll(world: dict[str, Any]) -> tuple[m.PollRun, m.PollRun]:
    cluster, account = world["cluster"], world["account"]
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
def test_a_hostile_file_is_polled_judged_and_rendered_and_its_defects_are_visible(path, world, client, alice):
    kube_objects, responses, expects, expect_none = _load(path)
    world["kube"] = world["kube"] + kube_objects
    world["aws"] = _merge(world["aws"], responses)
    cluster, account = world["cluster"], world["account"]

    cluster_run, account_run = _poll(world)

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
def test_the_whole_corpus_at_once_still_judges_the_healthy_bindings(world, client, alice):
    """Every hostile file in one poll: defects of different kinds must not compound."""
    for path in FILES:
        kube_objects, responses, _, _ = _load(path)
        world["kube"] = world["kube"] + kube_objects
        world["aws"] = _merge(world["aws"], responses)

    cluster_run, account_run = _poll(world)
    # a second, identical poll is a no-op even with hostile data (digests are stable)
    again = polling.cluster_poll(cluster=world["cluster"])

    assert cluster_run.status == account_run.status == again.status == m.PollRun.Status.SUCCESS
    assert again.rows_written == 0
    healthy = {
        name: {protocol: verdict}
        for name, protocol, verdict in m.ProtocolVerdict.objects.filter(
            binding__cluster=world["cluster"], binding__namespace="kube-system"
        ).values_list("binding__name", "protocol", "verdict")
    }
    assert healthy == _baseline_verdicts()
    client.force_login(alice)
    assert client.get("/bindings/").status_code == 200
    assert client.get("/api/v1/bindings", {"limit": 200}).status_code == 200
