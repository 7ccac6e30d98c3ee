"""Who may send what for whom (权限): the district roles of RULES.md, as part of the contract.

A source speaks for its own department: the subject it publishes on names its department, and
an event's `department` (the case's accountable department) must be that one — except for the
offices below, which record some types on any organ's case. `domain.authorisation` enforces
these tables; `events.contract` writes them into the published schemas.
"""

from __future__ import annotations

MONITOR = ("cyberspace_office", "monitor")
"""The cyberspace office's monitoring feed (source department, source system): the only source
of opinion events (OP-5)."""

ACTS_FOR_ANY_DEPARTMENT: dict[str, frozenset[str]] = {
    "gov_office": frozenset(
        {
            "ReviewSigned",
            "SubmissionReturned",
            "TrainingHeld",
            "InspectionConducted",
            "InspectionResultsPublished",
            "PolicyRepealed",
        }
    ),
    "news_office": frozenset({"ReviewSigned"}),
    "cyberspace_office": frozenset({"OpinionDetected", "MediaInterpretationReported"}),
    "gov_services_office": frozenset(
        {"ConsultationReceived", "ConsultationAnswered", "ConsultationReferred"}
    ),
    "drc": frozenset({"ConsultationAnswered"}),
}
"""The event types an office may record on another organ's case. `gov_services_office` runs
the 12345 hotline and the service windows (QA-3)."""

ROLE_NOTES: dict[str, str] = {
    "gov_services_office": ", which runs the 12345 hotline and the service windows",
    "drc": ", which keeps the district Q&A library",
}
"""What an office's role is, where its name does not say (for the contract's descriptions)."""

STAGE_OWNER: dict[str, str] = {
    "news_office": "news_office",  # REV-2: the news office's review
    "leaders_sign_off": "gov_office",  # REV-3: the government office puts it to the leaders
}
"""Review stages (`ReviewSigned.data.stage`) only one office may sign."""

ONLY_GOV_OFFICE = frozenset(
    {
        "SubmissionReturned",
        "TrainingHeld",
        "InspectionConducted",
        "InspectionResultsPublished",
        "CalendarYearConfirmed",
    }
)
"""Supervision acts (REV-3, SUP-1) of the government office alone, and its confirmation of a
calendar year (the State Council's notice, for the working-day clocks)."""
