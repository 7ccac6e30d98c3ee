"""`jiedu incidents`: undecodable events the projections met, and the operator's decision on
them (事故处理). A projection never skips an event by itself: it parks before it, and only
`jiedu incidents skip SEQ --reason …` lets it go on, recording who decided, when and why."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer

from services.adapters.config import Settings
from services.adapters.readmodels import Incident
from services.projector import store_for

incidents = typer.Typer(
    help="Undecodable events in the log, where the projections stand, and skipping one.",
    invoke_without_command=True,
)

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="where the embedded server and read models live")
]


def register(app: typer.Typer) -> None:
    app.add_typer(incidents, name="incidents")


def _found(settings: Settings) -> list[Incident]:
    store = store_for(settings)
    try:
        return store.incidents()
    finally:
        store.close()


@incidents.callback()
def list_incidents(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="as JSON, raw bytes in base64")] = False,
    data_dir: DataDir = None,
) -> None:
    """Every incident: its sequence, subject, why it is no event, its raw bytes and whether an
    operator has skipped it. Exit 1 while one is open (the projections are parked)."""
    if ctx.invoked_subcommand is not None:
        return
    found = _found(Settings.from_env(data_dir=data_dir))
    if as_json:
        sys.stdout.write(orjson.dumps([i.as_dict() for i in found], option=orjson.OPT_INDENT_2)
                         .decode() + "\n")
    elif not found:
        typer.echo("no incidents")
    for i in found if not as_json else []:
        decided = (
            "OPEN: projections parked before it" if i.open
            else f"skipped {i.skipped_at} by {i.skipped_by}: {i.reason}"
        )
        typer.echo(f"{i.sequence:>8}  {i.subject}  {decided}\n          {i.error}\n"
                   f"          raw: {i.raw[:200]!r}")
    if any(i.open for i in found):
        raise typer.Exit(1)


@incidents.command("skip")
def skip(
    sequence: Annotated[int, typer.Argument(help="the incident's sequence in EVENTS")],
    reason: Annotated[str, typer.Option(help="why the projections may go on without it")],
    by: Annotated[str | None, typer.Option(help="who decides (default: your login)")] = None,
    data_dir: DataDir = None,
) -> None:
    """Let the projections go on past an undecodable event: an operator's act, recorded with
    the incident (who, when, why); `jiedu audit verify` still lists it."""
    store = store_for(Settings.from_env(data_dir=data_dir))
    try:
        done = store.skip_incident(sequence, by=by or getpass.getuser(), reason=reason)
    except (KeyError, ValueError) as e:
        typer.echo(str(e.args[0]), err=True)
        raise typer.Exit(1) from None
    finally:
        store.close()
    typer.echo(f"incident {done.sequence} skipped by {done.skipped_by} at {done.skipped_at}")


