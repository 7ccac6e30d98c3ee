"""Operations: projection lag and incidents, the chain head with signed checkpoints and the last
verify (for the office and the auditors); and at the root, for the operator's monitoring,
/healthz (the process answers), /readyz (NATS reachable, the streams as Jiedu defines them,
projections caught up within a bound) and /metrics (Prometheus text)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import Response
from nats.js.errors import NotFoundError
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from events import streams
from projections.audit import HEAD, HEAD_KEY, AuditTrail
from services import audit
from services.adapters.eventlog import LogError, check_streams
from services.api.auth import Overseer
from services.api.context import Context, context_of
from services.api.intake import OutcomeListener
from services.api.responses import JieduJSON, reply
from services.deadlines import CATEGORIES, category
from services.projector import Lag, lags

router = APIRouter(tags=["operations"])
probes = APIRouter(tags=["probes"])
Ctx = Annotated[Context, Depends(context_of)]

READY_LAG_ENV = "JIEDU_READY_LAG"
READY_LAG = 10_000
"""Events a projection may be behind the log while /readyz still says ready."""
NATS_TIMEOUT_S = 2.0


def _js(ctx: Context) -> Any:
    if ctx.nc is None or not ctx.nc.is_connected:
        raise HTTPException(503, "not connected to NATS")
    return ctx.nc.jetstream(timeout=NATS_TIMEOUT_S)


async def projection_lags(ctx: Context) -> list[Lag]:
    return await lags(_js(ctx), ctx.read_store())


@router.get("/lag", response_class=JieduJSON)
async def get_lag(ctx: Ctx, who: Overseer) -> JieduJSON:
    """Per projection: its generations, position, the log head and the lag (as `jiedu lag`)."""
    return reply([lag.as_dict() for lag in await projection_lags(ctx)])


@router.get("/incidents", response_class=JieduJSON)
async def get_incidents(ctx: Ctx, who: Overseer) -> JieduJSON:
    """Undecodable events the projections are parked before, and the operators' decisions."""
    found = await ctx.read(ctx.read_store().incidents)
    return reply([i.as_dict() for i in found])


@router.get("/chain", response_class=JieduJSON)
async def get_chain(ctx: Ctx, who: Overseer) -> JieduJSON:
    """The chain head as the audit trail holds it, the signed checkpoints, and the last
    `jiedu audit verify` run on this data dir (null if none)."""
    heads = await ctx.read(ctx.read_store().select, AuditTrail(), HEAD, {"name": HEAD_KEY})
    checkpoints = await audit.read_checkpoints(_js(ctx))
    return reply({
        "head": {"seq": heads[0]["seq"], "link": heads[0]["link"]} if heads else None,
        "checkpoints": [c.as_dict() for c in checkpoints],
        "last_verify": await ctx.read(audit.last_verify, ctx.settings.data_dir),
    })


@probes.get("/healthz", response_class=JieduJSON)
async def healthz() -> JieduJSON:
    """The process answers (liveness); says nothing of NATS or the read models."""
    return reply({"status": "ok"})


def ready_lag() -> int:
    return int(os.environ.get(READY_LAG_ENV) or READY_LAG)


@probes.get("/readyz", response_class=JieduJSON)
async def readyz(ctx: Ctx) -> JieduJSON:
    """Ready when NATS answers, the log's streams are as Jiedu defines them, and every
    projection is within JIEDU_READY_LAG events of the log head and parked at no incident;
    503 naming what is not."""
    problems: list[str] = []
    checks: dict[str, Any] = {"nats": False, "streams": False, "projections": None}
    if ctx.nc is None or not ctx.nc.is_connected:
        problems.append("NATS: not connected")
    else:
        checks["nats"] = True
        js = ctx.nc.jetstream(timeout=NATS_TIMEOUT_S)
        try:
            await check_streams(js)
            checks["streams"] = True
            found = await lags(js, ctx.read_store())
            bound = ready_lag()
            live = [lag for lag in found if lag.state in (None, "live")]
            checks["projections"] = {lag.projection: lag.lag for lag in live}
            problems += [
                f"projection {lag.projection}: {lag.lag} events behind (bound {bound})"
                for lag in live if lag.lag > bound
            ]
            problems += [
                f"projection {lag.projection}: parked at incident {lag.incident}"
                for lag in live if lag.incident is not None
            ]
        except (LogError, NotFoundError, TimeoutError) as e:
            problems.append(f"streams: {e}")
    body = {"status": "ready" if not problems else "not_ready", "checks": checks,
            "problems": problems}
    return reply(body, 200 if not problems else 503)


class _Families(Collector):
    """A scrape's metric families, gathered beforehand (some need NATS, some the store)."""

    def __init__(self, families: list[Any]) -> None:
        self.families = families

    def collect(self) -> Any:
        return iter(self.families)


async def _log_families(ctx: Context) -> list[Any]:
    js = _js(ctx)
    events = await js.stream_info(streams.EVENTS)
    rejected = await js.stream_info(streams.REJECTED, subjects_filter="jiedu.rejected.>")
    by_reason: dict[str, int] = {}
    for subject, n in (rejected.state.subjects or {}).items():
        reason = subject.split(".")[2]
        by_reason[reason] = by_reason.get(reason, 0) + int(n)
    log = GaugeMetricFamily("jiedu_log_events", "Events in the log (EVENTS)")
    log.add_metric([], float(events.state.messages))
    refused = GaugeMetricFamily(
        "jiedu_rejected_messages", "Intake messages refused, in REJECTED, by reason", labels=["reason"]
    )
    for reason, n in sorted(by_reason.items()):
        refused.add_metric([reason], float(n))
    return [log, refused]


def _store_families(ctx: Context, found: list[Lag]) -> list[Any]:
    from projections.deadlines import CLOCKS, Deadlines

    position = GaugeMetricFamily(
        "jiedu_projection_position", "Last log sequence a projection's live generation took in",
        labels=["projection"],
    )
    lag = GaugeMetricFamily(
        "jiedu_projection_lag", "Events a projection's live generation is behind the log head",
        labels=["projection"],
    )
    for item in found:
        if item.state in (None, "live"):
            position.add_metric([item.projection], float(item.position))
            lag.add_metric([item.projection], float(item.lag))
    now = datetime.now(UTC)
    counts = dict.fromkeys(CATEGORIES, 0)
    for row in ctx.read_store().select(Deadlines(), CLOCKS):
        counts[category(row, now)] += 1
    clocks = GaugeMetricFamily(
        "jiedu_clocks", "Deadline clocks by where they stand now", labels=["category"]
    )
    for name, n in counts.items():
        clocks.add_metric([name], float(n))
    incidents = ctx.read_store().incidents()
    parked = GaugeMetricFamily("jiedu_incidents", "Incidents by state", labels=["state"])
    parked.add_metric(["open"], float(sum(1 for i in incidents if i.open)))
    parked.add_metric(["skipped"], float(sum(1 for i in incidents if not i.open)))
    return [position, lag, clocks, parked]


def _outcome_families(listener: OutcomeListener | None) -> list[Any]:
    heard = CounterMetricFamily(
        "jiedu_intake_outcomes",
        "Intake outcomes heard by this API process since it started (every source, NATS too)",
        labels=["status", "reason"],
    )
    for (status, reason), n in sorted((listener.counts if listener else {}).items()):
        heard.add_metric([status, reason], float(n))
    return [heard]


@probes.get("/metrics", response_class=Response)
async def metrics(ctx: Ctx) -> Response:
    """Prometheus text: log size, rejections by reason, intake outcomes heard, HTTP intake
    decision latency, projection positions and lag, clocks by category, incidents."""
    families: list[Any] = []
    try:
        families += await _log_families(ctx)
        found = await lags(_js(ctx), ctx.read_store())
    except HTTPException:
        found = []
    families += await ctx.read(_store_families, ctx, found)
    found_listener = ctx.extras.get("outcomes")
    listener = found_listener if isinstance(found_listener, OutcomeListener) else None
    families += _outcome_families(listener)
    up = GaugeMetricFamily("jiedu_nats_connected", "Whether the API is connected to NATS")
    up.add_metric([], 1.0 if ctx.nc is not None and ctx.nc.is_connected else 0.0)
    families.append(up)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    if listener is not None:
        registry.register(listener.decided)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
