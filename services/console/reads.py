"""What the console's pages show, read from the read models as the API reads them: through
`ReadStore.select` on the projections' own tables, narrowed by the principal exactly as the
API narrows (`Principal.scope`, `Principal.may_read`). Synchronous, like the stores: the pages
call these through `Context.read`, off the event loop.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from domain.calendar import CalendarError
from domain.clocks import Status
from projections.base import Row
from projections.deadlines import (
    CALENDAR_YEARS,
    CLOCKS,
    Deadlines,
    default_calendar,
    with_log_years,
)
from projections.findings import FINDINGS, Findings
from services.adapters.readmodels import ReadStore
from services.api.auth import Principal

MET = frozenset({str(Status.MET_ON_TIME), str(Status.MET_LATE)})
SOON_WORKING_DAYS = 3
"""The dashboard's horizon: clocks due within the next 3 working days (临近到期)."""


def overdue(row: Row, now: datetime) -> bool:
    """A clock past its due time and not met (breached, or open with its time gone)."""
    if row["status"] == str(Status.BREACHED):
        return True
    due: datetime | None = row["due_at"]
    return row["status"] == str(Status.OPEN) and due is not None and due <= now


def state(row: Row, now: datetime) -> str:
    """overdue, open (running), pending_calendar or met: how the deadlines page groups clocks."""
    if overdue(row, now):
        return "overdue"
    return "met" if row["status"] in MET else str(row["status"])


def clocks(
    store: ReadStore, who: Principal, *, department: str | None = None,
    status: str | None = None, rule: str | None = None, case: str | None = None,
) -> list[Row]:
    """The clocks `who` may see, filtered as `jiedu deadlines` filters, by due time."""
    return store.select(
        Deadlines(), CLOCKS,
        {"department": who.scope(department), "status": status, "rule_id": rule,
         "case_id": case},
        order_by=("due_at", "clock_id"),
    )


def findings(
    store: ReadStore, who: Principal, *, department: str | None = None,
    rule: str | None = None, status: str | None = None, case: str | None = None,
) -> list[Row]:
    """The findings `who` may see, filtered as `jiedu findings` filters, newest first."""
    rows = store.select(
        Findings(), FINDINGS,
        {"department": who.scope(department), "rule_id": rule, "status": status,
         "case_id": case},
        order_by=("recorded_seq", "finding_id"),
    )
    rows.reverse()
    return rows


@dataclass(frozen=True)
class Horizon:
    """The end of the dashboard's "due soon" window, or why it cannot be known."""

    until: datetime | None
    problem: str | None = None


def horizon(store: ReadStore, now: datetime, days: int = SOON_WORKING_DAYS) -> Horizon:
    """The end of the `days`-th working day after today (Asia/Shanghai), by the calendar the
    clocks count with (the package's years, the operator's files, the years confirmed in the
    log). A year nobody confirmed is never guessed: the window is then unknown, and said so."""
    calendar = with_log_years(default_calendar(), store.select(Deadlines(), CALENDAR_YEARS))
    try:
        return Horizon(calendar.compute_due(now, days).due_at)
    except CalendarError as e:
        return Horizon(None, str(e))


def dashboard(store: ReadStore, who: Principal, now: datetime | None = None) -> dict[str, Any]:
    """Overdue clocks, clocks due soon, compliance per department and open findings, as `who`
    may see them (a department: its own)."""
    now = now or datetime.now(UTC)
    rows = clocks(store, who)
    late = [r for r in rows if overdue(r, now)]
    window = horizon(store, now)
    soon = [
        r for r in rows
        if r["status"] == str(Status.OPEN) and r["due_at"] is not None and now < r["due_at"]
        and window.until is not None and r["due_at"] <= window.until
    ]
    return {
        "now": now,
        "overdue": late,
        "soon": soon,
        "horizon": window,
        "pending": [r for r in rows if r["status"] == str(Status.PENDING_CALENDAR)],
        "compliance": compliance(rows, findings(store, who, status="open"), now),
    }


def compliance(clock_rows: list[Row], open_findings: list[Row], now: datetime) -> list[dict[str, Any]]:
    """Per department: clocks met on time, met late, breached or overdue, still running; the
    on-time rate of those decided (按时办结率); open findings. Worst first."""
    by: dict[str, Counter[str]] = {}
    for r in clock_rows:
        c = by.setdefault(r["department"], Counter())
        if overdue(r, now):
            c["overdue"] += 1
        elif r["status"] in MET:
            c[r["status"]] += 1
        else:
            c["running"] += 1
    for f in open_findings:
        by.setdefault(f["department"], Counter())["findings"] += 1
    out: list[dict[str, Any]] = []
    for department, c in by.items():
        decided = c[str(Status.MET_ON_TIME)] + c[str(Status.MET_LATE)] + c["overdue"]
        out.append({
            "department": department,
            "on_time": c[str(Status.MET_ON_TIME)],
            "late": c[str(Status.MET_LATE)],
            "overdue": c["overdue"],
            "running": c["running"],
            "findings": c["findings"],
            "rate": c[str(Status.MET_ON_TIME)] / decided if decided else None,
        })
    out.sort(key=lambda d: (-int(d["overdue"]), -int(d["findings"]), str(d["department"])))
    return out
