"""Operations: the probes (/healthz, /readyz) at the root, for the operator's monitoring."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from services.api.context import Context, context_of
from services.api.responses import JieduJSON, reply

router = APIRouter(tags=["operations"])
probes = APIRouter(tags=["probes"])
Ctx = Annotated[Context, Depends(context_of)]


@probes.get("/healthz", response_class=JieduJSON)
async def healthz() -> JieduJSON:
    """The process answers (liveness); says nothing of NATS or the read models."""
    return reply({"status": "ok"})
