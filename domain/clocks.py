"""Deadline clocks (期限): when each clock of RULES.md "Deadlines in one place" starts, when it
ends, what meets it, and which derived events it is owed.

What: a pure state machine over the log. :class:`ClockKeeper` folds events into two kinds of
state, both plain dataclasses that a projection stores as rows:

* :class:`CaseMemory`, one per case: what a case must remember to start or stop its clocks
  whatever the order of its facts (scope, issue, website text and forms published before the
  clock started, answers by the drafting unit, the case's last log sequence);
* :class:`Clock`, one per duty: rule, case, trigger, start, due time, warning time, calendar
  source, outcome and which derived events (DeadlineStarted, …) the log already holds.

Why pure: a replay of the log (an auditor's, or a projection rebuild) must compute the same due
dates and the same outcomes as live processing did. Nothing here reads a clock or a file; the
working-day calendar (工作日历) and the warning leads are given, and the time a derived event is
owed is a property of the clock (its start, warning, due or meeting time), never "now".

The clocks (rule parameters from the rule set in force at the trigger's ``occurred_at``,
``domain.rules.ruleset_at``; no clock starts before the first rule set):

* PUB-2 starts at PolicyIssued of an in-scope case (SCOPE-1, scope from DraftSubmitted), at its
  ``issue_date`` (印发之日; the day itself does not count), and ends at 23:59:59 Asia/Shanghai
  of the 20th working day after it. Met by the first MaterialPublished of form ``text`` on
  ``government_website`` (policy and text interpretation on the district website together); a
  publication before the issue meets it, on time.
* PUB-3 runs with PUB-2, same window. Met by the publication (any channel) that brings the
  distinct forms published to 2.
* QA-4 starts at the first ConsultationReferred of a consultation (its ``occurred_at``; a
  referral to the wrong unit starts it too: the citizen is waiting), 5 working days. Met by
  ConsultationAnswered ``by_drafting_unit`` for that consultation, even one recorded first.
* OP-4 starts at OpinionDetected's ``data.detected_at``: 24 clock hours for a major or
  high-attention opinion, 48 otherwise. Met by ResponseIssued for that opinion, or by a decision
  on it as a suggestion (SuggestionAdopted / SuggestionDeclined: OP-2's answer to one).
* SUP-1 has a clock per calendar year (training) and per quarter (inspection), Asia/Shanghai,
  charged to ``gov_office`` on a case of its own (``sup-1-training-2026``,
  ``sup-1-inspection-2026q3``), started by the log's first upstream fact in the period and due
  at the period's last second. Met by TrainingHeld whose ``held_on`` lies in the year, and by
  InspectionConducted whose ``conducted_on`` lies in the quarter (the quarter it was done in,
  whatever quarter it inspected). A period in which nothing at all is recorded has no clock.

Met on time if the meeting fact's ``occurred_at`` is at or before the due time, otherwise met
late (SUP-1: a fact inside the period is always in time). The first meeting fact counts.

A working-day clock whose count needs a year that no confirmed calendar source covers is held
as ``pending_calendar`` (never guessed) and computed when the year is known: by a keeper given
a calendar that knows it, or from the due time a DeadlineStarted event carries. The log wins: once
DeadlineStarted is folded, its due time and calendar are the clock's.

Derived events are owed at their own time: DeadlineStarted / DeadlinePendingCalendar at the
start, DeadlineWarned at the warning time if the clock was still unmet then, DeadlineBreached at
the due time if it was still unmet then (a clock met late is breached too, whether or not the
service was running at the due time), DeadlineMet at the meeting time. Their event IDs are
deterministic (:func:`deadline_event_id`), so two instances can only ever append the same event.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Final

from domain.calendar import SHANGHAI, UnknownYear, WorkingDayCalendar
from domain.rules.ruleset import NoRuleSet, RuleSet, ruleset_at
from events.catalogue import (
    CALENDAR_TYPES,
    SYSTEM_TYPES,
    Channel,
    ConsultationAnswered,
    ConsultationReferred,
    DeadlineBreached,
    DeadlineData,
    DeadlineMet,
    DeadlinePendingCalendar,
    DeadlineStarted,
    DeadlineWarned,
    DraftSubmitted,
    Event,
    Evidence,
    Form,
    InspectionConducted,
    MaterialPublished,
    OpinionDetected,
    PolicyIssued,
    ResponseIssued,
    Scope,
    SuggestionAdopted,
    SuggestionDeclined,
    TrainingHeld,
)
from events.envelope import Actor

__all__ = [
    "ACTOR",
    "HOURS_CALENDAR",
    "OP_4",
    "PERIOD_CALENDAR",
    "PUB_2",
    "PUB_3",
    "QA_4",
    "SOURCE_SYSTEM",
    "SUP_1",
    "SUP_1_DEPARTMENT",
    "Action",
    "CaseMemory",
    "Clock",
    "ClockKeeper",
    "DeadlineEvent",
    "Leads",
    "Ref",
    "Status",
    "Unit",
    "clock_id",
    "deadline_event",
    "deadline_event_id",
    "fold",
    "inspection_clock_id",
    "period_duty",
    "training_clock_id",
]

PUB_2: Final = "PUB-2"
PUB_3: Final = "PUB-3"
QA_4: Final = "QA-4"
OP_4: Final = "OP-4"
SUP_1: Final = "SUP-1"

SUP_1_DEPARTMENT: Final = "gov_office"
"""区政府办公室 trains and inspects (SUP-1): its clocks are charged to it."""
SOURCE_SYSTEM: Final = "jiedu-deadlines"
"""``source_system`` of every derived deadline event."""
ACTOR: Final = Actor(id="jiedu", name="解读期限服务 (Jiedu deadline service)")

HOURS_CALENDAR: Final = "clock hours"
"""Calendar label of OP-4's clocks: clock hours, no working-day calendar involved."""
PERIOD_CALENDAR: Final = "calendar periods, Asia/Shanghai"
"""Calendar label of SUP-1's clocks: calendar years and quarters."""

MAX_CLOCK_ID: Final = 160
"""``DeadlineData.clock_id`` is at most this long; longer IDs are shortened with a hash."""
_END_OF_DAY: Final = time(23, 59, 59)


class Status(StrEnum):
    """Where a clock stands, as far as the log tells."""

    OPEN = "open"  # running (its due time may have passed; the breach is not logged yet)
    MET_ON_TIME = "met_on_time"
    MET_LATE = "met_late"
    BREACHED = "breached"  # DeadlineBreached is logged and the duty is not met (yet)
    PENDING_CALENDAR = "pending_calendar"  # the due time needs a calendar year nobody supplied


MET: Final = frozenset({Status.MET_ON_TIME, Status.MET_LATE})


class Unit(StrEnum):
    """What a clock's ``length`` counts."""

    WORKING_DAYS = "working_days"
    HOURS = "hours"
    PERIOD = "period"  # SUP-1: the clock runs to the end of a calendar year or quarter


class Action(StrEnum):
    """A derived event a clock is owed, named by its event type's last word."""

    STARTED = "started"
    PENDING_CALENDAR = "pending"
    WARNED = "warned"
    BREACHED = "breached"
    MET = "met"


ACTION_ORDER: Final = tuple(Action)
"""The order in which one clock's derived events are appended when several are owed at once."""


@dataclass(frozen=True)
class Ref:
    """An event by ID and log sequence, with the time the clock reads off it."""

    event_id: str
    sequence: int
    at: datetime

    def evidence(self) -> Evidence:
        return Evidence(event_id=self.event_id, sequence=self.sequence)


@dataclass(frozen=True)
class Leads:
    """How long before the end a clock warns (预警): configurable, stored with each clock.

    ``working_days``: working-day clocks warn at the end of the working day that leaves this many
    working days (3: the warning comes when only the last three working days are left).
    ``hours``: hour clocks warn this many clock hours before the end. ``period_days``: SUP-1's
    year and quarter clocks warn this many calendar days before the period ends. A lead as long
    as the clock itself warns at the start.
    """

    working_days: int = 3
    hours: int = 6
    period_days: int = 14


@dataclass
class Clock:
    """One deadline: a duty, its window, its outcome, and the derived events already logged."""

    clock_id: str
    rule_id: str
    case_id: str
    """The case the clock's derived events are appended to (SUP-1: a case of its own)."""
    department: str
    """The accountable department (责任单位) the clock is charged to."""
    subject: str | None
    """What the clock is about within the case: consultation ID, opinion ID, or period."""
    trigger: Ref
    started_at: datetime
    unit: Unit
    length: int
    needed: int = 1
    """PUB-3: distinct forms needed; 1 for every other clock."""
    rule_set: str | None = None
    due_at: datetime | None = None
    warn_at: datetime | None = None
    calendar: str | None = None
    """The calendar source(s) the due time was computed with."""
    missing_year: int | None = None
    status: Status = Status.OPEN
    met_by: Ref | None = None
    started_logged: bool = False
    pending_logged: bool = False
    warned: bool = False
    breached: bool = False
    met_logged: bool = False

    def owed(self) -> list[tuple[Action, datetime]]:
        """Every derived event the clock is owed and not yet logged, with the time it is owed
        at (its ``occurred_at``), in append order."""
        if self.status is Status.PENDING_CALENDAR:
            return [] if self.pending_logged else [(Action.PENDING_CALENDAR, self.started_at)]
        out: list[tuple[Action, datetime]] = []
        if not self.started_logged:
            out.append((Action.STARTED, self.started_at))
        met_at = self.met_by.at if self.met_by is not None else None
        met = self.status in MET
        # A warning is owed if the clock was still unmet at the warning time, a breach if it
        # was still unmet at the due time, whether or not the service was running then.
        unmet_at_warning = self.status is Status.OPEN or (
            met and met_at is not None and self.warn_at is not None and met_at > self.warn_at
        )
        if self.warn_at is not None and not self.warned and unmet_at_warning:
            out.append((Action.WARNED, self.warn_at))
        unmet_at_due = self.status is Status.OPEN or self.status is Status.MET_LATE
        if self.due_at is not None and not self.breached and unmet_at_due:
            out.append((Action.BREACHED, self.due_at))
        if met and not self.met_logged and met_at is not None:
            out.append((Action.MET, max(met_at, self.started_at)))
        return out

    def owed_by(self, now: datetime) -> list[Action]:
        """The derived events owed at or before ``now``, in append order."""
        return [action for action, at in self.owed() if at <= now]

    def next_action_at(self) -> datetime | None:
        """When the clock is next owed a derived event; None if it is owed nothing more (until
        a fact or a calendar year changes it)."""
        return min((at for _, at in self.owed()), default=None)

    def owed_at(self, action: Action) -> datetime:
        """The ``occurred_at`` of the derived event ``action`` of this clock."""
        if action is Action.WARNED and self.warn_at is not None:
            return self.warn_at
        if action is Action.BREACHED and self.due_at is not None:
            return self.due_at
        if action is Action.MET and self.met_by is not None:
            return max(self.met_by.at, self.started_at)
        return self.started_at


@dataclass
class CaseMemory:
    """What one case remembers for its clocks, folded from all its events in log order."""

    case_id: str
    department: str
    last_sequence: int = 0
    """The case's last event in the log: the optimistic lock of an append to the case."""
    scope: str | None = None
    issued: Ref | None = None
    website_text: Ref | None = None
    """PUB-2: the first text interpretation on the district website, before or after issue."""
    forms: list[tuple[str, Ref]] = field(default_factory=list)
    """PUB-3: each distinct form, with its first publication, in log order."""
    unit_answers: dict[str, Ref] = field(default_factory=dict)
    """QA-4: the drafting unit's first answer to each consultation, by consultation ID."""


_Put = Callable[["Clock"], "Clock"]
"""The callback :meth:`ClockKeeper.apply` hands its helpers to store a started or changed clock."""


# ── identifiers ───────────────────────────────────────────────────────────────────────────────


def _digest(text: str, size: int = 10) -> str:
    return hashlib.blake2b(text.encode(), digest_size=size).hexdigest()


def clock_id(rule_id: str, case_id: str, subject: str | None = None) -> str:
    """``PUB-2:<case>``, ``QA-4:<case>:<consultation>``, ``OP-4:<case>:<opinion>``; shortened
    with a hash of the full form when longer than ``DeadlineData.clock_id`` allows."""
    full = ":".join(p for p in (rule_id, case_id, subject) if p is not None)
    if len(full) <= MAX_CLOCK_ID:
        return full
    return f"{rule_id}:{case_id[:64]}:{_digest(full, 16)}"


def training_clock_id(year: int) -> str:
    return f"{SUP_1}:training:{year}"


def inspection_clock_id(year: int, quarter: int) -> str:
    return f"{SUP_1}:inspection:{year}Q{quarter}"


def period_duty(clock: str) -> tuple[str, str] | None:
    """``("training", "2026")`` or ``("inspection", "2026Q3")`` for a SUP-1 clock ID; None for
    every other clock.

    Why it matters: a SUP-1 clock is the government office's duty for a period, started by the
    period's first fact on *any* case. That trigger tells why the clock runs, but it is not
    evidence against the office (it is another case's fact), so a SUP-1 breach rests on the
    office's own case: the breach event that records the period ending with the duty unmet."""
    rule, _, rest = clock.partition(":")
    duty, _, period = rest.partition(":")
    if rule != SUP_1 or duty not in ("training", "inspection") or not period:
        return None
    return duty, period


def deadline_event_id(action: Action, clock: str) -> str:
    """Deterministic, subject-safe event ID of a clock's derived event, e.g.
    ``breached-PUB-2-4f1c…``: every instance computes the same one."""
    rule = clock.split(":", 1)[0]
    return f"{action}-{rule}-{_digest(clock)}"


# ── periods (SUP-1) ──────────────────────────────────────────────────────────────────────────


def _local_day(at: datetime) -> date:
    return at.astimezone(SHANGHAI).date()


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), SHANGHAI)


def _end_of(day: date) -> datetime:
    return datetime.combine(day, _END_OF_DAY, SHANGHAI)


def _quarter(day: date) -> int:
    return (day.month - 1) // 3 + 1


def _year_window(year: int) -> tuple[datetime, datetime]:
    return _midnight(date(year, 1, 1)), _end_of(date(year, 12, 31))


def _quarter_window(year: int, quarter: int) -> tuple[datetime, datetime]:
    first = date(year, 3 * quarter - 2, 1)
    after = date(year + 1, 1, 1) if quarter == 4 else date(year, 3 * quarter + 1, 1)
    return _midnight(first), _end_of(after - timedelta(days=1))


# ── the keeper ───────────────────────────────────────────────────────────────────────────────


class ClockKeeper:
    """Starts, stops and schedules clocks from events. Pure: give it the calendar and leads."""

    def __init__(self, calendar: WorkingDayCalendar, leads: Leads | None = None) -> None:
        self.calendar = calendar
        self.leads = leads or Leads()

    # -- which state an event needs ------------------------------------------------------

    def clock_ids(self, event: Event) -> tuple[str, ...]:
        """Every clock ``apply`` may start, stop or mark for this event (a projection loads
        these rows, plus the event's case, before applying it)."""
        ids: list[str] = []
        if _interpretation_work(event):
            day = _local_day(event.occurred_at)
            ids += [training_clock_id(day.year), inspection_clock_id(day.year, _quarter(day))]
        match event:
            case PolicyIssued() | MaterialPublished():
                ids += [clock_id(PUB_2, event.case_id), clock_id(PUB_3, event.case_id)]
            case ConsultationReferred(data=d) | ConsultationAnswered(data=d):
                ids.append(clock_id(QA_4, event.case_id, d.consultation_id))
            case OpinionDetected(data=d) | ResponseIssued(data=d):
                ids.append(clock_id(OP_4, event.case_id, d.opinion_id))
            case SuggestionAdopted(data=d) | SuggestionDeclined(data=d):
                ids.append(clock_id(OP_4, event.case_id, d.opinion_id))
            case TrainingHeld(data=d):
                ids.append(training_clock_id(d.held_on.year))
            case InspectionConducted(data=d):
                ids.append(inspection_clock_id(d.conducted_on.year, _quarter(d.conducted_on)))
            case (
                DeadlineStarted(data=d)
                | DeadlinePendingCalendar(data=d)
                | DeadlineWarned(data=d)
                | DeadlineBreached(data=d)
                | DeadlineMet(data=d)
            ):
                ids.append(d.clock_id)
            case _:
                pass
        return tuple(dict.fromkeys(ids))

    # -- folding ---------------------------------------------------------------------------

    def apply(
        self,
        event: Event,
        seq: int,
        case: CaseMemory | None,
        clocks: dict[str, Clock | None],
    ) -> tuple[CaseMemory, set[str]]:
        """Fold one event (at log sequence ``seq``) into its case's memory and the clocks
        named by :meth:`clock_ids` (``clocks`` holds those, None for the ones not started;
        started or changed clocks are written back into it). Returns the case memory and
        the IDs of the clocks that changed."""
        if case is None:
            case = CaseMemory(event.case_id, event.department)
        case.last_sequence = max(case.last_sequence, seq)
        here = Ref(event.event_id, seq, event.occurred_at)
        changed: set[str] = set()

        def put(clock: Clock) -> Clock:
            clocks[clock.clock_id] = clock
            changed.add(clock.clock_id)
            return clock

        if _interpretation_work(event):
            day = _local_day(event.occurred_at)
            self._period(clocks, put, here, "training", day.year, None)
            self._period(clocks, put, here, "inspection", day.year, _quarter(day))

        match event:
            case DraftSubmitted(data=d):
                if case.scope is None:
                    case.scope = str(d.scope)
            case PolicyIssued(data=d):
                if case.issued is None:
                    case.issued = here
                    self._issued(case, here, d.issue_date, clocks, put)
            case MaterialPublished(data=d):
                if (
                    d.form is Form.TEXT
                    and d.channel is Channel.GOVERNMENT_WEBSITE
                    and case.website_text is None
                ):
                    case.website_text = here
                if str(d.form) not in {form for form, _ in case.forms}:
                    case.forms.append((str(d.form), here))
                self._publications(case, clocks, put)
            case ConsultationReferred(data=d):
                key = clock_id(QA_4, case.case_id, d.consultation_id)
                if clocks.get(key) is None and (rules := _rules(event.occurred_at)):
                    clock = Clock(
                        key, QA_4, case.case_id, case.department, d.consultation_id, here,
                        started_at=event.occurred_at, unit=Unit.WORKING_DAYS,
                        length=rules.referral_working_days, rule_set=rules.name,
                    )
                    self.schedule(clock)
                    if (answer := case.unit_answers.get(d.consultation_id)) is not None:
                        self._meet(clock, answer)
                    put(clock)
            case ConsultationAnswered(data=d):
                if d.by_drafting_unit:
                    case.unit_answers.setdefault(d.consultation_id, here)
                    referred = clocks.get(clock_id(QA_4, case.case_id, d.consultation_id))
                    if referred is not None and self._meet(referred, here):
                        put(referred)
            case OpinionDetected(data=d):
                key = clock_id(OP_4, case.case_id, d.opinion_id)
                if clocks.get(key) is None and (rules := _rules(event.occurred_at)):
                    clock = Clock(
                        key, OP_4, case.case_id, case.department, d.opinion_id, here,
                        started_at=d.detected_at, unit=Unit.HOURS,
                        length=rules.opinion_response_hours[d.severity], rule_set=rules.name,
                    )
                    self.schedule(clock)
                    put(clock)
            case (
                ResponseIssued(data=d) | SuggestionAdopted(data=d) | SuggestionDeclined(data=d)
            ):
                detected = clocks.get(clock_id(OP_4, case.case_id, d.opinion_id))
                if detected is not None and self._meet(detected, here):
                    put(detected)
            case TrainingHeld(data=d):
                held = self._period(clocks, put, here, "training", d.held_on.year, None)
                if held is not None and self._meet(held, here):
                    put(held)
            case InspectionConducted(data=d):
                day = d.conducted_on
                done = self._period(clocks, put, here, "inspection", day.year, _quarter(day))
                if done is not None and self._meet(done, here):
                    put(done)
            case (
                DeadlineStarted(data=d)
                | DeadlinePendingCalendar(data=d)
                | DeadlineWarned(data=d)
                | DeadlineBreached(data=d)
                | DeadlineMet(data=d)
            ):
                logged = clocks.get(d.clock_id)
                if logged is not None:
                    self._logged(logged, event, d)
                    put(logged)
            case _:
                pass
        return case, changed

    # -- scheduling --------------------------------------------------------------------------

    def schedule(self, clock: Clock) -> bool:
        """Compute the due and warning times of a clock that has none (a new clock, or one
        pending its calendar); True if it now has a due time. An unknown calendar year leaves
        it ``pending_calendar``, naming the year."""
        if clock.due_at is not None:
            return True
        if clock.unit is Unit.HOURS:
            clock.due_at = clock.started_at + timedelta(hours=clock.length)
            clock.calendar = HOURS_CALENDAR
        elif clock.unit is Unit.WORKING_DAYS:
            try:
                due = self.calendar.compute_due(clock.started_at, clock.length)
            except UnknownYear as e:
                clock.missing_year = e.year
                clock.status = Status.PENDING_CALENDAR
                return False
            clock.due_at = due.due_at
            clock.calendar = "; ".join(due.sources)
        else:
            raise ValueError(f"{clock.clock_id}: a period clock is made with its due time")
        clock.missing_year = None
        clock.warn_at = self.warn_time(clock)
        self._settle(clock)
        return True

    def warn_time(self, clock: Clock) -> datetime | None:
        """When the clock warns, by the leads; None if there is no due time yet, or if the
        warning day lies in a year this keeper's calendar does not know."""
        due = clock.due_at
        if due is None:
            return None
        if clock.unit is Unit.HOURS:
            at = due - timedelta(hours=self.leads.hours)
        elif clock.unit is Unit.PERIOD:
            at = due - timedelta(days=self.leads.period_days)
        elif self.leads.working_days >= clock.length:
            at = clock.started_at
        else:
            try:
                day = self.calendar.subtract_working_days(_local_day(due), self.leads.working_days)
            except UnknownYear:
                return None
            at = _end_of(day)
        return max(at, clock.started_at)

    # -- internals -------------------------------------------------------------------------

    def _issued(
        self,
        case: CaseMemory,
        here: Ref,
        issue_date: date,
        clocks: Mapping[str, Clock | None],
        put: _Put,
    ) -> None:
        rules = _rules(here.at)
        if rules is None or case.scope is None or Scope(case.scope) not in rules.in_scope:
            return
        for rule, needed in ((PUB_2, 1), (PUB_3, rules.min_forms)):
            key = clock_id(rule, case.case_id)
            if clocks.get(key) is not None:
                continue
            clock = Clock(
                key, rule, case.case_id, case.department, None, here,
                started_at=_midnight(issue_date), unit=Unit.WORKING_DAYS,
                length=rules.publication_working_days, needed=needed, rule_set=rules.name,
            )
            self.schedule(clock)
            put(clock)
        self._publications(case, clocks, put)

    def _publications(
        self, case: CaseMemory, clocks: Mapping[str, Clock | None], put: _Put
    ) -> None:
        pub2 = clocks.get(clock_id(PUB_2, case.case_id))
        if pub2 is not None and case.website_text is not None and self._meet(
            pub2, case.website_text
        ):
            put(pub2)
        pub3 = clocks.get(clock_id(PUB_3, case.case_id))
        if (
            pub3 is not None
            and len(case.forms) >= pub3.needed
            and self._meet(pub3, case.forms[pub3.needed - 1][1])
        ):
            put(pub3)

    def _period(
        self,
        clocks: Mapping[str, Clock | None],
        put: _Put,
        here: Ref,
        duty: str,
        year: int,
        quarter: int | None,
    ) -> Clock | None:
        """The SUP-1 clock of one year (training) or quarter (inspection), started by ``here``
        if it has not been; None if no rule set covers the trigger."""
        key = training_clock_id(year) if quarter is None else inspection_clock_id(year, quarter)
        clock = clocks.get(key)
        if clock is not None:
            return clock
        rules = _rules(here.at)
        if rules is None:
            return None
        start, end = _year_window(year) if quarter is None else _quarter_window(year, quarter)
        period = str(year) if quarter is None else f"{year}Q{quarter}"
        clock = Clock(
            key, SUP_1, f"sup-1-{duty}-{period.lower()}", SUP_1_DEPARTMENT, period, here,
            started_at=start, unit=Unit.PERIOD, length=1, rule_set=rules.name, due_at=end,
            calendar=PERIOD_CALENDAR,
        )
        clock.warn_at = self.warn_time(clock)
        return put(clock)

    def _meet(self, clock: Clock, by: Ref) -> bool:
        """Record the first fact that meets the clock; False if one already did."""
        if clock.met_by is not None:
            return False
        clock.met_by = by
        self._settle(clock)
        return True

    def _logged(self, clock: Clock, event: Event, d: DeadlineData) -> None:
        """A derived event of this clock is in the log: note it; DeadlineStarted also fixes
        the due time and calendar (the log wins over this keeper's calendar)."""
        if isinstance(event, DeadlineStarted):
            clock.started_logged = True
            if d.due_at is not None and (d.due_at != clock.due_at or d.calendar != clock.calendar):
                clock.due_at, clock.calendar, clock.missing_year = d.due_at, d.calendar, None
                clock.warn_at = self.warn_time(clock)
                self._settle(clock)
        elif isinstance(event, DeadlinePendingCalendar):
            clock.pending_logged = True
        elif isinstance(event, DeadlineWarned):
            clock.warned = True
        elif isinstance(event, DeadlineBreached):
            clock.breached = True
            self._settle(clock)
        elif isinstance(event, DeadlineMet):
            clock.met_logged = True

    @staticmethod
    def _settle(clock: Clock) -> None:
        """The status that follows from due time, meeting fact and logged breach."""
        if clock.due_at is None:
            clock.status = Status.PENDING_CALENDAR
        elif clock.met_by is not None:
            in_time = clock.unit is Unit.PERIOD or clock.met_by.at <= clock.due_at
            clock.status = Status.MET_ON_TIME if in_time else Status.MET_LATE
        elif clock.breached:
            clock.status = Status.BREACHED
        else:
            clock.status = Status.OPEN


def _interpretation_work(event: Event) -> bool:
    """Whether ``event`` is an upstream fact of interpretation work, which starts the SUP-1
    clocks of its year and quarter (derived events and calendar confirmations do not)."""
    return event.type not in SYSTEM_TYPES and event.type not in CALENDAR_TYPES


def _rules(at: datetime) -> RuleSet | None:
    """The rule set in force at ``at``; None before the first one (no clock starts then)."""
    try:
        return ruleset_at(at)
    except NoRuleSet:
        return None


# ── derived events ───────────────────────────────────────────────────────────────────────────

DeadlineEvent = (
    DeadlineStarted | DeadlinePendingCalendar | DeadlineWarned | DeadlineBreached | DeadlineMet
)

_EVENT_TYPES: Final[dict[Action, type[DeadlineEvent]]] = {
    Action.STARTED: DeadlineStarted,
    Action.PENDING_CALENDAR: DeadlinePendingCalendar,
    Action.WARNED: DeadlineWarned,
    Action.BREACHED: DeadlineBreached,
    Action.MET: DeadlineMet,
}


def deadline_event(clock: Clock, action: Action) -> DeadlineEvent:
    """The derived event ``action`` of ``clock``: same clock, same event, on every instance
    and in every replay (its time is the clock's, not the wall clock's)."""
    cls = _EVENT_TYPES[action]
    met_by = clock.met_by.evidence() if action is Action.MET and clock.met_by else None
    return cls(
        event_id=deadline_event_id(action, clock.clock_id),
        case_id=clock.case_id,
        department=clock.department,
        actor=ACTOR,
        source_system=SOURCE_SYSTEM,
        occurred_at=clock.owed_at(action),
        correlation_id=clock.clock_id,
        causation_id=clock.trigger.event_id,
        data=DeadlineData(
            clock_id=clock.clock_id,
            rule_id=clock.rule_id,
            trigger=clock.trigger.evidence(),
            due_at=clock.due_at if action is not Action.PENDING_CALENDAR else None,
            calendar=clock.calendar,
            met_by=met_by,
        ),
    )


# ── folding a whole log in memory ────────────────────────────────────────────────────────────


def fold(
    keeper: ClockKeeper, events: Iterable[tuple[int, Event]]
) -> tuple[dict[str, CaseMemory], dict[str, Clock]]:
    """Every case memory and clock after ``events`` (with their log sequences, in order): the
    meaning of the clocks without any store, for tests and audits."""
    cases: dict[str, CaseMemory] = {}
    clocks: dict[str, Clock] = {}
    for seq, event in events:
        wanted: dict[str, Clock | None] = {k: clocks.get(k) for k in keeper.clock_ids(event)}
        case, changed = keeper.apply(event, seq, cases.get(event.case_id), wanted)
        cases[case.case_id] = case
        for key in changed:
            clock = wanted[key]
            assert clock is not None
            clocks[key] = clock
    return cases, clocks
