"""Fixtures with real parts: a nats-server 2.15 per test on a free port and a temporary store,
locked by the authorisation generated from the organs file (services/adapters/permissions.py).

Every connection has an identity. The services the fixtures start speak for their own party
(the `intake` fixture as the intake); `nc` is the test's own hand, the harness: a party that
exists only in tests and may publish and subscribe as any part of the system, so that a test
can play sources, services and readers at once. The refused attempts are tested with the real
parties' identities (tests/integration/test_permissions.py).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from nats.aio.client import Client

sys.path.insert(0, str(Path(__file__).parent))

from events.organs import load_organs
from harness import HARNESS, HARNESS_PERMISSIONS
from pgtools import lite_stores, pg_stores, stores  # noqa: F401  (fixtures: read-model stores of either dialect)
from services.adapters.config import Settings
from services.adapters.identities import Credentials
from services.adapters.natsserver import NatsServer, free_port

PARTITIONS = 4


@pytest.fixture
def credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Credentials:
    """The test's credentials directory; processes the test starts find it in the environment,
    as `jiedu` commands find `<data dir>/creds`."""
    monkeypatch.setenv("JIEDU_CREDENTIALS", str(tmp_path / "creds"))
    return Credentials(tmp_path / "creds", extra={HARNESS: HARNESS_PERMISSIONS})


@pytest.fixture
def nats_server(tmp_path: Path, credentials: Credentials) -> Iterator[NatsServer]:
    server = NatsServer(
        tmp_path / "nats", free_port(), credentials=credentials, organs=load_organs()
    ).start()
    yield server
    server.stop()


@pytest.fixture
def settings(tmp_path: Path, nats_server: NatsServer) -> Settings:
    return Settings(
        data_dir=tmp_path,
        nats_url=nats_server.url,
        partitions=PARTITIONS,
        lease_ttl_s=1.5,
        ack_wait_s=2.0,
        wait_for_case_s=(0.05, 0.1, 0.2),
        log_level="warning",
        credentials_dir=nats_server.credentials.directory,
    )


@pytest.fixture
async def nc(settings: Settings) -> AsyncIterator[Client]:
    """The harness's connection, on streams the operator has created as `jiedu up` does."""
    from services import bootstrap

    await bootstrap.create_streams(settings)
    client = await bootstrap.connect(str(settings.nats_url), "jiedu-tests", party=HARNESS)
    yield client
    await client.close()


@pytest.fixture
async def intake(nc: Client, settings: Settings) -> AsyncIterator[object]:
    """An intake service speaking as the intake."""
    from services import bootstrap
    from services.intake import IntakeService

    own = await bootstrap.connect(str(settings.nats_url), "jiedu-intake")
    service = IntakeService(own, bootstrap.organs(settings), settings)
    await service.start()
    yield service
    await service.stop()
    await own.close()
