"""The console's pages for the government office, the auditors and the departments: login, the
dashboard (with its live parts refreshed by htmx), cases, a case's timeline, a department,
findings and deadlines with filters.

Every page reads through `services.console.reads` or the API's own row functions
(`services.api.cases`), for the principal the cookie names, so a page shows what the API would
answer that principal: a department sees its own cases only, and another's case is "not found",
as in the API.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.adapters.tokens import Role
from services.api import cases, deadlines, departments, findings, pages, reports
from services.api.auth import COOKIE, Principal, principal_for
from services.api.context import Context
from services.console import live, reads
from services.console.web import (
    BASE,
    ConsoleError,
    Ctx,
    Viewer,
    form,
    keep_token,
    page,
    safe_next,
    viewer_or_none,
)
from services.deadlines import MET_STATE, OVERDUE, PENDING, UPCOMING, category

router = APIRouter(include_in_schema=False)

Filter = Annotated[str | None, Query(max_length=200)]
Cursor = Annotated[str | None, Query(max_length=2048)]
PAGE = 100
"""Rows per page of the lists (the API's cursor pages them)."""


def _blank(value: str | None) -> str | None:
    """An empty filter field means no filter."""
    return value.strip() if value and value.strip() else None


def _common(ctx: Context, who: Principal) -> dict[str, Any]:
    return {"who": who, "organs": ctx.organs, "name": ctx.organs.name}


# ── login ────────────────────────────────────────────────────────────────────────────────────


@router.get("/", response_class=RedirectResponse)
async def root() -> Response:
    return RedirectResponse(f"{BASE}/", status_code=303)


@router.get(f"{BASE}/login", response_class=HTMLResponse)
async def login_form(request: Request, ctx: Ctx, next: Filter = None) -> Response:
    """The login form (登录): paste the token `jiedu creds token issue PARTY` printed."""
    return page(request, "login.html", {"who": viewer_or_none(request, ctx), "next": next or ""})


@router.post(f"{BASE}/login", response_class=HTMLResponse)
async def login(request: Request, ctx: Ctx) -> Response:
    fields = await form(request)
    token = fields.get("token", "").strip()
    who = principal_for(ctx, token) if token else None
    if who is None:
        return page(request, "login.html", {
            "who": None, "next": fields.get("next", ""),
            "error": "令牌无效（未知、格式不对或已吊销）· the token is not valid",
        }, status=401)
    response = RedirectResponse(safe_next(fields.get("next")), status_code=303)
    keep_token(response, request, token)
    return response


@router.post(f"{BASE}/logout")
async def logout(request: Request) -> Response:
    await form(request)
    response = RedirectResponse(f"{BASE}/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


# ── dashboard ────────────────────────────────────────────────────────────────────────────────


async def _dashboard(ctx: Context, who: Principal) -> dict[str, Any]:
    return await ctx.read(reads.dashboard, ctx, who, datetime.now(UTC))


@router.get(f"{BASE}/", response_class=HTMLResponse)
async def dashboard(request: Request, ctx: Ctx, who: Viewer) -> Response:
    """工作台: overdue clocks, clocks due in the next 3 working days, each department's figures,
    and (for the office and auditors) the projections' lag, incidents and the last day's
    rejections. The live parts refresh themselves (htmx)."""
    return page(request, "dashboard.html", {
        **_common(ctx, who), **await _dashboard(ctx, who), "ops": await live.operations(ctx, who),
    })


@router.get(f"{BASE}/live/clocks", response_class=HTMLResponse)
async def live_clocks(request: Request, ctx: Ctx, who: Viewer) -> Response:
    return page(request, "live_clocks.html", {**_common(ctx, who), **await _dashboard(ctx, who)})


@router.get(f"{BASE}/live/operations", response_class=HTMLResponse)
async def live_operations(request: Request, ctx: Ctx, who: Viewer) -> Response:
    return page(request, "live_operations.html",
                {**_common(ctx, who), "ops": await live.operations(ctx, who)})


# ── cases ────────────────────────────────────────────────────────────────────────────────────


@router.get(f"{BASE}/cases", response_class=HTMLResponse)
async def case_list(
    request: Request, ctx: Ctx, who: Viewer, department: Filter = None, status: Filter = None,
    scope: Filter = None, kind: Filter = None, cursor: Cursor = None,
) -> Response:
    """案件概览, a page at a time (the API's cursor)."""
    filters = {"department": _blank(department), "status": _blank(status),
               "scope": _blank(scope), "kind": _blank(kind)}
    found = await ctx.read(cases.case_rows, ctx, who, **filters, limit=50, cursor=_blank(cursor))
    return page(request, "cases.html", {**_common(ctx, who), **found, "filters": filters})


@router.get(f"{BASE}/cases/{{case_id}}", response_class=HTMLResponse)
async def case_page(request: Request, ctx: Ctx, who: Viewer, case_id: str) -> Response:
    """A case (案件): its timeline, its findings with their evidence linked to the events in
    the timeline, its clocks."""
    found = await ctx.read(cases.timeline, ctx, who, case_id)
    if found is None:
        raise ConsoleError(404, f"没有您可查看的案件 {case_id} · no case {case_id} you may read")
    now = datetime.now(UTC)
    return page(request, "case.html", {
        **_common(ctx, who), **found, "now": now,
        "by_event": {row["event_id"]: row for row in found["trail"]},
        "state_of": {c["clock_id"]: category(c, now) for c in found["clocks"]},
    })


# ── departments, findings, deadlines ─────────────────────────────────────────────────────────


@router.get(f"{BASE}/departments/{{code}}", response_class=HTMLResponse)
async def department_page(request: Request, ctx: Ctx, who: Viewer, code: str) -> Response:
    """A department (部门): its figures, overdue and running clocks, open findings, cases."""
    if code not in ctx.organs or not who.may_read(code):
        raise ConsoleError(404, f"没有您可查看的部门 {code} · no department {code} you may read")

    def read() -> dict[str, Any]:
        now = datetime.now(UTC)
        clocks = deadlines.clock_rows(ctx, who, department=code, now=now, limit=pages.MAX_LIMIT)
        return {
            "code": code, "now": now,
            "figures": departments.department_rows(ctx, who, code, now=now)[0],
            "clocks": reads.by_due(clocks["items"]),
            "findings": findings.finding_rows(ctx, who, department=code, status="open",
                                              limit=pages.MAX_LIMIT)["items"],
            "cases": cases.case_rows(ctx, who, department=code, limit=200)["items"],
        }

    return page(request, "department.html", {**_common(ctx, who), **await ctx.read(read)})


@router.get(f"{BASE}/findings", response_class=HTMLResponse)
async def findings_page(
    request: Request, ctx: Ctx, who: Viewer, department: Filter = None, rule: Filter = None,
    status: Filter = None, case: Filter = None, cursor: Cursor = None,
) -> Response:
    """检查发现, filtered as `jiedu findings` filters, a page at a time (the API's cursor)."""
    filters = {"department": _blank(department), "rule": _blank(rule),
               "status": _blank(status), "case": _blank(case)}
    found = await ctx.read(findings.finding_rows, ctx, who, **filters, limit=PAGE,
                           cursor=_blank(cursor))
    return page(request, "findings.html", {**_common(ctx, who), **found, "filters": filters})


STATES = {OVERDUE: "已逾期 overdue", UPCOMING: "进行中 upcoming",
          PENDING: "待定日历 pending calendar", MET_STATE: "已办结 met"}


@router.get(f"{BASE}/deadlines", response_class=HTMLResponse)
async def deadlines_page(
    request: Request, ctx: Ctx, who: Viewer, department: Filter = None, rule: Filter = None,
    state: Filter = None, case: Filter = None, cursor: Cursor = None,
) -> Response:
    """期限: the clocks by department, rule, state and case, a page at a time."""
    filters = {"department": _blank(department), "rule": _blank(rule),
               "state": _blank(state), "case": _blank(case)}
    chosen = filters["state"]
    if chosen is not None and chosen not in STATES:
        raise ConsoleError(400, f"state must be one of {', '.join(STATES)}")
    now = datetime.now(UTC)
    found = await ctx.read(
        deadlines.clock_rows, ctx, who, department=filters["department"], rule=filters["rule"],
        case=filters["case"], categories=frozenset(STATES) if chosen is None
        else frozenset({chosen}), now=now, limit=PAGE, cursor=_blank(cursor),
    )
    return page(request, "deadlines.html", {
        **_common(ctx, who), **found, "filters": filters, "states": STATES, "now": now,
    })


# ── quarterly reports ────────────────────────────────────────────────────────────────────────


@router.get(f"{BASE}/reports", response_class=HTMLResponse)
async def reports_page(request: Request, ctx: Ctx, who: Viewer) -> Response:
    """季度报告 (SUP-1): the published quarters, each the report `jiedu report quarterly`
    writes (public, served by the API); the office publishes one here."""
    found = await ctx.read(reports.published, ctx)
    return page(request, "reports.html", {**_common(ctx, who), "published": found,
                                          "quarter": _last_quarter(datetime.now(UTC))})


@router.post(f"{BASE}/reports", response_class=HTMLResponse)
async def publish_report(request: Request, ctx: Ctx, who: Viewer) -> Response:
    """Publish a quarter's report, by the API's own route (the government office only)."""
    fields = await form(request)
    if who.role != Role.GOV_OFFICE:
        raise ConsoleError(403, "仅区政府办公室可发布报告 · only the government office publishes")
    quarter = fields.get("quarter", "").strip().upper()
    await reports.publish_report(ctx, who, quarter, None)
    return RedirectResponse(f"{BASE}/reports#q-{quarter}", status_code=303)


def _last_quarter(now: datetime) -> str:
    """The quarter before the present one (the one a report is usually published for)."""
    q = (now.month - 1) // 3
    return f"{now.year}Q{q}" if q else f"{now.year - 1}Q4"
