"""The composition root: reads settings, starts or finds the NATS server, wires the services.

Entry points (the CLI, the faststream apps, the tests) get their parts from here and nowhere else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import nats
from nats.aio.client import Client

from events.organs import Organs, load_organs
from services.config import Settings
from services.eventlog import EventLog, ensure_streams
from services.natsserver import NatsServer

URL_FILE = "nats.url"


def server_for(settings: Settings) -> NatsServer:
    return NatsServer(settings.data_dir / "nats", settings.nats_port)


def nats_url(settings: Settings) -> str:
    """NATS_URL if set; else the URL `jiedu up` recorded in the data dir; else the default port."""
    if settings.nats_url:
        return settings.nats_url
    recorded = settings.data_dir / URL_FILE
    if recorded.exists():
        return recorded.read_text().strip()
    return server_for(settings).url


def record_url(data_dir: Path, url: str) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / URL_FILE).write_text(url + "\n")


def organs(settings: Settings) -> Organs:
    return load_organs(settings.organs_file)


async def connect(url: str, name: str) -> Client:
    return await nats.connect(url, name=name, max_reconnect_attempts=-1, reconnect_time_wait=0.5)


@dataclass
class Parts:
    nc: Client
    log: EventLog


@asynccontextmanager
async def parts(settings: Settings, name: str, *, ensure: bool = True) -> AsyncIterator[Parts]:
    nc = await connect(nats_url(settings), name)
    try:
        if ensure:
            await ensure_streams(
                nc.jetstream(), partitions=settings.partitions, ack_wait_s=settings.ack_wait_s
            )
        yield Parts(nc, EventLog(nc))
    finally:
        await nc.drain()
