"""The JetStream adapter's appends against a real nats-server: several cases in one atomic
batch, each under its own optimistic lock, all stored or none."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import orjson
import pytest
from nats.aio.client import Client

from events import streams
from events.outcomes import Outcome
from logtools import rejected, stored
from services.adapters.config import Settings
from services.adapters.eventlog import (
    Conflict,
    EventLog,
    LogError,
    Message,
    Refusal,
    ensure_streams,
)


def message(case_id: str, n: int) -> Message:
    body = orjson.dumps({"case_id": case_id, "n": n})
    return (streams.event_subject("qfgw", case_id, "ReviewSigned"), body, {})


async def test_several_cases_append_as_one_batch_each_under_its_lock(nc: Client) -> None:
    log = EventLog(nc)
    [a1] = await log.append("A", [message("A", 1)], expected_last=0)
    [b1] = await log.append("B", [message("B", 1)], expected_last=0)

    got = await log.append_cases(
        [
            ("A", [message("A", 2), message("A", 3)], a1),
            ("B", [message("B", 2)], b1),
            ("C", [message("C", 1)], 0),
        ]
    )

    assert got == [[3, 4], [5], [6]]
    bodies = [orjson.loads(m.data) for m in await stored(nc, streams.EVENTS)]
    assert [(b["case_id"], b["n"]) for b in bodies] == [
        ("A", 1),
        ("B", 1),
        ("A", 2),
        ("A", 3),
        ("B", 2),
        ("C", 1),
    ]


@pytest.mark.parametrize("stale", ["first", "last"])
async def test_one_stale_case_refuses_the_whole_batch(nc: Client, stale: str) -> None:
    log = EventLog(nc)
    [a1] = await log.append("A", [message("A", 1)], expected_last=0)
    [b1] = await log.append("B", [message("B", 1)], expected_last=0)
    moved, last = ("A", a1) if stale == "first" else ("B", b1)
    await log.append(moved, [message(moved, 9)], expected_last=last)  # another writer

    with pytest.raises(Conflict):
        await log.append_cases(
            [
                ("A", [message("A", 2)], a1),
                ("C", [message("C", 1)], 0),
                ("B", [message("B", 2), message("B", 3)], b1),
            ]
        )

    assert len(await stored(nc, streams.EVENTS)) == 3  # nothing of the refused batch


async def test_intake_partitions_other_than_the_stream_has_are_refused(nc: Client) -> None:
    """INTAKE's partitions are fixed when it is created (by the `nc` fixture, with four): an
    instance configured otherwise would leave some partitions unread, so it must not start."""
    with pytest.raises(LogError, match="JIEDU_PARTITIONS"):
        await ensure_streams(nc.jetstream(), partitions=1)
    await ensure_streams(nc.jetstream(), partitions=4)  # the stream's own count: fine


async def test_a_case_is_read_back_by_direct_get_without_a_consumer(nc: Client) -> None:
    """Issue 12, item 5: a case's history comes back whole and in order, past one direct-get
    batch, and its last sequence by one direct get, with no consumer made on EVENTS."""
    from services.adapters.eventlog import READ_BATCH

    log = EventLog(nc)
    long = [message("LONG", n) for n in range(READ_BATCH + 7)]
    sequences = await log.append("LONG", long, expected_last=0)
    await log.append("OTHER", [message("OTHER", 1)], expected_last=0)
    [again] = await log.append("LONG", [message("LONG", -1)], expected_last=sequences[-1])

    read = await log.read(streams.case_filter("LONG"))
    assert [seq for seq, _ in read] == [*sequences, again]
    assert [orjson.loads(body)["n"] for _, body in read] == [*range(READ_BATCH + 7), -1]
    assert await log.read(streams.case_filter("NONE")) == []
    assert await log.read(streams.case_filter("LONG"), start=again) == [read[-1]]
    assert await log.last_sequence("LONG") == again
    assert await log.last_sequence("OTHER") == again - 1
    assert await log.last_sequence("NONE") == 0
    assert (await nc.jetstream().stream_info(streams.EVENTS)).state.consumer_count == 0


def refusal(intake_sequence: int, reason: str = "not_json") -> Refusal:
    return Refusal(b"{broken %d" % intake_sequence, f"jiedu.intake.0.drc.oa.R{intake_sequence}",
                   intake_sequence, reason, "detail")


async def test_a_batch_of_refusals_is_kept_each_once_even_if_one_is_kept_already(
    nc: Client,
) -> None:
    """A redelivered refusal, alone or beside new ones, is kept once: the new ones once, the old
    one not again, and no error for it."""
    log = EventLog(nc)
    assert await log.reject_all([refusal(1), refusal(2)]) == [None, None]
    assert await log.reject_all([refusal(2), refusal(3), refusal(4)]) == [None, None, None]
    assert await log.reject_all([refusal(1), refusal(4)]) == [None, None]
    kept = await rejected(nc)  # asserts each intake sequence is there once
    assert sorted(kept) == [1, 2, 3, 4]
    assert kept[3] == ("not_json", b"{broken 3")


def outcome(status: str, event_id: str, intake_sequence: int) -> Outcome:
    return Outcome.model_validate({
        "status": status, "intake_sequence": intake_sequence, "event_id": event_id,
        "case_id": "C-1", "at": datetime.now(UTC),
        **({"sequence": intake_sequence} if status != "rejected" else {"reason": "case_exists"}),
    })


@pytest.mark.parametrize("atomic", [True, False])
async def test_outcomes_kept_together_never_replace_an_acceptance_with_a_refusal(
    nc: Client, atomic: bool
) -> None:
    """Whether the bucket allows atomic batches (as `ensure_streams` makes it) or not (a store
    made before issue 19): the last word for each event ID, an acceptance never overwritten
    by a refusal of another sending of its ID, in the same call or a later one."""
    js = nc.jetstream()
    bucket = f"KV_{streams.OUTCOMES_BUCKET}"
    assert (await js.stream_info(bucket)).config.allow_atomic
    if not atomic:
        config = (await js.stream_info(bucket)).config
        await js.update_stream(replace(config, allow_atomic=False))
    log = EventLog(nc)
    await log.keep_outcomes([
        outcome("accepted", "e1", 1), outcome("rejected", "e1", 2),  # same call
        outcome("rejected", "e2", 3), outcome("rejected", "e2", 4),  # the later one wins
        outcome("duplicate", "e3", 5),  # not kept: its first sending's outcome stands
    ])
    await log.keep_outcomes([outcome("rejected", "e1", 6), outcome("accepted", "e4", 7)])
    got = {e: await log.outcome(e) for e in ("e1", "e2", "e3", "e4")}
    assert got["e1"] is not None and (got["e1"].status, got["e1"].intake_sequence) == ("accepted", 1)
    assert got["e2"] is not None and (got["e2"].status, got["e2"].intake_sequence) == ("rejected", 4)
    assert got["e3"] is None
    assert got["e4"] is not None and got["e4"].status == "accepted"
    assert (streams.OUTCOMES_BUCKET in {s.removeprefix("KV_") for s in log._not_atomic}) != atomic


async def test_streams_made_before_atomic_refusals_get_them(
    nc: Client, settings: Settings
) -> None:
    js = nc.jetstream()
    for name in (streams.REJECTED, f"KV_{streams.OUTCOMES_BUCKET}"):
        config = (await js.stream_info(name)).config
        await js.update_stream(replace(config, allow_atomic=False))
    await ensure_streams(js, partitions=settings.partitions)
    for name in (streams.REJECTED, f"KV_{streams.OUTCOMES_BUCKET}"):
        assert (await js.stream_info(name)).config.allow_atomic, name
