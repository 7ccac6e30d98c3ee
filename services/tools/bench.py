"""`jiedu bench`: how fast the log, the intake and the projections are, each figure beside a
baseline measured in the same run on the same machine.

- ingest: events accepted and appended per second end to end through the intake (publish to
  INTAKE → every message decided), vs raw nats-py `publish_async` of the same payloads to a
  plain stream; on the server as deployed (`sync_interval: always`, every write flushed) and
  again with the server's default sync (`ingest_default_sync`), to show what the flush costs;
- latency: intake publish → visible in the case summary, p50/p99, at a fixed 500 events/s, with
  the intake and every projection running as `jiedu up` runs them (the projections in a
  process of their own);
- rebuild: events per second through the case summary into SQLite (and PostgreSQL when
  `--postgres`/`DATABASE_URL` names one, or the local test database answers), vs a raw ordered
  consumer that only decodes the same stream;
- peak memory (RSS) of the rebuild, measured in a child process of its own;
- fuzz (`--parts fuzz`, issue 19): the intake's messages per second on the hostile mix the
  tests use (`services.tools.fuzz`: about three quarters malformed or refused, many naming
  cases that do not exist) vs on good events, measured in the same run (good, fuzz, good; the
  faster good run counts), with the consumer-limit errors (10026) met and the most consumers
  EVENTS had meanwhile.

The payloads are demo quarters (`services.tools.demo`), copied under fresh case and event IDs until
there are N, each copy in occurred-at order. Each part runs on its own nats-server with a fresh
store. The rebuild's log is filled by direct appends of the same N events to EVENTS (facts only:
no findings, which only the intake derives), which is quick even for a million events; the
rebuild measures the projection, not how the log was filled.

Figures vary with what else the machine does: the JSON records the load average (1, 5, 15 min)
at the start and end of each part. Nothing here asserts a figure: targets are reported as met or
missed.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import logging
import math
import multiprocessing
import operator
import os
import platform
import re
import resource
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as ProcessEvent
from pathlib import Path
from typing import Any

import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy, StorageType, StreamConfig

from domain.calendar import SHANGHAI
from events import streams
from events.organs import load_organs
from projections import ALL
from projections.audit import AuditTrail
from projections.base import Row
from projections.case_summary import CASES, CaseSummary
from services import audit, bootstrap, report
from services.adapters import logs, natsserver, permissions
from services.adapters.config import Settings
from services.adapters.eventlog import ensure_streams
from services.adapters.identities import Credentials
from services.adapters.natsserver import NatsServer, free_port
from services.adapters.permissions import Permissions
from services.adapters.readmodels import (
    Generation,
    ReadStore,
    SQLiteStore,
    open_store,
    split_schema,
)
from services.intake import IntakeService, outlasting
from services.projector import DEFAULT_BATCH, ProjectorProcess, rebuild
from services.tools import bench_qa, demo, fuzz, qa_set

Payload = tuple[str, bytes]
"""(intake subject, body)"""

PARTS = ("ingest", "latency", "rebuild")
OPTIONAL_PARTS = ("report", "qa", "api", "fuzz", "verify")
"""Run only when asked for: `--parts report`, issue 7's report at 100 departments × 10,000
cases; `--parts qa`, issue 15's Q&A library (quality on the evaluation set, search latency at
10,000 and 100,000 entries; `services.tools.bench_qa`); `--parts api`, the HTTP API's reads and
intake (`services.tools.bench_api`); `--parts fuzz`, issue 19's hostile mix against good events;
`--parts verify`, issue 19's `jiedu audit verify` and `jiedu replay` of N events (seconds and
peak RSS, each in a child process, beside the raw ordered consumer)."""
PART_OF = {"replay": "verify"}
"""Figures of a result that an optional part of another name measures: `--parts verify`
measures `verify.*` and `replay.*`."""
RATE = 500.0
"""Events per second published for the latency part."""
LATENCY_EVENTS = 5000
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
TARGETS = {
    "ingest.events_per_s": ">= 10000",
    "ingest.ratio": ">= 0.4",
    "ingest_default_sync.ratio": ">= 0.25",
    "rebuild.sqlite.ratio": ">= 0.35",
    "rebuild.postgres.ratio": ">= 0.3",
    "latency_ms.p99": "<= 50",
    "rebuild.peak_rss_mb": "< 512 at 1M",
    "qa.quality.library.recall_at_1": ">= 0.80",
    "qa.quality.library.recall_at_5": ">= 0.95",
    "qa.quality.library.unanswerable_answered": "<= 0.10",
    "qa.latency.100000.sqlite.library.p99_ms": "<= 50",
    "qa.latency.100000.postgresql.library.p99_ms": "<= 50",
    "api.read_p99_ms": "<= 50",
    "api.intake.ratio": ">= 0.5",
    "fuzz.ratio": ">= 0.5",
    "fuzz.consumer_limit_errors": "== 0",
    "verify.seconds": "<= 20 at 1M",
    "verify.peak_rss_mb": "<= 512 at 1M",
    "replay.peak_rss_mb": "<= 512 at 1M",
}

Say = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


# ── payloads ─────────────────────────────────────────────────────────────────────────────────


def iter_payloads(n: int) -> Iterator[Payload]:
    """N realistic intake messages: demo quarters copied under fresh IDs, each copy in
    occurred-at order (so no message waits for a prerequisite and the figure is throughput)."""
    quarter = sorted(demo.generate(), key=lambda m: m.body["occurred_at"])
    made = 0
    copy = 0
    while made < n:
        for m in quarter:
            body = dict(m.body)
            body["case_id"] = case = f"{m.case_id}-{copy}"
            body["event_id"] = f"{body['event_id']}-{copy}"
            if body.get("causation_id"):
                body["causation_id"] = f"{body['causation_id']}-{copy}"
            yield (
                streams.intake_subject(m.source_department, m.source_system, case),
                orjson.dumps(body),
            )
            made += 1
            if made == n:
                return
        copy += 1


def payloads(n: int) -> list[Payload]:
    return list(iter_payloads(n))


def chunks(items: Iterator[Payload] | Sequence[Payload], size: int) -> Iterator[list[Payload]]:
    it = iter(items)
    while batch := list(itertools.islice(it, size)):
        yield batch


# ── servers, processes, clocks ───────────────────────────────────────────────────────────────


def default_sync_config(directory: Path) -> Path:
    """A copy of deploy/nats-server.conf without `sync_interval` (the server then flushes on
    its own schedule, every two minutes by default), written into `directory`."""
    text = (natsserver.DEPLOY / "nats-server.conf").read_text()
    kept = [line for line in text.splitlines() if not re.match(r"\s*sync_interval\s*:", line)]
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "nats-server.conf"
    path.write_text("\n".join(kept) + "\n")
    return path


@contextlib.contextmanager
def _config_from(directory: Path) -> Iterator[None]:
    """Let `NatsServer.start` read `directory/nats-server.conf` instead of the deployed one.
    (`NatsServer` takes its configuration from `natsserver.DEPLOY` only.)"""
    deployed = natsserver.DEPLOY
    natsserver.DEPLOY = directory
    try:
        yield
    finally:
        natsserver.DEPLOY = deployed


BENCH = "bench"
"""The benchmark's own hand: a party of its servers alone that may act as every part."""


class Server:
    """A nats-server of its own for one part of the benchmark, with a connection to it.

    `sync_always`: the deployed configuration (every write flushed); else the same without
    `sync_interval`. `store`: the JetStream directory (default: a fresh one under `workdir`)."""

    def __init__(self, workdir: Path, *, sync_always: bool = True, store: Path | None = None):
        self.dir = Path(tempfile.mkdtemp(prefix="nats-", dir=workdir))
        self.store = store or self.dir / "store"
        self.sync_always = sync_always
        self.credentials = Credentials(
            workdir / "creds", extra={BENCH: Permissions((">",), (">",))}
        )
        self.server = NatsServer(
            self.store, free_port(), credentials=self.credentials, organs=load_organs(),
            log_file=self.dir / "nats-server.log",
        )

    @property
    def url(self) -> str:
        return self.server.url

    async def __aenter__(self) -> Client:
        self.store.mkdir(parents=True, exist_ok=True)
        if self.sync_always:
            await asyncio.to_thread(self.server.start)
        else:
            config_dir = self.dir / "config"
            default_sync_config(config_dir)
            with _config_from(config_dir):
                await asyncio.to_thread(self.server.start)
        try:
            self.nc = await bootstrap.connect(
                self.server.url, "jiedu-bench", party=BENCH,
                credentials=self.credentials.directory,
            )
        except BaseException:
            await asyncio.to_thread(self.server.stop)
            raise
        return self.nc

    async def __aexit__(self, *exc: object) -> None:
        await self.nc.close()
        await asyncio.to_thread(self.server.stop)

    def cpu_s(self) -> float:
        process = self.server.process
        return _process_cpu_s(process.pid) if process is not None else 0.0


def _process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of another process (Linux /proc; 0 where there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    """This process's peak resident set size so far.

    Linux: VmHWM, the high-water mark of this process's own memory. Not ru_maxrss, which a
    spawned child inherits from its parent across fork and exec, so a child of a large parent
    would report the parent's size."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


async def in_child(fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """Run `fn(*args)` in a fresh (spawned) process: its memory figure is its own alone."""
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)


class Stopwatch:
    """Wall and CPU time of one measured stretch: this process's and the server's."""

    def __init__(self, server: Server | None = None) -> None:
        self.server = server
        self.wall = time.perf_counter()
        self.cpu_at = own_cpu_s()
        self.server_cpu_at = server.cpu_s() if server else 0.0
        self.seconds = 0.0
        self.cpu_s = 0.0
        self.server_cpu_s = 0.0

    def stop(self) -> float:
        self.seconds = time.perf_counter() - self.wall
        self.cpu_s = own_cpu_s() - self.cpu_at
        self.server_cpu_s = (self.server.cpu_s() - self.server_cpu_at) if self.server else 0.0
        return self.seconds

    def rate(self, events: int, peak_mb: float | None = None) -> dict[str, float]:
        """What a part measured in a child process reports of its stretch: seconds, events per
        second, CPU seconds, and the process's peak RSS (now, unless `peak_mb` was taken)."""
        return {
            "seconds": round(self.seconds, 2),
            "events_per_s": round(events / self.seconds, 1),
            "peak_rss_mb": round(peak_rss_mb() if peak_mb is None else peak_mb, 1),
            "cpu_s": round(self.cpu_s, 2),
        }

    def usage(self) -> dict[str, float]:
        """CPU seconds spent meanwhile, by this Python process and by the nats-server."""
        return {"python_s": round(self.cpu_s, 2), "nats_server_s": round(self.server_cpu_s, 2)}


# ── ingest ───────────────────────────────────────────────────────────────────────────────────


async def _publish_all(nc: Client, items: Sequence[Payload]) -> None:
    js = nc.jetstream()
    futures = [await js.publish_async(subject, body) for subject, body in items]
    await asyncio.gather(*futures)


async def raw_baseline(items: Sequence[Payload], workdir: Path, *, sync_always: bool) -> float:
    """Messages per second of nats-py publish_async into a plain file stream."""
    async with Server(workdir, sync_always=sync_always) as nc:
        await nc.jetstream().add_stream(
            StreamConfig(name="PLAIN", subjects=["jiedu.intake.>"], storage=StorageType.FILE)
        )
        watch = Stopwatch()
        await _publish_all(nc, items)
        return len(items) / watch.stop()


async def ingest(
    items: Sequence[Payload], settings: Settings, workdir: Path, *, sync_always: bool
) -> dict[str, Any]:
    """Events per second from the first publish to INTAKE until every one is decided
    (appended to EVENTS or recorded in REJECTED, and acknowledged)."""
    server = Server(workdir, sync_always=sync_always)
    async with server as nc:
        js = nc.jetstream()
        await ensure_streams(js, partitions=settings.partitions)
        service = IntakeService(nc, bootstrap.organs(settings), settings)
        await service.start()
        try:
            watch = Stopwatch(server)
            await _publish_all(nc, items)
            while (await js.stream_info(streams.INTAKE)).state.messages:  # noqa: ASYNC110 (polls the server)
                await asyncio.sleep(0.02)
            watch.stop()
        finally:
            await service.stop()
        appended = int((await js.stream_info(streams.EVENTS)).state.messages)
        rejected = int((await js.stream_info(streams.REJECTED)).state.messages)
    return {
        "events_per_s": round(len(items) / watch.seconds, 1),
        "seconds": round(watch.seconds, 2),
        "appended_with_findings": appended,
        "rejected": rejected,
        "cpu": watch.usage(),
    }


async def ingest_part(
    items: Sequence[Payload], settings: Settings, workdir: Path, *, sync_always: bool
) -> dict[str, Any]:
    """The intake between two runs of the raw baseline; the faster baseline counts, so a
    disturbance during one of them does not flatter the ratio."""
    before = await raw_baseline(items, workdir, sync_always=sync_always)
    out = await ingest(items, settings, workdir, sync_always=sync_always)
    after = await raw_baseline(items, workdir, sync_always=sync_always)
    baseline = round(max(before, after), 1)
    per_s = out.pop("events_per_s")
    return {
        "events_per_s": per_s,
        "baseline_per_s": baseline,
        "ratio": _ratio(per_s, baseline),
        "baseline_runs_per_s": [round(before, 1), round(after, 1)],
        **out,
        "sync_interval": "always" if sync_always else "server default",
    }


def _ratio(figure: float | None, baseline: float | None) -> float | None:
    if figure is None or not baseline:
        return None
    return round(figure / baseline, 3)


# ── fuzz: bad input vs good (issue 19) ───────────────────────────────────────────────────────

FUZZ_SEED = 19

CONSUMER_LIMIT = ("10026", "maximum consumers limit")
"""How a consumer-limit error shows in a log record or a refusal's detail."""


class _ConsumerLimitErrors(logging.Handler):
    """Counts log records (the intake's, nats-py's) that report the server's consumer limit."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        text = str(record.msg)
        if record.exc_info and record.exc_info[1] is not None:
            text += repr(record.exc_info[1])
        if any(mark in text for mark in CONSUMER_LIMIT):
            self.count += 1


def fuzz_payloads(n: int, seed: int = FUZZ_SEED) -> tuple[list[Payload], dict[str, int]]:
    """N messages of the tests' hostile mix (`services.tools.fuzz`), without those the server
    refuses at publish (never stored in INTAKE: no work for the intake), and how many of each
    expected outcome they hold."""
    sent = [s for s in fuzz.generate(n, seed) if s.expect != fuzz.REFUSED]
    expected: dict[str, int] = {}
    for s in sent:
        key = s.expect if s.expect in ("accepted", "duplicate") else "rejected"
        expected[key] = expected.get(key, 0) + 1
    return [(s.subject, s.body) for s in sent], expected


WAITED_FOR = frozenset({"unknown_case", "unknown_reference"})
"""Refusals that come only after the message waited out `intake.outlasting` (~50 s by default)
for a prerequisite that never came: a fixed delay of the order guarantee (issue 12), not work."""


async def intake_run(
    items: Sequence[Payload], settings: Settings, workdir: Path
) -> dict[str, Any]:
    """The intake on `items`, on the deployed server, from the first publish:

    - `messages_per_s`: all messages over the time until every message but those kept waiting
      for a prerequisite that never came (`WAITED_FOR`) was decided (its outcome announced):
      how fast the intake works through the load. Those messages' deliveries meanwhile are in
      it; their last, after the wait, are not (their CPU is, in `cpu`);
    - `drained_per_s`: all messages over the time until INTAKE is empty, that wait included;
    - the most consumers EVENTS had meanwhile (reading a case's history must create none) and
      the consumer-limit errors logged or kept as refusals' details."""
    server = Server(workdir, sync_always=True)
    errors = _ConsumerLimitErrors()
    root = logging.getLogger()
    announced: dict[int, tuple[float, str]] = {}
    """Intake sequence → when its (last) outcome was announced, and the outcome."""

    async def on_outcomes(msg: Msg) -> None:
        now = time.perf_counter()
        for o in orjson.loads(msg.data):
            announced[int(o["intake_sequence"])] = (now, str(o.get("reason") or o["status"]))

    async with server as nc:
        js = nc.jetstream()
        await ensure_streams(js, partitions=settings.partitions)
        service = IntakeService(nc, bootstrap.organs(settings), settings)
        root.addHandler(errors)
        await service.start()
        answers = await nc.subscribe(
            streams.outcomes_subject("*", "*"), cb=on_outcomes,
            pending_msgs_limit=-1, pending_bytes_limit=-1,
        )
        consumers = 0
        try:
            watch = Stopwatch(server)
            await _publish_all(nc, items)
            while (await js.stream_info(streams.INTAKE)).state.messages:
                consumers = max(consumers, (await js.stream_info(streams.EVENTS)).state.consumer_count)
                await asyncio.sleep(0.05)
            watch.stop()
        finally:
            await service.stop()
            root.removeHandler(errors)
            await answers.unsubscribe()
        appended = int((await js.stream_info(streams.EVENTS)).state.messages)
        rejected_ = await _rejections(js)
    limit_refusals = sum(
        n for detail, n in rejected_.items() if any(m in detail for m in CONSUMER_LIMIT)
    )
    worked = [at for at, what in announced.values() if what not in WAITED_FOR]
    busy_s = (max(worked) - watch.wall) if worked else watch.seconds
    return {
        "messages_per_s": round(len(items) / busy_s, 1),
        "drained_per_s": round(len(items) / watch.seconds, 1),
        "messages": len(items),
        "busy_s": round(busy_s, 2),
        "seconds": round(watch.seconds, 2),
        "waited_for_prerequisite": sum(what in WAITED_FOR for _, what in announced.values()),
        "appended_with_findings": appended,
        "rejected": sum(rejected_.values()),
        "most_consumers_on_events": consumers,
        "consumer_limit_errors": errors.count + limit_refusals,
        "cpu": watch.usage(),
    }


async def _rejections(js: JetStreamContext) -> dict[str, int]:
    """REJECTED's messages counted by reason and detail (headers only)."""
    out: dict[str, int] = {}
    total = int((await js.stream_info(streams.REJECTED)).state.messages)
    if not total:
        return out
    sub = await js.subscribe(
        (streams.rejected_stream().subjects or ["jiedu.rejected.>"])[0], ordered_consumer=True,
        config=ConsumerConfig(headers_only=True),
    )
    try:
        for _ in range(total):
            msg = await sub.next_msg(timeout=10)
            headers = msg.headers or {}
            key = f"{headers.get(streams.Header.REASON, '')}: {headers.get(streams.Header.DETAIL, '')}"
            out[key] = out.get(key, 0) + 1
    finally:
        await sub.unsubscribe()
    return out


async def fuzz_part(n: int, settings: Settings, workdir: Path) -> dict[str, Any]:
    """The intake on good events (demo payloads), on the hostile mix, and on good events again,
    as many messages each, each on a fresh server; the faster good run is the baseline.

    `ratio` (the target) compares `messages_per_s` (see `intake_run`); `drained_ratio` the
    time until INTAKE is empty, which for the hostile mix includes `prerequisite_wait_s`: a
    message naming a case that does not exist is refused only after that long (issue 12's
    order guarantee), so at N = 20,000 that fixed wait alone bounds the drained figure.
    `cpu_ratio`: CPU per message (this process and the nats-server) on good events (the
    cheaper run) over that on the mix; steadier than wall time on a machine shared with
    other work, and it counts every delivery of a waiting message."""
    bad, expected = fuzz_payloads(n)
    good = payloads(len(bad))
    first = await intake_run(good, settings, workdir)
    hostile = await intake_run(bad, settings, workdir)
    second = await intake_run(good, settings, workdir)
    baseline = max(first["messages_per_s"], second["messages_per_s"])
    per_s = hostile["messages_per_s"]
    drained = max(first["drained_per_s"], second["drained_per_s"])
    for run in (first, hostile, second):
        run["cpu_ms_per_message"] = round(
            1000 * (run["cpu"]["python_s"] + run["cpu"]["nats_server_s"]) / run["messages"], 3
        )
    cheapest_good = min(first["cpu_ms_per_message"], second["cpu_ms_per_message"])
    return {
        "messages_per_s": per_s,
        "baseline_per_s": baseline,
        "ratio": _ratio(per_s, baseline),
        "drained_per_s": hostile["drained_per_s"],
        "drained_baseline_per_s": drained,
        "drained_ratio": _ratio(hostile["drained_per_s"], drained),
        "cpu_ms_per_message": hostile["cpu_ms_per_message"],
        "cpu_ms_per_message_good": cheapest_good,
        "cpu_ratio": _ratio(cheapest_good, hostile["cpu_ms_per_message"]),
        "prerequisite_wait_s": round(sum(outlasting(
            settings.wait_for_case_s, settings.ack_wait_s + settings.lease_ttl_s
        )), 2),
        "consumer_limit_errors": sum(
            r["consumer_limit_errors"] for r in (first, hostile, second)
        ),
        "seed": FUZZ_SEED,
        "mix_expected": expected,
        "hostile": hostile,
        "good_runs": [first, second],
    }


# ── latency ──────────────────────────────────────────────────────────────────────────────────


def _watch(path: str, generation: str, conn: Connection, stop: ProcessEvent) -> None:
    """In a process of its own (no GIL shared with the intake and the projector): poll the
    generation's position in a tight loop, and note the time each new position is first seen.
    Sends back ([time.monotonic() …], [position …]) once `stop` is set."""
    store = SQLiteStore(path)
    times: list[float] = []
    positions: list[int] = []
    last = -1
    conn.send("ready")
    while True:
        stopping = stop.is_set()  # set once the caller saw the last position: read it once more
        position = store.position(generation)
        if position != last:
            times.append(time.monotonic())
            positions.append(position)
            last = position
        if stopping:
            break
        time.sleep(0.0005)
    store.close()
    conn.send((times, positions))


class Watcher:
    """The store's position over time, as a reader of the SQLite file sees it."""

    def __init__(self, path: Path, generation: str) -> None:
        spawn = multiprocessing.get_context("spawn")
        self.conn, child = spawn.Pipe()
        self.stop_event = spawn.Event()
        self.process = spawn.Process(
            target=_watch, args=(str(path), generation, child, self.stop_event), daemon=True
        )

    async def start(self) -> None:
        self.process.start()
        assert await asyncio.to_thread(self.conn.recv) == "ready"

    async def stop(self) -> tuple[list[float], list[int]]:
        self.stop_event.set()
        times, positions = await asyncio.to_thread(self.conn.recv)
        await asyncio.to_thread(self.process.join, 10)
        return times, positions


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank percentile (p in 0..100) of `values`."""
    ordered = sorted(values)
    rank = math.ceil(p / 100 * len(ordered))
    return ordered[min(len(ordered), max(rank, 1)) - 1]


async def latency(
    items: Sequence[Payload],
    settings: Settings,
    workdir: Path,
    *,
    rate: float = RATE,
    sync_always: bool = True,
) -> dict[str, Any]:
    """Publish `items` to INTAKE at a fixed `rate` (each send due at start + i/rate, so sleep
    overshoot does not accumulate) with the intake (in this process) and every projection (in
    a `ProjectorProcess`) running, as `jiedu up` runs them; for each
    accepted event, the time from just before its publish until the case summary's position
    reaches the event's sequence in EVENTS (learned from the outcome the intake announces).

    Where the time goes: `to_appended` is publish → stored in EVENTS (the server's timestamp),
    `to_outcome_announced` publish → the intake's outcome message (sent after the outcome is
    kept, so it may come after the event is visible)."""
    event_ids = [str(orjson.loads(body)["event_id"]) for _, body in items]
    server = Server(workdir, sync_always=sync_always)
    async with server as nc:
        js = nc.jetstream()
        await ensure_streams(js, partitions=settings.partitions)
        store_dir = server.dir / "readmodels"
        store = await asyncio.to_thread(open_store, None, store_dir)
        intake = IntakeService(nc, bootstrap.organs(settings), settings)
        projectors = ProjectorProcess(
            replace(settings, data_dir=store_dir, credentials_dir=server.credentials.directory),
            server.url,
        )
        await intake.start()
        await projectors.start()
        watcher: Watcher | None = None
        try:
            live = await _live_generation(store, CaseSummary.name)
            watcher = Watcher(store_dir / "readmodels.sqlite3", live.name)
            await watcher.start()

            sequences: dict[str, int] = {}
            decided: dict[str, float] = {}
            """Event ID → when its outcome was announced."""

            async def on_outcomes(msg: Msg) -> None:
                now = time.monotonic()
                for o in orjson.loads(msg.data):
                    decided[o["event_id"]] = now
                    if o["status"] == "accepted":
                        sequences[o["event_id"]] = int(o["sequence"])

            sub = await nc.subscribe(streams.ALL_OUTCOMES, cb=on_outcomes)
            sent: dict[str, float] = {}
            sent_wall: dict[str, float] = {}
            acks = []
            watch = Stopwatch(server)
            start = time.monotonic()
            for i, ((subject, body), event_id) in enumerate(zip(items, event_ids, strict=True)):
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                sent[event_id] = time.monotonic()
                sent_wall[event_id] = time.time()
                acks.append(await js.publish_async(subject, body))
            publishing_s = time.monotonic() - start
            await asyncio.gather(*acks)
            await _until(lambda: len(decided) >= len(sent), 60)
            target = max(sequences.values(), default=0)

            async def caught_up() -> bool:
                return await asyncio.to_thread(store.position, live) >= target

            await _until_async(caught_up, 60)
            watch.stop()
            await sub.unsubscribe()
            times, positions = await watcher.stop()
            watcher = None
            appended_at = await _append_times(js, target)
        finally:
            if watcher is not None:
                await watcher.stop()
            await projectors.stop()
            await intake.stop()
            await asyncio.to_thread(store.close)
    millis, appended_ms, announced_ms = [], [], []
    for event_id in event_ids:  # in publish order
        seq = sequences.get(event_id)
        if seq is None:
            continue
        seen = bisect.bisect_left(positions, seq)
        if seen < len(positions):
            millis.append((times[seen] - sent[event_id]) * 1000)
            appended_ms.append((appended_at[seq] - sent_wall[event_id]) * 1000)
            announced_ms.append((decided[event_id] - sent[event_id]) * 1000)
    return {
        **_distribution(millis),
        "to_appended": _distribution(appended_ms),
        "to_outcome_announced": _distribution(announced_ms),
        "p50_by_quarter_of_run": [
            round(percentile(q, 50), 1) for q in _quarters(millis) if q
        ],
        "rate_per_s": rate,
        "achieved_rate_per_s": round(len(items) / publishing_s, 1),
        "published": len(items),
        "measured": len(millis),
        "not_accepted": len(sent) - len(sequences),
        "projections": [p.name for p in ALL],
        "sync_interval": "always" if sync_always else "server default",
        "cpu": watch.usage(),
        "seconds": round(watch.seconds, 2),
    }


async def _live_generation(store: ReadStore, projection: str, timeout: float = 60) -> Generation:
    """The projection's live generation, once the projector process has made it."""
    deadline = time.monotonic() + timeout
    while (live := await asyncio.to_thread(store.live, projection)) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"benchmark: no live generation of {projection}")
        await asyncio.sleep(0.05)
    return live


async def _append_times(js: JetStreamContext, upto: int) -> dict[int, float]:
    """When each event up to sequence `upto` was stored in EVENTS (the server's clock, which is
    this machine's: the same clock as `time.time()`)."""
    sub = await js.subscribe(
        streams.ALL_EVENTS, stream=streams.EVENTS, ordered_consumer=True,
        deliver_policy=DeliverPolicy.ALL,
    )
    out: dict[int, float] = {}
    try:
        while len(out) < upto:
            meta = (await sub.next_msg(timeout=10)).metadata
            out[meta.sequence.stream] = meta.timestamp.timestamp()
    finally:
        await sub.unsubscribe()
    return out


def _quarters(values: Sequence[float]) -> list[Sequence[float]]:
    """Four consecutive slices: a latency that keeps growing means the load is beyond what the
    system sustains; a flat one, that it keeps up."""
    n = len(values)
    return [values[i * n // 4 : (i + 1) * n // 4] for i in range(4)]


def _distribution(millis: Sequence[float]) -> dict[str, float | None]:
    if not millis:
        return {"p50": None, "p99": None, "max": None}
    return {
        "p50": round(percentile(millis, 50), 1),
        "p99": round(percentile(millis, 99), 1),
        "max": round(max(millis), 1),
    }


async def _until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark: the system did not settle in time")
        await asyncio.sleep(0.01)


async def _until_async(condition: Callable[[], Awaitable[bool]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark: the projections did not catch up in time")
        await asyncio.sleep(0.01)


# ── rebuild ──────────────────────────────────────────────────────────────────────────────────


async def fill(nc: Client, items: Iterator[Payload]) -> int:
    """Append the payloads' events straight to EVENTS (no intake: facts only, no findings)."""
    js = nc.jetstream()
    await ensure_streams(js, partitions=1)
    appended = 0
    for batch in chunks(items, 10_000):
        futures = []
        for _, body in batch:
            e = orjson.loads(body)
            subject = streams.event_subject(e["department"], e["case_id"], e["type"])
            futures.append(await js.publish_async(subject, body))
        await asyncio.gather(*futures)
        appended += len(batch)
    return appended


def _raw_child(nats_url: str, credentials: str, events: int) -> dict[str, Any]:
    bootstrap.tune_gc()  # as the rebuild's child does: the same runtime on both sides
    return asyncio.run(_raw_consumer(nats_url, Path(credentials), events))


async def _raw_consumer(nats_url: str, credentials: Path, events: int) -> dict[str, Any]:
    """The baseline of a rebuild: an ordered push consumer over EVENTS that decodes each
    message (orjson) and does nothing else."""
    nc = await bootstrap.connect(nats_url, "jiedu-projector", credentials=credentials)
    done = asyncio.Event()
    count = 0

    async def on(msg: Msg) -> None:
        nonlocal count
        orjson.loads(msg.data)
        count += 1
        if count >= events:
            done.set()

    watch = Stopwatch()
    sub = await nc.jetstream().subscribe(
        streams.ALL_EVENTS, stream=streams.EVENTS, ordered_consumer=True, cb=on,
        deliver_policy=DeliverPolicy.ALL,
    )
    await done.wait()
    watch.stop()
    await sub.unsubscribe()
    await nc.close()
    return watch.rate(count)


def _rebuild_child(
    nats_url: str, credentials: str, database_url: str | None, data_dir: str
) -> dict[str, Any]:
    logs.configure("error")
    bootstrap.tune_gc()  # as `jiedu` does at start
    return asyncio.run(_rebuild(nats_url, Path(credentials), database_url, Path(data_dir)))


async def _rebuild(
    nats_url: str, credentials: Path, database_url: str | None, data_dir: Path
) -> dict[str, Any]:
    """`services.projector.rebuild` of the case summary into a fresh store, timed from the
    call to the switch-over."""
    nc = await bootstrap.connect(nats_url, "jiedu-rebuild", credentials=credentials)
    store = await asyncio.to_thread(open_store, database_url, data_dir)
    try:
        watch = Stopwatch()
        gen = await rebuild(nc.jetstream(), store, CaseSummary(), batch=DEFAULT_BATCH)
        watch.stop()
        peak = peak_rss_mb()
        position = await asyncio.to_thread(store.position, gen)

        def count_rows() -> int:
            with store.transaction(write=False) as tx:
                return int(tx.rows(f"SELECT COUNT(*) FROM {tx.q(CASES.name)}")[0][0])

        rows = await asyncio.to_thread(count_rows)
    finally:
        await asyncio.to_thread(store.close)
        await nc.close()
    return {**watch.rate(position, peak), "events": position, "cases": rows}


def postgres_url(given: str | None) -> str:
    """The PostgreSQL to rebuild into: `--postgres`, else DATABASE_URL if it names one, else
    the local test database."""
    env = os.environ.get("DATABASE_URL", "")
    return given or (env if env.startswith(("postgresql://", "postgres://")) else DEFAULT_POSTGRES)


def _with_schema(url: str, schema: str) -> str:
    base, _ = split_schema(url)
    return f"{base}{'&' if '?' in base else '?'}schema={schema}"


def _postgres_reachable(url: str) -> str | None:
    """None if PostgreSQL answers at `url`, else why not."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (the `postgres` extra)"
    try:
        with psycopg.connect(split_schema(url)[0], connect_timeout=3):
            return None
    except Exception as e:
        return f"unreachable: {e}".strip()


def _drop_schema(url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(split_schema(url)[0], autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def rebuild_part(
    n: int, workdir: Path, *, postgres: str | None, say: Say = _quiet
) -> dict[str, Any]:
    """Fill EVENTS with N events (on a server with the default sync: filling is not what is
    measured), then on a fresh server over the same store with the deployed configuration:
    the raw consumer, the rebuild into SQLite, into PostgreSQL, and the raw consumer again.
    The baseline is the faster of the two raw runs."""
    store = workdir / "rebuild-log"
    say(f"rebuild: appending {n} events to EVENTS")
    async with Server(workdir, sync_always=False, store=store) as nc:
        filled = await fill(nc, iter_payloads(n))
    server = Server(workdir, sync_always=True, store=store)
    creds = str(server.credentials.directory)
    async with server:
        load_at_start = load()
        say("rebuild: raw ordered consumer")
        raw = [await in_child(_raw_child, server.url, creds, filled)]
        say("rebuild: case summary into SQLite")
        sqlite_dir = workdir / "rebuild-sqlite"
        sqlite = await in_child(_rebuild_child, server.url, creds, None, str(sqlite_dir))
        shutil.rmtree(sqlite_dir, ignore_errors=True)
        pg: dict[str, Any] = {"events_per_s": None, "ratio": None}
        pg_error = (
            await asyncio.to_thread(_postgres_reachable, postgres)
            if postgres
            else "no PostgreSQL URL given"
        )
        if postgres and pg_error is None:
            say("rebuild: case summary into PostgreSQL")
            schema = f"bench_{secrets.token_hex(4)}"
            try:
                pg = await in_child(
                    _rebuild_child, server.url, creds, _with_schema(postgres, schema), str(workdir)
                )
            finally:
                await asyncio.to_thread(_drop_schema, postgres, schema)
            pg["schema"] = schema
        else:
            pg["error"] = pg_error
        say("rebuild: raw ordered consumer again")
        raw.append(await in_child(_raw_child, server.url, creds, filled))
    baseline = max(r["events_per_s"] for r in raw)
    sqlite["ratio"] = _ratio(sqlite["events_per_s"], baseline)
    if pg.get("events_per_s") is not None:
        pg["ratio"] = _ratio(pg["events_per_s"], baseline)
    peaks = [x["peak_rss_mb"] for x in (sqlite, pg) if x.get("peak_rss_mb") is not None]
    return {
        "events": filled,
        "filled_by": "direct appends of the N payloads to EVENTS (facts only, no findings)",
        "baseline_per_s": baseline,
        "raw_runs": raw,
        "sqlite": sqlite,
        "postgres": pg,
        "peak_rss_mb": max(peaks),
        "load": {"start": load_at_start, "end": load()},
    }


# ── verify and replay (issue 19: streaming, at a million events) ─────────────────────────────


def _verify_child(
    nats_url: str, credentials: str, data_dir: str, public_key: str, chunk: int
) -> dict[str, Any]:
    logs.configure("error")
    bootstrap.tune_gc()  # as `jiedu` does at start
    return asyncio.run(
        _verify(nats_url, Path(credentials), Path(data_dir), Path(public_key), chunk)
    )


async def _verify(
    nats_url: str, credentials: Path, data_dir: Path, public_key: Path, chunk: int
) -> dict[str, Any]:
    """`jiedu audit verify`'s work (`audit.verify_log`: the log, the checkpoints, the audit
    trail of the store under `data_dir`), timed from the call to the report, reading the log
    included."""
    key = audit.load_public_key(public_key)
    nc = await bootstrap.connect(
        nats_url, "jiedu-audit-verify", party=permissions.AUDITOR, credentials=credentials
    )
    store = await asyncio.to_thread(open_store, None, data_dir)
    try:
        watch = Stopwatch()
        report = await audit.verify_log(nc.jetstream(), store, key, chunk=chunk)
        watch.stop()
    finally:
        await asyncio.to_thread(store.close)
        await nc.close()
    d = report.divergence
    return {
        **watch.rate(report.events),
        "ok": report.ok,
        "divergence": None if d is None else f"{d.seq}: {d.reason}",
        "events": report.events,
        "audit_rows": report.rows,
        "checkpoints": report.checkpoints,
    }


def _replay_child(nats_url: str, credentials: str, out: str, chunk: int) -> dict[str, Any]:
    logs.configure("error")
    bootstrap.tune_gc()
    figures = asyncio.run(_replay(nats_url, Path(credentials), Path(out), chunk))
    exported = sum(f.stat().st_size for f in Path(out).glob("*.jsonl"))
    return {**figures, "exported_mb": round(exported / 2**20, 1)}


async def _replay(nats_url: str, credentials: Path, out: Path, chunk: int) -> dict[str, Any]:
    """`jiedu replay`'s work (`audit.replay_log` of the whole log: every projection into a
    fresh SQLite store, then every table exported), timed from the call to the manifest."""
    nc = await bootstrap.connect(
        nats_url, "jiedu-replay", party=permissions.AUDITOR, credentials=credentials
    )
    try:
        watch = Stopwatch()
        done = await audit.replay_log(nc.jetstream(), out, None, chunk=chunk)
        watch.stop()
    finally:
        await nc.close()
    return {
        **watch.rate(done.as_of_seq),
        "as_of_seq": done.as_of_seq,
        "tables": len(done.files),
    }


async def verify_part(
    n: int, workdir: Path, *, say: Say = _quiet, chunk: int = audit.LOG_CHUNK,
    replay: bool = True,
) -> dict[str, Any]:
    """Verify and replay of a log of N events, each in a child process of its own (its peak
    RSS is its own alone), beside the raw ordered consumer of the same log (before and after;
    the faster counts).

    The log is filled as the rebuild's is (direct appends, facts only); the audit trail is
    built as the running system builds it (the projector's `rebuild` of the audit projection,
    which chains each stored message); the office key signs the head half-way and at the end
    (`audit.checkpoint`). So the verify checks a valid chain, every audit row and two
    checkpoints, and must report OK."""
    store_dir = workdir / "verify-log"
    say(f"verify: appending {n} events to EVENTS")
    async with Server(workdir, sync_always=False, store=store_dir) as nc:
        filled = await fill(nc, iter_payloads(n))
    data_dir = workdir / "verify-data"
    private, public = audit.key_paths(data_dir)
    audit.init_keys(private, public)
    server = Server(workdir, sync_always=True, store=store_dir)
    creds = str(server.credentials.directory)
    async with server as nc:
        js = nc.jetstream()
        say("verify: the audit trail, as the projector builds it")
        store = await asyncio.to_thread(open_store, None, data_dir)
        watch = Stopwatch()
        try:
            await rebuild(js, store, AuditTrail(), batch=DEFAULT_BATCH)
        finally:
            await asyncio.to_thread(store.close)
        trail_s = watch.stop()
        key = audit.load_private_key(private)
        await audit.checkpoint(js, key, upto=max(filled // 2, 1))
        await audit.checkpoint(js, key)
        load_at_start = load()
        say("verify: raw ordered consumer")
        raw = [await in_child(_raw_child, server.url, creds, filled)]
        say("verify: jiedu audit verify")
        verified = await in_child(
            _verify_child, server.url, creds, str(data_dir), str(public), chunk
        )
        replayed: dict[str, Any] | None = None
        if replay:
            say("verify: jiedu replay")
            target = workdir / "verify-replay"
            replayed = await in_child(_replay_child, server.url, creds, str(target), chunk)
            shutil.rmtree(target, ignore_errors=True)
        say("verify: raw ordered consumer again")
        raw.append(await in_child(_raw_child, server.url, creds, filled))
    shutil.rmtree(store_dir, ignore_errors=True)
    shutil.rmtree(data_dir, ignore_errors=True)
    fastest = min(raw, key=lambda r: r["seconds"])
    baseline = {
        "seconds": fastest["seconds"],
        "events_per_s": fastest["events_per_s"],
        "peak_rss_mb": max(r["peak_rss_mb"] for r in raw),
        "runs": raw,
    }
    verified["ratio"] = _ratio(verified["events_per_s"], baseline["events_per_s"])
    setup = {
        "events": filled,
        "filled_by": "direct appends of the N payloads to EVENTS (facts only, no findings); "
        "audit trail by the projector's rebuild; checkpoints at N/2 and N",
        "audit_trail_build_s": round(trail_s, 2),
        "chunk": chunk,
        "load": {"start": load_at_start, "end": load()},
    }
    out: dict[str, Any] = {"verify": {**verified, "baseline": baseline, **setup}}
    if replayed is not None:
        replayed["ratio"] = _ratio(replayed["events_per_s"], baseline["events_per_s"])
        out["replay"] = {
            **replayed, "baseline_seconds": baseline["seconds"],
            "baseline_peak_rss_mb": baseline["peak_rss_mb"],
        }
    return out


# ── the whole benchmark ──────────────────────────────────────────────────────────────────────


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        nats_version = subprocess.run(
            [natsserver.binary(), "--version"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, RuntimeError, subprocess.SubprocessError):
        nats_version = "unknown"
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model or platform.processor() or platform.machine(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "nats_server": nats_version,
    }


def _get(result: dict[str, Any], dotted: str) -> Any:
    value: Any = result
    for key in dotted.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "==": operator.eq,
}


def meets(target: str, value: float) -> bool:
    """Whether `value` meets a target of `TARGETS` (">= 0.4", "< 512 at 1M": the comparison
    and the bound; what follows them says at what size the issue sets it)."""
    comparison, bound = target.split()[:2]
    return _COMPARE[comparison](value, float(bound))


def targets(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each target of the issues with the figure reached and whether it is met (None: not
    measured in this run, as the PostgreSQL figures without PostgreSQL)."""
    out: dict[str, dict[str, Any]] = {}
    for key, target in TARGETS.items():
        part = key.split(".")[0]
        part = PART_OF.get(part, part)
        if part in OPTIONAL_PARTS and part not in result:
            continue  # a part not asked for has no targets to report
        value = _get(result, key)
        out[key] = {
            "target": target,
            "value": value,
            "met": None if value is None else meets(target, value),
        }
    return out


async def run(
    n: int,
    *,
    postgres_url: str | None = None,
    parts: Sequence[str] = PARTS,
    latency_events: int | None = None,
    rate: float = RATE,
    say: Say = _quiet,
    more: Mapping[str, Callable[[Path, Say], Awaitable[dict[str, Any]]]] | None = None,
) -> dict[str, Any]:
    """Run the chosen parts with N events and return the figures (see the module docstring).
    `postgres_url`: where to rebuild into PostgreSQL (None: skip that store). `more`: parts
    measured elsewhere, by name, each given the run's work directory (`api`:
    `services.tools.bench_api`, which builds on this module)."""
    unknown = set(parts) - set(PARTS) - set(OPTIONAL_PARTS)
    if unknown:
        known = ", ".join(PARTS + OPTIONAL_PARTS)
        raise ValueError(f"unknown parts {sorted(unknown)}; known: {known}")
    logs.configure("error")
    settings = Settings(log_level="error")
    result: dict[str, Any] = {
        "n": n,
        "machine": machine(),
        "load": {"start": load()},
        "settings": {
            "partitions": settings.partitions,
            "intake_batch": settings.intake_batch,
            "projector_batch": DEFAULT_BATCH,
            "sync_interval": "always (deploy/nats-server.conf) unless noted",
        },
    }
    workdir = Path(tempfile.mkdtemp(prefix="jiedu-bench-"))
    try:
        if "ingest" in parts:
            items = payloads(n)
            say(f"ingest: {n} events, sync_interval always (baseline, intake, baseline)")
            before = load()
            result["ingest"] = await ingest_part(items, settings, workdir, sync_always=True)
            result["ingest"]["load"] = {"start": before, "end": load()}
            say(f"ingest: {n} events, the server's default sync (baseline, intake, baseline)")
            before = load()
            result["ingest_default_sync"] = await ingest_part(
                items, settings, workdir, sync_always=False
            )
            result["ingest_default_sync"]["load"] = {"start": before, "end": load()}
            del items
        if "latency" in parts:
            count = latency_events or min(n, LATENCY_EVENTS)
            for key, sync_always in (("latency_ms", True), ("latency_ms_default_sync", False)):
                say(f"{key}: {count} events at {rate:g}/s")
                before = load()
                result[key] = await latency(
                    payloads(count), settings, workdir, rate=rate, sync_always=sync_always
                )
                result[key]["load"] = {"start": before, "end": load()}
        if "rebuild" in parts:
            result["rebuild"] = await rebuild_part(n, workdir, postgres=postgres_url, say=say)
        if "fuzz" in parts:
            say(f"fuzz: {n} messages, good events vs the hostile mix (good, fuzz, good)")
            before = load()
            result["fuzz"] = await fuzz_part(n, settings, workdir)
            result["fuzz"]["load"] = {"start": before, "end": load()}
        if "report" in parts:
            say("report: 100 departments, 10,000 cases (best of two, vs JSON only)")
            result["report"] = await asyncio.to_thread(report_part, workdir)
        if "qa" in parts:
            result["qa"] = await asyncio.to_thread(qa_part, workdir, postgres_url, say)
        if "verify" in parts:
            result.update(await verify_part(n, workdir, say=say))  # "verify" and "replay"
        for name, part in (more or {}).items():
            if name in parts:
                result[name] = await part(workdir, say)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result["load"]["end"] = load()
    result["targets"] = targets(result)
    return result


# ── the Q&A library (issue 15) ───────────────────────────────────────────────────────────────


def qa_part(
    workdir: Path, postgres: str | None, say: Say = _quiet,
    sizes: Sequence[int] = bench_qa.SIZES,
) -> dict[str, Any]:
    """`bench_qa.run` on SQLite files in `workdir` and fresh PostgreSQL schemas (dropped
    after), or SQLite alone when PostgreSQL is not there; latency at `sizes` entries."""
    schemas: list[str] = []

    def sqlite(label: str) -> ReadStore:
        return open_store(f"sqlite:///{workdir / f'{label}.sqlite3'}", workdir)

    def pg(label: str) -> ReadStore:
        assert postgres is not None
        schema = f"bench_{os.getpid()}_{label}"
        _drop_schema(postgres, schema)
        schemas.append(schema)
        return open_store(_with_schema(postgres, schema), workdir)

    openers: dict[str, bench_qa.Opener] = {"sqlite": sqlite}
    unreachable = _postgres_reachable(postgres) if postgres else "not asked for"
    if unreachable is None:
        openers["postgresql"] = pg
    try:
        out = bench_qa.run(qa_set.load(), openers, sizes, say=say)
    finally:
        for schema in schemas:
            _drop_schema(postgres or "", schema)
    if unreachable is not None:
        out["postgresql"] = unreachable
    out["load"] = load()
    return out


# ── the quarterly report (issue 7's size) ────────────────────────────────────────────────────


def _sh(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def _fact(seq: int, type_: str, case: str, day: str, dept: str, **attrs: Any) -> Row:
    return {"seq": seq, "event_id": f"e{seq}", "type": type_, "case_id": case, "department": dept,
            "day": date.fromisoformat(day), "attrs": attrs}


def _clock(rule: str, case: str, status: str, trigger: int, started: str, due: str, dept: str,
           length: int) -> Row:
    met = status.startswith("met")
    return {"clock_id": f"{rule}:{case}", "rule_id": rule, "case_id": case, "department": dept,
            "trigger_event_id": f"e{trigger}", "trigger_sequence": trigger,
            "started_at": _sh(started), "length": length, "status": status, "due_at": _sh(due),
            "met_event_id": f"m{trigger}" if met else None,
            "met_sequence": 900 + trigger if met else None, "met_at": _sh(due) if met else None}


def _finding(seq: int, rule: str, case: str, status: str, recorded: str, dept: str) -> Row:
    return {"finding_id": f"{rule}_{seq}", "case_id": case, "department": dept, "rule_id": rule,
            "status": status, "recorded_at": _sh(recorded), "recorded_seq": seq,
            "fact_event_id": f"e{seq}", "message_zh": "说明"}


def report_inputs(departments: int = 100, cases: int = 10_000) -> report.Inputs:
    """Read-model rows for `cases` policy cases spread over `departments`, each issued in
    2026Q2 or Q3 with materials, a consultation, clocks and a finding; deterministic."""
    facts: list[Row] = []
    clocks: list[Row] = []
    findings: list[Row] = []
    seq = 0
    statuses = ("met_on_time", "met_on_time", "met_late", "breached", "open")
    start = datetime(2026, 4, 1, tzinfo=UTC)
    for i in range(cases):
        dept = f"dept_{i % departments:03d}"
        case = f"C{i:05d}"
        day = (start + timedelta(days=i % 180)).date()
        at = datetime(day.year, day.month, day.day, 9, tzinfo=SHANGHAI)
        seq += 1
        issue = seq
        facts.append(_fact(seq, "PolicyIssued", case, day.isoformat(), dept, scope="normative"))
        for form, channel in (("text", "government_website"), ("chart", "wechat")):
            seq += 1
            facts.append(_fact(seq, "MaterialPublished", case, day.isoformat(), dept, form=form,
                              channel=channel))
        seq += 1
        facts.append(_fact(seq, "ConsultationReceived", case, day.isoformat(), dept,
                          consultation_id="Q1", channel="hotline"))
        seq += 1
        facts.append(_fact(seq, "ConsultationAnswered", case, day.isoformat(), dept,
                          consultation_id="Q1", instant=i % 3 == 0))
        for rule, length in (("PUB-2", 20), ("PUB-3", 20), ("QA-4", 5), ("OP-4", 24)):
            row = _clock(rule, case, statuses[i % 5], issue, at.isoformat()[:16],
                        (at + timedelta(days=28)).isoformat()[:16], dept, length)
            clocks.append(row)
        seq += 1
        findings.append(_finding(seq, "REV-5" if i % 7 == 0 else "PUB-1", case,
                                "open" if i % 2 else "resolved", at.isoformat()[:16], dept))
    log = {"first_seq": 1, "last_seq": seq, "first_at": start, "last_at": start + timedelta(days=200)}
    return report.Inputs(facts, clocks, findings, log, {"statistics": seq})


def report_part(workdir: Path, departments: int = 100, cases: int = 10_000) -> dict[str, Any]:
    """The quarterly report for `departments` and `cases` (synthetic read-model rows): build and
    write everything, vs the baseline of writing the same figures as plain JSON only. Best of
    two runs each (other work on a shared machine only ever adds time)."""
    inputs = report_inputs(departments, cases)
    quarter = report.Quarter.parse("2026Q3")
    as_of = _sh("2026-10-10 12:00")
    report.charts(report.build(inputs, quarter, as_of=as_of))  # imports and fonts, once
    runs, baseline = [], []
    for attempt in range(2):
        started = time.perf_counter()
        built = report.build(inputs, quarter, as_of=as_of)
        report.write_report(built, workdir / f"report{attempt}")
        runs.append(time.perf_counter() - started)
        started = time.perf_counter()
        (workdir / f"figures{attempt}.json").write_bytes(orjson.dumps(built.figures, default=str))
        baseline.append(time.perf_counter() - started)
    return {
        "departments": departments,
        "cases": cases,
        "seconds": round(min(runs), 3),
        "baseline_json_only_s": round(min(baseline), 3),
        "ratio": round(min(runs) / max(min(baseline), 1e-9), 2),
        "load": load(),
    }
