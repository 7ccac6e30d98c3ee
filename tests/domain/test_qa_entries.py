"""Q&A entries on the case (QA-1): published once, revised and withdrawn only while published;
a policy repealed only once issued; a department writes only its own entries."""

from __future__ import annotations

import pytest

import factories as f
from domain.authorisation import authorise
from domain.case import Case
from events.catalogue import Event
from events.codec import decode
from events.organs import load_organs
from events.outcomes import Reason, Rejection
from events.streams import IntakeAddress


def _e(event: dict[str, object]) -> Event:
    return decode(f.dumps(event))


def _case(*events: dict[str, object]) -> Case:
    case = Case.rebuild([(i, _e(e)) for i, e in enumerate([f.draft("Q-1"), *events], start=1)])
    assert case is not None
    return case


def _refused(case: Case, event: dict[str, object]) -> Reason:
    with pytest.raises(Rejection) as caught:
        case.check(_e(event))
    return caught.value.reason


def test_qa1_an_entry_is_published_revised_and_withdrawn_on_its_policy_case() -> None:
    case = _case()
    case.check(_e(f.qa_entry("Q-1", "e1")))
    case.record(None, _e(f.qa_entry("Q-1", "e1")))
    case.check(_e(f.qa_entry("Q-1", "e1", type_="QAEntryRevised", answer="新的答复")))
    case.check(_e(f.withdrawn("Q-1", "e1")))


def test_qa1_revising_or_withdrawing_an_entry_never_published_is_an_unknown_reference() -> None:
    case = _case(f.qa_entry("Q-1", "e1"))
    revised = f.qa_entry("Q-1", "e2", type_="QAEntryRevised")
    assert _refused(case, revised) is Reason.UNKNOWN_REFERENCE
    assert _refused(case, f.withdrawn("Q-1", "e2")) is Reason.UNKNOWN_REFERENCE


def test_qa1_a_withdrawn_entry_can_be_neither_revised_nor_withdrawn_again() -> None:
    case = _case(f.qa_entry("Q-1", "e1"), f.withdrawn("Q-1", "e1"))
    assert _refused(case, f.qa_entry("Q-1", "e1", type_="QAEntryRevised")) is (
        Reason.UNKNOWN_REFERENCE
    )
    assert _refused(case, f.withdrawn("Q-1", "e1")) is Reason.UNKNOWN_REFERENCE


def test_qa1_an_entry_id_is_published_once_even_after_its_withdrawal() -> None:
    """One ID names one entry for as long as the log lives: what a consultation answered from
    it, or a search offered, stays traceable. A new wording is a revision."""
    case = _case(f.qa_entry("Q-1", "e1"))
    assert _refused(case, f.qa_entry("Q-1", "e1", question="另一个问题")) is Reason.ENTRY_EXISTS
    case.record(None, _e(f.withdrawn("Q-1", "e1")))
    assert _refused(case, f.qa_entry("Q-1", "e1")) is Reason.ENTRY_EXISTS
    case.check(_e(f.qa_entry("Q-1", "e2")))


def test_qa1_the_same_entry_published_twice_in_one_batch_is_refused_the_second_time() -> None:
    case = _case()
    first = _e(f.qa_entry("Q-1", "e1"))
    case.check(first)
    case.record(None, first)
    assert _refused(case, f.qa_entry("Q-1", "e1")) is Reason.ENTRY_EXISTS


def test_only_an_issued_policy_is_repealed() -> None:
    assert _refused(_case(), f.repealed("Q-1")) is Reason.UNKNOWN_REFERENCE
    _case(f.issued("Q-1")).check(_e(f.repealed("Q-1")))


def test_entries_are_on_policy_cases_only() -> None:
    training = f.envelope("TrainingHeld", "T-9", "gov_office", title="培训", held_on="2026-07-01")
    case = Case.rebuild([(1, _e(training))])
    assert case is not None
    entry = f.qa_entry("T-9", "e1", department="gov_office")
    assert _refused(case, entry) is Reason.WRONG_CASE_KIND


# ── authorisation: a department writes only its own entries ──────────────────────────────────


def _authorise(event: dict[str, object], source: str) -> None:
    address = IntakeAddress(0, source, "oa", str(event["case_id"]))
    authorise(_e(event), address, load_organs())


@pytest.mark.parametrize(
    "event",
    [
        f.qa_entry("A-1", "e1", department="housing"),
        f.qa_entry("A-1", "e1", department="housing", type_="QAEntryRevised"),
        f.withdrawn("A-1", "e1", department="housing"),
        f.repealed("A-1", department="housing"),
    ],
    ids=lambda e: str(e["type"]),
)
def test_qa1_a_department_writes_its_own_entries_and_no_one_elses(
    event: dict[str, object],
) -> None:
    _authorise(event, "housing")
    for other in ("finance", "drc", "gov_services_office", "cyberspace_office", "news_office"):
        with pytest.raises(Rejection) as caught:
            _authorise(event, other)
        assert caught.value.reason is Reason.DEPARTMENT_MISMATCH, other


def test_the_government_office_may_record_the_repeal_of_any_departments_policy() -> None:
    """规范性文件清理: the government office publishes which policies are repealed."""
    _authorise(f.repealed("A-1", department="housing"), "gov_office")
    with pytest.raises(Rejection) as caught:
        _authorise(f.qa_entry("A-1", "e1", department="housing"), "gov_office")
    assert caught.value.reason is Reason.DEPARTMENT_MISMATCH
