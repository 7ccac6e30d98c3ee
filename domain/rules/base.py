"""What every rule is given (`Context`) and what it gives back (findings and resolutions).

A rule is a function ``Context -> Iterable[Outcome]``: it looks at the event being judged and
the case's facts *before* that event, and yields findings (a rule is not kept) and resolutions
(a later event mends an open finding). Finding IDs are deterministic — rule, topic and the ID
of the event that broke the rule — so a replay gives identical findings, and a later event can
name the finding it resolves by recomputing its ID from the facts.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from domain.rules.facts import CaseFacts
from domain.rules.ruleset import RuleSet
from events.catalogue import (
    DraftSubmitted,
    Event,
    Evidence,
    FindingRecordedData,
    FindingResolvedData,
    Issuer,
    Scope,
    Severity,
)

Outcome = FindingRecordedData | FindingResolvedData

_SAFE = re.compile(r"^[A-Za-z0-9_-]+$")
MAX_FINDING_ID = 100
"""Finding IDs stay well inside an event ID (128), so the intake may use them as event IDs of
the FindingRecorded events (and e.g. ``<finding_id>-resolved`` for the resolutions)."""


def finding_id(rule_id: str, topic: str, event_id: str) -> str:
    """``<rule>_<topic>_<event>``; hashed when that is too long for an event ID."""
    plain = f"{rule_id}_{topic}_{event_id}"
    if len(plain) <= MAX_FINDING_ID and _SAFE.match(plain):
        return plain
    digest = hashlib.blake2b(f"{topic}\x00{event_id}".encode(), digest_size=12).hexdigest()
    return f"{rule_id}_{digest}"


@dataclass(frozen=True)
class Context:
    """The event being judged, the case's facts before it, and the rule set in force."""

    facts: CaseFacts
    event: Event
    seq: int | None
    rules: RuleSet

    @property
    def here(self) -> Evidence:
        """Evidence for the event being judged (no sequence while the log has not placed it)."""
        return Evidence(event_id=self.event.event_id, sequence=self.seq)

    @property
    def scope(self) -> Scope | None:
        """The case's scope; for the opening event, the scope it declares."""
        if isinstance(self.event, DraftSubmitted):
            return self.event.data.scope
        return self.facts.scope

    @property
    def issuer(self) -> Issuer | None:
        if isinstance(self.event, DraftSubmitted):
            return self.event.data.issuer
        return self.facts.issuer

    @property
    def in_scope(self) -> bool:
        return self.scope is not None and self.scope in self.rules.in_scope

    def finding(
        self,
        rule_id: str,
        topic: str,
        severity: Severity,
        zh: str,
        en: str,
        also: Iterable[Evidence] = (),
    ) -> FindingRecordedData:
        """A finding against the event being judged; ``also`` names earlier events it rests on,
        each with its log sequence once the log holds it (events of the same intake batch,
        not yet appended, have none yet)."""
        return FindingRecordedData(
            finding_id=finding_id(rule_id, topic, self.event.event_id),
            rule_id=rule_id,
            rule_set=self.rules.name,
            severity=severity,
            evidence=(self.here, *map(self.facts.stored, also)),
            message_zh=zh,
            message_en=en,
        )

    def resolve(self, rule_id: str, topic: str, earlier: Iterable[Evidence]) -> Iterator[Outcome]:
        """Resolve the open ``rule_id``/``topic`` findings recorded against ``earlier`` events."""
        for e in earlier:
            fid = finding_id(rule_id, topic, e.event_id)
            if fid in self.facts.open_findings:
                yield FindingResolvedData(finding_id=fid, resolved_by=self.here)


Check = Callable[[Context], Iterable[Outcome]]


@dataclass(frozen=True)
class Rule:
    """One rule of RULES.md as code."""

    rule_id: str
    check: Check
    in_scope_only: bool = True
    """True for the interpretation duties, which out-of-scope cases do not carry (SCOPE-1)."""


def listed(items: Iterable[object]) -> str:
    return ", ".join(str(i) for i in items)
