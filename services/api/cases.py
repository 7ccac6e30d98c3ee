"""Cases (案件概览): the filters of `jiedu cases`, and one case's timeline (its audit trail with
its findings and clocks)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query

from projections.case_summary import CASES, STATUSES, CaseSummary
from projections.deadlines import CLOCKS, Deadlines
from projections.findings import FINDINGS, Findings
from services import audit
from services.api import pages
from services.api.auth import Principal, Reader
from services.api.context import Context, context_of
from services.api.responses import JieduJSON, reply

router = APIRouter(tags=["cases"])
Ctx = Annotated[Context, Depends(context_of)]

ORDER = ("department", "case_id")


def case_rows(
    ctx: Context, who: Principal, *, department: str | None = None, status: str | None = None,
    scope: str | None = None, kind: str | None = None, limit: int = pages.DEFAULT_LIMIT,
    cursor: str | None = None,
) -> dict[str, Any]:
    """A page of the case summary as `who` may see it (a department: its own cases)."""
    if status is not None and status not in STATUSES:
        raise HTTPException(400, f"status must be one of {', '.join(STATUSES)}")
    where = {"department": who.scope(department), "status": status, "scope": scope, "kind": kind}
    rows = ctx.read_store().select(
        CaseSummary(), CASES, where, order_by=ORDER, limit=limit + 1,
        after=pages.decode(cursor, len(ORDER)),
    )
    return pages.page(rows, ORDER, limit)


@router.get("/cases", response_model=pages.Page, response_class=JieduJSON)
async def list_cases(
    ctx: Ctx, who: Reader,
    department: Annotated[str | None, Query(description="accountable department code")] = None,
    status: Annotated[str | None, Query(description="the case's status")] = None,
    scope: Annotated[
        str | None, Query(description="normative, high_impact, designated or out_of_scope")
    ] = None,
    kind: Annotated[str | None, Query(description="document, major_decision, …")] = None,
    limit: pages.Limit = pages.DEFAULT_LIMIT,
    cursor: pages.Cursor = None,
) -> JieduJSON:
    """The case summary, ordered by department and case, a page at a time."""
    return reply(await ctx.read(
        case_rows, ctx, who, department=department, status=status, scope=scope, kind=kind,
        limit=limit, cursor=cursor,
    ))


def timeline(ctx: Context, who: Principal, case_id: str) -> dict[str, Any] | None:
    """A case's summary, its audit trail (every event with its chain link), its findings and
    its clocks; None if there is no such case or `who` may not see it (the same answer, so a
    department cannot learn which cases of others exist)."""
    store = ctx.read_store()
    found = store.select(CaseSummary(), CASES, {"case_id": case_id})
    if not found or not who.may_read(found[0]["department"]):
        return None
    return {
        "case": found[0],
        "trail": audit.trail(store, case=case_id),
        "findings": store.select(
            Findings(), FINDINGS, {"case_id": case_id}, order_by=("recorded_seq", "finding_id")
        ),
        "clocks": store.select(
            Deadlines(), CLOCKS, {"case_id": case_id}, order_by=("due_at", "clock_id")
        ),
    }


@router.get("/cases/{case_id}", response_class=JieduJSON)
async def get_case(ctx: Ctx, who: Reader, case_id: str) -> JieduJSON:
    """One case's timeline: summary, audit trail with chain links, findings, clocks."""
    found = await ctx.read(timeline, ctx, who, case_id)
    if found is None:
        raise HTTPException(404, f"no case {case_id} you may read")
    return reply(found)

