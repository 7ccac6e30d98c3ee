"""`jiedu calendar due|show|check` and `jiedu deadlines`: the working-day calendar and the clocks.

`register(app)` adds them to the `jiedu` typer app (`services.cli`). `calendar due|show|check`
need no server: they read the `chinesecalendar` package, the operator's calendar files
(`--calendar-dir`, default `$JIEDU_CALENDAR_DIR`, else `deploy/calendar/`; see
deploy/calendar/README.md) and the years confirmed in the log as the deadline read model holds
them. `calendar confirm` publishes a year to the intake. `deadlines` reads the deadline
service's read model (SQLite under the data dir, or DATABASE_URL).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table as RichTable

from domain.calendar import (
    CALENDAR_CASE_PREFIX,
    PACKAGE_SOURCE,
    SHANGHAI,
    CalendarError,
    UnknownYear,
    WorkingDayCalendar,
    confirmation,
    read_year_file,
)
from events.catalogue import CalendarYearConfirmed
from events.codec import encode
from events.envelope import Actor
from events.outcomes import Outcome
from projections.base import Row
from projections.deadlines import (
    CALENDAR_DIR_ENV,
    CALENDAR_YEARS,
    CLOCKS,
    STATUSES,
    Deadlines,
    calendar_dir,
    with_log_years,
)
from services import bootstrap
from services.adapters.config import Settings
from services.adapters.eventlog import EventLog
from services.adapters.readmodels import SQLITE_FILE
from services.cli.common import DataDir, Json, fail, local_time, print_json, print_outcome
from services.deadlines import CATEGORIES, MET_STATE, category
from services.projector import store_for

CalendarDir = Annotated[
    Path | None,
    typer.Option(
        "--calendar-dir",
        envvar=CALENDAR_DIR_ENV,
        help="operator calendar files (confirmed <year>.json); default: deploy/calendar/",
    ),
]


calendar_app = typer.Typer(
    no_args_is_help=True,
    help="The mainland-China working-day calendar (工作日历) the deadline clocks count with.",
)


def register(app: typer.Typer) -> None:
    """Add `calendar due|show|check` and `deadlines` to the `jiedu` command line."""
    app.add_typer(calendar_app, name="calendar")
    app.command("deadlines")(deadlines)


def _calendar(directory: Path | None, log_years: Iterable[Row] = ()) -> WorkingDayCalendar:
    """What the deadline service counts with: the package's years, the confirmed operator files
    in ``directory`` (default `deploy/calendar/`), and the years confirmed in the log."""
    try:
        loaded = WorkingDayCalendar.load(directory or calendar_dir())
    except CalendarError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(2) from None
    return with_log_years(loaded, log_years)


def _log_years(data_dir: Path | None) -> list[Row]:
    """The years confirmed in the log, as the deadline read model holds them ([] when this data
    directory has no read models yet)."""
    settings = Settings.from_env(data_dir=data_dir)
    if not settings.database_url and not (settings.data_dir / SQLITE_FILE).exists():
        return []
    store = store_for(settings)
    try:
        return store.select(Deadlines(), CALENDAR_YEARS)
    finally:
        store.close()


# ── calendar ─────────────────────────────────────────────────────────────────────────────────


def _start(text: str) -> datetime:
    """A day (YYYY-MM-DD, a Shanghai date) or an ISO time (naive: Shanghai time)."""
    try:
        return datetime.combine(date.fromisoformat(text), time(), SHANGHAI)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        typer.echo(f"START {text!r} is not a YYYY-MM-DD date or an ISO time", err=True)
        raise typer.Exit(2) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=SHANGHAI)


@calendar_app.command("due")
def calendar_due(
    start: Annotated[str, typer.Argument(help="the start day, YYYY-MM-DD (it does not count)")],
    n: Annotated[int, typer.Argument(help="working days, at least 1")],
    calendar_dir: CalendarDir = None,
    data_dir: DataDir = None,
    as_json: Json = False,
) -> None:
    """The N-th working day after START (Civil Code art. 201: the start day does not count); the
    deadline ends at 23:59:59 Asia/Shanghai that day. Exits 1 naming a year nobody supplied."""
    calendar = _calendar(calendar_dir, _log_years(data_dir))
    try:
        due = calendar.compute_due(_start(start), n)
    except UnknownYear as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(1) from None
    except ValueError as e:
        fail(str(e))
    except OverflowError:
        fail(f"{n} working days from {start} run past the dates the calendar can count")
    if as_json:
        print_json(
            {
                "start_day": due.start_day, "working_days": due.working_days, "due": due.due,
                "due_at": due.due_at, "sources": list(due.sources),
            }
        )
        return
    typer.echo(due.due.isoformat())


@calendar_app.command("show")
def calendar_show(
    year: Annotated[
        int | None, typer.Argument(help="a calendar year, e.g. 2027; none: list every year")
    ] = None,
    calendar_dir: CalendarDir = None,
    data_dir: DataDir = None,
    as_json: Json = False,
) -> None:
    """What the deadline clocks count with: a year's days off (放假) and make-up working days
    (调休上班) and where they come from — the package, an operator file (deploy/calendar/ by
    default), or a confirmation in the log (`jiedu calendar confirm`, as the read models under
    --data-dir hold it). Without YEAR, every year and its source."""
    log_years = _log_years(data_dir)
    calendar = _calendar(calendar_dir, log_years)
    in_log = {row["year"]: row for row in log_years}
    if year is None:
        years = [
            {"year": y, "source": calendar.source_of(y)}
            for y in sorted({*calendar.known_years(), *in_log})
        ]
        if as_json:
            print_json(years)
            return
        for item in years:
            typer.echo(f"{item['year']}  {item['source']}")
        return
    try:
        summary = calendar.year_summary(year)
    except UnknownYear as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(1) from None
    confirmed = in_log.get(year)
    log_entry = None if confirmed is None else {
        "event_id": confirmed["event_id"], "sequence": confirmed["sequence"],
        "confirmed_at": confirmed["confirmed_at"],
    }
    if as_json:
        print_json({**summary, "log": log_entry})
        return
    typer.echo(f"{year}: {summary['source']}")
    if log_entry is not None:
        typer.echo(f"confirmed in the log at sequence {log_entry['sequence']} "
                   f"({local_time(log_entry['confirmed_at'])})")
    if summary["notice"]:
        typer.echo(f"notice: {summary['notice']}")
    typer.echo(f"holidays ({len(summary['holidays'])}):")
    typer.echo(_wrap(summary["holidays"]))
    typer.echo(f"make-up working days ({len(summary['make_up_working_days'])}):")
    typer.echo(_wrap(summary["make_up_working_days"]) or "  (none)")


def _wrap(days: list[str], per_line: int = 7) -> str:
    return "\n".join(
        "  " + " ".join(days[i : i + per_line]) for i in range(0, len(days), per_line)
    )


@calendar_app.command("check")
def calendar_check(
    file: Annotated[Path, typer.Argument(help="an operator calendar file, e.g. 2027.json")],
) -> None:
    """Check an operator calendar file as loading would (draft or confirmed), and against the
    package for a year the package knows. Exits 1 listing every problem."""
    try:
        year_file = read_year_file(file)
    except CalendarError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(1) from None
    package = WorkingDayCalendar.load(None)
    if year_file.year in package.known_years():
        mine = year_file.to_year_calendar()
        differing = [d for d in mine.days() if package.is_working_day(d) != mine.is_working_day(d)]
        if differing:
            typer.echo(
                f"calendar file {file} disagrees with {PACKAGE_SOURCE} for {year_file.year} on "
                f"{len(differing)} day(s); it would be refused once confirmed:",
                err=True,
            )
            for d in differing:
                package_says = "working day" if package.is_working_day(d) else "day off"
                file_says = "working day" if mine.is_working_day(d) else "day off"
                typer.echo(f"  - {d.isoformat()} (package: {package_says}, file: {file_says})",
                           err=True)
            raise typer.Exit(1)
        agreement = f"; agrees with {PACKAGE_SOURCE}, which stays the source"
    else:
        agreement = ""
    counts = "counts" if year_file.status == "confirmed" else "is ignored until confirmed"
    typer.echo(
        f"ok: {file.name} — {year_file.year}, notice {year_file.notice}, "
        f"{len(year_file.holidays)} holiday(s), {len(year_file.make_up_working_days)} make-up "
        f"working day(s); status {year_file.status}: it {counts}{agreement}"
    )


@calendar_app.command("confirm")
def calendar_confirm(
    file: Annotated[Path, typer.Argument(help="a confirmed calendar file, e.g. 2027.json")],
    by: Annotated[str, typer.Option("--by", help="who confirms: recorded as the event's actor")],
    data_dir: DataDir = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the outcome")] = 30.0,
    as_json: Json = False,
) -> None:
    """Confirm a calendar year in the log: publish a checked, confirmed operator file as the
    government office's CalendarYearConfirmed. The running deadline service counts with it
    at once (clocks held pending the year are computed), and so does every later replay.
    A year is confirmed once. Exit 0 accepted, 1 refused (with the reason), 2 no answer."""
    try:
        event = confirmation(
            read_year_file(file),
            event_id=f"{CALENDAR_CASE_PREFIX}{uuid.uuid4().hex[:16]}",
            actor=Actor(id=by, name=by),
            at=datetime.now(UTC),
        )
    except CalendarError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(1) from None
    with bootstrap.serving(Settings.from_env(data_dir=data_dir)) as settings:
        outcome = asyncio.run(_submit(settings, event, timeout))
    if outcome is None:
        fail("no outcome within the timeout (is the intake running?)")
    print_outcome(outcome, as_json)
    if outcome.status == "rejected":
        if outcome.reason == "case_exists":
            typer.echo(f"{event.data.year} is confirmed in the log already "
                       f"(`jiedu calendar show {event.data.year}`)", err=True)
        raise typer.Exit(1)


async def _submit(settings: Settings, event: CalendarYearConfirmed, timeout: float) -> Outcome | None:
    # published as the government office's confirming system would, with its identity
    nc, _ = await bootstrap.Sources(settings).connection(event.department, event.source_system)
    try:
        return await EventLog(nc).submit(
            event.department, event.source_system, event.case_id, encode(event), timeout
        )
    finally:
        await nc.close()


# ── deadlines ────────────────────────────────────────────────────────────────────────────────


def _local(value: datetime | None) -> str:
    return value.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") if value else ""


def _left(row: Row, now: datetime) -> str:
    due: datetime | None = row["due_at"]
    if due is None:
        return f"needs {row['missing_year']}" if row["missing_year"] else ""
    delta = due - now
    sign = "" if delta >= timedelta(0) else "-"
    delta = abs(delta)
    days, hours = delta.days, delta.seconds // 3600
    return f"{sign}{days}d {hours}h" if days else f"{sign}{hours}h {delta.seconds // 60 % 60}m"


def deadlines(
    department: Annotated[
        str | None, typer.Option(help="accountable department code, e.g. drc")
    ] = None,
    status: Annotated[str | None, typer.Option(help=f"one of: {', '.join(STATUSES)}")] = None,
    rule: Annotated[str | None, typer.Option(help="PUB-2, PUB-3, QA-4, OP-4 or SUP-1")] = None,
    case: Annotated[str | None, typer.Option(help="only this case's clocks")] = None,
    show_all: Annotated[bool, typer.Option("--all", help="include clocks already met")] = False,
    summary: Annotated[
        bool, typer.Option("--summary", help="count clocks by rule and status instead")
    ] = False,
    at: Annotated[
        str | None, typer.Option("--at", help="judge upcoming/overdue as of this ISO time")
    ] = None,
    limit: Annotated[int, typer.Option(help="at most this many clocks")] = 1000,
    as_json: Json = False,
    data_dir: DataDir = None,
) -> None:
    """Deadline clocks by department: overdue, upcoming and pending-calendar ones (met ones with
    --all), from the deadline service's read model."""
    if status is not None and status not in STATUSES:
        typer.echo(f"--status must be one of {', '.join(STATUSES)}", err=True)
        raise typer.Exit(2)
    now = _start(at) if at else datetime.now(UTC)
    store = store_for(Settings.from_env(data_dir=data_dir))
    try:
        rows = store.select(
            Deadlines(), CLOCKS,
            {"department": department, "status": status, "rule_id": rule, "case_id": case},
            order_by=("department", "due_at", "clock_id"),
            limit=None if summary else limit,
        )
    finally:
        store.close()
    if summary:
        _summary(rows, as_json)
        return
    shown = [
        {**r, "category": c}
        for r in rows
        if (c := category(r, now)) != MET_STATE or show_all or status is not None
    ]
    if as_json:
        print_json(shown)
        return
    _table(shown, now)


def _summary(rows: list[Row], as_json: bool) -> None:
    counts: dict[str, dict[str, int]] = {}
    for r in rows:
        counts.setdefault(r["rule_id"], dict.fromkeys(STATUSES, 0))[r["status"]] += 1
    if as_json:
        print_json(dict(sorted(counts.items())))
        return
    table = RichTable(title=f"deadline clocks by rule and outcome · {len(rows)} clock(s)")
    table.add_column("rule")
    for s in STATUSES:
        table.add_column(s, justify="right")
    table.add_column("total", justify="right")
    for rule, by_status in sorted(counts.items()):
        table.add_row(rule, *(str(by_status[s]) for s in STATUSES), str(sum(by_status.values())))
    Console().print(table)


def _table(rows: list[dict[str, Any]], now: datetime) -> None:
    console = Console()
    wide = console.width >= 150
    by_category = Counter(r["category"] for r in rows)
    title = "期限 · " + ", ".join(f"{by_category[c]} {c}" for c in CATEGORIES if by_category[c])

    def state(r: dict[str, Any]) -> str:
        return str(r["category"] if r["category"] != MET_STATE else r["status"])

    def left(r: dict[str, Any]) -> str:
        return "" if r["category"] == MET_STATE else _left(r, now)

    columns: list[tuple[str, Any, bool]] = [
        ("dept", lambda r: r["department"], True),
        ("rule", lambda r: r["rule_id"], True),
        ("case", lambda r: r["case_id"], True),
        ("about", lambda r: r["subject"] or "", wide),
        ("state", state, True),
        ("started", lambda r: _local(r["started_at"]), wide),
        ("due (Shanghai)", lambda r: _local(r["due_at"]), True),
        ("left", left, True),
        ("warned", lambda r: "yes" if r["warned"] else "", wide),
        ("calendar", lambda r: r["calendar"] or "", wide),
    ]
    shown = [(header, get) for header, get, show in columns if show]
    table = RichTable(title=title if rows else "期限 · no clocks", box=None, header_style="bold")
    for header, _ in shown:
        table.add_column(header, no_wrap=header != "case", overflow="fold")
    for r in rows:
        table.add_row(*(str(get(r)) for _, get in shown))
    console.print(table)
    departments = Counter(r["department"] for r in rows)
    if len(departments) > 1:
        typer.echo(
            "by department: " + ", ".join(f"{d} {n}" for d, n in sorted(departments.items()))
        )
