"""Fixes for bindings with fixable findings: generate, render, and apply to an inventory (pure).

Public API:
- `generate_fix(inventory, result, index=None) -> Fix | None`; `FixIndex(inventory)` built once
  and passed to every call of one inventory keeps a run linear; `generate_fixes(inventory, results)`
- `fix_to_dict(fix) -> dict` (JSON-able, for the API and the dashboard panel)
- `fix_to_yaml(fix) -> str` (the download: the TGB manifest, ready for `kubectl apply`)
- `apply_fix_to_inventory(inventory, fix) -> Inventory` (a copy with the fix applied the way the
  controller and AWS would apply it; the analysis of that copy verifies the fix)
- `validate_manifest(obj) -> list[str]` (the TGB v1beta1 CRD schema)
"""

from __future__ import annotations

import copy
from typing import Any

from bindings.analysis import model as m
from bindings.analysis.normalize import normalize_kubernetes

from . import render
from .generate import (
    FIXABLE_CODES,
    RULE_LIMIT,
    Fix,
    FixIndex,
    HealthCheckChange,
    PlannedAclEntry,
    PlannedRule,
    _has_equivalent,
    _Planner,
    _World,
    generate_fix,
    generate_fixes,
)
from .schema import validate_manifest

__all__ = [
    "FIXABLE_CODES",
    "RULE_LIMIT",
    "Fix",
    "FixIndex",
    "HealthCheckChange",
    "PlannedAclEntry",
    "PlannedRule",
    "apply_fix_to_inventory",
    "fix_to_dict",
    "fix_to_yaml",
    "generate_fix",
    "generate_fixes",
    "validate_manifest",
]


def _copy_tree(value: Any) -> Any:
    """`copy.deepcopy` for the plain JSON trees a fix holds (dicts, lists, scalars), in a tenth of
    the time: every stored fix copies its manifest, patch and counts."""
    if isinstance(value, dict):
        return {k: _copy_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_tree(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_copy_tree(v) for v in value)
    if isinstance(value, str | int | float | bool | None):
        return value
    return copy.deepcopy(value)


def fix_to_dict(fix: Fix) -> dict[str, Any]:
    """The fix as plain JSON-able data (the API's and the panel's shape)."""
    return {
        "binding": {"cluster": fix.cluster, "namespace": fix.namespace, "name": fix.name},
        "mode": fix.mode,
        "summary": fix.summary,
        "explanation": "\n".join(fix.explanation),
        "warnings": list(fix.warnings),
        "targets": list(fix.targets),
        "protocols": list(fix.protocols),
        "manifest": _copy_tree(fix.manifest),
        "manifestYaml": render.to_yaml(fix.manifest) if fix.manifest is not None else "",
        "patch": {"kubectl": fix.kubectl_patch, "body": _copy_tree(fix.patch_body)},
        "securityGroupCommands": list(fix.security_group_commands),
        "securityGroupRules": [
            {
                "securityGroup": r.security_group_id,
                "protocol": r.protocol,
                "fromPort": r.from_port,
                "toPort": r.to_port,
                "peer": r.peer,
                "peerKind": "cidr" if r.peer_kind == "cidr" else "securityGroup",
                "description": r.description,
                "required": r.required,
                "direction": r.direction,
            }
            for r in fix.security_group_rules
        ],
        "networkAclEntries": [
            {
                "networkAclId": e.network_acl_id,
                "ruleNumber": e.rule_number,
                "egress": e.egress,
                "protocol": e.protocol,
                "fromPort": e.from_port,
                "toPort": e.to_port,
                "cidr": e.cidr,
                "action": e.action,
            }
            for e in fix.network_acl_entries
        ],
        "networkAclCommands": list(fix.network_acl_commands),
        "terraform": fix.terraform,
        "healthCheck": [{"command": h.command, "reason": h.reason} for h in fix.health_checks],
        "ruleCount": _copy_tree(fix.rule_counts),
    }


def fix_to_yaml(fix: Fix) -> str:
    """The download: the TGB manifest (one document) when the fix changes the TGB.

    A fix that changes only security groups or the health check has no Kubernetes object to
    apply; its download is the fix itself as a YAML document (commands, Terraform, reasons).
    """
    if fix.manifest is not None:
        return render.to_yaml(fix.manifest)
    return render.to_yaml(fix_to_dict(fix))


def apply_fix_to_inventory(inventory: m.Inventory, fix: Fix) -> m.Inventory:
    """A deep copy of `inventory` as it will be once the fix is applied and reconciled.

    The binding carries the new manifest (re-read the way the poller reads a TGB); the controller's
    reconcile is simulated from that networking (§2.2: the one group it picks per target ENI; §2.3:
    protocol, port or NodePort, peer); the required security-group rules and health-check changes
    are applied as AWS would. Rules the controller would revoke are not removed (no analysis
    verdict depends on a rule being absent).
    """
    inv = copy.deepcopy(inventory)
    binding = next(
        (
            b
            for b in inv.bindings
            if b.namespace == fix.namespace and b.name == fix.name and (not fix.uid or b.uid == fix.uid)
        ),
        None,
    )
    if binding is None:
        return inv
    tg = inv.target_groups.get(fix.target_group_arn or "")
    for change in fix.health_checks:
        if tg is not None and tg.arn == change.target_group_arn:
            tg.health_check_port = change.port
    if fix.manifest is not None:
        binding = _replace_binding(inv, binding, fix.manifest)
    for rule in fix.security_group_rules:
        if rule.required:
            _authorize(inv, rule)
    acls = {a.id: a for a in inv.network_acls}
    for entry in fix.network_acl_entries:
        acl = acls.get(entry.network_acl_id)
        if acl is not None and entry.rule_number not in {
            e.rule_number for e in acl.entries if bool(e.egress) == entry.egress
        }:
            acl.entries = tuple(
                sorted((*acl.entries, entry.as_model()), key=lambda e: (e.egress, e.rule_number))
            )
    if fix.manifest is not None and tg is not None:
        for rule in _controller_writes(inv, binding):
            _authorize(inv, rule)
    return inv


def _replace_binding(inv: m.Inventory, binding: m.Binding, manifest: dict) -> m.Binding:
    """Re-read the binding from the manifest, as the next poll would after the apply."""
    obj = copy.deepcopy(manifest)
    generation = (binding.generation or 0) + 1
    obj["metadata"] = {**obj.get("metadata", {}), "uid": binding.uid, "generation": generation}
    obj["status"] = {"observedGeneration": generation}  # the controller has reconciled it
    records = normalize_kubernetes([obj], cluster=inv.cluster)
    if not records.bindings:
        return binding
    fresh = records.bindings[0]
    fresh.events = binding.events
    fresh.resource_version = binding.resource_version
    inv.bindings[inv.bindings.index(binding)] = fresh
    return fresh


def _controller_writes(inv: m.Inventory, binding: m.Binding) -> list[PlannedRule]:
    """The rules the controller writes for the binding's networking on its targets' groups."""
    from bindings.analysis.engine import analyze

    scratch = copy.copy(inv)
    scratch.bindings = [binding]
    results = analyze(scratch)
    if not results:
        return []
    result = results[0]
    tg = inv.target_groups.get(result.target_group_arn or "")
    if tg is None:
        return []
    planner = _Planner(_World(inv, result, binding, tg), set())
    ingress = ((binding.raw.get("spec") or {}).get("networking") or {}).get("ingress") or []
    return planner.controller_rules(list(ingress), description=m.CONTROLLER_RULE_DESCRIPTION)


def _authorize(inv: m.Inventory, rule: PlannedRule) -> None:
    sg = inv.security_groups.get(rule.security_group_id)
    if sg is None:
        return
    egress = rule.direction == "egress"
    if _has_equivalent(
        sg, rule.protocol, rule.from_port, rule.to_port, (rule.peer_kind, rule.peer), egress=egress
    ):
        return
    if egress:
        sg.egress = (*sg.egress, rule.as_model())
    else:
        sg.ingress = (*sg.ingress, rule.as_model())
