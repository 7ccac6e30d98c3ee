"""The demo quarter, through the intake, reads the same on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from nats.aio.client import Client

from logtools import drained, rejected
from pgtools import PG_URL, drop_schema, postgres_or_skip
from projections import ALL
from services.adapters.readmodels import open_store
from services.app import load_demo
from services.projector import rebuild


async def test_the_demo_quarter_reads_the_same_on_sqlite_and_postgresql(
    nc: Client, intake: object, tmp_path: Path
) -> None:
    postgres_or_skip()
    sent = await load_demo(nc, "2026Q3")
    await drained(nc, timeout=180)
    assert sent > 4000 and await rejected(nc) == {}

    schema = f"t_demo_{uuid.uuid4().hex[:10]}"
    sqlite = open_store(None, tmp_path)
    postgres = open_store(f"{PG_URL}?schema={schema}", tmp_path)
    try:
        js = nc.jetstream()
        for store in (sqlite, postgres):
            for projection in ALL:
                await rebuild(js, store, projection)
        for projection in ALL:
            on_sqlite = await asyncio.to_thread(sqlite.dump, projection)
            on_postgres = await asyncio.to_thread(postgres.dump, projection)
            assert sum(len(rows) for rows in on_sqlite.values()) > 0, projection.name
            assert on_sqlite == on_postgres, projection.name
    finally:
        sqlite.close()
        postgres.close()
        drop_schema(schema)
