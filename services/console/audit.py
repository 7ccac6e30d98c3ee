"""The audit page (审计) for the government office and the auditors: the hash chain's head as the
audit trail holds it, the signed checkpoints, the last verify of this data dir, and two
actions — run verify now, and replay every projection as of a time or sequence.

The API's own NATS identity may not read the log (EVENTS); verify and replay read it whole, so
they connect for their run as the read-only auditor party (as `jiedu audit verify` and
`jiedu replay` do), with the credentials of the data dir, and only for a principal who may
audit. A verify's report is kept where the CLI keeps it (`audit.record_verify`), so the API's
`/chain` and this page show the same last verify."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from nats.js.errors import NotFoundError

from projections.audit import HEAD, HEAD_KEY, AuditTrail
from services import audit, bootstrap
from services.adapters import permissions
from services.api.auth import Principal
from services.api.context import Context
from services.console.web import BASE, ConsoleError, Ctx, Viewer, form, page

router = APIRouter(include_in_schema=False)

CONNECTION = "jiedu-console-audit"
"""The name of the verify and replay connections: any name not of a service speaks for the
read-only auditor party (`bootstrap.PARTY_OF_CONNECTION`)."""
REPLAYS = "replays"
"""Under the data dir: where replays asked for from the console are written, one dir each."""


def _auditor(who: Principal) -> None:
    if not who.reads_all:
        raise ConsoleError(403, "审计页面仅限区政府办公室和审计人员 · the office and auditors only")


async def _state(ctx: Context) -> dict[str, Any]:
    heads = await ctx.read(ctx.read_store().select, AuditTrail(), HEAD, {"name": HEAD_KEY})
    problem = None
    checkpoints: list[Any] = []
    if ctx.nc is not None and ctx.nc.is_connected:
        try:
            checkpoints = await audit.read_checkpoints(ctx.nc.jetstream(timeout=2.0))
        except Exception as e:  # said on the page; the rest still shows
            problem = f"无法读取签名检查点 · checkpoints unavailable: {type(e).__name__}"
    else:
        problem = "NATS 未连接 · not connected to NATS"
    key_file = audit.key_paths(ctx.settings.data_dir)[1]
    key = await asyncio.to_thread(audit.load_public_key, key_file) if key_file.exists() else None
    return {
        "head": heads[0] if heads else None,
        "checkpoints": [(c, None if key is None else c.valid_under(key))
                        for c in reversed(checkpoints)],
        "last_verify": await ctx.read(audit.last_verify, ctx.settings.data_dir),
        "problem": problem,
    }


@router.get(f"{BASE}/audit", response_class=HTMLResponse)
async def audit_page(request: Request, ctx: Ctx, who: Viewer) -> Response:
    _auditor(who)
    return page(request, "audit.html", {"who": who, "name": ctx.organs.name,
                                        **await _state(ctx), "replayed": None})


@router.post(f"{BASE}/audit/verify")
async def run_verify(request: Request, ctx: Ctx, who: Viewer) -> Response:
    """Recompute the chain from the log against the audit rows and every signed checkpoint,
    keep the report as the data dir's last verify, and show it."""
    _auditor(who)
    await form(request)
    key_file = audit.key_paths(ctx.settings.data_dir)[1]
    key = await asyncio.to_thread(audit.load_public_key, key_file) if key_file.exists() else None
    started = time.perf_counter()
    nc = await bootstrap.connect(bootstrap.nats_url(ctx.settings), CONNECTION,
                                 party=permissions.AUDITOR, credentials=ctx.settings.credentials)
    try:
        report = await audit.verify_log(nc.jetstream(), ctx.read_store(), key)
    except NotFoundError:
        raise ConsoleError(409, "日志尚不存在 · there is no log yet") from None
    finally:
        await nc.close()
    if key is None:
        report.notes.append(f"no public key at {key_file}: checkpoints cannot be verified")
    await asyncio.to_thread(audit.record_verify, ctx.settings.data_dir, {
        **report.as_dict(), "seconds": round(time.perf_counter() - started, 3),
        "verified_at": datetime.now(UTC).isoformat(), "by": who.token_id,
    })
    return RedirectResponse(f"{BASE}/audit#verify", status_code=303)


@router.post(f"{BASE}/audit/replay", response_class=HTMLResponse)
async def run_replay(request: Request, ctx: Ctx, who: Viewer) -> Response:
    """Every projection as of a time (ISO 8601; without zone: Asia/Shanghai) or a log
    sequence, into a fresh store under the data dir, with its exports' hashes. A time counts
    by when the log stored each event (`recorded`, the default) or when it occurred."""
    _auditor(who)
    fields = await form(request)
    text = fields.get("as_of", "").strip()
    try:
        as_of = audit.parse_as_of(text)
    except ValueError:
        raise ConsoleError(400, f"“{text}” 不是时间或序号 · not a time or a sequence") from None
    by = fields.get("by", "recorded")
    if by not in ("recorded", "occurred"):
        raise ConsoleError(400, "by: recorded or occurred")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    out = ctx.settings.data_dir / REPLAYS / stamp
    nc = await bootstrap.connect(bootstrap.nats_url(ctx.settings), CONNECTION,
                                 party=permissions.AUDITOR, credentials=ctx.settings.credentials)
    try:
        replayed = await audit.replay_log(nc.jetstream(), out, as_of,
                                          "occurred" if by == "occurred" else "recorded")
    except NotFoundError:
        raise ConsoleError(409, "日志尚不存在 · there is no log yet") from None
    finally:
        await nc.close()
    return page(request, "audit.html", {"who": who, "name": ctx.organs.name,
                                        **await _state(ctx), "replayed": replayed,
                                        "as_of": text, "by": by})
