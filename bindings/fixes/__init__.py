"""Fixes for bindings with fixable findings: generate, render, and apply to an inventory (pure).

Public API:
- `generate_fix(inventory, result, index=None) -> Fix | None`; `FixIndex(inventory)` built once
  and passed to every call of one inventory keeps a run linear; `generate_fixes(inventory, results)`
- `fix_to_dict(fix) -> dict` (JSON-able, for the API and the dashboard panel)
- `fix_to_yaml(fix) -> str` (the download: the TGB manifest, ready for `kubectl apply`)
- `apply_fix_to_inventory(inventory, fix) -> Inventory` (a copy with the fix applied the way the
  controller and AWS would apply it; the analysis of that copy verifies the fix)
- `validate_manifest(obj) -> list[str]` (the TGB v1beta1 CRD schema)

The modules, in the order a fix is made:
- `world`: the inventory indexed once (`FixIndex`) and one binding's world (`World`)
- `generate`: which findings are fixable, and the entry points
- `planner`: what the targets must admit, the health-check change, and the plan putting it together
- `manifest`, `security_groups`, `acls`: the parts of the plan (TGB, rules, ACL entries)
- `quota`, `explain`: rule counts against the quota, and the texts
- `model`: what a fix is made of; `peers`, `text`: the helpers every part shares
- `render`: the fix as data, YAML, `aws` commands and Terraform; `schema`: the CRD schema
- `verify`: the inventory as it will be once the fix is applied
"""

from __future__ import annotations

from bindings.vocabulary import FIXABLE_CODES

from . import render
from .generate import generate_fix, generate_fixes
from .model import RULE_LIMIT, Fix, HealthCheckChange, PlannedAclEntry, PlannedRule
from .render import fix_to_dict, fix_to_yaml
from .schema import validate_manifest
from .verify import apply_fix_to_inventory
from .world import FixIndex

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
    "render",
    "validate_manifest",
]
