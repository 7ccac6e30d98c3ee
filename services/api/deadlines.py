"""Deadlines (期限): the clocks of PUB-2, PUB-3, QA-4, OP-4 and SUP-1 — overdue, due within N
working days, pending a calendar year nobody supplied — as `jiedu deadlines` shows them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query

from domain.calendar import CalendarError, UnknownYear, WorkingDayCalendar
from projections.base import Row
from projections.deadlines import (
    CALENDAR_YEARS,
    CLOCKS,
    STATUSES,
    Deadlines,
    calendar_dir,
    with_log_years,
)
from services.api import pages
from services.api.auth import Principal, Reader
from services.api.context import Context, context_of
from services.api.responses import JieduJSON, reply
from services.deadlines import CATEGORIES, MET_STATE, UPCOMING, category, statuses_of

router = APIRouter(tags=["deadlines"])
Ctx = Annotated[Context, Depends(context_of)]

ORDER = ("department", "clock_id")
SCAN = 200
"""Clocks read per query while a page filtered by category fills up (the store narrows them
by status first)."""


def working_calendar(ctx: Context) -> WorkingDayCalendar:
    """What the deadline service counts with: package, operator files, years confirmed in the
    log (as the read model holds them)."""
    base = ctx.extras.get("calendar")
    if base is None:
        try:
            base = WorkingDayCalendar.load(calendar_dir())
        except CalendarError as e:
            raise HTTPException(503, f"the operator's calendar files do not load: {e}") from None
        ctx.extras["calendar"] = base
    years = ctx.read_store().select(Deadlines(), CALENDAR_YEARS)
    calendar: WorkingDayCalendar = with_log_years(base, years)
    return calendar


def clock_rows(
    ctx: Context, who: Principal, *, department: str | None = None, rule: str | None = None,
    status: str | None = None, case: str | None = None, categories: frozenset[str] | None = None,
    within: int | None = None, now: datetime | None = None, limit: int = pages.DEFAULT_LIMIT,
    cursor: str | None = None,
) -> dict[str, Any]:
    """A page of clocks as `who` may see them, each with its category as of `now`: those of
    `categories` (default: all but met), and with `within`, only the upcoming ones due by the
    end of the N-th working day from now (overdue and pending ones are kept: they are due)."""
    if status is not None and status not in STATUSES:
        raise HTTPException(400, f"status must be one of {', '.join(STATUSES)}")
    now = now or datetime.now(UTC)
    chosen = categories or frozenset(CATEGORIES) - {MET_STATE}
    until: datetime | None = None
    if within is not None:
        try:
            until = working_calendar(ctx).due_at(now, within)
        except UnknownYear as e:
            raise HTTPException(409, f"the working-day calendar lacks a year: {e}") from None
    where = {
        "department": who.scope(department),
        "status": status if status is not None else statuses_of(chosen),
        "rule_id": rule.upper() if rule else None, "case_id": case,
    }
    after = pages.decode(cursor, len(ORDER))
    shown: list[Row] = []
    store = ctx.read_store()
    scan = max(limit + 1, SCAN)
    while len(shown) <= limit:
        rows = store.select(Deadlines(), CLOCKS, where, order_by=ORDER, limit=scan, after=after)
        for r in rows:
            c = category(r, now)
            if c not in chosen:
                continue
            if until is not None and c == UPCOMING and (r["due_at"] is None or r["due_at"] > until):
                continue
            shown.append({**r, "category": c})
        if len(rows) < scan:
            break
        after = [rows[-1][c] for c in ORDER]
    return {**pages.page(shown, ORDER, limit), "as_of": now, "due_by": until}


def _categories(text: str | None) -> frozenset[str] | None:
    if text is None:
        return None
    found = frozenset(c.strip() for c in text.split(",") if c.strip())
    if not found or not found <= set(CATEGORIES):
        raise HTTPException(400, f"category: one or more of {', '.join(CATEGORIES)}")
    return found


@router.get("/deadlines", response_class=JieduJSON)
async def list_deadlines(
    ctx: Ctx, who: Reader,
    department: Annotated[str | None, Query(description="accountable department code")] = None,
    rule: Annotated[str | None, Query(description="PUB-2, PUB-3, QA-4, OP-4 or SUP-1")] = None,
    status: Annotated[str | None, Query(description=f"one of: {', '.join(STATUSES)}")] = None,
    case: Annotated[str | None, Query(description="only this case's clocks")] = None,
    category: Annotated[
        str | None,
        Query(description=f"comma-separated: {', '.join(CATEGORIES)} (default: all but met)"),
    ] = None,
    within: Annotated[
        int | None,
        Query(ge=1, le=366, description="upcoming ones due within N working days from now"),
    ] = None,
    at: Annotated[datetime | None, Query(description="judge as of this time (ISO 8601)")] = None,
    limit: pages.Limit = pages.DEFAULT_LIMIT,
    cursor: pages.Cursor = None,
) -> JieduJSON:
    """Deadline clocks by department, with where each stands (`category`) as of now."""
    if at is not None and at.tzinfo is None:
        raise HTTPException(400, "at: give the time with its offset, e.g. +08:00")
    return reply(await ctx.read(
        clock_rows, ctx, who, department=department, rule=rule, status=status, case=case,
        categories=_categories(category), within=within, now=at, limit=limit, cursor=cursor,
    ))
