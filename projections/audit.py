"""Audit trail (审计轨迹): one row per event of the log, in log order — who, what, when, where in
the log, what caused it, and its hash-chain link.

- who: the actor (ID and name), the accountable department (责任单位), the source system;
- what: the event type and a one-line Chinese summary (`summary_zh`);
- when: `occurred_at` (the source's time) and `recorded_at`, the time JetStream stored the
  message (the stored message's timestamp, from the message metadata);
- where: the stream sequence and the subject it was stored under;
- cause: `causation_id` (for findings and deadline events: the fact that caused them) and the
  rule (`rule_id`) of findings and deadline events. What an event caused is found the other way
  round: the rows whose `causation_id` is its event ID (see `services.audit.caused_by`);
- `link`: the hash-chain link after this event (`domain.chain`), which `jiedu audit verify`
  recomputes from the log.

Two ways in. `apply_stored` receives the stored message (sequence, subject, exact bytes, stored
timestamp) and fills every column; it keeps the chain head in `audit_head`. `apply`, the plain
`Projection` entry, sees only the decoded event, so it cannot know the stored bytes or time:
it fills the rest and leaves `link` and `recorded_at` empty (and the subject as the intake
derives it). A runner that has the stored message calls `apply_stored` (the replay does; the
live projector needs the hook described in `services.audit`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from domain.calendar import SHANGHAI
from domain.chain import GENESIS_HEX, link
from events import catalogue as c
from events.catalogue import Event
from events.streams import event_subject
from projections.base import Key, Projection, Row, Rows, Stored, Table, Type

TRAIL = Table(
    "audit_trail",
    key=("seq",),
    columns={
        "seq": Type.INT,  # stream sequence in EVENTS
        "event_id": Type.TEXT,
        "type": Type.TEXT,
        "case_id": Type.TEXT,
        "department": Type.TEXT,  # accountable department (责任单位)
        "actor_id": Type.TEXT,
        "actor_name": Type.TEXT,
        "source_system": Type.TEXT,
        "summary_zh": Type.TEXT,
        "occurred_at": Type.TIMESTAMP,
        "recorded_at": Type.TIMESTAMP,  # JetStream's stored timestamp; None via plain `apply`
        "subject": Type.TEXT,
        "causation_id": Type.TEXT,
        "correlation_id": Type.TEXT,
        "rule_id": Type.TEXT,  # findings and deadline events
        "link": Type.TEXT,  # hex chain link after this event; None via plain `apply`
    },
    indexes=(("case_id", "seq"), ("department", "occurred_at"), ("actor_id",), ("rule_id",)),
)

HEAD = Table(
    "audit_head",
    key=("name",),
    columns={"name": Type.TEXT, "seq": Type.INT, "link": Type.TEXT},
)
HEAD_KEY = "head"


# ── one line of Chinese per event type ───────────────────────────────────────────────────────


def _d(e: Any) -> Any:
    return e.data


_SUMMARIES: dict[type[Any], Callable[[Any], str]] = {
    c.DraftSubmitted: lambda e: f"报送审核：《{_d(e).title}》（{_d(e).scope}，"
    f"{'含' if _d(e).plan else '缺'}解读方案，材料 {len(_d(e).materials)} 份）",
    c.ConsultationDraftPublished: lambda e: "发布征求意见稿及解读（重大决策预公开）",
    c.ConsultationResultsPublished: lambda e: f"公布征求意见结果：收到 {_d(e).comments_received} "
    f"条，采纳 {_d(e).comments_adopted} 条",
    c.ReviewSigned: lambda e: f"审核签字：{_d(e).stage}，签字人 {_d(e).signer}",
    c.SubmissionReturned: lambda e: f"退文：缺少 {'、'.join(_d(e).missing)}",
    c.DraftResubmitted: lambda e: f"补充后重新报送（材料 {len(_d(e).materials)} 份）",
    c.PolicyIssued: lambda e: f"印发 {_d(e).document_number}（印发日期 {_d(e).issue_date}）",
    c.MaterialPublished: lambda e: f"发布解读材料 {_d(e).material_id}：{_d(e).form} / "
    f"{_d(e).channel}（{_d(e).published_on}）",
    c.MediaInterpretationReported: lambda e: f"媒体自主解读：{_d(e).outlet}"
    f"（{'已' if _d(e).drafting_unit_consulted else '未'}征询起草单位"
    f"{'，存在误读' if _d(e).misreading else ''}）",
    c.MediaInterpretationCorrected: lambda e: f"媒体误读已更正：{_d(e).report_id}",
    c.ConsultationReceived: lambda e: f"受理咨询 {_d(e).consultation_id}（{_d(e).channel}）",
    c.ConsultationAnswered: lambda e: f"答复咨询 {_d(e).consultation_id}"
    f"（{'问答库' if _d(e).from_library else '人工'}，{'即时' if _d(e).instant else '非即时'}"
    f"{'，问答 ' + _entry(e) if _d(e).entry_id else ''}）",
    c.ConsultationReferred: lambda e: f"咨询 {_d(e).consultation_id} 转交 {_d(e).referred_to}",
    c.QAEntryPublished: lambda e: f"发布问答 {_d(e).entry_id}：{_d(e).question}",
    c.QAEntryRevised: lambda e: f"修订问答 {_d(e).entry_id}：{_d(e).question}",
    c.QAEntryWithdrawn: lambda e: f"撤回问答 {_d(e).entry_id}"
    f"{'：' + _d(e).reason if _d(e).reason else ''}",
    c.PolicyRepealed: lambda e: f"政策{'废止' if _d(e).kind == 'repealed' else '失效'}"
    f"（自 {_d(e).repealed_on} 起）",
    c.OpinionDetected: lambda e: f"监测到舆情 {_d(e).opinion_id}（{_d(e).severity}，{_d(e).kind}）",
    c.ResponseIssued: lambda e: f"回应舆情 {_d(e).opinion_id}（{_d(e).kind}）",
    c.SuggestionAdopted: lambda e: f"采纳建议（舆情 {_d(e).opinion_id}）",
    c.SuggestionDeclined: lambda e: f"不予采纳建议（舆情 {_d(e).opinion_id}）",
    c.TrainingHeld: lambda e: f"举办培训：《{_d(e).title}》（{_d(e).held_on}）",
    c.InspectionConducted: lambda e: f"开展 {_d(e).quarter} 政策解读检查（{_d(e).conducted_on}）",
    c.InspectionResultsPublished: lambda e: f"公开检查结果（{_d(e).published_on}）",
    c.CalendarYearConfirmed: lambda e: f"确认 {_d(e).year} 年工作日历（{_d(e).notice}，放假 "
    f"{len(_d(e).holidays)} 天，调休上班 {len(_d(e).make_up_working_days)} 天）",
    c.ConsultationMatched: lambda e: f"问答库匹配咨询 {_d(e).consultation_id}："
    + (f"{'可即时答复' if _d(e).answerable else '无可靠答案，宜转交'}，建议 "
       + "、".join(f"{s.entry_id}（{s.confidence:.2f}）" for s in _d(e).suggestions)
       if _d(e).suggestions else "无匹配问答，宜转交"),
    c.FindingRecorded: lambda e: f"记录检查发现 {_d(e).rule_id}：{_d(e).message_zh}",
    c.FindingResolved: lambda e: f"检查发现 {_d(e).finding_id} 已纠正",
    c.DeadlineStarted: lambda e: f"{_d(e).rule_id} 期限开始计算，截止 {_due(e)}",
    c.DeadlinePendingCalendar: lambda e: f"{_d(e).rule_id} 期限待定：缺少工作日历",
    c.DeadlineWarned: lambda e: f"{_d(e).rule_id} 期限临近（截止 {_due(e)}）",
    c.DeadlineMet: lambda e: f"{_d(e).rule_id} 期限内义务已履行",
    c.PersonalDataErased: lambda e: f"删除咨询人个人信息（数据主体 {_d(e).subject_id}，"
    f"{'依申请' if _d(e).reason == 'request' else '保存期满'}）",
    c.DeadlineBreached: lambda e: f"{_d(e).rule_id} 期限届满未履行（截止 {_due(e)}）",
}


def _entry(e: Any) -> str:
    other = e.data.entry_case_id
    return f"{e.data.entry_id}" + (f"（{other}）" if other and other != e.case_id else "")


def _due(e: Any) -> str:
    due = e.data.due_at
    return f"{due.astimezone(SHANGHAI):%Y-%m-%d %H:%M}" if due is not None else "未定"


def summary_zh(event: Event) -> str:
    """One line of Chinese saying what the event records."""
    make = _SUMMARIES.get(type(event))
    return make(event) if make is not None else event.type


def _rule(event: Event) -> str | None:
    data = getattr(event, "data", None)
    rule = getattr(data, "rule_id", None)
    return rule if isinstance(rule, str) else None


def row_of(event: Event, seq: int, stored: Stored | None, link_hex: str | None) -> Row:
    """The audit row of one event (pure; what `apply_stored` and `apply` put)."""
    return {
        "seq": seq,
        "event_id": event.event_id,
        "type": event.type,
        "case_id": event.case_id,
        "department": event.department,
        "actor_id": event.actor.id,
        "actor_name": event.actor.name,
        "source_system": event.source_system,
        "summary_zh": summary_zh(event),
        "occurred_at": event.occurred_at,
        "recorded_at": stored.stored_at if stored is not None else None,
        "subject": (
            stored.subject if stored is not None
            else event_subject(event.department, event.case_id, event.type)
        ),
        "causation_id": event.causation_id,
        "correlation_id": event.correlation_id,
        "rule_id": _rule(event),
        "link": link_hex,
    }


class AuditTrail(Projection):
    """One row per event in `audit_trail`; the chain head in `audit_head`."""

    name = "audit"
    version = 1
    tables = (TRAIL, HEAD)

    def touches(self, event: Event) -> Iterable[tuple[Table, Key]]:
        return ((HEAD, (HEAD_KEY,)),)

    def apply(self, event: Event, seq: int, rows: Rows) -> None:
        """Without the stored message: no link, no recorded time (see the module docstring)."""
        rows.put(TRAIL, row_of(event, seq, None, None))

    def apply_stored(self, stored: Stored, event: Event, rows: Rows) -> None:
        """With the stored message: the full row, chained onto the head."""
        head = rows.get(HEAD, HEAD_KEY)
        previous = bytes.fromhex(head["link"]) if head is not None else bytes.fromhex(GENESIS_HEX)
        now = link(previous, stored.seq, stored.subject, stored.data).hex()
        rows.put(TRAIL, row_of(event, stored.seq, stored, now))
        rows.put(HEAD, {"name": HEAD_KEY, "seq": stored.seq, "link": now})
