"""Findings (检查发现): one row per finding — which rule a case broke, on what evidence, and whether
a later event has mended it.

Where rows come from:

- FindingRecorded (the rules engine, next to the fact that breaks a rule) opens a row with
  status ``open``: rule ID, the rule set it was judged by, severity, evidence, the Chinese and
  English message, the fact that broke the rule (the event's ``causation_id``), and the
  finding event's own time and log sequence.
- FindingResolved (next to the later fact that mends it: a late signature, a correction, a
  resubmission) turns the row ``resolved`` and names that fact (``resolved_by``) with the
  resolution event's time and sequence. The first resolution stands; a resolution of a finding
  this projection never saw recorded is ignored (the intake refuses such an event anyway).
- DeadlineBreached (the deadline service: a clock ran out with its duty unmet, e.g. PUB-2's 20
  working days) counts as a finding of the clock's rule, keyed by its clock ID, severity
  ``violation``, no rule set (the event does not carry one). Evidence comes from the clock's
  own case: its trigger and the breach (the log position where the duty was found unmet); for
  SUP-1's period duties, whose trigger is another case's fact, the breach alone. A duty
  met late leaves it ``open``: lateness is not undone (as REV-5 is never resolved by a review
  after publication). A DeadlineMet that shows the duty met *on time* (its time, the meeting
  fact's, at or before the due time) resolves it, naming the meeting fact: the breach was
  logged before that fact reached the log (a source reporting late), and the clock itself
  reads ``met_on_time`` in the deadline read model.

Keyed by (case, finding ID): finding IDs derive from event IDs, which the intake dedupes per
case, so two cases could in principle produce the same finding ID.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from domain.calendar import SHANGHAI
from domain.clocks import period_duty
from events.catalogue import (
    DeadlineBreached,
    DeadlineMet,
    Event,
    FindingRecorded,
    FindingResolved,
    Severity,
)
from projections.base import Key, Projection, Row, Rows, Table, Type

OPEN: Final = "open"
RESOLVED: Final = "resolved"
STATUSES: Final = (OPEN, RESOLVED)
SEVERITIES: Final = tuple(str(s) for s in Severity)

FINDINGS = Table(
    "findings",
    key=("case_id", "finding_id"),
    columns={
        "finding_id": Type.TEXT,  # rule engine: <rule>_<topic>_<event>; deadlines: the clock ID
        "case_id": Type.TEXT,
        "department": Type.TEXT,  # accountable department (责任单位, WHO-1)
        "rule_id": Type.TEXT,
        "rule_set": Type.TEXT,  # the rule set the fact was judged by; None for a breached clock
        "severity": Type.TEXT,  # warning | violation
        "status": Type.TEXT,  # open | resolved
        "recorded_at": Type.TIMESTAMP,  # occurred_at of the finding event (= the fact's)
        "recorded_seq": Type.INT,  # log sequence of the finding event
        "fact_event_id": Type.TEXT,  # the fact that broke the rule (causation_id)
        "evidence": Type.JSON,  # [{"event_id", "sequence"}, ...] as the finding names them
        "message_zh": Type.TEXT,
        "message_en": Type.TEXT,
        "resolved_by": Type.TEXT,  # event ID of the fact that mended it
        "resolved_seq": Type.INT,  # log sequence of the FindingResolved event
        "resolved_at": Type.TIMESTAMP,
    },
    indexes=(("department",), ("rule_id",), ("status",)),
)


def _recorded(e: FindingRecorded, seq: int) -> Row:
    d = e.data
    return {
        "finding_id": d.finding_id, "case_id": e.case_id, "department": e.department,
        "rule_id": d.rule_id, "rule_set": d.rule_set, "severity": str(d.severity),
        "status": OPEN, "recorded_at": e.occurred_at, "recorded_seq": seq,
        "fact_event_id": e.causation_id,
        "evidence": [x.model_dump(mode="json") for x in d.evidence],
        "message_zh": d.message_zh, "message_en": d.message_en,
    }


_DUTIES: Final = {
    "training": ("年度未开展政策解读业务培训", "no policy-interpretation training (TrainingHeld) in"),
    "inspection": ("未开展政策解读情况检查", "no inspection (InspectionConducted) conducted in"),
}
"""SUP-1's two duties of the government office, as a breach of each reads."""


def _breached(e: DeadlineBreached, seq: int) -> Row:
    """A clock ran out. Its evidence is on the clock's own case: the trigger that started the
    duty (PolicyIssued, ConsultationReferred, OpinionDetected) with the breach after it; a
    SUP-1 period duty has no fact of its own case before the breach (its trigger is the
    period's first fact on any case), so the breach event itself is its evidence."""
    d = e.data
    due = f"{d.due_at.astimezone(SHANGHAI):%Y-%m-%d %H:%M}" if d.due_at else "?"
    breach = {"event_id": e.event_id, "sequence": seq}
    if (period := period_duty(d.clock_id)) is not None:
        duty, name = period
        zh, en = _DUTIES[duty]
        fact, evidence = e.event_id, [breach]
        message_zh = f"SUP-1 {name}{zh}(期限 {due} 届满)"
        message_en = f"SUP-1: {en} {name} (the period ended {due}, Shanghai)"
    else:
        fact, evidence = e.causation_id or d.trigger.event_id, [
            d.trigger.model_dump(mode="json"), breach]
        message_zh = f"{d.rule_id} 期限({due})届满时未履行"
        message_en = f"{d.rule_id}: the duty was not met by its deadline ({due}, Shanghai)"
    return {
        "finding_id": d.clock_id, "case_id": e.case_id, "department": e.department,
        "rule_id": d.rule_id, "rule_set": None, "severity": str(Severity.VIOLATION),
        "status": OPEN, "recorded_at": e.occurred_at, "recorded_seq": seq,
        "fact_event_id": fact, "evidence": evidence,
        "message_zh": message_zh, "message_en": message_en,
    }


def _key(event: Event) -> Key | None:
    if isinstance(event, FindingRecorded | FindingResolved):
        return (event.case_id, event.data.finding_id)
    if isinstance(event, DeadlineBreached | DeadlineMet):
        return (event.case_id, event.data.clock_id)
    return None


def _mended_by(event: FindingResolved | DeadlineMet) -> str | None:
    """The event ID of the fact that mends the finding, if `event` resolves one."""
    if isinstance(event, FindingResolved):
        return event.data.resolved_by.event_id
    due, met_by = event.data.due_at, event.data.met_by
    if due is not None and event.occurred_at <= due:  # met on time (see the module docstring)
        return met_by.event_id if met_by else event.event_id
    return None


class Findings(Projection):
    """One row per finding in `findings`."""

    name = "findings"
    version = 2
    tables = (FINDINGS,)

    def touches(self, event: Event) -> Iterable[tuple[Table, Key]]:
        key = _key(event)
        return () if key is None else ((FINDINGS, key),)

    def apply(self, event: Event, seq: int, rows: Rows) -> None:
        key = _key(event)
        if key is None:
            return
        row = rows.get(FINDINGS, *key)
        if isinstance(event, FindingResolved | DeadlineMet):
            mended_by = _mended_by(event)
            if row is None or row["status"] == RESOLVED or mended_by is None:
                return
            row.update(
                status=RESOLVED, resolved_by=mended_by, resolved_seq=seq,
                resolved_at=event.occurred_at,
            )
            rows.put(FINDINGS, row)
        elif row is None:  # recorded once; a second recording (not possible live) changes nothing
            if isinstance(event, FindingRecorded):
                rows.put(FINDINGS, _recorded(event, seq))
            elif isinstance(event, DeadlineBreached):
                rows.put(FINDINGS, _breached(event, seq))


# ── reading: counts by rule and status ───────────────────────────────────────────────────────

FAMILIES: Final = ("SCOPE", "WHO", "SYNC", "PLAN", "MAT", "REV", "PUB", "QA", "OP", "SUP")
"""Rule families in the order of RULES.md, for listing rule IDs the way the catalogue does."""


def rule_order(rule_id: str) -> tuple[int, str, int]:
    """Sort key: RULES.md's family order, then the number (REV-2 before REV-10)."""
    family, _, number = rule_id.partition("-")
    rank = FAMILIES.index(family) if family in FAMILIES else len(FAMILIES)
    return (rank, family, int(number) if number.isdigit() else 0)


def tally(rows: Iterable[Row], *, by_department: bool = False) -> list[Row]:
    """Counts of findings by rule (and department) and status: one dict per group with
    `rule_id` (and `department`), `open`, `resolved` and `total`, in RULES.md order."""
    groups: dict[tuple[str, str], Row] = {}
    for r in rows:
        dept = r["department"] if by_department else ""
        group = groups.get((dept, r["rule_id"]))
        if group is None:
            group = {"department": dept} if by_department else {}
            group.update(rule_id=r["rule_id"], open=0, resolved=0, total=0)
            groups[(dept, r["rule_id"])] = group
        group[r["status"]] += 1
        group["total"] += 1
    return [groups[k] for k in sorted(groups, key=lambda k: (k[0], rule_order(k[1])))]
