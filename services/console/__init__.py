"""The web console (控制台, issue 16 part 2) and the public Q&A search page, on the API's app.

Server-rendered: Jinja2 templates (`templates/`), htmx (vendored, `static/htmx.min.js`, 2.0.11,
BSD-0 licence beside it) refreshing the live parts; no front-end build, nothing fetched at run
time. Chinese first, English labels where the quarterly report has them.

- `/console/…` (`pages`): login with a token from `jiedu creds token issue PARTY`, kept in an
  HttpOnly, SameSite=Strict cookie; the dashboard, cases, a case's timeline, departments,
  findings, deadlines — each read as the API reads it for that principal;
- `/qa` (`qa`): the public Q&A search (QA-2: 首页显著位置 … 智能检索), no login, embeddable in
  the district website (`/qa?embed=1` in an iframe), searching with the Q&A library's
  `services.qa.QASearch` on the app's store;
- `/console/static/…`: the console's files, fingerprinted and cached (`web.Static`).

`install(app)` adds all of it to the app `services.api.create_app` made: one line there.
"""

from __future__ import annotations

import inspect

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.console import audit, pages, qa
from services.console.web import (
    BASE,
    STATIC,
    STATIC_URL,
    ConsoleError,
    LoginRequired,
    Static,
    login_redirect,
    page,
)

__all__ = ["install"]


def install(app: FastAPI, search: qa.Search | None = None) -> None:
    """Serve the console and the public Q&A page from `app` (after `auth.install`, whose JSON
    errors stay the API's; the console's paths answer errors as pages). `search`: another
    search for the public page in place of the Q&A library's (`qa.Search`)."""
    app.state.qa_search = search
    app.include_router(pages.router)
    app.include_router(audit.router)
    app.include_router(qa.router)
    app.mount(STATIC_URL, Static(directory=STATIC), name="console-static")
    api_errors = app.exception_handlers.get(StarletteHTTPException)

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, exc: LoginRequired) -> Response:
        return login_redirect(request)

    @app.exception_handler(ConsoleError)
    async def console_error(request: Request, exc: ConsoleError) -> Response:
        return page(request, "error.html", {"status": exc.status, "message": exc.message},
                    status=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _is_console(request.url.path) or request.url.path == qa.PATH:
            return page(request, "error.html", {"status": exc.status_code,
                                                "message": str(exc.detail)},
                        status=exc.status_code)
        if api_errors is None:
            raise exc
        answered = api_errors(request, exc)
        return await answered if inspect.isawaitable(answered) else answered


def _is_console(path: str) -> bool:
    return path == BASE or (path.startswith(BASE + "/") and not path.startswith(STATIC_URL + "/"))
