"""Jiedu's one JSON form, shared by the `jiedu` command (`--json`) and the HTTP API.

One document, UTF-8; keys in the order of the record; times ISO 8601 as the district reads them,
in Asia/Shanghai with the offset written out (`2026-07-06T09:30:00+08:00`); days `YYYY-MM-DD`;
absent values `null`. `json_bytes` indents by two spaces (for people at a terminal); `compact`
writes the same document on one line (JSON Lines, HTTP bodies).
"""

from __future__ import annotations

from datetime import date, datetime, time

import orjson
from pydantic import AnyUrl

from domain.calendar import SHANGHAI


def local_time(at: datetime) -> str:
    """A time in Asia/Shanghai, ISO 8601 with its +08:00 offset."""
    return at.astimezone(SHANGHAI).isoformat()


def _default(value: object) -> object:
    if isinstance(value, datetime):
        return local_time(value)
    if isinstance(value, date | time):  # orjson passes these through with datetimes
        return value.isoformat()
    if isinstance(value, AnyUrl):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def json_bytes(value: object) -> bytes:
    """`value` in Jiedu's one JSON form, indented by two spaces."""
    return orjson.dumps(
        value, default=_default, option=orjson.OPT_INDENT_2 | orjson.OPT_PASSTHROUGH_DATETIME
    )


def compact(value: object) -> bytes:
    """`value` in the same form on one line."""
    return orjson.dumps(value, default=_default, option=orjson.OPT_PASSTHROUGH_DATETIME)
