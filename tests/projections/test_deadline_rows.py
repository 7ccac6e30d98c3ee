"""The deadlines projection stores exactly what `domain.clocks` folds, row for row."""

from __future__ import annotations

from typing import Any

import orjson
from deadline_events import answered, detected, draft, issued, published, referred, response

from domain.calendar import WorkingDayCalendar
from domain.clocks import Action, ClockKeeper, Status, clock_id, deadline_event, fold
from events.catalogue import Event
from events.codec import loads
from projections.base import MemoryRows
from projections.deadlines import (
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
