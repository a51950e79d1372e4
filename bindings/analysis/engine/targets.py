"""The target part of `InventoryIndex`: network interfaces and pods by address, and registered
targets resolved to their network interface."""

from __future__ import annotations

import ipaddress
from collections import defaultdict

from .. import model as m
from ..netset import EMPTY, parse_network
from ..normalize import pod_eni_entries
from .common import _norm_ip
from .compiled import _Target
from .results import _new
from .security_groups import _SecurityGroupIndex


class _TargetIndex(_SecurityGroupIndex):
    """Network interfaces by address, instance and description, pods by address, and registered
    targets resolved to their network interface (cached per target)."""

    def _index_network_interfaces(self, inv: m.Inventory) -> None:
        self.eni_by_ip: dict[str, m.NetworkInterface] = {}
        self.eni_prefixes: dict[tuple[int, int], dict[int, m.NetworkInterface]] = defaultdict(dict)
        self.primary_eni_by_instance: dict[str, m.NetworkInterface] = {}
        self.enis_by_description: dict[str, list[m.NetworkInterface]] = defaultdict(list)
        enis = sorted(inv.network_interfaces.values(), key=lambda e: str(e.id))
        # The first ENI (by id) holding an address wins. Filling the table from the last ENI to
        # the first lets C-level dict updates (one per ENI, not one call per address) keep that
        # rule: an earlier ENI overwrites a later one. `_norm_ip` never returns "".
        eni_by_ip = self.eni_by_ip
        norm_ip = _norm_ip
        for eni in reversed(enis):
            addresses = (*(eni.private_ips or ()), *(eni.ipv6_addresses or ()))
            eni_by_ip.update(dict.fromkeys(filter(None, map(norm_ip, addresses)), eni))
        for eni in enis:
            for prefix in (*(eni.ipv4_prefixes or ()), *(eni.ipv6_prefixes or ())):
                network = parse_network(prefix)
                if network is not None:
                    key = (network.version, network.prefixlen)
                    self.eni_prefixes[key].setdefault(int(network.network_address), eni)
            if eni.instance_id and eni.device_index == 0:
                self.primary_eni_by_instance.setdefault(eni.instance_id, eni)
            if eni.description:
                self.enis_by_description[eni.description].append(eni)
        for instance in inv.instances.values():
            if instance.primary_network_interface_id:
                primary = inv.network_interfaces.get(instance.primary_network_interface_id)
                if primary is not None:
                    self.primary_eni_by_instance[instance.id] = primary

    def _index_pods(self, inv: m.Inventory) -> None:
        self.pods_by_ip: dict[str, m.Pod] = {}
        for key in sorted(inv.pods):
            pod = inv.pods[key]
            for address in pod.ips or ():
                ip = _norm_ip(address)
                if ip is not None:
                    self.pods_by_ip.setdefault(ip, pod)

        # The pods of pods_by_ip that have their own ENI (security groups for pods): usually none,
        # so most target lookups skip this table.
        self.pod_eni_pods_by_ip = {ip: pod for ip, pod in self.pods_by_ip.items() if pod.pod_eni}

    def _index_targets(self) -> None:
        self._targets: dict[tuple[str, str | None, str | None], _Target] = {}
        # id(ENI) -> (security group ids, network ACL, jid, groups all known); the ENIs live in
        # the inventory for the whole analysis, so id() is stable.
        self._eni_info: dict[int, tuple[tuple[str, ...], m.NetworkAcl | None, int, bool]] = {}

    def resolve_target(
        self, th: m.TargetHealth, port: int | None, target_type: str | None, tg: m.TargetGroup
    ) -> _Target:
        # The resolution does not depend on the port: cached per id, type and address type (the
        # first registration's object serves as the prototype), cloned for every later
        # registration so each binding's health and port stay its own.
        key = (th.target_id, target_type, tg.ip_address_type)
        found = self._targets.get(key)
        if found is not None:
            return found.clone(th, port)
        return self.resolve_new(key, th, port, target_type, tg)

    def resolve_new(
        self,
        key: tuple[str, str | None, str | None],
        th: m.TargetHealth,
        port: int | None,
        target_type: str | None,
        tg: m.TargetGroup,
    ) -> _Target:
        """Resolve a target not seen before (`key` as in `resolve_target`) and cache it."""
        target = _new(_Target)
        target.health = th
        target.target_id = str(th.target_id)
        target.port = port
        target.eni = target.problem = target.nacl = target.ip = None
        target.sg_ids = ()
        target.family = 4
        target.jid = -1
        target.sgs_known = True
        if target_type == "instance":
            target.family = 6 if str(tg.ip_address_type or "").lower() == "ipv6" else 4
            eni = self.primary_eni_by_instance.get(target.target_id)
            if eni is None:
                target.problem = (
                    f"no primary network interface (DeviceIndex 0) found for instance {target.target_id}"
                )
        elif target_type == "ip":
            ip = _norm_ip(target.target_id)
            target.ip = ip
            eni = None
            if ip is None:
                target.problem = f"target id {target.target_id!r} is not an IP address"
            else:
                target.family = 6 if ":" in ip else 4
                # Without pods on their own ENIs the secondary-address table answers directly.
                eni = (None if self.pod_eni_pods_by_ip else self.eni_by_ip.get(ip)) or self.eni_for_ip(ip)
                if eni is None:
                    target.problem = f"no network interface holds {ip}"
        else:
            eni = None
            target.problem = f"target type {target_type!r} is not ip or instance"
        if eni is not None:
            target.eni = eni
            # Many targets share an ENI (pod IPs on a node's primary ENI): what the ENI decides
            # is worked out once per ENI.
            info = self._eni_info.get(id(eni))
            if info is None:
                sg_ids = tuple(eni.security_group_ids or ())
                nacl = self.nacl_for(eni)
                # The ACL filters only at its subnet's boundary: the subnet is part of what decides.
                subnet_id = (eni.subnet_id or "") if nacl is not None else None
                jid = self._jids.get((sg_ids, nacl.id if nacl else None, subnet_id))
                if jid is None:
                    jid = self._jids[(sg_ids, nacl.id if nacl else None, subnet_id)] = len(self._jids)
                    self.jid_subnet[jid] = self.subnet_net(subnet_id) if subnet_id else EMPTY
                    self.jid_problems[jid] = self.object_problems(sg_ids, nacl)
                info = self._eni_info[id(eni)] = (sg_ids, nacl, jid, self.sgs_known(sg_ids))
            target.sg_ids, target.nacl, target.jid, target.sgs_known = info
        # Cached only once complete: a resolution that raised is retried (and raises) again.
        self._targets[key] = target
        return target

    def eni_for_ip(self, ip: str) -> m.NetworkInterface | None:
        pod = self.pod_eni_pods_by_ip.get(ip) if self.pod_eni_pods_by_ip else None
        if pod is not None:
            for eni_id in _pod_eni_ids(pod.pod_eni, ip):
                eni = self.inv.network_interfaces.get(eni_id)
                if eni is not None:
                    return eni
        eni = self.eni_by_ip.get(ip)
        if eni is not None:
            return eni
        if self.eni_prefixes:
            address = ipaddress.ip_address(ip)
            value = int(address)
            bits = address.max_prefixlen
            for (version, plen), table in self.eni_prefixes.items():
                if version != address.version:
                    continue
                masked = value >> (bits - plen) << (bits - plen) if plen else 0
                if masked in table:
                    return table[masked]
        return None


def _pod_eni_ids(annotation: str | None, ip: str) -> list[str]:
    """ENI ids of the pod annotation (`pod_eni_entries`, the one parser): the entry whose address
    is the pod IP first."""
    matching: list[str] = []
    others: list[str] = []
    for eni_id, addresses in pod_eni_entries(annotation) or ():
        (matching if ip in {_norm_ip(a) for a in addresses} else others).append(eni_id)
    return matching or others
