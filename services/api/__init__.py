"""The HTTP API (`/api/v1`): the read models, the log's state and the HTTP intake, for the
government office, the auditors, the departments' systems and the public.

`create_app(settings)` builds the ASGI application (FastAPI); `jiedu up` serves it on
127.0.0.1:8080 in a process of its own (`python -m services.api`, see `ApiProcess`), `jiedu api`
alone. Each resource is a router in a module of this package, listed in `ROUTERS`: a new
resource (the Q&A library's search, say) is one module and one line there.

Who is asking (`services.api.auth`): a bearer token issued by `jiedu creds token issue PARTY`
(`Authorization: Bearer jiedu_…`) names an organ and its role — department, gov_office or
auditor; no token is the public. Every route states the roles it serves with a dependency
(`auth.allow(...)`), and reads a department may make are narrowed to its own organ there.

How the web console plugs in (issue 16, part 2): `console.install(app)` in `create_app` adds
its pages (`/console/…`), the public Q&A page (`/qa`) and its static files (`services.console`);
- its pages read through the same functions the JSON routes use (the `*_rows`/`page` functions
  of each module take a `Context` and a `Principal` and return plain rows), so a page shows
  exactly what the API would answer to that principal;
- its login form checks a token with `auth.principal_for(context, token)` (None: not a token
  of a live identity; a revoked one fails at once) and keeps it in an HttpOnly, SameSite=Strict
  cookie named `auth.COOKIE`; `auth.principal` already reads that cookie when no
  `Authorization` header is sent, so every route and page sees the same principal;
- `context_of(request)` gives the running `Context` (settings, store, NATS connection, tokens).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from services import console
from services.adapters.config import Settings
from services.api import (
    auth,
    cases,
    consultations,
    deadlines,
    departments,
    findings,
    intake,
    operations,
    records,
    reports,
)
from services.api.access import AccessLog
from services.api.context import Context, context_of
from services.api.responses import JieduJSON

__all__ = ["ROUTERS", "Context", "context_of", "create_app"]

VERSION = "v1"
PREFIX = f"/api/{VERSION}"

ROUTERS: tuple[APIRouter, ...] = (
    cases.router,
    consultations.router,
    findings.router,
    deadlines.router,
    departments.router,
    intake.router,
    records.router,
    reports.router,
    operations.router,
)
"""The resources under /api/v1, in the order the OpenAPI document lists them."""

UNVERSIONED: tuple[APIRouter, ...] = (operations.probes,)
"""/metrics, /healthz, /readyz: for the operator's monitoring, at the root."""


def create_app(
    settings: Settings,
    *,
    context: Context | None = None,
    routers: Sequence[APIRouter] = ROUTERS,
) -> FastAPI:
    """The ASGI application. `context`: parts already running (tests, the benchmark); by
    default the app opens its own on start-up (the read store, a NATS connection as the `api`
    party) and closes them on shutdown."""
    own = context is None
    ctx = context or Context(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if own:
            await ctx.open()
        listening = ctx.nc is not None and "outcomes" not in ctx.extras
        if listening:
            assert ctx.nc is not None
            ctx.extras["outcomes"] = intake.OutcomeListener(ctx.nc)
            await ctx.extras["outcomes"].start()
        try:
            yield
        finally:
            if listening:
                await ctx.extras.pop("outcomes").stop()
            if own:
                await ctx.close()

    app = FastAPI(
        title="Jiedu 解读 API",
        version=VERSION,
        summary="Policy-interpretation duties of Yuzhong District, read from one immutable log.",
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=f"{PREFIX}/docs",
        redoc_url=None,
        default_response_class=JieduJSON,
        lifespan=lifespan,
    )
    app.state.jiedu = ctx
    for router in routers:
        app.include_router(router, prefix=PREFIX)
    for router in UNVERSIONED:
        app.include_router(router)
    auth.install(app)
    console.install(app)
    app.add_middleware(AccessLog)
    return app
