"""PostgreSQL for tests: where it is, and skipping (or failing, when CI requires it) without it;
and read-model stores of either dialect, each independent (`Stores`, the `stores` fixtures)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.adapters.readmodels import ReadStore, open_store

PG_URL = os.environ.get("JIEDU_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


def postgres_or_skip() -> None:
    try:
        import psycopg

        psycopg.connect(PG_URL, connect_timeout=3).close()
    except Exception as e:  # ImportError, OperationalError
        reason = f"PostgreSQL unreachable at {PG_URL}: {type(e).__name__}: {e}"
        if os.environ.get("JIEDU_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


class Stores:
    """Makes stores of one dialect, each independent (own SQLite file / own PG schema), and
    closes (and drops) them all at the end."""

    def __init__(self, dialect: str, tmp_path: Path) -> None:
        self.dialect = dialect
        self.tmp_path = tmp_path
        self.run_id = uuid.uuid4().hex[:10]
        self.made: list[tuple[ReadStore, str | None]] = []

    def url(self, label: str) -> str | None:
        """The DATABASE_URL a subprocess would be given for this store."""
        if self.dialect == "sqlite":
            return f"sqlite:///{self.tmp_path / f'{label}.sqlite3'}"
        return f"{PG_URL}?schema=t_{self.run_id}_{label}"

    def __call__(self, label: str = "a") -> ReadStore:
        store = open_store(self.url(label), self.tmp_path)
        self.made.append((store, store.schema if self.dialect == "postgresql" else None))
        return store

    def close(self) -> None:
        for store, schema in self.made:
            store.close()
            if schema:
                drop_schema(schema)


def _stores(dialect: str, tmp_path: Path) -> Iterator[Stores]:
    if dialect == "postgresql":
        postgres_or_skip()
    stores = Stores(dialect, tmp_path)
    yield stores
    stores.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    """Stores of each dialect in turn (the test runs once per dialect)."""
    yield from _stores(request.param, tmp_path)


@pytest.fixture
def lite_stores(tmp_path: Path) -> Iterator[Stores]:
    yield from _stores("sqlite", tmp_path)


@pytest.fixture
def pg_stores(tmp_path: Path) -> Iterator[Stores]:
    yield from _stores("postgresql", tmp_path)
