"""A small district for the console's tests: facts published through the real intake, every
projection rebuilt from the log into a store (SQLite or PostgreSQL), tokens for the office, an
auditor and two departments, and the API's app (with the console) on that store.

The facts break rules on purpose: each department issues a policy that nobody reviewed (REV-5,
a violation whose evidence is the issue event) and, issued in July 2026, it starts a PUB-2
clock long overdue by now; drc also has a consultation referred to it and answered in time
(QA-4 met on time); each policy has a Q&A entry (QA-1); each department's system sent one
message the intake refused (drc: not JSON; finance: not an object)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from deadline_events import answered, referred
from fastapi import FastAPI
from nats.aio.client import Client

import factories as f
from logtools import drained, publish, rejected
from pgtools import PG_URL, drop_schema, postgres_or_skip
from projections import ALL
from services.adapters.config import Settings
from services.adapters.readmodels import ReadStore, open_store
from services.adapters.tokens import Tokens
from services.api import create_app
from services.api.context import Context
from services.projector import rebuild

DRC_CASE, FINANCE_CASE = "CON-DRC-1", "CON-FIN-1"


@dataclass
class World:
    app: FastAPI
    store: ReadStore
    tokens: dict[str, str]
    """A live token per party: gov_office, auditor, drc, finance."""
    issued: dict[str, dict[str, object]]
    """The PolicyIssued event of each department's case."""

    def client(self, party: str | None = None) -> httpx.AsyncClient:
        """A client of the app; logged in (the console's cookie) as `party` if given."""
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://testserver",
            follow_redirects=False,
        )
        if party is not None:
            client.cookies.set("jiedu_token", self.tokens[party])
        return client


@pytest.fixture(params=["sqlite", "postgresql"])
def dialect(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        postgres_or_skip()
    return str(request.param)


async def make_world(
    nc: Client, settings: Settings, tmp_path: Path, dialect: str = "sqlite"
) -> AsyncIterator[World]:
    issued = {}
    for department, case in (("drc", DRC_CASE), ("finance", FINANCE_CASE)):
        await publish(nc, f.draft(case, department))
        issued[department] = f.issued(case, department)
        await publish(nc, issued[department])
    asked = f.consultation(DRC_CASE, "CQ-1")
    asked["occurred_at"] = "2026-07-10T09:00:00+08:00"
    await publish(nc, asked)
    await publish(nc, {**referred("CQ-1", "2026-07-10 10:00"), "case_id": DRC_CASE})
    await publish(nc, {**answered("CQ-1", "2026-07-13 10:00"), "case_id": DRC_CASE})
    # the Q&A library (QA-1): an entry on each issued policy
    await publish(nc, f.qa_entry(DRC_CASE, "e-drc-1"))
    await publish(nc, f.qa_entry(
        FINANCE_CASE, "e-fin-1", "finance", question="政府采购合同融资怎么办理？",
        answer="中标企业凭政府采购合同向合作银行申请融资，无需抵押担保。",
        keywords=["政府采购", "合同融资"], benefit_office={"name": "区财政局政府采购科"},
    ))
    # what each department's system sent that the intake refused (the dashboard's last day)
    await publish(nc, b'{"type": "DraftSubmitted"', source="drc/oa", case=DRC_CASE)
    await publish(nc, b"[1, 2]", source="finance/oa", case=FINANCE_CASE)
    await drained(nc)
    assert sorted(reason for reason, _ in (await rejected(nc)).values()) == [
        "not_json", "not_object"]

    schema = f"t_console_{uuid.uuid4().hex[:10]}" if dialect == "postgresql" else None
    store = await asyncio.to_thread(
        open_store, f"{PG_URL}?schema={schema}" if schema else None, tmp_path
    )
    for projection in ALL:
        await rebuild(nc.jetstream(), store, projection)
    keeper = Tokens(settings.credentials)
    tokens = {party: keeper.issue(party)[1]
              for party in ("gov_office", "auditor", "drc", "finance")}
    app = create_app(settings, context=Context(settings, store=store, nc=nc))
    try:
        yield World(app, store, tokens, issued)
    finally:
        await asyncio.to_thread(store.close)
        if schema is not None:
            drop_schema(schema)
