"""What every `jiedu` command shares: its options, its one JSON form, and how it refuses.

A command refuses bad input with one line on standard error and exit status 2 (`fail`), never a
traceback; exit 1 is kept for a negative answer (a rejected event, a divergence, no such event).

JSON (`print_json`, behind every `--json`; `services.adapters.jsonform`, which the HTTP API
shares): one document, UTF-8, indented by two spaces, keys
in the order of the record; times ISO 8601 as the district reads them, in Asia/Shanghai with
the offset written out (`2026-07-06T09:30:00+08:00`); days `YYYY-MM-DD`; absent values `null`.
A command that streams (`jiedu tail --json`) writes the same form one compact object a line.
Exports meant for comparison (`jiedu audit export`, `jiedu replay`) keep their canonical form
(UTC, sorted keys), and signed values (a checkpoint's `signed_at`) are shown as signed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from events.outcomes import Outcome
from services.adapters.jsonform import compact, json_bytes
from services.adapters.jsonform import local_time as local_time

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="where the embedded server and read models live")
]
Json = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]


def fail(message: str, code: int = 2) -> NoReturn:
    """Refuse: one line on standard error, then exit (2: the command was given bad input)."""
    typer.echo(message, err=True)
    raise typer.Exit(code)


def print_json(value: object) -> None:
    sys.stdout.write(json_bytes(value).decode() + "\n")


def json_line(value: object) -> str:
    """`value` in the same form on one line, for a stream of them (JSON Lines: `jiedu tail`)."""
    return compact(value).decode()


def out_dir(path: Path, option: str = "--out") -> Path:
    """`path` as a directory a command may write into, made if missing; refuses a file, a
    path below a file, or a directory it cannot write."""
    if path.exists() and not path.is_dir():
        fail(f"{option} {path} is a file, not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        fail(f"{option} {path}: cannot make the directory ({e.strerror or e})")
    if not os.access(path, os.W_OK | os.X_OK):
        fail(f"{option} {path}: the directory is not writable")
    return path


def read_input(path: str, option: str = "FILE") -> bytes:
    """The bytes of a file named on the command line, `-` for standard input."""
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as e:
        fail(f"{option} {path}: cannot read it ({e.strerror or e})")


def print_outcome(outcome: Outcome, as_json: bool) -> None:
    """What became of a message Jiedu was sent: one line for people, or its JSON."""
    if as_json:
        print_json(outcome.model_dump(exclude_none=True))
        return
    at = local_time(outcome.at)
    if outcome.status == "rejected":
        typer.echo(f"{outcome.event_id or '-'}: rejected, {outcome.reason}: {outcome.detail} "
                   f"(intake sequence {outcome.intake_sequence}, {at})")
        return
    first = " first" if outcome.status == "duplicate" else ""
    typer.echo(f"{outcome.event_id}: {outcome.status}, case {outcome.case_id},{first} at log "
               f"sequence {outcome.sequence} (intake sequence {outcome.intake_sequence}, {at})")
