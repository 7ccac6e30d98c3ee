"""Who may say what: a source speaks for its own department; district offices have roles."""

from __future__ import annotations

import pytest

import factories as f
from domain.authorisation import authorise
from events.codec import decode
from events.organs import load_organs
from events.outcomes import Reason, Rejection
from events.streams import IntakeAddress


def _check(event: dict[str, object], department: str, system: str = "oa") -> None:
    authorise(
        decode(f.dumps(event)),
        IntakeAddress(0, department, system, str(event["case_id"])),
        load_organs(),
    )


def test_a_department_records_its_own_case() -> None:
    _check(f.draft("A-1", department="housing"), "housing")


def test_the_news_office_signs_its_stage_on_any_department_case() -> None:
    """REV-2."""
    signed = f.envelope("ReviewSigned", "A-1", "housing", stage="news_office", signer="王五")
    signed["source_system"] = "oa"
    _check(signed, "news_office")


def test_the_government_office_returns_a_submission_of_any_department() -> None:
    """REV-3 退文."""
    _check(f.envelope("SubmissionReturned", "A-1", "housing", missing=["解读方案"]), "gov_office")


def test_the_hotline_receives_consultations_for_any_department() -> None:
    """QA-3: 12345 is run by the government services office."""
    _check(f.consultation("A-1", "q1", department="housing"), "gov_services_office")


@pytest.mark.parametrize(
    ("event", "source", "reason"),
    [
        (f.draft("A-1", department="housing"), "finance", Reason.DEPARTMENT_MISMATCH),
        (
            f.envelope("ReviewSigned", "A-1", "housing", stage="leaders_sign_off", signer="x"),
            "housing",
            Reason.ROLE_MISMATCH,
        ),
        (
            f.envelope("ReviewSigned", "A-1", "housing", stage="news_office", signer="x"),
            "gov_office",
            Reason.ROLE_MISMATCH,
        ),
        (
            f.envelope("SubmissionReturned", "A-1", "housing", missing=["x"]),
            "housing",
            Reason.ROLE_MISMATCH,
        ),
        (
            f.envelope("TrainingHeld", "T-1", "housing", title="培训", held_on="2026-07-01"),
            "housing",
            Reason.ROLE_MISMATCH,
        ),
    ],
)
def test_roles_are_not_borrowed(event: dict[str, object], source: str, reason: Reason) -> None:
    with pytest.raises(Rejection) as caught:
        _check(event, source)
    assert caught.value.reason is reason


def test_only_the_monitor_of_the_cyberspace_office_emits_opinions() -> None:
    """OP-5: opinion events come from the cyberspace office's monitoring feed."""
    opinion = f.envelope(
        "OpinionDetected",
        "A-1",
        "housing",
        opinion_id="o1",
        severity="ordinary",
        kind="suggestion",
        summary="建议延长申报期",
        detected_at="2026-07-07T10:00:00+08:00",
    )
    opinion["source_system"] = "monitor"
    _check(opinion, "cyberspace_office", "monitor")
    for department, system in (("cyberspace_office", "oa"), ("housing", "monitor")):
        with pytest.raises(Rejection) as caught:
            _check({**opinion, "source_system": system}, department, system)
        assert caught.value.reason is Reason.NOT_MONITOR


def _confirmation(department: str) -> dict[str, object]:
    return f.envelope("CalendarYearConfirmed", "calendar-2027", department, year=2027,
                      notice="国办发明电〔2026〕X号", holidays=["2027-01-01"])


def test_only_the_government_office_confirms_a_calendar_year() -> None:
    """Issue 13: a calendar year counts for every department's deadlines (PUB-2, QA-4), so only
    区政府办公室 confirms one, for itself."""
    _check(_confirmation("gov_office"), "gov_office")
    with pytest.raises(Rejection) as caught:
        _check(_confirmation("drc"), "drc")
    assert caught.value.reason is Reason.ROLE_MISMATCH
    with pytest.raises(Rejection) as caught:
        _check(_confirmation("drc"), "gov_office")  # not on another organ's behalf either
    assert caught.value.reason is Reason.DEPARTMENT_MISMATCH
