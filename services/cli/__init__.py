"""`jiedu`: the command line. Thin: each command parses its arguments and calls the services."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from faststream import FastStream

from events import streams
from events.catalogue import Event
from events.codec import loads
from events.outcomes import Outcome
from services import bootstrap, doctor
from services.adapters import logs, permissions
from services.adapters.config import Settings
from services.adapters.eventlog import EventLog
from services.adapters.identities import MissingIdentity
from services.api.process import DEFAULT_HOST, DEFAULT_PORT, parse_address
from services.app import Parts, application, load_demo_showing
from services.cli import (
    api,
    audit,
    bench,
    cluster,
    creds,
    deadlines,
    incidents,
    privacy,
    qa,
    read,
    report,
    screen,
)
from services.cli.common import (
    DataDir,
    Json,
    fail,
    json_line,
    local_time,
    print_json,
    print_outcome,
    read_input,
)

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Jiedu 解读 — policy "
    "interpretation duties of Yuzhong District, kept on an immutable event log.",
)

LogFormat = Annotated[
    str | None,
    typer.Option(
        "--log-format",
        help="logs on standard error: json (every record), console (warnings and errors, for "
        "people) or auto (console on a terminal; the default, or JIEDU_LOG_FORMAT); the full "
        "JSON logs go to <data dir>/logs either way",
    ),
]


def _settings(data_dir: Path | None, log_format: str | None = None) -> Settings:
    settings = Settings.from_env(data_dir=data_dir, log_format=log_format)
    if settings.log_format not in logs.FORMATS:
        fail(f"--log-format {settings.log_format}: choose one of {', '.join(logs.FORMATS)}")
    return settings


@app.command()
def up(
    data_dir: DataDir = None,
    with_demo: Annotated[bool, typer.Option("--demo", help="load a demo quarter")] = False,
    quarter: Annotated[str, typer.Option(help="the demo's quarter, e.g. 2026Q3")] = "2026Q3",
    log_format: LogFormat = None,
    http: Annotated[
        str, typer.Option("--http", envvar="JIEDU_HTTP", help="serve the HTTP API at HOST:PORT")
    ] = f"{DEFAULT_HOST}:{DEFAULT_PORT}",
    no_http: Annotated[bool, typer.Option("--no-http", help="no HTTP API")] = False,
) -> None:
    """Start the whole system: its own nats-server (unless NATS_URL is set), the intake, every
    projection, the deadline service and the HTTP API; print what runs once it is ready, then
    stay quiet but for warnings and errors. Runs until Ctrl-C."""
    try:
        address = None if no_http else parse_address(http)
    except ValueError:
        fail(f"--http {http}: give HOST:PORT, e.g. 127.0.0.1:8080")
    try:
        with bootstrap.owning(_settings(data_dir, log_format)) as own:
            settings = own.settings
            logs.for_process(settings, "jiedu")
            if own.adopted is not None:
                typer.echo(
                    f"adopted the nats-server already running on {settings.data_dir} (process "
                    f"{own.adopted}, left by an earlier run) at {settings.nats_url}; it stops "
                    "with this one", err=True,
                )
            parts = Parts(settings, http=address)
            demo_quarter = quarter if with_demo else None
            shown = screen.Screen(settings, demo=with_demo)
            asyncio.run(
                _run(application(settings, parts, demo_quarter=demo_quarter, shown=shown))
            )
    except bootstrap.DataDirBusy as e:
        fail(str(e))


@app.command()
def intake(data_dir: DataDir = None, log_format: LogFormat = None) -> None:
    """Run one intake instance against the configured server (several may run at once)."""
    settings = _settings(data_dir, log_format)
    logs.configure(settings.log_level, fmt=settings.log_format)  # no file: several may run
    asyncio.run(_run(application(settings, Parts(settings, projections=False, administer=False))))


async def _run(faststream_app: FastStream) -> None:
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGTERM, faststream_app.exit)
    await faststream_app.run()


@app.command()
def demo(
    data_dir: DataDir = None,
    quarter: Annotated[str, typer.Option(help="the demo's quarter, e.g. 2026Q3")] = "2026Q3",
    seed: Annotated[int, typer.Option(help="the same seed gives the same quarter")] = 2026,
    as_json: Json = False,
    log_format: LogFormat = None,
) -> None:
    """Load a demo quarter, wait until every projection has caught up, print a summary, exit.
    Later commands given the same --data-dir read that data."""
    with bootstrap.serving(_settings(data_dir, log_format)) as settings:
        logs.for_process(settings, "demo")
        shown = None if as_json else screen.Screen(settings, banner=False)
        done = asyncio.run(_demo(settings, quarter, seed, shown))
    if as_json:
        print_json(done)
        return
    assert shown is not None
    shown.loaded(done)


async def _demo(
    settings: Settings, quarter: str, seed: int, shown: screen.Screen | None
) -> dict[str, Any]:
    """The demo loaded by this process's own intake, projector and (once the quarter has
    settled, so that no clock is judged on a log still catching up) deadline service."""
    parts = Parts(settings, deadlines=False, matcher=False, log_name="demo")
    nc = await bootstrap.connect(settings.nats_url or "", "jiedu-demo")
    try:
        await parts.start(nc)
        return await load_demo_showing(nc, parts, quarter, seed, shown=shown)
    finally:
        await parts.stop()
        await nc.drain()


@app.command()
def emit(
    file: Annotated[str, typer.Argument(help="a JSON event file, or - for standard input")],
    source: Annotated[
        str | None, typer.Option(help="DEPARTMENT/SYSTEM to publish as (default: the event's)")
    ] = None,
    case: Annotated[
        str | None, typer.Option(help="case ID for the subject (default: the event's)")
    ] = None,
    timeout: Annotated[
        float,
        typer.Option(
            help="seconds to wait for the outcome (an event whose case is missing waits longer "
            "than JIEDU_ACK_WAIT plus JIEDU_LEASE_TTL before it is refused)"
        ),
    ] = 90.0,
    as_json: Json = False,
    data_dir: DataDir = None,
) -> None:
    """Publish one event as an upstream system would, and print its outcome (exit 1 if it was
    rejected)."""
    body = read_input(file)
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError:
        raw = {}
    raw = raw if isinstance(raw, dict) else {}
    department, _, system = (source or "").partition("/")
    department = department or str(raw.get("department", ""))
    system = system or str(raw.get("source_system", ""))
    case_id = case or str(raw.get("case_id", ""))
    if not (department and system and case_id):
        fail("give --source DEPARTMENT/SYSTEM and --case for a message without them")
    try:
        streams.intake_subject(department, system, case_id)  # before anything is started
    except streams.SubjectTokenError as e:
        fail(str(e))
    with bootstrap.serving(_settings(data_dir)) as settings:
        outcome = asyncio.run(_emit(settings, body, department, system, case_id, timeout))
    if outcome is None:
        fail("no outcome within the timeout (is the intake running?)")
    print_outcome(outcome, as_json)
    raise typer.Exit(0 if outcome.status != "rejected" else 1)


async def _emit(
    settings: Settings, body: bytes, department: str, system: str, case_id: str, timeout: float
) -> Outcome | None:
    nc, _ = await bootstrap.Sources(settings).connection(department, system)
    try:
        return await EventLog(nc).submit(department, system, case_id, body, timeout)
    finally:
        await nc.close()


@app.command()
def status(
    event_id: Annotated[
        str | None,
        typer.Argument(help="the event ID its source gave it (none: how the system is)"),
    ] = None,
    as_json: Json = False,
    data_dir: DataDir = None,
) -> None:
    """Without an event ID: whether NATS, the streams, each projection, the deadline service,
    the calendar years and the office key are as they should be, each with what to do if not
    (exit 1 when something is wrong). With one: the outcome of that intake message, accepted at
    sequence N or rejected with reason R (exit 0); exit 1 when none is recorded."""
    if event_id is None:
        _health(_settings(data_dir), as_json)
        return
    with bootstrap.serving(_settings(data_dir)) as settings:
        outcome = asyncio.run(_status(settings, event_id))
    if outcome is None:
        fail(f"no outcome recorded for {event_id}", code=1)
    print_outcome(outcome, as_json)


MARK = {"ok": "ok", "warning": "warning", "wrong": "WRONG"}


def _health(settings: Settings, as_json: bool) -> None:
    """`jiedu status`: the checks of `services.doctor`, never starting a server to look."""
    checks = asyncio.run(doctor.examine(settings))
    wrong = [c for c in checks if c.status == "wrong"]
    if as_json:
        print_json({"ok": not wrong, "nats_url": bootstrap.nats_url(settings),
                    "data_dir": str(settings.data_dir), "checks": [c.as_dict() for c in checks]})
        raise typer.Exit(1 if wrong else 0)
    typer.echo(f"Jiedu on {settings.data_dir} at {bootstrap.nats_url(settings)}")
    width = max(len(c.name) for c in checks) + 2
    for c in checks:
        typer.echo(f"  {MARK[c.status]:<8}{c.name:<{width}}{c.detail}")
        if c.fix and c.status != "ok":
            typer.echo(f"  {'':<8}{'':<{width}}→ {c.fix}")
    warnings = sum(c.status == "warning" for c in checks)
    typer.echo(f"{len(wrong)} wrong, {warnings} warning{'s' if warnings != 1 else ''}."
               if wrong or warnings else "All is as it should be.")
    raise typer.Exit(1 if wrong else 0)


async def _status(settings: Settings, event_id: str) -> Outcome | None:
    async with bootstrap.parts(
        settings, "jiedu-status", party=permissions.AUDITOR, ensure=False
    ) as p:
        return await p.log.outcome(event_id)


@app.command()
def tail(
    from_start: Annotated[bool, typer.Option("--all", help="from the first event")] = False,
    follow: Annotated[bool, typer.Option(help="keep following new events")] = True,
    as_json: Annotated[
        bool, typer.Option("--json", help="JSON Lines: the log sequence and the event, each line")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Follow the log, one line per event: sequence, when it happened (Asia/Shanghai),
    department, case, type and event ID."""
    with contextlib.suppress(KeyboardInterrupt), bootstrap.serving(_settings(data_dir)) as settings:
        asyncio.run(_tail(settings, from_start, follow, as_json))


def tail_line(seq: int, event: Event) -> str:
    """One event as `jiedu tail` shows it to people."""
    return (
        f"{seq:>8}  {local_time(event.occurred_at):<25}  {event.department:<18} "
        f"{event.case_id:<20} {event.type:<28} {event.event_id}"
    )


async def _tail(settings: Settings, from_start: bool, follow: bool, as_json: bool) -> None:
    from nats.js.api import DeliverPolicy

    nc = await bootstrap.connect(
        bootstrap.nats_url(settings), "jiedu-tail", party=permissions.AUDITOR
    )
    js = nc.jetstream()
    head = (await js.stream_info(streams.EVENTS)).state.last_seq
    sub = await js.subscribe(
        streams.ALL_EVENTS,
        ordered_consumer=True,
        deliver_policy=DeliverPolicy.ALL if from_start else DeliverPolicy.NEW,
    )
    try:
        while True:
            if not follow and (not from_start or head == 0):
                break
            msg = await sub.next_msg(timeout=None)
            seq = msg.metadata.sequence.stream
            event = loads(msg.data)
            if as_json:
                line = json_line({"sequence": seq, "event": event.model_dump(exclude_none=True)})
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
            else:
                typer.echo(tail_line(seq, event))
            if not follow and seq >= head:
                break
    finally:
        await nc.close()


read.register(app)
deadlines.register(app)
audit.register(app)
report.register(app)
incidents.register(app)
creds.register(app)
bench.register(app)
api.register(app)
qa.register(app)
privacy.register(app)
cluster.register(app)


def main() -> None:
    settings = Settings.from_env()
    logs.configure(settings.log_level, fmt=settings.log_format if settings.log_format in
                   logs.FORMATS else "auto")
    bootstrap.tune_gc()
    try:
        app()
    except MissingIdentity as e:  # a party without credentials here: say so, no traceback
        typer.echo(str(e), err=True)
        raise SystemExit(2) from None

