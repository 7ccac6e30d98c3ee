"""What the console's pages show, read through the API's own row functions (`services.api`'s
`case_rows`, `clock_rows`, `finding_rows`, `department_rows`) for the principal of the page, so
a page shows exactly what the API answers that principal (a department: its own records) and no
query is written twice. Synchronous, like the stores: pages call these through `Context.read`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import HTTPException

from services.api import deadlines, departments, pages
from services.api.auth import Principal
from services.api.context import Context
from services.deadlines import OVERDUE, PENDING, UPCOMING

SOON_WORKING_DAYS = 3
"""The dashboard's horizon: clocks due within the next 3 working days (临近到期)."""
SHOWN = 30
"""Rows of each dashboard list (the deadlines page has them all, a page at a time)."""


def by_due(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Clocks soonest due first (the API pages them by department and clock)."""
    return sorted(rows, key=lambda r: (
        r["due_at"] is None, r["due_at"].timestamp() if r["due_at"] else 0.0, r["clock_id"]))


def _clocks(ctx: Context, who: Principal, now: datetime, category: str,
            within: int | None = None) -> dict[str, Any]:
    found = deadlines.clock_rows(ctx, who, categories=frozenset({category}), within=within,
                                 now=now, limit=pages.MAX_LIMIT)
    return {"rows": by_due(found["items"]), "more": found["next"] is not None,
            "due_by": found["due_by"]}


def dashboard(ctx: Context, who: Principal, now: datetime) -> dict[str, Any]:
    """Overdue clocks, clocks due within 3 working days, clocks pending a calendar year, and
    each department's figures (worst first), as `who` may see them."""
    problem = None
    try:
        soon = _clocks(ctx, who, now, UPCOMING, within=SOON_WORKING_DAYS)
    except HTTPException as e:  # a year nobody confirmed: the window is not guessed
        soon, problem = {"rows": [], "more": False, "due_by": None}, str(e.detail)
    figures = [
        d for d in departments.department_rows(ctx, who, now=now)
        if d["cases"] or any(d["clocks"].values())
    ]
    figures.sort(key=lambda d: (-d["clocks"][OVERDUE], -d["open_findings"], d["code"]))
    return {
        "now": now,
        "overdue": _clocks(ctx, who, now, OVERDUE),
        "soon": soon,
        "soon_problem": problem,
        "pending": _clocks(ctx, who, now, PENDING),
        "departments": figures,
        "shown": SHOWN,
    }
