"""The demo's stand-in for the AWS Load Balancer Controller's networking manager.

Nothing in the emulated world writes `spec.networking` into security groups, so without this a
fix applied in the demo never turns green. `EmulatedController.reconcile()` does what the
controller does (docs/facts.md §2.1-2.4, confirmed against kubernetes-sigs/aws-load-balancer-
controller pkg/networking/security_group_reconciler.go):

* every TargetGroupBinding with `spec.networking` contributes permissions; one without it
  contributes none (its old rules are revoked once no other binding needs them);
* a rule with `ports: []` or `from: []` yields no permission; a port left out means 0-65535;
  a named port is resolved per security group against the container ports of that group's own
  pods (a pod without the name fails the whole binding); named ports with instance targets fail;
* the group written to is the one the analysis names (`controller_security_group`: the only
  group on the target's ENI, else the one carrying `kubernetes.io/cluster/<name>` and, with the
  controller's `--service-target-eni-security-group-tags`, those tags); no such group fails;
* restricted mode: security-group-source permissions on one group are merged per (protocol,
  source group) into one min..max range; CIDR sources stay one per CIDR and port;
* each group ends with exactly the desired permissions among the rules labelled
  `elbv2.k8s.aws/targetGroupBinding=shared`: missing ones are authorized (unless an equal rule,
  labelled or not, is already there), extra labelled ones revoked; unlabelled rules are never
  touched. Groups tagged for the cluster that no binding uses lose their labelled rules. While a
  binding failed, only authorizations happen (its rules are not known, so none may be revoked);
* a failure becomes a `FailedNetworkReconcile` Warning event on the binding.

`desired_permissions` and `changes` are pure (the analysis model in, plain values out); the
class does the I/O: the cluster through the product's own collector and normaliser, EC2 through
boto3 against the emulator. Demo and tests only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import logging
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import ClientError

from bindings.analysis import model as am

# The engine's index resolves endpoints to ENIs exactly as the analysis does (pod-ENI annotation,
# secondary addresses, prefixes); the group choice is the analysis's one pure function.
from bindings.analysis.engine import EXCLUDED_NODE_LABELS, InventoryIndex, controller_security_group
from bindings.analysis.normalize import build_inventory, normalize_aws, normalize_kubernetes
from bindings.collect import kube as kube_collector

logger = logging.getLogger(__name__)

LABEL = am.CONTROLLER_RULE_DESCRIPTION
FAILED_REASON = "FailedNetworkReconcile"


@dataclass(frozen=True, order=True)
class Permission:
    """One ingress permission with a single source, as the controller compares them."""

    protocol: str  # "tcp" | "udp"
    from_port: int
    to_port: int
    peer_kind: str  # "cidr" | "security_group"
    peer: str

    def text(self) -> str:
        ports = str(self.from_port) if self.from_port == self.to_port else f"{self.from_port}-{self.to_port}"
        return f"{self.protocol.upper()} {ports} from {self.peer}"

    def ip_permission(self, *, labelled: bool) -> dict[str, Any]:
        """The boto3 `IpPermissions` entry (with the controller's label when authorizing)."""
        extra = {"Description": LABEL} if labelled else {}
        entry: dict[str, Any] = {
            "IpProtocol": self.protocol,
            "FromPort": self.from_port,
            "ToPort": self.to_port,
        }
        if self.peer_kind == "security_group":
            entry["UserIdGroupPairs"] = [{"GroupId": self.peer, **extra}]
        elif ":" in self.peer:
            entry["Ipv6Ranges"] = [{"CidrIpv6": self.peer, **extra}]
        else:
            entry["IpRanges"] = [{"CidrIp": self.peer, **extra}]
        return entry


class NetworkingFailure(Exception):
    """Why the controller cannot compute one binding's permissions (its event message)."""


@dataclass
class Plan:
    """What the controller wants: permissions per group, the groups it reconciles, failures."""

    desired: dict[str, frozenset[Permission]] = field(default_factory=dict)
    groups: frozenset[str] = frozenset()
    failures: dict[str, str] = field(default_factory=dict)  # "ns/name" -> message
    users: dict[str, frozenset[str]] = field(default_factory=dict)  # group -> "ns/name" writing to it

    @property
    def authorize_only(self) -> bool:
        return bool(self.failures)


def _cidr(text: str) -> str:
    return str(ipaddress.ip_network(text.strip(), strict=False))


def _endpoint_enis(ix: InventoryIndex, b: am.Binding) -> list[tuple[am.NetworkInterface, am.Pod | None, str]]:
    """(ENI, pod, label) for every endpoint the controller would register for `b`."""
    inv = ix.inv
    out: list[tuple[am.NetworkInterface, am.Pod | None, str]] = []
    if b.target_type == "instance":
        match = ((b.raw.get("spec") or {}).get("nodeSelector") or {}).get("matchLabels") or {}
        for node in sorted(inv.nodes.values(), key=lambda n: n.name):
            if not node.ready or any(label in node.labels for label in EXCLUDED_NODE_LABELS):
                continue
            if any(node.labels.get(k) != v for k, v in match.items()):
                continue
            eni = ix.primary_eni_by_instance.get(node.instance_id or "")
            if eni is None:
                raise NetworkingFailure(f"no primary network interface found for node {node.name}")
            out.append((eni, None, f"node {node.name}"))
        return out
    for eps in ix.slices_by_service.get((b.namespace, b.service_name or ""), ()):
        for endpoint in eps.endpoints:
            if endpoint.terminating:
                continue
            pod = inv.pods.get(f"{eps.namespace}/{endpoint.pod_name}") if endpoint.pod_name else None
            for address in endpoint.addresses:
                pod = pod or ix.pods_by_ip.get(address)
                eni = ix.eni_for_ip(address)
                if eni is None:
                    raise NetworkingFailure(f"no network interface holds pod IP {address}")
                out.append((eni, pod, f"pod {endpoint.pod_name or address}"))
    return out


def binding_permissions(ix: InventoryIndex, b: am.Binding) -> dict[str, set[Permission]]:
    """The permissions one binding asks for, per security group; raises NetworkingFailure."""
    by_group: dict[str, list[am.Pod | None]] = defaultdict(list)
    for eni, pod, _label in _endpoint_enis(ix, b):
        inv = ix.inv
        choice = controller_security_group(
            tuple(eni.security_group_ids or ()), inv.security_groups, inv.cluster, inv.eni_sg_tags
        )
        if not isinstance(choice, str):
            wanted = ix.cluster_tag + "".join(f", {k}={v}" for k, v in sorted(inv.eni_sg_tags.items()))
            raise NetworkingFailure(
                f"expected exactly one securityGroup tagged with {wanted} for eni {eni.id}, "
                f"got: {list(choice or eni.security_group_ids or ())}"
            )
        by_group[choice].append(pod)
    out: dict[str, set[Permission]] = defaultdict(set)
    for rule in b.networking or ():
        for entry in rule.ports:  # `ports: []` asks for nothing (the controller's open bug, §2.3)
            protocol = str(entry.protocol).lower()
            if protocol not in ("tcp", "udp"):
                raise NetworkingFailure(f"unsupported protocol {entry.protocol!r}")
            for group, pods in by_group.items():
                for lo, hi in _port_ranges(b, entry.port, pods):
                    for peer in rule.peers:  # `from: []` asks for nothing
                        if peer.cidr is not None:
                            out[group].add(Permission(protocol, lo, hi, "cidr", _cidr(peer.cidr)))
                        elif peer.security_group_id:
                            out[group].add(
                                Permission(protocol, lo, hi, "security_group", peer.security_group_id)
                            )
    return out


def _port_ranges(b: am.Binding, port: int | str | None, pods: list[am.Pod | None]) -> list[tuple[int, int]]:
    if port is None:
        return [(0, 65535)]
    if isinstance(port, int):
        return [(port, port)]
    if b.target_type == "instance":
        raise NetworkingFailure("named ports can only be used with pod endpoints")
    numbers: set[int] = set()
    for pod in pods:
        found = {cp.container_port for cp in (pod.container_ports if pod else ()) if cp.name == port}
        if not found:
            name = f"{pod.namespace}/{pod.name}" if pod else "an endpoint without a pod"
            raise NetworkingFailure(f"unable to find port {port} on pod {name}")
        numbers |= found
    return [(n, n) for n in sorted(numbers)]


def _restricted(permissions: set[Permission]) -> frozenset[Permission]:
    """Group-source permissions merged per (protocol, source group) into one range (§2.4)."""
    merged: dict[tuple[str, str], tuple[int, int]] = {}
    out = {p for p in permissions if p.peer_kind != "security_group"}
    for p in permissions:
        if p.peer_kind == "security_group":
            lo, hi = merged.get((p.protocol, p.peer), (p.from_port, p.to_port))
            merged[(p.protocol, p.peer)] = (min(lo, p.from_port), max(hi, p.to_port))
    out |= {Permission(proto, lo, hi, "security_group", peer) for (proto, peer), (lo, hi) in merged.items()}
    return frozenset(out)


def desired_permissions(inv: am.Inventory) -> Plan:
    """What the controller would leave in each group it manages, for this cluster and account."""
    ix = InventoryIndex(inv)
    wanted: dict[str, set[Permission]] = defaultdict(set)
    users: dict[str, set[str]] = defaultdict(set)
    failures: dict[str, str] = {}
    for b in inv.bindings:
        if b.networking is None:
            continue
        try:
            for group, permissions in binding_permissions(ix, b).items():
                wanted[group] |= permissions
                users[group].add(b.key)
        except NetworkingFailure as exc:
            failures[b.key] = str(exc)
    tagged = {g.id for g in inv.security_groups.values() if ix.cluster_tag in (g.tags or {})}
    desired = {group: _restricted(perms) for group, perms in wanted.items()}
    return Plan(
        desired=desired,
        groups=frozenset(tagged | set(desired)),
        failures=failures,
        users={group: frozenset(keys) for group, keys in users.items()},
    )


def _existing(group: am.SecurityGroup) -> tuple[set[Permission], set[Permission]]:
    """(every tcp/udp permission, the labelled ones) of a group's inbound rules."""
    every: set[Permission] = set()
    labelled: set[Permission] = set()
    for rule in group.ingress:
        if rule.protocol not in ("tcp", "udp") or rule.source_kind not in ("cidr", "security_group"):
            continue
        source = _cidr(rule.source) if rule.source_kind == "cidr" else rule.source
        p = Permission(rule.protocol, rule.from_port or 0, rule.to_port or 0, rule.source_kind, source)
        every.add(p)
        if rule.description == LABEL:
            labelled.add(p)
    return every, labelled


def changes(
    plan: Plan, groups: dict[str, am.SecurityGroup]
) -> tuple[dict[str, list[Permission]], dict[str, list[Permission]]]:
    """(to authorize, to revoke) per group, as the controller's reconciler diffs them."""
    grant: dict[str, list[Permission]] = {}
    revoke: dict[str, list[Permission]] = {}
    for group_id in sorted(plan.groups):
        group = groups.get(group_id)
        if group is None:
            continue
        every, labelled = _existing(group)
        desired = plan.desired.get(group_id, frozenset())
        missing = sorted(desired - every)
        extra = [] if plan.authorize_only else sorted(labelled - desired)
        if missing:
            grant[group_id] = missing
        if extra:
            revoke[group_id] = extra
    return grant, revoke


@dataclass
class Report:
    """What one reconcile did."""

    authorized: list[tuple[str, Permission]] = field(default_factory=list)
    revoked: list[tuple[str, Permission]] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [f"authorized on {g}: {p.text()}" for g, p in self.authorized]
        out += [f"revoked on {g}: {p.text()}" for g, p in self.revoked]
        out += [f"{FAILED_REASON} on {key}: {message}" for key, message in sorted(self.failures.items())]
        return out


class EmulatedController:
    """Reconciles the emulated cluster's TargetGroupBindings into the emulated EC2 groups."""

    def __init__(
        self,
        *,
        kube_url: str,
        aws_endpoint: str,
        cluster: str,
        region: str = "us-east-1",
        credentials: dict[str, str] | None = None,
        eni_sg_tags: dict[str, str] | None = None,
    ) -> None:
        from bindings.demo.emulators import DEMO_CREDENTIALS

        self.kube_url = kube_url
        self.cluster = cluster
        # The controller's --service-target-eni-security-group-tags, as the cluster setting holds it.
        self.eni_sg_tags = dict(eni_sg_tags or {})
        session = boto3.session.Session(region_name=region, **(credentials or DEMO_CREDENTIALS))
        self.ec2 = session.client("ec2", endpoint_url=aws_endpoint)
        self._events: dict[str, tuple[str, int]] = {}  # binding key -> (message, count)

    def _aws_responses(self) -> dict[str, Any]:
        responses: dict[str, Any] = {}
        for operation, method, key in (
            ("DescribeInstances", "describe_instances", "Reservations"),
            ("DescribeNetworkInterfaces", "describe_network_interfaces", "NetworkInterfaces"),
            ("DescribeSecurityGroups", "describe_security_groups", "SecurityGroups"),
        ):
            items: list[Any] = []
            for page in self.ec2.get_paginator(method).paginate():
                items += page.get(key, [])
            responses[operation] = {key: items}
        return responses

    def inventory(self) -> am.Inventory:
        """The live world through the product's own collector and normaliser."""
        snapshot = kube_collector.collect_cluster(
            kube_collector.KubeConnection(api_url=self.kube_url, verify_ssl=False), request_timeout=10
        )
        return build_inventory(
            cluster=self.cluster,
            kube=normalize_kubernetes(snapshot.objects, cluster=self.cluster),
            aws=normalize_aws(self._aws_responses()),
            eni_sg_tags=self.eni_sg_tags,
        )

    def reconcile(self) -> Report:
        """One pass: compute, authorize, revoke, record failures as events."""
        inv = self.inventory()
        plan = desired_permissions(inv)
        grant, revoke = changes(plan, inv.security_groups)
        report = Report(failures=dict(plan.failures))
        for group_id in sorted(set(grant) | set(revoke)):
            try:
                if revoke.get(group_id):
                    self.ec2.revoke_security_group_ingress(
                        GroupId=group_id,
                        IpPermissions=[p.ip_permission(labelled=False) for p in revoke[group_id]],
                    )
                    report.revoked += [(group_id, p) for p in revoke[group_id]]
                if grant.get(group_id):
                    self.ec2.authorize_security_group_ingress(
                        GroupId=group_id,
                        IpPermissions=[p.ip_permission(labelled=True) for p in grant[group_id]],
                    )
                    report.authorized += [(group_id, p) for p in grant[group_id]]
            except ClientError as exc:
                # EC2 refused (rule limit, a vanished group): every binding writing there failed.
                error = exc.response.get("Error", {})
                message = f"failed to reconcile {group_id}: {error.get('Code')}: {error.get('Message')}"
                for key in plan.users.get(group_id, ()):
                    report.failures.setdefault(key, message)
        bindings = {b.key: b for b in inv.bindings}
        for key, message in report.failures.items():
            self._event(bindings[key], message)
        for key in set(self._events) - set(report.failures):
            del self._events[key]  # recovered: the next failure starts a new event
        return report

    def _event(self, b: am.Binding, message: str) -> None:
        from bindings.demo.emulators import apply_objects

        previous, count = self._events.get(b.key, ("", 0))
        count = count + 1 if previous == message else 1
        self._events[b.key] = (message, count)
        if count > 1 and count % 30:
            return  # a repeating failure bumps its event now and then, not on every pass
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        digest = hashlib.sha256(f"{b.uid}:{message}".encode()).hexdigest()[:10]
        apply_objects(
            self.kube_url,
            kube_collector.tgb_event(
                b,
                name=f"{b.name}.{digest}",
                reason=FAILED_REASON,
                event_type="Warning",
                message=message,
                at=now,
                source="targetGroupBinding",
                count=count,
            ),
        )

    def run(self, stop: threading.Event, interval: float = 2.0) -> None:
        """Reconcile every `interval` seconds until `stop` is set; a failed pass is logged and retried."""
        while not stop.is_set():
            try:
                for line in self.reconcile().lines():
                    logger.info("emulated controller: %s", line)
            except Exception:  # the demo keeps running; the next pass tries again
                logger.exception("emulated controller: reconcile failed")
            stop.wait(interval)
