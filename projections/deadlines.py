"""Deadline clocks (期限) as a read model: one row per clock, one row per case's clock memory.

The meaning is `domain.clocks` (which clocks start, when they end, what meets them); this module
only stores it. `deadline_clocks` is what the deadline service scans and `jiedu deadlines`
shows: rule, case, accountable department, trigger, start, due and warning times, calendar
source, status (open, met_on_time, met_late, breached, pending_calendar), the meeting event,
the derived events already in the log (started_logged, pending_logged, warned, breached,
met_logged) and `next_action_at`, the time the clock is next owed a derived event (indexed: the
service selects the rows whose time has come). `deadline_cases` holds each case's memory
(scope, issue, website text and forms published, answers by the drafting unit, and the case's
last log sequence, which the service appends under).

`deadline_calendar_years` holds the years the government office confirmed in the log
(CalendarYearConfirmed): each event is folded with the calendar in force at its place in the log.

Pure like every projection: the working-day calendar and the warning leads are given when the
projection is made. `Deadlines()` without a calendar uses `default_calendar()`: the package's
years plus the confirmed files of `calendar_dir()` (`$JIEDU_CALENDAR_DIR`, else
`deploy/calendar/`), loaded once, with the log's years on top; without leads,
`default_leads()` (3 working days, 6 hours, 14 days, or `$JIEDU_WARN_*`). Every process that
runs this projection must see the same calendar and leads; a DeadlineStarted in the log fixes a
clock's due time whatever the calendar says, so a replay gives the due dates live processing
logged. Changing the leads or the clock rules changes rows: bump `version` (the runner rebuilds).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any, Final

from domain.calendar import WorkingDayCalendar, YearCalendar, log_source
from domain.clocks import CaseMemory, Clock, ClockKeeper, Leads, Ref, Status, Unit
from events.catalogue import CalendarYearConfirmed, Event
from projections.base import Key, Projection, Row, Rows, Table, Type

CALENDAR_DIR_ENV: Final = "JIEDU_CALENDAR_DIR"
"""Directory of the operator's calendar files (see deploy/calendar/README.md)."""
LEAD_ENV: Final = {
    "working_days": "JIEDU_WARN_WORKING_DAYS",
    "hours": "JIEDU_WARN_HOURS",
    "period_days": "JIEDU_WARN_PERIOD_DAYS",
}
"""Environment variables that override the warning leads (`domain.clocks.Leads`)."""

STATUSES: Final = tuple(str(s) for s in Status)

CLOCKS = Table(
    "deadline_clocks",
    key=("clock_id",),
    columns={
        "clock_id": Type.TEXT,  # PUB-2:<case>, QA-4:<case>:<consultation>, SUP-1:training:2026, …
        "rule_id": Type.TEXT,
        "case_id": Type.TEXT,  # the case its derived events go to
        "department": Type.TEXT,  # accountable department (责任单位)
        "subject": Type.TEXT,  # consultation ID, opinion ID or period
        "trigger_event_id": Type.TEXT,
        "trigger_sequence": Type.INT,
        "triggered_at": Type.TIMESTAMP,  # the trigger's occurred_at
        "started_at": Type.TIMESTAMP,  # when the clock runs from
        "unit": Type.TEXT,  # working_days | hours | period
        "length": Type.INT,
        "needed": Type.INT,  # PUB-3: distinct forms needed
        "rule_set": Type.TEXT,
        "due_at": Type.TIMESTAMP,
        "warn_at": Type.TIMESTAMP,
        "calendar": Type.TEXT,  # the calendar source(s) of the due time
        "missing_year": Type.INT,  # pending_calendar: the year nobody supplied
        "status": Type.TEXT,
        "met_event_id": Type.TEXT,
        "met_sequence": Type.INT,
        "met_at": Type.TIMESTAMP,
        "started_logged": Type.BOOL,
        "pending_logged": Type.BOOL,
        "warned": Type.BOOL,
        "breached": Type.BOOL,
        "met_logged": Type.BOOL,
        "next_action_at": Type.TIMESTAMP,
    },
    indexes=(("department",), ("status",), ("next_action_at",), ("case_id",), ("rule_id",)),
)

CALENDAR_YEARS = Table(
    "deadline_calendar_years",
    key=("year",),
    columns={
        "year": Type.INT,
        "notice": Type.TEXT,  # the State Council notice's number (文号)
        "holidays": Type.JSON,  # ["2027-01-01", ...]
        "make_up_working_days": Type.JSON,
        "event_id": Type.TEXT,  # the CalendarYearConfirmed
        "sequence": Type.INT,
        "confirmed_at": Type.TIMESTAMP,
        "source": Type.TEXT,  # the label deadlines computed with this year record
    },
)
"""The years the government office confirmed in the log, as of this store's position: the
calendar in force at that point of the log, for the projection, the scanner and the CLI."""

CASES = Table(
    "deadline_cases",
    key=("case_id",),
    columns={
        "case_id": Type.TEXT,
        "department": Type.TEXT,
        "last_sequence": Type.INT,
        "scope": Type.TEXT,
        "issued": Type.JSON,  # {event_id, sequence, at}
        "website_text": Type.JSON,  # {event_id, sequence, at}
        "forms": Type.JSON,  # [{form, event_id, sequence, at}, ...] in order of first publication
        "unit_answers": Type.JSON,  # {consultation_id: {event_id, sequence, at}}
    },
)


DEPLOY_CALENDAR_DIR: Final = Path(__file__).resolve().parents[1] / "deploy" / "calendar"
"""The operator files shipped with the code (deploy/calendar/), read when no directory is set."""


def calendar_dir() -> Path | None:
    """``$JIEDU_CALENDAR_DIR`` if set, else ``deploy/calendar/`` if it is there, else None."""
    if directory := os.environ.get(CALENDAR_DIR_ENV):
        return Path(directory)
    return DEPLOY_CALENDAR_DIR if DEPLOY_CALENDAR_DIR.is_dir() else None


@cache
def default_calendar() -> WorkingDayCalendar:
    """The package's years plus the confirmed operator files of :func:`calendar_dir`. Years
    confirmed in the log come on top, from the store (:func:`with_log_years`)."""
    return WorkingDayCalendar.load(calendar_dir())


def year_of_row(row: Row) -> YearCalendar:
    """A confirmed year as stored in `CALENDAR_YEARS`."""
    return YearCalendar(
        year=row["year"],
        holidays=frozenset(date.fromisoformat(d) for d in row["holidays"]),
        make_up_working_days=frozenset(date.fromisoformat(d) for d in row["make_up_working_days"]),
        source=row["source"],
        notice=row["notice"],
    )


def with_log_years(calendar: WorkingDayCalendar, rows: Iterable[Row]) -> WorkingDayCalendar:
    """``calendar`` plus the confirmed years of these `CALENDAR_YEARS` rows."""
    years = {row["year"]: year_of_row(row) for row in rows}
    return calendar.with_log(years.get)


def _year_row(event: CalendarYearConfirmed, seq: int) -> Row:
    d = event.data
    return {
        "year": d.year,
        "notice": d.notice,
        "holidays": [day.isoformat() for day in sorted(set(d.holidays))],
        "make_up_working_days": [day.isoformat() for day in sorted(set(d.make_up_working_days))],
        "event_id": event.event_id,
        "sequence": seq,
        "confirmed_at": event.occurred_at,
        "source": log_source(event.event_id, d.notice),
    }


@cache
def default_leads() -> Leads:
    """`Leads()` with any of ``$JIEDU_WARN_WORKING_DAYS``, ``$JIEDU_WARN_HOURS`` and
    ``$JIEDU_WARN_PERIOD_DAYS`` applied."""
    given = {field: int(os.environ[env]) for field, env in LEAD_ENV.items() if os.environ.get(env)}
    return Leads(**given)


# ── rows ⇄ domain ────────────────────────────────────────────────────────────────────────────


def _ref_json(ref: Ref | None) -> dict[str, Any] | None:
    if ref is None:
        return None
    return {"event_id": ref.event_id, "sequence": ref.sequence, "at": ref.at.isoformat()}


def _ref(value: dict[str, Any] | None) -> Ref | None:
    if value is None:
        return None
    at = value["at"]
    return Ref(
        value["event_id"],
        int(value["sequence"]),
        at if isinstance(at, datetime) else datetime.fromisoformat(at),
    )


def case_row(case: CaseMemory) -> Row:
    return {
        "case_id": case.case_id,
        "department": case.department,
        "last_sequence": case.last_sequence,
        "scope": case.scope,
        "issued": _ref_json(case.issued),
        "website_text": _ref_json(case.website_text),
        "forms": [{"form": form, **(_ref_json(ref) or {})} for form, ref in case.forms],
        "unit_answers": {k: _ref_json(ref) for k, ref in case.unit_answers.items()},
    }


def case_from_row(row: Row) -> CaseMemory:
    forms: list[tuple[str, Ref]] = []
    for item in row["forms"] or []:
        ref = _ref(item)
        assert ref is not None
        forms.append((item["form"], ref))
    answers: dict[str, Ref] = {}
    for key, value in (row["unit_answers"] or {}).items():
        ref = _ref(value)
        assert ref is not None
        answers[key] = ref
    return CaseMemory(
        case_id=row["case_id"],
        department=row["department"],
        last_sequence=row["last_sequence"] or 0,
        scope=row["scope"],
        issued=_ref(row["issued"]),
        website_text=_ref(row["website_text"]),
        forms=forms,
        unit_answers=answers,
    )


def clock_row(clock: Clock) -> Row:
    met = clock.met_by
    return {
        "clock_id": clock.clock_id,
        "rule_id": clock.rule_id,
        "case_id": clock.case_id,
        "department": clock.department,
        "subject": clock.subject,
        "trigger_event_id": clock.trigger.event_id,
        "trigger_sequence": clock.trigger.sequence,
        "triggered_at": clock.trigger.at,
        "started_at": clock.started_at,
        "unit": str(clock.unit),
        "length": clock.length,
        "needed": clock.needed,
        "rule_set": clock.rule_set,
        "due_at": clock.due_at,
        "warn_at": clock.warn_at,
        "calendar": clock.calendar,
        "missing_year": clock.missing_year,
        "status": str(clock.status),
        "met_event_id": met.event_id if met else None,
        "met_sequence": met.sequence if met else None,
        "met_at": met.at if met else None,
        "started_logged": clock.started_logged,
        "pending_logged": clock.pending_logged,
        "warned": clock.warned,
        "breached": clock.breached,
        "met_logged": clock.met_logged,
        "next_action_at": clock.next_action_at(),
    }


def clock_from_row(row: Row) -> Clock:
    met = (
        Ref(row["met_event_id"], row["met_sequence"], row["met_at"])
        if row["met_event_id"] is not None
        else None
    )
    return Clock(
        clock_id=row["clock_id"],
        rule_id=row["rule_id"],
        case_id=row["case_id"],
        department=row["department"],
        subject=row["subject"],
        trigger=Ref(row["trigger_event_id"], row["trigger_sequence"], row["triggered_at"]),
        started_at=row["started_at"],
        unit=Unit(row["unit"]),
        length=row["length"],
        needed=row["needed"],
        rule_set=row["rule_set"],
        due_at=row["due_at"],
        warn_at=row["warn_at"],
        calendar=row["calendar"],
        missing_year=row["missing_year"],
        status=Status(row["status"]),
        met_by=met,
        started_logged=bool(row["started_logged"]),
        pending_logged=bool(row["pending_logged"]),
        warned=bool(row["warned"]),
        breached=bool(row["breached"]),
        met_logged=bool(row["met_logged"]),
    )


# ── the projection ───────────────────────────────────────────────────────────────────────────


class Deadlines(Projection):
    """Every deadline clock and its outcome, kept by `domain.clocks.ClockKeeper`.

    Each event is folded with the calendar in force at its place in the log: the given one
    (package and operator files) plus the years confirmed by the CalendarYearConfirmed events
    before it, read from `CALENDAR_YEARS` as a year is needed. So a live store, a rebuild and
    an auditor's replay as of any point count with the same calendar."""

    name = "deadlines"
    version = 2
    tables = (CLOCKS, CASES, CALENDAR_YEARS)

    def __init__(
        self, calendar: WorkingDayCalendar | None = None, leads: Leads | None = None
    ) -> None:
        self._calendar = calendar
        self.leads = leads or default_leads()
        self._keeper: ClockKeeper | None = None

    @property
    def keeper(self) -> ClockKeeper:
        """The keeper, made on first use (so that importing the registry loads no calendar)."""
        if self._keeper is None:
            self._keeper = ClockKeeper(self._calendar or default_calendar(), self.leads)
        return self._keeper

    def touches(self, event: Event) -> Iterable[tuple[Table, Key]]:
        yield CASES, (event.case_id,)
        for key in self.keeper.clock_ids(event):
            yield CLOCKS, (key,)

    def apply(self, event: Event, seq: int, rows: Rows) -> None:
        if isinstance(event, CalendarYearConfirmed):
            rows.put(CALENDAR_YEARS, _year_row(event, seq))
        found = rows.get(CASES, event.case_id)
        case = case_from_row(found) if found is not None else None
        clocks: dict[str, Clock | None] = {}
        for key in self.keeper.clock_ids(event):
            row = rows.get(CLOCKS, key)
            clocks[key] = clock_from_row(row) if row is not None else None

        def confirmed(year: int) -> YearCalendar | None:
            stored = rows.get(CALENDAR_YEARS, year)
            return year_of_row(stored) if stored is not None else None

        keeper = ClockKeeper(self.keeper.calendar.with_log(confirmed), self.leads)
        case, changed = keeper.apply(event, seq, case, clocks)
        rows.put(CASES, case_row(case))
        for key in sorted(changed):
            clock = clocks[key]
            assert clock is not None
            rows.put(CLOCKS, clock_row(clock))
