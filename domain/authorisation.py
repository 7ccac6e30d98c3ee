"""Who may say what (权限): a source speaks for its own department, with a few district roles.

The subject a message arrives on names its source department and system; NATS permissions pin a
source to its subject. This module decides whether the event inside may come from there.
"""

from __future__ import annotations

from events.catalogue import SYSTEM_TYPES, Event, OpinionDetected, ReviewSigned, ReviewStage
from events.organs import Organs
from events.outcomes import Reason, Rejection
from events.streams import IntakeAddress

MONITOR = ("cyberspace_office", "monitor")
"""The cyberspace office's monitoring feed: the only source of opinion events (OP-5)."""

ACTS_FOR_ANY_DEPARTMENT: dict[str, frozenset[str]] = {
    "gov_office": frozenset(
        {
            "ReviewSigned",
            "SubmissionReturned",
            "TrainingHeld",
            "InspectionConducted",
            "InspectionResultsPublished",
        }
    ),
    "news_office": frozenset({"ReviewSigned"}),
    "cyberspace_office": frozenset({"OpinionDetected", "MediaInterpretationReported"}),
    "gov_services_office": frozenset(
        {"ConsultationReceived", "ConsultationAnswered", "ConsultationReferred"}
    ),
    "drc": frozenset({"ConsultationAnswered"}),
}
"""District roles of RULES.md: the event types an office may record on another organ's case."""

STAGE_OWNER: dict[ReviewStage, str] = {
    ReviewStage.NEWS_OFFICE: "news_office",  # REV-2
    ReviewStage.LEADERS_SIGN_OFF: "gov_office",  # REV-3
}
ONLY_GOV_OFFICE = frozenset(
    {
        "SubmissionReturned",
        "TrainingHeld",
        "InspectionConducted",
        "InspectionResultsPublished",
        "CalendarYearConfirmed",
    }
)


def authorise(event: Event, address: IntakeAddress, organs: Organs) -> None:
    """Raise `Rejection` unless the source named by `address` may emit `event`."""
    source = address.source_department
    if event.type in SYSTEM_TYPES:
        raise Rejection(Reason.RESERVED_TYPE, f"{event.type} is derived by Jiedu, not sent")
    if event.case_id != address.case_id:
        raise Rejection(
            Reason.CASE_MISMATCH, f"case {event.case_id} sent on the subject of {address.case_id}"
        )
    for code in (source, event.department):
        if code not in organs:
            raise Rejection(Reason.UNKNOWN_DEPARTMENT, f"{code} is not an organ of the district")
    if event.source_system != address.source_system:
        raise Rejection(
            Reason.SOURCE_MISMATCH,
            f"source_system {event.source_system} sent as {address.source_system}",
        )
    if isinstance(event, OpinionDetected) and (source, address.source_system) != MONITOR:
        raise Rejection(
            Reason.NOT_MONITOR, f"opinion events come from {'.'.join(MONITOR)}, not {source}"
        )
    owner = STAGE_OWNER.get(event.data.stage) if isinstance(event, ReviewSigned) else None
    if event.type in ONLY_GOV_OFFICE:
        owner = "gov_office"
    if owner is not None and source != owner:
        raise Rejection(Reason.ROLE_MISMATCH, f"only {owner} may record {event.type} here")
    if event.department != source and event.type not in ACTS_FOR_ANY_DEPARTMENT.get(
        source, frozenset()
    ):
        raise Rejection(
            Reason.DEPARTMENT_MISMATCH,
            f"{source} may not record {event.type} for {event.department}",
        )
