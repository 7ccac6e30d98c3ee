"""The deadline service against a real nats-server and intake, on a fake clock.

Facts go in through the intake as sources send them; the fake clock is moved to each moment of a
timeline and the service is let act until it has nothing more to do (`Rig.quiet`), so months of
deadlines run in seconds and no assertion depends on wall-clock timing. Expected due dates are
worked out by hand from the calendar (July 2026 has no public holiday).
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import typer
from deadline_events import (
    answered,
    at,
    detected,
    draft,
    end_of,
    inspection,
    issued,
    published,
    referred,
    response,
    training,
)
from nats.aio.client import Client
from typer.testing import CliRunner

import factories as f
from domain.calendar import WorkingDayCalendar
from domain.clocks import Action, ClockKeeper, Status, clock_id, deadline_event, fold
from events.catalogue import SYSTEM_TYPES
from events.codec import encode, loads
from logtools import drained, events, publish, rejected
from projections.case_summary import CaseSummary
from projections.deadlines import CLOCKS, Deadlines
from services import bootstrap
from services.adapters.natsserver import NatsServer
from services.adapters.readmodels import ReadStore, open_store
from services.cli.deadlines import register
from services.deadlines import DeadlineService, FakeClock, clock_summary
from services.projector import ProjectorService, rebuild

PACKAGE = WorkingDayCalendar.load(None)
PG_URL = os.environ.get("JIEDU_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
DEADLINE_TYPES = ("DeadlineStarted", "DeadlinePendingCalendar", "DeadlineWarned",
                  "DeadlineBreached", "DeadlineMet")
STARTED, PENDING, WARNED, BREACHED, MET = DEADLINE_TYPES


# ── the rig ──────────────────────────────────────────────────────────────────────────────────


class Rig:
    """A fake clock, read-model stores and deadline services on one nats-server."""

    def __init__(self, nc: Client, tmp_path: Path, start: datetime) -> None:
        self.nc = nc
        self.tmp_path = tmp_path
        self.clock = FakeClock(start)
        self.running: list[DeadlineService] = []
        self.stores: list[ReadStore] = []
        self.schemas: list[str] = []

    def store(self, label: str = "a", dialect: str = "sqlite") -> ReadStore:
        if dialect == "sqlite":
            store = open_store(f"sqlite:///{self.tmp_path / f'{label}.sqlite3'}", self.tmp_path)
        else:
            schema = f"t_dl_{uuid.uuid4().hex[:10]}_{label}"
            self.schemas.append(schema)
            store = open_store(f"{PG_URL}?schema={schema}", self.tmp_path)
        self.stores.append(store)
        return store

    async def service(
        self,
        store: ReadStore,
        *,
        calendar: WorkingDayCalendar = PACKAGE,
        nc: Client | None = None,
        run_projection: bool = True,
    ) -> DeadlineService:
        service = DeadlineService(
            nc or self.nc, store, calendar=calendar, clock=self.clock,
            run_projection=run_projection,
        )
        await service.start()
        self.running.append(service)
        return service

    async def stop(self, service: DeadlineService) -> None:
        await service.stop()
        self.running.remove(service)

    async def close(self) -> None:
        for service in list(self.running):
            await self.stop(service)
        for store in self.stores:
            store.close()
        for schema in self.schemas:
            import psycopg

            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    async def send(self, *raw: dict[str, Any]) -> None:
        """Publish facts as their sources would and wait until the intake has stored them."""
        sequences = []
        for e in raw:
            source = "cyberspace_office/monitor" if e["type"] == "OpinionDetected" else None
            sequences.append(await publish(self.nc, e, source=source))
        await drained(self.nc)
        refused = await rejected(self.nc)
        assert not [refused[s] for s in sequences if s in refused]

    async def quiet(self) -> None:
        """Let every running service act until none has anything more to append."""
        for _ in range(20):
            appended = [await s.scan_once() for s in self.running]
            if not any(appended):
                return
        raise AssertionError("the deadline services never settled")

    async def at(self, moment: datetime, *raw: dict[str, Any]) -> None:
        """Move the clock to ``moment``, send ``raw`` then, and let the services act."""
        if moment > self.clock.now():
            self.clock.set(moment)
        if raw:
            await self.send(*raw)
        await self.quiet()

    async def derived(self) -> list[dict[str, Any]]:
        return [e for _, e in await events(self.nc) if e["type"] in DEADLINE_TYPES]

    async def history(self, key: str) -> list[str]:
        """The derived event types of one clock, in log order."""
        return [e["type"] for e in await self.derived() if e["data"]["clock_id"] == key]

    def rows(self, store: ReadStore) -> dict[str, dict[str, Any]]:
        return {r["clock_id"]: r for r in store.select(Deadlines(), CLOCKS)}


@pytest.fixture
async def rig(nc: Client, intake: object, tmp_path: Path) -> AsyncIterator[Rig]:
    rig = Rig(nc, tmp_path, at("2026-07-01 08:00"))
    yield rig
    await rig.close()


def monitored(e: dict[str, Any]) -> dict[str, Any]:
    """An opinion event as the cyberspace office's monitor sends it."""
    return {**e, "source_system": "monitor"}


def case(case_id: str, when: str = "2026-07-01 09:00") -> dict[str, Any]:
    e = draft(when=when)
    e["case_id"] = case_id
    return e


def on(case_id: str, e: dict[str, Any]) -> dict[str, Any]:
    return {**e, "case_id": case_id}


def received(case_id: str, cid: str, when: str) -> dict[str, Any]:
    e = f.consultation(case_id, cid)
    e["occurred_at"] = at(when).isoformat()
    return e


# ── each rule: met on time, met late, never met ──────────────────────────────────────────────


async def test_publication_clocks_on_time_late_and_never(rig: Rig) -> None:
    store = rig.store()
    await rig.service(store)
    await rig.at(at("2026-07-01 09:00"), case("P-ON"), case("P-LATE"), case("P-NEVER"))
    await rig.at(at("2026-07-06 16:00"), *(on(c, issued("2026-07-06"))
                                          for c in ("P-ON", "P-LATE", "P-NEVER")))
    await rig.at(at("2026-07-20 10:00"), on("P-ON", published("text", when="2026-07-20 10:00")),
                 on("P-ON", published("chart", "wechat", "2026-07-20 10:00")))
    await rig.at(at("2026-07-30 09:00"))  # warned (3 working days left), not yet breached
    assert await rig.history(clock_id("PUB-2", "P-NEVER")) == [STARTED, WARNED]
    await rig.at(end_of("2026-08-03"))  # the due time itself: breached
    await rig.at(at("2026-08-05 10:00"),
                 on("P-LATE", published("text", when="2026-08-05 10:00")),
                 on("P-LATE", published("press_release", "news_media", "2026-08-05 10:00")))
    for rule in ("PUB-2", "PUB-3"):
        assert await rig.history(clock_id(rule, "P-ON")) == [STARTED, MET]
        assert await rig.history(clock_id(rule, "P-LATE")) == [STARTED, WARNED, BREACHED, MET]
        assert await rig.history(clock_id(rule, "P-NEVER")) == [STARTED, WARNED, BREACHED]
    rows = rig.rows(store)
    assert rows[clock_id("PUB-2", "P-ON")]["status"] == Status.MET_ON_TIME
    assert rows[clock_id("PUB-2", "P-LATE")]["status"] == Status.MET_LATE
    assert rows[clock_id("PUB-3", "P-NEVER")]["status"] == Status.BREACHED
    never = [e for e in await rig.derived() if e["data"]["clock_id"] == clock_id("PUB-2", "P-NEVER")]
    warned, breached = never[1], never[2]
    assert datetime.fromisoformat(warned["occurred_at"]) == end_of("2026-07-29")
    assert datetime.fromisoformat(breached["occurred_at"]) == end_of("2026-08-03")
    assert datetime.fromisoformat(breached["data"]["due_at"]) == end_of("2026-08-03")
    assert breached["case_id"] == "P-NEVER" and breached["department"] == "drc"
    assert breached["source_system"] == "jiedu-deadlines" and breached["actor"]["id"] == "jiedu"
    assert breached["data"]["calendar"].startswith("chinesecalendar")
    late = [e for e in await rig.derived() if e["data"]["clock_id"] == clock_id("PUB-2", "P-LATE")]
    assert late[-1]["data"]["met_by"]["event_id"] == rows[clock_id("PUB-2", "P-LATE")]["met_event_id"]


async def test_consultation_clocks_on_time_late_and_never(rig: Rig) -> None:
    await rig.service(rig.store())
    await rig.at(at("2026-07-01 09:00"), case("Q"))
    await rig.at(at("2026-07-10 10:00"),
                 *(received("Q", c, "2026-07-10 09:00") for c in ("RX-ON", "RX-LATE", "RX-NEVER")),
                 *(on("Q", referred(c, "2026-07-10 10:00")) for c in ("RX-ON", "RX-LATE", "RX-NEVER")))
    await rig.at(at("2026-07-13 10:00"), on("Q", answered("RX-ON", "2026-07-13 10:00")))
    await rig.at(at("2026-07-17 23:59:58"))
    assert await rig.history(clock_id("QA-4", "Q", "RX-NEVER")) == [STARTED, WARNED]
    await rig.at(end_of("2026-07-17"))
    await rig.at(at("2026-07-20 11:00"), on("Q", answered("RX-LATE", "2026-07-20 11:00")))
    assert await rig.history(clock_id("QA-4", "Q", "RX-ON")) == [STARTED, MET]
    assert await rig.history(clock_id("QA-4", "Q", "RX-LATE")) == [STARTED, WARNED, BREACHED, MET]
    assert await rig.history(clock_id("QA-4", "Q", "RX-NEVER")) == [STARTED, WARNED, BREACHED]


async def test_opinion_clocks_on_time_late_and_never(rig: Rig) -> None:
    await rig.service(rig.store())
    await rig.at(at("2026-07-01 09:00"), case("O"))
    await rig.at(at("2026-07-06 10:00"),
                 monitored(on("O", detected("YQ-ON", "major", "2026-07-06 10:00"))),
                 monitored(on("O", detected("YQ-LATE", "ordinary", "2026-07-06 10:00"))),
                 monitored(on("O", detected("YQ-NEVER", "high_attention", "2026-07-06 10:00"))))
    await rig.at(at("2026-07-06 20:00"), on("O", response("YQ-ON", "2026-07-06 20:00")))
    await rig.at(at("2026-07-07 04:00"))  # 6 hours before the 24 h clocks end
    assert await rig.history(clock_id("OP-4", "O", "YQ-NEVER")) == [STARTED, WARNED]
    await rig.at(at("2026-07-08 10:00"))  # 24 h and 48 h both over
    await rig.at(at("2026-07-08 12:00"), on("O", response("YQ-LATE", "2026-07-08 12:00")))
    assert await rig.history(clock_id("OP-4", "O", "YQ-ON")) == [STARTED, MET]
    assert await rig.history(clock_id("OP-4", "O", "YQ-LATE")) == [STARTED, WARNED, BREACHED, MET]
    assert await rig.history(clock_id("OP-4", "O", "YQ-NEVER")) == [STARTED, WARNED, BREACHED]


async def test_supervision_clocks_checked_at_period_end(rig: Rig) -> None:
    store = rig.store()
    await rig.service(store)
    await rig.at(at("2026-07-01 09:00"), case("S"))
    await rig.at(at("2026-09-10 15:00"), training("2026-09-10"))
    await rig.at(at("2026-09-30 23:59:58"))
    assert await rig.history("SUP-1:inspection:2026Q3") == [STARTED, WARNED]
    await rig.at(end_of("2026-09-30"))
    await rig.at(at("2026-10-09 15:00"), inspection("2026-10-09", "2026Q3"))
    assert await rig.history("SUP-1:training:2026") == [STARTED, MET]
    assert await rig.history("SUP-1:inspection:2026Q3") == [STARTED, WARNED, BREACHED]
    assert await rig.history("SUP-1:inspection:2026Q4") == [STARTED, MET]
    breach = next(e for e in await rig.derived() if e["type"] == BREACHED)
    assert (breach["case_id"], breach["department"]) == ("sup-1-inspection-2026q3", "gov_office")
    assert rig.rows(store)["SUP-1:inspection:2026Q3"]["status"] == Status.BREACHED


async def test_many_events_on_one_case_go_in_several_atomic_batches(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    import services.deadlines

    monkeypatch.setattr(services.deadlines, "MAX_BATCH", 2)
    service = await rig.service(rig.store())
    await rig.at(at("2026-07-01 09:00"), case("M"))
    opinions = [f"YQ-{i}" for i in range(3)]
    await rig.at(at("2026-07-06 10:00"),
                 *(monitored(on("M", detected(o, "major", "2026-07-06 10:00"))) for o in opinions))
    await rig.at(at("2026-07-08 10:00"))
    for o in opinions:
        assert await rig.history(clock_id("OP-4", "M", o)) == [STARTED, WARNED, BREACHED]
    on_case = [e["event_id"] for e in await rig.derived() if e["case_id"] == "M"]
    assert sorted(on_case) == sorted(i for i in service.appended if i in on_case)
    assert len(on_case) == 9


# ── durability, exactness, replay ─────────────────────────────────────────────────────────────


async def test_timers_survive_a_restart_of_the_service_and_of_nats(
    rig: Rig, nats_server: NatsServer
) -> None:
    store = rig.store()
    first = await rig.service(store)
    await rig.at(at("2026-07-01 09:00"), case("R"))
    await rig.at(at("2026-07-06 16:00"), on("R", issued("2026-07-06")))
    assert await rig.history(clock_id("PUB-2", "R")) == [STARTED]
    await rig.stop(first)

    rig.clock.set(at("2026-08-04 09:00"))  # past the due time while nothing ran
    second = await rig.service(store)
    await rig.quiet()
    assert await rig.history(clock_id("PUB-2", "R")) == [STARTED, WARNED, BREACHED]
    await rig.stop(second)

    nats_server.stop()
    nats_server.start()
    for _ in range(200):  # the intake's connection reconnects by itself
        if rig.nc.is_connected:
            break
        await asyncio.sleep(0.05)
    fresh = await bootstrap.connect(nats_server.url, "jiedu-deadlines")
    try:
        # a new instance with an empty store rebuilds the clocks from the log and adds nothing
        third = await rig.service(rig.store("b"), nc=fresh)
        await rig.quiet()
        assert await rig.history(clock_id("PUB-2", "R")) == [STARTED, WARNED, BREACHED]
        await rig.at(at("2026-08-06 10:00"), on("R", published(when="2026-08-06 10:00")))
        assert await rig.history(clock_id("PUB-2", "R")) == [STARTED, WARNED, BREACHED, MET]
        await rig.stop(third)
    finally:
        await fresh.close()


async def test_scanner_sleeps_until_the_next_time_a_clock_is_owed_something(rig: Rig) -> None:
    service = await rig.service(rig.store())
    await rig.at(at("2026-07-01 09:00"), case("W"))
    await rig.at(at("2026-07-06 10:00"), monitored(on("W", detected("YQ-1", "major", "2026-07-06 10:00"))))
    assert await rig.history(clock_id("OP-4", "W", "YQ-1")) == [STARTED]
    rig.clock.set(at("2026-07-07 03:00"))  # the warning is due at 04:00: sleep the most allowed
    assert await service.next_wait() == service.max_sleep_s == 0.5
    rig.clock.set(at("2026-07-07 04:00") - timedelta(seconds=0.2))
    assert await service.next_wait() == pytest.approx(0.2)
    rig.clock.set(at("2026-07-07 04:00"))
    await rig.quiet()
    assert await rig.history(clock_id("OP-4", "W", "YQ-1")) == [STARTED, WARNED]
    rig.clock.set(at("2026-07-07 10:00") - timedelta(seconds=0.3))  # next: the breach
    assert await service.next_wait() == pytest.approx(0.3)


@pytest.fixture(params=["separate", "shared", "postgresql"])
def layout(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        try:
            import psycopg

            psycopg.connect(PG_URL, connect_timeout=3).close()
        except Exception as e:
            if os.environ.get("JIEDU_REQUIRE_POSTGRES") == "1":
                pytest.fail(f"PostgreSQL unreachable at {PG_URL}: {e}")
            pytest.skip(f"PostgreSQL unreachable at {PG_URL}: {e}")
    return str(request.param)


async def test_two_instances_append_each_derived_event_once(rig: Rig, layout: str) -> None:
    if layout == "separate":
        stores = [rig.store("a"), rig.store("b")]
    else:
        shared = rig.store("a", "postgresql" if layout == "postgresql" else "sqlite")
        stores = [shared, shared]
    for store in stores:
        await rig.service(store)
    opinions = [f"YQ-{i}" for i in range(12)]
    await rig.at(at("2026-07-01 09:00"), case("T"), case("T2"))
    await rig.at(at("2026-07-06 16:00"), on("T", issued("2026-07-06")),
                 *(monitored(on("T2", detected(o, "major", "2026-07-06 16:00"))) for o in opinions))
    # both services race for every warning and breach, driven by their own loops
    rig.clock.set(at("2026-08-04 09:00"))
    wanted = 3 * (2 + len(opinions))  # started, warned, breached for PUB-2, PUB-3 and each opinion
    for _ in range(400):
        if len([e for e in await rig.derived() if e["case_id"] in ("T", "T2")]) >= wanted:
            break
        await asyncio.sleep(0.05)
    await rig.quiet()
    counts = Counter((e["data"]["clock_id"], e["type"]) for e in await rig.derived())
    assert counts and max(counts.values()) == 1
    for o in opinions:
        key = clock_id("OP-4", "T2", o)
        assert [counts[(key, t)] for t in (STARTED, WARNED, BREACHED)] == [1, 1, 1]
    ids = [e["event_id"] for e in await rig.derived()]
    assert len(ids) == len(set(ids))
    if layout == "separate":
        assert rig.rows(stores[0]) == rig.rows(stores[1])


async def test_replay_gives_the_same_due_dates_and_outcomes_as_live(rig: Rig) -> None:
    store = rig.store("live")
    await rig.service(store)
    await rig.at(at("2026-07-01 09:00"), case("A"), case("B"), case("C", "2026-07-02 09:00"))
    await rig.at(at("2026-07-06 16:00"), on("A", issued("2026-07-06")), on("B", issued("2026-07-06")),
                 received("C", "RX-1", "2026-07-06 15:00"), on("C", referred("RX-1", "2026-07-06 16:00")),
                 monitored(on("C", detected("YQ-1", "ordinary", "2026-07-06 16:00"))))
    await rig.at(at("2026-07-09 10:00"), on("A", published(when="2026-07-09 10:00")),
                 on("C", response("YQ-1", "2026-07-09 10:00")))
    await rig.at(at("2026-08-10 10:00"), on("B", published("chart", when="2026-08-10 10:00")),
                 on("C", answered("RX-1", "2026-08-10 10:00")))
    await rig.at(at("2026-10-01 00:00"))
    replayed = rig.store("replay")
    projection = Deadlines(PACKAGE)
    await rebuild(rig.nc.jetstream(), replayed, projection)
    live_rows, replay_rows = store.dump(projection), replayed.dump(projection)
    assert live_rows == replay_rows
    statuses = Counter(r["status"] for r in live_rows["deadline_clocks"])
    summary = clock_summary(store)
    assert sum(n for by_status in summary.values() for n in by_status.values()) == 8
    assert summary["PUB-2"] == {**dict.fromkeys(map(str, Status), 0), "met_on_time": 1,
                                "breached": 1}
    assert statuses == {  # A: text in time, one form; B: a chart only; C: both answers late
        Status.MET_ON_TIME: 1, Status.MET_LATE: 2, Status.BREACHED: 4, Status.OPEN: 1,
    }
    assert all(r["due_at"] is not None for r in live_rows["deadline_clocks"])


async def test_scanner_with_the_projection_kept_by_the_projection_runner(rig: Rig) -> None:
    store = rig.store()
    runner = ProjectorService(rig.nc.jetstream(), store, [CaseSummary(), Deadlines(PACKAGE)])
    await runner.start()
    try:
        await runner.ready()
        await rig.service(store, run_projection=False)
        await rig.at(at("2026-07-01 09:00"), case("E"))
        await rig.at(at("2026-07-06 16:00"), on("E", issued("2026-07-06")))
        await rig.at(at("2026-08-04 09:00"))
        assert await rig.history(clock_id("PUB-2", "E")) == [STARTED, WARNED, BREACHED]
        assert rig.rows(store)[clock_id("PUB-2", "E")]["status"] == Status.BREACHED
    finally:
        for service in list(rig.running):
            await rig.stop(service)
        await runner.stop()


async def test_unknown_year_is_held_pending_then_computed_when_supplied(
    rig: Rig, tmp_path: Path
) -> None:
    store = rig.store()
    service = await rig.service(store)
    await rig.at(at("2026-12-01 09:00"), case("Y", "2026-12-01 09:00"))
    await rig.at(at("2026-12-20 16:00"), on("Y", issued("2026-12-20", "2026-12-20 16:00")))
    key = clock_id("PUB-2", "Y")
    assert await rig.history(key) == [PENDING]
    pending = next(e for e in await rig.derived() if e["type"] == PENDING)
    assert pending["data"].get("due_at") is None
    assert rig.rows(store)[key]["missing_year"] == 2027
    await rig.stop(service)

    directory = tmp_path / "calendar"
    directory.mkdir()
    (directory / "2027.json").write_text(json.dumps({
        "year": 2027, "notice": "国办发明电〔2026〕X号", "status": "confirmed",
        "holidays": ["2027-01-01", "2027-01-02", "2027-01-03"], "make_up_working_days": [],
    }), encoding="utf-8")
    await rig.service(store, calendar=WorkingDayCalendar.load(directory))
    await rig.quiet()
    assert await rig.history(key) == [PENDING, STARTED]
    started = [e for e in await rig.derived() if e["type"] == STARTED and e["data"]["clock_id"] == key]
    assert datetime.fromisoformat(started[0]["data"]["due_at"]) == end_of("2027-01-18")
    assert "file:2027.json notice=国办发明电〔2026〕X号" in started[0]["data"]["calendar"]
    await rig.at(end_of("2027-01-18"))
    assert await rig.history(key) == [PENDING, STARTED, WARNED, BREACHED]
    assert rig.rows(store)[key]["status"] == Status.BREACHED


# ── the command line ─────────────────────────────────────────────────────────────────────────


def cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """jiedu (test)"""

    register(app)
    return app


async def test_deadlines_command_lists_clocks_by_department(rig: Rig, tmp_path: Path) -> None:
    service = await rig.service(open_store(None, tmp_path))  # where `--data-dir` looks
    await rig.at(at("2026-07-01 09:00"), case("D1"), case("D2"))
    await rig.at(at("2026-07-06 16:00"), on("D1", issued("2026-07-06")), on("D2", issued("2026-07-06")),
                 monitored(on("D1", detected("YQ-1", "major", "2026-07-06 16:00"))))
    await rig.at(at("2026-07-09 10:00"), on("D2", published(when="2026-07-09 10:00")))
    await rig.stop(service)

    runner = CliRunner()
    args = ["deadlines", "--data-dir", str(tmp_path), "--json", "--at", "2026-07-20T10:00:00+08:00"]
    result = runner.invoke(cli(), args)
    assert result.exit_code == 0, result.output
    shown = {r["clock_id"]: r["category"] for r in orjson.loads(result.stdout)}
    assert shown[clock_id("PUB-2", "D1")] == "upcoming"
    assert shown[clock_id("OP-4", "D1", "YQ-1")] == "overdue"
    assert clock_id("PUB-2", "D2") not in shown  # met: only with --all
    result = runner.invoke(cli(), [*args, "--all", "--department", "drc", "--rule", "PUB-2"])
    assert {r["clock_id"] for r in orjson.loads(result.stdout)} == {
        clock_id("PUB-2", "D1"), clock_id("PUB-2", "D2")
    }
    of_case = runner.invoke(cli(), [*args, "--all", "--case", "D2"])
    assert {r["case_id"] for r in orjson.loads(of_case.stdout)} == {"D2"}
    assert all(r["due_at"] is None or r["due_at"].endswith("+08:00")  # JSON's one form
               for r in orjson.loads(of_case.stdout))
    result = runner.invoke(cli(), ["deadlines", "--data-dir", str(tmp_path), "--summary", "--json"])
    summary = orjson.loads(result.stdout)
    assert summary["PUB-2"]["met_on_time"] == 1 and summary["PUB-2"]["open"] == 1
    assert summary["OP-4"]["breached"] == 1
    table = runner.invoke(cli(), ["deadlines", "--data-dir", str(tmp_path), "--at", "2026-07-20"])
    assert table.exit_code == 0 and "PUB-2" in table.stdout and "overdue" in table.stdout
    bad = runner.invoke(cli(), ["deadlines", "--data-dir", str(tmp_path), "--status", "late"])
    assert bad.exit_code == 2


@pytest.fixture
def runner() -> Iterator[CliRunner]:
    yield CliRunner()


@pytest.mark.parametrize(
    ("start", "n", "due"),
    [
        ("2025-09-26", "20", "2025-10-30"),  # National Day 2025, make-up days 09-28 and 10-11
        ("2026-09-15", "20", "2026-10-19"),  # National Day 2026, make-up days 09-20 and 10-10
        ("2026-02-13", "5", "2026-02-27"),  # Spring Festival 2026: Sat 02-14 is worked
        ("2025-12-31", "1", "2026-01-04"),  # New Year 2026: Sun 01-04 is worked
    ],
)
def test_calendar_due_prints_the_due_day(runner: CliRunner, start: str, n: str, due: str) -> None:
    result = runner.invoke(cli(), ["calendar", "due", start, n])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == due


def test_calendar_due_names_a_missing_year(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli(), ["calendar", "due", "2026-12-20", "20"])
    assert result.exit_code == 1 and result.stdout == ""
    assert "2027" in result.stderr
    (tmp_path / "2027.json").write_text(json.dumps({
        "year": 2027, "notice": "国办发明电〔2026〕X号", "status": "confirmed",
        "holidays": ["2027-01-01", "2027-01-02", "2027-01-03"], "make_up_working_days": [],
    }), encoding="utf-8")
    found = runner.invoke(cli(), ["calendar", "due", "2026-12-20", "20", "--calendar-dir",
                                  str(tmp_path), "--json"])
    assert found.exit_code == 0, found.output
    assert orjson.loads(found.stdout)["due"] == "2027-01-18"
    assert len(orjson.loads(found.stdout)["sources"]) == 2


def test_calendar_show(runner: CliRunner) -> None:
    result = runner.invoke(cli(), ["calendar", "show", "2026", "--json"])
    shown = orjson.loads(result.stdout)
    assert "2026-02-14" in shown["make_up_working_days"] and "2026-02-16" in shown["holidays"]
    assert shown["source"].startswith("chinesecalendar")
    text = runner.invoke(cli(), ["calendar", "show", "2026"])
    assert "2026-10-10" in text.stdout
    missing = runner.invoke(cli(), ["calendar", "show", "2031"])
    assert missing.exit_code == 1 and "2031" in missing.stderr


def test_calendar_check(runner: CliRunner, tmp_path: Path) -> None:
    good = tmp_path / "2027.json"
    good.write_text(json.dumps({
        "year": 2027, "notice": "国办发明电〔2026〕X号", "status": "draft",
        "holidays": ["2027-01-01"], "make_up_working_days": ["2027-02-20"],
    }), encoding="utf-8")
    result = runner.invoke(cli(), ["calendar", "check", str(good)])
    assert result.exit_code == 0 and "ok" in result.stdout and "draft" in result.stdout
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({
        "year": 2027, "notice": "", "status": "final", "holidays": ["2027-01-01"],
        "make_up_working_days": ["2027-02-22", "2027-01-01"],
    }), encoding="utf-8")
    result = runner.invoke(cli(), ["calendar", "check", str(bad)])
    assert result.exit_code == 1
    for problem in ("notice", "status", "2027-02-22 is a Monday", "both a holiday"):
        assert problem in result.stderr
    conflict = tmp_path / "2026.json"
    conflict.write_text(json.dumps({
        "year": 2026, "notice": "国办发明电〔2025〕7号", "status": "draft",
        "holidays": ["2026-01-01", "2026-01-02", "2026-01-03"], "make_up_working_days": [],
    }), encoding="utf-8")
    result = runner.invoke(cli(), ["calendar", "check", str(conflict)])
    assert result.exit_code == 1 and "disagrees" in result.stderr
    assert "2026-02-16 (package: day off, file: working day)" in result.stderr


def test_the_types_counted_here_are_the_reserved_deadline_types() -> None:
    assert set(DEADLINE_TYPES) <= SYSTEM_TYPES


def test_an_event_without_due_time_is_stored_so_that_it_reads_back() -> None:
    history = [loads(orjson.dumps(e)) for e in (draft(when="2026-12-01 09:00"),
                                                issued("2026-12-20"))]
    pending = fold(ClockKeeper(PACKAGE), enumerate(history, start=1))[1]["PUB-2:YZ-1"]
    event = deadline_event(pending, Action.PENDING_CALENDAR)
    assert loads(encode(event)) == event


# ── calendar years confirmed in the log (issue 13, defect 1) ──────────────────────────────────

NOTICE = "国办发明电〔2026〕X号"
HOLIDAYS_2027 = ["2027-01-01", "2027-01-02", "2027-01-03"]


def confirmation(year: int = 2027, department: str = "gov_office", case_id: str | None = None,
                 when: str = "2026-12-22 10:00", **data: Any) -> dict[str, Any]:
    """The government office's CalendarYearConfirmed as its OA system sends it."""
    fields = {"year": year, "notice": NOTICE, "holidays": HOLIDAYS_2027,
              "make_up_working_days": [], **data}
    e = f.envelope("CalendarYearConfirmed", case_id or f"calendar-{year}", department, **fields)
    e["occurred_at"] = at(when).isoformat()
    return e


async def refused(rig: Rig, e: dict[str, Any]) -> str:
    """Publish ``e`` and return the reason it was rejected with."""
    seq = await publish(rig.nc, e)
    await drained(rig.nc)
    reason, _ = (await rejected(rig.nc))[seq]
    return reason


@pytest.fixture(params=["sqlite", "postgresql"])
def dialect(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        from pgtools import postgres_or_skip

        postgres_or_skip()
    return str(request.param)


async def test_a_year_confirmed_in_the_log_reaches_the_running_service_and_every_replay(
    rig: Rig, dialect: str, tmp_path: Path
) -> None:
    """A PUB-2 clock held pending 2027 is computed by the running service as soon as the
    government office's CalendarYearConfirmed is in the log (no restart, no rebuild); a
    clock started after it counts with the log's year at once; and a replay as of a point
    before the confirmation still shows the clock pending, after it computed."""
    from services import audit

    store = rig.store(dialect=dialect)
    service = await rig.service(store)
    await rig.at(at("2026-12-01 09:00"), case("Y", "2026-12-01 09:00"),
                 case("Z", "2026-12-01 09:00"))
    await rig.at(at("2026-12-20 16:00"), on("Y", issued("2026-12-20", "2026-12-20 16:00")))
    key = clock_id("PUB-2", "Y")
    assert await rig.history(key) == [PENDING]
    assert rig.rows(store)[key]["status"] == Status.PENDING_CALENDAR

    # only the government office confirms, one year on its own case, with days that hold
    assert await refused(rig, confirmation(department="drc")) == "role_mismatch"
    assert await refused(rig, confirmation(case_id="calendar-2028")) == "invalid_field"
    assert await refused(
        rig, confirmation(make_up_working_days=["2027-01-04"])) == "invalid_field"  # a Monday
    assert await refused(
        rig, confirmation(year=2026, holidays=["2026-01-01"])) == "invalid_field"  # the package
    assert await rig.history(key) == [PENDING]

    confirmed = confirmation()
    await rig.at(at("2026-12-22 10:00"), confirmed)
    assert rig.running == [service]  # the same service, never restarted
    assert await rig.history(key) == [PENDING, STARTED]
    source = f"log:{confirmed['event_id']} notice={NOTICE}"
    [started] = [e for e in await rig.derived()
                 if e["type"] == STARTED and e["data"]["clock_id"] == key]
    assert datetime.fromisoformat(started["data"]["due_at"]) == end_of("2027-01-18")
    assert source in started["data"]["calendar"]
    assert await refused(rig, confirmation(notice="国办发明电〔2026〕Y号")) == "case_exists"

    await rig.at(at("2026-12-23 16:00"), on("Z", issued("2026-12-23", "2026-12-23 16:00")))
    assert await rig.history(clock_id("PUB-2", "Z")) == [STARTED]  # never pending
    assert source in rig.rows(store)[clock_id("PUB-2", "Z")]["calendar"]

    log = await audit.read_log(rig.nc.jetstream())
    k = next(m.seq for m in log if orjson.loads(m.data)["event_id"] == confirmed["event_id"])
    before, after = tmp_path / "before", tmp_path / "after"
    await asyncio.to_thread(audit.replay, log[: k - 1], before)
    await asyncio.to_thread(audit.replay, log[:k], after)

    def clock_of(out: Path) -> dict[str, Any]:
        rows = [orjson.loads(line) for line in (out / "deadline_clocks.jsonl").read_bytes()
                .splitlines()]
        return next(r for r in rows if r["clock_id"] == key)

    assert (clock_of(before)["status"], clock_of(before)["missing_year"]) == (
        "pending_calendar", 2027)
    years = (after / "deadline_calendar_years.jsonl").read_bytes().splitlines()
    assert [orjson.loads(y)["source"] for y in years] == [source]
    assert (tmp_path / "before" / "deadline_calendar_years.jsonl").read_bytes() == b""


async def test_calendar_confirm_publishes_a_file_and_show_reads_the_log(
    rig: Rig, settings: Any, tmp_path: Path
) -> None:
    """`jiedu calendar confirm FILE` is the operator's one act: the running service computes
    the held clock from it, and `jiedu calendar show` names the log as the year's source."""
    await rig.service(open_store(None, tmp_path))  # the read models `--data-dir` names
    await rig.at(at("2026-12-01 09:00"), case("C", "2026-12-01 09:00"))
    await rig.at(at("2026-12-20 16:00"), on("C", issued("2026-12-20", "2026-12-20 16:00")))
    key = clock_id("PUB-2", "C")
    assert await rig.history(key) == [PENDING]
    runner = CliRunner()
    env = {"NATS_URL": settings.nats_url}

    def run(*args: str) -> Any:
        return runner.invoke(cli(), [*args, "--data-dir", str(tmp_path)], env=env)

    file = tmp_path / "2027.json"
    year = {"year": 2027, "notice": NOTICE, "status": "draft", "holidays": HOLIDAYS_2027,
            "make_up_working_days": []}
    file.write_text(json.dumps(year), encoding="utf-8")
    draft_refused = await asyncio.to_thread(run, "calendar", "confirm", str(file), "--by", "张三")
    assert draft_refused.exit_code == 1 and "second person" in draft_refused.stderr
    assert (await asyncio.to_thread(run, "calendar", "show", "2027")).exit_code == 1

    file.write_text(json.dumps({**year, "status": "confirmed"}), encoding="utf-8")
    done = await asyncio.to_thread(run, "calendar", "confirm", str(file), "--by", "张三", "--json")
    assert done.exit_code == 0, done.output
    outcome = orjson.loads(done.stdout)
    assert outcome["status"] == "accepted" and outcome["case_id"] == "calendar-2027"
    await rig.quiet()
    assert await rig.history(key) == [PENDING, STARTED]

    shown = await asyncio.to_thread(run, "calendar", "show", "2027", "--json")
    assert shown.exit_code == 0, shown.output
    summary = orjson.loads(shown.stdout)
    assert summary["source"] == f"log:{outcome['event_id']} notice={NOTICE}"
    assert summary["log"]["sequence"] == outcome["sequence"]
    assert summary["holidays"] == HOLIDAYS_2027
    listed = orjson.loads((await asyncio.to_thread(run, "calendar", "show", "--json")).stdout)
    assert {"year": 2027, "source": summary["source"]} in listed
    assert any(item["year"] == 2026 and "chinesecalendar" in item["source"] for item in listed)
    due = await asyncio.to_thread(run, "calendar", "due", "2026-12-20", "20", "--json")
    assert orjson.loads(due.stdout)["due"] == "2027-01-18"

    again = await asyncio.to_thread(run, "calendar", "confirm", str(file), "--by", "张三")
    assert again.exit_code == 1 and "confirmed in the log already" in again.stderr


async def test_the_scanner_gives_way_while_intake_holds_a_backlog(
    nc: Client, settings: Any, tmp_path: Path
) -> None:
    """Issue 12, item 5: the deadline service does not append to cases while INTAKE holds a
    backlog (facts still queued there may meet the very duty; each append would make the
    intake read the case again); once the intake has drained it, the owed events follow."""
    from services.bootstrap import organs
    from services.intake import IntakeService
    from services.projector import wait_caught_up

    rig = Rig(nc, tmp_path, at("2026-09-01 09:00"))  # PUB-2 of the case is long overdue
    intake = IntakeService(nc, organs(settings), settings)
    await intake.start()
    try:
        await rig.send(case("GIVE-WAY"), on("GIVE-WAY", issued("2026-07-06")))
    finally:
        await intake.stop()
    for n in range(3):  # queued while no intake runs
        await publish(nc, case(f"QUEUED-{n}"))
    store = rig.store()
    service = DeadlineService(
        nc, store, calendar=PACKAGE, clock=rig.clock, busy_intake=2, max_defer_s=3600
    )
    await service.start()
    rig.running.append(service)
    intake = IntakeService(nc, organs(settings), settings)
    try:
        await wait_caught_up(nc.jetstream(), store, [service.projection], timeout=30)
        await asyncio.sleep(4 * service.max_sleep_s)  # several turns of the scanner's loop
        assert service.appended == []
        await intake.start()
        await drained(nc)
        for _ in range(600):
            if service.appended:
                break
            await asyncio.sleep(0.05)
        assert await rig.history(clock_id("PUB-2", "GIVE-WAY")) == [STARTED, WARNED, BREACHED]
    finally:
        await intake.stop()
        await rig.close()
