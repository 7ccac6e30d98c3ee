"""The public Q&A search page (政策问答库检索, QA-2: 首页显著位置 … 智能检索): no login, in
Chinese, linkable (`/qa?q=社保`) and embeddable in the district website (`/qa?embed=1` in an
iframe: no header or footer, framing allowed). Works without JavaScript (a GET form); with it,
htmx replaces the results as the reader types.

The search is the Q&A library's (`services.qa.QASearch`, issue 15) on the app's read store:
ranked entries of the policies in force, and whether the library answers the question at all
(`answerable`; otherwise the page says so and points to the hotline rather than show a wrong
answer with assurance). `console.install(app, search=...)` may put another callable of the
`Search` shape in its place.
"""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from services.adapters.readmodels import ReadStore
from services.api.context import Context
from services.console.web import Ctx, page
from services.qa import QASearch, SearchResult

router = APIRouter(include_in_schema=False)

PATH = "/qa"
LIMIT = 10
MAX_QUERY = 200


class Search(Protocol):
    def __call__(
        self, store: ReadStore, query: str, *, department: str | None, limit: int
    ) -> SearchResult: ...


def library(ctx: Context) -> QASearch:
    """The Q&A library's search on `ctx`'s store, made once (it loads its analyser)."""
    found: QASearch | None = ctx.extras.get("console.qa")
    if found is None or found.store is not ctx.read_store():
        found = ctx.extras["console.qa"] = QASearch(ctx.read_store())
    return found


def search(request: Request, ctx: Context, query: str, department: str | None) -> SearchResult:
    """The entries for `query` (synchronous: the search reads the store)."""
    other: Search | None = getattr(request.app.state, "qa_search", None)
    if other is not None:
        return other(ctx.read_store(), query, department=department, limit=LIMIT)
    return library(ctx).search(query, department=department, limit=LIMIT)


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
    found: SearchResult | None = None
    if query:
        found = await ctx.read(search, request, ctx, query, chosen)
    return page(request, template, {
        "q": query, "department": chosen or "", "embed": embed, "found": found,
        "organs": ctx.organs, "name": ctx.organs.name, "who": None,
    },
        headers={"Cache-Control": "public, max-age=60"}, embeddable=embed)
