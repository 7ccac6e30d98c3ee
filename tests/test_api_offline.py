"""The API without NATS (the server down, or not yet reachable): the process stays alive and
says what is missing — /healthz answers, /readyz is 503 naming NATS, /metrics still reports
what the read models hold, the HTTP intake refuses with 503 (nothing was published), and reads
of the read models go on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from services.adapters.config import Settings
from services.adapters.readmodels import open_store
from services.adapters.tokens import Tokens
from services.api import Context, create_app


@pytest.fixture
async def offline(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    settings = Settings(data_dir=tmp_path, credentials_dir=tmp_path / "creds")
    store = open_store(None, tmp_path)
    app = create_app(settings, context=Context(settings, store=store, nc=None))
    _, token = Tokens(settings.credentials).issue("drc")
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
        ):
            yield http, token
    finally:
        store.close()


async def test_without_nats_the_api_is_alive_not_ready_and_says_why(
    offline: tuple[httpx.AsyncClient, str],
) -> None:
    http, token = offline
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    ready = await http.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["problems"] == ["NATS: not connected"]
    metrics = (await http.get("/metrics")).text
    assert "jiedu_nats_connected 0.0" in metrics
    assert 'jiedu_clocks{category="overdue"} 0.0' in metrics
    posted = await http.post("/api/v1/events", headers=bearer, content=b"{}")
    assert posted.status_code == 503 and posted.json()["error"] == "unavailable"
    cases = await http.get("/api/v1/cases", headers=bearer)
    assert cases.status_code == 200 and cases.json() == {"items": [], "next": None}
    assert (await http.get("/api/v1/rejected", headers=bearer)).status_code == 503
