"""What became of intake messages: the outcome of an event ID, and the rejected messages
(reason, source, time, a preview of the raw bytes REJECTED keeps) — never for the public; a
department sees those its own systems sent."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from nats.js.api import RawStreamMsg
from nats.js.errors import NotFoundError

from events import streams
from events.outcomes import Reason
from events.streams import Header
from projections.case_summary import CASES, CaseSummary
from services.adapters.eventlog import EventLog
from services.api import pages
from services.api.auth import Principal, Reader
from services.api.context import Context, context_of
from services.api.responses import JieduJSON, reply

router = APIRouter(tags=["intake"])
Ctx = Annotated[Context, Depends(context_of)]

KV_KEY = re.compile(r"^[-/_=a-zA-Z0-9]+(\.[-/_=a-zA-Z0-9]+)*$")
"""What the outcomes bucket can hold as a key; any other event ID has no outcome kept."""
PREVIEW = 512
"""Bytes of a rejected message shown (as text, undecodable bytes replaced); `size` tells all."""


def _source(intake_subject: str) -> tuple[str | None, str | None]:
    """(department, system) of an intake subject (`jiedu.intake.<dept>.<system>.<case>`),
    stored partitioned (`jiedu.intake.<p>.<dept>.<system>.<case>`) or not."""
    tokens = intake_subject.split(".")
    if len(tokens) == 6:
        tokens = tokens[:2] + tokens[3:]
    return (tokens[2], tokens[3]) if len(tokens) == 5 else (None, None)


def rejected_row(msg: RawStreamMsg) -> dict[str, Any]:
    headers = msg.headers or {}
    subject = str(headers.get(Header.INTAKE_SUBJECT, ""))
    department, system = _source(subject)
    data = msg.data or b""
    at = headers.get(Header.REJECTED_AT)
    return {
        "sequence": msg.seq,
        "intake_sequence": int(headers.get(Header.INTAKE_SEQUENCE, 0) or 0),
        "reason": headers.get(Header.REASON),
        "detail": headers.get(Header.DETAIL),
        "source_department": department,
        "source_system": system,
        "intake_subject": subject,
        "rejected_at": datetime.fromisoformat(at) if at else msg.time,
        "size": len(data),
        "preview": data[:PREVIEW].decode("utf-8", errors="replace"),
    }


async def rejected_page(
    ctx: Context, who: Principal, *, reason: str | None = None, department: str | None = None,
    limit: int = pages.DEFAULT_LIMIT, cursor: str | None = None,
) -> dict[str, Any]:
    """A page of REJECTED in log order from the cursor, as `who` may see it."""
    if reason is not None and reason not in set(Reason):
        raise HTTPException(400, f"no reason code {reason}")
    scope = who.scope(department)
    if ctx.nc is None:
        raise HTTPException(503, "not connected to NATS")
    js = ctx.nc.jetstream()
    after = pages.decode(cursor, 1)
    seq = int(after[0]) + 1 if after else 1
    subject = f"jiedu.rejected.{reason or '*'}.*"
    rows: list[dict[str, Any]] = []
    while len(rows) <= limit:
        try:
            msg = await js.get_msg(streams.REJECTED, seq=seq, subject=subject, next=True)
        except NotFoundError:
            break
        row = rejected_row(msg)
        if scope is None or row["source_department"] == scope:
            rows.append(row)
        seq = int(msg.seq or seq) + 1
    return pages.page(rows, ("sequence",), limit)


@router.get("/rejected", response_model=pages.Page, response_class=JieduJSON)
async def list_rejected(
    ctx: Ctx, who: Reader,
    reason: Annotated[str | None, Query(description="a reason code, e.g. invalid_field")] = None,
    department: Annotated[str | None, Query(description="the source's department")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: pages.Cursor = None,
) -> JieduJSON:
    """Refused intake messages in the order they were refused: reason, detail, source, time
    and the first bytes of the message as sent."""
    return reply(await rejected_page(
        ctx, who, reason=reason, department=department, limit=limit, cursor=cursor
    ))


async def _department_of_outcome(ctx: Context, case_id: str | None, intake_seq: int,
                                 rejected: bool) -> str | None:
    """The organ an outcome concerns: for a rejected message, the source that sent it (from
    REJECTED); else the accountable department of its case."""
    if rejected:
        assert ctx.nc is not None
        try:
            msg = await ctx.nc.jetstream().get_msg(
                streams.REJECTED, subject=streams.rejected_filter(intake_seq)
            )
        except NotFoundError:
            return None
        department: str | None = rejected_row(msg)["source_department"]
        return department
    found = await ctx.read(ctx.read_store().select, CaseSummary(), CASES, {"case_id": case_id})
    return found[0]["department"] if found else None


@router.get("/outcomes/{event_id}", response_class=JieduJSON)
async def get_outcome(ctx: Ctx, who: Reader, event_id: str) -> JieduJSON:
    """What became of an event ID: accepted at sequence N, or rejected with reason R (as
    `jiedu status`). A department sees the outcomes of its own systems' refused messages and
    of events on its own cases — the latter once the case summary holds the case (the API does
    not read the log itself), normally within moments of the decision."""
    if ctx.nc is None:
        raise HTTPException(503, "not connected to NATS")
    outcome = await EventLog(ctx.nc).outcome(event_id) if KV_KEY.match(event_id) else None
    if outcome is not None and not who.reads_all:
        department = await _department_of_outcome(
            ctx, outcome.case_id, outcome.intake_sequence, outcome.status == "rejected"
        )
        if not who.may_read(department):
            outcome = None
    if outcome is None:
        raise HTTPException(404, f"no outcome recorded for {event_id} that you may read")
    return reply(outcome.model_dump(exclude_none=True))
