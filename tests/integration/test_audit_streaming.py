"""`jiedu audit verify` and `jiedu replay` stream the log (issue 19): a chunk at a time, the
audit rows a chunk's range of sequences at a time, so that a log of a million events is checked
in bounded memory — and they prove what the whole-log check proved.

Forgeries are copies of the real log read back and changed (EVENTS itself cannot be changed),
fed chunk by chunk to the streaming check against the audit rows *in the store*, and its report
must be the one the in-memory `verify` gives on the whole log and rows."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client

from domain import chain
from forgeries import FORGERIES
from logtools import drained
from projections.base import Stored
from services import audit
from services.adapters.readmodels import SQLITE_FILE, SQLiteStore
from services.tools import bench, demo

CHUNK = 19
"""A chunk size that divides nothing here: tampering falls inside chunks and on their edges."""




def _streamed(
    log: list[Stored], store: SQLiteStore, checkpoints: list[chain.Checkpoint], key: Any,
    chunk: int = CHUNK,
) -> audit.AuditReport:
    """The streaming check as `verify_log` runs it: chunks of the log, rows from the store."""
    check = audit.Verification(checkpoints, key, audit.StoreAuditRows(store))
    for start in range(0, len(log), chunk):
        assert check.feed(log[start : start + chunk])
    return check.finish()


@pytest.fixture
async def trail(nc: Client, intake: object, tmp_path: Path) -> tuple[list[Stored], Path]:
    """A few hundred events through the intake, and their audit trail as `jiedu replay` makes
    it (every row chained on its stored message)."""
    js = nc.jetstream()
    messages = demo.generate("2026Q3", 7, cases=12)
    await asyncio.gather(*[await js.publish_async(m.subject, m.encode()) for m in messages])
    await drained(nc, timeout=120)
    log = await audit.read_log(js, batch=CHUNK)
    assert [m.seq for m in log] == list(range(1, len(log) + 1)) and len(log) > 8 * CHUNK
    await asyncio.to_thread(audit.replay, log, tmp_path / "trail")
    return log, tmp_path / "trail"


async def test_streaming_verify_of_the_server_gives_the_whole_log_report(
    nc: Client, trail: tuple[list[Stored], Path], tmp_path: Path
) -> None:
    log, directory = trail
    js = nc.jetstream()
    key = chain.new_private_key()
    await audit.checkpoint(js, key, upto=len(log) // 2)
    await audit.checkpoint(js, key)
    checkpoints = await audit.read_checkpoints(js)
    store = SQLiteStore(directory / SQLITE_FILE)
    try:
        streamed = await audit.verify_log(js, store, key.public_key(), chunk=CHUNK)
        whole = audit.verify(log, checkpoints, key.public_key(), audit.audit_rows(store),
                             state=await audit.log_state(js), incidents=store.incidents())
    finally:
        store.close()
    assert streamed.ok, streamed.divergence
    assert streamed.as_dict() == whole.as_dict()
    assert (streamed.events, streamed.rows, streamed.checkpoints) == (len(log), len(log), 2)


@pytest.mark.parametrize("forge", FORGERIES, ids=lambda f: f.__name__)
@pytest.mark.parametrize("where", ["mid_chunk", "chunk_edge"])
async def test_a_forged_event_in_the_middle_of_a_many_chunk_log_is_named(
    nc: Client, trail: tuple[list[Stored], Path], forge: Callable[[list[Stored], int],
                                                                 list[Stored]], where: str
) -> None:
    log, directory = trail
    k = 4 * CHUNK + (CHUNK // 2 if where == "mid_chunk" else 0)  # 4*CHUNK: last of chunk 4
    key = chain.new_private_key()
    store = SQLiteStore(directory / SQLITE_FILE)
    try:
        rows = audit.audit_rows(store)
        forged = forge(log, k)
        streamed = _streamed(forged, store, [], key.public_key())
        whole = audit.verify(forged, [], key.public_key(), rows)
    finally:
        store.close()
    assert streamed.divergence is not None, forge.__name__
    assert streamed.divergence.seq == k, streamed.divergence
    assert streamed.as_dict() == whole.as_dict()


async def test_an_edited_or_missing_audit_row_in_a_later_chunk_is_named(
    nc: Client, trail: tuple[list[Stored], Path], tmp_path: Path
) -> None:
    log, directory = trail
    edited, deleted = 5 * CHUNK + 3, 7 * CHUNK + 1
    for change, seq, reason in (
        ("UPDATE audit_trail__g1 SET actor_name = '某人' WHERE seq = ?", edited, "'actor_name'"),
        ("DELETE FROM audit_trail__g1 WHERE seq = ?", deleted, f"no audit row for sequence {deleted}"),
    ):
        copy = tmp_path / f"trail-{seq}.sqlite3"
        shutil.copyfile(directory / SQLITE_FILE, copy)
        with sqlite3.connect(copy) as db:
            assert db.execute(change, (seq,)).rowcount == 1
        store = SQLiteStore(copy)
        try:
            found = _streamed(log, store, [], None)
            whole = audit.verify(log, [], None, audit.audit_rows(store))
        finally:
            store.close()
        assert found.divergence is not None and found.divergence.seq == seq, found.divergence
        assert reason in found.divergence.reason
        assert found.as_dict() == whole.as_dict()


async def test_a_streamed_replay_writes_what_the_whole_log_replay_writes(
    nc: Client, trail: tuple[list[Stored], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks of the log applied while the next is read, tables exported a page at a time:
    the same bytes as before, and a replay as of a point stops reading there."""
    log, directory = trail
    monkeypatch.setattr(audit, "EXPORT_PAGE", 7)  # many pages per table
    js = nc.jetstream()
    streamed = await audit.replay_log(js, tmp_path / "streamed", None, chunk=CHUNK)
    assert streamed.as_of_seq == len(log)
    assert set(streamed.files) == {t.name for p in audit.replayed() for t in p.tables}
    store = SQLiteStore(tmp_path / "streamed" / SQLITE_FILE)
    try:  # each export is the whole table at once, as the replay wrote it before it paged
        for p in audit.replayed():
            for name, rows in store.dump(p).items():
                body = (tmp_path / "streamed" / f"{name}.jsonl").read_bytes()
                assert body == audit.to_jsonl(rows), name
                assert streamed.files[name] == hashlib.sha256(body).hexdigest()
    finally:
        store.close()
    assert (tmp_path / "streamed" / "manifest.json").read_bytes() == (
        directory / "manifest.json").read_bytes()
    k = 3 * CHUNK + 5
    at = log[k - 1].stored_at
    assert at is not None
    n = audit.prefix(log, at)  # events stored in the same instant are one point in time
    part = await audit.replay_log(js, tmp_path / "part", at, chunk=CHUNK)
    whole = await asyncio.to_thread(audit.replay, log[:n], tmp_path / "part-whole")
    assert part.as_of_seq == n and part.files == whole.files


@pytest.mark.parametrize("size", [(8_000, 32_000)])
async def test_verify_and_replay_peak_memory_does_not_grow_with_the_log(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    """`bench.verify_part` at two sizes: verify and replay each in a child process of its own
    (peak RSS its own alone), chunks of 500. Eight times the events must not cost memory: a
    whole-log check held ~4 kB per event (message, audit row, exported line), 55 MB more here."""
    small, large = size
    figures = {}
    for n in (small, large):
        (tmp_path / str(n)).mkdir()
        part = await bench.verify_part(n, tmp_path / str(n), chunk=500)
        assert part["verify"]["ok"], part["verify"]["divergence"]
        assert part["verify"]["events"] == part["verify"]["audit_rows"] == n
        assert part["replay"]["as_of_seq"] == n
        figures[n] = part
    for what in ("verify", "replay"):
        grew = figures[large][what]["peak_rss_mb"] - figures[small][what]["peak_rss_mb"]
        assert grew < 15, (what, figures[small][what], figures[large][what])
