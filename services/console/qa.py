"""The public Q&A search page (政策问答库检索, QA-2: 首页显著位置 … 智能检索): no login, in
Chinese, linkable (`/qa?q=社保`) and embeddable in the district website (`/qa?embed=1` in an
iframe: no header or footer, framing allowed). Works without JavaScript (a GET form); with it,
htmx replaces the results as the reader types.

The search itself is the Q&A library's (issue 15), bound when the app is made:
`console.install(app, search=...)`, any callable of the `Search` shape (a store, the query, a
department or None, a limit → ranked `Hit`s and whether the library can answer at all). Without
one bound, the page says the search is not available (503) rather than pretend.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Protocol

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from services.adapters.readmodels import ReadStore
from services.console.web import Ctx, page

router = APIRouter(include_in_schema=False)

PATH = "/qa"
LIMIT = 10
MAX_QUERY = 200


@dataclass(frozen=True)
class Hit:
    """One entry of the library, as the page shows it."""

    entry_id: str
    question: str
    answer: str
    department: str
    policy_title: str | None = None
    score: float | None = None


@dataclass(frozen=True)
class Found:
    """The ranked entries for a query, and whether the library answers it (`answerable`:
    False when nothing it holds answers the question, however the words match)."""

    hits: Sequence[Hit]
    answerable: bool


class Search(Protocol):
    def __call__(
        self, store: ReadStore, query: str, *, department: str | None, limit: int
    ) -> Found: ...


def bound(request: Request) -> Search | None:
    search: Search | None = getattr(request.app.state, "qa_search", None)
    return search


@router.get(PATH, response_class=HTMLResponse)
async def qa_page(
    request: Request, ctx: Ctx,
    q: Annotated[str, Query(max_length=MAX_QUERY)] = "",
    department: Annotated[str, Query(max_length=64)] = "",
    embed: Annotated[bool, Query()] = False,
) -> Response:
    """The search page; with `q`, its results."""
    return await _answer(request, ctx, q, department, embed, "qa.html")


@router.get(f"{PATH}/results", response_class=HTMLResponse)
async def qa_results(
    request: Request, ctx: Ctx,
    q: Annotated[str, Query(max_length=MAX_QUERY)] = "",
    department: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    """The results alone (what htmx swaps in as the reader types)."""
    return await _answer(request, ctx, q, department, True, "qa_results.html")


async def _answer(
    request: Request, ctx: Ctx, q: str, department: str, embed: bool, template: str
) -> Response:
    query, chosen = q.strip(), department.strip() or None
    if chosen is not None and chosen not in ctx.organs:
        chosen = None
    search = bound(request)
    found: Found | None = None
    if search is not None and query:
        found = await ctx.read(search, ctx.read_store(), query, department=chosen, limit=LIMIT)
    return page(request, template, {
        "q": query, "department": chosen or "", "embed": embed, "found": found,
        "available": search is not None, "organs": ctx.organs, "name": ctx.organs.name,
        "who": None,
    }, status=200 if search is not None else 503,
        headers={"Cache-Control": "public, max-age=60"}, embeddable=embed)
