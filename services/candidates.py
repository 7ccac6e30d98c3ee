"""Growing the library from consultations (QA-5): the candidates and the questions for the
periodic review (定期梳理汇总), and publishing a candidate as a department's system would.

A candidate is a consultation that was referred to the drafting unit and answered by it
(`projections.qa_consultations`): its question and that answer are an entry the library lacked.
Publishing it sends a `QAEntryPublished` through the intake with the department's own
identity, under the candidate's entry ID (`domain.qa_matching.candidate_entry_id`), so it is
judged like every other entry (a department publishes only its own) and, once in the log, the
candidate is no longer waiting. A candidate is published once: its entry ID is fixed, so a
second publication is refused (`entry_exists`).

Reading is synchronous (SQL: call it in a thread); publishing is async.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from events.catalogue import QAEntryData, QAEntryPublished
from events.codec import encode
from events.envelope import Actor
from events.outcomes import Outcome
from projections.qa_consultations import CONSULTATIONS, WAITING, QAConsultations
from services import bootstrap
from services.adapters.config import Settings
from services.adapters.eventlog import EventLog
from services.adapters.readmodels import ReadStore

SOURCE_SYSTEM = "qa-library"
"""The department's system publishing candidates, unless told otherwise."""


class NoCandidate(LookupError):
    """No waiting candidate for that consultation (or more than one: name the case)."""


def waiting(store: ReadStore, department: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """`candidates`: consultations referred and answered by the drafting unit, waiting to be
    published; `review`: questions the library had no good answer for (matched, not
    answerable) that are no candidate, for the periodic review. Each in order of receipt."""
    rows = store.select(QAConsultations(), CONSULTATIONS, {"department": department},
                        order_by=("received_at", "case_id", "consultation_id"))
    keep = ("case_id", "consultation_id", "department", "channel", "question", "received_at")
    candidates = [
        {**{k: r[k] for k in keep}, "answer": r["answer"], "answered_at": r["answered_at"],
         "referred_to": r["referred_to"], "entry_id": r["candidate_entry_id"]}
        for r in rows if r["candidate"] == WAITING
    ]
    review = [
        {**{k: r[k] for k in keep}, "referred_to": r["referred_to"],
         "answered": r["answered_at"] is not None,
         "best": (r["suggestions"] or [None])[0]}
        for r in rows if r["matched"] and not r["answerable"] and r["candidate"] is None
    ]
    return {"candidates": candidates, "review": review}


def find(store: ReadStore, consultation_id: str, case_id: str | None = None) -> dict[str, Any]:
    """The waiting candidate of a consultation; `NoCandidate` if none or ambiguous."""
    rows = [r for r in store.select(QAConsultations(), CONSULTATIONS,
                                    {"consultation_id": consultation_id, "case_id": case_id})
            if r["candidate"] == WAITING]
    if len(rows) != 1:
        where = f" on case {case_id}" if case_id else ""
        raise NoCandidate(
            f"no waiting candidate for consultation {consultation_id}{where}" if not rows
            else f"consultation {consultation_id} is a candidate on several cases: give --case"
        )
    return rows[0]


def entry_event(
    candidate: dict[str, Any],
    *,
    question: str | None = None,
    answer: str | None = None,
    system: str = SOURCE_SYSTEM,
    by: str = "政策解读工作机构",
    now: datetime | None = None,
) -> QAEntryPublished:
    """The QAEntryPublished of a candidate: its question and the drafting unit's answer,
    unless reworded."""
    entry_id = candidate["candidate_entry_id"]
    return QAEntryPublished(
        event_id="publish-" + hashlib.blake2b(
            f"{candidate['case_id']}\x1f{entry_id}".encode(), digest_size=10
        ).hexdigest(),
        case_id=candidate["case_id"],
        department=candidate["department"],
        actor=Actor(id=system, name=by),
        source_system=system,
        occurred_at=now or datetime.now(UTC),
        causation_id=candidate["consultation_id"],
        data=QAEntryData(
            entry_id=entry_id,
            question=question or candidate["question"],
            answer=answer or candidate["answer"],
        ),
    )


async def publish(settings: Settings, event: QAEntryPublished, timeout: float) -> Outcome | None:
    """Send the entry through the intake as the department's system, and wait for its outcome
    (None: none within `timeout`)."""
    nc, _ = await bootstrap.Sources(settings).connection(event.department, event.source_system)
    try:
        return await EventLog(nc).submit(
            event.department, event.source_system, event.case_id, encode(event), timeout
        )
    finally:
        await nc.close()
