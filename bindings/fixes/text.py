"""How lists read in a fix: in first-seen order without repeats, and shortened for a sentence."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import TypeVar

T = TypeVar("T", bound=Hashable)


def unique(items: Iterable[T]) -> list[T]:
    seen: set[T] = set()
    out: list[T] = []
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
