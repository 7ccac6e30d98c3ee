"""Quarterly inspection reports (SUP-1): published by the government office alone, read by
anyone. Publishing builds the report from the read models, pinned to the latest signed chain
head, into `<data dir>/reports/<quarter>/` (the same files as `jiedu report quarterly`); the
public reads what was published, as HTML pages or as JSON."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel

from services import audit, report
from services.api.auth import Anyone, Office
from services.api.context import Context, context_of
from services.api.responses import JieduJSON, reply

router = APIRouter(tags=["reports"])
Ctx = Annotated[Context, Depends(context_of)]

QUARTER = re.compile(r"^\d{4}Q[1-4]$")
PAGE = re.compile(r"^[a-z][a-z0-9_-]{0,63}\.html$")
PUBLISHED = "published.json"


def reports_dir(ctx: Context) -> Path:
    return ctx.settings.data_dir / "reports"


def _quarter(text: str) -> str:
    if not QUARTER.match(text):
        raise HTTPException(404, f"no quarter {text} (e.g. 2026Q3)")
    return text


def published(ctx: Context) -> list[dict[str, Any]]:
    """The published quarters, newest first, each with when and by whom."""
    out = []
    for marker in sorted(reports_dir(ctx).glob(f"*/{PUBLISHED}"), reverse=True):
        out.append(orjson.loads(marker.read_bytes()))
    return out


_FILES: dict[Path, tuple[tuple[int, int, int], bytes]] = {}
"""Published files by path, with the (inode, mtime, size) they were read at: a report is read
by many and published anew seldom, and publishing anew rewrites its files (a new stamp)."""


def _kept(path: Path) -> bytes:
    st = path.stat()
    stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
    found = _FILES.get(path)
    if found is None or found[0] != stamp:
        found = (stamp, path.read_bytes())
        _FILES[path] = found
    return found[1]


@router.get("/reports/quarterly", response_class=JieduJSON)
async def list_reports(ctx: Ctx, who: Anyone) -> JieduJSON:
    """Every published quarterly report (public)."""
    return reply(await ctx.read(published, ctx))


class Publish(BaseModel):
    as_of: datetime | None = None
    """The time the report is as of (default: the last event's)."""


def _publish(ctx: Context, quarter: str, as_of: datetime | None, head: str | None,
             by: str) -> dict[str, Any]:
    store = ctx.read_store()
    if report.statistics_behind(store):
        raise HTTPException(409, "the statistics read model is behind the log: wait for the "
                                 "projections (/api/v1/lag) and publish again")
    out = reports_dir(ctx) / quarter
    built = report.quarterly(report.load_inputs(store), quarter, out, as_of=as_of,
                             chain_head=head)
    marker = {
        "quarter": quarter, "published_at": datetime.now(UTC), "published_by": by,
        "chain_head": head, "log": built.log, "departments": len(built.departments),
    }
    (out / PUBLISHED).write_bytes(orjson.dumps(marker, default=str))
    return marker


@router.post("/reports/quarterly/{quarter}", response_class=JieduJSON, status_code=201)
async def publish_report(ctx: Ctx, who: Office, quarter: str, body: Publish | None = None
                         ) -> JieduJSON:
    """Publish (or publish anew) a quarter's report: the government office only (SUP-1)."""
    quarter = _quarter(quarter)
    as_of = body.as_of if body is not None else None
    if as_of is not None and as_of.tzinfo is None:
        raise HTTPException(422, "as_of: give the time with its offset, e.g. +08:00")
    head = None
    if ctx.nc is not None and ctx.nc.is_connected:
        found = await audit.read_checkpoints(ctx.nc.jetstream())
        own = [cp for cp in found if cp.label == f"quarter:{quarter}"]
        chosen = (own or found)[-1] if (own or found) else None
        if chosen is not None:
            head = (f"{chosen.label} · sequence {chosen.seq} · link {chosen.link} · signed "
                    f"{chosen.signed_at} · key {chosen.key_id} · Ed25519 {chosen.signature}")
    marker = await ctx.read(_publish, ctx, quarter, as_of, head, who.token_id or "gov_office")
    return reply(marker, 201)


@router.get(
    "/reports/quarterly/{quarter}",
    response_class=Response,
    responses={200: {"content": {"application/json": {}, "text/html": {}}}},
)
async def get_report(
    ctx: Ctx, who: Anyone, quarter: str,
    format: Annotated[Literal["html", "json"], Query(description="the page or the figures")] = "json",
) -> Response:
    """A published quarter's report (public): its figures (`format=json`, statistics.json) or
    its index page (`format=html`)."""
    out = reports_dir(ctx) / _quarter(quarter)
    if not (out / PUBLISHED).exists():
        raise HTTPException(404, f"no report published for {quarter}")
    if format == "html":  # the page, at an address its relative links work from
        return RedirectResponse(f"{quarter}/index.html", status_code=303)
    return Response(await ctx.read(_kept, out / "statistics.json"), media_type="application/json")


@router.get("/reports/quarterly/{quarter}/index.html", response_class=HTMLResponse)
async def get_report_index(ctx: Ctx, who: Anyone, quarter: str) -> HTMLResponse:
    """A published quarter's report page (public), with its charts and links to each
    department's page."""
    out = reports_dir(ctx) / _quarter(quarter)
    if not (out / PUBLISHED).exists():
        raise HTTPException(404, f"no report published for {quarter}")
    return HTMLResponse(await ctx.read((out / "index.html").read_text, encoding="utf-8"))


@router.get("/reports/quarterly/{quarter}/departments/{page}", response_class=HTMLResponse)
async def get_report_page(ctx: Ctx, who: Anyone, quarter: str, page: str) -> HTMLResponse:
    """A department's page of a published report (public), as the index page links it."""
    out = reports_dir(ctx) / _quarter(quarter)
    if not PAGE.match(page) or not (out / PUBLISHED).exists():
        raise HTTPException(404, f"no page {page} in a published report for {quarter}")
    path = out / "departments" / page
    if not path.is_file():
        raise HTTPException(404, f"no page {page} in the report for {quarter}")
    return HTMLResponse(await ctx.read(path.read_text, encoding="utf-8"))
