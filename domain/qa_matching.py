"""Consultations and the Q&A library (QA-4, QA-5): what the matching service writes, and the
entry a drafting unit's answer becomes.

Pure: the matching service (`services.matcher`) searches the library and hands the hits here;
this module makes the derived `ConsultationMatched` event with an ID and content that depend
only on the consultation and the hits, so that every instance that matches the same
consultation against the same library writes the same event, and the case's lock lets one of
them in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import date, datetime
from typing import Final

from events.catalogue import ConsultationMatched, ConsultationMatchedData, Suggestion
from events.envelope import Actor

SOURCE_SYSTEM: Final = "jiedu-matcher"
"""``source_system`` of every ConsultationMatched."""
ACTOR: Final = Actor(id="jiedu", name="问答库匹配服务 (Jiedu Q&A matching service)")

_ENTRY_ID_MAX = 128
_CANDIDATE_PREFIX = "cand-"


def _digest(text: str, size: int = 10) -> str:
    return hashlib.blake2b(text.encode(), digest_size=size).hexdigest()


def matched_event_id(case_id: str, consultation_id: str) -> str:
    """The one ConsultationMatched ID of a consultation (a consultation ID is unique within its
    case): every instance, and every retry, computes the same."""
    return "matched-" + _digest(case_id + "\x1f" + consultation_id)


def candidate_entry_id(consultation_id: str) -> str:
    """The entry ID a candidate (QA-5) is published under: ``cand-<consultation>``, or a digest
    when that would be too long, so that the library shows which consultation it grew from and
    the same candidate cannot be published twice on its case (`entry_exists`)."""
    plain = f"{_CANDIDATE_PREFIX}{consultation_id}"
    if len(plain) <= _ENTRY_ID_MAX:
        return plain
    return f"{_CANDIDATE_PREFIX}{_digest(consultation_id, 16)}"


def matched_event(
    *,
    case_id: str,
    department: str,
    consultation_id: str,
    received_event_id: str,
    received_at: datetime,
    searched_on: date,
    suggestions: Sequence[Suggestion],
    answerable: bool,
    threshold: float,
) -> ConsultationMatched:
    """The suggestions for one consultation as the derived event on its case. Its time is the
    consultation's (the suggestions are what the library offered for it as received), never
    the wall clock's."""
    return ConsultationMatched(
        event_id=matched_event_id(case_id, consultation_id),
        case_id=case_id,
        department=department,
        actor=ACTOR,
        source_system=SOURCE_SYSTEM,
        occurred_at=received_at,
        correlation_id=consultation_id,
        causation_id=received_event_id,
        data=ConsultationMatchedData(
            consultation_id=consultation_id,
            suggestions=tuple(suggestions),
            answerable=answerable and bool(suggestions),
            threshold=threshold,
            searched_on=searched_on,
        ),
    )
