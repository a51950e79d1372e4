"""Keyset pagination: opaque cursors, the "after this row" condition, the next page's link.

A cursor is the url-safe base64 of the JSON list of the last row's keys; it reaches the query as
values (never SQL), so every value is checked to be one the database can hold: a forged cursor
is a 400 problem, not a driver error.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any
from urllib.parse import urlencode

from django.db.models import Q, QuerySet
from django.http import HttpRequest
from ninja import Field, Schema
from ninja.errors import HttpError

# Postgres and SQLite both store 64-bit signed keys: bigger ids cannot exist, and would make the
# database driver raise instead of answering 404.
MAX_ID = 2**63 - 1
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200

# The bindings list's order and keyset: (cluster_id, namespace, name, id), ascending; none is NULL.
BINDING_ORDER = ("cluster_id", "namespace", "name", "id")
BINDING_KEY_TYPES = (int, str, str, int)

_INVALID = "The cursor is not valid: use the next_cursor of a previous page."


class PageParams(Schema):
    limit: int = Field(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    cursor: str | None = Field(
        None,
        max_length=2000,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="Opaque: the next_cursor of a previous page.",
    )


def encode_cursor(values: list[Any]) -> str:
    raw = json.dumps(values, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, types: tuple[type, ...]) -> list[Any]:
    """The keyset values in an opaque cursor; a 400 problem when it was not made by us."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise HttpError(400, _INVALID) from None
    if (
        not isinstance(values, list)
        or len(values) != len(types)
        or not all(type(v) is t and _cursor_value_ok(v) for v, t in zip(values, types, strict=True))
    ):
        raise HttpError(400, _INVALID)
    return values


def _cursor_value_ok(value: Any) -> bool:
    """A cursor's values reach the query: keep them to what the database can hold."""
    if isinstance(value, int):
        return -MAX_ID - 1 <= value <= MAX_ID
    if isinstance(value, str):
        if len(value) > 2000 or re.search(r"[\x00-\x1f\x7f]", value):
            return False
        try:
            value.encode("utf-8")  # a lone surrogate cannot be sent
        except UnicodeEncodeError:
            return False
    return True


def after(fields: tuple[str, ...], values: list[Any]) -> Q:
    """Keyset condition "row > values" for ascending `fields` (a stable, index-friendly page)."""
    condition = Q()
    for i, field in enumerate(fields):
        step = Q(**{f"{field}__gt": values[i]})
        for prior, value in zip(fields[:i], values[:i], strict=True):
            step &= Q(**{prior: value})
        condition |= step
    return condition


def pk_page(
    qs: QuerySet[Any], cursor: str | None, limit: int, *, newest_first: bool = False
) -> tuple[list[Any], str | None]:
    """One page of `qs` keyed by primary key (findings oldest first, polls newest first): the rows
    after `cursor`, and the cursor of the next page when there is one (one row more is fetched to
    know)."""
    if cursor:
        pk = decode_cursor(cursor, (int,))[0]
        qs = qs.filter(pk__lt=pk) if newest_first else qs.filter(pk__gt=pk)
    rows = list(qs.order_by("-pk" if newest_first else "pk")[: limit + 1])
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor([rows[-1].pk])


def next_link(request: HttpRequest, cursor: str | None) -> str | None:
    """This request's path and query with `cursor` in place of its own (or appended): what
    `QueryDict.copy()` plus `urlencode()` would give, without the deep copy of the query."""
    if cursor is None:
        return None
    pairs: list[tuple[str, str]] = []
    placed = False
    for key, values in request.GET.lists():
        if key != "cursor":
            pairs.extend((key, value) for value in values)
        elif not placed:
            pairs.append((key, cursor))
            placed = True
    if not placed:
        pairs.append(("cursor", cursor))
    return f"{request.path}?{urlencode(pairs)}"
