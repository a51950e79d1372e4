"""Rendering of fixes: the JSON shape (`fix_to_dict`), the YAML download (`fix_to_yaml`), the
`aws` commands and Terraform blocks of planned rules and ACL entries, and the quoting under them:
YAML through PyYAML, shell through shlex, Terraform through JSON escaping.

Every value that reaches an output may come from the cluster or from AWS (names, annotations,
CIDRs, ids) and may be hostile. Nothing is ever pasted into a template: YAML is dumped by the
library, each shell word is quoted on its own, and each Terraform string is a JSON string with
the template sequences `${` and `%{` escaped, so a value can never end its string and start
syntax of its own. Control and format characters (bidirectional overrides, ANSI escapes) are
written as escapes in each syntax (`bindings.textsafe`), so what is shown is what runs.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable
from typing import Any

import yaml

from bindings import textsafe
from bindings.analysis import model as m

from .model import Fix, PlannedAclEntry, PlannedRule
from .peers import family


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """A safe dumper that never emits anchors/aliases (kubectl never prints them either)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    # A string with control or format characters is double-quoted, the only YAML style with
    # escapes; `textsafe.yaml_escape_output` then escapes the ones the emitter left raw.
    if textsafe.has_unsafe(data):
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style='"')
    return dumper.represent_str(data)


_Dumper.add_representer(str, _represent_str)


def to_yaml(obj: Any) -> str:
    """One YAML document, block style, keys in insertion order (readable as kubectl prints)."""
    return textsafe.yaml_escape_output(
        yaml.dump(
            obj, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=4096
        )
    )


def to_yaml_all(docs: list[Any]) -> str:
    """Several YAML documents separated by `---`."""
    return textsafe.yaml_escape_output(
        yaml.dump_all(
            docs,
            Dumper=_Dumper,
            sort_keys=False,
            default_flow_style=False,
            allow_unicode=True,
            width=4096,
            explicit_start=True,
        )
    )


def stored_manifest_yaml(fix: dict[str, Any] | None) -> str:
    """The manifest of a stored fix (`fix_to_dict` output) as YAML; "" when it has none.

    The stored text keeps the manifest's key order (jsonb does not). Text stored by a version that
    left control or format characters raw is rendered again from the manifest instead.
    """
    if not isinstance(fix, dict):
        return ""
    text = fix.get("manifestYaml")
    if isinstance(text, str) and text and not textsafe.has_unsafe(text.replace("\n", "")):
        return text
    if isinstance(fix.get("manifest"), dict):
        return to_yaml(fix["manifest"])
    return ""


def compact_json(obj: Any) -> str:
    return textsafe.json_text(obj)


def shell_option(flag: str, value: str) -> str:
    """`--flag value`, quoted; `--flag=value` when the value could be read as another option."""
    if value.startswith("-"):
        return textsafe.shell_quote(f"{flag}={value}")
    return f"{flag} {textsafe.shell_quote(value)}"


def shell_join(words: list[str]) -> str:
    """Words that are already quoted (or literal flags) joined with line continuations."""
    return " \\\n  ".join(words)


def _tf_escape(char: str) -> str:
    return textsafe.escape_char(char, byte_escapes=False)  # HCL knows \\uNNNN and \\UNNNNNNNN, not \\xNN


def tf_string(value: object) -> str:
    """A Terraform (HCL) quoted string: JSON escaping plus `${`/`%{` template escaping.

    Characters that are not printable (line and paragraph separators, NEL, format characters)
    are escaped too, so a value always stays on its own line and reads as what it is.
    """
    text = json.dumps(str(value), ensure_ascii=False)
    text = re.sub(
        r"[^ -~]", lambda m: m.group(0) if m.group(0).isprintable() else _tf_escape(m.group(0)), text
    )
    return text.replace("${", "$${").replace("%{", "%%{")


_TF_IDENT = re.compile(r"[^A-Za-z0-9_]+")


def tf_identifier(*parts: object) -> str:
    """A Terraform resource name from arbitrary text: letters, digits and `_`, starts with a letter."""
    text = "_".join(_TF_IDENT.sub("_", str(p)).strip("_") for p in parts if str(p))
    text = re.sub(r"_+", "_", text).strip("_").lower() or "rule"
    return text if text[0].isalpha() else f"r_{text}"


# AWS accepts only these characters in security-group rule descriptions (max 255).
_DESCRIPTION_BAD = re.compile(r"[^a-zA-Z0-9 ._\-:/()#,@\[\]+=&;{}!$*]")


def aws_description(text: str) -> str:
    """A security-group rule description AWS will accept: unknown characters become `_`."""
    return _DESCRIPTION_BAD.sub("_", text)[:255]


def shell_quote(value: str) -> str:
    """One shell word; a leading `-` is impossible here because callers prefix a fixed word."""
    return textsafe.shell_quote(value)


# --- commands and Terraform of planned changes ----------------------------------------------


def acl_commands(entries: Iterable[PlannedAclEntry]) -> list[str]:
    commands = []
    for e in entries:
        v6 = family(e.cidr) == 6
        commands.append(
            shell_join(
                [
                    "aws ec2 create-network-acl-entry",
                    shell_option("--network-acl-id", e.network_acl_id),
                    f"--rule-number {int(e.rule_number)}",
                    "--egress" if e.egress else "--ingress",
                    shell_option("--protocol", e.protocol),
                    f"--port-range From={int(e.from_port)},To={int(e.to_port)}",
                    shell_option("--ipv6-cidr-block" if v6 else "--cidr-block", e.cidr),
                    shell_option("--rule-action", e.action),
                ]
            )
        )
    return commands


def terraform_acl(entries: Iterable[PlannedAclEntry], binding: m.Binding) -> str:
    """`aws_network_acl_rule` blocks, one per entry."""
    blocks = []
    for e in entries:
        name = tf_identifier(
            "binding_health_acl",
            binding.namespace,
            binding.name,
            "egress" if e.egress else "ingress",
            e.rule_number,
        )
        v6 = family(e.cidr) == 6
        blocks.append(
            "\n".join(
                [
                    f'resource "aws_network_acl_rule" "{name}" {{',
                    f"  network_acl_id = {tf_string(e.network_acl_id)}",
                    f"  rule_number    = {int(e.rule_number)}",
                    f"  egress         = {'true' if e.egress else 'false'}",
                    f"  protocol       = {tf_string(e.protocol)}",
                    f"  rule_action    = {tf_string(e.action)}",
                    f"  {'ipv6_cidr_block' if v6 else 'cidr_block    '} = {tf_string(e.cidr)}",
                    f"  from_port      = {int(e.from_port)}",
                    f"  to_port        = {int(e.to_port)}",
                    "}",
                ]
            )
        )
    return "\n\n".join(blocks) + ("\n" if blocks else "")


def sg_commands(rules: Iterable[PlannedRule]) -> list[str]:
    """One `authorize-security-group-ingress` (or `-egress`) per group and direction (required
    first), every value quoted."""
    by_group: dict[tuple[bool, str, str], list[PlannedRule]] = {}
    for rule in rules:
        by_group.setdefault((not rule.required, rule.security_group_id, rule.direction), []).append(rule)
    commands = []
    for (_, sg_id, direction), group in sorted(by_group.items()):
        permissions = []
        for rule in group:
            perm: dict[str, Any] = {
                "IpProtocol": rule.protocol,
                "FromPort": rule.from_port,
                "ToPort": rule.to_port,
            }
            if rule.peer_kind == "sg":
                perm["UserIdGroupPairs"] = [{"GroupId": rule.peer, "Description": rule.description}]
            elif family(rule.peer) == 6:
                perm["Ipv6Ranges"] = [{"CidrIpv6": rule.peer, "Description": rule.description}]
            else:
                perm["IpRanges"] = [{"CidrIp": rule.peer, "Description": rule.description}]
            permissions.append(perm)
        commands.append(
            shell_join(
                [
                    f"aws ec2 authorize-security-group-{direction}",
                    shell_option("--group-id", sg_id),
                    shell_option("--ip-permissions", compact_json(permissions)),
                ]
            )
        )
    return commands


def terraform_rules(rules: Iterable[PlannedRule], binding: m.Binding) -> str:
    """`aws_vpc_security_group_ingress_rule` blocks, one per rule (that resource holds one source)."""
    blocks = []
    used: set[str] = set()
    for rule in rules:
        name = tf_identifier("binding_health", binding.namespace, binding.name, rule.protocol, rule.from_port)
        base, n = name, 2
        while name in used:
            name, n = f"{base}_{n}", n + 1
        used.add(name)
        lines = [
            f'resource "aws_vpc_security_group_{rule.direction}_rule" "{name}" {{',
            f"  security_group_id = {tf_string(rule.security_group_id)}",
            f"  description       = {tf_string(rule.description)}",
            f"  ip_protocol       = {tf_string(rule.protocol)}",
            f"  from_port         = {int(rule.from_port)}",
            f"  to_port           = {int(rule.to_port)}",
        ]
        if rule.peer_kind == "sg":
            lines.append(f"  referenced_security_group_id = {tf_string(rule.peer)}")
        elif family(rule.peer) == 6:
            lines.append(f"  cidr_ipv6         = {tf_string(rule.peer)}")
        else:
            lines.append(f"  cidr_ipv4         = {tf_string(rule.peer)}")
        lines.append("}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + ("\n" if blocks else "")


def kubectl_patch(binding: m.Binding, patch_body: dict[str, Any]) -> str:
    """`kubectl patch` of the binding with `patch_body` as a merge patch, every value quoted."""
    return shell_join(
        [
            "kubectl patch",
            shell_quote(f"targetgroupbindings.elbv2.k8s.aws/{binding.name}"),
            shell_option("--namespace", binding.namespace),
            "--type merge",
            shell_option("--patch", compact_json(patch_body)),
        ]
    )


# --- the fix as data and as a download --------------------------------------------------------


def _copy_tree(value: Any) -> Any:
    """`copy.deepcopy` for the plain JSON trees a fix holds (dicts, lists, scalars), in a tenth of
    the time: every stored fix copies its manifest, patch and counts."""
    if isinstance(value, dict):
        return {k: _copy_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_tree(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_copy_tree(v) for v in value)
    if isinstance(value, str | int | float | bool | None):
        return value
    return copy.deepcopy(value)


def fix_to_dict(fix: Fix) -> dict[str, Any]:
    """The fix as plain JSON-able data (the API's and the panel's shape)."""
    return {
        "binding": {"cluster": fix.cluster, "namespace": fix.namespace, "name": fix.name},
        "mode": fix.mode,
        "summary": fix.summary,
        "explanation": "\n".join(fix.explanation),
        "warnings": list(fix.warnings),
        "targets": list(fix.targets),
        "protocols": list(fix.protocols),
        "manifest": _copy_tree(fix.manifest),
        "manifestYaml": to_yaml(fix.manifest) if fix.manifest is not None else "",
        "patch": {"kubectl": fix.kubectl_patch, "body": _copy_tree(fix.patch_body)},
        "securityGroupCommands": list(fix.security_group_commands),
        "securityGroupRules": [
            {
                "securityGroup": r.security_group_id,
                "protocol": r.protocol,
                "fromPort": r.from_port,
                "toPort": r.to_port,
                "peer": r.peer,
                "peerKind": "cidr" if r.peer_kind == "cidr" else "securityGroup",
                "description": r.description,
                "required": r.required,
                "direction": r.direction,
            }
            for r in fix.security_group_rules
        ],
        "networkAclEntries": [
            {
                "networkAclId": e.network_acl_id,
                "ruleNumber": e.rule_number,
                "egress": e.egress,
                "protocol": e.protocol,
                "fromPort": e.from_port,
                "toPort": e.to_port,
                "cidr": e.cidr,
                "action": e.action,
            }
            for e in fix.network_acl_entries
        ],
        "networkAclCommands": list(fix.network_acl_commands),
        "terraform": fix.terraform,
        "healthCheck": [{"command": h.command, "reason": h.reason} for h in fix.health_checks],
        "ruleCount": _copy_tree(fix.rule_counts),
    }


def fix_to_yaml(fix: Fix) -> str:
    """The download: the TGB manifest (one document) when the fix changes the TGB.

    A fix that changes only security groups or the health check has no Kubernetes object to
    apply; its download is the fix itself as a YAML document (commands, Terraform, reasons).
    """
    if fix.manifest is not None:
        return to_yaml(fix.manifest)
    return to_yaml(fix_to_dict(fix))
