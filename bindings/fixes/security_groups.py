"""Security-group rules of a fix: the ones missing on the targets' groups, the ones the controller
would write for a networking section (and the ones only we can write where it cannot pick a
group, §2.2), and the load balancer's own inbound and outbound rules where they refuse traffic."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any

from bindings.analysis import model as m
from bindings.analysis.engine import LB_REFUSES_CLIENTS, LISTENER_CARRIES
from bindings.vocabulary import Code

from . import render
from .model import HealthCheckChange, PlannedRule
from .peers import Peer, has_equivalent, is_everything, peer_key
from .text import short, unique
from .world import Need, PlanPart, Target, World

# Marks analysis reasons about the load balancer's own security groups (engine `_LB_REFUSAL`).
LB_MARK = " of load balancer "


class SecurityGroupPlanner(PlanPart):
    """The security-group rules of a fix, on the targets' groups and the load balancer's."""

    def description(self, proto: str, port: int) -> str:
        b = self.w.b
        return render.aws_description(f"binding-health: {b.namespace}/{b.name} {proto.lower()} {port}")

    def missing_rules(self, needs: list[Need], hc_admitted: bool | None) -> list[PlannedRule]:
        """Rules no security group of a target ENI holds yet, for every need: exactly what is missing."""
        w = self.w
        planned: dict[tuple[str, str, int, Peer], list[Target]] = {}
        for need in needs:
            # What is uncovered depends on the target's groups only; targets mostly share them.
            uncovered: dict[tuple[str, ...], list[Peer]] = {}
            for target in need.targets:
                if target is None or not target.eni or not target.sg_ids:
                    continue
                if need.purpose == "traffic" and target.admitted.get(need.protocol) is True:
                    continue
                if need.purpose == "health check" and hc_admitted is True:
                    continue
                sg_id = w.write_group(target.sg_ids)
                if sg_id is None:
                    continue
                peers = uncovered.get(target.sg_ids)
                if peers is None:
                    peers = uncovered[target.sg_ids] = need.uncovered(
                        partial(w.admitted_now, target.sg_ids, need.protocol.lower(), need.port)
                    )
                for peer in peers:
                    found = planned.setdefault((sg_id, need.protocol.lower(), need.port, peer), [])
                    if target not in found:
                        found.append(target)
        rules = []
        for (sg_id, proto, port, peer), targets in planned.items():
            # Required where the controller cannot write: no single group it would pick (§2.2).
            required = any(w.controller_group(t.sg_ids) is None for t in targets)
            enis = tuple(unique(t.eni for t in targets if t.eni))
            rules.append(
                PlannedRule(
                    sg_id, proto, port, port, peer[0], peer[1], self.description(proto, port), required, enis
                )
            )
        return rules

    def planned_rules(
        self,
        needs: list[Need],
        rules: list[dict[str, Any]],
        hc_change: HealthCheckChange | None,
        manifest_changed: bool,
    ) -> list[PlannedRule]:
        """The fix's security-group rules for the networking `rules`: the rules the controller would
        write for the new networking, the rules that are missing whatever writes them, and which
        of those only we can write."""
        w = self.w
        hc_admitted = (
            None if hc_change else (w.result.health_check.admitted if w.result.health_check else None)
        )
        missing = self.missing_rules(needs, hc_admitted)
        not_reconciled_only = not manifest_changed and Code.NETWORKING_NOT_RECONCILED in self.fixable
        sg_rules: list[PlannedRule] = []
        if not_reconciled_only:
            # The networking is right; the controller has not written it. Write exactly what it
            # would (its rules, our description) so the declared state becomes the real one.
            sg_rules = self.controller_rules(rules)
        # Where the controller cannot pick a group, we write what it would have written; those
        # rules hold every need (the networking covers them all) and match the declared state.
        sg_rules += self.controller_rules(rules, ambiguous=True)
        # Plus, for operators managing these rules outside the controller, the alternative.
        required_keys = {(r.security_group_id, r.protocol, r.from_port, r.to_port, r.peer) for r in sg_rules}
        sg_rules += [
            r
            for r in missing
            if not r.required
            and (r.security_group_id, r.protocol, r.from_port, r.to_port, r.peer) not in required_keys
        ]
        if not_reconciled_only:
            # Without a manifest change nothing else will write these: every missing rule is required.
            sg_rules = [_required(r) for r in sg_rules]
        sg_rules += self.lb_inbound_rules()
        sg_rules += self.lb_egress_rules()
        return _dedupe(sg_rules)

    def lb_inbound_rules(self) -> list[PlannedRule]:
        """Where the analysis found the load balancer's own groups admitting no client of a protocol
        on its listener port: that inbound rule, from the client ranges, on its first group. No
        target rule can stand in for it (clients meet the LB's rules first)."""
        w = self.w
        tg_proto = str(w.tg.protocol).upper()
        rules = []
        for p in w.offered:
            if not any(
                LB_MARK in r and (" admit no " in r or any(mark in r for mark in LB_REFUSES_CLIENTS))
                for r in p.reasons
            ):
                continue
            for lb_arn in w.lbs.get(p.protocol, ()):
                groups = w.lb_groups(lb_arn)
                if not groups:
                    continue
                ports = sorted(
                    {
                        li.port
                        for li in w.index.listeners_by_tg.get(w.tg.arn, ())
                        if li.load_balancer_arn == lb_arn
                        and isinstance(li.port, int)
                        and w.tg.arn in (li.target_group_arns or ())
                        and p.protocol in LISTENER_CARRIES.get(str(li.protocol).upper(), {}).get(tg_proto, ())
                    }
                )
                cidrs, origin = w.client_cidrs(lb_arn)
                if "VPC not collected" in origin:
                    self.warnings.append(
                        f"the load balancer's security group {groups[0]} admits no {p.protocol} client, but "
                        "its clients are not known (its VPC was not collected): add the inbound rule for "
                        "the real client ranges yourself"
                    )
                    continue
                broad = [c for c in cidrs if is_everything(c)]
                if ports and broad:
                    self.warnings.append(
                        f"{p.protocol} {short(ports)} is opened on the load balancer's security group "
                        f"{groups[0]} to {short(broad)}: the client ranges are the whole internet "
                        f"({origin}). Narrow them with the annotation {m.CLIENT_CIDRS_ANNOTATION} or the "
                        "cluster's client ranges if the clients are known."
                    )
                added = [
                    (port, cidr)
                    for port in ports
                    for cidr in cidrs
                    # Admitted already: only the refused ranges need a rule.
                    if not any(
                        has_equivalent(
                            w.inv.security_groups.get(g), p.protocol.lower(), port, port, ("cidr", cidr)
                        )
                        for g in groups
                    )
                ]
                if ports and cidrs:
                    refused = unique(cidr for _, cidr in added)
                    lead = (
                        f"admits no {p.protocol} client on listener port(s) {short(ports)}"
                        if len(added) == len(ports) * len(cidrs)
                        else f"refuses {p.protocol} from {short(refused)} on listener port(s) {short(ports)}"
                    )
                    self.explanation.append(
                        f"The load balancer's security group {groups[0]} {lead}: clients meet its inbound "
                        f"rules before any target rule, so it must admit {p.protocol} from the client ranges "
                        f"({short(cidrs)}, {origin}). Health checks skip these rules, which is why the "
                        "targets look healthy."
                    )
                for port, cidr in added:
                    text = self.description(p.protocol, port)
                    rules.append(
                        PlannedRule(groups[0], p.protocol.lower(), port, port, "cidr", cidr, text, True)
                    )
        return rules

    def lb_egress_rules(self) -> list[PlannedRule]:
        """Where the load balancer's own outbound rules let traffic or health checks nowhere: the
        egress rule on its first group to each refused target's group (a group reference covers
        every member, ip or instance target). Required: no target rule or manifest stands in."""
        w = self.w
        wanted: dict[tuple[str, str, int, str], None] = {}
        by_id = {t.target_id: t for t in w.targets}
        for p in w.offered:
            for tv in p.targets:
                if LB_MARK not in tv.reason or " allow no outbound " not in tv.reason:
                    continue
                if not isinstance(tv.port, int):
                    continue
                target = by_id.get(tv.target_id)
                dest = w.write_group(target.sg_ids) if target is not None else None
                for lb_arn in w.lbs.get(p.protocol, ()):
                    groups = w.lb_groups(lb_arn)
                    if groups and dest:
                        wanted[(groups[0], p.protocol.lower(), tv.port, dest)] = None
        for finding in self.findings:
            if finding.code != Code.HEALTH_CHECK_BLOCKED:
                continue
            for item in finding.evidence.get("lbEgress") or ():
                target = by_id.get(str(item.get("target")))
                port = item.get("port")
                dest = w.write_group(target.sg_ids) if target is not None else None
                if not isinstance(port, int) or not dest:
                    continue
                for lb_arn in sorted({lb for lbs in w.lbs.values() for lb in lbs}):
                    groups = w.lb_groups(lb_arn)
                    if groups:
                        wanted[(groups[0], "tcp", port, dest)] = None
        rules = [
            PlannedRule(
                sg_id, proto, port, port, "sg", dest, self.description(proto, port), True, direction="egress"
            )
            for sg_id, proto, port, dest in wanted
        ]
        if rules:
            self.explanation.append(
                "The load balancer's security group lets nothing out to the targets on "
                + short(unique(f"{r.protocol} {r.from_port}" for r in rules))
                + ": its outbound rules apply to traffic and health checks alike (nlb-udp-facts §3.5), so "
                "it gets an egress rule to the targets' security group."
            )
        return rules

    def controller_rules(
        self, ingress: list[dict[str, Any]], *, description: str | None = None, ambiguous: bool = False
    ) -> list[PlannedRule]:
        """The rules the controller would write for `ingress` (§2.2/§2.3) that the groups lack.

        With `ambiguous`, the same rules for the ENIs where the controller cannot pick a group: we
        write them to one of the ENI's groups ourselves, unless one of its groups already has them.
        """
        w = self.w
        out: dict[tuple[str, str, int, int, Peer], list[str]] = {}
        for target in w.targets:
            if not target.eni:
                continue
            sg_id = w.controller_group(target.sg_ids)
            if ambiguous:
                if sg_id is not None:
                    continue
                sg_id = w.write_group(target.sg_ids)
            if sg_id is None:
                continue
            candidates = target.sg_ids if ambiguous else (sg_id,)
            for proto, lo, hi, peer in _permissions(w, ingress, target):
                if any(w.has_equivalent(c, proto, lo, hi, peer) for c in candidates):
                    continue
                enis = out.setdefault((sg_id, proto, lo, hi, peer), [])
                if target.eni not in enis:
                    enis.append(target.eni)
        rules = []
        for (sg_id, proto, lo, hi, peer), enis in out.items():
            text = description if description is not None else self.description(proto, lo)
            rules.append(PlannedRule(sg_id, proto, lo, hi, peer[0], peer[1], text, True, tuple(enis)))
        return rules


def _required(rule: PlannedRule) -> PlannedRule:
    return PlannedRule(
        rule.security_group_id,
        rule.protocol,
        rule.from_port,
        rule.to_port,
        rule.peer_kind,
        rule.peer,
        rule.description,
        True,
        rule.network_interfaces,
    )


def _dedupe(rules: list[PlannedRule]) -> list[PlannedRule]:
    seen: dict[tuple[str, str, str, int, int, str, str], PlannedRule] = {}
    for rule in rules:
        key = (
            rule.security_group_id,
            rule.direction,
            rule.protocol,
            rule.from_port,
            rule.to_port,
            rule.peer_kind,
            rule.peer,
        )
        if key not in seen or (rule.required and not seen[key].required):
            seen[key] = rule
    return sorted(
        seen.values(),
        key=lambda r: (not r.required, r.security_group_id, r.direction, r.protocol, r.from_port, r.peer),
    )


def _permissions(
    world: World, ingress: Iterable[dict[str, Any]], target: Target
) -> list[tuple[str, int, int, Peer]]:
    """(protocol, from, to, peer) the controller computes for one target from networking (§2.3)."""
    out = []
    for rule in ingress:
        peers = [p for p in (peer_key(e) for e in rule.get("from") or ()) if p is not None]
        for entry in rule.get("ports") or ():
            entry = entry or {}
            proto = str(entry.get("protocol", "TCP")).lower()
            if proto not in ("tcp", "udp"):
                continue
            port = entry.get("port")
            if port is None:
                ranges = [(0, 65535)]
            elif isinstance(port, int) and not isinstance(port, bool):
                ranges = [(port, port)]
            elif isinstance(port, str) and world.target_type == "ip":
                ranges = [(n, n) for n in world.named_port(target, port)]
            else:
                ranges = []  # the controller errors on named ports with instance targets
            for lo, hi in ranges:
                for peer in peers:
                    out.append((proto, lo, hi, peer))
    return out


def on_ambiguous(world: World, rule: PlannedRule) -> bool:
    """Is the rule for an ENI where the controller cannot pick a group (§2.2)?"""
    enis = world.inv.network_interfaces
    return any(
        e in enis and world.controller_group(enis[e].security_group_ids) is None
        for e in rule.network_interfaces
    )
