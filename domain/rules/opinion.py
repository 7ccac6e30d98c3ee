"""Public opinion (政务舆情回应): OP-1..3.

OP-4's 24 h / 48 h are clocks of the deadline service; it reads ``CaseFacts.opinions`` (each
with its severity, detection time and responses).
"""

from __future__ import annotations

from collections.abc import Iterator

from domain.rules.base import Context, Outcome, Rule, listed
from events.catalogue import (
    OpinionDetected,
    OpinionKind,
    ResponseIssued,
    ResponseKind,
    Severity,
    SuggestionAdopted,
    SuggestionDeclined,
)

W, V = Severity.WARNING, Severity.VIOLATION
REFERRAL = ResponseKind.REFERRAL_TO_AUTHORITIES


def op_1(ctx: Context) -> Iterator[Outcome]:
    """OP-1 (六(一)): the drafting unit watches reactions after its policy and materials are
    published; each opinion is linked to its policy's case.

    * ``unpublished`` (warning): an opinion linked to a case of which nothing is public yet
      (not issued, no consultation draft, no material): the link is probably wrong. Not
      resolvable: a later publication does not make the opinion about it.
    """
    e = ctx.event
    if isinstance(e, OpinionDetected) and not ctx.facts.made_public:
        yield ctx.finding(
            "OP-1", "unpublished", W,
            f"舆情 {e.data.opinion_id} 关联的政策尚未印发或发布任何内容,关联可能有误",
            f"opinion {e.data.opinion_id} is linked to a policy of which nothing is public yet; "
            "the link is probably wrong",
        )


def op_2(ctx: Context) -> Iterator[Outcome]:
    """OP-2 (六(二)): reasonable suggestions are assessed and adopted where they help.

    * ``not-suggestion`` (warning): a suggestion decision on an opinion that is not a
      suggestion.
    * ``conflict`` (warning): a decision that contradicts an earlier one on the same opinion.

    Neither is resolvable.
    """
    e, f = ctx.event, ctx.facts
    if not isinstance(e, SuggestionAdopted | SuggestionDeclined):
        return
    o = f.opinions.get(e.data.opinion_id)
    if o is None:
        return
    adopted = isinstance(e, SuggestionAdopted)
    if o.kind is not OpinionKind.SUGGESTION:
        yield ctx.finding(
            "OP-2", "not-suggestion", W,
            f"对非建议类舆情 {e.data.opinion_id}({o.kind})作出采纳/不采纳决定",
            f"a suggestion decision on opinion {e.data.opinion_id}, which is {o.kind}, not a "
            "suggestion",
            also=[o.detected],
        )
    contrary = [d.evidence for d in o.decisions if d.adopted is not adopted]
    if contrary:
        yield ctx.finding(
            "OP-2", "conflict", W,
            f"对建议 {e.data.opinion_id} 的决定与此前的决定相反",
            f"the decision on suggestion {e.data.opinion_id} contradicts an earlier one",
            also=contrary[-1:],
        )


def op_3(ctx: Context) -> Iterator[Outcome]:
    """OP-3 (六(三)): misunderstanding → clarify; errors → authoritative correction; false
    information → rebut; illegal content → refer to the police / cyberspace office.

    * ``kind`` (violation): a response that does not fit the opinion's kind (e.g. a rebuttal of
      a citizen's misunderstanding). Not resolvable: the wrong response was given.
    * ``no-authority`` (violation): a referral that names no authority.
    * ``not-referred`` (violation): a response to illegal content while its clues have not been
      referred to an authority.

    ``no-authority`` and ``not-referred`` are resolved by a later referral that names one.
    """
    e, f = ctx.event, ctx.facts
    if not isinstance(e, ResponseIssued):
        return
    d = e.data
    o = f.opinions.get(d.opinion_id)
    if o is None:
        return
    fitting = ctx.rules.fitting_responses.get(o.kind, frozenset())
    if d.kind not in fitting:
        yield ctx.finding(
            "OP-3", "kind", V,
            f"对 {o.kind} 类舆情 {d.opinion_id} 作出 {d.kind} 回应,应为:{listed(sorted(fitting))}",
            f"a {d.kind} response to {o.kind} opinion {d.opinion_id}; fitting responses: "
            f"{listed(sorted(fitting))}",
            also=[o.detected],
        )
    refers = d.kind is REFERRAL and bool(d.referred_to)
    if d.kind is REFERRAL and not d.referred_to:
        yield ctx.finding(
            "OP-3", "no-authority", V,
            f"舆情 {d.opinion_id} 的移交未注明接收机关(公安机关、网信部门)",
            f"the referral of opinion {d.opinion_id} names no authority (police, cyberspace "
            "office)",
        )
    if refers:
        earlier = [r.evidence for r in o.responses]
        yield from ctx.resolve("OP-3", "no-authority", earlier)
        yield from ctx.resolve("OP-3", "not-referred", earlier)
    elif (
        d.kind is not REFERRAL
        and o.kind in ctx.rules.must_refer
        and not any(r.kind is REFERRAL and r.referred_to for r in o.responses)
    ):
        yield ctx.finding(
            "OP-3", "not-referred", V,
            f"涉嫌违法的舆情 {d.opinion_id} 未移交公安机关、网信部门",
            f"the clues of illegal-content opinion {d.opinion_id} have not been referred to the "
            "police or cyberspace office",
            also=[o.detected],
        )


RULES = (
    Rule("OP-1", op_1),
    Rule("OP-2", op_2),
    Rule("OP-3", op_3),
)
