"""The dashboard's operations panel (运行状况): for the office and the auditors, how far each
projection is behind the log, the incidents they are parked at, and what the intake refused in
the last day; for a department, what was refused of its own systems' messages in the last day
(as the API's `/rejected` narrows it). Read from NATS and the store as `jiedu lag` and
`jiedu incidents` read them; each rejection in the API's row form (`records.rejected_row`)."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, RawStreamMsg

from events import streams
from services.adapters import logs
from services.api import records
from services.api.auth import Principal
from services.api.context import Context
from services.projector import Lag, lags

log = logs.get("jiedu.console")

REJECTIONS_SHOWN = 50
"""The dashboard lists the last day's rejections up to this many (counts cover them all)."""
REJECTIONS_READ = 5000
"""At most this many of the last day's rejections are read for the counts."""
NATS_TIMEOUT_S = 2.0
"""How long the panel waits on NATS for each request before it says what it could not read."""


@dataclass
class Operations:
    lags: list[Lag] = field(default_factory=list)
    incidents: list[Any] = field(default_factory=list)
    rejections: list[dict[str, Any]] = field(default_factory=list)
    rejection_counts: dict[str, int] = field(default_factory=dict)
    rejections_total: int = 0
    problems: list[str] = field(default_factory=list)
    """What could not be read (NATS unreachable, …): said on the page, not hidden."""


async def operations(ctx: Context, who: Principal) -> Operations:
    """The panel as `who` may see it: the district's health for the office and the auditors;
    its own rejections for a department."""
    out = Operations()
    store = ctx.read_store()
    if who.reads_all:
        out.incidents = [i for i in await asyncio.to_thread(store.incidents) if i.open]
    if ctx.nc is None or not ctx.nc.is_connected:
        out.problems.append("NATS 未连接 · not connected to NATS")
        return out
    js = ctx.nc.jetstream(timeout=NATS_TIMEOUT_S)
    if who.reads_all:
        try:
            out.lags = await lags(js, store)
        except Exception as e:  # the panel says what failed; the page still shows the rest
            log.warning("console could not read the lag", error=str(e))
            out.problems.append(f"无法读取投影延迟 · lag unavailable: {type(e).__name__}")
    try:
        await _rejections(js, out, datetime.now(UTC) - timedelta(days=1), who.scope(None))
    except Exception as e:
        log.warning("console could not read REJECTED", error=str(e))
        out.problems.append(f"无法读取拒收记录 · rejections unavailable: {type(e).__name__}")
    return out


async def _rejections(js: Any, out: Operations, since: datetime, department: str | None) -> None:
    """The messages REJECTED stored since `since` (of `department`'s systems, if given):
    counted by reason, the newest listed. An ephemeral consumer starting at `since` says how
    many there are (num_pending), so the read never waits for messages that will not come."""
    sub = await js.pull_subscribe(
        "jiedu.rejected.>", stream=streams.REJECTED,
        config=ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=since,
            ack_policy=AckPolicy.NONE, inactive_threshold=30.0, mem_storage=True,
        ),
    )
    found: list[dict[str, Any]] = []
    reasons: Counter[str] = Counter()
    try:
        pending = min(int((await sub.consumer_info()).num_pending or 0), REJECTIONS_READ)
        read = 0
        while read < pending:
            batch = await sub.fetch(min(pending - read, 500), timeout=5.0)
            read += len(batch)
            for msg in batch:
                row = records.rejected_row(RawStreamMsg(
                    subject=msg.subject, seq=msg.metadata.sequence.stream, data=msg.data,
                    headers=msg.headers, time=msg.metadata.timestamp,
                ))
                if department is None or row["source_department"] == department:
                    reasons[str(row["reason"])] += 1
                    found.append(row)
    finally:
        await sub.unsubscribe()
    out.rejections_total = len(found)
    out.rejection_counts = dict(reasons.most_common())
    out.rejections = found[::-1][:REJECTIONS_SHOWN]
