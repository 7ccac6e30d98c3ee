"""The envelope every Jiedu event travels in.

Sources set the event ID: it is the dedupe key for as long as the log lives. Identifiers that
appear in NATS subjects (department, case, source system) are restricted to subject-safe tokens,
so that a subject can never be forged by a value that contains a dot or a wildcard.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from events.streams import CASE_TOKEN, NAME_TOKEN

EventId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")]
CaseId = Annotated[str, StringConstraints(pattern=CASE_TOKEN)]
"""A case ID, one token of the case's subjects (`events.streams`)."""
Token = Annotated[str, StringConstraints(pattern=NAME_TOKEN)]
"""A lower-case subject token: department codes and source-system names."""


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
    schema_version: int = Field(default=1, ge=1)
    case_id: CaseId
    department: Token = Field(description="The accountable department (责任单位) of the case")
    actor: Actor
    source_system: Token
    occurred_at: AwareDatetime
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
