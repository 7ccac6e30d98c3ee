"""The intake's guarantees under load: nothing lost, nothing doubled, per-case order kept —
with bad input mixed in, with two instances at once, and across a kill -9."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from typing import Any

import orjson
from nats.aio.client import Client

import factories as f
from events import streams
from logtools import drained, facts, rejected
from services import bootstrap
from services.adapters.config import Settings
from services.bootstrap import organs
from services.intake import IntakeService


def _case_story(case_id: str, department: str, length: int) -> list[dict[str, Any]]:
    """A draft, then consultations received and answered, in the order the source sends them."""
    story = [f.draft(case_id, department)]
    for n in range(length // 2):
        story += [
            f.consultation(case_id, f"q{n}", department),
            f.answer(case_id, f"q{n}", department),
        ]
    return story


async def _publish_all(nc: Client, messages: list[tuple[str, bytes]]) -> list[int]:
    """Publish (subject, body) pairs pipelined, in order; returns their intake sequences."""
    js = nc.jetstream()
    futures = [await js.publish_async(subject, body) for subject, body in messages]
    return [int((await fut).seq) for fut in futures]


def _subject(event: dict[str, Any], source: str | None = None) -> str:
    department, system = (source or f"{event['department']}/{event['source_system']}").split("/")
    return streams.intake_subject(department, system, event["case_id"])


def _interleave(rng: random.Random, stories: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Sources run side by side: cases interleave at random, each keeping its own order."""
    queues = [list(reversed(s)) for s in stories]
    out = []
    while queues:
        q = rng.choice(queues)
        out.append(q.pop())
        if not q:
            queues.remove(q)
    return out


async def test_conservation_every_intake_message_ends_in_events_or_rejected_once(
    nc: Client, intake: object
) -> None:
    rng = random.Random(7)
    stories = [
        _case_story(f"CONS-{n}", rng.choice(["drc", "housing", "education"]), 6) for n in range(120)
    ]
    good = _interleave(rng, stories)
    stray = f.issued("NEVER-OPENED")
    bad = [
        (_subject(good[0]), b"{broken", "not_json"),
        (_subject(good[0]), b"[]", "not_object"),
        (
            _subject(good[0]),
            orjson.dumps({**good[0], "type": "Nope", "event_id": "t"}),
            "unknown_type",
        ),
        (
            _subject(good[0], "finance/oa"),
            orjson.dumps({**good[0], "event_id": "d"}),
            "department_mismatch",
        ),
        (_subject(stray), orjson.dumps(stray), "unknown_case"),
    ]
    # (subject, body, what should become of it): "log", "duplicate" or a reason code
    messages: list[tuple[str, bytes, str]] = [(_subject(e), orjson.dumps(e), "log") for e in good]
    for _ in range(300):
        messages.insert(rng.randrange(len(messages) + 1), rng.choice(bad))
    for _ in range(60):
        at = rng.randrange(len(messages))
        if messages[at][2] == "log":
            messages.insert(
                rng.randrange(at + 1, len(messages) + 1),
                (messages[at][0], messages[at][1], "duplicate"),
            )
    assert len(messages) >= 1000

    sequences = await _publish_all(nc, [(s, b) for s, b, _ in messages])
    await drained(nc, timeout=60)

    log = await facts(nc)
    refused = await rejected(nc)
    assert Counter(e["event_id"] for _, e in log) == Counter(e["event_id"] for e in good)
    for seq, (_, body, fate) in zip(sequences, messages, strict=True):
        if fate in ("log", "duplicate"):
            assert seq not in refused
            assert orjson.loads(body)["event_id"] in {e["event_id"] for _, e in log}
        else:
            assert refused[seq] == (fate, body), f"intake message {seq} should be {fate}"
    duplicates = sum(1 for *_, fate in messages if fate == "duplicate")
    assert duplicates > 0 and len(log) + len(refused) + duplicates == len(messages)


async def test_two_instances_share_the_partitions_and_keep_each_case_in_order(
    nc: Client, settings: Settings
) -> None:

    services = []
    for name in ("intake-a", "intake-b"):
        conn = await bootstrap.connect(str(settings.nats_url), "jiedu-intake")
        service = IntakeService(
            conn, organs(settings), Settings(**{**settings.__dict__, "instance": name})
        )
        await service.start()
        services.append((conn, service))
    try:
        for _ in range(100):
            if all(s.partitions for _, s in services):
                break
            await asyncio.sleep(0.1)
        held = [s.partitions for _, s in services]
        assert all(held) and not set(held[0]) & set(held[1]), held

        stories = [_case_story(f"PAIR-{n}", "drc", 10) for n in range(60)]
        interleaved = [e for wave in zip(*stories, strict=True) for e in wave]
        await _publish_all(nc, [(_subject(e), orjson.dumps(e)) for e in interleaved])
        await drained(nc, timeout=60)
    finally:
        for conn, service in services:
            await service.stop()
            await conn.close()

    log = await facts(nc)
    assert len(log) == len(interleaved)
    for story in stories:
        case_id = story[0]["case_id"]
        assert [e["event_id"] for _, e in log if e["case_id"] == case_id] == [
            e["event_id"] for e in story
        ]


def _intake_process(settings: Settings) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "NATS_URL": settings.nats_url or "",
        "JIEDU_PARTITIONS": str(settings.partitions),
        "JIEDU_LEASE_TTL": str(settings.lease_ttl_s),
        "JIEDU_ACK_WAIT": str(settings.ack_wait_s),
        "JIEDU_WAIT_FOR_CASE": ",".join(map(str, settings.wait_for_case_s)),
        "JIEDU_LOG_LEVEL": "warning",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", "intake"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def test_kill_9_mid_load_then_restart_loses_and_doubles_nothing(
    nc: Client, settings: Settings
) -> None:
    stories = [_case_story(f"KILL-{n}", "health", 10) for n in range(300)]
    everything = [e for wave in zip(*stories, strict=True) for e in wave]
    first = _intake_process(settings)
    try:
        await _publish_all(nc, [(_subject(e), orjson.dumps(e)) for e in everything])
        js = nc.jetstream()
        for _ in range(600):
            done = (await js.stream_info(streams.EVENTS)).state.messages
            if done > len(everything) // 5:
                break
            await asyncio.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert 0 < done < len(everything), "the kill must land mid-load"
        second = _intake_process(settings)
        try:
            await drained(nc, timeout=90)
        finally:
            second.terminate()
            assert second.wait(20) == 0, second.stderr.read().decode() if second.stderr else ""
    finally:
        if first.poll() is None:
            first.kill()

    log = await facts(nc)
    ids = Counter(e["event_id"] for _, e in log)
    assert ids == Counter({e["event_id"]: 1 for e in everything})
    assert await rejected(nc) == {}


async def test_a_case_with_more_events_than_one_atomic_batch_holds_is_appended_whole(
    nc: Client,
) -> None:
    """JetStream takes at most 1,000 messages in one atomic batch; longer runs are chained."""
    from services.adapters.eventlog import MAX_ATOMIC, EventLog

    story = _case_story("LONG-1", "drc", 2 * MAX_ATOMIC + 10)
    messages = [(streams.event_subject("drc", "LONG-1", e["type"]), orjson.dumps(e), {})
                for e in story]
    sequences = await EventLog(nc).append("LONG-1", messages, expected_last=0)
    assert sequences == list(range(1, len(story) + 1))
    assert [e["event_id"] for _, e in await facts(nc)] == [e["event_id"] for e in story]
