"""OP-1..3 (政务舆情回应): opinion linked to a published policy; suggestions assessed; the
response fits the kind of opinion; illegal content referred. OP-4's hours are the deadline
service's."""

from __future__ import annotations

import pytest
from rulecases import Case, evidence_ids, only, rule_ids

from events.catalogue import OpinionKind, ResponseKind, Severity

K, R = OpinionKind, ResponseKind


def public_case() -> Case:
    c = Case()
    c.reviewed()
    c.add(c.issued())
    return c


# ── OP-1 ─────────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("made_public", ["issued", "consultation_draft", "published"])
def test_op_1_kept_opinion_on_a_policy_made_public(made_public: str) -> None:
    c = Case()
    c.reviewed()
    c.add(getattr(c, made_public)())
    assert c.add(c.opinion()).findings == ()


def test_op_1_opinion_linked_to_a_policy_nothing_of_which_is_public() -> None:
    c = Case()
    c.reviewed()
    o = c.opinion("o1")
    f = only(c.add(o), "OP-1")
    assert f.severity is Severity.WARNING
    assert f.finding_id == f"OP-1_unpublished_{o.event_id}"
    assert c.add(c.issued()).resolutions == ()


# ── OP-2 ─────────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("decision", ["adopted", "declined"])
def test_op_2_kept_suggestion_assessed(decision: str) -> None:
    c = public_case()
    c.add(c.opinion("o1", kind=K.SUGGESTION))
    assert c.add(getattr(c, decision)("o1")).findings == ()


def test_op_2_decision_on_an_opinion_that_is_not_a_suggestion() -> None:
    c = public_case()
    o = c.opinion("o1", kind=K.MISUNDERSTANDING)
    c.add(o)
    d = c.adopted("o1")
    f = only(c.add(d), "OP-2")
    assert f.severity is Severity.WARNING
    assert evidence_ids(f) == [d.event_id, o.event_id]


def test_op_2_decision_contradicting_an_earlier_one() -> None:
    c = public_case()
    c.add(c.opinion("o1", kind=K.SUGGESTION))
    first, second = c.adopted("o1"), c.adopted("o1")
    assert c.add(first, second).findings == ()  # the same decision again
    d = c.declined("o1")
    f = only(c.add(d), "OP-2")
    assert f.finding_id == f"OP-2_conflict_{d.event_id}"
    assert evidence_ids(f) == [d.event_id, second.event_id]  # the latest contrary decision


# ── OP-3 ─────────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("kind", "response", "referred_to"),
    [
        (K.MISUNDERSTANDING, R.CLARIFICATION, ()),
        (K.MISUNDERSTANDING, R.CORRECTION, ()),
        (K.FALSE_INFORMATION, R.REBUTTAL, ()),
        (K.FALSE_INFORMATION, R.CORRECTION, ()),
        (K.ILLEGAL_CONTENT, R.REFERRAL_TO_AUTHORITIES, ("渝中区公安分局",)),
        (K.SUGGESTION, R.CLARIFICATION, ()),
    ],
)
def test_op_3_kept_response_fitting_the_opinion(
    kind: OpinionKind, response: ResponseKind, referred_to: tuple[str, ...]
) -> None:
    c = public_case()
    c.add(c.opinion("o1", kind=kind))
    assert c.add(c.response("o1", kind=response, referred_to=referred_to)).findings == ()


@pytest.mark.parametrize(
    ("kind", "response"),
    [
        (K.MISUNDERSTANDING, R.REBUTTAL),
        (K.MISUNDERSTANDING, R.REFERRAL_TO_AUTHORITIES),
        (K.SUGGESTION, R.REBUTTAL),
        (K.ILLEGAL_CONTENT, R.CLARIFICATION),
    ],
)
def test_op_3_response_of_the_wrong_kind_is_never_resolved(
    kind: OpinionKind, response: ResponseKind
) -> None:
    c = public_case()
    o = c.opinion("o1", kind=kind)
    c.add(o)
    resp = c.response("o1", kind=response, referred_to=("区委网信办",))
    j = c.add(resp)
    f = next(f for f in j.findings if f.finding_id.startswith("OP-3_kind_"))
    assert f.severity is Severity.VIOLATION
    assert evidence_ids(f) == [resp.event_id, o.event_id]
    later = c.add(c.response("o1", kind=R.CORRECTION, referred_to=()))
    assert f.finding_id not in {x.finding_id for x in later.resolutions}
    assert f.finding_id in c.open


def test_op_3_illegal_content_rebutted_but_not_referred() -> None:
    c = public_case()
    c.add(c.opinion("o1", kind=K.ILLEGAL_CONTENT))
    resp = c.response("o1", kind=R.REBUTTAL)
    f = only(c.add(resp), "OP-3")
    assert f.finding_id == f"OP-3_not-referred_{resp.event_id}"
    ref = c.response("o1", kind=R.REFERRAL_TO_AUTHORITIES, referred_to=("渝中区公安分局", "区委网信办"))
    r = c.add(ref)
    assert r.findings == ()
    assert [(x.finding_id, x.resolved_by.event_id) for x in r.resolutions] == [
        (f.finding_id, ref.event_id)
    ]
    assert c.add(c.response("o1", kind=R.REBUTTAL)).findings == ()  # referred by now


def test_op_3_referral_naming_no_authority() -> None:
    c = public_case()
    c.add(c.opinion("o1", kind=K.ILLEGAL_CONTENT))
    resp = c.response("o1", kind=R.REFERRAL_TO_AUTHORITIES, referred_to=())
    f = only(c.add(resp), "OP-3")
    assert f.finding_id == f"OP-3_no-authority_{resp.event_id}"
    r = c.add(c.response("o1", kind=R.REFERRAL_TO_AUTHORITIES, referred_to=("区委网信办",)))
    assert [x.finding_id for x in r.resolutions] == [f.finding_id]


def test_op_3_each_opinion_judged_on_its_own() -> None:
    c = public_case()
    c.add(c.opinion("o1", kind=K.ILLEGAL_CONTENT), c.opinion("o2", kind=K.ILLEGAL_CONTENT))
    c.add(c.response("o1", kind=R.REFERRAL_TO_AUTHORITIES, referred_to=("渝中区公安分局",)))
    assert rule_ids(c.add(c.response("o2", kind=R.REBUTTAL))) == ["OP-3"]
