"""Verifying a fix: the inventory as it will be once the fix is applied and reconciled, for the
analysis to judge again (`apply_fix_to_inventory`)."""

from __future__ import annotations

import copy
from typing import Any

from bindings.analysis import model as m
from bindings.analysis.normalize import normalize_kubernetes

from .model import Fix, PlannedRule
from .peers import has_equivalent
from .security_groups import SecurityGroupPlanner
from .world import World


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


def _replace_binding(inv: m.Inventory, binding: m.Binding, manifest: dict[str, Any]) -> m.Binding:
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
    planner = SecurityGroupPlanner(World(inv, result, binding, tg), set(), [], [])
    ingress = ((binding.raw.get("spec") or {}).get("networking") or {}).get("ingress") or []
    return planner.controller_rules(list(ingress), description=m.CONTROLLER_RULE_DESCRIPTION)


def _authorize(inv: m.Inventory, rule: PlannedRule) -> None:
    sg = inv.security_groups.get(rule.security_group_id)
    if sg is None:
        return
    egress = rule.direction == "egress"
    if has_equivalent(
        sg, rule.protocol, rule.from_port, rule.to_port, (rule.peer_kind, rule.peer), egress=egress
    ):
        return
    if egress:
        sg.egress = (*sg.egress, rule.as_model())
    else:
        sg.ingress = (*sg.ingress, rule.as_model())
