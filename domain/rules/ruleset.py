"""The rules as versioned data (规则版本): every parameter of RULES.md that the district may revise.

Why data and not constants in the rule code: the district revises its interpretation rules (the
2021 制度(修订) replaced the 2020 制度, 政府办白头〔2020〕227号). An event is judged by the rule
set in force at its ``occurred_at``, and every finding names that set, so replaying 2022 history
after a 2026 revision judges 2022 facts by 2022 rules, never by accident by the new ones.

A new revision is a new :class:`RuleSet` appended to :data:`RULE_SETS` with its own
``effective_from`` date (the day the notice says it takes effect, 施行之日, Asia/Shanghai).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from types import MappingProxyType
from typing import Final

from domain.calendar import SHANGHAI
from events.catalogue import (
    Channel,
    ConsultationChannel,
    Form,
    IssuerKind,
    OpinionKind,
    OpinionSeverity,
    ResponseKind,
    ReviewGround,
    ReviewStage,
    Scope,
)

# Rule sets take effect at local midnight in mainland China (SHANGHAI, from the calendar).


class NoRuleSet(LookupError):
    """No known rule set was in force at that time (e.g. a fact from before 2021-11-24, when the
    2020 rules applied, which the system does not hold as data)."""


@dataclass(frozen=True)
class ChainStep:
    """One signature of a review chain and the rule of RULES.md that asks for it."""

    stage: ReviewStage
    rule_id: str


@dataclass(frozen=True)
class RuleSet:
    """One version of the district's interpretation rules, in force from ``effective_from``."""

    name: str
    """Named by every finding judged under this set."""
    source: str
    """The document that states these rules."""
    effective_from: date
    """施行之日: facts that occurred from local midnight of this day on are judged by this set."""
    in_scope: frozenset[Scope]
    """SCOPE-1: the scopes that carry the interpretation duties (应当进行解读)."""
    review_chains: Mapping[IssuerKind, tuple[ChainStep, ...]]
    """REV-1..4: the signatures, in order, that complete the review of each kind of document."""
    review_grounds: frozenset[ReviewGround]
    """REV-1: the grounds of 三审三校 (政治、法律、政策、保密、文字、舆情)."""
    grounds_stages: frozenset[ReviewStage]
    """The stages that are 三审三校 and so must cover ``review_grounds`` when they state grounds."""
    plan_forms: tuple[frozenset[Form], ...]
    """PLAN-1: the template's starred forms; each entry is met by any one of its forms."""
    plan_channels: tuple[Channel, ...]
    """PLAN-1: the template's starred channels (government website, news media)."""
    material_sections: tuple[str, ...]
    """MAT-1: the sections (fields of ``Material``) every interpretation material covers."""
    benefit_office_fields: tuple[str, ...]
    """MAT-1: what a material on benefits (政策兑现) states about the office."""
    publication_working_days: int
    """PUB-2: policy and text interpretation on the district website within this many days."""
    min_forms: int
    """PUB-3: distinct forms of interpretation each in-scope policy gets."""
    referral_working_days: int
    """QA-4: the drafting unit replies to a referred consultation within this many days."""
    opinion_response_hours: Mapping[OpinionSeverity, int]
    """OP-4: clock hours from detection to response, by the opinion's severity."""
    consultation_channels: frozenset[ConsultationChannel]
    """QA-3: the channels consultations are taken on (一号答, 一网答, 一站式)."""
    fitting_responses: Mapping[OpinionKind, frozenset[ResponseKind]]
    """OP-3: the kinds of response that fit each kind of opinion."""
    must_refer: frozenset[OpinionKind]
    """OP-3: opinions whose clues go to the police / cyberspace office (移交公安机关、网信部门)."""

    @property
    def starts_at(self) -> datetime:
        return datetime.combine(self.effective_from, time(), SHANGHAI)

    def chain(self, issuer: IssuerKind) -> tuple[ChainStep, ...]:
        return self.review_chains[issuer]


_HEADS_DISTRICT = tuple(
    ChainStep(s, "REV-1")
    for s in (ReviewStage.SECTION_HEAD, ReviewStage.DEPUTY_HEAD, ReviewStage.PRINCIPAL_HEAD)
)
_HEADS_DEPARTMENT = tuple(ChainStep(s.stage, "REV-4") for s in _HEADS_DISTRICT)
_DEPARTMENT_CHAIN = (*_HEADS_DEPARTMENT, ChainStep(ReviewStage.INTERPRETATION_UNIT, "REV-4"))

_ANSWER_FALSEHOOD = frozenset(
    {ResponseKind.REBUTTAL, ResponseKind.CORRECTION, ResponseKind.REFERRAL_TO_AUTHORITIES}
)

YUZHONG_2021: Final = RuleSet(
    name="yuzhong-2021",
    source="重庆市渝中区行政机关政策解读工作制度(修订), 区政府办公室 2021-11-24",
    effective_from=date(2021, 11, 24),
    in_scope=frozenset({Scope.NORMATIVE, Scope.HIGH_IMPACT, Scope.DESIGNATED}),
    review_chains=MappingProxyType(
        {
            # 四(二)1: 以区政府名义印发 (含经区政府同意以部门名义印发): 三审三校, 新闻办, 领导审签
            IssuerKind.DISTRICT_GOVERNMENT: (
                *_HEADS_DISTRICT,
                ChainStep(ReviewStage.NEWS_OFFICE, "REV-2"),
                ChainStep(ReviewStage.LEADERS_SIGN_OFF, "REV-3"),
            ),
            # 四(二)2: 以部门名义印发 (联合发文亦以部门名义): 三审三校, 本机关政策解读工作机构
            IssuerKind.DEPARTMENT: _DEPARTMENT_CHAIN,
            IssuerKind.JOINT: _DEPARTMENT_CHAIN,
        }
    ),
    review_grounds=frozenset(ReviewGround),
    grounds_stages=frozenset(s.stage for s in _HEADS_DISTRICT),
    plan_forms=(
        frozenset({Form.TEXT}),  # 发布文字解读材料*
        frozenset({Form.CHART, Form.ANIMATION, Form.AUDIO_VIDEO}),  # 图表图解、动漫、音频视频*
        frozenset({Form.PRESS_RELEASE}),  # 发布政策解读新闻通稿*
    ),
    plan_channels=(Channel.GOVERNMENT_WEBSITE, Channel.NEWS_MEDIA),  # 政府网站*, 新闻媒体*
    material_sections=(
        "background",  # (1) 出台背景、政策依据、目的意义
        "main_content",  # (2) 主要内容、核心举措
        "audience",  # 适用对象
        "standards",  # 执行标准
        "time_limits",  # 时限
        "cautions",  # 注意事项
        "key_terms",  # (3) 关键词、专业名词解释
        "old_vs_new",  # (4) 新旧政策差异对比
    ),
    # (5) 政策兑现机构的名称、地址、联系方式、工作时间
    benefit_office_fields=("name", "address", "contact", "hours"),
    publication_working_days=20,
    min_forms=2,
    referral_working_days=5,
    opinion_response_hours=MappingProxyType(
        {
            OpinionSeverity.MAJOR: 24,
            OpinionSeverity.HIGH_ATTENTION: 24,
            OpinionSeverity.ORDINARY: 48,
        }
    ),
    consultation_channels=frozenset(ConsultationChannel),
    fitting_responses=MappingProxyType(
        {
            # 六(二): 合理建议 are assessed (OP-2); a public answer to one explains or informs
            OpinionKind.SUGGESTION: frozenset(
                {ResponseKind.CLARIFICATION, ResponseKind.CORRECTION}
            ),
            # 六(三): 模糊认识 → 解疑释惑、澄清事实; 错误看法、误解误读 → 发布权威信息、引导和纠正
            OpinionKind.MISUNDERSTANDING: frozenset(
                {ResponseKind.CLARIFICATION, ResponseKind.CORRECTION}
            ),
            # 虚假和不实信息 → 及时回应 (and 涉嫌违法的线索 → 移交)
            OpinionKind.FALSE_INFORMATION: _ANSWER_FALSEHOOD,
            OpinionKind.ILLEGAL_CONTENT: _ANSWER_FALSEHOOD,
        }
    ),
    must_refer=frozenset({OpinionKind.ILLEGAL_CONTENT}),
)

RULE_SETS: Final[tuple[RuleSet, ...]] = (YUZHONG_2021,)
"""Every rule set the system knows, oldest first. A revision is appended, never edited in place:
findings already recorded name the set they were judged by."""


def ruleset_at(occurred_at: datetime) -> RuleSet:
    """The rule set in force at ``occurred_at`` (an aware time); raises :class:`NoRuleSet`."""
    if occurred_at.tzinfo is None:
        raise ValueError("occurred_at must be timezone-aware")
    for rules in reversed(RULE_SETS):
        if rules.starts_at <= occurred_at:
            return rules
    raise NoRuleSet(f"no rule set in force at {occurred_at.isoformat()}")


def ruleset_named(name: str) -> RuleSet:
    """The rule set a finding names; raises :class:`NoRuleSet` for an unknown name."""
    for rules in RULE_SETS:
        if rules.name == name:
            return rules
    raise NoRuleSet(f"no rule set named {name!r}")
