"""What `jiedu up` and `jiedu demo` show the person who started them, on standard output.

Once the system runs, a short banner that stays the same from run to run (what runs, where,
what to try next); while a demo loads, a progress bar on a terminal (plain lines otherwise, one
per stage, for logs and scripts); then the demo's summary. The logs go elsewhere (see
`services.adapters.logs`): a terminal sees only warnings and errors.
"""

from __future__ import annotations

import sys
import textwrap
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from services.adapters.config import Settings
from services.app import DemoProgress
from services.doctor import data_dir_option

NEXT = (
    ("jiedu status", "is everything as it should be?"),
    ("jiedu tail --all", "follow the log, an event a line"),
    ("jiedu cases", "the cases (案件概览)"),
)
"""The commands the banner suggests, and what each shows."""


def columns(lines: list[tuple[str, str]], indent: str = "  ") -> list[str]:
    """(name, detail) lines with the details aligned."""
    width = max((len(name) for name, _ in lines), default=0) + 2
    return [f"{indent}{name:<{width}}{detail}".rstrip() for name, detail in lines]


QUIET = "Quiet from here on but for warnings and errors (all logs: JSON files in its logs dir)."

WIDTH = 96
"""Where the summary's long lines wrap."""


def banner(settings: Settings, running: list[tuple[str, str]]) -> str:
    """What `jiedu up` prints once it is ready."""
    option = data_dir_option(settings)
    tries = [(f"{command}{option}", what) for command, what in NEXT]
    return "\n".join([
        "Jiedu is running. Ctrl-C stops it.",
        *columns(running),
        "Try, in another terminal:",
        *columns(tries),
    ])


KEEP = "\u00a0"
"""Joins what must stay on one line (`PUB-2 47`): textwrap breaks at ASCII spaces only."""


def _item(name: str, count: int) -> str:
    return f"{name.replace('_', KEEP)}{KEEP}{count:,}"


def _wrapped(lines: list[tuple[str, str]]) -> list[str]:
    """`columns`, the details wrapped at `WIDTH` under themselves."""
    out: list[str] = []
    indent = " " * (2 + max(len(n) for n, _ in lines) + 2)
    for line in columns(lines):
        wrapped = textwrap.wrap(line, WIDTH, subsequent_indent=indent, break_on_hyphens=False)
        out.extend(part.replace(KEEP, " ") for part in wrapped)
    return out


def demo_summary(settings: Settings, done: dict[str, Any]) -> str:
    """The demo's summary for people: cases, findings by rule, clocks by outcome, the Q&A
    library, and the report to try."""
    quarter = done["quarter"]
    by_status = ", ".join(_item(s, n) for s, n in done["by_status"].items())
    findings = done["findings_by_rule"]
    found = sum(f["total"] for f in findings.values())
    by_rule = ", ".join(_item(rule, f["total"]) for rule, f in findings.items())
    clocks = ", ".join(_item(s, n) for s, n in done["clocks_by_status"].items())
    qa = done["qa_library"]
    library = (f"{qa['entries']:,} entries in force; {qa['consultations_matched']:,} "
               f"consultations matched, {qa['answerable']:,} confidently, "
               f"{qa['answered_from_entries']:,} answered at once from an entry; "
               f"{qa['candidates_waiting']:,} candidates waiting (QA-5)")
    return "\n".join([
        f"Demo quarter {quarter} loaded: {done['messages']:,} messages, {done['events']:,} events "
        f"in the log, {done['rejected']:,} rejected.",
        *_wrapped([
            ("cases", f"{done['cases']:,} in {done['departments']} departments: {by_status}"),
            ("findings", f"{found:,} ({done['open_findings']:,} open), by rule: {by_rule}"),
            ("clocks", clocks),
            ("Q&A library", library),
        ]),
        f"Try: jiedu report quarterly {quarter} --out report-{quarter}{data_dir_option(settings)}",
    ])


def _terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except ValueError:
        return False


class Screen:
    """`services.app.Shown` on standard output: a rich progress bar on a terminal, plain lines
    (one per finished stage) otherwise."""

    def __init__(self, settings: Settings, *, banner: bool = True, demo: bool = False) -> None:
        """`banner`: show what runs (`jiedu up`); `demo`: a demo loads after it (then the
        word that the rest is quiet comes after the demo's summary)."""
        self.settings = settings
        self.show_banner = banner
        self.demo = demo
        self.bar: Progress | None = None
        self.tasks: dict[str, Any] = {}
        self.said: set[str] = set()
        self.terminal = _terminal()

    def ready(self, running: list[tuple[str, str]]) -> None:
        if self.show_banner:
            typer.echo(banner(self.settings, running))
            if not self.demo:
                typer.echo(QUIET)

    def progress(self, progress: DemoProgress) -> None:
        if not progress.total:
            return
        if self.terminal:
            self._bar(progress)
        else:
            self._lines(progress)

    def _bar(self, p: DemoProgress) -> None:
        if self.bar is None:
            self.bar = Progress(
                TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), console=Console(), transient=False,
            )
            self.bar.start()
            for name in ("messages published", "messages decided", "events projected"):
                self.tasks[name] = self.bar.add_task(name, total=None)
        self.bar.update(self.tasks["messages published"], completed=p.published, total=p.total)
        self.bar.update(self.tasks["messages decided"], completed=p.decided, total=p.total)
        self.bar.update(
            self.tasks["events projected"], completed=p.projected, total=max(p.head, 1)
        )

    def _lines(self, p: DemoProgress) -> None:
        stages = (
            ("published", p.published >= p.total, f"published {p.total:,} messages"),
            ("decided", p.decided >= p.total, f"decided {p.total:,} messages"),
        )
        for name, done, line in stages:
            if done and name not in self.said:
                self.said.add(name)
                typer.echo(line)

    def loaded(self, summary: dict[str, Any]) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
        elif not self.terminal:
            typer.echo(f"projected {summary['events']:,} events")
        typer.echo(demo_summary(self.settings, summary))
        if self.show_banner:
            typer.echo(QUIET)

