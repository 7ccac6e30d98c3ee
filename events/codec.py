"""Bytes on the wire ⇄ events: orjson, upcasting of old schema versions, precise rejections.

Strict where JSON is ambiguous: an object that names a key twice is refused (`duplicate_key`;
parsers disagree on which one wins), and so is text with a NUL character (`unstorable_text`),
which PostgreSQL cannot hold; numbers, dates and times out of their field's range are refused as
`out_of_range` (the bounds are in `events.envelope`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson
from pydantic import ValidationError

from events.catalogue import BY_TYPE, EVENT_ADAPTER, Event
from events.envelope import FROM_LOG, OUT_OF_RANGE, Envelope
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
    if type(version) is not int or version < 1:
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
        _check_text(body)
        return event
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise Rejection(Reason.NOT_JSON, str(e)) from None
    if not isinstance(raw, dict):
        raise Rejection(Reason.NOT_OBJECT, f"top level is {type(raw).__name__}, not an object")
    _check_text(body)
    event_type = raw.get("type")
    if not isinstance(event_type, str) or event_type not in BY_TYPE:
        raise Rejection(Reason.UNKNOWN_TYPE, f"type {event_type!r} is not in the catalogue")
    try:
        event = _validate(raw, body)
    except ValidationError as e:
        raise _rejection(e) from None
    if event.schema_version > event.SCHEMA_VERSION:  # beyond 64 bits, so orjson read a float
        raise Rejection(
            Reason.UNSUPPORTED_VERSION,
            f"{event.type} v{event.schema_version} is newer than v{event.SCHEMA_VERSION}",
        )
    return event


def _validate(raw: dict[str, Any], body: bytes, context: dict[str, Any] | None = None) -> Event:
    """Validate the body itself if no upcaster changes it (its integers exact, where orjson
    reads those beyond 64 bits as floats), else the upcast form."""
    current = upcast(raw)
    if current is raw:
        return EVENT_ADAPTER.validate_json(body, context=context)
    try:
        upcast_body = orjson.dumps(current)
    except TypeError as e:  # an integer beyond 64 bits survived the upcaster
        raise Rejection(Reason.OUT_OF_RANGE, str(e)) from None
    return EVENT_ADAPTER.validate_json(upcast_body, context=context)


class _DuplicateKey(Exception):
    pass


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return out


def _check_text(body: bytes) -> None:
    """Refuse duplicate keys and NUL characters, which orjson and pydantic let pass. One more
    pass of the standard library's C parser: its `object_pairs_hook` sees each object's keys
    as written. Bodies it cannot read (nesting deeper than its recursion limit, integers of
    more than 4,300 digits) were read by orjson already and are left to validation, which
    refuses them: no valid event nests deeply or holds such a number."""
    try:
        json.loads(body, object_pairs_hook=_unique)
    except _DuplicateKey as e:
        raise Rejection(
            Reason.DUPLICATE_KEY, f"key {e.args[0]!r} appears twice in one object"
        ) from None
    except (RecursionError, ValueError):
        pass
    if b"\\u0000" in body and _has_nul(orjson.loads(body)):
        raise Rejection(Reason.UNSTORABLE_TEXT, "text contains a NUL character (\\u0000)")


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


_RANGE_ERRORS = frozenset({OUT_OF_RANGE, "less_than_equal", "greater_than_equal"})
"""Pydantic's error types for a value beyond its field's bounds."""


def _rejection(error: ValidationError) -> Rejection:
    errors = error.errors(include_url=False, include_input=False)
    for kinds, reason in (
        ({"timezone_aware"}, Reason.NAIVE_TIMESTAMP),
        ({"missing"}, Reason.MISSING_FIELD),
        (_RANGE_ERRORS, Reason.OUT_OF_RANGE),
    ):
        hits = [e for e in errors if e["type"] in kinds]
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
    """Read an event back from the log (already validated once, upcast if its schema is old).
    What an older intake accepted is read leniently (see `events.envelope.FROM_LOG`)."""
    return _fast(body) or _validate(orjson.loads(body), body, FROM_LOG)
