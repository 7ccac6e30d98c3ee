"""Bytes on the wire ⇄ events: orjson, upcasting of old schema versions, precise rejections."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from pydantic import ValidationError

from events.catalogue import BY_TYPE, EVENT_ADAPTER, Event
from events.envelope import Envelope
from events.outcomes import Reason, Rejection

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

UPCASTERS: dict[tuple[str, int], Upcaster] = {}
"""(type, from version) → function producing the next version. Applied on every read, so the
log keeps what sources sent while the code only ever handles the current version."""


def upcaster(event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    def register(fn: Upcaster) -> Upcaster:
        UPCASTERS[(event_type, from_version)] = fn
        return fn

    return register


@upcaster("DraftSubmitted", 1)
def _draft_submitted_v1_v2(raw: dict[str, Any]) -> dict[str, Any]:
    """v1 named the issuer by kind only (`"issuer": "department"`, optional `co_issuers`);
    v2 names the lead department explicitly, which WHO-1 charges for the case."""
    data = dict(raw["data"])
    co_issuers = data.pop("co_issuers", [])
    kind = "joint" if co_issuers else data.get("issuer", "department")
    data["issuer"] = {"kind": kind, "lead": raw.get("department"), "co_issuers": co_issuers}
    return {**raw, "data": data, "schema_version": 2}


def upcast(raw: dict[str, Any]) -> dict[str, Any]:
    event_type = raw.get("type")
    cls = BY_TYPE.get(event_type) if isinstance(event_type, str) else None
    if cls is None or not isinstance(event_type, str):
        return raw
    version = raw.get("schema_version", 1)
    if not isinstance(version, int) or version < 1:
        return raw  # validation reports it
    if version > cls.SCHEMA_VERSION:
        raise Rejection(
            Reason.UNSUPPORTED_VERSION,
            f"{event_type} v{version} is newer than v{cls.SCHEMA_VERSION}, the newest known",
        )
    while version < cls.SCHEMA_VERSION:
        raw = UPCASTERS[(event_type, version)](raw)
        version = raw["schema_version"]
    return raw


def _fast(body: bytes) -> Event | None:
    """The common case in one pass (pydantic parses the JSON itself): a valid event of the
    current schema version. None sends the caller down the careful path."""
    try:
        event = EVENT_ADAPTER.validate_json(body)
    except ValidationError:
        return None
    return event if event.schema_version == event.SCHEMA_VERSION else None


def decode(body: bytes) -> Event:
    """Parse one message, or raise `Rejection` naming the first thing wrong with it."""
    if (event := _fast(body)) is not None:
        return event
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise Rejection(Reason.NOT_JSON, str(e)) from None
    if not isinstance(raw, dict):
        raise Rejection(Reason.NOT_OBJECT, f"top level is {type(raw).__name__}, not an object")
    event_type = raw.get("type")
    if not isinstance(event_type, str) or event_type not in BY_TYPE:
        raise Rejection(Reason.UNKNOWN_TYPE, f"type {event_type!r} is not in the catalogue")
    try:
        return EVENT_ADAPTER.validate_python(upcast(raw))
    except ValidationError as e:
        raise _rejection(e) from None


def _rejection(error: ValidationError) -> Rejection:
    errors = error.errors(include_url=False, include_input=False)
    for kind, reason in (
        ("timezone_aware", Reason.NAIVE_TIMESTAMP),
        ("missing", Reason.MISSING_FIELD),
    ):
        hits = [e for e in errors if e["type"] == kind]
        if hits:
            return Rejection(reason, _describe(hits))
    return Rejection(Reason.INVALID_FIELD, _describe(errors))


def _describe(errors: list[Any]) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc'][1:]) or '<root>'}: {e['msg']}" for e in errors[:5]
    )


def encode(event: Envelope) -> bytes:
    """Canonical bytes: the form stored in EVENTS and hashed by the audit chain."""
    return orjson.dumps(event.model_dump(mode="json", exclude_none=True))


def loads(body: bytes) -> Event:
    """Read an event back from the log (already validated once, upcast if its schema is old)."""
    return _fast(body) or EVENT_ADAPTER.validate_python(upcast(orjson.loads(body)))
