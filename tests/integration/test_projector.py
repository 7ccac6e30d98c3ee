"""The projection runner on SQLite and PostgreSQL against a real nats-server: exactly once,
the same read model on both, rebuilds without downtime, and a `kill -9` mid-stream.

PostgreSQL tests use a fresh schema each and skip when the server is unreachable, unless
JIEDU_REQUIRE_POSTGRES=1, when they fail instead.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import typer
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from typer.testing import CliRunner

import factories as f
from events import streams
from events.catalogue import Event
from events.codec import loads
from harness import HARNESS
from logtools import drained, publish
from pgtools import Stores
from projections.base import MemoryRows, Projection, Row, Rows, Table, Type
from projections.case_summary import CASES, CaseSummary
from services import bootstrap
from services.adapters.config import Settings
from services.adapters.eventlog import EventLog, ensure_streams
from services.adapters.readmodels import ReadStore
from services.cli.read import register
from services.projector import (
    Feed,
    Projector,
    ProjectorService,
    RowCache,
    Step,
    VersionConflict,
    commit_batch,
    head,
    lags,
    rebuild,
    stored_of,
    take_arrived,
    wait_caught_up,
)

ROOT = Path(__file__).resolve().parents[2]
SUMMARY = CaseSummary()


# ── stores ───────────────────────────────────────────────────────────────────────────────────


StoreFactory = Callable[[str], ReadStore]




# ── events in the log ────────────────────────────────────────────────────────────────────────

DEPARTMENTS = ("drc", "finance", "hrss", "education", "jiefangbei")
SCOPES = ("normative", "high_impact", "designated", "out_of_scope")


def story(i: int) -> list[dict[str, Any]]:
    """One case's events, varied by its number: every status, materials, findings, counts."""
    case, dept = f"C-{i:05d}", DEPARTMENTS[i % len(DEPARTMENTS)]

    def e(type_: str, **data: Any) -> dict[str, Any]:
        made: dict[str, Any] = f.envelope(type_, case, dept, **data)
        return made

    out = [f.draft(case, dept, scope=SCOPES[i % len(SCOPES)])]
    if i % 3 == 0:
        out += [f.consultation(case, "q1", dept), f.answer(case, "q1", dept)]
    if i % 11:
        out.append(e("ReviewSigned", stage="section_head", signer="王五"))
    if i % 5 == 0:
        out.append(e("SubmissionReturned", missing=["plan"]))
        if i % 10 == 0:
            out.append(e("DraftResubmitted", plan=f.plan()))
    if i % 7 == 0:
        out.append(e("FindingRecorded", finding_id=f"f{i}", rule_id="REV-1", rule_set="2021",
                     severity="warning", evidence=[{"event_id": out[-1]["event_id"]}],
                     message_zh="审核顺序不符", message_en="review out of order"))
        if i % 14 == 0:
            out.append(e("FindingResolved", finding_id=f"f{i}", resolved_by={"event_id": "x"}))
    if i % 2 == 0:
        out.append(f.issued(case, dept))
        for form, channel in (("text", "government_website"), ("chart", "wechat"))[: i % 3]:
            out.append(e("MaterialPublished", material_id=f"m-{form}", form=form, channel=channel,
                         published_on="2026-07-20"))
    return out


async def append(nc: Client, cases: range) -> int:
    """Append the stories of `cases` straight to EVENTS (each case in order, cases interleaved),
    as the intake would after accepting them. Returns the log head."""
    log = EventLog(nc)
    gate = asyncio.Semaphore(100)

    async def one(i: int) -> None:
        async with gate:
            last = 0
            for event in story(i):
                subject = streams.event_subject(event["department"], event["case_id"], event["type"])
                [last] = await log.append(
                    event["case_id"], [(subject, orjson.dumps(event), {})], expected_last=last
                )

    await asyncio.gather(*(one(i) for i in cases))
    return await head(nc.jetstream())


async def expected(nc: Client) -> list[Row]:
    """The case summary computed in memory from the whole log: what every store must hold."""
    msgs = await _all(nc)
    events = [(m.metadata.sequence.stream, loads(m.data)) for m in msgs]
    return SUMMARY.run(events, MemoryRows()).rows(CASES)


async def _all(nc: Client) -> list[Any]:
    feed = await Feed(nc.jetstream(), 1).open()
    top, out = await head(nc.jetstream()), list[Any]()
    try:
        while len(out) < top:
            out += await feed.take(1000, 5.0)
    finally:
        await feed.close()
    return out


async def dump(store: ReadStore) -> list[Row]:
    return (await asyncio.to_thread(store.dump, SUMMARY))["case_summary"]


async def running(projector: Projector) -> tuple[asyncio.Task[None], asyncio.Event]:
    stop = asyncio.Event()
    task = asyncio.create_task(projector.run(stop))
    await asyncio.wait_for(projector.ready.wait(), 30)
    return task, stop


async def caught_up_then_stopped(projector: Projector) -> None:
    """Run the projector until it has reached the log head, then stop it."""
    task, stop = await running(projector)
    await wait_caught_up(projector.js, projector.store, [projector.projection], timeout=30)
    stop.set()
    await task


# ── tests ────────────────────────────────────────────────────────────────────────────────────


async def test_the_live_projector_follows_the_log_and_reports_lag(
    nc: Client, stores: Stores
) -> None:
    js, store = nc.jetstream(), stores("live")
    top = await append(nc, range(60))
    [before] = await lags(js, store, [SUMMARY])
    assert (before.generation, before.position, before.lag) == (None, 0, top)

    projector = Projector(js, store, SUMMARY, batch=50)
    task, stop = await running(projector)
    await wait_caught_up(js, store, [SUMMARY], timeout=30)
    assert await dump(store) == await expected(nc)

    top = await append(nc, range(60, 90))  # more arrives while it runs
    await wait_caught_up(js, store, [SUMMARY], timeout=30)
    [after] = await lags(js, store, [SUMMARY])
    assert (after.state, after.position, after.lag) == ("live", top, 0)
    assert await dump(store) == await expected(nc)
    stop.set()
    await task


async def test_an_event_published_to_the_intake_shows_in_the_case_summary(
    nc: Client, intake: object, stores: Stores
) -> None:
    js, store = nc.jetstream(), stores("e2e")
    task, stop = await running(Projector(js, store, SUMMARY))
    await publish(nc, f.draft("E2E-1"))
    await publish(nc, f.issued("E2E-1"))
    await drained(nc)
    await wait_caught_up(js, store, [SUMMARY], timeout=30)
    [row] = await asyncio.to_thread(store.select, SUMMARY, CASES, {"case_id": "E2E-1"})
    assert (row["status"], row["department"]) == ("issued", "drc")
    assert row["events"] >= 2  # and whatever the intake derived from them
    assert await dump(store) == await expected(nc)
    stop.set()
    await task


async def test_the_feed_answers_flow_control_itself(nc: Client) -> None:
    """The server stops sending to a push consumer until its flow-control request is answered.
    The feed takes messages off the queue itself, so it answers too, as soon as the messages
    sent before the request are taken: with nats-py's own answering (a poll every 0.25 s)
    switched off, the whole log still arrives."""
    js = nc.jetstream()
    subject = streams.event_subject("drc", "C-1", "DraftSubmitted")
    body = b"x" * 8000  # the feed does not decode: bytes enough to make the server ask
    await asyncio.gather(*[await js.publish_async(subject, body) for _ in range(3000)])
    top = await head(js)
    feed = await Feed(js, 1).open()
    try:
        assert feed.sub is not None
        jsi = feed.sub._sub._jsi
        assert jsi is not None and jsi._fctask is not None
        jsi._fctask.cancel()  # only the feed answers now
        asked = 0
        schedule = jsi.schedule_flow_control_response

        def counted(reply: str) -> None:
            nonlocal asked
            asked += 1
            schedule(reply)

        jsi.schedule_flow_control_response = counted  # type: ignore[method-assign]
        got: list[Any] = []
        while len(got) < top:
            batch = await feed.take(500, 3.0)
            assert batch, f"stalled after {len(got)} of {top} messages"
            got += batch
            await asyncio.sleep(0.02)  # a commit: more arrives meanwhile
        assert asked > 0  # the server did ask while messages were waiting
        assert [stored_of(m).seq for m in got] == list(range(1, top + 1))
    finally:
        await feed.close()


async def test_a_reader_stopped_as_a_message_arrives_stops() -> None:
    """Regression (a local CI run: `test_a_streamed_replay_writes_…` waited for ever): nats-py's
    `next_msg` lost a cancellation that came in the same turn of the loop as a message, so the
    audit's log reader, told to stop, read on and blocked on its full queue, and `pipe` waited
    for it. `take_arrived` keeps the cancellation."""

    class Open:
        is_closed = False

    sub = Subscription(Open(), id=1, subject=streams.ALL_EVENTS)  # its queue alone, no server
    reader = asyncio.create_task(take_arrived(sub, 10, 5.0))
    for _ in range(3):
        await asyncio.sleep(0)  # waiting for a first message
    sub._pending_queue.put_nowait(Msg(None, subject=streams.ALL_EVENTS, data=b"{}"))
    assert reader.cancel()  # in the same turn: the reader has not finished
    with pytest.raises(asyncio.CancelledError):
        await reader


async def test_a_redelivered_batch_changes_nothing(nc: Client, stores: Stores) -> None:
    store = stores("redelivery")
    await append(nc, range(80))
    msgs = await _all(nc)
    assert len(msgs) > 250
    gen = await asyncio.to_thread(store.ensure_live, SUMMARY)

    def commit(batch: list[Any]) -> Any:
        return commit_batch(store, SUMMARY, gen, batch, feed_start=1, live=True)

    first = await asyncio.to_thread(commit, msgs[:100])
    assert (first.step, first.position) == (Step.COMMITTED, 100)
    once = await dump(store)
    again = await asyncio.to_thread(commit, msgs[:100])
    assert (again.step, again.position) == (Step.SKIPPED, 100)
    assert await dump(store) == once
    overlapping = await asyncio.to_thread(commit, msgs[50:150])  # half old, half new
    assert (overlapping.step, overlapping.position) == (Step.COMMITTED, 150)
    events = [(m.metadata.sequence.stream, loads(m.data)) for m in msgs[:150]]
    assert await dump(store) == SUMMARY.run(events).rows(CASES)
    gap = await asyncio.to_thread(
        commit_batch, store, SUMMARY, gen, msgs[200:250], feed_start=201, live=True
    )
    assert (gap.step, gap.position) == (Step.RESTART, 150)  # 151..200 never reached this feed
    assert await asyncio.to_thread(store.position, gen) == 150


async def test_row_caches_of_two_writers_on_one_generation_never_go_stale(
    nc: Client, stores: Stores
) -> None:
    """Each runner keeps its rows from one batch to the next (`RowCache`). When another writer
    commits in between, the position shows it and the rows are read again; a batch that fails
    leaves its runner with no rows at all. So the rows equal one clean run of the log."""
    store = stores("caches")
    await append(nc, range(60))
    msgs = await _all(nc)
    gen = await asyncio.to_thread(store.ensure_live, SUMMARY)
    a, b = RowCache(), RowCache()

    class Broken(CaseSummary):
        def apply(self, event: Event, seq: int, rows: Rows) -> None:
            super().apply(event, seq, rows)
            raise RuntimeError("a projection's bug")

    def commit(batch: list[Any], cache: RowCache, projection: Projection = SUMMARY) -> Any:
        return commit_batch(store, projection, gen, batch, feed_start=1, live=True, cache=cache)

    step = 13  # cases interleave in the log: consecutive batches touch the same cases
    for i, start in enumerate(range(0, len(msgs), step)):
        batch = msgs[start : start + step]
        if i == 4:
            assert a.state
            with pytest.raises(RuntimeError):
                await asyncio.to_thread(commit, batch, a, Broken())
            assert a.state == {}  # what the failed batch changed in memory is gone
        out = await asyncio.to_thread(commit, batch, b if i % 3 == 2 else a)
        assert (out.step, out.position) == (Step.COMMITTED, min(start + step, len(msgs)))
    assert a.state and b.state  # both kept rows between their batches
    events = [(m.metadata.sequence.stream, loads(m.data)) for m in msgs]
    assert await dump(store) == SUMMARY.run(events).rows(CASES)


async def test_two_projectors_on_one_store_apply_each_event_once(
    nc: Client, stores: Stores
) -> None:
    js, store = nc.jetstream(), stores("shared")
    await append(nc, range(80))
    a, b = Projector(js, store, SUMMARY, batch=37), Projector(js, store, SUMMARY, batch=53)
    (ta, sa), (tb, sb) = await running(a), await running(b)
    await append(nc, range(80, 120))
    await wait_caught_up(js, store, [SUMMARY], timeout=30)
    assert await dump(store) == await expected(nc)
    sa.set()
    sb.set()
    await asyncio.gather(ta, tb)


async def test_rebuild_serves_throughout_switches_and_equals_live_processing(
    nc: Client, stores: Stores
) -> None:
    js, store = nc.jetstream(), stores("rebuild")
    await append(nc, range(150))
    projector = Projector(js, store, SUMMARY, batch=40)
    task, stop = await running(projector)
    await wait_caught_up(js, store, [SUMMARY], timeout=30)
    first = projector.generation
    assert first is not None and first.number == 1

    seen: list[int] = []
    reading = True

    async def reader() -> None:  # what a user of `jiedu cases` sees during the rebuild
        while reading:
            seen.append(len(await asyncio.to_thread(store.select, SUMMARY, CASES)))
            await asyncio.sleep(0.005)

    readers = asyncio.create_task(reader())
    writing = asyncio.create_task(append(nc, range(150, 200)))  # the log grows meanwhile
    progress: list[tuple[int, int]] = []
    gen = await rebuild(js, store, SUMMARY, batch=25, progress=lambda p, t: progress.append((p, t)))
    await writing
    reading = False
    await readers

    assert gen.number == 2 and gen.state == "live"
    assert seen and min(seen) >= 150 and seen == sorted(seen)  # never empty, never back in time
    assert progress[-1][0] == progress[-1][1] and progress == sorted(progress)
    assert [g.state for g in await asyncio.to_thread(store.generations, "case_summary")] == [
        "retired", "live"]
    await wait_caught_up(js, store, [SUMMARY], timeout=30)
    assert await dump(store) == await expected(nc)
    await append(nc, range(200, 210))  # the running projector now feeds the new generation
    await wait_caught_up(js, store, [SUMMARY], timeout=30)
    assert projector.generation is not None and projector.generation.name == gen.name
    assert await dump(store) == await expected(nc)
    stop.set()
    await task
    with pytest.raises(Exception, match="case_summary__g1"):
        await asyncio.to_thread(store.dump, SUMMARY, first)  # its tables are gone


async def test_a_later_rebuild_supersedes_an_unfinished_one(nc: Client, stores: Stores) -> None:
    js, store = nc.jetstream(), stores("supersede")
    await append(nc, range(20))
    stale = await asyncio.to_thread(store.create_generation, SUMMARY)  # as if a rebuild died
    gen = await rebuild(js, store, SUMMARY)
    states = {g.name: g.state for g in await asyncio.to_thread(store.generations)}
    assert states == {stale.name: "retired", gen.name: "live"}
    assert await dump(store) == await expected(nc)


class CaseSummaryV2(CaseSummary):
    version = 2


async def test_a_new_projection_version_is_rebuilt_while_the_old_one_serves(
    nc: Client, stores: Stores
) -> None:
    js, store = nc.jetstream(), stores("version")
    await append(nc, range(30))
    await caught_up_then_stopped(Projector(js, store, SUMMARY))

    new = Projector(js, store, CaseSummaryV2())
    task, stop = await running(new)
    assert new.generation is not None and new.generation.version == 2
    assert new.generation.number == 2
    assert await dump(store) == await expected(nc)
    with pytest.raises(VersionConflict):
        await Projector(js, store, SUMMARY).run(asyncio.Event())  # old code must not feed it
    stop.set()
    await task


async def test_the_same_read_model_on_sqlite_and_postgresql(
    nc: Client, lite_stores: Stores, pg_stores: Stores
) -> None:
    js = nc.jetstream()
    await append(nc, range(120))
    lite, pg = lite_stores("same"), pg_stores("same")
    service = ProjectorService(js, lite)
    await service.start()
    await rebuild(js, pg, SUMMARY)
    await wait_caught_up(js, lite, timeout=30)
    await service.stop()
    rows = await dump(lite)
    assert rows == await dump(pg) == await expected(nc)
    assert {r["status"] for r in rows} == {"drafting", "in_review", "returned", "issued", "published"}
    assert any(r["open_findings"] for r in rows) and any(r["materials_by_form"] for r in rows)


async def test_kill_9_mid_stream_then_restart_gives_the_clean_rebuild(
    nc: Client, settings: Settings, stores: Stores
) -> None:
    js = nc.jetstream()
    top = await append(nc, range(2500))
    url = stores.url("killed")
    killed = stores("killed")
    env = {
        **os.environ, "NATS_URL": str(settings.nats_url), "JIEDU_DATA_DIR": str(settings.data_dir),
        "DATABASE_URL": str(url), "JIEDU_LOG_LEVEL": "warning",
    }
    cmd = [sys.executable, "-m", "services.projector", "--batch", "20"]

    proc = await asyncio.create_subprocess_exec(*cmd, cwd=ROOT, env=env)
    try:
        position = 0
        for _ in range(3000):
            live = await asyncio.to_thread(killed.live, "case_summary")
            position = await asyncio.to_thread(killed.position, live) if live else 0
            if position > 0:
                break
            await asyncio.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(proc.wait(), 10) == -signal.SIGKILL
    finally:
        if proc.returncode is None:
            proc.kill()
    at_kill = await asyncio.to_thread(killed.position, "case_summary__g1")
    assert 0 < at_kill < top, "the kill should land mid-stream"

    proc = await asyncio.create_subprocess_exec(*cmd, cwd=ROOT, env=env)
    try:
        await wait_caught_up(js, killed, [SUMMARY], timeout=120, at_least=top)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0  # a graceful stop
    finally:
        if proc.returncode is None:
            proc.kill()

    clean = stores("clean")
    await rebuild(js, clean, SUMMARY)
    assert await dump(killed) == await dump(clean) == await expected(nc)


def test_the_cli_lists_cases_rebuilds_and_reports_lag(settings: Settings, tmp_path: Path) -> None:
    async def fill() -> None:
        client = await bootstrap.connect(str(settings.nats_url), "jiedu-tests", party=HARNESS)
        try:
            await ensure_streams(client.jetstream(), partitions=2)
            await append(client, range(10))
        finally:
            await client.close()

    asyncio.run(fill())
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    env = {"NATS_URL": str(settings.nats_url), "DATABASE_URL": ""}
    args = ["--data-dir", str(tmp_path)]

    built = runner.invoke(app, ["rebuild", "case_summary", *args], env=env)
    assert built.exit_code == 0, built.output
    assert "case_summary__g1 is live" in built.stdout

    listed = runner.invoke(app, ["cases", "--status", "issued", "--json", *args], env=env)
    assert listed.exit_code == 0, listed.output
    rows = orjson.loads(listed.stdout)
    assert rows and {r["status"] for r in rows} == {"issued"}
    assert all(int(r["case_id"][2:]) % 2 == 0 for r in rows)
    by_dept = runner.invoke(app, ["cases", "--department", "drc", "--json", *args], env=env)
    assert {r["department"] for r in orjson.loads(by_dept.stdout)} == {"drc"}
    table = runner.invoke(app, ["cases", *args], env=env)
    assert table.exit_code == 0 and "C-00000" in table.stdout
    assert runner.invoke(app, ["cases", "--status", "lost", *args], env=env).exit_code == 2

    lag = runner.invoke(app, ["lag", "--json", *args], env=env)
    assert lag.exit_code == 0, lag.output
    [row] = [r for r in orjson.loads(lag.stdout) if r["projection"] == "case_summary"]
    assert (row["projection"], row["state"], row["lag"]) == ("case_summary", "live", 0)


class Fragile(Projection):
    """Counts each case's events, but its first `failures` batches raise (a bug, a bad row)."""

    name = "fragile"
    version = 1
    tables = (Table("fragile", {"case_id": Type.TEXT, "events": Type.INT}, key=("case_id",)),)

    def __init__(self, failures: int) -> None:
        self.failures = failures

    def apply(self, event: Event, seq: int, rows: Rows) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("fragile: failing on purpose")
        row = rows.get(self.tables[0], event.case_id) or {"case_id": event.case_id, "events": 0}
        rows.put(self.tables[0], {**row, "events": row["events"] + 1})


async def test_projections_read_the_log_together_and_a_failing_one_goes_on_alone(
    nc: Client, stores: Stores
) -> None:
    """All projections run from one feed, starting from different positions; one that raises
    leaves the group, the others keep up, and it catches up alone once it stops failing."""
    js, store = nc.jetstream(), stores("together")
    await append(nc, range(20))
    await caught_up_then_stopped(Projector(js, store, SUMMARY))  # ahead of the fragile one
    top = await append(nc, range(20, 40))

    fragile = Fragile(failures=2)
    service = ProjectorService(js, store, [SUMMARY, fragile])
    await service.start()
    try:
        await wait_caught_up(js, store, [SUMMARY, fragile], timeout=60, at_least=top)
    finally:
        await service.stop()
    assert fragile.failures == 0
    assert await dump(store) == await expected(nc)
    counted = (await asyncio.to_thread(store.dump, fragile))["fragile"]
    by_case = {r["case_id"]: r["events"] for r in await expected(nc)}
    assert {r["case_id"]: r["events"] for r in counted} == by_case
