"""The case summary as a pure function of events: statuses, dates, counts, findings."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import orjson
import pytest

import factories as f
from events.codec import loads
from projections.base import MemoryRows, Row
from projections.case_summary import CASES, CaseSummary

CASE = "C-1"


def ev(type_: str, case_id: str = CASE, at: str | None = None, **data: Any) -> dict[str, Any]:
    e: dict[str, Any] = f.envelope(type_, case_id, **data)
    if at is not None:
        e["occurred_at"] = at
    return e


def signed(stage: str = "section_head") -> dict[str, Any]:
    return ev("ReviewSigned", stage=stage, signer="王五")


def returned() -> dict[str, Any]:
    return ev("SubmissionReturned", missing=["plan"])


def resubmitted(plan: bool = True) -> dict[str, Any]:
    return ev("DraftResubmitted", plan=f.plan() if plan else None)


def material(form: str = "text", channel: str = "government_website", on: str = "2026-07-10",
             case_id: str = CASE) -> dict[str, Any]:
    return ev("MaterialPublished", case_id, material_id=f"m-{form}-{channel}", form=form,
              channel=channel, published_on=on)


def finding(finding_id: str, rule_id: str = "PUB-2") -> dict[str, Any]:
    return ev("FindingRecorded", finding_id=finding_id, rule_id=rule_id, rule_set="2021-11-24",
              severity="violation", evidence=[{"event_id": "ev-x", "sequence": 1}],
              message_zh="逾期未发布", message_en="not published in time")


def resolved(finding_id: str) -> dict[str, Any]:
    return ev("FindingResolved", finding_id=finding_id, resolved_by={"event_id": "ev-y"})


def project(*raw: dict[str, Any], rows: MemoryRows | None = None) -> MemoryRows:
    events = [(i, loads(orjson.dumps(e))) for i, e in enumerate(raw, start=1)]
    return CaseSummary().run(events, rows)


def case(rows: MemoryRows, case_id: str = CASE) -> Row:
    row = rows.get(CASES, case_id)
    assert row is not None, f"no row for {case_id}"
    return row


def statuses(*raw: dict[str, Any]) -> list[str]:
    rows = MemoryRows()
    out = []
    for e in raw:
        project(e, rows=rows)
        out.append(case(rows)["status"])
    return out


def test_a_draft_opens_a_row_with_who_and_what() -> None:
    draft = f.draft(CASE, "finance", scope="high_impact", kind="implementation",
                    issuer={"kind": "joint", "lead": "finance", "co_issuers": ["drc", "hrss"]})
    row = case(project(draft))
    assert row["department"] == "finance"
    assert (row["kind"], row["scope"], row["issuer_kind"]) == ("implementation", "high_impact", "joint")
    assert row["co_issuers"] == ["drc", "hrss"]
    assert row["title"] == draft["data"]["title"]
    assert row["status"] == "drafting"
    assert row["has_plan"] is True
    assert row["opened_at"] == datetime(2026, 7, 6, 1, 30, tzinfo=UTC)
    assert row["events"] == 1 and row["last_sequence"] == 1
    assert row["materials_by_form"] == {} and row["open_finding_rules"] == {}
    assert row["issue_date"] is None and row["first_website_text_on"] is None


def test_the_review_cycle_then_issue_then_website_text() -> None:
    assert statuses(
        f.draft(CASE), signed(), returned(), resubmitted(), signed("deputy_head"), f.issued(CASE),
        material(), material(),
    ) == ["drafting", "in_review", "returned", "in_review", "in_review", "issued", "published",
          "published"]


def test_issue_straight_after_the_draft() -> None:
    assert statuses(f.draft(CASE), f.issued(CASE)) == ["drafting", "issued"]


def test_website_text_before_the_issue_publishes_the_case_when_it_is_issued() -> None:
    assert statuses(f.draft(CASE), material(on="2026-07-03"), f.issued(CASE)) == [
        "drafting", "drafting", "published"]


@pytest.mark.parametrize(("form", "channel"), [("chart", "government_website"), ("text", "wechat")])
def test_only_text_on_the_district_website_publishes(form: str, channel: str) -> None:
    rows = project(f.draft(CASE), f.issued(CASE), material(form, channel))
    assert case(rows)["status"] == "issued"
    assert case(rows)["first_website_text_on"] is None


def test_after_the_issue_review_events_are_counted_but_do_not_reopen() -> None:
    rows = project(f.draft(CASE), f.issued(CASE), signed(), returned(), resubmitted())
    row = case(rows)
    assert row["status"] == "issued"
    assert (row["reviews_signed"], row["returns"]) == (1, 1)


def test_issue_sets_the_issue_date_and_document_number() -> None:
    row = case(project(f.draft(CASE), f.issued(CASE)))
    assert row["issue_date"] == date(2026, 7, 6)
    assert row["document_number"] == "渝中发改发〔2026〕7号"


def test_a_resubmitted_plan_counts_as_a_plan() -> None:
    no_plan = f.draft(CASE, plan=None)
    assert case(project(no_plan))["has_plan"] is False
    assert case(project(no_plan, returned(), resubmitted(plan=False)))["has_plan"] is False
    assert case(project(no_plan, returned(), resubmitted(plan=True)))["has_plan"] is True


def test_materials_are_counted_by_form_and_by_channel() -> None:
    row = case(project(
        f.draft(CASE),
        material("text", "government_website", "2026-07-12"),
        material("text", "wechat"),
        material("chart", "government_website"),
        material("text", "government_website", "2026-07-09"),
    ))
    assert row["materials_published"] == 4
    assert row["materials_by_form"] == {"text": 3, "chart": 1}
    assert row["materials_by_channel"] == {"government_website": 3, "wechat": 1}
    assert row["first_website_text_on"] == date(2026, 7, 9)


def test_open_findings_follow_recorded_and_resolved() -> None:
    row = case(project(
        f.draft(CASE), finding("f1", "PUB-2"), finding("f2", "PUB-3"), finding("f3", "REV-5"),
        resolved("f2"), resolved("f2"), resolved("never-recorded"),
    ))
    assert row["findings"] == 3
    assert row["open_findings"] == 2
    assert row["open_finding_rules"] == {"f1": "PUB-2", "f3": "REV-5"}


def test_consultations_and_opinions_are_counted() -> None:
    opinion = ev("OpinionDetected", opinion_id="op1", severity="major", kind="misunderstanding",
                 summary="误读", detected_at="2026-07-07T10:00:00+08:00")
    response = ev("ResponseIssued", opinion_id="op1", kind="clarification")
    referred = ev("ConsultationReferred", consultation_id="q2", referred_to="drc")
    row = case(project(
        f.draft(CASE), f.consultation(CASE, "q1"), f.answer(CASE, "q1"),
        f.consultation(CASE, "q2"), referred, opinion, response,
    ))
    assert (row["consultations"], row["consultations_answered"], row["consultations_referred"]) == (
        2, 1, 1)
    assert (row["opinions"], row["responses"]) == (1, 1)
    assert row["status"] == "drafting"


def test_last_event_is_the_latest_occurrence_and_the_last_sequence() -> None:
    rows = project(
        ev("DraftSubmitted", at="2026-07-06T09:00:00+08:00", **f.draft(CASE)["data"]),
        ev("ReviewSigned", at="2026-07-09T09:00:00+08:00", stage="section_head", signer="王五"),
        ev("ReviewSigned", at="2026-07-08T09:00:00+08:00", stage="deputy_head", signer="赵六"),
    )
    row = case(rows)
    assert row["last_event_at"] == datetime(2026, 7, 9, 1, 0, tzinfo=UTC)
    assert (row["last_sequence"], row["events"]) == (3, 3)


def test_training_and_inspection_cases_are_summarised_simply() -> None:
    training = f.envelope("TrainingHeld", "T-2026", "gov_office", title="政策解读业务培训",
                          held_on="2026-08-01", participants=["drc"])
    inspection = f.envelope("InspectionConducted", "I-2026Q3", "gov_office", quarter="2026Q3",
                            conducted_on="2026-09-20", departments=["drc"])
    results = f.envelope("InspectionResultsPublished", "I-2026Q3", "gov_office",
                         url="https://www.cqyz.gov.cn/jc/2026q3", published_on="2026-09-28")
    rows = project(training, inspection, results)
    t, i = case(rows, "T-2026"), case(rows, "I-2026Q3")
    assert (t["kind"], t["status"], t["title"], t["scope"]) == ("training", "held", "政策解读业务培训", None)
    assert (i["kind"], i["status"], i["department"]) == ("inspection", "results_published", "gov_office")
    assert "2026Q3" in i["title"]


def test_a_confirmed_calendar_year_is_a_case_of_its_own() -> None:
    confirmed = f.envelope("CalendarYearConfirmed", "calendar-2027", "gov_office", year=2027,
                           notice="国办发明电〔2026〕X号", holidays=["2027-01-01"])
    row = case(project(confirmed), "calendar-2027")
    assert (row["kind"], row["status"], row["department"]) == ("calendar", "confirmed", "gov_office")
    assert row["title"] == "2027 年工作日历 国办发明电〔2026〕X号"


def test_events_of_an_unseen_case_and_a_second_opening_are_ignored() -> None:
    rows = project(f.issued("NEVER-OPENED"), f.draft(CASE, title="第一"), f.draft(CASE, title="第二"))
    assert rows.get(CASES, "NEVER-OPENED") is None
    row = case(rows)
    assert row["title"] == "第一" and row["events"] == 1


def test_the_same_events_give_the_same_rows() -> None:
    story = [f.draft(CASE), signed(), f.issued(CASE), material(), finding("f1")]
    assert project(*story).rows(CASES) == project(*story).rows(CASES)
