"""The projection runner (投影): keeps every read model up to date from the log, exactly once.

One mechanism for every projection. A `Feed` reads `EVENTS` in stream order from the store's
position + 1 (an ordered push consumer: no acks, no server-side cursor; the store's tracking
row is the only cursor). Messages come in ordered batches of whatever has arrived, up to
`batch`; each batch is decoded, applied to the projection's rows through a `UnitOfWork` (one
load and one write per touched row), and committed together with the new position in one
transaction, in a worker thread. Inside that transaction the runner re-reads the position and
skips what the store already reflects, so a redelivered batch changes nothing and two runners
on one store never apply an event twice.

- `Projector.run` follows the live generation; if a rebuild switched generations meanwhile it
  notices inside its next transaction and moves over. If the code's projection version differs
  from the live one's, it first rebuilds (the old generation keeps serving, unfed, meanwhile).
- `rebuild` fills a new generation from sequence 1 while the live one keeps serving and being
  fed, switches once it has caught up, and drops the old one.
- `lags` reports, per projection and generation, the log head minus the position.

`python -m services.projector` runs every projection (or those named) until SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Any

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from events import streams
from events.codec import loads
from projections import ALL, by_name
from projections.base import Key, Projection, Row, Stored, Table, copy_row
from services import bootstrap, logs
from services.config import Settings
from services.readmodels import (
    LIVE_STATE,
    RETIRED,
    Generation,
    ReadStore,
    Superseded,
    Tx,
    open_store,
)

log = logs.get("jiedu.projector")

DEFAULT_BATCH = 1000
Progress = Callable[[int, int], None]
"""Called with (position, head) as a rebuild advances."""


class VersionConflict(Exception):
    """The live generation was built by another version of the projection than this code's."""


class Stopped(Exception):
    """A rebuild was asked to stop before it finished; its generation is left to be dropped."""


def store_for(settings: Settings) -> ReadStore:
    """The read-model store the settings name (see `services.readmodels.open_store`)."""
    return open_store(settings.database_url, settings.data_dir)


async def head(js: JetStreamContext) -> int:
    """The log head: the sequence of the last event in EVENTS (0 if empty)."""
    return int((await js.stream_info(streams.EVENTS)).state.last_seq)


# ── reading the log ──────────────────────────────────────────────────────────────────────────


class Feed:
    """EVENTS from sequence `start` on, in stream order, in batches of what has arrived.

    An ordered push consumer: ephemeral, in memory, no acks, reset by nats-py itself on a gap.
    Flow control is answered only as messages leave the subscription's queue, so a slow store
    holds the server back instead of filling memory."""

    def __init__(self, js: JetStreamContext, start: int) -> None:
        self.js = js
        self.start = start
        self.sub: JetStreamContext.PushSubscription | None = None

    async def open(self) -> Feed:
        self.sub = await self.js.subscribe(
            streams.ALL_EVENTS,
            stream=streams.EVENTS,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            config=ConsumerConfig(opt_start_seq=max(self.start, 1)),
        )
        return self

    async def restart(self, start: int) -> None:
        await self.close()
        self.start = start
        await self.open()

    async def take(self, limit: int, timeout: float) -> list[Msg]:
        """Wait up to `timeout` seconds for one message, then add whatever else is already
        here, up to `limit`; [] if nothing came."""
        sub = self.sub
        assert sub is not None, "open the feed first"
        try:
            batch = [await sub.next_msg(timeout=timeout)]
        except NatsTimeout:
            return []
        queue = sub._pending_queue  # drained directly: next_msg costs a task per message
        while len(batch) < limit:
            try:
                msg = queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            sub._pending_size -= len(msg.data)  # the bookkeeping next_msg would do
            queue.task_done()
            batch.append(msg)
        return batch

    async def close(self) -> None:
        if self.sub is not None:
            with contextlib.suppress(Exception):  # connection already gone: nothing to undo
                await self.sub.unsubscribe()
            self.sub = None


# ── one batch, one transaction ───────────────────────────────────────────────────────────────

_ABSENT: dict[str, Any] = {}


class UnitOfWork:
    """The `Rows` a projection sees during one batch: rows are loaded once (in bulk where the
    projection says which it needs), changed in memory, and written once at the end."""

    def __init__(self, tx: Tx, gen: Generation) -> None:
        self.tx = tx
        self.gen = gen
        self.state: dict[str, dict[Key, Row | None]] = {}
        self.changed: dict[str, set[Key]] = {}
        self.tables: dict[str, Table] = {}

    def _load(self, table: Table, keys: Sequence[Key]) -> None:
        known = self.state.setdefault(table.name, {})
        self.tables[table.name] = table
        missing = [k for k in dict.fromkeys(keys) if k not in known]
        if missing:
            found = self.tx.load(table, self.gen.physical(table), missing)
            for k in missing:
                known[k] = found.get(k)

    def prefetch(self, wanted: Iterable[tuple[Table, Key]]) -> None:
        by_table: dict[str, tuple[Table, list[Key]]] = {}
        for table, key in wanted:
            by_table.setdefault(table.name, (table, []))[1].append(key)
        for table, keys in by_table.values():
            self._load(table, keys)

    def get(self, table: Table, *key: Any) -> Row | None:
        self._load(table, [key])
        row = self.state[table.name][key]
        return None if row is None else copy_row(table, row)

    def put(self, table: Table, row: Row) -> None:
        row = table.complete(row)
        key = table.key_of(row)
        self.tables[table.name] = table
        self.state.setdefault(table.name, {})[key] = row
        self.changed.setdefault(table.name, set()).add(key)

    def delete(self, table: Table, *key: Any) -> None:
        self.tables[table.name] = table
        self.state.setdefault(table.name, {})[key] = None
        self.changed.setdefault(table.name, set()).add(key)

    def flush(self) -> int:
        """Write every changed row; returns how many."""
        written = 0
        for name, keys in self.changed.items():
            table, state = self.tables[name], self.state[name]
            physical = self.gen.physical(table)
            ordered = sorted(keys)
            self.tx.delete(table, physical, [k for k in ordered if state[k] is None])
            rows = [r for k in ordered if (r := state[k]) is not None]
            self.tx.upsert(table, physical, rows)
            written += len(ordered)
        return written


class Step(Enum):
    COMMITTED = "committed"  # applied, position moved to `position`
    SKIPPED = "skipped"  # the store already reflected all of it
    RESTART = "restart"  # the store is behind the feed: read again from position + 1
    RETARGET = "retarget"  # another generation went live: feed that one
    SUPERSEDED = "superseded"  # the generation being built was retired


@dataclass(frozen=True)
class Result:
    step: Step
    position: int = 0
    generation: Generation | None = None


def sequence_of(msg: Msg) -> int:
    """The message's stream sequence, read off its reply subject (the cheap part of
    `msg.metadata`, which also parses a timestamp per message)."""
    return int(Msg.Metadata._get_metadata_fields(msg.reply)[5])


def commit_batch(
    store: ReadStore,
    projection: Projection,
    gen: Generation,
    msgs: Sequence[Msg],
    *,
    feed_start: int,
    live: bool,
) -> Result:
    """Apply one ordered batch to `gen` and record its position, in one transaction.

    Synchronous: call it in a thread. `feed_start` is where the feed that delivered `msgs`
    started; every message it delivered since was passed here in order. `live`: the batch is
    for the live generation (checked under lock, so a switch cannot slip in between)."""
    with store.transaction(write=True) as tx:
        if live:
            current = tx.live(projection.name, lock="share")
            if current is None or current.name != gen.name:
                return Result(Step.RETARGET, generation=current)
        else:
            current = tx.generation(gen.name, lock="share")
            if current is None or current.state == RETIRED:
                return Result(Step.SUPERSEDED)
        position = tx.position(gen.name, lock=True)
        todo = [(seq, m) for m in msgs if (seq := sequence_of(m)) > position]
        if not todo:
            return Result(Step.SKIPPED, position)
        if todo[0][0] > position + 1 and feed_start > position + 1:
            return Result(Step.RESTART, position)  # events in between never reached this feed
        events = [(seq, loads(m.data)) for seq, m in todo]
        work = UnitOfWork(tx, gen)
        work.prefetch(k for _, e in events for k in projection.touches(e))
        for (seq, e), (_, m) in zip(events, todo, strict=True):
            projection.apply_stored(
                Stored(seq, m.subject, m.data, m.metadata.timestamp), e, work
            )
        work.flush()
        last = events[-1][0]
        tx.set_position(gen.name, last)
        return Result(Step.COMMITTED, last)


# ── live processing ──────────────────────────────────────────────────────────────────────────


class Projector:
    """Feeds one projection's live generation from the log until stopped."""

    def __init__(
        self,
        js: JetStreamContext,
        store: ReadStore,
        projection: Projection,
        *,
        batch: int = DEFAULT_BATCH,
        poll_s: float = 0.25,
    ) -> None:
        self.js = js
        self.store = store
        self.projection = projection
        self.batch = batch
        self.poll_s = poll_s
        self.generation: Generation | None = None
        self.position = 0
        self.ready = asyncio.Event()
        """Set once the projector feeds its live generation (after any version rebuild)."""

    async def prepare(self, stop: asyncio.Event | None = None) -> Generation:
        """The live generation to feed: made if there is none, rebuilt if its version is not
        this code's (the old one serves, unfed, until the new one takes over)."""
        live = await asyncio.to_thread(self.store.ensure_live, self.projection)
        if live.version == self.projection.version:
            return live
        if live.version > self.projection.version:
            raise VersionConflict(
                f"{live.name} is version {live.version}; this code has "
                f"{self.projection.name} version {self.projection.version}"
            )
        log.warning(
            "projection version changed: rebuilding",
            projection=self.projection.name, live=live.name, live_version=live.version,
            version=self.projection.version,
        )
        return await rebuild(self.js, self.store, self.projection, batch=self.batch, stop=stop)

    def _adopt(self, gen: Generation | None) -> Generation:
        if gen is None:
            raise VersionConflict(f"{self.projection.name} has no live generation any more")
        if gen.version != self.projection.version:
            raise VersionConflict(
                f"{gen.name} went live with version {gen.version}; this code has "
                f"version {self.projection.version}"
            )
        log.info("live generation switched", projection=self.projection.name, generation=gen.name)
        return gen

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Process the log as it grows until `stop` is set."""
        stop = stop or asyncio.Event()
        try:
            gen = await self.prepare(stop)
        except Stopped:
            return
        self.generation = gen
        self.position = await asyncio.to_thread(self.store.position, gen)
        feed = await Feed(self.js, self.position + 1).open()
        self.ready.set()
        try:
            while not stop.is_set():
                msgs = await feed.take(self.batch, self.poll_s)
                if not msgs:
                    continue
                out = await asyncio.to_thread(
                    commit_batch, self.store, self.projection, gen, msgs,
                    feed_start=feed.start, live=True,
                )
                if out.step is Step.RETARGET:
                    gen = self.generation = self._adopt(out.generation)
                    self.position = await asyncio.to_thread(self.store.position, gen)
                    await feed.restart(self.position + 1)
                elif out.step is Step.RESTART:
                    self.position = out.position
                    await feed.restart(out.position + 1)
                else:
                    self.position = out.position
        finally:
            await feed.close()


# ── rebuild ──────────────────────────────────────────────────────────────────────────────────


async def rebuild(
    js: JetStreamContext,
    store: ReadStore,
    projection: Projection,
    *,
    batch: int = DEFAULT_BATCH,
    progress: Progress | None = None,
    keep_old: bool = False,
    stop: asyncio.Event | None = None,
) -> Generation:
    """Fill a new generation from sequence 1, switch readers to it once it has caught up with
    the live one, and drop the old one (unless `keep_old`). The live generation serves (and a
    running `Projector` feeds it) throughout; the switch is one transaction.

    Raises `Superseded` if a later rebuild of the same projection retired this one."""
    gen = await asyncio.to_thread(store.create_generation, projection)
    log.info("rebuild started", projection=projection.name, generation=gen.name)
    started = time.perf_counter()
    top = await head(js)
    position = 0
    old: Generation | None = None
    feed = await Feed(js, 1).open()
    try:
        while True:
            if stop is not None and stop.is_set():
                raise Stopped(gen.name)
            if position >= top:
                switched, old = await asyncio.to_thread(store.switch, projection, gen)
                if switched:
                    break
                top = max(await head(js), position + 1)  # the live one is ahead: keep reading
            msgs = await feed.take(batch, 1.0)
            if not msgs:
                top = await head(js)
                continue
            out = await asyncio.to_thread(
                commit_batch, store, projection, gen, msgs, feed_start=feed.start, live=False
            )
            if out.step is Step.SUPERSEDED:
                raise Superseded(gen.name)
            if out.step is Step.RESTART:
                await feed.restart(out.position + 1)
            position = out.position
            if progress is not None:
                progress(position, max(top, position))
    finally:
        await feed.close()
    if progress is not None:
        progress(position, position)
    seconds = time.perf_counter() - started
    log.info(
        "rebuild switched", projection=projection.name, generation=gen.name,
        replaced=old.name if old else None, position=position, seconds=round(seconds, 3),
    )
    if old is not None and not keep_old:
        await asyncio.to_thread(store.drop, projection, old)
    return replace(gen, state=LIVE_STATE)


# ── lag ──────────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Lag:
    """How far one generation of a projection is behind the log."""

    projection: str
    generation: str | None
    version: int | None
    state: str | None
    position: int
    head: int

    @property
    def lag(self) -> int:
        return max(self.head - self.position, 0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "projection": self.projection, "generation": self.generation,
            "version": self.version, "state": self.state, "position": self.position,
            "head": self.head, "lag": self.lag,
        }


async def lags(
    js: JetStreamContext, store: ReadStore, projections: Sequence[Projection] = ALL
) -> list[Lag]:
    """Per projection: its live generation and any being built, with position and lag. A
    projection that has never run shows one row with position 0."""
    top = await head(js)
    out: list[Lag] = []
    for p in projections:
        found = await asyncio.to_thread(store.status, p.name)
        if not found:
            out.append(Lag(p.name, None, None, None, 0, top))
        for s in found:
            g = s.generation
            out.append(Lag(p.name, g.name, g.version, g.state, s.position, top))
    return out


async def wait_caught_up(
    js: JetStreamContext,
    store: ReadStore,
    projections: Sequence[Projection] = ALL,
    *,
    timeout: float = 60.0,
    at_least: int | None = None,
) -> None:
    """Wait until every projection's live generation has reached the log head as it is now
    (or `at_least`); TimeoutError names the ones behind."""
    target = at_least if at_least is not None else await head(js)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        behind = []
        for p in projections:
            live = await asyncio.to_thread(store.live, p.name)
            position = await asyncio.to_thread(store.position, live) if live else 0
            if position < target or live is None or live.version != p.version:
                behind.append(f"{p.name}@{position}")
        if not behind:
            return
        if loop.time() > deadline:
            raise TimeoutError(f"not caught up with {target}: {', '.join(behind)}")
        await asyncio.sleep(0.05)


# ── every projection in one process ──────────────────────────────────────────────────────────


class ProjectorService:
    """Runs a `Projector` per projection; one failing is logged and restarted with backoff
    (a store or server that went away), except for a version conflict, which stops it."""

    def __init__(
        self,
        js: JetStreamContext,
        store: ReadStore,
        projections: Sequence[Projection] = ALL,
        *,
        batch: int = DEFAULT_BATCH,
    ) -> None:
        self.projectors = [Projector(js, store, p, batch=batch) for p in projections]
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._stop.clear()
        self._tasks = [
            asyncio.create_task(self._supervise(p), name=f"projector-{p.projection.name}")
            for p in self.projectors
        ]

    async def ready(self, timeout: float = 60.0) -> None:
        """Wait until every projector feeds its live generation."""
        await asyncio.wait_for(
            asyncio.gather(*(p.ready.wait() for p in self.projectors)), timeout
        )

    async def stop(self) -> None:
        """Finish the batches in hand, then stop."""
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _supervise(self, projector: Projector) -> None:
        name = projector.projection.name
        delay = 0.5
        while not self._stop.is_set():
            try:
                await projector.run(self._stop)
                return
            except VersionConflict as e:
                log.error("projection stopped", projection=name, error=str(e))
                return
            except Exception:
                log.exception("projection failed, restarting", projection=name, delay_s=delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
                delay = min(delay * 2, 30.0)


async def serve(settings: Settings, names: Sequence[str] = (), *, batch: int = DEFAULT_BATCH) -> None:
    """Run the named projections (default: all) until SIGTERM or SIGINT."""
    chosen = [by_name(n) for n in names] or list(ALL)
    store = await asyncio.to_thread(store_for, settings)
    try:
        async with bootstrap.parts(settings, "jiedu-projector", ensure=False) as parts:
            service = ProjectorService(parts.nc.jetstream(), store, chosen, batch=batch)
            await service.start()
            await bootstrap.until_signalled()
            await service.stop()
    finally:
        await asyncio.to_thread(store.close)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.projector", description=__doc__)
    parser.add_argument("projection", nargs="*", help="projections to run (default: all)")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH)
    args = parser.parse_args(argv)
    settings = Settings.from_env(data_dir=args.data_dir)
    logs.configure(settings.log_level)
    asyncio.run(serve(settings, args.projection, batch=args.batch))


if __name__ == "__main__":
    main()
