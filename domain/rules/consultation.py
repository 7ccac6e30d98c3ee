"""Policy consultations (政策咨询): QA-3 (channels) and QA-4 (who answers, and how).

QA-4's 5 working days from a referral are a clock of the deadline service; it reads
``CaseFacts.consultations`` (each with its referrals and answers). The drafting unit is the
case's accountable department (WHO-1).
"""

from __future__ import annotations

from collections.abc import Iterator

from domain.rules.base import Context, Outcome, Rule, listed
from events.catalogue import (
    ConsultationAnswered,
    ConsultationReceived,
    ConsultationReferred,
    Severity,
)

W, V = Severity.WARNING, Severity.VIOLATION


def qa_3(ctx: Context) -> Iterator[Outcome]:
    """QA-3 (五(二)2-4): consultations are taken by the 12345 hotline (一号答), the website's
    mailbox and messages (一网答) and service windows (一站式).

    * ``channel`` (warning): a consultation taken on a channel the rule set does not name.
      Every channel of the event catalogue is named by the 2021 set, so this matters only when a
      revision narrows or renames the channels. Not resolvable.
    """
    e = ctx.event
    channels = ctx.rules.consultation_channels
    if isinstance(e, ConsultationReceived) and e.data.channel not in channels:
        allowed = listed(sorted(channels))
        yield ctx.finding(
            "QA-3", "channel", W,
            f"政策咨询经由 {e.data.channel} 受理,不在规定渠道({allowed})之内",
            f"consultation taken on {e.data.channel}, not one of the channels ({allowed})",
        )


def qa_4(ctx: Context) -> Iterator[Outcome]:
    """QA-4 (五(二)5): answer from the Q&A library first; answer at once if possible, otherwise
    refer the question to the drafting unit, which replies (in 5 working days: a clock).

    * ``referral`` (violation): a consultation referred to someone other than the drafting unit.
      Resolved by a later referral of the same consultation to the drafting unit.
    * ``not-referred`` (violation): answered later (not at once) by someone other than the
      drafting unit, without a referral to it. Not resolvable. When the drafting unit took the
      question itself, its own later answer is what the rule asks for.
    * ``not-at-once`` (warning): the answer came from the library but not at once: what the
      library holds is to be given immediately (能立即答复的，要立即答复). Not resolvable.
    * ``not-drafting-unit`` (warning): a question referred to the drafting unit was answered by
      someone else. Not resolvable.
    """
    e, f = ctx.event, ctx.facts
    unit = f.department
    if isinstance(e, ConsultationReferred):
        c = f.consultations.get(e.data.consultation_id)
        if e.data.referred_to != unit:
            yield ctx.finding(
                "QA-4", "referral", V,
                f"咨询 {e.data.consultation_id} 交办给 {e.data.referred_to},"
                f"而非政策起草单位 {unit}",
                f"consultation {e.data.consultation_id} referred to {e.data.referred_to}, not to "
                f"the drafting unit {unit}",
            )
        elif c is not None:
            yield from ctx.resolve("QA-4", "referral", [r.evidence for r in c.referrals])
    elif isinstance(e, ConsultationAnswered):
        d = e.data
        c = f.consultations.get(d.consultation_id)
        if c is None:
            return
        referred = any(r.referred_to == unit for r in c.referrals)
        if not d.instant and not referred and not d.by_drafting_unit and c.received_by != unit:
            yield ctx.finding(
                "QA-4", "not-referred", V,
                f"咨询 {d.consultation_id} 未能立即答复,也未交办政策起草单位 {unit}",
                f"consultation {d.consultation_id} was neither answered at once nor referred to "
                f"the drafting unit {unit}",
                also=[c.received],
            )
        if d.from_library and not d.instant:
            yield ctx.finding(
                "QA-4", "not-at-once", W,
                f"咨询 {d.consultation_id} 的答复取自问答库,却未立即答复",
                f"consultation {d.consultation_id} was answered from the library, but not at once",
                also=[c.received],
            )
        if referred and not d.by_drafting_unit:
            yield ctx.finding(
                "QA-4", "not-drafting-unit", W,
                f"已交办的咨询 {d.consultation_id} 未由政策起草单位答复",
                f"referred consultation {d.consultation_id} was not answered by the drafting unit",
                also=[r.evidence for r in c.referrals if r.referred_to == unit][-1:],
            )


RULES = (
    Rule("QA-3", qa_3),
    Rule("QA-4", qa_4),
)
