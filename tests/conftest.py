"""Fixtures with real parts: a nats-server 2.15 per test on a free port and a temporary store."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client

sys.path.insert(0, str(Path(__file__).parent))

from services.adapters.config import Settings
from services.adapters.eventlog import ensure_streams
from services.adapters.natsserver import NatsServer, free_port

PARTITIONS = 4


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats", free_port()).start()
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
    )


@pytest.fixture
async def nc(settings: Settings) -> AsyncIterator[Client]:
    client = await nats.connect(settings.nats_url)
    await ensure_streams(client.jetstream(), partitions=PARTITIONS, ack_wait_s=settings.ack_wait_s)
    yield client
    await client.close()


@pytest.fixture
async def intake(nc: Client, settings: Settings) -> AsyncIterator[object]:
    from services.bootstrap import organs
    from services.intake import IntakeService

    service = IntakeService(nc, organs(settings), settings)
    await service.start()
    yield service
    await service.stop()
