"""The quarterly inspection report (政策解读工作季度检查报告, SUP-1) and the SUP-2 score.

Inputs are read models only: `stat_facts` / `stat_log` (`projections.statistics`),
`deadline_clocks` (`projections.deadlines`) and `findings` (`projections.findings`). Every
figure is the list of its traces — (log sequence, event ID, case, note) — so a number in the
report can always be taken back to the events behind it; the JSON lists them all, the
department pages list them per figure.

What counts where (each period: the quarter, the previous quarter, and the year to date):

- Policies issued (in-scope, SCOPE-1): the first PolicyIssued of a case whose 印发日期 falls in
  the period. For each, its PUB-2 clock (20 working days to the website text): on time, late,
  missing (breached, or still open past its due time as of the report), running (not yet due,
  or waiting for a calendar year); its PUB-3 clock (two forms): met or not; REV-5: complete
  unless a REV-5 finding was recorded on the case.
- Returns (退文, REV-3): SubmissionReturned events in the period.
- Materials: MaterialPublished by 发布日期, by form and by channel.
- Consultations (QA-3/QA-4): received in the period, by channel; answered at once from the
  library (an ``instant`` answer that names the entry it used) — the instant-answer rate is
  those / received; referrals: QA-4 clocks started in the period, on time within 5 working
  days, late, missing, running.
- The Q&A library (QA-1, QA-4, QA-5): searches (consultations matched, ConsultationMatched, in
  the period) and those the library could answer; entries in force at the period's end
  (published by then, not withdrawn, their policy not repealed by then); candidates waiting at
  the period's end (referred consultations answered by the drafting unit by then, not yet
  published as entries).
- Opinions (OP-4): detected in the period, by severity and kind; their OP-4 clocks started in
  the period, 24 h (major, high attention) and 48 h (ordinary), on time or not.
- Findings recorded in the period, by rule, open or resolved as of the report.
- Trainings held from 1 January to the period's end (SUP-1: at least one a year); inspections
  conducted for the period's quarter(s) (at least one a quarter).

Output (`write_report`): ``index.html`` (self-contained: CSS inline, charts as inline SVG drawn
by matplotlib whose labels stay text, so the reader's browser draws them in its own CJK font and
the page is searchable; no font is needed where the report is written), ``departments/<code>.html`` (each department's figures, its late and
missing items, and every figure's traces), ``statistics.csv`` (UTF-8 with BOM, one row per
period, department and figure) and ``statistics.json``. No wall-clock time goes in: the same
read models and the same as-of give byte-identical files.
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
import re
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import MAXYEAR, MINYEAR, date, datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import orjson

from domain.calendar import SHANGHAI
from domain.clocks import Status
from domain.qa_matching import candidate_entry_id
from events.catalogue import (
    Channel,
    ConsultationChannel,
    Form,
    OpinionKind,
    OpinionSeverity,
    Scope,
)
from events.organs import Organs, load_organs
from projections.base import Row
from projections.deadlines import CLOCKS, Deadlines
from projections.findings import FINDINGS, Findings, rule_order
from projections.statistics import FACTS, LOG, LOG_KEY, Statistics

DISTRICT: Final = "_district"
"""The scope key of district-wide figures (全区)."""
WEIGHTS_ENV: Final = "JIEDU_ASSESSMENT_WEIGHTS"
DEFAULT_WEIGHTS: Final = Path(__file__).resolve().parent.parent / "deploy" / "assessment-weights.json"
CHAIN_HEAD_PENDING: Final = "(尚无签名检查点:jiedu audit checkpoint — no signed checkpoint of the hash chain yet)"

_UTC8: Final = timezone(timedelta(hours=8))
"""Asia/Shanghai for display (no daylight saving since 1991; a fixed offset is much faster)."""
IN_SCOPE: Final = frozenset(str(s) for s in Scope if s is not Scope.OUT_OF_SCOPE)
MET: Final = frozenset({str(Status.MET_ON_TIME), str(Status.MET_LATE)})

# ── periods ──────────────────────────────────────────────────────────────────────────────────

_QUARTER = re.compile(r"^(\d{4})Q([1-4])$")


@dataclass(frozen=True, order=True)
class Quarter:
    """A calendar quarter, e.g. ``Quarter.parse("2026Q3")``."""

    year: int
    number: int

    @classmethod
    def parse(cls, text: str) -> Quarter:
        m = _QUARTER.match(text.strip().upper())
        if m is None:
            raise ValueError(f"{text!r} is not a quarter like 2026Q3")
        if not MINYEAR < int(m[1]) < MAXYEAR:  # its previous quarter and its end are dates too
            raise ValueError(f"{text!r}: the year must be between {MINYEAR + 1} and {MAXYEAR - 1}")
        return cls(int(m[1]), int(m[2]))

    @property
    def label(self) -> str:
        return f"{self.year}Q{self.number}"

    @property
    def start(self) -> date:
        return date(self.year, 3 * self.number - 2, 1)

    @property
    def end(self) -> date:
        nxt = date(self.year + 1, 1, 1) if self.number == 4 else date(self.year, 3 * self.number + 1, 1)
        return nxt - timedelta(days=1)

    def previous(self) -> Quarter:
        return Quarter(self.year - 1, 4) if self.number == 1 else Quarter(self.year, self.number - 1)


@dataclass(frozen=True)
class Period:
    """A span of days the figures are counted over, and the quarters it covers (for
    inspections, which are of a quarter rather than on a day)."""

    key: str  # quarter | previous | ytd
    label: str
    start: date
    end: date
    quarters: tuple[str, ...]

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.start <= day <= self.end


def periods(quarter: Quarter) -> tuple[Period, Period, Period]:
    """The quarter, the previous quarter and the year to date (1 January to the quarter's end)."""
    prev = quarter.previous()
    ytd = tuple(Quarter(quarter.year, n).label for n in range(1, quarter.number + 1))
    return (
        Period("quarter", quarter.label, quarter.start, quarter.end, (quarter.label,)),
        Period("previous", prev.label, prev.start, prev.end, (prev.label,)),
        Period("ytd", f"{quarter.year} 年初至 {quarter.label}", date(quarter.year, 1, 1),
               quarter.end, ytd),
    )


# ── figures ──────────────────────────────────────────────────────────────────────────────────


Trace = tuple[int, str, str, str]
"""One event behind a figure: (log sequence, event ID, case, note — the clock or finding it
stands for, due and met times). Plain tuples: a large report makes hundreds of thousands."""
SEQ, EVENT_ID, CASE_ID, NOTE = range(4)


_FORM_ZH = {
    "text": "文字", "chart": "图表图解", "animation": "动漫", "audio_video": "音视频",
    "press_release": "新闻通稿", "press_conference": "新闻发布会", "briefing": "政策吹风会",
    "interview": "负责人专访", "article": "解读文章", "other": "其他",
}
_CHANNEL_ZH = {
    "government_website": "区政府网站", "news_media": "新闻媒体", "wechat": "政务微信",
    "weibo": "政务微博", "other_new_media": "其他新媒体", "notice_board": "公开栏/宣传单",
}
_CONSULT_ZH = {"hotline": "12345热线", "website": "网站信箱/留言", "service_window": "服务窗口"}
_SEVERITY_ZH = {"major": "重大", "high_attention": "社会关注度高", "ordinary": "一般"}
_KIND_ZH = {
    "suggestion": "合理建议", "misunderstanding": "误解误读", "false_information": "虚假信息",
    "illegal_content": "涉嫌违法",
}
_OUTCOMES = (("on_time", "按时"), ("late", "逾期"), ("missing", "缺失"), ("running", "未到期"))


def _base_figures() -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = [("policies_issued", "印发的应解读政策文件")]
    out += [(f"pub2_{k}", f"解读上网(PUB-2)·{zh}") for k, zh in _OUTCOMES]
    out += [("pub3_met", "至少两种解读形式(PUB-3)·达到"), ("pub3_missing", "至少两种解读形式(PUB-3)·未达到"),
            ("pub3_running", "至少两种解读形式(PUB-3)·未到期")]
    out += [("rev5_complete", "发布前审核完整(REV-5)"), ("rev5_violated", "未审先发(REV-5)")]
    out += [("returns", "退文(REV-3)"), ("materials", "发布的解读材料")]
    out += [(f"materials.form.{f}", f"解读材料·形式·{_FORM_ZH[str(f)]}") for f in Form]
    out += [(f"materials.channel.{c}", f"解读材料·渠道·{_CHANNEL_ZH[str(c)]}") for c in Channel]
    out += [("consultations", "政策咨询")]
    out += [(f"consultations.channel.{c}", f"政策咨询·{_CONSULT_ZH[str(c)]}")
            for c in ConsultationChannel]
    out += [("consultations_instant", "政策咨询·问答库即时答复"), ("referrals", "转办咨询(QA-4)")]
    out += [(f"referrals_{k}", f"转办咨询·5个工作日内答复·{zh}") for k, zh in _OUTCOMES]
    out += [("qa_entries", "问答库·现行有效问答(期末)"), ("qa_searches", "问答库·咨询匹配"),
            ("qa_searches_answerable", "问答库·匹配到可靠答案"),
            ("qa_candidates", "问答库·待发布候选问答(期末, QA-5)")]
    out += [("opinions", "政务舆情")]
    out += [(f"opinions.severity.{s}", f"舆情·{_SEVERITY_ZH[str(s)]}") for s in OpinionSeverity]
    out += [(f"opinions.kind.{k}", f"舆情·{_KIND_ZH[str(k)]}") for k in OpinionKind]
    for hours in (24, 48):
        out += [(f"op4_{hours}h", f"舆情回应时限{hours}小时(OP-4)")]
        out += [(f"op4_{hours}h_{k}", f"{hours}小时内回应·{zh}") for k, zh in _OUTCOMES]
    out += [("findings_open", "检查发现·未整改"), ("findings_resolved", "检查发现·已整改")]
    out += [("trainings", "本年度培训(SUP-1)"), ("inspections", "本期检查(SUP-1)")]
    return out


BASE_FIGURES: Final = tuple(_base_figures())

RATES: Final[tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...]] = (
    ("rate.pub2_on_time", "解读按时上网率", ("pub2_on_time",), ("policies_issued",)),
    ("rate.pub3", "两种以上形式比例", ("pub3_met",), ("policies_issued",)),
    ("rate.rev5", "审核完整率", ("rev5_complete",), ("policies_issued",)),
    ("rate.instant", "即时答复率", ("consultations_instant",), ("consultations",)),
    ("rate.qa_answerable", "问答库匹配可答率", ("qa_searches_answerable",), ("qa_searches",)),
    ("rate.referrals_on_time", "转办5日内答复率", ("referrals_on_time",), ("referrals",)),
    ("rate.op4_on_time", "舆情按时回应率", ("op4_24h_on_time", "op4_48h_on_time"),
     ("op4_24h", "op4_48h")),
)

Figures = dict[str, dict[str, list[int]]]
"""scope (department code or DISTRICT) → figure key → indexes of its traces (`Report.traces`)."""


@dataclass
class Inputs:
    """What the report reads: the three read models' rows and their positions."""

    facts: list[Row]
    clocks: list[Row]
    findings: list[Row]
    log: Row | None
    positions: dict[str, int] = field(default_factory=dict)


def load_inputs(store: Any) -> Inputs:
    """Read the rows the report needs from a `services.adapters.readmodels.ReadStore` (synchronous)."""
    stats, deadlines, findings = Statistics(), Deadlines(), Findings()
    logs = store.select(stats, LOG, {"name": LOG_KEY})
    positions: dict[str, int] = {}
    for p in (stats, deadlines, findings):
        live = store.live(p.name)
        positions[p.name] = store.position(live) if live is not None else 0
    return Inputs(
        facts=store.select(stats, FACTS),
        clocks=store.select(deadlines, CLOCKS),
        findings=store.select(findings, FINDINGS, order_by=("recorded_seq", "case_id", "finding_id")),
        log=logs[0] if logs else None,
        positions=positions,
    )


@lru_cache(maxsize=65536)
def _local(moment: datetime | None) -> str:
    """An aware time as Asia/Shanghai ``YYYY-MM-DD HH:MM``."""
    if moment is None:
        return "—"
    return moment.astimezone(_UTC8).isoformat(sep=" ", timespec="minutes")[:16]


def _clock_outcome(clock: Row | None, as_of: datetime) -> str:
    """on_time | late | missing | running for a clock row (None: no clock, counted running)."""
    if clock is None:
        return "running"
    status = clock["status"]
    if status == Status.MET_ON_TIME:
        return "on_time"
    if status == Status.MET_LATE:
        return "late"
    if status == Status.BREACHED:
        return "missing"
    due: datetime | None = clock["due_at"]
    if status == Status.OPEN and due is not None and due < as_of:
        return "missing"  # overdue; the breach is not in the log yet
    return "running"


def _clock_trace(clock: Row) -> Trace:
    met = (f", met {_local(clock['met_at'])} by {clock['met_event_id']}@{clock['met_sequence']}"
           if clock["met_event_id"] else "")
    note = f"{clock['clock_id']} due {_local(clock['due_at'])}{met} [{clock['status']}]"
    return (clock["trigger_sequence"], clock["trigger_event_id"], clock["case_id"], note)


ON_DAY, THIS_YEAR, OF_QUARTER, AT_END = 0, 1, 2, 3
"""How an entry falls in a period: by its day; by its day from 1 January to the period's end
(trainings: 'this year'); by the quarter it is of (inspections); by holding at the period's
end, from its day until the day it stops (library entries in force, candidates waiting)."""


Entry = tuple[int, date | None, str | date | None, str, tuple[str, ...], int]
"""One trace and the figures it counts in, worked out once for every period: (how it falls in
a period, its day, its quarter (OF_QUARTER) or the day it stops holding (AT_END, None: still
holds), department, figure keys, the trace's index)."""


@dataclass
class Prepared:
    """`entries`' result: the entries, and the traces they index."""

    entries: list[Entry]
    traces: list[Trace]


def entries(inputs: Inputs, as_of: datetime) -> Prepared:
    """Every counted trace with its figure keys (see the module docstring for the rules)."""
    out: list[Entry] = []
    traces: list[Trace] = []

    def index(trace: Trace) -> int:
        traces.append(trace)
        return len(traces) - 1

    def on(day: date, dept: str, keys: tuple[str, ...], trace: Trace | int) -> None:
        if type(trace) is not int:
            traces.append(trace)  # type: ignore[arg-type]
            trace = len(traces) - 1
        out.append((ON_DAY, day, None, dept, keys, trace))

    clocks = {(r["rule_id"], r["case_id"]): r for r in inputs.clocks
              if r["rule_id"] in ("PUB-2", "PUB-3")}
    rev5: dict[str, list[Row]] = defaultdict(list)
    for f in inputs.findings:
        if f["rule_id"] == "REV-5":
            rev5[f["case_id"]].append(f)
    facts = sorted(inputs.facts, key=lambda r: r["seq"])
    instant: dict[tuple[str, str], int] = {}
    for r in facts:
        a = r["attrs"]
        if r["type"] == "ConsultationAnswered" and a.get("instant") and a.get("entry_id"):
            key = (r["case_id"], a["consultation_id"])
            if key not in instant:
                instant[key] = index((r["seq"], r["event_id"], r["case_id"],
                                      f"instant answer from entry {a['entry_id']}"))
    out.extend(_library_entries(facts, index))
    issued: set[str] = set()
    for r in facts:
        t, a, dept, day, case = r["type"], r["attrs"], r["department"], r["day"], r["case_id"]
        seq, eid = r["seq"], r["event_id"]
        if t == "TrainingHeld":
            out.append((THIS_YEAR, day, None, dept, ("trainings",),
                        index((seq, eid, case, f"TrainingHeld {day}"))))
        elif t == "InspectionConducted":
            out.append((OF_QUARTER, None, a["quarter"], dept, ("inspections",),
                        index((seq, eid, case, f"InspectionConducted {a['quarter']}"))))
        elif t == "PolicyIssued":
            if a.get("scope") not in IN_SCOPE or case in issued:
                continue  # out of scope, or issued again: the first issue counts
            issued.add(case)
            on(day, dept, ("policies_issued",), (seq, eid, case, f"PolicyIssued {day} {a['scope']}"))
            fallback = (seq, eid, case, "no clock yet")
            pub2 = clocks.get(("PUB-2", case))
            on(day, dept, (f"pub2_{_clock_outcome(pub2, as_of)}",),
               _clock_trace(pub2) if pub2 else fallback)
            pub3 = clocks.get(("PUB-3", case))
            outcome = _clock_outcome(pub3, as_of)
            pub3_key = {"on_time": "pub3_met", "late": "pub3_met", "missing": "pub3_missing"}.get(
                outcome, "pub3_running")
            on(day, dept, (pub3_key,), _clock_trace(pub3) if pub3 else fallback)
            found = rev5.get(case)
            if found:  # one trace per case: its first REV-5 finding, and how many there are
                first = found[0]
                on(day, dept, ("rev5_violated",), (
                    first["recorded_seq"], first["fact_event_id"] or "", case,
                    f"REV-5 finding {first['finding_id']} (+{len(found) - 1} more)"))
            else:
                on(day, dept, ("rev5_complete",), (seq, eid, case, "no REV-5 finding"))
        elif t == "SubmissionReturned":
            on(day, dept, ("returns",), (seq, eid, case, f"退文: {', '.join(a['missing'])}"))
        elif t == "MaterialPublished":
            on(day, dept, ("materials", f"materials.form.{a['form']}",
                           f"materials.channel.{a['channel']}"),
               (seq, eid, case, f"{a['form']} @ {a['channel']} {day}"))
        elif t == "ConsultationReceived":
            on(day, dept, ("consultations", f"consultations.channel.{a['channel']}"),
               (seq, eid, case, f"consultation {a['consultation_id']} via {a['channel']}"))
            answer = instant.get((case, a["consultation_id"]))
            if answer is not None:
                on(day, dept, ("consultations_instant",), answer)
        elif t == "OpinionDetected":
            on(day, dept, ("opinions", f"opinions.severity.{a['severity']}",
                           f"opinions.kind.{a['kind']}"),
               (seq, eid, case, f"opinion {a['opinion_id']} {a['severity']}/{a['kind']}"))
    for c in sorted(inputs.clocks, key=lambda c: (c["trigger_sequence"], c["clock_id"])):
        rule = c["rule_id"]
        if rule not in ("QA-4", "OP-4"):
            continue
        prefix = "referrals" if rule == "QA-4" else f"op4_{c['length']}h"
        on(c["started_at"].astimezone(_UTC8).date(), c["department"],
           (prefix, f"{prefix}_{_clock_outcome(c, as_of)}"), _clock_trace(c))
    for f in inputs.findings:
        on(f["recorded_at"].astimezone(_UTC8).date(), f["department"],
           (f"findings_{f['status']}", f"findings.{f['status']}.{f['rule_id']}"),
           (f["recorded_seq"], f["fact_event_id"] or "", f["case_id"],
                 f"{f['rule_id']} {f['finding_id']}: {f['message_zh']}"))
    return Prepared(out, traces)


def _library_entries(facts: Sequence[Row], index: Callable[[Trace], int]) -> list[Entry]:
    """The library's figures (facts in log order): searches by the day of the match; entries
    in force and candidates waiting at a period's end, each from its day until the day it
    stops (withdrawn, its policy repealed; published as an entry). A candidate is a
    consultation referred and answered by the drafting unit, in whichever order the two
    sources' messages reached the log (as `projections.qa_consultations` has it)."""
    out: list[Entry] = []
    stops: dict[tuple[str, str], date] = {}  # (case, entry) → withdrawn on
    repealed: dict[str, date] = {}  # case → repealed_on (a later repeal restates it)
    published: dict[tuple[str, str], tuple[date, str, int]] = {}
    referred = {(r["case_id"], r["attrs"]["consultation_id"]) for r in facts
                if r["type"] == "ConsultationReferred"}  # sources are not ordered among them
    candidates: dict[tuple[str, str], tuple[date, str, int]] = {}
    for r in facts:
        t, a, dept, day, case = r["type"], r["attrs"], r["department"], r["day"], r["case_id"]
        trace: Trace = (r["seq"], r["event_id"], case, "")
        if t == "ConsultationMatched":
            keys = ("qa_searches", "qa_searches_answerable") if a["answerable"] else (
                "qa_searches",)
            best = a["best"]
            note = f"match of {a['consultation_id']}: " + (
                f"best {best['entry_id']}" if best else "nothing") + (
                "" if a["answerable"] else " (not answerable)")
            out.append((ON_DAY, day, None, dept, keys, index((*trace[:3], note))))
        elif t == "QAEntryPublished" and (case, a["entry_id"]) not in published:
            published[(case, a["entry_id"])] = (day, dept, index(
                (*trace[:3], f"entry {a['entry_id']} published {day}")))
        elif t == "QAEntryWithdrawn":
            stops.setdefault((case, a["entry_id"]), day)
        elif t == "PolicyRepealed":
            repealed[case] = day
        elif (t == "ConsultationAnswered" and a.get("by_drafting_unit")
              and (case, a["consultation_id"]) in referred):
            candidates.setdefault((case, a["consultation_id"]), (day, dept, index(
                (*trace[:3], f"candidate from consultation {a['consultation_id']}"))))
    for (case, entry), (day, dept, i) in published.items():
        ends = [d for d in (stops.get((case, entry)), repealed.get(case)) if d is not None]
        out.append((AT_END, day, min(ends) if ends else None, dept, ("qa_entries",), i))
    for (case, consultation), (day, dept, i) in candidates.items():
        done = published.get((case, candidate_entry_id(consultation)))
        out.append((AT_END, day, done[0] if done else None, dept, ("qa_candidates",), i))
    return out


def compute(inputs: Inputs, period: Period, as_of: datetime) -> dict[str, dict[str, list[Trace]]]:
    """Every figure of one period, per department and district-wide, as lists of traces."""
    prepared = entries(inputs, as_of)
    figures = compute_all(inputs, (period,), as_of, prepared)[period.key]
    t = prepared.traces
    return {scope: {k: [t[i] for i in v] for k, v in fig.items()} for scope, fig in figures.items()}


def compute_all(
    inputs: Inputs, chosen: Sequence[Period], as_of: datetime, prepared: Prepared | None = None
) -> dict[str, Figures]:
    """The figures of several periods in one pass over the entries (`prepared`:
    `entries(inputs, as_of)` if already made), by period key."""
    groups: dict[tuple[int, date | None, str | date | None],
                 list[tuple[str, tuple[str, ...], int]]] = {}
    for how, day, quarter, department, keys, trace in (prepared or entries(inputs, as_of)).entries:
        groups.setdefault((how, day, quarter), []).append((department, keys, trace))
    outs: list[Figures] = []
    for p in chosen:  # membership once per day (or quarter), then every entry of that day
        out: Figures = defaultdict(lambda: defaultdict(list))
        year_start = date(p.end.year, 1, 1)
        for (how, day, quarter), members in groups.items():
            if how == ON_DAY:
                inside = p.start <= day <= p.end  # type: ignore[operator]
            elif how == THIS_YEAR:
                inside = year_start <= day <= p.end  # type: ignore[operator]
            elif how == AT_END:
                inside = day <= p.end and (quarter is None or quarter > p.end)  # type: ignore[operator]
            else:
                inside = quarter in p.quarters
            if not inside:
                continue
            for department, keys, trace in members:
                dept = out[department]
                for key in keys:
                    dept[key].append(trace)
        district: dict[str, list[int]] = defaultdict(list)
        for department in sorted(out):  # district-wide: the departments' traces, in order
            for key, found in out[department].items():
                district[key].extend(found)
        out[DISTRICT] = district
        outs.append(out)
    return {p.key: out for p, out in zip(chosen, outs, strict=True)}


def value(fig: Mapping[str, Sequence[object]], keys: Iterable[str]) -> int:
    return sum(len(fig.get(k, ())) for k in keys)


def rate(fig: Mapping[str, Sequence[object]], num: Iterable[str], den: Iterable[str]) -> float | None:
    d = value(fig, den)
    return None if d == 0 else value(fig, num) / d


def figure_keys(all_figures: Iterable[Figures]) -> list[tuple[str, str]]:
    """Every figure key with its Chinese label: the fixed ones, then findings by rule."""
    rules: set[str] = set()
    for figs in all_figures:
        for fig in figs.values():
            rules.update(k.split(".", 2)[2] for k in fig if k.startswith("findings."))
    out = list(BASE_FIGURES)
    for rule in sorted(rules, key=rule_order):
        out += [(f"findings.open.{rule}", f"检查发现·{rule}·未整改"),
                (f"findings.resolved.{rule}", f"检查发现·{rule}·已整改")]
    return out


# ── SUP-2 score ──────────────────────────────────────────────────────────────────────────────


def load_weights(path: Path | None = None) -> dict[str, Any]:
    """The SUP-2 weights: `path`, else ``$JIEDU_ASSESSMENT_WEIGHTS``, else the deploy file."""
    chosen = path or Path(os.environ.get(WEIGHTS_ENV) or DEFAULT_WEIGHTS)
    weights: dict[str, Any] = json.loads(chosen.read_text(encoding="utf-8"))
    for part in weights["parts"]:
        if not {"id", "label_zh", "weight", "numerator", "denominator"} <= part.keys():
            raise ValueError(f"{chosen}: part {part} lacks id, label_zh, weight, numerator or denominator")
    return weights


def score(fig: Mapping[str, Sequence[object]], weights: Mapping[str, Any]) -> dict[str, Any]:
    """One department's SUP-2 score with its parts: each part's rate and points, the
    deductions, and the total (None when no part was due)."""
    parts: list[dict[str, Any]] = []
    due_weight = 0.0
    for p in weights["parts"]:
        num, den = value(fig, p["numerator"]), value(fig, p["denominator"])
        parts.append({"id": p["id"], "label_zh": p["label_zh"], "weight": p["weight"],
                      "numerator": num, "denominator": den,
                      "rate": None if den == 0 else round(num / den, 4), "points": None})
        if den:
            due_weight += float(p["weight"])
    base: float | None = None
    if due_weight > 0:
        base = 0.0
        for part in parts:
            if part["denominator"]:
                points = 100.0 * part["weight"] * part["numerator"] / part["denominator"] / due_weight
                part["points"] = round(points, 2)
                base += points
    deductions: list[dict[str, Any]] = []
    for d in weights.get("deductions", ()):
        items = value(fig, (d["figure"],))
        deductions.append({"id": d["id"], "label_zh": d["label_zh"], "items": items,
                           "points": round(min(float(d["max"]), float(d["per_item"]) * items), 2)})
    total = None if base is None else round(max(0.0, base - sum(x["points"] for x in deductions)), 2)
    return {"score": total, "parts": parts, "deductions": deductions}


# ── the report ───────────────────────────────────────────────────────────────────────────────


@dataclass
class Report:
    """Everything the files are written from."""

    quarter: Quarter
    as_of: datetime
    periods: tuple[Period, Period, Period]
    figures: dict[str, Figures]  # period key → figures
    traces: list[Trace]  # what the figures' indexes point to
    keys: list[tuple[str, str]]
    departments: list[str]
    names: dict[str, str]
    ranking: list[dict[str, Any]]
    log: dict[str, Any]
    chain_head: str | None
    weights: dict[str, Any]
    rows_html: dict[int, str] = field(default_factory=dict)  # rendered traces (a cache)


def build(
    inputs: Inputs,
    quarter: Quarter,
    *,
    as_of: datetime | None = None,
    weights: dict[str, Any] | None = None,
    organs: Organs | None = None,
    chain_head: str | None = None,
) -> Report:
    """Compute the report's figures. `as_of` defaults to the latest event time in the log (so
    the output depends on the log alone); `chain_head` is the signed hash-chain head, when the
    audit chain exists."""
    log_row = inputs.log or {}
    as_of = as_of or log_row.get("last_at") or datetime(quarter.end.year, 1, 1, tzinfo=SHANGHAI)
    weights = weights if weights is not None else load_weights()
    organs = organs or load_organs()
    ps = periods(quarter)
    prepared = entries(inputs, as_of)
    figures = compute_all(inputs, ps, as_of, prepared)
    depts = sorted({d for figs in figures.values() for d in figs if d != DISTRICT})
    names = {d: organs.name(d) for d in depts}
    names[DISTRICT] = f"{organs.district}(全区)"
    scored = [(d, score(figures["quarter"].get(d, {}), weights)) for d in depts]
    ranked = sorted(scored, key=lambda x: (x[1]["score"] is None, -(x[1]["score"] or 0.0), x[0]))
    ranking = [{"rank": i + 1 if s["score"] is not None else None, "department": d,
                "name": names[d], **s} for i, (d, s) in enumerate(ranked)]
    log = {
        "first_sequence": log_row.get("first_seq"),
        "last_sequence": log_row.get("last_seq"),
        "first_event_at": log_row["first_at"].isoformat() if log_row.get("first_at") else None,
        "last_event_at": log_row["last_at"].isoformat() if log_row.get("last_at") else None,
        "read_model_positions": dict(sorted(inputs.positions.items())),
    }
    return Report(quarter, as_of, ps, figures, prepared.traces, figure_keys(figures.values()), depts, names, ranking,
                  log, chain_head, weights)


def to_json(report: Report) -> bytes:
    """statistics.json: periods, every figure per scope (value, and the indexes of its traces
    in the top-level ``traces`` table of [sequence, event ID, case, note]), rates, the
    ranking with its parts and the weights."""
    scopes = [DISTRICT, *report.departments]
    body: dict[str, Any] = {
        "report": "政策解读工作季度检查报告",
        "quarter": report.quarter.label,
        "as_of": report.as_of.isoformat(),
        "log": report.log,
        "chain_head": report.chain_head,
        "periods": {p.key: {"label": p.label, "start": p.start.isoformat(),
                            "end": p.end.isoformat(), "quarters": list(p.quarters)}
                    for p in report.periods},
        "figures": dict(report.keys),
        "scopes": {},
        "assessment": {"weights": report.weights, "ranking": report.ranking},
        "trace_format": ["sequence", "event_id", "case_id", "note"],
        "traces": report.traces,
    }
    for scope in scopes:
        entry: dict[str, Any] = {"name": report.names[scope]}
        for p in report.periods:
            fig = report.figures[p.key].get(scope, {})
            entry[p.key] = {
                "values": {k: len(fig.get(k, ())) for k, _ in report.keys},
                "rates": {k: _round(rate(fig, n, d)) for k, _, n, d in RATES},
                "traces": {k: fig[k] for k, _ in report.keys if fig.get(k)},
            }
        body["scopes"][scope] = entry
    return orjson.dumps(body) + b"\n"


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def to_csv(report: Report) -> bytes:
    """statistics.csv: UTF-8 with BOM; one row per period, scope and figure (rates included)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["period", "period_label", "department", "department_name", "figure", "label_zh",
                "value"])
    for p in report.periods:
        for scope in [DISTRICT, *report.departments]:
            fig = report.figures[p.key].get(scope, {})
            for k, zh in report.keys:
                w.writerow([p.key, p.label, scope, report.names[scope], k, zh, len(fig.get(k, ()))])
            for k, zh, n, d in RATES:
                r = rate(fig, n, d)
                w.writerow([p.key, p.label, scope, report.names[scope], k, zh,
                            "" if r is None else f"{r:.4f}"])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


# ── charts ───────────────────────────────────────────────────────────────────────────────────

CSS_FONTS: Final = (
    '"Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", '
    '"WenQuanYi Micro Hei", "Droid Sans Fallback", sans-serif'
)
"""The page's fonts, the charts' text included: the reader's browser draws every label."""
CHART_FONT: Final = "DejaVu Sans"
"""The font matplotlib lays the charts out with: the one it ships, so the layout (and the
report's bytes) do not depend on the fonts of the machine that wrote it. Its metrics lack
CJK glyphs, so labels are given room by their length (see `_bars_figure`)."""


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({
        "font.family": [CHART_FONT],
        "svg.fonttype": "none",  # labels stay text: searchable, drawn with the reader's fonts
        "svg.hashsalt": "jiedu",  # ids from a fixed salt: the same chart, the same bytes
        "axes.unicode_minus": False,
        "font.size": 9,
    })
    return plt


def _svg(fig: Any) -> str:
    """The figure as an inline `<svg>` element, its text as text."""
    buf = io.StringIO()
    with warnings.catch_warnings():  # CJK labels are measured without their glyphs, on purpose
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    return text[text.index("<svg"):].strip()


COLOURS: Final = {"on_time": "#2e7d32", "late": "#f9a825", "missing": "#c62828", "running": "#90a4ae"}


def _bars_figure(plt: Any, labels: Sequence[str]) -> tuple[Any, tuple[Any, Any]]:
    """Two horizontal bar charts side by side, sized for the row labels, with fixed margins:
    no layout engine, which would lay out every label several times (slow with 100
    departments). Titles are placed at a fixed height (``y=1.0``) for the same reason."""
    height = 0.9 + 0.24 * len(labels)
    label_in = 0.1 + 0.13 * max((len(x) for x in labels), default=4)  # 9 pt CJK ≈ 0.13 in
    fig, axes = plt.subplots(1, 2, figsize=(12, height))
    fig.subplots_adjust(left=min(0.5, label_in / 12), right=0.98, top=1 - 0.45 / height,
                        bottom=0.45 / height, wspace=0.05)
    return fig, (axes[0], axes[1])


ROW_PT: Final = 0.24 * 72
"""Height of one department's row in points (see `_bars_figure`)."""


def _hbars(ax: Any, left: Sequence[float], right: Sequence[float], colour: str, label: str) -> None:
    """Horizontal bars from `left` to `right`, one per row, drawn as a single line collection
    (one artist instead of a rectangle per bar: fast with 100 departments)."""
    ax.hlines(range(len(left)), left, right, colors=colour, linewidth=ROW_PT * 0.7,
              capstyle="butt", label=label)


def _label_rows(ax: Any, labels: Sequence[str], top: float) -> None:
    ax.set_yticks(range(len(labels)), labels)
    ax.set_ylim(len(labels) - 0.5, -0.5)
    ax.set_xlim(0, max(top, 1) * 1.02)


def charts(report: Report) -> list[tuple[str, str]]:
    """(caption, inline SVG) of each chart of the index page."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator
    out: list[tuple[str, str]] = []
    q, prev = report.figures["quarter"], report.figures["previous"]
    dq, dp = q.get(DISTRICT, {}), prev.get(DISTRICT, {})

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.1, top=0.9, wspace=0.25)
    labels = [zh for _, zh in _OUTCOMES]
    x = range(len(_OUTCOMES))
    for i, (scope_fig, name) in enumerate(((dp, report.periods[1].label), (dq, report.quarter.label))):
        vals = [len(scope_fig.get(f"pub2_{k}", ())) for k, _ in _OUTCOMES]
        axes[0].bar([v + (i - 0.5) * 0.38 for v in x], vals, width=0.38, label=name,
                    color=["#b0bec5", "#1565c0"][i])
    axes[0].set_xticks(list(x), labels)
    for ax in axes:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].set_title("解读材料上网(PUB-2):本季度与上季度", y=1.0)
    axes[0].legend()
    chans = list(ConsultationChannel)
    axes[1].bar([_CONSULT_ZH[str(c)] for c in chans],
                [len(dq.get(f"consultations.channel.{c}", ())) for c in chans], color="#1565c0")
    axes[1].set_title("政策咨询·按渠道", y=1.0)
    sevs = list(OpinionSeverity)
    axes[2].bar([_SEVERITY_ZH[str(s)] for s in sevs],
                [len(dq.get(f"opinions.severity.{s}", ())) for s in sevs], color="#6a1b9a")
    axes[2].set_title("政务舆情·按级别", y=1.0)
    out.append(("全区概况(本季度与上季度)", _svg(fig)))
    plt.close(fig)

    rows = [r for r in report.ranking if r["score"] is not None or q.get(r["department"])]
    if rows:  # one figure, the labels drawn once: PUB-2 outcomes and the SUP-2 score by rank
        labels = [r["name"] for r in rows]
        fig, (ax, ax2) = _bars_figure(plt, labels)
        left = [0] * len(rows)
        for k, zh in _OUTCOMES:
            vals = [len(q.get(r["department"], {}).get(f"pub2_{k}", ())) for r in rows]
            right = [a + b for a, b in zip(left, vals, strict=True)]
            _hbars(ax, left, right, COLOURS[k], zh)
            left = right
        _label_rows(ax, labels, max(left))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"{report.quarter.label} 政策解读上网(PUB-2)", y=1.0)
        ax.legend(loc="lower right", framealpha=0.9)
        _hbars(ax2, [0.0] * len(rows), [r["score"] or 0.0 for r in rows], "#00695c", "得分")
        ax2.set_yticks([])  # the labels are drawn once, on the left
        ax2.set_ylim(len(rows) - 0.5, -0.5)
        ax2.set_xlim(0, 100)
        ax2.set_title("公开考评得分(SUP-2,按名次)", y=1.0)
        out.append(("各部门:解读上网情况与公开考评得分", _svg(fig)))
        plt.close(fig)
    return out


# ── HTML ─────────────────────────────────────────────────────────────────────────────────────

_CSS = (  # noqa: UP031 (the CSS braces would all need doubling for format())
    "body{font-family:%s;margin:24px;color:#212121;line-height:1.45}"
    "table{border-collapse:collapse;margin:8px 0 20px}th,td{border:1px solid #cfd8dc;"
    "padding:3px 8px;text-align:right}th{background:#eceff1}td.l,th.l{text-align:left}"
    ".hdr{background:#f5f5f5;padding:10px 14px;"
    "border-left:4px solid #1565c0}.placeholder{border:2px dashed #f9a825;padding:4px 8px;"
    "background:#fffde7}figure svg{max-width:100%%;height:auto}"
    "figure svg text{font-family:%s!important}code{font-size:90%%}details{margin:4px 0}"
) % (CSS_FONTS, CSS_FONTS)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _fmt_rate(r: float | None) -> str:
    return "—" if r is None else f"{100 * r:.1f}%"


def _page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
            f"<title>{_e(title)}</title><style>{_CSS}</style></head>\n<body>\n{body}\n</body></html>\n")


def _header(report: Report) -> str:
    log = report.log
    head = report.chain_head
    chain = (f"<code>{_e(head)}</code>" if head else
             f'<span class="placeholder" id="chain-head">{_e(CHAIN_HEAD_PENDING)}</span>')
    positions = ", ".join(f"{k} @ {v}" for k, v in log["read_model_positions"].items())
    return (
        f'<div class="hdr"><div>日志范围 log range: 序号 {_e(log["first_sequence"])} — '
        f'{_e(log["last_sequence"])}(事件时间 {_e(log["first_event_at"])} — '
        f'{_e(log["last_event_at"])})</div>'
        f"<div>截至 as of: {_e(report.as_of.isoformat())}(北京时间 {_e(_local(report.as_of))})</div>"
        f"<div>读模型位置 read models: {_e(positions)}</div>"
        f"<div>签名链头 signed chain head: {chain}</div></div>"
    )


def _delta(now: int | float | None, before: int | float | None, pct: bool = False) -> str:
    if now is None or before is None:
        return "—"
    d = now - before
    if d == 0:
        return "0"
    return f"{100 * d:+.1f}pt" if pct else f"{d:+d}" if isinstance(d, int) else f"{d:+.2f}"


def _figures_table(report: Report, scope: str, link: Callable[[str], str] | None = None) -> str:
    q, p, y = (report.figures[k].get(scope, {}) for k in ("quarter", "previous", "ytd"))
    rows = [f'<tr><th class="l">指标 figure</th><th>{_e(report.quarter.label)}</th>'
            f"<th>{_e(report.periods[1].label)}</th><th>变化</th><th>{_e(report.periods[2].label)}</th></tr>"]
    for k, zh in report.keys:
        a, b, c = len(q.get(k, ())), len(p.get(k, ())), len(y.get(k, ()))
        if a == b == c == 0 and k.startswith(("findings.", "materials.", "opinions.")):
            continue
        name = f'<a href="{link(k)}">{_e(zh)}</a>' if link and a else _e(zh)
        rows.append(f'<tr><td class="l">{name} <code>{_e(k)}</code></td><td>{a}</td><td>{b}</td>'
                    f"<td>{_delta(a, b)}</td><td>{c}</td></tr>")
    for k, zh, n, d in RATES:
        a_, b_, c_ = rate(q, n, d), rate(p, n, d), rate(y, n, d)
        rows.append(f'<tr><td class="l">{_e(zh)} <code>{_e(k)}</code></td><td>{_fmt_rate(a_)}</td>'
                    f"<td>{_fmt_rate(b_)}</td><td>{_delta(a_, b_, pct=True)}</td>"
                    f"<td>{_fmt_rate(c_)}</td></tr>")
    return "<table>" + "".join(rows) + "</table>"


def _ranking_table(report: Report, rows: Sequence[dict[str, Any]], link: bool = True) -> str:
    parts = [p["label_zh"] for p in report.weights["parts"]]
    deds = [d["label_zh"] for d in report.weights.get("deductions", ())]
    head = ('<tr><th>名次</th><th class="l">单位</th><th>得分</th>'
            + "".join(f"<th>{_e(x)}</th>" for x in parts)
            + "".join(f"<th>扣分:{_e(x)}</th>" for x in deds) + "</tr>")
    out = [head]
    for r in rows:
        name = (f'<a href="departments/{_file(r["department"])}">{_e(r["name"])}</a>'
                if link else _e(r["name"]))
        cells = "".join(
            f"<td>{_points(p['points'])}<br><small>{p['numerator']}/{p['denominator']}</small></td>"
            for p in r["parts"])
        cells += "".join(f"<td>-{d['points']:.1f}<br><small>{d['items']}</small></td>"
                         for d in r["deductions"])
        total = "—" if r["score"] is None else f"{r['score']:.1f}"
        out.append(f"<tr><td>{r['rank'] or '—'}</td><td class=\"l\">{name}</td>"
                   f"<td><b>{total}</b></td>{cells}</tr>")
    return "<table>" + "".join(out) + "</table>"


def _points(points: float | None) -> str:
    return "—" if points is None else f"{points:.1f}"


def _file(dept: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", dept) + ".html"


def index_html(report: Report, chart_svgs: Sequence[tuple[str, str]]) -> str:
    title = f"{report.names[DISTRICT].removesuffix('(全区)')}政策解读工作季度检查报告 {report.quarter.label}"
    body = [f"<h1>{_e(title)}</h1>", _header(report)]
    body.append(f"<h2>全区统计(与上季度 {_e(report.periods[1].label)} 比较)</h2>")
    for caption, svg in chart_svgs:
        body.append(f'<figure role="img" aria-label="{_e(caption)}">{svg}<figcaption>'
                    f"{_e(caption)}</figcaption></figure>")
    body.append(_figures_table(report, DISTRICT))
    body.append(f"<h2>公开考评得分(SUP-2)·{_e(report.weights.get('title_zh', ''))}</h2>")
    body.append(f"<p><small>{_e(report.weights.get('note', ''))}</small></p>")
    body.append(_ranking_table(report, report.ranking))
    body.append("<h2>各部门</h2><table><tr><th class=\"l\">单位</th><th>应解读文件</th>"
                "<th>逾期上网</th><th>缺失</th><th>未整改发现</th></tr>")
    q = report.figures["quarter"]
    for d in report.departments:
        f = q.get(d, {})
        body.append(f'<tr><td class="l"><a href="departments/{_file(d)}">{_e(report.names[d])}</a>'
                    f" <code>{_e(d)}</code></td><td>{len(f.get('policies_issued', ()))}</td>"
                    f"<td>{len(f.get('pub2_late', ()))}</td><td>{len(f.get('pub2_missing', ()))}</td>"
                    f"<td>{len(f.get('findings_open', ()))}</td></tr>")
    body.append("</table><p><small>每个数字背后的事件(日志序号、事件ID、案件)见各部门页面与 statistics.json。"
                "</small></p>")
    return _page(title, "\n".join(body))


LATE_AND_MISSING: Final = (
    ("pub2_late", "解读逾期上网(PUB-2)"), ("pub2_missing", "解读缺失(PUB-2)"),
    ("pub3_missing", "解读形式不足两种(PUB-3)"), ("rev5_violated", "未审先发(REV-5)"),
    ("referrals_late", "转办咨询逾期答复(QA-4)"), ("referrals_missing", "转办咨询未答复(QA-4)"),
    ("op4_24h_late", "舆情逾期回应·24小时(OP-4)"), ("op4_24h_missing", "舆情未回应·24小时(OP-4)"),
    ("op4_48h_late", "舆情逾期回应·48小时(OP-4)"), ("op4_48h_missing", "舆情未回应·48小时(OP-4)"),
    ("findings_open", "未整改的检查发现"),
)


def _trace_row(report: Report, i: int) -> str:
    """One trace as a table row, made once per report (a trace shows in several tables)."""
    row = report.rows_html.get(i)
    if row is None:
        seq, eid, case, note = report.traces[i]
        row = (f'<tr><td>{seq}</td><td class="l"><code>{_e(case)}</code></td>'
               f'<td class="l"><code>{_e(eid)}</code></td><td class="l">{_e(note)}</td></tr>')
        report.rows_html[i] = row
    return row


def _traces_table(report: Report, indexes: Sequence[int]) -> str:
    traces = report.traces
    ordered = sorted(indexes, key=lambda i: (traces[i][SEQ], i))
    rows = "".join([_trace_row(report, i) for i in ordered])
    return ('<table><tr><th>日志序号</th><th class="l">案件</th><th class="l">事件ID</th>'
            f'<th class="l">说明</th></tr>{rows}</table>')


def department_html(report: Report, dept: str) -> str:
    name = report.names[dept]
    title = f"{name} · 政策解读季度检查 {report.quarter.label}"
    q = report.figures["quarter"].get(dept, {})
    body = [f'<p><a href="../index.html">← 全区报告</a></p><h1>{_e(title)}</h1>', _header(report)]
    body.append("<h2>逾期与缺失事项 late and missing</h2>")
    any_item = False
    for k, zh in LATE_AND_MISSING:
        if q.get(k):
            any_item = True
            body.append(f"<h3>{_e(zh)}:{len(q[k])}</h3>{_traces_table(report, q[k])}")
    if not any_item:
        body.append("<p>本季度无逾期或缺失事项。</p>")
    body.append("<h2>统计</h2>")
    body.append(_figures_table(report, dept, link=lambda k: f"#f-{k}"))
    body.append("<h2>公开考评得分(SUP-2)</h2>")
    body.append(_ranking_table(report, [r for r in report.ranking if r["department"] == dept],
                               link=False))
    body.append(f"<h2>数字来源 traces ({_e(report.quarter.label)})</h2>")
    body.append("<p><small>按形式、渠道、级别、类别、规则细分的数字是下列合计的子集,其说明列注明所属分组;"
                "完整索引见 statistics.json。</small></p>")
    for k, zh in report.keys:
        if q.get(k) and "." not in k:  # a breakdown (materials.form.text) repeats its total
            body.append(f'<details id="f-{_e(k)}"><summary>{_e(zh)} <code>{_e(k)}</code>: '
                        f"{len(q[k])}</summary>{_traces_table(report, q[k])}</details>")
    return _page(title, "\n".join(body))


def write_report(report: Report, out: Path) -> dict[str, Path]:
    """Write every file of the report under `out` and return them by name."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "departments").mkdir(exist_ok=True)
    files = {
        "index.html": out / "index.html",
        "statistics.csv": out / "statistics.csv",
        "statistics.json": out / "statistics.json",
    }
    files["index.html"].write_text(index_html(report, charts(report)), encoding="utf-8")
    files["statistics.csv"].write_bytes(to_csv(report))
    files["statistics.json"].write_bytes(to_json(report))
    for d in report.departments:
        path = out / "departments" / _file(d)
        path.write_text(department_html(report, d), encoding="utf-8")
        files[f"departments/{_file(d)}"] = path
    return files


def _position(store: Any, name: str) -> int:
    live = store.live(name)
    return int(store.position(live)) if live is not None else 0


def statistics_behind(store: Any) -> bool:
    """The statistics read model is missing, of another version, or behind the others."""
    live = store.live(Statistics.name)
    if live is None or live.version != Statistics.version:
        return True
    others = max(_position(store, p.name) for p in (Deadlines, Findings))
    return bool(store.position(live) < others)



def quarterly(
    inputs: Inputs,
    quarter: str,
    out: Path,
    *,
    as_of: datetime | None = None,
    weights_path: Path | None = None,
    chain_head: str | None = None,
) -> Report:
    """Build and write the quarterly report for `quarter` (e.g. ``2026Q3``)."""
    report = build(inputs, Quarter.parse(quarter), as_of=as_of,
                   weights=load_weights(weights_path), chain_head=chain_head)
    write_report(report, out)
    return report
