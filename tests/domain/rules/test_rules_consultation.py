"""QA-3 (一号答, 一网答, 一站式) and QA-4 (answer from the library at once, or refer to the
drafting unit); QA-4's 5 working days belong to the deadline service."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime

import pytest
from rulecases import Case, evidence_ids, only, rule_ids

from domain.rules import ruleset
from domain.rules.ruleset import SHANGHAI, YUZHONG_2021
from events.catalogue import ConsultationChannel, Issuer, IssuerKind, Severity


def asked(received_by: str = "gov_services_office", department: str = "drc") -> Case:
    c = Case(department=department)
    c.reviewed()
    c.add(c.issued(), c.received("q1", received_by=received_by))
    return c


# ── QA-3 ─────────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("channel", list(ConsultationChannel))
def test_qa_3_kept_on_each_channel_of_the_2021_rules(channel: ConsultationChannel) -> None:
    c = Case()
    c.reviewed()
    assert c.add(c.received("q1", channel=channel)).findings == ()


def test_qa_3_channel_a_revised_rule_set_no_longer_names(monkeypatch: pytest.MonkeyPatch) -> None:
    revised = dataclasses.replace(
        YUZHONG_2021,
        name="yuzhong-2027",
        effective_from=date(2027, 1, 1),
        consultation_channels=frozenset(
            {ConsultationChannel.HOTLINE, ConsultationChannel.WEBSITE}
        ),
    )
    monkeypatch.setattr(ruleset, "RULE_SETS", (YUZHONG_2021, revised))
    c = Case()
    c.reviewed()
    before = c.received("q1", channel=ConsultationChannel.SERVICE_WINDOW)
    assert c.add(before).findings == ()  # 2026: judged by the 2021 rules
    after = c.received(channel=ConsultationChannel.SERVICE_WINDOW, consultation_id="q2")
    after = after.model_copy(update={"occurred_at": datetime(2027, 1, 4, 9, tzinfo=SHANGHAI)})
    f = only(c.add(after), "QA-3")
    assert f.rule_set == "yuzhong-2027"
    assert f.severity is Severity.WARNING
    assert evidence_ids(f) == [after.event_id]


# ── QA-4 ─────────────────────────────────────────────────────────────────────────────────────


def test_qa_4_kept_instant_answer_from_the_library() -> None:
    c = asked()
    assert c.add(c.answered(from_library=True, instant=True)).findings == ()


def test_qa_4_kept_instant_answer_not_in_the_library() -> None:
    c = asked()
    assert c.add(c.answered(from_library=False, instant=True)).findings == ()


def test_qa_4_kept_referred_to_the_drafting_unit_which_answers() -> None:
    c = asked()
    assert c.add(c.referred("q1", to="drc")).findings == ()
    assert c.add(c.answered(from_library=False, instant=False, by_drafting_unit=True)).findings == ()


def test_qa_4_kept_drafting_unit_answering_what_it_received_itself() -> None:
    c = asked(received_by="drc")
    assert c.add(c.answered(from_library=False, instant=False)).findings == ()


def test_qa_4_referred_to_someone_other_than_the_drafting_unit() -> None:
    c = asked()
    ref = c.referred("q1", to="finance")
    f = only(c.add(ref), "QA-4")
    assert f.severity is Severity.VIOLATION
    assert f.finding_id == f"QA-4_referral_{ref.event_id}"
    assert "finance" in f.message_en and "drc" in f.message_en
    again = c.referred("q1", to="drc")
    r = c.add(again)
    assert [(x.finding_id, x.resolved_by.event_id) for x in r.resolutions] == [
        (f.finding_id, again.event_id)
    ]


def test_qa_4_joint_document_referral_goes_to_the_lead_not_a_co_issuer() -> None:
    c = Case()
    c.add(c.draft(issuer=Issuer(kind=IssuerKind.JOINT, lead="drc", co_issuers=("finance",))))
    c.add(c.received("q1"))
    assert rule_ids(c.add(c.referred("q1", to="finance"))) == ["QA-4"]


def test_qa_4_answered_later_without_a_referral_to_the_drafting_unit() -> None:
    c = asked()
    a = c.answered(from_library=False, instant=False)
    f = only(c.add(a), "QA-4")
    assert f.severity is Severity.VIOLATION
    assert f.finding_id == f"QA-4_not-referred_{a.event_id}"
    received = c.facts.consultations["q1"].received
    assert evidence_ids(f) == [a.event_id, received.event_id]
    assert f.evidence[1].sequence == received.sequence


def test_qa_4_wrong_referral_does_not_count_as_a_referral() -> None:
    c = asked()
    c.add(c.referred("q1", to="finance"))
    j = c.add(c.answered(from_library=False, instant=False))
    assert [f.finding_id.split("_")[1] for f in j.findings] == ["not-referred"]


def test_qa_4_library_answer_not_given_at_once() -> None:
    c = asked(received_by="drc")
    a = c.answered(from_library=True, instant=False)
    f = only(c.add(a), "QA-4")
    assert f.severity is Severity.WARNING
    assert f.finding_id == f"QA-4_not-at-once_{a.event_id}"


def test_qa_4_referred_question_answered_by_someone_else() -> None:
    c = asked()
    ref = c.referred("q1", to="drc")
    c.add(ref)
    a = c.answered(from_library=False, instant=False, by_drafting_unit=False)
    f = only(c.add(a), "QA-4")
    assert f.severity is Severity.WARNING
    assert f.finding_id == f"QA-4_not-drafting-unit_{a.event_id}"
    assert evidence_ids(f) == [a.event_id, ref.event_id]
