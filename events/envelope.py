"""The envelope every Jiedu event travels in.

Sources set the event ID: it is the dedupe key for as long as the log lives. Identifiers that
appear in NATS subjects (department, case, source system) are restricted to subject-safe tokens,
so that a subject can never be forged by a value that contains a dot or a wildcard.

Every number, date and time is bounded to what the log, the projections and both read-model
databases can hold, and to what is sane for this domain (`Count`, `Position`, `Day`, `Moment`):
the intake refuses the rest as `out_of_range` rather than storing a value that would stop a
projection later. The contract is strict where JSON is ambiguous: integers are JSON integers
(not `2.0`, not `"2"`), dates and times are RFC 3339 strings (never epoch numbers).
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated, ClassVar, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
)
from pydantic_core import PydanticCustomError

from events.streams import CASE_TOKEN, NAME_TOKEN

EventId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")]
CaseId = Annotated[str, StringConstraints(pattern=CASE_TOKEN)]
"""A case ID, one token of the case's subjects (`events.streams`)."""
Token = Annotated[str, StringConstraints(pattern=NAME_TOKEN)]
"""A lower-case subject token: department codes and source-system names."""

INT64_MAX = 2**63 - 1
"""The largest integer JetStream sequences, SQLite INTEGER and PostgreSQL BIGINT all hold."""

MAX_COUNT = 100_000_000
"""A count of people or comments: more than Chongqing's 32 million residents, far below 64 bits."""

EARLIEST_DAY = date(2000, 1, 1)
LATEST_DAY = date(2099, 12, 31)
"""The calendar days an event may name. The district's rules date from 2021 and the documents
they interpret from this century; a date outside is a typing error or a probe. Within it every
time converts to UTC, to Asia/Shanghai and forward by working days without overflow (the year-1
and year-9999 values that once froze the projections cannot be expressed), and both databases
store it exactly."""

OUT_OF_RANGE = "out_of_range"
"""The pydantic error type of a value outside its field's range (see `events.codec`)."""

FROM_LOG = {"from_log": True}
"""Validation context for reading the log back (`events.codec.loads`). The log keeps what an
older intake accepted, before these checks: there numbers and times are read leniently, and a
date or time beyond the domain's bounds is read as the nearest bound (the stored bytes, which
the audit chain hashes, stay as they were), so a projection, rebuild or replay never stops on
it."""

_D = TypeVar("_D", bound=date)


def _from_log(info: ValidationInfo) -> bool:
    context = info.context
    return isinstance(context, dict) and bool(context.get("from_log"))


def _json_integer(value: object, info: ValidationInfo) -> object:
    """A JSON integer, not `2.0`, `"2"` or `true` (which pydantic's lax mode would take)."""
    if type(value) is int or _from_log(info):
        return value
    raise PydanticCustomError("int_type", "Input should be a JSON integer")


def _rfc3339(value: object, info: ValidationInfo) -> object:
    """An RFC 3339 string, never a number read as seconds or milliseconds by its size."""
    if isinstance(value, str | date) or _from_log(info):
        return value
    raise PydanticCustomError("date_type", "Input should be an RFC 3339 string")


def _in_domain_range(value: _D, info: ValidationInfo) -> _D:
    day = value.date() if isinstance(value, datetime) else value
    if EARLIEST_DAY <= day <= LATEST_DAY:
        return value
    if _from_log(info):
        bound = EARLIEST_DAY if day < EARLIEST_DAY else LATEST_DAY
        if isinstance(value, datetime):
            at = time.min if bound == EARLIEST_DAY else time.max
            return datetime.combine(bound, at, value.tzinfo)  # type: ignore[return-value]
        return bound  # type: ignore[return-value]
    raise PydanticCustomError(
        OUT_OF_RANGE,
        "{day} is outside {earliest}..{latest}",
        {"day": day.isoformat(), "earliest": str(EARLIEST_DAY), "latest": str(LATEST_DAY)},
    )


def _at_most(limit: int) -> AfterValidator:
    def check(value: int, info: ValidationInfo) -> int:
        if value <= limit:
            return value
        if _from_log(info):
            return min(value, INT64_MAX)
        raise PydanticCustomError(OUT_OF_RANGE, "Input should be at most {limit}", {"limit": limit})

    return AfterValidator(check)


JsonInteger = BeforeValidator(_json_integer)
"""After the constraints in `Annotated`, so that the JSON Schema still shows them."""
Count = Annotated[
    int, Field(ge=0, json_schema_extra={"maximum": MAX_COUNT}), JsonInteger, _at_most(MAX_COUNT)
]
"""How many of something: a JSON integer in 0..`MAX_COUNT`."""
Position = Annotated[
    int, Field(ge=1, json_schema_extra={"maximum": INT64_MAX}), JsonInteger, _at_most(INT64_MAX)
]
"""A log sequence: a JSON integer in 1..2⁶³−1."""
Version = Annotated[int, Field(ge=1), JsonInteger]
"""A schema version: a JSON integer ≥ 1."""
_BOUNDS = f"between {EARLIEST_DAY} and {LATEST_DAY}"
Day = Annotated[
    date,
    BeforeValidator(_rfc3339),
    AfterValidator(_in_domain_range),
    Field(json_schema_extra={"$comment": f"a full-date {_BOUNDS}"}),
]
"""A calendar day: an RFC 3339 full-date string (YYYY-MM-DD) between the domain's bounds."""
Moment = Annotated[
    AwareDatetime,
    BeforeValidator(_rfc3339),
    AfterValidator(_in_domain_range),
    Field(json_schema_extra={"$comment": f"a date-time with offset, its local day {_BOUNDS}"}),
]
"""A point in time: an RFC 3339 string with its offset, its local day between the domain's
bounds."""


class Record(BaseModel):
    """Base of every value object in the contract: immutable and strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Actor(Record):
    """The person or system that did what the event records."""

    id: str = Field(min_length=1, max_length=128)
    name: str | None = None


class Envelope(Record):
    """Fields common to all events; each event type adds its own `data`."""

    event_id: EventId
    type: str
    schema_version: Version = 1
    case_id: CaseId
    department: Token = Field(description="The accountable department (责任单位) of the case")
    actor: Actor
    source_system: Token
    occurred_at: Moment
    correlation_id: str | None = None
    causation_id: str | None = None

    SCHEMA_VERSION: ClassVar[int] = 1
    """The version this code writes; older versions are upcast on read (see `events.codec`)."""
    OPENS_CASE: ClassVar[bool] = False
    """True for the event types that start a case; every other event needs its case to exist."""
    CASE_KIND: ClassVar[str | None] = "policy"
    """The kind of case the event belongs to; None for events that fit any case."""
    REFERS_TO: ClassVar[tuple[str, str] | None] = None
    """(data field, kind of thing) that must already be recorded on the case, if any."""
