"""`jiedu bench --parts qa`: how well and how fast the Q&A library answers (issue 15).

Quality over the evaluation set (`services.tools.qa_set`): recall@1 and recall@5 (the entry
that answers a citizen's question is first / among the first five), MRR, and the share of the
questions no entry answers that the library answers anyway (its best hit above the confidence
threshold), beside the share of answerable questions it declines. Speed: search latency
p50/p99 over the citizens' questions at 10,000 and 100,000 entries (synthetic entries made
from the set: each a set entry's question with another's answer, under cases of its own), on
SQLite and PostgreSQL.

Beside each figure the same run measures a baseline: the same bm25 and store over single
characters (no segmentation, no synonyms), which is what a search without jieba would do.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from domain.qa_text import Analyser
from events.catalogue import Event
from events.codec import decode
from projections.base import MemoryRows
from projections.qa_library import ENTRIES, POLICIES, POSTINGS, STATS, TERMS, QALibrary
from services.adapters.readmodels import ReadStore
from services.projector import UnitOfWork
from services.qa import THRESHOLD, QASearch
from services.tools.qa_set import QASet, SetEntry

THRESHOLDS = (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)
SIZES = (10_000, 100_000)
AS_OF = datetime(2026, 9, 1, tzinfo=UTC).date()


class CharAnalyser(Analyser):
    """The baseline: every letter or Han character a term, no dictionary, no synonyms."""

    def __init__(self) -> None:
        super().__init__()
        self.synonyms = {}

    def _tokens(self, text: str) -> tuple[str, ...]:
        return tuple(c for c in text.lower() if c.isalnum())


# ── the library as events ────────────────────────────────────────────────────────────────────


def _event(type_: str, case_id: str, department: str, n: int, **data: Any) -> Event:
    body = {
        "event_id": f"qa-bench-{n:07d}", "type": type_,
        "schema_version": 2 if type_ == "DraftSubmitted" else 1, "case_id": case_id,
        "department": department, "actor": {"id": "bench"}, "source_system": "oa",
        "occurred_at": "2026-07-06T09:30:00+08:00", "data": data,
    }
    return decode(orjson.dumps(body))


def _entry_data(e: SetEntry, entry_id: str, answer: str | None = None) -> dict[str, Any]:
    return {
        "entry_id": entry_id, "question": e.question, "answer": answer or e.answer,
        "keywords": list(e.keywords), "benefit_office": e.benefit_office,
    }


def library_events(qa: QASet, size: int | None = None) -> Iterator[Event]:
    """The set's policies and entries as their departments would publish them; with `size`,
    padded with synthetic entries (a set entry's question and keywords, another's answer)
    under synthetic policies of 20 entries each, up to `size` entries in all."""
    n = 0
    for (department, title), case_id in qa.policies().items():
        n += 1
        yield _event("DraftSubmitted", case_id, department, n, title=title, scope="normative",
                     issuer={"kind": "department", "lead": department})
    cases = qa.policies()
    for e in qa.entries:
        n += 1
        yield _event("QAEntryPublished", cases[(e.department, e.policy_title)], e.department, n,
                     **_entry_data(e, e.entry_id))
    entries = qa.entries
    for i in range(max(0, (size or 0) - len(entries))):
        base, other = entries[i % len(entries)], entries[(i * 7 + 3) % len(entries)]
        case_id = f"QA-SYN-{i // 20:05d}"
        if i % 20 == 0:
            n += 1
            yield _event("DraftSubmitted", case_id, base.department, n,
                         title=f"{base.policy_title}（第{i // 20}批）", scope="normative",
                         issuer={"kind": "department", "lead": base.department})
        n += 1
        yield _event("QAEntryPublished", case_id, base.department, n,
                     **_entry_data(base, f"syn-{i:06d}", other.answer))


def project(store: ReadStore, projection: QALibrary, events: Iterable[Event],
            batch: int = 2000) -> None:
    """Apply `events` to the projection's live generation in batches, as the runner's unit of
    work does (no log position: a bench store is thrown away)."""
    gen = store.ensure_live(projection)
    pending: list[Event] = []

    def flush() -> None:
        with store.transaction(write=True) as tx:
            work = UnitOfWork(tx, gen)
            work.prefetch(k for e in pending for k in projection.touches(e))
            for e in pending:
                projection.apply(e, 1, work)
            work.flush()
        pending.clear()

    for event in events:
        pending.append(event)
        if len(pending) >= batch:
            flush()
    if pending:
        flush()
    store.analyze(projection)


def load(store: ReadStore, projection: QALibrary, events: Iterable[Event],
         chunk: int = 1000) -> None:
    """Fill the projection's live generation from events that only publish (a bench library):
    the projection's own rows, made in memory and written in bulk, a chunk of entries at a
    time (the postings and entries of a chunk are not read again)."""
    gen = store.ensure_live(projection)
    rows = MemoryRows()
    written = (POSTINGS, ENTRIES)

    def flush() -> None:
        with store.transaction(write=True) as tx:
            for table in written:
                tx.insert(table, gen.physical(table), rows.rows(table))
                rows.tables.pop(table.name, None)

    for n, event in enumerate(events, start=1):
        projection.apply(event, n, rows)
        if n % chunk == 0:
            flush()
    flush()
    with store.transaction(write=True) as tx:
        for table in (POLICIES, TERMS, STATS):
            tx.insert(table, gen.physical(table), rows.rows(table))
    store.analyze(projection)  # as autovacuum would, in time


# ── quality ──────────────────────────────────────────────────────────────────────────────────


@dataclass
class Quality:
    questions: int
    recall_at_1: float
    recall_at_5: float
    mrr: float
    unanswerable: int
    by_threshold: dict[float, tuple[float, float]] = field(default_factory=dict)
    """threshold → (unanswerable answered, answerable declined)."""

    def at(self, threshold: float) -> tuple[float, float]:
        return self.by_threshold[threshold]


def quality(search: QASearch, qa: QASet, thresholds: Iterable[float] = THRESHOLDS) -> Quality:
    ranks: list[int | None] = []
    best: list[float] = []
    for question, entry in qa.questions():
        result = search.search(question, limit=10, as_of=AS_OF)
        ids = [h.entry_id for h in result.hits]
        ranks.append(ids.index(entry.entry_id) + 1 if entry.entry_id in ids else None)
        best.append(result.hits[0].confidence if result.hits else 0.0)
    unanswered = [
        (r.hits[0].confidence if r.hits else 0.0)
        for r in (search.search(q, limit=1, as_of=AS_OF) for q in qa.unanswerable)
    ]
    n = len(ranks)
    out = Quality(
        questions=n,
        recall_at_1=sum(1 for r in ranks if r == 1) / n,
        recall_at_5=sum(1 for r in ranks if r is not None and r <= 5) / n,
        mrr=sum(1 / r for r in ranks if r is not None) / n,
        unanswerable=len(unanswered),
    )
    for t in thresholds:
        answered = sum(1 for c in unanswered if c >= t) / max(1, len(unanswered))
        declined = sum(1 for c in best if c < t) / n
        out.by_threshold[t] = (answered, declined)
    return out


# ── latency ──────────────────────────────────────────────────────────────────────────────────


def latency(search: QASearch, questions: list[str], rounds: int = 1) -> dict[str, float]:
    """p50 and p99 milliseconds of one search (top 5), over every question `rounds` times."""
    for q in questions[:20]:  # warm the caches and the segmenter
        search.search(q, as_of=AS_OF)
    took: list[float] = []
    for _ in range(rounds):
        for q in questions:
            start = time.perf_counter()
            search.search(q, as_of=AS_OF)
            took.append((time.perf_counter() - start) * 1000)
    took.sort()
    return {
        "p50_ms": round(statistics.median(took), 2),
        "p99_ms": round(took[min(len(took) - 1, int(len(took) * 0.99))], 2),
        "searches": len(took),
    }


Opener = Callable[[str], ReadStore]
"""A new, empty store of one kind, by label (the bench's SQLite files / PostgreSQL schemas)."""


def run(qa: QASet, stores: dict[str, Opener], sizes: Iterable[int] = SIZES,
        say: Callable[[str], None] = print) -> dict[str, Any]:
    """The whole QA part: quality on the set (on the first store: both rank alike), then
    latency per size and store, the library's search beside the baseline, in one run."""
    analysers: dict[str, Analyser] = {"library": Analyser.from_files(), "baseline": CharAnalyser()}
    out: dict[str, Any] = {"threshold": THRESHOLD, "quality": {}, "latency": {}}
    questions = [q for q, _ in qa.questions()]
    first = next(iter(stores))
    for name, analyser in analysers.items():
        store = stores[first](f"qa_{name}_set")
        projection = QALibrary(analyser)
        project(store, projection, library_events(qa))
        q = quality(QASearch(store, analyser, projection=projection), qa,
                    sorted({*THRESHOLDS, THRESHOLD}))
        store.close()
        answered, declined = q.at(THRESHOLD)
        out["quality"][name] = {
            "entries": len(qa.entries), "questions": q.questions, "unanswerable": q.unanswerable,
            "recall_at_1": round(q.recall_at_1, 4), "recall_at_5": round(q.recall_at_5, 4),
            "mrr": round(q.mrr, 4), "unanswerable_answered": round(answered, 4),
            "answerable_declined": round(declined, 4),
            "by_threshold": {str(t): {"unanswerable_answered": round(a, 4),
                                      "answerable_declined": round(d, 4)}
                             for t, (a, d) in q.by_threshold.items()},
        }
        say(f"qa quality, {name}: recall@1 {q.recall_at_1:.3f}, recall@5 {q.recall_at_5:.3f}, "
            f"MRR {q.mrr:.3f}; at {THRESHOLD} unanswerable answered {answered:.2f}, "
            f"answerable declined {declined:.2f}")
    for size in sizes:
        for kind, opener in stores.items():
            for name, analyser in analysers.items():
                store = opener(f"qa_{name}_{size}")
                projection = QALibrary(analyser)
                started = time.perf_counter()
                load(store, projection, library_events(qa, size))
                loaded = time.perf_counter() - started
                lat: dict[str, Any] = latency(
                    QASearch(store, analyser, projection=projection), questions
                )
                store.close()
                lat["load_s"] = round(loaded, 1)
                out["latency"].setdefault(str(size), {}).setdefault(kind, {})[name] = lat
                say(f"qa latency, {size} entries, {kind}, {name}: p50 {lat['p50_ms']} ms, "
                    f"p99 {lat['p99_ms']} ms (loaded in {loaded:.0f} s)")
    return out
