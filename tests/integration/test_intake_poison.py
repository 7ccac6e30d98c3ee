"""Issue 12: no single message can stop the intake. Each poison message of the issue as a named
regression test against a real nats-server: it is decided (EVENTS or REJECTED, its outcome
answered), and the messages around it are decided on their own merits."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.errors import APIError, NoStreamResponseError

import factories as f
from domain.case import Case
from events import streams
from events.outcomes import Reason
from logtools import drained, events, facts, publish, rejected
from pgtools import PG_URL, drop_schema, postgres_or_skip
from projections import ALL
from services.adapters.config import Settings
from services.adapters.eventlog import EventLog, ensure_streams
from services.adapters.readmodels import ReadStore, open_store
from services.audit import replay_log
from services.bootstrap import organs
from services.intake import Intake
from services.projector import ProjectorService, rebuild, wait_caught_up


async def one_batch(nc: Client, count: int) -> list[Msg]:
    """Everything waiting in INTAKE, fetched from every partition, to hand to the intake as
    one batch (so a test knows which messages were decided together)."""
    js = nc.jetstream()
    msgs: list[Msg] = []
    subs = [
        await js.pull_subscribe_bind(durable=streams.intake_consumer(p), stream=streams.INTAKE)
        for p in range(4)
    ]
    for _ in range(50):
        for sub in subs:
            with contextlib.suppress(TimeoutError):
                msgs += await sub.fetch(count, timeout=0.2)
        if len(msgs) >= count:
            break
    for sub in subs:
        await sub.unsubscribe()
    assert len(msgs) == count, f"fetched {len(msgs)} of {count}"
    return sorted(msgs, key=lambda m: m.metadata.sequence.stream)


async def status(nc: Client, event: dict[str, Any]) -> tuple[str, str | None]:
    outcome = await EventLog(nc).outcome(event["event_id"])
    assert outcome is not None, f"no outcome kept for {event['event_id']}"
    return outcome.status, outcome.reason


# ── item 1: sizes ────────────────────────────────────────────────────────────────────────────


async def test_a_body_of_max_payload_is_the_publishers_error_and_the_intake_goes_on(
    nc: Client, intake: object
) -> None:
    """A body of exactly max_payload (1,048,576 bytes) once stopped the intake for good: stored
    in INTAKE, it could not be copied to REJECTED with headers. INTAKE now refuses it when it is
    published; the largest message it stores is kept whole in REJECTED or EVENTS."""
    js = nc.jetstream()
    subject = streams.intake_subject("drc", "oa", "BIG-1")
    limit = streams.intake_max_message(nc.max_payload)
    assert nc.max_payload == 1024 * 1024
    for size in (nc.max_payload, limit + 1):
        with pytest.raises(APIError) as refused:
            await js.publish(subject, b"x" * size)
        assert refused.value.err_code == 10054  # message size exceeds maximum allowed

    garbage = b"{" + b"x" * (limit - 1)
    seq_garbage = await publish(nc, garbage, source="drc/oa", case="BIG-1")
    draft = f.draft("BIG-1")
    padded = f.dumps(draft)
    draft["data"]["title"] += "长" * ((limit - len(padded)) // 3)
    draft["data"]["title"] += "x" * (limit - len(f.dumps(draft)))
    largest = f.dumps(draft)
    assert len(largest) == limit
    await publish(nc, largest, source="drc/oa", case="BIG-1")
    # the most Jiedu adds in REJECTED: a subject near the server's 4 KiB control line in a
    # header, and the longest detail (1,000 characters of 3 bytes each)
    long_case = "K" * 3800  # beyond what `streams` builds: sent as a raw subject, as any client may
    longest = orjson.dumps({"type": "无" * 2000, "pad": ""})
    longest = longest.replace(b'"pad":""', b'"pad":"' + b"p" * (limit - len(longest)) + b'"')
    assert len(longest) == limit
    seq_longest = int((await js.publish(f"jiedu.intake.drc.oa.{long_case}", longest)).seq)
    after = f.issued("BIG-1")
    await publish(nc, after)
    await drained(nc)

    kept = await rejected(nc)
    assert kept[seq_garbage] == ("not_json", garbage)  # whole, never truncated
    assert kept[seq_longest] == ("unknown_type", longest)
    stored = {e["event_id"]: seq for seq, e in await facts(nc)}
    assert set(stored) == {draft["event_id"], after["event_id"]}
    body = (await js.get_msg(streams.EVENTS, stored[draft["event_id"]])).data
    assert body == largest
    assert await status(nc, after) == ("accepted", None)


async def test_a_batch_of_long_refusals_is_announced_in_parts_under_max_payload(
    nc: Client, settings: Settings
) -> None:
    """One source's outcomes of one batch, each with a long detail, exceed max_payload as one
    JSON array (the announcement failed, and with it the batch, for ever): they go in parts."""
    sub = await nc.subscribe("jiedu.outcomes.drc.oa")
    n = 400  # each outcome holds a detail of 1,000 three-byte characters: 1.2 MB in all
    for i in range(n):
        await publish(nc, orjson.dumps({"type": "无" * 2000}), source="drc/oa", case=f"L-{i}")
    await Intake(EventLog(nc), organs(settings), settings).handle(await one_batch(nc, n))
    answered: list[int] = []
    parts = 0
    while len(answered) < n:
        msg = await sub.next_msg(timeout=5)
        assert len(msg.data) <= nc.max_payload
        answered += [a["intake_sequence"] for a in orjson.loads(msg.data)]
        parts += 1
    assert parts > 1 and len(set(answered)) == n
    assert len(await rejected(nc)) == n


# ── item 2: values the stores cannot hold ────────────────────────────────────────────────────


def results(case: str, comments: str) -> bytes:
    """A consultation-results event with `comments_received` written exactly as `comments`."""
    event = f.envelope("ConsultationResultsPublished", case, url="https://www.cqyz.gov.cn/r",
                       comments_received=7, comments_adopted=0)
    return f.dumps(event).replace(b'"comments_received":7', f'"comments_received":{comments}'.encode())


async def test_integers_beyond_their_range_are_refused_and_their_batch_is_decided(
    nc: Client, settings: Settings
) -> None:
    """`comments_received` beyond 64 bits once passed validation and failed its whole batch for
    ever, good messages included. Now it is `out_of_range`, and the rest is accepted."""
    opened = f.draft("INT-1")
    bad = {"huge": results("INT-1", "1" + "0" * 30), "2^63": results("INT-1", str(2**63)),
           "negative": results("INT-1", "-5"), "float": results("INT-1", "1e30")}
    good = results("INT-1", "12")
    await publish(nc, opened)
    seqs = {name: await publish(nc, body, source="drc/oa", case="INT-1") for name, body in bad.items()}
    await publish(nc, good, source="drc/oa", case="INT-1")
    await Intake(EventLog(nc), organs(settings), settings).handle(await one_batch(nc, 6))
    kept = await rejected(nc)
    assert {name: kept[seq][0] for name, seq in seqs.items()} == {
        "huge": "out_of_range", "2^63": "out_of_range", "negative": "out_of_range",
        "float": "invalid_field",
    }
    assert [e["type"] for _, e in await facts(nc)] == ["DraftSubmitted", "ConsultationResultsPublished"]
    assert (await facts(nc))[1][1]["data"]["comments_received"] == 12
    assert (await nc.jetstream().stream_info(streams.INTAKE)).state.messages == 0


# ── item 3: extreme timestamps ───────────────────────────────────────────────────────────────

EXTREMES = ("0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-08:00")


async def test_extreme_timestamps_are_refused_at_the_intake(nc: Client, intake: object) -> None:
    sent = [{**f.draft(f"T-{i}"), "occurred_at": at} for i, at in enumerate(EXTREMES)]
    opened = f.draft("T-2")
    opinion = f.envelope("OpinionDetected", "T-2", "drc", opinion_id="o1", severity="major",
                         kind="misunderstanding", summary="误读", detected_at=EXTREMES[1])
    seqs = [await publish(nc, e) for e in sent]
    await publish(nc, opened)
    seqs.append(await publish(nc, opinion, source="cac/monitor"))
    await drained(nc)
    kept = await rejected(nc)
    assert [kept[s][0] for s in seqs] == ["out_of_range"] * 3
    assert [e["event_id"] for _, e in await facts(nc)] == [opened["event_id"]]


def _stores(dialect: str, tmp_path: Path) -> Iterator[ReadStore]:
    if dialect == "sqlite":
        store = open_store(f"sqlite:///{tmp_path / 'old.sqlite3'}", tmp_path)
        yield store
        store.close()
        return
    postgres_or_skip()
    schema = f"t_old_log_{tmp_path.name[-20:].lower().replace('-', '_')}"
    store = open_store(f"{PG_URL}?schema={schema}", tmp_path)
    yield store
    store.close()
    drop_schema(schema)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ReadStore]:
    yield from _stores(request.param, tmp_path)


async def test_an_older_log_with_extreme_timestamps_projects_rebuilds_and_replays(
    nc: Client, settings: Settings, store: ReadStore, tmp_path: Path
) -> None:
    """Such events, accepted by an older intake, once froze projections, rebuild and replay
    (`OverflowError: date value out of range`). Reading the log places them at the domain's
    bounds, so every projection, a rebuild, a replay and the intake itself go on."""
    log = EventLog(nc)
    for i, at in enumerate(EXTREMES):  # appended as the older intake did: raw, as sent
        case = f"OLD-{i}"
        issued = f.issued(case)
        bodies = [{**f.draft(case), "occurred_at": at},
                  {**issued, "occurred_at": at, "data": {**issued["data"], "issue_date": at[:10]}}]
        await log.append(case, [
            (streams.event_subject("drc", case, b["type"]), f.dumps(b),
             {streams.Header.EVENT_ID: b["event_id"]}) for b in bodies
        ], expected_last=0)
    js = nc.jetstream()
    service = ProjectorService(js, store)
    await service.start()
    try:
        await wait_caught_up(js, store, timeout=60)
    finally:
        await service.stop()
    summary = {r["case_id"]: r for r in store.select(ALL[0], ALL[0].tables[0], {})}
    assert set(summary) == {"OLD-0", "OLD-1"}
    for projection in ALL:
        await rebuild(js, store, projection)
    replayed = await replay_log(js, tmp_path / "replay", None)
    assert replayed.as_of_seq == 4

    later = f.envelope("ReviewSigned", "OLD-0", stage="section_head", signer="王五")
    await publish(nc, later)
    await Intake(log, organs(settings), settings).handle(await one_batch(nc, 1))
    assert await status(nc, later) == ("accepted", None)


# ── item 4: subjects ─────────────────────────────────────────────────────────────────────────

WILDCARD_SUBJECTS = (
    "jiedu.intake.*.oa.c1",
    "jiedu.intake.health.oa.>",
    "jiedu.intake.drc.oa.*",
    "jiedu.intake.drc.*.STRAY-1",
    "jiedu.intake.>.oa.STRAY-1",
    "jiedu.intake.*.*.*",
)


async def test_literal_wildcard_subjects_are_rejected_never_left_in_intake(
    nc: Client, intake: object
) -> None:
    """Such subjects were stored untransformed, matched no partition and stayed in INTAKE
    undecided for good. Partition 0 takes them now and the intake rejects them."""
    js = nc.jetstream()
    body = f.dumps(f.draft("STRAY-1"))
    seqs = [int((await js.publish(s, body)).seq) for s in WILDCARD_SUBJECTS]
    # refused by the server: no stream answers (with authorisation on, the publish is dropped)
    for empty in ("jiedu.intake..oa.c1", "jiedu.intake.drc.oa."):
        with pytest.raises((NoStreamResponseError, NoRespondersError, NatsTimeout)):
            await js.publish(empty, body, timeout=1)
    odd = f.draft("STRAY-2")
    # stored and routable; a raw subject, since `streams` builds none with such a token
    odd_seq = int((await js.publish("jiedu.intake.drc.o\u00e4.STRAY-2", f.dumps(odd))).seq)
    good = f.draft("STRAY-3")
    await publish(nc, good)
    await drained(nc)
    kept = await rejected(nc)
    assert [kept[s] for s in seqs] == [("invalid_subject", body)] * len(seqs)
    assert kept[odd_seq][0] == "source_mismatch"
    assert [e["event_id"] for _, e in await facts(nc)] == [good["event_id"]]


async def test_an_intake_made_before_strays_had_a_consumer_is_updated(nc: Client) -> None:
    """Consumers made with the old `jiedu.intake.<p>.>` filters collide with partition 0's
    filter for strays; ensuring the streams updates them all, partition 0 last."""
    js = nc.jetstream()
    for p in range(4):
        await js.delete_consumer(streams.INTAKE, streams.intake_consumer(p))
    for p in range(4):
        await js.add_consumer(streams.INTAKE, ConsumerConfig(
            durable_name=streams.intake_consumer(p), filter_subject=f"jiedu.intake.{p}.>",
            ack_policy=AckPolicy.EXPLICIT, max_deliver=-1))
    await ensure_streams(js, partitions=4)
    info = await js.consumer_info(streams.INTAKE, streams.intake_consumer(0))
    assert info.config.filter_subjects == ["jiedu.intake.0.*.*.*", streams.STRAY_INTAKE]


# ── item 5: unexpected failures ──────────────────────────────────────────────────────────────


async def test_an_unexpected_failure_deciding_one_message_rejects_it_alone(
    nc: Client, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug met by one message (here injected into the rules) rejects that message with
    `internal_error`, the error in its detail and its raw bytes kept; the others of its batch,
    its own case's included, are decided on their merits."""
    import services.intake

    a, poison, b = f.draft("F-1"), f.draft("F-2"), f.draft("F-3")
    a_issued = f.issued("F-1")
    real = services.intake.judge

    def judge(facts: Any, ruleset: Any, event: Any) -> Any:
        if event.event_id == poison["event_id"]:
            raise ZeroDivisionError("injected for one message")
        return real(facts, ruleset, event)

    monkeypatch.setattr(services.intake, "judge", judge)
    seqs = [await publish(nc, e) for e in (a, poison, a_issued, b)]
    await Intake(EventLog(nc), organs(settings), settings).handle(await one_batch(nc, 4))
    kept = await rejected(nc)
    assert kept == {seqs[1]: ("internal_error", f.dumps(poison))}
    stored = await nc.jetstream().get_last_msg(streams.REJECTED, streams.rejected_subject("internal_error", seqs[1]))
    assert "ZeroDivisionError: injected for one message" in (stored.headers or {})[streams.Header.DETAIL]
    assert await status(nc, poison) == ("rejected", Reason.INTERNAL_ERROR)
    assert {e["event_id"] for _, e in await facts(nc)} == {
        a["event_id"], a_issued["event_id"], b["event_id"]}
    assert (await nc.jetstream().stream_info(streams.INTAKE)).state.messages == 0


async def test_a_batch_that_fails_as_a_whole_is_decided_one_message_at_a_time(
    nc: Client, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure where the batch cannot tell which message caused it (here: recording on the
    case) once left the whole batch to be redelivered for ever. Now the batch is decided again
    message by message, in order: only the one that fails alone is rejected."""
    a, b = f.draft("G-1"), f.draft("G-2")
    poison, b_issued = f.issued("G-1"), f.issued("G-2")
    real = Case.record

    def record(self: Case, stored: Any, event: Any) -> Any:
        if event.event_id == poison["event_id"]:
            raise RuntimeError("injected while recording")
        return real(self, stored, event)

    monkeypatch.setattr(Case, "record", record)
    sub = await nc.subscribe("jiedu.outcomes.drc.oa")
    seqs = [await publish(nc, e) for e in (a, poison, b, b_issued)]
    await Intake(EventLog(nc), organs(settings), settings).handle(await one_batch(nc, 4))
    assert {s: r for s, (r, _) in (await rejected(nc)).items()} == {seqs[1]: "internal_error"}
    answers = orjson.loads((await sub.next_msg(timeout=5)).data)
    assert sorted((a["intake_sequence"], a["status"]) for a in answers) == [
        (seqs[0], "accepted"), (seqs[1], "rejected"), (seqs[2], "accepted"), (seqs[3], "accepted")]
    assert [e["event_id"] for _, e in await facts(nc)] == [
        a["event_id"], b["event_id"], b_issued["event_id"]]
    for e in (a, b, b_issued):
        assert await status(nc, e) == ("accepted", None)
    assert len([e for _, e in await events(nc) if e.get("causation_id") == poison["event_id"]]) == 0
