"""A bad stored event never stalls the projections silently (issue 14).

An undecodable message in EVENTS (only a defect of the intake could put one there) parks every
projection before it as an incident, visible in `jiedu lag` and `jiedu incidents` with its raw
bytes; the intake and the deadline service go on; only an operator's recorded decision lets the
projections go past it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
import typer
from deadline_events import at, draft, issued
from nats.aio.client import Client
from typer.testing import CliRunner

from domain.clocks import clock_id
from events import streams
from logtools import drained, publish, rejected, stored
from projections import ALL
from projections.case_summary import CASES, CaseSummary
from services import bootstrap
from services.adapters.config import Settings
from services.adapters.readmodels import ReadStore, open_store
from services.cli.incidents import register as register_incidents
from services.cli.read import register as register_read
from services.deadlines import DeadlineService, FakeClock
from services.projector import ProjectorService, lags

WAIT_S = 60.0
BAD = b'{"type": "PolicyIssued", "case_id": "P-BAD", trunc'


def case(case_id: str) -> dict[str, object]:
    return {**draft(), "case_id": case_id}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ReadStore]:
    """The store `jiedu` finds in the data dir (`--data-dir tmp_path`)."""
    found = await asyncio.to_thread(open_store, None, tmp_path)
    yield found
    await asyncio.to_thread(found.close)


@pytest.fixture
async def projector(settings: Settings, store: ReadStore) -> AsyncIterator[ProjectorService]:
    nc = await bootstrap.connect(str(settings.nats_url), "jiedu-projector")
    service = ProjectorService(nc.jetstream(), store, ALL)
    await service.start()
    yield service
    await service.stop()
    await nc.close()


async def until(check: object, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while not await asyncio.to_thread(check):  # type: ignore[operator]
        if loop.time() > deadline:
            raise AssertionError(f"not within {WAIT_S}s: {what}")
        await asyncio.sleep(0.1)


def cli(tmp_path: Path, *args: str) -> tuple[int, str]:
    app = typer.Typer()
    register_read(app)
    register_incidents(app)
    result = CliRunner().invoke(app, [*args, "--data-dir", str(tmp_path)])
    return result.exit_code, result.output


async def test_an_undecodable_event_parks_the_projections_until_an_operator_skips_it(
    settings: Settings, nc: Client, intake: object, store: ReadStore,
    projector: ProjectorService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NATS_URL", str(settings.nats_url))
    await publish(nc, case("P-A"))
    await publish(nc, {**issued("2026-07-06"), "case_id": "P-A"})
    await drained(nc)

    # the defect: the intake's identity writes bytes that are no event straight into EVENTS
    defective = await bootstrap.connect(str(settings.nats_url), "jiedu-intake")
    try:
        ack = await defective.jetstream().publish(
            streams.event_subject("drc", "P-BAD", "PolicyIssued"), BAD
        )
    finally:
        await defective.close()
    bad = ack.seq

    # the intake goes on
    after = await publish(nc, case("P-B"))
    await drained(nc)
    assert after not in await rejected(nc)

    def parked() -> bool:
        return store.open_incident() is not None

    await until(parked, "an incident recorded")
    incident = store.open_incident()
    assert incident is not None
    assert (incident.sequence, incident.raw) == (bad, BAD)
    assert incident.subject == "jiedu.events.drc.P-BAD.PolicyIssued"

    # visible in the lag, for every projection
    found = await lags(nc.jetstream(), store)
    assert {x.projection for x in found} == {p.name for p in ALL}
    assert all(x.incident == bad and x.position == bad - 1 for x in found), found
    code, out = await asyncio.to_thread(cli, tmp_path, "lag", "--json")
    assert code == 0, out
    assert all(r["parked_at_incident"] == bad for r in orjson.loads(out))
    code, out = await asyncio.to_thread(cli, tmp_path, "incidents")
    assert code == 1 and "OPEN" in out and str(bad) in out
    assert "P-B" not in {r["case_id"] for r in store.select(CaseSummary(), CASES)}

    # the deadline service goes on: PUB-2's clock for P-A (before the incident) starts
    deadlines_nc = await bootstrap.connect(str(settings.nats_url), "jiedu-deadlines")
    scanner = DeadlineService(
        deadlines_nc, store, clock=FakeClock(at("2026-07-06 16:00")), run_projection=False,
        catch_up_timeout_s=WAIT_S,
    )
    try:
        appended = await scanner.scan_once()
    finally:
        await deadlines_nc.close()
    assert appended
    started = await stored(nc, streams.EVENTS, "jiedu.events.*.P-A.DeadlineStarted")
    assert clock_id("PUB-2", "P-A") in {orjson.loads(m.data)["data"]["clock_id"] for m in started}

    # never skipped by itself; the operator's act is recorded and lets the projections go on
    assert store.open_incident() is not None
    code, out = await asyncio.to_thread(cli, tmp_path, "incidents", "skip", str(bad), "--reason", "defect, see ticket 7",
                    "--by", "operator-wang")
    assert code == 0, out

    def caught_up() -> bool:
        return "P-B" in {r["case_id"] for r in store.select(CaseSummary(), CASES)}

    await until(caught_up, "the projections past the skipped incident")
    [skipped] = store.incidents()
    assert (skipped.open, skipped.skipped_by, skipped.reason) == (
        False, "operator-wang", "defect, see ticket 7"
    )
    code, out = await asyncio.to_thread(cli, tmp_path, "incidents", "--json")
    assert code == 0
    [listed] = orjson.loads(out)
    assert listed["status"] == "skipped" and listed["raw_base64"]
    code, out = await asyncio.to_thread(cli, tmp_path, "incidents", "skip", str(bad), "--reason", "again")
    assert code == 1 and "already" in out
