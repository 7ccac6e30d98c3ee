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

from services.api import cases
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

router = APIRouter(include_in_schema=False)

Filter = Annotated[str | None, Query(max_length=200)]


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


@router.get(f"{BASE}/", response_class=HTMLResponse)
async def dashboard(request: Request, ctx: Ctx, who: Viewer) -> Response:
    """工作台: overdue clocks, clocks due in the next 3 working days, compliance per department,
    and (for the office and auditors) the projections' lag, incidents and the last day's
    rejections. The live parts refresh themselves (htmx)."""
    data = await ctx.read(reads.dashboard, ctx.read_store(), who, datetime.now(UTC))
    operations = await live.operations(ctx, who)
    return page(request, "dashboard.html", {**_common(ctx, who), **data, "ops": operations})


@router.get(f"{BASE}/live/clocks", response_class=HTMLResponse)
async def live_clocks(request: Request, ctx: Ctx, who: Viewer) -> Response:
    data = await ctx.read(reads.dashboard, ctx.read_store(), who, datetime.now(UTC))
    return page(request, "live_clocks.html", {**_common(ctx, who), **data})


@router.get(f"{BASE}/live/operations", response_class=HTMLResponse)
async def live_operations(request: Request, ctx: Ctx, who: Viewer) -> Response:
    operations = await live.operations(ctx, who)
    return page(request, "live_operations.html", {**_common(ctx, who), "ops": operations})


# ── cases ────────────────────────────────────────────────────────────────────────────────────


@router.get(f"{BASE}/cases", response_class=HTMLResponse)
async def case_list(
    request: Request, ctx: Ctx, who: Viewer, department: Filter = None, status: Filter = None,
    scope: Filter = None, kind: Filter = None, cursor: Annotated[str | None, Query(max_length=2048)] = None,
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
    by_event = {row["event_id"]: row for row in found["trail"]}
    now = datetime.now(UTC)
    return page(request, "case.html", {
        **_common(ctx, who), **found, "by_event": by_event, "now": now,
        "overdue": {c["clock_id"] for c in found["clocks"] if reads.overdue(c, now)},
    })


# ── departments, findings, deadlines ─────────────────────────────────────────────────────────


@router.get(f"{BASE}/departments/{{code}}", response_class=HTMLResponse)
async def department_page(request: Request, ctx: Ctx, who: Viewer, code: str) -> Response:
    """A department (部门): its compliance, overdue and open clocks, open findings, cases."""
    if code not in ctx.organs or not who.may_read(code):
        raise ConsoleError(404, f"没有您可查看的部门 {code} · no department {code} you may read")

    def read() -> dict[str, Any]:
        store, now = ctx.read_store(), datetime.now(UTC)
        clocks = reads.clocks(store, who, department=code)
        open_findings = reads.findings(store, who, department=code, status="open")
        return {
            "code": code, "now": now,
            "figures": next(iter(reads.compliance(clocks, open_findings, now)), None),
            "overdue": [c for c in clocks if reads.overdue(c, now)],
            "running": [c for c in clocks if c["status"] == "open" and not reads.overdue(c, now)],
            "findings": open_findings,
            "cases": cases.case_rows(ctx, who, department=code, limit=200)["items"],
        }

    return page(request, "department.html", {**_common(ctx, who), **await ctx.read(read)})


@router.get(f"{BASE}/findings", response_class=HTMLResponse)
async def findings_page(
    request: Request, ctx: Ctx, who: Viewer, department: Filter = None, rule: Filter = None,
    status: Filter = None, case: Filter = None,
) -> Response:
    """检查发现, filtered as `jiedu findings` filters."""
    filters = {"department": _blank(department), "rule": _blank(rule),
               "status": _blank(status), "case": _blank(case)}
    if filters["rule"]:
        filters["rule"] = filters["rule"].upper()
    rows = await ctx.read(reads.findings, ctx.read_store(), who, **filters)
    return page(request, "findings.html", {**_common(ctx, who), "rows": rows[:500],
                                           "total": len(rows), "filters": filters})


CATEGORIES = {"overdue": "已逾期 overdue", "open": "进行中 running",
              "pending_calendar": "待定日历 pending calendar", "met": "已办结 met"}


@router.get(f"{BASE}/deadlines", response_class=HTMLResponse)
async def deadlines_page(
    request: Request, ctx: Ctx, who: Viewer, department: Filter = None, rule: Filter = None,
    state: Filter = None, case: Filter = None,
) -> Response:
    """期限: the clocks, filtered by department, rule, state and case."""
    filters = {"department": _blank(department), "rule": _blank(rule),
               "state": _blank(state), "case": _blank(case)}
    if filters["rule"]:
        filters["rule"] = filters["rule"].upper()
    if filters["state"] is not None and filters["state"] not in CATEGORIES:
        raise ConsoleError(400, f"state must be one of {', '.join(CATEGORIES)}")
    now = datetime.now(UTC)
    rows = await ctx.read(reads.clocks, ctx.read_store(), who, department=filters["department"],
                          rule=filters["rule"], case=filters["case"])
    state_of = {c["clock_id"]: reads.state(c, now) for c in rows}
    if filters["state"]:
        rows = [c for c in rows if state_of[c["clock_id"]] == filters["state"]]
    return page(request, "deadlines.html", {
        **_common(ctx, who), "rows": rows[:500], "total": len(rows), "filters": filters,
        "state_of": state_of, "categories": CATEGORIES, "now": now,
    })
