"""Audit services (审计): reading the log as stored, signed checkpoints, verification, replay as of
a point, and exports. The chain itself is `domain.chain`; the audit rows are `projections.audit`.

- **Reading the log**: `iter_log` yields every stored message of EVENTS (sequence, subject,
  exact bytes, stored timestamp) in stream order, a chunk at a time, with a bounded window read
  ahead; `read_log` gathers them into a list (tests, small logs). `verify_log` and `replay_log`
  stream: memory holds a few chunks and a page of rows whatever the log's length (issue 19: a
  million events in ≤ 512 MB; `jiedu bench --parts verify`).
- **Checkpoints**: the stream `CHECKPOINTS` (subjects ``jiedu.checkpoints.>``, file storage,
  deny_delete, deny_purge) holds signed chain heads, one JSON object per message. On-demand
  checkpoints go to ``jiedu.checkpoints.on_demand``; a quarter's goes to
  ``jiedu.checkpoints.quarter.<2026Q3>`` once only (optimistic concurrency on that subject).
  `checkpoint_if_quarter_ended` signs the head as the log stood at the quarter's end (the last
  message stored before it): a periodic caller (the deadline scanner) can call it every tick.
- **Verification**: `verify` is pure — an iterable of stored messages, the checkpoints, the
  public key and the audit rows in, a report out. It recomputes the chain (`domain.chain`), and
  recomputes every audit row from its message and compares it column by column, so an edited
  audit row is named by its sequence just as a changed, removed, inserted or reordered event is.
  `Verification` is the same check a chunk at a time; `verify_log` feeds it the log as read and
  the store's audit rows a chunk's range of sequences at a time (`StoreAuditRows`).
- **Replay** (`replay`): every projection of `projections.ALL` is built into a fresh SQLite
  store under the output directory from a prefix of the log, then each table is exported as
  canonical JSON Lines plus a manifest. As of a sequence: that prefix. As of a time, by default
  in *recorded* order: up to the last message whose stored timestamp is ≤ the time (what the
  system knew then); `by="occurred"` instead stops before the first event that occurred after
  the time (useful for a demo loaded all at once). The live stores are never touched. The
  deadline projection counts with the years confirmed in the log up to each event (so a replay
  as of a point uses the calendar in force then) on top of the calendar this process loads
  (`projections.deadlines`); the rule set a finding was judged by is recorded in the finding
  event itself.
- **Exports**: JSON Lines (canonical: sorted keys, one row per line), CSV (UTF-8 with BOM, so
  that Excel reads the Chinese) and a self-contained HTML timeline of one case.

Wiring the live audit trail: the projector passes only decoded events to `Projection.apply`,
so live audit rows lack `link` and `recorded_at` until `services.projector.commit_batch` calls
`apply_stored(stored_of(msg), event, work)` for projections that have it (see the report
of issue 6). The replay always uses `apply_stored`.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import html
import io
import itertools
import os
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import BadRequestError, NotFoundError

from domain import chain
from domain.calendar import SHANGHAI
from domain.chain import Checkpoint, Divergence
from events import streams
from events.codec import loads
from projections import ALL
from projections.audit import TRAIL, AuditTrail, row_of
from projections.base import Projection, Row, Stored, Table
from services.adapters import logs
from services.adapters.readmodels import SQLITE_FILE, Incident, ReadStore, SQLiteStore
from services.projector import Feed, UnitOfWork, head, stored_of, take_arrived

log = logs.get("jiedu.audit")

KEY_DIR = "keys"
PRIVATE_KEY_FILE = "office_ed25519.pem"
PUBLIC_KEY_FILE = "office_ed25519.pub.pem"


# ── reading the log as stored ────────────────────────────────────────────────────────────────


LOG_CHUNK = 2000
"""Messages per chunk when the log is read as a stream: what a reader of the log holds at once
(two chunks with the one being read), whatever the log's length."""


async def iter_log(
    js: JetStreamContext, upto: int | None = None, batch: int = LOG_CHUNK, *,
    partial: bool = False,
) -> AsyncGenerator[list[Stored], None]:
    """The stored messages of EVENTS from its first up to `upto` (default: the stream's last
    sequence now), gaps and all, in stream order, as chunks of at most `batch` messages: a
    reader holds one chunk, not the log. If the stream stops delivering before its own last
    sequence (messages lost from its store files) this raises TimeoutError, unless `partial`:
    then it ends where the stream stopped, for `verify` to name where the log falls short.

    A push consumer of its own (ephemeral) whose window is acknowledged a chunk at a time
    (`max_ack_pending`: `READ_AHEAD` chunks): what is read ahead of the reader is bounded, as
    fast as an ordered consumer otherwise. (An ordered consumer delivers up to the server's
    flow-control window, 32 MiB of messages, ahead of a slow reader: a replay at ~1,000
    events/s gathered tens of thousands of messages.) Messages come in stream order (one
    consumer, one connection, never redelivered); `verify` names any gap or disorder anyway.
    Close it (`contextlib.aclosing`) when stopping early: that deletes the consumer."""
    info = await js.stream_info(streams.EVENTS)
    top = int(info.state.last_seq)
    end = top if upto is None else min(upto, top)
    if end <= 0 or not info.state.messages:
        return
    window = batch * READ_AHEAD
    sub = await js.subscribe(
        streams.ALL_EVENTS, stream=streams.EVENTS, manual_ack=True,
        config=ConsumerConfig(
            ack_policy=AckPolicy.ALL, max_ack_pending=window, ack_wait=ACK_WAIT_S,
            max_deliver=1, deliver_policy=DeliverPolicy.ALL, mem_storage=True,
            inactive_threshold=READ_WAIT_S * 4,
        ),
    )
    last = 0
    try:
        while True:
            msgs = await take_arrived(sub, batch, READ_WAIT_S)
            if not msgs:
                if partial:
                    return
                raise TimeoutError(f"EVENTS stopped delivering after {last} of {end}")
            chunk: list[Stored] = []
            done = False
            for m in msgs:
                s = stored_of(m)
                if s.seq > end:
                    done = True
                    break
                chunk.append(s)
                if s.seq >= end:
                    done = True
                    break
            if chunk:
                last = chunk[-1].seq
                yield chunk
            if done:
                return
            await msgs[-1].ack()  # all up to here: the server may send as many more
    finally:
        with contextlib.suppress(Exception):  # gone with the connection, or by inactivity
            consumer = (await sub.consumer_info()).name
            await sub.unsubscribe()
            await js.delete_consumer(streams.EVENTS, consumer)


READ_AHEAD = 3
"""Chunks the server may deliver beyond the last one handed on (its `max_ack_pending`)."""
ACK_WAIT_S = 3600.0
"""Never redeliver (`max_deliver` 1): the ack only opens the window."""


async def read_log(
    js: JetStreamContext, upto: int | None = None, batch: int = LOG_CHUNK, *,
    partial: bool = False,
) -> list[Stored]:
    """`iter_log` gathered into one list: every stored message in memory, for tests and small
    logs. `verify_log` and `replay_log` stream instead."""
    out: list[Stored] = []
    async with contextlib.aclosing(iter_log(js, upto, batch, partial=partial)) as chunks:
        async for chunk in chunks:
            out += chunk
    return out


async def pipe(
    chunks: AsyncGenerator[list[Stored], None], sink: Callable[[list[Stored]], bool], depth: int = 2
) -> None:
    """Hand each chunk of the log to `sink` in a worker thread (it may block: SQLite, hashing),
    while the next chunks are read, at most `depth` of them held ahead: reading and checking
    overlap, memory stays bounded. `sink` returns False to stop reading (a replay as of a
    point reached it)."""
    queue: asyncio.Queue[list[Stored] | None] = asyncio.Queue(maxsize=depth)

    async def produce() -> None:
        async with contextlib.aclosing(chunks) as source:
            async for chunk in source:
                await queue.put(chunk)
        await queue.put(None)

    producer = asyncio.create_task(produce())
    try:
        while True:
            getting = asyncio.ensure_future(queue.get())
            await asyncio.wait({getting, producer}, return_when=asyncio.FIRST_COMPLETED)
            if not getting.done() and producer.exception() is not None:
                getting.cancel()  # the reader failed: its error is the caller's
                await producer
            chunk = await getting  # (a reader that ended left its end mark in the queue)
            if chunk is None or not await asyncio.to_thread(sink, chunk):
                break
    finally:
        if not producer.done():
            producer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await producer


READ_WAIT_S = 5.0
"""How long a reader of the log waits for the next message before it counts as not there."""


@dataclass(frozen=True)
class LogState:
    """What the server says the streams hold, beside what they deliver: `verify` compares."""

    events_last: int | None
    """EVENTS' last sequence; None if the stream is missing."""
    checkpoints_exist: bool


async def log_state(js: JetStreamContext) -> LogState:
    async def last(stream: str) -> int | None:
        try:
            return int((await js.stream_info(stream)).state.last_seq)
        except NotFoundError:
            return None

    return LogState(await last(streams.EVENTS), await last(streams.CHECKPOINTS) is not None)


# ── keys ─────────────────────────────────────────────────────────────────────────────────────


def key_paths(data_dir: Path) -> tuple[Path, Path]:
    """Default (private, public) key files under a data directory."""
    return data_dir / KEY_DIR / PRIVATE_KEY_FILE, data_dir / KEY_DIR / PUBLIC_KEY_FILE


def init_keys(private: Path, public: Path, *, force: bool = False) -> str:
    """Create the office's Ed25519 key pair: the private key readable by its owner only (0600),
    the public key for auditors. Refuses to overwrite unless `force`. Returns the key ID."""
    if not force and (private.exists() or public.exists()):
        raise FileExistsError(f"{private if private.exists() else public} exists")
    key = chain.new_private_key()
    private.parent.mkdir(parents=True, exist_ok=True)
    public.parent.mkdir(parents=True, exist_ok=True)
    if private.exists():
        private.unlink()
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(chain.private_pem(key))
    public.write_bytes(chain.public_pem(key.public_key()))
    return chain.key_id(key.public_key())


def load_private_key(path: Path) -> Ed25519PrivateKey:
    return chain.load_private(path.read_bytes())


def load_public_key(path: Path) -> Ed25519PublicKey:
    return chain.load_public(path.read_bytes())


# ── checkpoints ──────────────────────────────────────────────────────────────────────────────


async def ensure_checkpoints(js: JetStreamContext) -> None:
    try:
        await js.stream_info(streams.CHECKPOINTS)
    except NotFoundError:
        try:
            await js.add_stream(streams.checkpoints_stream())
        except BadRequestError:  # made meanwhile by another process
            await js.stream_info(streams.CHECKPOINTS)


async def read_checkpoints(js: JetStreamContext) -> list[Checkpoint]:
    """Every checkpoint ever appended, in the order appended ([] if the stream is missing)."""
    try:
        top = int((await js.stream_info(streams.CHECKPOINTS)).state.last_seq)
    except NotFoundError:
        return []
    out: list[Checkpoint] = []
    if top == 0:
        return out
    sub = await js.subscribe(
        streams.CHECKPOINT_SUBJECTS, stream=streams.CHECKPOINTS, ordered_consumer=True,
        deliver_policy=DeliverPolicy.ALL,
    )
    try:
        while True:
            msg = await sub.next_msg(timeout=5.0)
            out.append(Checkpoint.from_dict(orjson.loads(msg.data)))
            if msg.metadata.sequence.stream >= top:
                return out
    finally:
        await sub.unsubscribe()


def _label_subject(label: str) -> str:
    token = re.sub(r"[^A-Za-z0-9_-]+", ".", label).strip(".")
    return f"jiedu.checkpoints.{token}"


async def chain_head(
    js: JetStreamContext, upto: int | None, public_key: Ed25519PublicKey | None = None
) -> tuple[int, str]:
    """(seq, link) of the chain after `upto` (default: the head), recomputed from the log —
    from the latest checkpoint at or before it that verifies under `public_key`, else from
    genesis."""
    top = await head(js)
    end = top if upto is None else min(upto, top)
    start_seq, start = 0, chain.GENESIS
    if public_key is not None:
        for cp in await read_checkpoints(js):
            if start_seq < cp.seq <= end and cp.valid_under(public_key):
                start_seq, start = cp.seq, bytes.fromhex(cp.link)
    if end == start_seq:
        return end, start.hex()
    current = start
    feed = await Feed(js, start_seq + 1).open()
    seq = start_seq
    try:
        while seq < end:
            msgs = await feed.take(2000, 5.0)
            if not msgs:
                raise TimeoutError(f"EVENTS stopped delivering at {seq} of {end}")
            for m in msgs:
                s = stored_of(m)
                if s.seq > end:
                    break
                current, seq = chain.link(current, s.seq, s.subject, s.data), s.seq
    finally:
        await feed.close()
    return end, current.hex()


async def checkpoint(
    js: JetStreamContext,
    key: Ed25519PrivateKey,
    *,
    label: str = "on_demand",
    upto: int | None = None,
    now: datetime | None = None,
    once: bool = False,
) -> Checkpoint:
    """Sign the chain head (after `upto`, default the log head) and append it to CHECKPOINTS.
    `once`: only if no checkpoint was ever appended under this label's subject (else raises
    `FileExistsError`)."""
    await ensure_checkpoints(js)
    seq, link_hex = await chain_head(js, upto, key.public_key())
    signed_at = (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")
    cp = chain.sign(key, seq, link_hex, signed_at, label)
    headers = {}
    if once:
        headers = {streams.Header.EXPECTED_LAST_SUBJECT_SEQ: "0"}
    try:
        await js.publish(
            _label_subject(label), orjson.dumps(cp.as_dict()), stream=streams.CHECKPOINTS,
            headers=headers or None,
        )
    except BadRequestError as e:
        if once and getattr(e, "err_code", None) == streams.WRONG_LAST_SEQUENCE:
            raise FileExistsError(f"a checkpoint labelled {label} exists") from None
        raise
    return cp


def quarter_of(at: datetime) -> tuple[str, datetime, datetime]:
    """(name, start, end) of the calendar quarter containing `at`, Asia/Shanghai time."""
    local = at.astimezone(SHANGHAI)
    n = (local.month - 1) // 3 + 1
    start = datetime(local.year, 3 * n - 2, 1, tzinfo=SHANGHAI)
    end = (
        datetime(local.year + 1, 1, 1, tzinfo=SHANGHAI) if n == 4
        else datetime(local.year, 3 * n + 1, 1, tzinfo=SHANGHAI)
    )
    return f"{local.year}Q{n}", start, end


async def last_stored_before(js: JetStreamContext, at: datetime) -> int:
    """The sequence of the last EVENTS message stored before `at` (0: none)."""
    reply = await js._nc.request(
        f"$JS.API.STREAM.MSG.GET.{streams.EVENTS}",
        orjson.dumps({"start_time": at.astimezone(UTC).isoformat().replace("+00:00", "Z")}),
        timeout=5.0,
    )
    answer = orjson.loads(reply.data)
    if "message" in answer:
        return int(answer["message"]["seq"]) - 1
    return await head(js)  # nothing stored at or after `at`: all of the log is before it


async def checkpoint_if_quarter_ended(
    js: JetStreamContext, key: Ed25519PrivateKey, now: datetime
) -> Checkpoint | None:
    """At any time in a quarter, make sure the previous quarter has its checkpoint: the head as
    the log stood at that quarter's end, signed once under ``quarter:<name>``. Returns the new
    checkpoint, or None if it existed already or if nothing was stored by the quarter's end
    (an empty chain has nothing to pin; the first quarter with events gets the first
    checkpoint). Cheap when it exists (one stream read)."""
    _, start, _ = quarter_of(now)
    name, _, end = quarter_of(start - timedelta(microseconds=1))  # the quarter before
    label = f"quarter:{name}"
    if any(cp.label == label for cp in await read_checkpoints(js)):
        return None
    upto = await last_stored_before(js, end)
    if upto == 0:
        return None
    try:
        return await checkpoint(js, key, label=label, upto=upto, now=now, once=True)
    except FileExistsError:
        return None


class QuarterlyCheckpoints:
    """Signs each quarter's chain head soon after the quarter ends (SUP-1's published results
    pin it): checks once a minute, with the office key from the data directory."""

    def __init__(
        self, js: JetStreamContext, key: Ed25519PrivateKey, *, every_s: float = 60.0,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.js, self.key, self.every_s, self.now = js, key, every_s, now
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="quarterly-checkpoints")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                made = await checkpoint_if_quarter_ended(self.js, self.key, self.now())
                if made is not None:
                    log.info("quarter checkpoint signed", label=made.label, seq=made.seq)
            except Exception:  # the log or server is away: try again at the next check
                log.exception("quarter checkpoint failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.every_s)


# ── verification (pure) ──────────────────────────────────────────────────────────────────────


@dataclass
class AuditReport(chain.ChainReport):
    """What `verify` found: the chain's report, and how many audit rows were compared."""

    rows: int = 0

    def as_dict(self) -> dict[str, Any]:
        d = self.divergence
        return {
            "ok": self.ok, "head_seq": self.head_seq, "head": self.head, "events": self.events,
            "audit_rows": self.rows, "checkpoints": self.checkpoints,
            "first_divergence": None if d is None else {"seq": d.seq, "reason": d.reason},
            "notes": self.notes,
        }


async def verify_log(
    js: JetStreamContext, store: ReadStore, key: Ed25519PublicKey | None, *,
    skip_rows: bool = False, chunk: int = LOG_CHUNK,
) -> AuditReport:
    """`verify` on what the server holds now: the log (partially, if it stops short), the
    checkpoints, and the store's audit rows (unless `skip_rows`) and incidents. NotFoundError
    when there never was a log here: nothing to compare (`jiedu audit verify`, the console).

    Streaming: the log is read in chunks of `chunk` messages and each chunk is checked (chain,
    checkpoints, decoding, its audit rows, fetched by the chunk's range of sequences) while the
    next is read; memory holds a few chunks, not the log or the trail. The checkpoints are
    read first: one signed while the log is read is not beyond the log's end."""
    state = await log_state(js)
    checkpoints = await read_checkpoints(js)
    incidents = await asyncio.to_thread(store.incidents)
    rows = None if skip_rows else StoreAuditRows(store)
    if state.events_last is None and not checkpoints and (
        rows is None or not await asyncio.to_thread(rows.summary, 0)
    ):
        raise NotFoundError
    check = Verification(checkpoints, key, rows, state=state, incidents=incidents)
    if state.events_last is not None:
        await pipe(iter_log(js, batch=chunk, partial=True), check.feed)
    return await asyncio.to_thread(check.finish)


LAST_VERIFY = "last-verify.json"
"""Where the last `jiedu audit verify` of a data dir left its report (`<data dir>/audit/`), for
the API's chain page: who checked the chain, when, and what they found."""


def record_verify(data_dir: Path, report: Mapping[str, Any]) -> Path:
    """Keep `report` (a verify's `as_dict`, with its time) as the data dir's last verify."""
    path = data_dir / "audit" / LAST_VERIFY
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    temporary.replace(path)
    return path


def last_verify(data_dir: Path) -> dict[str, Any] | None:
    """The last verify's report kept in the data dir; None if none ran here."""
    try:
        found: dict[str, Any] = orjson.loads((data_dir / "audit" / LAST_VERIFY).read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None
    return found


_COMPARED = tuple(c for c in TRAIL.column_names if c not in ("link", "recorded_at"))


def _differs(expected: Row, found: Row) -> str | None:
    for col in _COMPARED:
        if expected[col] != found.get(col):
            return col
    if expected["recorded_at"] is not None and expected["recorded_at"] != found.get("recorded_at"):
        return "recorded_at"
    return None


@dataclass(frozen=True)
class RowSummary:
    """What the whole audit trail holds, beside the rows compared chunk by chunk."""

    count: int = 0
    last: int = 0
    """The highest sequence with a row (0: none)."""
    unlinked: int = 0
    """Rows without a link (written by a projector that passed no stored message)."""
    first_unlinked: int | None = None
    beyond: tuple[int, int] | None = None
    """(lowest, highest) sequence of the rows after the log's last message read."""

    def __bool__(self) -> bool:
        return self.count > 0


class AuditRows(ABC):
    """The audit trail as `Verification` reads it: the rows of a range of sequences at a time
    (one chunk of the log), and a summary of all of them at the end."""

    @abstractmethod
    def between(self, seqs: Sequence[int]) -> Mapping[int, Row]:
        """The rows at the sequences `seqs` (sorted ascending; those without a row are not in
        the answer)."""

    @abstractmethod
    def summary(self, head_seq: int) -> RowSummary:
        """Counts over every row; `beyond`: the rows after `head_seq`."""


class MemoryAuditRows(AuditRows):
    """Rows given as an iterable (the pure `verify`), held in a dict by sequence."""

    def __init__(self, rows: Iterable[Row]) -> None:
        self.rows = {int(r["seq"]): r for r in rows}

    def between(self, seqs: Sequence[int]) -> Mapping[int, Row]:
        return self.rows

    def summary(self, head_seq: int) -> RowSummary:
        unlinked = [s for s, r in self.rows.items() if not r.get("link")]
        extra = [s for s in self.rows if s > head_seq]
        return RowSummary(
            len(self.rows), max(self.rows, default=0), len(unlinked), min(unlinked, default=None),
            (min(extra), max(extra)) if extra else None,
        )


class StoreAuditRows(AuditRows):
    """The live audit trail of a read store, read one range of sequences at a time (one
    indexed query per chunk of the log: `seq` is the table's key), and summed up by the
    database. Each range is its own read transaction: a generation switched meanwhile (a
    rebuild finished) answers the later ranges, and holds the same rows."""

    def __init__(self, store: ReadStore) -> None:
        self.store = store
        self.projection = AuditTrail()

    def between(self, seqs: Sequence[int]) -> Mapping[int, Row]:
        if not seqs:
            return {}
        low, high = seqs[0], seqs[-1]
        if high - low < 4 * len(seqs):  # the log as read: dense, one range scan
            found = self.store.select(
                self.projection, TRAIL, order_by=("seq",), after=(low - 1,), limit=high - low + 1
            )
        else:  # a log read out of order (a forgery fed to `verify`): just these
            found = self.store.select(self.projection, TRAIL, {"seq": tuple(seqs)})
        return {int(r["seq"]): r for r in found if low <= r["seq"] <= high}

    def summary(self, head_seq: int) -> RowSummary:
        with self.store.transaction(write=False) as tx:
            live = tx.live(self.projection.name)
            if live is None:
                return RowSummary()
            table = tx.q(live.physical(TRAIL))
            no_link = "(\"link\" IS NULL OR \"link\" = '')"
            count, last, unlinked, first_unlinked = tx.rows(
                f"SELECT COUNT(*), MAX(seq), SUM(CASE WHEN {no_link} THEN 1 ELSE 0 END), "
                f"MIN(CASE WHEN {no_link} THEN seq END) FROM {table}"
            )[0]
            low, high = tx.rows(f"SELECT MIN(seq), MAX(seq) FROM {table} WHERE seq > ?",
                                [head_seq])[0]
        return RowSummary(
            int(count), int(last or 0), int(unlinked or 0),
            None if first_unlinked is None else int(first_unlinked),
            None if low is None else (int(low), int(high)),
        )


UNDECODABLE_NAMED = 20
"""How many undecodable sequences a report names (it counts them all)."""


class Verification:
    """`verify`, a chunk of the log at a time: `feed` each chunk in the order read, then
    `finish`. What it holds between chunks is bounded (the running link, the checkpoints, the
    divergence found so far, counts), so the log and the audit trail can be of any length.

    Per message, as `verify` describes: chain it (`domain.chain.ChainCheck`), decode it, and
    compare its audit row (fetched with the chunk's other rows from `rows`) column by column.
    After the first row that differs no more rows are compared (the chain still is)."""

    def __init__(
        self,
        checkpoints: Sequence[Checkpoint],
        public_key: Ed25519PublicKey | None,
        rows: AuditRows | None,
        *,
        state: LogState | None = None,
        incidents: Sequence[Incident] = (),
    ) -> None:
        self.chain = chain.ChainCheck(checkpoints, public_key)
        self.rows = rows
        self.state = state
        self.skipped = {i.sequence: i for i in incidents if not i.open}
        self.found: Divergence | None = None
        """The lowest (first on a tie) divergence of a message against its row."""
        self.comparing = True
        self.undecodable = 0
        self.undecodable_named: list[int] = []
        self.without_row: list[int] = []
        """Sequences of the log without an audit row (and not skipped), each lower than every
        one before it: the first of them at or below the trail's last row is the missing row
        `verify` names, whatever that last row turns out to be (one entry for a log in order)."""

    def feed(self, messages: Sequence[Stored | tuple[int, str, bytes]]) -> bool:
        """Check one chunk of the log (in the order read). Always True: read on."""
        log = [m if isinstance(m, Stored) else Stored(*m) for m in messages]
        rows = self.rows.between(sorted({m.seq for m in log})) if self.rows is not None else {}
        for m in log:
            row = rows.get(m.seq)
            self.chain.add(m.seq, m.subject, m.data, has_row=row is not None,
                           row_link=None if row is None else row.get("link"))
            if self.rows is not None and row is None and m.seq not in self.skipped and (
                not self.without_row or m.seq < self.without_row[-1]
            ):
                self.without_row.append(m.seq)
            if self.comparing:
                self._compare(m, row)
        return True

    def _compare(self, m: Stored, row: Row | None) -> None:
        try:
            event = loads(m.data)
        except Exception as e:  # stored bytes that are no event
            if row is not None:  # the audit row says an event was there: a forged body
                self._found(Divergence(m.seq, f"stored bytes do not decode: {e}"[:200]))
            else:  # an incident, reported at the end
                self.undecodable += 1
                if len(self.undecodable_named) < UNDECODABLE_NAMED:
                    self.undecodable_named.append(m.seq)
            return
        if row is None:
            return
        expected = row_of(event, m.seq, m, None)
        column = _differs(expected, row)
        if column is not None:
            self._found(Divergence(
                m.seq, f"audit row {m.seq} column {column!r} is {row.get(column)!r}; the "
                f"log gives {expected[column]!r}"))
            self.comparing = False

    def _found(self, d: Divergence) -> None:
        if self.found is None or d.seq < self.found.seq:
            self.found = d

    def finish(self) -> AuditReport:
        """The report: the chain's, the rows' and what the server says, the lowest divergence
        first (see `verify`)."""
        head_seq = self.chain.report.head_seq
        summary = self.rows.summary(head_seq) if self.rows is not None else RowSummary()
        found = self.chain.finish(summary.beyond)
        report = AuditReport(
            head_seq=found.head_seq, head=found.head, events=found.events, rows=summary.count,
            checkpoints=found.checkpoints,
        )
        # what the server says is missing first: at the same sequence, it is the cause
        divergences = _short(self.state, found.head_seq) if self.state is not None else []
        divergences += [found.divergence] if found.divergence else []
        divergences += [self.found] if self.found else []
        if self.undecodable:
            named = self.undecodable_named
            skipped = self.skipped
            report.notes.append(
                f"{self.undecodable} stored message(s) are no event of the catalogue, from "
                f"sequence {named[0]}: incidents (`jiedu incidents`); "
                + ", ".join(
                    f"{s} skipped by {skipped[s].skipped_by} at {skipped[s].skipped_at}: "
                    f"{skipped[s].reason}" if s in skipped else f"{s} open"
                    for s in named
                )
            )
        if self.rows is not None:
            missing = next((s for s in self.without_row if s <= summary.last), None)
            if missing is not None:
                divergences.append(Divergence(missing, f"no audit row for sequence {missing}"))
            if summary.unlinked:
                report.notes.append(
                    f"{summary.unlinked} audit row(s) carry no link, from sequence "
                    f"{summary.first_unlinked}: the projector that wrote them passed no stored "
                    "messages (wire `apply_stored`)"
                )
            if summary.last < found.head_seq:
                report.notes.append(
                    f"audit trail reaches sequence {summary.last}; the log {found.head_seq} "
                    "(later rows not yet projected, checked by the chain only)"
                )
        if divergences:
            report.divergence = min(divergences, key=lambda d: d.seq)
        return report


def verify(
    messages: Iterable[Stored | tuple[int, str, bytes]],
    checkpoints: Sequence[Checkpoint],
    public_key: Ed25519PublicKey | None,
    audit_rows: Iterable[Row] | None = None,
    *,
    state: LogState | None = None,
    incidents: Sequence[Incident] = (),
    chunk: int = LOG_CHUNK,
) -> AuditReport:
    """Check the log against itself (the chain), the signed checkpoints and the audit rows.

    Pure: give it the log as read (possibly forged), the checkpoints and rows as stored. Every
    audit row must be the row the audit projection makes from the message at its sequence (all
    columns; `recorded_at` when the message carries a stored time) with the recomputed link.
    Audit rows may stop short of the log's end (the projection lags): that is a note, not a
    divergence. `audit_rows=None` checks the chain and checkpoints only.

    `state` (what the server says the streams hold): a log that delivers less than its own
    last sequence, or a missing EVENTS or CHECKPOINTS, is a divergence at the first sequence
    missing. `incidents`: undecodable events the projections met; one an operator skipped has
    no audit row, which is then a note (with the decision), not a divergence.

    `messages` is consumed `chunk` at a time (`Verification`); the rows are held in memory:
    `verify_log` reads them from the store a chunk's range at a time instead."""
    check = Verification(
        checkpoints, public_key, None if audit_rows is None else MemoryAuditRows(audit_rows),
        state=state, incidents=incidents,
    )
    it = iter(messages)
    while part := list(itertools.islice(it, chunk)):
        check.feed(part)
    return check.finish()


def _short(state: LogState, read_to: int) -> list[Divergence]:
    """Where the log holds less than the server says, or a stream is gone."""
    out = []
    if state.events_last is None:
        out.append(Divergence(1, "stream EVENTS is missing (deleted): the whole log is gone"))
    elif read_to < state.events_last:
        out.append(Divergence(
            read_to + 1, f"EVENTS says its last sequence is {state.events_last} but delivers "
            f"only up to {read_to}: sequence {read_to + 1} on lost from its store"))
    if not state.checkpoints_exist:
        out.append(Divergence(
            1, "stream CHECKPOINTS is missing (deleted): the signed heads are gone"))
    return out


def audit_rows(store: ReadStore) -> list[Row]:
    """Every row of the live audit trail, in sequence order, in memory (tests, small trails:
    `verify_log` reads them a range at a time)."""
    return store.select(AuditTrail(), TRAIL, order_by=("seq",))


# ── replay ───────────────────────────────────────────────────────────────────────────────────

By = Literal["recorded", "occurred"]


def parse_as_of(text: str) -> int | datetime:
    """A sequence (ASCII digits: `٣` is no sequence) or an ISO 8601 time (a time without zone
    is Asia/Shanghai)."""
    if text.isascii() and text.isdigit():
        return int(text)
    at = datetime.fromisoformat(text)
    return at if at.tzinfo is not None else at.replace(tzinfo=SHANGHAI)


def prefix(messages: Sequence[Stored], as_of: int | datetime, by: By = "recorded") -> int:
    """How many messages (from the start) the replay as of `as_of` takes; see the module
    docstring for the meaning of a time."""
    if isinstance(as_of, int):
        return sum(1 for m in messages if m.seq <= as_of)
    n = 0
    for m in messages:
        if by == "recorded":
            if m.stored_at is None:
                raise ValueError(f"sequence {m.seq} has no stored time")
            if m.stored_at <= as_of:
                n += 1
                continue
            break
        if loads(m.data).occurred_at > as_of:
            break
        n += 1
    return n


@dataclass(frozen=True)
class Replayed:
    """What a replay wrote: the store, one JSON Lines file per table, and the manifest."""

    out: Path
    as_of_seq: int
    head: str
    files: dict[str, str]  # table → sha256 of its export


def replayed() -> tuple[Projection, ...]:
    """What a replay builds: every registered projection, and the audit trail if the registry
    does not hold it yet."""
    if any(isinstance(p, AuditTrail) for p in ALL):
        return ALL
    return (*ALL, AuditTrail())


EXPORT_PAGE = 250
"""Rows per page when a replayed table is written out: what the export holds at once."""


class Replayer:
    """A replay into a fresh SQLite store under `out`, fed a chunk of the log at a time
    (`feed`), then exported (`finish`) table by table, page by page: memory holds a chunk of
    messages and a page of rows, whatever the log's length. Synchronous: use a thread.

    `as_of` (see `prefix`): the replay takes messages while they are at or before it, and
    `feed` answers False once one is after it (read no further). Refuses an `out` that already
    holds a store."""

    def __init__(
        self,
        out: Path,
        projections: Sequence[Projection] | None = None,
        *,
        as_of: int | datetime | None = None,
        by: By = "recorded",
        batch: int = 1000,
    ) -> None:
        out.mkdir(parents=True, exist_ok=True)
        path = out / SQLITE_FILE
        if path.exists():
            raise FileExistsError(f"{path} exists: replay into a new directory")
        self.out, self.as_of, self.by, self.batch = out, as_of, by, batch
        self.projections = projections if projections is not None else replayed()
        self.store = SQLiteStore(path)
        try:
            self.store.ensure()
            self.gens = [(p, self.store.ensure_live(p)) for p in self.projections]
        except BaseException:
            self.store.close()
            raise
        self.current, self.seq = chain.GENESIS, 0
        self.stopped = False

    def _within(self, m: Stored) -> bool:
        """Is `m` part of the replay as of `as_of`? (`prefix`, one message at a time.)"""
        as_of = self.as_of
        if as_of is None:
            return True
        if isinstance(as_of, int):
            return m.seq <= as_of
        if self.by == "recorded":
            if m.stored_at is None:
                raise ValueError(f"sequence {m.seq} has no stored time")
            return m.stored_at <= as_of
        return loads(m.data).occurred_at <= as_of

    def feed(self, messages: Sequence[Stored]) -> bool:
        """Apply a chunk of the log (in log order) to every projection, `batch` messages per
        transaction. False once the replay has reached `as_of`: the rest of the log is after it."""
        if self.stopped:
            return False
        taken: list[Stored] = []
        for m in messages:
            if not self._within(m):
                self.stopped = True
                break
            self.current, self.seq = chain.link(self.current, m.seq, m.subject, m.data), m.seq
            taken.append(m)
        for start in range(0, len(taken), self.batch):
            self._apply(taken[start : start + self.batch])
        return not self.stopped

    def _apply(self, chunk: Sequence[Stored]) -> None:
        events = [(m, loads(m.data)) for m in chunk]
        for p, gen in self.gens:
            with self.store.transaction(write=True) as tx:
                work = UnitOfWork(tx, gen)
                work.prefetch(k for _, e in events for k in p.touches(e))
                for m, e in events:
                    p.apply_stored(m, e, work)
                work.flush()
                tx.set_position(gen.name, events[-1][0].seq)

    def finish(self) -> Replayed:
        """Export every table (canonical JSON Lines, page by page in key order) and write
        ``manifest.json``; closes the store."""
        try:
            files: dict[str, str] = {}
            counts: dict[str, int] = {}
            for p, gen in self.gens:
                for table in p.tables:
                    digest, counts[table.name] = self._export(table, gen.physical(table))
                    files[table.name] = digest
            manifest = {
                "as_of_seq": self.seq, "head": self.current.hex(), "chain": "jiedu/audit-chain/v1",
                "projections": {p.name: p.version for p in self.projections},
                "tables": {t: {"rows": counts[t], "sha256": files[t]} for t in sorted(files)},
            }
            (self.out / "manifest.json").write_bytes(
                orjson.dumps(manifest, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"
            )
            return Replayed(self.out, self.seq, self.current.hex(), files)
        finally:
            self.close()

    def _export(self, table: Table, physical: str) -> tuple[str, int]:
        """Write `table` as `<name>.jsonl`, a page of rows at a time in key order (the order
        of a whole-table select, so the bytes are those of `to_jsonl` over all rows); its
        sha256 and row count."""
        digest = hashlib.sha256()
        count = 0
        after: list[Any] | None = None
        with (self.out / f"{table.name}.jsonl").open("wb") as f:
            while True:
                with self.store.transaction(write=False) as tx:
                    rows = tx.select(table, physical, limit=EXPORT_PAGE, after=after)
                if not rows:
                    break
                body = to_jsonl(rows)
                f.write(body)
                digest.update(body)
                count += len(rows)
                after = [rows[-1][k] for k in table.key]
                if len(rows) < EXPORT_PAGE:
                    break
        return digest.hexdigest(), count

    def close(self) -> None:
        self.store.close()


def replay(
    messages: Iterable[Stored],
    out: Path,
    projections: Sequence[Projection] | None = None,
    *,
    batch: int = 1000,
) -> Replayed:
    """Build every projection (default: `replayed()`) from `messages` (a prefix of the log)
    into a fresh SQLite store under `out`, export every table, and write ``manifest.json``.
    Synchronous: use a thread. Refuses an `out` that already holds a store. `messages` is
    consumed a chunk at a time (`Replayer`)."""
    replayer = Replayer(out, projections, batch=batch)
    try:
        it = iter(messages)
        while part := list(itertools.islice(it, LOG_CHUNK)):
            replayer.feed(part)
    except BaseException:
        replayer.close()
        raise
    return replayer.finish()


async def replay_log(
    js: JetStreamContext, out: Path, as_of: int | datetime | None, by: By = "recorded",
    *, chunk: int = LOG_CHUNK,
) -> Replayed:
    """Read the log and replay it as of `as_of` (None: everything) into `out`, streaming: each
    chunk of the log is applied while the next is read, and the reading stops at the first
    message after `as_of`."""
    replayer = await asyncio.to_thread(Replayer, out, as_of=as_of, by=by)
    try:
        upto = as_of if isinstance(as_of, int) else None
        await pipe(iter_log(js, upto, chunk), replayer.feed)
    except BaseException:
        await asyncio.to_thread(replayer.close)
        raise
    return await asyncio.to_thread(replayer.finish)


# ── queries ──────────────────────────────────────────────────────────────────────────────────


def trail(
    store: ReadStore,
    *,
    case: str | None = None,
    department: str | None = None,
    actor: str | None = None,
    rule: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Row]:
    """Audit rows in log order, by case, department, actor and/or rule, and occurred in
    [since, until) if given."""
    rows = store.select(
        AuditTrail(), TRAIL,
        {"case_id": case, "department": department, "actor_id": actor, "rule_id": rule},
        order_by=("seq",),
    )
    return [
        r for r in rows
        if (since is None or r["occurred_at"] >= since) and (until is None or r["occurred_at"] < until)
    ]


def caused_by(rows: Sequence[Row]) -> dict[str, list[Row]]:
    """event ID → the rows (findings, deadline events) that name it as their cause."""
    out: dict[str, list[Row]] = {}
    for r in rows:
        if r["causation_id"]:
            out.setdefault(r["causation_id"], []).append(r)
    return out


# ── exports ──────────────────────────────────────────────────────────────────────────────────


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    return value


def to_jsonl(rows: Iterable[Mapping[str, Any]]) -> bytes:
    """Canonical JSON Lines: keys sorted, times in UTC with microseconds, one row a line."""
    return b"".join(
        orjson.dumps({k: _plain(v) for k, v in r.items()}, option=orjson.OPT_SORT_KEYS) + b"\n"
        for r in rows
    )


def to_csv(rows: Iterable[Mapping[str, Any]], columns: Sequence[str] = TRAIL.column_names) -> bytes:
    """CSV, UTF-8 with a BOM (Excel then reads the Chinese correctly), CRLF line ends."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow(["" if r.get(c) is None else _plain(r.get(c)) for c in columns])
    return buffer.getvalue().encode("utf-8-sig")


def _local(at: datetime | None) -> str:
    return f"{at.astimezone(SHANGHAI):%Y-%m-%d %H:%M}" if at is not None else ""


_STYLE = """
body{font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:2em;color:#222}
h1{font-size:1.4em}table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #ddd;padding:.35em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3}.derived td{color:#8a2b06}.mono{font-family:monospace;font-size:.8em}
.small{font-size:.85em;color:#666}
"""


def html_timeline(case_id: str, rows: Sequence[Row], *, head: str | None = None) -> str:
    """A self-contained HTML page (inline style, no scripts, no external assets) with one case's
    timeline: when, who, what, what caused it, sequence and link."""
    by_id = {r["event_id"]: r for r in rows}
    body = []
    for r in rows:
        cause = by_id.get(r["causation_id"] or "")
        cause_text = (
            f"← #{cause['seq']} {html.escape(cause['type'])}" if cause is not None
            else html.escape(r["causation_id"] or "")
        )
        derived = ' class="derived"' if r["causation_id"] or r["rule_id"] else ""
        who = html.escape(r["actor_name"] or r["actor_id"])
        body.append(
            f"<tr{derived}><td>{r['seq']}</td><td>{_local(r['occurred_at'])}</td>"
            f"<td>{_local(r['recorded_at'])}</td>"
            f"<td>{who}<br><span class=small>{html.escape(r['department'])} · "
            f"{html.escape(r['source_system'])}</span></td>"
            f"<td>{html.escape(r['type'])}<br>{html.escape(r['summary_zh'])}</td>"
            f"<td>{html.escape(r['rule_id'] or '')}</td><td>{cause_text}</td>"
            f"<td class=mono>{html.escape((r['link'] or '')[:16])}</td></tr>"
        )
    pinned = f"<p class=small>链头 chain head: <span class=mono>{html.escape(head)}</span></p>" if head else ""
    return (
        "<!DOCTYPE html>\n<html lang=zh-CN><head><meta charset=utf-8>"
        f"<title>审计轨迹 {html.escape(case_id)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>审计轨迹 · {html.escape(case_id)}</h1>"
        f"<p class=small>{len(rows)} 条事件，按日志顺序（时间为北京时间）</p>{pinned}"
        "<table><thead><tr><th>序号</th><th>发生时间</th><th>记录时间</th><th>主体</th>"
        "<th>事件</th><th>规则</th><th>起因</th><th>链值</th></tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table></body></html>\n"
    )
