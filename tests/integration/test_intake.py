"""The intake against a real nats-server: accepted, duplicate, and each way of being refused."""

from __future__ import annotations

import pytest
from nats.aio.client import Client

import factories as f
from logtools import answer_to, drained, events, facts, publish, rejected
from services.adapters.eventlog import EventLog


async def test_a_draft_opens_its_case_and_later_events_follow(nc: Client, intake: object) -> None:
    opened, issued = f.draft("C-1"), f.issued("C-1")
    await publish(nc, opened)
    await publish(nc, issued)
    await drained(nc)
    log = await facts(nc)
    assert [(e["event_id"], e["type"]) for _, e in log] == [
        (opened["event_id"], "DraftSubmitted"),
        (issued["event_id"], "PolicyIssued"),
    ]
    outcome = await EventLog(nc).outcome(issued["event_id"])
    assert outcome is not None and outcome.status == "accepted" and outcome.sequence == log[1][0]


async def test_a_repeated_event_id_is_a_duplicate_at_its_first_sequence(
    nc: Client, intake: object
) -> None:
    opened = f.draft("C-2")
    await publish(nc, opened)
    await drained(nc)
    sub = await nc.subscribe("jiedu.outcomes.drc.oa")
    second = await publish(nc, opened)
    await drained(nc)
    answer = await answer_to(sub, second)
    assert answer["status"] == "duplicate" and answer["intake_sequence"] == second
    assert answer["sequence"] == (await facts(nc))[0][0]
    assert len(await facts(nc)) == 1
    assert await rejected(nc) == {}


async def test_the_same_event_id_with_other_content_is_refused(nc: Client, intake: object) -> None:
    opened = f.draft("C-3")
    await publish(nc, opened)
    changed = {**opened, "data": {**opened["data"], "title": "另一个标题"}}
    seq = await publish(nc, changed)
    await drained(nc)
    assert (await rejected(nc))[seq][0] == "event_id_conflict"


def _bad_inputs() -> list[tuple[str, bytes, str, str]]:
    """(case name, raw message, source department/system, expected reason)."""
    good = f.draft("BAD-1")
    naive = {**good, "occurred_at": "2026-07-06T09:30:00"}
    missing = {k: v for k, v in good.items() if k != "actor"}
    invalid = {**good, "data": {**good["data"], "scope": "everything"}}
    opinion = f.envelope(
        "OpinionDetected",
        "BAD-1",
        "drc",
        opinion_id="op1",
        severity="major",
        kind="misunderstanding",
        summary="网民误读补贴标准",
        detected_at="2026-07-07T10:00:00+08:00",
    )
    return [
        ("not json", b"\xff{not json", "drc/oa", "not_json"),
        ("not an object", b"[1, 2, 3]", "drc/oa", "not_object"),
        ("unknown type", f.dumps({**good, "type": "PolicyInvented"}), "drc/oa", "unknown_type"),
        ("missing field", f.dumps(missing), "drc/oa", "missing_field"),
        ("invalid field", f.dumps(invalid), "drc/oa", "invalid_field"),
        ("naive timestamp", f.dumps(naive), "drc/oa", "naive_timestamp"),
        ("newer schema", f.dumps({**good, "schema_version": 9}), "drc/oa", "unsupported_version"),
        ("department not the source's", f.dumps(good), "finance/oa", "department_mismatch"),
        (
            "unknown department",
            f.dumps({**good, "department": "mars"}),
            "mars/oa",
            "unknown_department",
        ),
        ("source system not the subject's", f.dumps(good), "drc/erp", "source_mismatch"),
        ("opinion not from the monitor", f.dumps(opinion), "drc/oa", "not_monitor"),
        (
            "derived type sent in",
            f.dumps(
                f.envelope(
                    "FindingRecorded",
                    "BAD-1",
                    finding_id="f1",
                    rule_id="REV-5",
                    rule_set="2021-11-24",
                    severity="violation",
                    evidence=[{"event_id": "ev-1"}],
                    message_zh="未经审核即发布",
                    message_en="published before review",
                )
            ),
            "drc/oa",
            "reserved_type",
        ),
        (
            "news-office stage signed by the department",
            f.dumps(f.envelope("ReviewSigned", "BAD-1", stage="news_office", signer="李四")),
            "drc/oa",
            "role_mismatch",
        ),
        ("event for an unknown case", f.dumps(f.issued("NO-SUCH-CASE")), "drc/oa", "unknown_case"),
        (
            "answer to an unknown consultation",
            f.dumps(f.answer("BAD-OPEN", "q-404")),
            "drc/oa",
            "unknown_reference",
        ),
    ]


@pytest.mark.parametrize(
    ("name", "raw", "source", "reason"), _bad_inputs(), ids=[b[0] for b in _bad_inputs()]
)
async def test_bad_input_is_refused_with_its_reason_and_kept_raw(
    nc: Client, intake: object, name: str, raw: bytes, source: str, reason: str
) -> None:
    await publish(nc, f.draft("BAD-OPEN"))
    case = "BAD-OPEN" if b"BAD-OPEN" in raw else "NO-SUCH-CASE" if b"NO-SUCH" in raw else "BAD-1"
    sub = await nc.subscribe(f"jiedu.outcomes.{source.replace('/', '.')}")
    seq = await publish(nc, raw, source=source, case=case)
    await drained(nc)
    kept = await rejected(nc)
    assert kept[seq] == (reason, raw)
    answer = await answer_to(sub, seq)
    assert (answer["status"], answer["reason"], answer["intake_sequence"]) == (
        "rejected",
        reason,
        seq,
    )
    assert [e["case_id"] for _, e in await facts(nc)] == ["BAD-OPEN"]


async def test_a_fact_that_breaks_a_rule_is_recorded_with_its_finding_next_to_it(
    nc: Client, intake: object
) -> None:
    """REV-5: a policy issued before its review chain is complete is kept, and a finding
    naming the rule, the rule set and the fact is appended right after it."""
    opened, issued = f.draft("RULE-1"), f.issued("RULE-1")
    await publish(nc, opened)
    await publish(nc, issued)
    await drained(nc)
    log = await events(nc)
    at = next(i for i, (_, e) in enumerate(log) if e["event_id"] == issued["event_id"])
    findings = [e for _, e in log[at + 1 :] if e["type"] == "FindingRecorded"]
    rev5 = [e for e in findings if e["data"]["rule_id"] == "REV-5"]
    assert rev5, [e["data"]["rule_id"] for e in findings]
    assert rev5[0]["causation_id"] == issued["event_id"]
    assert issued["event_id"] in [ev["event_id"] for ev in rev5[0]["data"]["evidence"]]
    assert rev5[0]["data"]["rule_set"]
    assert [e["type"] for _, e in log[: at + 1] if e["type"] != "FindingRecorded"] == [
        "DraftSubmitted", "PolicyIssued"]
