"""The case (案件): everything recorded about one policy's interpretation, or one training or
inspection of the government office.

The case is an eventsourcing `Aggregate` rebuilt from the case's events in the JetStream log,
which is the only event store: the aggregate's own pending events are never persisted. The
intake asks the case whether an event is possible (`check`), records it tentatively (position
unknown), appends the batch to the log under the case's optimistic lock, and then `confirm`s the
positions the log gave. If the append fails the intake throws this case away and rebuilds it
from the log, so a confirmed case never holds anything the log does not.

Everything here is pure and in memory: no I/O, safe to call on the event loop.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.calendar import check_confirmation
from domain.rules import CaseFacts
from events.catalogue import (
    CalendarYearConfirmed,
    ConsultationAnswered,
    ConsultationMatched,
    Event,
    PolicyIssued,
    PolicyRepealed,
    QAEntryPublished,
    QAEntryWithdrawn,
)
from events.codec import encode
from events.outcomes import Reason, Rejection

_NAMESPACE = uuid5(NAMESPACE_URL, "urn:jiedu:case")


def digest(e: Event) -> str:
    """What makes two sendings of one event ID the same event: its canonical content."""
    return hashlib.blake2b(encode(e), digest_size=16).hexdigest()


@dataclass
class Recorded:
    """Where an event ID landed in the log (None until confirmed), and what it said."""

    sequence: int | None
    digest: str


class Case(Aggregate):
    """One case and the facts the intake needs to judge the next event on it."""

    @staticmethod
    def create_id(
        case_id: str, kind: str, department: str, sequence: int | None, opening: Any
    ) -> UUID:
        return uuid5(_NAMESPACE, case_id)

    @event("Opened")
    def __init__(
        self, case_id: str, kind: str, department: str, sequence: int | None, opening: Any
    ) -> None:
        self.case_id = case_id
        self.kind = kind
        self.department = department
        self.last_sequence = 0
        self.recorded: dict[str, Recorded] = {}
        self.unconfirmed: list[tuple[str, Recorded]] = []
        self.references: dict[str, set[str]] = {}
        self.entries_published: set[str] = set()
        self.suggested: dict[str, set[tuple[str, str]]] = {}
        """(case, entry) the library suggested, by consultation (ConsultationMatched)."""
        self.issued = False
        self.facts = CaseFacts.empty()
        self._apply(sequence, opening)

    @event("Recorded")
    def record(self, sequence: int | None, fact: Any) -> None:
        """Apply an event the log holds at `sequence`, or (None) is about to append."""
        self._apply(sequence, fact)

    def confirm(self, sequences: list[int]) -> None:
        """The log now holds the tentatively recorded events, at these sequences."""
        for (_, recorded), sequence in zip(self.unconfirmed, sequences, strict=True):
            recorded.sequence = sequence
        self.facts.confirm(
            {event_id: seq for (event_id, _), seq in zip(self.unconfirmed, sequences, strict=True)}
        )
        self.last_sequence = sequences[-1]
        self.unconfirmed.clear()

    @classmethod
    def open(cls, sequence: int | None, e: Event) -> Case:
        return cls(
            case_id=e.case_id,
            kind=e.CASE_KIND or "policy",
            department=e.department,
            sequence=sequence,
            opening=e,
        )

    @classmethod
    def rebuild(cls, history: Iterable[tuple[int, Event]]) -> Case | None:
        """The case as of the end of `history` (its events in log order)."""
        case: Case | None = None
        for sequence, e in history:
            if case is None:
                case = cls.open(sequence, e)
            else:
                case.record(sequence, e)
        if case is not None:
            case.collect_events()  # the log already holds them
        return case

    def _apply(self, sequence: int | None, e: Event) -> None:
        self.facts.apply(sequence, e)
        recorded = self.recorded[e.event_id] = Recorded(sequence, digest(e))
        if sequence is None:
            self.unconfirmed.append((e.event_id, recorded))
        else:
            self.last_sequence = sequence
        for field, kind in _REFERENCE_KEYS.get(e.type, ()):
            self.references.setdefault(kind, set()).add(getattr(e.data, field))
        if isinstance(e, QAEntryPublished):
            self.entries_published.add(e.data.entry_id)
        elif isinstance(e, QAEntryWithdrawn):  # no longer there to revise or withdraw
            self.references.get(_ENTRY, set()).discard(e.data.entry_id)
        elif isinstance(e, PolicyIssued):
            self.issued = True
        elif isinstance(e, ConsultationMatched):
            self.suggested.setdefault(e.data.consultation_id, set()).update(
                (s.case_id, s.entry_id) for s in e.data.suggestions
            )

    def earlier(self, e: Event) -> Recorded | None:
        """An earlier sending of this event (perhaps not yet confirmed), or None if it is new.

        Raises `Rejection` if the ID was used before for different content."""
        seen = self.recorded.get(e.event_id)
        if seen is None:
            return None
        if seen.digest != digest(e):
            raise Rejection(
                Reason.EVENT_ID_CONFLICT,
                f"event ID {e.event_id} is at sequence {seen.sequence} with other content",
            )
        return seen

    def check(self, e: Event) -> None:
        """Raise `Rejection` if `e` cannot happen on this case as it stands."""
        if e.OPENS_CASE:
            raise Rejection(Reason.CASE_EXISTS, f"case {self.case_id} is already open")
        if e.CASE_KIND is not None and self.kind != e.CASE_KIND:
            raise Rejection(
                Reason.WRONG_CASE_KIND, f"{e.type} does not happen on a {self.kind} case"
            )
        if e.department != self.department:
            raise Rejection(
                Reason.CASE_DEPARTMENT_MISMATCH,
                f"case {self.case_id} is accountable to {self.department}, not {e.department}",
            )
        if e.REFERS_TO is not None:
            field, kind = e.REFERS_TO
            ref = getattr(e.data, field)
            if ref not in self.references.get(kind, set()):
                raise Rejection(Reason.UNKNOWN_REFERENCE, f"no {kind} {ref} on this case")
        if isinstance(e, QAEntryPublished) and e.data.entry_id in self.entries_published:
            raise Rejection(
                Reason.ENTRY_EXISTS,
                f"Q&A entry {e.data.entry_id} was published on this case before: revise it, "
                "or publish under a new entry ID",
            )
        if isinstance(e, ConsultationAnswered) and e.data.entry_id is not None:
            self._check_entry(e)
        if isinstance(e, PolicyRepealed) and not self.issued:
            raise Rejection(
                Reason.UNKNOWN_REFERENCE, f"no issued policy on case {self.case_id} to repeal"
            )

    def _check_entry(self, e: ConsultationAnswered) -> None:
        """QA-4: an answer from the library names an entry the library holds. The case can
        vouch for its own policy's entries (published, not withdrawn) and for what the library
        suggested for this very consultation, whatever the policy: an entry of another case is
        accepted only as a suggestion, since this case cannot see other cases' libraries."""
        entry_id, entry_case = e.data.entry_id, e.data.entry_case_id or self.case_id
        suggested = (entry_case, entry_id) in self.suggested.get(e.data.consultation_id, set())
        own = entry_case == self.case_id and entry_id in self.references.get(_ENTRY, set())
        if not (own or suggested):
            raise Rejection(
                Reason.UNKNOWN_REFERENCE,
                f"no Q&A entry {entry_id} on case {entry_case} published here or suggested "
                f"for consultation {e.data.consultation_id}",
            )


_ENTRY = "qa entry"
_REFERENCE_KEYS: dict[str, tuple[tuple[str, str], ...]] = {
    "ConsultationReceived": (("consultation_id", "consultation"),),
    "OpinionDetected": (("opinion_id", "opinion"),),
    "MediaInterpretationReported": (("report_id", "media report"),),
    "FindingRecorded": (("finding_id", "finding"),),
    "QAEntryPublished": (("entry_id", _ENTRY),),
}
"""Events that introduce something later events refer to (see `Envelope.REFERS_TO`)."""


def check_new_case(e: Event) -> None:
    """An event for a case the log does not hold: only an opening event is possible, and a
    calendar year only as `domain.calendar.check_confirmation` allows."""
    if not e.OPENS_CASE:
        raise Rejection(Reason.UNKNOWN_CASE, f"case {e.case_id} has not been opened")
    if isinstance(e, CalendarYearConfirmed):
        check_confirmation(e)
