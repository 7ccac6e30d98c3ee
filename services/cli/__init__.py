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
from services import bootstrap
from services.adapters import logs
from services.adapters.config import Settings
from services.adapters.eventlog import EventLog
from services.adapters.identities import MissingIdentity
from services.app import (
    Parts,
    application,
    load_demo_as_sources,
    settle,
    settle_deadlines,
    summary,
)
from services.cli import audit, bench, cluster, creds, deadlines, incidents, read, report
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

def _settings(data_dir: Path | None) -> Settings:
    return Settings.from_env(data_dir=data_dir)


@app.command()
def up(
    data_dir: DataDir = None,
    with_demo: Annotated[bool, typer.Option("--demo", help="load a demo quarter")] = False,
    quarter: Annotated[str, typer.Option(help="the demo's quarter, e.g. 2026Q3")] = "2026Q3",
) -> None:
    """Start the whole system: its own nats-server (unless NATS_URL is set), the intake and
    every projection. Runs until Ctrl-C."""
    try:
        with bootstrap.owning(_settings(data_dir)) as own:
            settings = own.settings
            if own.adopted is not None:
                typer.echo(
                    f"adopted the nats-server already running on {settings.data_dir} (process "
                    f"{own.adopted}, left by an earlier run) at {settings.nats_url}; it stops "
                    "with this one", err=True,
                )
            typer.echo(f"NATS at {settings.nats_url}; read models in {settings.data_dir}", err=True)
            parts = Parts(settings)
            demo_quarter = quarter if with_demo else None
            asyncio.run(_run(application(settings, parts, demo_quarter=demo_quarter)))
    except bootstrap.DataDirBusy as e:
        fail(str(e))


@app.command()
def intake(data_dir: DataDir = None) -> None:
    """Run one intake instance against the configured server (several may run at once)."""
    settings = _settings(data_dir)
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
) -> None:
    """Load a demo quarter, wait until every projection has caught up, print a summary, exit.
    Later commands given the same --data-dir read that data."""
    with bootstrap.serving(_settings(data_dir)) as settings:
        done = asyncio.run(_demo(settings, quarter, seed))
    if as_json:
        print_json(done)
        return
    _print_tree(done)


def _print_tree(values: dict[str, Any], indent: str = "") -> None:
    """A nested summary as indented `key: value` lines."""
    for key, value in values.items():
        if isinstance(value, dict):
            typer.echo(f"{indent}{key}:")
            _print_tree(value, indent + "  ")
        else:
            typer.echo(f"{indent}{key}: {value}")


async def _demo(settings: Settings, quarter: str, seed: int) -> dict[str, object]:
    logs.configure(settings.log_level)
    parts = Parts(settings, deadlines=False)
    nc = await bootstrap.connect(settings.nats_url or "", "jiedu-demo")
    try:
        await parts.start(nc)
        sent = await load_demo_as_sources(settings, quarter, seed)
        assert parts.store is not None
        await settle(nc, parts.store)
        await settle_deadlines(parts)
        return {"quarter": quarter, "messages": sent, **await summary(nc, parts.store)}
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
    event_id: Annotated[str, typer.Argument(help="the event ID its source gave it")],
    as_json: Json = False,
    data_dir: DataDir = None,
) -> None:
    """The outcome of an intake message by its event ID: accepted at sequence N, or rejected
    with reason R (exit 0); exit 1 when none is recorded."""
    with bootstrap.serving(_settings(data_dir)) as settings:
        outcome = asyncio.run(_status(settings, event_id))
    if outcome is None:
        fail(f"no outcome recorded for {event_id}", code=1)
    print_outcome(outcome, as_json)


async def _status(settings: Settings, event_id: str) -> Outcome | None:
    async with bootstrap.parts(settings, "jiedu-status", ensure=False) as p:
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

    nc = await bootstrap.connect(bootstrap.nats_url(settings), "jiedu-tail")
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
cluster.register(app)


def main() -> None:
    logs.configure(Settings.from_env().log_level)
    bootstrap.tune_gc()
    try:
        app()
    except MissingIdentity as e:  # a party without credentials here: say so, no traceback
        typer.echo(str(e), err=True)
        raise SystemExit(2) from None

