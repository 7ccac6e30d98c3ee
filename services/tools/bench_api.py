"""`jiedu bench --parts api`: the HTTP API's speed, each figure beside a baseline of the same run.

- reads: p50/p99 of the main read endpoints (cases, a case's timeline, findings, deadlines,
  departments; a department's own cases) and the public quarterly report, each requested at a
  fixed rate (100/s: open loop, a request starts on schedule whether or not the last one
  answered) against the demo quarter, with the API served as `jiedu up` serves it (uvicorn in
  a process of its own); baseline: /healthz at the same rate, the HTTP stack's own floor.
- intake: events decided per second through `POST /api/v1/events` (each case's events posted
  in order, as batches of consecutive events of one organ; 32 cases at once; each request
  answered once the intake decided), beside the NATS intake (`publish_async` of another copy
  of the demo quarter to INTAKE until every message is decided), on the same server and
  intake. The monitor's messages (OP-5) go over NATS in both, as deployed: in the HTTP run,
  each in its case's order, answered before the case goes on.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson
from nats.aio.client import Client

from events import streams
from events.roles import MONITOR
from projections import ALL
from services import bootstrap
from services.adapters.config import Settings
from services.adapters.eventlog import EventLog, ensure_streams
from services.adapters.natsserver import free_port
from services.adapters.readmodels import open_store
from services.adapters.tokens import Tokens
from services.api.process import ApiProcess
from services.intake import IntakeService
from services.projector import rebuild
from services.tools import demo
from services.tools.bench import Server, Stopwatch, _distribution, iter_payloads, load

Say = Callable[[str], None]

READ_RATE = 100.0
READ_SECONDS = 5.0
HTTP_BATCH = 100
MONITOR_RUN = "(monitor)"
"""Marks the monitor's messages among a case's runs: sent over NATS, never HTTP."""
IN_FLIGHT = 32
"""Requests in flight: cases posted at once."""


def _source(subject: str) -> tuple[str, str]:
    tokens = subject.split(".")
    return tokens[2], tokens[3]


async def _drained(js: Any) -> None:
    while (await js.stream_info(streams.INTAKE)).state.messages:  # noqa: ASYNC110 (polls the server)
        await asyncio.sleep(0.02)


async def _nats_intake(nc: Any, items: Sequence[tuple[str, bytes]]) -> dict[str, Any]:
    js = nc.jetstream()
    watch = Stopwatch()
    futures = [await js.publish_async(subject, body) for subject, body in items]
    await asyncio.gather(*futures)
    await _drained(js)
    watch.stop()
    return {"events": len(items), "seconds": round(watch.seconds, 2),
            "events_per_s": round(len(items) / watch.seconds, 1)}


def _by_case(items: Sequence[tuple[str, bytes]]) -> list[list[tuple[str, list[bytes]]]]:
    """Each case's events in log order, as the requests that post them: consecutive events
    of one organ, at most HTTP_BATCH each. A case's requests go one after another (its
    events keep their order); different cases go at once, as independent systems would."""
    cases: dict[str, list[tuple[str, bytes]]] = {}
    for subject, body in items:
        cases.setdefault(subject.split(".")[4], []).append((subject, body))
    out = []
    for events in cases.values():
        runs: list[tuple[str, list[bytes]]] = []
        for department, group in itertools.groupby(
            events, key=lambda i: MONITOR_RUN if _source(i[0]) == MONITOR else _source(i[0])[0]
        ):
            bodies = [body for _, body in group]
            runs += [(department, bodies[i:i + HTTP_BATCH])
                     for i in range(0, len(bodies), HTTP_BATCH)]
        out.append(runs)
    return out


async def _http_intake(
    http: httpx.AsyncClient, tokens: Tokens, items: Sequence[tuple[str, bytes]], nc: Client
) -> dict[str, Any]:
    cases = _by_case(items)
    issued: dict[str, str] = {}
    for runs in cases:
        for department, _ in runs:
            if department not in issued and department != MONITOR_RUN:
                issued[department] = tokens.issue(department)[1]
    statuses: dict[str, int] = {}
    queue = list(reversed(cases))
    log = EventLog(nc)

    async def worker() -> None:
        while queue:
            for department, bodies in queue.pop():
                if department == MONITOR_RUN:  # the monitor's feed speaks NATS, as deployed
                    for body in bodies:
                        case = orjson.loads(body)["case_id"]
                        await log.submit(*MONITOR, case, body, timeout=120)
                    continue
                response = await http.post(
                    "/api/v1/events", content=b"[" + b",".join(bodies) + b"]",
                    headers={"Authorization": f"Bearer {issued[department]}"},
                    params={"wait": 120}, timeout=180,
                )
                code = str(response.status_code)
                statuses[code] = statuses.get(code, 0) + 1

    watch = Stopwatch()
    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    await _drained(nc.jetstream())
    watch.stop()
    return {"events": len(items), "requests": sum(statuses.values()), "cases": len(cases),
            "seconds": round(watch.seconds, 2), "events_per_s": round(len(items) / watch.seconds, 1),
            "statuses": statuses}


async def _at_rate(
    http: httpx.AsyncClient, path: str, headers: dict[str, str], rate: float, seconds: float
) -> dict[str, Any]:
    """Open loop: request `path` every 1/rate s for `seconds`; latency of each, in ms."""
    count = int(rate * seconds)
    millis: list[float] = []
    errors: dict[str, int] = {}

    async def one() -> None:
        started = time.perf_counter()
        try:
            response = await http.get(path, headers=headers, timeout=30)
        except httpx.HTTPError as e:  # counted, not timed: the figure is of answers
            errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
            return
        millis.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            errors[str(response.status_code)] = errors.get(str(response.status_code), 0) + 1

    loop = asyncio.get_running_loop()
    t0 = loop.time()
    tasks = []
    for i in range(count):
        delay = t0 + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    return {"path": path, "requests": count, "errors": errors, **_distribution(millis)}


async def _ready(http: httpx.AsyncClient, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if (await http.get("/readyz", timeout=5)).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.2)
    raise TimeoutError("the API did not become ready")


async def api_part(
    workdir: Path, *, rate: float = READ_RATE,
    seconds: float = READ_SECONDS, say: Say = lambda _: None,
) -> dict[str, Any]:
    server = Server(workdir)
    async with server as nc:
        js = nc.jetstream()
        settings = Settings(
            data_dir=workdir / "api-data", nats_url=server.url, log_level="error",
            credentials_dir=server.credentials.directory,
        )
        await ensure_streams(js, partitions=settings.partitions)
        intake = IntakeService(nc, bootstrap.organs(settings), settings)
        await intake.start()
        process: ApiProcess | None = None
        try:
            say("api: the demo quarter through the intake, then every projection into SQLite")
            for start in range(0, len(quarter := demo.generate()), 1000):
                futures = [await js.publish_async(m.subject, m.encode())
                           for m in quarter[start:start + 1000]]
                await asyncio.gather(*futures)
            await _drained(js)
            store = await asyncio.to_thread(open_store, None, settings.data_dir)
            try:
                for projection in ALL:
                    await rebuild(js, store, projection)
            finally:
                await asyncio.to_thread(store.close)
            port = free_port()
            process = ApiProcess(settings, server.url, "127.0.0.1", port)
            await process.start()
            tokens = Tokens(settings.credentials)
            office = {"Authorization": f"Bearer {tokens.issue('gov_office')[1]}"}
            drc = {"Authorization": f"Bearer {tokens.issue('drc')[1]}"}
            limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}", limits=limits
            ) as http:
                await _ready(http)
                published = await http.post("/api/v1/reports/quarterly/2026Q3", headers=office,
                                             timeout=120)
                published.raise_for_status()
                case_id = orjson.loads(
                    (await http.get("/api/v1/cases?limit=1", headers=office)).content
                )["items"][0]["case_id"]
                reads = [  # pages of the default size (50 rows)
                    ("cases", "/api/v1/cases", office),
                    ("case timeline", f"/api/v1/cases/{case_id}", office),
                    ("findings", "/api/v1/findings", office),
                    ("deadlines", "/api/v1/deadlines", office),
                    ("departments", "/api/v1/departments", office),
                    ("a department's cases", "/api/v1/cases", drc),
                    ("public report (JSON)", "/api/v1/reports/quarterly/2026Q3", {}),
                ]
                say(f"api: /healthz then {len(reads)} read endpoints at {rate:g}/s, "
                    f"{seconds:g} s each")
                before = load()
                baseline = await _at_rate(http, "/healthz", {}, rate, seconds)
                figures = {}
                for name, path, headers in reads:
                    figures[name] = await _at_rate(http, path, headers, rate, seconds)
                read_load = {"start": before, "end": load()}

                say("api: intake, a demo quarter over NATS, then another copy over HTTP")
                quarter_size = len(demo.generate())
                copies = list(iter_payloads(2 * quarter_size))
                half = quarter_size  # whole copies: no case spans the two
                before = load()
                nats = await _nats_intake(nc, copies[:half])
                over_http = await _http_intake(http, tokens, copies[half:], nc)
                intake_load = {"start": before, "end": load()}
        finally:
            if process is not None:
                await process.stop()
            await intake.stop()
    worst = max(v["p99"] or 0.0 for v in figures.values())
    return {
        "rate_per_s": rate,
        "seconds_each": seconds,
        "baseline_healthz": baseline,
        "reads": figures,
        "read_p99_ms": worst,
        "reads_load": read_load,
        "intake": {
            "nats": nats,
            "http": over_http,
            "ratio": round(over_http["events_per_s"] / nats["events_per_s"], 3),
            "http_batch_max": HTTP_BATCH,
            "in_flight": IN_FLIGHT,
            "load": intake_load,
        },
    }
