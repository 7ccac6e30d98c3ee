"""Judging one event against the rules (判定): the engine's entry point.

The intake, for each event on a policy case:

1. ``judgement = judge(facts, None, event)`` — before appending; ``facts`` is the case as the
   log holds it, so the event being judged is named in evidence by its event ID alone;
2. appends ``event`` followed by ``derived_events(event, judgement)`` in one atomic batch;
3. folds all of them, in that order, into ``facts`` with ``facts.apply(seq, e)``.

Facts are never refused for breaking a rule: a judgement only adds findings next to the fact
(and resolutions of earlier findings the fact mends). Judging is deterministic — same facts,
same event, same judgement — so a replay of the log reproduces every finding exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from domain.rules import consultation, opinion, publication, review, scope, submission
from domain.rules.base import Context, Rule
from domain.rules.facts import CaseFacts
from domain.rules.ruleset import NoRuleSet, ruleset_at
from events.catalogue import (
    SYSTEM_TYPES,
    DraftSubmitted,
    Event,
    FindingRecorded,
    FindingRecordedData,
    FindingResolved,
    FindingResolvedData,
)
from events.envelope import Actor

RULES: Final[tuple[Rule, ...]] = (
    *scope.RULES,
    *submission.RULES,
    *review.RULES,
    *publication.RULES,
    *consultation.RULES,
    *opinion.RULES,
)
"""Every rule judged on arrival of an event, in the order of RULES.md."""

RULE_IDS: Final[frozenset[str]] = frozenset(r.rule_id for r in RULES)

ENGINE: Final = Actor(id="jiedu-rules", name="政策解读规则引擎 (rules engine)")
SOURCE_SYSTEM: Final = "jiedu"


@dataclass(frozen=True)
class Judgement:
    """What one event adds to its case beyond itself: new findings and resolved findings."""

    findings: tuple[FindingRecordedData, ...] = ()
    resolutions: tuple[FindingResolvedData, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.findings or self.resolutions)


NOTHING: Final = Judgement()


def judge(facts: CaseFacts, seq: int | None, event: Event) -> Judgement:
    """Judge ``event`` against the case's ``facts`` as they stood before it.

    ``seq`` is the event's log sequence, or None while the log has not placed it. Events on
    training and inspection cases, derived events, and events from before the first known rule
    set (see ``ruleset_at``) yield no findings. Only the interpretation duties are skipped for
    out-of-scope cases; SCOPE-1..3 and WHO-1 judge every policy case.
    """
    if event.type in SYSTEM_TYPES or event.CASE_KIND != "policy":
        return NOTHING
    if facts.opened is None and not isinstance(event, DraftSubmitted):
        return NOTHING  # the intake refuses such an event before it is judged
    try:
        rules = ruleset_at(event.occurred_at)
    except NoRuleSet:
        return NOTHING
    ctx = Context(facts=facts, event=event, seq=seq, rules=rules)
    findings: dict[str, FindingRecordedData] = {}
    resolutions: dict[str, FindingResolvedData] = {}
    for rule in RULES:
        if rule.in_scope_only and not ctx.in_scope:
            continue
        for outcome in rule.check(ctx):
            if isinstance(outcome, FindingRecordedData):
                if outcome.finding_id not in facts.finding_ids:
                    findings.setdefault(outcome.finding_id, outcome)
            else:
                resolutions.setdefault(outcome.finding_id, outcome)
    return Judgement(tuple(findings.values()), tuple(resolutions.values()))


def derived_events(
    fact: Event, judgement: Judgement
) -> list[FindingRecorded | FindingResolved]:
    """The FindingRecorded / FindingResolved events to append right after ``fact``.

    Their event IDs derive from the finding IDs and their time is the fact's, so the same fact
    always yields byte-identical derived events (a redelivered fact dedupes them too).
    """
    out: list[FindingRecorded | FindingResolved] = []
    for f in judgement.findings:
        out.append(
            FindingRecorded(
                event_id=f.finding_id, case_id=fact.case_id, department=fact.department,
                actor=ENGINE, source_system=SOURCE_SYSTEM, occurred_at=fact.occurred_at,
                correlation_id=fact.correlation_id, causation_id=fact.event_id, data=f,
            )
        )
    for r in judgement.resolutions:
        out.append(
            FindingResolved(
                event_id=f"{r.finding_id}-resolved", case_id=fact.case_id,
                department=fact.department, actor=ENGINE, source_system=SOURCE_SYSTEM,
                occurred_at=fact.occurred_at, correlation_id=fact.correlation_id,
                causation_id=fact.event_id, data=r,
            )
        )
    return out
