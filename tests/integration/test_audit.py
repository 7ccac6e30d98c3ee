"""Audit trail, tamper evidence and replay on a real nats-server with the demo quarter.

The log itself cannot be tampered with (EVENTS denies delete and purge), so forgeries are
copies of the real log read back, changed, and fed to the pure `services.audit.verify`."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pytest
import typer
from nats.aio.client import Client
from typer.testing import CliRunner

from domain import chain
from domain.calendar import SHANGHAI
from forgeries import changed, inserted, removed, swapped
from logtools import drained, rejected
from services import audit
from services.adapters.config import Settings
from services.adapters.readmodels import SQLITE_FILE, SQLiteStore
from services.app import load_demo
from services.cli import audit as cli_audit
from services.tools import demo

MID_QUARTER = datetime(2026, 8, 15, tzinfo=SHANGHAI)


def _rows(directory: Path) -> list[dict[str, object]]:
    store = SQLiteStore(directory / SQLITE_FILE)
    try:
        return audit.audit_rows(store)
    finally:
        store.close()


def _jsonl(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


async def test_the_demo_log_verifies_replays_deterministically_and_tampering_is_named(
    nc: Client, intake: object, tmp_path: Path
) -> None:
    sent = await load_demo(nc, "2026Q3")
    await drained(nc, timeout=180)
    assert sent > 4000 and await rejected(nc) == {}
    js = nc.jetstream()
    log = await audit.read_log(js)
    assert [m.seq for m in log] == list(range(1, len(log) + 1)) and len(log) >= sent
    assert all(m.stored_at is not None for m in log)

    full = await asyncio.to_thread(audit.replay, log, tmp_path / "full")
    rows = _rows(tmp_path / "full")
    assert len(rows) == len(log)
    assert all(r["link"] and r["recorded_at"] for r in rows)
    assert rows[-1]["link"] == full.head

    # signed checkpoints: one half-way, one at the head
    key = chain.new_private_key()
    half = await audit.checkpoint(js, key, upto=len(log) // 2)
    at_head = await audit.checkpoint(js, key)
    assert (half.seq, at_head.seq, at_head.link) == (len(log) // 2, len(log), full.head)
    checkpoints = await audit.read_checkpoints(js)
    assert checkpoints == [half, at_head]
    report = audit.verify(log, checkpoints, key.public_key(), rows)
    assert report.ok, report.divergence
    assert (report.head_seq, report.rows, report.checkpoints) == (len(log), len(log), 2)

    # every kind of forgery of the log, named at its sequence
    k = len(log) // 3
    for forge in (changed, removed, swapped, inserted):
        found = audit.verify(forge(log, k), checkpoints, key.public_key(), rows)
        assert found.divergence is not None, forge.__name__
        assert found.divergence.seq == k, (forge.__name__, found.divergence)
        # … and by the signed checkpoint alone, for a forger who rewrote the audit rows too
        alone = audit.verify(forge(log, k), checkpoints, key.public_key(), None)
        assert alone.divergence is not None and alone.divergence.seq <= half.seq

    # a checkpoint signed with another key
    other = await audit.checkpoint(js, chain.new_private_key(), upto=len(log) - 5)
    found = audit.verify(log, [*checkpoints, other], key.public_key(), rows)
    assert found.divergence is not None and found.divergence.seq == len(log) - 5
    assert "signature" in found.divergence.reason

    # an audit row edited in SQLite
    edited = 1234
    with sqlite3.connect(tmp_path / "full" / SQLITE_FILE) as db:
        updated = db.execute(
            "UPDATE audit_trail__g1 SET actor_name = '某人' WHERE seq = ?", (edited,)
        ).rowcount
    assert updated == 1
    found = audit.verify(log, checkpoints, key.public_key(), _rows(tmp_path / "full"))
    assert found.divergence is not None and found.divergence.seq == edited
    assert "actor_name" in found.divergence.reason

    # replay as of mid-quarter (by occurred time), twice: byte-identical, and the past state
    n = audit.prefix(log, MID_QUARTER, "occurred")
    assert 0 < n < len(log)
    first = await asyncio.to_thread(audit.replay, log[:n], tmp_path / "mid1")
    second = await asyncio.to_thread(audit.replay, log[:n], tmp_path / "mid2")
    assert first.files == second.files and first.as_of_seq == n
    for name in first.files:
        assert (tmp_path / "mid1" / f"{name}.jsonl").read_bytes() == (
            tmp_path / "mid2" / f"{name}.jsonl"
        ).read_bytes()
    assert (tmp_path / "mid1" / "manifest.json").read_bytes() == (
        tmp_path / "mid2" / "manifest.json"
    ).read_bytes()
    then = {r["case_id"]: r for r in _jsonl(tmp_path / "mid1" / "case_summary.jsonl")}
    later = [
        r for r in _jsonl(tmp_path / "full" / "case_summary.jsonl")
        if r["status"] == "published" and r["case_id"] in then
        and str(r["first_website_text_on"]) > MID_QUARTER.date().isoformat()
    ]
    assert later, "the demo publishes some cases opened before mid-quarter after it"
    for r in later:
        assert then[str(r["case_id"])]["status"] != "published", r["case_id"]
    assert len(_jsonl(tmp_path / "mid1" / "audit_trail.jsonl")) == n

    # the quarter-end checkpoint: the log as it stood at the end of the quarter, once
    now = datetime(2099, 1, 5, tzinfo=SHANGHAI)
    made = await audit.checkpoint_if_quarter_ended(js, key, now)
    assert made is not None and made.label == "quarter:2098Q4" and made.seq == len(log)
    assert made.link == full.head
    assert await audit.checkpoint_if_quarter_ended(js, key, now) is None
    with pytest.raises(FileExistsError):  # the stream itself refuses a second one
        await audit.checkpoint(js, key, label="quarter:2098Q4", once=True)


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    assert settings.nats_url is not None
    monkeypatch.setenv("NATS_URL", settings.nats_url)
    app = typer.Typer()
    cli_audit.register(app)
    return app


async def test_the_commands_init_keys_checkpoint_verify_replay_and_export(
    nc: Client, intake: object, tmp_path: Path, cli_env: typer.Typer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    js = nc.jetstream()
    messages = demo.generate("2026Q3", 7, cases=25)
    await asyncio.gather(*[await js.publish_async(m.subject, m.encode()) for m in messages])
    await drained(nc, timeout=120)
    runner = CliRunner()
    data = tmp_path / "office"

    async def run(*args: str) -> tuple[int, str]:
        result = await asyncio.to_thread(runner.invoke, cli_env, [*args, "--data-dir", str(data)])
        return result.exit_code, result.output

    code, out = await run("keys", "init")
    assert code == 0, out
    private, public = audit.key_paths(data)
    assert private.stat().st_mode & 0o777 == 0o600 and public.exists()
    assert (await run("keys", "init"))[0] == 1  # never silently replaced

    code, out = await run("audit", "checkpoint")
    assert code == 0, out
    replayed = tmp_path / "replayed"
    code, out = await run("replay", "--as-of", "999999", "--out", str(replayed))
    assert code == 0, out
    # verify the replayed audit trail (the live projector does not fill links yet)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{replayed / SQLITE_FILE}")
    code, out = await run("audit", "verify")
    assert code == 0, out
    assert "OK" in out

    code, out = await run("audit", "export", "--format", "csv", "--out", str(tmp_path / "a.csv"))
    assert code == 0, out
    body = (tmp_path / "a.csv").read_bytes()
    assert body.startswith(b"\xef\xbb\xbfseq,event_id,")
    case = _jsonl(replayed / "audit_trail.jsonl")[0]["case_id"]
    code, out = await run("audit", "export", "--case", str(case), "--html",
                          "--out", str(tmp_path / "case.html"))
    assert code == 0, out
    page = (tmp_path / "case.html").read_text(encoding="utf-8")
    assert f"审计轨迹 · {case}" in page and "http" not in page.split("<body>")[0]
    assert "<script" not in page and "<link" not in page
    code, out = await run("audit", "show", str(case))
    assert code == 0 and str(case) in out

    with sqlite3.connect(replayed / SQLITE_FILE) as db:
        db.execute("UPDATE audit_trail__g1 SET summary_zh = '已篡改' WHERE seq = 5")
    code, out = await run("audit", "verify")
    assert code == 1 and "DIVERGENCE at sequence 5" in out


async def test_the_live_audit_trail_kept_by_the_projector_verifies(
    nc: Client, intake: object, tmp_path: Path
) -> None:
    """The runner hands the audit trail each message as stored, so the rows `jiedu up` keeps
    carry the chain links and stored times that `jiedu audit verify` checks."""
    from projections.audit import AuditTrail
    from services.adapters.readmodels import open_store
    from services.projector import ProjectorService, wait_caught_up

    await load_demo(nc, "2026Q3")
    await drained(nc, timeout=180)
    store = open_store(None, tmp_path)
    trail = AuditTrail()
    service = ProjectorService(nc.jetstream(), store, [trail])
    await service.start()
    try:
        await wait_caught_up(nc.jetstream(), store, [trail], timeout=120)
    finally:
        await service.stop()
    rows = await asyncio.to_thread(audit.audit_rows, store)
    log = await audit.read_log(nc.jetstream())
    assert len(rows) == len(log) > 4000
    assert all(r["link"] and r["recorded_at"] for r in rows)
    report = audit.verify(log, [], None, rows)
    assert report.ok, report
    store.close()


async def test_the_running_system_signs_the_last_quarter_once(
    nc: Client, intake: object, tmp_path: Path
) -> None:
    """SUP-1's published results pin history: soon after a quarter ends the office key signs
    the chain head as the log stood at its end, once."""
    js = nc.jetstream()
    messages = demo.generate("2026Q3", 7, cases=2)
    await asyncio.gather(*[await js.publish_async(m.subject, m.encode()) for m in messages])
    await drained(nc, timeout=60)
    private, public = audit.key_paths(tmp_path)
    audit.init_keys(private, public)
    key = audit.load_private_key(private)
    # the quarter the events were stored in (now, by the wall clock) has ended
    this_quarter, _, end = audit.quarter_of(datetime.now(SHANGHAI))
    signer = audit.QuarterlyCheckpoints(js, key, every_s=0.05, now=lambda: end + timedelta(days=1))
    await signer.start()
    for _ in range(100):
        if await audit.read_checkpoints(nc.jetstream()):
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # several more checks: still one checkpoint
    await signer.stop()
    [made] = await audit.read_checkpoints(nc.jetstream())
    assert made.label == f"quarter:{this_quarter}"
    assert made.seq == len(await audit.read_log(js)) > 0


async def test_a_fresh_system_with_the_office_key_verifies_from_its_first_minute(
    nc: Client, tmp_path: Path
) -> None:
    """Issue 13, defect 2: on an empty log the quarter signer has nothing to sign (no false
    "beyond the log's end" divergence), and a checkpoint of the empty chain that an older
    version appended to the append-only CHECKPOINTS stream verifies."""
    js = nc.jetstream()
    private, public = audit.key_paths(tmp_path)
    audit.init_keys(private, public)
    key = audit.load_private_key(private)
    first_minute = datetime(2026, 12, 1, 9, 0, tzinfo=SHANGHAI)
    assert await audit.checkpoint_if_quarter_ended(js, key, first_minute) is None
    assert await audit.read_checkpoints(js) == []
    report = audit.verify(await audit.read_log(js), [], key.public_key(), [])
    assert report.ok, report

    # what the old signer left behind: quarter:2026Q3 at sequence 0
    old = await audit.checkpoint(js, key, label="quarter:2026Q3", upto=0, once=True)
    assert (old.seq, old.link) == (0, chain.GENESIS_HEX)
    report = audit.verify(await audit.read_log(js), await audit.read_checkpoints(js),
                          key.public_key(), [])
    assert report.ok, report
