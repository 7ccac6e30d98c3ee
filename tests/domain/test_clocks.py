"""The deadline clocks as a pure function of events (domain/clocks.py).

Expected due dates are worked out by hand from the State Council notices (July 2026 has no public
holiday; 2025's National Day and Mid-Autumn holiday ran 10-01..10-08 with make-up days 09-28 and
10-11), not computed by the code under test.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from deadline_events import (
    CASE,
    answered,
    at,
    detected,
    draft,
    end_of,
    ev,
    issued,
    published,
    referred,
    response,
)

import factories as f
from domain.calendar import WorkingDayCalendar
from domain.clocks import (
    HOURS_CALENDAR,
    PERIOD_CALENDAR,
    SOURCE_SYSTEM,
    Action,
    CaseMemory,
    Clock,
    ClockKeeper,
    Leads,
    Status,
    clock_id,
    deadline_event,
    deadline_event_id,
    fold,
)
from events.catalogue import Event
from events.codec import encode, loads

PACKAGE = WorkingDayCalendar.load(None)
KEEPER = ClockKeeper(PACKAGE)
EVENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")


def events(*raw: dict[str, Any] | Event) -> list[tuple[int, Event]]:
    out: list[tuple[int, Event]] = []
    for i, e in enumerate(raw, start=1):
        out.append((i, e if not isinstance(e, dict) else loads(orjson.dumps(e))))
    return out


def clocks_of(*raw: dict[str, Any] | Event, keeper: ClockKeeper = KEEPER) -> dict[str, Clock]:
    return fold(keeper, events(*raw))[1]


def clock(*raw: dict[str, Any] | Event, key: str, keeper: ClockKeeper = KEEPER) -> Clock:
    return clocks_of(*raw, keeper=keeper)[key]


PUB2 = clock_id("PUB-2", CASE)
PUB3 = clock_id("PUB-3", CASE)
QA4 = clock_id("QA-4", CASE, "RX-1")
OP4 = clock_id("OP-4", CASE, "YQ-1")


def with_derived(history: list[dict[str, Any] | Event], key: str, now: datetime) -> list[Any]:
    """``history`` plus the derived events the clock ``key`` is owed by ``now``, as the
    service would append them."""
    c = clock(*history, key=key)
    return [*history, *(deadline_event(c, a) for a in c.owed_by(now))]


# ── PUB-2: 20 working days from the issue date ────────────────────────────────────────────────


def test_pub2_starts_at_issue_of_an_in_scope_case_with_due_at_end_of_20th_working_day() -> None:
    c = clock(draft(), issued("2026-07-06"), key=PUB2)
    assert c.rule_id == "PUB-2" and c.department == "drc" and c.case_id == CASE
    assert c.started_at == at("2026-07-06 00:00")
    assert c.due_at == end_of("2026-08-03")  # Jul 7 is the 1st working day, Aug 3 the 20th
    assert c.status is Status.OPEN
    assert c.calendar is not None and c.calendar.startswith("chinesecalendar ")
    assert c.rule_set == "yuzhong-2021"


def test_pub2_across_national_day_2025_uses_the_make_up_days() -> None:
    c = clock(draft(when="2025-09-01 09:00"), issued("2025-09-26"), key=PUB2)
    assert c.due_at == end_of("2025-10-30")


def test_pub2_met_on_time_by_website_text() -> None:
    c = clock(draft(), issued(), published("chart", "wechat", "2026-07-10 10:00"),
              published("text", "government_website", "2026-08-03 23:00"), key=PUB2)
    assert c.status is Status.MET_ON_TIME
    assert c.met_by is not None and c.met_by.sequence == 4


def test_pub2_met_late() -> None:
    c = clock(draft(), issued(), published(when="2026-08-04 09:00"), key=PUB2)
    assert c.status is Status.MET_LATE


def test_pub2_text_on_other_channels_or_other_forms_on_the_website_do_not_meet_it() -> None:
    c = clock(draft(), issued(), published("text", "wechat"), published("chart"), key=PUB2)
    assert c.status is Status.OPEN and c.met_by is None


def test_pub2_website_text_before_issue_meets_it_on_time() -> None:
    c = clock(draft(), published(when="2026-07-03 10:00"), issued(), key=PUB2)
    assert c.status is Status.MET_ON_TIME
    assert c.met_by is not None and c.met_by.sequence == 2


def test_out_of_scope_case_has_no_publication_clocks() -> None:
    found = clocks_of(draft("out_of_scope"), issued())
    assert PUB2 not in found and PUB3 not in found


def test_a_second_issue_does_not_restart_the_clock() -> None:
    c = clock(draft(), issued("2026-07-06"), issued("2026-07-20"), key=PUB2)
    assert c.due_at == end_of("2026-08-03") and c.trigger.sequence == 2


# ── PUB-3: at least two forms within the same window ──────────────────────────────────────────


def test_pub3_met_when_the_second_distinct_form_is_published() -> None:
    c = clock(draft(), issued(), published("text"), published("text", "wechat"),
              published("chart", "news_media", "2026-07-25 10:00"), key=PUB3)
    assert c.needed == 2 and c.due_at == end_of("2026-08-03")
    assert c.status is Status.MET_ON_TIME
    assert c.met_by is not None and c.met_by.sequence == 5


def test_pub3_one_form_only_is_never_met() -> None:
    c = clock(draft(), issued(), published("text"), published("text", "wechat"), key=PUB3)
    assert c.status is Status.OPEN
    assert Action.BREACHED in c.owed_by(end_of("2026-08-03"))


def test_pub3_second_form_after_the_due_time_is_late() -> None:
    c = clock(draft(), issued(), published("text"), published("chart", when="2026-08-10 09:00"),
              key=PUB3)
    assert c.status is Status.MET_LATE


# ── QA-4: 5 working days from the referral ──────────────────────────────────────────────────


def test_qa4_due_five_working_days_after_the_referral() -> None:
    c = clock(draft(), referred(when="2026-07-10 10:00"), key=QA4)  # a Friday
    assert c.due_at == end_of("2026-07-17") and c.subject == "RX-1"
    assert c.status is Status.OPEN


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        ("2026-07-17 18:00", Status.MET_ON_TIME),
        ("2026-07-20 09:00", Status.MET_LATE),
    ],
)
def test_qa4_met_on_time_or_late_by_the_drafting_unit(answer: str, status: Status) -> None:
    c = clock(draft(), referred(), answered(when=answer), key=QA4)
    assert c.status is status


def test_qa4_an_answer_by_someone_else_does_not_meet_it() -> None:
    c = clock(draft(), referred(), answered(by_unit=False), key=QA4)
    assert c.status is Status.OPEN


def test_qa4_an_answer_recorded_before_the_referral_meets_it() -> None:
    c = clock(draft(), answered(when="2026-07-11 10:00"), referred(when="2026-07-10 10:00"),
              key=QA4)
    assert c.status is Status.MET_ON_TIME


def test_qa4_one_clock_per_consultation_from_its_first_referral() -> None:
    found = clocks_of(draft(), referred("A", "2026-07-10 10:00"), referred("A", "2026-07-14 10:00"),
                      referred("B", "2026-07-14 10:00"))
    a, b = found[clock_id("QA-4", CASE, "A")], found[clock_id("QA-4", CASE, "B")]
    assert a.due_at == end_of("2026-07-17") and b.due_at == end_of("2026-07-21")


# ── OP-4: 24 / 48 clock hours from detection ────────────────────────────────────────────────


@pytest.mark.parametrize(("severity", "hours"), [("major", 24), ("high_attention", 24),
                                                 ("ordinary", 48)])
def test_op4_hours_by_severity_from_the_detection_time(severity: str, hours: int) -> None:
    c = clock(draft(), detected(severity=severity, when="2026-07-11 22:00"), key=OP4)
    assert c.started_at == at("2026-07-11 22:00")  # a Saturday: clock hours ignore weekends
    assert c.due_at == at("2026-07-11 22:00") + timedelta(hours=hours)
    assert c.warn_at == c.due_at - timedelta(hours=6)
    assert c.calendar == HOURS_CALENDAR


@pytest.mark.parametrize(
    ("answer", "status"), [("2026-07-07 10:00", Status.MET_ON_TIME),
                           ("2026-07-07 10:01", Status.MET_LATE)],
)
def test_op4_met_on_time_or_late_by_a_response(answer: str, status: Status) -> None:
    c = clock(draft(), detected(when="2026-07-06 10:00"), response(when=answer), key=OP4)
    assert c.status is status


def test_op4_a_decision_on_a_suggestion_is_a_response() -> None:
    declined = ev("SuggestionDeclined", "2026-07-06 12:00", opinion_id="YQ-1", rationale="不符")
    c = clock(draft(), detected(), declined, key=OP4)
    assert c.status is Status.MET_ON_TIME


def test_op4_never_answered_is_owed_warning_then_breach() -> None:
    c = clock(draft(), detected(when="2026-07-06 10:00"), key=OP4)
    assert c.owed_by(at("2026-07-07 03:59")) == [Action.STARTED]
    assert c.owed_by(at("2026-07-07 04:00")) == [Action.STARTED, Action.WARNED]
    assert c.owed_by(at("2026-07-07 10:00")) == [Action.STARTED, Action.WARNED, Action.BREACHED]


# ── SUP-1: training each year, inspection each quarter ────────────────────────────────────────


def test_sup1_period_clocks_open_with_the_first_fact_of_the_period() -> None:
    found = clocks_of(draft(when="2026-08-01 09:00"))
    training = found["SUP-1:training:2026"]
    inspection = found["SUP-1:inspection:2026Q3"]
    assert training.case_id == "sup-1-training-2026" and training.department == "gov_office"
    assert training.started_at == at("2026-01-01 00:00")
    assert training.due_at == end_of("2026-12-31")
    assert inspection.case_id == "sup-1-inspection-2026q3"
    assert inspection.started_at == at("2026-07-01 00:00")
    assert inspection.due_at == end_of("2026-09-30")
    assert inspection.warn_at == end_of("2026-09-16")  # 14 calendar days before
    assert inspection.calendar == PERIOD_CALENDAR
    assert inspection.trigger.sequence == 1


def test_sup1_met_by_training_and_inspection_in_the_period() -> None:
    training = f.envelope("TrainingHeld", "TRAIN-2026", "gov_office", title="培训",
                          held_on="2026-09-10", participants=["drc"])
    training["occurred_at"] = at("2026-09-10 15:00").isoformat()
    inspection = f.envelope("InspectionConducted", "INSP-2026Q3", "gov_office", quarter="2026Q3",
                            conducted_on="2026-10-09", departments=["drc"])
    inspection["occurred_at"] = at("2026-10-09 15:00").isoformat()
    found = clocks_of(draft(when="2026-08-01 09:00"), training, inspection)
    assert found["SUP-1:training:2026"].status is Status.MET_ON_TIME
    # done in October: it is the fourth quarter's inspection, not the third's
    assert found["SUP-1:inspection:2026Q3"].status is Status.OPEN
    assert found["SUP-1:inspection:2026Q4"].status is Status.MET_ON_TIME
    assert found["SUP-1:inspection:2026Q3"].owed_by(end_of("2026-09-30"))[-1] is Action.BREACHED


def test_derived_events_do_not_open_periods() -> None:
    history = with_derived([draft(), detected()], OP4, at("2026-07-08 00:00"))
    later = loads(encode(history[-1]))
    assert later.occurred_at == at("2026-07-07 10:00")
    c = clocks_of(*history)
    assert "SUP-1:inspection:2026Q3" in c and len([k for k in c if k.startswith("SUP-1")]) == 2


def test_sup1_a_calendar_confirmation_opens_no_period() -> None:
    """SUP-1: confirming next year's calendar in November is no interpretation work of the
    quarter; it starts neither the year's training clock nor the quarter's inspection clock."""
    confirmed = f.envelope("CalendarYearConfirmed", "calendar-2027", "gov_office", year=2027,
                           notice="国办发明电〔2026〕X号", holidays=["2027-01-01"])
    confirmed["occurred_at"] = at("2026-11-20 10:00").isoformat()
    assert clocks_of(confirmed) == {}


# ── warnings ────────────────────────────────────────────────────────────────────────────────


def test_working_day_warning_when_three_working_days_are_left() -> None:
    c = clock(draft(), issued("2026-07-06"), key=PUB2)  # due Mon Aug 3
    assert c.warn_at == end_of("2026-07-29")  # Jul 30, 31, Aug 3 are left
    short = clock(draft(), referred(when="2026-07-10 10:00"), key=QA4)
    assert short.warn_at == end_of("2026-07-14")


def test_leads_are_configurable() -> None:
    keeper = ClockKeeper(PACKAGE, Leads(working_days=1, hours=2, period_days=1))
    assert clock(draft(), issued(), key=PUB2, keeper=keeper).warn_at == end_of("2026-07-31")
    op = clock(draft(), detected(when="2026-07-06 10:00"), key=OP4, keeper=keeper)
    assert op.warn_at == at("2026-07-07 08:00")
    long = ClockKeeper(PACKAGE, Leads(working_days=9))
    qa = clock(draft(), referred(when="2026-07-10 10:00"), key=QA4, keeper=long)
    assert qa.warn_at == qa.started_at  # a lead as long as the clock warns at once


# ── derived events ───────────────────────────────────────────────────────────────────────────


def test_never_met_clock_is_owed_started_warning_and_breach_at_their_own_times() -> None:
    c = clock(draft(), issued(), key=PUB2)
    assert c.owed() == [
        (Action.STARTED, at("2026-07-06 00:00")),
        (Action.WARNED, end_of("2026-07-29")),
        (Action.BREACHED, end_of("2026-08-03")),
    ]
    assert c.next_action_at() == at("2026-07-06 00:00")


def test_logged_events_are_owed_no_more_and_status_follows_the_breach() -> None:
    history: list[Any] = [draft(), issued()]
    history = with_derived(history, PUB2, end_of("2026-08-03"))
    c = clock(*history, key=PUB2)
    assert (c.started_logged, c.warned, c.breached) == (True, True, True)
    assert c.status is Status.BREACHED and c.owed() == [] and c.next_action_at() is None
    history.append(published(when="2026-08-05 10:00"))
    late = clock(*history, key=PUB2)
    assert late.status is Status.MET_LATE and late.owed() == [(Action.MET, at("2026-08-05 10:00"))]
    final = clock(*with_derived(history, PUB2, at("2026-08-05 10:00")), key=PUB2)
    assert final.met_logged and final.owed() == []


def test_warning_but_no_breach_when_met_between_warning_and_due_time() -> None:
    c = clock(draft(), issued(), published(when="2026-07-31 10:00"), key=PUB2)
    assert [a for a, _ in c.owed()] == [Action.STARTED, Action.WARNED, Action.MET]


def test_met_late_clock_is_owed_warning_and_breach_even_if_nobody_was_watching() -> None:
    c = clock(draft(), issued(), published(when="2026-08-05 10:00"), key=PUB2)
    assert [a for a, _ in c.owed()] == [Action.STARTED, Action.WARNED, Action.BREACHED, Action.MET]


def test_met_on_time_before_the_warning_owes_started_and_met_only() -> None:
    c = clock(draft(), issued(), published(), key=PUB2)
    assert [a for a, _ in c.owed()] == [Action.STARTED, Action.MET]


def test_derived_event_envelope_is_deterministic() -> None:
    history = [draft(), issued()]
    c = clock(*history, key=PUB2)
    e = deadline_event(c, Action.BREACHED)
    again = deadline_event(clock(*history, key=PUB2), Action.BREACHED)
    assert encode(e) == encode(again)
    assert e.type == "DeadlineBreached" and e.case_id == CASE and e.department == "drc"
    assert e.source_system == SOURCE_SYSTEM and e.actor.id == "jiedu"
    assert e.occurred_at == end_of("2026-08-03")
    assert e.causation_id == c.trigger.event_id and e.correlation_id == PUB2
    assert e.data.clock_id == PUB2 and e.data.rule_id == "PUB-2"
    assert e.data.due_at == end_of("2026-08-03") and e.data.calendar == c.calendar
    assert e.data.trigger.sequence == 2
    assert e.event_id == deadline_event_id(Action.BREACHED, PUB2)
    assert EVENT_ID.match(e.event_id)
    assert loads(encode(e)) == e  # passes the catalogue's own validation


def test_event_ids_differ_per_clock_and_kind_and_stay_valid_for_long_ids() -> None:
    long_case, long_ref = "C" * 128, "Q" * 128
    key = clock_id("QA-4", long_case, long_ref)
    assert len(key) <= 160 and key != clock_id("QA-4", long_case, "Q" * 127)
    ids = {deadline_event_id(a, k) for a in Action for k in (PUB2, PUB3, key)}
    assert len(ids) == 15 and all(EVENT_ID.match(i) for i in ids)


# ── unknown calendar years ───────────────────────────────────────────────────────────────────


def calendar_2027(tmp_path: Path) -> WorkingDayCalendar:
    """The package plus a confirmed 2027 file (invented days: New Year 01-01..03 off)."""
    content = {
        "year": 2027, "notice": "国办发明电〔2026〕X号", "status": "confirmed",
        "holidays": ["2027-01-01", "2027-01-02", "2027-01-03"], "make_up_working_days": [],
    }
    (tmp_path / "2027.json").write_text(json.dumps(content), encoding="utf-8")
    return WorkingDayCalendar.load(tmp_path)


def late_2026_history() -> list[Any]:
    return [draft(when="2026-12-01 09:00"), issued("2026-12-20")]


def test_a_count_into_an_unknown_year_is_pending_never_guessed() -> None:
    c = clock(*late_2026_history(), key=PUB2)
    assert c.status is Status.PENDING_CALENDAR and c.missing_year == 2027
    assert c.due_at is None and c.warn_at is None
    assert c.owed() == [(Action.PENDING_CALENDAR, at("2026-12-20 00:00"))]
    e = deadline_event(c, Action.PENDING_CALENDAR)
    assert e.type == "DeadlinePendingCalendar" and e.data.due_at is None


def test_pending_clock_is_computed_when_the_year_is_supplied(tmp_path: Path) -> None:
    history = late_2026_history()
    c = clock(*history, key=PUB2)
    history.append(deadline_event(c, Action.PENDING_CALENDAR))
    pending = clock(*history, key=PUB2)
    assert pending.pending_logged and pending.owed() == []

    keeper = ClockKeeper(calendar_2027(tmp_path))
    assert keeper.schedule(pending)
    # Dec 21-25 and 28-31 are 9 working days; 2027-01-01 is off; Jan 4-8, 11-15, then 18
    assert pending.status is Status.OPEN and pending.due_at == end_of("2027-01-18")
    assert pending.calendar is not None and "file:2027.json" in pending.calendar
    history.append(deadline_event(pending, Action.STARTED))
    # a keeper that still does not know 2027 takes the due time from the log
    logged = clock(*history, key=PUB2)
    assert logged.status is Status.OPEN and logged.due_at == pending.due_at
    assert logged.calendar == pending.calendar


def test_replay_with_the_year_known_gives_what_was_logged(tmp_path: Path) -> None:
    history = late_2026_history()
    history.append(deadline_event(clock(*history, key=PUB2), Action.PENDING_CALENDAR))
    keeper = ClockKeeper(calendar_2027(tmp_path))
    c = clock(*history, key=PUB2)
    keeper.schedule(c)
    history.append(deadline_event(c, Action.STARTED))
    live = clock(*history, key=PUB2, keeper=keeper)
    # a rebuild with the year known computes the due time at once; the logged one agrees
    assert clock(*history[:2], key=PUB2, keeper=keeper).due_at == live.due_at
    assert clock(*history, key=PUB2, keeper=keeper) == live
    # a keeper without the year keeps the logged due time and outcome, but cannot place
    # the warning day in 2027 (the service places it with its own calendar)
    blind = clock(*history, key=PUB2)
    assert (blind.due_at, blind.calendar, blind.status) == (live.due_at, live.calendar, live.status)
    assert blind.warn_at is None and live.warn_at == end_of("2027-01-13")


def test_case_memory_tracks_the_last_sequence_of_every_case() -> None:
    cases = fold(KEEPER, events(draft(), issued(), ev("ReviewSigned", stage="section_head",
                                                     signer="王五")))[0]
    assert cases[CASE] == CaseMemory(
        CASE, "drc", last_sequence=3, scope="normative", issued=cases[CASE].issued,
    )
