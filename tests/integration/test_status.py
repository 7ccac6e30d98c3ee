"""`jiedu status` without an event ID (issue 20): at a glance whether the system is as it should
be, each thing not right named with what to do, exit 1 when something is wrong. On a real
nats-server with the production authorisation, read models on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import deadline_events as d
import orjson
import pytest
from nats.aio.client import Client

from domain.calendar import SHANGHAI
from events.organs import load_organs
from logtools import drained, publish, rejected
from pgtools import PG_URL, drop_schema, postgres_or_skip
from projections import ALL
from services import audit, doctor
from services.adapters.config import Settings
from services.adapters.identities import Credentials
from services.adapters.natsserver import free_port
from services.deadlines import DeadlineService
from services.doctor import Check
from services.projector import ProjectorService, store_for, wait_caught_up

SUMMER = datetime(2026, 7, 20, 10, 0, tzinfo=SHANGHAI)
"""A day on which the calendar has every year it needs (2026; 2027's notice is not out)."""


@pytest.fixture(params=["sqlite", "postgresql"])
def on_store(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Settings]:
    """The test's settings, with the read models on the store named by the parameter."""
    if request.param == "sqlite":
        yield settings
        return
    postgres_or_skip()
    schema = f"t_status_{uuid.uuid4().hex[:10]}"
    yield replace(settings, database_url=f"{PG_URL}?schema={schema}")
    drop_schema(schema)


class System:
    """The projector and the deadline service of a data dir, started and stopped by the test
    (the intake is the `intake` fixture's)."""

    def __init__(self, nc: Client, settings: Settings) -> None:
        self.nc = nc
        self.store = store_for(settings)
        self.projector: ProjectorService | None = None
        self.scanner: DeadlineService | None = None

    async def start_projector(self) -> None:
        self.projector = ProjectorService(self.nc.jetstream(), self.store, list(ALL))
        await self.projector.start()
        await self.projector.ready()

    async def stop_projector(self) -> None:
        assert self.projector is not None
        await self.projector.stop()
        self.projector = None

    async def start_scanner(self) -> None:
        self.scanner = DeadlineService(self.nc, self.store, run_projection=False)
        await self.scanner.start()

    async def stop_scanner(self) -> None:
        assert self.scanner is not None
        await self.scanner.stop()
        self.scanner = None

    async def send(self, case_id: str) -> None:
        """A policy case drafted and issued in July 2026: its PUB-2 and PUB-3 clocks run."""
        sequences = []
        for event in (d.draft(), d.issued("2026-07-06")):
            event["case_id"] = case_id
            sequences.append(await publish(self.nc, event))
        await drained(self.nc)
        refused = await rejected(self.nc)
        assert not [refused[s] for s in sequences if s in refused]

    async def settled(self) -> None:
        js = self.nc.jetstream()
        await wait_caught_up(js, self.store)
        if self.scanner is not None:
            await self.scanner.settle()
            await wait_caught_up(js, self.store)

    async def close(self) -> None:
        if self.scanner is not None:
            await self.stop_scanner()
        if self.projector is not None:
            await self.stop_projector()
        await asyncio.to_thread(self.store.close)


@pytest.fixture
async def system(nc: Client, on_store: Settings, intake: object) -> AsyncIterator[System]:
    running = System(nc, on_store)
    yield running
    await running.close()


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def jiedu_status(settings: Settings) -> tuple[int, dict[str, Any]]:
    """`jiedu status --json` in a process of its own, as an operator runs it."""
    env = {**os.environ, "NATS_URL": settings.nats_url or "", "JIEDU_DATA_DIR": str(settings.data_dir),
           "JIEDU_CREDENTIALS": str(settings.credentials)}
    env.pop("DATABASE_URL", None)
    if settings.database_url:
        env["DATABASE_URL"] = settings.database_url
    done = subprocess.run([sys.executable, "-m", "services.cli", "status", "--json"], env=env,
                          capture_output=True, timeout=120)
    return done.returncode, orjson.loads(done.stdout)


async def test_status_says_all_is_well_then_names_what_is_wrong_and_what_to_do(
    system: System, on_store: Settings
) -> None:
    settings = on_store
    await system.start_projector()
    await system.start_scanner()
    await system.send("ST-1")
    await system.settled()
    audit.init_keys(*audit.key_paths(settings.data_dir))

    healthy = by_name(await doctor.examine(settings, now=SUMMER))
    assert list(healthy) == ["NATS", "streams", *(f"projection {p.name}" for p in ALL),
                             "deadline service", "calendar", "office key"]
    assert {c.status for c in healthy.values()} == {"ok"}, healthy
    assert "no clock owed" in healthy["deadline service"].detail
    assert "2026" in healthy["calendar"].detail
    code, shown = await asyncio.to_thread(jiedu_status, settings)
    assert code == 0 and shown["ok"] is True  # on today's wall clock too: at most warnings
    assert {c["status"] for c in shown["checks"]} <= {"ok", "warning"}

    # broken: no projector, no deadline service, no office key
    await system.stop_scanner()
    await system.stop_projector()
    position = int((await system.nc.jetstream().stream_info("EVENTS")).state.last_seq)
    await system.send("ST-2")
    audit.key_paths(settings.data_dir)[0].unlink()

    broken = by_name(await doctor.examine(settings, now=SUMMER))
    assert broken["NATS"].status == broken["streams"].status == "ok"
    for p in ALL:
        check = broken[f"projection {p.name}"]
        assert check.status == "wrong" and f"stuck at {position:,}" in check.detail
        assert check.fix is not None and "projector" in check.fix
    assert broken["office key"].status == "wrong"
    assert broken["office key"].fix is not None and "jiedu keys init" in broken["office key"].fix
    code, shown = await asyncio.to_thread(jiedu_status, settings)
    assert code == 1 and shown["ok"] is False
    wrong = {c["name"] for c in shown["checks"] if c["status"] == "wrong"}
    assert wrong == {f"projection {p.name}" for p in ALL} | {"office key"}

    # the projections caught up again; the clocks of ST-2 are owed events nobody appends
    await system.start_projector()
    await system.settled()
    behind = by_name(await doctor.examine(settings, now=SUMMER))
    assert {behind[f"projection {p.name}"].status for p in ALL} == {"ok"}
    service = behind["deadline service"]
    assert service.status == "wrong" and "owed an event" in service.detail
    assert service.fix is not None and "deadline service running" in service.fix

    await system.start_scanner()  # and once it runs again, they get them
    await system.settled()
    assert by_name(await doctor.examine(settings, now=SUMMER))["deadline service"].status == "ok"


async def test_status_names_the_calendar_year_needed_now_and_the_one_due_in_november(
    system: System, on_store: Settings
) -> None:
    await system.start_projector()
    await system.settled()
    audit.init_keys(*audit.key_paths(on_store.data_dir))
    for now, expected in (
        (SUMMER, "ok"),
        (datetime(2026, 11, 20, tzinfo=SHANGHAI), "warning"),  # 2027's notice is due
        (datetime(2027, 1, 4, tzinfo=SHANGHAI), "wrong"),  # 2027 is here, unknown
    ):
        check = by_name(await doctor.examine(on_store, now=now))["calendar"]
        assert check.status == expected, (now, check)
        if expected != "ok":
            assert "2027" in check.detail and check.fix is not None
            assert "jiedu calendar confirm deploy/calendar/2027.json" in check.fix


async def test_status_without_a_server_says_so_and_exits_1(tmp_path: Path) -> None:
    data = tmp_path / "data"
    Credentials(data / "creds").ensure(load_organs())
    settings = Settings(data_dir=data, nats_url=f"nats://127.0.0.1:{free_port()}")
    checks = by_name(await doctor.examine(settings))
    assert checks["NATS"].status == "wrong" and "no answer" in checks["NATS"].detail
    assert checks["NATS"].fix is not None and "jiedu up" in checks["NATS"].fix
    code, shown = await asyncio.to_thread(jiedu_status, settings)
    assert code == 1 and shown["checks"][0]["name"] == "NATS"
    assert shown["checks"][0]["status"] == "wrong"
