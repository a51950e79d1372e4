"""How lists read in a fix: in first-seen order without repeats, and shortened for a sentence."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def unique(items: Iterable[Any]) -> list[Any]:
    seen: set = set()
    out = []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


def short(items: Iterable[object], limit: int = 6) -> str:
    listed = [str(i) for i in items]
    if len(listed) > limit:
        return ", ".join(listed[:limit]) + f" and {len(listed) - limit} more"
    return ", ".join(listed)
