"""`jiedu bench`: how fast the log, the intake and the projections are, each figure beside a
baseline measured in the same run on the same machine.

- ingest: events accepted and appended per second end to end through the intake (publish to
  INTAKE → outcome), vs raw nats-py `publish_async` of the same payloads to a plain stream;
- latency: intake publish → visible in the case summary, p50/p99, at a fixed 500 events/s;
- rebuild: events per second through the case summary into SQLite (and PostgreSQL when
  `DATABASE_URL`/`--postgres` names one), vs a raw ordered consumer that only decodes;
- peak memory (RSS) of the rebuild.

The payloads are demo quarters (`services.demo`), copied under fresh case and event IDs until
there are N, in occurred-at order. Each part runs on its own nats-server with a fresh store.
"""

from __future__ import annotations

import asyncio
import os
import platform
import resource
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import orjson
from nats.aio.client import Client
from nats.js.api import StorageType, StreamConfig

from events import streams
from services import bootstrap, demo, logs
from services.config import Settings
from services.eventlog import ensure_streams
from services.intake import IntakeService
from services.natsserver import NatsServer, free_port

Payload = tuple[str, bytes]
"""(intake subject, body)"""


def payloads(n: int) -> list[Payload]:
    """N realistic intake messages: demo quarters copied under fresh IDs, each copy in
    occurred-at order (so no message waits for a prerequisite and the figure is throughput)."""
    quarter = sorted(demo.generate(), key=lambda m: m.body["occurred_at"])
    out: list[Payload] = []
    copy = 0
    while len(out) < n:
        for m in quarter:
            body = dict(m.body)
            body["case_id"] = case = f"{m.case_id}-{copy}"
            body["event_id"] = f"{body['event_id']}-{copy}"
            if body.get("causation_id"):
                body["causation_id"] = f"{body['causation_id']}-{copy}"
            out.append(
                (streams.intake_subject(m.source_department, m.source_system, case),
                 orjson.dumps(body))
            )
            if len(out) == n:
                break
        copy += 1
    return out


class Server:
    """A nats-server of its own for one part of the benchmark."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="jiedu-bench-"))
        self.server = NatsServer(self.dir / "nats", free_port())

    async def __aenter__(self) -> Client:
        self.server.start()
        self.nc = await nats.connect(self.server.url)
        return self.nc

    async def __aexit__(self, *exc: object) -> None:
        await self.nc.close()
        self.server.stop()


async def _publish_all(nc: Client, items: list[Payload]) -> float:
    js = nc.jetstream()
    started = time.perf_counter()
    futures = [await js.publish_async(subject, body) for subject, body in items]
    await asyncio.gather(*futures)
    return time.perf_counter() - started


async def raw_baseline(items: list[Payload]) -> float:
    """Messages per second of nats-py publish_async into a plain file stream."""
    async with Server() as nc:
        await nc.jetstream().add_stream(
            StreamConfig(name="PLAIN", subjects=["jiedu.intake.>"], storage=StorageType.FILE)
        )
        return len(items) / await _publish_all(nc, items)


async def ingest(items: list[Payload], settings: Settings) -> tuple[float, int]:
    """Events per second from the first publish to INTAKE until every one is decided."""
    async with Server() as nc:
        js = nc.jetstream()
        await ensure_streams(js, partitions=settings.partitions)
        service = IntakeService(nc, bootstrap.organs(settings), settings)
        await service.start()
        try:
            started = time.perf_counter()
            await _publish_all(nc, items)
            while (await js.stream_info(streams.INTAKE)).state.messages:  # noqa: ASYNC110 (polls the server)
                await asyncio.sleep(0.02)
            elapsed = time.perf_counter() - started
            appended = int((await js.stream_info(streams.EVENTS)).state.messages)
        finally:
            await service.stop()
        return len(items) / elapsed, appended


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
    }


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def chunks(items: list[Payload], size: int) -> Iterator[list[Payload]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


async def run(n: int, *, postgres_url: str | None = None) -> dict[str, Any]:
    logs.configure("error")
    settings = Settings(log_level="error")
    items = payloads(n)
    baseline = await raw_baseline(items)
    per_s, appended = await ingest(items, settings)
    return {
        "machine": machine(),
        "n": n,
        "ingest": {
            "events_per_s": round(per_s, 1),
            "baseline_per_s": round(baseline, 1),
            "ratio": round(per_s / baseline, 3),
            "appended_with_findings": appended,
        },
    }


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
