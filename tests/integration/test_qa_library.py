"""The Q&A library on SQLite and PostgreSQL (QA-1, QA-2): an entry's life as search sees it,
the same results on both stores (a fixture library, then the whole evaluation set), and a
rebuild equal to live processing.

PostgreSQL tests use a fresh schema each and skip when the server is unreachable, unless
JIEDU_REQUIRE_POSTGRES=1, when they fail instead.
"""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
from nats.aio.client import Client
from typer.testing import CliRunner

import factories as f
from events import streams
from events.catalogue import Event
from events.codec import decode
from pgtools import Stores
from projections.base import MemoryRows
from projections.qa_library import QALibrary
from services.adapters.eventlog import EventLog
from services.adapters.readmodels import ReadStore, open_store
from services.cli import app
from services.projector import Projector, rebuild, wait_caught_up
from services.qa import QASearch
from services.tools import bench_qa, qa_set

LIBRARY = QALibrary()




# ── a small library of our own ───────────────────────────────────────────────────────────────


def _entry(case: str, entry_id: str, dept: str, question: str, answer: str,
           **over: Any) -> dict[str, Any]:
    return f.qa_entry(case, entry_id, dept, question=question, answer=answer, keywords=[],
                      material_id=None, benefit_office=None, **over)


def library() -> list[dict[str, Any]]:
    """Three policies of three departments, their entries, a revision, a withdrawal and a
    repeal dated 2026-10-01."""
    return [
        f.draft("HS-1", "housing", title="渝中区公共租赁住房管理办法"), f.issued("HS-1", "housing"),
        _entry("HS-1", "h1", "housing", "公共租赁住房怎么申请？",
               "持身份证和收入证明到所在街道社区服务中心提交申请，区住房城乡建委审核。"),
        _entry("HS-1", "h2", "housing", "公共租赁住房租金标准是多少？",
               "租金按同地段市场租金的百分之六十确定，每两年调整一次。"),
        _entry("HS-1", "h3", "housing", "公租房可以转租吗？", "承租人不得转租、转借公共租赁住房。"),
        f.draft("HR-1", "hrss", title="渝中区社会保险补贴实施办法"), f.issued("HR-1", "hrss"),
        _entry("HR-1", "r1", "hrss", "灵活就业人员社会保险补贴怎么申领？",
               "符合条件的灵活就业人员可每年申领一次社会保险补贴，向区就业服务中心申请。"),
        _entry("HR-1", "r2", "hrss", "社会保险断缴后如何补缴？", "到区社保经办机构办理补缴手续。"),
        _entry("HR-1", "r1", "hrss", "灵活就业人员社会保险补贴每年申领几次？",
               "每年申领一次，补贴标准为实际缴费额的三分之二。", type_="QAEntryRevised"),
        f.withdrawn("HR-1", "r2"),
        f.draft("DR-1", "drc", title="渝中区楼宇经济扶持办法"), f.issued("DR-1", "drc"),
        _entry("DR-1", "d1", "drc", "楼宇经济扶持资金怎么申请？",
               "每年三月通过区发展改革委网站申报，附营业执照和纳税证明。"),
        f.repealed("DR-1", on="2026-10-01"),
    ]


def _events(raw: list[dict[str, Any]]) -> list[Event]:
    return [decode(f.dumps(e)) for e in raw]


def fill(store: ReadStore, events: list[Event]) -> None:
    """Apply events as the runner's unit of work does, one batch of a few at a time."""
    bench_qa.project(store, LIBRARY, events, batch=3)


SUMMER, WINTER = date(2026, 9, 1), date(2026, 11, 1)
QUESTIONS = ["公租房咋申请", "公共租赁住房租金多少钱", "公租房能不能转租给别人", "社保补贴怎么领",
             "社保断了怎么补", "楼宇扶持资金几月份申请", "明天会下雨吗", "补贴"]


def _ids(search: QASearch, question: str, **kw: Any) -> list[str]:
    return [h.entry_id for h in search.search(question, **kw).hits]


# ── tests ────────────────────────────────────────────────────────────────────────────────────


def test_qa1_an_entrys_life_as_the_search_sees_it(stores: Stores) -> None:
    store = stores("life")
    fill(store, _events(library()))
    search = QASearch(store)
    assert _ids(search, "廉租房咋申请", as_of=SUMMER)[0] == "h1"  # 廉租房 → 公共租赁住房
    assert _ids(search, "公租房可以转租吗", as_of=SUMMER)[0] == "h3"
    # revised: found by its new wording
    assert _ids(search, "补贴每年申领几次", as_of=SUMMER)[0] == "r1"
    assert search.search("补贴每年申领几次", as_of=SUMMER).hits[0].question == (
        "灵活就业人员社会保险补贴每年申领几次？")
    # withdrawn: gone from the search
    assert "r2" not in _ids(search, "社会保险断缴后如何补缴", limit=10, as_of=SUMMER)
    # repealed on 2026-10-01: in force the day before, out of the library on the day
    assert _ids(search, "楼宇经济扶持资金怎么申请", as_of=date(2026, 9, 30))[0] == "d1"
    assert "d1" not in _ids(search, "楼宇经济扶持资金怎么申请", limit=10, as_of=date(2026, 10, 1))
    # the department library (部门级) against the district's (区级)
    assert set(_ids(search, "申请", limit=10, department="housing", as_of=SUMMER)) <= {
        "h1", "h2", "h3"}
    assert {"h1", "r1", "d1"} <= set(_ids(search, "申请", limit=10, as_of=SUMMER))
    # with the policies' own facts beside each hit
    best = search.search("廉租房咋申请", as_of=SUMMER).hits[0]
    assert (best.case_id, best.department, best.policy_title) == (
        "HS-1", "housing", "渝中区公共租赁住房管理办法")


def test_qa4_a_question_the_library_cannot_answer_is_declined(stores: Stores) -> None:
    store = stores("declined")
    fill(store, _events(library()))
    search = QASearch(store)
    assert search.search("公共租赁住房怎么申请？", as_of=SUMMER).answerable
    for question in ("明天渝中区会下雨吗", "驾照到期了去哪里换"):
        assert not search.search(question, as_of=SUMMER).answerable
    assert search.search("，。？", as_of=SUMMER).hits == ()  # no term at all


def test_qa1_entries_are_shown_with_their_policy_and_whether_it_is_in_force(
    stores: Stores,
) -> None:
    store = stores("show")
    fill(store, _events(library()))
    search = QASearch(store)
    [d1] = search.entries("d1")
    assert d1["policy"]["repealed_on"] == date(2026, 10, 1) and d1["live"]
    [r2] = search.entries("r2", "HR-1")
    assert (r2["status"], r2["live"], r2["policy"]["title"]) == (
        "withdrawn", False, "渝中区社会保险补贴实施办法")
    assert search.entries("nope") == []


def _results(search: QASearch, questions: list[str], as_of: date) -> list[dict[str, Any]]:
    return [search.search(q, limit=5, as_of=as_of).as_dict() for q in questions]


def test_qa2_the_same_results_on_sqlite_and_postgresql(
    lite_stores: Stores, pg_stores: Stores
) -> None:
    events = _events(library())
    lite, pg = lite_stores("same"), pg_stores("same")
    fill(lite, events)
    fill(pg, events)
    for day in (SUMMER, WINTER):
        on_lite = _results(QASearch(lite), QUESTIONS, day)
        assert on_lite == _results(QASearch(pg), QUESTIONS, day)
        assert sum(len(r["results"]) for r in on_lite) >= len(QUESTIONS)


def test_qa2_the_same_results_on_both_stores_over_the_evaluation_set(
    lite_stores: Stores, pg_stores: Stores
) -> None:
    """Every citizen question and every unanswerable one, top 5 with scores: identical."""
    qa = qa_set.load()
    events = list(bench_qa.library_events(qa))
    lite, pg = lite_stores("set"), pg_stores("set")
    bench_qa.project(lite, LIBRARY, events)
    bench_qa.project(pg, LIBRARY, events)
    questions = [q for q, _ in qa.questions()] + list(qa.unanswerable)
    assert len(questions) >= 330
    on_lite = _results(QASearch(lite), questions, SUMMER)
    assert on_lite == _results(QASearch(pg), questions, SUMMER)
    assert sum(r["answerable"] for r in on_lite) > len(questions) / 3


async def _append(nc: Client, raw: list[dict[str, Any]], last: dict[str, int]) -> None:
    """Append straight to EVENTS, each case in order, as the intake would after accepting
    (`last`: each case's last sequence so far)."""
    log = EventLog(nc)
    for event in raw:
        subject = streams.event_subject(event["department"], event["case_id"], event["type"])
        [last[event["case_id"]]] = await log.append(
            event["case_id"], [(subject, orjson.dumps(event), {})],
            expected_last=last.get(event["case_id"], 0),
        )


async def test_qa1_rebuild_equals_live_processing(nc: Client, stores: Stores) -> None:
    js, store = nc.jetstream(), stores("rebuild")
    raw = library()
    last: dict[str, int] = {}
    await _append(nc, raw[:9], last)
    projector = Projector(js, store, LIBRARY, batch=4)
    stop = asyncio.Event()
    task = asyncio.create_task(projector.run(stop))
    await asyncio.wait_for(projector.ready.wait(), 30)
    await _append(nc, raw[9:], last)
    await wait_caught_up(js, store, [LIBRARY], timeout=30)
    live = await asyncio.to_thread(store.dump, LIBRARY)
    stop.set()
    await task
    expected = LIBRARY.run(enumerate(_events(raw), start=1), MemoryRows())
    assert live == {t.name: expected.rows(t) for t in LIBRARY.tables}
    gen = await rebuild(js, store, LIBRARY, batch=5)
    assert gen.number == 2
    assert await asyncio.to_thread(store.dump, LIBRARY) == live


def test_qa_search_and_show_on_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`jiedu qa search` prints the results in rank order with `answerable`; `jiedu qa show`
    one entry with its policy, exit 1 for none."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    store = open_store(None, tmp_path)
    fill(store, _events(library()))
    store.close()
    run = CliRunner().invoke
    args = ["--data-dir", str(tmp_path), "--as-of", "2026-09-01"]
    found = run(app, ["qa", "search", "廉租房咋申请", "--json", *args])
    assert found.exit_code == 0, found.output
    body = orjson.loads(found.stdout)
    assert body["answerable"] is True and body["question"] == "廉租房咋申请"
    first = body["results"][0]
    assert {k: first[k] for k in ("entry_id", "department", "case_id")} == {
        "entry_id": "h1", "department": "housing", "case_id": "HS-1"}
    assert {"question", "answer", "score"} <= first.keys()
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)
    housing = run(app, ["qa", "search", "申请", "--department", "drc", "--json", "--limit", "1",
                        *args])
    assert [r["entry_id"] for r in orjson.loads(housing.stdout)["results"]] == ["d1"]
    text = run(app, ["qa", "search", "廉租房咋申请", *args])
    assert "1. [housing HS-1 h1] 公共租赁住房怎么申请？" in text.stdout

    shown = run(app, ["qa", "show", "d1", "--json", "--data-dir", str(tmp_path)])
    [entry] = orjson.loads(shown.stdout)
    assert entry["policy"]["repealed_on"] == "2026-10-01" and entry["policy"]["title"] == (
        "渝中区楼宇经济扶持办法")
    human = run(app, ["qa", "show", "h1", "--data-dir", str(tmp_path)]).stdout
    assert "Q: 公共租赁住房怎么申请？" in human and "[in force]" in human
    missing = run(app, ["qa", "show", "nope", "--data-dir", str(tmp_path)])
    assert missing.exit_code == 1 and "no entry nope" in missing.stderr
