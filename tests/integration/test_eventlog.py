"""The JetStream adapter's appends against a real nats-server: several cases in one atomic
batch, each under its own optimistic lock, all stored or none."""

from __future__ import annotations

import orjson
import pytest
from nats.aio.client import Client

from events import streams
from logtools import stored
from services.adapters.eventlog import Conflict, EventLog, LogError, Message, ensure_streams


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
