"""The event catalogue: one pydantic model per event type that `RULES.md` needs.

Upstream facts come first, grouped by the stage of the interpretation work (起草, 审核, 发布,
咨询, 舆情回应, 监督); the system's own derived events (findings, deadlines) come last. The names
are the English names of RULES.md; the Chinese terms are in the docstrings.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AwareDatetime,
    Discriminator,
    Field,
    HttpUrl,
    Tag,
    TypeAdapter,
    model_validator,
)
from pydantic.config import JsonDict

from events.envelope import (
    EARLIEST_DAY,
    LATEST_DAY,
    CaseId,
    Count,
    Day,
    Envelope,
    EventId,
    JsonInteger,
    Moment,
    Position,
    Record,
    Token,
    Version,
)

# ── vocabularies ─────────────────────────────────────────────────────────────────────────────


class Scope(StrEnum):
    """SCOPE-1: why a policy must (or need not) be interpreted (解读范围)."""

    NORMATIVE = "normative"  # 行政规范性文件
    HIGH_IMPACT = "high_impact"  # 涉及面广、社会关注度高、专业性强、与群众利益密切相关
    DESIGNATED = "designated"  # 主管部门认为有必要解读
    OUT_OF_SCOPE = "out_of_scope"


class CaseKind(StrEnum):
    """What the policy case is about: a new document, or implementing a superior one (SCOPE-3)."""

    DOCUMENT = "document"
    MAJOR_DECISION = "major_decision"  # 重大行政决策 (SCOPE-2)
    IMPLEMENTATION = "implementation"  # 贯彻执行上级文件不再单独制发文件


class IssuerKind(StrEnum):
    """WHO-1 / REV-1..4: in whose name the document is issued decides the review chain."""

    DISTRICT_GOVERNMENT = "district_government"  # 以区政府(政府办)名义印发
    DEPARTMENT = "department"  # 以部门名义印发
    JOINT = "joint"  # 部门联合发文


class Form(StrEnum):
    """Forms of interpretation material (解读形式, PLAN-1, PUB-3)."""

    TEXT = "text"  # 文字解读材料 *
    CHART = "chart"  # 图表图解 *
    ANIMATION = "animation"  # 动漫 *
    AUDIO_VIDEO = "audio_video"  # 音频视频 *
    PRESS_RELEASE = "press_release"  # 新闻通稿 *
    PRESS_CONFERENCE = "press_conference"  # 新闻发布会
    BRIEFING = "briefing"  # 政策吹风会
    INTERVIEW = "interview"  # 部门负责人接受媒体专访
    ARTICLE = "article"  # 部门负责人发表解读文章
    OTHER = "other"


class Channel(StrEnum):
    """Publication channels (发布渠道, PLAN-1, PUB-1)."""

    GOVERNMENT_WEBSITE = "government_website"  # 区政府网站 * (first platform)
    NEWS_MEDIA = "news_media"  # 新闻媒体 *
    WECHAT = "wechat"  # 政务微信公众号
    WEIBO = "weibo"  # 政务新浪微博
    OTHER_NEW_MEDIA = "other_new_media"  # 其他政务新媒体
    NOTICE_BOARD = "notice_board"  # 公开栏、宣传单等


class ReviewStage(StrEnum):
    """REV-1..4: who signs, in the order the chains of RULES.md require."""

    SECTION_HEAD = "section_head"  # 科室负责人
    DEPUTY_HEAD = "deputy_head"  # 分管负责人
    PRINCIPAL_HEAD = "principal_head"  # 主要负责人
    INTERPRETATION_UNIT = "interpretation_unit"  # 本机关政策解读工作机构 (REV-4)
    NEWS_OFFICE = "news_office"  # 区政府新闻办公室 (REV-2)
    LEADERS_SIGN_OFF = "leaders_sign_off"  # 报相关领导审签 (REV-3)


class ReviewGround(StrEnum):
    """The grounds of 三审三校 (REV-1)."""

    POLITICAL = "political"
    LEGAL = "legal"
    POLICY = "policy"
    CONFIDENTIALITY = "confidentiality"
    WORDING = "wording"
    PUBLIC_OPINION = "public_opinion"


class ConsultationChannel(StrEnum):
    """QA-3: 一号答, 一网答, 一站式."""

    HOTLINE = "hotline"  # 12345 政务服务便民热线
    WEBSITE = "website"  # 公开信箱、网民留言
    SERVICE_WINDOW = "service_window"  # 综合咨询窗口


class OpinionSeverity(StrEnum):
    """OP-4: major or high-attention policies get 24 h, others 48 h."""

    MAJOR = "major"
    HIGH_ATTENTION = "high_attention"
    ORDINARY = "ordinary"


class OpinionKind(StrEnum):
    """OP-2/OP-3: what the public said decides how to respond."""

    SUGGESTION = "suggestion"  # 合理建议
    MISUNDERSTANDING = "misunderstanding"  # 模糊认识、误解误读
    FALSE_INFORMATION = "false_information"  # 虚假和不实信息
    ILLEGAL_CONTENT = "illegal_content"  # 涉嫌违法


class ResponseKind(StrEnum):
    """OP-3: clarify, correct, rebut, refer to police / cyberspace office."""

    CLARIFICATION = "clarification"  # 解疑释惑, 澄清事实
    CORRECTION = "correction"  # 发布权威信息, 引导和纠正
    REBUTTAL = "rebuttal"  # 及时回应虚假信息
    REFERRAL_TO_AUTHORITIES = "referral_to_authorities"  # 移交公安机关、网信部门


class Severity(StrEnum):
    """How serious a finding is."""

    WARNING = "warning"
    VIOLATION = "violation"


# ── value objects ────────────────────────────────────────────────────────────────────────────


class Issuer(Record):
    """In whose name the document is issued; for joint documents the lead interprets (WHO-1)."""

    kind: IssuerKind
    lead: Token
    co_issuers: tuple[Token, ...] = ()


class PlannedChannel(Record):
    channel: Channel
    name: str | None = None


class InterpretationPlan(Record):
    """解读方案: the attached template's fields (PLAN-1)."""

    title: str = Field(min_length=1)
    category: Scope
    forms: tuple[Form, ...]
    channels: tuple[PlannedChannel, ...]
    release_date: Day | None = Field(default=None, description="None: 无特定要求")


class KeyTerm(Record):
    term: str
    explanation: str


class BenefitOffice(Record):
    """政策兑现机构: where people go to receive what the policy grants (MAT-1)."""

    name: str | None = None
    address: str | None = None
    contact: str | None = None
    hours: str | None = None


class Material(Record):
    """解读材料 with the sections MAT-1 asks for; a missing section is a finding, not an error."""

    material_id: str = Field(min_length=1, max_length=128)
    form: Form = Form.TEXT
    background: str | None = None  # 出台背景、政策依据、目的意义
    main_content: str | None = None  # 主要内容、核心举措
    audience: str | None = None  # 适用对象
    standards: str | None = None  # 执行标准
    time_limits: str | None = None  # 时限
    cautions: str | None = None  # 注意事项
    key_terms: tuple[KeyTerm, ...] = ()  # 关键词、专业名词解释
    old_vs_new: str | None = None  # 新旧政策差异对比
    involves_benefits: bool = False  # 涉及政策兑现
    benefit_office: BenefitOffice | None = None


class Evidence(Record):
    """One event a finding rests on, by ID and log position."""

    event_id: EventId
    sequence: Position | None = None


# ── policy case: drafting (起草) ──────────────────────────────────────────────────────────────


class DraftSubmittedData(Record):
    title: str = Field(min_length=1)
    scope: Scope
    kind: CaseKind = CaseKind.DOCUMENT
    issuer: Issuer
    superior_document: str | None = Field(default=None, description="SCOPE-3: what is implemented")
    plan: InterpretationPlan | None = None
    materials: tuple[Material, ...] = ()


class DraftSubmitted(Envelope):
    """起草单位 submits document, plan and materials for review: opens the policy case."""

    SCHEMA_VERSION: ClassVar[int] = 2
    OPENS_CASE: ClassVar[bool] = True
    type: Literal["DraftSubmitted"] = "DraftSubmitted"
    schema_version: Version = 2
    data: DraftSubmittedData


class ConsultationDraftPublishedData(Record):
    url: HttpUrl
    interpretation_url: HttpUrl | None = None
    closes_on: Day | None = None


class ConsultationDraftPublished(Envelope):
    """征求意见稿及其解读 published under 重大决策预公开 (SCOPE-2)."""

    type: Literal["ConsultationDraftPublished"] = "ConsultationDraftPublished"
    data: ConsultationDraftPublishedData


class ConsultationResultsPublishedData(Record):
    url: HttpUrl
    comments_received: Count
    comments_adopted: Count


class ConsultationResultsPublished(Envelope):
    """征求意见结果 published (SCOPE-2)."""

    type: Literal["ConsultationResultsPublished"] = "ConsultationResultsPublished"
    data: ConsultationResultsPublishedData


# ── policy case: review (审核) ────────────────────────────────────────────────────────────────


class ReviewSignedData(Record):
    stage: ReviewStage
    signer: str = Field(min_length=1)
    grounds: tuple[ReviewGround, ...] = ()
    covers_plan: bool = True
    covers_materials: bool = True


class ReviewSigned(Envelope):
    """A signature in the review chain (REV-1..4)."""

    type: Literal["ReviewSigned"] = "ReviewSigned"
    data: ReviewSignedData


class SubmissionReturnedData(Record):
    missing: tuple[str, ...] = Field(min_length=1, description="what was not submitted")
    reason: str | None = None


class SubmissionReturned(Envelope):
    """退文: the government office returns an incomplete submission (REV-3); the case reopens."""

    type: Literal["SubmissionReturned"] = "SubmissionReturned"
    data: SubmissionReturnedData


class DraftResubmittedData(Record):
    plan: InterpretationPlan | None = None
    materials: tuple[Material, ...] = ()


class DraftResubmitted(Envelope):
    """The drafting unit resubmits after a return, with what was missing."""

    type: Literal["DraftResubmitted"] = "DraftResubmitted"
    data: DraftResubmittedData


class PolicyIssuedData(Record):
    document_number: str = Field(min_length=1, description="文号, e.g. 渝中府发〔2026〕12号")
    issue_date: Day = Field(description="印发之日: PUB-2's clock starts here")
    url: HttpUrl | None = None


class PolicyIssued(Envelope):
    """The policy document is issued (印发)."""

    type: Literal["PolicyIssued"] = "PolicyIssued"
    data: PolicyIssuedData


# ── policy case: publication (发布) ───────────────────────────────────────────────────────────


class MaterialPublishedData(Record):
    material_id: str = Field(min_length=1, max_length=128)
    form: Form
    channel: Channel
    channel_name: str | None = None
    url: HttpUrl | None = None
    linked_to_policy: bool = Field(True, description="PUB-1: linked to its policy document")
    published_on: Day


class MaterialPublished(Envelope):
    """Interpretation material published in one form on one channel (PUB-1..3)."""

    type: Literal["MaterialPublished"] = "MaterialPublished"
    data: MaterialPublishedData


class MediaInterpretationReportedData(Record):
    report_id: str = Field(min_length=1, max_length=128)
    outlet: str
    url: HttpUrl | None = None
    drafting_unit_consulted: bool
    misreading: bool = False


class MediaInterpretationReported(Envelope):
    """A news outlet's own interpretation (媒体自主编发), consulted or not (PUB-4)."""

    type: Literal["MediaInterpretationReported"] = "MediaInterpretationReported"
    data: MediaInterpretationReportedData


class MediaInterpretationCorrectedData(Record):
    report_id: str = Field(min_length=1, max_length=128)
    correction_url: HttpUrl | None = None


class MediaInterpretationCorrected(Envelope):
    """The drafting unit had the outlet correct a misreading (PUB-4)."""

    REFERS_TO: ClassVar[tuple[str, str] | None] = ("report_id", "media report")
    type: Literal["MediaInterpretationCorrected"] = "MediaInterpretationCorrected"
    data: MediaInterpretationCorrectedData


# ── consultations (政策咨询) ──────────────────────────────────────────────────────────────────


class ReplyVia(StrEnum):
    """How the asker wants the drafting unit's reply (主动回复咨询人, QA-4)."""

    PHONE = "phone"
    EMAIL = "email"
    NONE = "none"  # 无需回复


PERSONAL: JsonDict = {"x-personal": True}
"""The one mark of a personal field (个人信息): the JSON Schemas and AsyncAPI show it, the intake
encrypts every field so marked before the log keeps it (`personal_fields`)."""



def _personal(description: str) -> Any:
    """A personal text field: sent in clear by a source, kept only encrypted."""
    return Field(None, min_length=1, max_length=256, description=description,
                 json_schema_extra=PERSONAL)


class Asker(Record):
    """咨询人, as a source sends it: who asked and how to reach them. Name, phone and e-mail are
    personal data (`PERSONAL`); the way to reply is not."""

    name: str | None = _personal("姓名")
    phone: str | None = _personal("联系电话")
    email: str | None = _personal("电子邮箱")
    reply_via: ReplyVia = ReplyVia.NONE


class SealedAsker(Record):
    """The asker as the log keeps it: each personal field encrypted (AES-256-GCM or SM4-GCM)
    with the data subject's own key, bound to the subject ID and key version as associated
    data. Only the intake writes this form; destroying the key erases the fields (crypto-
    shredding) while the bytes the audit chain hashes stay as they were."""

    subject_id: str = Field(
        pattern=r"^ds-[0-9a-f]{32}$",
        description="the data subject (数据主体): a keyed hash of the contact, never the contact",
    )
    key_version: int = Field(ge=1)
    algorithm: Literal["AES-256-GCM", "SM4-GCM"]
    sealed: dict[str, str] = Field(
        description="personal field name → base64 of nonce ‖ ciphertext ‖ tag"
    )
    reply_via: ReplyVia = ReplyVia.NONE


def _asker_form(value: Any) -> str:
    """Which form an asker is in: sealed ones name their subject; anything else is judged as
    sent in clear (so an unknown key is `invalid_field`, not a missing sealed field)."""
    named = value.get("subject_id") if isinstance(value, dict) else getattr(value, "subject_id", None)
    return "sealed" if named is not None else "clear"


class ConsultationReceivedData(Record):
    consultation_id: str = Field(min_length=1, max_length=128)
    channel: ConsultationChannel
    question: str = Field(min_length=1)
    received_by: Token = Field(description="受理机关: the organ that took the question")
    asker: Annotated[
        Annotated[Asker, Tag("clear")] | Annotated[SealedAsker, Tag("sealed")],
        Discriminator(_asker_form),
    ] | None = Field(
        default=None,
        description="咨询人: optional (events before issue 17 have none); sent as `Asker`, "
        "kept as `SealedAsker`",
    )


class ConsultationReceived(Envelope):
    """A member of the public asks about a policy (QA-3). It belongs to the policy's case: the
    `case_id` of the DraftSubmitted that opened it, and that case's `department`, whoever took
    the question (`received_by`)."""

    type: Literal["ConsultationReceived"] = "ConsultationReceived"
    data: ConsultationReceivedData


class ConsultationAnsweredData(Record):
    consultation_id: str = Field(min_length=1, max_length=128)
    answer: str = Field(min_length=1)
    from_library: bool = Field(description="QA-4: matched from the Q&A library (问答库)")
    instant: bool = Field(description="answered at once (立即答复)")
    by_drafting_unit: bool = False
    entry_id: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        description="QA-4: the library entry the answer comes from (then from_library is true)",
    )
    entry_case_id: CaseId | None = Field(
        None,
        description="the policy case of `entry_id` when it is not the consultation's own case "
        "(then it must be one of the consultation's suggestions, ConsultationMatched)",
    )

    @model_validator(mode="after")
    def _entry_from_library(self) -> ConsultationAnsweredData:
        if self.entry_id is not None and not self.from_library:
            raise ValueError("an answer that names a library entry is from_library")
        if self.entry_case_id is not None and self.entry_id is None:
            raise ValueError("entry_case_id names the case of entry_id, which is missing")
        return self


class ConsultationAnswered(Envelope):
    """A consultation answered, at once from the library or later by the drafting unit (QA-4)."""

    REFERS_TO: ClassVar[tuple[str, str] | None] = ("consultation_id", "consultation")
    type: Literal["ConsultationAnswered"] = "ConsultationAnswered"
    data: ConsultationAnsweredData


class ConsultationReferredData(Record):
    consultation_id: str = Field(min_length=1, max_length=128)
    referred_to: Token = Field(description="the drafting unit (交办)")


class ConsultationReferred(Envelope):
    """Not answerable at once: referred to the drafting unit; 5 working days start (QA-4)."""

    REFERS_TO: ClassVar[tuple[str, str] | None] = ("consultation_id", "consultation")
    type: Literal["ConsultationReferred"] = "ConsultationReferred"
    data: ConsultationReferredData


# ── the Q&A library (政策问答库) ──────────────────────────────────────────────────────────────


class QAEntryData(Record):
    """One question and its answer (问答) about the case's policy, as the department words it."""

    entry_id: str = Field(
        min_length=1, max_length=128, description="unique within the case; never reused"
    )
    material_id: str | None = Field(
        None, max_length=128, description="the interpretation material it comes from, if any"
    )
    question: str = Field(min_length=1, max_length=2000)
    answer: str = Field(min_length=1, max_length=20000)
    keywords: tuple[str, ...] = Field((), description="terms people may search it by")
    benefit_office: BenefitOffice | None = Field(
        None, description="where to go to receive what it grants (政策兑现), if it does"
    )


class QAEntryPublished(Envelope):
    """The department's interpretation work unit publishes a Q&A entry about its policy (QA-1):
    it enters the department library (部门级) and the district library (区级) the 12345 hotline
    and the windows answer from. An entry ID is published once per case: a second publication
    of it is refused (`entry_exists`), even after a withdrawal (revise, or use a new ID)."""

    type: Literal["QAEntryPublished"] = "QAEntryPublished"
    data: QAEntryData


class QAEntryRevised(Envelope):
    """A published entry restated as a whole (修订): its question, answer, keywords and office
    as they now read. Only a published, not withdrawn, entry can be revised."""

    REFERS_TO: ClassVar[tuple[str, str] | None] = ("entry_id", "qa entry")
    type: Literal["QAEntryRevised"] = "QAEntryRevised"
    data: QAEntryData


class QAEntryWithdrawnData(Record):
    entry_id: str = Field(min_length=1, max_length=128)
    reason: str | None = None


class QAEntryWithdrawn(Envelope):
    """A published entry taken out of the library (撤回), e.g. wrong or superseded."""

    REFERS_TO: ClassVar[tuple[str, str] | None] = ("entry_id", "qa entry")
    type: Literal["QAEntryWithdrawn"] = "QAEntryWithdrawn"
    data: QAEntryWithdrawnData


class RepealKind(StrEnum):
    """How a policy stops being in force."""

    REPEALED = "repealed"  # 废止
    EXPIRED = "expired"  # 失效 (有效期届满)


class PolicyRepealedData(Record):
    kind: RepealKind = RepealKind.REPEALED
    repealed_on: Day = Field(description="the first day the policy is no longer in force")
    document_number: str | None = Field(None, description="文号 of the act that repeals it")
    reason: str | None = None


class PolicyRepealed(Envelope):
    """An issued policy is repealed or expires (废止、失效). From `repealed_on` on, its Q&A
    entries leave the library of policies in force by themselves (they stay in the log and in
    the department's view). Only an issued policy can be repealed; a later repeal restates the
    date."""

    type: Literal["PolicyRepealed"] = "PolicyRepealed"
    data: PolicyRepealedData


# ── public opinion (政务舆情) ─────────────────────────────────────────────────────────────────


class OpinionDetectedData(Record):
    opinion_id: str = Field(min_length=1, max_length=128)
    severity: OpinionSeverity
    kind: OpinionKind
    summary: str = Field(min_length=1)
    url: HttpUrl | None = None
    detected_at: Moment


class OpinionDetected(Envelope):
    """舆情 detected by the cyberspace office's monitoring (OP-1, OP-5); OP-4's clock starts.
    It belongs to the case of the policy it is about: that case's `case_id` and `department`."""

    type: Literal["OpinionDetected"] = "OpinionDetected"
    data: OpinionDetectedData


class ResponseIssuedData(Record):
    opinion_id: str = Field(min_length=1, max_length=128)
    kind: ResponseKind
    url: HttpUrl | None = None
    referred_to: tuple[str, ...] = Field((), description="公安机关 / 网信部门 for illegal content")


class ResponseIssued(Envelope):
    """The drafting unit responds to an opinion (OP-3, OP-4)."""

    REFERS_TO: ClassVar[tuple[str, str] | None] = ("opinion_id", "opinion")
    type: Literal["ResponseIssued"] = "ResponseIssued"
    data: ResponseIssuedData


class SuggestionDecisionData(Record):
    opinion_id: str = Field(min_length=1, max_length=128)
    rationale: str = Field(min_length=1)


class SuggestionAdopted(Envelope):
    """A reasonable suggestion assessed and adopted (OP-2)."""

    REFERS_TO: ClassVar[tuple[str, str] | None] = ("opinion_id", "opinion")
    type: Literal["SuggestionAdopted"] = "SuggestionAdopted"
    data: SuggestionDecisionData


class SuggestionDeclined(Envelope):
    """A suggestion assessed and declined, with the reason (OP-2)."""

    REFERS_TO: ClassVar[tuple[str, str] | None] = ("opinion_id", "opinion")
    type: Literal["SuggestionDeclined"] = "SuggestionDeclined"
    data: SuggestionDecisionData


# ── supervision (监督保障) ────────────────────────────────────────────────────────────────────


class TrainingHeldData(Record):
    title: str = Field(min_length=1)
    held_on: Day
    participants: tuple[Token, ...] = ()


class TrainingHeld(Envelope):
    """政策解读业务培训 by the government office (SUP-1): opens a training case."""

    OPENS_CASE: ClassVar[bool] = True
    CASE_KIND: ClassVar[str | None] = "training"
    type: Literal["TrainingHeld"] = "TrainingHeld"
    data: TrainingHeldData


class InspectionConductedData(Record):
    quarter: str = Field(pattern=r"^\d{4}Q[1-4]$")
    conducted_on: Day
    departments: tuple[Token, ...] = ()
    summary: str | None = None


class InspectionConducted(Envelope):
    """政策解读情况检查 for one quarter (SUP-1): opens an inspection case."""

    OPENS_CASE: ClassVar[bool] = True
    CASE_KIND: ClassVar[str | None] = "inspection"
    type: Literal["InspectionConducted"] = "InspectionConducted"
    data: InspectionConductedData


class InspectionResultsPublishedData(Record):
    url: HttpUrl
    published_on: Day
    chain_head: str | None = Field(None, description="signed hash-chain head the report pins")


class InspectionResultsPublished(Envelope):
    """检查结果在区政府网站公开发布 (SUP-1)."""

    CASE_KIND: ClassVar[str | None] = "inspection"
    type: Literal["InspectionResultsPublished"] = "InspectionResultsPublished"
    data: InspectionResultsPublishedData


# ── the working-day calendar (工作日历) ───────────────────────────────────────────────────────


class CalendarYearConfirmedData(Record):
    """One year of the State Council General Office's holiday notice (国务院办公厅关于部分节假日
    安排的通知), as checked by two people against the published notice."""

    year: Annotated[int, Field(ge=EARLIEST_DAY.year, le=LATEST_DAY.year), JsonInteger] = Field(
        description="the calendar year the notice arranges (its days are `Day`s: in the domain)"
    )
    notice: str = Field(min_length=1, max_length=200, description="the notice's number (文号)")
    holidays: tuple[Day, ...] = Field(
        min_length=1, description="every day off of the notice's holiday periods (放假), in year"
    )
    make_up_working_days: tuple[Day, ...] = Field(
        (), description="every Saturday or Sunday the notice makes a working day (调休上班)"
    )
    comment: str | None = None


class CalendarYearConfirmed(Envelope):
    """The government office confirms a calendar year for the deadline clocks (PUB-2, QA-4):
    opens the year's calendar case ``calendar-<year>``, once. From its place in the log on,
    every clock counts with this year, and a clock held "pending calendar" is computed."""

    OPENS_CASE: ClassVar[bool] = True
    CASE_KIND: ClassVar[str | None] = "calendar"
    type: Literal["CalendarYearConfirmed"] = "CalendarYearConfirmed"
    data: CalendarYearConfirmedData


# ── the system's own derived events ──────────────────────────────────────────────────────────


class Suggestion(Record):
    """One library entry the search offered for a consultation, with how well it matched."""

    entry_id: str = Field(min_length=1, max_length=128)
    case_id: CaseId = Field(description="the policy case the entry belongs to")
    score: float = Field(ge=0, allow_inf_nan=False, description="bm25, comparable within one search")
    confidence: float = Field(ge=0, le=1, allow_inf_nan=False)


class ConsultationMatchedData(Record):
    consultation_id: str = Field(min_length=1, max_length=128)
    suggestions: tuple[Suggestion, ...] = Field(
        (), max_length=100, description="in rank order; empty when nothing matched"
    )
    answerable: bool = Field(
        description="the best suggestion reaches the confidence threshold: answer at once "
        "from it; otherwise refer the question to the drafting unit (QA-4)"
    )
    threshold: float = Field(ge=0, le=1, allow_inf_nan=False)
    searched_on: Day = Field(description="the library of policies in force on this day was searched")


class ConsultationMatched(Envelope):
    """Reserved for the matching service (QA-4): what the Q&A library suggests for a
    consultation, recorded once on its case so the hotline or the window sees it, and so that
    replays read the suggestions rather than search again."""

    REFERS_TO: ClassVar[tuple[str, str] | None] = ("consultation_id", "consultation")
    type: Literal["ConsultationMatched"] = "ConsultationMatched"
    data: ConsultationMatchedData


class FindingRecordedData(Record):
    finding_id: str = Field(min_length=1, max_length=128)
    rule_id: str = Field(pattern=r"^[A-Z]+-\d+$")
    rule_set: str = Field(description="the rule set in force at the fact's occurred-at")
    severity: Severity
    evidence: tuple[Evidence, ...] = Field(min_length=1)
    message_zh: str
    message_en: str


class FindingRecorded(Envelope):
    """A rule of RULES.md is not kept; recorded next to the fact that breaks it."""

    CASE_KIND: ClassVar[str | None] = None
    type: Literal["FindingRecorded"] = "FindingRecorded"
    data: FindingRecordedData


class FindingResolvedData(Record):
    finding_id: str = Field(min_length=1, max_length=128)
    resolved_by: Evidence


class FindingResolved(Envelope):
    """A later event mends what a finding reported (a late review, a correction)."""

    CASE_KIND: ClassVar[str | None] = None
    REFERS_TO: ClassVar[tuple[str, str] | None] = ("finding_id", "finding")
    type: Literal["FindingResolved"] = "FindingResolved"
    data: FindingResolvedData


class DeadlineData(Record):
    """One clock of the deadline service: which rule, for what, due when, on which calendar."""

    clock_id: str = Field(min_length=1, max_length=160)
    rule_id: str = Field(pattern=r"^[A-Z]+-\d+$")
    trigger: Evidence
    due_at: AwareDatetime | None = Field(
        None, description="None while the calendar year is unknown (computed, never sent in)"
    )
    calendar: str | None = Field(None, description="the calendar source the due time used")
    met_by: Evidence | None = None


class DeadlineStarted(Envelope):
    """Reserved for the deadline service: a clock starts."""

    CASE_KIND: ClassVar[str | None] = None
    type: Literal["DeadlineStarted"] = "DeadlineStarted"
    data: DeadlineData


class DeadlinePendingCalendar(Envelope):
    """Reserved for the deadline service: a clock needs a calendar year nobody has supplied."""

    CASE_KIND: ClassVar[str | None] = None
    type: Literal["DeadlinePendingCalendar"] = "DeadlinePendingCalendar"
    data: DeadlineData


class DeadlineWarned(Envelope):
    """Reserved for the deadline service: a clock is close to its end."""

    CASE_KIND: ClassVar[str | None] = None
    type: Literal["DeadlineWarned"] = "DeadlineWarned"
    data: DeadlineData


class DeadlineMet(Envelope):
    """Reserved for the deadline service: the duty was met (on time or late)."""

    CASE_KIND: ClassVar[str | None] = None
    type: Literal["DeadlineMet"] = "DeadlineMet"
    data: DeadlineData


class DeadlineBreached(Envelope):
    """Reserved for the deadline service: the clock ran out."""

    CASE_KIND: ClassVar[str | None] = None
    type: Literal["DeadlineBreached"] = "DeadlineBreached"
    data: DeadlineData


# ── personal data (个人信息) ─────────────────────────────────────────────────────────────────


class ErasureReason(StrEnum):
    """Why a data subject's personal data was erased (个人信息保护法 art. 47)."""

    REQUEST = "request"  # 个人请求删除
    RETENTION = "retention"  # 处理目的已实现：保存期满


class PersonalDataErasedData(Record):
    subject_id: str = Field(pattern=r"^ds-[0-9a-f]{32}$")
    key_versions: list[Annotated[int, Field(ge=1)]] = Field(
        description="the key versions destroyed: every field sealed with them is erased"
    )
    reason: ErasureReason
    consultation_ids: list[str] = Field(
        description="the consultations on this case whose asker was this subject"
    )


class PersonalDataErased(Envelope):
    """Reserved for the privacy service: a data subject's keys were destroyed, so their personal
    fields on this case now read as erased (已删除). Who (`actor`), when (`occurred_at`) and
    which subject; no personal data. One per case the subject appears on."""

    CASE_KIND: ClassVar[str | None] = None
    type: Literal["PersonalDataErased"] = "PersonalDataErased"
    data: PersonalDataErasedData


# ── the catalogue ────────────────────────────────────────────────────────────────────────────

EVENT_TYPES: tuple[type[Envelope], ...] = (
    DraftSubmitted,
    ConsultationDraftPublished,
    ConsultationResultsPublished,
    ReviewSigned,
    SubmissionReturned,
    DraftResubmitted,
    PolicyIssued,
    MaterialPublished,
    MediaInterpretationReported,
    MediaInterpretationCorrected,
    ConsultationReceived,
    ConsultationAnswered,
    ConsultationReferred,
    QAEntryPublished,
    QAEntryRevised,
    QAEntryWithdrawn,
    PolicyRepealed,
    OpinionDetected,
    ResponseIssued,
    SuggestionAdopted,
    SuggestionDeclined,
    TrainingHeld,
    InspectionConducted,
    InspectionResultsPublished,
    CalendarYearConfirmed,
    ConsultationMatched,
    FindingRecorded,
    FindingResolved,
    DeadlineStarted,
    DeadlinePendingCalendar,
    DeadlineWarned,
    DeadlineMet,
    DeadlineBreached,
    PersonalDataErased,
)
BY_TYPE: dict[str, type[Envelope]] = {t.__name__: t for t in EVENT_TYPES}

MATCHER_TYPES: frozenset[str] = frozenset({"ConsultationMatched"})
"""Derived by the matching service alone (QA-4)."""

SYSTEM_TYPES: frozenset[str] = MATCHER_TYPES | frozenset(
    t.__name__
    for t in EVENT_TYPES
    if t.__name__.startswith(("Finding", "Deadline")) or t.__name__ == "PersonalDataErased"
)
"""Derived by Jiedu itself; no upstream source may emit them."""

CALENDAR_TYPES: frozenset[str] = frozenset({"CalendarYearConfirmed"})
"""Upstream facts about the working-day calendar, not about interpretation work: they start no
SUP-1 period (a year confirmed in November is no sign of interpretation work that quarter)."""

Event = Annotated[
    DraftSubmitted
    | ConsultationDraftPublished
    | ConsultationResultsPublished
    | ReviewSigned
    | SubmissionReturned
    | DraftResubmitted
    | PolicyIssued
    | MaterialPublished
    | MediaInterpretationReported
    | MediaInterpretationCorrected
    | ConsultationReceived
    | ConsultationAnswered
    | ConsultationReferred
    | QAEntryPublished
    | QAEntryRevised
    | QAEntryWithdrawn
    | PolicyRepealed
    | OpinionDetected
    | ResponseIssued
    | SuggestionAdopted
    | SuggestionDeclined
    | TrainingHeld
    | InspectionConducted
    | InspectionResultsPublished
    | CalendarYearConfirmed
    | ConsultationMatched
    | FindingRecorded
    | FindingResolved
    | DeadlineStarted
    | DeadlinePendingCalendar
    | DeadlineWarned
    | DeadlineMet
    | DeadlineBreached
    | PersonalDataErased,
    Field(discriminator="type"),
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)

def personal_fields(model: type[Record]) -> tuple[str, ...]:
    """The fields of `model` marked `PERSONAL`: the one list the intake encrypts."""
    return tuple(
        name
        for name, info in model.model_fields.items()
        if info.json_schema_extra == PERSONAL
    )


__all__ = [
    "BY_TYPE",
    "CALENDAR_TYPES",
    "EVENT_ADAPTER",
    "EVENT_TYPES",
    "MATCHER_TYPES",
    "SYSTEM_TYPES",
    "CaseId",
    "Event",
    "Token",
]
