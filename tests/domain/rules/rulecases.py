"""Building cases for the rules tests: events that keep every rule, to vary one thing at a time,
and a small log that runs them through the engine the way the intake does (judge before the
append, then fold the fact and its derived findings)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

from domain.rules import CaseFacts, Judgement, derived_events, judge
from domain.rules.ruleset import SHANGHAI
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
    FindingRecordedData,
    Form,
    InterpretationPlan,
    Issuer,
    IssuerKind,
    KeyTerm,
    Material,
    MaterialPublished,
    MediaInterpretationCorrected,
    MediaInterpretationReported,
    OpinionDetected,
    OpinionKind,
    OpinionSeverity,
    PlannedChannel,
    PolicyIssued,
    ResponseIssued,
    ResponseKind,
    ReviewGround,
    ReviewSigned,
    ReviewStage,
    Scope,
    SubmissionReturned,
    SuggestionAdopted,
    SuggestionDeclined,
)
from events.envelope import Actor

T0 = datetime(2026, 7, 6, 9, 30, tzinfo=SHANGHAI)
S = ReviewStage
DISTRICT_CHAIN = (S.SECTION_HEAD, S.DEPUTY_HEAD, S.PRINCIPAL_HEAD, S.NEWS_OFFICE,
                  S.LEADERS_SIGN_OFF)
DEPARTMENT_CHAIN = (S.SECTION_HEAD, S.DEPUTY_HEAD, S.PRINCIPAL_HEAD, S.INTERPRETATION_UNIT)
ALL_GROUNDS = tuple(ReviewGround)


def material(material_id: str = "m1", form: Form = Form.TEXT, **over: Any) -> Material:
    data: dict[str, Any] = {
        "material_id": material_id,
        "form": form,
        "background": "依据《重庆市行政机关政策解读工作办法》",
        "main_content": "主要内容、核心举措",
        "audience": "辖区企业",
        "standards": "执行标准",
        "time_limits": "自印发之日起施行",
        "cautions": "注意事项",
        "key_terms": (KeyTerm(term="政策兑现", explanation="兑现承诺的扶持资金"),),
        "old_vs_new": "与旧政策相比,补贴标准提高",
    }
    data.update(over)
    return Material(**data)


def plan(**over: Any) -> InterpretationPlan:
    data: dict[str, Any] = {
        "title": "关于促进楼宇经济发展的若干措施",
        "category": Scope.NORMATIVE,
        "forms": (Form.TEXT, Form.CHART, Form.PRESS_RELEASE),
        "channels": (
            PlannedChannel(channel=Channel.GOVERNMENT_WEBSITE, name="渝中区人民政府网"),
            PlannedChannel(channel=Channel.NEWS_MEDIA, name="渝中报"),
        ),
        "release_date": None,
    }
    data.update(over)
    return InterpretationPlan(**data)


class Events:
    """Valid events of one policy case, one hour apart, with IDs ``<case>-e<n>``."""

    def __init__(self, case_id: str = "c1", department: str = "drc", start: datetime = T0):
        self.case_id = case_id
        self.department = department
        self.start = start
        self._n = itertools.count(1)

    def _env(self, at: datetime | None = None) -> dict[str, Any]:
        n = next(self._n)
        return {
            "event_id": f"{self.case_id}-e{n}",
            "case_id": self.case_id,
            "department": self.department,
            "actor": Actor(id="u-001", name="张三"),
            "source_system": "oa",
            "occurred_at": at or self.start + timedelta(hours=n),
        }

    def draft(
        self,
        scope: Scope = Scope.NORMATIVE,
        kind: CaseKind = CaseKind.DOCUMENT,
        issuer: Issuer | None = None,
        plan_: InterpretationPlan | str | None = "default",
        materials: tuple[Material, ...] | None = None,
        superior_document: str | None = None,
        at: datetime | None = None,
    ) -> DraftSubmitted:
        scoped = scope is not Scope.OUT_OF_SCOPE
        return DraftSubmitted(
            **self._env(at),
            data={
                "title": "关于促进楼宇经济发展的若干措施",
                "scope": scope,
                "kind": kind,
                "issuer": issuer or Issuer(kind=IssuerKind.DEPARTMENT, lead=self.department),
                "superior_document": superior_document,
                "plan": (plan(category=scope) if scoped else None)
                if plan_ == "default" else plan_,
                "materials": ((material(),) if scoped else ()) if materials is None
                else materials,
            },
        )

    def district_draft(self, **over: Any) -> DraftSubmitted:
        issuer = Issuer(kind=IssuerKind.DISTRICT_GOVERNMENT, lead=self.department)
        return self.draft(issuer=issuer, **over)

    def resubmit(
        self, plan_: InterpretationPlan | None = None, materials: tuple[Material, ...] = ()
    ) -> DraftResubmitted:
        return DraftResubmitted(**self._env(), data={"plan": plan_, "materials": materials})

    def sign(
        self,
        stage: ReviewStage,
        grounds: tuple[ReviewGround, ...] = ALL_GROUNDS,
        covers_plan: bool = True,
        covers_materials: bool = True,
    ) -> ReviewSigned:
        return ReviewSigned(
            **self._env(),
            data={
                "stage": stage,
                "signer": f"{stage} 签字人",
                "grounds": grounds if stage in DEPARTMENT_CHAIN[:3] else (),
                "covers_plan": covers_plan,
                "covers_materials": covers_materials,
            },
        )

    def chain(self, stages: Iterable[ReviewStage]) -> list[ReviewSigned]:
        return [self.sign(s) for s in stages]

    def returned(self, *missing: str) -> SubmissionReturned:
        return SubmissionReturned(**self._env(), data={"missing": missing or ("plan",)})

    def issued(self) -> PolicyIssued:
        return PolicyIssued(
            **self._env(),
            data={"document_number": "渝中发改发〔2026〕7号", "issue_date": date(2026, 7, 6),
                  "url": "https://www.cqyz.gov.cn/zwgk/zcwj/7.html"},
        )

    def published(
        self,
        material_id: str = "m1",
        form: Form = Form.TEXT,
        channel: Channel = Channel.GOVERNMENT_WEBSITE,
        linked: bool = True,
        url: str | None = "https://www.cqyz.gov.cn/zwgk/zcjd/1.html",
    ) -> MaterialPublished:
        return MaterialPublished(
            **self._env(),
            data={"material_id": material_id, "form": form, "channel": channel, "url": url,
                  "linked_to_policy": linked, "published_on": date(2026, 7, 8)},
        )

    def consultation_draft(self, interpretation: bool = True) -> ConsultationDraftPublished:
        return ConsultationDraftPublished(
            **self._env(),
            data={"url": "https://www.cqyz.gov.cn/zdjcygk/1.html",
                  "interpretation_url": "https://www.cqyz.gov.cn/zdjcygk/1-jd.html"
                  if interpretation else None},
        )

    def consultation_results(self) -> ConsultationResultsPublished:
        return ConsultationResultsPublished(
            **self._env(),
            data={"url": "https://www.cqyz.gov.cn/zdjcygk/1-jg.html", "comments_received": 12,
                  "comments_adopted": 3},
        )

    def media(
        self, report_id: str = "r1", consulted: bool = True, misreading: bool = False
    ) -> MediaInterpretationReported:
        return MediaInterpretationReported(
            **self._env(),
            data={"report_id": report_id, "outlet": "渝中报",
                  "drafting_unit_consulted": consulted, "misreading": misreading},
        )

    def corrected(self, report_id: str = "r1") -> MediaInterpretationCorrected:
        return MediaInterpretationCorrected(**self._env(), data={"report_id": report_id})

    def received(
        self,
        consultation_id: str = "q1",
        channel: ConsultationChannel = ConsultationChannel.HOTLINE,
        received_by: str = "gov_services_office",
    ) -> ConsultationReceived:
        return ConsultationReceived(
            **self._env(),
            data={"consultation_id": consultation_id, "channel": channel,
                  "question": "补贴怎么申请?", "received_by": received_by},
        )

    def referred(self, consultation_id: str = "q1", to: str | None = None) -> ConsultationReferred:
        return ConsultationReferred(
            **self._env(),
            data={"consultation_id": consultation_id, "referred_to": to or self.department},
        )

    def answered(
        self,
        consultation_id: str = "q1",
        from_library: bool = True,
        instant: bool = True,
        by_drafting_unit: bool = False,
    ) -> ConsultationAnswered:
        return ConsultationAnswered(
            **self._env(),
            data={"consultation_id": consultation_id, "answer": "请登录网站申请",
                  "from_library": from_library, "instant": instant,
                  "by_drafting_unit": by_drafting_unit},
        )

    def opinion(
        self,
        opinion_id: str = "o1",
        kind: OpinionKind = OpinionKind.MISUNDERSTANDING,
        severity: OpinionSeverity = OpinionSeverity.ORDINARY,
    ) -> OpinionDetected:
        env = self._env()
        return OpinionDetected(
            **env,
            data={"opinion_id": opinion_id, "severity": severity, "kind": kind,
                  "summary": "网民对补贴标准存在误解", "detected_at": env["occurred_at"]},
        )

    def response(
        self,
        opinion_id: str = "o1",
        kind: ResponseKind = ResponseKind.CLARIFICATION,
        referred_to: tuple[str, ...] = (),
    ) -> ResponseIssued:
        return ResponseIssued(
            **self._env(),
            data={"opinion_id": opinion_id, "kind": kind, "referred_to": referred_to},
        )

    def adopted(self, opinion_id: str = "o1") -> SuggestionAdopted:
        return SuggestionAdopted(
            **self._env(), data={"opinion_id": opinion_id, "rationale": "有助于政策完善"}
        )

    def declined(self, opinion_id: str = "o1") -> SuggestionDeclined:
        return SuggestionDeclined(
            **self._env(), data={"opinion_id": opinion_id, "rationale": "与上位法不符"}
        )


class Log:
    """The intake's use of the engine, in memory: a global sequence, facts per case."""

    def __init__(self) -> None:
        self.seq = 0
        self.facts: dict[str, CaseFacts] = {}
        self.records: list[tuple[int, Event]] = []
        self.judgements: list[tuple[Event, Judgement]] = []

    def add(self, event: Event) -> Judgement:
        facts = self.facts.setdefault(event.case_id, CaseFacts.empty())
        judgement = judge(facts, None, event)
        self.judgements.append((event, judgement))
        for e in (event, *derived_events(event, judgement)):
            self.seq += 1
            facts.apply(self.seq, e)
            self.records.append((self.seq, e))
        return judgement

    def sequence_of(self, event_id: str) -> int:
        return next(seq for seq, e in self.records if e.event_id == event_id)

    def findings(self, case_id: str | None = None) -> list[FindingRecordedData]:
        return [
            f
            for e, j in self.judgements
            if case_id is None or e.case_id == case_id
            for f in j.findings
        ]


class Case(Events):
    """One case's events and the log they run on: ``case.add(case.draft())``."""

    def __init__(self, case_id: str = "c1", department: str = "drc", log: Log | None = None):
        super().__init__(case_id, department)
        self.log = log or Log()

    def add(self, *events: Event) -> Judgement:
        judgement = Judgement()
        for e in events:
            judgement = self.log.add(e)
        return judgement

    @property
    def facts(self) -> CaseFacts:
        return self.log.facts[self.case_id]

    @property
    def open(self) -> dict[str, FindingRecordedData]:
        return self.facts.open_findings

    def reviewed(self, draft: DraftSubmitted | None = None) -> Case:
        """Opened with ``draft`` (a clean department draft by default) and fully reviewed."""
        d = draft or self.draft()
        self.add(d)
        chain = DISTRICT_CHAIN if d.data.issuer.kind is IssuerKind.DISTRICT_GOVERNMENT else (
            DEPARTMENT_CHAIN)
        self.add(*self.chain(chain))
        return self

    def findings_of(self, rule_id: str) -> list[FindingRecordedData]:
        return [f for f in self.log.findings(self.case_id) if f.rule_id == rule_id]


def rule_ids(judgement: Judgement) -> list[str]:
    return sorted(f.rule_id for f in judgement.findings)


def only(judgement: Judgement, rule_id: str) -> FindingRecordedData:
    """The judgement's one finding, which must be of ``rule_id``."""
    assert rule_ids(judgement) == [rule_id], rule_ids(judgement)
    return judgement.findings[0]


def evidence_ids(f: FindingRecordedData) -> list[str]:
    return [e.event_id for e in f.evidence]
