"""Departments (部门): the district's organs with their figures — cases by status, open
findings, clocks overdue, upcoming and pending a calendar year."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException

from projections.case_summary import CASES, CaseSummary
from projections.deadlines import CLOCKS, Deadlines
from services.api.auth import Principal, Reader
from services.api.context import Context, context_of
from services.api.responses import JieduJSON, reply
from services.deadlines import CATEGORIES, category

router = APIRouter(tags=["departments"])
Ctx = Annotated[Context, Depends(context_of)]


FRESH_S = 1.0
"""How long computed figures serve before they are computed again: they change only as the log
moves or a due time passes, and every organ's come from the same two reads."""


def figures(ctx: Context, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every organ, in the organs file's order, with its figures as of `now` (default: as of
    at most FRESH_S ago)."""
    cached = ctx.extras.get("department_figures")
    if now is None and cached is not None and time.monotonic() - cached[0] < FRESH_S:
        found: list[dict[str, Any]] = cached[1]
        return found
    at = now or datetime.now(UTC)
    store = ctx.read_store()
    cases = store.select(CaseSummary(), CASES)
    clocks = store.select(Deadlines(), CLOCKS)
    by_status: dict[str, Counter[str]] = {}
    open_findings: Counter[str] = Counter()
    for c in cases:
        by_status.setdefault(c["department"], Counter())[c["status"]] += 1
        open_findings[c["department"]] += int(c["open_findings"] or 0)
    by_category: dict[str, Counter[str]] = {}
    for k in clocks:
        by_category.setdefault(k["department"], Counter())[category(k, at)] += 1
    out = []
    for organ in ctx.organs.organs:
        statuses = by_status.get(organ.code, Counter())
        clock_counts = by_category.get(organ.code, Counter())
        out.append({
            "code": organ.code,
            "name": organ.name,
            "cases": sum(statuses.values()),
            "cases_by_status": dict(sorted(statuses.items())),
            "open_findings": open_findings[organ.code],
            "clocks": {c: clock_counts[c] for c in CATEGORIES},
        })
    if now is None:
        ctx.extras["department_figures"] = (time.monotonic(), out)
    return out


def department_rows(
    ctx: Context, who: Principal, department: str | None = None, now: datetime | None = None
) -> list[dict[str, Any]]:
    """The organs `who` may see (a department: itself) with their figures."""
    scope = who.scope(department)
    return [row for row in figures(ctx, now) if scope is None or row["code"] == scope]


@router.get("/departments", response_class=JieduJSON)
async def list_departments(ctx: Ctx, who: Reader) -> JieduJSON:
    """Every organ of the district with its figures (a department: its own)."""
    return reply(await ctx.read(department_rows, ctx, who))


@router.get("/departments/{code}", response_class=JieduJSON)
async def get_department(ctx: Ctx, who: Reader, code: str) -> JieduJSON:
    """One organ with its figures."""
    if code not in ctx.organs:
        raise HTTPException(404, f"{code} is not an organ of the district")
    rows = await ctx.read(department_rows, ctx, who, code)
    return reply(rows[0])
