"""The findings read model as a pure function of events: recorded, resolved, breached clocks,
replays, and the counts `jiedu findings --counts` prints."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

import factories as f
from domain.calendar import WorkingDayCalendar
from domain.clocks import (
    Action,
    ClockKeeper,
    deadline_event,
    fold,
    inspection_clock_id,
    training_clock_id,
)
from domain.rules.engine import derived_events, judge
from domain.rules.facts import CaseFacts
from events.codec import loads
from projections.base import MemoryRows, Row
from projections.findings import FINDINGS, Findings, rule_order, tally

CASE = "C-1"
AT = "2026-07-06T09:30:00+08:00"


def ev(type_: str, case_id: str = CASE, department: str = "drc", at: str = AT,
       cause: str | None = None, **data: Any) -> dict[str, Any]:
    e: dict[str, Any] = f.envelope(type_, case_id, department, **data)
    e.update(occurred_at=at, source_system="jiedu", causation_id=cause)
    return e


def recorded(finding_id: str = "REV-5_unreviewed_ev-9", rule_id: str = "REV-5",
             severity: str = "violation", **over: Any) -> dict[str, Any]:
    return ev("FindingRecorded", cause=over.pop("cause", "ev-9"), **over,
              finding_id=finding_id, rule_id=rule_id, rule_set="2021-11-24", severity=severity,
              evidence=[{"event_id": "ev-9", "sequence": None},
                        {"event_id": "ev-3", "sequence": 3}],
              message_zh="审核未完成即对外发布政策性文件", message_en="published before review")


def resolved(finding_id: str = "REV-5_unreviewed_ev-9", by: str = "ev-12",
             at: str = "2026-07-08T10:00:00+08:00", case_id: str = CASE) -> dict[str, Any]:
    return ev("FindingResolved", case_id, at=at, cause=by, finding_id=finding_id,
              resolved_by={"event_id": by, "sequence": None})


def breached(clock_id: str = "PUB-2:C-1", rule_id: str = "PUB-2",
             at: str = "2026-08-03T23:59:59+08:00") -> dict[str, Any]:
    return ev("DeadlineBreached", at=at, cause="ev-issued", clock_id=clock_id, rule_id=rule_id,
              trigger={"event_id": "ev-issued", "sequence": 7}, due_at=at, calendar="package")


def project(*raw: dict[str, Any], rows: MemoryRows | None = None, first: int = 1) -> MemoryRows:
    events = [(i, loads(orjson.dumps(e))) for i, e in enumerate(raw, start=first)]
    return Findings().run(events, rows)


def only(rows: MemoryRows) -> Row:
    [row] = rows.rows(FINDINGS)
    return row


def test_a_recorded_finding_is_an_open_row_with_its_evidence_and_messages() -> None:
    row = only(project(f.draft(CASE), recorded()))
    assert row == {
        "finding_id": "REV-5_unreviewed_ev-9", "case_id": CASE, "department": "drc",
        "rule_id": "REV-5", "rule_set": "2021-11-24", "severity": "violation", "status": "open",
        "recorded_at": datetime(2026, 7, 6, 1, 30, tzinfo=UTC), "recorded_seq": 2,
        "fact_event_id": "ev-9",
        "evidence": [{"event_id": "ev-9", "sequence": None}, {"event_id": "ev-3", "sequence": 3}],
        "message_zh": "审核未完成即对外发布政策性文件", "message_en": "published before review",
        "resolved_by": None, "resolved_seq": None, "resolved_at": None,
    }


def test_a_resolution_closes_the_finding_and_names_the_fact_that_mended_it() -> None:
    row = only(project(recorded(), resolved(by="ev-12")))
    assert (row["status"], row["resolved_by"], row["resolved_seq"]) == ("resolved", "ev-12", 2)
    assert row["resolved_at"] == datetime(2026, 7, 8, 2, 0, tzinfo=UTC)
    assert row["recorded_seq"] == 1 and row["message_zh"]  # the recording is kept as it was


def test_the_first_resolution_stands_and_unknown_findings_are_not_invented() -> None:
    rows = project(recorded(), resolved(by="ev-12"), resolved(by="ev-13"), resolved("nope"))
    row = only(rows)
    assert (row["resolved_by"], row["resolved_seq"]) == ("ev-12", 2)


def test_a_resolution_on_another_case_does_not_touch_this_one() -> None:
    rows = project(recorded(), recorded(case_id="C-2"), resolved(case_id="C-2"))
    by_case = {r["case_id"]: r["status"] for r in rows.rows(FINDINGS)}
    assert by_case == {CASE: "open", "C-2": "resolved"}  # same finding ID, two rows


def test_replaying_the_same_events_changes_nothing() -> None:
    events = (recorded(), recorded("SYNC-1_incomplete_ev-1", "SYNC-1"),
              resolved("SYNC-1_incomplete_ev-1"), breached(), met("2026-08-03T18:00:00+08:00"))
    once = project(*events)
    snapshot = once.rows(FINDINGS)
    again = project(*events, rows=once, first=10)  # redelivered, at later positions even
    assert again.rows(FINDINGS) == snapshot
    assert project(*events).rows(FINDINGS) == snapshot  # and a rebuild gives the same rows


def met(at: str, due: str = "2026-08-03T23:59:59+08:00") -> dict[str, Any]:
    return ev("DeadlineMet", at=at, cause="ev-issued", clock_id="PUB-2:C-1", rule_id="PUB-2",
              trigger={"event_id": "ev-issued", "sequence": 7}, due_at=due,
              met_by={"event_id": "ev-web", "sequence": 30})


def test_a_breached_deadline_counts_as_an_open_finding_of_its_rule() -> None:
    started = ev("DeadlineStarted", clock_id="PUB-2:C-1", rule_id="PUB-2",
                 trigger={"event_id": "ev-issued", "sequence": 7},
                 due_at="2026-08-03T23:59:59+08:00")
    late, breach = met("2026-08-05T10:00:00+08:00"), breached()
    row = only(project(started, breach, late))
    assert (row["finding_id"], row["rule_id"]) == ("PUB-2:C-1", "PUB-2")
    assert row["severity"] == "violation"
    assert (row["status"], row["rule_set"], row["fact_event_id"]) == ("open", None, "ev-issued")
    assert row["evidence"] == [  # the duty's start, and where it was found unmet
        {"event_id": "ev-issued", "sequence": 7}, {"event_id": breach["event_id"], "sequence": 2}]
    assert row["recorded_seq"] == 2 and "2026-08-03 23:59" in row["message_zh"]
    assert row["resolved_by"] is None  # met late: the lateness stands


def test_sup_1_breach_rests_on_the_offices_own_case_not_on_the_trigger() -> None:
    """Issue 13, defect 4: "no inspection in 2026Q3" (SUP-1) cited an unrelated case's first
    DraftSubmitted, the fact that started the quarter's clock. The finding now rests on the
    government office's own case: the breach event that records the quarter ending without an
    InspectionConducted, at its log position; the trigger stays the clock's cause only."""
    keeper = ClockKeeper(WorkingDayCalendar.load(None))
    unrelated = loads(orjson.dumps(f.draft("UNRELATED-1")))
    _, clocks = fold(keeper, [(5, unrelated)])
    clock = clocks[inspection_clock_id(2026, 3)]
    assert clock.trigger.event_id == unrelated.event_id  # why the quarter's clock runs
    started = deadline_event(clock, Action.STARTED)
    clock.started_logged = True
    breach = deadline_event(clock, Action.BREACHED)
    assert breach.case_id == "sup-1-inspection-2026q3" and breach.causation_id == unrelated.event_id
    row = only(Findings().run([(6, started), (9, breach)]))
    assert (row["case_id"], row["department"], row["rule_id"]) == (
        "sup-1-inspection-2026q3", "gov_office", "SUP-1")
    assert row["evidence"] == [{"event_id": breach.event_id, "sequence": 9}]
    assert row["fact_event_id"] == breach.event_id
    assert all(x["event_id"] != unrelated.event_id for x in row["evidence"])
    assert row["message_en"] == (
        "SUP-1: no inspection (InspectionConducted) conducted in 2026Q3 "
        "(the period ended 2026-09-30 23:59, Shanghai)")
    assert "2026Q3" in row["message_zh"] and "检查" in row["message_zh"]

    training = deadline_event(clocks[training_clock_id(2026)], Action.BREACHED)
    assert only(Findings().run([(12, training)]))["message_en"].startswith(
        "SUP-1: no policy-interpretation training (TrainingHeld) in 2026")


def test_a_breach_the_log_later_shows_met_on_time_is_resolved_by_the_meeting_fact() -> None:
    """The source reported the website publication after the due time had passed: the breach
    was logged, then the fact showed the duty met in time."""
    row = only(project(breached(), met("2026-08-03T18:00:00+08:00")))
    assert (row["status"], row["resolved_by"], row["resolved_seq"]) == ("resolved", "ev-web", 2)
    assert project(met("2026-08-03T18:00:00+08:00")).rows(FINDINGS) == []  # no breach, no row


def test_facts_themselves_make_no_rows() -> None:
    assert project(f.draft(CASE), f.issued(CASE)).rows(FINDINGS) == []


def test_the_rules_engine_findings_and_their_resolution_project_as_one_row() -> None:
    """SYNC-1: a draft without its plan is a finding; the resubmission with the plan resolves it
    (the events exactly as the intake appends them: fact, then what the engine derives)."""
    draft = loads(orjson.dumps(f.draft(CASE, plan=None)))
    again = loads(orjson.dumps(ev("DraftResubmitted", plan=f.plan(), materials=[f.material()])))
    facts, log = CaseFacts.empty(), []
    for fact in (draft, again):
        for e in (fact, *derived_events(fact, judge(facts, None, fact))):
            log.append(e)
            facts.apply(len(log), e)
    rows = Findings().run(enumerate(log, start=1)).rows(FINDINGS)
    sync = [r for r in rows if r["rule_id"] == "SYNC-1"]
    assert [(r["status"], r["fact_event_id"], r["resolved_by"]) for r in sync] == [
        ("resolved", draft.event_id, again.event_id)]


def test_counts_by_rule_and_status_in_the_order_of_rules_md() -> None:
    rows = project(
        recorded("a", "REV-10"), recorded("b", "REV-2"), recorded("c", "REV-2"),
        recorded("d", "SYNC-1"), recorded("e", "REV-2", department="finance", case_id="C-2"),
        resolved("c"), breached(),
    ).rows(FINDINGS)
    assert tally(rows) == [
        {"rule_id": "SYNC-1", "open": 1, "resolved": 0, "total": 1},
        {"rule_id": "REV-2", "open": 2, "resolved": 1, "total": 3},
        {"rule_id": "REV-10", "open": 1, "resolved": 0, "total": 1},
        {"rule_id": "PUB-2", "open": 1, "resolved": 0, "total": 1},
    ]
    per_dept = tally(rows, by_department=True)
    assert [(g["department"], g["rule_id"], g["total"]) for g in per_dept] == [
        ("drc", "SYNC-1", 1), ("drc", "REV-2", 2), ("drc", "REV-10", 1), ("drc", "PUB-2", 1),
        ("finance", "REV-2", 1)]
    assert rule_order("ZZ-1") > rule_order("SUP-2") > rule_order("SCOPE-1")
