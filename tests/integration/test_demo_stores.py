"""The demo quarter, through the intake, reads the same on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import pytest
from nats.aio.client import Client

from logtools import drained, rejected
from projections import ALL
from services.app import load_demo
from services.projector import rebuild
from services.readmodels import open_store

PG_URL = os.environ.get("JIEDU_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _postgres_or_skip() -> None:
    try:
        import psycopg

        psycopg.connect(PG_URL, connect_timeout=3).close()
    except Exception as e:  # ImportError, OperationalError
        reason = f"PostgreSQL unreachable at {PG_URL}: {type(e).__name__}: {e}"
        if os.environ.get("JIEDU_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


async def test_the_demo_quarter_reads_the_same_on_sqlite_and_postgresql(
    nc: Client, intake: object, tmp_path: Path
) -> None:
    _postgres_or_skip()
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
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
