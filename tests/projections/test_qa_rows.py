"""The Q&A library projection in memory (QA-1): the rows each step of an entry's life leaves,
and the search terms (characters, pairs, synonyms)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import factories as f
from domain.qa_text import Analyser, confidence, idf, posting_weight
from events.catalogue import Event
from events.codec import decode
from projections.base import MemoryRows
from projections.qa_library import (
    ENTRIES,
    POLICIES,
    POSTINGS,
    STATS,
    TERMS,
    QALibrary,
    indexed_text,
)

ANALYSER = Analyser({"社保": ["社会保险"], "公租房": ["公共租赁住房"]})


def _run(*events: dict[str, Any]) -> MemoryRows:
    decoded: list[Event] = [decode(f.dumps(e)) for e in events]
    return QALibrary(ANALYSER).run(enumerate(decoded, start=1))


def _postings(rows: MemoryRows, entry_id: str) -> dict[str, int]:
    return {p["term"]: p["weight"] for p in rows.rows(POSTINGS) if p["entry_id"] == entry_id}


def _df(rows: MemoryRows) -> dict[str, int]:
    return {t["term"]: t["df"] for t in rows.rows(TERMS)}


def _expected_df(rows: MemoryRows) -> Counter[str]:
    """Document frequencies counted from the postings themselves."""
    return Counter(p["term"] for p in rows.rows(POSTINGS))


# ── terms ────────────────────────────────────────────────────────────────────────────────────


def test_qa2_text_is_cut_into_characters_and_adjacent_pairs_within_runs() -> None:
    assert ANALYSER.tokens("社保卡") == ("社", "保", "卡", "社保", "保卡")
    # punctuation ends a run; stop characters are no terms alone but stay in pairs
    assert ANALYSER.tokens("补贴的，标准") == ("补", "贴", "补贴", "贴的", "标", "准", "标准")
    assert ANALYSER.tokens("Ａ级 OK") == ("ａ", "级", "ａ级", "o", "k", "ok")


def test_qa2_a_synonym_in_a_question_joins_what_it_stands_for_in_one_group() -> None:
    groups = ANALYSER.query("社保断了")
    assert ("断",) in groups and ("断了",) in groups and ("保断",) in groups
    social = next(g for g in groups if "社保" in g)
    assert set(social) == {"社", "保", "社保", "会", "险", "社会", "会保", "保险"}
    assert ("社",) not in groups  # its characters count once, in its group
    assert ANALYSER.query("怎么申请") == (("怎",), ("申",), ("怎么",), ("么申",), ("申请",))


def test_qa2_the_district_synonym_table_is_read_from_the_data() -> None:
    district = Analyser.from_files()
    assert "社会保险" in district.synonyms["社保"]
    assert any("社会" in g for g in district.query("社保怎么交"))


def test_bm25_is_whole_numbers() -> None:
    assert posting_weight(1, 10) > posting_weight(1, 1000)  # short entries weigh more
    assert posting_weight(3, 100) > posting_weight(1, 100)
    assert isinstance(posting_weight(2, 77), int) and isinstance(idf(3, 10), int)
    assert idf(0, 100) > idf(50, 100) > 0


def test_qa4_confidence_is_the_weighted_share_of_the_question_an_entry_holds() -> None:
    idfs = {"a": 1000, "b": 3000, "c": 500, "c2": 2000}
    groups = [("a",), ("b",), ("c", "c2")]  # c2: what the synonym c stands for
    assert confidence(groups, idfs, {"a", "b", "c2"}) == 1.0
    assert confidence(groups, idfs, {"a"}) == 1000 / 6000
    assert confidence(groups, idfs, {"c"}) == 2000 / 6000  # a group weighs its rarest term
    assert confidence(groups, idfs, set()) == 0.0 and confidence([], {}, {"a"}) == 0.0


# ── the rows ─────────────────────────────────────────────────────────────────────────────────


def test_qa1_a_published_entry_shows_with_its_policy_and_is_indexed() -> None:
    rows = _run(f.draft("P-1"), f.issued("P-1"), f.qa_entry("P-1", "e1"))
    [policy] = rows.rows(POLICIES)
    assert (policy["title"], policy["document_number"], policy["entries"]) == (
        "关于促进楼宇经济发展的若干措施", "渝中发改发〔2026〕7号", ["e1"])
    assert policy["repealed_on"] is None
    [entry] = rows.rows(ENTRIES)
    assert (entry["department"], entry["status"], entry["question"]) == (
        "drc", "published", "楼宇经济扶持资金怎么申请？")
    assert entry["benefit_office"] == {"name": "区政务服务中心", "address": None,
                                       "contact": "023-63000000", "hours": None}
    terms = Counter(t for text in indexed_text(decode(f.dumps(f.qa_entry("P-1", "e1"))).data,
                                               policy["title"])  # type: ignore[union-attr]
                    for t in ANALYSER.tokens(text))
    assert entry["terms"] == dict(terms) and entry["length"] == sum(terms.values())
    assert _postings(rows, "e1") == {t: posting_weight(n, entry["length"]) for t, n in terms.items()}
    assert _df(rows) == dict.fromkeys(terms, 1)
    assert rows.rows(STATS) == [{"name": "entries", "value": 1}]


def test_qa1_a_revision_replaces_the_wording_and_the_index() -> None:
    rows = _run(f.draft("P-1"), f.qa_entry("P-1", "e1"), f.qa_entry("P-1", "e2"),
                f.qa_entry("P-1", "e1", type_="QAEntryRevised", question="租金补贴标准是多少？",
                           answer="按每平方米每月20元补贴。", keywords=["租金"]))
    e1 = next(e for e in rows.rows(ENTRIES) if e["entry_id"] == "e1")
    assert (e1["question"], e1["revisions"], e1["status"]) == ("租金补贴标准是多少？", 1, "published")
    assert e1["revised_at"] is not None
    assert "租金" in _postings(rows, "e1") and "扶持" not in _postings(rows, "e1")
    assert "扶持" in _postings(rows, "e2")
    assert _df(rows) == dict(_expected_df(rows))
    assert rows.rows(STATS)[0]["value"] == 2


def test_qa1_a_withdrawn_entry_stays_marked_and_leaves_the_index() -> None:
    rows = _run(f.draft("P-1"), f.qa_entry("P-1", "e1"), f.qa_entry("P-1", "e2", question="别的"),
                f.withdrawn("P-1", "e1"))
    e1 = next(e for e in rows.rows(ENTRIES) if e["entry_id"] == "e1")
    assert (e1["status"], e1["withdrawn_reason"]) == ("withdrawn", "政策调整")
    assert _postings(rows, "e1") == {} and _postings(rows, "e2")
    assert _df(rows) == dict(_expected_df(rows))
    assert rows.rows(POLICIES)[0]["entries"] == ["e2"]
    assert rows.rows(STATS)[0]["value"] == 1


def test_qa1_a_repeal_dates_the_policys_postings_and_keeps_its_entries() -> None:
    rows = _run(f.draft("P-1"), f.issued("P-1"), f.qa_entry("P-1", "e1"),
                f.draft("P-2"), f.qa_entry("P-2", "e9"), f.repealed("P-1", on="2026-12-31"))
    policy = next(p for p in rows.rows(POLICIES) if p["case_id"] == "P-1")
    assert (str(policy["repealed_on"]), policy["repeal_kind"]) == ("2026-12-31", "repealed")
    until = {(p["case_id"], p["until"]) for p in rows.rows(POSTINGS)}
    assert until == {("P-1", "2026-12-31"), ("P-2", None)}
    assert {e["status"] for e in rows.rows(ENTRIES)} == {"published"}


def test_events_the_intake_refuses_change_nothing() -> None:
    """A second publication, a revision or withdrawal of nothing (refused upstream) would
    otherwise double-count the index."""
    base = _run(f.draft("P-1"), f.qa_entry("P-1", "e1"))
    after = _run(f.draft("P-1"), f.qa_entry("P-1", "e1"), f.qa_entry("P-1", "e1", question="再来"),
                 f.qa_entry("P-1", "e7", type_="QAEntryRevised"), f.withdrawn("P-1", "e7"))
    for table in (POSTINGS, TERMS, STATS, POLICIES):
        assert after.rows(table) == base.rows(table)
