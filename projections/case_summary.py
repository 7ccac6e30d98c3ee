"""Case summary (案件概览): one row per case — who is accountable, what it is, where it stands.

Status of a policy case (政策文件), from the event types:

    DraftSubmitted ──▶ drafting ──ReviewSigned──▶ in_review ──SubmissionReturned──▶ returned
                           │                         ▲  │                            │
                           │                         │  └──────── PolicyIssued ──┐   │
                           │                         └──── DraftResubmitted ─────┼───┘
                           └───────────── PolicyIssued ──────────────────────────┤
                                                                                 ▼
        issued ──MaterialPublished(text on the district website, PUB-2)──▶ published

- drafting (起草/报审): the drafting unit has submitted document, plan and materials; nobody has
  signed yet. Consultation drafts (征求意见稿, SCOPE-2) are published at this stage and do not
  move the status.
- in_review (审核中): a review signature (REV-1..4) has been given, or the draft was resubmitted
  after a return and is back in the chain.
- returned (退文, REV-3): the government office returned an incomplete submission.
- issued (已印发): the policy document is issued; PUB-2's 20 working days run from its issue date.
- published (已发布): issued, and a text interpretation is on the district website. The order of
  the two facts does not matter: website text that came first (itself a REV-5 matter, reported
  by findings) makes the case published the moment the policy is issued.
- Once issued, review events (late signatures, a return) no longer move the status; they are
  counted, and the rules report them as findings.

Training (培训) and inspection (检查) cases of the government office (SUP-1) are summarised simply:
kind `training` with status `held`; kind `inspection` with status `conducted`, then
`results_published`. Their scope and issuer columns are empty. A calendar year confirmed by the
government office is a case of kind `calendar` with status `confirmed`.

Counts: material publications (MaterialPublished events) by form and by channel (JSON objects,
form or channel → count); consultations received / answered / referred; public-opinion items
detected and responses issued; findings recorded, and those still open (recorded, not resolved),
with their rule IDs. Events for a case this projection has not seen opened are ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import Any

from events.catalogue import (
    CalendarYearConfirmed,
    Channel,
    ConsultationAnswered,
    ConsultationReceived,
    ConsultationReferred,
    DraftResubmitted,
    DraftSubmitted,
    Event,
    FindingRecorded,
    FindingResolved,
    Form,
    InspectionConducted,
    InspectionResultsPublished,
    MaterialPublished,
    OpinionDetected,
    PolicyIssued,
    ResponseIssued,
    ReviewSigned,
    SubmissionReturned,
    TrainingHeld,
)
from projections.base import Key, Projection, Row, Rows, Table, Type

DRAFTING = "drafting"
IN_REVIEW = "in_review"
RETURNED = "returned"
ISSUED = "issued"
PUBLISHED = "published"
HELD = "held"
CONDUCTED = "conducted"
RESULTS_PUBLISHED = "results_published"
CONFIRMED = "confirmed"
STATUSES = (
    DRAFTING, IN_REVIEW, RETURNED, ISSUED, PUBLISHED, HELD, CONDUCTED, RESULTS_PUBLISHED, CONFIRMED
)
BEFORE_ISSUE = frozenset({DRAFTING, IN_REVIEW, RETURNED})

CASES = Table(
    "case_summary",
    key=("case_id",),
    columns={
        "case_id": Type.TEXT,
        "department": Type.TEXT,  # accountable department (责任单位, WHO-1)
        "kind": Type.TEXT,  # document | major_decision | implementation | training | inspection
        "scope": Type.TEXT,  # SCOPE-1 category, policy cases only
        "issuer_kind": Type.TEXT,  # district_government | department | joint
        "co_issuers": Type.JSON,  # [department, ...] of a joint document
        "title": Type.TEXT,
        "status": Type.TEXT,
        "document_number": Type.TEXT,  # 文号
        "has_plan": Type.BOOL,  # an interpretation plan was submitted (SYNC-1, PLAN-1)
        "opened_at": Type.TIMESTAMP,
        "issue_date": Type.DATE,  # 印发之日
        "first_website_text_on": Type.DATE,  # first text interpretation on the district website
        "last_event_at": Type.TIMESTAMP,  # latest occurred_at of any event on the case
        "last_sequence": Type.INT,  # log sequence of the case's latest event
        "events": Type.INT,
        "reviews_signed": Type.INT,
        "returns": Type.INT,
        "materials_published": Type.INT,
        "materials_by_form": Type.JSON,  # {form: publications}
        "materials_by_channel": Type.JSON,  # {channel: publications}
        "consultations": Type.INT,
        "consultations_answered": Type.INT,
        "consultations_referred": Type.INT,
        "opinions": Type.INT,
        "responses": Type.INT,
        "findings": Type.INT,
        "open_findings": Type.INT,
        "open_finding_rules": Type.JSON,  # {finding_id: rule_id} of findings not yet resolved
    },
    indexes=(("department",), ("status",), ("scope",)),
)

_COUNTERS = (
    "events", "reviews_signed", "returns", "materials_published", "consultations",
    "consultations_answered", "consultations_referred", "opinions", "responses", "findings",
    "open_findings",
)


def _opened(e: Event, kind: str, status: str, title: str) -> Row:
    row: Row = {c: 0 for c in _COUNTERS}
    row.update(
        case_id=e.case_id, department=e.department, kind=kind, status=status, title=title,
        opened_at=e.occurred_at, last_event_at=e.occurred_at, has_plan=False, co_issuers=[],
        materials_by_form={}, materials_by_channel={}, open_finding_rules={},
    )
    return row


def _open(e: Event) -> Row | None:
    if isinstance(e, DraftSubmitted):
        row = _opened(e, str(e.data.kind), DRAFTING, e.data.title)
        row.update(
            scope=str(e.data.scope), issuer_kind=str(e.data.issuer.kind),
            co_issuers=[str(c) for c in e.data.issuer.co_issuers],
            has_plan=e.data.plan is not None,
        )
        return row
    if isinstance(e, TrainingHeld):
        return _opened(e, "training", HELD, e.data.title)
    if isinstance(e, InspectionConducted):
        return _opened(e, "inspection", CONDUCTED, e.data.summary or f"政策解读检查 {e.data.quarter}")
    if isinstance(e, CalendarYearConfirmed):
        return _opened(e, "calendar", CONFIRMED, f"{e.data.year} 年工作日历 {e.data.notice}")
    return None


def _review_status(row: Row, status: str) -> None:
    if row["status"] in BEFORE_ISSUE:
        row["status"] = status


def _signed(row: Row, e: ReviewSigned) -> None:
    row["reviews_signed"] += 1
    _review_status(row, IN_REVIEW)


def _returned(row: Row, e: SubmissionReturned) -> None:
    row["returns"] += 1
    _review_status(row, RETURNED)


def _resubmitted(row: Row, e: DraftResubmitted) -> None:
    row["has_plan"] = row["has_plan"] or e.data.plan is not None
    _review_status(row, IN_REVIEW)


def _issued(row: Row, e: PolicyIssued) -> None:
    row["issue_date"] = e.data.issue_date
    row["document_number"] = e.data.document_number
    if row["status"] in BEFORE_ISSUE:
        row["status"] = PUBLISHED if row["first_website_text_on"] else ISSUED


def _material(row: Row, e: MaterialPublished) -> None:
    d = e.data
    row["materials_published"] += 1
    _bump(row["materials_by_form"], str(d.form))
    _bump(row["materials_by_channel"], str(d.channel))
    if d.form == Form.TEXT and d.channel == Channel.GOVERNMENT_WEBSITE:
        first: date | None = row["first_website_text_on"]
        row["first_website_text_on"] = d.published_on if first is None else min(first, d.published_on)
        if row["status"] == ISSUED:
            row["status"] = PUBLISHED


def _bump(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


def _finding(row: Row, e: FindingRecorded) -> None:
    row["findings"] += 1
    row["open_finding_rules"][e.data.finding_id] = e.data.rule_id
    row["open_findings"] = len(row["open_finding_rules"])


def _resolved(row: Row, e: FindingResolved) -> None:
    row["open_finding_rules"].pop(e.data.finding_id, None)
    row["open_findings"] = len(row["open_finding_rules"])


def _count(column: str) -> Callable[[Row, Any], None]:
    def count(row: Row, e: Any) -> None:
        row[column] += 1

    return count


def _inspection_published(row: Row, e: InspectionResultsPublished) -> None:
    row["status"] = RESULTS_PUBLISHED


_HANDLERS: dict[type[Any], Callable[[Row, Any], None]] = {
    ReviewSigned: _signed,
    SubmissionReturned: _returned,
    DraftResubmitted: _resubmitted,
    PolicyIssued: _issued,
    MaterialPublished: _material,
    ConsultationReceived: _count("consultations"),
    ConsultationAnswered: _count("consultations_answered"),
    ConsultationReferred: _count("consultations_referred"),
    OpinionDetected: _count("opinions"),
    ResponseIssued: _count("responses"),
    FindingRecorded: _finding,
    FindingResolved: _resolved,
    InspectionResultsPublished: _inspection_published,
}


class CaseSummary(Projection):
    """One row per case in `case_summary`."""

    name = "case_summary"
    version = 1
    tables = (CASES,)

    def touches(self, event: Event) -> Iterable[tuple[Table, Key]]:
        return ((CASES, (event.case_id,)),)

    def apply(self, event: Event, seq: int, rows: Rows) -> None:
        row = rows.get(CASES, event.case_id)
        if event.OPENS_CASE:
            if row is not None:  # the intake lets one case open only once; nothing to redo
                return
            row = _open(event)
        elif row is not None:
            handler = _HANDLERS.get(type(event))
            if handler is not None:
                handler(row, event)
        if row is None:
            return
        row["events"] += 1
        row["last_sequence"] = seq
        last: datetime = row["last_event_at"]
        row["last_event_at"] = max(last, event.occurred_at)
        rows.put(CASES, row)
