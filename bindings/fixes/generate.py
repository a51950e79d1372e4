"""Turn a binding's findings into the change that repairs them (docs/DESIGN.md "Fix manifests").

Pure: no Django, no network, no clock. Input is the `Inventory` the analysis ran on and that
binding's `BindingResult`; output is a `Fix` holding plain data, rendered by `fix_to_dict` /
`fix_to_yaml` and checked by `apply_fix_to_inventory` + the analysis.

What the fix contains, in the order an SRE reaches for it:

1. The TGB itself (the primary lever): `spec.networking.ingress` covering every carried protocol
   on each target's traffic port, and TCP on the health-check port (docs/facts.md §3.4, §6).
   Peers: the load balancer's security group when it has one; otherwise the client ranges for
   traffic whose client IP is preserved, and the load balancer's subnets for everything else
   (health checks always). Existing rules that still work are kept; broken ones are repaired
   (`ports: []` creates no rule, §2.3; instance targets need the NodePort, [I#1712]; invalid peers
   make the controller fail the whole binding). A numeric `serviceRef.port` that names both a TCP
   and a UDP Service port becomes the named port (§2.6).
2. Security-group rules: the exact rules missing on the targets' security groups, as
   `aws ec2 authorize-security-group-ingress` commands and Terraform. They are *required* where the
   TGB is not the lever — the controller cannot choose a group (SECURITY_GROUP_TAG_AMBIGUOUS,
   §2.2) or has not applied networking that is already right (NETWORKING_NOT_RECONCILED) — and an
   *alternative* for operators who manage these rules outside the controller otherwise.
3. Health check: `aws elbv2 modify-target-group` when the check probes another port than the
   traffic and the targets also accept TCP on the traffic port.
4. The load balancer's own outbound rules, where they refuse traffic or health checks to targets:
   an egress rule on its first group to the targets' group (`direction: egress`), required.
5. Network ACL entries, where an ACL of the targets' subnet refuses what the security groups admit
   (inbound to the port, or the replies on ephemeral ports): one `allow` entry per refused CIDR,
   numbered just below the refusing entry so AWS evaluates it first
   (`aws ec2 create-network-acl-entry` and Terraform `aws_network_acl_rule`), required.
"""

from __future__ import annotations

from collections.abc import Iterable

from bindings.analysis import model as m
from bindings.vocabulary import FIXABLE_CODES, Code

from .model import Fix
from .peers import has_equivalent
from .planner import Planner
from .world import FixIndex, World

# Its name before the package was split, still imported by tests/test_rules.py.
_has_equivalent = has_equivalent


def _is_ambiguity(f: m.Finding) -> bool:
    protocols = f.evidence.get("protocols") if isinstance(f.evidence, dict) else None
    return (
        f.code == Code.SERVICE_PROTOCOL_MISMATCH
        and isinstance(protocols, list)
        and {"TCP", "UDP"} <= set(protocols)
    )


def _is_unresolved_named_port(f: m.Finding) -> bool:
    return f.code == Code.INVALID_SPEC and isinstance(f.evidence, dict) and bool(f.evidence.get("namedPort"))


def generate_fix(
    inventory: m.Inventory, result: m.BindingResult, index: FixIndex | None = None
) -> Fix | None:
    """The change that repairs `result`'s fixable findings, or None when nothing is fixable.

    For more than one result of the same inventory, pass one `FixIndex(inventory)` to every call
    (or use `generate_fixes`): without it each call indexes the whole inventory again.
    """
    codes = {f.code for f in result.findings}
    fixable = codes & FIXABLE_CODES
    if any(_is_unresolved_named_port(f) for f in result.findings):
        # The named port becomes its number in the manifest (`repaired_port`).
        fixable.add(Code.INVALID_SPEC)
    if Code.SERVICE_PROTOCOL_MISMATCH in fixable and not any(_is_ambiguity(f) for f in result.findings):
        fixable.discard(Code.SERVICE_PROTOCOL_MISMATCH)
    if not fixable:
        return None
    tg = inventory.target_groups.get(result.target_group_arn or "")
    if tg is None:
        return None
    index = index if index is not None else FixIndex(inventory)
    binding = index.binding(result)
    if binding is None:
        return None
    return Planner(World(inventory, result, binding, tg, index), fixable).plan()


def generate_fixes(inventory: m.Inventory, results: Iterable[m.BindingResult]) -> dict[str, Fix]:
    """The fix of every result that has one, keyed by binding uid; the inventory indexed once."""
    index = FixIndex(inventory)
    out: dict[str, Fix] = {}
    for result in results:
        fix = generate_fix(inventory, result, index)
        if fix is not None:
            out[result.uid] = fix
    return out
