"""Mainland-China working-day calendar (工作日历) for deadline clocks.

What: answers "is this day a working day?" and "which day is the N-th working day after this
one?" for the deadline clocks of RULES.md ("Deadlines in one place"): publication PUB-2
(20 working days after 印发之日) and consultation referral QA-4 (5 working days).

Why a module of its own: the official calendar is not "Monday to Friday". Each November the
State Council's General Office (国务院办公厅) publishes next year's notice (放假安排通知):
public holidays (法定节假日) take weekdays off, and make-up working days (调休上班日) turn some
Saturdays and Sundays into working days. A deadline computed with the wrong calendar is a
wrong finding against a drafting unit, so this module

* takes built-in years (2004-2026) from the ``chinesecalendar`` package,
* takes the years the government office confirmed in the log (CalendarYearConfirmed, the one
  act that reaches the running system and every replay: :meth:`WorkingDayCalendar.with_log`),
  checked on arrival as operator files are (:func:`check_confirmation`),
* lets operators add a year (or restate one) as a JSON file holding the notice's dates and
  its number (文号); only files with ``"status": "confirmed"`` count, and only in the process
  that reads them (``jiedu calendar confirm FILE`` puts a file's year into the log),
* never guesses: a day in a year no confirmed source covers raises :class:`UnknownYear`, so
  the caller can hold the deadline as "pending calendar" and raise an alert,
* reports which source decided each year (:meth:`WorkingDayCalendar.source_of`), so every
  deadline can record the calendar it was computed with and a replay gives the same answer.

Counting follows Civil Code art. 201 (民法典第二百零一条): the start day does not count; the
deadline is the end (23:59:59 Asia/Shanghai) of the N-th working day after it.

Everything here is pure and synchronous apart from :func:`read_year_file` and
:meth:`WorkingDayCalendar.load`, which read operator files once at start-up.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Final, Literal, TypedDict
from zoneinfo import ZoneInfo

import chinese_calendar

from events.catalogue import CalendarYearConfirmed, CalendarYearConfirmedData
from events.envelope import Actor
from events.outcomes import Reason, Rejection

__all__ = [
    "CALENDAR_CASE_PREFIX",
    "CONFIRMING_OFFICE",
    "CONFIRMING_SYSTEM",
    "SHANGHAI",
    "CalendarConflict",
    "CalendarError",
    "CalendarFileError",
    "Due",
    "UnknownYear",
    "WorkingDayCalendar",
    "YearCalendar",
    "YearFile",
    "YearSummary",
    "calendar_case_id",
    "check_confirmation",
    "confirmation",
    "confirmed_year",
    "day_problems",
    "log_source",
    "read_year_file",
]

SHANGHAI: Final = ZoneInfo("Asia/Shanghai")
"""Deadlines end at local midnight in mainland China, whatever the server's own time zone."""

END_OF_DAY: Final = time(23, 59, 59)
"""A deadline day ends at 23:59:59 local time (the whole day is still in time)."""

PACKAGE_SOURCE: Final = f"chinesecalendar {version('chinesecalendar')}"
"""Source label of the built-in years, with the package version that supplied the data."""

EXAMPLE_SUFFIX: Final = ".example.json"
"""Operator files ending in this suffix are documentation, never loaded."""

Status = Literal["draft", "confirmed"]

_STATUSES: Final[tuple[Status, ...]] = ("draft", "confirmed")
_REQUIRED_KEYS: Final = frozenset({"year", "notice", "status", "holidays", "make_up_working_days"})
_OPTIONAL_KEYS: Final = frozenset({"comment"})
_ISO_DAY: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
_SATURDAY: Final = 5
_WEEKDAY_NAMES: Final = (
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
)


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class CalendarError(Exception):
    """Base class of every error this module raises on purpose."""


class UnknownYear(CalendarError):
    """A day was asked about in a year that no confirmed source covers.

    Why an exception and not a fallback to "Monday to Friday": the State Council's notice
    moves working days around (调休), so any guess may be wrong by several days. The caller
    holds the deadline as "pending calendar" and alerts an operator, who confirms the year's
    notice in the log (CalendarYearConfirmed).
    """

    def __init__(self, year: int) -> None:
        self.year = year
        super().__init__(
            f"no confirmed working-day calendar for {year}: confirm the State Council's "
            f"holiday notice (放假安排通知) for {year} in the log with `jiedu calendar "
            f"confirm {year}.json` (see deploy/calendar/README.md)"
        )


class CalendarFileError(CalendarError):
    """An operator calendar file was refused; ``problems`` lists every reason found."""

    def __init__(self, path: Path, problems: Iterable[str]) -> None:
        self.path = path
        self.problems = tuple(problems)
        listed = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"calendar file {path} refused:\n{listed}")


class CalendarConflict(CalendarFileError):
    """A confirmed file disagrees with the package for a year both describe.

    Why refused rather than preferred: two sources that disagree about the same official
    notice mean one of them is wrong, and a silent choice would change deadlines without
    anybody noticing. ``days`` holds every day on which the two give a different answer.
    """

    def __init__(self, path: Path, year: int, problems: Iterable[str], days: Iterable[date]):
        self.year = year
        self.days = tuple(days)
        super().__init__(path, problems)


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class YearCalendar:
    """One calendar year's official days off and make-up working days, and where they came from.

    ``holidays`` are the days off of the public holidays (法定节假日 and the weekdays shifted
    into them); listing weekend days that fall inside a holiday period is allowed and changes
    nothing. ``make_up_working_days`` are Saturdays or Sundays that are working days (调休).
    """

    year: int
    holidays: frozenset[date]
    make_up_working_days: frozenset[date]
    source: str
    notice: str | None = None

    def is_working_day(self, day: date) -> bool:
        """Tell whether ``day`` (which must lie in this year) is a working day."""
        if day.year != self.year:
            raise ValueError(f"{day.isoformat()} is not in {self.year}")
        if day in self.make_up_working_days:
            return True
        return day.weekday() < _SATURDAY and day not in self.holidays

    def days(self) -> Iterator[date]:
        """Every day of the year, in order."""
        day = date(self.year, 1, 1)
        while day.year == self.year:
            yield day
            day += timedelta(days=1)


@dataclass(frozen=True, slots=True)
class YearFile:
    """An operator calendar file that passed every check of :func:`read_year_file`."""

    path: Path
    year: int
    notice: str
    status: Status
    holidays: frozenset[date]
    make_up_working_days: frozenset[date]
    comment: str | None = None

    @property
    def source(self) -> str:
        """Source label recorded with deadlines: file name and the notice's number (文号)."""
        return f"file:{self.path.name} notice={self.notice}"

    def to_year_calendar(self) -> YearCalendar:
        """The file's days as a :class:`YearCalendar`, labelled with :attr:`source`."""
        return YearCalendar(
            year=self.year,
            holidays=self.holidays,
            make_up_working_days=self.make_up_working_days,
            source=self.source,
            notice=self.notice,
        )


@dataclass(frozen=True, slots=True)
class Due:
    """A working-day deadline and the calendar sources it was computed with.

    ``start_day`` is the Asia/Shanghai date the count starts after (it does not count itself);
    ``due`` is the ``working_days``-th working day after it and ``due_at`` that day's last
    second. ``sources`` lists, in order and without repeats, the source of every year the count
    looked at, so the deadline can be recorded with the calendar that produced it.
    """

    start_day: date
    working_days: int
    due: date
    due_at: datetime
    sources: tuple[str, ...]


class YearSummary(TypedDict):
    """What ``calendar show YEAR`` prints: the year's days (ISO dates) and their source."""

    year: int
    source: str
    notice: str | None
    holidays: list[str]
    make_up_working_days: list[str]


# --------------------------------------------------------------------------------------------
# Operator files
# --------------------------------------------------------------------------------------------


def read_year_file(path: Path) -> YearFile:
    """Read and check one operator calendar file, draft or confirmed.

    The file is a JSON object::

        {"year": 2027, "notice": "国办发明电〔2026〕X号", "status": "draft",
         "holidays": ["2027-01-01", ...], "make_up_working_days": ["2027-02-07", ...],
         "comment": "optional free text"}

    Checked, all problems reported together in one :class:`CalendarFileError`: the keys are
    exactly these (a misspelt key would otherwise drop its days silently), ``year`` is an
    integer, ``notice`` is non-empty, ``status`` is ``draft`` or ``confirmed``, the day lists
    hold ``YYYY-MM-DD`` strings without repeats, every day lies in ``year``, ``holidays`` is
    not empty, every make-up working day (调休上班日) is a Saturday or Sunday, and no day is
    both a holiday and a make-up working day.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CalendarFileError(path, [f"cannot be read as UTF-8 text: {exc}"]) from exc
    try:
        raw: object = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CalendarFileError(path, [f"is not valid JSON: {exc}"]) from exc
    if not isinstance(raw, dict):
        raise CalendarFileError(path, ["must hold a JSON object"])

    problems: list[str] = []
    keys = set(raw)
    if missing := sorted(_REQUIRED_KEYS - keys):
        problems.append(f"missing keys: {', '.join(missing)}")
    if unknown := sorted(keys - _REQUIRED_KEYS - _OPTIONAL_KEYS):
        allowed = ", ".join(sorted(_REQUIRED_KEYS | _OPTIONAL_KEYS))
        problems.append(f"unknown keys: {', '.join(unknown)} (allowed: {allowed})")

    year = raw.get("year")
    if "year" in raw and (not isinstance(year, int) or isinstance(year, bool)):
        problems.append(f"year must be an integer, got {year!r}")
        year = None

    notice = raw.get("notice")
    if "notice" in raw and (not isinstance(notice, str) or not notice.strip()):
        problems.append(f"notice must be the notice's number (文号) as text, got {notice!r}")

    status = raw.get("status")
    if "status" in raw and status not in _STATUSES:
        problems.append(f"status must be one of {', '.join(_STATUSES)}, got {status!r}")

    holidays = _read_days(raw, "holidays", problems)
    make_up = _read_days(raw, "make_up_working_days", problems)
    if raw.get("holidays") == []:
        problems.append("holidays is empty: every year's notice has public holidays")
    problems += day_problems(year, holidays, make_up, where="the file's year")

    comment = raw.get("comment")
    if "comment" in raw and not isinstance(comment, str):
        problems.append(f"comment must be text, got {comment!r}")

    if problems:
        raise CalendarFileError(path, problems)
    # Every value was checked above; the asserts only tell the type checker so.
    assert isinstance(year, int) and isinstance(notice, str)
    assert status == "draft" or status == "confirmed"
    assert comment is None or isinstance(comment, str)
    return YearFile(
        path=path,
        year=year,
        notice=notice.strip(),
        status=status,
        holidays=frozenset(holidays),
        make_up_working_days=frozenset(make_up),
        comment=comment,
    )


def _read_days(raw: dict[str, object], key: str, problems: list[str]) -> list[date]:
    """Parse the list ``raw[key]`` of ISO days, appending every problem found to ``problems``."""
    if key not in raw:
        return []
    value = raw[key]
    if not isinstance(value, list):
        problems.append(f"{key} must be a list of YYYY-MM-DD dates, got {value!r}")
        return []
    days: list[date] = []
    for item in value:
        if not isinstance(item, str) or not _ISO_DAY.fullmatch(item):
            problems.append(f"{key}: {item!r} is not a YYYY-MM-DD date")
            continue
        try:
            days.append(date.fromisoformat(item))
        except ValueError:
            problems.append(f"{key}: {item!r} is not a valid date")
    return days


def day_problems(
    year: int | None,
    holidays: Sequence[date],
    make_up_working_days: Sequence[date],
    *,
    where: str = "the year",
) -> list[str]:
    """Every problem with a year's days, as an operator file or a confirmation in the log gives
    them: a day listed twice or outside ``year``, a make-up working day (调休) that is not a
    Saturday or Sunday, a day that is both a holiday and a make-up working day."""
    problems: list[str] = []
    for key, days in (("holidays", holidays), ("make_up_working_days", make_up_working_days)):
        seen: set[date] = set()
        for day in days:
            if day in seen:
                problems.append(f"{key}: {day.isoformat()} is listed twice")
            elif year is not None and day.year != year:
                problems.append(f"{key}: {day.isoformat()} is not in {where} {year}")
            seen.add(day)
    for day in sorted(set(make_up_working_days)):
        if day.weekday() < _SATURDAY:
            problems.append(
                f"make-up working day {day.isoformat()} is a {_WEEKDAY_NAMES[day.weekday()]}: "
                "make-up working days (调休) are Saturdays or Sundays"
            )
    for day in sorted(set(holidays) & set(make_up_working_days)):
        problems.append(f"{day.isoformat()} is both a holiday and a make-up working day")
    return problems


# --------------------------------------------------------------------------------------------
# Package data
# --------------------------------------------------------------------------------------------


def _package_years() -> dict[int, YearCalendar]:
    """The years ``chinesecalendar`` knows, grouped by the calendar year of each day.

    The package keeps two flat dicts, ``holidays`` and ``workdays`` (make-up working days),
    keyed by date, and refuses any year outside ``min(holidays).year .. max(holidays).year``.
    A notice can reach into the previous December (e.g. the 2019 notice made 2018-12-29 a
    make-up working day); grouping by the day's own year keeps such days where they belong.
    """
    holidays: dict[date, str] = chinese_calendar.holidays
    make_up: dict[date, str] = chinese_calendar.workdays
    first, last = min(holidays).year, max(holidays).year
    return {
        year: YearCalendar(
            year=year,
            holidays=frozenset(day for day in holidays if day.year == year),
            make_up_working_days=frozenset(day for day in make_up if day.year == year),
            source=PACKAGE_SOURCE,
        )
        for year in range(first, last + 1)
    }


def _disagreements(package: YearCalendar, file: YearCalendar) -> list[date]:
    """Days of the year on which the two calendars give a different working-day answer."""
    return [
        day for day in package.days() if package.is_working_day(day) != file.is_working_day(day)
    ]


def _describe(working: bool) -> str:
    return "working day" if working else "day off"


# --------------------------------------------------------------------------------------------
# Years confirmed in the log
# --------------------------------------------------------------------------------------------

LogYears = Callable[[int], "YearCalendar | None"]
"""The years confirmed in the log, by year: what a calendar consults for a year it lacks."""

CALENDAR_CASE_PREFIX: Final = "calendar-"


def calendar_case_id(year: int) -> str:
    """The case a year's confirmation opens (``calendar-2027``): one confirmation per year."""
    return f"{CALENDAR_CASE_PREFIX}{year}"


def log_source(event_id: str, notice: str) -> str:
    """Source label of a year confirmed in the log, recorded with every deadline it computes."""
    return f"log:{event_id} notice={notice}"


def confirmed_year(
    year: int,
    holidays: Iterable[date],
    make_up_working_days: Iterable[date],
    *,
    event_id: str,
    notice: str,
) -> YearCalendar:
    """A year as the log's CalendarYearConfirmed gives it."""
    return YearCalendar(
        year=year,
        holidays=frozenset(holidays),
        make_up_working_days=frozenset(make_up_working_days),
        source=log_source(event_id, notice),
        notice=notice,
    )


CONFIRMING_OFFICE: Final = "gov_office"
"""区政府办公室 confirms calendar years (it alone may: `domain.authorisation`)."""
CONFIRMING_SYSTEM: Final = "jiedu-calendar"
"""``source_system`` of the confirmations ``jiedu calendar confirm`` publishes."""


def confirmation(
    year_file: YearFile, *, event_id: str, actor: Actor, at: datetime
) -> CalendarYearConfirmed:
    """The CalendarYearConfirmed that puts a checked, confirmed operator file into the log."""
    if year_file.status != "confirmed":
        raise CalendarFileError(
            year_file.path,
            ["status is draft: have a second person check the dates against the notice, then "
             'set "status": "confirmed"'],
        )
    return CalendarYearConfirmed(
        event_id=event_id,
        case_id=calendar_case_id(year_file.year),
        department=CONFIRMING_OFFICE,
        actor=actor,
        source_system=CONFIRMING_SYSTEM,
        occurred_at=at,
        data=CalendarYearConfirmedData(
            year=year_file.year,
            notice=year_file.notice,
            holidays=tuple(sorted(year_file.holidays)),
            make_up_working_days=tuple(sorted(year_file.make_up_working_days)),
            comment=year_file.comment,
        ),
    )


def check_confirmation(event: CalendarYearConfirmed) -> None:
    """Raise `Rejection` (``invalid_field``, every problem listed) unless ``event`` may confirm
    its year: on the year's own case, with the days an operator file must have (see
    :func:`read_year_file`), and, for a year the package knows, the same working days."""
    d = event.data
    problems = day_problems(d.year, d.holidays, d.make_up_working_days)
    if event.case_id != calendar_case_id(d.year):
        problems.insert(0, f"a confirmation of {d.year} opens case {calendar_case_id(d.year)}, "
                           f"not {event.case_id}")
    package = _package().get(d.year)
    if not problems and package is not None:
        mine = confirmed_year(
            d.year, d.holidays, d.make_up_working_days, event_id=event.event_id, notice=d.notice
        )
        if differing := _disagreements(package, mine):
            problems.append(
                f"disagrees with {PACKAGE_SOURCE} for {d.year} on {len(differing)} day(s): "
                + ", ".join(day.isoformat() for day in differing)
            )
    if problems:
        raise Rejection(Reason.INVALID_FIELD, "; ".join(problems))


@cache
def _package() -> dict[int, YearCalendar]:
    return _package_years()


# --------------------------------------------------------------------------------------------
# The calendar
# --------------------------------------------------------------------------------------------


class WorkingDayCalendar:
    """Working days of mainland China: weekdays that are not public holidays, plus 调休 days.

    Immutable once built. Every question about a day in a year without a confirmed source
    raises :class:`UnknownYear`; nothing is guessed.
    """

    def __init__(self, years: Iterable[YearCalendar]) -> None:
        """Build from one :class:`YearCalendar` per year (use :meth:`load` in production)."""
        by_year: dict[int, YearCalendar] = {}
        for year_calendar in years:
            if year_calendar.year in by_year:
                raise ValueError(f"two calendars given for {year_calendar.year}")
            by_year[year_calendar.year] = year_calendar
        self._years: Final = by_year
        self._log: LogYears | None = None
        self._from_log: dict[int, YearCalendar | None] = {}

    def with_log(self, log_years: LogYears) -> WorkingDayCalendar:
        """This calendar plus the years confirmed in the log, which ``log_years`` returns by
        year (None: not confirmed). Asked once per year, only for a year the package does not
        hold: the package's years stand (a confirmation in the log agrees with them, the
        intake saw to that); a year in the log overrides an operator file, because the log
        is what every replay reads. Cheap: the years already loaded are shared."""
        other = copy.copy(self)
        other._log, other._from_log = log_years, {}
        return other

    @classmethod
    def load(cls, directory: Path | None) -> WorkingDayCalendar:
        """The package's years plus the confirmed operator files in ``directory``.

        ``directory=None`` means the package alone. Every ``*.json`` file is read and checked
        (drafts too, so a mistake shows when the file is written, not when it is confirmed);
        ``*.example.json`` files are documentation and skipped. Draft files then count for
        nothing. A confirmed file for a year without package data adds that year. A confirmed
        file for a year the package knows must agree with it on every day, otherwise
        :class:`CalendarConflict` names the differing days; when it agrees the year keeps the
        package as its source. Two confirmed files for one year are refused.
        """
        years = dict(_package())
        if directory is None:
            return cls(years.values())
        if not directory.is_dir():
            raise CalendarFileError(directory, ["calendar directory does not exist"])
        confirmed: dict[int, YearFile] = {}
        for path in sorted(directory.glob("*.json")):
            if path.name.endswith(EXAMPLE_SUFFIX):
                continue
            year_file = read_year_file(path)
            if year_file.status != "confirmed":
                continue
            if (earlier := confirmed.get(year_file.year)) is not None:
                raise CalendarFileError(
                    path, [f"{earlier.path.name} is already confirmed for {year_file.year}"]
                )
            confirmed[year_file.year] = year_file
        for year, year_file in confirmed.items():
            from_file = year_file.to_year_calendar()
            package = years.get(year)
            if package is None:
                years[year] = from_file
                continue
            differing = _disagreements(package, from_file)
            if differing:
                raise CalendarConflict(
                    year_file.path,
                    year,
                    [
                        f"disagrees with {PACKAGE_SOURCE} for {year} on {len(differing)} "
                        "day(s): "
                        + ", ".join(
                            f"{day.isoformat()} (package: "
                            f"{_describe(package.is_working_day(day))}, file: "
                            f"{_describe(from_file.is_working_day(day))})"
                            for day in differing
                        )
                    ],
                    differing,
                )
        return cls(years.values())

    # -- what is known ---------------------------------------------------------------------

    def known_years(self) -> tuple[int, ...]:
        """Every year with a confirmed source, ascending."""
        return tuple(sorted(self._years))

    def source_of(self, year: int) -> str:
        """The source that decides ``year``, e.g. ``chinesecalendar 1.11.0`` or
        ``file:2027.json notice=国办发明电〔2026〕X号``; raises :class:`UnknownYear`."""
        return self._year(year).source

    def year_summary(self, year: int) -> YearSummary:
        """Holidays, make-up working days, source and notice of ``year`` (for ``calendar show``)."""
        year_calendar = self._year(year)
        return YearSummary(
            year=year,
            source=year_calendar.source,
            notice=year_calendar.notice,
            holidays=[day.isoformat() for day in sorted(year_calendar.holidays)],
            make_up_working_days=[
                day.isoformat() for day in sorted(year_calendar.make_up_working_days)
            ],
        )

    # -- days ------------------------------------------------------------------------------

    def is_working_day(self, day: date) -> bool:
        """Whether ``day`` is a working day; raises :class:`UnknownYear` for an unknown year."""
        return self._year(day.year).is_working_day(day)

    def add_working_days(self, start: date, n: int) -> date:
        """The ``n``-th working day after ``start`` (``start`` itself never counts, Civil Code
        art. 201). ``n`` must be at least 1. Example: 2025-09-26 + 20 = 2025-10-30."""
        return self._walk(start, n, forward=True)[0]

    def subtract_working_days(self, day: date, n: int) -> date:
        """The ``n``-th working day before ``day`` (``day`` itself never counts), e.g. the day
        on which to warn "3 working days left". ``n`` must be at least 1."""
        return self._walk(day, n, forward=False)[0]

    def working_days_between(self, a: date, b: date) -> int:
        """Working days after ``a`` up to and including ``b``; negative when ``b`` < ``a``.

        The same convention as :meth:`add_working_days`, so
        ``working_days_between(a, add_working_days(a, n)) == n``; with ``a`` = today and
        ``b`` = the due day it is the number of working days left.
        """
        if b < a:
            return -self.working_days_between(b, a)
        count = 0
        day = a
        while day < b:
            day += timedelta(days=1)
            if self.is_working_day(day):
                count += 1
        return count

    # -- deadlines -------------------------------------------------------------------------

    def compute_due(self, start: datetime, n: int) -> Due:
        """The deadline ``n`` working days after the moment ``start``, with its sources.

        ``start`` must be time-zone aware; it is converted to Asia/Shanghai to find the day
        the count starts after (an event at 2025-09-26T20:00Z happened on 2025-09-27 in
        Shanghai). The deadline is 23:59:59 Asia/Shanghai on the ``n``-th working day.
        """
        if start.tzinfo is None or start.utcoffset() is None:
            raise ValueError(f"start must be time-zone aware, got naive {start.isoformat()}")
        start_day = start.astimezone(SHANGHAI).date()
        due, sources = self._walk(start_day, n, forward=True)
        return Due(
            start_day=start_day,
            working_days=n,
            due=due,
            due_at=datetime.combine(due, END_OF_DAY, tzinfo=SHANGHAI),
            sources=sources,
        )

    def due_at(self, start: datetime, n: int) -> datetime:
        """Shorthand for ``compute_due(start, n).due_at``."""
        return self.compute_due(start, n).due_at

    # -- internals -------------------------------------------------------------------------

    def _year(self, year: int) -> YearCalendar:
        loaded = self._years.get(year)
        if loaded is not None and loaded.source == PACKAGE_SOURCE:
            return loaded
        if self._log is not None:
            if year not in self._from_log:
                self._from_log[year] = self._log(year)
            if (confirmed := self._from_log[year]) is not None:
                return confirmed
        if loaded is None:
            raise UnknownYear(year)
        return loaded

    def _walk(self, start: date, n: int, *, forward: bool) -> tuple[date, tuple[str, ...]]:
        """Step day by day from ``start`` until ``n`` working days are passed; also return the
        sources of the years looked at, in order of first use."""
        if n < 1:
            raise ValueError(f"the number of working days must be at least 1, got {n}")
        step = timedelta(days=1 if forward else -1)
        sources: list[str] = []
        day = start
        found = 0
        while found < n:
            day += step
            year_calendar = self._year(day.year)
            if year_calendar.source not in sources:
                sources.append(year_calendar.source)
            if year_calendar.is_working_day(day):
                found += 1
        return day, tuple(sources)
