"""`jiedu emit`, `jiedu status` and `jiedu tail` as an operator runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

import factories as f
from services.adapters.config import Settings


@pytest.fixture
def env(settings: Settings) -> dict[str, str]:
    return {**os.environ, "NATS_URL": settings.nats_url or "", "JIEDU_PARTITIONS": "4",
            "JIEDU_WAIT_FOR_CASE": "0.05,0.1", "JIEDU_LOG_LEVEL": "warning",
            # the wait for a missing case outlasts ack_wait and the lease: keep both short
            "JIEDU_ACK_WAIT": str(settings.ack_wait_s), "JIEDU_LEASE_TTL": str(settings.lease_ttl_s)}


@pytest.fixture
def running_intake(env: dict[str, str], nc: object) -> Iterator[None]:
    """An intake process; the `nc` fixture has created the streams, as `jiedu up` would."""
    process = subprocess.Popen([sys.executable, "-m", "services.cli", "intake"], env=env,
                               stderr=subprocess.DEVNULL)
    yield
    process.terminate()
    process.wait(20)


def jiedu(env: dict[str, str], *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "services.cli", *args], env=env, input=stdin,
                          capture_output=True, timeout=60)


def test_emit_prints_the_outcome_and_status_finds_it_by_event_id(
    env: dict[str, str], running_intake: None, tmp_path: Path
) -> None:
    draft = {**f.draft("CLI-1"), "occurred_at": "2026-07-06T01:30:00Z"}
    (tmp_path / "draft.json").write_bytes(orjson.dumps(draft))
    emitted = jiedu(env, "emit", str(tmp_path / "draft.json"), "--json")
    assert emitted.returncode == 0, emitted.stderr.decode()
    outcome = orjson.loads(emitted.stdout)
    assert (outcome["status"], outcome["event_id"], outcome["sequence"]) == (
        "accepted", draft["event_id"], 1)
    assert outcome["at"].endswith("+08:00")  # JSON's one form: times in Asia/Shanghai

    again = jiedu(env, "emit", "-", stdin=orjson.dumps(draft))  # for people: one line
    assert again.returncode == 0
    assert again.stdout.decode().startswith(f"{draft['event_id']}: duplicate, case CLI-1, first "
                                            "at log sequence 1")

    status = jiedu(env, "status", draft["event_id"], "--json")
    assert status.returncode == 0 and orjson.loads(status.stdout)["sequence"] == 1
    said = jiedu(env, "status", draft["event_id"]).stdout.decode()
    assert said.startswith(f"{draft['event_id']}: accepted, case CLI-1, at log sequence 1")
    assert "+08:00)" in said
    missing = jiedu(env, "status", "never-sent", "--json")
    assert missing.returncode == 1 and missing.stdout == b""

    log = jiedu(env, "tail", "--all", "--no-follow")
    assert log.returncode == 0
    lines = log.stdout.decode().splitlines()
    assert len(lines) == 1 and "DraftSubmitted" in lines[0] and "CLI-1" in lines[0]
    assert "2026-07-06T09:30:00+08:00" in lines[0]  # sent as 01:30Z, shown as Shanghai reads it
    (line,) = jiedu(env, "tail", "--all", "--no-follow", "--json").stdout.splitlines()
    shown = orjson.loads(line)
    assert shown["sequence"] == 1 and shown["event"]["event_id"] == draft["event_id"]
    assert shown["event"]["occurred_at"] == "2026-07-06T09:30:00+08:00"


def test_emit_of_a_bad_message_exits_1_with_the_reason(
    env: dict[str, str], running_intake: None
) -> None:
    refused = jiedu(env, "emit", "-", "--source", "drc/oa", "--case", "CLI-2", "--json",
                    stdin=b"not json")
    assert refused.returncode == 1
    assert orjson.loads(refused.stdout)["reason"] == "not_json"
    unknown = jiedu(env, "emit", "-", stdin=orjson.dumps(f.issued("CLI-404")))
    assert unknown.returncode == 1 and ": rejected, unknown_case: " in unknown.stdout.decode()
