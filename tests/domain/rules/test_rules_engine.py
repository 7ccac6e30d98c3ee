"""The engine around the rules: versioned rule sets, deterministic findings, derived events the
intake can append, and facts rebuilt from the log judging as live ones did."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime

import pytest
from rulecases import DISTRICT_CHAIN, Case, Log, material, plan, rule_ids

from domain.case import Case as CaseAggregate
from domain.rules import (
    RULE_IDS,
    CaseFacts,
    NoRuleSet,
    derived_events,
    judge,
    ruleset_at,
    ruleset_named,
)
from domain.rules import ruleset as ruleset_module
from domain.rules.base import finding_id
from domain.rules.ruleset import SHANGHAI, YUZHONG_2021
from events.catalogue import (
    Channel,
    FindingRecorded,
    FindingResolved,
    Form,
    IssuerKind,
    OpinionKind,
    OpinionSeverity,
    PlannedChannel,
    ResponseKind,
    ReviewStage,
    Scope,
    TrainingHeld,
)
from events.codec import encode, loads
from events.envelope import Actor

IN_SCOPE_OF_ISSUE_4 = {
    "SCOPE-1", "SCOPE-2", "SCOPE-3", "WHO-1", "SYNC-1", "PLAN-1", "MAT-1",
    "REV-1", "REV-2", "REV-3", "REV-4", "REV-5", "PUB-1", "PUB-4", "QA-3", "QA-4",
    "OP-1", "OP-2", "OP-3",
}


def test_every_rule_of_issue_4_is_judged_and_no_time_based_one() -> None:
    assert RULE_IDS == IN_SCOPE_OF_ISSUE_4


# ── rule sets ────────────────────────────────────────────────────────────────────────────────


def test_the_seed_rule_set_is_in_force_from_2021_11_24_shanghai_time() -> None:
    assert ruleset_at(datetime(2021, 11, 24, 0, 0, tzinfo=SHANGHAI)) is YUZHONG_2021
    assert ruleset_at(datetime(2021, 11, 23, 16, 0, tzinfo=UTC)) is YUZHONG_2021  # same instant
    assert ruleset_at(datetime(2026, 7, 6, tzinfo=SHANGHAI)) is YUZHONG_2021
    with pytest.raises(NoRuleSet):
        ruleset_at(datetime(2021, 11, 23, 23, 59, 59, tzinfo=SHANGHAI))
    with pytest.raises(ValueError):
        ruleset_at(datetime(2022, 1, 1))
    assert ruleset_named("yuzhong-2021") is YUZHONG_2021
    with pytest.raises(NoRuleSet):
        ruleset_named("yuzhong-2020")


def test_the_seed_rule_set_holds_the_seed_parameters() -> None:
    r = YUZHONG_2021
    assert (r.publication_working_days, r.min_forms, r.referral_working_days) == (20, 2, 5)
    assert dict(r.opinion_response_hours) == {
        OpinionSeverity.MAJOR: 24, OpinionSeverity.HIGH_ATTENTION: 24, OpinionSeverity.ORDINARY: 48
    }
    S = ReviewStage
    assert [s.stage for s in r.chain(IssuerKind.DISTRICT_GOVERNMENT)] == list(DISTRICT_CHAIN)
    assert [s.rule_id for s in r.chain(IssuerKind.DISTRICT_GOVERNMENT)] == [
        "REV-1", "REV-1", "REV-1", "REV-2", "REV-3"
    ]
    for kind in (IssuerKind.DEPARTMENT, IssuerKind.JOINT):
        assert [s.stage for s in r.chain(kind)] == [
            S.SECTION_HEAD, S.DEPUTY_HEAD, S.PRINCIPAL_HEAD, S.INTERPRETATION_UNIT
        ]
    assert r.plan_forms == (
        frozenset({Form.TEXT}),
        frozenset({Form.CHART, Form.ANIMATION, Form.AUDIO_VIDEO}),
        frozenset({Form.PRESS_RELEASE}),
    )
    assert r.plan_channels == (Channel.GOVERNMENT_WEBSITE, Channel.NEWS_MEDIA)
    assert Scope.OUT_OF_SCOPE not in r.in_scope


def test_every_finding_names_the_rule_set_it_was_judged_by() -> None:
    c = Case()
    c.add(c.district_draft(plan_=None, materials=(material(cautions=None),)))
    c.add(c.sign(ReviewStage.DEPUTY_HEAD), c.issued())
    c.add(c.opinion(kind=OpinionKind.MISUNDERSTANDING), c.response(kind=ResponseKind.REBUTTAL))
    findings = c.log.findings()
    assert len({f.rule_id for f in findings}) >= 5
    assert {f.rule_set for f in findings} == {"yuzhong-2021"}


def test_facts_from_before_the_first_rule_set_are_not_judged() -> None:
    c = Case()
    c.start = datetime(2021, 6, 1, 9, tzinfo=SHANGHAI)  # the 2020 rules were in force
    c.add(c.draft(plan_=None, materials=()))
    c.add(c.published(), c.issued())
    assert c.log.findings() == []


def test_each_event_is_judged_by_the_rule_set_in_force_at_its_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 2026 revision dropping the press release from the template's starred forms: a plan
    submitted in 2025 is still judged (and named) by the 2021 rules."""
    revised = dataclasses.replace(
        YUZHONG_2021,
        name="yuzhong-2026",
        effective_from=date(2026, 1, 1),
        plan_forms=YUZHONG_2021.plan_forms[:2],
    )
    monkeypatch.setattr(ruleset_module, "RULE_SETS", (YUZHONG_2021, revised))
    lacking = plan(forms=(Form.TEXT, Form.CHART))
    old = Case("c2025")
    old.start = datetime(2025, 12, 31, 9, tzinfo=SHANGHAI)
    (f,) = old.add(old.draft(plan_=lacking)).findings
    assert (f.rule_id, f.rule_set) == ("PLAN-1", "yuzhong-2021")
    new = Case("c2026")
    assert new.add(new.draft(plan_=lacking)).findings == ()
    wrong = plan(channels=(PlannedChannel(channel=Channel.NEWS_MEDIA),))
    (g,) = new.add(new.resubmit(wrong)).findings
    assert (g.rule_id, g.rule_set) == ("PLAN-1", "yuzhong-2026")


# ── determinism and the events the intake appends ────────────────────────────────────────────


def broken_case(log: Log | None = None) -> Case:
    c = Case(log=log)
    c.add(c.district_draft(plan_=None, materials=(material(old_vs_new=None),)))
    c.add(c.sign(ReviewStage.DEPUTY_HEAD), c.sign(ReviewStage.SECTION_HEAD))
    c.add(c.published("m1", channel=Channel.WECHAT), c.resubmit(plan()))
    c.add(c.media("r1", consulted=False, misreading=True), c.corrected("r1"))
    c.add(c.received("q1"), c.referred("q1", to="finance"), c.referred("q1"))
    return c


def test_the_same_events_always_give_the_same_findings_and_derived_events() -> None:
    a, b = broken_case(), broken_case()
    assert a.log.judgements == b.log.judgements
    assert [encode(e) for _, e in a.log.records] == [encode(e) for _, e in b.log.records]
    assert len(a.log.findings()) >= 6


def test_derived_events_are_valid_events_the_case_aggregate_accepts() -> None:
    c = broken_case()
    kinds = {type(e) for _, e in c.log.records}
    assert {FindingRecorded, FindingResolved} <= kinds
    aggregate: CaseAggregate | None = None
    for seq, e in c.log.records:
        assert loads(encode(e)) == e  # survives the log
        if aggregate is None:
            aggregate = CaseAggregate.open(seq, e)
            continue
        aggregate.check(e)  # e.g. a resolution names a finding recorded before it
        aggregate.record(seq, e)
    derived = [e for _, e in c.log.records if isinstance(e, FindingRecorded | FindingResolved)]
    assert all(e.causation_id and e.actor.id == "jiedu-rules" for e in derived)


def test_derived_events_follow_their_fact() -> None:
    c = Case()
    d = c.draft(plan_=None)
    j = judge(CaseFacts.empty(), None, d)
    (recorded,) = derived_events(d, j)
    assert isinstance(recorded, FindingRecorded)
    assert recorded.event_id == recorded.data.finding_id
    assert (recorded.case_id, recorded.department, recorded.occurred_at) == (
        d.case_id, d.department, d.occurred_at
    )
    assert recorded.causation_id == d.event_id


def test_facts_rebuilt_from_the_log_judge_as_the_live_ones_did() -> None:
    """What the intake does after a restart: fold the case's history, then judge."""
    c = broken_case()
    records = c.log.records
    for i, (_, e) in enumerate(records):
        if isinstance(e, FindingRecorded | FindingResolved):
            continue
        rebuilt = CaseFacts.fold(records[:i])
        live = next(j for ev, j in c.log.judgements if ev.event_id == e.event_id)
        assert judge(rebuilt, None, e) == live


def test_judging_with_a_known_sequence_puts_it_in_the_evidence() -> None:
    c = Case()
    d = c.draft(materials=())
    (f,) = judge(CaseFacts.empty(), 41, d).findings
    assert f.evidence[0].sequence == 41


def test_a_finding_is_recorded_once_even_if_its_fact_is_judged_again() -> None:
    c = Case()
    d = c.draft(plan_=None)
    c.add(d)
    assert judge(c.facts, None, d).findings == ()


def test_events_that_are_not_policy_facts_are_not_judged() -> None:
    training = TrainingHeld(
        event_id="t1", case_id="training-2026", department="gov_office",
        actor=Actor(id="u-9"), source_system="oa",
        occurred_at=datetime(2026, 3, 1, 9, tzinfo=SHANGHAI),
        data={"title": "政策解读业务培训", "held_on": date(2026, 3, 1)},
    )
    assert not judge(CaseFacts.empty(), None, training)
    c = Case()
    assert not judge(CaseFacts.empty(), None, c.issued())  # no case opened


def test_finding_ids_are_event_id_safe_and_deterministic() -> None:
    assert finding_id("REV-5", "unreviewed", "ev-000123") == "REV-5_unreviewed_ev-000123"
    long = "e" * 128
    hashed = finding_id("MAT-1", "sections-0", long)
    assert hashed == finding_id("MAT-1", "sections-0", long)
    assert hashed != finding_id("MAT-1", "sections-1", long)
    assert hashed.startswith("MAT-1_") and len(hashed) <= 100
    assert len(f"{hashed}-resolved") <= 128


def test_the_deadline_service_can_read_its_starting_points_from_the_facts() -> None:
    c = Case()
    c.reviewed(c.draft(materials=(material("m1"), material("m2", Form.CHART))))
    c.add(c.issued(), c.published("m2", Form.CHART), c.published("m1"))
    c.add(c.received("q1"), c.referred("q1"), c.opinion("o1", severity=OpinionSeverity.MAJOR))
    f = c.facts
    assert f.issue_date == date(2026, 7, 6)
    assert f.website_text is not None and f.website_text.material_id == "m1"
    assert f.forms_published == {Form.TEXT, Form.CHART}
    assert f.consultations["q1"].referrals[0].referred_to == "drc"
    assert f.opinions["o1"].severity is OpinionSeverity.MAJOR
    assert f.in_scope(YUZHONG_2021)
    assert rule_ids(c.add(c.response("o1"))) == []
