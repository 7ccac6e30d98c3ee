"""`jiedu cases`, `jiedu findings`, `jiedu rebuild`, `jiedu lag`: reading the read models and
looking after them.

`register(app)` adds the commands to the `jiedu` typer app (`services.cli`). `cases` and
`findings` read only the store (SQLite under the data dir, or DATABASE_URL); `rebuild` and `lag`
also need the NATS server that holds the log.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import nats
import typer
from nats.aio.client import Client
from nats.errors import NoServersError
from nats.js.errors import NotFoundError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table as RichTable

from domain.calendar import SHANGHAI
from projections import ALL, Projection, by_name
from projections.base import Row
from projections.case_summary import CASES, STATUSES, CaseSummary
from projections.findings import FINDINGS, SEVERITIES, Findings, tally
from projections.findings import STATUSES as FINDING_STATUSES
from services import bootstrap
from services.adapters import permissions
from services.adapters.config import Settings
from services.cli.common import DataDir, Json, print_json
from services.projector import DEFAULT_BATCH, Lag, head, lags, rebuild, store_for


def register(app: typer.Typer) -> None:
    """Add `cases`, `findings`, `rebuild` and `lag` to the `jiedu` command line."""
    app.command("cases")(cases)
    app.command("findings")(findings)
    app.command("rebuild")(rebuild_command)
    app.command("lag")(lag)


def _settings(data_dir: Path | None) -> Settings:
    return Settings.from_env(data_dir=data_dir)


def cases(
    department: Annotated[
        str | None, typer.Option(help="accountable department code, e.g. drc")
    ] = None,
    status: Annotated[str | None, typer.Option(help=f"one of: {', '.join(STATUSES)}")] = None,
    scope: Annotated[
        str | None, typer.Option(help="normative, high_impact, designated or out_of_scope")
    ] = None,
    kind: Annotated[
        str | None,
        typer.Option(help="document, major_decision, implementation, training or inspection"),
    ] = None,
    limit: Annotated[int, typer.Option(help="at most this many cases")] = 500,
    as_json: Json = False,
    data_dir: DataDir = None,
) -> None:
    """The case summary (案件概览): one line per case, filtered, ordered by department and case."""
    if status is not None and status not in STATUSES:
        typer.echo(f"--status must be one of {', '.join(STATUSES)}", err=True)
        raise typer.Exit(2)
    store = store_for(_settings(data_dir))
    try:
        rows = store.select(
            CaseSummary(),
            CASES,
            {"department": department, "status": status, "scope": scope, "kind": kind},
            order_by=("department", "case_id"),
            limit=limit,
        )
    finally:
        store.close()
    if as_json:
        print_json(rows)
        return
    console = Console()
    wide = console.width >= 150
    columns: list[tuple[str, Callable[[Row], str], bool]] = [
        ("case", lambda r: r["case_id"], True),
        ("dept", lambda r: r["department"], True),
        ("kind", lambda r: r["kind"], wide),
        ("scope", lambda r: r["scope"] or "", wide),
        ("status", lambda r: r["status"], True),
        ("issued", lambda r: _date(r["issue_date"]), True),
        ("web text", lambda r: _date(r["first_website_text_on"]), True),
        ("materials", lambda r: f"{r['materials_published']}/{len(r['materials_by_form'])}f", wide),
        ("consult.", lambda r: str(r["consultations"]), wide),
        ("opinions", lambda r: str(r["opinions"]), wide),
        ("open findings", lambda r: _findings(r["open_finding_rules"] or {}), True),
    ]
    shown = [(h, get) for h, get, show in columns if show]
    cells = [[get(r) for _, get in shown] + [r["title"] or ""] for r in rows]
    table = RichTable(title=f"案件概览 · {len(rows)} case(s)", box=None, header_style="bold")
    for i, (header, _) in enumerate(shown):
        width = max([len(header), *(len(c[i]) for c in cells)])
        table.add_column(header, no_wrap=True, min_width=width)
    table.add_column("title", no_wrap=True, overflow="ellipsis")
    for c in cells:
        table.add_row(*c)
    console.print(table)


def _date(value: Any) -> str:
    return value.isoformat() if value is not None else ""


def _findings(open_rules: dict[str, str]) -> str:
    if not open_rules:
        return "0"
    return f"{len(open_rules)}: {', '.join(sorted(set(open_rules.values())))}"


MESSAGE_MIN = 24
"""Cells the Chinese message keeps, at least, in `jiedu findings`."""


def findings(
    department: Annotated[
        str | None, typer.Option(help="accountable department code, e.g. drc")
    ] = None,
    rule: Annotated[str | None, typer.Option(help="rule ID, e.g. REV-5")] = None,
    status: Annotated[
        str | None, typer.Option(help=f"one of: {', '.join(FINDING_STATUSES)}")
    ] = None,
    severity: Annotated[str | None, typer.Option(help=f"one of: {', '.join(SEVERITIES)}")] = None,
    case: Annotated[str | None, typer.Option(help="case ID")] = None,
    counts: Annotated[
        bool, typer.Option("--counts", help="counts by rule and status instead of the list")
    ] = False,
    by_department: Annotated[
        bool, typer.Option("--by-department", help="counts per department and rule")
    ] = False,
    limit: Annotated[int, typer.Option(help="at most this many findings (the list only)")] = 500,
    as_json: Json = False,
    data_dir: DataDir = None,
) -> None:
    """Findings (检查发现): rules of RULES.md a case broke, open or resolved, filtered, ordered by
    department, case and log position; `--counts` tallies them by rule and status instead."""
    for name, value, allowed in (
        ("status", status, FINDING_STATUSES), ("severity", severity, SEVERITIES)
    ):
        if value is not None and value not in allowed:
            typer.echo(f"--{name} must be one of {', '.join(allowed)}", err=True)
            raise typer.Exit(2)
    counts = counts or by_department
    where = {
        "department": department, "rule_id": rule.upper() if rule else None, "status": status,
        "severity": severity, "case_id": case,
    }
    store = store_for(_settings(data_dir))
    try:
        rows = store.select(
            Findings(), FINDINGS, where, order_by=("department", "case_id", "recorded_seq"),
            limit=None if counts else limit,
        )
    finally:
        store.close()
    if counts:
        _print_counts(tally(rows, by_department=by_department), as_json, by_department)
        return
    if as_json:
        print_json(rows)
        return
    columns: list[tuple[str, Callable[[Row], str], int]] = [  # header, cell, rank (1: always)
        ("case", lambda r: r["case_id"], 1),
        ("dept", lambda r: r["department"], 2),
        ("rule", lambda r: r["rule_id"], 1),
        ("severity", lambda r: r["severity"], 3),
        ("status", lambda r: r["status"], 1),
        ("recorded", lambda r: _local(r["recorded_at"]), 4),
        ("finding", lambda r: r["finding_id"], 6),
        ("resolved by", lambda r: r["resolved_by"] or "", 5),
    ]
    console = Console()
    cells = [[get(r) for _, get, _ in columns] for r in rows]
    widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, (h, _, _) in enumerate(columns)]
    # Rich drops whole columns of a no-wrap table wider than the console: choose them here, by
    # rank, and give the message what is left (each column takes 2 cells of padding too).
    room, shown = console.width - 2 - MESSAGE_MIN, set[int]()
    for rank in sorted({rank for _, _, rank in columns}):
        for i, (_, _, of) in enumerate(columns):
            if of == rank and (rank == 1 or widths[i] + 2 <= room):
                shown.add(i)
                room -= widths[i] + 2
    table = RichTable(title=f"检查发现 · {len(rows)} finding(s)", box=None, header_style="bold")
    for i in sorted(shown):
        table.add_column(columns[i][0], no_wrap=True, min_width=widths[i])
    table.add_column(
        "message", no_wrap=True, overflow="ellipsis", max_width=max(room + MESSAGE_MIN, 8)
    )
    for r, c in zip(rows, cells, strict=True):
        table.add_row(*(c[i] for i in sorted(shown)), r["message_zh"])
    console.print(table)


def _local(at: datetime | None) -> str:
    """A time as the district reads it (Asia/Shanghai), to the minute."""
    return f"{at.astimezone(SHANGHAI):%Y-%m-%d %H:%M}" if at is not None else ""


def _print_counts(groups: list[Row], as_json: bool, by_department: bool) -> None:
    if as_json:
        print_json(groups)
        return
    heads = (["dept"] if by_department else []) + ["rule", "open", "resolved", "total"]
    table = RichTable(title="检查发现统计 · findings", header_style="bold")
    for h in heads:
        table.add_column(h, justify="right" if h in ("open", "resolved", "total") else "left")
    numbers = ("open", "resolved", "total")
    for g in groups:
        table.add_row(
            *([g["department"]] if by_department else []), g["rule_id"],
            *(str(g[n]) for n in numbers),
        )
    table.add_section()
    table.add_row(
        *([""] if by_department else []), "all", *(str(sum(g[n] for g in groups)) for n in numbers)
    )
    Console().print(table)


def rebuild_command(
    projection: Annotated[
        str | None, typer.Argument(help=f"one of: {', '.join(p.name for p in ALL)} (default: all)")
    ] = None,
    batch: Annotated[int, typer.Option(help="events per transaction")] = DEFAULT_BATCH,
    keep_old: Annotated[bool, typer.Option(help="keep the replaced generation's tables")] = False,
    data_dir: DataDir = None,
) -> None:
    """Rebuild read models from the log into a new store generation while the current one keeps
    serving, then switch readers over."""
    try:
        chosen = [by_name(projection)] if projection else list(ALL)
    except KeyError as e:
        typer.echo(str(e.args[0]), err=True)
        raise typer.Exit(2) from None
    try:
        with bootstrap.serving(_settings(data_dir)) as settings:
            asyncio.run(_rebuild(settings, chosen, batch, keep_old))
    except NotFoundError:
        typer.echo("the log (stream EVENTS) does not exist yet: start `jiedu up` first", err=True)
        raise typer.Exit(2) from None


async def _quiet(error: Exception) -> None:
    """nats-py's default error callback logs each failed try with a traceback; we say it once."""


async def _connect(settings: Settings, name: str, party: str) -> Client:
    """A connection for one command as `party`: gives up after a few tries instead of waiting
    forever."""
    url = bootstrap.nats_url(settings)
    try:
        return await nats.connect(
            url, name=name, connect_timeout=3, max_reconnect_attempts=2, reconnect_time_wait=0.5,
            error_cb=_quiet, **bootstrap.identity(url, name, party=party, credentials=settings.credentials),
        )
    except (NoServersError, OSError):
        typer.echo(f"no NATS server at {url} (is `jiedu up` running?)", err=True)
        raise typer.Exit(2) from None


async def _rebuild(
    settings: Settings, chosen: list[Projection], batch: int, keep_old: bool
) -> None:
    store = await asyncio.to_thread(store_for, settings)
    nc = await _connect(settings, "jiedu-rebuild", permissions.PROJECTOR)
    try:
        js = nc.jetstream()
        for p in chosen:
            started = time.perf_counter()
            with Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TaskProgressColumn(), TimeRemainingColumn(), console=Console(stderr=True),
            ) as bar:
                task = bar.add_task(p.name, total=await head(js) or None)

                def advance(done: int, total: int, task: TaskID = task, bar: Progress = bar) -> None:
                    bar.update(task, completed=done, total=total)

                gen = await rebuild(js, store, p, batch=batch, keep_old=keep_old, progress=advance)
            seconds = time.perf_counter() - started
            position = await asyncio.to_thread(store.position, gen)
            typer.echo(
                f"{p.name}: {gen.name} is live at sequence {position} — {position} events in "
                f"{seconds:.1f} s ({position / max(seconds, 1e-9):,.0f} events/s)"
            )
    finally:
        await nc.close()
        await asyncio.to_thread(store.close)


def lag(as_json: Json = False, data_dir: DataDir = None) -> None:
    """How far each projection is behind the log (head minus position), per store generation."""
    try:
        with bootstrap.serving(_settings(data_dir)) as settings:
            found = asyncio.run(_lag(settings))
    except NotFoundError:
        typer.echo("the log (stream EVENTS) does not exist yet: start `jiedu up` first", err=True)
        raise typer.Exit(2) from None
    if as_json:
        print_json([x.as_dict() for x in found])
        return
    table = RichTable(title="projection lag")
    for header in ("projection", "generation", "version", "state", "position", "head", "lag",
                   "parked"):
        table.add_column(header, justify="right" if header in ("position", "head", "lag") else "left")
    for x in found:
        table.add_row(
            x.projection, x.generation or "-", str(x.version or "-"), x.state or "not started",
            str(x.position), str(x.head), str(x.lag),
            f"before incident {x.incident}" if x.incident else "",
        )
    Console().print(table)
    parked = sorted({x.incident for x in found if x.incident})
    if parked:
        typer.echo(
            f"parked before undecodable event(s) {parked}: see `jiedu incidents`", err=True
        )


async def _lag(settings: Settings) -> list[Lag]:
    store = await asyncio.to_thread(store_for, settings)
    nc = await _connect(settings, "jiedu-lag", permissions.AUDITOR)
    try:
        return await lags(nc.jetstream(), store)
    finally:
        await nc.close()
        await asyncio.to_thread(store.close)
