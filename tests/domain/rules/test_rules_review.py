"""REV-1..5 (文件审核): the review chain by issuer, in order; sign-off and 退文; nothing
published before review is complete."""

from __future__ import annotations

import pytest
from rulecases import (
    DEPARTMENT_CHAIN,
    DISTRICT_CHAIN,
    Case,
    evidence_ids,
    material,
    only,
    plan,
    rule_ids,
)

from domain.rules import CaseFacts, judge
from events.catalogue import (
    Form,
    Issuer,
    IssuerKind,
    ReviewGround,
    ReviewStage,
    Severity,
)

S = ReviewStage


def district_case() -> Case:
    c = Case()
    c.add(c.district_draft())
    return c


def department_case() -> Case:
    c = Case()
    c.add(c.draft())
    return c


# ── REV-1: 三审三校 of district-government documents ─────────────────────────────────────────


def test_rev_1_kept_full_district_chain_in_order() -> None:
    c = district_case()
    for stage in DISTRICT_CHAIN:
        assert c.add(c.sign(stage)).findings == ()
    assert c.add(c.issued()).findings == ()
    assert c.log.findings() == []


@pytest.mark.parametrize(
    ("signed", "stage", "missing"),
    [
        ((), S.DEPUTY_HEAD, "section_head"),
        ((S.SECTION_HEAD,), S.PRINCIPAL_HEAD, "deputy_head"),
        ((), S.PRINCIPAL_HEAD, "section_head, deputy_head"),
    ],
)
def test_rev_1_head_signing_before_the_heads_below(
    signed: tuple[ReviewStage, ...], stage: ReviewStage, missing: str
) -> None:
    c = district_case()
    c.add(*c.chain(signed))
    s = c.sign(stage)
    f = only(c.add(s), "REV-1")
    assert f.severity is Severity.VIOLATION
    assert f.finding_id == f"REV-1_order_{s.event_id}"
    assert evidence_ids(f) == [s.event_id]
    assert f.message_en.startswith(f"{stage} signed before {missing}")


def test_rev_1_order_resolved_only_when_the_stage_signs_again_in_order() -> None:
    c = district_case()
    f = only(c.add(c.sign(S.DEPUTY_HEAD)), "REV-1")
    assert c.add(c.sign(S.SECTION_HEAD)).resolutions == ()  # late, but the deputy went first
    again = c.sign(S.DEPUTY_HEAD)
    r = c.add(again)
    assert [(x.finding_id, x.resolved_by.event_id) for x in r.resolutions] == [
        (f.finding_id, again.event_id)
    ]


def test_rev_1_signature_stating_only_some_grounds() -> None:
    c = district_case()
    s = c.sign(S.SECTION_HEAD, grounds=(ReviewGround.POLITICAL, ReviewGround.LEGAL))
    f = only(c.add(s), "REV-1")
    assert f.severity is Severity.WARNING
    assert f.finding_id == f"REV-1_grounds_{s.event_id}"
    assert f.message_en.endswith(
        "does not cover: confidentiality, policy, public_opinion, wording"
    )
    r = c.add(c.sign(S.SECTION_HEAD))
    assert [x.finding_id for x in r.resolutions] == [f.finding_id]


def test_rev_1_signature_stating_no_grounds_attests_the_whole_review() -> None:
    c = district_case()
    assert c.add(c.sign(S.SECTION_HEAD, grounds=())).findings == ()


# ── REV-2: the news office ───────────────────────────────────────────────────────────────────


def test_rev_2_kept_news_office_after_the_three_heads() -> None:
    c = district_case()
    c.add(*c.chain(DISTRICT_CHAIN[:3]))
    assert c.add(c.sign(S.NEWS_OFFICE)).findings == ()


def test_rev_2_news_office_before_the_principal_head() -> None:
    c = district_case()
    c.add(*c.chain((S.SECTION_HEAD, S.DEPUTY_HEAD)))
    s = c.sign(S.NEWS_OFFICE)
    f = only(c.add(s), "REV-2")
    assert f.finding_id == f"REV-2_order_{s.event_id}"
    assert f.message_en.startswith("news_office signed before principal_head")


# ── REV-3: leaders' sign-off and 退文 ─────────────────────────────────────────────────────────


def test_rev_3_kept_sign_off_after_the_news_office_on_a_complete_submission() -> None:
    c = district_case()
    c.add(*c.chain(DISTRICT_CHAIN[:4]))
    assert c.add(c.sign(S.LEADERS_SIGN_OFF)).findings == ()


def test_rev_3_sign_off_before_the_news_office() -> None:
    c = district_case()
    c.add(*c.chain(DISTRICT_CHAIN[:3]))
    s = c.sign(S.LEADERS_SIGN_OFF)
    f = only(c.add(s), "REV-3")
    assert f.finding_id == f"REV-3_order_{s.event_id}"
    assert "news_office" in f.message_en


def test_rev_3_sign_off_of_an_incomplete_submission_instead_of_a_return() -> None:
    c = Case()
    c.add(c.district_draft(plan_=None))  # SYNC-1 already
    c.add(*c.chain(DISTRICT_CHAIN[:4]))
    s = c.sign(S.LEADERS_SIGN_OFF)
    f = only(c.add(s), "REV-3")
    assert f.severity is Severity.VIOLATION
    assert f.finding_id == f"REV-3_incomplete_{s.event_id}"
    c.add(c.returned("plan"))
    c.add(c.resubmit(plan()))
    r = c.add(c.sign(S.LEADERS_SIGN_OFF))
    assert r.findings == ()
    assert [x.finding_id for x in r.resolutions] == [f.finding_id]


def test_rev_3_sign_off_of_a_returned_submission_before_resubmission() -> None:
    c = district_case()
    c.add(*c.chain(DISTRICT_CHAIN[:4]))
    ret = c.returned("materials")
    c.add(ret)
    s = c.sign(S.LEADERS_SIGN_OFF)
    f = only(c.add(s), "REV-3")
    assert f.finding_id == f"REV-3_returned_{s.event_id}"
    assert evidence_ids(f) == [s.event_id, ret.event_id]
    assert f.evidence[1].sequence == c.log.sequence_of(ret.event_id)


def test_rev_3_kept_return_resubmission_then_sign_off() -> None:
    c = district_case()
    c.add(*c.chain(DISTRICT_CHAIN[:4]))
    c.add(c.returned("materials"), c.resubmit(materials=(material("m2", Form.CHART),)))
    assert c.add(c.sign(S.LEADERS_SIGN_OFF)).findings == ()
    assert c.add(c.issued(), c.published("m2", Form.CHART)).findings == ()
    assert c.log.findings() == []


def test_rev_3_a_return_voids_the_sign_off_until_signed_again() -> None:
    c = district_case()
    c.add(*c.chain(DISTRICT_CHAIN))
    c.add(c.returned("plan"), c.resubmit())
    f = only(c.add(c.issued()), "REV-5")
    assert f.message_en.endswith("missing: leaders_sign_off")


# ── REV-4: department documents ──────────────────────────────────────────────────────────────


def test_rev_4_kept_department_chain_then_the_department_publishes() -> None:
    c = department_case()
    c.add(*c.chain(DEPARTMENT_CHAIN))
    assert c.add(c.issued(), c.published()).findings == ()
    assert c.log.findings() == []


def test_rev_4_heads_out_of_order_on_a_department_document() -> None:
    c = department_case()
    s = c.sign(S.DEPUTY_HEAD)
    f = only(c.add(s), "REV-4")  # REV-4, not REV-1: the chain depends on the issuer
    assert f.finding_id == f"REV-4_order_{s.event_id}"


def test_rev_4_interpretation_unit_before_the_three_heads() -> None:
    c = department_case()
    c.add(c.sign(S.SECTION_HEAD))
    s = c.sign(S.INTERPRETATION_UNIT)
    f = only(c.add(s), "REV-4")
    assert f.message_en.startswith("interpretation_unit signed before deputy_head, principal_head")


def test_rev_4_grounds_on_a_department_document() -> None:
    c = department_case()
    f = only(c.add(c.sign(S.SECTION_HEAD, grounds=(ReviewGround.WORDING,))), "REV-4")
    assert f.finding_id.startswith("REV-4_grounds_")


def test_rev_4_joint_documents_take_the_department_chain() -> None:
    c = Case()
    c.add(c.draft(issuer=Issuer(kind=IssuerKind.JOINT, lead="drc", co_issuers=("finance",))))
    c.add(*c.chain(DEPARTMENT_CHAIN))
    assert c.add(c.issued()).findings == ()


def test_rev_4_district_stages_on_a_department_document_are_ignored() -> None:
    c = department_case()
    assert c.add(c.sign(S.NEWS_OFFICE), c.sign(S.LEADERS_SIGN_OFF)).findings == ()
    assert c.log.findings() == []


def test_rev_1_interpretation_unit_on_a_district_document_is_ignored() -> None:
    c = district_case()
    assert c.add(c.sign(S.INTERPRETATION_UNIT)).findings == ()


# ── REV-5: nothing unreviewed is published ───────────────────────────────────────────────────


def test_rev_5_kept_publication_after_the_chain() -> None:
    c = Case().reviewed()
    assert c.add(c.issued(), c.published(), c.published(form=Form.TEXT)).findings == ()


def test_rev_5_policy_issued_before_the_chain_is_complete() -> None:
    c = department_case()
    signed = c.chain(DEPARTMENT_CHAIN[:3])
    c.add(*signed)
    issued = c.issued()
    f = only(c.add(issued), "REV-5")
    assert f.severity is Severity.VIOLATION
    assert f.finding_id == f"REV-5_unreviewed_{issued.event_id}"
    assert evidence_ids(f) == [issued.event_id, *(s.event_id for s in signed)]
    assert [e.sequence for e in f.evidence[1:]] == [
        c.log.sequence_of(s.event_id) for s in signed
    ]
    assert f.message_en == (
        "the policy document published before the review was complete; "
        "missing: interpretation_unit"
    )


def test_rev_5_cites_signatures_folded_before_their_append_by_their_sequence() -> None:
    """Issue 13, defect 3: the intake folds each fact before the log places it and confirms
    the positions after the append; REV-5 judged later cites those signatures with them."""
    c = department_case()
    facts = CaseFacts.fold([(1, c.draft())])
    signed = c.chain(DEPARTMENT_CHAIN[:2])
    for s in signed:
        facts.apply(None, s)  # tentatively, as the intake does
    facts.confirm({s.event_id: seq for s, seq in zip(signed, (7, 8), strict=True)})
    issued = c.issued()
    [f] = [x for x in judge(facts, None, issued).findings if x.rule_id == "REV-5"]
    assert [(e.event_id, e.sequence) for e in f.evidence] == [
        (issued.event_id, None), (signed[0].event_id, 7), (signed[1].event_id, 8)
    ]


def test_rev_5_material_published_before_the_chain_is_never_resolved() -> None:
    c = district_case()
    p = c.published()
    f = only(c.add(p), "REV-5")
    assert "missing: section_head, deputy_head, principal_head, news_office" in f.message_en
    for stage in DISTRICT_CHAIN:
        assert c.add(c.sign(stage)).resolutions == ()
    assert f.finding_id in c.open


def test_rev_5_material_that_was_never_submitted_for_review() -> None:
    c = Case().reviewed()
    p = c.published("m-video", Form.AUDIO_VIDEO)
    f = only(c.add(p), "REV-5")
    assert f.finding_id == f"REV-5_material_{p.event_id}"
    assert "m-video" in f.message_en


def test_rev_5_material_changed_after_review_needs_a_new_signature() -> None:
    c = Case().reviewed()
    c.add(c.resubmit(materials=(material("m1", audience="全体市民"),)))
    assert rule_ids(c.add(c.published("m1"))) == ["REV-5"]
    c.add(c.sign(S.INTERPRETATION_UNIT))  # the last stage signs what is on the case now
    assert c.add(c.published("m1")).findings == ()
