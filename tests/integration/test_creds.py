"""The embedded default is locked too (issue 14): `jiedu up`'s server creates every party's
credentials in its data dir on first start, and `jiedu creds` issues, lists and revokes them,
a revocation taking effect on the running server's reload."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest

from events import streams
from services import bootstrap
from services.adapters import permissions
from services.adapters.config import Settings
from services.adapters.natsserver import free_port

CONNECT_S = 5.0


def jiedu(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A `jiedu` command on the embedded server of `data_dir` (no NATS_URL)."""
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "JIEDU_CREDENTIALS")}
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args, "--data-dir", str(data_dir)],
        env=env, capture_output=True, text=True, timeout=120,
    )


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Settings]:
    """`jiedu up`'s server on a fresh data dir, as `bootstrap.serving` starts it."""
    settings = Settings(data_dir=tmp_path / "jiedu", nats_port=free_port())
    server = bootstrap.server_for(settings).start()
    yield Settings(data_dir=settings.data_dir, nats_url=server.url, nats_port=settings.nats_port)
    server.stop()


def test_first_start_creates_a_private_seed_for_every_party(embedded: Settings) -> None:
    creds = embedded.credentials
    assert creds.stat().st_mode & 0o777 == 0o700
    expected = set(permissions.table(bootstrap.organs(embedded)))
    seeds = {p.stem: p for p in creds.glob("*.nk")}
    assert set(seeds) == expected
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in seeds.values())
    text = (creds / "authorization.conf").read_text()
    assert text.count('"nkey"') == len(expected) and "no_auth_user" not in text


async def test_every_service_connects_as_itself_on_the_embedded_server(
    embedded: Settings,
) -> None:
    url = str(embedded.nats_url)
    await bootstrap.create_streams(embedded)  # as the operator
    for name, party in (("jiedu-intake", None), ("jiedu-deadlines", None),
                        ("jiedu-projector", None), ("jiedu-tail", permissions.AUDITOR)):
        nc = await bootstrap.connect(url, name, party=party, credentials=embedded.credentials)
        try:
            info = await nc.jetstream().stream_info(streams.EVENTS)
            assert info.config.deny_delete
        finally:
            await nc.close()


async def test_creds_list_issue_and_revoke_on_the_running_server(embedded: Settings) -> None:
    data, url = embedded.data_dir, str(embedded.nats_url)
    await bootstrap.create_streams(embedded)
    listed = await asyncio.to_thread(jiedu, data, "creds", "list")
    assert listed.returncode == 0, listed.stderr
    old_key = embedded.credentials.joinpath("finance.nk").read_text()
    assert "finance" in listed.stdout and "issued" in listed.stdout

    finance = await bootstrap.connect(url, "test", party="finance", credentials=embedded.credentials)
    closed = asyncio.Event()

    async def on_closed() -> None:
        closed.set()

    finance._closed_cb = on_closed  # told when the server drops it
    finance.options["allow_reconnect"] = False
    revoked = await asyncio.to_thread(jiedu, data, "creds", "revoke", "finance")
    assert revoked.returncode == 0, revoked.stderr
    assert "reloaded" in revoked.stderr
    await asyncio.wait_for(closed.wait(), 20)
    assert not (embedded.credentials / "finance.nk").exists()
    with pytest.raises((nats.errors.NoServersError, nats.errors.Error, OSError)):
        await nats.connect(url, connect_timeout=2, allow_reconnect=False,
                           max_reconnect_attempts=0, nkeys_seed_str=old_key)
    listed = await asyncio.to_thread(jiedu, data, "creds", "list")
    assert "revoked" in [line.split()[1] for line in listed.stdout.splitlines()
                         if line.startswith("finance ")]

    handed = data / "finance-oa.nk"
    issued = await asyncio.to_thread(jiedu, data, "creds", "issue", "finance", "--out", str(handed))
    assert issued.returncode == 0, issued.stderr
    assert handed.stat().st_mode & 0o777 == 0o600
    assert handed.read_text() != old_key
    # the organ's system connects with the file it was handed, as nats-py documents it
    again = await nats.connect(
        url, connect_timeout=CONNECT_S, nkeys_seed=str(handed),
        inbox_prefix=permissions.inbox_prefix("finance"),
    )
    try:
        ack = await again.jetstream().publish(streams.intake_subject("finance", "oa", "C-1"), b"{}")
        assert ack.stream == streams.INTAKE
    finally:
        await again.close()


def test_a_party_without_credentials_gets_a_message_not_a_traceback(embedded: Settings) -> None:
    done = jiedu(embedded.data_dir, "creds", "revoke", "nobody_here")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "no identity for 'nobody_here'" in done.stderr
