"""The HTTP API under test: the real app on a real nats-server, with the real intake and every
projection on SQLite or PostgreSQL, reached in-process through httpx's ASGI transport."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from nats.aio.client import Client

from logtools import drained
from pgtools import PG_URL, drop_schema, postgres_or_skip
from projections import ALL
from services import bootstrap
from services.adapters.config import Settings
from services.adapters.readmodels import ReadStore, open_store
from services.adapters.tokens import Tokens
from services.api import Context, create_app
from services.projector import ProjectorService, wait_caught_up


@dataclass
class Api:
    """A running API and the means to speak to it as anyone."""

    http: httpx.AsyncClient
    context: Context
    nc: Client
    """The harness's connection (to read the streams back)."""
    store: ReadStore
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, party: str) -> str:
        if party not in self.tokens:
            _, self.tokens[party] = Tokens(self.context.settings.credentials).issue(party)
        return self.tokens[party]

    def headers(self, party: str | None) -> dict[str, str]:
        return {} if party is None else {"Authorization": f"Bearer {self.token(party)}"}

    async def get(self, path: str, party: str | None = None, **params: Any) -> httpx.Response:
        return await self.http.get(f"/api/v1{path}", headers=self.headers(party), params=params)

    async def post(
        self, path: str, party: str | None = None, body: bytes = b"", **params: Any
    ) -> httpx.Response:
        return await self.http.post(
            f"/api/v1{path}", headers=self.headers(party), content=body, params=params
        )

    async def settled(self) -> None:
        """The intake has decided everything and the projections have caught up."""
        await drained(self.nc, timeout=60)
        await wait_caught_up(self.nc.jetstream(), self.store, timeout=60)


def open_test_store(dialect: str, tmp_path: Path) -> tuple[ReadStore, str | None]:
    """A fresh store of the dialect (PostgreSQL: a schema of its own) and that schema."""
    if dialect == "postgresql":
        postgres_or_skip()
        schema = f"t_{uuid.uuid4().hex[:10]}_api"
        return open_store(f"{PG_URL}?schema={schema}", tmp_path), schema
    return open_store(None, tmp_path), None


@asynccontextmanager
async def running_api(
    settings: Settings, nc: Client, dialect: str, tmp_path: Path
) -> AsyncIterator[Api]:
    """The API with its own NATS identity (`api`), beside the intake the caller runs and every
    projection on a store of `dialect`."""
    store, schema = open_test_store(dialect, tmp_path)
    projections = ProjectorService(nc.jetstream(), store, ALL)
    await projections.start()
    api_nc = await bootstrap.connect(str(settings.nats_url), "jiedu-api")
    context = Context(settings, store=store, nc=api_nc)
    app = create_app(settings, context=context)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://jiedu.test"
            ) as http,
        ):
            yield Api(http, context, nc, store)
    finally:
        await projections.stop()
        await api_nc.close()
        await asyncio.to_thread(store.close)
        if schema is not None:
            drop_schema(schema)
