"""Fast construction of the result objects (the frozen, slotted dataclasses of `model.py`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from .. import model as m

# The results are frozen, slotted dataclasses: their generated __init__ sets each field through
# object.__setattr__, about three times slower than writing the slots directly, and one analysis of
# 10,000 bindings builds ~125,000 of them (one TargetVerdict per target and protocol). The
# constructors below write the slots through their descriptors. They are used only when the class
# has exactly the fields listed (in that order) and no __post_init__; otherwise (e.g. model.py gained
# an optional field) the dataclass itself is used, so a model change can never leave a slot unset.
# They take their arguments by position only, as every caller passes them, so that the dataclass
# can stand in for them.

_new = object.__new__
# A slot descriptor's __set__: (object, value).
_Setter = Callable[[Any, Any], None]


def _slot_setters(cls: type, names: tuple[str, ...]) -> tuple[_Setter, ...] | None:
    fields = tuple(f.name for f in dataclasses.fields(cls))
    if fields != names or tuple(getattr(cls, "__slots__", ())) != names or hasattr(cls, "__post_init__"):
        return None
    return tuple(cls.__dict__[name].__set__ for name in names)


_TV_SET = _slot_setters(
    m.TargetVerdict,
    (
        "target_id",
        "port",
        "network_interface_id",
        "security_group_ids",
        "admitted",
        "uncovered_sources",
        "matched_rules",
        "reason",
    ),
)
_FINDING_SET = _slot_setters(m.Finding, ("code", "severity", "message", "protocol", "evidence"))
_PR_SET = _slot_setters(
    m.ProtocolResult,
    (
        "protocol",
        "port",
        "verdict",
        "targets_total",
        "targets_admitted",
        "client_ip_preserved",
        "expected_sources",
        "reasons",
        "targets",
    ),
)

_BR_SET = _slot_setters(
    m.BindingResult,
    (
        "cluster",
        "namespace",
        "name",
        "uid",
        "target_group_arn",
        "target_type",
        "target_group_protocol",
        "protocols",
        "health_check",
        "findings",
    ),
)
_HC_SET = _slot_setters(
    m.HealthCheckResult,
    ("protocol", "port", "path", "proves", "cannot_prove", "admitted", "healthy", "unhealthy", "other"),
)

if _TV_SET is not None:
    _tv0, _tv1, _tv2, _tv3, _tv4, _tv5, _tv6, _tv7 = _TV_SET

    def _target_verdict(
        target_id: str,
        port: int | None,
        eni_id: str | None,
        sg_ids: tuple[str, ...],
        admitted: bool | None,
        uncovered: tuple[str, ...],
        rules: tuple[str, ...],
        reason: str,
        /,
    ) -> m.TargetVerdict:
        obj = _new(m.TargetVerdict)
        _tv0(obj, target_id)
        _tv1(obj, port)
        _tv2(obj, eni_id)
        _tv3(obj, sg_ids)
        _tv4(obj, admitted)
        _tv5(obj, uncovered)
        _tv6(obj, rules)
        _tv7(obj, reason)
        return obj

else:
    _target_verdict = m.TargetVerdict

if _FINDING_SET is not None:
    _f0, _f1, _f2, _f3, _f4 = _FINDING_SET

    def _finding(
        code: str,
        severity: m.Severity,
        message: str,
        protocol: m.Protocol | None,
        evidence: dict[str, Any],
        /,
    ) -> m.Finding:
        obj = _new(m.Finding)
        _f0(obj, code)
        _f1(obj, severity)
        _f2(obj, message)
        _f3(obj, protocol)
        _f4(obj, evidence)
        return obj

else:
    _finding = m.Finding

if _PR_SET is not None:
    _p0, _p1, _p2, _p3, _p4, _p5, _p6, _p7, _p8 = _PR_SET

    def _protocol_result(
        protocol: m.Protocol,
        port: int | None,
        verdict: m.Verdict,
        total: int,
        admitted: int,
        preserved: bool,
        expected: tuple[str, ...],
        reasons: tuple[str, ...],
        targets: tuple[m.TargetVerdict, ...] = (),
        /,
    ) -> m.ProtocolResult:
        obj = _new(m.ProtocolResult)
        _p0(obj, protocol)
        _p1(obj, port)
        _p2(obj, verdict)
        _p3(obj, total)
        _p4(obj, admitted)
        _p5(obj, preserved)
        _p6(obj, expected)
        _p7(obj, reasons)
        _p8(obj, targets)
        return obj

else:
    _protocol_result = m.ProtocolResult

if _BR_SET is not None:
    _b0, _b1, _b2, _b3, _b4, _b5, _b6, _b7, _b8, _b9 = _BR_SET

    def _binding_result(
        cluster: str,
        namespace: str,
        name: str,
        uid: str,
        arn: str | None,
        target_type: str | None,
        tg_protocol: str | None,
        protocols: tuple[m.ProtocolResult, ...],
        hc: m.HealthCheckResult | None,
        findings: tuple[m.Finding, ...],
        /,
    ) -> m.BindingResult:
        obj = _new(m.BindingResult)
        _b0(obj, cluster)
        _b1(obj, namespace)
        _b2(obj, name)
        _b3(obj, uid)
        _b4(obj, arn)
        _b5(obj, target_type)
        _b6(obj, tg_protocol)
        _b7(obj, protocols)
        _b8(obj, hc)
        _b9(obj, findings)
        return obj

else:
    _binding_result = m.BindingResult

if _HC_SET is not None:
    _h0, _h1, _h2, _h3, _h4, _h5, _h6, _h7, _h8 = _HC_SET

    def _health_check_result(
        protocol: str | None,
        port: str | None,
        path: str | None,
        proves: str,
        cannot_prove: str,
        admitted: bool | None,
        healthy: int,
        unhealthy: int,
        other: int,
        /,
    ) -> m.HealthCheckResult:
        obj = _new(m.HealthCheckResult)
        _h0(obj, protocol)
        _h1(obj, port)
        _h2(obj, path)
        _h3(obj, proves)
        _h4(obj, cannot_prove)
        _h5(obj, admitted)
        _h6(obj, healthy)
        _h7(obj, unhealthy)
        _h8(obj, other)
        return obj

else:
    _health_check_result = m.HealthCheckResult
