"""Statistics facts (统计事实): one row per upstream fact the quarterly inspection counts.

The inspection statistics (SUP-1, SUP-2; `services.report`) count facts per department and per
period: policies issued (by 印发日期), returns (退文), materials by form and channel, consultations
by channel and whether they were answered at once (from which library entry), the library's
searches (ConsultationMatched), its entries published and withdrawn and policies repealed,
opinions by severity and kind, trainings and inspections. `case_summary` keeps per-case totals without dates or channels, so a quarter cannot
be cut from it; this projection keeps each counted fact instead, with the day it counts on (in
Asia/Shanghai) and the few attributes a figure is grouped by. Every figure of the report is
then a set of these rows, i.e. of log events (sequence, event ID, case), which is what makes
each figure traceable. Deadline outcomes (PUB-2, PUB-3, QA-4, OP-4) and findings (REV-5, …) are
read from `deadline_clocks` and `findings`, not repeated here.

Tables:

- `stat_facts` (key: log sequence): event ID, type, case, accountable department, the day the
  fact counts on, and its attributes (JSON).
- `stat_cases` (key: case): scope (SCOPE-1) and kind of each policy case, so that a
  PolicyIssued fact carries the scope its DraftSubmitted declared.
- `stat_log` (one row, key ``log``): the first and last log sequence and event time seen, for
  the report header's log range.

Pure: no I/O, no clock; the day of a timestamp is its Asia/Shanghai calendar date.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any, Final

from domain.calendar import SHANGHAI
from events.catalogue import (
    ConsultationAnswered,
    ConsultationMatched,
    ConsultationReceived,
    ConsultationReferred,
    DraftSubmitted,
    Event,
    InspectionConducted,
    InspectionResultsPublished,
    MaterialPublished,
    OpinionDetected,
    PolicyIssued,
    PolicyRepealed,
    QAEntryPublished,
    QAEntryWithdrawn,
    ResponseIssued,
    SubmissionReturned,
    TrainingHeld,
)
from projections.base import Key, Projection, Row, Rows, Table, Type

LOG_KEY: Final = "log"

FACTS = Table(
    "stat_facts",
    key=("seq",),
    columns={
        "seq": Type.INT,  # log sequence of the event
        "event_id": Type.TEXT,
        "type": Type.TEXT,  # event type
        "case_id": Type.TEXT,
        "department": Type.TEXT,  # accountable department (责任单位, WHO-1)
        "day": Type.DATE,  # the day the fact counts on (Asia/Shanghai)
        "attrs": Type.JSON,  # what figures group by: scope, form, channel, severity, …
    },
    indexes=(("department",), ("type",), ("day",)),
)

CASES = Table(
    "stat_cases",
    key=("case_id",),
    columns={"case_id": Type.TEXT, "scope": Type.TEXT, "kind": Type.TEXT},
)

LOG = Table(
    "stat_log",
    key=("name",),
    columns={
        "name": Type.TEXT,
        "first_seq": Type.INT,
        "last_seq": Type.INT,
        "first_at": Type.TIMESTAMP,  # occurred_at of the first event seen
        "last_at": Type.TIMESTAMP,  # the latest occurred_at seen
    },
)


def shanghai_day(moment: datetime) -> date:
    """The Asia/Shanghai calendar date of an aware time."""
    return moment.astimezone(SHANGHAI).date()


def _fact(e: Event, case: Row | None) -> tuple[date, dict[str, Any]] | None:
    """The day and attributes of a counted fact, or None if `e` is not counted."""
    local = shanghai_day(e.occurred_at)
    if isinstance(e, PolicyIssued):
        if case is None:
            return None
        return e.data.issue_date, {
            "scope": case["scope"], "kind": case["kind"], "document_number": e.data.document_number,
        }
    if isinstance(e, SubmissionReturned):
        return local, {"missing": list(e.data.missing)}
    if isinstance(e, MaterialPublished):
        m = e.data
        return m.published_on, {
            "material_id": m.material_id, "form": str(m.form), "channel": str(m.channel),
        }
    if isinstance(e, ConsultationReceived):
        return local, {"consultation_id": e.data.consultation_id, "channel": str(e.data.channel)}
    if isinstance(e, ConsultationAnswered):
        a = e.data
        return local, {
            "consultation_id": a.consultation_id, "instant": a.instant,
            "from_library": a.from_library, "by_drafting_unit": a.by_drafting_unit,
            "entry_id": a.entry_id, "entry_case_id": a.entry_case_id,
        }
    if isinstance(e, ConsultationMatched):
        matched = e.data
        best = matched.suggestions[0] if matched.suggestions else None
        return local, {
            "consultation_id": matched.consultation_id, "answerable": matched.answerable,
            "best": {"case_id": best.case_id, "entry_id": best.entry_id} if best else None,
        }
    if isinstance(e, QAEntryPublished | QAEntryWithdrawn):
        return local, {"entry_id": e.data.entry_id}
    if isinstance(e, PolicyRepealed):
        return e.data.repealed_on, {"kind": str(e.data.kind)}
    if isinstance(e, ConsultationReferred):
        return local, {"consultation_id": e.data.consultation_id}
    if isinstance(e, OpinionDetected):
        o = e.data
        return shanghai_day(o.detected_at), {
            "opinion_id": o.opinion_id, "severity": str(o.severity), "kind": str(o.kind),
        }
    if isinstance(e, ResponseIssued):
        return local, {"opinion_id": e.data.opinion_id, "kind": str(e.data.kind)}
    if isinstance(e, TrainingHeld):
        return e.data.held_on, {"title": e.data.title}
    if isinstance(e, InspectionConducted):
        return e.data.conducted_on, {"quarter": e.data.quarter}
    if isinstance(e, InspectionResultsPublished):
        return e.data.published_on, {"url": str(e.data.url)}
    return None


class Statistics(Projection):
    """Counted facts in `stat_facts`, policy scopes in `stat_cases`, the log range in
    `stat_log`."""

    name = "statistics"
    version = 2
    tables = (FACTS, CASES, LOG)

    def touches(self, event: Event) -> Iterable[tuple[Table, Key]]:
        yield LOG, (LOG_KEY,)
        if isinstance(event, PolicyIssued):
            yield CASES, (event.case_id,)

    def apply(self, event: Event, seq: int, rows: Rows) -> None:
        log = rows.get(LOG, LOG_KEY)
        if log is None:
            log = {"name": LOG_KEY, "first_seq": seq, "first_at": event.occurred_at,
                   "last_seq": seq, "last_at": event.occurred_at}
        else:
            log["last_seq"] = max(log["last_seq"], seq)
            log["last_at"] = max(log["last_at"], event.occurred_at)
        rows.put(LOG, log)
        if isinstance(event, DraftSubmitted):
            if rows.get(CASES, event.case_id) is None:
                rows.put(CASES, {"case_id": event.case_id, "scope": str(event.data.scope),
                                 "kind": str(event.data.kind)})
            return
        case = rows.get(CASES, event.case_id) if isinstance(event, PolicyIssued) else None
        found = _fact(event, case)
        if found is None:
            return
        day, attrs = found
        rows.put(FACTS, {
            "seq": seq, "event_id": event.event_id, "type": event.type, "case_id": event.case_id,
            "department": event.department, "day": day, "attrs": attrs,
        })
