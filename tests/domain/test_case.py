"""The case aggregate: what can happen on a case, and recognising an event sent twice."""

from __future__ import annotations

import pytest

import factories as f
from domain.case import Case, check_new_case
from events.catalogue import Event
from events.codec import decode
from events.outcomes import Reason, Rejection


def _e(event: dict[str, object]) -> Event:
    return decode(f.dumps(event))


def test_a_case_is_rebuilt_from_its_history_with_the_log_positions() -> None:
    opened, asked = _e(f.draft("K-1")), _e(f.consultation("K-1", "q1"))
    case = Case.rebuild([(3, opened), (9, asked)])
    assert case is not None
    assert (case.case_id, case.department, case.kind, case.last_sequence) == (
        "K-1",
        "drc",
        "policy",
        9,
    )
    assert case.version == 2
    earlier = case.earlier(asked)
    assert earlier is not None and earlier.sequence == 9
    assert Case.rebuild([]) is None


def test_only_an_opening_event_starts_a_case() -> None:
    check_new_case(_e(f.draft("K-2")))
    with pytest.raises(Rejection) as caught:
        check_new_case(_e(f.issued("K-2")))
    assert caught.value.reason is Reason.UNKNOWN_CASE


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (f.draft("K-3"), Reason.CASE_EXISTS),
        (f.answer("K-3", "q-unknown"), Reason.UNKNOWN_REFERENCE),
        (f.issued("K-3", department="finance"), Reason.CASE_DEPARTMENT_MISMATCH),
        (
            f.envelope(
                "InspectionResultsPublished",
                "K-3",
                url="https://www.cqyz.gov.cn/x",
                published_on="2026-07-01",
            ),
            Reason.WRONG_CASE_KIND,
        ),
    ],
)
def test_impossible_events_are_refused(event: dict[str, object], reason: Reason) -> None:
    case = Case.rebuild([(1, _e(f.draft("K-3")))])
    assert case is not None
    with pytest.raises(Rejection) as caught:
        case.check(_e(event))
    assert caught.value.reason is reason


def test_an_answer_to_a_received_consultation_is_possible() -> None:
    case = Case.rebuild([(1, _e(f.draft("K-4"))), (2, _e(f.consultation("K-4", "q1")))])
    assert case is not None
    case.check(_e(f.answer("K-4", "q1")))


def test_the_same_event_id_with_other_content_is_a_conflict() -> None:
    opened = f.draft("K-5")
    case = Case.rebuild([(1, _e(opened))])
    assert case is not None
    with pytest.raises(Rejection) as caught:
        case.earlier(_e({**opened, "occurred_at": "2026-07-07T09:30:00+08:00"}))
    assert caught.value.reason is Reason.EVENT_ID_CONFLICT
