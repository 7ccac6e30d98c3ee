"""`jiedu bench --cluster`: the loopback cluster (three nodes, streams at R3) beside a single
node, in the same run, both with `sync_interval: always`, measured the same way:

- ingest: events per second from the first publish to INTAKE until the intake (in this
  process) has decided every one;
- latency: publish at a fixed rate, time from just before each publish until the intake
  announces the event accepted (p50, p99);
- rebuild: the case summary rebuilt from the ingested log into a fresh SQLite store, in a
  child process (`bench._rebuild`);
- failover (cluster only): under a steady publish, `kill -9` of the node leading EVENTS, and
  the time until EVENTS accepts the next event; the published events are then counted in
  EVENTS (lost, doubled).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from events import streams
from events.organs import load_organs
from services import bootstrap
from services.adapters import logs
from services.adapters.cluster import LocalCluster, jetstream_ready
from services.adapters.config import Settings
from services.adapters.eventlog import ensure_streams
from services.adapters.identities import Credentials
from services.adapters.permissions import Permissions
from services.cluster import REPLICAS, events_head, leader, next_accepted
from services.intake import IntakeService
from services.tools import bench


@contextlib.asynccontextmanager
async def single(workdir: Path) -> AsyncIterator[tuple[Client, str, Path, Any]]:
    """One node as `jiedu up` runs it (sync_interval: always), streams at R1."""
    server = bench.Server(workdir, sync_always=True)
    async with server as nc:
        await ensure_streams(nc.jetstream(), partitions=1)
        yield nc, server.url, server.credentials.directory, None


@contextlib.asynccontextmanager
async def cluster(workdir: Path) -> AsyncIterator[tuple[Client, str, Path, Any]]:
    """Three loopback nodes (deploy/cluster/ layout), streams at R3."""
    # the parties of the single node's benchmark, the bench's own hand among them
    credentials = Credentials(workdir / "creds", extra={bench.BENCH: Permissions((">",), (">",))})
    nodes = LocalCluster(Path(tempfile.mkdtemp(prefix="cluster-", dir=workdir)), credentials,
                         load_organs())
    await asyncio.to_thread(nodes.start)
    try:
        await jetstream_ready(nodes.url, credentials)
        nc = await bootstrap.connect(
            nodes.url, "jiedu-bench", party=bench.BENCH, credentials=credentials.directory
        )
        try:
            await ensure_streams(nc.jetstream(), partitions=1, replicas=REPLICAS)
            yield nc, nodes.url, credentials.directory, nodes
        finally:
            await nc.close()
    finally:
        await asyncio.to_thread(nodes.stop)


async def _ingest(nc: Client, items: Sequence[bench.Payload], settings: Settings) -> float:
    intake = IntakeService(nc, bootstrap.organs(settings), settings)
    await intake.start()
    try:
        started = time.perf_counter()
        await bench._publish_all(nc, items)
        await _drained(nc, timeout_s=600)
        return len(items) / (time.perf_counter() - started)
    finally:
        await intake.stop()


async def _drained(nc: Client, timeout_s: float) -> None:
    """Wait until the intake has decided everything in INTAKE; else say what is left."""
    js = nc.jetstream(timeout=5)
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(Exception):  # a node being elected leader answers late
            if not (await js.stream_info(streams.INTAKE)).state.messages:
                return
        if time.monotonic() > deadline:
            left = await js.stream_info(streams.INTAKE)
            raise TimeoutError(f"benchmark: INTAKE not decided in {timeout_s} s: {left.state}")
        await asyncio.sleep(0.05)


async def _latency(
    nc: Client, items: Sequence[bench.Payload], settings: Settings, rate: float
) -> dict[str, Any]:
    intake = IntakeService(nc, bootstrap.organs(settings), settings)
    decided: dict[str, float] = {}
    """Event ID → when its outcome was announced (any: all are waited for)."""
    accepted: set[str] = set()

    async def on_outcomes(msg: Msg) -> None:
        now = time.monotonic()
        for o in orjson.loads(msg.data):
            decided.setdefault(o["event_id"], now)
            if o["status"] == "accepted":
                accepted.add(o["event_id"])

    sub = await nc.subscribe(streams.ALL_OUTCOMES, cb=on_outcomes)
    await intake.start()
    sent: dict[str, float] = {}
    try:
        js = nc.jetstream()
        acks = []
        start = time.monotonic()
        for i, (subject, body) in enumerate(items):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            sent[str(orjson.loads(body)["event_id"])] = time.monotonic()
            acks.append(await js.publish_async(subject, body))
        await asyncio.gather(*acks)
        await bench._until(lambda: len(decided) >= len(sent), 120)
    finally:
        await sub.unsubscribe()
        await intake.stop()
    millis = [(decided[e] - t) * 1000 for e, t in sent.items() if e in accepted]
    return {
        **bench._distribution(millis), "rate_per_s": rate, "measured": len(millis),
        "not_accepted": len(sent) - len(millis),
    }


async def _event_ids(nc: Client) -> Counter[str]:
    js = nc.jetstream()
    sub = await js.pull_subscribe(
        ">", stream=streams.EVENTS,
        config=ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL,
                              inactive_threshold=10.0),
    )
    pending = (await sub.consumer_info()).num_pending or 0
    ids: Counter[str] = Counter()
    got = 0
    while got < pending:
        msgs = await sub.fetch(min(1000, pending - got), timeout=10)
        got += len(msgs)
        ids.update(str(orjson.loads(m.data)["event_id"]) for m in msgs)
    await sub.unsubscribe()
    return ids


async def _failover(
    nc: Client, nodes: LocalCluster, items: Sequence[bench.Payload], settings: Settings,
    rate: float,
) -> dict[str, Any]:
    """Publish steadily (each message retried until acknowledged, as a source does), kill -9
    the EVENTS leader a third of the way in, time the log's next accepted event."""
    js = nc.jetstream(timeout=2)
    intake = IntakeService(nc, bootstrap.organs(settings), settings)
    await intake.start()
    acknowledged: list[str] = []
    try:
        async def publish() -> None:
            for subject, body in items:
                while True:
                    try:
                        await js.publish(subject, body)
                        break
                    except Exception:  # its node went: send it again
                        await asyncio.sleep(0.1)
                acknowledged.append(str(orjson.loads(body)["event_id"]))
                await asyncio.sleep(1 / rate)

        publishing = asyncio.create_task(publish())
        await bench._until(lambda: len(acknowledged) > len(items) // 3, 120)
        victim = await leader(js, streams.EVENTS)
        assert victim is not None
        before = await events_head(js) or 0
        await asyncio.to_thread(nodes.kill, victim)
        recovered = await next_accepted(js, before)
        await asyncio.wait_for(publishing, 600)
        await asyncio.to_thread(nodes.restart, victim)
        await _drained(nc, timeout_s=180)
    finally:
        await intake.stop()
    stored = await _event_ids(nc)
    sent = set(acknowledged)
    refused = int((await nc.jetstream().stream_info(streams.REJECTED)).state.messages)
    return {
        "killed": victim,
        "to_next_accepted_s": round(recovered, 3),
        "published": len(acknowledged),
        "lost": len(sent - set(stored)),
        "rejected": refused,
        "doubled": sum(1 for e in sent if stored[e] > 1),
        "rate_per_s": rate,
    }


def _renamed(items: Sequence[bench.Payload], tag: str) -> list[bench.Payload]:
    """The same messages under other case and event IDs: a part on a fresh log opens its own
    cases (a slice from the middle of the payloads would name cases opened elsewhere)."""
    out: list[bench.Payload] = []
    for subject, raw in items:
        body = orjson.loads(raw)
        for key in ("case_id", "event_id", "causation_id"):
            if body.get(key):
                body[key] = f"{body[key]}-{tag}"
        head, _, _ = subject.rpartition(".")
        out.append((f"{head}.{body['case_id']}", orjson.dumps(body)))
    return out


async def run(n: int, *, latency_events: int, rate: float, say: bench.Say) -> dict[str, Any]:
    """Each measure on the single node, then on the cluster, in this run."""
    settings = Settings(log_level="error")
    workdir = Path(tempfile.mkdtemp(prefix="jiedu-bench-cluster-"))
    logs.configure("error")
    ingest_items = bench.payloads(n)
    latency_items = _renamed(bench.payloads(latency_events), "l")
    failover_items = _renamed(bench.payloads(n), "f")
    result: dict[str, Any] = {"n": n, "load": {"start": bench.load()}, "sync_interval": "always"}
    try:
        await _measure(result, workdir, settings, ingest_items, latency_items, failover_items,
                       rate=rate, say=say)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result["ratio"] = {
        "ingest": bench._ratio(result["cluster"]["ingest_per_s"], result["single"]["ingest_per_s"]),
        "rebuild": bench._ratio(
            result["cluster"]["rebuild_per_s"], result["single"]["rebuild_per_s"]
        ),
    }
    result["load"]["end"] = bench.load()
    return result


async def _measure(
    result: dict[str, Any],
    workdir: Path,
    settings: Settings,
    ingest_items: Sequence[bench.Payload],
    latency_items: Sequence[bench.Payload],
    failover_items: Sequence[bench.Payload],
    *,
    rate: float,
    say: bench.Say,
) -> None:
    n, latency_events = len(ingest_items), len(latency_items)
    for name, setup in (("single", single), ("cluster", cluster)):
        figures: dict[str, Any] = {}
        say(f"{name}: ingest {n} events")
        async with setup(workdir) as (nc, url, creds, _):
            figures["ingest_per_s"] = round(await _ingest(nc, ingest_items, settings), 1)
            say(f"{name}: rebuild the case summary into SQLite")
            rebuilt = await bench.in_child(
                bench._rebuild_child, url, str(creds), None,
                tempfile.mkdtemp(prefix="rebuild-", dir=workdir),
            )
            figures["rebuild_per_s"] = rebuilt["events_per_s"]
        say(f"{name}: latency, {latency_events} events at {rate:g}/s")
        async with setup(workdir) as (nc, _, _, _):
            figures["latency_ms"] = await _latency(nc, latency_items, settings, rate)
        if name == "cluster":
            say("cluster: kill -9 of the EVENTS leader under load")
            async with setup(workdir) as (nc, _, _, nodes):
                figures["failover"] = await _failover(
                    nc, nodes, failover_items, settings, min(rate, 200.0)
                )
        figures["load"] = bench.load()
        result[name] = figures
