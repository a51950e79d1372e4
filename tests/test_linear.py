"""Linear at scale (issue 16): work per binding never scans the inventory, and the faster paths
give exactly what the slow ones gave.

Counted, never timed: the number of times fix generation walks the inventory's pods, listeners
and bindings must not grow with the number of bindings.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from benchmarks import bundlegen
from bindings.analysis import model as m
from bindings.analysis.bundle import bundle_inventory, load_bundle
from bindings.analysis.engine import analyze
from bindings.fixes import FixIndex, fix_to_dict, generate_fix, generate_fixes, validate_manifest
from bindings.fixes.schema import load_schema
from bindings.store.fieldmaps import jsonable


class _CountingDict(dict):
    """A dict that counts whole walks (iteration, keys, values, items)."""

    walks = 0

    def __iter__(self):
        type(self).walks += 1
        return super().__iter__()

    def keys(self):
        type(self).walks += 1
        return super().keys()

    def values(self):
        type(self).walks += 1
        return super().values()

    def items(self):
        type(self).walks += 1
        return super().items()


class _PodDict(_CountingDict):
    walks = 0


class _CountingList(list):
    walks = 0

    def __iter__(self):
        type(self).walks += 1
        return super().__iter__()


class _Listeners(_CountingList):
    walks = 0


class _Bindings(_CountingList):
    walks = 0


def _cluster(tmp_path: Path, n: int) -> tuple[m.Inventory, list[m.BindingResult]]:
    inv = bundle_inventory(load_bundle(bundlegen.write_bundle_json(tmp_path / f"b{n}", n)))
    return inv, analyze(inv)


def _walks(inv: m.Inventory, results: list[m.BindingResult]) -> tuple[dict[str, int], dict[str, Any]]:
    counted = copy.copy(inv)
    counted.pods = _PodDict(inv.pods)
    counted.listeners = _Listeners(inv.listeners)
    counted.bindings = _Bindings(inv.bindings)
    for cls in (_PodDict, _Listeners, _Bindings):
        cls.walks = 0
    fixes = generate_fixes(counted, results)
    walks = {"pods": _PodDict.walks, "listeners": _Listeners.walks, "bindings": _Bindings.walks}
    return walks, fixes


def test_fix_generation_walks_the_inventory_a_constant_number_of_times(tmp_path: Path) -> None:
    small_inv, small_results = _cluster(tmp_path, 30)
    large_inv, large_results = _cluster(tmp_path, 240)
    small, small_fixes = _walks(small_inv, small_results)
    large, large_fixes = _walks(large_inv, large_results)
    # Half the bindings are broken and get a fix (bundlegen), with pods and listeners to look up.
    assert len(small_fixes) == 15 and len(large_fixes) == 120
    assert small_inv.pods and len(large_inv.listeners) == 240
    # One walk each to build the index, whatever the size (before: one per fix).
    assert small == large
    assert all(count <= 1 for count in large.values()), large


def test_the_index_gives_the_fixes_the_per_binding_scan_gave(tmp_path: Path) -> None:
    inv, results = _cluster(tmp_path, 60)
    index = FixIndex(inv)
    for result in results:
        with_index = generate_fix(inv, result, index)
        alone = generate_fix(inv, result)
        assert (with_index is None) == (alone is None)
        if alone is not None:
            assert fix_to_dict(with_index) == fix_to_dict(alone)


def test_index_lookups_keep_first_match_semantics() -> None:
    """Two pods claiming one address: the first by key wins; a result finds its binding by uid
    before name; listeners without a target group belong to every group of their LB."""
    inv = m.Inventory(cluster="c")
    inv.pods["b/second"] = m.Pod("u2", "b", "second", None, ("10.0.0.5",))
    inv.pods["a/first"] = m.Pod("u1", "a", "first", None, ("10.0.0.5", "fd00::5"))
    inv.bindings = [
        m.Binding(uid="x", namespace="ns", name="tgb"),
        m.Binding(uid="y", namespace="ns", name="tgb"),
        m.Binding(uid="", namespace="ns", name="other"),
    ]
    tg = m.TargetGroup("tg-1", load_balancer_arns=("lb-1", "lb-2", "lb-1"))
    inv.listeners = [
        m.Listener("l1", "lb-1", 53, "UDP", ("tg-1", "tg-1")),
        m.Listener("l2", "lb-2", 53, "UDP", ()),
        m.Listener("l3", "lb-3", 53, "UDP", ()),
        m.Listener("l4", "lb-1", 54, "TCP", ("tg-2",)),
    ]
    index = FixIndex(inv)
    assert index.pods_by_ip["10.0.0.5"].name == "first"
    assert index.pods_by_ip["fd00::5"].name == "first"

    def result(uid: str, name: str) -> m.BindingResult:
        return m.BindingResult(
            cluster="c",
            namespace="ns",
            name=name,
            uid=uid,
            target_group_arn="tg-1",
            target_type="ip",
            target_group_protocol="UDP",
            protocols=(),
            health_check=None,
            findings=(),
        )

    assert index.binding(result("y", "tgb")) is inv.bindings[1]
    assert index.binding(result("zzz", "tgb")) is inv.bindings[0]
    assert index.binding(result("", "other")) is inv.bindings[2]
    assert index.binding(result("x", "missing")) is None
    assert [li.arn for li in index.listeners_of(tg)] == ["l1", "l2"]


# --- the one-pass jsonable -----------------------------------------------------------------------


def _jsonable_before(value: Any) -> Any:
    """The implementation `fieldmaps.jsonable` replaced (asdict, then a second walk)."""
    from collections.abc import Mapping
    from dataclasses import is_dataclass

    if is_dataclass(value) and not isinstance(value, type):
        return _jsonable_before(asdict(value))
    if isinstance(value, Mapping):
        return {str(k): _jsonable_before(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable_before(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


@dataclass
class _Odd:
    when: datetime = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    tags: frozenset = frozenset({"b", "a", "ü\u202e"})
    keyed: dict = field(default_factory=lambda: {1: (2, 3), ("t", 1): None, "k": [b"x", 1.5, True]})
    nested: list = field(default_factory=lambda: [m.Problem("o", "f", "<script>")])


def test_jsonable_is_what_asdict_and_the_second_walk_gave(tmp_path: Path) -> None:
    inv, results = _cluster(tmp_path, 30)
    fixes = generate_fixes(inv, results)
    for result in results:
        assert jsonable(result) == _jsonable_before(result)
        # Same text too: key order matters to the digests of stored results.
        assert json.dumps(jsonable(result), default=str) == json.dumps(_jsonable_before(result), default=str)
    assert jsonable(list(fixes.values())) == _jsonable_before(list(fixes.values()))
    for value in (_Odd(), [_Odd(), (_Odd(),)], {"x": _Odd()}, m.Problem, None, "s", 3, inv.bindings[:3]):
        assert json.dumps(jsonable(value), default=str) == json.dumps(_jsonable_before(value), default=str)


# --- the compiled schema check -------------------------------------------------------------------


def _manifest(**spec: Any) -> dict:
    return {
        "apiVersion": "elbv2.k8s.aws/v1beta1",
        "kind": "TargetGroupBinding",
        "metadata": {"name": "tgb", "namespace": "ns", "labels": {"a": "b"}},
        "spec": {"serviceRef": {"name": "svc", "port": 53}, "targetGroupARN": "arn:x", **spec},
    }


HOSTILE_MANIFESTS = [
    _manifest(),
    _manifest(serviceRef={"name": "svc", "port": True}),
    _manifest(serviceRef={"name": "svc", "port": 53.0}),
    _manifest(serviceRef={"name": "svc", "port": 53.5}),
    _manifest(serviceRef={"name": "svc", "port": 2**70}),
    _manifest(serviceRef={"name": "svc", "port": -1}),
    _manifest(serviceRef={"name": "svc", "port": ""}),
    _manifest(serviceRef={"name": "", "port": "dns"}),
    _manifest(targetType="pod"),
    _manifest(vpcID="vpc-0123456789abcdef0"),
    _manifest(vpcID="vpc-0123456789abcdef0\n"),
    _manifest(vpcID="vpc-XYZ"),
    _manifest(unknown=1),
    _manifest(networking={"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}], "ports": []}]}),
    _manifest(
        networking={"ingress": [{"from": [{"ipBlock": {"cidr": "x"}, "securityGroup": {"groupID": "g"}}]}]}
    ),
    _manifest(networking={"ingress": [{"from": [{}], "ports": [{"protocol": "SCTP"}]}]}),
    _manifest(
        networking={
            "ingress": [{"from": [{"securityGroup": {"groupID": "sg-1"}}], "ports": [{"port": "dns"}]}]
        }
    ),
    _manifest(nodeSelector={"matchLabels": {"a": 1}}),
    _manifest(multiClusterTargetGroup="true"),
    {**_manifest(), "metadata": {"name": "tgb", "namespace": "ns", "annotations": {"a": None}}},
    {**_manifest(), "kind": "TargetGroupBindingX"},
    {"apiVersion": "elbv2.k8s.aws/v1beta1"},
    {**_manifest(), "spec": {"serviceRef": {"name": "svc", "port": 53}}},
    [],
    "text",
]


@pytest.mark.parametrize("manifest", HOSTILE_MANIFESTS, ids=range(len(HOSTILE_MANIFESTS)))
def test_the_compiled_check_agrees_with_jsonschema(manifest: Any) -> None:
    schema = load_schema()
    slow = sorted(
        f"{'.'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
        for e in jsonschema.validators.validator_for(schema)(schema).iter_errors(manifest)
    )
    assert sorted(validate_manifest(manifest)) == slow


def test_every_generated_manifest_validates(tmp_path: Path) -> None:
    inv, results = _cluster(tmp_path, 30)
    fixes = generate_fixes(inv, results)
    kinds = Counter(fix.mode for fix in fixes.values())
    assert kinds["networking"] == len(fixes) == 15
    for fix in fixes.values():
        assert fix.manifest is not None and validate_manifest(fix.manifest) == []
        assert fix.manifest_errors == []


# --- the engine's caches with load-balancer security groups ---------------------------------------


def _varied_lb_groups(n: int) -> m.Inventory:
    """The benchmark inventory with groups on every NLB whose rules differ by listener port,
    protocol and family: what a cache keyed too coarsely would get wrong."""
    from benchmarks import bench_analysis

    inv = bench_analysis.build(n, 3, lb_security_groups=True)
    rule = bench_analysis._rule
    inv.security_groups["sg-lb-narrow"] = m.SecurityGroup(
        "sg-lb-narrow",
        vpc_id=bench_analysis.VPC,
        ingress=(
            m.SecurityGroupRule("udp", 10000, 10049, "cidr", "10.0.0.0/9"),
            m.SecurityGroupRule("tcp", 10000, 10099, "cidr", "10.128.0.0/9"),
            m.SecurityGroupRule("udp", 10050, 10099, "cidr", "10.0.0.0/8"),
        ),
        # Out only to half the VPC, and to IPv6 everywhere: targets elsewhere are refused.
        egress=(rule("-1", None, "10.0.0.0/9"), rule("-1", None, "::/0")),
    )
    inv.security_groups["sg-lb-v6"] = m.SecurityGroup(
        "sg-lb-v6",
        vpc_id=bench_analysis.VPC,
        ingress=(rule("-1", None, "10.0.0.0/8"),),
        egress=(rule("udp", None, "0.0.0.0/0"), rule("tcp", None, "::/0")),
    )
    for i, lb in enumerate(inv.load_balancers.values()):
        lb.security_groups = (
            (bench_analysis.LB_SG,),
            ("sg-lb-narrow",),
            ("sg-lb-v6",),
            (bench_analysis.LB_SG, "sg-lb-narrow"),
            (),
        )[i % 5]
    for i, tg in enumerate(inv.target_groups.values()):
        if i % 4 == 0:
            tg.attributes = {"preserve_client_ip.enabled": "true"}
    return inv


def test_lb_group_caches_give_what_each_binding_alone_gives() -> None:
    inv = _varied_lb_groups(100)
    together = analyze(inv)
    verdicts = Counter(p.verdict for r in together for p in r.protocols)
    assert verdicts["blocked"] and verdicts["reachable"] and verdicts["partial"]
    assert any("allow no outbound" in reason for r in together for p in r.protocols for reason in p.reasons)
    by_uid = {r.uid: r for r in together}
    assert len(by_uid) == len(inv.bindings) == 100
    for binding in inv.bindings:
        result = by_uid[binding.uid]
        alone = copy.copy(inv)
        alone.bindings = [binding]
        (single,) = analyze(alone)  # a fresh index: nothing cached from other bindings
        assert jsonable(single) == jsonable(result), binding.name
