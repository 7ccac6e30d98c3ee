"""Reading Jiedu's streams back in tests, the way an operator or auditor would."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from nats.aio.client import Client
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from events import streams
from events.catalogue import SYSTEM_TYPES


async def publish(
    nc: Client, event: dict[str, Any] | bytes, *, source: str | None = None, case: str | None = None
) -> int:
    """Publish to INTAKE as a source would; returns the intake sequence."""
    raw = event if isinstance(event, bytes) else orjson.dumps(event)
    meta = event if isinstance(event, dict) else {}
    department, _, system = (source or f"{meta['department']}/{meta['source_system']}").partition(
        "/"
    )
    ack = await nc.jetstream().publish(
        streams.intake_subject(department, system, case or meta["case_id"]), raw
    )
    return int(ack.seq)


async def stored(nc: Client, stream: str, subject: str = ">") -> list[Any]:
    """Every message of a stream, in order, as nats-py messages."""
    js = nc.jetstream()
    info = await js.stream_info(stream)
    if info.state.messages == 0:
        return []
    sub = await js.pull_subscribe(
        subject,
        stream=stream,
        config=ConsumerConfig(
            ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL, inactive_threshold=5.0
        ),
    )
    pending = (await sub.consumer_info()).num_pending
    out: list[Any] = []
    while len(out) < pending:
        out.extend(await sub.fetch(min(1000, pending - len(out)), timeout=5))
    await sub.unsubscribe()
    return out


async def drained(nc: Client, timeout: float = 30.0) -> None:
    """Wait until the intake has acknowledged everything in INTAKE."""
    js = nc.jetstream()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        try:
            if (await js.stream_info(streams.INTAKE)).state.messages == 0:
                return
        except NatsTimeout:  # a server busy with a backlog answers late: ask again
            continue
        await asyncio.sleep(0.05)
    raise AssertionError(f"INTAKE not drained: {(await js.stream_info(streams.INTAKE)).state}")


async def facts(nc: Client) -> list[tuple[int, dict[str, Any]]]:
    """The log without what Jiedu derived itself (findings, deadlines): what sources sent."""
    return [(seq, e) for seq, e in await events(nc) if e["type"] not in SYSTEM_TYPES]


async def events(nc: Client) -> list[tuple[int, dict[str, Any]]]:
    return [
        (m.metadata.sequence.stream, orjson.loads(m.data)) for m in await stored(nc, streams.EVENTS)
    ]


async def rejected(nc: Client) -> dict[int, tuple[str, bytes]]:
    """Refused messages by intake sequence: (reason, raw bytes)."""
    out: dict[int, tuple[str, bytes]] = {}
    for m in await stored(nc, streams.REJECTED):
        seq = int(m.headers[streams.Header.INTAKE_SEQUENCE])
        assert seq not in out, f"intake message {seq} rejected twice"
        out[seq] = (m.headers[streams.Header.REASON], m.data)
    return out


async def answer_to(sub: Any, intake_sequence: int) -> dict[str, Any]:
    """The outcome announced for one intake message, from a subscription to outcomes."""
    while True:
        answers: list[dict[str, Any]] = orjson.loads((await sub.next_msg(timeout=5)).data)
        for answer in answers:
            if answer["intake_sequence"] == intake_sequence:
                return answer
