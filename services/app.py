"""The running system as one faststream application: intake and every projection (`jiedu up`),
or the intake alone (`jiedu intake`). `jiedu demo` runs the same parts until the demo quarter
has settled, then stops.

faststream owns the connection, the lifecycle and the logging; the intake's partition workers
use the broker's JetStream connection, because they fetch by lease rather than through
faststream subscriptions. The projections run in a process of their own (`ProjectorProcess`,
reading the log from their own positions), so that they and the intake do not share one core
and one GIL.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from faststream import FastStream
from faststream.nats import NatsBroker
from nats.aio.client import Client

from events import streams
from projections.case_summary import CASES, CaseSummary
from services import audit, bootstrap
from services.adapters import logs, permissions
from services.adapters.config import Settings
from services.adapters.eventlog import check_streams
from services.adapters.identities import Credentials
from services.adapters.readmodels import ReadStore
from services.deadlines import DeadlineService, clock_summary
from services.intake import IntakeService
from services.projector import ProjectorProcess, store_for, wait_caught_up
from services.tools import demo

log = logs.get("jiedu.app")


@dataclass
class Parts:
    """What one process runs; started and stopped in order by `start` and `stop`."""

    settings: Settings
    intake: bool = True
    projections: bool = True
    deadlines: bool = True
    """The clock scanner; `jiedu demo` runs it only once the quarter has settled, so that no
    clock is judged on a log still catching up with its backlog."""
    administer: bool = True
    """Create the streams first, as the operator (`jiedu up`, `jiedu demo`); a lone intake
    instance (`jiedu intake`) only checks them and needs no operator's seed."""
    nc: Client | None = None
    """The intake's connection (the broker's)."""
    store: ReadStore | None = None
    services: list[Any] = field(default_factory=list)
    connections: list[Client] = field(default_factory=list)
    """Those of the other parties (deadline service, operator's checkpoints), opened here."""

    async def _connect(self, name: str) -> Client:
        nc = await bootstrap.connect(
            bootstrap.nats_url(self.settings), name, credentials=self.settings.credentials
        )
        self.connections.append(nc)
        return nc

    async def start(self, nc: Client) -> None:
        self.nc = nc
        if self.administer:
            await bootstrap.create_streams(self.settings)
        await check_streams(nc.jetstream())
        if self.intake:
            self.services.append(IntakeService(nc, bootstrap.organs(self.settings), self.settings))
        if self.projections:
            self.store = await asyncio.to_thread(store_for, self.settings)
            url = bootstrap.nats_url(self.settings)
            self.services.append(ProjectorProcess(self.settings, url))
        private_key, _ = audit.key_paths(self.settings.data_dir)
        if private_key.exists():
            key = audit.load_private_key(private_key)
            operator = await self._connect("jiedu-operator")
            self.services.append(audit.QuarterlyCheckpoints(operator.jetstream(), key))
        for service in self.services:
            await service.start()
        if self.projections and self.deadlines:
            await self.add_deadlines()

    async def add_deadlines(self) -> DeadlineService:
        """Start the scanner of the clocks that the projector keeps in `self.store`."""
        assert self.store is not None
        scanner = DeadlineService(
            await self._connect("jiedu-deadlines"), self.store, run_projection=False
        )
        self.services.append(scanner)
        await scanner.start()
        return scanner

    async def stop(self) -> None:
        for service in reversed(self.services):
            await service.stop()
        for nc in self.connections:
            await nc.drain()
        self.connections.clear()
        if self.store is not None:
            await asyncio.to_thread(self.store.close)


def application(settings: Settings, parts: Parts, *, demo_quarter: str | None = None) -> FastStream:
    logs.configure(settings.log_level)
    logger = logs.get("jiedu.faststream")
    url = bootstrap.nats_url(settings)
    identity = Credentials(settings.credentials).connect_options(permissions.INTAKE)
    broker = NatsBroker(
        bootstrap.servers(url), logger=logger, max_reconnect_attempts=-1, name="jiedu-intake",
        nkeys_seed_str=identity["nkeys_seed_str"], inbox_prefix=identity["inbox_prefix"],
    )
    app = FastStream(broker, logger=logger)

    @app.after_startup
    async def start() -> None:
        await parts.start(broker.connection)
        if demo_quarter is not None:
            sent = await load_demo_as_sources(settings, demo_quarter)
            log.info("demo loaded", quarter=demo_quarter, messages=sent)

    @app.on_shutdown
    async def stop() -> None:
        await parts.stop()

    return app


async def load_demo(nc: Client, quarter: str, seed: int = 2026) -> int:
    """Publish a demo quarter to INTAKE on one connection that may speak for every source
    (the tests' harness), in the sources' order."""
    js = nc.jetstream()
    messages = demo.generate(quarter, seed)
    for start in range(0, len(messages), 1000):
        futures = [
            await js.publish_async(m.subject, m.encode()) for m in messages[start : start + 1000]
        ]
        await asyncio.gather(*futures)
    return len(messages)


async def load_demo_as_sources(settings: Settings, quarter: str, seed: int = 2026) -> int:
    """Publish a demo quarter to INTAKE as its sources would, each message with the identity
    of the source its subject names, in their order."""
    messages = demo.generate(quarter, seed)
    sources = bootstrap.Sources(settings)
    try:
        for start in range(0, len(messages), 1000):
            futures = []
            for m in messages[start : start + 1000]:
                _, js = await sources.connection(m.source_department, m.source_system)
                futures.append(await js.publish_async(m.subject, m.encode()))
            await asyncio.gather(*futures)
    finally:
        await sources.close()
    return len(messages)


async def settle(nc: Client, store: ReadStore, timeout: float = 300.0) -> None:
    """Wait until the intake has decided every message and the projections have caught up."""
    js = nc.jetstream()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (await js.stream_info(streams.INTAKE)).state.messages:
        if loop.time() > deadline:
            raise TimeoutError("the intake did not finish in time")
        await asyncio.sleep(0.1)
    await wait_caught_up(js, store, timeout=max(1.0, deadline - loop.time()))


async def settle_deadlines(parts: Parts, timeout: float = 300.0) -> None:
    """Start the clock scanner on the settled log, let it append what the clocks owe as of
    now, and project that too."""
    assert parts.nc is not None and parts.store is not None
    scanner = await parts.add_deadlines()
    await scanner.settle()
    await wait_caught_up(parts.nc.jetstream(), parts.store, timeout=timeout)


async def summary(nc: Client, store: ReadStore) -> dict[str, Any]:
    """What the log and the case summary hold, for `jiedu demo`."""
    js = nc.jetstream()
    rows = await asyncio.to_thread(store.select, CaseSummary(), CASES)
    return {
        "events": int((await js.stream_info(streams.EVENTS)).state.messages),
        "rejected": int((await js.stream_info(streams.REJECTED)).state.messages),
        "cases": len(rows),
        "departments": len({r["department"] for r in rows}),
        "by_status": dict(sorted(Counter(r["status"] for r in rows).items())),
        "open_findings": sum(int(r.get("open_findings") or 0) for r in rows),
        "deadlines": await asyncio.to_thread(clock_summary, store),
    }
