"""The texts of a fix: the one-line summary, the explanation of each lever (why these peers, why
these ports, who writes the rules), and the warning for a TGB the controller generates."""

from __future__ import annotations

from bindings.analysis import model as m
from bindings.vocabulary import Code

from .model import HealthCheckChange, PlannedRule
from .peers import Peer
from .security_groups import on_ambiguous
from .text import short, unique
from .world import Added, Need, PlanPart

# Labels the controller puts on TGBs it generates from a Service or an Ingress: edits to those
# TGBs are overwritten at the next reconcile of their owner.
GENERATED_TGB_LABELS = ("service.k8s.aws/stack", "ingress.k8s.aws/stack")


class Explainer(PlanPart):
    """The summary and explanation of a fix, and the warnings that go with them."""

    def summary(
        self,
        added: Added,
        sg_rules: list[PlannedRule],
        hc_change: HealthCheckChange | None,
        new_port_name: str | None,
        manifest_changed: bool,
        patch_keys: tuple[str, ...],
        acl_planned: bool,
    ) -> str:
        b = self.w.b
        parts = []
        if added:
            by_peers: dict[tuple[Peer, ...], list[str]] = {}
            for need, peers in added:
                label = f"{need.protocol} {need.port}" + (
                    " (health check)" if need.purpose == "health check" else ""
                )
                bucket = by_peers.setdefault(tuple(peers), [])
                if label not in bucket:
                    bucket.append(label)
            for group, labels in by_peers.items():
                parts.append(f"allow {' and '.join(labels)} from {short(p[1] for p in group)}")
            text = f"Add to spec.networking of {b.namespace}/{b.name}: " + "; ".join(parts)
        elif manifest_changed and "networking" in patch_keys:
            text = f"Repair spec.networking of {b.namespace}/{b.name}"
        else:
            text = f"Fix {b.namespace}/{b.name}"
        extras = []
        if new_port_name is not None:
            extras.append(f"reference Service port {new_port_name!r} by name")
        required = [r for r in sg_rules if r.required]
        if required:
            groups = unique(r.security_group_id for r in required)
            extras.append(f"add {len(required)} rule(s) to security group(s) {short(groups)} directly")
        if hc_change is not None:
            extras.append("health-check the traffic port")
        if acl_planned:
            extras.append("allow the refused traffic in the targets' network ACL")
        if extras:
            text += ("; " if text.endswith(tuple("0123456789)")) or added else ": ") + "; ".join(extras)
        return text

    def explain(
        self,
        needs: list[Need],
        added: Added,
        sg_rules: list[PlannedRule],
        hc_change: HealthCheckChange | None,
        new_port_name: str | None,
        manifest_changed: bool,
        controller_writes: list[PlannedRule],
    ) -> None:
        """Put the explanation of each lever before the lines the parts wrote while planning."""
        lines = self.traffic_lines(needs) + self.health_check_lines(needs)
        lines += self.manifest_lines(added, new_port_name, manifest_changed, controller_writes)
        lines += self.security_group_lines(sg_rules, manifest_changed)
        if hc_change is not None:
            order = (
                " Apply the TGB change first and the health-check change once the controller has written "
                "the rule, so the check never probes a closed port; the old health-check port's rule can go "
                "afterwards."
                if manifest_changed
                else ""
            )
            lines.append(f"Health check: {hc_change.reason}{order}")
        self.explanation[:0] = lines  # the parts' own lines follow

    def traffic_lines(self, needs: list[Need]) -> list[str]:
        """Per carried protocol: its ports, and where the traffic comes from (and why)."""
        w = self.w
        lines: list[str] = []
        for result in w.offered:
            proto = result.protocol
            lbs = w.lbs.get(proto, [])
            ports = short(sorted({n.port for n in needs if n.protocol == proto and n.purpose == "traffic"}))
            if not ports:
                continue
            port_what = "the NodePort" if w.target_type == "instance" else "the pods' port"
            if any(w.lb_groups(lb) for lb in lbs):
                source = (
                    "the load balancer's security group (a rule referencing it admits all its traffic, "
                    "client IP preserved or not)"
                )
            elif result.client_ip_preserved:
                clients = unique(c for lb in lbs for c in w.client_cidrs(lb)[0])
                origin = unique(w.client_cidrs(lb)[1] for lb in lbs)
                source = (
                    f"the clients ({short(clients)}, from {short(origin)}): the client IP is preserved for "
                    f"{proto}, so targets see the clients' addresses, not the load balancer's"
                )
            else:
                source = (
                    "the load balancer's subnets: client IP is not preserved, targets see the load "
                    "balancer's addresses"
                )
            status = {
                "reachable": "already reachable",
                "blocked": "blocked today",
                "partial": "only partly reachable today",
            }.get(result.verdict, f"{result.verdict} today")
            lines.append(f"{proto} {ports} ({port_what}, {status}) must be admitted from {source}.")
        return lines

    def health_check_lines(self, needs: list[Need]) -> list[str]:
        w = self.w
        lines: list[str] = []
        hc_needs = [n for n in needs if n.purpose == "health check"]
        if hc_needs:
            ports = short(sorted({n.port for n in hc_needs}))
            peers = short(unique(p[1] for n in hc_needs for p in n.peers))
            lines.append(
                f"Health checks are TCP on port {ports} from the load balancer's own addresses, "
                f"so TCP {ports} "
                f"must be admitted from {peers}"
                + (
                    " — the same peers as the traffic, so it shares their rule."
                    if any(n.peers == t.peers for n in hc_needs for t in needs if t.purpose == "traffic")
                    else "."
                )
                + (
                    " A UDP target group is health-checked over TCP only: a green check never proves UDP."
                    if "UDP" in {p.protocol for p in w.offered}
                    else ""
                )
            )
        return lines

    def manifest_lines(
        self,
        added: Added,
        new_port_name: str | None,
        manifest_changed: bool,
        controller_writes: list[PlannedRule],
    ) -> list[str]:
        """What the manifest gains, who then writes the rules, and the serviceRef port's name."""
        w = self.w
        lines: list[str] = []
        if added:
            for need, peers in added:
                lines.append(
                    f"spec.networking gains {need.protocol} {need.port} ({need.purpose}) from "
                    f"{short(p[1] for p in peers)}."
                )
        if manifest_changed and controller_writes:
            groups = short(unique(r.security_group_id for r in controller_writes))
            lines.append(
                f"Once applied, the controller writes the rules to {groups} (the security group "
                "it picks on each "
                "target's network interface) with the description "
                f"{m.CONTROLLER_RULE_DESCRIPTION}. Apply with "
                "`kubectl apply --server-side -f` (add --force-conflicts if another manager "
                "owns spec.networking) "
                "or with the kubectl patch below."
            )
        if new_port_name is not None:
            lines.append(
                f"serviceRef.port {w.b.service_port} matches a TCP and a UDP port of the "
                "Service; the controller takes "
                f"the first whatever its protocol, so the binding names {new_port_name!r}, the "
                f"{w.result.protocols[0].protocol} port."
            )
        return lines

    def security_group_lines(self, sg_rules: list[PlannedRule], manifest_changed: bool) -> list[str]:
        """Why rules are required where the controller cannot write them, or an alternative."""
        w = self.w
        lines: list[str] = []
        required = [r for r in sg_rules if r.required]
        if required:
            ambiguous = Code.SECURITY_GROUP_TAG_AMBIGUOUS in self.fixable and any(
                on_ambiguous(w, r) for r in required
            )
            if ambiguous:
                flag = w.inv.eni_sg_tags
                wanted = f"the tag {w.cluster_tag}" + (
                    " and the controller's --service-target-eni-security-group-tags ("
                    + ", ".join(f"{k}={v}" for k, v in sorted(flag.items()))
                    + ")"
                    if flag
                    else ""
                )
                remedy = (
                    "put those tags on exactly one cluster-tagged group per interface"
                    if flag
                    else "leave the cluster tag on exactly one group per interface (or start the "
                    "controller with --service-target-eni-security-group-tags)"
                )
                lines.append(
                    "The controller cannot write networking rules here: a target network interface has "
                    f"several security groups and not exactly one carries {wanted}. The security-group "
                    f"commands add the missing rules directly. To let the controller manage them instead, "
                    f"{remedy}."
                )
            if Code.NETWORKING_NOT_RECONCILED in self.fixable and not manifest_changed and not ambiguous:
                events = [e for e in w.b.events if e.reason == "FailedNetworkReconcile"]
                why = (
                    f" Its last FailedNetworkReconcile event says: {events[-1].message.rstrip('.')}."
                    if events
                    else ""
                )
                lines.append(
                    "spec.networking already declares the right rules, but the controller has "
                    "not written them to "
                    f"the target security groups.{why} Fix that cause (e.g. the controller's IAM "
                    "permissions) — or "
                    "add the rules with the commands below."
                )
                self.warnings.append(
                    "the controller compares rules without their descriptions, so it will count "
                    "these hand-added "
                    "rules as its own and never write (or later revoke) a copy; if spec.networking changes, "
                    "remove the binding-health rules by hand"
                )
        elif sg_rules:
            lines.append(
                "If these rules are managed outside the controller (Terraform, console), the security-group "
                "commands and Terraform below add exactly the missing ones instead of the TGB change."
            )
        return lines

    def generated_warning(self) -> None:
        labels = self.w.b.raw.get("metadata", {}).get("labels") if isinstance(self.w.b.raw, dict) else None
        if isinstance(labels, dict) and any(k in labels for k in GENERATED_TGB_LABELS):
            self.warnings.append(
                "this TargetGroupBinding is generated by the controller from a Service or "
                "Ingress; edits to it "
                "are overwritten — change the owning Service/Ingress annotations instead, or use the "
                "security-group commands"
            )
