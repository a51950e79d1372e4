"""The security-group part of `InventoryIndex`: compiled rules, matches, and the judgement of a
target's admission (its groups, then its subnet's network ACL)."""

from __future__ import annotations

from typing import Any

from .. import model as m
from ..netset import EMPTY, NetSet, Network, coverage, union_all
from .common import _short
from .compiled import AclDenial, SourceGroups, _equivalent, _Eval, _Match, _Rule, _Target
from .network_acls import _NetworkAclIndex


class _SecurityGroupIndex(_NetworkAclIndex):
    """Compiled security-group rules, the rules matching a protocol and port, and the judgement of
    a target's admission from its expected sources (its groups, then its subnet's network ACL)."""

    def _index_security_groups(self) -> None:
        self._rules: dict[str, tuple[_Rule, ...]] = {}
        self._matches: dict[tuple[tuple[str, ...], str, int], _Match] = {}
        self._evals: dict[tuple[int, str, int, int], _Eval] = {}
        # Judgement ids (`_Target.jid`): one per (security groups, network ACL, subnet) that
        # decides a target's judgements; numbered as targets are resolved (`resolve_new`).
        self._jids: dict[tuple[tuple[str, ...], str | None, str | None], int] = {}
        # Per jid: the target subnet's addresses (exempt from its ACL) and the malformed-input
        # problems of its security groups, their prefix lists and its ACL.
        self.jid_subnet: dict[int, NetSet] = {}
        self.jid_problems: dict[int, tuple[m.Problem, ...]] = {}
        self._sg_problems: dict[tuple[str, ...], tuple[m.Problem, ...]] = {}
        self._equivalent: dict[tuple[Any, ...], bool] = {}
        self._sgs_known: dict[tuple[str, ...], bool] = {}
        self._flat_rules: dict[tuple[str, ...], tuple[_Rule, ...] | None] = {}

    def sgs_known(self, sg_ids: tuple[str, ...]) -> bool:
        found = self._sgs_known.get(sg_ids)
        if found is None:
            found = self._sgs_known[sg_ids] = all(s in self.inv.security_groups for s in sg_ids)
        return found

    def has_equivalent(
        self,
        sg_id: str,
        rules: tuple[_Rule, ...],
        proto: str,
        lo: int,
        hi: int,
        peer_net: Network | None,
        peer_sg: str | None,
    ) -> bool:
        """Does the group hold a rule the controller would accept as this networking rule?"""
        key = (sg_id, proto, lo, hi, peer_net, peer_sg)
        found = self._equivalent.get(key)
        if found is None:
            found = any(_equivalent(r, proto, lo, hi, peer_net, peer_sg) for r in rules)
            self._equivalent[key] = found
        return found

    def flat_rules(self, sg_ids: tuple[str, ...]) -> tuple[_Rule, ...] | None:
        """The rules of all the groups, in order; None when one of them is not known."""
        try:
            return self._flat_rules[sg_ids]
        except KeyError:
            pass
        found = [self.rules_of(s) for s in sg_ids]
        flat = None if any(r is None for r in found) else tuple(r for group in found for r in group or ())
        self._flat_rules[sg_ids] = flat
        return flat

    def rules_of(self, sg_id: str) -> tuple[_Rule, ...] | None:
        found = self._rules.get(sg_id)
        if found is None:
            sg = self.inv.security_groups.get(sg_id)
            if sg is None:
                return None
            found = tuple(_Rule(sg_id, rule, self.inv.prefix_lists) for rule in sg.ingress or ())
            self._rules[sg_id] = found
        return found

    def match(self, sg_ids: tuple[str, ...], proto: str, port: int) -> _Match:
        key = (sg_ids, proto, port)
        found = self._matches.get(key)
        if found is not None:
            return found
        found = _Match()
        cidrs: list[NetSet] = []
        refs: set[str] = set()
        prefix_lists: list[str] = []
        rules: list[_Rule] = []
        missing: list[str] = []
        for sg_id in sg_ids:
            sg_rules = self.rules_of(sg_id)
            if sg_rules is None:
                missing.append(sg_id)
                continue
            for rule in sg_rules:
                if not rule.matches(proto, port):
                    continue
                rules.append(rule)
                if rule.resolved:
                    cidrs.append(rule.cidr)
                elif rule.kind == "security_group":
                    refs.add(rule.source)
                else:
                    prefix_lists.append(rule.source)
        found.allowed = union_all(cidrs)
        found.sg_refs = frozenset(refs)
        found.prefix_lists = tuple(prefix_lists)
        found.rules = tuple(rules)
        found.missing_sgs = tuple(missing)
        self._matches[key] = found
        return found

    def evaluate(
        self,
        target: _Target,
        proto: str,
        port: int,
        groups: tuple[tuple[frozenset[str], NetSet], ...],
    ) -> _Eval:
        """Admission of `proto`/`port` on the target from each (LB groups, expected CIDRs) group."""
        # `groups` are interned in `groups_intern`, alive for the whole analysis: id() is a cheap,
        # stable key; `jid` stands for the target's (security groups, network ACL).
        key = (target.jid, proto, port, id(groups))
        found = self._evals.get(key)
        if found is not None:
            return found
        found = self._evaluate(
            target.sg_ids, target.nacl, proto, port, groups, self.jid_subnet.get(target.jid, EMPTY)
        )
        self._evals[key] = found
        return found

    def subnet_net(self, subnet_id: str) -> NetSet:
        subnet = self.inv.subnets.get(subnet_id)
        if subnet is None:
            return EMPTY
        return NetSet.from_cidrs([c for c in (subnet.cidr, *(subnet.ipv6_cidrs or ())) if c])

    def sg_problems(self, sg_ids: tuple[str, ...]) -> tuple[m.Problem, ...]:
        """Malformed input in these groups and in the prefix lists their rules name (cached)."""
        found = self._sg_problems.get(sg_ids)
        if found is None:
            out: list[m.Problem] = []
            lists: set[str] = set()
            for sg_id in sg_ids:
                sg = self.inv.security_groups.get(sg_id)
                if sg is None:
                    continue
                out.extend(sg.problems or ())
                lists.update(
                    r.source
                    for r in (*(sg.ingress or ()), *(sg.egress or ()))
                    if r.source_kind == "prefix_list"
                )
            for list_id in sorted(lists):
                pl = self.inv.prefix_lists.get(list_id)
                if pl is not None:
                    out.extend(pl.problems or ())
            found = self._sg_problems[sg_ids] = tuple(out)
        return found

    def object_problems(self, sg_ids: tuple[str, ...], nacl: m.NetworkAcl | None) -> tuple[m.Problem, ...]:
        return self.sg_problems(sg_ids) + tuple(nacl.problems or () if nacl is not None else ())

    def _evaluate(
        self,
        sg_ids: tuple[str, ...],
        nacl: m.NetworkAcl | None,
        proto: str,
        port: int,
        groups: SourceGroups,
        subnet: NetSet = EMPTY,
    ) -> _Eval:
        match = self.match(sg_ids, proto, port)
        expected = union_all(g[1] for g in groups)
        if match.missing_sgs:
            ev = _Eval(None, expected, False, match.rules)
            ev.tail = f"security group(s) {_short(match.missing_sgs)} not found; cannot judge {proto} {port}"
            return ev
        if not expected:
            ev = _Eval(None, EMPTY, False, match.rules)
            ev.tail = "no expected source of this address family could be determined"
            return ev
        allowed_parts: list[NetSet] = []
        cidr_parts: list[NetSet] = []
        via_sg = False
        for lb_sgs, sources in groups:
            cidr_part = match.allowed & sources
            cidr_parts.append(cidr_part)
            if lb_sgs and match.sg_refs & lb_sgs:
                via_sg = True
                allowed_parts.append(sources)
            else:
                allowed_parts.append(cidr_part)
        allowed = union_all(allowed_parts)
        cidr_allowed = union_all(cidr_parts)
        sg_allowed = allowed
        denials: tuple[AclDenial, ...] = ()
        if nacl is not None:
            # Only traffic crossing the subnet boundary meets the ACL (AWS VPC user guide, "Network
            # ACL basics": rules are evaluated when traffic enters and leaves the subnet, not as it
            # is routed within it), e.g. an LB node in the target's own subnet.
            inside = expected & subnet if subnet else EMPTY
            outside = expected - inside if inside else expected
            nacl_ok, denials = self.nacl_allowed(nacl, proto, port, outside)
            replies_ok, reply_denials = self.nacl_replies(nacl, proto, outside)
            nacl_ok = (nacl_ok & replies_ok) | inside
            denials += reply_denials
            allowed = allowed & nacl_ok
            cidr_allowed = cidr_allowed & nacl_ok
        level = coverage(allowed, expected)
        uncovered = expected - allowed
        unknown_lists = match.prefix_lists
        sg_level = coverage(sg_allowed, expected)
        if unknown_lists and sg_level != "full" and not denials:
            # An uncollected prefix list may hold exactly the uncovered range: no refusal is claimed
            # (unless a network ACL refuses part of the sources anyway: that holds whatever the
            # list holds).
            ev = _Eval(None, uncovered, via_sg, match.rules)
            ev.tail = (
                f"prefix list(s) {_short(unknown_lists)} admit {proto} {port} but their entries were not "
                f"collected (GetManagedPrefixListEntries); {uncovered} could lie in them"
            )
            ev.acl_denials = denials
            return ev
        ev = _Eval(level, uncovered, via_sg, match.rules)
        ev.sg_level = sg_level
        ev.sg_uncovered = expected - sg_allowed
        ev.acl_denials = denials
        ev.cidr_level = coverage(cidr_allowed, expected)
        # Open to everyone in the family the targets are judged in (`::/0` says nothing about IPv4).
        ev.broad = tuple(r for r in match.rules if r.broad and r.cidr & expected)
        # The reason names the exact rules; for the classic trap (tcp admitted, udp not) it names
        # the rule of the other protocol so the SRE sees why "port 53 is open" is not enough.
        used = [
            r for r in match.rules if r.kind != "security_group" or (via_sg and r.source in _all_sgs(groups))
        ]
        if level == "full":
            how = _short((r.label for r in used), 3) or "the load balancer's security group"
            ev.tail = f"admits {proto} {port} via {how}"
        elif not used:
            other = {"tcp": "udp", "udp": "tcp"}.get(proto)
            hint = ""
            if other:
                other_rules = self.match(sg_ids, other, port).rules
                if other_rules:
                    hint = f"{_short((r.label for r in other_rules), 3)} admits {other} {port} but "
            ev.tail = f"{hint}no rule admits {proto} {port} from the expected sources; uncovered: {uncovered}"
        else:
            ev.tail = (
                f"{_short((r.label for r in used), 3)} admits {proto} {port} from "
                f"{allowed or 'none of them'}; "
                f"uncovered: {uncovered}"
            )
        if unknown_lists and sg_level != "full":
            ev.tail += f"; prefix list(s) {_short(unknown_lists)} not collected (they may admit more)"
        if denials and level != "full":
            if ev.sg_level == "full":
                ev.tail = (
                    f"the security groups admit {proto} {port} "
                    f"({_short((r.label for r in used), 3) or 'via the load balancer'}), but "
                )
            else:
                ev.tail += "; "
            ev.tail += "; ".join(d.text for d in denials)
        return ev


def _all_sgs(groups: SourceGroups) -> frozenset[str]:
    out: set[str] = set()
    for lb_sgs, _ in groups:
        out |= lb_sgs
    return frozenset(out)
