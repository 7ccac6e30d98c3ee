"""`jiedu qa`: the Q&A library (政策问答库) as the 12345 hotline, the service windows and the
website's search use it (QA-1, QA-2, QA-4), and how consultations grow it (QA-5).

`search`, `show`, `suggestions` and `candidates` read only the store (SQLite under the data
dir, or DATABASE_URL); `publish-candidate` also sends an entry through the intake as the
department's system.
"""

from __future__ import annotations

import asyncio
import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from events import streams
from services import bootstrap, candidates
from services.adapters.config import Settings
from services.cli.common import DataDir, Json, fail, local_time, print_json, print_outcome
from services.matcher import suggestions_of
from services.projector import store_for
from services.qa import DEFAULT_LIMIT, MAX_LIMIT, QASearch

qa_app = typer.Typer(
    no_args_is_help=True,
    help="The Q&A library (政策问答库): search, show, suggestions, candidates.",
)


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


@qa_app.command("suggestions")
def suggestions(
    consultation: Annotated[str, typer.Argument(help="the consultation ID")],
    case: Annotated[str | None, typer.Option(help="the policy case, where IDs recur")] = None,
    as_json: Json = False,
    data_dir: DataDir = None,
) -> None:
    """What the library suggested for a consultation (ConsultationMatched, QA-4), best first,
    and how it was answered (exit 1: no such consultation)."""
    store = store_for(Settings.from_env(data_dir=data_dir))
    try:
        found = suggestions_of(store, consultation, case)
    finally:
        store.close()
    if as_json:
        print_json(found)
    for c in [] if as_json else found:
        typer.echo(f"{c['case_id']} {c['consultation_id']} ({c['channel']}, "
                   f"{local_time(c['received_at'])}): {c['question']}")
        if c["suggestions"] is None:
            typer.echo("  not matched yet")
        else:
            verdict = "answerable" if c["answerable"] else "no confident answer: refer it"
            typer.echo(f"  {verdict}")
            for rank, s in enumerate(c["suggestions"], start=1):
                typer.echo(f"  {rank}. [{s['case_id']} {s['entry_id']}] {s['question']} "
                           f"(confidence {s['confidence']:.2f})")
        if c["answered_at"] is not None:
            used = f" from entry {c['entry_id']}" if c["entry_id"] else ""
            typer.echo(f"  answered{used}: {c['answer']}")
        elif c["referred_to"] is not None:
            typer.echo(f"  referred to {c['referred_to']}")
    if not found:
        if not as_json:
            typer.echo(f"no consultation {consultation}", err=True)
        raise typer.Exit(1)


@qa_app.command("candidates")
def list_candidates(
    department: Annotated[str | None, typer.Option(help="one department's only")] = None,
    as_json: Json = False,
    data_dir: DataDir = None,
) -> None:
    """Candidate entries (QA-5: consultations referred and answered by the drafting unit, not
    yet published) and the questions the library had no good answer for (定期梳理汇总)."""
    store = store_for(Settings.from_env(data_dir=data_dir))
    try:
        found = candidates.waiting(store, department)
    finally:
        store.close()
    if as_json:
        print_json(found)
        return
    typer.echo(f"candidates waiting: {len(found['candidates'])}")
    for c in found["candidates"]:
        typer.echo(f"  [{c['department']} {c['case_id']} {c['consultation_id']}] {c['question']}")
        typer.echo(f"    A: {c['answer']}")
    typer.echo(f"questions without a good match: {len(found['review'])}")
    for r in found["review"]:
        typer.echo(f"  [{r['department']} {r['case_id']} {r['consultation_id']}] {r['question']}")


@qa_app.command("publish-candidate")
def publish_candidate(
    consultation: Annotated[str, typer.Argument(help="the consultation ID of the candidate")],
    case: Annotated[str | None, typer.Option(help="the policy case, where IDs recur")] = None,
    question: Annotated[str | None, typer.Option(help="the entry's question, reworded")] = None,
    answer: Annotated[str | None, typer.Option(help="the entry's answer, reworded")] = None,
    system: Annotated[
        str, typer.Option(help="the department's system that publishes it")
    ] = candidates.SOURCE_SYSTEM,
    by: Annotated[str, typer.Option(help="who publishes it")] = "政策解读工作机构",
    timeout: Annotated[float, typer.Option(help="seconds to wait for the outcome")] = 90.0,
    as_json: Json = False,
    data_dir: DataDir = None,
) -> None:
    """Publish a candidate as a library entry (QAEntryPublished) through the intake, as the
    department's system; prints the outcome (exit 1 if it was rejected, or if the consultation
    is no waiting candidate)."""
    for name, text in (("--question", question), ("--answer", answer)):
        if text is not None and not text.strip():
            fail(f"{name} is empty")
    try:  # before anything is opened or started
        streams.name_token("system", system)
        if case is not None:
            streams.case_token(case)
    except streams.SubjectTokenError as e:
        fail(str(e))
    settings = Settings.from_env(data_dir=data_dir)
    store = store_for(settings)
    try:
        candidate = candidates.find(store, consultation, case)
    except candidates.NoCandidate as e:
        fail(str(e), code=1)  # a negative answer, like `qa show` of no entry
    finally:
        store.close()
    try:
        event = candidates.entry_event(candidate, question=question, answer=answer,
                                       system=system, by=by)
    except ValueError as e:
        fail(f"not a valid entry: {e}")
    with bootstrap.serving(settings) as served:
        outcome = asyncio.run(candidates.publish(served, event, timeout))
    if outcome is None:
        fail("no outcome within the timeout (is the intake running?)")
    print_outcome(outcome, as_json)
    raise typer.Exit(0 if outcome.status != "rejected" else 1)
