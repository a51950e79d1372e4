"""One binding's analysis: what it computes (`_Ctx`) and its findings (`_Findings`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ...vocabulary import Code
from .. import model as m
from .common import _SEVERITY_RANK
from .compiled import AclDenial, _Eval, _Target
from .index import InventoryIndex
from .results import _finding


class _Findings:
    """A binding's findings, deduplicated by (code, protocol, message), sorted at the end.

    `keys` holds each finding's sort key, built when it is added, so the final sort compares
    tuples in C instead of calling a key function per finding.
    """

    __slots__ = ("items", "keys", "_seen")

    def __init__(self) -> None:
        self.items: list[m.Finding] = []
        self.keys: list[tuple[int, str, str, str]] = []
        self._seen: set[tuple[str, str | None, str]] = set()

    def extend_unchecked(self, findings: Iterable[m.Finding]) -> None:
        """Add findings without deduplication (the inventory-wide ones, e.g. stale data)."""
        for f in findings:
            self.items.append(f)
            self.keys.append((_SEVERITY_RANK.get(f.severity, 3), f.code, f.protocol or "", f.message))

    def add(
        self,
        code: str,
        severity: m.Severity,
        message: str,
        protocol: m.Protocol | None = None,
        **evidence: Any,
    ) -> None:
        key = (code, protocol, message)
        if key in self._seen:
            return
        self._seen.add(key)
        self.items.append(_finding(code, severity, message, protocol, evidence))
        self.keys.append((_SEVERITY_RANK.get(severity, 3), code, protocol or "", message))

    def invalid(self, obj: str, field: str, message: str) -> None:
        self.add(Code.INVALID_SPEC, "warning", f"{obj}: {field}: {message}", None, object=obj, field=field)

    def sorted(self) -> tuple[m.Finding, ...]:
        items = self.items
        if len(items) < 2:
            return tuple(items)
        # A stable sort of the positions by key: equal keys keep the order they were added in.
        keys = self.keys
        return tuple([items[i] for i in sorted(range(len(items)), key=keys.__getitem__)])


class _Ctx:
    """Everything one binding's analysis computes and the findings read."""

    __slots__ = (
        "ix",
        "b",
        "f",
        "tg",
        "tg_arn",
        "service",
        "sport",
        "sport_matches",
        "target_type",
        "carried",
        "targets",
        "health_known",
        "results",
        "preserved",
        "hc_blocked",
        "hc_admitted",
        "named_ports",
        "lbs_by_proto",
        "traffic_ports",
        "carriers",
        "client_ip_preserved",
        "short",
        "broad_evals",
        "state_counts",
        "unhealthy",
        "declared_ports",
        "uniform",
        "other_cluster",
        "acl_denials",
        "lb_front",
    )

    def __init__(self, ix: InventoryIndex, binding: m.Binding) -> None:
        self.ix = ix
        self.b = binding
        self.f = _Findings()
        self.tg: m.TargetGroup | None = None
        self.tg_arn: str | None = None
        self.service: m.Service | None = None
        self.sport: m.ServicePort | None = None
        self.sport_matches: list[m.ServicePort] = []
        self.target_type: str | None = None
        self.carried: tuple[m.Protocol, ...] = ()
        self.targets: list[_Target] = []
        self.health_known = True
        self.results: list[m.ProtocolResult] = []
        self.preserved: dict[str, bool] = {}
        # Gathered while judging, for the findings passes (which then need no loop of their own):
        # per protocol, the targets short of the client ranges (not admitted via an LB group) and
        # the distinct judgements with over-broad rules; the health-checked targets not admitted.
        self.short: dict[str, list[tuple[_Target, _Eval]]] = {}
        self.broad_evals: dict[str, list[_Eval]] = {}
        self.hc_blocked: list[tuple[_Target, _Eval, int | None]] = []
        self.hc_admitted: bool | None = None
        self.named_ports: dict[str, set[int]] | None = None
        self.lbs_by_proto: dict[str, list[str]] = {}
        self.traffic_ports: list[int] | None = None
        self.carriers: dict[str, list[str]] | None = None
        self.client_ip_preserved: bool | None = None
        # (healthy, unhealthy, other) over every registration, draining included (health check).
        self.state_counts = (0, 0, 0)
        self.unhealthy: list[_Target] = []  # judged targets whose state starts with "unhealthy"
        self.declared_ports: list[tuple[str, int | str | None]] | None = None
        # (jid, port, family) when every target has an ENI, an int port and shares all three:
        # then each protocol and the health check need one judgement for the whole binding.
        self.uniform: tuple[int, int, int] | None = None
        # Registrations of a multi-cluster target group that belong to other clusters: neither
        # judged nor drift (`_own_target_test`).
        self.other_cluster: list[m.TargetHealth] = []
        # Per protocol (and "health" for the health checks): the network-ACL entries refusing it.
        self.acl_denials: dict[str, list[AclDenial]] = {}
        # Per (LB, protocol): `_lb_front`, shared by the inbound refusal, the explicit-client check
        # and the client ranges of the binding.
        self.lb_front: dict[tuple[str, str], tuple[tuple[int, ...], tuple[int, ...]] | None] = {}

    @property
    def obj(self) -> str:
        # Named only in INVALID_SPEC findings, which most bindings never get: built on demand.
        return f"TargetGroupBinding {self.b.namespace}/{self.b.name}"
