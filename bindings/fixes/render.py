"""Rendering of fixes: YAML through PyYAML, shell through shlex, Terraform through JSON escaping.

Every value that reaches an output may come from the cluster or from AWS (names, annotations,
CIDRs, ids) and may be hostile. Nothing is ever pasted into a template: YAML is dumped by the
library, each shell word is quoted on its own, and each Terraform string is a JSON string with
the template sequences `${` and `%{` escaped, so a value can never end its string and start
syntax of its own. Control and format characters (bidirectional overrides, ANSI escapes) are
written as escapes in each syntax (`bindings.textsafe`), so what is shown is what runs.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from bindings import textsafe


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
