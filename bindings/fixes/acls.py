"""Network-ACL entries of a fix: an `allow` entry for every refusal the analysis names, numbered
just below the entry that refused it so AWS evaluates it first."""

from __future__ import annotations

from bindings.analysis.netset import NetSet
from bindings.vocabulary import Code

from .model import PlannedAclEntry
from .peers import canonical
from .world import PlanPart

# Network ACL entries one fix proposes at most: an ACL holds 20 entries per direction by default.
ACL_ENTRY_LIMIT = 20
_ACL_PROTOCOLS = {"tcp": "6", "udp": "17"}
_FINAL_ACL_RULE = 32767


class AclPlanner(PlanPart):
    """The network-ACL entries of a fix."""

    def acl_entries(self) -> tuple[list[PlannedAclEntry], bool]:
        """`allow` entries for every network-ACL refusal the analysis names (finding evidence
        `networkAclDenials`), each numbered just below the entry that refused it (free numbers
        only; the final deny when no entry matched); (entries, whether every refusal is covered)."""
        w = self.w
        acls = w.index.acls_by_id
        # Per (ACL, direction, protocol, ports): the union of what every entry refuses there, placed
        # before the first of those entries. Targets in different subnets behind one ACL each miss
        # "everything but my subnet", and a deny-all behind a narrower deny refuses the rest: united,
        # that is the expected sources again, one entry instead of a fragment per subnet or entry.
        # Every refused range lies within the expected sources, so the union never opens more.
        refused: dict[tuple[str, bool, str, int, int], tuple[list[str], int | None]] = {}
        for finding in self.findings:
            if finding.code in (Code.TRAFFIC_BLOCKED, Code.HEALTH_CHECK_BLOCKED):
                for d in finding.evidence.get("networkAclDenials") or ():
                    key = (d["networkAclId"], d["egress"], d["protocol"], d["fromPort"], d["toPort"])
                    cidrs, first = refused.get(key, ([], None))
                    rule = d["ruleNumber"]
                    if rule is not None:
                        first = rule if first is None else min(first, rule)
                    refused[key] = ([*cidrs, *(d.get("cidrs") or ())], first)
        denials = [
            (acl_id, first, egress, proto, lo, hi, cidr)
            for (acl_id, egress, proto, lo, hi), (cidrs, first) in refused.items()
            for cidr in NetSet.from_cidrs(cidrs).to_cidrs()
        ]
        used: dict[tuple[str, bool], set[int]] = {}
        out: list[PlannedAclEntry] = []
        complete = True
        for acl_id, rule, egress, proto, lo, hi, cidr in denials:
            acl = acls.get(acl_id)
            number_proto = _ACL_PROTOCOLS.get(proto)
            if acl is None or number_proto is None:
                complete = False
                continue
            taken = used.setdefault(
                (acl_id, egress), {e.rule_number for e in acl.entries or () if bool(e.egress) == egress}
            )
            if len([e for e in out if e.network_acl_id == acl_id]) >= ACL_ENTRY_LIMIT:
                complete = False
                continue
            number = _free_rule_number(taken, rule)
            if number is None:
                complete = False
                continue
            taken.add(number)
            out.append(PlannedAclEntry(acl_id, number, egress, number_proto, lo, hi, canonical(cidr)))
        if not complete:
            self.warnings.append(
                "a network ACL refuses part of this traffic and not every refusal could be planned (ACL not "
                f"collected, no free rule number before the deny, or more than {ACL_ENTRY_LIMIT} entries): "
                "fix the ACL of the targets' subnets by hand too"
            )
        if out:
            self.explanation.append(
                "The security groups are not the only filter: the network ACL of the targets' subnet refuses "
                "part of the traffic (ACLs are stateless, so the replies to ephemeral ports count too). "
                "Each new `allow` entry is numbered just below the entry that refuses it, so it is "
                "evaluated first."
            )
        return out, complete


def _free_rule_number(taken: set[int], before: int | None) -> int | None:
    """The highest free ACL rule number below `before` (the refusing entry), or, when no entry
    refused (the final deny), the number after the highest one in use; None when none is free."""
    if before is None:
        highest = max((n for n in taken if n < _FINAL_ACL_RULE), default=0)
        if highest + 1 < _FINAL_ACL_RULE:
            return highest + 1
        before = _FINAL_ACL_RULE
    for number in range(before - 1, 0, -1):
        if number not in taken:
            return number
    return None
