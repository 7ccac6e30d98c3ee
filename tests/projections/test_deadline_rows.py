"""The deadlines projection stores exactly what `domain.clocks` folds, row for row."""

from __future__ import annotations

from typing import Any

import orjson
from deadline_events import answered, at, detected, draft, issued, published, referred, response

import factories as f
from domain.calendar import WorkingDayCalendar
from domain.clocks import Action, ClockKeeper, Status, clock_id, deadline_event, fold
from events.catalogue import Event
from events.codec import loads
from projections.base import MemoryRows
from projections.deadlines import (
    CALENDAR_YEARS,
    CASES,
    CLOCKS,
    Deadlines,
    case_from_row,
    case_row,
    clock_from_row,
    clock_row,
)

CALENDAR = WorkingDayCalendar.load(None)
CASE = "YZ-1"


def history() -> list[Event]:
    raw: list[dict[str, Any]] = [
        draft(), issued(), published("chart", "wechat"), referred(), detected(),
        response(when="2026-07-08 10:00"), answered(), published(when="2026-08-05 10:00"),
    ]
    out: list[Event] = [loads(orjson.dumps(e)) for e in raw]
    _, clocks = fold(ClockKeeper(CALENDAR), enumerate(out, start=1))
    pub2 = clocks[clock_id("PUB-2", CASE)]
    out += [deadline_event(pub2, a) for a, _ in pub2.owed()]
    return out


def test_rows_are_the_folded_clocks_and_case_memories() -> None:
    events = list(enumerate(history(), start=1))
    rows = Deadlines(CALENDAR).run(events)
    cases, clocks = fold(ClockKeeper(CALENDAR), events)
    assert {r["clock_id"]: clock_from_row(r) for r in rows.rows(CLOCKS)} == clocks
    assert {r["case_id"]: case_from_row(r) for r in rows.rows(CASES)} == cases


def test_outcomes_and_logged_flags_in_the_rows() -> None:
    rows = Deadlines(CALENDAR).run(enumerate(history(), start=1))
    by_rule = {r["clock_id"]: r for r in rows.rows(CLOCKS)}
    pub2 = by_rule[clock_id("PUB-2", CASE)]
    assert pub2["status"] == Status.MET_LATE
    assert (pub2["started_logged"], pub2["warned"], pub2["breached"], pub2["met_logged"]) == (
        True, True, True, True,
    )
    assert pub2["next_action_at"] is None and pub2["met_sequence"] == 8
    pub3 = by_rule[clock_id("PUB-3", CASE)]  # chart on WeChat in time, text only on Aug 5
    assert pub3["status"] == Status.MET_LATE and pub3["met_sequence"] == 8
    assert by_rule[clock_id("QA-4", CASE, "RX-1")]["status"] == Status.MET_ON_TIME
    op4 = by_rule[clock_id("OP-4", CASE, "YQ-1")]
    assert op4["status"] == Status.MET_LATE and op4["next_action_at"] == op4["started_at"]
    case = rows.get(CASES, CASE)
    assert case is not None and case["last_sequence"] == len(history())


def test_round_trip_through_rows_loses_nothing() -> None:
    events = list(enumerate(history(), start=1))
    cases, clocks = fold(ClockKeeper(CALENDAR), events)
    for c in clocks.values():
        assert clock_from_row(CLOCKS.complete(clock_row(c))) == c
    for m in cases.values():
        assert case_from_row(orjson.loads(orjson.dumps(case_row(m)))) == m


def test_touches_names_the_case_and_every_clock_apply_reads() -> None:
    projection = Deadlines(CALENDAR)
    for e in history():
        touched = set(projection.touches(e))
        assert (CASES, (e.case_id,)) in touched
        assert {(CLOCKS, (k,)) for k in projection.keeper.clock_ids(e)} <= touched


def test_applying_derived_events_for_unknown_clocks_changes_no_clock() -> None:
    events = history()
    pub2 = fold(ClockKeeper(CALENDAR), enumerate(events, start=1))[1][clock_id("PUB-2", CASE)]
    rows = MemoryRows()
    Deadlines(CALENDAR).apply(deadline_event(pub2, Action.BREACHED), 1, rows)
    assert rows.rows(CLOCKS) == []


def _on(case_id: str, raw: dict[str, Any]) -> Event:
    event: Event = loads(orjson.dumps({**raw, "case_id": case_id}))
    return event


def _confirmed_2027() -> Event:
    raw = f.envelope("CalendarYearConfirmed", "calendar-2027", "gov_office", year=2027,
                     notice="国办发明电〔2026〕X号", holidays=["2027-01-01"])
    raw["occurred_at"] = at("2026-12-22 10:00").isoformat()
    event: Event = loads(orjson.dumps(raw))
    return event


def test_pub2_each_fact_counts_with_the_calendar_in_force_at_its_place_in_the_log() -> None:
    """Issue 13, defect 1: a policy issued before 2027 was confirmed in the log is held pending
    (the scanner computes it later and logs DeadlineStarted); one issued after counts with the
    log's 2027 at once — in a live store, a rebuild and a replay alike, since the confirmed
    years are rows of the projection itself."""
    confirmed = _confirmed_2027()
    log = [
        _on("Y", draft(when="2026-12-01 09:00")), _on("Z", draft(when="2026-12-01 09:00")),
        _on("Y", issued("2026-12-20")), confirmed, _on("Z", issued("2026-12-21")),
    ]
    rows = Deadlines(CALENDAR).run(enumerate(log, start=1))
    clocks = {r["clock_id"]: r for r in rows.rows(CLOCKS)}
    before, after = clocks[clock_id("PUB-2", "Y")], clocks[clock_id("PUB-2", "Z")]
    assert (before["status"], before["missing_year"]) == (Status.PENDING_CALENDAR, 2027)
    assert after["status"] == Status.OPEN and after["missing_year"] is None
    assert after["calendar"] == (f"{CALENDAR.source_of(2026)}; "
                                 f"log:{confirmed.event_id} notice=国办发明电〔2026〕X号")
    [year] = rows.rows(CALENDAR_YEARS)
    assert (year["year"], year["sequence"], year["holidays"]) == (2027, 4, ["2027-01-01"])
    # as of the sequence before the confirmation, Z's issue would be pending too
    early = Deadlines(CALENDAR).run(enumerate([*log[:3], log[4]], start=1))
    assert {r["clock_id"]: r for r in early.rows(CLOCKS)}[clock_id("PUB-2", "Z")][
        "status"] == Status.PENDING_CALENDAR
