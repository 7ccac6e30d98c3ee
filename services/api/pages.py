"""Pagination by cursor (not offset): a page is rows in a fixed order that come after the last
row of the page before. The cursor is the previous page's last row's ordering values, encoded;
a page stays right while rows are added or changed before or after it, where an offset shifts.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Annotated, Any

import orjson
from fastapi import HTTPException, Query
from pydantic import BaseModel

from projections.base import Row

MAX_LIMIT = 1000
DEFAULT_LIMIT = 50
"""Rows of a page unless asked for more: what a screen shows; each costs to read and write."""

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="rows per page")]
Cursor = Annotated[
    str | None, Query(max_length=2048, description="`next` of the previous page")
]


class Page(BaseModel):
    """One page: its rows and the cursor of the next page (null: this is the last)."""

    items: list[dict[str, Any]]
    next: str | None


def encode(values: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(values))).decode().rstrip("=")


def decode(cursor: str | None, width: int) -> list[Any] | None:
    """The ordering values a cursor holds; 400 for one this API did not make."""
    if cursor is None:
        return None
    try:
        values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        raise HTTPException(400, "the cursor is not one this API gave") from None
    if (
        not isinstance(values, list) or len(values) != width
        or not all(isinstance(v, str | int) and not isinstance(v, bool) for v in values)
    ):
        raise HTTPException(400, "the cursor is not one this API gave")
    return values


def page(rows: list[Row], order: Sequence[str], limit: int) -> dict[str, Any]:
    """The page of `rows` (fetched with `limit + 1`, to know whether another follows)."""
    more = len(rows) > limit
    shown = rows[:limit]
    last = shown[-1] if more and shown else None
    return {
        "items": shown,
        "next": encode([last[c] for c in order]) if last is not None else None,
    }
