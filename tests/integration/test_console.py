"""The web console's routes per role, on SQLite and PostgreSQL: login and its cookie, forms
that another site cannot send, what the office, an auditor and a department see (a department:
its own cases only, as in the API), a case's findings with their evidence linked to the
timeline (REV-5), overdue PUB-2 clocks on the dashboard, the filters, the static files' caching,
and the public Q&A page (QA-2) with and without a search bound."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from console_world import DRC_CASE, FINANCE_CASE, World, dialect, make_world
from nats.aio.client import Client

from services.adapters.config import Settings
from services.adapters.readmodels import ReadStore
from services.adapters.tokens import Tokens
from services.api.auth import principal_for
from services.api.context import Context
from services.console import qa, reads
from services.console.web import fingerprint
from services.qa import SearchResult

__all__ = ["dialect"]

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
async def world(
    nc: Client, intake: object, settings: Settings, tmp_path: Path, dialect: str
) -> AsyncIterator[World]:
    async for made in make_world(nc, settings, tmp_path, dialect):
        yield made


def rows_of(html: str, table_id: str) -> str:
    """The HTML of one dashboard section (from its heading to the next section)."""
    start = html.index(f'id="{table_id}"')
    return html[start:html.index("</section>", start)]


# ── login, cookie, forms ─────────────────────────────────────────────────────────────────────


async def test_console_pages_send_the_public_to_the_login_form(world: World) -> None:
    async with world.client() as anyone:
        for path in ("/console/", f"/console/cases/{DRC_CASE}", "/console/findings",
                     "/console/deadlines", "/console/departments/drc"):
            r = await anyone.get(path)
            assert r.status_code == 303, path
            assert r.headers["location"].startswith("/console/login?next=/console/")
        htmx = await anyone.get("/console/live/clocks", headers={"HX-Request": "true"})
        assert htmx.headers["HX-Redirect"].startswith("/console/login")
        login = await anyone.get("/console/login")
        assert login.status_code == 200 and 'name="token"' in login.text
        assert "/qa" in login.text  # the public page needs no login and says so


async def test_login_keeps_the_token_in_an_httponly_strict_cookie_until_logout(
    world: World,
) -> None:
    async with world.client() as browser:
        bad = await browser.post("/console/login", data={"token": "jiedu_nope_nope"})
        assert bad.status_code == 401 and "令牌无效" in bad.text
        assert "set-cookie" not in bad.headers

        good = await browser.post(
            "/console/login",
            data={"token": world.tokens["gov_office"], "next": f"/console/cases/{DRC_CASE}"},
        )
        assert good.status_code == 303
        assert good.headers["location"] == f"/console/cases/{DRC_CASE}"
        cookie = good.headers["set-cookie"].lower()
        assert "jiedu_token=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
        page = await browser.get(good.headers["location"])
        assert page.status_code == 200 and DRC_CASE in page.text

        away = await browser.post(
            "/console/login", data={"token": world.tokens["drc"], "next": "https://evil.example/"}
        )
        assert away.headers["location"] == "/console/"  # never sent to another site
        for elsewhere in ("//evil.example/console/", "/console/..//evil.example", "/api/v1/x"):
            sent = await browser.post(
                "/console/login", data={"token": world.tokens["drc"], "next": elsewhere})
            assert sent.headers["location"] == "/console/", elsewhere

        out = await browser.post("/console/logout")
        assert out.status_code == 303 and 'jiedu_token=""' in out.headers["set-cookie"]
        assert (await browser.get("/console/")).status_code == 303


async def test_a_revoked_token_logs_the_reader_out_at_once(world: World, settings: Settings) -> None:
    async with world.client("finance") as browser:
        assert (await browser.get("/console/")).status_code == 200
        Tokens(settings.credentials).revoke("finance")
        r = await browser.get("/console/")
        assert r.status_code == 303 and r.headers["location"].startswith("/console/login")


async def test_a_form_sent_from_another_site_is_refused(world: World) -> None:
    async with world.client() as browser:
        forged = await browser.post(
            "/console/login", data={"token": world.tokens["gov_office"]},
            headers={"Origin": "https://evil.example"},
        )
        assert forged.status_code == 403 and "set-cookie" not in forged.headers
        cross = await browser.post(
            "/console/login", data={"token": world.tokens["gov_office"]},
            headers={"Sec-Fetch-Site": "cross-site"},
        )
        assert cross.status_code == 403
        same = await browser.post(
            "/console/login", data={"token": world.tokens["gov_office"]},
            headers={"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"},
        )
        assert same.status_code == 303


# ── what each role sees ──────────────────────────────────────────────────────────────────────


async def test_the_office_dashboard_shows_every_overdue_pub_2_clock_and_operations(
    world: World,
) -> None:
    async with world.client("gov_office") as office:
        r = await office.get("/console/")
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store" and r.headers["x-frame-options"] == "DENY"
    overdue = rows_of(r.text, "overdue")
    for case in (DRC_CASE, FINANCE_CASE):  # issued in July, no website text since: PUB-2 late
        assert re.search(rf"PUB-2</span></td>\s*<td><a class=\"mono\" href=\"/console/cases/{case}\"",
                         overdue), case
    assert "区发展和改革委员会" in r.text or "发展改革" in r.text  # departments by name
    assert "运行状况" in r.text and "case_summary" in r.text  # the projections' lag
    assert "not_json × 1" in r.text and "not_object × 1" in r.text  # the last day's rejections
    assert "drc/oa" in r.text and "finance/oa" in r.text
    assert 'hx-get="/console/live/clocks"' in r.text and 'hx-trigger="every 15s"' in r.text
    async with world.client("gov_office") as office:
        live = await office.get("/console/live/clocks", headers={"HX-Request": "true"})
    assert live.status_code == 200 and FINANCE_CASE in live.text and "<html" not in live.text


async def test_the_dashboard_lists_clocks_due_within_3_working_days_pub_2(world: World) -> None:
    """As of Wednesday 2026-07-29, the PUB-2 clocks due on Monday 2026-08-03 (23:59) are due
    within 3 working days (Thu, Fri, Mon); as of Tuesday 2026-07-28 they are not yet."""
    ctx: Context = world.app.state.jiedu
    office = principal_for(ctx, world.tokens["gov_office"])
    drc = principal_for(ctx, world.tokens["drc"])
    assert office is not None and drc is not None
    wednesday = datetime(2026, 7, 29, 10, 0, tzinfo=SHANGHAI)
    soon = await ctx.read(reads.dashboard, ctx, office, wednesday)
    due = {(c["rule_id"], c["case_id"]) for c in soon["soon"]["rows"]}
    assert {("PUB-2", DRC_CASE), ("PUB-2", FINANCE_CASE)} <= due
    assert soon["soon"]["due_by"] == datetime(2026, 8, 3, 23, 59, 59, tzinfo=SHANGHAI)
    assert soon["overdue"]["rows"] == []  # nothing was due yet in July
    own = await ctx.read(reads.dashboard, ctx, drc, wednesday)
    assert {c["case_id"] for c in own["soon"]["rows"]} == {DRC_CASE}  # its own only
    tuesday = await ctx.read(reads.dashboard, ctx, office,
                             datetime(2026, 7, 28, 10, 0, tzinfo=SHANGHAI))
    assert ("PUB-2", DRC_CASE) not in {(c["rule_id"], c["case_id"])
                                       for c in tuesday["soon"]["rows"]}


async def test_an_auditor_reads_everything_but_a_department_only_its_own(world: World) -> None:
    async with world.client("auditor") as auditor:
        for path in (f"/console/cases/{FINANCE_CASE}", "/console/departments/finance",
                     "/console/findings?department=finance"):
            r = await auditor.get(path)
            assert r.status_code == 200 and FINANCE_CASE in r.text, path

    async with world.client("drc") as drc:
        dashboard = await drc.get("/console/")
        assert DRC_CASE in dashboard.text and FINANCE_CASE not in dashboard.text
        assert "运行状况" not in dashboard.text  # the district's operations are not a department's
        assert "case_summary" not in dashboard.text  # (no lag)
        assert "not_json × 1" in dashboard.text  # its own system's rejection, not finance's
        assert "not_object" not in dashboard.text and "finance/oa" not in dashboard.text
        cases = await drc.get("/console/cases")
        assert DRC_CASE in cases.text and FINANCE_CASE not in cases.text
        deadlines = await drc.get("/console/deadlines")
        assert DRC_CASE in deadlines.text and FINANCE_CASE not in deadlines.text
        findings = await drc.get("/console/findings")
        assert DRC_CASE in findings.text and FINANCE_CASE not in findings.text
        # another's case is "not found", as the API answers, so its existence does not leak
        other = await drc.get(f"/console/cases/{FINANCE_CASE}")
        assert other.status_code == 404 and "text/html" in other.headers["content-type"]
        assert (await drc.get("/console/departments/finance")).status_code == 404
        assert (await drc.get("/console/findings?department=finance")).status_code == 403
        assert (await drc.get("/console/cases?department=finance")).status_code == 403
        own = await drc.get("/console/departments/drc")
        assert own.status_code == 200 and DRC_CASE in own.text


async def test_the_case_page_links_the_rev_5_findings_evidence_to_the_timeline(
    world: World,
) -> None:
    async with world.client("gov_office") as office:
        r = await office.get(f"/console/cases/{DRC_CASE}")
    assert r.status_code == 200
    issued_id = world.issued["drc"]["event_id"]
    finding = re.search(r'<article class="finding open violation" id="finding-([^"]+)">(.*?)</article>',
                        r.text, re.S)
    assert finding is not None and "REV-5" in finding.group(2)
    assert f'href="#ev-{issued_id}"' in finding.group(2)  # the evidence names the issue event
    assert f'id="ev-{issued_id}"' in r.text  # … which the timeline holds
    timeline = r.text[r.text.index('class="timeline"'):]
    assert timeline.index("DraftSubmitted") < timeline.index("PolicyIssued")
    clocks = r.text[r.text.index("Clocks</small></h2>"):r.text.index("Findings</small></h2>")]
    assert "PUB-2" in clocks and "s-overdue" in clocks  # overdue
    assert "QA-4" in clocks and "met_on_time" in clocks  # answered at once


async def test_findings_and_deadlines_filter_as_the_cli_does(world: World) -> None:
    async with world.client("gov_office") as office:
        rev5 = await office.get("/console/findings?rule=rev-5&status=open")
        none = await office.get("/console/findings?rule=SYNC-1")
        late = await office.get("/console/deadlines?state=overdue&department=finance")
        met = await office.get("/console/deadlines?state=met")
        bad = await office.get("/console/deadlines?state=sideways")
    assert DRC_CASE in rev5.text and FINANCE_CASE in rev5.text
    assert "no findings match" in none.text
    assert FINANCE_CASE in late.text and DRC_CASE not in late.text and "PUB-2" in late.text
    assert "QA-4" in met.text and "PUB-2" not in met.text
    assert bad.status_code == 400


# ── static files, the public Q&A page ────────────────────────────────────────────────────────


async def test_static_files_are_vendored_fingerprinted_and_cached(world: World) -> None:
    async with world.client() as anyone:
        login = await anyone.get("/console/login")
        src = re.search(r'src="(/console/static/htmx\.min\.js\?v=[0-9a-f]{12})"', login.text)
        assert src is not None and src.group(1).endswith(fingerprint("htmx.min.js"))
        fresh = await anyone.get(src.group(1))
        assert fresh.status_code == 200 and b"htmx" in fresh.content
        assert fresh.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert "javascript" in fresh.headers["content-type"]
        stale = await anyone.get("/console/static/htmx.min.js?v=000000000000")
        assert stale.headers["cache-control"] == "no-cache" and stale.headers["etag"]
        again = await anyone.get("/console/static/htmx.min.js",
                                 headers={"If-None-Match": stale.headers["etag"]})
        assert again.status_code == 304
        assert (await anyone.get("/console/static/../web.py")).status_code == 404


async def test_the_public_qa_page_qa_2_finds_the_right_entry_for_a_chinese_question(
    world: World,
) -> None:
    async with world.client() as anyone:  # no login
        page = await anyone.get("/qa", params={"q": "楼宇经济的扶持资金怎么申请"})
        assert page.status_code == 200
        hits = re.findall(r'<li class="hit[^"]*" id="qa-([^"]+)">', page.text)
        assert hits[0] == "e-drc-1"  # the library's best entry, first
        assert "楼宇经济扶持资金怎么申请" in page.text and "区政务服务中心" in page.text
        assert page.headers["x-frame-options"] == "DENY"

        financing = await anyone.get("/qa/results", params={"q": "政府采购合同融资"})
        assert re.findall(r'id="qa-([^"]+)"', financing.text)[0] == "e-fin-1"
        assert "<html" not in financing.text  # the fragment htmx swaps in
        only_drc = await anyone.get("/qa", params={"q": "政府采购合同融资", "department": "drc"})
        assert "e-fin-1" not in only_drc.text  # one department's library

        nothing = await anyone.get("/qa/results", params={"q": "火星移民签证怎么办"})
        assert "没有能回答" in nothing.text and 'class="hit' not in nothing.text

        embedded = await anyone.get("/qa", params={"q": "楼宇经济扶持资金", "embed": "1"})
        assert 'id="qa-e-drc-1"' in embedded.text
        assert "x-frame-options" not in embedded.headers
        assert "frame-ancestors *" in embedded.headers["content-security-policy"]
        assert 'class="top' not in embedded.text  # no site header inside the district's page


async def test_the_qa_page_calls_a_bound_search_with_the_readers_filters(world: World) -> None:
    asked: list[tuple[str, str | None, int]] = []

    def search(store: ReadStore, query: str, *, department: str | None,
               limit: int) -> SearchResult:
        asked.append((query, department, limit))
        return SearchResult(query, (), False)

    world.app.state.qa_search = search
    async with world.client() as anyone:
        await anyone.get("/qa", params={"q": " 社保 ", "department": "hrss"})
        await anyone.get("/qa", params={"q": "社保", "department": "nowhere"})
        await anyone.get("/qa")  # no question: no search
    assert asked == [("社保", "hrss", qa.LIMIT), ("社保", None, qa.LIMIT)]


# ── audit and reports ────────────────────────────────────────────────────────────────────────


async def test_the_audit_page_verifies_the_chain_and_replays_as_of_a_sequence(
    world: World, settings: Settings
) -> None:
    async with world.client("drc") as drc:
        assert (await drc.get("/console/audit")).status_code == 403
        assert (await drc.post("/console/audit/verify")).status_code == 403
    async with world.client("auditor") as auditor:
        before = await auditor.get("/console/audit")
        assert before.status_code == 200 and "no verify has run" in before.text
        head = re.search(r'<dd class="mono">(\d+)</dd>', before.text)
        assert head is not None and int(head.group(1)) >= 8  # the chain head's sequence

        ran = await auditor.post("/console/audit/verify")
        assert ran.status_code == 303
        after = await auditor.get("/console/audit")
        assert "the log, the audit trail and every checkpoint agree" in after.text
        chain = await auditor.get("/api/v1/chain")  # the API shows the same last verify
        assert chain.json()["last_verify"]["ok"] is True
        assert chain.json()["last_verify"]["head_seq"] == int(head.group(1))

        replay = await auditor.post("/console/audit/replay", data={"as_of": "3"})
        assert replay.status_code == 200
        assert "replayed to sequence 3" in replay.text and "case_summary" in replay.text
        written = list((settings.data_dir / "replays").iterdir())
        assert len(written) == 1 and (written[0] / "manifest.json").is_file()
        bad = await auditor.post("/console/audit/replay", data={"as_of": "yesterday"})
        assert bad.status_code == 400


async def test_only_the_office_publishes_the_quarterly_report_sup_1(world: World) -> None:
    async with world.client("drc") as drc:
        refused = await drc.post("/console/reports", data={"quarter": "2026Q3"})
        assert refused.status_code == 403
    async with world.client("auditor") as auditor:
        listing = await auditor.get("/console/reports")
        assert "no report published yet" in listing.text and "发布报告" not in listing.text
    async with world.client("gov_office") as office:
        form_page = await office.get("/console/reports")
        assert 'action="/console/reports"' in form_page.text
        published = await office.post("/console/reports", data={"quarter": "2026q3"})
        assert published.status_code == 303
        listing = await office.get("/console/reports")
        assert 'id="q-2026Q3"' in listing.text
        link = "/api/v1/reports/quarterly/2026Q3/index.html"
        assert link in listing.text
    async with world.client() as anyone:  # the published report is public
        page = await anyone.get(link)
        assert page.status_code == 200 and "2026Q3" in page.text
