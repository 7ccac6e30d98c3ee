"""The console in a real browser: Playwright for Python driving Debian's Chromium
(`executable_path`; `playwright install` is never used) against the app served by uvicorn on a
free port. The office logs in, sees an overdue PUB-2 clock on the dashboard, follows it to its
case and to the REV-5 finding's evidence in the timeline; a department sees only its own cases;
the public Q&A page (QA-2) answers a question typed in Chinese as the reader types (htmx).

Screenshots are kept under test-artifacts/console/ (gitignored). Without Chromium these tests
skip and say why, unless JIEDU_REQUIRE_BROWSER=1, when they fail instead."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from console_world import DRC_CASE, FINANCE_CASE, World, make_world
from nats.aio.client import Client

from services.adapters.config import Settings
from services.adapters.natsserver import free_port

CHROMIUM = Path(os.environ.get("JIEDU_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"


def chromium_or_skip() -> None:
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return
    reason = f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium fonts-noto-cjk)"
    if os.environ.get("JIEDU_REQUIRE_BROWSER") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@dataclass
class Site:
    world: World
    url: str
    browser: Any

    async def page(self, party: str | None = None) -> Any:
        """A new browser page (its own cookies), logged in through the form as `party`."""
        context = await self.browser.new_context(
            viewport={"width": 1360, "height": 900}, locale="zh-CN",
            timezone_id="Asia/Shanghai",
        )
        page = await context.new_page()
        if party is not None:
            await page.goto(f"{self.url}/console/login")
            await page.fill("#token", self.world.tokens[party])
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{self.url}/console/")
        return page


async def shot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture
async def site(
    nc: Client, intake: object, settings: Settings, tmp_path: Path
) -> AsyncIterator[Site]:
    chromium_or_skip()
    from playwright.async_api import async_playwright

    async for world in make_world(nc, settings, tmp_path):
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(
            world.app, host="127.0.0.1", port=port, lifespan="off", log_config=None,
            access_log=False,
        ))
        serving = asyncio.create_task(server.serve())
        for _ in range(400):  # up to 20 s on a loaded machine
            if server.started:
                break
            await asyncio.sleep(0.05)
        assert server.started, "uvicorn did not start"
        try:
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
                try:
                    yield Site(world, f"http://127.0.0.1:{port}", browser)
                finally:
                    await browser.close()
        finally:
            server.should_exit = True
            await serving


async def test_the_office_follows_an_overdue_pub_2_clock_to_the_rev_5_evidence(
    site: Site,
) -> None:
    form = await site.page()
    await form.goto(f"{site.url}/console/")  # not logged in: to the login form
    await form.wait_for_url(f"{site.url}/console/login?next=/console/")
    await shot(form, "login")
    page = await site.page("gov_office")
    overdue = page.locator("#overdue + table tbody tr", has_text=DRC_CASE)
    await overdue.first.wait_for()
    assert "PUB-2" in await overdue.first.inner_text()
    await shot(page, "dashboard-office")

    await overdue.first.locator(f"a[href='/console/cases/{DRC_CASE}']").click()
    await page.wait_for_url(f"{site.url}/console/cases/{DRC_CASE}")
    finding = page.locator("article.finding", has_text="REV-5")
    assert await finding.count() == 1
    await shot(page, "case")

    issued_id = site.world.issued["drc"]["event_id"]
    await finding.locator(f"a.evidence-link[href='#ev-{issued_id}']").click()
    await page.wait_for_url(f"{site.url}/console/cases/{DRC_CASE}#ev-{issued_id}")
    target = page.locator(f"li#ev-{issued_id}")
    assert await target.is_visible() and "PolicyIssued" in await target.inner_text()
    assert await page.evaluate("document.querySelector(':target').id") == f"ev-{issued_id}"
    await target.scroll_into_view_if_needed()
    await page.screenshot(path=str(ARTIFACTS / "case-evidence.png"))


async def test_an_auditor_runs_verify_from_the_audit_page(site: Site) -> None:
    page = await site.page("auditor")
    await page.click("text=审计")
    await page.wait_for_url(f"{site.url}/console/audit")
    await page.click("text=立即校验")
    await page.wait_for_url(f"{site.url}/console/audit#verify")
    assert await page.locator("p.ok", has_text="every checkpoint agree").count() == 1
    await page.fill("input[name=as_of]", "2026-07-06T12:00:00+08:00")
    await page.select_option("select[name=by]", "occurred")
    await page.click("form[action$='/audit/replay'] button")
    await page.locator("#replayed").wait_for()
    # as of noon on July 6th: the log up to its first event of later days (the consultation of
    # July 10th and 13th: three of the nine events), which comes after a draft of that morning
    shown = re.search(r"replayed to sequence (\d+)", await page.locator("#replayed").inner_text())
    assert shown is not None and 0 < int(shown.group(1)) <= 6
    await shot(page, "audit")


async def test_a_department_sees_only_its_own_cases_in_the_browser(site: Site) -> None:
    page = await site.page("drc")
    body = await page.locator("main").inner_text()
    assert DRC_CASE in body and FINANCE_CASE not in body
    await shot(page, "dashboard-drc")
    await page.click("text=案件")
    await page.wait_for_url(f"{site.url}/console/cases")
    listed = await page.locator("table.grid tbody").inner_text()
    assert DRC_CASE in listed and FINANCE_CASE not in listed
    response = await page.goto(f"{site.url}/console/cases/{FINANCE_CASE}")
    assert response is not None and response.status == 404
    await shot(page, "department-refused")


async def test_the_public_qa_page_answers_a_question_typed_in_chinese(site: Site) -> None:
    """QA-2: the library's search, as the public sees it (no login); htmx swaps the results in
    as the reader types."""
    page = await site.page()
    await page.goto(f"{site.url}/qa")
    await page.locator("#q").press_sequentially("政府采购合同怎么融资", delay=30)
    hit = page.locator("#results .hit h3")
    await hit.first.wait_for()
    assert await hit.first.inner_text() == "政府采购合同融资怎么办理？"
    assert page.url == f"{site.url}/qa"  # swapped in place, no navigation
    await shot(page, "qa-public")
    await page.goto(f"{site.url}/qa?embed=1&q=楼宇经济扶持资金")
    assert await page.locator("header.top").count() == 0
    assert await page.locator("#results .hit h3").first.inner_text() == "楼宇经济扶持资金怎么申请？"
    await shot(page, "qa-embedded")
