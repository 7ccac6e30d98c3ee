"""HTTP intake (`POST /api/v1/events`): every reason code an organ's system can meet over HTTP,
answered with what the real intake decided and kept raw; and the conservation law under a
seeded stream of hostile bodies — every event posted and answered ends in EVENTS or REJECTED
exactly once, nothing is published unanswered, and no body gets a 500.

Two reasons cannot arise over HTTP, by construction: `unknown_department` (the subject names the
token's organ, always one of the district's) and `invalid_subject` (the API never publishes a
wildcard token); `internal_error` is a defect's. The cyberspace office's system claiming the
monitor's feed is refused (`source_mismatch`): the API may not publish on the monitor's subject.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from nats.aio.client import Client

import factories as f
from apitools import Api, running_api
from events import streams
from logtools import events, rejected
from services.adapters.config import Settings

DRC = "drc"
CONCURRENT = 40


@pytest.fixture
async def api(settings: Settings, nc: Client, intake: object, tmp_path: Path
              ) -> AsyncIterator[Api]:
    async with running_api(settings, nc, "sqlite", tmp_path) as running:
        yield running


def _reasons() -> list[tuple[str, bytes]]:
    """(reason, raw event) for each reason a JSON event from drc's system can be refused."""
    good = f.draft("H-1")
    opinion = f.envelope("OpinionDetected", "H-OPEN", opinion_id="op1", severity="major",
                         kind="misunderstanding", summary="网民误读补贴标准",
                         detected_at="2026-07-07T10:00:00+08:00")
    finding = f.envelope("FindingRecorded", "H-OPEN", finding_id="f1", rule_id="REV-5",
                         rule_set="2021-11-24", severity="violation",
                         evidence=[{"event_id": "ev-1"}], message_zh="未经审核即发布",
                         message_en="published before review")
    opened = f.draft("H-OPEN")
    raw = f.dumps
    return [
        ("accepted", raw(opened)),
        ("not_object", b'"just text"'),
        ("unknown_type", raw({**good, "type": "PolicyInvented"})),
        ("missing_field", raw({k: v for k, v in good.items() if k != "actor"})),
        ("invalid_field", raw({**good, "data": {**good["data"], "scope": "everything"}})),
        ("naive_timestamp", raw({**good, "occurred_at": "2026-07-06T09:30:00"})),
        ("unsupported_version", raw({**good, "schema_version": 9})),
        ("out_of_range", raw({**good, "schema_version": 0})),
        ("duplicate_key", raw(good)[:-1] + b',"type":"DraftSubmitted"}'),
        ("unstorable_text", raw({**good, "data": {**good["data"], "title": "标题\u0000"}})),
        ("department_mismatch", raw(f.draft("H-2", "finance"))),
        ("not_monitor", raw(opinion)),
        ("reserved_type", raw(finding)),
        ("role_mismatch", raw(f.envelope("ReviewSigned", "H-OPEN", stage="news_office",
                                         signer="李四"))),
        ("unknown_case", raw(f.issued("H-NO-SUCH-CASE"))),
        ("unknown_reference", raw(f.answer("H-OPEN", "q-404"))),
        ("case_exists", raw(f.draft("H-OPEN"))),
        ("event_id_conflict", raw({**opened, "data": {**opened["data"], "title": "另一个"}})),
    ]


async def test_every_reason_a_system_can_meet_is_answered_over_http_and_kept_raw(
    api: Api,
) -> None:
    cases = _reasons()
    body = b"[" + b",\n ".join(r for _, r in cases) + b"]"  # each element's bytes as written
    answer = await api.post("/events", DRC, body)
    assert answer.status_code == 422, answer.text
    outcomes = answer.json()["outcomes"]
    got = [o["reason"] if o["status"] == "rejected" else o["status"] for o in outcomes]
    assert got == [reason for reason, _ in cases]
    kept = await rejected(api.nc)
    for (reason, raw), outcome in zip(cases, outcomes, strict=True):
        if reason != "accepted":
            assert kept[outcome["intake_sequence"]] == (reason, raw), reason
            assert outcome["detail"]
    not_json = await api.post("/events", DRC, b"\xff{not json")
    assert (not_json.status_code, not_json.json()["reason"]) == (422, "not_json")
    # the cyberspace office's own system claiming the monitor's feed
    claimed = f.envelope("OpinionDetected", "H-OPEN", "cyberspace_office", opinion_id="op2",
                         severity="major", kind="misunderstanding", summary="误读",
                         detected_at="2026-07-07T10:00:00+08:00")
    claimed["source_system"] = "monitor"
    monitor = await api.post("/events", "cyberspace_office", f.dumps(claimed))
    assert (monitor.status_code, monitor.json()["reason"]) == (422, "source_mismatch")


def _hostile(rng: random.Random, n: int) -> list[tuple[str, bytes]]:
    """`n` bodies of many shapes: noise, JSON that is no event, events broken field by field,
    batches mixing them, deep nesting, and bodies too large to store."""
    def event() -> dict[str, Any]:
        kind = rng.randrange(4)
        case = f"FZ-{rng.randrange(30):03d}"
        if kind == 0:
            return f.draft(case)
        if kind == 1:
            return f.issued(case)
        if kind == 2:
            return f.consultation(case, f"q{rng.randrange(5)}")
        return f.answer(case, f"q{rng.randrange(5)}")

    def broken() -> bytes:
        e = event()
        key = rng.choice(list(e))
        e[key] = rng.choice([None, 0, 2.5, "", "x" * 300, [], {}, "2026-13-45", -1, True])
        return f.dumps(e)

    def noise() -> bytes:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300)))

    makers = [
        lambda: ("event", f.dumps(event())),
        lambda: ("broken", broken()),
        lambda: ("noise", noise()),
        lambda: ("json", orjson.dumps(rng.choice([None, 1, "s", 1.5, {"a": [1]}, {}]))),
        lambda: ("batch", b"[" + b",".join(
            rng.choice([f.dumps(event()), broken(), b"1", b'"x"', b"{}", b"[]"])
            for _ in range(rng.randrange(1, 8))) + b"]"),
        lambda: ("deep", b"[" * 3000 + b"]" * 3000),
        lambda: ("broken array", b"[" + f.dumps(event()) + b","),
        lambda: ("whitespace", b"  \n\t "),
    ]
    bodies = [rng.choice(makers)() for _ in range(n)]
    bodies.append(("too large", b'{"x": "' + b"a" * 1_100_000 + b'"}'))
    bodies.append(("too large batch", b"[" + b",".join([b"{}"] * 1001) + b"]"))
    return bodies


async def test_every_posted_event_ends_in_the_log_or_rejected_once(api: Api) -> None:
    rng = random.Random(16)
    answered: dict[int, dict[str, Any]] = {}
    bodies = _hostile(rng, 200)
    responses = []
    for start in range(0, len(bodies), CONCURRENT):  # as systems post: several at once
        group = bodies[start:start + CONCURRENT]
        responses += await asyncio.gather(
            *(api.post("/events", DRC, body, wait=20) for _, body in group)
        )
    for (kind, _), response in zip(bodies, responses, strict=True):
        assert response.status_code in (200, 201, 413, 422), (kind, response.text)
        if response.status_code == 413:
            continue
        reply = response.json()
        outcomes = reply.get("outcomes", [reply])
        for o in outcomes:
            assert o["status"] in ("accepted", "duplicate", "rejected"), (kind, o)
            assert o["intake_sequence"] not in answered
            answered[o["intake_sequence"]] = o
    await api.settled()
    published = (await api.nc.jetstream().stream_info(streams.INTAKE)).state.last_seq
    assert sorted(answered) == list(range(1, published + 1))  # nothing published unanswered
    kept = await rejected(api.nc)
    logged = {seq: e["event_id"] for seq, e in await events(api.nc)}
    for seq, o in answered.items():
        if o["status"] == "rejected":
            assert kept[seq][0] == o["reason"]
        else:
            assert seq not in kept and logged[o["sequence"]] == o["event_id"]
    assert set(kept) <= set(answered)
    accepted = [o for o in answered.values() if o["status"] == "accepted"]
    assert len(accepted) == len({o["sequence"] for o in accepted}) > 0
