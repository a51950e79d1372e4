"""`InventoryIndex`: the lookups built once per inventory and the judgement caches every binding
shares; and `controller_security_group`, the group the controller writes a binding's rules to."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from .. import model as m
from ..netset import NetSet, union_all
from .common import _cidrs
from .compiled import SourceGroups
from .load_balancers import _LoadBalancerIndex


def controller_security_group(
    sg_ids: Sequence[str],
    security_groups: dict[str, m.SecurityGroup],
    cluster: str,
    eni_sg_tags: dict[str, str] | None = None,
) -> str | tuple[str, ...] | None:
    """The security group the controller writes a binding's networking rules to on one ENI.

    The controller's `resolveEndpointSGForENI` (pkg/networking/networking_manager.go): the only
    group of the ENI, whatever its tags; else the one group carrying the tag key
    `kubernetes.io/cluster/<cluster>` and, when the controller runs with
    `--service-target-eni-security-group-tags`, every one of those tags with the same value (an
    empty value must be present and empty). Returns the group id; a tuple of the matching ids
    (empty or several) when the controller errors because not exactly one matches; None when a
    group of the ENI is not in `security_groups` (the choice cannot be known).

    Pure and the one home of this choice: the analysis, the fix generator and the demo's emulated
    controller all call it.
    """
    ids = tuple(sg_ids)
    if len(ids) == 1:
        return ids[0]
    groups = [security_groups.get(s) for s in ids]
    if any(g is None for g in groups):
        return None
    cluster_tag = f"kubernetes.io/cluster/{cluster}"
    required = eni_sg_tags or {}
    matching = []
    for sg_id, group in zip(ids, groups, strict=True):
        tags = (group.tags if group is not None else None) or {}
        if cluster_tag in tags and all(k in tags and tags[k] == v for k, v in required.items()):
            matching.append(sg_id)
    return matching[0] if len(matching) == 1 else tuple(matching)


class InventoryIndex(_LoadBalancerIndex):
    """Lookups built once per inventory, and caches of judgements shared by all bindings.

    Public for the emulated controller, which resolves a binding's endpoints to ENIs exactly as the
    analysis does: `InventoryIndex(inventory)`, its tables and `eni_for_ip`. Its parts, each with
    its tables and judgements: `_NetworkAclIndex`, `_SecurityGroupIndex`, `_TargetIndex`,
    `_LoadBalancerIndex`."""

    def __init__(self, inv: m.Inventory) -> None:
        self.inv = inv
        # Built once per analysis and timed with it: the loops bind their tables to locals.
        self._index_listeners(inv)
        self.tg_by_name = {tg.name: tg for tg in inv.target_groups.values() if tg.name}
        self._index_network_interfaces(inv)
        self._index_pods(inv)

        slices_by_service: dict[tuple[str, str], list[m.EndpointSlice]] = defaultdict(list)
        for eps in inv.endpoint_slices or ():
            if eps.service_name:
                slices_by_service[(eps.namespace, eps.service_name)].append(eps)
        self.slices_by_service = slices_by_service

        self._index_network_acls(inv)
        self._index_security_groups()
        self._index_load_balancers(inv)
        self._index_targets()
        self._summary: dict[int | tuple[int, ...], tuple[NetSet, str, tuple[str, ...]]] = {}
        self._controller_sg: dict[tuple[str, ...], object] = {}
        self._bindings_by_tg: dict[str, list[m.Binding]] | None = None
        self.client_cache: dict[tuple[Any, ...], tuple[NetSet, str]] = {}
        self.groups_cache: dict[tuple[Any, ...], SourceGroups] = {}
        self.groups_intern: dict[SourceGroups, SourceGroups] = {}
        self.cluster_tag = f"kubernetes.io/cluster/{inv.cluster}"
        self._unreconciled: dict[tuple[Any, ...], tuple[dict[str, str], ...]] = {}

    def controller_sg(self, sg_ids: tuple[str, ...]) -> str | tuple[str, ...] | None:
        """`controller_security_group` for this inventory's cluster and tag flag, cached per ENI groups."""
        found = self._controller_sg.get(sg_ids, self)
        if found is not self:
            return found  # type: ignore[return-value]
        inv = self.inv
        result = controller_security_group(sg_ids, inv.security_groups, inv.cluster, inv.eni_sg_tags)
        self._controller_sg[sg_ids] = result
        return result

    def bindings_by_tg(self) -> dict[str, list[m.Binding]]:
        """The bindings of this cluster by target group ARN (built on first use)."""
        found = self._bindings_by_tg
        if found is None:
            found = self._bindings_by_tg = defaultdict(list)
            for binding in self.inv.bindings:
                arn = binding.target_group_arn
                if arn is None and binding.target_group_name:
                    tg = self.tg_by_name.get(binding.target_group_name)
                    arn = tg.arn if tg is not None else None
                if arn:
                    found[arn].append(binding)
        return found

    def summary(
        self, group_sets: tuple[SourceGroups, ...], lbs: list[str]
    ) -> tuple[NetSet, str, tuple[str, ...]]:
        """Expected sources of a protocol (union, text, LB groups + CIDRs), cached: bindings share them."""
        # The groups are interned by content, so their ids say everything that decides the
        # summary (the LBs only select them): bindings of different LBs with equal sources share it.
        key = id(group_sets[0]) if len(group_sets) == 1 else tuple(map(id, group_sets))
        found = self._summary.get(key)
        if found is None:
            union = union_all(cidrs for groups in group_sets for _, cidrs in groups)
            lb_sgs = sorted({sg for groups in group_sets for sgs, _ in groups for sg in sgs})
            found = self._summary[key] = (union, str(union), tuple(lb_sgs) + _cidrs(union))
        return found
