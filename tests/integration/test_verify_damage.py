"""`jiedu audit verify` on a damaged log (issue 14): a log shortened by a limits update, a
truncated or an edited store file, a deleted stream — each a named divergence at the first
missing sequence, exit 1, never a traceback or a time-out.

The damage is done as it would be: a limits update and deletes with the operator's identity
(the only one the server lets do it), store files changed while the server is down; verify
runs as `jiedu` does, in its own process, as the auditor.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from nats.aio.client import Client
from nats.js.api import DiscardPolicy

import factories as f
from events import streams
from services import audit, bootstrap
from services.adapters.config import Settings
from services.adapters.eventlog import EventLog
from services.adapters.natsserver import NatsServer

CASES = 30


@pytest.fixture
async def signed(settings: Settings, nc: Client, tmp_path: Path) -> AsyncIterator[int]:
    """A log of a few dozen events with a signed checkpoint at its head; yields the head."""
    log = EventLog(nc)
    for i in range(CASES):
        event = f.draft(f"D-{i:03d}")
        subject = streams.event_subject(event["department"], event["case_id"], event["type"])
        await log.append(event["case_id"], [(subject, f.dumps(event), {})], expected_last=0)
    private, public = audit.key_paths(tmp_path)
    audit.init_keys(private, public)
    operator = await bootstrap.connect(str(settings.nats_url), "jiedu-audit-checkpoint")
    try:
        cp = await audit.checkpoint(operator.jetstream(), audit.load_private_key(private))
    finally:
        await operator.close()
    assert cp.seq >= CASES
    yield cp.seq


def verify(settings: Settings, tmp_path: Path) -> tuple[int, str, str]:
    """`jiedu audit verify` in a process of its own; (exit code, stdout, stderr)."""
    env = {**os.environ, "NATS_URL": str(settings.nats_url), "JIEDU_LOG_LEVEL": "error"}
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "audit", "verify", "--skip-rows",
         "--data-dir", str(tmp_path)],
        env=env, capture_output=True, timeout=120,
    )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def divergence(out: str) -> int:
    found = re.search(r"DIVERGENCE at sequence (\d+): (.*)", out)
    assert found, out
    return int(found.group(1))


def block_file(server: NatsServer) -> Path:
    blocks = sorted((server.store_dir / "jetstream").glob("*/streams/EVENTS/msgs/*.blk"))
    assert blocks, "no EVENTS block file"
    return blocks[0]


async def test_the_undamaged_log_verifies(
    settings: Settings, signed: int, tmp_path: Path
) -> None:
    code, out, err = verify(settings, tmp_path)
    assert code == 0, out + err
    assert "OK" in out


async def test_a_log_shortened_by_a_limits_update_is_a_divergence_at_its_first_lost_sequence(
    settings: Settings, nc: Client, signed: int, tmp_path: Path
) -> None:
    operator = await bootstrap.connect(str(settings.nats_url), "jiedu-operator")
    try:
        await operator.jetstream().update_stream(
            replace(streams.events_stream(), max_msgs=5, discard=DiscardPolicy.OLD)
        )
    finally:
        await operator.close()
    assert (await nc.jetstream().stream_info(streams.EVENTS)).state.first_seq == signed - 4
    code, out, err = verify(settings, tmp_path)
    assert code == 1, out + err
    assert divergence(out) == 1
    assert "Traceback" not in err + out


async def test_a_deleted_events_stream_is_a_divergence_at_sequence_1(
    settings: Settings, signed: int, tmp_path: Path
) -> None:
    operator = await bootstrap.connect(str(settings.nats_url), "jiedu-operator")
    try:
        await operator.jetstream().delete_stream(streams.EVENTS)
    finally:
        await operator.close()
    code, out, err = verify(settings, tmp_path)
    assert code == 1, out + err
    assert divergence(out) == 1 and "EVENTS is missing" in out
    assert "Traceback" not in err + out


async def test_a_deleted_checkpoints_stream_is_a_divergence(
    settings: Settings, signed: int, tmp_path: Path
) -> None:
    operator = await bootstrap.connect(str(settings.nats_url), "jiedu-operator")
    try:
        await operator.jetstream().delete_stream(streams.CHECKPOINTS)
    finally:
        await operator.close()
    code, out, err = verify(settings, tmp_path)
    assert code == 1, out + err
    assert "CHECKPOINTS is missing" in out
    assert "Traceback" not in err + out


async def test_a_truncated_store_file_is_a_divergence_at_the_first_lost_sequence(
    nats_server: NatsServer, settings: Settings, nc: Client, signed: int, tmp_path: Path
) -> None:
    nats_server.stop()
    block = block_file(nats_server)
    size = block.stat().st_size
    with block.open("r+b") as out:
        out.truncate(size // 2)
    nats_server.start()
    code, out, err = verify(settings, tmp_path)
    assert code == 1, out + err
    first_lost = divergence(out)
    assert 1 < first_lost <= signed
    assert "Traceback" not in err + out


async def test_an_edited_store_file_is_a_divergence_no_later_than_the_edit(
    nats_server: NatsServer, settings: Settings, nc: Client, signed: int, tmp_path: Path
) -> None:
    nats_server.stop()
    block = block_file(nats_server)
    data = bytearray(block.read_bytes())
    at = data.find(b"D-015")  # a case ID in the body of one event, midway through the log
    assert at > 0
    data[at : at + 5] = b"X-015"
    block.write_bytes(bytes(data))
    nats_server.start()
    code, out, err = verify(settings, tmp_path)
    assert code == 1, out + err
    assert 1 < divergence(out) <= signed
    assert "Traceback" not in err + out
