"""Tests of the mainland-China working-day calendar (domain/calendar.py).

The deadline clocks PUB-2 (publication within 20 working days of issue) and QA-4 (referral
answered within 5 working days) count working days: weekends and public holidays (法定节假日)
off, make-up working days (调休) on, start day not counted (Civil Code art. 201), deadline at
23:59:59 Asia/Shanghai. Expected dates are taken from the State Council notices, not from the
code under test.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import chinese_calendar
import pytest
from hypothesis import given
from hypothesis import strategies as st

import factories as f
from domain.calendar import (
    SHANGHAI,
    CalendarConflict,
    CalendarFileError,
    UnknownYear,
    WorkingDayCalendar,
    check_confirmation,
    confirmation,
    confirmed_year,
    read_year_file,
)
from events.catalogue import CalendarYearConfirmed
from events.codec import decode
from events.envelope import Actor
from events.outcomes import Reason, Rejection

PACKAGE_SOURCE = f"chinesecalendar {chinese_calendar.__version__}"
EXAMPLE_FILE = Path(__file__).resolve().parents[2] / "deploy" / "calendar" / "2027.example.json"

# chinesecalendar 1.11.0 stops at 2026 (checked in test_package_really_does_not_know_2027).
MISSING_YEAR = 2027
NOTICE_2027 = "国办发明电〔2026〕X号"

PACKAGE_ONLY = WorkingDayCalendar.load(None)


def days(first: date, last: date) -> list[date]:
    """Every day from ``first`` to ``last``, both included."""
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def year_file(**overrides: Any) -> dict[str, Any]:
    """A valid confirmed 2027 file (invented dates), with ``overrides`` applied."""
    content: dict[str, Any] = {
        "year": 2027,
        "notice": NOTICE_2027,
        "status": "confirmed",
        "holidays": ["2027-01-01", "2027-01-02", "2027-01-03", "2027-10-01", "2027-10-04"],
        "make_up_working_days": ["2027-10-09"],
    }
    content.update(overrides)
    return content


def write(directory: Path, name: str, content: dict[str, Any] | str) -> Path:
    path = directory / name
    text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    path.write_text(text, encoding="utf-8")
    return path


def package_file_for(year: int, status: str = "confirmed") -> dict[str, Any]:
    """A file restating exactly what the package says about ``year``."""
    summary = PACKAGE_ONLY.year_summary(year)
    return {
        "year": year,
        "notice": "restated from the package",
        "status": status,
        "holidays": summary["holidays"],
        "make_up_working_days": summary["make_up_working_days"],
    }


# ------------------------------------------------------------------------------------------
# Built-in years: the real 2025 and 2026 notices
# ------------------------------------------------------------------------------------------


def test_national_day_mid_autumn_2025_days_off_and_make_up_days() -> None:
    """2025 notice: 10-01..10-08 off; Sunday 09-28 and Saturday 10-11 are working days."""
    for day in days(date(2025, 10, 1), date(2025, 10, 8)):
        assert not PACKAGE_ONLY.is_working_day(day), day
    assert PACKAGE_ONLY.is_working_day(date(2025, 9, 28))  # Sunday, 调休
    assert PACKAGE_ONLY.is_working_day(date(2025, 10, 11))  # Saturday, 调休
    assert PACKAGE_ONLY.is_working_day(date(2025, 9, 30))  # ordinary Tuesday
    assert PACKAGE_ONLY.is_working_day(date(2025, 10, 9))  # first day back
    assert not PACKAGE_ONLY.is_working_day(date(2025, 9, 27))  # ordinary Saturday
    assert not PACKAGE_ONLY.is_working_day(date(2025, 10, 12))  # ordinary Sunday


def test_spring_festival_2026_days_off_and_make_up_days() -> None:
    """2026 notice (国办发明电〔2025〕7号): 02-15..02-23 off; Saturdays 02-14, 02-28 work."""
    for day in days(date(2026, 2, 15), date(2026, 2, 23)):
        assert not PACKAGE_ONLY.is_working_day(day), day
    assert PACKAGE_ONLY.is_working_day(date(2026, 2, 14))
    assert PACKAGE_ONLY.is_working_day(date(2026, 2, 28))
    assert PACKAGE_ONLY.is_working_day(date(2026, 2, 13))  # Friday before
    assert PACKAGE_ONLY.is_working_day(date(2026, 2, 24))  # Tuesday after
    assert not PACKAGE_ONLY.is_working_day(date(2026, 3, 1))  # ordinary Sunday
    summary = PACKAGE_ONLY.year_summary(2026)
    assert {"2026-02-14", "2026-02-28"} <= set(summary["make_up_working_days"])
    assert {d.isoformat() for d in days(date(2026, 2, 15), date(2026, 2, 23))} <= set(
        summary["holidays"]
    )


def test_notice_reaching_into_previous_december_is_filed_under_the_day_s_own_year() -> None:
    """The 2019 notice made Saturday 2018-12-29 a working day and Monday 2018-12-31 a day off."""
    assert PACKAGE_ONLY.is_working_day(date(2018, 12, 29))
    assert not PACKAGE_ONLY.is_working_day(date(2018, 12, 31))
    assert "2018-12-29" in PACKAGE_ONLY.year_summary(2018)["make_up_working_days"]


def test_every_built_in_day_agrees_with_chinese_calendar_is_workday() -> None:
    for year in PACKAGE_ONLY.known_years():
        for day in days(date(year, 1, 1), date(year, 12, 31)):
            assert PACKAGE_ONLY.is_working_day(day) == chinese_calendar.is_workday(day), day


def test_package_years_and_source() -> None:
    assert PACKAGE_ONLY.known_years() == tuple(range(2004, 2027))
    assert PACKAGE_ONLY.source_of(2025) == PACKAGE_SOURCE
    summary = PACKAGE_ONLY.year_summary(2025)
    assert summary["source"] == PACKAGE_SOURCE
    assert summary["notice"] is None
    assert summary["make_up_working_days"] == [
        "2025-01-26",
        "2025-02-08",
        "2025-04-27",
        "2025-09-28",
        "2025-10-11",
    ]
    assert "2025-10-08" in summary["holidays"]


# ------------------------------------------------------------------------------------------
# Counting (PUB-2, QA-4)
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        pytest.param(date(2025, 9, 26), date(2025, 10, 30), id="2025-national-day"),
        pytest.param(date(2026, 9, 15), date(2026, 10, 19), id="2026-mid-autumn-national-day"),
    ],
)
def test_pub2_twenty_working_days_checked_examples(start: date, expected: date) -> None:
    """PUB-2: the two hand-checked examples of DESIGN.md "Working days"."""
    assert PACKAGE_ONLY.add_working_days(start, 20) == expected


def test_qa4_five_working_days_across_year_boundary() -> None:
    """QA-4: from Monday 2025-12-29: 12-30, 12-31, (01-01..03 off), Sunday 01-04 (调休),
    01-05, 01-06."""
    assert PACKAGE_ONLY.add_working_days(date(2025, 12, 29), 5) == date(2026, 1, 6)


def test_start_day_does_not_count_even_when_it_is_a_working_day() -> None:
    """Civil Code art. 201: Monday 2025-09-29 + 1 working day is Tuesday 09-30."""
    assert PACKAGE_ONLY.add_working_days(date(2025, 9, 29), 1) == date(2025, 9, 30)


def test_start_on_a_non_working_day_counts_from_the_next_working_day() -> None:
    """Saturday 2025-09-27 + 1 is Sunday 09-28 (调休), not Monday 09-29: chinesecalendar's
    own find_workday gives 09-29 here, which is why it is not used."""
    assert PACKAGE_ONLY.add_working_days(date(2025, 9, 27), 1) == date(2025, 9, 28)
    assert chinese_calendar.find_workday(1, date(2025, 9, 27)) == date(2025, 9, 29)


def test_subtract_working_days_for_warnings() -> None:
    """PUB-2 warning 3 working days before the 2025-10-30 deadline, and across holidays."""
    assert PACKAGE_ONLY.subtract_working_days(date(2025, 10, 30), 3) == date(2025, 10, 27)
    assert PACKAGE_ONLY.subtract_working_days(date(2025, 10, 9), 1) == date(2025, 9, 30)
    assert PACKAGE_ONLY.subtract_working_days(date(2025, 10, 12), 1) == date(2025, 10, 11)
    assert PACKAGE_ONLY.subtract_working_days(date(2025, 10, 30), 20) == date(2025, 9, 26)


def test_working_days_between_counts_after_a_up_to_and_including_b() -> None:
    assert PACKAGE_ONLY.working_days_between(date(2025, 9, 26), date(2025, 10, 30)) == 20
    assert PACKAGE_ONLY.working_days_between(date(2025, 10, 30), date(2025, 9, 26)) == -20
    assert PACKAGE_ONLY.working_days_between(date(2025, 10, 30), date(2025, 10, 30)) == 0
    assert PACKAGE_ONLY.working_days_between(date(2025, 9, 30), date(2025, 10, 8)) == 0
    assert PACKAGE_ONLY.working_days_between(date(2025, 9, 30), date(2025, 10, 9)) == 1


@pytest.mark.parametrize("n", [0, -1])
def test_fewer_than_one_working_day_is_refused(n: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        PACKAGE_ONLY.add_working_days(date(2025, 9, 26), n)
    with pytest.raises(ValueError, match="at least 1"):
        PACKAGE_ONLY.subtract_working_days(date(2025, 9, 26), n)


@given(
    start=st.dates(min_value=date(2004, 1, 15), max_value=date(2026, 6, 30)),
    n=st.integers(min_value=1, max_value=60),
)
def test_add_subtract_and_between_are_consistent(start: date, n: int) -> None:
    due = PACKAGE_ONLY.add_working_days(start, n)
    assert due > start
    assert PACKAGE_ONLY.is_working_day(due)
    assert PACKAGE_ONLY.working_days_between(start, due) == n
    back = PACKAGE_ONLY.subtract_working_days(due, n)
    # back is the last working day on or before start (2004-01-02 is a working day, so the
    # walk back from a start after mid-January 2004 never needs the unknown 2003)
    assert back <= start
    assert PACKAGE_ONLY.is_working_day(back)
    assert PACKAGE_ONLY.working_days_between(back, start) == 0


# ------------------------------------------------------------------------------------------
# Deadlines as moments: Asia/Shanghai
# ------------------------------------------------------------------------------------------


def test_pub2_due_at_is_end_of_day_asia_shanghai() -> None:
    """PUB-2: issued 2025-09-26 09:00 Shanghai -> due 2025-10-30 23:59:59 Shanghai."""
    due = PACKAGE_ONLY.compute_due(datetime(2025, 9, 26, 9, 0, tzinfo=SHANGHAI), 20)
    assert due.due == date(2025, 10, 30)
    assert due.due_at == datetime(2025, 10, 30, 23, 59, 59, tzinfo=SHANGHAI)
    assert due.due_at.astimezone(UTC) == datetime(2025, 10, 30, 15, 59, 59, tzinfo=UTC)
    assert due.due_at.tzinfo is SHANGHAI
    assert due.sources == (PACKAGE_SOURCE,)
    assert PACKAGE_ONLY.due_at(datetime(2025, 9, 26, 9, 0, tzinfo=SHANGHAI), 20) == due.due_at


def test_start_late_evening_utc_counts_from_the_shanghai_date() -> None:
    """2025-09-26T20:00Z is 2025-09-27 04:00 in Shanghai: the count starts after 09-27."""
    due = PACKAGE_ONLY.compute_due(datetime(2025, 9, 26, 20, 0, tzinfo=UTC), 20)
    assert due.start_day == date(2025, 9, 27)
    assert due.due == date(2025, 10, 30)


def test_shanghai_date_changes_the_result_when_utc_date_is_a_working_day() -> None:
    """QA-4: 2025-09-25T20:00Z is Friday 09-26 in Shanghai, so +1 working day is Sunday 09-28
    (调休); counting from the UTC date (Thursday 09-25) would wrongly give 09-26."""
    due = PACKAGE_ONLY.compute_due(datetime(2025, 9, 25, 20, 0, tzinfo=UTC), 1)
    assert due.start_day == date(2025, 9, 26)
    assert due.due == date(2025, 9, 28)


def test_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="time-zone aware"):
        PACKAGE_ONLY.compute_due(datetime(2025, 9, 26, 9, 0), 20)


# ------------------------------------------------------------------------------------------
# Unknown years are never guessed
# ------------------------------------------------------------------------------------------


def test_package_really_does_not_know_2027() -> None:
    """Precondition of the tests below; if it fails the package learned 2027: pick a new
    MISSING_YEAR."""
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(date(MISSING_YEAR, 1, 4))


def test_missing_year_raises_unknown_year_naming_it() -> None:
    with pytest.raises(UnknownYear, match="2027") as caught:
        PACKAGE_ONLY.is_working_day(date(MISSING_YEAR, 1, 4))
    assert caught.value.year == MISSING_YEAR
    for ask in (PACKAGE_ONLY.source_of, PACKAGE_ONLY.year_summary):
        with pytest.raises(UnknownYear):
            ask(MISSING_YEAR)
    assert MISSING_YEAR not in PACKAGE_ONLY.known_years()


def test_count_into_missing_year_raises_only_when_that_year_is_needed() -> None:
    """QA-4 from Monday 2026-12-28: 3 working days stay in 2026, 5 need 2027."""
    assert PACKAGE_ONLY.add_working_days(date(2026, 12, 28), 3) == date(2026, 12, 31)
    with pytest.raises(UnknownYear) as caught:
        PACKAGE_ONLY.add_working_days(date(2026, 12, 28), 5)
    assert caught.value.year == MISSING_YEAR


def test_confirmed_file_makes_missing_year_known(tmp_path: Path) -> None:
    write(tmp_path, "2027.json", year_file())
    calendar = WorkingDayCalendar.load(tmp_path)
    assert MISSING_YEAR in calendar.known_years()
    assert calendar.source_of(2027) == f"file:2027.json notice={NOTICE_2027}"
    assert not calendar.is_working_day(date(2027, 10, 1))  # listed holiday, Friday
    assert not calendar.is_working_day(date(2027, 10, 4))  # listed holiday, Monday
    assert calendar.is_working_day(date(2027, 10, 5))  # ordinary Tuesday
    assert calendar.is_working_day(date(2027, 10, 9))  # make-up Saturday
    assert not calendar.is_working_day(date(2027, 10, 10))  # ordinary Sunday
    summary = calendar.year_summary(2027)
    assert summary["notice"] == NOTICE_2027
    assert summary["make_up_working_days"] == ["2027-10-09"]


def test_qa4_sources_name_every_calendar_used_across_package_and_file(tmp_path: Path) -> None:
    """QA-4 from 2026-12-28: 12-29, 12-30, 12-31, (01-01..03 off in the file), 01-04, 01-05."""
    write(tmp_path, "2027.json", year_file())
    calendar = WorkingDayCalendar.load(tmp_path)
    due = calendar.compute_due(datetime(2026, 12, 28, 10, 0, tzinfo=SHANGHAI), 5)
    assert due.due == date(2027, 1, 5)
    assert due.sources == (PACKAGE_SOURCE, f"file:2027.json notice={NOTICE_2027}")


def test_draft_file_is_ignored(tmp_path: Path) -> None:
    write(tmp_path, "2027.json", year_file(status="draft"))
    calendar = WorkingDayCalendar.load(tmp_path)
    assert MISSING_YEAR not in calendar.known_years()
    with pytest.raises(UnknownYear):
        calendar.is_working_day(date(2027, 10, 1))


def test_example_files_are_never_loaded_even_if_confirmed(tmp_path: Path) -> None:
    write(tmp_path, "2027.example.json", year_file(status="confirmed"))
    assert MISSING_YEAR not in WorkingDayCalendar.load(tmp_path).known_years()


def test_shipped_example_file_is_a_valid_draft() -> None:
    example = read_year_file(EXAMPLE_FILE)
    assert example.status == "draft"
    assert example.year == MISSING_YEAR
    assert MISSING_YEAR not in WorkingDayCalendar.load(EXAMPLE_FILE.parent).known_years()


def test_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CalendarFileError, match="does not exist"):
        WorkingDayCalendar.load(tmp_path / "nowhere")


# ------------------------------------------------------------------------------------------
# Operator files refused
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(
            year_file(make_up_working_days=["2027-10-08"]),
            "make-up working day 2027-10-08 is a Friday",
            id="make-up-day-on-weekday",
        ),
        pytest.param(
            year_file(holidays=["2027-01-01", "2027-10-09"], make_up_working_days=["2027-10-09"]),
            "2027-10-09 is both a holiday and a make-up working day",
            id="holiday-and-make-up-day",
        ),
        pytest.param(
            year_file(holidays=["2026-12-31", "2027-01-01"]),
            "2026-12-31 is not in the file's year 2027",
            id="day-outside-year",
        ),
        pytest.param(
            year_file(status="final"),
            "status must be one of draft, confirmed, got 'final'",
            id="bad-status",
        ),
        pytest.param(
            year_file(status="Confirmed"),
            "status must be one of draft, confirmed",
            id="status-wrong-case",
        ),
        pytest.param(
            year_file(holidays=["2027-02-30"]),
            "'2027-02-30' is not a valid date",
            id="impossible-date",
        ),
        pytest.param(
            year_file(holidays=["2027/01/01"]),
            "'2027/01/01' is not a YYYY-MM-DD date",
            id="not-iso-date",
        ),
        pytest.param(
            year_file(holidays=["2027-01-01", "2027-01-01"]),
            "2027-01-01 is listed twice",
            id="duplicate-day",
        ),
        pytest.param(year_file(holidays=[]), "holidays is empty", id="empty-holidays"),
        pytest.param(year_file(year="2027"), "year must be an integer", id="year-as-text"),
        pytest.param(year_file(notice=" "), "notice must be", id="blank-notice"),
        pytest.param(
            {k: v for k, v in year_file().items() if k != "notice"},
            "missing keys: notice",
            id="missing-key",
        ),
        pytest.param(
            year_file(make_up_days=["2027-10-09"]),
            "unknown keys: make_up_days",
            id="misspelt-key",
        ),
        pytest.param('{"year": 2027,', "is not valid JSON", id="not-json"),
        pytest.param("[2027]", "must hold a JSON object", id="not-an-object"),
    ],
)
def test_bad_operator_file_is_refused(
    tmp_path: Path, content: dict[str, Any] | str, message: str
) -> None:
    path = write(tmp_path, "2027.json", content)
    with pytest.raises(CalendarFileError) as caught:
        WorkingDayCalendar.load(tmp_path)
    assert message in str(caught.value)
    assert caught.value.path == path
    assert not isinstance(caught.value, CalendarConflict)


def test_every_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    write(
        tmp_path,
        "2027.json",
        year_file(status="final", make_up_working_days=["2027-10-08"]),
    )
    with pytest.raises(CalendarFileError) as caught:
        WorkingDayCalendar.load(tmp_path)
    assert len(caught.value.problems) == 2


def test_bad_draft_is_refused_too(tmp_path: Path) -> None:
    write(tmp_path, "2027.json", year_file(status="draft", make_up_working_days=["2027-10-08"]))
    with pytest.raises(CalendarFileError, match="2027-10-08 is a Friday"):
        WorkingDayCalendar.load(tmp_path)


def test_two_confirmed_files_for_one_year_are_refused(tmp_path: Path) -> None:
    write(tmp_path, "2027.json", year_file())
    write(tmp_path, "2027-fixed.json", year_file())
    with pytest.raises(CalendarFileError, match="already confirmed for 2027"):
        WorkingDayCalendar.load(tmp_path)


def test_file_conflicting_with_package_lists_the_differing_days(tmp_path: Path) -> None:
    """A confirmed 2025 file that makes Wednesday 10-08 a working day and Sunday 10-12 a
    make-up day disagrees with the package on exactly those two days."""
    content = package_file_for(2025)
    content["holidays"].remove("2025-10-08")
    content["make_up_working_days"].append("2025-10-12")
    write(tmp_path, "2025.json", content)
    with pytest.raises(CalendarConflict) as caught:
        WorkingDayCalendar.load(tmp_path)
    assert caught.value.year == 2025
    assert caught.value.days == (date(2025, 10, 8), date(2025, 10, 12))
    message = str(caught.value)
    assert "2025-10-08 (package: day off, file: working day)" in message
    assert "2025-10-12 (package: day off, file: working day)" in message
    assert "2 day(s)" in message


def test_draft_conflicting_with_package_is_ignored(tmp_path: Path) -> None:
    content = package_file_for(2025, status="draft")
    content["holidays"].remove("2025-10-08")
    write(tmp_path, "2025.json", content)
    assert not WorkingDayCalendar.load(tmp_path).is_working_day(date(2025, 10, 8))


def test_file_agreeing_with_package_is_accepted_and_package_stays_the_source(
    tmp_path: Path,
) -> None:
    """Agreement is on working-day answers: leaving out a weekend day inside a holiday period
    (Saturday 2025-10-04) changes nothing and is not a conflict."""
    content = package_file_for(2025)
    content["holidays"].remove("2025-10-04")
    write(tmp_path, "2025.json", content)
    calendar = WorkingDayCalendar.load(tmp_path)
    assert calendar.source_of(2025) == PACKAGE_SOURCE
    assert calendar.add_working_days(date(2025, 9, 26), 20) == date(2025, 10, 30)


# ── years confirmed in the log (issue 13, defect 1) ──────────────────────────────────────────


def _confirmed(year: int = 2027, case_id: str | None = None, **data: Any) -> CalendarYearConfirmed:
    fields = {"year": year, "notice": "国办发明电〔2026〕X号", "holidays": ["2027-01-01"],
              "make_up_working_days": [], **data}
    event = decode(f.dumps(f.envelope(
        "CalendarYearConfirmed", case_id or f"calendar-{year}", "gov_office", **fields)))
    assert isinstance(event, CalendarYearConfirmed)
    return event


def _problems(event: CalendarYearConfirmed) -> str:
    with pytest.raises(Rejection) as caught:
        check_confirmation(event)
    assert caught.value.reason is Reason.INVALID_FIELD
    return caught.value.detail


def test_a_confirmation_is_checked_as_an_operator_file_is() -> None:
    check_confirmation(_confirmed(make_up_working_days=["2027-02-20"]))
    detail = _problems(_confirmed(
        holidays=["2027-01-01", "2027-01-01", "2026-12-31"],
        make_up_working_days=["2027-01-04", "2027-01-01"],
    ))
    for problem in ("2027-01-01 is listed twice", "2026-12-31 is not in the year 2027",
                    "2027-01-04 is a Monday", "both a holiday and a make-up working day"):
        assert problem in detail
    assert "opens case calendar-2027, not calendar-x" in _problems(_confirmed(case_id="calendar-x"))


def test_a_confirmation_of_a_package_year_must_agree_with_the_package() -> None:
    package = WorkingDayCalendar.load(None).year_summary(2026)
    check_confirmation(_confirmed(2026, holidays=package["holidays"],
                                  make_up_working_days=package["make_up_working_days"]))
    detail = _problems(_confirmed(2026, holidays=["2026-01-01"]))
    assert "disagrees with chinesecalendar" in detail and "2026-10-01" in detail


def test_years_from_the_log_come_after_the_package_and_before_files(tmp_path: Path) -> None:
    write(tmp_path, "2027.json", year_file(holidays=["2027-01-01"]))
    files = WorkingDayCalendar.load(tmp_path)
    log = confirmed_year(2027, [date(2027, 1, 1), date(2027, 1, 4)], [], event_id="cal-1",
                         notice="国办发明电〔2026〕Y号")
    asked: list[int] = []

    def in_log(year: int) -> Any:
        asked.append(year)
        return log if year == 2027 else None

    calendar = files.with_log(in_log)
    assert calendar.source_of(2027) == "log:cal-1 notice=国办发明电〔2026〕Y号"
    assert not calendar.is_working_day(date(2027, 1, 4))  # the log's day off, not the file's
    assert files.is_working_day(date(2027, 1, 4))  # the calendar it was made from is unchanged
    assert calendar.source_of(2026) == files.source_of(2026)  # the package's year stands
    with pytest.raises(UnknownYear):
        calendar.is_working_day(date(2028, 1, 3))
    assert calendar.add_working_days(date(2026, 12, 31), 1) == date(2027, 1, 5)
    assert asked == [2027, 2028]  # each year asked for once


def test_a_draft_file_cannot_be_confirmed(tmp_path: Path) -> None:
    path = write(tmp_path, "2027.json", year_file(status="draft"))
    with pytest.raises(CalendarFileError) as caught:
        confirmation(read_year_file(path), event_id="cal-1", actor=Actor(id="u"),
                     at=datetime.now(UTC))
    assert "second person" in str(caught.value)
