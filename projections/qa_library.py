"""The Q&A library (政策问答库, QA-1, QA-2): every entry with its policy, and the search index.

One read model serves both libraries the rules name: a department's own (部门级, rows filtered by
`department`) and the district's (区级, all rows), which the development and reform commission
and the government services office aggregate for the 12345 knowledge base. Each entry shows its
policy (case, title, 文号) and whether that policy is in force: a policy repealed or expired
(`PolicyRepealed`) is in force until the day before its `repealed_on`, so the read model keeps
the date and the reader asks "in force on which day", and an entry leaves the searchable library
by itself on that day, without a further event.

Tables:
- `qa_policies`: one row per policy case: title, 文号, issue and repeal, its live entries.
- `qa_entries`: one row per entry ever published (withdrawn ones stay, marked), with its
  current wording and the terms it is indexed by.
- `qa_postings`, `qa_terms`, `qa_stats`: the inverted index, in plain tables so that both
  stores hold the same rows: a posting per (term, entry) of a live entry with its bm25 weight
  (`domain.qa_text`), the department and the day its policy stops being in force; each term's
  document frequency; and the number of live entries. `services.qa` ranks from them.

Pure: the analyser (`domain.qa_text`) is given at construction, or the district's is used.
Synonyms apply to questions only, so changing their table needs no rebuild; changing how text
is cut into terms does: bump `version`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from domain.qa_text import Analyser, posting_weight, term_frequencies
from events.catalogue import (
    DraftSubmitted,
    Event,
    PolicyIssued,
    PolicyRepealed,
    QAEntryData,
    QAEntryPublished,
    QAEntryRevised,
    QAEntryWithdrawn,
)
from projections.base import Key, Projection, Row, Rows, Table, Type

PUBLISHED = "published"
WITHDRAWN = "withdrawn"

POLICIES = Table(
    "qa_policies",
    key=("case_id",),
    columns={
        "case_id": Type.TEXT,
        "department": Type.TEXT,
        "title": Type.TEXT,
        "document_number": Type.TEXT,
        "issued_on": Type.DATE,
        "repealed_on": Type.DATE,
        "repeal_kind": Type.TEXT,
        "entries": Type.JSON,  # IDs of its live (published, not withdrawn) entries
    },
    indexes=(("department",),),
)

ENTRIES = Table(
    "qa_entries",
    key=("case_id", "entry_id"),
    columns={
        "case_id": Type.TEXT,
        "entry_id": Type.TEXT,
        "department": Type.TEXT,
        "material_id": Type.TEXT,
        "question": Type.TEXT,
        "answer": Type.TEXT,
        "keywords": Type.JSON,
        "benefit_office": Type.JSON,
        "status": Type.TEXT,
        "published_at": Type.TIMESTAMP,
        "revised_at": Type.TIMESTAMP,
        "revisions": Type.INT,
        "withdrawn_at": Type.TIMESTAMP,
        "withdrawn_reason": Type.TEXT,
        "seq": Type.INT,  # the last event that changed it
        "terms": Type.JSON,  # term → frequency in its indexed text (what its postings hold)
        "length": Type.INT,
    },
    indexes=(("department", "status"), ("entry_id",)),
)

POSTINGS = Table(
    "qa_postings",
    key=("term", "case_id", "entry_id"),
    columns={
        "term": Type.TEXT,
        "case_id": Type.TEXT,
        "entry_id": Type.TEXT,
        "department": Type.TEXT,
        "until": Type.TEXT,  # ISO day its policy is no longer in force, or None
        "weight": Type.INT,
    },
    # covering: a term's postings are summed from the index alone
    indexes=(("term", "weight", "until", "department", "case_id", "entry_id"),),
)

TERMS = Table("qa_terms", key=("term",), columns={"term": Type.TEXT, "df": Type.INT})

STATS = Table("qa_stats", key=("name",), columns={"name": Type.TEXT, "value": Type.INT})
LIVE_ENTRIES = "entries"
"""The `qa_stats` row counting live entries: bm25's N."""


def indexed_text(data: QAEntryData, title: str | None) -> list[str]:
    """What an entry is found by: its question twice (what people ask is worded most like
    it: the benchmark's recall@1 is lower with it once), its keywords, its answer and its
    policy's title."""
    return [data.question, data.question, *data.keywords, data.answer, title or ""]


class QALibrary(Projection):
    name = "qa_library"
    version = 1
    tables = (POLICIES, ENTRIES, POSTINGS, TERMS, STATS)

    def __init__(self, analyser: Analyser | None = None) -> None:
        self._analyser = analyser

    @property
    def analyser(self) -> Analyser:
        """The district's analyser, loaded on first use (it reads the synonym table)."""
        if self._analyser is None:
            self._analyser = Analyser.from_files()
        return self._analyser

    def touches(self, event: Event) -> Iterable[tuple[Table, Key]]:
        case = (event.case_id,)
        if isinstance(event, QAEntryPublished | QAEntryRevised | QAEntryWithdrawn):
            yield POLICIES, case
            yield ENTRIES, (event.case_id, event.data.entry_id)
            yield STATS, (LIVE_ENTRIES,)
            if not isinstance(event, QAEntryWithdrawn):  # the document frequencies it changes
                for text in indexed_text(event.data, None):
                    for term in self.analyser.tokens(text):
                        yield TERMS, (term,)
        elif isinstance(event, DraftSubmitted | PolicyIssued | PolicyRepealed):
            yield POLICIES, case

    def apply(self, event: Event, seq: int, rows: Rows) -> None:
        match event:
            case DraftSubmitted(data=d):
                policy = self._policy(rows, event)
                policy["title"] = d.title
                rows.put(POLICIES, policy)
            case PolicyIssued(data=d):
                policy = self._policy(rows, event)
                if policy["issued_on"] is None:
                    policy["document_number"], policy["issued_on"] = d.document_number, d.issue_date
                    rows.put(POLICIES, policy)
            case PolicyRepealed(data=d):
                policy = self._policy(rows, event)
                policy["repealed_on"], policy["repeal_kind"] = d.repealed_on, d.kind.value
                rows.put(POLICIES, policy)
                for entry_id in policy["entries"]:
                    live = rows.get(ENTRIES, event.case_id, entry_id)
                    if live is not None:
                        self._index(rows, live, policy, live["terms"])  # a new last day
            case QAEntryPublished():
                self._publish(event, seq, rows)
            case QAEntryRevised(data=d):
                entry = rows.get(ENTRIES, event.case_id, d.entry_id)
                if entry is not None and entry["status"] == PUBLISHED:  # else refused by intake
                    policy = self._policy(rows, event)
                    self._word(entry, d)
                    entry["revised_at"], entry["seq"] = event.occurred_at, seq
                    entry["revisions"] += 1
                    self._index(rows, entry, policy, self._terms(d, policy))
            case QAEntryWithdrawn():
                self._withdraw(event, seq, rows)
            case _:
                pass

    # ── helpers ──

    def _publish(self, event: QAEntryPublished, seq: int, rows: Rows) -> None:
        d = event.data
        if rows.get(ENTRIES, event.case_id, d.entry_id) is not None:
            return  # the intake refuses a second publication (entry_exists)
        policy = self._policy(rows, event)
        entry: Row = {
            "case_id": event.case_id, "entry_id": d.entry_id, "department": event.department,
            "status": PUBLISHED, "published_at": event.occurred_at, "revisions": 0,
            "seq": seq, "terms": {}, "length": 0,
        }
        self._word(entry, d)
        self._index(rows, entry, policy, self._terms(d, policy))
        policy["entries"] = [*policy["entries"], d.entry_id]
        rows.put(POLICIES, policy)
        self._count(rows, +1)

    def _withdraw(self, event: QAEntryWithdrawn, seq: int, rows: Rows) -> None:
        d = event.data
        entry = rows.get(ENTRIES, event.case_id, d.entry_id)
        if entry is None or entry["status"] != PUBLISHED:
            return  # the intake refuses these (unknown_reference)
        policy = self._policy(rows, event)
        entry["status"], entry["seq"] = WITHDRAWN, seq
        entry["withdrawn_at"], entry["withdrawn_reason"] = event.occurred_at, d.reason
        self._index(rows, entry, policy, {})
        policy["entries"] = [e for e in policy["entries"] if e != d.entry_id]
        rows.put(POLICIES, policy)
        self._count(rows, -1)

    @staticmethod
    def _policy(rows: Rows, event: Event) -> Row:
        found = rows.get(POLICIES, event.case_id)
        if found is not None:
            return found
        return {"case_id": event.case_id, "department": event.department, "entries": []}

    @staticmethod
    def _word(entry: Row, d: QAEntryData) -> None:
        entry.update(
            material_id=d.material_id, question=d.question, answer=d.answer,
            keywords=list(d.keywords),
            benefit_office=d.benefit_office.model_dump(mode="json") if d.benefit_office else None,
        )

    def _terms(self, d: QAEntryData, policy: Row) -> dict[str, int]:
        tokens = [t for text in indexed_text(d, policy.get("title")) for t in
                  self.analyser.tokens(text)]
        return term_frequencies(tokens)

    @staticmethod
    def _index(rows: Rows, entry: Row, policy: Row, new: dict[str, int]) -> None:
        """Replace the entry's postings by those of the terms `new` (none: it leaves the
        index), keep each term's document frequency, and store the entry."""
        old: dict[str, Any] = entry["terms"]
        until = policy.get("repealed_on")
        length = sum(new.values())
        for term in old.keys() - new.keys():
            rows.delete(POSTINGS, term, entry["case_id"], entry["entry_id"])
            _df(rows, term, -1)
        for term, tf in new.items():
            rows.put(POSTINGS, {
                "term": term, "case_id": entry["case_id"], "entry_id": entry["entry_id"],
                "department": entry["department"],
                "until": until.isoformat() if until is not None else None,
                "weight": posting_weight(tf, length),
            })
            if term not in old:
                _df(rows, term, +1)
        entry["terms"], entry["length"] = new, length
        rows.put(ENTRIES, entry)

    @staticmethod
    def _count(rows: Rows, change: int) -> None:
        stats = rows.get(STATS, LIVE_ENTRIES) or {"name": LIVE_ENTRIES, "value": 0}
        stats["value"] += change
        rows.put(STATS, stats)


def _df(rows: Rows, term: str, change: int) -> None:
    found = rows.get(TERMS, term)
    df = (found["df"] if found else 0) + change
    if df > 0:
        rows.put(TERMS, {"term": term, "df": df})
    else:
        rows.delete(TERMS, term)
