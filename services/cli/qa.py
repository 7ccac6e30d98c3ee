"""`jiedu qa search` and `jiedu qa show`: the Q&A library (政策问答库) as the 12345 hotline, the
service windows and the website's search use it (QA-1, QA-2, QA-4).

Both read only the store (SQLite under the data dir, or DATABASE_URL).
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from services.adapters.config import Settings
from services.cli.common import DataDir, Json, fail, print_json
from services.projector import store_for
from services.qa import DEFAULT_LIMIT, MAX_LIMIT, QASearch

qa_app = typer.Typer(no_args_is_help=True, help="The Q&A library (政策问答库): search and show.")


def register(app: typer.Typer) -> None:
    """Add `qa search` and `qa show` to the `jiedu` command line."""
    app.add_typer(qa_app, name="qa")


def _search(data_dir: Path | None) -> QASearch:
    return QASearch(store_for(Settings.from_env(data_dir=data_dir)))


@qa_app.command("search")
def search(
    question: Annotated[str, typer.Argument(help="the question as a citizen asks it")],
    department: Annotated[
        str | None, typer.Option(help="one department's library (部门级); default the district's")
    ] = None,
    limit: Annotated[int, typer.Option(help=f"at most this many entries (1..{MAX_LIMIT})")] = (
        DEFAULT_LIMIT
    ),
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="policies in force on this day (YYYY-MM-DD; "
                                 "default today)")
    ] = None,
    as_json: Json = False,
    data_dir: DataDir = None,
) -> None:
    """Entries that answer a question, best first, and whether the library can answer it at
    all (below the confidence threshold: refer it to the drafting unit, QA-4)."""
    if not question.strip():
        fail("the question is empty")
    if not 1 <= limit <= MAX_LIMIT:
        fail(f"--limit must be 1..{MAX_LIMIT}")
    day = _day(as_of)
    searcher = _search(data_dir)
    try:
        result = searcher.search(question, department=department, limit=limit, as_of=day)
    finally:
        searcher.store.close()
    if as_json:
        print_json(result.as_dict())
        return
    if not result.hits:
        typer.echo("no entry matches: refer the question to the drafting unit (QA-4)")
        return
    verdict = "answerable" if result.answerable else "no confident answer: refer it (QA-4)"
    typer.echo(f"{verdict}; best confidence {result.hits[0].confidence:.2f}")
    for rank, hit in enumerate(result.hits, start=1):
        typer.echo(f"{rank}. [{hit.department} {hit.case_id} {hit.entry_id}] {hit.question} "
                   f"(score {hit.score:.3f}, confidence {hit.confidence:.2f})")
        typer.echo(f"   {hit.answer}")


@qa_app.command("show")
def show(
    entry: Annotated[str, typer.Argument(help="the entry ID")],
    case: Annotated[str | None, typer.Option(help="the policy case, where IDs recur")] = None,
    as_json: Json = False,
    data_dir: DataDir = None,
) -> None:
    """One entry as published or last revised, with its policy and whether that is in force
    (exit 1: no such entry)."""
    searcher = _search(data_dir)
    try:
        found = searcher.entries(entry, case)
    finally:
        searcher.store.close()
    if as_json:
        print_json(found)
    else:
        for e in found:
            _print_entry(e)
    if not found:
        if not as_json:
            typer.echo(f"no entry {entry}" + (f" on case {case}" if case else ""), err=True)
        raise typer.Exit(1)


def _print_entry(e: dict[str, Any]) -> None:
    policy = e["policy"]
    force = "in force" if policy["in_force"] else f"{policy['repeal_kind']} {policy['repealed_on']}"
    typer.echo(f"{e['entry_id']} ({e['status']}, revised {e['revisions']}×) — {e['department']}")
    typer.echo(f"policy: {policy['case_id']} 《{policy['title']}》 "
               f"{policy['document_number'] or ''} [{force}]")
    typer.echo(f"Q: {e['question']}")
    typer.echo(f"A: {e['answer']}")
    if e["keywords"]:
        typer.echo(f"keywords: {'、'.join(e['keywords'])}")
    if e["benefit_office"]:
        office = e["benefit_office"]
        typer.echo("政策兑现: " + "，".join(str(v) for v in office.values() if v))


def _day(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text, re.ASCII) is None:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        fail(f"--as-of must be a day YYYY-MM-DD, not {text!r}")
