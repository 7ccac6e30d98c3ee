"""`jiedu`: the command line. Thin: each command parses its arguments and calls the services."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer
from faststream import FastStream

from events import streams
from events.outcomes import Outcome
from services import bootstrap
from services.adapters import logs
from services.adapters.config import Settings
from services.app import Parts, application, load_demo, settle, settle_deadlines, summary
from services.cli import audit, bench, deadlines, read, report

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Jiedu 解读 — policy "
    "interpretation duties of Yuzhong District, kept on an immutable event log.",
)

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="where the embedded server and read models live")
]


def _settings(data_dir: Path | None) -> Settings:
    return Settings.from_env(data_dir=data_dir)


def _print_json(value: object) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


@app.command()
def up(
    data_dir: DataDir = None,
    with_demo: Annotated[bool, typer.Option("--demo", help="load a demo quarter")] = False,
    quarter: Annotated[str, typer.Option(help="the demo's quarter, e.g. 2026Q3")] = "2026Q3",
) -> None:
    """Start the whole system: its own nats-server (unless NATS_URL is set), the intake and
    every projection. Runs until Ctrl-C."""
    with bootstrap.serving(_settings(data_dir)) as settings:
        typer.echo(f"NATS at {settings.nats_url}; read models in {settings.data_dir}", err=True)
        parts = Parts(settings)
        asyncio.run(_run(application(settings, parts, demo_quarter=quarter if with_demo else None)))


@app.command()
def intake(data_dir: DataDir = None) -> None:
    """Run one intake instance against the configured server (several may run at once)."""
    settings = _settings(data_dir)
    asyncio.run(_run(application(settings, Parts(settings, projections=False))))


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
) -> None:
    """Load a demo quarter, wait until every projection has caught up, print a summary, exit.
    Later commands given the same --data-dir read that data."""
    with bootstrap.serving(_settings(data_dir)) as settings:
        _print_json(asyncio.run(_demo(settings, quarter, seed)))


async def _demo(settings: Settings, quarter: str, seed: int) -> dict[str, object]:
    logs.configure(settings.log_level)
    parts = Parts(settings, deadlines=False)
    nc = await bootstrap.connect(settings.nats_url or "", "jiedu-demo")
    try:
        await parts.start(nc)
        sent = await load_demo(nc, quarter, seed)
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
    data_dir: DataDir = None,
) -> None:
    """Publish one event as an upstream system would, and print its outcome."""
    body = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
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
        typer.echo(
            "give --source DEPARTMENT/SYSTEM and --case for a message without them", err=True
        )
        raise typer.Exit(2)
    with bootstrap.serving(_settings(data_dir)) as settings:
        outcome = asyncio.run(_emit(settings, body, department, system, case_id, timeout))
    if outcome is None:
        typer.echo("no outcome within the timeout (is the intake running?)", err=True)
        raise typer.Exit(2)
    _print_json(outcome.model_dump(mode="json", exclude_none=True))
    raise typer.Exit(0 if outcome.status != "rejected" else 1)


async def _emit(
    settings: Settings, body: bytes, department: str, system: str, case_id: str, timeout: float
) -> Outcome | None:
    nc = await bootstrap.connect(bootstrap.nats_url(settings), "jiedu-emit")
    try:
        answers = await nc.subscribe(streams.outcomes_subject(department, system))
        ack = await nc.jetstream().publish(
            streams.intake_subject(department, system, case_id), body
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (left := deadline - loop.time()) > 0:
            try:
                msg = await answers.next_msg(timeout=left)
            except TimeoutError:
                break
            for answer in orjson.loads(msg.data):
                if answer["intake_sequence"] == ack.seq:
                    return Outcome.model_validate(answer)
        return None
    finally:
        await nc.close()


@app.command()
def status(event_id: str, data_dir: DataDir = None) -> None:
    """The outcome of an intake message by its event ID: accepted at sequence N, or rejected."""
    with bootstrap.serving(_settings(data_dir)) as settings:
        outcome = asyncio.run(_status(settings, event_id))
    if outcome is None:
        typer.echo(f"no outcome recorded for {event_id}", err=True)
        raise typer.Exit(1)
    _print_json(outcome.model_dump(mode="json", exclude_none=True))


async def _status(settings: Settings, event_id: str) -> Outcome | None:
    async with bootstrap.parts(settings, "jiedu-status", ensure=False) as p:
        return await p.log.outcome(event_id)


@app.command()
def tail(
    from_start: Annotated[bool, typer.Option("--all", help="from the first event")] = False,
    follow: Annotated[bool, typer.Option(help="keep following new events")] = True,
    data_dir: DataDir = None,
) -> None:
    """Follow the log, one readable line per event."""
    with contextlib.suppress(KeyboardInterrupt), bootstrap.serving(_settings(data_dir)) as settings:
        asyncio.run(_tail(settings, from_start, follow))


async def _tail(settings: Settings, from_start: bool, follow: bool) -> None:
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
            e = orjson.loads(msg.data)
            typer.echo(
                f"{seq:>8}  {e.get('occurred_at', '?'):<25}  {e.get('department', '?'):<18} "
                f"{e.get('case_id', '?'):<20} {e.get('type', '?'):<28} {e.get('event_id', '?')}"
            )
            if not follow and seq >= head:
                break
    finally:
        await nc.close()


read.register(app)
deadlines.register(app)
audit.register(app)
report.register(app)
bench.register(app)


def main() -> None:
    logs.configure(Settings.from_env().log_level)
    bootstrap.tune_gc()
    app()

