"""At a glance, whether a running Jiedu is as it should be (`jiedu status` without an event ID).

Each check says what it found and, when something is not right, what to do about it:

- NATS answers, as the read-only auditor (nothing here writes);
- the streams: EVENTS, REJECTED and CHECKPOINTS cannot shrink (`check_streams`), INTAKE is there;
- each projection's lag: caught up, or catching up (its position moves), or stuck (no
  projector runs) or parked at an incident;
- the deadline service: no clock has been owed an event for longer than `OWED_GRACE` (the
  service appends what is owed within a second or so; the only sign of it a reader can see);
- the calendar years in force (那一年的放假安排): this year's is needed now, next year's from
  November on, when the State Council's notice comes out;
- the office key that signs the quarterly checkpoints.

Something `wrong` makes the command exit 1; a `warning` is worth knowing but not wrong yet.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import nats
from nats.aio.client import Client

from domain.calendar import SHANGHAI
from domain.clocks import Status as ClockStatus
from events import streams
from projections import ALL
from projections.deadlines import CALENDAR_YEARS, CLOCKS, Deadlines, default_calendar
from services import audit, bootstrap
from services.adapters import permissions
from services.adapters.config import Settings
from services.adapters.eventlog import check_streams
from services.adapters.identities import MissingIdentity
from services.adapters.readmodels import LIVE_STATE, ReadStore
from services.projector import Lag, lags, store_for

Verdict = Literal["ok", "warning", "wrong"]

OWED_GRACE = timedelta(seconds=60)
"""How long a clock may be owed an event before the deadline service counts as not keeping up:
it appends within about a second, and waits at most 10 s for a backlog in INTAKE."""

MOVING_WITHIN_S = 3.0
"""How long a projection behind the log is watched for its position to move."""

CALENDAR_NOTICE_MONTH = 11
"""From this month on, next year's calendar is expected (the notice comes out in November)."""


@dataclass(frozen=True)
class Check:
    """One thing looked at: what was found and, unless all is well, what to do."""

    name: str
    status: Verdict
    detail: str
    fix: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def examine(settings: Settings, *, now: datetime | None = None) -> list[Check]:
    """Every check, on the data dir's server and store; `now` is the day the calendar check
    judges (the wall clock by default; the others look at the system as it is)."""
    now = now or datetime.now(SHANGHAI)
    up = f"`jiedu up{data_dir_option(settings)}`"
    checks = [await asyncio.to_thread(_office_key, settings, up)]
    url = bootstrap.nats_url(settings)
    try:
        nc = await nats.connect(
            # one retry, then NoServersError (allow_reconnect=False retries forever in nats-py)
            url, name="jiedu-status", connect_timeout=3, max_reconnect_attempts=1,
            reconnect_time_wait=0.2, error_cb=_quiet,
            **bootstrap.identity(url, "jiedu-status", party=permissions.AUDITOR,
                                 credentials=settings.credentials),
        )
    except MissingIdentity:
        return [Check("NATS", "wrong", f"no auditor's identity in {settings.credentials} to "
                      f"connect to {url} with", f"start Jiedu on this data dir: {up} (it makes "
                      "every party's identity)"), *checks]
    except Exception as e:  # any failure to connect is the answer, not a crash
        return [Check("NATS", "wrong", f"no answer at {url} ({type(e).__name__})",
                      f"start it: {up} (or set NATS_URL to your server)"), *checks]
    try:
        checks.insert(0, Check("NATS", "ok", f"{url} answers (nats-server {_version(nc)})"))
        checks.insert(1, await _streams(nc, up))
        store = await asyncio.to_thread(store_for, settings)
        try:
            checks[2:2] = [
                *await _projections(nc, store, up),
                await _deadline_service(nc, store, up),
                await asyncio.to_thread(_calendar, store, now),
            ]
        finally:
            await asyncio.to_thread(store.close)
    finally:
        await nc.close()
    return checks


def data_dir_option(settings: Settings) -> str:
    """` --data-dir DIR` when commands would not find this data dir by themselves."""
    if settings.data_dir == Settings.from_env().data_dir:
        return ""
    return f" --data-dir {settings.data_dir}"


async def _quiet(error: Exception) -> None:
    """nats-py logs each failed try with a traceback; the check says it once."""


def _version(nc: Client) -> str:
    info: dict[str, Any] = getattr(nc, "_server_info", {}) or {}
    return str(info.get("version", "?"))


async def _streams(nc: Client, up: str) -> Check:
    js = nc.jetstream()
    try:
        await check_streams(js)
        intake = await js.stream_info(streams.INTAKE)
    except Exception as e:  # a missing stream, a limit, a refusal: named in the message
        return Check("streams", "wrong", str(e),
                     f"{up} creates missing streams; a stream changed by hand must be restored "
                     "as the operator (README: the log cannot shrink)")
    waiting = int(intake.state.messages)
    return Check("streams", "ok", f"EVENTS, REJECTED and CHECKPOINTS cannot shrink; INTAKE holds "
                 f"{waiting:,} message{'s' if waiting != 1 else ''} not yet decided")


async def _projections(nc: Client, store: ReadStore, up: str) -> list[Check]:
    """One check per projection's live generation: caught up, catching up, stuck or parked."""
    js = nc.jetstream()
    first = {lag.projection: lag for lag in await lags(js, store) if _serving(lag)}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + MOVING_WITHIN_S
    latest = first
    while any(lag.lag and lag.incident is None for lag in latest.values()):
        if loop.time() > deadline or _moved(first, latest):
            break
        await asyncio.sleep(0.2)
        latest = {lag.projection: lag for lag in await lags(js, store) if _serving(lag)}
    out = []
    for p in ALL:
        lag = latest.get(p.name)
        name = f"projection {p.name}"
        if lag is None or lag.generation is None:
            out.append(Check(name, "wrong", "never ran on this store",
                             f"{up} runs every projection"))
        elif lag.incident is not None:
            out.append(Check(name, "wrong", f"parked before the undecodable event {lag.incident:,}"
                             f" ({lag.lag:,} behind)", "see `jiedu incidents`, then decide"))
        elif not lag.lag:
            out.append(Check(name, "ok", f"caught up at {lag.position:,}"))
        elif lag.position > first[p.name].position:
            out.append(Check(name, "ok", f"catching up: at {lag.position:,} of {lag.head:,}"))
        else:
            out.append(Check(
                name, "wrong", f"stuck at {lag.position:,}, {lag.lag:,} behind the log",
                f"is the projector running? {up} runs it; `jiedu lag` shows every generation",
            ))
    return out


def _serving(lag: Lag) -> bool:
    """The generation that serves readers (a projection that never ran has a row of None)."""
    return lag.state in (None, LIVE_STATE)


def _moved(first: dict[str, Lag], latest: dict[str, Lag]) -> bool:
    """Whether every projection behind has moved since the first look."""
    behind = [n for n, lag in latest.items() if lag.lag and lag.incident is None]
    return all(latest[n].position > first[n].position for n in behind if n in first)


async def _deadline_service(nc: Client, store: ReadStore, up: str) -> Check:
    """Whether the clocks get the events they are owed: none owed for longer than `OWED_GRACE`,
    or their number falls while watched (a backlog being worked off), or the service waits,
    as it should, for the intake to decide a backlog first."""
    name = "deadline service"
    owed, clocks = await asyncio.to_thread(_owed, store)
    if owed is None:
        return Check(name, "wrong", "the deadlines projection never ran", f"{up} runs it")
    if not owed:
        return Check(name, "ok", f"no clock owed an event ({clocks:,} clocks)")
    waiting = int((await nc.jetstream().stream_info(streams.INTAKE)).state.messages)
    if waiting:
        return Check(name, "ok", f"{owed:,} clocks owed an event, held while the intake decides "
                     f"{waiting:,} messages first")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + MOVING_WITHIN_S
    now = owed
    while now and now >= owed and loop.time() < deadline:
        await asyncio.sleep(0.25)
        now = (await asyncio.to_thread(_owed, store))[0] or 0
    if now < owed:
        return Check(name, "ok", f"catching up: {now:,} of {clocks:,} clocks owed an event")
    return Check(
        name, "wrong",
        f"{owed:,} of {clocks:,} clocks owed an event for over "
        f"{int(OWED_GRACE.total_seconds())} s, none appended while watched",
        f"is the deadline service running? {up} runs it (or `python -m services.deadlines`)",
    )


def _owed(store: ReadStore) -> tuple[int | None, int]:
    """How many clocks have been owed an event for longer than `OWED_GRACE` (None: the
    projection never ran), and how many clocks there are (synchronous)."""
    before = datetime.now(UTC) - OWED_GRACE
    with store.transaction(write=False) as tx:
        live = tx.live(Deadlines.name)
        if live is None:
            return None, 0
        clocks = tx.q(live.physical(CLOCKS))
        at: Any = _sqlite_time(before) if store.dialect == "sqlite" else before
        owed = tx.rows(f'SELECT COUNT(*) FROM {clocks} WHERE "next_action_at" <= ?', (at,))
        total = tx.rows(f"SELECT COUNT(*) FROM {clocks}", ())
    return int(owed[0][0]), int(total[0][0])


def _sqlite_time(at: datetime) -> str:
    """`at` as the SQLite store compares timestamps (UTC ISO text of one width)."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def _calendar(store: ReadStore, now: datetime) -> Check:
    """The years the clocks can count with: this year's is needed, next year's from November."""
    rows = store.select(Deadlines(), CALENDAR_YEARS)
    years = sorted({*default_calendar().known_years(), *(int(r["year"]) for r in rows)})
    this, following = now.year, now.year + 1
    with store.transaction(write=False) as tx:
        live = tx.live(Deadlines.name)
        held = int(tx.rows(
            f'SELECT COUNT(*) FROM {tx.q(live.physical(CLOCKS))} WHERE "status" = ?',
            (str(ClockStatus.PENDING_CALENDAR),),
        )[0][0]) if live is not None else 0
    shown = f"years in force: {_ranges(years)}"
    fix = ("confirm the State Council's notice for {year}: `jiedu calendar confirm "
           "deploy/calendar/{year}.json --by NAME` (deploy/calendar/README.md)")
    if this not in years:
        return Check("calendar", "wrong", f"{shown}; {this} is missing, {held:,} clocks held "
                     "pending it", fix.format(year=this))
    if following not in years and now.month >= CALENDAR_NOTICE_MONTH:
        return Check("calendar", "warning", f"{shown}; {following} is missing (its notice "
                     f"comes out in November), {held:,} clocks held pending",
                     fix.format(year=following))
    if held:
        return Check("calendar", "warning", f"{shown}; {held:,} clocks held pending a year",
                     "`jiedu deadlines --status pending_calendar` names the years they need")
    return Check("calendar", "ok", shown)


def _ranges(years: list[int]) -> str:
    """2019, 2021–2026: consecutive years as ranges."""
    spans: list[list[int]] = []
    for y in years:
        if spans and y == spans[-1][1] + 1:
            spans[-1][1] = y
        else:
            spans.append([y, y])
    return ", ".join(str(a) if a == b else f"{a}–{b}" for a, b in spans) or "none"


def _office_key(settings: Settings, up: str) -> Check:
    private, _ = audit.key_paths(settings.data_dir)
    if private.exists():
        return Check("office key", "ok", f"{private} signs the quarterly checkpoints")
    return Check("office key", "wrong", f"none in {private.parent}: quarterly checkpoints are "
                 "not signed", f"`jiedu keys init{data_dir_option(settings)}`, then restart {up}")
