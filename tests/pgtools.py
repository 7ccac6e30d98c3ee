"""PostgreSQL for tests: where it is, and skipping (or failing, when CI requires it) without it."""

from __future__ import annotations

import os

import pytest

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
