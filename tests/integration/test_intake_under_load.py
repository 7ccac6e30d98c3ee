"""The intake's guarantees under load: nothing lost, nothing doubled, per-case order kept —
with bad input mixed in, with two instances at once, and across a kill -9."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from nats.aio.client import Client
from nats.errors import TimeoutError as NatsTimeout
from test_demo import Replay, Waiting

import factories as f
from events import streams
from logtools import drained, events, facts, rejected
from services import bootstrap
from services.adapters import permissions
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


# ── issue 12, items 5 and 6: nothing stuck, order kept under load and crashes ────────────────


class _Held(Replay):
    """The demo's order emulation (tests/test_demo.py), noting which messages must wait for a
    prerequisite published after them: only those may land later than their place."""

    def __init__(self) -> None:
        super().__init__()
        self.held: set[str] = set()

    def offer(self, w: Waiting, now: int) -> bool:
        accepted = super().offer(w, now)
        if not accepted and w in self.waiting:
            self.held.add(w.event.event_id)
        return accepted


def _assert_each_case_in_order(
    published: list[dict[str, Any]], log: list[tuple[int, dict[str, Any]]], held: set[str]
) -> None:
    """Per case, the log holds the facts in the order their sources published them, apart
    from the messages in `held` (which wait for a prerequisite published after them)."""
    sent: dict[str, list[str]] = {}
    for e in published:
        if e["event_id"] not in held:
            sent.setdefault(e["case_id"], []).append(e["event_id"])
    stored: dict[str, list[str]] = {}
    for _, e in log:
        if e["event_id"] not in held:
            stored.setdefault(e["case_id"], []).append(e["event_id"])
    out_of_order = [case for case, ids in sent.items() if stored.get(case) != ids]
    assert not out_of_order, f"{len(out_of_order)} cases out of order, e.g. {out_of_order[:3]}"


async def _connection(settings: Settings, name: str, party: str) -> Client:
    """A connection as the real `party` would make it (an unnamed one is the read-only
    auditor)."""
    from services.bootstrap import connect

    return await connect(settings.nats_url or "", name, party=party)


async def _deadline_service(settings: Settings, tmp_path: Path) -> tuple[Client, Any, Any]:
    """The deadline service on the wall clock (the demo quarter is past: every clock is owed
    events at once, written under the same case locks as the intake's) with its own store."""
    from services.adapters.readmodels import open_store
    from services.deadlines import DeadlineService

    conn = await _connection(settings, "test-deadlines", permissions.DEADLINES)
    store = open_store(f"sqlite:///{tmp_path / 'deadlines.sqlite3'}", tmp_path)
    service = DeadlineService(conn, store)
    await service.start()
    return conn, store, service


class _ConsumerCount:
    """Samples how many consumers EVENTS has while a test runs."""

    def __init__(self, nc: Client) -> None:
        self.js = nc.jetstream()
        self.most = 0
        self.samples = 0
        self._task = asyncio.create_task(self._sample())

    async def _sample(self) -> None:
        while True:
            with contextlib.suppress(NatsTimeout):  # a busy server may answer late: skip one
                count = (await self.js.stream_info(streams.EVENTS)).state.consumer_count
                self.most, self.samples = max(self.most, count), self.samples + 1
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def _deadline_process(settings: Settings) -> subprocess.Popen[bytes]:
    """The deadline service in a process of its own, as it runs beside the intake in
    production, on the wall clock: the demo quarter is past, so every clock is owed events at
    once, appended under the same case locks as the intake's."""
    env = {
        **os.environ,
        "NATS_URL": settings.nats_url or "",
        "JIEDU_DATA_DIR": str(settings.data_dir / "deadlines"),
        "JIEDU_PARTITIONS": str(settings.partitions),
        "JIEDU_LOG_LEVEL": "warning",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "services.deadlines"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


@pytest.mark.slow
@pytest.mark.timeout(3600)  # a soak: long by design
async def test_a_backlog_of_20000_demo_events_is_decided_in_order_with_the_deadline_service(
    nc: Client, settings: Settings
) -> None:
    """Issue 12, item 5: 20,000 valid events wait in INTAKE before the intake starts, with the
    deadline service appending to the same cases; every one is accepted, once, in order."""
    from services.tools.demo import generate

    demo = generate(cases=1320)
    assert len(demo) >= 20_000
    published = [m.body for m in demo]
    await _publish_all(nc, [(m.subject, m.encode()) for m in demo])
    assert (await nc.jetstream().stream_info(streams.INTAKE)).state.messages == len(demo)
    deadlines = _deadline_process(settings)
    consumers = _ConsumerCount(nc)
    service = IntakeService(nc, organs(settings), settings)
    try:
        started = time.perf_counter()
        await service.start()
        try:
            await drained(nc, timeout=900)
            took = time.perf_counter() - started
        finally:
            await service.stop()
    finally:
        await consumers.stop()
        deadlines.terminate()
        assert deadlines.wait(30) == 0, deadlines.stderr.read().decode() if deadlines.stderr else ""
    derived = [e for _, e in await events(nc) if e["type"].startswith("Deadline")]
    print(f"\nbacklog: {len(demo)} demo events decided in {took:.1f} s "
          f"({len(demo) / took:.0f}/s) beside the deadline service "
          f"({len(derived)} deadline events); at most {consumers.most} consumers on EVENTS")

    assert await rejected(nc) == {}
    log = await facts(nc)
    assert Counter(e["event_id"] for _, e in log) == Counter(e["event_id"] for e in published)
    _assert_each_case_in_order(published, log, _Held().run(demo).held)
    assert derived, "the deadline service must have written beside the intake"
    assert consumers.samples > 0 and consumers.most <= 3


async def test_many_cases_read_back_at_once_beside_the_deadline_service_create_no_consumers(
    nc: Client, settings: Settings, tmp_path: Path
) -> None:
    """Regression, issue 12 item 5: reading a case's history made a consumer each time; with
    batches of 1,500 cases the intake met the server's limit of 1,000 consumers (10026) and
    its batches failed. 1,600 cases are opened, the intake restarts (its cache empty), and each
    case's next events need its history while the deadline service appends to the cases."""
    cases = [f"MANY-{n:04d}" for n in range(1600)]
    first = [e for c in cases for e in (f.draft(c), f.consultation(c, "q1"))]
    then = [e for c in cases for e in (f.answer(c, "q1"), f.issued(c))]
    wide = replace(settings, intake_batch=1500)
    conn, store, deadlines = await _deadline_service(settings, tmp_path)
    consumers = _ConsumerCount(nc)
    try:
        for wave in (first, then):
            service = IntakeService(nc, organs(wide), wide)
            await _publish_all(nc, [(_subject(e), orjson.dumps(e)) for e in wave])
            await service.start()
            try:
                await drained(nc, timeout=300)
            finally:
                await service.stop()
    finally:
        await consumers.stop()
        await deadlines.stop()
        await conn.close()
        store.close()

    assert await rejected(nc) == {}
    log = await facts(nc)
    assert Counter(e["event_id"] for _, e in log) == Counter(e["event_id"] for e in first + then)
    _assert_each_case_in_order(first + then, log, set())
    assert consumers.samples > 0 and consumers.most <= 3, consumers.most


async def test_a_new_lease_holder_first_takes_back_what_a_dead_instance_fetched(
    nc: Client, settings: Settings
) -> None:
    """Regression, issue 12 item 6: messages a dead instance had fetched came back only after
    ack_wait, while the new lease holder went on with the same cases' later messages (refused
    as unknown_case, or stored out of order). The new holder reclaims them first."""
    stories = [_case_story(f"TAKE-{n}", "drc", 6) for n in range(40)]
    interleaved = [e for wave in zip(*stories, strict=True) for e in wave]
    opened = IntakeService(nc, organs(settings), settings)  # the cases are open already
    await opened.start()
    await _publish_all(nc, [(_subject(e), orjson.dumps(e)) for e in interleaved[:40]])
    await drained(nc)
    await opened.stop()
    # the dead instance takes the first consultations; their answers and the cases' next
    # consultations stay for the new holder, which must not decide them first
    await _publish_all(nc, [(_subject(e), orjson.dumps(e)) for e in interleaved[40:]])

    dead = await _connection(settings, "dead-intake", permissions.INTAKE)
    js = dead.jetstream()
    leases = await js.key_value(streams.LEASES_BUCKET)
    until = orjson.dumps({"owner": "dead", "until": time.time() + settings.lease_ttl_s})
    await leases.put("instance.dead", until)
    fetched = 0
    for partition in range(settings.partitions):
        await leases.create(f"partition.{partition}", until)
        sub = await js.pull_subscribe_bind(
            durable=streams.intake_consumer(partition), stream=streams.INTAKE
        )
        fetched += len(await sub.fetch(4, timeout=5))  # and never acknowledged: kill -9
    await dead.close()
    assert fetched == 4 * settings.partitions

    service = IntakeService(nc, organs(settings), settings)
    await service.start()
    try:
        await drained(nc, timeout=60)
    finally:
        await service.stop()

    assert await rejected(nc) == {}
    log = await facts(nc)
    assert Counter(e["event_id"] for _, e in log) == Counter(e["event_id"] for e in interleaved)
    _assert_each_case_in_order(interleaved, log, set())


async def test_an_instance_whose_partition_was_taken_while_it_could_not_renew_lets_it_go(
    nc: Client, settings: Settings
) -> None:
    """Regression (CI, rolling restart of the cluster): an instance cut off for longer than
    the lease found, back, its partition held by another, and went on counting it as its own:
    at its fair share, it never took the partition that the other had given back, and that
    partition's messages waited for ever. Back, it lets the taken partition go and takes
    what is free."""
    service = IntakeService(nc, organs(settings), replace(settings, partitions=2))
    await service.start()
    leases = await nc.jetstream().key_value(streams.LEASES_BUCKET)

    async def other_alive() -> None:  # a second instance, as far as the leases tell
        while True:
            until = time.time() + settings.lease_ttl_s
            await leases.put("instance.other", orjson.dumps({"owner": "other", "until": until}))
            await asyncio.sleep(settings.lease_ttl_s / 3)

    other = asyncio.create_task(other_alive())
    try:
        await _within(10, lambda: service.partitions == [0], "gave one partition back")
        # meanwhile, unseen by it: the other took partition 0 over, and gave 1 back
        with contextlib.suppress(Exception):
            await leases.delete("partition.1")
        await leases.put(
            "partition.0", orjson.dumps({"owner": "other", "until": time.time() + 3600})
        )
        await _within(10, lambda: service.partitions == [1], "let 0 go and took 1")
        assert set(service.revisions) == {1}
        held = (await leases.get("partition.1")).value or b"{}"
        assert orjson.loads(held)["owner"] == service.me
    finally:
        other.cancel()
        await service.stop()


async def _within(timeout: float, condition: Any, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        await asyncio.sleep(0.05)


def test_the_wait_for_a_prerequisite_outlasts_ack_wait_and_the_lease() -> None:
    """Issue 12, item 6: a prerequisite the system itself holds back (redelivered after
    ack_wait, or after a takeover once the lease ran out) still arrives in time."""
    from services.intake import Intake, outlasting

    assert outlasting((0.25, 0.5), 1.0) == (0.25, 0.5, 0.5)
    for waits, delay in (((0.05, 0.1, 0.2), 3.5), ((0.25, 0.5, 1.0, 2.0, 4.0, 8.0), 36.0)):
        longer = outlasting(waits, delay)
        assert longer[: len(waits)] == waits and sum(longer) > delay
    settings = Settings(ack_wait_s=30.0, lease_ttl_s=6.0)
    waits = Intake(None, None, settings).waits  # type: ignore[arg-type]
    assert sum(waits) > settings.ack_wait_s + settings.lease_ttl_s


async def test_three_kill_9s_of_the_intake_mid_load_refuse_lose_and_double_nothing(
    nc: Client, settings: Settings
) -> None:
    """Issue 12, item 6: `kill -9` of the intake process three times while interleaved cases
    load, then a restart: every event stored once, none refused, each case in order."""
    stories = [_case_story(f"KILL3-{n}", _department(n), 10) for n in range(400)]
    everything = [e for wave in zip(*stories, strict=True) for e in wave]
    await _publish_all(nc, [(_subject(e), orjson.dumps(e)) for e in everything])
    js = nc.jetstream()
    kills = 0
    for share in (0.8, 0.55, 0.3):  # of INTAKE still waiting when each instance dies
        process = _intake_process(settings)
        try:
            for _ in range(3000):
                left = (await js.stream_info(streams.INTAKE)).state.messages
                if left < share * len(everything):
                    break
                await asyncio.sleep(0.02)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(10)
        assert 0 < left < len(everything), "each kill must land mid-load"
        kills += 1
    last = _intake_process(settings)
    try:
        await drained(nc, timeout=120)
    finally:
        last.terminate()
        assert last.wait(20) == 0, last.stderr.read().decode() if last.stderr else ""

    assert kills == 3
    assert await rejected(nc) == {}
    log = await facts(nc)
    assert Counter(e["event_id"] for _, e in log) == Counter(e["event_id"] for e in everything)
    _assert_each_case_in_order(everything, log, set())


def _department(n: int) -> str:
    return ("health", "drc", "housing", "education")[n % 4]
