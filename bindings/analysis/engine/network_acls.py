"""The network-ACL part of `InventoryIndex`: ACLs by subnet and VPC, and what they let through."""

from __future__ import annotations

from typing import Any

from .. import model as m
from ..netset import EMPTY, NetSet
from ..rules import norm_proto
from .compiled import AclDenial


class _NetworkAclIndex:
    """The network ACLs by subnet and VPC, and what they let through (cached).

    The root of `InventoryIndex`'s parts: each part adds its tables (built by its `_index_*`
    method, which `InventoryIndex.__init__` calls) and the judgements that read them."""

    # The inventory every part reads (set by `InventoryIndex.__init__`).
    inv: m.Inventory

    def _index_network_acls(self, inv: m.Inventory) -> None:
        self.nacl_by_subnet: dict[str, m.NetworkAcl] = {}
        self.default_nacl_by_vpc: dict[str, m.NetworkAcl] = {}
        for nacl in inv.network_acls or ():
            for subnet_id in nacl.subnet_ids or ():
                self.nacl_by_subnet.setdefault(subnet_id, nacl)
            if nacl.is_default and nacl.vpc_id:
                self.default_nacl_by_vpc.setdefault(nacl.vpc_id, nacl)
        self._nacl: dict[tuple[Any, ...], tuple[NetSet, tuple[AclDenial, ...]]] = {}

    def nacl_for(self, eni: m.NetworkInterface) -> m.NetworkAcl | None:
        if not self.nacl_by_subnet and not self.default_nacl_by_vpc:
            return None
        if eni.subnet_id and eni.subnet_id in self.nacl_by_subnet:
            return self.nacl_by_subnet[eni.subnet_id]
        return self.default_nacl_by_vpc.get(eni.vpc_id or "")

    def nacl_allowed(
        self, nacl: m.NetworkAcl, proto: str, port: int, sources: NetSet, *, egress: bool = False
    ) -> tuple[NetSet, tuple[AclDenial, ...]]:
        """The part of `sources` the ACL lets in (with `egress`: lets out to, on `port`), and the
        entries that denied the rest."""
        key = (nacl.id, proto, port, sources, egress)
        found = self._nacl.get(key)
        if found is not None:
            return found
        remaining = sources
        allowed = EMPTY
        denials: list[AclDenial] = []
        entries = sorted(
            (e for e in nacl.entries or () if bool(e.egress) == egress),
            key=lambda e: e.rule_number if isinstance(e.rule_number, int) else 1 << 30,
        )
        for entry in entries:
            if not remaining:
                break
            entry_proto = norm_proto(entry.protocol)
            if entry_proto not in ("-1", proto):
                continue
            if entry_proto != "-1" and entry.port_from is not None:
                hi = entry.port_to if entry.port_to is not None else entry.port_from
                if not (entry.port_from <= port <= hi):
                    continue
            scope = NetSet.from_cidrs([c for c in (entry.cidr, entry.ipv6_cidr) if c])
            hit = remaining & scope
            if not hit:
                continue
            if str(entry.action).lower() == "allow":
                allowed = allowed | hit
            else:
                denials.append(AclDenial(nacl.id, entry.rule_number, egress, proto, port, port, hit))
            remaining = remaining - hit
        if remaining:
            denials.append(AclDenial(nacl.id, None, egress, proto, port, port, remaining))
        found = (allowed, tuple(denials))
        self._nacl[key] = found
        return found

    def nacl_replies(
        self, nacl: m.NetworkAcl, proto: str, peers: NetSet
    ) -> tuple[NetSet, tuple[AclDenial, ...]]:
        """The part of `peers` the ACL lets the targets' replies out to, on every ephemeral port
        (1024-65535), and why the rest is refused. ACLs are stateless: a reply is a new packet
        (docs/facts.md §3.6). An ACL without outbound entries in the data (AWS always lists at least
        its final deny) is not judged."""
        key = (nacl.id, proto, peers, "replies")
        found = self._nacl.get(key)
        if found is not None:
            return found
        outbound = [e for e in nacl.entries or () if e.egress]
        if not outbound:
            found = (peers, ())
            self._nacl[key] = found
            return found
        # Elementary port intervals: within one, every outbound entry decides the same way.
        bounds = {1024}
        for e in outbound:
            if norm_proto(e.protocol) in ("-1", proto) and e.port_from is not None:
                hi = e.port_to if e.port_to is not None else e.port_from
                bounds |= {b for b in (e.port_from, hi + 1) if 1024 < b <= 65535}
        points = sorted(bounds)
        allowed = peers
        denials: list[AclDenial] = []
        for i, lo in enumerate(points):
            ok, refused = self.nacl_allowed(nacl, proto, lo, peers, egress=True)
            allowed = allowed & ok
            if refused:
                hi = points[i + 1] - 1 if i + 1 < len(points) else 65535
                # The replies' refusal holds across the whole interval (elementary by construction).
                denials.extend(
                    AclDenial(d.acl_id, d.rule_number, True, d.proto, lo, hi, d.cidrs) for d in refused
                )
        found = (allowed, tuple(denials))
        self._nacl[key] = found
        return found
