"""What the intake answers for every message: accepted, duplicate, or rejected with a reason.

The reason codes are part of the contract with upstream systems: machine-readable, stable, and
each one names exactly one way a message can be refused.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from events.envelope import Record


class Reason(StrEnum):
    """Why a message was refused. Only malformed, unauthorised or impossible input is refused;
    a fact that merely breaks a rule is recorded with a finding instead."""

    # malformed
    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    UNKNOWN_TYPE = "unknown_type"
    UNSUPPORTED_VERSION = "unsupported_version"
    MISSING_FIELD = "missing_field"
    INVALID_FIELD = "invalid_field"
    NAIVE_TIMESTAMP = "naive_timestamp"
    OUT_OF_RANGE = "out_of_range"
    """A number, date or time beyond what its field can hold (see `events.envelope`)."""
    DUPLICATE_KEY = "duplicate_key"
    """An object names the same key twice: which one was meant is not ours to guess."""
    UNSTORABLE_TEXT = "unstorable_text"
    """Text with a NUL character, which PostgreSQL can store neither in TEXT nor in JSONB."""
    INVALID_SUBJECT = "invalid_subject"
    """A subject with a wildcard token (`*`, `>`) sent literally: it names no one source or case."""
    CASE_MISMATCH = "case_mismatch"
    # unauthorised
    UNKNOWN_DEPARTMENT = "unknown_department"
    DEPARTMENT_MISMATCH = "department_mismatch"
    SOURCE_MISMATCH = "source_mismatch"
    NOT_MONITOR = "not_monitor"
    ROLE_MISMATCH = "role_mismatch"
    RESERVED_TYPE = "reserved_type"
    # impossible
    UNKNOWN_CASE = "unknown_case"
    UNKNOWN_REFERENCE = "unknown_reference"
    CASE_EXISTS = "case_exists"
    WRONG_CASE_KIND = "wrong_case_kind"
    CASE_DEPARTMENT_MISMATCH = "case_department_mismatch"
    ENTRY_EXISTS = "entry_exists"
    """A Q&A entry ID already published on the case (QA-1): entries are revised, never
    republished, so one ID names one entry for as long as the log lives."""
    EVENT_ID_CONFLICT = "event_id_conflict"
    # ours
    INTERNAL_ERROR = "internal_error"
    """Deciding the message failed unexpectedly: it is kept raw with the error for an operator,
    and no other message waits for it."""


MAX_DETAIL = 1000
"""Characters of a refusal's detail kept (in REJECTED's headers and the outcome): enough to
name the problem; the message itself is kept whole."""


class Rejection(Exception):
    """Raised by the pure checks; the intake turns it into a REJECTED record."""

    def __init__(self, reason: Reason, detail: str) -> None:
        detail = " ".join(detail.split())[:MAX_DETAIL]  # one line: it travels in a header
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class Outcome(Record):
    """The answer to one intake message, published to the source and kept by event ID."""

    status: Literal["accepted", "duplicate", "rejected"]
    intake_sequence: int
    event_id: str | None = None
    case_id: str | None = None
    sequence: int | None = None
    reason: Reason | None = None
    detail: str | None = None
    at: datetime
