"""Who may say what (权限): a source speaks for its own department, with a few district roles.

The subject a message arrives on names its source department and system; NATS permissions pin a
source to its subject. This module decides whether the event inside may come from there.
"""

from __future__ import annotations

from events.catalogue import SYSTEM_TYPES, Event, OpinionDetected, ReviewSigned
from events.organs import Organs
from events.outcomes import Reason, Rejection
from events.roles import ACTS_FOR_ANY_DEPARTMENT, MONITOR, ONLY_GOV_OFFICE, STAGE_OWNER
from events.streams import IntakeAddress


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
