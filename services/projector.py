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
import bisect
import contextlib
import hashlib
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from events import streams
from events.catalogue import Event
from events.codec import loads
from projections import ALL, by_name
from projections.base import Key, Projection, Row, Stored, Table, copy_row
from services import bootstrap
from services.adapters import logs
from services.adapters.config import Settings
from services.adapters.eventlog import LogShrinkable, check_streams
from services.adapters.lease import Lease
from services.adapters.processes import ChildProcess
from services.adapters.readmodels import (
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
PARKED_RETRY_S = 5.0
"""How often at most a parked projection looks again whether its incident was decided."""
Progress = Callable[[int, int], None]
"""Called with (position, head) as a rebuild advances."""


class VersionConflict(Exception):
    """The live generation was built by another version of the projection than this code's."""


class Stopped(Exception):
    """A rebuild was asked to stop before it finished; its generation is left to be dropped."""


def store_for(settings: Settings) -> ReadStore:
    """The read-model store the settings name (see `services.adapters.readmodels.open_store`)."""
    return open_store(settings.database_url, settings.data_dir)


async def head(js: JetStreamContext) -> int:
    """The log head: the sequence of the last event in EVENTS (0 if empty)."""
    return int((await js.stream_info(streams.EVENTS)).state.last_seq)


# ── reading the log ──────────────────────────────────────────────────────────────────────────


async def take_arrived(
    sub: JetStreamContext.PushSubscription, limit: int, timeout: float
) -> list[Msg]:
    """Wait up to `timeout` seconds for one message of `sub`, then add whatever else is already
    here, up to `limit`; [] if nothing came.

    The subscription's queue is read directly, not through nats-py's `next_msg`: that costs a
    task per message, and its `asyncio.wait_for` (Python 3.11) loses a cancellation that meets
    a message arriving, so a reader told to stop read on, and one waiting for it (the audit's
    `pipe`) waited for ever. `asyncio.timeout` keeps the cancellation."""
    queue = sub._pending_queue
    try:
        async with asyncio.timeout(timeout):
            batch = [await queue.get()]
    except TimeoutError:
        return []
    while len(batch) < limit:
        try:
            batch.append(queue.get_nowait())
        except asyncio.QueueEmpty:
            break
    for msg in batch:  # the bookkeeping next_msg would do
        sub._pending_size -= len(msg.data)
        queue.task_done()
    return batch


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
        assert self.sub is not None, "open the feed first"
        batch = await take_arrived(self.sub, limit, timeout)
        await self._answer_flow_control()
        return batch

    async def _answer_flow_control(self) -> None:
        """Send the flow-control reply the server waits for, once every message sent before
        its request has left the queue (what next_msg does, which this feed mostly bypasses).
        Without it the reply waits for nats-py's poll every 0.25 s, and the server sends
        nothing more meanwhile: the feed would stall while the batch is being committed
        instead of filling the queue for the next one."""
        assert self.sub is not None
        jsi = self.sub._sub._jsi
        if jsi is None or not jsi._fcr:
            return
        if jsi._fciseq - self.sub._pending_queue.qsize() >= jsi._fcd:
            reply, jsi._fcr, jsi._fcd = jsi._fcr, None, 0
            await self.js._nc.publish(reply)

    async def close(self) -> None:
        if self.sub is not None:
            with contextlib.suppress(Exception):  # connection already gone: nothing to undo
                await self.sub.unsubscribe()
            self.sub = None


_V1_ACK_TOKENS = 9
"""`$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<ns>.<pending>`"""


def stored_of(msg: Msg) -> Stored:
    """The message as JetStream stored it, sequence and time read off its reply subject.

    Cheaper than `msg.metadata`, which builds two objects per message; this runs once per
    event in every projection and rebuild. The time is computed as nats-py computes it."""
    tokens = (msg.reply or "").split(".")
    if len(tokens) != _V1_ACK_TOKENS:  # the longer form with domain and account: rare
        meta = msg.metadata
        return Stored(meta.sequence.stream, msg.subject, msg.data, meta.timestamp)
    at = datetime.fromtimestamp(int(tokens[7]) / 1_000_000_000.0, UTC)
    return Stored(int(tokens[5]), msg.subject, msg.data, at)


# ── one batch, one transaction ───────────────────────────────────────────────────────────────

State = dict[str, dict[Key, Row | None]]
"""Rows by table name and key, as a store holds them (None: no such row)."""

CACHE_ROWS = 20_000
"""At most this many rows kept between batches per projection (`RowCache`): a few tens of MB."""


class RowCache:
    """The rows one runner has loaded and written, kept from one of its batches to the next so
    that a batch loads only rows it has not seen yet (a rebuild or a steady live feed touches
    the same cases over and over).

    Valid only while the generation's position is the one this runner last committed: every
    row change commits together with a higher position (`commit_batch`), so a commit by any
    other writer shows as a different position, and the rows are then forgotten. A failed
    batch forgets them too (`take` hands them out, `keep` takes them back after the commit)."""

    def __init__(self, limit: int = CACHE_ROWS) -> None:
        self.limit = limit
        self.generation: str | None = None
        self.position = -1
        self.state: State = {}

    def take(self, generation: str, position: int) -> State:
        """The rows, if they are what the store holds at `position`; else none. Until `keep`,
        the cache holds nothing."""
        state = self.state if (generation, position) == (self.generation, self.position) else {}
        self.generation, self.position, self.state = None, -1, {}
        return state

    def keep(self, generation: str, position: int, state: State) -> None:
        """After a commit: `state` is what the store holds at `position`."""
        if sum(len(rows) for rows in state.values()) > self.limit:
            state = {}  # start afresh: the next batches load what they touch
        self.generation, self.position, self.state = generation, position, state


class UnitOfWork:
    """The `Rows` a projection sees during one batch: rows are loaded once (in bulk where the
    projection says which it needs), changed in memory, and written once at the end."""

    def __init__(self, tx: Tx, gen: Generation, state: State | None = None) -> None:
        self.tx = tx
        self.gen = gen
        self.state: State = state if state is not None else {}
        """Table name → key → the row as stored (None: not stored); may start from a
        `RowCache`'s rows, which are then not loaded again."""
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
        known = self.state.get(table.name)
        if known is None or key not in known:
            self._load(table, [key])
            known = self.state[table.name]
        row = known[key]
        return None if row is None else copy_row(table, row)

    def put(self, table: Table, row: Row) -> None:
        row = table.complete(row)
        key = table.key_of(row)
        name = table.name
        if name not in self.changed:
            self.tables[name] = table
            self.changed[name] = set()
            self.state.setdefault(name, {})
        self.state[name][key] = row
        self.changed[name].add(key)

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
    PARKED = "parked"  # stopped before an undecodable event, at `position`


@dataclass(frozen=True)
class Result:
    step: Step
    position: int = 0
    generation: Generation | None = None
    incident: int | None = None
    """PARKED: the sequence of the undecodable event."""


@dataclass(frozen=True)
class Undecodable:
    """A stored message that is no event of the catalogue, and why."""

    error: str


class Parked(Exception):
    """A projection stopped before an undecodable event (an open incident); it goes on once an
    operator skips it (`jiedu incidents skip SEQ`)."""

    def __init__(self, sequence: int) -> None:
        super().__init__(f"parked before the undecodable event at sequence {sequence}")
        self.sequence = sequence


class Batch:
    """Messages the feed delivered in one go, in order. Each is decoded at most once, however
    many projections apply it, and only if one of them has not applied it yet."""

    def __init__(self, msgs: Sequence[Msg]) -> None:
        self.stored = [stored_of(m) for m in msgs]
        self._events: list[Event | Undecodable | None] = [None] * len(self.stored)

    def first_after(self, position: int) -> int | None:
        """The sequence of the first message past `position`; None if none is."""
        i = self._index_after(position)
        return self.stored[i].seq if i < len(self.stored) else None

    def after(self, position: int) -> list[tuple[Stored, Event | Undecodable]]:
        """The messages past `position`, with their events (or why one is none)."""
        out = []
        for i in range(self._index_after(position), len(self.stored)):
            event = self._events[i]
            if event is None:
                try:
                    event = loads(self.stored[i].data)
                except Exception as e:  # any failure to decode: the bytes are not an event
                    event = Undecodable(f"{type(e).__name__}: {e}")
                self._events[i] = event
            out.append((self.stored[i], event))
        return out

    def _index_after(self, position: int) -> int:
        return bisect.bisect_right(self.stored, position, key=lambda s: s.seq)


def _up_to_incident(
    tx: Tx, todo: list[tuple[Stored, Event | Undecodable]]
) -> tuple[list[tuple[Stored, Event]], int | None, int | None]:
    """The events to apply, up to the first undecodable one no operator has skipped (which is
    recorded as an incident); with the last sequence dealt with and the parking sequence."""
    ready: list[tuple[Stored, Event]] = []
    last: int | None = None
    for stored, event in todo:
        if isinstance(event, Undecodable):
            incident = tx.incident(stored.seq)
            if incident is not None and not incident.open:
                last = stored.seq  # the operator decided to go on past it
                continue
            if incident is None:
                tx.record_incident(stored.seq, stored.subject, stored.data, event.error)
                log.error(
                    "undecodable event: projections parked before it",
                    sequence=stored.seq, subject=stored.subject, error=event.error,
                )
            return ready, last, stored.seq
        ready.append((stored, event))
        last = stored.seq
    return ready, last, None


def commit_batch(
    store: ReadStore,
    projection: Projection,
    gen: Generation,
    msgs: Sequence[Msg] | Batch,
    *,
    feed_start: int,
    live: bool,
    cache: RowCache | None = None,
) -> Result:
    """Apply one ordered batch to `gen` and record its position, in one transaction.

    Synchronous: call it in a thread. `feed_start` is where the feed that delivered `msgs`
    started; every message it delivered since was passed here in order. `live`: the batch is
    for the live generation (checked under lock, so a switch cannot slip in between).
    `cache`: this runner's rows from its previous batches (`RowCache`)."""
    batch = msgs if isinstance(msgs, Batch) else Batch(msgs)
    with store.transaction(write=True) as tx:
        result, state = _commit_in(tx, projection, gen, batch, feed_start, live, cache)
    if cache is not None and state is not None:  # committed: the rows are the store's now
        cache.keep(gen.name, result.position, state)
    return result


def _commit_in(
    tx: Tx,
    projection: Projection,
    gen: Generation,
    batch: Batch,
    feed_start: int,
    live: bool,
    cache: RowCache | None,
) -> tuple[Result, State | None]:
    """`commit_batch`'s transaction; with the rows as they will be stored once it commits
    (None if the generation is not this one's any more)."""
    if live:
        current = tx.live(projection.name, lock="share")
        if current is None or current.name != gen.name:
            return Result(Step.RETARGET, generation=current), None
    else:
        current = tx.generation(gen.name, lock="share")
        if current is None or current.state == RETIRED:
            return Result(Step.SUPERSEDED), None
    position = tx.position(gen.name, lock=True)
    state = cache.take(gen.name, position) if cache is not None else {}
    first = batch.first_after(position)
    if first is None:
        return Result(Step.SKIPPED, position), state
    if first > position + 1 and feed_start > position + 1:
        return Result(Step.RESTART, position), state  # events in between never reached this feed
    todo, last, parked = _up_to_incident(tx, batch.after(position))
    if todo:
        work = UnitOfWork(tx, gen, state)
        work.prefetch(k for _, e in todo for k in projection.touches(e))
        for stored, event in todo:
            projection.apply_stored(stored, event, work)
        work.flush()
    if last is not None:
        tx.set_position(gen.name, last)
    if parked is not None:
        return Result(Step.PARKED, last or position, incident=parked), state
    assert last is not None
    return Result(Step.COMMITTED, last), state


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
        self.cache = RowCache()
        """Its rows from one batch to the next (see `RowCache`)."""

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

    async def start(self, stop: asyncio.Event) -> bool:
        """Settle on the live generation (rebuilding it first if need be) and its position;
        False if stopped meanwhile."""
        try:
            gen = await self.prepare(stop)
        except Stopped:
            return False
        self.generation = gen
        self.position = await asyncio.to_thread(self.store.position, gen)
        self.ready.set()
        return True

    async def take_in(self, out: Result) -> bool:
        """Note what one commit did; True if this projector needs the log again from
        `self.position + 1`."""
        if out.step is Step.RETARGET:
            self.generation = self._adopt(out.generation)
            self.position = await asyncio.to_thread(self.store.position, self.generation)
            return True
        self.position = out.position
        if out.step is Step.PARKED:
            assert out.incident is not None
            raise Parked(out.incident)
        return out.step is Step.RESTART

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Process the log as it grows until `stop` is set."""
        await run_together(self.js, [self], stop or asyncio.Event())


Failed = Callable[[Projector, Exception], None]
"""Told of a projector that failed, after it has left the group."""


async def run_together(
    js: JetStreamContext,
    projectors: Sequence[Projector],
    stop: asyncio.Event,
    *,
    on_failure: Failed | None = None,
) -> None:
    """Feed several projections' live generations from one reading of the log until `stop`.

    Each batch is read once and each event decoded once, then applied to each projection in a
    transaction of its own (its rows and its position together, as `commit_batch` does), all
    in one trip to a worker thread. The feed starts after the lowest position; a projection
    already further on skips what it has. With `on_failure`, a projector that raises leaves
    the group and is handed over, so one broken projection does not stop the others; without
    it, the error propagates."""
    members: list[Projector] = []
    started = await asyncio.gather(*(p.start(stop) for p in projectors), return_exceptions=True)
    for p, ok in zip(projectors, started, strict=True):
        if isinstance(ok, Exception) and on_failure is not None:
            on_failure(p, ok)
        elif isinstance(ok, BaseException):
            raise ok
        elif ok:
            members.append(p)
    if not members:
        return
    limit = max(p.batch for p in members)
    poll_s = min(p.poll_s for p in members)
    feed = await Feed(js, min(p.position for p in members) + 1).open()
    try:
        while members and not stop.is_set():
            msgs = await feed.take(limit, poll_s)
            if not msgs:
                continue
            results = await asyncio.to_thread(_commit_each, members, msgs, feed.start)
            reread = False
            for p, out in zip(list(members), results, strict=True):
                try:
                    if isinstance(out, Exception):
                        raise out
                    reread = await p.take_in(out) or reread
                except Exception as e:
                    if on_failure is None:
                        raise
                    members.remove(p)
                    on_failure(p, e)
            if reread and members:
                await feed.restart(min(p.position for p in members) + 1)
    finally:
        await feed.close()


def _commit_each(
    members: Sequence[Projector], msgs: Sequence[Msg], feed_start: int
) -> list[Result | Exception]:
    batch = Batch(msgs)
    out: list[Result | Exception] = []
    for p in members:
        assert p.generation is not None
        try:
            out.append(
                commit_batch(
                    p.store, p.projection, p.generation, batch, feed_start=feed_start, live=True,
                    cache=p.cache,
                )
            )
        except Exception as e:  # reported to the caller for this projector alone
            out.append(e)
    return out


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
    cache = RowCache()
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
                commit_batch, store, projection, gen, msgs, feed_start=feed.start, live=False,
                cache=cache,
            )
            if out.step is Step.SUPERSEDED:
                raise Superseded(gen.name)
            if out.step is Step.PARKED:
                assert out.incident is not None
                raise Parked(out.incident)
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
    incident: int | None = None
    """The sequence of the undecodable event it is parked before, if it is."""

    @property
    def lag(self) -> int:
        return max(self.head - self.position, 0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "projection": self.projection, "generation": self.generation,
            "version": self.version, "state": self.state, "position": self.position,
            "head": self.head, "lag": self.lag, "parked_at_incident": self.incident,
        }


async def lags(
    js: JetStreamContext, store: ReadStore, projections: Sequence[Projection] = ALL
) -> list[Lag]:
    """Per projection: its live generation and any being built, with position and lag. A
    projection that has never run shows one row with position 0."""
    top = await head(js)
    incidents = [i.sequence for i in await asyncio.to_thread(store.incidents) if i.open]

    def parked(position: int) -> int | None:
        return next((seq for seq in incidents if seq == position + 1), None)

    out: list[Lag] = []
    for p in projections:
        found = await asyncio.to_thread(store.status, p.name)
        if not found:
            out.append(Lag(p.name, None, None, None, 0, top, parked(0)))
        for s in found:
            g = s.generation
            out.append(Lag(p.name, g.name, g.version, g.state, s.position, top, parked(s.position)))
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
    (or `at_least`), or the event before an open incident, as far as it can go until an
    operator decides; TimeoutError names the ones behind."""
    wanted = at_least if at_least is not None else await head(js)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        incident = await asyncio.to_thread(store.open_incident)
        target = min(wanted, incident.sequence - 1) if incident is not None else wanted
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
    """Runs every projection's `Projector` from one reading of the log (`run_together`),
    restarted with backoff if the feed or the store goes away. A projection that fails on its
    own leaves the group and goes on with a feed of its own, restarted with backoff; a version
    conflict stops it."""

    def __init__(
        self,
        js: JetStreamContext,
        store: ReadStore,
        projections: Sequence[Projection] = ALL,
        *,
        batch: int = DEFAULT_BATCH,
    ) -> None:
        self.js = js
        self.projectors = [Projector(js, store, p, batch=batch) for p in projections]
        self._together = list(self.projectors)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Check that the log cannot shrink (refusing to run if it can), then project."""
        await check_streams(self.js)
        self._stop.clear()
        self._together = list(self.projectors)
        self._tasks = [asyncio.create_task(self._supervise_group(), name="projectors")]

    async def ready(self, timeout: float = 60.0) -> None:
        """Wait until every projector feeds its live generation."""
        await asyncio.wait_for(
            asyncio.gather(*(p.ready.wait() for p in self.projectors)), timeout
        )

    async def stop(self) -> None:
        """Finish the batches in hand, then stop."""
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _leave(self, projector: Projector, error: Exception) -> None:
        self._together.remove(projector)
        name = projector.projection.name
        if isinstance(error, VersionConflict):
            log.error("projection stopped", projection=name, error=str(error))
            return
        if isinstance(error, Parked):
            log.error("projection parked: it waits alone", projection=name, error=str(error))
            self._tasks.append(
                asyncio.create_task(self._supervise(projector), name=f"projector-{name}")
            )
            return
        log.error(
            "projection failed: it goes on alone", projection=name, error=repr(error),
            exc_info=error,
        )
        self._tasks.append(
            asyncio.create_task(self._supervise(projector), name=f"projector-{name}")
        )

    async def _supervise_group(self) -> None:
        await self._with_backoff(
            "projections", lambda: run_together(
                self.js, list(self._together), self._stop, on_failure=self._leave
            )
        )

    async def _supervise(self, projector: Projector) -> None:
        await self._with_backoff(projector.projection.name, lambda: projector.run(self._stop))

    async def _with_backoff(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        delay = 0.5
        while not self._stop.is_set():
            try:
                await run()
                return
            except VersionConflict as e:
                log.error("projection stopped", projection=name, error=str(e))
                return
            except Parked as e:  # waits for the operator's decision, looking again now and then
                log.error(
                    "projection parked at an incident: see `jiedu incidents`",
                    projection=name, sequence=e.sequence, delay_s=delay,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
                delay = min(delay * 2, PARKED_RETRY_S)
            except Exception:
                log.exception("projection failed, restarting", projection=name, delay_s=delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
                delay = min(delay * 2, 30.0)


class ProjectorProcess(ChildProcess):
    """Every projection in a process of its own (`python -m services.projector`), so that the
    projections and the intake each have a core and a GIL of their own; stopped gracefully,
    finishing the batches in hand. It logs to its own file, `log_name`
    (`services.adapters.logs`: no two processes share one)."""

    def __init__(
        self, settings: Settings, nats_url: str, *, batch: int = DEFAULT_BATCH,
        log_name: str = "projector",
    ) -> None:
        super().__init__(
            "projector", "services.projector", ["--batch", str(batch), "--log-name", log_name],
            settings.child_environment(nats_url),
        )


async def serve(
    settings: Settings,
    names: Sequence[str] = (),
    *,
    batch: int = DEFAULT_BATCH,
    parent: int | None = None,
    lease: bool = False,
) -> None:
    """Run the named projections (default: all) until SIGTERM or SIGINT (or until the process
    `parent` has gone). With `lease`, only while this process holds its store's projector
    lease: several processes on several machines stand by, one feeds (see `standby`)."""
    chosen = [by_name(n) for n in names] or list(ALL)
    store = await asyncio.to_thread(store_for, settings)
    try:
        async with bootstrap.parts(settings, "jiedu-projector", ensure=False) as parts:
            js = parts.nc.jetstream()
            if lease:
                await standby(settings, js, store, chosen, batch=batch, parent=parent)
                return
            service = ProjectorService(js, store, chosen, batch=batch)
            await service.start()
            await bootstrap.until_signalled(parent=parent)
            await service.stop()
    finally:
        await asyncio.to_thread(store.close)


def lease_key(settings: Settings) -> str:
    """One projector lease per read-model store: processes feeding the same PostgreSQL
    database (or SQLite file) take turns; those of other stores do not wait for them."""
    store = settings.database_url or str((settings.data_dir / "readmodels").resolve())
    return "store." + hashlib.sha256(store.encode()).hexdigest()[:16]


async def standby(
    settings: Settings,
    js: JetStreamContext,
    store: ReadStore,
    projections: Sequence[Projection],
    *,
    batch: int = DEFAULT_BATCH,
    parent: int | None = None,
) -> None:
    """Feed the projections only while holding the store's lease (待命): wait for it, feed,
    renew it every third of its TTL, stop feeding once it is lost, give it back when stopped.

    The lease saves work, it does not make the projection exactly-once: each batch commits with
    its position under a lock (`commit_batch`), so even two processes feeding one store at
    once (a holder cut off past its TTL, say) never apply an event twice."""
    kv = await js.key_value(streams.PROJECTOR_LEASES_BUCKET)
    lease = Lease(kv, lease_key(settings), settings.instance, settings.lease_ttl_s)
    stopping = asyncio.create_task(bootstrap.until_signalled(parent=parent))
    turn = settings.lease_ttl_s / 3

    async def pause() -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(stopping), turn)

    try:
        while not stopping.done():
            try:
                taken = await lease.try_take()
            except Exception as e:  # no leader for the bucket this moment: try again
                log.warning("projector lease not reachable", error=repr(e))
                taken = False
            if not taken:
                await pause()
                continue
            log.info("projector lease taken: feeding", instance=settings.instance)
            service = ProjectorService(js, store, projections, batch=batch)
            try:
                await service.start()
            except LogShrinkable:
                raise
            except Exception as e:  # a node lost as it starts: give the lease back, try again
                log.warning("projections not started: standing by", error=repr(e))
                await lease.release()
                await pause()
                continue
            while not stopping.done() and await lease.renew():
                await pause()
            await service.stop()
            if not stopping.done():
                log.warning("projector lease lost: standing by", instance=settings.instance)
    finally:
        await lease.release()
        stopping.cancel()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.projector", description=__doc__)
    parser.add_argument("projection", nargs="*", help="projections to run (default: all)")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH)
    parser.add_argument(
        "--lease", action="store_true",
        help="feed only while holding the store's projector lease; stand by otherwise",
    )
    parser.add_argument(
        "--parent", type=int, default=None, help="stop once the process with this ID has gone"
    )
    parser.add_argument(
        "--log-name", default=None,
        help="write the log also to <data dir>/logs/LOG_NAME.log (as `jiedu up` has it do)",
    )
    args = parser.parse_args(argv)
    settings = Settings.from_env(data_dir=args.data_dir)
    if args.log_name:
        logs.for_process(settings, args.log_name)
    else:
        logs.configure(settings.log_level, fmt=settings.log_format)
    bootstrap.tune_gc()
    asyncio.run(
        serve(settings, args.projection, batch=args.batch, parent=args.parent, lease=args.lease)
    )


if __name__ == "__main__":
    main()
