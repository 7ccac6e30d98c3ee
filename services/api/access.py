"""Access logs: one structured line per request through structlog (method, path, status,
duration, who), as every Jiedu process logs: JSON lines. The query string is left out: a
token never travels there, but a search might hold personal data."""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.adapters import logs

log = logs.get("jiedu.api.access")


class AccessLog:
    """A pure ASGI middleware (no per-request task, unlike Starlette's BaseHTTPMiddleware)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            who: Any = scope.get("state", {}).get("principal")
            log.info(
                "http", method=scope["method"], path=scope["path"], status=status,
                ms=round((time.perf_counter() - started) * 1000, 2),
                role=str(who.role) if who is not None else "public",
                organ=getattr(who, "department", None),
                client=(scope.get("client") or ("", 0))[0],
            )
