"""Events on one policy case at Shanghai wall-clock times, for the deadline tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import factories as f
from domain.calendar import SHANGHAI

CASE = "YZ-1"


def at(text: str) -> datetime:
    """A Shanghai wall-clock time, e.g. ``at("2026-07-06 09:30")``."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def end_of(day: str) -> datetime:
    return at(f"{day} 23:59:59")


def ev(type_: str, when: str = "2026-07-06 09:30", case_id: str = CASE, **data: Any) -> dict[str, Any]:
    e = f.envelope(type_, case_id, **data)
    e["occurred_at"] = at(when).isoformat()
    return e


def draft(scope: str = "normative", when: str = "2026-07-01 09:00") -> dict[str, Any]:
    e = f.draft(CASE, scope=scope)
    e["occurred_at"] = at(when).isoformat()
    return e


def issued(day: str = "2026-07-06", when: str | None = None) -> dict[str, Any]:
    e = ev("PolicyIssued", when or f"{day} 16:00", document_number="渝中发改发〔2026〕7号",
           issue_date=day)
    return e


def published(form: str = "text", channel: str = "government_website",
              when: str = "2026-07-20 10:00") -> dict[str, Any]:
    return ev("MaterialPublished", when, material_id=f"m-{form}-{channel}", form=form,
              channel=channel, published_on=when[:10])


def referred(cid: str = "RX-1", when: str = "2026-07-10 10:00") -> dict[str, Any]:
    return ev("ConsultationReferred", when, consultation_id=cid, referred_to="drc")


def answered(cid: str = "RX-1", when: str = "2026-07-16 10:00", by_unit: bool = True) -> dict[str, Any]:
    return ev("ConsultationAnswered", when, consultation_id=cid, answer="见解读", from_library=False,
              instant=False, by_drafting_unit=by_unit)


def detected(oid: str = "YQ-1", severity: str = "major", when: str = "2026-07-06 10:00") -> dict[str, Any]:
    return ev("OpinionDetected", when, opinion_id=oid, severity=severity, kind="misunderstanding",
              summary="误读", detected_at=at(when).isoformat())


def response(oid: str = "YQ-1", when: str = "2026-07-06 20:00") -> dict[str, Any]:
    return ev("ResponseIssued", when, opinion_id=oid, kind="clarification")


def training(held_on: str, case_id: str = "TRAIN-1") -> dict[str, Any]:
    e = f.envelope("TrainingHeld", case_id, "gov_office", title="政策解读业务培训",
                   held_on=held_on, participants=["drc"])
    e["occurred_at"] = at(f"{held_on} 15:00").isoformat()
    return e


def inspection(conducted_on: str, quarter: str, case_id: str = "INSP-1") -> dict[str, Any]:
    e = f.envelope("InspectionConducted", case_id, "gov_office", quarter=quarter,
                   conducted_on=conducted_on, departments=["drc"])
    e["occurred_at"] = at(f"{conducted_on} 15:00").isoformat()
    return e
