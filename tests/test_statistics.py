"""The statistics projection and the report's arithmetic, without a server: events through the
pure projection, clocks and findings as hand-made read-model rows, figures worked out by hand.
Also: output formats, determinism, and the 100-department / 10,000-case benchmark."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

import factories as f
from domain.calendar import SHANGHAI
from events.catalogue import EVENT_ADAPTER, Event
from projections.base import Row
from projections.statistics import CASES, FACTS, LOG, Statistics
from services import report
from services.report import DISTRICT, Inputs, Quarter, Trace, build, compute, periods, score
from services.tools.bench import report_inputs


def sh(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def event(raw: dict[str, Any], when: str) -> Event:
    return EVENT_ADAPTER.validate_python({**raw, "occurred_at": sh(when).isoformat()})


def ev(type_: str, case_id: str, when: str, department: str = "drc", **data: Any) -> Event:
    return event(f.envelope(type_, case_id, department, **data), when)


# ── the projection ───────────────────────────────────────────────────────────────────────────


def test_projection_keeps_counted_facts_with_their_day_and_scope() -> None:
    events = [
        event(f.draft("P1"), "2026-06-30 09:00"),
        event(f.draft("P9", scope="out_of_scope"), "2026-06-30 09:30"),
        ev("PolicyIssued", "P1", "2026-07-01 10:00", document_number="渝中发改发〔2026〕1号",
           issue_date="2026-06-30"),
        ev("PolicyIssued", "P9", "2026-07-01 10:00", document_number="渝中发改发〔2026〕2号",
           issue_date="2026-07-01"),
        ev("PolicyIssued", "UNSEEN", "2026-07-01 10:00", document_number="x", issue_date="2026-07-01"),
        ev("MaterialPublished", "P1", "2026-07-02 10:00", material_id="m1", form="chart",
           channel="wechat", published_on="2026-07-02"),
        # 2026-06-30 17:00 UTC is 2026-07-01 01:00 in Shanghai: counts on 1 July (Q3)
        EVENT_ADAPTER.validate_python({**f.consultation("P1", "C1"),
                                       "occurred_at": "2026-06-30T17:00:00+00:00"}),
        ev("ConsultationAnswered", "P1", "2026-07-01 09:00", consultation_id="C1", answer="见",
           from_library=True, instant=True),
        ev("OpinionDetected", "P1", "2026-07-03 09:00", opinion_id="O1", severity="major",
           kind="misunderstanding", summary="误读",
           detected_at="2026-07-02T23:30:00+08:00"),
        ev("TrainingHeld", "T1", "2026-05-20 15:00", "gov_office", title="培训", held_on="2026-05-20"),
        ev("InspectionConducted", "I1", "2026-10-09 15:00", "gov_office", quarter="2026Q3",
           conducted_on="2026-10-09"),
    ]
    rows = Statistics().run((i + 1, e) for i, e in enumerate(events))
    facts = {r["seq"]: r for r in rows.rows(FACTS)}
    assert sorted(facts) == [3, 4, 6, 7, 8, 9, 10, 11]  # drafts and an unseen case's issue: none
    assert facts[3]["day"] == date(2026, 6, 30) and facts[3]["attrs"]["scope"] == "normative"
    assert facts[4]["attrs"]["scope"] == "out_of_scope"
    assert facts[6]["attrs"] == {"material_id": "m1", "form": "chart", "channel": "wechat"}
    assert facts[7]["day"] == date(2026, 7, 1) and facts[7]["attrs"]["channel"] == "hotline"
    assert facts[8]["attrs"]["instant"] is True
    assert facts[9]["day"] == date(2026, 7, 2)  # detected_at, not the event's time
    assert facts[10]["day"] == date(2026, 5, 20) and facts[10]["department"] == "gov_office"
    assert facts[11]["attrs"] == {"quarter": "2026Q3"}
    assert {r["case_id"]: r["scope"] for r in rows.rows(CASES)} == {
        "P1": "normative", "P9": "out_of_scope"}
    (log,) = rows.rows(LOG)
    assert (log["first_seq"], log["last_seq"]) == (1, 11)
    assert log["last_at"] == sh("2026-10-09 15:00")


# ── the figures, on hand-made rows ───────────────────────────────────────────────────────────

AS_OF = sh("2026-10-10 12:00")


def fact(seq: int, type_: str, case: str, day: str, dept: str = "drc", **attrs: Any) -> Row:
    return {"seq": seq, "event_id": f"e{seq}", "type": type_, "case_id": case, "department": dept,
            "day": date.fromisoformat(day), "attrs": attrs}


def clock(rule: str, case: str, subject: str | None, status: str, trigger: int, started: str,
          due: str, dept: str = "drc", length: int = 20) -> Row:
    cid = ":".join(p for p in (rule, case, subject) if p)
    met = status.startswith("met")
    return {"clock_id": cid, "rule_id": rule, "case_id": case, "department": dept,
            "trigger_event_id": f"e{trigger}", "trigger_sequence": trigger,
            "started_at": sh(started), "length": length, "status": status, "due_at": sh(due),
            "met_event_id": f"m{trigger}" if met else None, "met_sequence": 900 + trigger if met else None,
            "met_at": sh(due) if met else None}


def finding(seq: int, rule: str, case: str, status: str, recorded: str, dept: str = "drc") -> Row:
    return {"finding_id": f"{rule}_{seq}", "case_id": case, "department": dept, "rule_id": rule,
            "status": status, "recorded_at": sh(recorded), "recorded_seq": seq,
            "fact_event_id": f"e{seq}", "message_zh": "说明"}


def hand_inputs() -> Inputs:
    facts = [
        fact(1, "PolicyIssued", "P0", "2026-06-15", scope="normative"),  # Q2
        fact(2, "PolicyIssued", "P1", "2026-07-06", scope="normative"),
        fact(3, "PolicyIssued", "P2", "2026-07-06", scope="high_impact"),
        fact(4, "PolicyIssued", "P3", "2026-07-06", "education", scope="designated"),
        fact(5, "PolicyIssued", "P4", "2026-07-06", scope="out_of_scope"),  # not counted
        fact(6, "PolicyIssued", "P5", "2026-09-30", "education", scope="normative"),  # running
        fact(7, "SubmissionReturned", "P2", "2026-07-03", missing=["plan"]),
        fact(8, "MaterialPublished", "P1", "2026-07-20", form="text", channel="government_website"),
        fact(9, "MaterialPublished", "P1", "2026-07-20", form="chart", channel="wechat"),
        fact(10, "MaterialPublished", "P0", "2026-06-20", form="text", channel="government_website"),
        fact(11, "ConsultationReceived", "P1", "2026-07-10", consultation_id="C1", channel="hotline"),
        fact(12, "ConsultationReceived", "P1", "2026-07-10", consultation_id="C2", channel="website"),
        # from the library, naming its entry: an instant answer (QA-4)
        fact(13, "ConsultationAnswered", "P1", "2026-07-10", consultation_id="C1", instant=True,
             entry_id="a1"),
        fact(14, "ConsultationAnswered", "P1", "2026-07-13", consultation_id="C2", instant=False),
        fact(15, "OpinionDetected", "P1", "2026-07-21", opinion_id="O1", severity="major",
             kind="misunderstanding"),
        fact(16, "OpinionDetected", "P1", "2026-07-21", opinion_id="O2", severity="ordinary",
             kind="suggestion"),
        fact(17, "TrainingHeld", "T1", "2026-05-20", "gov_office", title="培训"),
        fact(18, "InspectionConducted", "I2", "2026-07-02", "gov_office", quarter="2026Q2"),
        fact(19, "InspectionConducted", "I3", "2026-10-09", "gov_office", quarter="2026Q3"),
    ]
    clocks = [
        clock("PUB-2", "P0", None, "met_on_time", 1, "2026-06-15 00:00", "2026-07-13 23:59"),
        clock("PUB-2", "P1", None, "met_on_time", 2, "2026-07-06 00:00", "2026-08-03 23:59"),
        clock("PUB-2", "P2", None, "met_late", 3, "2026-07-06 00:00", "2026-08-03 23:59"),
        clock("PUB-2", "P3", None, "open", 4, "2026-07-06 00:00", "2026-08-03 23:59", "education"),
        clock("PUB-2", "P5", None, "open", 6, "2026-09-30 00:00", "2026-10-30 23:59", "education"),
        clock("PUB-3", "P0", None, "met_on_time", 1, "2026-06-15 00:00", "2026-07-13 23:59"),
        clock("PUB-3", "P1", None, "met_on_time", 2, "2026-07-06 00:00", "2026-08-03 23:59"),
        clock("PUB-3", "P2", None, "breached", 3, "2026-07-06 00:00", "2026-08-03 23:59"),
        clock("PUB-3", "P3", None, "met_late", 4, "2026-07-06 00:00", "2026-08-03 23:59", "education"),
        clock("QA-4", "P1", "C2", "met_on_time", 12, "2026-07-10 10:00", "2026-07-17 23:59", length=5),
        clock("QA-4", "P1", "C3", "breached", 12, "2026-06-29 10:00", "2026-07-06 23:59", length=5),
        clock("OP-4", "P1", "O1", "met_late", 15, "2026-07-21 10:00", "2026-07-22 10:00", length=24),
        clock("OP-4", "P1", "O2", "met_on_time", 16, "2026-07-21 10:00", "2026-07-23 10:00", length=48),
    ]
    findings = [
        finding(20, "REV-5", "P2", "open", "2026-07-06 16:00"),
        finding(21, "REV-5", "P2", "open", "2026-07-20 10:00"),
        finding(22, "PUB-3", "P2", "open", "2026-08-03 23:59"),
        finding(23, "QA-4", "P1", "resolved", "2026-07-06 23:59"),
        finding(24, "QA-4", "P1", "open", "2026-06-29 23:59"),  # Q2
    ]
    log = {"first_seq": 1, "last_seq": 24, "first_at": sh("2026-05-20 15:00"),
           "last_at": sh("2026-10-09 15:00")}
    return Inputs(facts, clocks, findings, log, {"statistics": 24, "deadlines": 24, "findings": 24})


def counts(fig: dict[str, list[Trace]]) -> dict[str, int]:
    return {k: len(v) for k, v in fig.items() if v}


def test_figures_of_a_hand_built_quarter() -> None:
    q3, q2, ytd = periods(Quarter.parse("2026Q3"))
    inputs = hand_inputs()
    district = counts(compute(inputs, q3, AS_OF)[DISTRICT])
    assert district == {
        "policies_issued": 4,  # P1, P2, P3, P5; P0 is Q2, P4 out of scope
        "pub2_on_time": 1, "pub2_late": 1,
        "pub2_missing": 1,  # P3: open, due 3 Aug, as of 10 Oct: overdue
        "pub2_running": 1,  # P5: due 30 Oct
        "pub3_met": 2, "pub3_missing": 1, "pub3_running": 1,  # P5 has no PUB-3 clock yet
        "rev5_complete": 3, "rev5_violated": 1,  # P2 (two findings, one case)
        "returns": 1,
        "materials": 2, "materials.form.text": 1, "materials.form.chart": 1,
        "materials.channel.government_website": 1, "materials.channel.wechat": 1,
        "consultations": 2, "consultations.channel.hotline": 1, "consultations.channel.website": 1,
        "consultations_instant": 1,
        "referrals": 1, "referrals_on_time": 1,  # C3's clock started in Q2
        "opinions": 2, "opinions.severity.major": 1, "opinions.severity.ordinary": 1,
        "opinions.kind.misunderstanding": 1, "opinions.kind.suggestion": 1,
        "op4_24h": 1, "op4_24h_late": 1, "op4_48h": 1, "op4_48h_on_time": 1,
        "findings_open": 3, "findings.open.REV-5": 2, "findings.open.PUB-3": 1,
        "findings_resolved": 1, "findings.resolved.QA-4": 1,
        "trainings": 1, "inspections": 1,
    }
    by_dept = compute(inputs, q3, AS_OF)
    assert counts(by_dept["education"]) == {
        "policies_issued": 2, "pub2_missing": 1, "pub2_running": 1, "pub3_met": 1,
        "pub3_running": 1, "rev5_complete": 2,
    }
    assert counts(by_dept["gov_office"]) == {"trainings": 1, "inspections": 1}
    # traces: the late PUB-2 clock names its trigger and the event that met it
    (late,) = by_dept["drc"]["pub2_late"]
    seq, event_id, case_id, note = late
    assert (seq, event_id, case_id) == (3, "e3", "P2")
    assert "PUB-2:P2" in note and "m3@903" in note
    (violated,) = by_dept["drc"]["rev5_violated"]
    assert violated[0] == 20 and "+1 more" in violated[3]
    assert by_dept["drc"]["consultations_instant"][0][1] == "e13"

    previous = counts(compute(inputs, q2, AS_OF)[DISTRICT])
    assert previous == {
        "policies_issued": 1, "pub2_on_time": 1, "pub3_met": 1, "rev5_complete": 1,
        "materials": 1, "materials.form.text": 1, "materials.channel.government_website": 1,
        "referrals": 1, "referrals_missing": 1, "findings_open": 1, "findings.open.QA-4": 1,
        "trainings": 1, "inspections": 1,
    }
    year = counts(compute(inputs, ytd, AS_OF)[DISTRICT])
    assert year["policies_issued"] == 5 and year["inspections"] == 2 and year["trainings"] == 1
    assert year["referrals"] == 2 and year["materials"] == 3


def test_qa4_an_instant_answer_counts_only_when_it_names_a_library_entry() -> None:
    q3 = periods(Quarter.parse("2026Q3"))[0]
    inputs = hand_inputs()
    inputs.facts[12] = fact(13, "ConsultationAnswered", "P1", "2026-07-10", consultation_id="C1",
                            instant=True, from_library=True)  # claims the library, names none
    assert "consultations_instant" not in counts(compute(inputs, q3, AS_OF)[DISTRICT])


def test_qa_library_figures_searches_entries_in_force_and_candidates_at_the_period_end() -> None:
    facts = [
        fact(1, "QAEntryPublished", "P1", "2026-06-10", entry_id="a"),
        fact(2, "QAEntryPublished", "P1", "2026-07-05", entry_id="b"),
        fact(3, "QAEntryWithdrawn", "P1", "2026-08-01", entry_id="b"),
        fact(4, "QAEntryPublished", "P2", "2026-07-05", "education", entry_id="c"),
        fact(5, "PolicyRepealed", "P2", "2026-09-30", "education", kind="repealed"),
        fact(6, "ConsultationMatched", "P1", "2026-07-10", consultation_id="C6", answerable=True,
             best={"case_id": "P1", "entry_id": "a"}),
        fact(7, "ConsultationMatched", "P1", "2026-07-11", consultation_id="C7", answerable=False,
             best=None),
        fact(8, "ConsultationReferred", "P1", "2026-07-11", consultation_id="C7"),
        fact(9, "ConsultationAnswered", "P1", "2026-07-14", consultation_id="C7", instant=False,
             by_drafting_unit=True),
        fact(10, "ConsultationReferred", "P1", "2026-07-12", consultation_id="C8"),
        fact(11, "ConsultationAnswered", "P1", "2026-07-15", consultation_id="C8", instant=False,
             by_drafting_unit=True),
        fact(12, "QAEntryPublished", "P1", "2026-08-01", entry_id="cand-C8"),
        # answered by the drafting unit without a referral: no candidate
        fact(13, "ConsultationAnswered", "P1", "2026-07-16", consultation_id="C9", instant=False,
             by_drafting_unit=True),
    ]
    inputs = Inputs(facts, [], [], None, {})
    q3, q2, _ = periods(Quarter.parse("2026Q3"))
    district = counts(compute(inputs, q3, AS_OF)[DISTRICT])
    assert {k: v for k, v in district.items() if k.startswith("qa_")} == {
        "qa_entries": 2,  # a and the published candidate; b withdrawn, c's policy repealed
        "qa_searches": 2, "qa_searches_answerable": 1,
        "qa_candidates": 1,  # C7; C8 was published on 1 August
    }
    drc = compute(inputs, q3, AS_OF)["drc"]
    assert [t[1] for t in drc["qa_entries"]] == ["e1", "e12"]
    assert [t[1] for t in drc["qa_candidates"]] == ["e9"]
    assert report.rate(drc, ("qa_searches_answerable",), ("qa_searches",)) == 0.5
    assert "education" not in compute(inputs, q3, AS_OF)
    assert counts(compute(inputs, q2, AS_OF)[DISTRICT]) == {"qa_entries": 1}  # a, by 30 June


def test_rates_and_the_sup2_score_with_its_parts() -> None:
    q3 = periods(Quarter.parse("2026Q3"))[0]
    drc = compute(hand_inputs(), q3, AS_OF)["drc"]
    assert report.rate(drc, ("pub2_on_time",), ("policies_issued",)) == 0.5
    assert report.rate(drc, ("consultations_instant",), ("consultations",)) == 0.5
    weights = {
        "parts": [
            {"id": "a", "label_zh": "按时", "weight": 60, "numerator": ["pub2_on_time"],
             "denominator": ["policies_issued"]},
            {"id": "b", "label_zh": "舆情", "weight": 20, "numerator": ["op4_24h_on_time",
             "op4_48h_on_time"], "denominator": ["op4_24h", "op4_48h"]},
            {"id": "c", "label_zh": "无事", "weight": 20, "numerator": ["trainings"],
             "denominator": ["inspections"]},
        ],
        "deductions": [{"id": "d", "label_zh": "发现", "figure": "findings_open", "per_item": 2,
                        "max": 5}],
    }
    result = score(drc, weights)
    # a: 1/2, b: 1/2; c: nothing due, left out; rescaled to 80: (60·½ + 20·½)·100/80 = 50
    assert [p["points"] for p in result["parts"]] == [37.5, 12.5, None]
    assert [(p["numerator"], p["denominator"]) for p in result["parts"]] == [(1, 2), (1, 2), (0, 0)]
    assert result["deductions"] == [{"id": "d", "label_zh": "发现", "items": 3, "points": 5.0}]
    assert result["score"] == 45.0
    assert score({}, weights)["score"] is None  # nothing due: not ranked


def test_deploy_weights_load_and_sum_to_100() -> None:
    weights = report.load_weights()
    assert sum(p["weight"] for p in weights["parts"]) == 100
    keys = {k for k, _ in report.BASE_FIGURES}
    for p in weights["parts"]:
        assert set(p["numerator"]) | set(p["denominator"]) <= keys
    for d in weights["deductions"]:
        assert d["figure"] in keys


def test_quarters() -> None:
    q = Quarter.parse("2026q1")
    assert (q.start, q.end, q.previous().label) == (date(2026, 1, 1), date(2026, 3, 31), "2025Q4")
    assert Quarter.parse("2026Q4").end == date(2026, 12, 31)
    with pytest.raises(ValueError):
        Quarter.parse("2026Q5")


def test_files_csv_json_and_byte_identical_output(tmp_path: Path) -> None:
    rep = build(hand_inputs(), Quarter.parse("2026Q3"), as_of=AS_OF)
    a, b = tmp_path / "a", tmp_path / "b"
    report.write_report(rep, a)
    report.write_report(build(hand_inputs(), Quarter.parse("2026Q3"), as_of=AS_OF), b)
    names = sorted(str(p.relative_to(a)) for p in a.rglob("*") if p.is_file())
    assert names == ["departments/drc.html", "departments/education.html",
                     "departments/gov_office.html", "index.html", "statistics.csv",
                     "statistics.json"]
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    raw = (a / "statistics.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    got = {(r["period"], r["department"], r["figure"]): r["value"] for r in rows}
    assert got[("quarter", DISTRICT, "policies_issued")] == "4"
    assert got[("previous", DISTRICT, "policies_issued")] == "1"
    assert got[("quarter", "drc", "rate.pub2_on_time")] == "0.5000"
    body = json.loads((a / "statistics.json").read_bytes())
    assert body["log"]["first_sequence"] == 1 and body["log"]["last_sequence"] == 24
    assert body["chain_head"] is None
    drc = body["scopes"]["drc"]["quarter"]
    assert drc["values"]["pub2_late"] == 1 and drc["rates"]["rate.pub2_on_time"] == 0.5
    (index,) = drc["traces"]["pub2_late"]
    assert body["traces"][index][:3] == [3, "e3", "P2"]
    page = (a / "index.html").read_text(encoding="utf-8")
    assert 'id="chain-head"' in page and "<svg" in page
    assert "src=\"http" not in page and "<script" not in page  # opens offline
    dept = (a / "departments" / "education.html").read_text(encoding="utf-8")
    assert "解读缺失(PUB-2)" in dept and "PUB-2:P3" in dept
    # another as-of changes only what it must: the header, and P3 no longer overdue
    other = build(hand_inputs(), Quarter.parse("2026Q3"), as_of=sh("2026-08-01 12:00"))
    assert len(other.figures["quarter"][DISTRICT]["pub2_running"]) == 2


def test_charts_are_svg_whose_chinese_labels_stay_text() -> None:
    """Issue 13, defect 7: a PNG drawn without a CJK font showed boxes. The labels are
    text for the reader's browser to draw, and the page finds them when searched."""
    built = build(hand_inputs(), Quarter.parse("2026Q3"), as_of=AS_OF)
    svgs = [svg for _, svg in report.charts(built)]
    assert len(svgs) == 2 and all(s.startswith("<svg") and s.endswith("</svg>") for s in svgs)
    texts = {t for s in svgs for t in re.findall(r"<text[^>]*>([^<]*)</text>", s)}
    assert {"政策咨询·按渠道", "政务舆情·按级别", "公开考评得分(SUP-2,按名次)"} <= texts
    assert not any("<image" in s or "base64" in s or "<path id=\"DejaVu" in s for s in svgs)


def test_charts_do_not_depend_on_the_fonts_of_the_machine() -> None:
    """The same charts on a machine with only matplotlib's own fonts (no CJK font at all)."""
    from matplotlib import font_manager

    built = build(hand_inputs(), Quarter.parse("2026Q3"), as_of=AS_OF)
    here = report.charts(built)
    manager = font_manager.fontManager
    everything = list(manager.ttflist)
    try:
        manager.ttflist = [f for f in everything if "mpl-data" in f.fname]
        assert not any("CJK" in f.name for f in manager.ttflist)
        font_manager.FontManager._findfont_cached.cache_clear()  # type: ignore[attr-defined]
        assert report.charts(built) == here
    finally:
        manager.ttflist = everything
        font_manager.FontManager._findfont_cached.cache_clear()  # type: ignore[attr-defined]


# ── benchmark ────────────────────────────────────────────────────────────────────────────────


def test_a_report_for_100_departments_and_10000_cases(tmp_path: Path) -> None:
    """Issue 7's size. Its speed is a benchmark figure (`jiedu bench --parts report`), not a
    timed test; here the size is built and written whole."""
    rep = build(report_inputs(), Quarter.parse("2026Q3"), as_of=AS_OF)
    report.write_report(rep, tmp_path / "big")
    assert len(rep.departments) == 100
    assert len(rep.figures["quarter"][DISTRICT]["policies_issued"]) > 4000
    assert len(list((tmp_path / "big").rglob("*.html"))) > 100
