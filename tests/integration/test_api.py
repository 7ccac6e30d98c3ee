"""The HTTP API, per resource and role, on SQLite and PostgreSQL: who may see what (a test per
boundary), cursor pages, the case timeline, reports, operations, and the HTTP intake answering
what the real intake decided.

Every request goes through the real app (in-process, httpx's ASGI transport) with its own NATS
identity (`api`) on a real nats-server under the generated authorisation; the events are posted
through the HTTP intake itself, as an organ's system would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from nats.aio.client import Client

import factories as f
from apitools import Api, running_api
from logtools import events, rejected
from services.adapters.config import Settings
from services.adapters.tokens import Tokens

DRC, EDUCATION = "drc", "education"


@pytest.fixture(params=["sqlite", "postgresql"])
async def api(
    request: pytest.FixtureRequest, settings: Settings, nc: Client, intake: object,
    tmp_path: Path,
) -> AsyncIterator[Api]:
    async with running_api(settings, nc, request.param, tmp_path) as running:
        yield running


def batch(*items: dict[str, Any]) -> bytes:
    return orjson.dumps(list(items))


async def seed(api: Api) -> dict[str, Any]:
    """Two cases of the development and reform commission (one issued unreviewed: REV-5) and
    one of the education commission, each posted by its own organ's system."""
    drc_issued = f.issued("API-DRC-1")
    posted = await api.post("/events", DRC, batch(f.draft("API-DRC-1"), drc_issued,
                                                   f.draft("API-DRC-2")))
    assert posted.status_code == 201, posted.text
    education = await api.post("/events", EDUCATION, f.dumps(f.draft("API-EDU-1", EDUCATION)))
    assert education.status_code == 201, education.text
    await api.settled()
    return {"drc_issued": drc_issued}


async def all_pages(api: Api, path: str, party: str, limit: int, **params: Any) -> list[Any]:
    items: list[Any] = []
    cursor: str | None = None
    while True:
        page = await api.get(path, party, limit=limit, **({"cursor": cursor} if cursor else {}),
                             **params)
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["items"]) <= limit
        items += body["items"]
        cursor = body["next"]
        if cursor is None:
            return items


async def test_a_department_reads_its_own_cases_and_not_anothers(api: Api) -> None:
    await seed(api)
    own = (await api.get("/cases", DRC)).json()["items"]
    assert [c["case_id"] for c in own] == ["API-DRC-1", "API-DRC-2"]
    assert (await api.get("/cases", DRC, department=EDUCATION)).status_code == 403
    assert (await api.get("/cases/API-EDU-1", DRC)).status_code == 404
    assert (await api.get("/cases/API-DRC-1", DRC)).status_code == 200
    found = (await api.get("/findings", DRC)).json()["items"]
    assert found and {r["department"] for r in found} == {DRC}
    assert (await api.get("/findings", DRC, department=EDUCATION)).status_code == 403
    assert {r["department"] for r in (await api.get("/findings", EDUCATION)).json()["items"]} <= {
        EDUCATION}
    clocks = (await api.get("/deadlines", EDUCATION)).json()["items"]
    assert {r["department"] for r in clocks} <= {EDUCATION}
    departments = (await api.get("/departments", DRC)).json()
    assert [d["code"] for d in departments] == [DRC]
    assert (await api.get(f"/departments/{EDUCATION}", DRC)).status_code == 403


async def test_the_office_and_the_auditor_read_every_case_a_page_at_a_time(api: Api) -> None:
    await seed(api)
    for reader in ("gov_office", "auditor"):
        whole = (await api.get("/cases", reader)).json()
        assert whole["next"] is None
        assert [c["case_id"] for c in whole["items"]] == ["API-DRC-1", "API-DRC-2", "API-EDU-1"]
        assert await all_pages(api, "/cases", reader, limit=1) == whole["items"]
        findings = (await api.get("/findings", reader, limit=1000)).json()["items"]
        assert await all_pages(api, "/findings", reader, limit=2) == findings
    assert (await api.get("/cases", "auditor", cursor="not-a-cursor")).status_code == 400


async def test_a_case_timeline_has_its_trail_findings_and_clocks_in_shanghai_time(
    api: Api,
) -> None:
    seeded = await seed(api)
    timeline = (await api.get("/cases/API-DRC-1", "gov_office")).json()
    logged = [e for _, e in await events(api.nc) if e["case_id"] == "API-DRC-1"]
    assert [r["event_id"] for r in timeline["trail"]] == [e["event_id"] for e in logged]
    assert all(len(r["link"]) == 64 for r in timeline["trail"])
    rev5 = [x for x in timeline["findings"] if x["rule_id"] == "REV-5"]
    assert rev5 and rev5[0]["fact_event_id"] == seeded["drc_issued"]["event_id"]
    assert {k["rule_id"] for k in timeline["clocks"]} >= {"PUB-2"}
    assert timeline["case"]["opened_at"].endswith("+08:00")
    assert all(r["occurred_at"].endswith("+08:00") for r in timeline["trail"])


async def test_the_public_reads_published_reports_and_nothing_else(api: Api) -> None:
    await seed(api)
    for path in ("/cases", "/cases/API-DRC-1", "/findings", "/deadlines", "/departments",
                 "/rejected", "/lag", "/incidents", "/chain", "/outcomes/x"):
        refused = await api.get(path)
        assert refused.status_code == 401, path
        assert refused.json()["error"] == "unauthorised"
    assert (await api.get("/reports/quarterly")).status_code == 200
    assert (await api.get("/cases", None)).headers["www-authenticate"].startswith("Bearer")


async def test_nobody_but_the_office_publishes_reports(api: Api) -> None:
    await seed(api)
    assert (await api.post("/reports/quarterly/2026Q3")).status_code == 401
    for party in (DRC, EDUCATION, "auditor"):
        assert (await api.post("/reports/quarterly/2026Q3", party)).status_code == 403, party
    assert (await api.get("/reports/quarterly/2026Q3")).status_code == 404  # none published
    published = await api.post("/reports/quarterly/2026Q3", "gov_office")
    assert published.status_code == 201, published.text
    assert [r["quarter"] for r in (await api.get("/reports/quarterly")).json()] == ["2026Q3"]
    figures = await api.get("/reports/quarterly/2026Q3")
    assert figures.status_code == 200 and figures.json()["quarter"] == "2026Q3"
    page = await api.get("/reports/quarterly/2026Q3/index.html")
    assert page.status_code == 200 and "季度" in page.text
    link = page.text.split('href="departments/', 1)[1].split('"', 1)[0]
    department = await api.get(f"/reports/quarterly/2026Q3/departments/{link}")
    assert department.status_code == 200 and "全区报告" in department.text


async def test_the_public_cannot_see_rejected_bytes_and_a_department_sees_only_its_own(
    api: Api,
) -> None:
    mine = await api.post("/events", DRC, b'{"secret": "\xe5\x86\x85\xe9\x83\xa8"')  # not JSON
    theirs = await api.post("/events", EDUCATION, b"[1]")  # a batch of one non-object
    assert (mine.status_code, theirs.status_code) == (422, 422)
    assert mine.json()["reason"] == "not_json"
    assert theirs.json()["outcomes"][0]["reason"] == "not_object"
    assert (await api.get("/rejected")).status_code == 401
    own = (await api.get("/rejected", DRC)).json()["items"]
    assert [(r["source_department"], r["reason"]) for r in own] == [(DRC, "not_json")]
    assert own[0]["preview"] == '{"secret": "内部"' and own[0]["size"] == 19
    assert own[0]["rejected_at"].endswith("+08:00")
    every = await all_pages(api, "/rejected", "auditor", limit=1)
    assert [r["reason"] for r in every] == ["not_json", "not_object"]
    assert (await api.get("/rejected", DRC, department=EDUCATION)).status_code == 403


async def test_a_department_cannot_post_for_another(api: Api) -> None:
    await seed(api)
    forged = f.draft("API-FORGED", EDUCATION)  # the education commission's, sent by drc
    answer = await api.post("/events", DRC, f.dumps(forged))
    assert answer.status_code == 422
    assert answer.json()["reason"] == "department_mismatch"
    kept = await rejected(api.nc)
    assert kept[answer.json()["intake_sequence"]] == ("department_mismatch", f.dumps(forged))
    assert (await api.post("/events", "auditor", f.dumps(f.draft("API-X")))).status_code == 403
    assert (await api.post("/events", None, f.dumps(f.draft("API-X")))).status_code == 401
    assert "API-FORGED" not in {e["case_id"] for _, e in await events(api.nc)}


async def test_http_intake_answers_accepted_duplicate_and_rejected(api: Api) -> None:
    draft = f.draft("API-ONE")
    first = await api.post("/events", DRC, f.dumps(draft))
    assert first.status_code == 201
    accepted = first.json()
    assert accepted["status"] == "accepted" and accepted["at"].endswith("+08:00")
    again = await api.post("/events", DRC, f.dumps(draft))
    assert again.status_code == 200
    assert (again.json()["status"], again.json()["sequence"]) == ("duplicate", accepted["sequence"])
    changed = {**draft, "data": {**draft["data"], "title": "另一个标题"}}
    conflict = await api.post("/events", DRC, f.dumps(changed))
    assert conflict.status_code == 422 and conflict.json()["reason"] == "event_id_conflict"
    mixed = await api.post("/events", DRC, batch(draft, f.issued("API-ONE")))
    assert mixed.status_code == 201
    assert [o["status"] for o in mixed.json()["outcomes"]] == ["duplicate", "accepted"]
    await api.settled()  # a department's own: known once its case is in the read models
    status = await api.get(f"/outcomes/{draft['event_id']}", DRC)
    assert status.json().get("sequence") == accepted["sequence"], status.json()
    assert (await api.get(f"/outcomes/{draft['event_id']}", EDUCATION)).status_code == 404
    assert (await api.post("/events", DRC, b"[]")).status_code == 422


async def test_a_revoked_token_is_refused_at_once(api: Api) -> None:
    assert (await api.get("/cases", DRC)).status_code == 200
    Tokens(api.context.settings.credentials).revoke(DRC)
    refused = await api.get("/cases", DRC)
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    forged = api.token(DRC)[:-2] + "xx"
    wrong = await api.http.get("/api/v1/cases", headers={"Authorization": f"Bearer {forged}"})
    assert wrong.status_code == 401


async def test_deadlines_and_department_figures_agree(api: Api) -> None:
    await seed(api)
    clocks = (await api.get("/deadlines", "gov_office", category="overdue,upcoming,met",
                            limit=1000)).json()["items"]
    assert clocks and all(c["category"] in ("overdue", "upcoming", "met") for c in clocks)
    overdue = [c for c in clocks if c["category"] == "overdue"]
    figures = {d["code"]: d for d in (await api.get("/departments", "auditor")).json()}
    for code in (DRC, EDUCATION):
        assert figures[code]["clocks"]["overdue"] == sum(
            1 for c in overdue if c["department"] == code)
    assert figures[DRC]["cases"] == 2 and figures[EDUCATION]["cases"] == 1
    assert figures[DRC]["open_findings"] == sum(
        1 for x in (await api.get("/findings", DRC, status="open")).json()["items"])
    # as of the day the clocks started, PUB-2 is still upcoming, within its 20 working days
    started = (await api.get("/deadlines", DRC, rule="PUB-2", at="2026-07-06T12:00:00+08:00",
                             within=20)).json()
    assert [c["category"] for c in started["items"]] == ["upcoming"]
    assert started["due_by"].startswith("2026-08-03")
    early = (await api.get("/deadlines", DRC, rule="PUB-2", at="2026-07-06T12:00:00+08:00",
                           within=3)).json()
    assert early["items"] == []
    assert (await api.get("/deadlines", DRC, at="2026-07-06T12:00:00")).status_code == 400


async def test_operations_lag_readiness_and_metrics(api: Api) -> None:
    await seed(api)
    await api.post("/events", DRC, b"nonsense")
    await api.settled()
    lag = (await api.get("/lag", "auditor")).json()
    assert lag and all(row["lag"] == 0 for row in lag if row["state"] == "live")
    assert (await api.get("/lag", DRC)).status_code == 403
    ready = await api.http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    chain = (await api.get("/chain", "gov_office")).json()
    assert chain["head"]["seq"] == len(await events(api.nc)) and chain["last_verify"] is None
    text = (await api.http.get("/metrics")).text
    assert 'jiedu_rejected_messages{reason="not_json"} 1.0' in text
    assert f"jiedu_log_events {float(len(await events(api.nc)))}" in text
    assert 'jiedu_projection_lag{projection="findings"} 0.0' in text
    assert 'jiedu_intake_outcomes_total{reason="not_json",status="rejected"} 1.0' in text
    assert "jiedu_http_intake_decided_seconds_count 5.0" in text  # 3 + 1 + 1 events
    assert 'jiedu_incidents{state="open"} 0.0' in text
