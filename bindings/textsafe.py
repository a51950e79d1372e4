"""Text from Kubernetes and AWS, made storable and shown as what it is (the one home for both).

Anyone who can name a security group, annotate a TargetGroupBinding or make a target fail its
health check writes text that Binding Health stores, shows to SREs and pastes into commands.

Storing: PostgreSQL text and jsonb cannot hold a NUL character ("\\u0000"): one annotation value
or event message with a NUL would make every sync of its cluster fail, so anyone who may annotate
a TargetGroupBinding could freeze the cluster's results at their last good state. NULs are
replaced (not dropped) so the stored text still shows that something was there (`without_nul`).

Showing: control characters (C0, DEL, C1: ANSI escape sequences start with ESC or CSI), format
characters (bidirectional embeddings, overrides and isolates U+202A–U+202E, U+2066–U+2069, the
marks U+200E/U+200F/U+061C, zero-width characters, the BOM, tag characters) and the line and
paragraph separators can make text read differently from what it is: `evil\\u202egpj.exe` shows
as "evilexe.jpg", an ANSI sequence rewrites a terminal. Every output shows them as visible
escapes (`\\x1b`, `\\u202e`, `\\U000e0041`), each in its own syntax so the value stays exact:

- `visible`: HTML pages (bindings/web/visible.py applies it to every HTML response) and terminal
  text (`analyze`, `check_bindings`);
- `json_text`: JSON inside generated commands (a `\\uXXXX` JSON escape is the same string);
- `shell_quote`: one shell word; ANSI-C quoting (`$'…\\u202e…'`) when it holds such characters;
- `yaml_escape_output` (via `bindings.fixes.render.to_yaml`): YAML double-quoted escapes.

Pure: no Django imports (the analysis core and fix generation use it).
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

NUL = "\x00"
REPLACEMENT = "\ufffd"

# Unicode categories Cc, Cf, Zl, Zp and Cs, written out (computing them at import would walk all
# 1.1M code points). tests/test_output_safety.py checks the list against `unicodedata`; the last
# Egyptian hieroglyph format controls (U+13439–U+1343F) are Unicode 15 and listed ahead of it.
UNSAFE_CLASS = (
    "\x00-\x1f\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
    "\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ud800-\udfff\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f"
)
UNSAFE = re.compile(f"[{UNSAFE_CLASS}]")
# Everything unsafe but the whitespace that HTML markup and YAML structure are made of.
_UNSAFE_BUT_LAYOUT = re.compile(f"(?![\t\n\r])[{UNSAFE_CLASS}]")
_UNSAFE_BUT_NEWLINE = re.compile(f"(?!\n)[{UNSAFE_CLASS}]")


def without_nul(value: Any) -> Any:
    """`value` (JSON-like: dicts, lists, strings, scalars) with every NUL in a string replaced."""
    if isinstance(value, str):
        return value.replace(NUL, REPLACEMENT) if NUL in value else value
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [without_nul(v) for v in value]
    return value


def escape_char(char: str, *, byte_escapes: bool = True) -> str:
    """`\\x1b` (when `byte_escapes`, below U+0100), `\\u202e`, or `\\U000e0041` for one character."""
    code = ord(char)
    if byte_escapes and code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def has_unsafe(text: str) -> bool:
    return UNSAFE.search(text) is not None


def visible(value: object) -> str:
    """`value` as text with every control/format/separator character shown as an escape.

    For terminals and single values: newlines and tabs are escaped too, so one value stays on one
    line. ANSI sequences are neutralised by escaping their ESC/CSI; the rest shows as text.
    """
    text = "" if value is None else str(value)
    return UNSAFE.sub(lambda match: escape_char(match.group(0)), text)


def visible_markup(text: str) -> str:
    """Like `visible`, but tabs and line breaks (the layout of an HTML page) are left alone."""
    if not UNSAFE.search(text):
        return text
    return _UNSAFE_BUT_LAYOUT.sub(lambda match: escape_char(match.group(0)), text)


def _json_escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000  # JSON has no \U escape: a UTF-16 surrogate pair
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def json_text(obj: Any) -> str:
    """Compact JSON, non-ASCII kept readable, unsafe characters as `\\uXXXX` (same value).

    Outside strings compact JSON has no whitespace, so every unsafe character is inside a string.
    """
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, sort_keys=False)
    return UNSAFE.sub(lambda match: _json_escape(match.group(0)), text)


def _ansi_c_char(char: str) -> str:
    if char == "\\":
        return "\\\\"
    if char == "'":
        return "\\'"
    if UNSAFE.match(char):
        # bash/zsh `$'…'`: \xNN is a *byte*, so only ASCII controls use it; the rest \u/\U.
        return escape_char(char, byte_escapes=ord(char) < 0x80)
    return char


def shell_quote(value: str) -> str:
    """One shell word that stands for exactly `value`, readable when pasted and shown.

    Plain values are quoted by `shlex.quote`. A value with control or format characters (which
    would make the pasted command look different from what it runs) is written with ANSI-C quoting,
    `$'…'`, with each such character as an escape; bash, zsh and ksh read it as the same value. A
    POSIX shell without `$'…'` reads a different, harmless word (the command then fails on a name
    that does not exist). A NUL cannot be passed in an argument: refused.
    """
    if NUL in value:
        raise ValueError(f"a shell argument cannot hold a NUL character: {visible(value)!r}")
    if not has_unsafe(value):
        return shlex.quote(value)
    return "$'" + "".join(_ansi_c_char(char) for char in value) + "'"


def yaml_escape_output(text: str) -> str:
    """Escape the unsafe characters a YAML emitter left raw, as YAML double-quoted escapes.

    Only valid on output of a dumper that writes every string holding such a character in
    double-quoted style (`bindings.fixes.render`): then every raw one left (the emitter escapes
    C0 controls itself, not format characters) is inside a double-quoted scalar, where
    `\\u202e` means the same character. Line breaks are the document's structure: kept.
    """
    if not UNSAFE.search(text):
        return text
    return _UNSAFE_BUT_NEWLINE.sub(lambda match: escape_char(match.group(0)), text)
