"""Consultations and the library (QA-4, QA-5) against a real nats-server, intake and stores:
a consultation is matched once, its suggestions land on its case, an answer names the entry
it used, and a question the library could not answer is left for the periodic review.

PostgreSQL tests use a fresh schema each and skip when the server is unreachable, unless
JIEDU_REQUIRE_POSTGRES=1, when they fail instead.
"""

from __future__ import annotations

import asyncio
import functools
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from nats.aio.client import Client

import factories as f
from events.codec import decode
from logtools import drained, events, publish, rejected
from pgtools import Stores
from projections.deadlines import Deadlines
from projections.findings import Findings
from projections.qa_consultations import CONSULTATIONS, QAConsultations
from projections.statistics import Statistics
from services import bootstrap, report
from services.adapters.config import Settings
from services.adapters.readmodels import ReadStore, open_store
from services.matcher import MatcherService, suggestions_of
from services.projector import rebuild
from services.qa import QASearch

HOUSING = "housing"




class Matchers:
    """Matching services, each on a connection of the matcher party."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.running: list[tuple[MatcherService, Client]] = []
        self.stores: list[ReadStore] = []

    async def __call__(self, store: ReadStore) -> MatcherService:
        own = await bootstrap.connect(str(self.settings.nats_url), "jiedu-matcher")
        service = MatcherService(own, store, poll_s=0.05)
        await service.start()
        self.running.append((service, own))
        return service

    def store(self, tmp_path: Path, name: str | None) -> ReadStore:
        """A SQLite store the matchers use, closed only after they have stopped (a store
        closed under a running service's thread is a crash, not a test)."""
        url = f"sqlite:///{tmp_path / name}" if name else None
        store = open_store(url, tmp_path)
        self.stores.append(store)
        return store

    async def close(self) -> None:
        for service, own in self.running:
            await service.stop()
            await own.close()
        for store in self.stores:
            store.close()


@pytest.fixture
async def matchers(settings: Settings) -> AsyncIterator[Matchers]:
    made = Matchers(settings)
    yield made
    await made.close()


def asked(case_id: str, consultation_id: str, question: str) -> dict[str, Any]:
    event = f.consultation(case_id, consultation_id, HOUSING)
    event["data"]["question"] = question
    return event


def answered(case_id: str, consultation_id: str, **over: Any) -> dict[str, Any]:
    event = f.answer(case_id, consultation_id, HOUSING)
    event["data"].update(over)
    return event


def policy(case_id: str = "HS-1") -> list[dict[str, Any]]:
    """A housing policy, issued, with three entries in its library."""
    return [
        f.draft(case_id, HOUSING),
        f.issued(case_id, HOUSING),
        f.qa_entry(case_id, "h1", HOUSING, question="公共租赁住房怎么申请？",
                   answer="持本区户籍或在本区稳定就业的住房困难家庭，向街道便民服务中心提交申请。",
                   keywords=["公租房", "申请"]),
        f.qa_entry(case_id, "h2", HOUSING, question="老旧小区加装电梯有补助吗？",
                   answer="每台电梯补助20万元，由业主共同申请，街道初审后报区住房城乡建委。",
                   keywords=["加装电梯", "补助"]),
        f.qa_entry(case_id, "h3", HOUSING, question="公租房可以转租或者出借吗？",
                   answer="不得转租、出借，违者解除租赁合同并五年内不得再申请。",
                   keywords=["公租房", "转租"]),
    ]


async def send(nc: Client, *raw: dict[str, Any]) -> list[int]:
    sequences = [await publish(nc, e) for e in raw]
    await drained(nc)
    return sequences


async def matched(nc: Client) -> dict[str, dict[str, Any]]:
    """ConsultationMatched in the log, by consultation; fails on a second one."""
    out: dict[str, dict[str, Any]] = {}
    for _, e in await events(nc):
        if e["type"] == "ConsultationMatched":
            key = f'{e["case_id"]}/{e["data"]["consultation_id"]}'
            assert key not in out, f"{key} matched twice"
            out[key] = e
    return out


# ── tests ────────────────────────────────────────────────────────────────────────────────────


async def test_qa4_consultation_suggestions_answer_from_an_entry_and_the_instant_rate(
    nc: Client, intake: object, stores: Stores, matchers: Matchers
) -> None:
    store = stores("flow")
    await send(nc, *policy(), asked("HS-1", "c1", "公租房怎么申请"),
               asked("HS-1", "c2", "明天渝中区会下雨吗"))
    matcher = await matchers(store)
    await matcher.settle()
    found = await matched(nc)
    assert set(found) == {"HS-1/c1", "HS-1/c2"}
    good, bad = found["HS-1/c1"], found["HS-1/c2"]
    assert good["data"]["answerable"] is True
    assert good["data"]["suggestions"][0]["entry_id"] == "h1"
    assert good["data"]["suggestions"][0]["case_id"] == "HS-1"
    assert good["source_system"] == "jiedu-matcher" and good["department"] == HOUSING
    assert bad["data"]["answerable"] is False
    # the hotline's view: the suggestions with the entries' wording
    [shown] = await asyncio.to_thread(suggestions_of, store, "c1")
    assert shown["suggestions"][0]["question"] == "公共租赁住房怎么申请？"

    # answers from the library name their entry; one the case cannot vouch for is refused
    ok = await send(nc, answered("HS-1", "c1", entry_id="h1"))
    unknown = await send(
        nc, answered("HS-1", "c2", entry_id="h9"),
        answered("HS-1", "c2", entry_id="h1", entry_case_id="HS-2"),
    )
    refused = await rejected(nc)
    assert ok[0] not in refused
    assert [refused[s][0] for s in unknown] == ["unknown_reference", "unknown_reference"]
    assert [e["data"].get("entry_id") for _, e in await events(nc)
            if e["type"] == "ConsultationAnswered"] == ["h1"]

    # the report's figures from the same log: one of two consultations answered from an entry
    for projection in (Statistics(), Deadlines(), Findings()):
        await rebuild(nc.jetstream(), store, projection)
    inputs = await asyncio.to_thread(report.load_inputs, store)
    q3 = report.periods(report.Quarter.parse("2026Q3"))[0]
    housing = report.compute(inputs, q3, datetime(2026, 10, 10, tzinfo=UTC))[HOUSING]
    assert {k: len(housing.get(k, ())) for k in (
        "consultations", "consultations_instant", "qa_searches", "qa_searches_answerable",
        "qa_entries")} == {"consultations": 2, "consultations_instant": 1, "qa_searches": 2,
                           "qa_searches_answerable": 1, "qa_entries": 3}
    assert report.rate(housing, ("consultations_instant",), ("consultations",)) == 0.5


async def test_qa4_an_entry_of_another_policy_is_accepted_as_a_suggestion(
    nc: Client, intake: object, stores: Stores, matchers: Matchers
) -> None:
    """A consultation on one policy's case may be answered from another policy's entry, the
    one the library suggested for it; not from one it did not suggest."""
    store = stores("other")
    await send(nc, *policy("HS-1"), f.draft("HS-2", HOUSING),
               asked("HS-2", "c1", "公租房能转租给别人吗"))
    await (await matchers(store)).settle()
    suggestions = (await matched(nc))["HS-2/c1"]["data"]["suggestions"]
    assert suggestions and {s["case_id"] for s in suggestions} == {"HS-1"}
    [ok, other] = await send(
        nc, answered("HS-2", "c1", entry_id=suggestions[0]["entry_id"], entry_case_id="HS-1"),
        answered("HS-2", "c1", entry_id="h9", entry_case_id="HS-1"),
    )
    refused = await rejected(nc)
    assert ok not in refused and refused[other][0] == "unknown_reference"


async def test_qa4_two_matchers_write_each_suggestion_once(
    nc: Client, intake: object, tmp_path: Path, matchers: Matchers
) -> None:
    questions = ["公租房咋申请", "加装电梯补多少钱", "公租房能出借吗", "今天几号"]
    raw = [asked("HS-1", f"c{i}", questions[i % 4]) for i in range(24)]
    await send(nc, *policy())
    first = await matchers(matchers.store(tmp_path, "m1.sqlite3"))
    second = await matchers(matchers.store(tmp_path, "m2.sqlite3"))
    await send(nc, *raw)
    await asyncio.gather(first.settle(), second.settle())
    found = await matched(nc)  # fails on a duplicate
    assert set(found) == {f"HS-1/c{i}" for i in range(24)}
    assert sorted(first.appended + second.appended) == sorted(
        e["event_id"] for e in found.values())


async def test_qa4_consultation_matched_sent_in_is_refused_as_reserved(
    nc: Client, intake: object
) -> None:
    await send(nc, *policy(), asked("HS-1", "c1", "公租房咋申请"))
    forged = f.envelope("ConsultationMatched", "HS-1", HOUSING, consultation_id="c1",
                        suggestions=[{"entry_id": "h1", "case_id": "HS-1", "score": 9.0,
                                      "confidence": 1.0}],
                        answerable=True, threshold=0.45, searched_on="2026-07-06")
    [seq] = await send(nc, forged)
    assert (await rejected(nc))[seq][0] == "reserved_type"


async def test_qa4_rebuild_of_the_consultations_equals_live(
    nc: Client, intake: object, stores: Stores, matchers: Matchers
) -> None:
    store = stores("live")
    await send(nc, *policy(), asked("HS-1", "c1", "公租房咋申请"), asked("HS-1", "c2", "今天几号"))
    await (await matchers(store)).settle()
    await send(nc, answered("HS-1", "c1", entry_id="h1"),
               f.envelope("ConsultationReferred", "HS-1", HOUSING, consultation_id="c2",
                          referred_to=HOUSING))
    await (await matchers(store)).settle()  # and the projection has caught up
    projection = QAConsultations()
    live = await asyncio.to_thread(store.dump, projection)
    expected = projection.run((seq, decode(f.dumps(e))) for seq, e in await events(nc))
    assert live == {t.name: expected.rows(t) for t in projection.tables}
    rows = {r["consultation_id"]: r for r in live[CONSULTATIONS.name]}
    assert rows["c1"]["entry_id"] == "h1" and rows["c2"]["answerable"] is False
    await rebuild(nc.jetstream(), store, projection, batch=3)
    assert await asyncio.to_thread(store.dump, projection) == live



# ── candidates (QA-5) on the command line ────────────────────────────────────────────────────


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "NATS_URL": settings.nats_url or "", "JIEDU_LOG_LEVEL": "warning",
           "JIEDU_CREDENTIALS": str(settings.credentials)}
    env.pop("DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "services.cli", *args], env=env,
                          capture_output=True, timeout=120)


async def test_qa5_referral_answer_by_the_drafting_unit_candidate_published_entry(
    nc: Client, intake: object, settings: Settings, tmp_path: Path, matchers: Matchers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    data = tmp_path / "data"
    store = matchers.store(data, None)
    question = "公租房住满几年可以买下来"
    await send(nc, *policy(), asked("HS-1", "c1", question), asked("HS-1", "c2", "今天几号"))
    matcher = await matchers(store)
    await matcher.settle()
    await send(
        nc,
        f.envelope("ConsultationReferred", "HS-1", HOUSING, consultation_id="c1",
                   referred_to=HOUSING),
        answered("HS-1", "c1", answer="公共租赁住房只租不售，承租满5年后可申请购买保障性住房。",
                 from_library=False, instant=False, by_drafting_unit=True),
    )
    await matcher.settle()  # the projections caught up
    run = functools.partial(asyncio.to_thread, cli, settings)

    listed = await run("qa", "candidates", "--json", "--data-dir", str(data))
    assert listed.returncode == 0, listed.stderr.decode()
    body = orjson.loads(listed.stdout)
    assert [(c["consultation_id"], c["entry_id"]) for c in body["candidates"]] == [("c1", "cand-c1")]
    assert body["candidates"][0]["answer"].startswith("公共租赁住房只租不售")
    assert [r["consultation_id"] for r in body["review"]] == ["c2"]  # no good match
    other = await run("qa", "candidates", "--json", "--department", "drc", "--data-dir", str(data))
    assert orjson.loads(other.stdout) == {"candidates": [], "review": []}
    shown = await run("qa", "suggestions", "c2", "--json", "--data-dir", str(data))
    assert orjson.loads(shown.stdout)[0]["answerable"] is False

    published = await run("qa", "publish-candidate", "c1", "--json", "--data-dir", str(data))
    assert published.returncode == 0, published.stderr.decode()
    assert orjson.loads(published.stdout)["status"] == "accepted"
    [entry] = [e for _, e in await events(nc) if e["type"] == "QAEntryPublished"
               and e["data"]["entry_id"] == "cand-c1"]
    assert (entry["department"], entry["source_system"], entry["data"]["question"]) == (
        HOUSING, "qa-library", question)
    await matcher.settle()
    after = orjson.loads((await run("qa", "candidates", "--json", "--data-dir", str(data))).stdout)
    assert after["candidates"] == [] and [r["consultation_id"] for r in after["review"]] == ["c2"]
    hits = QASearch(store).search(question, as_of=date(2026, 7, 6)).hits
    assert hits[0].entry_id == "cand-c1"  # the library now answers it
    again = await run("qa", "publish-candidate", "c1", "--data-dir", str(data))
    assert again.returncode == 1 and b"no waiting candidate" in again.stderr
    missing = await run("qa", "suggestions", "c9", "--data-dir", str(data))
    assert missing.returncode == 1
