"""The quarterly report end to end: a small hand-built quarter goes through the intake of a real
nats-server, the projector (findings, statistics) and the deadline service on a fake clock;
then every figure of the report is checked against values worked out by hand. Also: the CLI,
byte-identical output, and the HTML rendered by headless Chromium to a screenshot kept under
test-artifacts/ (skipped without a browser unless JIEDU_REQUIRE_BROWSER=1)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import zlib
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client
from typer import Typer
from typer.testing import CliRunner

import factories as f
from domain.calendar import SHANGHAI, WorkingDayCalendar
from logtools import drained, publish, rejected
from projections.deadlines import Deadlines
from projections.findings import Findings
from projections.statistics import Statistics
from services import audit, report
from services.adapters.config import Settings
from services.adapters.readmodels import ReadStore, open_store
from services.cli import report as cli_report
from services.deadlines import DeadlineService, FakeClock
from services.projector import ProjectorService, wait_caught_up
from services.report import DISTRICT, Quarter

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
PACKAGE = WorkingDayCalendar.load(None)
CHAIN = ("section_head", "deputy_head", "principal_head", "interpretation_unit")  # REV-4
GROUNDS = ["political", "legal", "policy", "confidentiality", "wording", "public_opinion"]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def ev(type_: str, case: str, when: str, dept: str = "drc", **data: Any) -> dict[str, Any]:
    e = f.envelope(type_, case, dept, **data)
    e["occurred_at"] = at(when).isoformat()
    return e


def draft(case: str, when: str, dept: str = "drc", scope: str = "normative") -> dict[str, Any]:
    e = f.draft(case, dept, scope=scope,
                materials=[f.material("m1", "text"), f.material("m2", "chart")])
    e["occurred_at"] = at(when).isoformat()
    return e


def reviews(case: str, when: str) -> list[dict[str, Any]]:
    return [ev("ReviewSigned", case, when, stage=s, signer="李四", grounds=GROUNDS) for s in CHAIN]


def issued(case: str, day: str, dept: str = "drc") -> dict[str, Any]:
    return ev("PolicyIssued", case, f"{day} 16:00", dept, document_number=f"渝中〔2026〕{case}号",
              issue_date=day)


def material(case: str, mid: str, form: str, channel: str, when: str) -> dict[str, Any]:
    return ev("MaterialPublished", case, when, material_id=mid, form=form, channel=channel,
              published_on=when[:10])


def received(case: str, cid: str, channel: str, when: str) -> dict[str, Any]:
    return ev("ConsultationReceived", case, when, consultation_id=cid, channel=channel,
              question="补贴怎么申请?", received_by="drc")


def answered(case: str, cid: str, when: str, *, instant: bool) -> dict[str, Any]:
    """At once from the library's entry e1 (QA-4), or later by the drafting unit."""
    library: dict[str, Any] = {"entry_id": "e1"} if instant else {}
    return ev("ConsultationAnswered", case, when, consultation_id=cid, answer="见解读",
              from_library=instant, instant=instant, by_drafting_unit=not instant, **library)


def referred(case: str, cid: str, when: str) -> dict[str, Any]:
    return ev("ConsultationReferred", case, when, consultation_id=cid, referred_to="drc")


def opinion(case: str, oid: str, severity: str, when: str) -> dict[str, Any]:
    e = ev("OpinionDetected", case, when, opinion_id=oid, severity=severity,
           kind="misunderstanding", summary="误读", detected_at=at(when).isoformat())
    return {**e, "source_system": "monitor"}


def response(case: str, oid: str, when: str) -> dict[str, Any]:
    return ev("ResponseIssued", case, when, opinion_id=oid, kind="clarification")


def office(type_: str, case: str, day: str, **data: Any) -> dict[str, Any]:
    return ev(type_, case, f"{day} 15:00", "gov_office", **data)


SOURCES = {"OpinionDetected": "cyberspace_office/monitor"}


class Quarterly:
    """Intake, projector (findings, statistics) and the deadline service on a fake clock."""

    def __init__(self, nc: Client, store: ReadStore) -> None:
        self.nc = nc
        self.store = store
        self.clock = FakeClock(at("2026-05-01 08:00"))
        self.deadlines = DeadlineService(nc, store, calendar=PACKAGE, clock=self.clock)
        self.projector = ProjectorService(nc.jetstream(), store, [Findings(), Statistics()])

    async def send(self, moment: str, *raw: dict[str, Any], source: str | None = None) -> None:
        """Move the clock to `moment`, publish `raw` as their sources would, let the deadline
        service append what it owes by then."""
        self.clock.set(at(moment))
        sequences = [await publish(self.nc, e, source=source or SOURCES.get(e["type"]))
                     for e in raw]
        await drained(self.nc)
        refused = await rejected(self.nc)
        assert not [refused[s] for s in sequences if s in refused]
        await self.deadlines.settle()

    async def caught_up(self) -> None:
        await wait_caught_up(self.nc.jetstream(), self.store,
                             [Deadlines(PACKAGE), Findings(), Statistics()])


@pytest.fixture
async def quarterly(nc: Client, intake: object, tmp_path: Path) -> AsyncIterator[Quarterly]:
    store = open_store(f"sqlite:///{tmp_path / 'read.sqlite3'}", tmp_path)
    q = Quarterly(nc, store)
    await q.projector.start()
    await q.deadlines.start()
    yield q
    await q.deadlines.stop()
    await q.projector.stop()
    store.close()


async def hand_built_quarter(q: Quarterly) -> None:
    """2026Q2: P0 (drc) reviewed, issued 15 June, text and chart on 20 June; a training on
    20 May. 2026Q3: P1 (drc) reviewed, on time in two forms; P2 (drc) returned, unreviewed,
    published late in two forms; P3 (education) unreviewed, never published; P4 out of scope;
    four consultations on P1 (one instant, three referred: on time, late, never); three
    opinions (24 h on time, 48 h late, 24 h never); inspections of Q2 (2 July) and Q3 (9 Oct)."""
    gov = "gov_office/oa"
    await q.send("2026-05-20 15:00", office("TrainingHeld", "TRAIN-2026", "2026-05-20",
                                            title="政策解读业务培训", held_on="2026-05-20"),
                 source=gov)
    await q.send("2026-06-01 09:00", draft("P0", "2026-06-01 09:00"))
    await q.send("2026-06-02 10:00", *reviews("P0", "2026-06-02 10:00"))
    await q.send("2026-06-15 16:00", issued("P0", "2026-06-15"))
    await q.send("2026-06-20 10:00",
                 material("P0", "m1", "text", "government_website", "2026-06-20 10:00"),
                 material("P0", "m2", "chart", "government_website", "2026-06-20 10:00"))
    await q.send("2026-07-01 09:00", draft("P1", "2026-07-01 09:00"),
                 draft("P2", "2026-07-01 09:00", scope="high_impact"),
                 draft("P3", "2026-07-01 09:00", "education", "designated"),
                 draft("P4", "2026-07-01 09:00", scope="out_of_scope"))
    await q.send("2026-07-02 10:00", *reviews("P1", "2026-07-02 10:00"))
    await q.send("2026-07-02 15:00", office("InspectionConducted", "INSP-2026Q2", "2026-07-02",
                                            quarter="2026Q2", conducted_on="2026-07-02"),
                 source=gov)
    await q.send("2026-07-03 10:00", ev("SubmissionReturned", "P2", "2026-07-03 10:00",
                                        missing=["plan"]), source=gov)
    await q.send("2026-07-06 16:00", issued("P1", "2026-07-06"), issued("P2", "2026-07-06"),
                 issued("P3", "2026-07-06", "education"), issued("P4", "2026-07-06"),
                 ev("QAEntryPublished", "P1", "2026-07-06 16:30", entry_id="e1",
                    question="补贴怎么申请？", answer="见解读"))
    await q.send("2026-07-10 10:00",
                 received("P1", "C1", "hotline", "2026-07-10 09:00"),
                 received("P1", "C2", "website", "2026-07-10 09:00"),
                 received("P1", "C3", "service_window", "2026-07-10 09:00"),
                 received("P1", "C4", "hotline", "2026-07-10 09:00"),
                 answered("P1", "C1", "2026-07-10 09:05", instant=True),
                 *(referred("P1", c, "2026-07-10 10:00") for c in ("C2", "C3", "C4")))
    await q.send("2026-07-13 10:00", answered("P1", "C2", "2026-07-13 10:00", instant=False))
    await q.send("2026-07-20 10:00",
                 material("P1", "m1", "text", "government_website", "2026-07-20 10:00"),
                 material("P1", "m2", "chart", "wechat", "2026-07-20 10:00"))
    await q.send("2026-07-20 11:00", answered("P1", "C3", "2026-07-20 11:00", instant=False))
    await q.send("2026-07-21 10:00", opinion("P1", "O1", "major", "2026-07-21 10:00"),
                 opinion("P1", "O2", "ordinary", "2026-07-21 10:00"),
                 opinion("P1", "O3", "high_attention", "2026-07-21 10:00"))
    await q.send("2026-07-21 20:00", response("P1", "O1", "2026-07-21 20:00"))
    await q.send("2026-07-23 12:00", response("P1", "O2", "2026-07-23 12:00"))
    await q.send("2026-08-05 10:00",
                 material("P2", "m1", "text", "government_website", "2026-08-05 10:00"),
                 material("P2", "m3", "press_release", "news_media", "2026-08-05 10:00"))
    await q.send("2026-10-09 15:00", office("InspectionConducted", "INSP-2026Q3", "2026-10-09",
                                            quarter="2026Q3", conducted_on="2026-10-09"),
                 source=gov)
    await q.send("2026-10-10 09:00")
    await q.caught_up()


AS_OF = at("2026-10-10 09:00")


def values(rep: report.Report, period: str, scope: str) -> dict[str, int]:
    return {k: len(v) for k, v in rep.figures[period].get(scope, {}).items() if v}


async def test_hand_built_quarter_figure_by_figure(quarterly: Quarterly, tmp_path: Path) -> None:
    await hand_built_quarter(quarterly)
    inputs = await _inputs(quarterly.store)
    weights = {"parts": report.load_weights()["parts"], "deductions": []}
    rep = report.build(inputs, Quarter.parse("2026Q3"), as_of=AS_OF, weights=weights)
    district = values(rep, "quarter", DISTRICT)
    findings = {k: v for k, v in district.items() if k.startswith("findings")}
    assert {k: v for k, v in district.items() if not k.startswith("findings")} == {
        "policies_issued": 3,  # P1, P2 (drc), P3 (education); P4 is out of scope
        "pub2_on_time": 1, "pub2_late": 1, "pub2_missing": 1,
        "pub3_met": 2, "pub3_missing": 1,
        "rev5_complete": 1, "rev5_violated": 2,  # P2, P3 published or issued unreviewed
        "returns": 1,
        "materials": 4, "materials.form.text": 2, "materials.form.chart": 1,
        "materials.form.press_release": 1, "materials.channel.government_website": 2,
        "materials.channel.wechat": 1, "materials.channel.news_media": 1,
        "consultations": 4, "consultations.channel.hotline": 2,
        "consultations.channel.website": 1, "consultations.channel.service_window": 1,
        "consultations_instant": 1,
        "referrals": 3, "referrals_on_time": 1, "referrals_late": 1, "referrals_missing": 1,
        # the library (QA-4, QA-5): e1 in force on 30 September; C2 and C3, referred and
        # answered by the drafting unit, wait to be published (no matcher runs here: no search)
        "qa_entries": 1, "qa_candidates": 2,
        "opinions": 3, "opinions.severity.major": 1, "opinions.severity.high_attention": 1,
        "opinions.severity.ordinary": 1, "opinions.kind.misunderstanding": 3,
        "op4_24h": 2, "op4_24h_on_time": 1, "op4_24h_missing": 1,
        "op4_48h": 1, "op4_48h_late": 1,
        "trainings": 1, "inspections": 1,
    }
    # clocks that ran out are findings of their rule, open (lateness is not undone)
    for rule in ("PUB-2", "PUB-3", "QA-4", "OP-4"):
        assert findings[f"findings.open.{rule}"] == 2, rule
    # every finding figure is exactly the findings read model's rows recorded in the quarter
    rows = [r for r in inputs.findings if r["recorded_at"] >= at("2026-07-01 00:00")
            and r["recorded_at"] < at("2026-10-01 00:00")]
    assert findings["findings_open"] + findings.get("findings_resolved", 0) == len(rows)
    rev5_cases = {r["case_id"] for r in inputs.findings if r["rule_id"] == "REV-5"}
    assert rev5_cases >= {"P2", "P3"} and not rev5_cases & {"P0", "P1"}

    drc_values = values(rep, "quarter", "drc")
    assert {k: drc_values[k] for k in ("policies_issued", "pub2_on_time", "pub2_late", "returns",
                                       "opinions", "consultations", "referrals")} == {
        "policies_issued": 2, "pub2_on_time": 1, "pub2_late": 1, "returns": 1, "opinions": 3,
        "consultations": 4, "referrals": 3,
    }
    education = values(rep, "quarter", "education")
    assert (education["policies_issued"], education["pub2_missing"], education["pub3_missing"],
            education["rev5_violated"]) == (1, 1, 1, 1)
    assert values(rep, "quarter", "gov_office") == {"trainings": 1, "inspections": 1}

    previous = values(rep, "previous", DISTRICT)
    assert {k: v for k, v in previous.items() if not k.startswith("findings")} == {
        "policies_issued": 1, "pub2_on_time": 1, "pub3_met": 1, "rev5_complete": 1,
        "materials": 2, "materials.form.text": 1, "materials.form.chart": 1,
        "materials.channel.government_website": 2, "trainings": 1, "inspections": 1,
    }
    ytd = values(rep, "ytd", DISTRICT)
    assert (ytd["policies_issued"], ytd["materials"], ytd["inspections"], ytd["trainings"]) == (
        4, 6, 2, 1)

    # rates and the SUP-2 score of drc, by hand (deductions left out here):
    # PUB-2 1/2·30 + PUB-3 2/2·15 + REV-5 1/2·20 + QA-4 1/3·15 + OP-4 1/3·15 + instant 1/4·5
    drc = rep.figures["quarter"]["drc"]
    assert report.rate(drc, ("consultations_instant",), ("consultations",)) == 0.25
    (drc_rank,) = [r for r in rep.ranking if r["department"] == "drc"]
    assert drc_rank["score"] == 51.25
    (edu_rank,) = [r for r in rep.ranking if r["department"] == "education"]
    assert edu_rank["score"] == 0.0  # three parts due, none met
    assert [r["department"] for r in rep.ranking if r["score"] is not None] == ["drc", "education"]

    # traces: the late PUB-2 figure names P2's issue and the publication that met it
    (late,) = [rep.traces[i] for i in drc["pub2_late"]]
    assert late[2] == "P2" and "PUB-2:P2" in late[3] and "met 2026-08-05 10:00" in late[3]

    # log range in the header: the statistics read model has seen the whole log
    assert rep.log["first_sequence"] == 1
    assert rep.log["last_sequence"] == inputs.positions["statistics"] == max(
        inputs.positions.values())


async def _inputs(store: ReadStore) -> report.Inputs:
    return await asyncio.to_thread(report.load_inputs, store)


async def test_cli_writes_the_report_byte_identical_twice(
    quarterly: Quarterly, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await hand_built_quarter(quarterly)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'read.sqlite3'}")
    monkeypatch.setenv("NATS_URL", settings.nats_url or "")
    app = Typer()

    @app.callback()
    def main() -> None: ...

    cli_report.register(app)
    runner = CliRunner()
    private, public = audit.key_paths(tmp_path)
    audit.init_keys(private, public)
    signed = await audit.checkpoint(
        quarterly.nc.jetstream(), audit.load_private_key(private), label="quarter:2026Q3",
        now=at("2026-10-01 00:00"),
    )
    outs = []
    for name in ("a", "b"):
        out = tmp_path / name
        args = ["report", "quarterly", "2026Q3", "--out", str(out),
                "--as-of", "2026-10-10T09:00:00+08:00", "--data-dir", str(tmp_path)]
        result = await asyncio.to_thread(runner.invoke, app, args)  # the CLI runs its own loop
        assert result.exit_code == 0, result.output
        assert "3 in-scope policies issued in 2026Q3" in result.output
        outs.append(out)
    files = sorted(p.relative_to(outs[0]) for p in outs[0].rglob("*") if p.is_file())
    assert {str(p) for p in files} >= {"index.html", "statistics.csv", "statistics.json",
                                       "departments/drc.html", "departments/education.html"}
    for p in files:
        assert (outs[0] / p).read_bytes() == (outs[1] / p).read_bytes(), p
    body = json.loads((outs[0] / "statistics.json").read_bytes())
    assert signed.link in body["chain_head"] and "quarter:2026Q3" in body["chain_head"]
    assert signed.link in (outs[0] / "index.html").read_text(encoding="utf-8")
    assert body["scopes"][DISTRICT]["quarter"]["values"]["pub2_late"] == 1
    assert body["as_of"] == "2026-10-10T09:00:00+08:00"
    page = (outs[0] / "departments" / "education.html").read_text(encoding="utf-8")
    assert "解读缺失(PUB-2)" in page and "PUB-2:P3" in page
    bad = runner.invoke(app, ["report", "quarterly", "2026Q5", "--out", str(tmp_path / "c")])
    assert bad.exit_code == 2
    # a store without the statistics read model (not registered with the projector yet): the
    # command builds it from the log first; the other read models are empty there, so every
    # clock counts as running
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'fresh.sqlite3'}")
    fresh = await asyncio.to_thread(  # the command runs its own event loop: not on this one
        runner.invoke, app, ["report", "quarterly", "2026Q3", "--out", str(tmp_path / "d"),
                             "--data-dir", str(tmp_path)])
    assert fresh.exit_code == 0, fresh.output
    assert "building the statistics read model" in fresh.output
    assert "3 in-scope policies issued in 2026Q3" in fresh.output
    body = json.loads((tmp_path / "d" / "statistics.json").read_bytes())
    assert body["scopes"][DISTRICT]["quarter"]["values"]["pub2_running"] == 3
    assert body["log"]["read_model_positions"]["deadlines"] == 0


# ── the browser ──────────────────────────────────────────────────────────────────────────────


def browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def png_pixels(data: bytes) -> tuple[int, int, set[bytes]]:
    """Width, height and the distinct RGB(A) colours of an 8-bit PNG (Chromium's screenshots),
    decoded with zlib alone."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, ctype = 8, b"", 0, 0, 0
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind, chunk = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height = int.from_bytes(chunk[:4], "big"), int.from_bytes(chunk[4:8], "big")
            assert chunk[8] == 8, "8-bit PNG expected"
            ctype = chunk[9]
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    bpp = {2: 3, 6: 4}[ctype]
    raw = zlib.decompress(idat)
    stride = width * bpp
    prev = bytearray(stride)
    colours: set[bytes] = set()
    for y in range(height):
        ftype = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 255
            elif ftype == 2:
                line[i] = (line[i] + b) & 255
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        if y % 4 == 0:
            colours.update(bytes(line[i:i + 3]) for i in range(0, stride, bpp * 2))
        prev = line
    return width, height, colours


def test_report_renders_in_headless_chromium() -> None:
    exe = browser()
    if exe is None:
        if os.environ.get("JIEDU_REQUIRE_BROWSER") == "1":
            pytest.fail("JIEDU_REQUIRE_BROWSER=1 but no chromium on PATH (apt-get install chromium)")
        pytest.skip("no headless browser: install Debian's chromium (CI sets JIEDU_REQUIRE_BROWSER=1)")
    from test_statistics import AS_OF as HAND_AS_OF
    from test_statistics import hand_inputs

    out = ARTIFACTS / "report-2026Q3"
    shutil.rmtree(out, ignore_errors=True)
    report.write_report(report.build(hand_inputs(), Quarter.parse("2026Q3"), as_of=HAND_AS_OF), out)
    shot = ARTIFACTS / "report-2026Q3.png"
    shot.unlink(missing_ok=True)
    subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         f"--screenshot={shot}", "--window-size=1280,2000", (out / "index.html").as_uri()],
        check=True, capture_output=True, timeout=120,
    )
    data = shot.read_bytes()
    width, height, colours = png_pixels(data)
    assert (width, height) == (1280, 2000)
    assert len(data) > 50_000  # text, tables and charts, not a blank page
    # the charts' colours are on the page (bars of the PUB-2 chart: blue, green, red)
    for hex_ in ("1565c0", "2e7d32", "c62828"):
        assert bytes.fromhex(hex_) in colours, hex_
    assert len(colours) > 200  # anti-aliased glyphs: many shades
