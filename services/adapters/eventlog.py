"""The JetStream adapter: the only place that knows how Jiedu's streams are read and written.

`EventLog` appends events under a case's optimistic lock, reads a case's history back, records
refused messages exactly once, and keeps each intake message's outcome by event ID.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import nats.errors
import orjson
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import (
    KeyValueConfig,
    StorageType,
    StreamConfig,
)
from nats.js.errors import (
    BadRequestError,
    KeyNotFoundError,
    NotFoundError,
    ServiceUnavailableError,
)
from nats.js.kv import KeyValue

from events import streams
from events.catalogue import Event
from events.codec import loads
from events.outcomes import Outcome
from events.streams import Header

PUBLISH_TIMEOUT_S = 5.0

DIRECT_GET = f"$JS.API.DIRECT.GET.{streams.EVENTS}"
READ_BATCH = 1000
"""Messages asked for in one direct get; a longer history takes several."""
READS_IN_FLIGHT = 16
"""Histories read at once: each costs the server a scan of the span of log its case covers, so
a crowd of them (all cases of a batch after a restart) would time out the last in line."""
STATUS, SEQUENCE, NUM_PENDING = "Status", "Nats-Sequence", "Nats-Num-Pending"
END_OF_BATCH, NOT_FOUND = "204", "404"
"""The direct get's answers: a batch ends with 204 (EOB); 404 when nothing matches."""


Message = tuple[str, bytes, dict[str, str]]
"""(subject, body, headers) of one event to append."""


UNAVAILABLE: tuple[type[BaseException], ...] = (
    nats.errors.NoRespondersError,  # no stream leader to answer (being elected after a loss)
    nats.errors.TimeoutError,  # no answer in time: a node lost mid-request
    nats.errors.ConnectionClosedError,
    nats.errors.StaleConnectionError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.OutboundBufferLimitError,
    ServiceUnavailableError,  # JetStream 503: no leader, or the cluster's quorum lost
    TimeoutError,
    ConnectionError,
)
"""Errors of the connection or the cluster, not of any message: a node lost, a leader being
elected, a client reconnecting. What failed with one is tried again, never decided on it."""


def unavailable(error: BaseException) -> bool:
    """Whether `error` says the log could not be reached just now (see `UNAVAILABLE`)."""
    return isinstance(error, UNAVAILABLE)


class LogError(Exception):
    """JetStream refused an append for a reason other than the optimistic lock."""


def _batch(batch: str, n: int) -> dict[str, str]:
    return {Header.BATCH_ID: batch, Header.BATCH_SEQUENCE: str(n)}


CaseAppend = tuple[str, Sequence[Message], int]
"""(case ID, its events to append, the sequence its last event must still be at; 0: new)"""


def _locked(case_id: str, messages: Sequence[Message], expected_last: int) -> list[Message]:
    """The case's messages, the first carrying the case's optimistic lock (the server checks it
    against the log as it stands before that message, earlier messages of a batch included)."""
    subject, body, headers = messages[0]
    lock = {
        Header.EXPECTED_LAST_SUBJECT_SEQ: str(expected_last),
        Header.EXPECTED_LAST_SUBJECT_SEQ_SUBJECT: streams.case_filter(case_id),
    }
    return [(subject, body, {**headers, **lock}), *messages[1:]]


NO_MESSAGE = 10057
"""JetStream's error code for a message that is not (or no longer) in the stream."""


class Conflict(Exception):
    """Someone else appended to the case since we last read it: reload and decide again."""


class Incomplete(Conflict):
    """The server dropped part of an atomic batch (too many open at once): nothing of it was
    stored, so decide and append again."""


ATOMIC_DISABLED = "10174"
"""JetStream's error code for an atomic batch sent to a stream that does not allow them."""

MAX_ATOMIC = 1000
"""JetStream's largest atomic batch."""

OPEN_BATCHES = 32
"""Atomic batches one connection keeps open at once; the server refuses batches beyond its own
limit per stream (as 'incomplete'), so stay below it."""


async def ensure_streams(
    js: JetStreamContext,
    *,
    partitions: int = streams.DEFAULT_PARTITIONS,
    ack_wait_s: float = 30,
    replicas: int = streams.DEFAULT_REPLICAS,
) -> None:
    """Create Jiedu's streams, buckets and intake consumers if they are missing. Idempotent, and
    safe to run from several instances at once. INTAKE's message size limit follows the
    server's `max_payload` (see `streams.intake_max_message`); an INTAKE made without it gets
    it. Each stream and bucket keeps `replicas` copies; one stored with fewer (a single node
    grown into a cluster) is raised to them, never lowered."""
    intake = streams.intake_stream(partitions, js._nc.max_payload, replicas)  # server's INFO
    for config in (
        intake,
        streams.events_stream(replicas),
        streams.rejected_stream(replicas),
        streams.checkpoints_stream(replicas),
    ):
        try:
            info = await js.stream_info(config.name or "")
            if config.name == streams.INTAKE and info.config.subject_transform != config.subject_transform:
                raise LogError(
                    f"INTAKE was created with other partitions ({info.config.subject_transform}) "
                    f"than the {partitions} asked for: set JIEDU_PARTITIONS to its count"
                )
            if config.name == streams.INTAKE and info.config.max_msg_size != intake.max_msg_size:
                info.config = replace(info.config, max_msg_size=intake.max_msg_size)
                await js.update_stream(info.config)
            if config.allow_atomic and not info.config.allow_atomic:
                info.config = replace(info.config, allow_atomic=True)
                await js.update_stream(info.config)
            await _raise_replicas(js, info.config, replicas)
        except NotFoundError:
            try:
                await js.add_stream(config)
            except BadRequestError:  # created meanwhile by another instance
                await js.stream_info(config.name or "")
    for bucket in (streams.OUTCOMES_BUCKET, streams.LEASES_BUCKET, streams.PROJECTOR_LEASES_BUCKET):
        try:
            await js.key_value(bucket)
        except NotFoundError:
            await js.create_key_value(
                KeyValueConfig(
                    bucket=bucket, history=1, storage=StorageType.FILE, replicas=replicas
                )
            )
        config = (await js.stream_info(f"KV_{bucket}")).config
        if bucket == streams.OUTCOMES_BUCKET and not config.allow_atomic:
            # the intake keeps a batch's outcomes as one atomic batch (`keep_outcomes`)
            config = replace(config, allow_atomic=True)
            await js.update_stream(config)
        await _raise_replicas(js, config, replicas)
    # partition 0 last: its filter for strays collides with the `jiedu.intake.<p>.>` filters
    # that consumers made before it had one may still carry until they are updated here
    for partition in reversed(range(partitions)):
        await js.add_consumer(streams.INTAKE, streams.intake_consumer_config(partition, ack_wait_s))


async def _raise_replicas(js: JetStreamContext, config: StreamConfig, replicas: int) -> None:
    if (config.num_replicas or 1) < replicas:
        await js.update_stream(replace(config, num_replicas=replicas))


class LogShrinkable(LogError):
    """An append-only stream has been changed so that it could lose history (a limit, a TTL,
    roll-ups, purging or deleting allowed, other subjects, another source): the services refuse
    to run on it, naming each difference."""


UNLIMITED: dict[str, object] = {
    "max_msgs": -1,
    "max_bytes": -1,
    "max_age": 0,
    "max_msgs_per_subject": -1,
}
"""How JetStream reports a stream without limits."""
KEEPS_HISTORY: dict[str, object] = {
    "deny_delete": True,
    "deny_purge": True,
    "allow_rollup_hdrs": False,
    "allow_msg_ttl": False,
    "allow_msg_schedules": False,
    "sealed": False,
    "mirror": None,
    "sources": None,
}
"""Settings under which nothing stored can be removed, nor anything stored but by publishing."""


def shrinkable(config: StreamConfig, expected: StreamConfig) -> list[str]:
    """How a stored append-only stream's configuration lets it lose or gain history other than
    by publishing, against the one `events.streams` defines; [] if it cannot."""
    wrong: list[str] = []
    name = expected.name

    def differs(field: str, want: object) -> None:
        have = getattr(config, field)
        if field == "max_age":
            have = have or 0
        if field in ("allow_msg_ttl", "allow_msg_schedules"):
            have = bool(have)
        if field == "sources" and not have:
            have = None
        if have != want:
            wrong.append(f"{name}: {field} is {have!r}, expected {want!r}")

    for field, want in {**UNLIMITED, **KEEPS_HISTORY}.items():
        differs(field, want)
    if sorted(config.subjects or []) != sorted(expected.subjects or []):
        wrong.append(f"{name}: subjects are {config.subjects}, expected {expected.subjects}")
    if config.storage != expected.storage:
        wrong.append(f"{name}: storage is {config.storage}, expected {expected.storage}")
    if config.retention != expected.retention:
        wrong.append(f"{name}: retention is {config.retention}, expected {expected.retention}")
    return wrong


async def check_streams(js: JetStreamContext, *, replicas: int = streams.DEFAULT_REPLICAS) -> None:
    """Refuse to run on a log that could shrink: EVENTS, REJECTED and CHECKPOINTS must exist
    with no limits, deny delete and purge, the subjects Jiedu defines, and at least `replicas`
    copies (a cluster's log kept on fewer nodes than asked dies with one of them; more copies
    are fine). Every service calls this as it starts; only the operator's identity can change
    a stream, and this catches it."""
    wrong: list[str] = []
    for expected in (
        streams.events_stream(replicas),
        streams.rejected_stream(replicas),
        streams.checkpoints_stream(replicas),
    ):
        try:
            info = await js.stream_info(expected.name or "")
        except NotFoundError:
            wrong.append(f"{expected.name}: missing")
            continue
        wrong.extend(shrinkable(info.config, expected))
        if (info.config.num_replicas or 1) < replicas:
            wrong.append(
                f"{expected.name}: num_replicas is {info.config.num_replicas}, "
                f"expected at least {replicas}"
            )
    if wrong:
        raise LogShrinkable("the log could lose history: " + "; ".join(wrong))


@dataclass(frozen=True)
class Refusal:
    """A refused intake message as REJECTED keeps it."""

    raw: bytes
    intake_subject: str
    intake_sequence: int
    reason: str
    detail: str


def _refusal_message(r: Refusal) -> Message:
    """A refusal's REJECTED message, locked so that its intake sequence is recorded once."""
    headers = {
        Header.INTAKE_SUBJECT: r.intake_subject,
        Header.INTAKE_SEQUENCE: str(r.intake_sequence),
        Header.REASON: r.reason,
        Header.DETAIL: r.detail[:2000],
        Header.REJECTED_AT: datetime.now(UTC).isoformat(),
        Header.EXPECTED_LAST_SUBJECT_SEQ: "0",
        Header.EXPECTED_LAST_SUBJECT_SEQ_SUBJECT: streams.rejected_filter(r.intake_sequence),
    }
    return streams.rejected_subject(r.reason, r.intake_sequence), r.raw, headers


class EventLog:
    """Reads and writes the log for one connection."""

    def __init__(self, nc: Client, *, open_batches: int = OPEN_BATCHES) -> None:
        self.nc = nc
        self.js = nc.jetstream(timeout=PUBLISH_TIMEOUT_S)
        self._outcomes: KeyValue | None = None
        self._open_batches = asyncio.Semaphore(open_batches)
        self._reads = asyncio.Semaphore(READS_IN_FLIGHT)
        self._not_atomic: set[str] = set()
        """Streams found not to allow atomic batches: written message by message."""

    async def outcomes(self) -> KeyValue:
        if self._outcomes is None:
            self._outcomes = await self.js.key_value(streams.OUTCOMES_BUCKET)
        return self._outcomes

    async def append(
        self, case_id: str, messages: Sequence[Message], *, expected_last: int
    ) -> list[int]:
        """Append one case's events if its last event is still at `expected_last` (0: no case
        yet), as atomic batches of at most `MAX_ATOMIC`, each under the case's lock and chained.
        Returns each event's sequence; raises `Conflict` if the case moved on meanwhile.

        Up to `MAX_ATOMIC` events are all or none. A longer run is not atomic as a whole: if a
        later batch conflicts the earlier ones stay, and deciding again recognises them by
        their event IDs as duplicates."""
        sequences: list[int] = []
        for start in range(0, len(messages), MAX_ATOMIC):
            chunk = messages[start : start + MAX_ATOMIC]
            first = await self._append_atomic(case_id, chunk, expected_last)
            sequences.extend(range(first, first + len(chunk)))
            expected_last = sequences[-1]
        return sequences

    async def append_cases(self, appends: Sequence[CaseAppend]) -> list[list[int]]:
        """Several cases' events as one atomic batch (at most `MAX_ATOMIC` in all), each case
        under its own lock: all are stored or none. Returns each case's sequences; raises
        `Conflict` if any of the cases moved on meanwhile.

        One batch instead of one per case: the server stores (and with `sync_interval: always`
        flushes) the whole intake batch in one go, and the intake waits for one answer."""
        if len(appends) == 1:
            case_id, messages, expected_last = appends[0]
            return [await self.append(case_id, messages, expected_last=expected_last)]
        flat = [m for case_id, msgs, last in appends for m in _locked(case_id, msgs, last)]
        if len(flat) > MAX_ATOMIC:
            raise ValueError(f"{len(flat)} events exceed an atomic batch ({MAX_ATOMIC})")
        first = await self._atomic(flat)
        out: list[list[int]] = []
        for _, messages, _ in appends:
            out.append(list(range(first, first + len(messages))))
            first += len(messages)
        return out

    async def _append_atomic(
        self, case_id: str, messages: Sequence[Message], expected_last: int
    ) -> int:
        """One case's atomic batch under its lock; returns its first sequence."""
        return await self._atomic(_locked(case_id, messages, expected_last))

    async def _atomic(self, messages: Sequence[Message]) -> int:
        """One atomic batch (a batch is stored contiguously); returns its first sequence."""
        if len(messages) == 1:
            subject, body, headers = messages[0]
            return await self._commit(subject, body, headers)
        batch = uuid.uuid4().hex
        async with self._open_batches:
            for n, (subject, body, headers) in enumerate(messages[:-1], start=1):
                await self.nc.publish(subject, body, headers={**headers, **_batch(batch, n)})
            subject, body, headers = messages[-1]
            last = await self._commit(
                subject, body, {**headers, **_batch(batch, len(messages)), Header.BATCH_COMMIT: "1"}
            )
        return last - len(messages) + 1

    async def _commit(self, subject: str, body: bytes, headers: dict[str, str]) -> int:
        # A plain request rather than nats-py's js.publish: it reads the batch's ack too, and
        # publish_async would swallow API errors (nats-py 2.16 raises them in its reply handler).
        reply = await self.nc.request(subject, body, headers=headers, timeout=PUBLISH_TIMEOUT_S)
        answer = orjson.loads(reply.data)
        error = answer.get("error")
        if error is None:
            return int(answer["seq"])
        if error.get("err_code") == streams.WRONG_LAST_SEQUENCE:
            raise Conflict(subject)
        if error.get("err_code") == streams.BATCH_INCOMPLETE:
            raise Incomplete(subject)
        raise LogError(f"{subject}: {error}")

    async def history(self, case_id: str) -> list[tuple[int, Event]]:
        """Every event of one case, in log order."""
        return [(seq, loads(body)) for seq, body in await self.read(streams.case_filter(case_id))]

    async def read(self, filter_subject: str, start: int = 1) -> list[tuple[int, bytes]]:
        """All stored messages matching `filter_subject` from sequence `start`, in order.

        By batched direct get (EVENTS allows direct): the server streams the matching messages
        to an inbox of ours and ends with an end-of-batch status. No consumer is created, so
        however many cases are read at once the server's consumer limit (10026) is never near,
        and a read costs one round trip per `READ_BATCH` messages instead of a consumer's
        creation, info, fetch and deletion."""
        async with self._reads:
            return await self._read(filter_subject, start)

    async def _read(self, filter_subject: str, start: int) -> list[tuple[int, bytes]]:
        inbox = self.nc.new_inbox()
        sub = await self.nc.subscribe(inbox)
        out: list[tuple[int, bytes]] = []
        try:
            while True:
                request = {"seq": start, "next_by_subj": filter_subject, "batch": READ_BATCH}
                await self.nc.publish(DIRECT_GET, orjson.dumps(request), reply=inbox)
                while True:
                    msg = await sub.next_msg(timeout=PUBLISH_TIMEOUT_S)
                    headers = msg.headers or {}
                    status = headers.get(STATUS)
                    if status is None:
                        out.append((int(headers[SEQUENCE]), msg.data))
                    elif status == NOT_FOUND:
                        return out
                    elif status == END_OF_BATCH:
                        break
                    else:
                        raise LogError(f"direct get {filter_subject}: {status} {headers}")
                if int(headers.get(NUM_PENDING, "0")) == 0 or not out:
                    return out
                start = out[-1][0] + 1  # the server cut the batch short: ask for the rest
        finally:
            await sub.unsubscribe()

    async def last_sequence(self, case_id: str) -> int:
        """The sequence of the case's last event (0: none), by one direct get: cheap, where
        reading a whole history costs the server a scan over the log the case spans."""
        reply = await self.nc.request(
            DIRECT_GET,
            orjson.dumps({"last_by_subj": streams.case_filter(case_id)}),
            timeout=PUBLISH_TIMEOUT_S,
        )
        headers = reply.headers or {}
        status = headers.get(STATUS)
        if status == NOT_FOUND:
            return 0
        if status is not None:
            raise LogError(f"direct get of case {case_id}: {status} {headers}")
        return int(headers[SEQUENCE])

    async def reject(self, refusal: Refusal) -> None:
        """Keep a refused message, raw, once: a redelivered message is not recorded twice."""
        with contextlib.suppress(Conflict):  # a conflict: it is recorded already
            await self._commit(*_refusal_message(refusal))

    async def reject_all(self, refusals: Sequence[Refusal]) -> list[BaseException | None]:
        """Keep refused messages, raw, each once; what became of each (None: kept, else the
        error that kept it from being kept).

        Each alone under its own lock, pipelined, as `reject` does. Not as one atomic batch:
        that was measured cheaper on bad input (issue 19), but in a rolling restart of the
        three-node cluster a batch whose answer was lost, written again one by one, left one
        refusal in REJECTED twice (`test_a_rolling_restart_of_all_three_nodes_under_load_loses_nothing`);
        a refusal kept twice breaks conservation, a cost does not."""
        kept = await asyncio.gather(*(self.reject(r) for r in refusals), return_exceptions=True)
        return [k if isinstance(k, BaseException) else None for k in kept]

    async def erase_intake(self, intake_sequence: int) -> None:
        """Delete one message from INTAKE, overwriting its bytes in the store files (the
        server's default for a message delete, unless `no_erase`). A message the work queue
        removed already is gone: nothing to do."""
        reply = await self.nc.request(
            f"$JS.API.STREAM.MSG.DELETE.{streams.INTAKE}",
            orjson.dumps({"seq": intake_sequence}), timeout=PUBLISH_TIMEOUT_S,
        )
        answer = orjson.loads(reply.data)
        error = answer.get("error")
        if error and error.get("err_code") != NO_MESSAGE:
            raise RuntimeError(f"INTAKE {intake_sequence}: {error.get('description')}")

    async def keep_outcomes(self, outcomes: Sequence[Outcome]) -> None:
        """Record outcomes by event ID. An accepted outcome is never replaced by a refusal of a
        later, different sending of the same ID (nor by one in the same call).

        As atomic batches of the bucket's stream where it allows them: with `sync_interval:
        always` the server flushes each plain put on its own, and one put per decided message
        cost the intake more than its appends did (issue 19: 500 puts ≈ 0.4 s, as one batch
        ≈ 25 ms). Where the stream does not allow them (made before issue 19 and not yet
        updated by `ensure_streams`), one put each, pipelined."""
        last: dict[str, Outcome] = {}  # by event ID: what a put of each in turn would leave
        for o in outcomes:
            if o.event_id is None or o.status == "duplicate":
                continue
            if o.status == "accepted" or last.get(o.event_id, o).status != "accepted":
                last[o.event_id] = o
        candidates = list(last.values())
        refusals = [o for o in candidates if o.status == "rejected"]
        existing = await asyncio.gather(*(self._outcome_read(o.event_id or "") for o in refusals))
        kept_elsewhere = {
            o.event_id for o, e in zip(refusals, existing, strict=True)
            if e is not None and e.status == "accepted"
        }
        messages: list[Message] = [
            (f"$KV.{streams.OUTCOMES_BUCKET}.{o.event_id}", o.model_dump_json().encode(), {})
            for o in candidates
            if o.status == "accepted" or o.event_id not in kept_elsewhere
        ]
        await self._write_together(f"KV_{streams.OUTCOMES_BUCKET}", messages)

    async def _outcome_read(self, event_id: str) -> Outcome | None:
        async with self._reads:
            return await self.outcome(event_id)

    async def _write_together(self, stream: str, messages: Sequence[Message]) -> None:
        """Store `messages` in `stream` as atomic batches (one flush each) if it allows them,
        else one by one, pipelined. For writes that need no lock of their own and that do no
        harm written twice (a key put again): a batch that fails (nothing of it stored) is
        written again, with the rest, message by message."""
        if not messages:
            return
        if stream not in self._not_atomic:
            try:
                for start in range(0, len(messages), MAX_ATOMIC):
                    await self._atomic(messages[start : start + MAX_ATOMIC])
                return
            except Exception as error:  # the plain puts below raise what is really wrong
                if ATOMIC_DISABLED in str(error):
                    self._not_atomic.add(stream)
        futures = [
            await self.js.publish_async(subject, body, headers=headers or None)
            for subject, body, headers in messages
        ]
        await asyncio.wait_for(asyncio.gather(*futures), PUBLISH_TIMEOUT_S)

    async def outcome(self, event_id: str) -> Outcome | None:
        kv = await self.outcomes()
        try:
            entry = await kv.get(event_id)
        except KeyNotFoundError:
            return None
        return Outcome.model_validate(orjson.loads(entry.value or b"{}"))

    async def announce(
        self, source_department: str, source_system: str, outcomes: Sequence[Outcome]
    ) -> None:
        """Tell a source what became of its messages: JSON arrays, one per batch unless that
        would exceed the server's `max_payload` (core NATS, fire and forget; the outcomes are
        kept by event ID as well)."""
        subject = streams.outcomes_subject(source_department, source_system)
        limit = self.nc.max_payload // 2
        part: list[bytes] = []
        size = 2
        for o in outcomes:
            one = o.model_dump_json(exclude_none=True).encode()
            if part and size + len(one) + 1 > limit:
                await self.nc.publish(subject, b"[" + b",".join(part) + b"]")
                part, size = [], 2
            part.append(one)
            size += len(one) + 1
        if part:
            await self.nc.publish(subject, b"[" + b",".join(part) + b"]")

    async def submit(
        self, department: str, system: str, case_id: str, body: bytes, timeout: float
    ) -> Outcome | None:
        """Publish ``body`` to INTAKE as the source ``department``/``system`` would, and wait up
        to ``timeout`` seconds for the outcome the intake announces for it; None if none came
        (the intake is not running, or is behind)."""
        answers = await self.nc.subscribe(streams.outcomes_subject(department, system))
        try:
            ack = await self.js.publish(streams.intake_subject(department, system, case_id), body)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while (left := deadline - loop.time()) > 0:
                try:
                    msg = await answers.next_msg(timeout=left)
                except TimeoutError:
                    break
                for answer in orjson.loads(msg.data):
                    if answer["intake_sequence"] == ack.seq:
                        return Outcome.model_validate(answer)
            return None
        finally:
            await answers.unsubscribe()
