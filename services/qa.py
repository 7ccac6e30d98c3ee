"""Searching the Q&A library (QA-2, QA-4): a citizen's question in, ranked entries and whether
the library can answer it out.

The ranking is bm25 over the `qa_library` read model's postings (`projections.qa_library`),
summed by the database in whole numbers with statements that SQLite and PostgreSQL run alike,
so both stores return the same entries in the same order with the same scores (ties go by case
and entry ID). It reads only the postings of the question's terms, through indexes, in two
steps so that a common character does not make every search read most of the library:

1. candidates: the best `CANDIDATES` live entries by the question's rarer terms alone (the
   rarest, as many as `POSTINGS_BUDGET` postings allow, at least `RARE_LEAST`);
2. the candidates' full scores over all the question's terms, from their entry rows.

When the budget holds all the question's postings (a library of a few hundred entries)
step 1 is already exact.

Each hit carries a confidence (`domain.qa_text.confidence`). Below `THRESHOLD` for the best
hit the library says it has no answer (`answerable` false): QA-4 wants an instant answer where
one exists and a referral to the drafting unit otherwise, never a wrong answer given with
assurance.

Synchronous (SQL): call it from the event loop through `asyncio.to_thread`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from domain.qa_text import (
    IDF_SCALE,
    WEIGHT_SCALE,
    Analyser,
    confidence,
    idf,
    posting_weight,
)
from projections.base import Row
from projections.qa_library import (
    ENTRIES,
    LIVE_ENTRIES,
    POLICIES,
    POSTINGS,
    PUBLISHED,
    STATS,
    TERMS,
    QALibrary,
)
from services.adapters.readmodels import ReadStore, Tx

THRESHOLD = 0.3
"""The least confidence of the best hit for the library to answer: tuned on the evaluation set
(`jiedu bench --parts qa` prints the figures at it and its neighbours), where it let 8 % of
the unanswerable questions through and declined 43 % of the answerable ones."""

DEFAULT_LIMIT = 5
MAX_LIMIT = 100
SHANGHAI = ZoneInfo("Asia/Shanghai")
CANDIDATES = 50
"""Entries scored in full when the question has common terms (step 2)."""
POSTINGS_BUDGET = 5_000
"""Step 1 reads the question's rarest terms while their postings add up to at most this."""
RARE_LEAST = 1
"""Step 1 uses at least this many of the question's terms, the rarest (more made a question
of only common words read most of a large library: p99 twice as long at 100,000 entries, and
no change in the set's figures)."""


@dataclass(frozen=True)
class Hit:
    """One entry found for a question, with its policy."""

    entry_id: str
    case_id: str
    department: str
    question: str
    answer: str
    score: float
    """bm25 (the exact integer sum / scale): comparable within one search."""
    confidence: float
    policy_title: str | None = None
    benefit_office: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "entry_id": self.entry_id, "question": self.question, "answer": self.answer,
            "department": self.department, "case_id": self.case_id, "score": self.score,
            "confidence": round(self.confidence, 4), "policy_title": self.policy_title,
            "benefit_office": self.benefit_office,
        }


@dataclass(frozen=True)
class SearchResult:
    """The hits in rank order, and whether the best one answers the question."""

    question: str
    hits: tuple[Hit, ...]
    answerable: bool
    terms: tuple[tuple[str, ...], ...] = field(default=())

    @property
    def best(self) -> Hit | None:
        return self.hits[0] if self.hits else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "question": self.question, "answerable": self.answerable,
            "results": [h.as_dict() for h in self.hits],
        }


class QASearch:
    """The library as the hotline, the windows and the website search it."""

    def __init__(
        self,
        store: ReadStore,
        analyser: Analyser | None = None,
        *,
        threshold: float = THRESHOLD,
        projection: QALibrary | None = None,
    ) -> None:
        self.store = store
        self.projection = projection or QALibrary(analyser)
        self.analyser = analyser or self.projection.analyser
        self.threshold = threshold

    def search(
        self,
        question: str,
        *,
        department: str | None = None,
        limit: int = DEFAULT_LIMIT,
        as_of: date | None = None,
    ) -> SearchResult:
        """The entries of policies in force on `as_of` (today in Shanghai by default) that best
        answer `question`, at most `limit`, from one department's library or (None) the
        district's."""
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be 1..{MAX_LIMIT}, not {limit}")
        day = as_of or datetime.now(SHANGHAI).date()
        groups = self.analyser.query(question)
        terms = sorted({t for g in groups for t in g})
        if not terms:
            return SearchResult(question, (), False, groups)
        with self.store.transaction(write=False) as tx:
            live = tx.live(self.projection.name)
            if live is None:
                return SearchResult(question, (), False, groups)
            p = live.physical
            entries, df = self._frequencies(tx, p(TERMS), p(STATS), terms)
            idfs = {t: idf(df.get(t, 0), entries) for t in terms}
            known = [t for t in terms if df.get(t)]
            rare = _rare(known, df)
            if len(rare) == len(known):
                ranked = self._top(tx, p(POSTINGS), idfs, known, day, department, limit)
            else:
                candidates = self._top(tx, p(POSTINGS), idfs, rare, day, department, CANDIDATES)
                ranked = self._rescore(tx, p(ENTRIES), idfs, candidates, limit)
            rows = self._rows(tx, p(ENTRIES), p(POLICIES), [(c, e) for c, e, _ in ranked])
        hits = []
        for case_id, entry_id, score in ranked:
            entry, title = rows[(case_id, entry_id)]
            hits.append(Hit(
                entry_id=entry_id, case_id=case_id, department=entry["department"],
                question=entry["question"], answer=entry["answer"],
                score=score / (WEIGHT_SCALE * IDF_SCALE),
                confidence=confidence(groups, idfs, entry["terms"]), policy_title=title,
                benefit_office=entry["benefit_office"],
            ))
        answerable = bool(hits) and hits[0].confidence >= self.threshold
        return SearchResult(question, tuple(hits), answerable, groups)

    @staticmethod
    def _frequencies(
        tx: Tx, terms_table: str, stats_table: str, terms: list[str]
    ) -> tuple[int, dict[str, int]]:
        """The number of live entries, and each term's document frequency (absent: 0)."""
        found = tx.rows(f"SELECT value FROM {tx.q(stats_table)} WHERE name = ?", [LIVE_ENTRIES])
        entries = int(found[0][0]) if found else 0
        marks = ", ".join("?" * len(terms))
        rows = tx.rows(f"SELECT term, df FROM {tx.q(terms_table)} WHERE term IN ({marks})", terms)
        return entries, {str(t): int(n) for t, n in rows}

    @staticmethod
    def _top(
        tx: Tx, postings: str, idfs: dict[str, int], terms: list[str], day: date,
        department: str | None, limit: int,
    ) -> list[tuple[str, str, int]]:
        """(case, entry, score by `terms`) of the best `limit` entries in force on `day`."""
        if not terms:
            return []
        params: list[Any] = [x for t in terms for x in (t, idfs[t])]
        params.append(day.isoformat())
        where = "(p.until IS NULL OR p.until > ?)"
        if department is not None:
            where += " AND p.department = ?"
            params.append(department)
        params.append(limit)
        return _ranked(tx.rows(
            "SELECT p.case_id, p.entry_id, SUM(p.weight * q.column2) AS s "
            f"FROM (VALUES {', '.join('(?, ?)' for _ in terms)}) AS q "
            f"JOIN {tx.q(postings)} AS p ON p.term = q.column1 WHERE {where} "
            "GROUP BY p.case_id, p.entry_id ORDER BY s DESC, p.case_id, p.entry_id LIMIT ?",
            params,
        ))

    @staticmethod
    def _rescore(
        tx: Tx, entries: str, idfs: dict[str, int], candidates: list[tuple[str, str, int]],
        limit: int,
    ) -> list[tuple[str, str, int]]:
        """The best `limit` of `candidates` by all the question's terms, from the terms each
        entry row keeps (the weights its postings hold, `posting_weight`, recomputed)."""
        if not candidates:
            return []
        pairs = ", ".join("(?, ?)" for _ in candidates)
        found = tx.rows(
            f"SELECT e.case_id, e.entry_id, e.terms, e.length FROM (VALUES {pairs}) AS c "
            f"JOIN {tx.q(entries)} AS e ON e.case_id = c.column1 AND e.entry_id = c.column2",
            [x for c, e, _ in candidates for x in (c, e)],
        )
        scored = []
        for case_id, entry_id, terms, length in found:
            tf = _json(terms)
            score = sum(w * posting_weight(tf[t], length) for t, w in idfs.items() if t in tf)
            scored.append((-score, str(case_id), str(entry_id)))
        return [(c, e, -s) for s, c, e in sorted(scored)[:limit]]

    @staticmethod
    def _rows(
        tx: Tx, entries: str, policies: str, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[Row, str | None]]:
        if not keys:
            return {}
        where = " OR ".join("(e.case_id = ? AND e.entry_id = ?)" for _ in keys)
        sql = (
            "SELECT e.case_id, e.entry_id, e.department, e.question, e.answer, "
            f"e.benefit_office, e.terms, p.title FROM {tx.q(entries)} e "
            f"LEFT JOIN {tx.q(policies)} p ON p.case_id = e.case_id WHERE {where}"
        )
        out: dict[tuple[str, str], tuple[Row, str | None]] = {}
        for case_id, entry_id, dept, q, a, office, terms, title in tx.rows(
            sql, [x for k in keys for x in k]
        ):
            out[(case_id, entry_id)] = (
                {"department": dept, "question": q, "answer": a, "benefit_office": _json(office),
                 "terms": _json(terms)},
                title,
            )
        return out

    def entries(self, entry_id: str, case_id: str | None = None) -> list[dict[str, Any]]:
        """Every entry with this ID (on `case_id` only, if given), with its policy and whether
        that policy is in force today: `jiedu qa show`."""
        found = self.store.select(self.projection, ENTRIES, {"entry_id": entry_id,
                                                             "case_id": case_id})
        today = datetime.now(SHANGHAI).date()
        out = []
        for entry in found:
            policies = self.store.select(self.projection, POLICIES, {"case_id": entry["case_id"]})
            policy = policies[0] if policies else {}
            repealed = policy.get("repealed_on")
            out.append({
                **{k: v for k, v in entry.items() if k not in ("terms", "length")},
                "live": entry["status"] == PUBLISHED,
                "policy": {
                    "case_id": entry["case_id"], "title": policy.get("title"),
                    "document_number": policy.get("document_number"),
                    "issued_on": policy.get("issued_on"), "repealed_on": repealed,
                    "repeal_kind": policy.get("repeal_kind"),
                    "in_force": repealed is None or repealed > today,
                },
            })
        return out


def _rare(terms: list[str], df: dict[str, int]) -> list[str]:
    """The terms that find the candidates: the rarest, as many as `POSTINGS_BUDGET` allows
    but at least `RARE_LEAST` (ties by the term itself, so both stores choose alike)."""
    rare: list[str] = []
    postings = 0
    for term in sorted(terms, key=lambda t: (df[t], t)):
        postings += df[term]
        if postings > POSTINGS_BUDGET and len(rare) >= RARE_LEAST:
            break
        rare.append(term)
    return sorted(rare)


def _ranked(rows: list[tuple[Any, ...]]) -> list[tuple[str, str, int]]:
    return [(str(c), str(e), int(s)) for c, e, s in rows]


def _json(value: Any) -> Any:
    """A JSON column read by raw SQL: text on SQLite, already decoded on PostgreSQL."""
    return orjson.loads(value) if isinstance(value, str) else value
