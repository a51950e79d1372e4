"""The TargetGroupBinding manifest of a fix: the binding as it is (without checkpoints), its
`spec.networking.ingress` repaired where the controller would fail on it, the needs it lacks
merged in, and a `serviceRef.port` that names both a TCP and a UDP port replaced by its name."""

from __future__ import annotations

import copy
from datetime import date, datetime
from functools import partial
from typing import Any

from bindings.analysis import model as m
from bindings.analysis.netset import NetSet
from bindings.vocabulary import Code

from .peers import Peer, netset, peer_entry, peer_key
from .world import Added, Need, PlanPart, Target

TGB_API_VERSION = "elbv2.k8s.aws/v1beta1"
CHECKPOINT_ANNOTATIONS = frozenset(
    {
        "elbv2.k8s.aws/checkpoint",
        "elbv2.k8s.aws/checkpoint-timestamp",
        # kubectl's client-side bookkeeping: it embeds the *old* spec, so keeping it would make the
        # manifest claim an apply that never happened.
        "kubectl.kubernetes.io/last-applied-configuration",
    }
)


def _plain(value: Any) -> Any:
    """JSON-able copy of a decoded Kubernetes object (YAML may have produced dates)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _declares(cidrs: NetSet, groups: set[str], peer: Peer) -> bool:
    """Does networking that declares `cidrs` and `groups` admit `peer`?"""
    return peer[1] in groups if peer[0] == "sg" else cidrs.contains(netset((peer[1],)))


class ManifestPlanner(PlanPart):
    """The TGB manifest: the binding as it is, its networking repaired and completed."""

    def base_manifest(self) -> dict[str, Any]:
        b = self.w.b
        raw = b.raw if isinstance(b.raw, dict) and b.raw else None
        source_meta: dict[str, Any]
        spec: dict[str, Any]
        if raw is not None:
            meta_value, spec_value = raw.get("metadata"), raw.get("spec")
            source_meta = meta_value if isinstance(meta_value, dict) else {}
            spec = copy.deepcopy(spec_value) if isinstance(spec_value, dict) else {}
        else:
            annotations = dict(b.annotations)
            if b.client_cidrs and m.CLIENT_CIDRS_ANNOTATION not in annotations:
                # The parsed client ranges come from this annotation; keep them with the object.
                annotations[m.CLIENT_CIDRS_ANNOTATION] = ",".join(b.client_cidrs)
            source_meta = {"name": b.name, "namespace": b.namespace, "annotations": annotations}
            spec = {"serviceRef": {"name": b.service_name, "port": b.service_port}}
            for key, value in (
                ("targetGroupARN", b.target_group_arn),
                ("targetGroupName", b.target_group_name),
                ("targetType", b.target_type),
                ("targetGroupProtocol", b.target_group_protocol),
                ("ipAddressType", b.ip_address_type),
            ):
                if value is not None:
                    spec[key] = value
        metadata: dict[str, Any] = {"name": b.name, "namespace": b.namespace}
        for key in ("labels", "annotations"):
            value = source_meta.get(key)
            if not isinstance(value, dict):
                continue
            kept = {
                str(k): v
                for k, v in value.items()
                if isinstance(v, str) and not (key == "annotations" and k in CHECKPOINT_ANNOTATIONS)
            }
            if kept:
                metadata[key] = kept
        return {
            "apiVersion": TGB_API_VERSION,
            "kind": "TargetGroupBinding",
            "metadata": _plain(metadata),
            "spec": _plain(spec),
        }

    def repaired_ingress(self, spec: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        """The existing ingress rules with broken parts repaired; (rules, whether anything changed)."""
        w = self.w
        networking = spec.get("networking")
        ingress = networking.get("ingress") if isinstance(networking, dict) else None
        if not isinstance(ingress, list):
            return [], False
        node_ports = {p.port: p.node_port for p in w.service_port_matches() if p.node_port}
        out: list[dict[str, Any]] = []
        changed = False
        for i, rule in enumerate(ingress):
            path = f"spec.networking.ingress[{i}]"
            if not isinstance(rule, dict):
                self.explanation.append(f"{path} is not a mapping; removed (the controller cannot read it).")
                changed = True
                continue
            peers = []
            from_value = rule.get("from")
            for j, entry in enumerate(from_value if isinstance(from_value, list) else []):
                if peer_key(entry) is None:
                    self.explanation.append(
                        f"{path}.from[{j}] is not a valid ipBlock.cidr or securityGroup.groupID; removed "
                        "(an invalid peer makes the controller fail the whole binding's networking)."
                    )
                    changed = True
                    continue
                peers.append(copy.deepcopy(entry))
            ports_value = rule.get("ports")
            ports = []
            if not isinstance(ports_value, list) or not ports_value:
                self.explanation.append(
                    f"{path} has `ports: []` (or none): the controller creates no rule at all for it "
                    "(aws-load-balancer-controller#4907); it gets explicit ports or is removed."
                )
                changed = True
            for k, entry in enumerate(ports_value if isinstance(ports_value, list) else []):
                entry = {} if entry is None else entry
                item = self.repaired_port(entry, f"{path}.ports[{k}]", node_ports)
                if item is None:
                    changed = True
                    continue
                if item != entry:
                    changed = True
                if item not in ports:
                    ports.append(item)
            if not peers:
                if rule.get("from"):
                    self.explanation.append(f"{path} has no valid peer left; removed.")
                changed = True
                continue
            repaired = {"from": peers, "ports": ports}
            if set(rule) - {"from", "ports"}:
                changed = True  # unknown keys: the API server prunes them anyway
            out.append(repaired)
        return out, changed

    def repaired_port(self, entry: Any, path: str, node_ports: dict[int, int]) -> dict[str, Any] | None:
        w = self.w
        if not isinstance(entry, dict) or set(entry) - {"protocol", "port"}:
            self.explanation.append(f"{path} is not a {{protocol, port}} mapping; removed.")
            return None
        protocol = entry.get("protocol", "TCP")
        if protocol not in ("TCP", "UDP"):
            self.explanation.append(f"{path}.protocol is not TCP or UDP; removed (the CRD rejects it).")
            return None
        port = entry.get("port")
        if port is None:
            return copy.deepcopy(entry)
        if isinstance(port, bool) or not isinstance(port, int | str) or port == "":
            self.explanation.append(f"{path}.port is not a number or a port name; removed.")
            return None
        if isinstance(port, int) and not 0 <= port <= 65535:
            self.explanation.append(f"{path}.port {port} is outside 0-65535; removed.")
            return None
        if w.target_type == "ip" and isinstance(port, str):
            return self.repaired_named_port(entry, port, path)
        if w.target_type == "instance":
            if isinstance(port, str):
                self.explanation.append(
                    f"{path}.port is the name {port!r}: with instance targets the controller rejects "
                    "named ports (they resolve only for pod endpoints); removed."
                )
                return None
            if port in node_ports and node_ports[port] != port:
                self.explanation.append(
                    f"{path} opens {protocol} {port}, the Service port; instance targets receive traffic on "
                    f"the NodePort, so it becomes {protocol} {node_ports[port]}."
                )
                return {**copy.deepcopy(entry), "port": node_ports[port]}
        return copy.deepcopy(entry)

    def repaired_named_port(self, entry: dict[str, Any], name: str, path: str) -> dict[str, Any] | None:
        """A port name some target pod does not declare fails the controller's whole networking
        reconcile (computeNumericalPorts): it becomes the number it stands for — the one number
        the declaring pods give it, else the targets' single traffic port — or is removed (the
        needs then add the traffic ports by number)."""
        w = self.w
        pods = [t.pod for t in w.targets if t.pod is not None]
        if not pods or all(any(cp.name == name for cp in p.container_ports or ()) for p in pods):
            return copy.deepcopy(entry)
        numbers = w.named_port(None, name) or w.traffic_ports()
        if len(numbers) == 1:
            self.explanation.append(
                f"{path}.port is the name {name!r}, which some target pods do not declare: the "
                "controller fails the whole binding's networking on it, so none of its rules are "
                f"written; it becomes the number {numbers[0]}."
            )
            return {**copy.deepcopy(entry), "port": numbers[0]}
        self.explanation.append(
            f"{path}.port is the name {name!r}, which some target pods do not declare: the controller "
            "fails the whole binding's networking on it; removed (the traffic ports are added by number)."
        )
        return None

    def declared(
        self, rules: list[dict[str, Any]], proto: str, port: int, target: Target | None
    ) -> tuple[NetSet, set[str]]:
        """What the (repaired) networking already declares for `proto`/`port`: CIDRs and groups."""
        cidrs: list[str] = []
        groups: set[str] = set()
        for rule in rules:
            hit = False
            for entry in rule["ports"]:
                if entry.get("protocol", "TCP") != proto:
                    continue
                value = entry.get("port")
                if (
                    value is None
                    or value == port
                    or (isinstance(value, str) and port in self.w.named_port(target, value))
                ):
                    hit = True
                    break
            if not hit:
                continue
            for peer in rule["from"]:
                key = peer_key(peer)
                if key is None:
                    continue
                if key[0] == "cidr":
                    cidrs.append(key[1])
                else:
                    groups.add(key[1])
        return netset(tuple(cidrs)), groups

    def merge(self, rules: list[dict[str, Any]], needs: list[Need]) -> tuple[list[dict[str, Any]], Added]:
        """Add what `needs` lack to `rules`: into a rule with the same peers, else a new rule."""
        added: Added = []
        groups: dict[tuple[Peer, ...], list[dict[str, Any]]] = {}
        # Only a named port makes what is declared depend on the target (its pod's ports); else
        # the first target answers for all of them.
        per_target = any(isinstance(e.get("port"), str) for r in rules for e in r["ports"])
        for need in needs:
            missing: list[Peer] = []
            targets: list[Target | None] = need.targets or [None]
            for target in targets if per_target else targets[:1]:
                cidrs, sgs = self.declared(rules, need.protocol, need.port, target)
                for peer in need.uncovered(partial(_declares, cidrs, sgs)):
                    if peer not in missing:
                        missing.append(peer)
            if not missing:
                continue
            added.append((need, missing))
            entry = {"protocol": need.protocol, "port": need.port}
            bucket = groups.setdefault(tuple(missing), [])
            if entry not in bucket:
                bucket.append(entry)
        for peers, entries in groups.items():
            wanted = set(peers)
            home = next(
                (r for r in rules if {peer_key(p) for p in r["from"]} == wanted),
                None,
            )
            if home is None:
                rules.append({"from": [peer_entry(p) for p in peers], "ports": list(entries)})
            else:
                home["ports"].extend(e for e in entries if e not in home["ports"])
        return [r for r in rules if r["ports"]], added

    def service_ref_change(self) -> str | None:
        w = self.w
        if Code.SERVICE_PROTOCOL_MISMATCH not in self.fixable or not isinstance(w.b.service_port, int):
            return None
        carried = {p.protocol for p in w.result.protocols}
        if len(carried) != 1:
            return None  # TCP_UDP groups use both entries; the name would not remove the ambiguity
        proto = next(iter(carried))
        named = [p for p in w.service_port_matches() if str(p.protocol).upper() == proto and p.name]
        return named[0].name if len(named) == 1 else None
