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
from projections.base import Row
from projections.qa_library import (
    ENTRIES,
    LIVE_ENTRIES,
    POLICIES,
    POSTINGS,
    STATS,
    TERMS,
    QALibrary,
)
from services.adapters.readmodels import ReadStore, Tx
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


SYNTHETIC_TITLE = "渝中区政策问答（合成）"
"""The one title of the synthetic policies: an entry's terms then depend on its own words
only, so copies of one prototype differ in nothing but their IDs (see `load`)."""
PER_POLICY = 20


def _synthetic(qa: QASet, i: int) -> tuple[str, str, SetEntry, SetEntry]:
    """(case, department, the entry giving question and keywords, the one giving the answer)
    of the i-th synthetic entry: 20 to a policy, whose department is that of its first."""
    entries = qa.entries
    first = entries[(i - i % PER_POLICY) % len(entries)]
    base, other = entries[i % len(entries)], entries[(i * 7 + 3) % len(entries)]
    return f"QA-SYN-{i // PER_POLICY:05d}", first.department, base, other


def library_events(qa: QASet, size: int | None = None) -> Iterator[Event]:
    """The set's policies and entries as their departments would publish them; with `size`,
    padded with synthetic entries (a set entry's question and keywords, another's answer)
    under synthetic policies of 20 entries each, up to `size` entries in all."""
    n = 0
    cases = qa.policies()
    for (department, title), case_id in cases.items():
        n += 1
        yield _event("DraftSubmitted", case_id, department, n, title=title, scope="normative",
                     issuer={"kind": "department", "lead": department})
    for e in qa.entries:
        n += 1
        yield _event("QAEntryPublished", cases[(e.department, e.policy_title)], e.department, n,
                     **_entry_data(e, e.entry_id))
    for i in range(max(0, (size or 0) - len(qa.entries))):
        case_id, department, base, other = _synthetic(qa, i)
        if i % PER_POLICY == 0:
            n += 1
            yield _event("DraftSubmitted", case_id, department, n, title=SYNTHETIC_TITLE,
                         scope="normative", issuer={"kind": "department", "lead": department})
        n += 1
        yield _event("QAEntryPublished", case_id, department, n,
                     **_entry_data(base, f"syn-{i:06d}", other.answer))


def project(store: ReadStore, projection: QALibrary, events: Iterable[Event],
            batch: int = 2000) -> None:
    """Apply `events` (at positions 1, 2, …) to the projection's live generation in batches,
    as the runner's unit of work does (no log position is kept: a bench store is thrown
    away)."""
    gen = store.ensure_live(projection)
    pending: list[tuple[int, Event]] = []

    def flush() -> None:
        with store.transaction(write=True) as tx:
            work = UnitOfWork(tx, gen)
            work.prefetch(k for _, e in pending for k in projection.touches(e))
            for seq, e in pending:
                projection.apply(e, seq, work)
            work.flush()
        pending.clear()

    for event in enumerate(events, start=1):
        pending.append(event)
        if len(pending) >= batch:
            flush()
    if pending:
        flush()
    store.analyze(projection)


def load(store: ReadStore, projection: QALibrary, qa: QASet, size: int,
         chunk: int = 10_000) -> None:
    """Fill the live generation with what `library_events(qa, size)` makes, fast: the set
    and one prototype of each distinct synthetic entry go through the projection; the other
    synthetic entries differ from their prototype only in case, entry ID and department, so
    their rows are its rows with those changed, written in bulk, and each adds what the
    projection would (a live entry, one to each term's frequency, its ID to its policy).
    `tests/test_bench_qa.py` checks the rows equal those of applying every event."""
    gen = store.ensure_live(projection)
    rows = projection.run(enumerate(library_events(qa), start=1))
    scratch = QALibrary(projection.analyser)
    prototypes: dict[int, tuple[Row, list[Row]]] = {}
    synthetic = max(0, size - len(qa.entries))
    for k in range(min(synthetic, len(qa.entries))):
        _, department, base, other = _synthetic(qa, k)
        made = scratch.run(enumerate([
            _event("DraftSubmitted", "PROTO", department, 1, title=SYNTHETIC_TITLE,
                   scope="normative", issuer={"kind": "department", "lead": department}),
            _event("QAEntryPublished", "PROTO", department, 2,
                   **_entry_data(base, "proto", other.answer)),
        ], start=1))
        prototypes[k] = (made.rows(ENTRIES)[0], made.rows(POSTINGS))
    df = {t["term"]: t["df"] for t in rows.rows(TERMS)}
    policies = {p["case_id"]: p for p in rows.rows(POLICIES)}
    live = rows.rows(STATS)[0]["value"]
    with store.transaction(write=True) as tx:
        tx.insert(ENTRIES, gen.physical(ENTRIES), rows.rows(ENTRIES))
        tx.insert(POSTINGS, gen.physical(POSTINGS), rows.rows(POSTINGS))
    first_seq = len(policies) + len(qa.entries) + 2  # where library_events publishes syn 0
    for start in range(0, synthetic, chunk):
        entries: list[Row] = []
        postings: list[Row] = []
        for i in range(start, min(synthetic, start + chunk)):
            case_id, department, _, _ = _synthetic(qa, i)
            entry, proto_postings = prototypes[i % len(qa.entries)]
            ids = {"case_id": case_id, "entry_id": f"syn-{i:06d}", "department": department}
            entries.append({**entry, **ids, "seq": first_seq + i + i // PER_POLICY})
            postings += ({**p, **ids} for p in proto_postings)
            for term in entry["terms"]:
                df[term] = df.get(term, 0) + 1
            policy = policies.setdefault(case_id, {
                "case_id": case_id, "department": department, "title": SYNTHETIC_TITLE,
                "document_number": None, "issued_on": None, "repealed_on": None,
                "repeal_kind": None, "entries": []})
            policy["entries"].append(ids["entry_id"])
            live += 1
        postings.sort(key=POSTINGS.key_of)  # in index order: appends, not page splits
        with store.transaction(write=True) as tx:
            _bulk(tx)
            tx.insert(ENTRIES, gen.physical(ENTRIES), entries)
            tx.insert(POSTINGS, gen.physical(POSTINGS), postings)
    with store.transaction(write=True) as tx:
        tx.insert(POLICIES, gen.physical(POLICIES), [policies[c] for c in sorted(policies)])
        tx.insert(TERMS, gen.physical(TERMS),
                  [{"term": t, "df": df[t]} for t in sorted(df)])
        tx.insert(STATS, gen.physical(STATS), [{"name": LIVE_ENTRIES, "value": live}])
    store.analyze(projection)  # as autovacuum would, in time


def _bulk(tx: Tx) -> None:
    """Let SQLite keep the indexes being filled in memory (256 MB instead of 2 MB of pages),
    so that a bulk fill is not a disk read per posting."""
    if tx.dialect == "sqlite":
        tx.run("PRAGMA cache_size = -262144")


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
                load(store, projection, qa, size)
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
