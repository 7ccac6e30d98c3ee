"""What the rules remember about one case (案件事实), folded from its events in log order.

`CaseFacts` is the rules' own small model of a case: enough to judge the next event without
re-reading the history, and enough for the deadline service to start and stop its clocks (issue
date, website publication, forms published, consultations referred and answered, opinions and
responses). It also folds the findings recorded on the case (FindingRecorded / FindingResolved),
whoever recorded them, so a rule can tell which findings are still open.

Pure and in memory; references to events are `Evidence` (event ID and log sequence).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from domain.rules.ruleset import NoRuleSet, RuleSet, ruleset_at
from events.catalogue import (
    CaseKind,
    Channel,
    ConsultationAnswered,
    ConsultationChannel,
    ConsultationDraftPublished,
    ConsultationReceived,
    ConsultationReferred,
    ConsultationResultsPublished,
    DraftResubmitted,
    DraftSubmitted,
    Event,
    Evidence,
    FindingRecorded,
    FindingRecordedData,
    FindingResolved,
    Form,
    InterpretationPlan,
    Issuer,
    Material,
    MaterialPublished,
    MediaInterpretationCorrected,
    MediaInterpretationReported,
    OpinionDetected,
    OpinionKind,
    OpinionSeverity,
    PolicyIssued,
    ResponseIssued,
    ResponseKind,
    ReviewSigned,
    ReviewStage,
    Scope,
    SubmissionReturned,
    SuggestionAdopted,
    SuggestionDeclined,
)


@dataclass(frozen=True)
class Publication:
    """One MaterialPublished: a material in one form on one channel (PUB-1..3)."""

    evidence: Evidence
    material_id: str
    form: Form
    channel: Channel
    linked_to_policy: bool
    url: str | None
    published_on: date


@dataclass(frozen=True)
class Submission:
    """A DraftSubmitted or DraftResubmitted: what it carried (SYNC-1, PLAN-1, MAT-1)."""

    evidence: Evidence
    plan: InterpretationPlan | None
    materials: tuple[Material, ...]


@dataclass(frozen=True)
class Signature:
    evidence: Evidence
    stage: ReviewStage


@dataclass(frozen=True)
class Referral:
    evidence: Evidence
    referred_to: str
    at: datetime


@dataclass(frozen=True)
class Answer:
    evidence: Evidence
    from_library: bool
    instant: bool
    by_drafting_unit: bool
    at: datetime


@dataclass
class Consultation:
    """A question from the public and what became of it (QA-3, QA-4)."""

    received: Evidence
    channel: ConsultationChannel
    received_by: str
    received_at: datetime
    referrals: list[Referral] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)


@dataclass(frozen=True)
class Response:
    evidence: Evidence
    kind: ResponseKind
    referred_to: tuple[str, ...]
    at: datetime


@dataclass(frozen=True)
class Decision:
    evidence: Evidence
    adopted: bool


@dataclass
class Opinion:
    """An opinion (舆情) on the policy and the drafting unit's answers to it (OP-1..4)."""

    detected: Evidence
    kind: OpinionKind
    severity: OpinionSeverity
    detected_at: datetime
    responses: list[Response] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)


@dataclass
class MediaReport:
    """A news outlet's own interpretation and its corrections (PUB-4)."""

    reported: Evidence
    drafting_unit_consulted: bool
    misreading: bool
    corrections: list[Evidence] = field(default_factory=list)


@dataclass
class CaseFacts:
    """What the rules need to remember about one case; see the module docstring."""

    case_id: str | None = None
    department: str | None = None
    """The accountable department (责任单位) the case is charged to."""
    opened: Evidence | None = None
    scope: Scope | None = None
    kind: CaseKind | None = None
    issuer: Issuer | None = None
    superior_document: str | None = None
    plan: InterpretationPlan | None = None
    """The plan as last submitted."""
    materials: dict[str, Material] = field(default_factory=dict)
    """The materials as last submitted, by material ID."""
    submissions: list[Submission] = field(default_factory=list)
    signatures: list[Signature] = field(default_factory=list)
    signed: set[ReviewStage] = field(default_factory=set)
    """The stages whose signature stands (a return voids the leaders' sign-off)."""
    pending_return: Evidence | None = None
    """A 退文 not yet answered by a resubmission."""
    reviewed_materials: set[str] = field(default_factory=set)
    """Material IDs that were on the case when its review chain was last complete."""
    issued: Evidence | None = None
    issue_date: date | None = None
    """印发之日: PUB-2's clock starts here."""
    publications: list[Publication] = field(default_factory=list)
    consultation_drafts: list[tuple[Evidence, bool]] = field(default_factory=list)
    """SCOPE-2: each consultation draft published, and whether it carried its interpretation."""
    consultation_results: list[Evidence] = field(default_factory=list)
    media_reports: dict[str, MediaReport] = field(default_factory=dict)
    consultations: dict[str, Consultation] = field(default_factory=dict)
    opinions: dict[str, Opinion] = field(default_factory=dict)
    open_findings: dict[str, FindingRecordedData] = field(default_factory=dict)
    """Findings recorded on the case and not resolved, by finding ID."""
    finding_ids: set[str] = field(default_factory=set)
    """Every finding ID ever recorded on the case (open or resolved)."""
    last_sequence: int = 0
    placed_later: dict[str, int] = field(default_factory=dict)
    """Log sequences of events folded before the log had placed them (the intake folds a batch
    before appending it), by event ID, filled in by :meth:`confirm`; evidence of every other
    event carries its sequence already."""

    @classmethod
    def empty(cls) -> CaseFacts:
        return cls()

    def confirm(self, placed: dict[str, int]) -> None:
        """The log now holds these tentatively folded events, at these sequences."""
        self.placed_later.update(placed)

    def stored(self, evidence: Evidence) -> Evidence:
        """``evidence`` with its log sequence, if the log holds the event by now (issue 13:
        a finding judged later must cite earlier events by position, not ``null``)."""
        if evidence.sequence is not None:
            return evidence
        seq = self.placed_later.get(evidence.event_id)
        return evidence if seq is None else Evidence(event_id=evidence.event_id, sequence=seq)

    @classmethod
    def fold(cls, history: list[tuple[int, Event]]) -> CaseFacts:
        """The facts as of the end of ``history`` (a case's events in log order)."""
        facts = cls.empty()
        for seq, e in history:
            facts.apply(seq, e)
        return facts

    # ── what the deadline service (and reports) read ─────────────────────────────────────────

    def in_scope(self, rules: RuleSet) -> bool:
        """SCOPE-1: does the case carry the interpretation duties under ``rules``?"""
        return self.scope is not None and self.scope in rules.in_scope

    @property
    def forms_published(self) -> set[Form]:
        """PUB-3: the distinct forms of interpretation published, on any channel."""
        return {p.form for p in self.publications}

    @property
    def website_text(self) -> Publication | None:
        """PUB-2: the first text interpretation published on the district website."""
        return next(
            (
                p
                for p in self.publications
                if p.channel is Channel.GOVERNMENT_WEBSITE and p.form is Form.TEXT
            ),
            None,
        )

    @property
    def on_website(self) -> set[str]:
        """PUB-1: material IDs published on the district website."""
        return {p.material_id for p in self.publications if p.channel is Channel.GOVERNMENT_WEBSITE}

    @property
    def made_public(self) -> bool:
        """OP-1: is anything of the policy public (issued, consulted on, or interpreted)?"""
        return bool(self.issued or self.publications or self.consultation_drafts)

    @property
    def plan_submissions(self) -> list[Evidence]:
        """The submissions that carried a plan, in order."""
        return [s.evidence for s in self.submissions if s.plan is not None]

    def signatures_of(self, stage: ReviewStage) -> list[Signature]:
        return [s for s in self.signatures if s.stage is stage]

    def versions_of(self, material_id: str) -> list[tuple[Evidence, int]]:
        """Each submission that carried ``material_id``, and its index among the materials."""
        return [
            (s.evidence, i)
            for s in self.submissions
            for i, m in enumerate(s.materials)
            if m.material_id == material_id
        ]

    # ── folding ──────────────────────────────────────────────────────────────────────────────

    def apply(self, seq: int | None, event: Event) -> None:
        """Fold an event the log holds at ``seq`` (facts and findings alike); None while its
        position is not known yet (the intake folds a batch before appending it)."""
        self.last_sequence = max(self.last_sequence, seq or 0)
        here = Evidence(event_id=event.event_id, sequence=seq)
        if self.case_id is None:
            self.case_id, self.department = event.case_id, event.department
        match event:
            case DraftSubmitted(data=d):
                self.opened = here
                self.scope, self.kind, self.issuer = d.scope, d.kind, d.issuer
                self.superior_document = d.superior_document
                self._submit(here, d.plan, d.materials)
            case DraftResubmitted(data=d):
                self.pending_return = None
                for m in d.materials:
                    self.reviewed_materials.discard(m.material_id)  # changed since its review
                self._submit(here, d.plan, d.materials)
            case ReviewSigned(data=d):
                self.signatures.append(Signature(here, d.stage))
                self.signed.add(d.stage)
                if self._chain_complete(event.occurred_at):
                    self.reviewed_materials |= set(self.materials)
            case SubmissionReturned():
                self.pending_return = here
                self.signed.discard(ReviewStage.LEADERS_SIGN_OFF)
            case PolicyIssued(data=d):
                if self.issued is None:
                    self.issued, self.issue_date = here, d.issue_date
            case MaterialPublished(data=d):
                url = str(d.url) if d.url else None
                self.publications.append(
                    Publication(
                        here, d.material_id, d.form, d.channel, d.linked_to_policy, url,
                        d.published_on,
                    )
                )
            case ConsultationDraftPublished(data=d):
                self.consultation_drafts.append((here, d.interpretation_url is not None))
            case ConsultationResultsPublished():
                self.consultation_results.append(here)
            case MediaInterpretationReported(data=d):
                self.media_reports[d.report_id] = MediaReport(
                    here, d.drafting_unit_consulted, d.misreading
                )
            case MediaInterpretationCorrected(data=d):
                if report := self.media_reports.get(d.report_id):
                    report.corrections.append(here)
            case ConsultationReceived(data=d):
                self.consultations[d.consultation_id] = Consultation(
                    here, d.channel, d.received_by, event.occurred_at
                )
            case ConsultationReferred(data=d):
                if c := self.consultations.get(d.consultation_id):
                    c.referrals.append(Referral(here, d.referred_to, event.occurred_at))
            case ConsultationAnswered(data=d):
                if c := self.consultations.get(d.consultation_id):
                    c.answers.append(
                        Answer(here, d.from_library, d.instant, d.by_drafting_unit,
                               event.occurred_at)
                    )
            case OpinionDetected(data=d):
                self.opinions[d.opinion_id] = Opinion(here, d.kind, d.severity, d.detected_at)
            case ResponseIssued(data=d):
                if o := self.opinions.get(d.opinion_id):
                    o.responses.append(Response(here, d.kind, d.referred_to, event.occurred_at))
            case SuggestionAdopted(data=d) | SuggestionDeclined(data=d):
                if o := self.opinions.get(d.opinion_id):
                    o.decisions.append(Decision(here, isinstance(event, SuggestionAdopted)))
            case FindingRecorded(data=d):
                self.open_findings[d.finding_id] = d
                self.finding_ids.add(d.finding_id)
            case FindingResolved(data=d):
                self.open_findings.pop(d.finding_id, None)
            case _:
                pass  # training, inspection and deadline events carry nothing the rules use

    def _submit(
        self, here: Evidence, plan: InterpretationPlan | None, materials: tuple[Material, ...]
    ) -> None:
        self.submissions.append(Submission(here, plan, materials))
        if plan is not None:
            self.plan = plan
        for m in materials:
            self.materials[m.material_id] = m

    def _chain_complete(self, at: datetime) -> bool:
        if self.issuer is None:
            return False
        try:
            rules = ruleset_at(at)
        except NoRuleSet:
            return False
        return all(step.stage in self.signed for step in rules.chain(self.issuer.kind))

    def missing_stages(self, rules: RuleSet) -> list[ReviewStage]:
        """REV-5: the stages of the case's review chain whose signature does not stand."""
        if self.issuer is None:
            return []
        return [s.stage for s in rules.chain(self.issuer.kind) if s.stage not in self.signed]
