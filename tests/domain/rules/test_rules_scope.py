"""SCOPE-1..3 (解读范围): what must be interpreted; consultation drafts; implementation cases."""

from __future__ import annotations

from rulecases import Case, evidence_ids, material, only, plan, rule_ids

from events.catalogue import (
    CaseKind,
    Channel,
    OpinionKind,
    ResponseKind,
    Scope,
    Severity,
)


def test_scope_1_kept_when_the_plan_category_is_the_case_scope() -> None:
    for scope in (Scope.NORMATIVE, Scope.HIGH_IMPACT, Scope.DESIGNATED):
        c = Case(f"c-{scope}")
        assert c.add(c.draft(scope=scope)).findings == ()


def test_scope_1_plan_category_differs_from_the_case_scope() -> None:
    c = Case()
    d = c.draft(scope=Scope.NORMATIVE, plan_=plan(category=Scope.HIGH_IMPACT))
    f = only(c.add(d), "SCOPE-1")
    assert f.severity is Severity.WARNING
    assert evidence_ids(f) == [d.event_id]
    assert "high_impact" in f.message_en and "normative" in f.message_en
    assert f.message_zh


def test_scope_1_category_finding_resolved_by_a_plan_that_agrees() -> None:
    c = Case()
    f = only(c.add(c.draft(plan_=plan(category=Scope.DESIGNATED))), "SCOPE-1")
    r = c.add(c.resubmit(plan(category=Scope.NORMATIVE)))
    assert r.findings == ()
    assert [x.finding_id for x in r.resolutions] == [f.finding_id]
    assert c.open == {}


def test_scope_1_a_plan_that_still_disagrees_replaces_the_finding() -> None:
    c = Case()
    first = only(c.add(c.draft(plan_=plan(category=Scope.DESIGNATED))), "SCOPE-1")
    again = c.resubmit(plan(category=Scope.HIGH_IMPACT))
    r = c.add(again)
    second = only(r, "SCOPE-1")
    assert [x.finding_id for x in r.resolutions] == [first.finding_id]
    assert evidence_ids(second) == [again.event_id]
    assert list(c.open) == [second.finding_id]


def test_scope_1_major_decision_declared_out_of_scope() -> None:
    c = Case()
    d = c.draft(scope=Scope.OUT_OF_SCOPE, kind=CaseKind.MAJOR_DECISION)
    f = only(c.add(d), "SCOPE-1")
    assert f.finding_id == f"SCOPE-1_major-decision_{d.event_id}"
    assert f.severity is Severity.WARNING


def test_scope_1_major_decision_in_scope_is_kept() -> None:
    c = Case()
    assert c.add(c.draft(scope=Scope.HIGH_IMPACT, kind=CaseKind.MAJOR_DECISION)).findings == ()


def test_scope_1_out_of_scope_case_carries_no_interpretation_duties() -> None:
    """Nothing reviewed, nothing planned, yet published, asked about and talked about: an
    out-of-scope document has none of the interpretation duties."""
    c = Case()
    c.add(c.draft(scope=Scope.OUT_OF_SCOPE))
    c.add(c.issued())
    c.add(c.published("m9", channel=Channel.WECHAT, linked=False, url=None))
    c.add(c.media(consulted=False, misreading=True))
    c.add(c.received(), c.answered(from_library=True, instant=False))
    c.add(c.opinion(kind=OpinionKind.ILLEGAL_CONTENT), c.response(kind=ResponseKind.CLARIFICATION))
    assert c.log.findings() == []


def test_scope_1_out_of_scope_plan_contradicting_the_scope() -> None:
    c = Case()
    f = only(c.add(c.draft(scope=Scope.OUT_OF_SCOPE, plan_=plan())), "SCOPE-1")
    assert "out_of_scope" in f.message_en


# ── SCOPE-2: consultation drafts (重大决策预公开) ─────────────────────────────────────────────


def test_scope_2_kept_draft_with_interpretation_then_results_then_issue() -> None:
    c = Case().reviewed()
    c.add(c.consultation_draft(), c.consultation_results(), c.issued())
    assert c.log.findings() == []


def test_scope_2_consultation_draft_without_interpretation() -> None:
    c = Case().reviewed()
    draft = c.consultation_draft(interpretation=False)
    f = only(c.add(draft), "SCOPE-2")
    assert f.severity is Severity.VIOLATION
    assert evidence_ids(f) == [draft.event_id]
    r = c.add(c.consultation_draft(interpretation=True))
    assert [x.finding_id for x in r.resolutions] == [f.finding_id]


def test_scope_2_results_without_a_draft_before_them() -> None:
    c = Case().reviewed()
    f = only(c.add(c.consultation_results()), "SCOPE-2")
    assert f.finding_id.startswith("SCOPE-2_no-draft_")
    assert c.add(c.consultation_draft()).resolutions == ()  # the order stays wrong
    assert f.finding_id in c.open


def test_scope_2_policy_issued_before_the_consultation_results() -> None:
    c = Case().reviewed()
    draft = c.consultation_draft()
    c.add(draft)
    issued = c.issued()
    f = only(c.add(issued), "SCOPE-2")
    assert f.severity is Severity.WARNING
    assert evidence_ids(f) == [issued.event_id, draft.event_id]
    assert f.evidence[1].sequence == c.log.sequence_of(draft.event_id)
    r = c.add(c.consultation_results())
    assert [x.finding_id for x in r.resolutions] == [f.finding_id]


def test_scope_2_applies_to_normative_documents_and_major_decisions_only() -> None:
    c = Case("ordinary")
    c.reviewed(c.draft(scope=Scope.HIGH_IMPACT))
    assert c.add(c.consultation_draft(interpretation=False)).findings == ()
    m = Case("major")
    m.reviewed(m.draft(scope=Scope.HIGH_IMPACT, kind=CaseKind.MAJOR_DECISION))
    assert rule_ids(m.add(m.consultation_draft(interpretation=False))) == ["SCOPE-2"]


# ── SCOPE-3: implementing a superior document (贯彻执行上级文件) ───────────────────────────────


def test_scope_3_kept_implementation_in_scope_naming_its_superior_document() -> None:
    c = Case()
    d = c.draft(kind=CaseKind.IMPLEMENTATION, superior_document="渝府办发〔2021〕101号")
    assert c.add(d).findings == ()


def test_scope_3_implementation_declared_out_of_scope() -> None:
    c = Case()
    d = c.draft(
        scope=Scope.OUT_OF_SCOPE, kind=CaseKind.IMPLEMENTATION, superior_document="渝府发〔2025〕3号"
    )
    f = only(c.add(d), "SCOPE-3")
    assert f.severity is Severity.VIOLATION
    assert f.finding_id == f"SCOPE-3_out-of-scope_{d.event_id}"


def test_scope_3_implementation_without_its_superior_document() -> None:
    for superior in (None, "  "):
        c = Case(f"c{len(superior or '')}")
        d = c.draft(kind=CaseKind.IMPLEMENTATION, superior_document=superior,
                    materials=(material(),))
        f = only(c.add(d), "SCOPE-3")
        assert f.severity is Severity.WARNING
        assert evidence_ids(f) == [d.event_id]


def test_scope_3_both_ways_broken_at_once() -> None:
    c = Case()
    j = c.add(c.draft(scope=Scope.OUT_OF_SCOPE, kind=CaseKind.IMPLEMENTATION))
    assert sorted(f.finding_id.split("_")[1] for f in j.findings) == ["out-of-scope", "superior"]
