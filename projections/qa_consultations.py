"""Consultations and the library (QA-4, QA-5): what each consultation asked, what the library
suggested, how it was answered, and what it can give back to the library.

One row per consultation (政策咨询) on its policy case:

- received: the question, channel and the organ that took it, and the received event (the
  matching service (`services.matcher`) reads the rows not yet `matched` and searches for them);
- matched: the suggestions of the derived `ConsultationMatched` (entry, its case, score,
  confidence) and whether the library could answer (`answerable`);
- referred / answered: to whom it was referred, the answer, and the library entry it names;
- candidate (QA-5): a consultation referred and then answered by the drafting unit is a
  candidate entry (`waiting`) for the department to publish; once a `QAEntryPublished` on its
  case carries the candidate's entry ID (`domain.qa_matching.candidate_entry_id`) it is
  `published`.

Questions the library had no good answer for (matched, not answerable) are what the periodic
review (定期梳理汇总) reads, beside the candidates.

Pure: no I/O, no clock, no search (the search's outcome arrives as an event).
"""

from __future__ import annotations

from collections.abc import Iterable

from domain.qa_matching import candidate_entry_id
from events.catalogue import (
    Asker,
    ConsultationAnswered,
    ConsultationMatched,
    ConsultationReceived,
    ConsultationReferred,
    Event,
    PersonalDataErased,
    QAEntryPublished,
    SealedAsker,
)
from projections.base import Key, Projection, Rows, Table, Type

WAITING = "waiting"
PUBLISHED = "published"

CONSULTATIONS = Table(
    "qa_consultations",
    key=("case_id", "consultation_id"),
    columns={
        "case_id": Type.TEXT,
        "consultation_id": Type.TEXT,
        "department": Type.TEXT,  # the policy's department (the case's)
        "question": Type.TEXT,
        "channel": Type.TEXT,
        "received_by": Type.TEXT,
        "received_event_id": Type.TEXT,
        "received_at": Type.TIMESTAMP,
        "received_seq": Type.INT,
        "matched": Type.BOOL,
        "answerable": Type.BOOL,
        "suggestions": Type.JSON,  # [{entry_id, case_id, score, confidence}] in rank order
        "searched_on": Type.DATE,
        "matched_seq": Type.INT,
        "referred_to": Type.TEXT,
        "referred_at": Type.TIMESTAMP,
        "answer": Type.TEXT,
        "answered_at": Type.TIMESTAMP,
        "instant": Type.BOOL,
        "by_drafting_unit": Type.BOOL,
        "entry_id": Type.TEXT,  # the library entry the answer names
        "entry_case_id": Type.TEXT,
        "candidate": Type.TEXT,  # None, waiting, published (QA-5)
        "candidate_entry_id": Type.TEXT,
        # the asker (咨询人, issue 17), sealed as the log keeps it: opened only when read, for
        # the roles that may see it (`services.api.consultations`)
        "asker": Type.JSON,  # SealedAsker (or an Asker with no personal field), None: none
        "asker_subject": Type.TEXT,
        "reply_via": Type.TEXT,
        "asker_erased_at": Type.TIMESTAMP,  # PersonalDataErased: the sealed fields dropped
    },
    indexes=(("matched",), ("department", "candidate")),
)

CANDIDATE_ENTRIES = Table(
    "qa_candidate_entries",
    key=("case_id", "entry_id"),
    columns={"case_id": Type.TEXT, "entry_id": Type.TEXT, "consultation_id": Type.TEXT},
)
"""Which consultation a candidate's entry ID stands for, so its publication is recognised."""


def _asker_columns(asker: Asker | SealedAsker | None) -> dict[str, object]:
    if asker is None:
        return {"asker": None, "asker_subject": None, "reply_via": None}
    return {
        "asker": asker.model_dump(mode="json", exclude_none=True),
        "asker_subject": asker.subject_id if isinstance(asker, SealedAsker) else None,
        "reply_via": str(asker.reply_via),
    }


class QAConsultations(Projection):
    """Consultations with their suggestions, answers and candidacy."""

    name = "qa_consultations"
    version = 2
    tables = (CONSULTATIONS, CANDIDATE_ENTRIES)

    def touches(self, event: Event) -> Iterable[tuple[Table, Key]]:
        if isinstance(
            event,
            ConsultationReceived | ConsultationMatched | ConsultationReferred
            | ConsultationAnswered,
        ):
            yield CONSULTATIONS, (event.case_id, event.data.consultation_id)
        elif isinstance(event, PersonalDataErased):
            for consultation_id in event.data.consultation_ids:
                yield CONSULTATIONS, (event.case_id, consultation_id)
        elif isinstance(event, QAEntryPublished):
            yield CANDIDATE_ENTRIES, (event.case_id, event.data.entry_id)

    def apply(self, event: Event, seq: int, rows: Rows) -> None:
        match event:
            case ConsultationReceived(data=d):
                if rows.get(CONSULTATIONS, event.case_id, d.consultation_id) is None:
                    rows.put(CONSULTATIONS, {
                        "case_id": event.case_id, "consultation_id": d.consultation_id,
                        "department": event.department, "question": d.question,
                        "channel": str(d.channel), "received_by": d.received_by,
                        "received_event_id": event.event_id, "received_at": event.occurred_at,
                        "received_seq": seq, "matched": False,
                        "instant": False, "by_drafting_unit": False,
                        **_asker_columns(d.asker),
                    })
            case ConsultationMatched(data=d):
                row = rows.get(CONSULTATIONS, event.case_id, d.consultation_id)
                if row is not None and not row["matched"]:  # the first is the one (one ID)
                    row.update(
                        matched=True, answerable=d.answerable, searched_on=d.searched_on,
                        suggestions=[s.model_dump(mode="json") for s in d.suggestions],
                        matched_seq=seq,
                    )
                    rows.put(CONSULTATIONS, row)
            case ConsultationReferred(data=d):
                row = rows.get(CONSULTATIONS, event.case_id, d.consultation_id)
                if row is not None:
                    row["referred_to"], row["referred_at"] = d.referred_to, event.occurred_at
                    self._candidacy(rows, row)
                    rows.put(CONSULTATIONS, row)
            case ConsultationAnswered(data=d):
                row = rows.get(CONSULTATIONS, event.case_id, d.consultation_id)
                if row is not None and row["answered_at"] is None:  # the first answer counts
                    row.update(
                        answer=d.answer, answered_at=event.occurred_at, instant=d.instant,
                        by_drafting_unit=d.by_drafting_unit, entry_id=d.entry_id,
                        entry_case_id=(d.entry_case_id or event.case_id) if d.entry_id else None,
                    )
                    self._candidacy(rows, row)
                    rows.put(CONSULTATIONS, row)
            case QAEntryPublished(data=d):
                found = rows.get(CANDIDATE_ENTRIES, event.case_id, d.entry_id)
                if found is not None:
                    row = rows.get(CONSULTATIONS, event.case_id, found["consultation_id"])
                    if row is not None and row["candidate"] == WAITING:
                        row["candidate"] = PUBLISHED
                        rows.put(CONSULTATIONS, row)
            case PersonalDataErased(data=d):
                for consultation_id in d.consultation_ids:
                    row = rows.get(CONSULTATIONS, event.case_id, consultation_id)
                    if row is not None and row["asker_subject"] == d.subject_id:
                        sealed = row["asker"]
                        kept = {"reply_via": row["reply_via"]}
                        if isinstance(sealed, dict):  # the ciphertext is of no use any more:
                            kept |= {k: sealed[k] for k in ("subject_id", "key_version",
                                                             "algorithm") if k in sealed}
                            # which fields there were, without their values
                            kept["sealed"] = dict.fromkeys(sealed.get("sealed", {}), "")
                        row.update(asker=kept, asker_erased_at=event.occurred_at)
                        rows.put(CONSULTATIONS, row)
            case _:
                pass

    @staticmethod
    def _candidacy(rows: Rows, row: dict[str, object]) -> None:
        """QA-5: referred, then answered by the drafting unit — a candidate entry, waiting."""
        if (
            row["candidate"] is None and row["referred_to"] is not None
            and row["answered_at"] is not None and row["by_drafting_unit"]
        ):
            entry_id = candidate_entry_id(str(row["consultation_id"]))
            row["candidate"], row["candidate_entry_id"] = WAITING, entry_id
            rows.put(CANDIDATE_ENTRIES, {
                "case_id": row["case_id"], "entry_id": entry_id,
                "consultation_id": row["consultation_id"],
            })
