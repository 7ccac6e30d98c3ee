"""Personal data of citizens (issue 17): sealed by the intake before anything keeps it,
opened only with the data subject's key, erased by destroying it, the chain still verifying.
QA-4 is why it is kept at all: the drafting unit must reply to the asker (主动回复咨询人)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from nats.aio.client import Client

import factories as f
from apitools import running_api
from domain.privacy import ERASED, RetentionRule
from events import streams
from events.catalogue import (
    Asker,
    ConsultationReceived,
    ErasureReason,
    PersonalDataErased,
    SealedAsker,
)
from events.codec import loads
from logtools import drained, events, publish, rejected, stored
from pgtools import PG_URL
from projections import ALL
from services import audit, bootstrap
from services.adapters.config import Settings
from services.adapters.eventlog import EventLog
from services.adapters.keystore import KeyStore, keystore_path
from services.adapters.readmodels import SQLITE_FILE, open_store
from services.intake import IntakeService
from services.privacy import DROPPED_NOTE, RetentionService, erase, reveal
from services.projector import ProjectorService, wait_caught_up

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




def files_holding(root: Path) -> dict[str, list[str]]:
    """Every file under `root` that holds one of the asker's texts, with which."""
    out: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and (found := clear_in(path.read_bytes())):
            out[str(path.relative_to(root))] = found
    return out


async def _revealed(nc: Client, keys: KeyStore) -> list[dict[str, Any]]:
    """Every event of the log as a reader with the right sees it: askers opened."""
    out = []
    for m in await audit.read_log(nc.jetstream()):
        e = loads(m.data)
        if isinstance(e, ConsultationReceived) and e.data.asker is not None:
            e = e.model_copy(update={"data": e.data.model_copy(
                update={"asker": reveal(keys, e.data.asker)})})
        out.append(e.model_dump(mode="json"))
    return out


async def test_erasure_leaves_the_asker_nowhere_and_the_chain_still_verifies(
    nc: Client, intake: object, settings: Settings, tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    await _consulted(nc, "PD-9", "Q1")
    other = {"name": "司马青", "phone": "13700001111", "reply_via": "phone"}
    for cid, who in (("Q2", f.asker(email=None)), ("Q3", other)):
        await publish(nc, f.consultation("PD-9", cid, asker=who))
    await publish(nc, f.draft("PD-10"))
    await publish(nc, f.consultation("PD-10", "Q1", asker=f.asker()))
    await drained(nc)
    js = nc.jetstream()
    keys = KeyStore(keystore_path(settings))
    before_log = await audit.read_log(js)
    before = await _revealed(nc, keys)
    await asyncio.to_thread(audit.replay, before_log, tmp_path / "replay-before")
    assert audit.verify(before_log, [], None).ok
    opened = loads(before_log[1].data)
    assert isinstance(opened, ConsultationReceived)
    assert isinstance(opened.data.asker, SealedAsker)
    subject = opened.data.asker.subject_id

    privacy_nc = await bootstrap.connect(str(settings.nats_url), "jiedu-privacy")
    try:
        done = await erase(EventLog(privacy_nc), keys, subject, by="op-7",
                           reason=ErasureReason.REQUEST)
        again = await erase(EventLog(privacy_nc), keys, subject, by="op-7",
                            reason=ErasureReason.REQUEST)
    finally:
        await privacy_nc.close()
    assert done.key_versions == (1,) and set(done.recorded) == {"PD-9", "PD-10"}
    assert again.recorded == done.recorded  # recorded once, however often it runs

    after_log = await audit.read_log(js)
    # the log is the same bytes, plus one erasure event per case
    assert [(m.seq, m.data) for m in after_log[: len(before_log)]] == [
        (m.seq, m.data) for m in before_log]
    erasures = [loads(m.data) for m in after_log[len(before_log):]]
    assert sorted((e.type, e.case_id) for e in erasures) == [
        ("PersonalDataErased", "PD-10"), ("PersonalDataErased", "PD-9")]
    by_case = {e.case_id: e for e in erasures if isinstance(e, PersonalDataErased)}
    assert by_case["PD-9"].data.consultation_ids == ["Q1", "Q2"]
    assert by_case["PD-9"].actor.id == "op-7" and by_case["PD-9"].data.subject_id == subject
    report = audit.verify(after_log, [], None)
    assert report.ok, report.as_dict()

    # a replay before and after differs only in the erased fields
    after = (await _revealed(nc, keys))[: len(before)]
    changed = [(i, k) for i, (b, a) in enumerate(zip(before, after, strict=True))
               for k in ("name", "phone", "email")
               if b["type"] == "ConsultationReceived" and b["data"].get("asker")
               and b["data"]["asker"].get(k) != a["data"]["asker"].get(k)]
    assert {after[i]["data"]["asker"][k] for i, k in changed} == {ERASED}
    assert {(after[i]["case_id"], after[i]["data"]["consultation_id"]) for i, _ in changed} == {
        ("PD-9", "Q1"), ("PD-9", "Q2"), ("PD-10", "Q1")}
    assert any(e["data"].get("asker", {}).get("name") == "司马青" for e in after)  # others kept
    for b, a in zip(before, after, strict=True):
        if b["type"] == "ConsultationReceived" and b["data"].get("asker"):
            b["data"]["asker"] = {k: v for k, v in b["data"]["asker"].items()
                                  if k not in ("name", "phone", "email")}
            a["data"]["asker"] = {k: v for k, v in a["data"]["asker"].items()
                                  if k not in ("name", "phone", "email")}
    assert before == after
    await asyncio.to_thread(audit.replay, after_log, tmp_path / "replay-after")

    # nowhere under the data directory: NATS store files (INTAKE's consumed messages too),
    # the key store, the read models and exports of both replays; and in no log line
    assert files_holding(tmp_path) == {}
    out, err = capfd.readouterr()
    assert clear_in((out + err).encode()) == []
    # the case goes on: the intake reads the erasure in its history like any event
    later = f.answer("PD-9", "Q3")
    await publish(nc, later)
    await drained(nc)
    assert later["event_id"] in {e["event_id"] for _, e in await events(nc)}


async def test_an_acknowledged_message_naming_a_person_is_overwritten_in_intake_store_files(
    nc: Client, settings: Settings, tmp_path: Path
) -> None:
    """The work queue removes an acknowledged message, but its bytes stay in the block file
    while another message lives in the same block (nats-server compacts a block only later):
    measured here before the fix. The intake therefore erases such messages before it
    acknowledges them. One message stays pending (its case is not open yet) meanwhile."""
    slow = dataclasses.replace(settings, wait_for_case_s=(4.0, 4.0))
    await publish(nc, f.draft("PD-20"))
    await publish(nc, f.consultation("PD-20", "Q1", asker=f.asker()))
    await publish(nc, f.consultation("PD-20", "Q2", asker={**f.asker(), "address": "解放碑"}))
    await publish(nc, f.consultation("PD-WAIT", "Q1"))  # waits for a case that never opens
    store = tmp_path / "nats"
    assert files_holding(store) != {}  # what the intake must erase is there at first
    own = await bootstrap.connect(str(settings.nats_url), "jiedu-intake")
    service = IntakeService(own, bootstrap.organs(settings), slow)
    await service.start()
    try:
        js = nc.jetstream()
        deadline = asyncio.get_running_loop().time() + 30
        # decided (two appended, one refused) and acknowledged: the appends come before the
        # acknowledgements, so the count of INTAKE is waited for too, not read once
        while not (
            len(await events(nc)) >= 2 and len(await rejected(nc)) >= 1
            and (await js.stream_info(streams.INTAKE)).state.messages == 1
        ):
            assert asyncio.get_running_loop().time() < deadline, "not decided in 30 s"
            await asyncio.sleep(0.05)
        assert files_holding(store) == {}
    finally:
        await service.stop()
        await own.close()


def pg_text(schema: str) -> bytes:
    """Every row of every table of a PostgreSQL schema, as text."""
    import psycopg

    out = []
    with psycopg.connect(PG_URL) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchall()
        for (table,) in tables:
            for row in conn.execute(f'SELECT * FROM "{schema}"."{table}"'):
                out.append(repr(row))
    return "\n".join(out).encode()


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
async def test_qa4_the_api_shows_the_asker_to_the_drafting_unit_and_office_masked_to_others(
    nc: Client, intake: object, settings: Settings, tmp_path: Path, dialect: str
) -> None:
    lost = {"name": "端木遥", "phone": "13600002222", "reply_via": "phone"}
    await publish(nc, f.draft("PD-30"))
    for cid, who in (("Q1", f.asker()), ("Q2", lost)):
        await publish(nc, f.consultation("PD-30", cid, asker=who))
    await publish(nc, f.consultation("PD-30", "Q3"))  # an asker-less (pre-issue-17) form
    await drained(nc)
    keys = KeyStore(keystore_path(settings))
    by_name = {}
    for _, e in await events(nc):
        if e["data"].get("asker"):
            by_name[e["data"]["consultation_id"]] = e["data"]["asker"]["subject_id"]
    async with running_api(settings, nc, dialect, tmp_path / "api") as api:
        await api.settled()

        async def seen(party: str | None) -> dict[str, Any]:
            r = await api.get("/cases/PD-30/consultations", party)
            assert r.status_code == 200, r.text
            return {c["consultation_id"]: c for c in r.json()["consultations"]}

        for party in ("drc", "gov_office"):
            clear = await seen(party)
            assert clear["Q1"]["asker"] == {**f.asker(), "reply_via": "phone"}
            assert clear["Q1"]["asker_key"] == "ok" and clear["Q3"]["asker"] is None
        audited = await seen("auditor")
        assert audited["Q1"]["asker"]["phone"] == "***" and audited["Q1"]["asker"]["name"] == "***"
        assert audited["Q1"]["asker"]["reply_via"] == "phone"
        assert (await api.get("/cases/PD-30/consultations", "education")).status_code == 404
        assert (await api.get("/cases/PD-30/consultations", None)).status_code in (401, 403)

        # erase the first asker; lose the second's key (a fault, not an erasure)
        privacy_nc = await bootstrap.connect(str(settings.nats_url), "jiedu-privacy")
        try:
            await erase(EventLog(privacy_nc), keys, by_name["Q1"], by="op-7",
                        reason=ErasureReason.RETENTION)
        finally:
            await privacy_nc.close()
        with keys._lock:
            keys._db.execute("DELETE FROM subject_keys WHERE subject_id = ?", (by_name["Q2"],))
        await api.settled()
        for party in ("drc", "gov_office", "auditor"):
            after = await seen(party)
            assert after["Q1"]["asker_key"] == "erased"
            assert {after["Q1"]["asker"][k] for k in ("name", "phone", "email")} == {ERASED}
            assert after["Q2"]["asker_key"] == "lost"
            assert after["Q2"]["asker"]["name"] is None  # reported, not shown as erased
            assert after["Q1"]["question"] == "补贴怎么申请?"  # the rest unchanged
        # the read model keeps no text of the erased asker (SQLite file or PostgreSQL rows)
        if dialect == "postgresql":
            schema = api.store.schema
            assert schema is not None
            assert clear_in(pg_text(schema)) == []
    assert files_holding(tmp_path) == {}


async def test_sm4_gcm_is_a_setting_for_commercial_cryptography(
    nc: Client, settings: Settings
) -> None:
    """商用密码: JIEDU_PERSONAL_CIPHER=SM4-GCM seals with SM4 in GCM mode (cryptography 50)."""
    sm4 = dataclasses.replace(settings, personal_cipher="SM4-GCM")
    own = await bootstrap.connect(str(settings.nats_url), "jiedu-intake")
    service = IntakeService(own, bootstrap.organs(sm4), sm4)
    await service.start()
    try:
        await _consulted(nc, "PD-40")
    finally:
        await service.stop()
        await own.close()
    sealed = [SealedAsker.model_validate(e["data"]["asker"]) for _, e in await events(nc)
              if e["data"].get("asker")]
    assert [s.algorithm for s in sealed] == ["SM4-GCM"]
    assert clear_in(orjson.dumps([s.model_dump() for s in sealed])) == []
    assert reveal(KeyStore(keystore_path(sm4)), sealed[0]) == Asker.model_validate(f.asker())


async def test_the_retention_rule_erases_an_asker_n_days_after_the_answer_as_a_running_service(
    nc: Client, intake: object, settings: Settings, tmp_path: Path
) -> None:
    await _consulted(nc, "PD-50", "Q1")
    await publish(nc, f.consultation("PD-50", "Q2", asker={"name": "上官云", "reply_via": "none"}))
    answered = f.answer("PD-50", "Q1")  # answered 2026-07-06; Q2 still open
    await publish(nc, answered)
    await drained(nc)
    store = open_store(None, tmp_path / "rm")
    projections = ProjectorService(nc.jetstream(), store, ALL)
    await projections.start()
    privacy_nc = await bootstrap.connect(str(settings.nats_url), "jiedu-privacy")
    keys = KeyStore(keystore_path(settings))
    rule = RetentionRule(asker_days_after_answer=30, scan_every_s=0.2)
    today = [datetime(2026, 8, 1, tzinfo=UTC)]
    service = RetentionService(privacy_nc, store, keys, rule, clock=lambda: today[0])
    try:
        await wait_caught_up(nc.jetstream(), store, timeout=30)
        assert await service.scan_once() == []  # 26 days after the answer: kept
        today[0] = datetime(2026, 8, 6, tzinfo=UTC)
        await service.start()  # 31 days: erased by the running service
        for _ in range(100):
            erased = [e for _, e in await events(nc) if e["type"] == "PersonalDataErased"]
            if erased:
                break
            await asyncio.sleep(0.1)
        assert len(erased) == 1 and erased[0]["data"]["reason"] == "retention"
        assert erased[0]["actor"]["id"] == "jiedu-retention"
        assert erased[0]["data"]["consultation_ids"] == ["Q1"]  # the other asker is kept
        await wait_caught_up(nc.jetstream(), store, timeout=30)
        assert await service.scan_once() == []  # nothing left to erase
    finally:
        await service.stop()
        await projections.stop()
        await privacy_nc.close()
        await asyncio.to_thread(store.close)
    kept = [e for _, e in await events(nc) if e["data"].get("asker", {}).get("sealed", {})]
    assert len(kept) == 2  # the log's bytes are unchanged: erasure is of keys only
    assert files_holding(tmp_path) == {}


def _jiedu(settings: Settings, *args: str, env: dict[str, str] | None = None
           ) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "NATS_URL": settings.nats_url or "",
           "JIEDU_DATA_DIR": str(settings.data_dir), "JIEDU_LOG_LEVEL": "warning", **(env or {})}
    return subprocess.run([sys.executable, "-m", "services.cli", *args], env=env,
                          capture_output=True, timeout=60)


async def test_jiedu_privacy_subject_and_erase_and_a_lost_key_is_reported(
    nc: Client, intake: object, settings: Settings
) -> None:
    await _consulted(nc, "PD-60", "Q1")
    other = {"name": "慕容秋", "phone": "13500003333", "reply_via": "phone"}
    await publish(nc, f.consultation("PD-60", "Q2", asker=other))
    await drained(nc)
    subjects = [e["data"]["asker"]["subject_id"] for _, e in await events(nc)
                if e["data"].get("asker")]
    found = await asyncio.to_thread(_jiedu, settings, "privacy", "subject", "--phone",
                                    "+86 139 1234 5678")
    assert found.returncode == 0, found.stderr.decode()
    assert found.stdout.decode().strip() == subjects[0]

    erased = await asyncio.to_thread(_jiedu, settings, "privacy", "erase", subjects[0],
                                     "--by", "op-1", "--json")
    assert erased.returncode == 0, erased.stderr.decode()
    assert orjson.loads(erased.stdout)["recorded"].keys() == {"PD-60"}
    assert clear_in(erased.stdout + erased.stderr) == []

    unknown = await asyncio.to_thread(_jiedu, settings, "privacy", "erase", "ds-" + "0" * 32)
    assert unknown.returncode == 1 and b"no data subject" in unknown.stderr
    keys = KeyStore(keystore_path(settings))
    with keys._lock:
        keys._db.execute("DELETE FROM subject_keys WHERE subject_id = ?", (subjects[1],))
    lost = await asyncio.to_thread(_jiedu, settings, "privacy", "erase", subjects[1])
    assert lost.returncode == 1 and b"lost, not erased" in lost.stderr
    assert [e["data"]["subject_id"] for _, e in await events(nc)
            if e["type"] == "PersonalDataErased"] == [subjects[0]]

    # `jiedu replay` and `jiedu audit verify` on the replayed trail, and `jiedu audit export`:
    # the chain verifies after erasure, and no output holds the erased asker's texts
    replayed = settings.data_dir / "replayed"
    done = await asyncio.to_thread(_jiedu, settings, "replay", "--as-of", "999999", "--out",
                                   str(replayed))
    assert done.returncode == 0, done.stderr.decode()
    verified = await asyncio.to_thread(
        _jiedu, settings, "audit", "verify", env={"DATABASE_URL": f"sqlite:///{replayed / SQLITE_FILE}"})
    assert verified.returncode == 0, verified.stdout.decode() + verified.stderr.decode()
    assert b"OK" in verified.stdout
    exported = await asyncio.to_thread(
        _jiedu, settings, "audit", "export", "--format", "csv", "--out",
        str(settings.data_dir / "trail.csv"),
        env={"DATABASE_URL": f"sqlite:///{replayed / SQLITE_FILE}"})
    assert exported.returncode == 0, exported.stderr.decode()
    assert b"PersonalDataErased" in (settings.data_dir / "trail.csv").read_bytes()
    for path in replayed.rglob("*"):
        if path.is_file():
            assert clear_in(path.read_bytes()) == [], path
    assert clear_in((settings.data_dir / "trail.csv").read_bytes()) == []
