"""Personal data of citizens (issue 17): sealed by the intake before anything keeps it,
opened only with the data subject's key, erased by destroying it, the chain still verifying.
QA-4 is why it is kept at all: the drafting unit must reply to the asker (主动回复咨询人)."""

from __future__ import annotations

from typing import Any

import orjson
from nats.aio.client import Client

import factories as f
from events import streams
from events.catalogue import Asker, SealedAsker
from logtools import drained, events, publish, rejected, stored
from services.adapters.config import Settings
from services.adapters.keystore import KeyStore, keystore_path
from services.privacy import DROPPED_NOTE, reveal

SECRETS = (f.ASKER_NAME, f.ASKER_PHONE, f.ASKER_EMAIL)


def clear_in(blob: bytes) -> list[str]:
    """Which of the asker's texts a blob holds, as UTF-8 or as JSON escapes."""
    found = []
    for text in SECRETS:
        escaped = orjson.dumps(text)[1:-1].decode("ascii", "backslashreplace")
        ascii_escaped = text.encode("ascii", "backslashreplace").decode()
        forms = {text.encode(), escaped.encode(), ascii_escaped.encode(),
                 ascii_escaped.replace("\\u", "\\\\u").encode()}
        if any(form in blob for form in forms):
            found.append(text)
    return found


async def _consulted(nc: Client, case: str, cid: str = "Q1") -> dict[str, Any]:
    await publish(nc, f.draft(case))
    sent = f.consultation(case, cid, asker=f.asker())
    await publish(nc, sent)
    await drained(nc)
    return sent


async def test_qa4_the_intake_seals_the_asker_before_events_keeps_it(
    nc: Client, intake: object, settings: Settings
) -> None:
    sent = await _consulted(nc, "PD-1")
    kept = [e for _, e in await events(nc) if e["event_id"] == sent["event_id"]]
    assert len(kept) == 1
    asker = SealedAsker.model_validate(kept[0]["data"]["asker"])
    assert set(asker.sealed) == {"name", "phone", "email"} and asker.algorithm == "AES-256-GCM"
    for m in await stored(nc, streams.EVENTS):
        assert clear_in(m.data) == [] and clear_in(orjson.dumps(dict(m.headers or {}))) == []
        assert clear_in(m.subject.encode()) == []
    keys = KeyStore(keystore_path(settings))
    assert reveal(keys, asker) == Asker.model_validate(f.asker())
    # a resent event seals to the same bytes: recognised as a duplicate, not a conflict
    await publish(nc, sent)
    await drained(nc)
    assert await rejected(nc) == {}
    assert len([e for _, e in await events(nc) if e["event_id"] == sent["event_id"]]) == 1


async def test_the_same_asker_is_one_data_subject_across_consultations(
    nc: Client, intake: object
) -> None:
    await _consulted(nc, "PD-2", "Q1")
    await publish(nc, f.consultation("PD-2", "Q2", asker=f.asker(name="欧阳先生", email=None)))
    await drained(nc)
    askers = [e["data"]["asker"] for _, e in await events(nc) if "asker" in e["data"]]
    assert len(askers) == 2 and askers[0]["subject_id"] == askers[1]["subject_id"]


async def test_a_source_may_not_send_sealed_personal_data(nc: Client, intake: object) -> None:
    await publish(nc, f.draft("PD-3"))
    forged = {"subject_id": "ds-" + "0" * 32, "key_version": 1, "algorithm": "AES-256-GCM",
              "sealed": {"name": "AAAA"}, "reply_via": "phone"}
    seq = await publish(nc, f.consultation("PD-3", "Q1", asker=forged))
    await drained(nc)
    reason, raw = (await rejected(nc))[seq]
    assert reason == "invalid_field"
    assert orjson.loads(raw)["data"]["asker"][DROPPED_NOTE] == [
        "subject_id", "key_version", "algorithm", "sealed"]


async def test_rejected_keeps_no_personal_field_only_a_note(nc: Client, intake: object) -> None:
    unknown = await publish(nc, f.consultation("PD-NOWHERE", "Q1", asker=f.asker()))
    broken = f.consultation("PD-NOWHERE", "Q2", asker={**f.asker(), "address": "解放碑 1 号"})
    invalid = await publish(nc, broken)
    not_json = await publish(nc, b'{"data": {"asker": {"phone": "' + f.ASKER_PHONE.encode() + b'"',
                             source="drc/oa", case="PD-NOWHERE")
    await drained(nc)
    kept = await rejected(nc)
    assert kept[unknown][0] == "unknown_case" and kept[invalid][0] == "invalid_field"
    assert kept[not_json][0] == "not_json"
    for seq in (unknown, invalid, not_json):
        assert clear_in(kept[seq][1]) == [], seq
        assert b"\xe8\xa7\xa3\xe6\x94\xbe\xe7\xa2\x91" not in kept[seq][1]  # 解放碑
    body = orjson.loads(kept[unknown][1])
    assert body["data"]["asker"] == {"reply_via": "phone", DROPPED_NOTE: ["name", "phone", "email"]}
    assert body["data"]["question"] == "补贴怎么申请?"  # the rest kept for the operator
    assert DROPPED_NOTE in orjson.loads(kept[not_json][1])


