"""The demo (演示数据): a realistic quarter of Yuzhong District's policy interpretation, as the
upstream systems would send it to the intake.

What: `generate()` returns the messages that the district's sources publish in one quarter —
the departments', management committees' and subdistrict offices' OA systems (起草、审核、印发、
发布), the news office and the government office (审核把关、领导审签、退文、培训、检查), the
cyberspace office's monitoring feed (舆情监测、媒体解读), the 12345 hotline, the website mailbox and
the service window (一号答、一网答、一站式). Every path of RULES.md is taken: district-government,
department and joint documents, returns, consultation drafts, implementation measures,
out-of-scope documents; some cases on time, some late, some breaking rules. The rules are *not*
applied here: the demo sends facts, Jiedu derives findings.

What a typical case does, as a district that keeps its rules would: the drafting unit submits the
document together with the plan and a material for every form the plan names, i.e. everything
that will later be published (三同步, SYNC-1); the review chain of its issuer signs in order
(REV-1..4) before anything is issued or published (REV-5); each material goes on the district
website first, linked to the policy and with its URL, and only then on WeChat, the news media and
the other channels (PUB-1). A deliberate minority breaks a rule — the rare cards of the decks in
`Demo`, each drawn to break one rule (and what follows from it) — so that every rule the events
can show does show, a few times, in a quarter; with the default seed about three cases in four
have no violation-severity finding.

Why deterministic: the demo is what a newcomer, a test and a benchmark load; a seed number fixes
every choice (`random.Random` seeded with seed and quarter), so the output is the same on every
machine and run. Rare paths are drawn from a `Deck` (a shuffled multiset), which guarantees that
each of them comes up once per round of draws instead of hoping that chance picks it.

Time: office events happen in office hours on the working days of the official calendar
(`domain.calendar`, 调休 included), Asia/Shanghai. Opinions are detected and answered at any hour
of any day (舆情不过周末). A case runs as far as the quarter reaches: what would happen after its
end is not sent, so cases started late are still in review, and policies issued near the end have
deadlines in the next quarter.

The Q&A library (QA-1, QA-4): once a policy is issued, its department publishes the entries
of `services/tools/data/qa/` written for that policy's title (the first case of a title this
quarter, as the department's `qa` system). Consultations about a policy with a library ask
what citizens ask of its entries (an entry's citizen questions), and an answer from the library
names the entry whose question was asked; questions the referral path takes are drawn from
the questions no entry answers (`unanswerable.json`), so Jiedu's matching (`services.matcher`)
has something to decline. A policy without a library of its own on its case has its
consultations referred to the drafting unit.

Order: the order in which sources publish, which is the order of `occurred_at` except that sources
are not ordered among themselves: a few messages overtake their prerequisite from another source
by up to three places (e.g. the library's answer to a hotline call before the call itself); the
intake waits for prerequisites. Each source's own messages stay in its order.
"""

from __future__ import annotations

import random
import re
import tempfile
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Generic, NamedTuple, TypeVar

import orjson

from domain.calendar import SHANGHAI, WorkingDayCalendar
from events.catalogue import EVENT_ADAPTER
from events.organs import load_organs
from events.roles import MONITOR
from events.streams import intake_subject
from projections.qa_library import QALibrary
from services.adapters.readmodels import open_store
from services.qa import QASearch
from services.tools import bench_qa, qa_set

__all__ = ["Message", "generate"]

JSON = dict[str, Any]
T = TypeVar("T")

SITE = "https://www.cqyz.gov.cn"
OA = "oa"
HOTLINE = ("gov_services_office", "hotline")
WINDOW = ("gov_services_office", "window")
LIBRARY = ("drc", "qa_library")  # 区发改委: the district Q&A library on the 12345 knowledge base
SIX_GROUNDS = ("political", "legal", "policy", "confidentiality", "wording", "public_opinion")
OFFICE_START = time(8, 30)
OFFICE_MINUTES = 9 * 60 + 20  # 08:30 … 17:50


@dataclass(frozen=True)
class Message:
    """One message as a source publishes it to INTAKE."""

    source_department: str
    source_system: str
    case_id: str
    body: JSON  # the event as a JSON-able dict

    @property
    def subject(self) -> str:
        return intake_subject(self.source_department, self.source_system, self.case_id)

    def encode(self) -> bytes:
        return orjson.dumps(self.body)


def generate(quarter: str = "2026Q3", seed: int = 2026, cases: int = 300) -> list[Message]:
    """The messages of one quarter (`"2026Q3"`), `cases` policy cases plus the government
    office's training and quarterly inspection, in publication order. Same arguments, same
    messages. Raises `domain.calendar.UnknownYear` for a year the calendar does not know."""
    demo = Demo(Quarter.parse(quarter), seed)
    paths = Deck(demo.rng, {path: weight for path, weight in PATHS})
    for number in range(1, cases + 1):
        paths.draw()(demo, f"YZ-{quarter}-{number:04d}")
    answer_consultations(demo)
    training(demo)
    inspection(demo)
    return demo.messages()


# ── time ─────────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Quarter:
    """One calendar quarter and its working days."""

    name: str
    year: int
    number: int
    days: tuple[date, ...]  # working days, ascending
    end: datetime  # the first moment after the quarter

    @classmethod
    def parse(cls, name: str) -> Quarter:
        match = re.fullmatch(r"(\d{4})Q([1-4])", name)
        if match is None:
            raise ValueError(f"quarter {name!r} is not like 2026Q3")
        year, number = int(match[1]), int(match[2])
        first = date(year, 3 * number - 2, 1)
        after = date(year + 1, 1, 1) if number == 4 else date(year, 3 * number + 1, 1)
        calendar = WorkingDayCalendar.load(None)
        days = tuple(
            d
            for d in (first + timedelta(days=i) for i in range((after - first).days))
            if calendar.is_working_day(d)
        )
        end = datetime.combine(after, time(0), tzinfo=SHANGHAI)
        return cls(name, year, number, days, end)

    def office_time(self, index: int, rng: random.Random) -> datetime | None:
        """A moment in office hours on the `index`-th working day, or None past the quarter."""
        if index >= len(self.days):
            return None
        start = datetime.combine(self.days[index], OFFICE_START, tzinfo=SHANGHAI)
        return start + timedelta(minutes=rng.randint(0, OFFICE_MINUTES), seconds=rng.randint(0, 59))

    def later(self, t: datetime, working_days: int, rng: random.Random) -> datetime | None:
        """`working_days` after `t` in office hours (0: later the same working day if there is
        time left, else the next one); None past the quarter."""
        if working_days == 0:
            soon = t + timedelta(minutes=rng.randint(5, 90), seconds=rng.randint(0, 59))
            if soon.date() == t.date() and soon.time() < time(18) and soon.date() in self.days:
                return soon
            working_days = 1
        return self.office_time(bisect_right(self.days, t.date()) - 1 + working_days, rng)


def book(title: str) -> str:
    """A title in book-title marks, inner marks turned into 〈〉 as Chinese typesetting wants."""
    return "《" + title.replace("《", "〈").replace("》", "〉") + "》"


class Deck(Generic[T]):
    """Draws from weighted choices like cards from a shuffled deck: each round of draws yields
    every choice exactly `weight` times, so rare paths appear without becoming common."""

    def __init__(self, rng: random.Random, weights: dict[T, int]) -> None:
        self.rng = rng
        self.weights = weights
        self.cards: list[T] = []

    def draw(self) -> T:
        if not self.cards:
            self.cards = [c for c, w in self.weights.items() for _ in range(w)]
            self.rng.shuffle(self.cards)
        return self.cards.pop()


# ── the district: organs, people, titles, numbers ────────────────────────────────────────────


class Title(NamedTuple):
    text: str
    scope: str  # normative | high_impact | designated
    benefits: bool = False  # 涉及政策兑现


N, H, D = "normative", "high_impact", "designated"

DRAFTERS: dict[str, tuple[str, tuple[Title, ...]]] = {
    # code: (文号 prefix, the organ's policies)
    "drc": ("渝中发改发", (
        Title("关于促进楼宇经济高质量发展的若干措施", N, True),
        Title("渝中区推动数字经济和实体经济深度融合实施方案", H),
        Title("渝中区重大项目前期工作经费管理办法", N, True),
        Title("渝中区社会信用体系建设工作要点", D),
        Title("关于进一步优化营商环境激发经营主体活力的若干措施", N, True),
        Title("渝中区价格监测预警工作实施细则", N),
        Title("渝中区推动成渝地区双城经济圈建设重点任务", H),
        Title("渝中区政府投资项目管理办法", N),
    )),
    "education": ("渝中教发", (
        Title("渝中区义务教育招生入学工作实施方案", H),
        Title("渝中区普惠性民办幼儿园认定及扶持办法", N, True),
        Title("渝中区家庭经济困难学生资助工作实施细则", N, True),
        Title("渝中区中小学课后服务工作实施方案", H),
        Title("渝中区校外培训机构监督管理办法", N),
        Title("渝中区教师队伍建设三年行动计划", D),
    )),
    "science": ("渝中科发", (
        Title("渝中区支持科技创新若干政策措施", N, True),
        Title("渝中区科技型企业培育专项资金管理办法", N, True),
        Title("渝中区创新创业孵化载体认定管理办法", N, True),
        Title("渝中区科技成果转化奖励实施细则", N, True),
        Title("渝中区科普工作要点", D),
    )),
    "economy_it": ("渝中经信发", (
        Title("渝中区促进软件和信息服务业发展若干措施", N, True),
        Title("渝中区中小企业纾困帮扶专项资金管理办法", N, True),
        Title("渝中区专精特新企业培育实施方案", H, True),
        Title("渝中区5G应用场景建设行动计划", H),
        Title("渝中区节能降耗工作实施方案", D),
    )),
    "civil_affairs": ("渝中民发", (
        Title("渝中区城乡最低生活保障实施细则", N, True),
        Title("渝中区社区居家养老服务补贴管理办法", N, True),
        Title("渝中区特困人员救助供养实施办法", N, True),
        Title("渝中区临时救助实施细则", N, True),
        Title("渝中区社区养老服务设施建设实施方案", H),
        Title("渝中区社会组织登记管理工作规程", N),
        Title("渝中区惠民殡葬补贴实施方案", H, True),
    )),
    "justice": ("渝中司发", (
        Title("渝中区行政规范性文件合法性审核办法", N),
        Title("渝中区法律援助工作实施细则", N, True),
        Title("渝中区普法依法治理工作要点", D),
        Title("渝中区人民调解员以案定补实施办法", N, True),
        Title("渝中区公共法律服务体系建设实施方案", H),
    )),
    "finance": ("渝中财发", (
        Title("渝中区区级财政专项资金管理办法", N),
        Title("渝中区政府采购内部控制管理办法", N),
        Title("渝中区预算绩效管理实施办法", N),
        Title("渝中区政府性融资担保风险补偿资金管理办法", N, True),
    )),
    "hrss": ("渝中人社发", (
        Title("渝中区稳就业促就业若干措施", N, True),
        Title("渝中区高校毕业生就业创业补贴实施细则", N, True),
        Title("渝中区创业担保贷款及贴息管理办法", N, True),
        Title("渝中区职业技能提升行动实施方案", H, True),
        Title("渝中区根治欠薪工作实施方案", H),
        Title("渝中区灵活就业人员社会保险补贴办法", N, True),
        Title("渝中区英才计划人才引进实施办法", N, True),
    )),
    "planning": ("渝中规资发", (
        Title("渝中区城市更新单元规划管理办法", N),
        Title("渝中区历史文化街区保护利用实施方案", H),
        Title("渝中区不动产登记便民服务若干措施", H),
        Title("渝中区地质灾害防治工作方案", D),
    )),
    "ecology": ("渝中环发", (
        Title("渝中区大气污染防治行动计划", H),
        Title("渝中区噪声污染防治工作方案", H),
        Title("渝中区餐饮油烟治理补助办法", N, True),
        Title("渝中区生态环境损害赔偿工作实施办法", N),
        Title("渝中区长江保护修复攻坚行动实施方案", H),
    )),
    "housing": ("渝中建发", (
        Title("渝中区老旧小区改造实施方案", H, True),
        Title("渝中区既有住宅增设电梯补助资金管理办法", N, True),
        Title("渝中区公共租赁住房管理实施细则", N, True),
        Title("渝中区保障性租赁住房发展实施方案", H, True),
        Title("渝中区城市危旧房改造实施办法", N, True),
        Title("渝中区物业服务质量考评办法", N),
        Title("渝中区建筑工地扬尘控制管理办法", N),
        Title("渝中区住房租赁市场管理若干措施", N),
    )),
    "urban_management": ("渝中城管发", (
        Title("渝中区生活垃圾分类管理实施办法", N),
        Title("渝中区户外广告设置管理办法", N),
        Title("渝中区占道经营疏导点管理办法", N),
        Title("渝中区城市照明管理规定", N),
        Title("渝中区山城步道管护实施方案", H),
        Title("渝中区共享单车停放秩序管理办法", N),
    )),
    "transport": ("渝中交发", (
        Title("渝中区公共停车场建设运营补助办法", N, True),
        Title("渝中区智慧停车推进实施方案", H),
        Title("渝中区网络预约出租汽车管理实施细则", N),
        Title("渝中区轨道交通站点接驳优化方案", H),
        Title("渝中区交通拥堵治理三年行动计划", H),
    )),
    "commerce": ("渝中商务发", (
        Title("渝中区促进消费提质扩容若干措施", N, True),
        Title("渝中区国际消费中心城市核心区建设实施方案", H),
        Title("渝中区夜间经济发展扶持办法", N, True),
        Title("渝中区老字号传承发展扶持办法", N, True),
        Title("渝中区外贸稳增长若干措施", N, True),
        Title("渝中区首店经济扶持资金管理办法", N, True),
    )),
    "culture_tourism": ("渝中文旅发", (
        Title("渝中区文化旅游产业发展专项资金管理办法", N, True),
        Title("渝中区母城文化传承保护实施方案", H),
        Title("渝中区A级旅游景区创建奖励办法", N, True),
        Title("渝中区演艺市场繁荣发展若干措施", N, True),
        Title("渝中区公共文化服务体系建设实施方案", D),
    )),
    "health": ("渝中卫健发", (
        Title("渝中区家庭医生签约服务实施方案", H),
        Title("渝中区基本公共卫生服务项目实施方案", H),
        Title("渝中区医疗卫生人才引进和培养办法", N, True),
        Title("渝中区婴幼儿照护服务发展实施方案", H, True),
        Title("渝中区爱国卫生运动工作要点", D),
    )),
    "veterans": ("渝中退役军人发", (
        Title("渝中区退役军人就业创业扶持办法", N, True),
        Title("渝中区优抚对象医疗保障实施办法", N, True),
        Title("渝中区退役军人服务站建设规范", D),
    )),
    "emergency": ("渝中应急发", (
        Title("渝中区突发事件总体应急预案", H),
        Title("渝中区安全生产举报奖励办法", N, True),
        Title("渝中区高层建筑消防安全管理办法", N),
        Title("渝中区自然灾害救助应急预案", H),
    )),
    "audit": ("渝中审发", (
        Title("渝中区政府投资项目审计监督办法", N),
        Title("渝中区审计整改工作实施办法", N),
    )),
    "market_regulation": ("渝中市监发", (
        Title("渝中区经营主体登记注册便利化若干措施", H),
        Title("渝中区食品安全两个责任落实实施方案", H),
        Title("渝中区知识产权资助奖励办法", N, True),
        Title("渝中区质量强区建设实施方案", D),
        Title("渝中区特种设备安全监督管理办法", N),
    )),
    "statistics": ("渝中统发", (
        Title("渝中区统计数据质量管理办法", N),
        Title("渝中区统计调查项目管理办法", N),
    )),
    "medical_security": ("渝中医保发", (
        Title("渝中区城乡居民医疗保险参保缴费实施细则", N, True),
        Title("渝中区医疗救助实施办法", N, True),
        Title("渝中区长期护理保险实施方案", H, True),
        Title("渝中区医保基金监管举报奖励办法", N, True),
        Title("渝中区定点医药机构管理办法", N),
    )),
    "sasac": ("渝中国资发", (
        Title("渝中区区属国有企业投资监督管理办法", N),
        Title("渝中区国有资产出租管理办法", N),
    )),
    "gov_services_office": ("渝中政务发", (
        Title("渝中区政务服务一网通办实施方案", H),
        Title("渝中区高效办成一件事工作方案", H),
        Title("渝中区政务服务好差评实施办法", N),
    )),
    "jiefangbei_cbd": ("解放碑管委发", (
        Title("解放碑中央商务区楼宇招商扶持办法", N, True),
        Title("解放碑步行街品质提升实施方案", H),
        Title("解放碑中央商务区总部企业认定及扶持办法", N, True),
    )),
    "hualongqiao_cbd": ("化龙桥管委发", (
        Title("化龙桥片区数字经济产业园招商扶持办法", N, True),
        Title("化龙桥片区城市更新实施方案", H),
    )),
    "qixinggang": ("七星岗街发", (
        Title("七星岗街道社区养老服务站运营补贴办法", N, True),
        Title("七星岗街道背街小巷环境整治实施方案", H),
    )),
    "jiefangbei": ("解放碑街发", (
        Title("解放碑街道门前三包管理办法", N),
        Title("解放碑街道社区食堂建设实施方案", H, True),
    )),
    "lianglukou": ("两路口街发", (
        Title("两路口街道社区微更新实施方案", H),
        Title("两路口街道困难群众帮扶工作办法", N, True),
    )),
    "shangqingsi": ("上清寺街发", (
        Title("上清寺街道历史风貌区保护工作方案", H),
        Title("上清寺街道高龄老人关爱服务实施方案", H, True),
    )),
    "caiyuanba": ("菜园坝街发", (
        Title("菜园坝街道棚户区改造征收补偿安置方案", H, True),
        Title("菜园坝街道市场周边秩序整治方案", H),
    )),
    "nanjimen": ("南纪门街发", (
        Title("南纪门街道十八梯片区文旅商户管理办法", N),
        Title("南纪门街道老旧小区物业管理办法", N),
    )),
    "chaotianmen": ("朝天门街发", (
        Title("朝天门街道批发市场转型升级帮扶措施", N, True),
        Title("朝天门街道滨江岸线环境整治方案", H),
    )),
    "daxigou": ("大溪沟街发", (
        Title("大溪沟街道社区卫生服务提升方案", H),
        Title("大溪沟街道停车秩序综合治理方案", H),
    )),
    "daping": ("大坪街发", (
        Title("大坪街道一老一小服务实施方案", H, True),
        Title("大坪街道就业帮扶车间认定办法", N, True),
    )),
    "hualongqiao": ("化龙桥街发", (
        Title("化龙桥街道新就业形态劳动者服务方案", H),
        Title("化龙桥街道城市更新居民安置工作方案", H, True),
    )),
    "shiyoulu": ("石油路街发", (
        Title("石油路街道老旧小区适老化改造实施方案", H, True),
        Title("石油路街道商户诚信经营评价办法", N),
    )),
}
"""What each drafting organ issues. District-government documents are drafted by the departments
and management committees, never by subdistrict offices."""

SUPERIOR: tuple[tuple[str, str], ...] = (
    ("《重庆市人民政府办公厅关于进一步促进消费的若干措施》", "commerce"),
    ("《重庆市推动养老服务高质量发展若干措施》", "civil_affairs"),
    ("《重庆市城镇老旧小区改造和社区服务提升工作方案》", "housing"),
    ("《重庆市促进高校毕业生等青年就业创业若干措施》", "hrss"),
    ("《重庆市城乡居民医疗保险办法》", "medical_security"),
    ("《重庆市生活垃圾管理条例》实施要求", "urban_management"),
    ("《重庆市优化营商环境条例》", "drc"),
    ("《重庆市支持科技创新若干财政金融政策》", "science"),
    ("《重庆市医疗卫生服务体系建设规划》", "health"),
    ("《重庆市安全生产治本攻坚三年行动方案》", "emergency"),
    ("《重庆市文化旅游产业高质量发展意见》", "culture_tourism"),
    ("《重庆市知识产权强市建设纲要》", "market_regulation"),
)
"""SCOPE-3: superior documents implemented without a new document of the district's own."""

CO_ISSUERS = ("finance", "hrss", "market_regulation", "drc", "housing", "commerce", "justice")
SURNAMES = (
    "王李张刘陈杨黄赵周吴徐孙胡朱高林何郭马罗梁宋郑谢唐韩冯邓"
    "曹彭曾肖田董袁潘蒋蔡余杜叶程魏苏吕丁任沈姚卢"
)
GIVEN = ("伟", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超",
         "霞", "平", "刚", "建华", "志强", "晓燕", "春梅", "海燕", "雪梅", "红", "婷", "宇", "鑫",
         "浩", "欣怡", "俊杰", "思远", "佳琪", "文博", "一鸣", "国庆", "德明", "玉兰", "小龙")
QUARTER_ZH = "一二三四"
OUTLETS = ("重庆日报", "上游新闻", "华龙网", "重庆晨报", "第1眼新闻", "渝中报")


@dataclass
class Policy:
    """What the demo knows about one policy case while it writes its events."""

    case_id: str
    department: str
    title: str
    scope: str
    kind: str = "document"
    issuer: str = "department"
    lead: str | None = None  # the issuer's lead, when the case is charged to another organ
    co_issuers: tuple[str, ...] = ()
    benefits: bool = False
    base_title: str = ""  # the DRAFTERS title it is (a revision, supplement …) of
    library: tuple[qa_set.SetEntry, ...] = ()  # entries published on this case (QA-1)
    superior: str | None = None
    draft_plan: JSON | None = None  # the plan and materials as drafted (三同步) …
    draft_materials: list[JSON] = field(default_factory=list)
    plan: JSON | None = None  # … and as submitted for review
    materials: list[JSON] = field(default_factory=list)
    early: set[str] = field(default_factory=set)  # material IDs published before review ended

    @property
    def major(self) -> bool:
        """A major or high-attention policy (OP-4's 24 h clock in the monitor's eyes)."""
        return self.issuer == "district_government" or self.scope == H


@dataclass
class Entry:
    """One message before it has its event ID and place."""

    when: datetime
    order: int
    source: tuple[str, str]
    body: JSON
    introduces: str | None = None  # "consultation:<id>" etc.: what later events refer to
    needs: str | None = None


class Demo:
    """Seeded state of one generation: random choices, decks, counters and the messages."""

    def __init__(self, quarter: Quarter, seed: int) -> None:
        self.quarter = quarter
        self.seed = seed
        self.rng = random.Random(f"jiedu-demo:{seed}:{quarter.name}")
        self.names = random.Random(f"jiedu-demo-names:{seed}")
        self.entries: list[Entry] = []
        self.people: dict[tuple[str, str], JSON] = {}
        self.used_titles: set[str] = set()
        self.base_titles: dict[str, str] = {}  # a title as issued → its DRAFTERS title
        self.qa = qa_set.load()
        self.entries_of: dict[str, tuple[qa_set.SetEntry, ...]] = {}
        for entry in self.qa.entries:
            self.entries_of[entry.policy_title] = (*self.entries_of.get(entry.policy_title, ()),
                                                   entry)
        self.with_library: set[str] = set()  # base titles whose entries are published
        self.library: dict[tuple[str, str, str], dict[str, JSON]] = {}
        """(case, department, title) → entry ID → the entry as it last reads this quarter."""
        self.asked: list[Asked] = []
        """Consultations waiting for the library's answer (`answer_consultations`)."""
        self.numbers: dict[str, int] = {}
        self.serial = 0
        d = self.deck
        # Most cases comply; each deck's rare cards are the deliberate minority that breaks one
        # rule (named in the comment), so each rule shows without dominating the quarter.
        self.review = d(complete=40, publish_early=1, skip_stage=1,  # REV-5
                        out_of_order=1, few_grounds=1)  # REV-4
        self.district_review = d(complete=24, publish_early=1, skip_stage=1,  # REV-5
                                 out_of_order=1, few_grounds=1,  # REV-1
                                 news_office_early=1, sign_off_early=1)  # REV-2, REV-3
        self.submission = d(complete=30, no_plan=1, no_materials=1)  # SYNC-1
        self.plan_kind = d(complete=36, no_press_release=1, text_only=1, no_news_media=1,  # PLAN-1
                           wrong_category=1)  # SCOPE-1
        self.mat = d(complete=24, missing_sections=1, no_benefit_office=1)  # MAT-1
        self.pub2 = d(prompt=12, within=6, late=3, never=1)  # PUB-2
        self.spread = d(several=40, single_form=2,  # PUB-3
                        wechat_first=1, unlinked=1, no_url=1,  # PUB-1
                        unsubmitted=1)  # REV-5
        self.returned = d(plan=2, materials=2, both=1, not_resubmitted=1,  # REV-3 退文
                          signed_anyway=1)  # REV-3
        self.draft_results = d(published=4, no_interpretation=1, no_results=1)  # SCOPE-2
        self.channel = d(hotline=5, website=3, service_window=2)
        self.answer = d(library=10, district_library=4, referred=6, unanswered=2,
                        referred_late=2, slow_library=1)  # QA-4
        self.severity = d(major=1, high_attention=2, ordinary=3)
        self.opinion_kind = d(suggestion=2, misunderstanding=2, false_information=1,
                              illegal_content=1)
        self.reply = d(on_time=6, late=2, wrong_kind=1, none=1)  # OP-4, OP-3
        self.decision = d(adopted=5, declined=5, reconsidered=1)  # OP-2
        self.media = d(consulted=6, not_consulted=1, corrected=2, uncorrected=1)  # PUB-4
        self.implemented = d(in_scope=8, out_of_scope=1)  # SCOPE-3
        self.library_change = d(kept=8, revised=1)  # QA-1: entries revised after publication
        self.charged = d(lead=12, co_issuer=1)  # WHO-1
        organs = load_organs()
        self.drafters = Deck(self.rng, {c: len(t) for c, (_, t) in DRAFTERS.items()})
        self.district_drafters = Deck(self.rng, {  # subdistricts do not draft for the district
            c: len(t) for c, (_, t) in DRAFTERS.items()
            if (o := organs.get(c)) is not None and o.kind != "subdistrict"
        })

    def deck(self, **weights: int) -> Deck[str]:
        return Deck(self.rng, weights)

    # -- people, titles, numbers, addresses ------------------------------------------------

    def person(self, organ: str, role: str) -> JSON:
        """A named person of `organ` in `role` (the same one every time)."""
        key = (organ, role)
        if key not in self.people:
            name = self.names.choice(SURNAMES) + self.names.choice(GIVEN)
            self.people[key] = {"id": f"{organ}-{len(self.people) + 1:04d}", "name": name}
        return self.people[key]

    def title(self, department: str, scopes: tuple[str, ...] = (N, H, D)) -> Title | None:
        """One of the organ's own policies of `scopes`, preferring those not yet used this
        quarter; None if the organ has none of those scopes."""
        own = [t for t in DRAFTERS[department][1] if t.scope in scopes]
        if not own:
            return None
        fresh = [t for t in own if t.text not in self.used_titles]
        chosen = self.rng.choice(fresh or own)
        text = self.unique(chosen.text)
        self.base_titles[text] = chosen.text
        return chosen._replace(text=text)

    def unique(self, text: str) -> str:
        """`text`, or a revision or supplement of it if the quarter already has that title."""
        year = self.quarter.year
        variants = (
            text,
            f"{text}（{year}年修订）",
            f"关于{book(text)}的补充通知",
            f"{book(text)}实施细则",
        )
        chosen = next((v for v in variants if v not in self.used_titles), None)
        chosen = chosen or f"{text}（{year}年第{len(self.used_titles)}次修订）"
        self.used_titles.add(chosen)
        return chosen

    def number(self, prefix: str) -> str:
        """The next 文号 of `prefix` this year, e.g. 渝中府发〔2026〕12号."""
        if prefix not in self.numbers:
            self.numbers[prefix] = (self.quarter.number - 1) * self.rng.randint(2, 9)
        self.numbers[prefix] += 1
        return f"{prefix}〔{self.quarter.year}〕{self.numbers[prefix]}号"

    def url(self, section: str, day: date) -> str:
        """A page of the district website (区政府网站), in its URL scheme."""
        self.serial += 1
        stamp = day.strftime("%Y%m%d")
        return f"{SITE}/zwgk_229/{section}/{stamp[:6]}/t{stamp}_{14_000_000 + self.serial}.html"

    def ticket(self, prefix: str, day: date) -> str:
        """A consultation's ticket number (工单号), e.g. RX2026070600012."""
        self.serial += 1
        return f"{prefix}{day.strftime('%Y%m%d')}{self.serial:05d}"

    # -- cases and messages ----------------------------------------------------------------

    def start(self, case_id: str, department: str, first: int = 0, last: int | None = None
              ) -> Thread:
        """A thread of events for a case, starting on a working day of [first, last]."""
        last = len(self.quarter.days) - 2 if last is None else last
        t = self.quarter.office_time(self.rng.randint(first, last), self.rng)
        return Thread(self, case_id, department, t)

    def add(self, entry: Entry) -> None:
        self.entries.append(entry)

    def messages(self) -> list[Message]:
        """Every entry in publication order, with deterministic event IDs."""
        entries = sorted(self.entries, key=lambda e: (e.when, e.order))
        entries = overtake(entries, self.rng)
        ids: dict[str, str] = {}
        out: list[Message] = []
        for n, e in enumerate(entries, 1):
            body = {"event_id": f"yz-{self.seed}-{self.quarter.name}-{n:06d}", **e.body}
            if e.introduces:
                ids[e.introduces] = body["event_id"]
            if e.needs in ids:  # what it answers, when that came first
                body["causation_id"] = ids[e.needs]
            out.append(Message(e.source[0], e.source[1], body["case_id"], body))
        return out


@dataclass
class Thread:
    """One line of events on one case, with its own clock. `t` is None once the line has run
    past the quarter: then nothing more is sent on it."""

    demo: Demo
    case_id: str
    department: str
    t: datetime | None

    def days(self, lo: int, hi: int) -> Thread:
        """Move on by lo..hi working days (0: later the same day)."""
        if self.t is not None:
            self.t = self.demo.quarter.later(self.t, self.demo.rng.randint(lo, hi), self.demo.rng)
        return self

    def hours(self, lo: float, hi: float) -> Thread:
        """Move on by lo..hi clock hours, any day (opinions do not wait for Monday)."""
        if self.t is not None:
            t = self.t + timedelta(seconds=round(self.demo.rng.uniform(lo, hi) * 3600))
            self.t = t if t < self.demo.quarter.end else None
        return self

    def fork(self) -> Thread:
        return Thread(self.demo, self.case_id, self.department, self.t)

    @property
    def day(self) -> date:
        """The thread's day; the quarter's last day once past it (nothing is sent then)."""
        return self.t.date() if self.t is not None else self.demo.quarter.days[-1]

    def emit(
        self,
        type_: str,
        data: JSON,
        *,
        by: tuple[str, str] | None = None,
        actor: JSON | None = None,
        introduces: str | None = None,
        needs: str | None = None,
    ) -> bool:
        """Send one event now from `by` (default: the department's OA); False past the quarter."""
        if self.t is None:
            return False
        source = by or (self.department, OA)
        body: JSON = {
            "type": type_,
            "schema_version": 2 if type_ == "DraftSubmitted" else 1,
            "case_id": self.case_id,
            "department": self.department,
            "actor": actor or self.demo.person(source[0], "clerk"),
            "source_system": source[1],
            "occurred_at": self.t.isoformat(),
            "data": data,
        }
        self.demo.add(Entry(self.t, len(self.demo.entries), source, body, introduces, needs))
        return True


def overtake(entries: list[Entry], rng: random.Random) -> list[Entry]:
    """Let some messages overtake their prerequisite from another source by up to three places.

    A message moves only past messages of other sources (each source publishes in order) and,
    within its own case, only past what it refers to, so the only effect is the one the intake
    absorbs by waiting. Overtakings do not overlap, so none stretches another."""
    out = list(entries)
    position = {id(e): i for i, e in enumerate(out)}
    involved: set[int] = set()
    for e in entries:
        if e.needs is None or rng.random() >= 0.5:
            continue
        i = position[id(e)]
        reach: list[int] = []  # places it may move to, nearest first
        for j in range(i - 1, max(i - 4, -1), -1):
            before = out[j]
            same_case = before.body["case_id"] == e.body["case_id"]
            if (
                before.source == e.source
                or (same_case and before.introduces != e.needs)
                or id(before) in involved
            ):
                break
            reach.append(j)
        passed = [j for j in reach if out[j].introduces == e.needs]
        if passed:
            target = rng.choice([j for j in reach if j <= passed[0]])
            involved.update(id(x) for x in out[target : i + 1])
            out.insert(target, out.pop(i))
            position = {id(x): k for k, x in enumerate(out)}
    return out


# ── pieces of a policy case ──────────────────────────────────────────────────────────────────

FORM_ZH = {
    "text": "文字解读", "chart": "图解", "animation": "动漫解读", "audio_video": "视频解读",
    "press_release": "新闻通稿", "press_conference": "新闻发布会实录", "briefing": "政策吹风会实录",
    "interview": "负责人专访", "article": "负责人解读文章", "other": "宣传折页",
}


def material(demo: Demo, p: Policy, form: str = "text") -> JSON:
    """解读材料 in one form, with every section of MAT-1."""
    name = load_organs().name(p.department)
    m: JSON = {
        "material_id": f"{p.case_id}-{form}",
        "form": form,
        "background": f"为贯彻落实上级决策部署，结合渝中区实际，{name}起草了{book(p.title)}。",
        "main_content": f"{FORM_ZH[form]}：{book(p.title)}共{demo.rng.randint(3, 8)}个部分"
        f"{demo.rng.randint(10, 32)}条，明确了目标任务、主要举措和保障措施。",
        "audience": demo.rng.choice(("辖区内注册登记的企业", "辖区户籍居民", "辖区内各类经营主体",
                                     "符合条件的个人和单位", "辖区内老年人及其家庭")),
        "standards": "按照文件所列条件和标准执行，同一事项按就高原则不重复享受。",
        "time_limits": f"自印发之日起施行，有效期至{demo.quarter.year + 2}年12月31日。",
        "cautions": "申请人须如实提供材料，弄虚作假的取消资格并依法追责。",
        "key_terms": [{"term": "政策兑现", "explanation": "按文件规定兑付扶持资金或落实优惠"}],
        "old_vs_new": "与原政策相比，放宽了申请条件，提高了支持标准，精简了办理流程。",
        "involves_benefits": p.benefits,
    }
    if p.benefits:
        m["benefit_office"] = {
            "name": f"{name}政策兑现窗口",
            "address": f"渝中区人和街{demo.rng.randint(1, 120)}号区政务服务中心",
            "contact": f"023-63{demo.rng.randint(100000, 999999)}",
            "hours": "工作日 9:00—12:00，14:00—17:30",
        }
    return m


def plan(demo: Demo, p: Policy) -> JSON:
    """解读方案 per the template (PLAN-1): every form that will be published, each starred
    option in the typical plan; a few lack one, or name another category than the case's scope
    (SCOPE-1)."""
    forms = ["text", demo.rng.choice(("chart", "chart", "audio_video", "animation")),
             "press_release"]
    if p.major:
        forms.append(demo.rng.choice(("press_conference", "briefing", "interview", "article")))
    if p.benefits and demo.rng.random() < 0.3:
        forms.append("other")  # a leaflet for the community notice boards
    channels = [{"channel": "government_website", "name": "重庆市渝中区人民政府网"},
                {"channel": "news_media", "name": demo.rng.choice(OUTLETS)},
                {"channel": "wechat", "name": "渝中发布"}]
    if "other" in forms:
        channels.append({"channel": "notice_board", "name": "社区公开栏"})
    category = p.scope
    variant = demo.plan_kind.draw()
    if variant == "no_press_release":
        forms.remove("press_release")
    elif variant == "text_only":
        forms = ["text"]
    elif variant == "no_news_media":
        channels.pop(1)
    elif variant == "wrong_category":
        category = {N: H, H: N}.get(p.scope, H)
    return {"title": f"{book(p.title)}解读方案", "category": category, "forms": forms,
            "channels": channels, "release_date": None}


def draft(demo: Demo, p: Policy) -> None:
    """The plan and a material for every form it names (三同步: all that will be published,
    prepared with the document); as the MAT deck says, a few first materials miss sections or
    the benefit office's details (MAT-1)."""
    p.draft_plan = plan(demo, p)
    p.draft_materials = [material(demo, p, form) for form in p.draft_plan["forms"]]
    flaw, first = demo.mat.draw(), p.draft_materials[0]
    if flaw == "missing_sections":
        for key in demo.rng.sample(("old_vs_new", "key_terms", "cautions", "time_limits"), 2):
            first.pop(key)
    elif flaw == "no_benefit_office" and p.benefits:
        first["benefit_office"] = {"name": first["benefit_office"]["name"]}


def submit(th: Thread, p: Policy, variant: str = "complete") -> None:
    """起草单位 submits document, plan and materials together (SYNC-1) — or, as `variant` says,
    without the plan, the materials, or either."""
    if p.scope != "out_of_scope":
        draft(th.demo, p)
    p.plan = p.draft_plan if variant not in ("no_plan", "neither") else None
    p.materials = p.draft_materials if variant not in ("no_materials", "neither") else []
    data: JSON = {
        "title": p.title,
        "scope": p.scope,
        "kind": p.kind,
        "issuer": {"kind": p.issuer, "lead": p.lead or p.department,
                   "co_issuers": list(p.co_issuers)},
        "materials": p.materials,
    }
    if p.superior:
        data["superior_document"] = p.superior
    if p.plan:
        data["plan"] = p.plan
    th.emit("DraftSubmitted", data)


def sign(th: Thread, p: Policy, stage: str, *, grounds: Iterable[str] = ()) -> None:
    by = {"news_office": ("news_office", OA), "leaders_sign_off": ("gov_office", OA)}.get(
        stage, (p.department, OA)
    )
    who = th.demo.person(by[0], stage)
    th.emit(
        "ReviewSigned",
        {"stage": stage, "signer": who["name"], "grounds": list(grounds),
         "covers_plan": p.plan is not None or p.scope == "out_of_scope",
         "covers_materials": bool(p.materials) or p.scope == "out_of_scope"},
        by=by, actor=who,
    )


def review(th: Thread, p: Policy, stages: tuple[str, ...]) -> None:
    """三审三校 by the drafting unit's three heads, then `stages` (REV-1..4), as the review deck
    of the chain says: complete, or a material published before the last signature (REV-5), the
    last stage skipped, heads out of order, not every ground covered, and for district-government
    documents the news office before the principal head (REV-2) or the leaders before the news
    office (REV-3)."""
    demo = th.demo
    deck = demo.district_review if "news_office" in stages else demo.review
    variant = deck.draw() if stages else "complete"
    heads = ["section_head", "deputy_head", "principal_head"]
    if variant == "out_of_order":
        heads[1], heads[2] = heads[2], heads[1]
    grounds = SIX_GROUNDS[:3] if variant == "few_grounds" else SIX_GROUNDS
    for head in heads:
        if variant == "news_office_early" and head == "principal_head":
            sign(th.days(0, 2), p, "news_office")
        sign(th.days(0, 2), p, head, grounds=grounds)
    order = [s for s in stages if not (variant == "news_office_early" and s == "news_office")]
    if variant == "sign_off_early":
        order.reverse()  # leaders' sign-off before the news office
    for i, stage in enumerate(order):
        last = i == len(order) - 1
        if variant == "publish_early" and last and p.materials:
            early = p.materials[min(1, len(p.materials) - 1)]
            th.days(0, 1).emit("MaterialPublished", _published(
                demo, p, th, early["material_id"], early["form"], "government_website"))
            p.early.add(early["material_id"])
        if variant == "skip_stage" and last:
            continue
        sign(th.days(0, 3), p, stage)


def issue(th: Thread, p: Policy, prefix: str) -> None:
    th.days(1, 3)
    th.emit("PolicyIssued", {"document_number": th.demo.number(prefix),
                             "issue_date": th.day.isoformat(), "url": th.demo.url("zcwj", th.day)})


ELSEWHERE: dict[str, tuple[str, ...]] = {
    "text": ("wechat",), "chart": ("wechat",), "animation": ("wechat", "weibo"),
    "audio_video": ("wechat", "other_new_media"), "press_release": ("news_media",),
    "press_conference": ("news_media",), "briefing": ("news_media",),
    "interview": ("news_media",), "article": ("news_media",), "other": ("notice_board",),
}
"""Where a material goes after the district website (PUB-1: the website is the first platform)."""


def publish(th: Thread, p: Policy) -> datetime | None:
    """Publication (PUB-1..3) of the materials drafted with the document: each on the district
    website first (linked to the policy, with its URL), then on its other channels. The text
    appears within 20 working days or late (PUB-2) or never. As the spread deck says, a few
    publish only one form (PUB-3), post the text elsewhere before the website, leave it unlinked
    or without a URL (PUB-1), or publish a material that was never submitted for review
    (REV-5). Returns when the first material was published (None: nothing in the quarter)."""
    demo = th.demo
    timing = demo.pub2.draw()
    spread = demo.spread.draw()
    lag = {"prompt": (0, 2), "within": (3, 20), "late": (21, 35), "never": (0, 2)}[timing]
    start = th.fork().days(*lag)
    forms = [m["form"] for m in p.draft_materials]
    if spread == "single_form":
        forms = forms[:1]
    elif spread == "unsubmitted":
        forms.append(next(f for f in ("animation", "other", "audio_video", "chart")
                          if f not in forms))
    sent: list[datetime] = []
    for form in forms:
        mid = f"{p.case_id}-{form}"
        site = start.fork() if form == "text" else start.fork().days(0, 2)
        if form == "text":
            if timing == "never":
                continue
            if spread == "wechat_first" and site.t is not None:
                sent.append(site.t)
                site.emit("MaterialPublished", _published(demo, p, site, mid, form, "wechat"))
                site.days(1, 3)
        if mid not in p.early:
            body = _published(demo, p, site, mid, form, "government_website")
            if form == "text" and spread == "unlinked":
                body["linked_to_policy"] = False
            if form == "text" and spread == "no_url":
                body.pop("url", None)
            if site.emit("MaterialPublished", body) and site.t is not None:
                sent.append(site.t)
        if form == "text" and (spread == "wechat_first" or demo.rng.random() < 0.5):
            continue  # the text is often on the website only (or was on WeChat already)
        for channel in ELSEWHERE[form]:
            then = site.fork().days(0, 3)
            then.emit("MaterialPublished", _published(demo, p, then, mid, form, channel))
    return min(sent, default=None)


def _published(demo: Demo, p: Policy, th: Thread, mid: str, form: str, channel: str) -> JSON:
    names = {"government_website": "重庆市渝中区人民政府网", "wechat": "渝中发布",
             "weibo": "渝中发布", "other_new_media": "渝中发布抖音号", "notice_board": "社区公开栏",
             "news_media": demo.rng.choice(OUTLETS)}
    data: JSON = {"material_id": mid, "form": form, "channel": channel,
                  "channel_name": names[channel]}
    if th.t is not None:
        data["published_on"] = th.day.isoformat()
        if channel == "government_website":
            data["url"] = demo.url("zcjd", th.day)
            data["linked_to_policy"] = True
    return data


def library(th: Thread, p: Policy) -> None:
    """The department publishes the Q&A entries of its policy as it is issued (QA-1), as its
    `qa` system, so they are there before the first question about it: once per title in a quarter (a revision's consultations are
    answered from the first case's entries by the referral path)."""
    demo = th.demo
    entries = demo.entries_of.get(p.base_title, ())
    if th.t is None or not entries or p.base_title in demo.with_library:
        return
    demo.with_library.add(p.base_title)
    p.library = entries
    author = demo.person(p.department, "interpretation_unit")
    held = demo.library[(p.case_id, p.department, p.title)] = {}
    for e in entries:
        th.emit("QAEntryPublished", _entry(e), by=(p.department, "qa"), actor=author)
        held[e.entry_id] = _entry(e)
    if demo.library_change.draw() == "revised":  # a wording made clearer later (修订)
        e = demo.rng.choice(entries)
        revised = {**_entry(e), "answer": f"{e.answer}（{th.day:%Y年%-m月%-d日}起施行口径）"}
        if th.fork().days(3, 20).emit("QAEntryRevised", revised, by=(p.department, "qa"),
                                      actor=author):
            held[e.entry_id] = revised


def _entry(e: qa_set.SetEntry) -> JSON:
    return {"entry_id": e.entry_id, "question": e.question, "answer": e.answer,
            "keywords": list(e.keywords), "benefit_office": e.benefit_office}


def consultation(th: Thread, p: Policy) -> None:
    """A question by hotline, website or window (QA-3), answered from the library at once,
    referred to the drafting unit and answered in time or late, or never answered (QA-4); a
    few answers from the library reach the website's mailbox days later instead of at once."""
    demo = th.demo
    if th.t is None:
        return
    channel = demo.channel.draw()
    outcome = demo.answer.draw()
    receiver = {"hotline": HOTLINE, "service_window": WINDOW}.get(channel, (p.department, OA))
    ticket = demo.ticket({"hotline": "RX", "website": "WZ", "service_window": "CK"}[channel],
                         th.day)
    key = f"consultation:{ticket}"
    topics = ["施行时间", "适用对象", "办理流程", "执行标准"]
    if p.benefits:
        topics += ["申请条件", "补贴标准", "需要准备的材料", "兑现时限"]
    topic = demo.rng.choice(topics)
    question = f"请问{book(p.title)}的{topic}是什么？"
    answer = f"根据{book(p.title)}，{topic}详见区政府网站政策解读专栏，也可咨询{_office(p)}。"
    if p.library and outcome in FROM_LIBRARY:
        entry = demo.rng.choice(p.library)
        question = demo.rng.choice(entry.citizen_questions or (entry.question,))
    elif p.library:
        question = demo.rng.choice(demo.qa.unanswerable)  # what the library cannot answer
    elif outcome in FROM_LIBRARY:
        outcome = "referred"  # no library of its own to answer from
    th.emit("ConsultationReceived", {
        "consultation_id": ticket, "channel": channel, "received_by": receiver[0],
        "question": question}, by=receiver, introduces=key)
    if outcome != "unanswered":
        demo.asked.append(Asked(th.fork(), p, ticket, channel, receiver, outcome, question,
                                answer))


FROM_LIBRARY = ("library", "district_library", "slow_library")


@dataclass
class Asked:
    """A consultation received, to be answered once the quarter's library is known."""

    th: Thread
    p: Policy
    ticket: str
    channel: str
    receiver: tuple[str, str]
    outcome: str
    question: str
    answer: str  # the drafting unit's, when it is referred


def answer_consultations(demo: Demo) -> None:
    """Answer the quarter's consultations as the hotline and the windows would with Jiedu's
    suggestions (QA-4): the library of the whole quarter is searched with Jiedu's own search,
    as the matching service does once `jiedu demo` has settled; a question meant for the
    library is answered at once from the best entry when the library is confident and the
    entry is its policy's own, and referred otherwise."""
    if not demo.asked:
        return
    with tempfile.TemporaryDirectory(prefix="jiedu-demo-qa-") as tmp:
        store = open_store(f"sqlite:///{tmp}/library.sqlite3", Path(tmp))
        try:
            bench_qa.project(store, QALibrary(), _library_events(demo))
            search = QASearch(store)
            for a in demo.asked:
                found = search.search(a.question, limit=1, as_of=a.th.day)
                best = found.best if found.answerable else None
                if a.outcome in FROM_LIBRARY and (best is None or best.case_id != a.p.case_id):
                    a.outcome = "referred"  # no confident answer of its own policy: refer it
                _answer(a, best if a.outcome in FROM_LIBRARY else None)
        finally:
            store.close()


def _library_events(demo: Demo) -> list[Any]:
    """The quarter's library as the events that make it: each policy's title, its entries."""
    out: list[Any] = []
    for n, ((case_id, department, title), entries) in enumerate(sorted(demo.library.items())):
        base = {"schema_version": 1, "case_id": case_id, "department": department,
                "actor": {"id": "demo"}, "source_system": "qa",
                "occurred_at": "2026-01-01T00:00:00+08:00"}
        out.append(EVENT_ADAPTER.validate_python({
            **base, "event_id": f"lib-{n}", "type": "DraftSubmitted", "schema_version": 2,
            "data": {"title": title, "scope": N,
                     "issuer": {"kind": "department", "lead": department}}}))
        for m, body in enumerate(entries.values()):
            out.append(EVENT_ADAPTER.validate_python({
                **base, "event_id": f"lib-{n}-{m}", "type": "QAEntryPublished", "data": body}))
    return out


def _answer(a: Asked, best: Any) -> None:
    """The answer (or referral and later answer) of one consultation; `best`: the entry it
    is answered from at once, when it is."""
    th, ticket, channel, receiver, outcome = a.th, a.ticket, a.channel, a.receiver, a.outcome
    key = f"consultation:{ticket}"
    answer, p = a.answer, a.p
    from_entry: JSON = {}
    if best is not None:
        answer, from_entry = best.answer, {"entry_id": best.entry_id}
    if outcome == "slow_library" and channel == "website":  # the mailbox, days later
        th.days(1, 3).emit("ConsultationAnswered", {
            "consultation_id": ticket, "answer": answer, "from_library": True,
            "instant": False, **from_entry}, by=receiver, needs=key)
        return
    if outcome in ("library", "district_library", "slow_library"):
        by = receiver if outcome == "library" or channel != "hotline" else LIBRARY
        th.hours(0.02, 0.05).emit("ConsultationAnswered", {
            "consultation_id": ticket, "answer": answer, "from_library": True, "instant": True,
            **from_entry}, by=by, needs=key)
        return
    if channel == "website":  # the mailbox reaches the drafting unit itself
        th.days(1, 3 if outcome == "referred" else 12).emit("ConsultationAnswered", {
            "consultation_id": ticket, "answer": answer, "from_library": False,
            "instant": False, "by_drafting_unit": True}, needs=key)
        return
    th.days(0, 0).emit("ConsultationReferred", {
        "consultation_id": ticket, "referred_to": p.department}, by=receiver, needs=key)
    if outcome == "referred":
        th.days(1, 5)
    else:
        th.days(6, 12)
    th.emit("ConsultationAnswered", {
        "consultation_id": ticket, "answer": answer, "from_library": False, "instant": False,
        "by_drafting_unit": True}, needs=key)


def _office(p: Policy) -> str:
    return load_organs().name(p.department)


def opinion(th: Thread, p: Policy, number: int) -> None:
    """舆情 detected by the monitor (OP-5), answered in the fitting way in time, late, the
    wrong way, or not at all (OP-3, OP-4); a suggestion adopted or declined, a few declined and
    then adopted on reconsideration (OP-2)."""
    demo = th.demo
    th.hours(0, 14)
    if th.t is None:
        return
    severity = demo.rng.choice(("major", "high_attention")) if p.major else demo.severity.draw()
    kind = demo.opinion_kind.draw()
    reply = demo.reply.draw()
    oid = f"YQ-{p.case_id}-{number}"
    key = f"opinion:{oid}"
    summary = {
        "suggestion": f"网民建议{book(p.title)}放宽申请条件、延长申报期限",
        "misunderstanding": f"部分网民误认为{book(p.title)}取消了原有补贴",
        "false_information": f"网传{book(p.title)}将一刀切停止发放补贴，与文件内容不符",
        "illegal_content": f"有账号冒用{book(p.title)}名义发布收费代办链接，涉嫌诈骗",
    }[kind]
    th.emit("OpinionDetected", {
        "opinion_id": oid, "severity": severity, "kind": kind, "summary": summary,
        "detected_at": th.t.isoformat()}, by=MONITOR,
        actor={"id": "yq-monitor", "name": "区委网信办舆情监测平台"}, introduces=key)
    if reply == "none":
        return
    limit = 48 if severity == "ordinary" else 24
    if reply == "late":
        th.hours(limit + 2, limit + 40)
    else:
        th.hours(1, limit - 2)
    if kind == "suggestion":
        decision = demo.decision.draw()
        adopted = decision == "adopted"
        th.emit("SuggestionAdopted" if adopted else "SuggestionDeclined", {
            "opinion_id": oid,
            "rationale": "建议合理可行，将在实施细则中予以采纳" if adopted
            else "建议与上位法规定不符，暂不采纳，已向网民说明"}, needs=key)
        if decision == "reconsidered":
            th.hours(48, 200).emit("SuggestionAdopted", {
                "opinion_id": oid, "rationale": "经重新研究论证，建议合理可行，决定予以采纳"},
                needs=key)
        if reply != "wrong_kind":
            return
    fitting = {"suggestion": "clarification",
               "misunderstanding": demo.rng.choice(("clarification", "correction")),
               "false_information": "rebuttal", "illegal_content": "referral_to_authorities"}
    response = fitting[kind]
    if reply == "wrong_kind":
        response = {"clarification": "rebuttal", "correction": "rebuttal",
                    "rebuttal": "clarification",
                    "referral_to_authorities": "clarification"}[response]
    data: JSON = {"opinion_id": oid, "kind": response}
    if response == "referral_to_authorities":
        data["referred_to"] = ["重庆市公安局渝中区分局", "区委网信办"]
    else:
        data["url"] = demo.url("hygq", th.day)
    th.emit("ResponseIssued", data, needs=key)


def rumour(th: Thread, p: Policy) -> None:
    """A rumour about a policy still in review, which the monitor links to its case although
    nothing of it is public (OP-1), rebutted by the drafting unit."""
    demo = th.demo
    if th.t is None:
        return
    oid = f"YQ-{p.case_id}-1"
    key = f"opinion:{oid}"
    th.emit("OpinionDetected", {
        "opinion_id": oid, "severity": "high_attention", "kind": "false_information",
        "summary": f"网传{book(p.title)}已经印发并将于下月起执行，实为尚在审核中的送审稿",
        "detected_at": th.t.isoformat()}, by=MONITOR,
        actor={"id": "yq-monitor", "name": "区委网信办舆情监测平台"}, introduces=key)
    th.hours(2, 20).emit("ResponseIssued", {
        "opinion_id": oid, "kind": "rebuttal", "url": demo.url("hygq", th.day)}, needs=key)


def media(th: Thread, p: Policy, number: int) -> None:
    """A news outlet's own interpretation (PUB-4): consulted or not, a misreading corrected or
    left standing."""
    demo = th.demo
    variant = demo.media.draw()
    rid = f"MR-{p.case_id}-{number}"
    key = f"media report:{rid}"
    sent = th.emit("MediaInterpretationReported", {
        "report_id": rid, "outlet": demo.rng.choice(OUTLETS[:5]),
        "drafting_unit_consulted": variant in ("consulted", "corrected"),
        "misreading": variant in ("corrected", "uncorrected")},
        by=("cyberspace_office", "monitor"),
        actor={"id": "yq-monitor", "name": "区委网信办舆情监测平台"}, introduces=key)
    if sent and variant == "corrected":
        th.days(1, 3).emit("MediaInterpretationCorrected", {"report_id": rid}, needs=key)


def aftermath(th: Thread, p: Policy) -> None:
    """What follows publication: materials, questions, opinions, media reports. Opinions and
    media react to what is public: the issued policy, or for implementation measures (nothing
    issued) their first published material."""
    demo = th.demo
    if th.t is None:
        return
    first = publish(th.fork(), p)
    if p.kind != "implementation":
        library(th.fork(), p)
    public = th.fork() if p.kind != "implementation" else Thread(demo, th.case_id,
                                                                   th.department, first)
    asked = demo.rng.choice((0, 1, 1, 2, 2, 3, 4)) + (2 if p.benefits else 0)
    for _ in range(asked):
        consultation(th.fork().days(1, 25), p)
    if demo.rng.random() < (0.45 if p.major else 0.2):
        for n in range(1, demo.rng.choice((1, 1, 2)) + 1):
            opinion(public.fork().days(1, 15), p, n)
    if demo.rng.random() < (0.35 if p.major else 0.1):
        media(public.fork().days(1, 8), p, 1)


# ── the paths (one per way a case goes through RULES.md) ─────────────────────────────────────


def _policy(demo: Demo, case_id: str, department: str, title: Title, **kw: Any) -> Policy:
    return Policy(case_id, department, title.text, title.scope, benefits=title.benefits,
                  base_title=demo.base_titles.get(title.text, title.text), **kw)


def _title(demo: Demo, department: str, scopes: tuple[str, ...] = (N, H, D)) -> Title:
    """The organ's title of `scopes`, or any of its own if it has none of those."""
    return demo.title(department, scopes) or demo.title(department) or Title("未命名文件", D)


def district_document(demo: Demo, case_id: str) -> None:
    """以区政府名义印发: three heads, news office, leaders' sign-off (REV-1..3), then issue."""
    dept = demo.district_drafters.draw()
    p = _policy(demo, case_id, dept, _title(demo, dept), issuer="district_government")
    th = demo.start(case_id, dept)
    submit(th, p)
    review(th, p, ("news_office", "leaders_sign_off"))
    issue(th, p, "渝中府发" if p.scope == N else "渝中府办发")
    aftermath(th, p)


def department_document(demo: Demo, case_id: str) -> None:
    """以部门名义印发: three heads, the interpretation unit (REV-4), then issue; a few
    submissions are incomplete (SYNC-1) and reviewed nonetheless."""
    dept = demo.drafters.draw()
    p = _policy(demo, case_id, dept, _title(demo, dept))
    th = demo.start(case_id, dept)
    submit(th, p, demo.submission.draw())
    review(th, p, ("interpretation_unit",))
    issue(th, p, DRAFTERS[dept][0])
    aftermath(th, p)


def joint_document(demo: Demo, case_id: str) -> None:
    """部门联合发文: the lead interprets, co-issuers assist (WHO-1); in a few cases a co-issuer
    opens the case and is charged with it instead of the lead."""
    lead = demo.district_drafters.draw()
    others = [c for c in CO_ISSUERS if c != lead]
    co = tuple(demo.rng.sample(others, demo.rng.choice((1, 1, 2))))
    dept = lead if demo.charged.draw() == "lead" else co[0]
    p = _policy(demo, case_id, dept, _title(demo, lead), issuer="joint", lead=lead,
                co_issuers=co)
    th = demo.start(case_id, dept)
    submit(th, p)
    review(th, p, ("interpretation_unit",))
    issue(th, p, DRAFTERS[lead][0])
    aftermath(th, p)


def returned_submission(demo: Demo, case_id: str) -> None:
    """退文 (REV-3): a district-government document sent without plan or materials is returned
    by the government office, resubmitted complete, then signed off — or not resubmitted (and a
    rumour about it is linked to the case, OP-1), or signed off as it was instead of returned."""
    dept = demo.district_drafters.draw()
    p = _policy(demo, case_id, dept, _title(demo, dept, (N, H)), issuer="district_government")
    variant = demo.returned.draw()
    missing = {"plan": ["plan"], "materials": ["materials"], "signed_anyway": ["plan"]}.get(
        variant, ["plan", "materials"])
    th = demo.start(case_id, dept, 0, len(demo.quarter.days) // 2)
    submit(th, p, {"plan": "no_plan", "materials": "no_materials", "signed_anyway": "no_plan"}
           .get(variant, "neither"))
    for head in ("section_head", "deputy_head", "principal_head"):
        sign(th.days(0, 2), p, head, grounds=SIX_GROUNDS)
    sign(th.days(1, 3), p, "news_office")
    if variant != "signed_anyway":
        th.days(1, 3).emit("SubmissionReturned", {
            "missing": missing, "reason": "解读方案、解读材料未与政策文件同步报送（三同步）"},
            by=("gov_office", OA), actor=demo.person("gov_office", "leaders_sign_off"))
        if variant == "not_resubmitted":
            rumour(th.fork().hours(20, 120), p)
            return
        p.plan, p.materials = p.draft_plan, p.draft_materials
        th.days(1, 5).emit("DraftResubmitted", {
            **({"plan": p.plan} if "plan" in missing else {}),
            "materials": p.materials if "materials" in missing else []})
        sign(th.days(1, 3), p, "news_office")
    sign(th.days(1, 3), p, "leaders_sign_off")
    issue(th, p, "渝中府发" if p.scope == N else "渝中府办发")
    aftermath(th, p)


def consultation_draft(demo: Demo, case_id: str) -> None:
    """征求意见稿 (SCOPE-2): a normative document or major decision published for comment with
    its interpretation under 重大决策预公开, then the results, then review and issue."""
    major = demo.rng.random() < 0.4
    dept, title = "", None
    while title is None:  # an organ that has a policy of the kind
        dept = demo.district_drafters.draw()
        title = demo.title(dept, (H,) if major else (N,))
    issuer = "district_government" if major or demo.rng.random() < 0.5 else "department"
    p = _policy(demo, case_id, dept, title, issuer=issuer,
                kind="major_decision" if major else "document")
    th = demo.start(case_id, dept, 0, len(demo.quarter.days) // 3)
    submit(th, p)
    variant = demo.draft_results.draw()
    th.days(1, 4)
    if th.t is None:
        return
    data: JSON = {"url": demo.url("zdjcygk", th.day), "closes_on":
                  (th.day + timedelta(days=30)).isoformat()}
    if variant != "no_interpretation":
        data["interpretation_url"] = demo.url("zdjcygk", th.day)
    th.emit("ConsultationDraftPublished", data)
    if variant == "no_results":
        return
    th.days(22, 28)  # 30 days of comment, then the results
    received = demo.rng.randint(0, 60)
    if th.t is None:
        return
    th.emit("ConsultationResultsPublished", {
        "url": demo.url("zdjcygk", th.day), "comments_received": received,
        "comments_adopted": demo.rng.randint(0, received)})
    if issuer == "district_government":
        review(th, p, ("news_office", "leaders_sign_off"))
        issue(th, p, "渝中府发")
    else:
        review(th, p, ("interpretation_unit",))
        issue(th, p, DRAFTERS[dept][0])
    aftermath(th, p)


def implementation(demo: Demo, case_id: str) -> None:
    """贯彻执行上级文件不再单独制发文件 (SCOPE-3): the measures are interpreted, nothing issued;
    a few are wrongly declared out of scope and go no further than the heads' review."""
    superior, dept = demo.rng.choice(SUPERIOR)
    name = superior.split("》")[0] + "》"
    scope = demo.rng.choice((H, D)) if demo.implemented.draw() == "in_scope" else "out_of_scope"
    title = Title(demo.unique(f"关于贯彻落实{name}的工作措施"), scope)
    p = _policy(demo, case_id, dept, title, kind="implementation", superior=superior)
    th = demo.start(case_id, dept)
    submit(th, p)
    if scope == "out_of_scope":
        review(th, p, ())
        return
    review(th, p, ("interpretation_unit",))
    th.days(1, 3)
    aftermath(th, p)


def out_of_scope(demo: Demo, case_id: str) -> None:
    """Not to be interpreted (SCOPE-1): internal or procedural documents; three heads, issue."""
    dept = demo.drafters.draw()
    name = load_organs().name(dept)
    q = QUARTER_ZH[demo.quarter.number - 1]
    text = demo.rng.choice((
        f"关于调整{name}政策解读工作领导小组成员的通知",
        f"关于开展{demo.quarter.year}年第{q}季度安全生产检查的通知",
        f"关于{name}内设机构职责调整的通知",
        f"关于做好{demo.quarter.year}年第{q}季度政务信息报送工作的通知",
        f"关于印发{name}机关公务用车管理规定的通知",
    ))
    p = Policy(case_id, dept, demo.unique(text), "out_of_scope")
    th = demo.start(case_id, dept)
    submit(th, p)
    review(th, p, ())
    issue(th, p, DRAFTERS[dept][0])
    if th.t is not None and demo.rng.random() < 0.1:
        consultation(th.fork().days(1, 10), p)


PATHS: tuple[tuple[Callable[[Demo, str], None], int], ...] = (
    (district_document, 5),
    (department_document, 9),
    (joint_document, 3),
    (returned_submission, 1),
    (consultation_draft, 3),
    (implementation, 2),
    (out_of_scope, 3),
)
"""Each path with its weight: the share of cases that take it."""


# ── supervision (监督保障, SUP-1) ─────────────────────────────────────────────────────────────


def training(demo: Demo) -> None:
    """The government office's yearly training on policy interpretation."""
    q = demo.quarter
    th = Thread(demo, f"TRAIN-{q.year}-{q.number}", "gov_office",
                q.office_time(len(q.days) * 2 // 5, demo.rng))
    th.emit("TrainingHeld", {
        "title": f"{q.year}年渝中区政策解读工作业务培训",
        "held_on": th.day.isoformat(),
        "participants": sorted(demo.rng.sample(sorted(DRAFTERS), 24))})


def inspection(demo: Demo) -> None:
    """The quarter's inspection and its results on the district website."""
    q = demo.quarter
    th = Thread(demo, f"INSP-{q.name}", "gov_office", q.office_time(len(q.days) - 8, demo.rng))
    inspected = sorted(demo.rng.sample(sorted(DRAFTERS), 15))
    th.emit("InspectionConducted", {
        "quarter": q.name, "conducted_on": th.day.isoformat(), "departments": inspected,
        "summary": f"抽查{len(inspected)}个单位政策解读工作，"
        "重点检查解读时效、解读形式和问答库建设情况。"})
    th.days(3, 5).emit("InspectionResultsPublished", {
        "url": demo.url("zfxxgk/jdjc", th.day), "published_on": th.day.isoformat()})
