"""The integrator's guide (deploy/INTEGRATING.md) works as written: each worked example,
published exactly as the guide shows it, is accepted (issue 13: the contract says what an
integrator had to find by trial)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg

from events import streams
from events.roles import MONITOR
from logtools import stored

GUIDE = Path(__file__).resolve().parents[2] / "deploy" / "INTEGRATING.md"
EXAMPLE = re.compile(r"^Subject: `(?P<subject>[^`]+)`\n\n```json\n(?P<body>.*?\n)```$", re.M | re.S)


def examples() -> list[tuple[str, bytes]]:
    """(subject, body) of each worked example, the body's bytes as the guide has them."""
    return [(m["subject"], m["body"].encode()) for m in EXAMPLE.finditer(GUIDE.read_text("utf-8"))]


def test_the_guide_has_an_example_per_source_kind() -> None:
    sources = [tuple(subject.split(".")[2:4]) for subject, _ in examples()]
    assert sources == [("drc", "oa"), ("gov_services_office", "hotline"), MONITOR]


async def test_every_worked_example_is_accepted_as_written(nc: Client, intake: object) -> None:
    outcomes: dict[str, dict[str, object]] = {}
    arrived = asyncio.Event()

    async def on_outcomes(msg: Msg) -> None:
        for o in orjson.loads(msg.data):
            outcomes[o["event_id"]] = o
        arrived.set()

    await nc.subscribe(streams.ALL_OUTCOMES, cb=on_outcomes)
    sent = examples()
    for subject, body in sent:
        await nc.jetstream().publish(subject, body)
    ids = [orjson.loads(body)["event_id"] for _, body in sent]
    async with asyncio.timeout(60):
        while not set(ids) <= outcomes.keys():
            arrived.clear()
            await arrived.wait()
    assert [outcomes[i]["status"] for i in ids] == ["accepted"] * 3, outcomes

    # stored with the headers the guide names, the bytes as published, but for an asker's
    # personal fields, which the log keeps sealed only (issue 17)
    by_id = {m.headers[streams.Header.EVENT_ID]: m for m in await stored(nc, streams.EVENTS)}
    for (_, body), event_id in zip(sent, ids, strict=True):
        msg = by_id[event_id]
        published = orjson.loads(body)
        asker = published["data"].get("asker")
        if asker is None:
            assert msg.data == body
        else:
            kept = orjson.loads(msg.data)
            sealed = kept["data"].pop("asker")
            published["data"].pop("asker")
            assert kept == published
            assert set(sealed["sealed"]) == {"name", "phone"}
            assert sealed["reply_via"] == asker["reply_via"]
            assert asker["name"].encode() not in msg.data
            assert asker["phone"].encode() not in msg.data
        assert msg.headers[streams.Header.INTAKE_SEQUENCE] == str(outcomes[event_id]["intake_sequence"])
