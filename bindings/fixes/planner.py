"""What to change for one binding: what its targets must admit (§3.4), whether the health check
should move to the traffic port, and the plan that puts the parts together into a `Fix` — the
manifest (`manifest`), security-group rules (`security_groups`), network-ACL entries (`acls`),
the rule quota (`quota`), the texts (`explain`) and the commands (`render`)."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from bindings.analysis import model as m
from bindings.vocabulary import Code

from . import render
from .acls import AclPlanner
from .explain import Explainer
from .manifest import ManifestPlanner
from .model import Fix, FixMode, HealthCheckChange, PlannedRule, Purpose
from .peers import Peer, family, is_everything, netset
from .quota import limit_warnings, rule_counts
from .security_groups import LB_MARK, SecurityGroupPlanner, on_ambiguous
from .text import short, unique
from .world import Added, Need, PlanPart, Target, World

_HEALTH_CHECK_OVER_TCP = frozenset({"TCP", "HTTP", "HTTPS"})


class Planner(PlanPart):
    """One binding's plan: runs the parts in order and builds the `Fix` from what they chose."""

    def __init__(self, world: World, fixable: set[str]):
        super().__init__(world, fixable, [], [])
        self.patch_keys: tuple[str, ...] = ()
        self.acl_complete = True
        self.acl_planned = False
        shared = (world, fixable, self.explanation, self.warnings)
        self.manifest = ManifestPlanner(*shared)
        self.security_groups = SecurityGroupPlanner(*shared)
        self.acls = AclPlanner(*shared)
        self.texts = Explainer(*shared)

    def health_check_change(self) -> HealthCheckChange | None:
        w, tg = self.w, self.w.tg
        raw = str(tg.health_check_port or "traffic-port").strip()
        ports = w.traffic_ports()
        if not raw.isdigit() or not ports or all(p == int(raw) for p in ports):
            return None
        if not ({Code.HEALTH_CHECK_PORT_MISMATCH, Code.HEALTH_CHECK_BLOCKED} & self.fixable):
            return None
        if any(
            f.code == Code.HEALTH_CHECK_BLOCKED and f.evidence.get("networkAclDenials") for f in self.findings
        ):
            # A network ACL refuses the checks on their current port: the ACL entries fix that
            # port; moving the check would meet ACL entries nobody judged.
            return None
        if str(tg.health_check_protocol or "TCP").upper() != "TCP":
            return None  # an HTTP(S) check needs its path served on the new port: not ours to assume
        if not all(w.listens_tcp_on(p) for p in ports):
            return None
        what = "the NodePort" if w.target_type == "instance" else "the pods"
        blocked = Code.HEALTH_CHECK_BLOCKED in self.fixable
        reason = (
            f"health checks probe TCP {raw} but traffic goes to port {short(ports)}; {what} also accept "
            f"TCP on {short(ports)}, so checking the traffic port tests the process that serves the "
            "traffic"
            + (" and needs no extra rule for a separate port" if blocked else "")
            + ". If Terraform or CloudFormation owns this target group, change health_check.port "
            "there instead, or it will be reverted."
        )
        command = render.shell_join(
            [
                "aws elbv2 modify-target-group",
                render.shell_option("--target-group-arn", tg.arn),
                "--health-check-port traffic-port",
            ]
        )
        return HealthCheckChange(tg.arn, "traffic-port", command, reason)

    def needs(self, hc_port_raw: str) -> list[Need]:
        """Every (protocol, port, peers) the targets must admit, per §3.4."""
        w = self.w
        out: dict[tuple[str, int, tuple[Peer, ...], tuple[Peer, ...]], Need] = {}

        def add(
            proto: str,
            port: int,
            candidates: Iterable[Peer],
            purpose: Purpose,
            target: Target | None,
            cover: tuple[Peer, ...] = (),
        ) -> None:
            peers = tuple(unique(candidates))
            if not peers:
                return
            key = (proto, port, peers, tuple(cover))
            need = out.get(key)
            if need is None:
                need = out[key] = Need(proto, port, peers, purpose, [], tuple(cover))
            if target not in need.targets:
                need.targets.append(target)

        data_peers_by_lb: dict[str, list[tuple[Peer, ...]]] = {}
        for result in w.offered:
            for lb_arn in w.lbs.get(result.protocol, ()):
                groups = w.lb_groups(lb_arn)
                if groups:
                    peers: tuple[Peer, ...] = (("sg", groups[0]),)
                elif result.client_ip_preserved:
                    clients, origin = w.client_cidrs(lb_arn)
                    mine = w.in_families(clients)
                    if any(family(c) not in w.families for c in clients):
                        # Clients of the other family reach these targets from the LB's own address.
                        mine += w.lb_subnet_cidrs(lb_arn)[0]
                    peers = tuple(("cidr", c) for c in unique(mine))
                    broad = [c for c in mine if is_everything(c)]
                    if broad:
                        self.warnings.append(
                            f"{result.protocol} is opened to {short(broad)}: the client ranges "
                            "are the whole "
                            f"internet ({origin}) and the load balancer has no security group to filter "
                            f"them. Narrow them with the annotation {m.CLIENT_CIDRS_ANNOTATION} or the "
                            "cluster's client ranges if the clients are known."
                        )
                else:
                    peers = tuple(("cidr", c) for c in w.lb_subnet_cidrs(lb_arn)[0])
                data_peers_by_lb.setdefault(lb_arn, []).append(peers)
                for target in w.targets:
                    if isinstance(target.port, int):
                        add(result.protocol, target.port, peers, "traffic", target)
            if not w.targets and isinstance(result.port, int):
                for lb_arn in w.lbs.get(result.protocol, ()):
                    for peers in data_peers_by_lb.get(lb_arn, ()):
                        add(result.protocol, result.port, peers, "traffic", None)

        hc_proto = str(w.tg.health_check_protocol or "TCP").upper()
        if w.tg.health_check_enabled is False or hc_proto not in _HEALTH_CHECK_OVER_TCP:
            return list(out.values())
        for lb_arn in sorted(data_peers_by_lb):
            groups = w.lb_groups(lb_arn)
            hc_cover: tuple[Peer, ...] = ()
            if groups:
                hc_peers: tuple[Peer, ...] = (("sg", groups[0]),)
            else:
                subnets = w.lb_subnet_cidrs(lb_arn)[0]
                hc_peers = hc_cover = tuple(("cidr", c) for c in subnets)
                # One rule instead of two when the client peers already hold the LB's subnets and
                # are not the whole internet (a TCP port never needs opening to everyone for a check).
                for peers in data_peers_by_lb[lb_arn]:
                    cidrs = [p[1] for p in peers if p[0] == "cidr"]
                    if (
                        cidrs
                        and not any(is_everything(c) for c in cidrs)
                        and netset(tuple(cidrs)).contains(netset(tuple(subnets)))
                    ):
                        hc_peers = peers
                        break
            for target in w.targets:
                port = target.port if hc_port_raw == "traffic-port" else int(hc_port_raw)
                if isinstance(port, int):
                    add("TCP", port, hc_peers, "health check", target, hc_cover)
        return list(out.values())

    def plan(self) -> Fix | None:
        w = self.w
        b = w.b
        hc_change = self.health_check_change()
        hc_raw = "traffic-port" if hc_change else str(w.tg.health_check_port or "traffic-port").strip()
        if hc_raw != "traffic-port" and not hc_raw.isdigit():
            hc_raw = "traffic-port"
        new_port_name = self.manifest.service_ref_change()
        needs = self.needs(hc_raw)

        manifest, rules, added, patch_spec = self.manifest_change(needs, new_port_name)
        manifest_changed = bool(patch_spec)
        self.patch_keys = tuple(patch_spec)

        sg_rules = self.security_groups.planned_rules(needs, rules, hc_change, manifest_changed)
        acl_entries, self.acl_complete = self.acls.acl_entries()
        self.acl_planned = bool(acl_entries)

        if not manifest_changed and not sg_rules and hc_change is None and not acl_entries:
            return None

        controller_writes = (
            self.security_groups.controller_rules(rules, description=m.CONTROLLER_RULE_DESCRIPTION)
            if manifest_changed
            else []
        )
        mode = self.mode(manifest_changed, sg_rules, hc_change, new_port_name)
        if acl_entries and not manifest_changed and not sg_rules and hc_change is None:
            mode = "network-acl"
        targets, protocols = self.targets(manifest_changed, sg_rules, hc_change, new_port_name, needs)
        self.texts.explain(
            needs, added, sg_rules, hc_change, new_port_name, manifest_changed, controller_writes
        )
        counts = self.quota_warnings(controller_writes, sg_rules)
        self.texts.generated_warning()
        errors = self.manifest_errors(manifest) if manifest_changed else []

        patch_body = {"spec": patch_spec} if manifest_changed else None
        return Fix(
            cluster=w.inv.cluster,
            namespace=b.namespace,
            name=b.name,
            uid=b.uid,
            target_group_arn=w.tg.arn,
            mode=mode,
            summary=self.texts.summary(
                added, sg_rules, hc_change, new_port_name, manifest_changed, self.patch_keys, self.acl_planned
            ),
            explanation=self.explanation,
            warnings=unique(self.warnings),
            targets=targets,
            protocols=protocols,
            manifest=manifest if manifest_changed else None,
            patch_body=patch_body,
            kubectl_patch=render.kubectl_patch(b, patch_body) if patch_body is not None else "",
            security_group_rules=tuple(sg_rules),
            security_group_commands=tuple(render.sg_commands(sg_rules)),
            terraform="\n".join(
                t for t in (render.terraform_rules(sg_rules, b), render.terraform_acl(acl_entries, b)) if t
            ),
            network_acl_entries=tuple(acl_entries),
            network_acl_commands=tuple(render.acl_commands(acl_entries)),
            health_checks=(hc_change,) if hc_change else (),
            rule_counts=counts,
            manifest_errors=errors,
        )

    def manifest_change(
        self, needs: list[Need], new_port_name: str | None
    ) -> tuple[dict[str, Any], list[dict[str, Any]], Added, dict[str, Any]]:
        """The new manifest, its networking rules, what the needs added, and the patch's spec
        (empty when the TGB needs no change)."""
        manifest = self.manifest.base_manifest()
        spec = manifest["spec"]
        original_ingress = copy.deepcopy(
            (spec.get("networking") or {}).get("ingress")
            if isinstance(spec.get("networking"), dict)
            else None
        )
        rules, repaired = self.manifest.repaired_ingress(spec)
        rules, added = self.manifest.merge(rules, needs)
        networking_changed = repaired or bool(added) or (original_ingress is None and bool(rules))
        patch_spec: dict[str, Any] = {}
        if networking_changed and rules:
            spec["networking"] = {"ingress": rules}
            patch_spec["networking"] = {"ingress": copy.deepcopy(rules)}
        elif networking_changed:
            # Nothing valid remains and nothing is needed: no networking at all, never `ports: []`.
            spec.pop("networking", None)
            patch_spec["networking"] = None
        if new_port_name is not None:
            spec.setdefault("serviceRef", {})["port"] = new_port_name
            patch_spec["serviceRef"] = {"port": new_port_name}
        return manifest, rules, added, patch_spec

    def quota_warnings(
        self, controller_writes: list[PlannedRule], sg_rules: list[PlannedRule]
    ) -> dict[str, dict[str, Any]]:
        """The rule counts of what the fix writes, warning where a group goes above the quota (and
        where the alternative commands would)."""
        inv = self.w.inv
        counts = rule_counts(inv, controller_writes + [r for r in sg_rules if r.required])
        self.warnings.extend(
            limit_warnings(inv, counts, controller_writes + [r for r in sg_rules if r.required])
        )
        alt_counts = rule_counts(inv, [r for r in sg_rules if not r.required])
        self.warnings.extend(
            limit_warnings(inv, alt_counts, [r for r in sg_rules if not r.required], alternative=True)
        )
        return counts

    def manifest_errors(self, manifest: dict[str, Any]) -> list[str]:
        """The manifest's violations of the CRD schema, each a warning too."""
        errors: list[str] = []
        try:
            from .schema import validate_manifest

            errors = validate_manifest(manifest)
        except ImportError:  # jsonschema is a dev dependency today; never fail a fix on it
            errors = []
        if errors:
            self.warnings.append(
                "the manifest does not validate against the TargetGroupBinding v1beta1 schema: "
                + "; ".join(errors[:5])
            )
        return errors

    def mode(
        self,
        manifest_changed: bool,
        sg_rules: list[PlannedRule],
        hc_change: HealthCheckChange | None,
        new_port_name: str | None,
    ) -> FixMode:
        """Which lever the fix pulls first (the panel shows that one on top)."""
        if any(r.required for r in sg_rules):
            return "security-groups"
        if manifest_changed and new_port_name is None:
            return "networking"
        if manifest_changed:
            return "networking" if "networking" in (self.patch_keys or ()) else "service-ref"
        return "health-check" if hc_change is not None else "security-groups"

    def targets(
        self,
        manifest_changed: bool,
        sg_rules: list[PlannedRule],
        hc_change: HealthCheckChange | None,
        new_port_name: str | None,
        needs: list[Need],
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The finding codes (present today) and protocols this fix repairs, by construction."""
        w = self.w
        codes = {f.code for f in self.findings}
        out: set[str] = set()
        ambiguous_enis = any(t.eni and w.controller_group(t.sg_ids) is None for t in w.targets)
        ambiguous_covered = all(r.required for r in sg_rules if r.network_interfaces and on_ambiguous(w, r))
        unknown = any(
            t.eni is None or any(s not in w.inv.security_groups for s in t.sg_ids) for t in w.targets
        ) or any(p.verdict == "unknown" for p in w.offered)
        # The load balancer's own security groups refuse it (inbound from clients, or outbound
        # to the targets): no rule on the targets changes that.
        # (Inbound refusals get their rule on the LB's group in `lb_inbound_rules`.)
        lb_refuses = any(
            LB_MARK in text and " allow no outbound " in text
            for p in w.result.protocols
            for text in (*p.reasons, *(t.reason for t in p.targets))
        ) and not any(r.direction == "egress" for r in sg_rules)
        if lb_refuses:
            self.warnings.append(
                "the load balancer's own security groups let part of this traffic nowhere (see the "
                "reasons); target rules alone will not make it reachable — add outbound rules to the "
                "targets on the load balancer's groups too"
            )
        nacl = not self.acl_complete or (
            any("network ACL" in reason for p in w.result.protocols for reason in p.reasons)
            and not any(f.evidence.get("networkAclDenials") for f in self.findings)
        )
        if nacl:
            self.warnings.append(
                "a network ACL denies part of this traffic; security-group rules alone will not make it "
                "reachable — fix the ACL of the targets' subnets too"
            )
        if unknown:
            self.warnings.append(
                "some targets' network interfaces or security groups are not in the collected data; the fix "
                "covers what is known and cannot be verified for the rest"
            )
        # The rules land where they are needed: through the controller (new networking, its group
        # pickable) or through our required commands (everything else).
        rules_land = (
            manifest_changed or any(r.required for r in sg_rules) or not needs or self.acl_planned
        ) and (not ambiguous_enis or ambiguous_covered)
        traffic_ok = rules_land and not unknown and not nacl and not lb_refuses
        protocols: list[str] = []
        if traffic_ok:
            for code in (
                Code.TRAFFIC_BLOCKED,
                Code.HEALTH_CHECK_MASKS_TRAFFIC,
                Code.CLIENT_RANGES_NOT_COVERED,
                Code.HEALTH_CHECK_BLOCKED,
            ):
                if code in codes:
                    out.add(code)
            protocols = [p.protocol for p in w.offered if p.verdict in ("blocked", "partial")]
        if manifest_changed or Code.MISSING_NETWORKING_RULE not in codes:
            out |= {
                Code.MISSING_NETWORKING_RULE,
                Code.EMPTY_PORTS_LIST,
                Code.INSTANCE_PORT_NOT_NODEPORT,
            } & codes
        if Code.NETWORKING_NOT_RECONCILED in codes and (
            manifest_changed or any(r.required for r in sg_rules)
        ):
            out.add(Code.NETWORKING_NOT_RECONCILED)
        if hc_change is not None and Code.HEALTH_CHECK_PORT_MISMATCH in codes:
            out.add(Code.HEALTH_CHECK_PORT_MISMATCH)
        if new_port_name is not None:
            out.add(Code.SERVICE_PROTOCOL_MISMATCH)
        if not manifest_changed:
            out -= {Code.MISSING_NETWORKING_RULE, Code.EMPTY_PORTS_LIST, Code.INSTANCE_PORT_NOT_NODEPORT}
        return tuple(sorted(out)), tuple(protocols)
