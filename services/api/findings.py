"""Findings (检查发现): rules of RULES.md a case broke, open or resolved, with their evidence; and
their counts by rule (and department), as `jiedu findings` gives them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query

from projections.findings import FINDINGS, SEVERITIES, STATUSES, Findings, tally
from services.api import pages
from services.api.auth import Principal, Reader
from services.api.context import Context, context_of
from services.api.responses import JieduJSON, reply

router = APIRouter(tags=["findings"])
Ctx = Annotated[Context, Depends(context_of)]

ORDER = ("department", "case_id", "finding_id")

Department = Annotated[str | None, Query(description="accountable department code")]
Rule = Annotated[str | None, Query(description="rule ID, e.g. REV-5")]
Status = Annotated[str | None, Query(description=f"one of: {', '.join(STATUSES)}")]
Severity = Annotated[str | None, Query(description=f"one of: {', '.join(SEVERITIES)}")]


def _where(
    who: Principal, department: str | None, rule: str | None, status: str | None,
    severity: str | None, case: str | None,
) -> dict[str, Any]:
    for name, value, allowed in (("status", status, STATUSES), ("severity", severity, SEVERITIES)):
        if value is not None and value not in allowed:
            raise HTTPException(400, f"{name} must be one of {', '.join(allowed)}")
    return {
        "department": who.scope(department), "rule_id": rule.upper() if rule else None,
        "status": status, "severity": severity, "case_id": case,
    }


def finding_rows(
    ctx: Context, who: Principal, *, department: str | None = None, rule: str | None = None,
    status: str | None = None, severity: str | None = None, case: str | None = None,
    limit: int = pages.DEFAULT_LIMIT, cursor: str | None = None,
) -> dict[str, Any]:
    """A page of findings as `who` may see them, by department, case and finding."""
    rows = ctx.read_store().select(
        Findings(), FINDINGS, _where(who, department, rule, status, severity, case),
        order_by=ORDER, limit=limit + 1, after=pages.decode(cursor, len(ORDER)),
    )
    return pages.page(rows, ORDER, limit)


def finding_counts(
    ctx: Context, who: Principal, *, by_department: bool = False, department: str | None = None,
    rule: str | None = None, status: str | None = None, severity: str | None = None,
) -> list[dict[str, Any]]:
    rows = ctx.read_store().select(
        Findings(), FINDINGS, _where(who, department, rule, status, severity, None)
    )
    return tally(rows, by_department=by_department)


@router.get("/findings", response_model=pages.Page, response_class=JieduJSON)
async def list_findings(
    ctx: Ctx, who: Reader, department: Department = None, rule: Rule = None,
    status: Status = None, severity: Severity = None,
    case: Annotated[str | None, Query(description="case ID")] = None,
    limit: pages.Limit = pages.DEFAULT_LIMIT, cursor: pages.Cursor = None,
) -> JieduJSON:
    """Findings with their evidence and resolution, a page at a time."""
    return reply(await ctx.read(
        finding_rows, ctx, who, department=department, rule=rule, status=status,
        severity=severity, case=case, limit=limit, cursor=cursor,
    ))


@router.get("/findings/counts", response_class=JieduJSON)
async def count_findings(
    ctx: Ctx, who: Reader, department: Department = None, rule: Rule = None,
    status: Status = None, severity: Severity = None,
    by_department: Annotated[bool, Query(description="counts per department and rule")] = False,
) -> JieduJSON:
    """Counts of findings by rule (and department) and status, in RULES.md order."""
    return reply(await ctx.read(
        finding_counts, ctx, who, by_department=by_department, department=department,
        rule=rule, status=status, severity=severity,
    ))
