"""The deadline service (期限服务): keeps the clocks of RULES.md and writes what happens to them
into the log as events.

Two parts in one process:

* the `deadlines` projection (`projections.deadlines`), run by the ordinary projection runner,
  keeps one durable row per clock in the read-model store, rebuildable from the log;
* a scanner that, whenever a clock is owed a derived event (`domain.clocks.Clock.owed`), appends
  it to EVENTS: DeadlineStarted or DeadlinePendingCalendar at the start, DeadlineWarned at the
  warning time, DeadlineBreached at the due time, DeadlineMet when the duty is met.

Time comes from an injected :class:`Clock`: :class:`SystemClock` in production,
:class:`FakeClock` in tests, so months of deadlines run in seconds. Derived events carry the
clock's own times (start, warning, due, meeting), never the wall clock's, so a replay computes
the same events.

Durable: the clock rows are in the read-model store and the scanner owns no state; a restarted
service (or one started on another machine with a fresh store, which rebuilds it from the log)
carries on where the log says. Exactly once, even with several instances: each derived event has
a deterministic ID (`domain.clocks.deadline_event_id`) and is appended under the case's
optimistic lock, expecting the case's last sequence as the projection saw it when it decided;
if the case moved on (another instance appended the same event, or a new fact arrived), the
append fails as a whole, the scanner waits until the projection has caught up with the log and
decides again from what it now shows. Before each pass the projection is brought up to the log
head, so a duty met just before its due time is not reported as breached.

Timely: the scanner sleeps until the next time a clock is owed something, at most
`max_sleep_s` (0.5 s) at a time, so a breach is appended well within a second of its due time.
The intake first: while INTAKE holds a backlog (more than `busy_intake` messages) a pass waits,
at most `max_defer_s` (10 s), so facts still queued are in the log before the clocks are judged
and the scanner's appends do not keep invalidating the cases the intake is working on.

`python -m services.deadlines` runs the service until SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from nats.aio.client import Client

from domain.calendar import WorkingDayCalendar
from domain.clocks import (
    MET,
    Action,
    ClockKeeper,
    Leads,
    Status,
    Unit,
    deadline_event,
)
from domain.clocks import Clock as DeadlineClock
from events import streams
from events.codec import encode
from events.streams import Header
from projections.base import Row
from projections.deadlines import (
    CALENDAR_YEARS,
    CASES,
    CLOCKS,
    Deadlines,
    case_from_row,
    clock_from_row,
    default_calendar,
    with_log_years,
)
from services import bootstrap, deriving
from services.adapters import logs
from services.adapters.config import Settings
from services.adapters.eventlog import Conflict, Message
from services.adapters.readmodels import ReadStore
from services.deriving import DerivingService
from services.projector import head, wait_caught_up

log = logs.get("jiedu.deadlines")

MAX_BATCH = 500
"""Derived events appended to one case in one atomic batch (JetStream allows 1000)."""


# ── time sources ─────────────────────────────────────────────────────────────────────────────


class Clock(Protocol):
    """Where the service gets the time. ``sleep`` may return early (callers read ``now``
    again); it never returns before the event loop has had a turn."""

    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The wall clock (UTC) and asyncio's sleep."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0))


class FakeClock:
    """A clock that stands still until told to move: tests set it to a due time, and the
    service acts as if that moment had come. ``sleep`` returns when the time is moved, or after
    ``poll_s`` real seconds (so the service still notices new clocks in the read model)."""

    def __init__(self, start: datetime, *, poll_s: float = 0.02) -> None:
        if start.tzinfo is None:
            raise ValueError("a fake clock's time must be time-zone aware")
        self._now = start
        self.poll_s = poll_s
        self._moved = asyncio.Event()

    def now(self) -> datetime:
        return self._now

    def set(self, at: datetime) -> None:
        """Move to ``at`` (never backwards: a deadline service's time only goes forward)."""
        if at < self._now:
            raise ValueError(f"cannot move a clock back from {self._now} to {at}")
        self._now = at
        self._moved.set()
        self._moved = asyncio.Event()

    def advance(self, delta: timedelta) -> datetime:
        self.set(self._now + delta)
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        moved = self._moved
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(moved.wait(), self.poll_s)


# ── the service ──────────────────────────────────────────────────────────────────────────────


class DeadlineService(DerivingService):
    """Runs the deadlines projection and the scanner that appends derived deadline events."""

    task_name = "deadline-scanner"

    def __init__(
        self,
        nc: Client,
        store: ReadStore,
        *,
        calendar: WorkingDayCalendar | None = None,
        clock: Clock | None = None,
        leads: Leads | None = None,
        max_sleep_s: float = 0.5,
        catch_up_timeout_s: float = 10.0,
        concurrency: int = 16,
        run_projection: bool = True,
        busy_intake: int = 1000,
        max_defer_s: float = 10.0,
    ) -> None:
        """``run_projection=False``: another runner in the process (a `ProjectorService` over
        `projections.ALL` with the same store) keeps the deadlines projection; the scanner
        only reads it. Its `Deadlines` instance must have the same calendar and leads."""
        self.calendar = calendar or default_calendar()
        self.projection = Deadlines(self.calendar, leads)
        super().__init__(nc, store, [self.projection], run_projection=run_projection)
        self.keeper: ClockKeeper = self.projection.keeper
        self.planner: ClockKeeper = self.keeper
        """The keeper the scanner plans with: `keeper` plus the years confirmed in the log, as
        the projection showed them at the last pass."""
        self.clock: Clock = clock or SystemClock()
        self.max_sleep_s = max_sleep_s
        self.catch_up_timeout_s = catch_up_timeout_s
        self.concurrency = concurrency
        self.busy_intake = busy_intake
        self.max_defer_s = max_defer_s

    async def settle(self, passes: int = 50) -> int:
        """Run passes until one appends nothing (for `jiedu demo` and tests); returns how many
        events were appended. Safe while the background loop runs too."""
        total = 0
        for _ in range(passes):
            appended = await self.scan_once()
            if not appended:
                return total
            total += len(appended)
        raise TimeoutError(f"deadline events still owed after {passes} passes")

    async def _run(self) -> None:
        delay = 0.5
        deferred_since: float | None = None
        loop = asyncio.get_running_loop()
        while not self._stop.is_set():
            try:
                if await self._intake_busy() and (
                    deferred_since is None or loop.time() - deferred_since < self.max_defer_s
                ):
                    deferred_since = deferred_since or loop.time()
                    await self._sleep(self.max_sleep_s)
                    continue
                deferred_since = None
                await self.scan_once()
                wait = await self.next_wait()
                delay = 0.5
            except Exception:
                log.exception("deadline scan failed, trying again", delay_s=delay)
                wait, delay = delay, min(delay * 2, 30.0)
            await self._sleep(wait)

    async def _intake_busy(self) -> bool:
        """Whether INTAKE holds more than `busy_intake` messages not yet decided. Facts still
        queued there may meet a duty the scanner would otherwise call breached, and every
        derived event appended to a case the intake is working on makes the intake read that
        case again: so while a backlog drains, passes wait (at most `max_defer_s`)."""
        try:
            info = await self.js.stream_info(streams.INTAKE)
        except Exception:  # no INTAKE (a projection-only set-up): nothing to wait for
            return False
        return int(info.state.messages) > self.busy_intake

    async def _sleep(self, seconds: float) -> None:
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        stopper = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, stopper):
                task.cancel()
            await asyncio.gather(sleeper, stopper, return_exceptions=True)

    # -- one pass --------------------------------------------------------------------------

    async def scan_once(self) -> list[str]:
        """Bring the projection up to the log head, then append every derived event owed by
        now. Returns the IDs of the events this pass appended."""
        now = self.clock.now()
        if not await self._caught_up():
            return []
        due = await asyncio.to_thread(self._due, now)
        limit = asyncio.Semaphore(self.concurrency)
        appended: list[str] = []

        async def one_case(case_id: str, last: int, clocks: list[DeadlineClock]) -> None:
            async with limit:
                try:
                    appended.extend(await self._settle_case(case_id, last, clocks, now))
                except Exception:  # one case's trouble does not hold up the others
                    log.exception("deadline events not appended", case_id=case_id)

        await asyncio.gather(*(one_case(c, last, cl) for c, (last, cl) in due.items()))
        return appended

    async def _caught_up(self) -> bool:
        target = await head(self.js)
        try:
            await wait_caught_up(
                self.js, self.store, [self.projection],
                timeout=self.catch_up_timeout_s, at_least=target,
            )
        except TimeoutError as e:
            log.warning("deadlines projection behind the log; scan postponed", error=str(e))
            return False
        return True

    def _plan(self, clock: DeadlineClock, now: datetime) -> list[Action]:
        """What ``clock`` is owed by ``now``. A clock pending its calendar is computed if the
        calendar in force now knows the year (this service's, plus every year confirmed in
        the log up to the head: no restart, no rebuild); a working-day clock whose warning day
        the projection could not place gets it from that calendar too."""
        if clock.status is Status.PENDING_CALENDAR:
            self.planner.schedule(clock)
        if clock.warn_at is None and clock.due_at is not None and not clock.warned:
            clock.warn_at = self.planner.warn_time(clock)
        return clock.owed_by(now)

    async def _settle_case(
        self, case_id: str, last: int, clocks: list[DeadlineClock], now: datetime
    ) -> list[str]:
        """Append what one case's clocks are owed, under the case's lock; on a conflict, wait
        for the projection to fold what was appended meanwhile and decide again."""
        done: list[str] = []
        for _ in range(5):
            messages: list[tuple[str, Message]] = []
            for clock in clocks:
                for action in self._plan(clock, now):
                    event = deadline_event(clock, action)
                    subject = streams.event_subject(event.department, event.case_id, event.type)
                    headers = {Header.EVENT_ID: event.event_id}
                    messages.append((event.event_id, (subject, encode(event), headers)))
            if not messages:
                break
            try:
                for start in range(0, len(messages), MAX_BATCH):
                    chunk = messages[start : start + MAX_BATCH]
                    sequences = await self.log.append(
                        case_id, [m for _, m in chunk], expected_last=last
                    )
                    last = sequences[-1]
                    done.extend(event_id for event_id, _ in chunk)
            except Conflict:
                if not await self._caught_up():
                    break
                last, clocks = await asyncio.to_thread(
                    self._reload, case_id, [c.clock_id for c in clocks]
                )
                continue
            break
        else:
            log.warning("case kept moving; derived events left for the next pass", case_id=case_id)
        self.appended.extend(done)
        _log_appended(case_id, done)
        return done

    # -- reading the read model (in a thread) -------------------------------------------------

    def _due(self, now: datetime) -> dict[str, tuple[int, list[DeadlineClock]]]:
        """Clocks that may be owed something by ``now``, by case, with each case's last
        sequence. Read in this order — clock IDs, case rows, clock rows — so the clocks are
        never older than the case sequence an append will expect (a conflict catches any
        change in between)."""
        with self.store.transaction(write=False) as tx:
            live = tx.live(self.projection.name)
            if live is None:
                return {}
            clocks_table = tx.q(live.physical(CLOCKS))
            found = tx.rows(
                f'SELECT "clock_id", "case_id" FROM {clocks_table} '
                f'WHERE "next_action_at" <= ? OR "status" = ? '
                f'OR ("status" = ? AND "unit" = ? AND "warn_at" IS NULL '
                f'AND "due_at" IS NOT NULL AND NOT "warned")',
                (
                    self._timestamp(now),
                    str(Status.PENDING_CALENDAR),
                    str(Status.OPEN),
                    str(Unit.WORKING_DAYS),
                ),
            )
            if not found:
                return {}
            years = tx.select(CALENDAR_YEARS, live.physical(CALENDAR_YEARS))
            self.planner = ClockKeeper(with_log_years(self.calendar, years), self.keeper.leads)
            case_ids = sorted({row[1] for row in found})
            cases = tx.load(CASES, live.physical(CASES), [(c,) for c in case_ids])
            rows = tx.load(CLOCKS, live.physical(CLOCKS), [(row[0],) for row in found])
        out: dict[str, tuple[int, list[DeadlineClock]]] = {}
        for case_id in case_ids:
            case = cases.get((case_id,))
            last = case_from_row(case).last_sequence if case is not None else 0
            out[case_id] = (last, [])
        for row in sorted(rows.values(), key=lambda r: r["clock_id"]):
            out[row["case_id"]][1].append(clock_from_row(row))
        return out

    def _reload(self, case_id: str, clock_ids: Sequence[str]) -> tuple[int, list[DeadlineClock]]:
        """One case's last sequence, then its clocks, as the projection now shows them."""
        with self.store.transaction(write=False) as tx:
            live = tx.live(self.projection.name)
            if live is None:
                return 0, []
            case = tx.load(CASES, live.physical(CASES), [(case_id,)]).get((case_id,))
            rows = tx.load(CLOCKS, live.physical(CLOCKS), [(c,) for c in clock_ids])
        last = case_from_row(case).last_sequence if case is not None else 0
        return last, [clock_from_row(r) for _, r in sorted(rows.items())]

    async def next_wait(self) -> float:
        """Seconds until a clock is next owed something, at most ``max_sleep_s``."""
        now = self.clock.now()
        upcoming = await asyncio.to_thread(self._next_action_after, now)
        if upcoming is None:
            return self.max_sleep_s
        return min(max((upcoming - now).total_seconds(), 0.0), self.max_sleep_s)

    def _next_action_after(self, now: datetime) -> datetime | None:
        with self.store.transaction(write=False) as tx:
            live = tx.live(self.projection.name)
            if live is None:
                return None
            found = tx.rows(
                f'SELECT MIN("next_action_at") FROM {tx.q(live.physical(CLOCKS))} '
                'WHERE "next_action_at" > ?',
                (self._timestamp(now),),
            )
        value: Any = found[0][0] if found else None
        if value is None:
            return None
        return value if isinstance(value, datetime) else datetime.fromisoformat(value)

    def _timestamp(self, at: datetime) -> Any:
        """``at`` as the store compares timestamps: SQLite holds UTC ISO text of one width."""
        if self.store.dialect == "sqlite":
            return at.astimezone(UTC).isoformat(timespec="microseconds")
        return at


UPCOMING, OVERDUE, PENDING, MET_STATE = "upcoming", "overdue", "pending_calendar", "met"
CATEGORIES = (OVERDUE, UPCOMING, PENDING, MET_STATE)
"""Where a clock stands for people (`jiedu deadlines`, the HTTP API), as of a moment."""


def category(row: Row, now: datetime) -> str:
    """upcoming, overdue, pending_calendar or met, as of ``now``."""
    status = Status(row["status"])
    if status is Status.PENDING_CALENDAR:
        return PENDING
    if status in MET:
        return MET_STATE
    due: datetime | None = row["due_at"]
    return OVERDUE if status is Status.BREACHED or (due is not None and due <= now) else UPCOMING


def statuses_of(categories: Iterable[str]) -> frozenset[str]:
    """The clock statuses whose clocks may stand in `categories` (a read narrows by these in
    the store, then judges each clock with `category`)."""
    found: set[str] = set()
    for c in categories:
        found |= {
            OVERDUE: {Status.OPEN, Status.BREACHED}, UPCOMING: {Status.OPEN},
            PENDING: {Status.PENDING_CALENDAR}, MET_STATE: set(MET),
        }[c]
    return frozenset(str(s) for s in found)


def clock_summary(store: ReadStore) -> dict[str, dict[str, int]]:
    """Clocks by rule and status, every status listed (synchronous: call it in a thread)."""
    counts: dict[str, dict[str, int]] = {}
    for row in store.select(Deadlines(), CLOCKS):
        by_status = counts.setdefault(row["rule_id"], {str(s): 0 for s in Status})
        by_status[row["status"]] += 1
    return dict(sorted(counts.items()))


def _log_appended(case_id: str, event_ids: Sequence[str]) -> None:
    for event_id in event_ids:
        log.info("deadline event appended", case_id=case_id, event_id=event_id)


async def serve(settings: Settings) -> None:
    """Run the deadline service (with its own projection runner) until SIGTERM or Ctrl-C."""
    await deriving.serve(settings, "jiedu-deadlines", DeadlineService)


if __name__ == "__main__":
    settings = Settings.from_env()
    logs.configure(settings.log_level, fmt=settings.log_format)  # no file: several may run
    bootstrap.tune_gc()
    asyncio.run(serve(settings))
