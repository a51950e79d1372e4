"""Type-safe accessors and parsers every normaliser shares: hostile values become None or a
problem, never an exception."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from ..model import Problem

# Problem messages quote offending values; a hostile multi-megabyte value must not be copied.
_MAX_QUOTED = 80
# Deeper nesting than this is cut (see `bound_depth`); real objects stay far below it.
MAX_NESTING = 64


# --- small, type-safe accessors ---------------------------------------------------------------


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _str(value: Any) -> str | None:
    """A string, or a number rendered as one; anything else (dicts, lists, bools, null) is None."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _int(value: Any) -> int | None:
    """An int, also from a numeric string ("53") or an integral float; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"[+-]?\d{1,18}", text):
            return int(text)
    return None


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _quote(value: Any) -> str:
    """A short, printable rendering of an offending value for a problem message."""
    try:
        text = repr(value)
    except Exception:  # a hostile __repr__ must not turn a problem into a crash
        text = f"<{type(value).__name__}>"
    return text if len(text) <= _MAX_QUOTED else text[: _MAX_QUOTED - 1] + "…"


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def _str_dict(value: Any) -> dict[str, str]:
    """Labels, annotations, selectors and tags: string keys and values only."""
    out: dict[str, str] = {}
    for key, item in _dict(value).items():
        text = _str(item)
        if isinstance(key, str) and text is not None:
            out[key] = text
    return out


# The most tags a security group can carry (AWS tag quota), and the longest key and value.
MAX_ENI_SG_TAGS = 50
_MAX_TAG_KEY = 128
_MAX_TAG_VALUE = 256


def parse_eni_sg_tags(value: object, where: str = "serviceTargetEniSecurityGroupTags") -> dict[str, str]:
    """The controller's `--service-target-eni-security-group-tags` as a {key: value} mapping.

    Raises ValueError naming `where` and the offending entry. The one validator for the cluster
    setting (admin) and bundle.json, so both accept exactly the same values.
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be an object of tag key to value, got {type(value).__name__}")
    if len(value) > MAX_ENI_SG_TAGS:
        raise ValueError(f"{where} has {len(value)} tags; a security group carries at most {MAX_ENI_SG_TAGS}")
    out: dict[str, str] = {}
    for key, tag_value in value.items():
        if not isinstance(key, str) or not key.strip() or len(key) > _MAX_TAG_KEY:
            raise ValueError(f"{where}: tag key {str(key)[:80]!r} must be 1-{_MAX_TAG_KEY} characters")
        if not isinstance(tag_value, str) or len(tag_value) > _MAX_TAG_VALUE:
            raise ValueError(
                f"{where}[{key[:80]!r}]: the value must be a string of at most {_MAX_TAG_VALUE} characters"
            )
        out[key] = tag_value
    return out


def parse_cidr(text: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """Parse a CIDR the way Go's net.ParseCIDR does: a prefix length is required, host bits allowed."""
    if not isinstance(text, str) or "/" not in text or len(text) > 64:
        return None
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    """Ordered de-duplication: AWS and kubectl output may repeat entries."""
    return tuple(dict.fromkeys(v for v in values if v))


def bound_depth(value: Any, max_depth: int = MAX_NESTING) -> Any:
    """A copy of a JSON-like value with containers deeper than `max_depth` replaced by a marker.

    A collector can return objects nested arbitrarily deep (a custom resource's status, an
    unknown field); hashing, storing and re-reading them recurses once per level and would raise
    RecursionError past ~1000 levels, failing the whole poll. Iterative, so it cannot recurse
    itself. Fields the normaliser reads that were cut become wrong-type problems as usual.
    """
    if not _too_deep(value, max_depth):
        return value  # the usual case: no copy
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any, int]] = [(value, root, 0, 0)]
    while stack:
        item, parent, key, depth = stack.pop()
        if isinstance(item, dict | list | tuple) and depth >= max_depth:
            parent[key] = f"<nested deeper than {max_depth} levels: dropped>"
        elif isinstance(item, dict):
            copy: dict[Any, Any] = dict.fromkeys(item)  # keeps the key order
            parent[key] = copy
            stack.extend((v, copy, k, depth + 1) for k, v in item.items())
        elif isinstance(item, list | tuple):
            seq: list[Any] = [None] * len(item)
            parent[key] = seq
            stack.extend((v, seq, i, depth + 1) for i, v in enumerate(item))
        else:
            parent[key] = item
    return root[0]


def _too_deep(value: Any, max_depth: int) -> bool:
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterable[Any] = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth >= max_depth:
            return True
        stack.extend((v, depth + 1) for v in children)
    return False


# --- AWS responses (keyed by operation name) ---------------------------------------------------


def _items(
    responses: dict[str, Any], operation: str, key: str, problems: list[Problem]
) -> list[dict[str, Any]]:
    """The list `responses[operation][key]`, keeping only mappings and noting anything else."""
    response = responses.get(operation)
    if response is None:
        return []
    if not isinstance(response, dict):
        problems.append(Problem(operation, "", f"expected a mapping, got {_type_name(response)}"))
        return []
    items = response.get(key)
    if items is None:
        return []
    if not isinstance(items, list):
        problems.append(Problem(operation, key, f"expected a list, got {_type_name(items)}"))
        return []
    out = []
    for i, item in enumerate(items):
        if isinstance(item, dict):
            out.append(item)
        else:
            problems.append(Problem(operation, f"{key}[{i}]", f"expected a mapping, got {_type_name(item)}"))
    return out


def _keyed(responses: dict[str, Any], operation: str, problems: list[Problem]) -> dict[str, dict[str, Any]]:
    """Per-ARN responses `{arn: response}`; non-mapping entries are noted and dropped."""
    response = responses.get(operation)
    if response is None:
        return {}
    if not isinstance(response, dict):
        problems.append(
            Problem(operation, "", f"expected a mapping keyed by ARN, got {_type_name(response)}")
        )
        return {}
    out = {}
    for arn, value in response.items():
        if isinstance(arn, str) and isinstance(value, dict):
            out[arn] = value
        else:
            problems.append(
                Problem(operation, _quote(arn), f"expected a response mapping, got {_type_name(value)}")
            )
    return out


def _attributes(response: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in _list(response.get("Attributes")):
        key, value = _str(_dict(item).get("Key")), _dict(item).get("Value")
        if key is not None:
            text = _str(value) if not isinstance(value, bool) else str(value).lower()
            out[key] = text if text is not None else ""
    return out


def _put_aws(target: dict[str, Any], key: str, value: Any, operation: str, problems: list[Problem]) -> None:
    if key in target:
        problems.append(Problem(operation, _quote(key), "duplicate entry; later copy ignored"))
        return
    target[key] = value
