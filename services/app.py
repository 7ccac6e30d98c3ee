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
import contextlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from faststream import FastStream
from faststream.nats import NatsBroker
from nats.aio.client import Client

from events import streams
from projections import ALL
from projections.case_summary import CASES, CaseSummary
from projections.findings import FINDINGS, Findings, tally
from projections.qa_consultations import CONSULTATIONS, WAITING, QAConsultations
from projections.qa_library import ENTRIES, PUBLISHED, QALibrary
from services import audit, bootstrap
from services.adapters import logs, permissions
from services.adapters.config import Settings
from services.adapters.eventlog import check_streams
from services.adapters.identities import Credentials
from services.adapters.keystore import KeyStore, keystore_path
from services.adapters.readmodels import SQLITE_FILE, ReadStore
from services.api.process import ApiProcess
from services.deadlines import DeadlineService, clock_summary
from services.intake import IntakeService
from services.matcher import MatcherService
from services.privacy import RetentionService, retention_rule
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
    matcher: bool = True
    """The Q&A matching service (QA-4); `jiedu demo` runs it once the quarter has settled,
    so that every consultation is matched against the whole library."""
    retention: bool = True
    """The personal-data retention rule (issue 17), applied as the privacy party."""
    administer: bool = True
    """Create the streams first, as the operator (`jiedu up`, `jiedu demo`); a lone intake
    instance (`jiedu intake`) only checks them and needs no operator's seed."""
    log_name: str = "jiedu"
    """This process's log file under `<data dir>/logs`; the projector process's is
    `<log_name>-projector` (see `services.adapters.logs`)."""
    http: tuple[str, int] | None = None
    """Where to serve the HTTP API (in a process of its own); None: no HTTP."""
    nc: Client | None = None
    """The intake's connection (the broker's)."""
    store: ReadStore | None = None
    services: list[Any] = field(default_factory=list)
    scanner: DeadlineService | None = None
    matching: MatcherService | None = None
    """The matching service once started (`add_matcher`)."""
    retaining: RetentionService | None = None
    """The personal-data retention service once started (`add_retention`)."""
    checkpoints: bool = False
    """Whether the quarterly checkpoints are signed (the office key is there)."""
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
            self.services.append(
                ProjectorProcess(self.settings, url, log_name=f"{self.log_name}-projector")
            )
        private_key, _ = audit.key_paths(self.settings.data_dir)
        if private_key.exists():
            key = audit.load_private_key(private_key)
            operator = await self._connect("jiedu-operator")
            self.services.append(audit.QuarterlyCheckpoints(operator.jetstream(), key))
            self.checkpoints = True
        if self.http is not None:
            host, port = self.http
            url = bootstrap.nats_url(self.settings)
            self.services.append(
                ApiProcess(self.settings, url, host, port, log_name=f"{self.log_name}-api")
            )
        for service in self.services:
            await service.start()
        if self.projections and self.deadlines:
            await self.add_deadlines()
        if self.projections and self.matcher:
            await self.add_matcher()
        if self.projections and self.retention:
            await self.add_retention()

    async def add_deadlines(self) -> DeadlineService:
        """Start the scanner of the clocks that the projector keeps in `self.store`."""
        assert self.store is not None
        scanner = DeadlineService(
            await self._connect("jiedu-deadlines"), self.store, run_projection=False
        )
        self.services.append(scanner)
        await scanner.start()
        self.scanner = scanner
        return scanner

    async def add_matcher(self) -> MatcherService:
        """Start the matching of consultations against the library the projector keeps in
        `self.store`."""
        assert self.store is not None
        matcher = MatcherService(
            await self._connect("jiedu-matcher"), self.store, run_projection=False
        )
        self.services.append(matcher)
        await matcher.start()
        self.matching = matcher
        return matcher

    async def add_retention(self) -> RetentionService:
        """Start applying the personal-data retention rule (issue 17) on the consultations
        the projector keeps in `self.store`."""
        assert self.store is not None
        service = RetentionService(
            await self._connect("jiedu-privacy"), self.store,
            KeyStore(keystore_path(self.settings)), retention_rule(self.settings),
        )
        self.services.append(service)
        await service.start()
        self.retaining = service
        return service

    async def stop(self) -> None:
        for service in reversed(self.services):
            await service.stop()
        for nc in self.connections:
            await nc.drain()
        self.connections.clear()
        if self.store is not None:
            await asyncio.to_thread(self.store.close)


def running(parts: Parts) -> list[tuple[str, str]]:
    """What a started `Parts` runs, as (part, detail) lines for the banner `jiedu up` prints
    once it is ready. A new part (the console's address, say) is one more line here."""
    settings = parts.settings
    url = bootstrap.nats_url(settings)
    embedded = url == bootstrap.server_for(settings).url  # else NATS_URL names another
    lines = [("NATS", f"{url}, " + (f"store in {settings.data_dir / 'nats'}" if embedded
                                     else "a server of your own (NATS_URL)"))]
    if parts.intake:
        partitions = f"{settings.partitions} partition" + ("s" if settings.partitions > 1 else "")
        lines.append(("intake", f"decides every message into EVENTS or REJECTED ({partitions})"))
    if parts.projections:
        lines.append(("projector", f"{len(ALL)} projections into {_store_name(settings)}"))
    if parts.scanner is not None:
        lines.append(("deadline service", "appends what each clock is owed as it falls due"))
    if parts.matching is not None:
        lines.append(("Q&A matcher", "suggests library entries for each consultation (QA-4)"))
    if parts.retaining is not None:
        days = parts.retaining.rule.asker_days_after_answer
        lines.append(("retention", f"erases an asker's personal data {days} days after the answer"))
    if parts.checkpoints:
        lines.append(("checkpoints", "signs each quarter's chain head with the office key"))
    else:
        lines.append(("checkpoints", "off: no office key (`jiedu keys init`, then restart)"))
    if parts.http is not None:
        host, port = parts.http
        lines.append(("HTTP API", f"http://{host}:{port}/api/v1 (OpenAPI at /api/v1/docs)"))
        lines.append(("web console", f"http://{host}:{port}/console/ (a token: "
                                     "`jiedu creds token issue gov_office`)"))
        lines.append(("public Q&A", f"http://{host}:{port}/qa"))
    lines.append(("identities", f"{settings.credentials}/ (a seed per party)"))
    lines.append(("logs", f"{logs.log_file(settings, parts.log_name).parent}/ (JSON, rotated)"))
    return lines


def _store_name(settings: Settings) -> str:
    """The read-model store, without a password."""
    if not settings.database_url:
        return f"SQLite {settings.data_dir / SQLITE_FILE}"
    parts = urlsplit(settings.database_url)
    host = parts.hostname or "localhost"
    return f"PostgreSQL {host}{f':{parts.port}' if parts.port else ''}{parts.path}"


class Shown(Protocol):
    """What `jiedu up` and `jiedu demo` tell the person who started them; the CLI renders it
    (a progress bar on a terminal, plain lines otherwise)."""

    def ready(self, running: list[tuple[str, str]]) -> None:
        """The system runs (see `running`)."""

    def progress(self, progress: DemoProgress) -> None:
        """The demo loads: called a few times a second."""

    def loaded(self, summary: dict[str, Any]) -> None:
        """The demo has loaded and settled (see `summary`)."""


@dataclass
class DemoProgress:
    """How far loading a demo quarter has come."""

    total: int = 0
    """Messages to publish."""
    published: int = 0
    decided: int = 0
    """Messages the intake has taken off INTAKE (into EVENTS or REJECTED)."""
    head: int = 0
    """The log head."""
    projected: int = 0
    """The position of the projection furthest behind."""


def application(
    settings: Settings, parts: Parts, *, demo_quarter: str | None = None,
    shown: Shown | None = None,
) -> FastStream:
    """The faststream app of `parts`; the caller has configured the logs. Once started it
    shows what runs, then (with `demo_quarter`) loads the demo with its progress and summary."""
    logger = logs.get("jiedu.faststream")
    url = bootstrap.nats_url(settings)
    identity = Credentials(settings.credentials).connect_options(permissions.INTAKE)
    broker = NatsBroker(
        bootstrap.servers(url), logger=logger, max_reconnect_attempts=-1, name="jiedu-intake",
        nkeys_seed_str=identity["nkeys_seed_str"], inbox_prefix=identity["inbox_prefix"],
    )
    app = FastStream(broker, logger=logger)
    loading: list[asyncio.Task[None]] = []

    async def load() -> None:
        assert demo_quarter is not None
        try:
            done = await load_demo_showing(broker.connection, parts, demo_quarter, shown=shown)
        except Exception:  # the system runs on without its demo: say so, on screen too
            log.exception("demo not loaded", quarter=demo_quarter)
            return
        log.info("demo loaded", quarter=demo_quarter, messages=done["messages"])
        if shown is not None:
            shown.loaded(done)

    @app.after_startup
    async def start() -> None:
        await parts.start(broker.connection)
        if shown is not None:
            shown.ready(running(parts))
        if demo_quarter is not None:
            # a task of its own, so that Ctrl-C during the load stops it before the parts
            # (and the read store it reads) stop under it
            loading.append(asyncio.create_task(load(), name="demo-load"))

    @app.on_shutdown
    async def stop() -> None:
        for task in loading:
            if task.cancel():
                log.warning("demo load interrupted", quarter=demo_quarter)
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await parts.stop()

    return app


async def load_demo(nc: Client, quarter: str, seed: int = 2026) -> int:
    """Publish a demo quarter to INTAKE on one connection that may speak for every source
    (the tests' harness), in the sources' order."""
    js = nc.jetstream()
    messages = await asyncio.to_thread(demo.generate, quarter, seed)  # seconds of work: off the loop
    for start in range(0, len(messages), 1000):
        futures = [
            await js.publish_async(m.subject, m.encode()) for m in messages[start : start + 1000]
        ]
        await asyncio.gather(*futures)
    return len(messages)


async def load_demo_as_sources(
    settings: Settings, quarter: str, seed: int = 2026,
    published: Callable[[int, int], None] | None = None,
) -> int:
    """Publish a demo quarter to INTAKE as its sources would, each message with the identity
    of the source its subject names, in their order; `published(done, total)` is told as
    acknowledgements come in."""
    messages = await asyncio.to_thread(demo.generate, quarter, seed)  # seconds of work: off the loop
    sources = bootstrap.Sources(settings)
    acknowledged = 0

    def acked(_: object) -> None:
        nonlocal acknowledged
        acknowledged += 1
        if published is not None:
            published(acknowledged, len(messages))

    try:
        for start in range(0, len(messages), 1000):
            futures = []
            for m in messages[start : start + 1000]:
                _, js = await sources.connection(m.source_department, m.source_system)
                future = await js.publish_async(m.subject, m.encode())
                future.add_done_callback(acked)
                futures.append(future)
            await asyncio.gather(*futures)
    finally:
        await sources.close()
    return len(messages)


async def load_demo_showing(
    nc: Client, parts: Parts, quarter: str, seed: int = 2026, *, shown: Shown | None = None,
    every_s: float = 0.25,
) -> dict[str, Any]:
    """Load a demo quarter as its sources would, wait until it has settled (decided,
    projected, the clocks' events appended and projected too), showing the progress every
    `every_s`; returns the demo's summary."""
    assert parts.store is not None
    store = parts.store
    progress = DemoProgress()

    def published(done: int, total: int) -> None:
        progress.published, progress.total = done, total

    async def watch() -> None:
        js = nc.jetstream()
        while True:
            try:
                left = int((await js.stream_info(streams.INTAKE)).state.messages)
                progress.decided = max(progress.published - left, 0)
                progress.head = int((await js.stream_info(streams.EVENTS)).state.last_seq)
                progress.projected = await asyncio.to_thread(_slowest_position, store)
            except Exception as e:  # a busy server answering late: the next look will do
                log.debug("demo progress not read", error=str(e))
            else:
                assert shown is not None
                shown.progress(progress)
            await asyncio.sleep(every_s)

    watcher = asyncio.create_task(watch(), name="demo-progress") if shown is not None else None
    try:
        sent = await load_demo_as_sources(parts.settings, quarter, seed, published)
        await settle(nc, store)
        await settle_deadlines(parts)
        await settle_matcher(parts)
    finally:
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
    done = {"quarter": quarter, "messages": sent, **await summary(nc, store)}
    progress.decided = progress.published = sent
    progress.head = progress.projected = int(done["events"])
    if shown is not None:
        shown.progress(progress)
    return done


def _slowest_position(store: ReadStore) -> int:
    """The position of the projection furthest behind (synchronous: call it in a thread)."""
    positions = []
    for p in ALL:
        live = store.live(p.name)
        positions.append(store.position(live) if live is not None else 0)
    return min(positions, default=0)


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
    """Start the clock scanner on the settled log (unless it runs already), let it append
    what the clocks owe as of now, and project that too."""
    assert parts.nc is not None and parts.store is not None
    scanner = parts.scanner or await parts.add_deadlines()
    await scanner.settle()
    await wait_caught_up(parts.nc.jetstream(), parts.store, timeout=timeout)


async def settle_matcher(parts: Parts, timeout: float = 300.0) -> None:
    """Start the matching service on the settled log, let it match every consultation against
    the whole library, and project that too (so `jiedu demo`'s suggestions do not depend on
    how far the library had got when each consultation was read)."""
    assert parts.nc is not None and parts.store is not None
    matcher = parts.matching or await parts.add_matcher()
    await matcher.settle()
    await wait_caught_up(parts.nc.jetstream(), parts.store, timeout=timeout)


def _library_summary(store: ReadStore) -> dict[str, int]:
    rows = store.select(QAConsultations(), CONSULTATIONS)
    return {
        "entries": len(store.select(QALibrary(), ENTRIES, {"status": PUBLISHED})),
        "consultations_matched": sum(1 for r in rows if r["matched"]),
        "answerable": sum(1 for r in rows if r["answerable"]),
        "answered_from_entries": sum(1 for r in rows if r["entry_id"] and r["instant"]),
        "candidates_waiting": sum(1 for r in rows if r["candidate"] == WAITING),
    }


async def summary(nc: Client, store: ReadStore) -> dict[str, Any]:
    """What the log and the case summary hold, for `jiedu demo`."""
    js = nc.jetstream()
    rows = await asyncio.to_thread(store.select, CaseSummary(), CASES)
    findings = await asyncio.to_thread(store.select, Findings(), FINDINGS)
    clocks = await asyncio.to_thread(clock_summary, store)
    by_outcome: Counter[str] = Counter()
    for statuses in clocks.values():
        by_outcome.update(statuses)
    return {
        "events": int((await js.stream_info(streams.EVENTS)).state.messages),
        "rejected": int((await js.stream_info(streams.REJECTED)).state.messages),
        "cases": len(rows),
        "departments": len({r["department"] for r in rows}),
        "by_status": dict(sorted(Counter(r["status"] for r in rows).items())),
        "open_findings": sum(int(r.get("open_findings") or 0) for r in rows),
        "findings_by_rule": {
            t["rule_id"]: {"open": t["open"], "resolved": t["resolved"], "total": t["total"]}
            for t in tally(findings)
        },
        "deadlines": clocks,
        "clocks_by_status": dict(by_outcome),
        "qa_library": await asyncio.to_thread(_library_summary, store),
    }
