"""SYNC-1 (三同步), PLAN-1 (解读方案模板) and MAT-1 (解读材料): what goes up for review."""

from __future__ import annotations

from typing import Any

import pytest
from rulecases import Case, evidence_ids, material, only, plan, rule_ids

from events.catalogue import (
    BenefitOffice,
    Channel,
    Form,
    PlannedChannel,
    ReviewStage,
    Severity,
)

# ── SYNC-1 ───────────────────────────────────────────────────────────────────────────────────


def test_sync_1_kept_document_plan_and_materials_submitted_and_signed_together() -> None:
    c = Case()
    c.reviewed()
    assert c.log.findings() == []


@pytest.mark.parametrize(
    ("over", "missing_en"),
    [
        ({"plan_": None}, "interpretation plan"),
        ({"materials": ()}, "interpretation materials"),
        ({"plan_": None, "materials": ()}, "interpretation plan and interpretation materials"),
    ],
)
def test_sync_1_submission_without_plan_or_materials(over: dict[str, Any], missing_en: str) -> None:
    c = Case()
    d = c.draft(**over)
    f = only(c.add(d), "SYNC-1")
    assert f.severity is Severity.VIOLATION
    assert f.finding_id == f"SYNC-1_incomplete_{d.event_id}"
    assert evidence_ids(f) == [d.event_id]
    assert f.evidence[0].sequence is None  # judged before the log placed it
    assert f.message_en.endswith(missing_en)


def test_sync_1_resolved_only_by_the_resubmission_that_completes_it() -> None:
    c = Case()
    f = only(c.add(c.draft(plan_=None, materials=())), "SYNC-1")
    partial = c.add(c.resubmit(plan()))
    assert partial.findings == () and partial.resolutions == ()
    fix = c.resubmit(materials=(material(),))
    r = c.add(fix)
    assert [(x.finding_id, x.resolved_by.event_id) for x in r.resolutions] == [
        (f.finding_id, fix.event_id)
    ]
    assert c.open == {}


@pytest.mark.parametrize(
    ("covers_plan", "covers_materials", "missing"),
    [(False, True, "plan"), (True, False, "materials"), (False, False, "plan and materials")],
)
def test_sync_1_signature_that_does_not_cover_plan_or_materials(
    covers_plan: bool, covers_materials: bool, missing: str
) -> None:
    c = Case()
    c.add(c.draft())
    s = c.sign(ReviewStage.SECTION_HEAD, covers_plan=covers_plan, covers_materials=covers_materials)
    f = only(c.add(s), "SYNC-1")
    assert f.finding_id == f"SYNC-1_coverage_{s.event_id}"
    assert f.message_en.endswith(f"does not cover the {missing}")


def test_sync_1_coverage_resolved_by_the_same_stage_signing_again_in_full() -> None:
    c = Case()
    c.add(c.draft())
    f = only(c.add(c.sign(ReviewStage.SECTION_HEAD, covers_plan=False)), "SYNC-1")
    assert c.add(c.sign(ReviewStage.DEPUTY_HEAD)).resolutions == ()  # another stage: no
    r = c.add(c.sign(ReviewStage.SECTION_HEAD))
    assert [x.finding_id for x in r.resolutions] == [f.finding_id]


def test_sync_1_signature_of_a_stage_outside_the_chain_is_not_judged() -> None:
    c = Case()  # a department document: the news office is not in its chain
    c.add(c.draft())
    assert c.add(c.sign(ReviewStage.NEWS_OFFICE, covers_plan=False)).findings == ()


# ── PLAN-1 ───────────────────────────────────────────────────────────────────────────────────

WEBSITE = PlannedChannel(channel=Channel.GOVERNMENT_WEBSITE)
MEDIA = PlannedChannel(channel=Channel.NEWS_MEDIA)


def test_plan_1_kept_with_every_starred_option() -> None:
    for i, graphic in enumerate((Form.CHART, Form.ANIMATION, Form.AUDIO_VIDEO)):
        c = Case(f"c{i}")
        p = plan(forms=(Form.TEXT, graphic, Form.PRESS_RELEASE, Form.INTERVIEW))
        assert c.add(c.draft(plan_=p)).findings == ()


@pytest.mark.parametrize(
    ("forms", "channels", "missing"),
    [
        ((Form.CHART, Form.PRESS_RELEASE), (WEBSITE, MEDIA), "text"),
        ((Form.TEXT, Form.PRESS_RELEASE, Form.BRIEFING), (WEBSITE, MEDIA),
         "animation/audio_video/chart"),
        ((Form.TEXT, Form.CHART), (WEBSITE, MEDIA), "press_release"),
        ((Form.TEXT, Form.CHART, Form.PRESS_RELEASE), (MEDIA,), "government_website"),
        ((Form.TEXT, Form.CHART, Form.PRESS_RELEASE), (WEBSITE,), "news_media"),
    ],
)
def test_plan_1_plan_lacking_a_starred_option(
    forms: tuple[Form, ...], channels: tuple[PlannedChannel, ...], missing: str
) -> None:
    c = Case()
    d = c.draft(plan_=plan(forms=forms, channels=channels))
    f = only(c.add(d), "PLAN-1")
    assert f.severity is Severity.WARNING  # 原则上为必选项
    assert evidence_ids(f) == [d.event_id]
    assert f.message_en.endswith(f"starred options: {missing}")


def test_plan_1_lists_every_missing_option_in_one_finding() -> None:
    c = Case()
    f = only(c.add(c.draft(plan_=plan(forms=(Form.OTHER,), channels=()))), "PLAN-1")
    for option in ("text", "chart", "press_release", "government_website", "news_media"):
        assert option in f.message_en


def test_plan_1_resolved_by_a_complete_plan_and_rejudged_on_a_lacking_one() -> None:
    c = Case()
    first = only(c.add(c.draft(plan_=plan(forms=(Form.TEXT,)))), "PLAN-1")
    r = c.add(c.resubmit(plan(forms=(Form.TEXT, Form.CHART))))
    second = only(r, "PLAN-1")
    assert [x.finding_id for x in r.resolutions] == [first.finding_id]
    assert "press_release" in second.message_en and "chart" not in second.message_en
    r = c.add(c.resubmit(plan()))
    assert r.findings == () and [x.finding_id for x in r.resolutions] == [second.finding_id]
    assert c.open == {}


def test_plan_1_resubmission_without_a_plan_leaves_the_finding_open() -> None:
    c = Case()
    f = only(c.add(c.draft(plan_=plan(forms=(Form.TEXT,)))), "PLAN-1")
    assert c.add(c.resubmit(materials=(material(),))).resolutions == ()
    assert f.finding_id in c.open


# ── MAT-1 ────────────────────────────────────────────────────────────────────────────────────

SECTIONS = ["background", "main_content", "audience", "standards", "time_limits", "cautions",
            "key_terms", "old_vs_new"]
OFFICE = BenefitOffice(name="区政务服务中心", address="渝中区人民路 1 号", contact="023-12345",
                       hours="工作日 9:00-17:00")


def test_mat_1_kept_with_every_section_and_the_benefit_office() -> None:
    c = Case()
    m = material(involves_benefits=True, benefit_office=OFFICE)
    assert c.add(c.draft(materials=(m, material("m2", Form.CHART)))).findings == ()


@pytest.mark.parametrize("section", SECTIONS)
@pytest.mark.parametrize("empty", ["none", "blank"])
def test_mat_1_material_missing_a_section(section: str, empty: str) -> None:
    value: Any = None
    if empty == "blank":
        value = () if section == "key_terms" else "   "
    elif section == "key_terms":
        value = ()
    c = Case()
    d = c.draft(materials=(material(**{section: value}),))
    f = only(c.add(d), "MAT-1")
    assert f.severity is Severity.WARNING
    assert f.finding_id == f"MAT-1_sections-0_{d.event_id}"
    assert f.message_en == f"interpretation material m1 lacks: {section}"


@pytest.mark.parametrize(
    ("office", "missing"),
    [
        (None, "name, address, contact, hours"),
        (OFFICE.model_copy(update={"hours": None}), "hours"),
        (OFFICE.model_copy(update={"contact": "", "address": None}), "address, contact"),
    ],
)
def test_mat_1_benefit_material_without_the_office_details(
    office: BenefitOffice | None, missing: str
) -> None:
    c = Case()
    d = c.draft(materials=(material(involves_benefits=True, benefit_office=office),))
    f = only(c.add(d), "MAT-1")
    assert f.severity is Severity.VIOLATION  # 要注明
    assert f.finding_id == f"MAT-1_benefit-0_{d.event_id}"
    assert f.message_en.endswith(f"does not state the office's: {missing}")


def test_mat_1_one_finding_per_material_and_kind_of_gap() -> None:
    c = Case()
    d = c.draft(materials=(
        material("m1"),
        material("m2", cautions=None, involves_benefits=True),
    ))
    j = c.add(d)
    assert rule_ids(j) == ["MAT-1", "MAT-1"]
    assert {f.finding_id for f in j.findings} == {
        f"MAT-1_sections-1_{d.event_id}", f"MAT-1_benefit-1_{d.event_id}"
    }
    assert all("m2" in f.message_en for f in j.findings)


def test_mat_1_resolved_when_the_material_is_resubmitted() -> None:
    c = Case()
    c.add(c.draft(materials=(material("m1"), material("m2", old_vs_new=None))))
    (f,) = c.open.values()
    assert c.add(c.resubmit(materials=(material("m1"),))).resolutions == ()  # other material
    r = c.add(c.resubmit(materials=(material("m2"),)))
    assert r.findings == () and [x.finding_id for x in r.resolutions] == [f.finding_id]


def test_mat_1_resubmitted_material_still_lacking_is_judged_afresh() -> None:
    c = Case()
    first = only(c.add(c.draft(materials=(material(audience=None),))), "MAT-1")
    again = c.resubmit(materials=(material(audience="全体市民", cautions=None),))
    r = c.add(again)
    second = only(r, "MAT-1")
    assert [x.finding_id for x in r.resolutions] == [first.finding_id]
    assert evidence_ids(second) == [again.event_id]
    assert second.message_en.endswith("lacks: cautions")

