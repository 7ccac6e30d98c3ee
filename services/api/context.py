"""What the API's routes share while the app runs: settings, the read store, the NATS
connection (as the `api` party), the tokens, the organs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import Request
from nats.aio.client import Client

from events.organs import Organs
from services import bootstrap
from services.adapters import logs
from services.adapters.config import Settings
from services.adapters.readmodels import ReadStore
from services.adapters.tokens import Tokens
from services.projector import store_for

log = logs.get("jiedu.api")

T = TypeVar("T")

API_CONNECTION = "jiedu-api"
"""The name of the API's NATS connection: it speaks for the `api` party."""


@dataclass
class Context:
    settings: Settings
    store: ReadStore | None = None
    nc: Client | None = None
    tokens: Tokens = field(init=False)
    organs: Organs = field(init=False)
    extras: dict[str, Any] = field(default_factory=dict)
    """Parts the routers keep for the app's life (the intake's outcome listener, …)."""
    _opened: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.tokens = Tokens(self.settings.credentials)
        self.organs = bootstrap.organs(self.settings)

    async def open(self) -> None:
        """Open the read store and connect to NATS; a server that is not there yet is retried
        in the background (reads go on; /readyz says so)."""
        if self.store is None:
            self.store = await asyncio.to_thread(store_for, self.settings)
            self._opened.append("store")
        if self.nc is None:
            self.nc = await bootstrap.connect(
                bootstrap.nats_url(self.settings), API_CONNECTION,
                credentials=self.settings.credentials,
            )
            self._opened.append("nc")

    async def close(self) -> None:
        for closer in self.extras.values():
            stop = getattr(closer, "stop", None)
            if stop is not None:
                await stop()
        if "nc" in self._opened and self.nc is not None:
            await self.nc.drain()
        if "store" in self._opened and self.store is not None:
            await asyncio.to_thread(self.store.close)
        self._opened.clear()

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a synchronous read (the stores are synchronous) off the event loop."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    def read_store(self) -> ReadStore:
        assert self.store is not None, "the read store is opened with the app"
        return self.store


def context_of(request: Request) -> Context:
    """The running app's `Context` (a FastAPI dependency)."""
    ctx: Context = request.app.state.jiedu
    return ctx
