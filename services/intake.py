"""The intake (受理): the one way into the log.

Every message a source publishes to INTAKE is decoded, validated, authorised and applied to its
case; it then ends either in EVENTS (appended under the case's optimistic lock) or in REJECTED
(raw, with a reason code). Either way its outcome is announced to the source and kept by event
ID. A message is acknowledged only after that, so a crash redelivers it and the case's history
(not a time window) recognises it as a duplicate.

INTAKE is split into partitions by case. An instance works on a partition only while it holds
that partition's lease, so one case is handled by one worker at a time and keeps its order;
several instances share the partitions and take over those of an instance that stops.

No single message can stop the intake, and each message of a batch is decided on its own
merits:
- what INTAKE stores fits REJECTED whole (`streams.intake_max_message`): larger messages are
  refused at publish, as the publisher's error;
- every value is checked against what the log, the projections and both databases hold
  (`out_of_range`, `duplicate_key`, `unstorable_text`: see `events.codec`);
- a subject with a wildcard token, stored as sent and taken by partition 0, is rejected
  (`invalid_subject`) and answered to no source;
- an unexpected error deciding one message rejects that message (`internal_error`, raw kept,
  the error as detail); if a batch fails where no one message can be blamed, what it left
  undecided is decided again one message at a time, in order;
- announcements are split to fit `max_payload`, and a refusal that cannot be kept leaves only
  its own message unacknowledged.

The order invariant (issue 12): a message of a partition is decided only after every earlier
message of that partition has been decided, or is waiting (negatively acknowledged with a
delay) for a prerequisite. It holds across failures and takeovers because
- a worker hands over one fetched batch at a time and fetches the next only once it is handled;
  a batch that failed is tried again, kept in hand, before anything later is fetched;
- a new lease holder first reclaims what an earlier holder fetched and never acknowledged
  (`IntakeService._reclaim`), instead of waiting ack_wait for it while deciding later messages;
- a message waiting for a prerequisite is refused only after waiting longer than ack_wait plus
  the lease TTL together (`outlasting`): any delay Jiedu itself causes its prerequisite is over
  by then, so only a prerequisite that never came gets it refused.
A case's history is read by direct get, never through a consumer of its own, and after a
conflict only the cases that moved are read again (`Intake._append_together`).

Bad input costs no more than good (issue 19): a batch's outcomes go to the outcomes bucket as
one atomic batch (one flush instead of one per message; its refusals go to REJECTED one by one,
each under its lock, as `EventLog.reject_all` explains), and a message delivered again while it
waits for its case checks the case's last sequence instead of reading its history.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from domain.authorisation import authorise
from domain.case import Case, Recorded, check_new_case
from domain.privacy import Cipher_
from domain.rules import CaseFacts, derived_events, judge
from events import streams
from events.catalogue import Event
from events.codec import decode, encode
from events.envelope import Envelope
from events.organs import Organs
from events.outcomes import Outcome, Reason, Rejection
from events.streams import Header, IntakeAddress
from services.adapters import logs
from services.adapters.config import Settings
from services.adapters.eventlog import (
    MAX_ATOMIC,
    Conflict,
    EventLog,
    Message,
    Refusal,
    check_streams,
    unavailable,
)
from services.adapters.keystore import keystore_path
from services.adapters.lease import bucket_keys
from services.privacy import Sealer, holds_personal_bytes, without_personal

log = logs.get("jiedu.intake")

GROUP_TRIES = 3
"""How often a batch's cases are appended together after a conflict before each goes alone."""

WAITS_FOR_PREREQUISITE = frozenset({Reason.UNKNOWN_CASE, Reason.UNKNOWN_REFERENCE})
"""Refusals that may be only a matter of arrival order: the message waits and is tried again."""


@dataclass
class Item:
    """One intake message on its way through a batch."""

    msg: Msg
    address: IntakeAddress
    intake_sequence: int
    deliveries: int
    event: Event | None = None
    outcome: Outcome | None = None
    retry_in: float | None = None
    twin: Recorded | None = None
    """The earlier sending of the same event, if this one is a duplicate."""
    checked: bool = False
    """Decoded and authorised: what is left to decide depends on its case."""
    body: bytes | None = None
    """What EVENTS keeps if not the message as sent: the event with its personal fields sealed."""


def outlasting(waits: Sequence[float], delay: float) -> tuple[float, ...]:
    """The delays between tries of a message waiting for its prerequisite, lengthened (each
    new one twice the last, at most half of `delay`) until together they exceed `delay`: the
    longest the system itself may hold the prerequisite back (a batch redelivered after
    ack_wait, a partition taken over after its lease ran out). A message is then refused only when its
    prerequisite truly did not come, never because Jiedu was slow to bring it."""
    out = list(waits) or [1.0]
    step = out[-1]
    while sum(out) <= delay:
        step = max(min(step * 2, delay / 2), step)
        out.append(step)
    return tuple(out)


def _now() -> datetime:
    return datetime.now(UTC)


class Intake:
    """Handles batches of intake messages for the partitions this instance holds."""

    def __init__(self, log_: EventLog, organs: Organs, settings: Settings) -> None:
        self.log = log_
        self.organs = organs
        self.waits = outlasting(settings.wait_for_case_s, settings.ack_wait_s + settings.lease_ttl_s)
        self.cases: OrderedDict[str, Case | None] = OrderedDict()
        self.max_cached = 50_000
        self.privacy = Sealer(keystore_path(settings), Cipher_(settings.personal_cipher))

    async def handle(self, msgs: Sequence[Msg]) -> None:
        """Decide every message of a batch, each on its own merits. If deciding the batch as a
        whole fails unexpectedly, what it left undecided is decided again one message at a
        time, in order, and a message that fails alone is rejected (`internal_error`)."""
        items = [self._parse(m) for m in msgs]
        if any(i.checked and self.privacy.holds_personal(i.event) for i in items):
            await asyncio.to_thread(self._seal, items)
        by_case: dict[str, list[Item]] = {}
        for item in items:
            if item.event is not None and item.outcome is None and item.retry_in is None:
                by_case.setdefault(item.event.case_id, []).append(item)
        try:
            await self._append_together(by_case)
        except Exception:
            log.exception("batch failed: deciding its messages one at a time", size=len(items))
            await self._one_at_a_time(items)
        await self._settle(items)

    async def _one_at_a_time(self, items: list[Item]) -> None:
        """Decide again, alone, each checked message the failed batch did not append: a refusal
        it met may rest on earlier messages of the batch that were never stored."""
        for item in items:
            if not item.checked or (item.outcome and item.outcome.status != "rejected"):
                continue
            assert item.event is not None
            item.outcome, item.retry_in = None, None
            try:
                await self._append_together({item.event.case_id: [item]})
            except Exception as error:
                self._fail(item, error)

    def _fail(self, item: Item, error: Exception) -> None:
        """An unexpected error deciding one message: refuse that message, kept raw with the
        error for an operator to look at. Unless the log could not be reached (a cluster node
        lost, a leader being elected): that is no fault of the message, so the error goes up,
        the batch stays unacknowledged and is tried again, in order (issue 18)."""
        if unavailable(error):
            log.warning("log unavailable: the batch is tried again",
                        intake_sequence=item.intake_sequence, error=repr(error))
            raise error
        log.error("deciding a message failed", intake_sequence=item.intake_sequence,
                  error=repr(error), exc_info=error)
        self._refuse(item, Rejection(Reason.INTERNAL_ERROR, f"{type(error).__name__}: {error}"))

    async def _append_together(self, by_case: dict[str, list[Item]]) -> None:
        """Decide every case of the batch, then append them all at once, each case under its
        own lock. If every case has one event to append, each is one plain publish (all sent
        together). If any case needs an atomic batch (a fact and its findings, several facts),
        all cases go in as few atomic batches as fit: the server holds the stream for several
        milliseconds to commit any atomic batch, however small, and other appends wait
        meanwhile, so one batch for all is the cheapest.

        If a group fails because some of its cases moved on meanwhile (the deadline service
        appended to them, or another instance did), only those are read again and decided
        anew; the others' decisions still hold (their cases are where they were decided) and
        go in again as they are, together with the new ones, up to `GROUP_TRIES` times; only
        then case by case. One moving case must not cost a batch of hundreds of cases their
        decisions, reads and appends of their own: that starved the intake while the
        deadline service wrote (issue 12)."""
        decided = await self._decide_cases(by_case, read=False)
        for _ in range(GROUP_TRIES):
            conflicted = await self._append_decided(decided)
            if not conflicted:
                return
            last = await asyncio.gather(*(self.log.last_sequence(d.case_id) for d in conflicted))
            moved = {d.case_id: d.items for d, seq in zip(conflicted, last, strict=True)
                     if seq != d.base}
            decided = [d for d in conflicted if d.case_id not in moved]
            decided += await self._decide_cases(moved, read=True)
        await asyncio.gather(*(self._handle_case(d.case_id, d.items) for d in decided))

    async def _decide_cases(
        self, by_case: dict[str, list[Item]], *, read: bool
    ) -> list[Decision]:
        """Decide each case's items on the case as this instance has it or (`read`) as the log
        has it now, an opening event's case too (it may be a redelivery). Cases with nothing
        to append are settled here (duplicates answered) and left out."""
        cases = await asyncio.gather(
            *(self._load(c) if read else self._current(c, its) for c, its in by_case.items())
        )
        decided: list[Decision] = []
        for (case_id, its), case in zip(by_case.items(), cases, strict=True):
            base = case.last_sequence if case else 0
            case, batch = self._decide(case, its)
            if batch.messages:
                decided.append(Decision(case_id, its, base, case, batch))
            else:
                self._answer_duplicates(its)
                self._keep(case_id, case)
        return decided

    async def _append_decided(self, decided: list[Decision]) -> list[Decision]:
        """Append decided cases together (see `_append_together`); returns the decisions of
        the groups that conflicted, not appended."""
        atomic = any(len(d.batch.messages) > 1 for d in decided)
        groups = list(_packed(decided)) if atomic else [[d] for d in decided]
        conflicted: list[Decision] = []

        async def append(group: list[Decision]) -> None:
            try:
                sequences = await self.log.append_cases(
                    [(d.case_id, d.batch.messages, d.base) for d in group]
                )
            except Conflict:  # out of the cache meanwhile: nothing wrong is kept
                conflicted.extend(group)
                return
            for d, seqs in zip(group, sequences, strict=True):
                self._accepted(d, seqs)

        await asyncio.gather(*map(append, groups))
        return conflicted

    async def _current(self, case_id: str, items: list[Item]) -> Case | None:
        """The case as this instance last left it, else as the log has it (None: not opened).
        Taken out of the cache: deciding records tentatively on it, so it goes back (`_keep`)
        only once its append succeeded, and a failed one leaves it to be read again.

        A message delivered again (it waited for a prerequisite) is decided on the case as the
        log has it: what it waited for may have been appended by another writer (the matching
        service's suggestions, QA-4), which a cached case does not know until it conflicts.
        The cached case is that case still if the log's last sequence for it is the cached
        one's (a direct get of the last message, no history read)."""
        fresh = all(item.deliveries == 1 for item in items)
        if case_id in self.cases:
            cached = self.cases.pop(case_id)
            if fresh:
                return cached
            # Whether anyone appended meanwhile, by one direct get of the case's last sequence:
            # a message waiting for a case that never comes is delivered again some 8 times,
            # and reading the whole history each time cost bad input more than good (issue 19).
            if await self.log.last_sequence(case_id) == (cached.last_sequence if cached else 0):
                return cached
            return await self._load(case_id)
        first = items[0].event
        assert first is not None
        return None if first.OPENS_CASE and fresh else await self._load(case_id)

    def _accepted(self, d: Decision, sequences: list[int]) -> None:
        assert d.case is not None
        d.case.confirm(sequences)
        for item, offset in d.batch.positions:
            item.outcome = self._outcome("accepted", item, sequences[offset])
        self._answer_duplicates(d.items)
        self._keep(d.case_id, d.case)

    def _keep(self, case_id: str, case: Case | None) -> None:
        self.cases.pop(case_id, None)
        self.cases[case_id] = case  # most recently used last
        while len(self.cases) > self.max_cached:
            self.cases.popitem(last=False)

    def _parse(self, msg: Msg) -> Item:
        meta = msg.metadata
        item = Item(msg, _address(msg.subject), meta.sequence.stream, meta.num_delivered)
        try:
            if not item.address.routable:
                raise Rejection(
                    Reason.INVALID_SUBJECT,
                    f"{msg.subject!r}: a wildcard token names no one source or case",
                )
            item.event = decode(msg.data)
            authorise(item.event, item.address, self.organs)
            item.checked = True
        except Rejection as r:
            self._refuse(item, r)
        except Exception as error:
            self._fail(item, error)
        return item

    def _seal(self, items: list[Item]) -> None:
        """Seal every personal field before anything keeps it (in a thread: the key store is
        SQLite). A source may not send sealed fields: only the intake seals."""
        for item in items:
            if not item.checked or not self.privacy.holds_personal(item.event):
                continue
            assert item.event is not None
            try:
                item.event = self.privacy.seal(item.event)
                item.body = encode(item.event)
            except Rejection as r:
                item.checked = False
                self._refuse(item, r)
            except Exception as error:
                item.checked = False
                self._fail(item, error)

    def _refuse(self, item: Item, r: Rejection) -> None:
        if r.reason in WAITS_FOR_PREREQUISITE and item.deliveries <= len(self.waits):
            item.retry_in = self.waits[item.deliveries - 1]
            return
        event = item.event
        item.outcome = Outcome(
            status="rejected",
            intake_sequence=item.intake_sequence,
            event_id=event.event_id if event else _event_id_of(item.msg.data),
            case_id=event.case_id if event else None,
            reason=r.reason,
            detail=r.detail,
            at=_now(),
        )

    async def _handle_case(self, case_id: str, items: list[Item]) -> None:
        """Decide and append one case alone (after a batch it was part of was refused): its
        facts with their findings as one atomic batch under the case's lock. If the case moved
        on meanwhile, re-read it and decide again."""
        case = await self._current(case_id, items)
        for _ in range(10):
            base = case.last_sequence if case else 0
            case, batch = self._decide(case, items)
            if not batch.messages:
                self._answer_duplicates(items)
                self._keep(case_id, case)
                return
            try:
                sequences = await self.log.append(case_id, batch.messages, expected_last=base)
            except Conflict:  # another writer, or the case already exists: re-read it
                case = await self._load(case_id)
                continue
            self._accepted(Decision(case_id, items, base, case, batch), sequences)
            return
        raise RuntimeError(f"case {case_id}: still conflicting after 10 tries")

    def _answer_duplicates(self, items: list[Item]) -> None:
        for item in items:
            if item.twin is not None and item.twin.sequence is not None:
                item.outcome = self._outcome("duplicate", item, item.twin.sequence)

    @staticmethod
    def _message(item: Item) -> Message:
        e = item.event
        assert e is not None
        return (
            streams.event_subject(e.department, e.case_id, e.type),
            item.body or item.msg.data,
            {
                Header.INTAKE_SUBJECT: item.msg.subject,
                Header.INTAKE_SEQUENCE: str(item.intake_sequence),
                Header.EVENT_ID: e.event_id,
            },
        )

    async def _load(self, case_id: str) -> Case | None:
        return Case.rebuild(await self.log.history(case_id))

    def _decide(self, case: Case | None, items: list[Item]) -> tuple[Case | None, Batch]:
        """Judge each message against the case as the earlier ones leave it (tentatively
        recorded, not yet in the log). Returns the case and what to append."""
        batch = Batch()
        for item in items:
            e = item.event
            assert e is not None
            item.outcome, item.retry_in, item.twin = None, None, None
            try:
                if case is not None and (twin := case.earlier(e)) is not None:
                    item.twin = twin
                    continue
                if case is None:
                    check_new_case(e)
                else:
                    case.check(e)
                facts = case.facts if case else CaseFacts.empty()
                derived = derived_events(e, judge(facts, None, e))
                messages = [self._message(item), *(_derived_message(d, item) for d in derived)]
            except Rejection as r:
                self._refuse(item, r)
                continue
            except Exception as error:  # nothing recorded yet: refuse this message alone
                self._fail(item, error)
                continue
            if case is None:
                case = Case.open(None, e)
            else:
                case.record(None, e)
            for d in derived:
                case.record(None, d)
            batch.positions.append((item, len(batch.messages)))
            batch.messages.extend(messages)
        if case is not None:
            case.collect_events()  # the log holds the facts; the aggregate's list is no store
        return case, batch

    @staticmethod
    def _outcome(status: Literal["accepted", "duplicate"], item: Item, seq: int) -> Outcome:
        e = item.event
        assert e is not None
        return Outcome(
            status=status,
            intake_sequence=item.intake_sequence,
            event_id=e.event_id,
            case_id=e.case_id,
            sequence=seq,
            at=_now(),
        )

    async def _settle(self, items: list[Item]) -> None:
        """Make every outcome durable, tell the sources, then acknowledge (or delay) each one."""
        refused = [i for i in items if i.outcome and i.outcome.status == "rejected"]
        kept = await self.log.reject_all(
            [
                Refusal(
                    raw=without_personal(i.msg.data),
                    intake_subject=i.msg.subject,
                    intake_sequence=i.intake_sequence,
                    reason=str(i.outcome.reason),
                    detail=i.outcome.detail or "",
                )
                for i in refused
                if i.outcome
            ]
        )
        for i, error in zip(refused, kept, strict=True):
            if error is not None:  # not acknowledged: tried again after ack_wait
                log.error("a refusal could not be kept", intake_sequence=i.intake_sequence,
                          error=repr(error))
                i.outcome = None
        for i in refused:
            if i.outcome is None:
                continue
            log.warning(
                "rejected",
                event_id=i.outcome.event_id,
                case_id=i.outcome.case_id,
                intake_sequence=i.intake_sequence,
                reason=str(i.outcome.reason),
                detail=i.outcome.detail,
            )
        done = [i for i in items if i.outcome is not None]
        await self.log.keep_outcomes([i.outcome for i in done if i.outcome])
        by_source: dict[tuple[str, str], list[Outcome]] = {}
        for i in done:
            assert i.outcome is not None
            if not i.address.routable:
                continue  # names no source to answer: REJECTED (and its event ID) keeps it
            source = (i.address.source_department, i.address.source_system)
            by_source.setdefault(source, []).append(i.outcome)
        for (department, system), outcomes in by_source.items():
            await self.log.announce(department, system, outcomes)
        await self._erase_personal(done)
        for i in done:
            await i.msg.ack()
        for i in items:
            if i.outcome is None and i.retry_in is not None:
                await i.msg.nak(delay=i.retry_in)


    async def _erase_personal(self, done: list[Item]) -> None:
        """Overwrite in INTAKE's store files every decided message that may name a person,
        before acknowledging it. Acknowledging alone removes a message from the work queue
        but leaves its bytes in the block file while other messages live in the same block
        (until compaction); the stream's message delete, without `no_erase`, overwrites them
        with random bytes. A message that could not be erased is acknowledged all the same
        (it is decided) and the failure logged: the bytes go when the block does."""
        personal = [i for i in done if holds_personal_bytes(i.msg.data)]
        results = await asyncio.gather(
            *(self.log.erase_intake(i.intake_sequence) for i in personal), return_exceptions=True
        )
        for i, result in zip(personal, results, strict=True):
            if isinstance(result, BaseException):
                log.error("a personal message could not be erased from INTAKE",
                          intake_sequence=i.intake_sequence, error=type(result).__name__)


@dataclass
class Decision:
    """One case's part of an intake batch, decided: what to append, and on which base."""

    case_id: str
    items: list[Item]
    base: int
    """The case's last sequence when decided (0: a new case): the lock its append carries."""
    case: Case | None
    batch: Batch


def _packed(decided: list[Decision]) -> Iterator[list[Decision]]:
    """Cases grouped in order into atomic batches of at most `MAX_ATOMIC` events; a longer
    case goes alone (`EventLog.append` splits it)."""
    group: list[Decision] = []
    size = 0
    for d in decided:
        n = len(d.batch.messages)
        if group and size + n > MAX_ATOMIC:
            yield group
            group, size = [], 0
        group.append(d)
        size += n
    if group:
        yield group


@dataclass
class Batch:
    """What one case appends for one intake batch: facts with their findings, in order."""

    messages: list[Message] = field(default_factory=list)
    positions: list[tuple[Item, int]] = field(default_factory=list)
    """Each accepted intake message and the offset of its fact in `messages`."""


def _derived_message(event: Envelope, cause: Item) -> Message:
    """A finding recorded next to the fact that caused it."""
    return (
        streams.event_subject(event.department, event.case_id, event.type),
        encode(event),
        {
            Header.INTAKE_SUBJECT: cause.msg.subject,
            Header.INTAKE_SEQUENCE: str(cause.intake_sequence),
            Header.EVENT_ID: event.event_id,
        },
    )


def _address(subject: str) -> IntakeAddress:
    try:
        return IntakeAddress.parse(subject)
    except ValueError:  # not a subject INTAKE stores; treated as a stray
        return IntakeAddress(None, "", "", subject)


def _event_id_of(body: bytes) -> str | None:
    """The event ID of a message that failed validation, if it names a usable one."""
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    event_id = raw.get("event_id") if isinstance(raw, dict) else None
    if isinstance(event_id, str) and event_id.replace("-", "").replace("_", "").isalnum():
        return event_id if 0 < len(event_id) <= 128 and event_id.isascii() else None
    return None


Fetched = tuple[list[Msg], "asyncio.Future[bool]"]
"""One partition's fetched batch, and what its worker waits on until the batch is handled
(True) or failed (False)."""


class IntakeService:
    """Leases partitions of INTAKE and runs a fetching worker for each one held. One handler
    takes whatever the workers have fetched and handles it as one batch, so that the cases of
    every partition held share one append (see `Intake._append_together`); each worker waits
    until its batch is handled before it fetches again, which keeps each partition, and so
    each case, in order."""

    def __init__(self, nc: Client, organs: Organs, settings: Settings) -> None:
        self.nc = nc
        self.settings = settings
        self.intake = Intake(EventLog(nc), organs, settings)
        self.me = settings.instance
        self.workers: dict[int, asyncio.Task[None]] = {}
        self.revisions: dict[int, int] = {}
        self._leases: KeyValue | None = None
        self._loop: asyncio.Task[None] | None = None
        self._handler: asyncio.Task[None] | None = None
        self._fetched: asyncio.Queue[Fetched] = asyncio.Queue()
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        """Check that the log cannot shrink (refusing to run if it can), then take leases."""
        await check_streams(self.nc.jetstream())
        self._leases = await self.nc.jetstream().key_value(streams.LEASES_BUCKET)
        self._handler = asyncio.create_task(self._handle_fetched(), name="intake-handler")
        await self._tend_leases()
        self._loop = asyncio.create_task(self._lease_loop(), name="intake-leases")

    async def stop(self) -> None:
        """Finish the batches in hand, then give the partitions back for others to take."""
        self._stopping.set()
        if self._loop:
            await self._loop
        await asyncio.gather(*self.workers.values(), return_exceptions=True)
        for partition in list(self.revisions):
            await self._release(partition)
        if self._handler is not None:
            self._handler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._handler

    async def _handle_fetched(self) -> None:
        while True:
            jobs = [await self._fetched.get()]
            while not self._fetched.empty():
                jobs.append(self._fetched.get_nowait())
            msgs = [m for batch, _ in jobs for m in batch]
            handled = True
            try:
                await self.intake.handle(msgs)
            except Exception:  # left unacknowledged: each worker tries its batch again
                log.exception("batch failed", size=len(msgs))
                handled = False
            except asyncio.CancelledError:
                if _cancelled_from_outside():
                    raise
                # nats-py cancels the requests in flight when its connection drops (a node
                # lost): that is a failed batch, not the end of the handler every worker needs
                log.warning("batch failed: its connection dropped", size=len(msgs))
                handled = False
            for _, done in jobs:
                if not done.done():
                    done.set_result(handled)

    @property
    def partitions(self) -> list[int]:
        return sorted(self.workers)

    async def _lease_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._stopping.wait(), self.settings.lease_ttl_s / 3)
            except TimeoutError:
                try:
                    await self._tend_leases()
                except Exception:  # a slow server this once: the next turn renews in time
                    log.exception("leases not tended", instance=self.me)
                except asyncio.CancelledError:
                    if _cancelled_from_outside():
                        raise
                    log.warning("leases not tended: the connection dropped", instance=self.me)

    async def _tend_leases(self) -> None:
        """Renew what we hold; take free or expired partitions up to a fair share."""
        kv = self._leases
        assert kv is not None
        now = time.time()
        until = orjson.dumps({"owner": self.me, "until": now + self.settings.lease_ttl_s})
        await kv.put(f"instance.{self.me}", until)
        alive = 0
        owners: dict[int, tuple[str, float, int]] = {}
        for key in await bucket_keys(self.nc.jetstream(), streams.LEASES_BUCKET):
            entry = await _get(kv, key)
            if entry is None:
                continue
            value, revision = entry
            if key.startswith("instance.") and float(value["until"]) > now:
                alive += 1
            elif key.startswith("partition."):
                owners[int(key.split(".")[1])] = (
                    str(value["owner"]), float(value["until"]), revision
                )
        share = -(-self.settings.partitions // max(alive, 1))
        for partition in list(self.revisions):
            if owners.get(partition, ("",))[0] != self.me:
                # taken over (or given back by its taker) while we could not renew: its worker
                # stops, and it no longer counts in our share, or nobody would take the rest
                self._lose(partition)
        for partition in range(self.settings.partitions):
            key = f"partition.{partition}"
            owner, expires, revision = owners.get(partition, ("", 0.0, 0))
            # named ours but not held: left by a previous run under the same instance name
            free = not owner or owner == self.me or expires < now
            try:
                if owner == self.me and partition in self.revisions:
                    if len(self.revisions) > share and partition == max(self.revisions):
                        await self._release(partition)
                        continue
                    self.revisions[partition] = await kv.update(key, until, last=revision)
                    if partition not in self.workers:  # it ended on an error: work on
                        self._start_worker(partition)
                elif free and len(self.revisions) < share:
                    if revision:
                        rev = await kv.update(key, until, last=revision)
                    else:
                        rev = await kv.create(key, until)
                    self.revisions[partition] = rev
                    self._start_worker(partition)
            except KeyWrongLastSequenceError:
                self._lose(partition)
            except Exception as e:  # another instance won the race for it
                if "wrong last sequence" not in str(e):
                    raise
                self._lose(partition)

    def _start_worker(self, partition: int) -> None:
        log.info("partition acquired", partition=partition, instance=self.me)
        # a worker of an earlier hold may still be finishing its batch: the new one waits for
        # it, then reclaims what was left unacknowledged meanwhile, as after any takeover
        earlier = self.workers.get(partition)
        self.workers[partition] = asyncio.create_task(
            self._work(partition, after=earlier), name=f"intake-p{partition}"
        )

    def _lose(self, partition: int) -> None:
        if self.revisions.pop(partition, None) is not None:
            log.warning("partition lost", partition=partition, instance=self.me)

    async def _release(self, partition: int) -> None:
        revision = self.revisions.pop(partition, None)
        worker = self.workers.pop(partition, None)
        if worker:
            await worker
        if revision is not None and self._leases is not None:
            # expired and taken meanwhile: then nothing of ours is left to give back
            with contextlib.suppress(Exception):
                await self._leases.delete(f"partition.{partition}", last=revision)
            log.info("partition released", partition=partition, instance=self.me)

    async def _work(self, partition: int, after: asyncio.Task[None] | None = None) -> None:
        """Fetch and hand over one partition's batches, one at a time, while the lease holds.

        First reclaim what an earlier holder left unacknowledged. A batch that failed is tried
        again, kept in hand (and marked in progress so it is not redelivered meanwhile), before
        anything later of the partition is fetched: nothing overtakes it."""
        try:
            if after is not None:
                await asyncio.gather(after, return_exceptions=True)
            await self._work_on(partition)
        except Exception:  # a node lost mid-fetch, say: the next lease turn starts it again
            log.exception("partition worker failed", partition=partition, instance=self.me)
        except asyncio.CancelledError:
            if _cancelled_from_outside():
                raise
            log.warning("partition worker's connection dropped", partition=partition)
        finally:
            if self.workers.get(partition) is asyncio.current_task():
                del self.workers[partition]

    async def _work_on(self, partition: int) -> None:
        js = self.nc.jetstream()
        await self._reclaim(partition)
        sub = await js.pull_subscribe_bind(
            durable=streams.intake_consumer(partition), stream=streams.INTAKE
        )
        try:
            while self._holds(partition):
                try:
                    msgs = await _fetch(sub, self.settings.intake_batch)
                except (NatsTimeout, TimeoutError):
                    continue
                pause = RETRY_S
                while not await self._handled(msgs) and self._holds(partition):
                    await asyncio.gather(*(m.in_progress() for m in msgs))
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), pause)
                    pause = min(pause * 2, self.settings.ack_wait_s / 2)
        finally:
            with contextlib.suppress(Exception):  # the connection may be what failed
                await sub.unsubscribe()
            self.intake.cases.clear()  # another instance may own some of these cases next

    def _holds(self, partition: int) -> bool:
        """Whether the calling worker may go on: the lease is held, and the worker is the
        current one for it (not one of an earlier hold, finishing its last batch)."""
        return (
            partition in self.revisions
            and self.workers.get(partition) is asyncio.current_task()
            and not self._stopping.is_set()
        )

    async def _handled(self, msgs: list[Msg]) -> bool:
        """Hand a fetched batch to the handler; whether it was handled (False: it failed)."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        await self._fetched.put((msgs, done))
        return await done

    async def _reclaim(self, partition: int) -> None:
        """Take back what an earlier holder of the partition fetched and never acknowledged,
        before deciding anything of it: the order of a case survives a crash or a takeover.

        JetStream would redeliver such messages only after `ack_wait`, while this instance
        went on with the partition's later messages (a case's later events overtaking its
        opening; issue 12). So the partition's consumer is made anew: on a work queue a new
        consumer starts at the first message still stored, which is the first one not yet
        acknowledged, and delivers everything from there in stream order. An earlier holder
        still finishing a batch is harmless: its appends are under the cases' locks (the
        redelivered messages are then recognised as duplicates), and its acknowledgements
        only remove what it decided."""
        js = self.nc.jetstream()
        name = streams.intake_consumer(partition)
        info = await js.consumer_info(streams.INTAKE, name)
        if not info.num_ack_pending:
            return
        log.warning(
            "reclaiming unacknowledged messages",
            partition=partition, instance=self.me, unacknowledged=info.num_ack_pending,
        )
        await js.delete_consumer(streams.INTAKE, name)
        await js.add_consumer(
            streams.INTAKE, streams.intake_consumer_config(partition, self.settings.ack_wait_s)
        )


def _cancelled_from_outside() -> bool:
    """Whether the running task itself is being cancelled (stopping), rather than having met
    a request future that nats-py cancelled as its connection dropped."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


RETRY_S = 0.5
"""First pause before a failed batch is tried again (doubling, up to half of ack_wait)."""

TOP_UP_S = 0.005
"""How long a fetch waits for more once there is work: a pull request of nats-py's for N
messages returns only when it has N or its time is up, so a long wait there would hold the
first message for the whole of it."""


async def _fetch(sub: JetStreamContext.PullSubscription, batch: int) -> list[Msg]:
    """Wait up to half a second for the first message, then take what else is there."""
    msgs = await sub.fetch(1, timeout=0.5)
    if batch > 1:
        with contextlib.suppress(NatsTimeout, TimeoutError):
            msgs += await sub.fetch(batch - 1, timeout=TOP_UP_S)
    return msgs


async def _get(kv: KeyValue, key: str) -> tuple[dict[str, Any], int] | None:
    try:
        entry = await kv.get(key)
    except KeyNotFoundError:
        return None
    return orjson.loads(entry.value or b"{}"), int(entry.revision or 0)
