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

from datetime import date, datetime
from typing import Annotated, ClassVar, TypeVar

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints
from pydantic_core import PydanticCustomError

EventId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")]
CaseId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")]
Token = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,63}$")]
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

_D = TypeVar("_D", bound=date)

OUT_OF_RANGE = "out_of_range"
"""The pydantic error type of a value outside its field's range (see `events.codec`)."""


def _in_domain_range(value: _D) -> _D:
    day = value.date() if isinstance(value, datetime) else value
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise PydanticCustomError(
            OUT_OF_RANGE,
            "{day} is outside {earliest}..{latest}",
            {"day": day.isoformat(), "earliest": str(EARLIEST_DAY), "latest": str(LATEST_DAY)},
        )
    return value


Count = Annotated[int, Field(strict=True, ge=0, le=MAX_COUNT)]
"""How many of something: a JSON integer in 0..`MAX_COUNT`."""
Position = Annotated[int, Field(strict=True, ge=1, le=INT64_MAX)]
"""A log sequence: a JSON integer in 1..2⁶³−1."""
Day = Annotated[date, Field(strict=True), AfterValidator(_in_domain_range)]
"""A calendar day: an RFC 3339 full-date string (YYYY-MM-DD) between the domain's bounds."""
Moment = Annotated[AwareDatetime, Field(strict=True), AfterValidator(_in_domain_range)]
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
    schema_version: int = Field(default=1, ge=1, strict=True)
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
