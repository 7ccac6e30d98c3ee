"""Findings end to end: facts published to the intake, findings derived by the rules engine next
to them, projected by the runner into SQLite and PostgreSQL, and read with `jiedu findings`.

PostgreSQL tests use a fresh schema each and skip when the server is unreachable, unless
JIEDU_REQUIRE_POSTGRES=1, when they fail instead (as in test_projector.py).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import typer
from nats.aio.client import Client
from typer.testing import CliRunner, Result

import factories as f
from events.codec import loads
from logtools import drained, events, publish
from pgtools import PG_URL, drop_schema, postgres_or_skip
from projections.base import Row
from projections.findings import FINDINGS, Findings
from services.adapters.readmodels import ReadStore, open_store
from services.cli.read import register
from services.projector import Feed, Projector, head, wait_caught_up

FINDINGS_PROJECTION = Findings()


class Store:
    """One read-model store of a dialect, and the DATABASE_URL the CLI is given for it."""

    def __init__(self, dialect: str, tmp_path: Path) -> None:
        self.schema = f"t_{uuid.uuid4().hex[:10]}_findings" if dialect == "postgresql" else None
        if self.schema is None:
            self.url = f"sqlite:///{tmp_path / 'findings.sqlite3'}"
        else:
            self.url = f"{PG_URL}?schema={self.schema}"
        self.store: ReadStore = open_store(self.url, tmp_path)

    def close(self) -> None:
        self.store.close()
        if self.schema is not None:
            drop_schema(self.schema)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "postgresql":
        postgres_or_skip()
    made = Store(request.param, tmp_path)
    yield made
    made.close()


def e(type_: str, case_id: str, **data: Any) -> dict[str, Any]:
    made: dict[str, Any] = f.envelope(type_, case_id, **data)
    return made


async def expected(nc: Client) -> list[Row]:
    """The findings computed in memory from the whole log: what the store must hold."""
    feed = await Feed(nc.jetstream(), 1).open()
    top, msgs = await head(nc.jetstream()), list[Any]()
    try:
        while len(msgs) < top:
            msgs += await feed.take(1000, 5.0)
    finally:
        await feed.close()
    logged = [(m.metadata.sequence.stream, loads(m.data)) for m in msgs]
    return FINDINGS_PROJECTION.run(logged).rows(FINDINGS)


def cli(store: Store, data_dir: Path, *args: str) -> Result:
    app = typer.Typer()
    register(app)
    return CliRunner().invoke(
        app, ["findings", *args, "--data-dir", str(data_dir)],
        env={"DATABASE_URL": store.url, "COLUMNS": "200"},
    )


async def test_findings_from_the_intake_are_projected_resolved_and_listed(
    nc: Client, intake: object, store: Store, tmp_path: Path
) -> None:
    js = nc.jetstream()
    projector = Projector(js, store.store, FINDINGS_PROJECTION)
    stop = asyncio.Event()
    task = asyncio.create_task(projector.run(stop))
    await asyncio.wait_for(projector.ready.wait(), 30)

    # REV-5: issued with no review signed at all (未经审核 … 一律不得对外发布): never resolved.
    issued = f.issued("F-REV")
    await publish(nc, f.draft("F-REV"))
    await publish(nc, issued)
    # SYNC-1: submitted without the plan (三同步), then resubmitted with it: resolved.
    incomplete = f.draft("F-SYNC", plan=None)
    resubmitted = e("DraftResubmitted", "F-SYNC", plan=f.plan(), materials=[f.material()])
    await publish(nc, incomplete)
    await publish(nc, resubmitted)
    await drained(nc)
    await wait_caught_up(js, store.store, [FINDINGS_PROJECTION], timeout=30)
    stop.set()
    await task

    rows = await asyncio.to_thread(store.store.select, FINDINGS_PROJECTION, FINDINGS)
    assert rows == await expected(nc)  # the store holds exactly what the log means
    by_rule = {(r["case_id"], r["rule_id"]): r for r in rows}
    rev = by_rule["F-REV", "REV-5"]
    assert (rev["status"], rev["severity"], rev["department"]) == ("open", "violation", "drc")
    assert rev["fact_event_id"] == issued["event_id"] and rev["rule_set"] == "yuzhong-2021"
    assert {"event_id": issued["event_id"], "sequence": None} in rev["evidence"]
    assert "审核" in rev["message_zh"] and rev["resolved_by"] is None

    sync = by_rule["F-SYNC", "SYNC-1"]
    assert sync["fact_event_id"] == incomplete["event_id"]
    assert (sync["status"], sync["resolved_by"]) == ("resolved", resubmitted["event_id"])
    assert sync["resolved_seq"] > sync["recorded_seq"]
    logged = {ev["event_id"]: seq for seq, ev in await events(nc)}
    assert sync["recorded_seq"] == logged[sync["finding_id"]]  # the finding event's own position
    assert sync["resolved_seq"] == logged[f"{sync['finding_id']}-resolved"]
    assert logged[incomplete["event_id"]] < sync["recorded_seq"] < logged[resubmitted["event_id"]]

    # `jiedu findings`, reading the same store (a worker thread: the CLI blocks)
    listed = await asyncio.to_thread(cli, store, tmp_path, "--json")
    assert listed.exit_code == 0, listed.output
    assert orjson.loads(listed.stdout) == orjson.loads(orjson.dumps(rows))
    open_rev = await asyncio.to_thread(cli, store, tmp_path, "--rule", "rev-5", "--status", "open",
                                       "--json")
    assert [(r["case_id"], r["rule_id"]) for r in orjson.loads(open_rev.stdout)] == [
        ("F-REV", "REV-5")]
    of_case = await asyncio.to_thread(cli, store, tmp_path, "--case", "F-SYNC", "--json")
    assert {r["case_id"] for r in orjson.loads(of_case.stdout)} == {"F-SYNC"}
    none = await asyncio.to_thread(cli, store, tmp_path, "--department", "finance", "--json")
    assert orjson.loads(none.stdout) == []

    table = await asyncio.to_thread(cli, store, tmp_path)
    assert table.exit_code == 0, table.output
    line = next(x for x in table.stdout.splitlines() if "F-SYNC" in x and "SYNC-1" in x)
    assert "resolved" in line and "未一并报送解读方案" in line  # the Chinese message is shown

    counts = await asyncio.to_thread(cli, store, tmp_path, "--counts", "--json")
    tallied = {g["rule_id"]: g for g in orjson.loads(counts.stdout)}
    assert tallied["REV-5"]["open"] >= 1 and tallied["SYNC-1"] == {
        "rule_id": "SYNC-1", "open": 0, "resolved": 1, "total": 1}
    assert sum(g["total"] for g in tallied.values()) == len(rows)
    per_dept = await asyncio.to_thread(cli, store, tmp_path, "--counts", "--by-department")
    assert per_dept.exit_code == 0 and "drc" in per_dept.stdout and "SYNC-1" in per_dept.stdout

    bad = await asyncio.to_thread(cli, store, tmp_path, "--status", "closed")
    assert bad.exit_code == 2


async def test_evidence_names_every_event_already_stored_by_its_log_sequence(
    nc: Client, intake: object
) -> None:
    """Issue 13, defect 3: REV-5 (未经审核 … 一律不得对外发布) cited the signatures already in the
    log with ``"sequence": null`` when the intake judged the issue on the case it had cached
    since appending them. Every event the log held when the finding was judged carries its
    position; only the fact being judged, appended in the same batch, has none yet."""
    case = "F-SEQ"
    draft = f.draft(case)
    section = e("ReviewSigned", case, stage="section_head", signer="王五")
    deputy = e("ReviewSigned", case, stage="deputy_head", signer="李四")
    issued = f.issued(case)
    for fact in (draft, section, deputy, issued):  # one at a time: the intake keeps the case
        await publish(nc, fact)
        await drained(nc)
    logged = await events(nc)
    at = {ev["event_id"]: seq for seq, ev in logged}
    [rev5] = [
        ev["data"] for _, ev in logged
        if ev["type"] == "FindingRecorded" and ev["data"]["rule_id"] == "REV-5"
    ]
    assert rev5["evidence"] == [
        {"event_id": issued["event_id"]},  # the wire form leaves an unknown sequence out
        {"event_id": section["event_id"], "sequence": at[section["event_id"]]},
        {"event_id": deputy["event_id"], "sequence": at[deputy["event_id"]]},
    ]
    assert at[deputy["event_id"]] < at[issued["event_id"]] < at[rev5["finding_id"]]
