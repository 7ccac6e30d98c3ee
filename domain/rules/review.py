"""The review chain (文件审核): REV-1..5.

The chain depends on the issuer (see ``RuleSet.review_chains``): a district-government document
goes through the drafting unit's 三审三校 (section head, deputy head, principal head; REV-1), the
news office (REV-2) and the leaders' sign-off at the government office (REV-3); a department or
joint document through 三审三校 and the department's own interpretation unit (REV-4). A
signature of a stage outside the case's chain is neither required nor wrong, and is ignored.

The chain is complete when every stage's signature stands; a 退文 (SubmissionReturned) voids the
leaders' sign-off until the drafting unit resubmits and the leaders sign again. Nothing may be
published before the chain is complete (REV-5).
"""

from __future__ import annotations

from collections.abc import Iterator

from domain.rules.base import Context, Outcome, Rule, listed
from domain.rules.ruleset import ChainStep
from events.catalogue import (
    MaterialPublished,
    PolicyIssued,
    ReviewSigned,
    Severity,
)

W, V = Severity.WARNING, Severity.VIOLATION


def _step(ctx: Context, rule_id: str) -> ChainStep | None:
    """The chain step the judged signature fills, if it is one that ``rule_id`` governs."""
    e = ctx.event
    if not isinstance(e, ReviewSigned) or ctx.issuer is None:
        return None
    for step in ctx.rules.chain(ctx.issuer.kind):
        if step.stage is e.data.stage and step.rule_id == rule_id:
            return step
    return None


def _order(ctx: Context, step: ChainStep) -> Iterator[Outcome]:
    """``order`` (violation): the stage signed before the stages that precede it in the chain
    had signed. Resolved when the same stage signs again with all of them in place (a review
    redone in order); a late signature of the skipped stage alone resolves nothing."""
    assert ctx.issuer is not None
    chain = ctx.rules.chain(ctx.issuer.kind)
    before = [s.stage for s in chain[: chain.index(step)]]
    missing = [s for s in before if s not in ctx.facts.signed]
    if missing:
        yield ctx.finding(
            step.rule_id, "order", V,
            f"{step.stage} 在 {listed(missing)} 审核之前签署,审核顺序错误",
            f"{step.stage} signed before {listed(missing)}: the review chain is out of order",
        )
    else:
        earlier = [s.evidence for s in ctx.facts.signatures_of(step.stage)]
        yield from ctx.resolve(step.rule_id, "order", earlier)


def _grounds(ctx: Context, step: ChainStep) -> Iterator[Outcome]:
    """``grounds`` (warning): a 三审三校 signature that states its grounds but leaves some of
    political, legal, policy, confidentiality, wording and public-opinion out. A signature
    that states no grounds attests the review as a whole and is not judged. Resolved by a later
    signature of the same stage that states all grounds."""
    e = ctx.event
    assert isinstance(e, ReviewSigned)
    if step.stage not in ctx.rules.grounds_stages or not e.data.grounds:
        return
    missing = sorted(ctx.rules.review_grounds - set(e.data.grounds))
    if missing:
        yield ctx.finding(
            step.rule_id, "grounds", W,
            f"{step.stage} 的三审三校未涵盖:{listed(missing)}",
            f"the {step.stage} review (三审三校) does not cover: {listed(missing)}",
        )
    else:
        earlier = [s.evidence for s in ctx.facts.signatures_of(step.stage)]
        yield from ctx.resolve(step.rule_id, "grounds", earlier)


def rev_1(ctx: Context) -> Iterator[Outcome]:
    """REV-1 (四(二)1(1)): for a district-government document, the drafting unit's section
    head, deputy head in charge and principal head sign in that order (三审三校), on political,
    legal, policy, confidentiality, wording and public-opinion grounds. Topics ``order`` and
    ``grounds`` as in ``_order`` and ``_grounds``."""
    if (step := _step(ctx, "REV-1")) is not None:
        yield from _order(ctx, step)
        yield from _grounds(ctx, step)


def rev_2(ctx: Context) -> Iterator[Outcome]:
    """REV-2 (四(二)1(2)): then the news office reviews plan and materials. Topic ``order``
    (the news office signed before 三审三校 was complete)."""
    if (step := _step(ctx, "REV-2")) is not None:
        yield from _order(ctx, step)


def rev_3(ctx: Context) -> Iterator[Outcome]:
    """REV-3 (四(二)1(3)): then document, plan and materials go together to the government
    office for the leaders' sign-off; an incomplete submission is returned (退文).

    * ``order`` (violation): signed off before the news office (or 三审三校) had signed.
    * ``incomplete`` (violation): signed off while the plan or the materials were missing: the
      submission should have been returned.
    * ``returned`` (violation): signed off a returned submission before it was resubmitted.

    Each is resolved by a later sign-off made in good form (after the earlier stages, on a
    complete, resubmitted submission).
    """
    if (step := _step(ctx, "REV-3")) is None:
        return
    f = ctx.facts
    yield from _order(ctx, step)
    earlier = [s.evidence for s in f.signatures_of(step.stage)]
    if f.plan is None or not f.materials:
        yield ctx.finding(
            "REV-3", "incomplete", V,
            "送审材料不齐全(缺解读方案或解读材料)却报领导审签,应予退文",
            "signed off although the plan or the materials were missing; the submission should "
            "have been returned (退文)",
        )
    else:
        yield from ctx.resolve("REV-3", "incomplete", earlier)
    if f.pending_return is not None:
        yield ctx.finding(
            "REV-3", "returned", V,
            "已退文的送审件未经重新报送即被审签",
            "signed off a returned submission before the drafting unit resubmitted it",
            also=[f.pending_return],
        )
    else:
        yield from ctx.resolve("REV-3", "returned", earlier)


def rev_4(ctx: Context) -> Iterator[Outcome]:
    """REV-4 (四(二)2): for a department (or joint) document, 三审三校 in order, then the
    department's own interpretation work unit reviews plan and materials; then the department
    publishes itself. Topics ``order`` and ``grounds`` as in ``_order`` and ``_grounds``."""
    if (step := _step(ctx, "REV-4")) is not None:
        yield from _order(ctx, step)
        yield from _grounds(ctx, step)


def rev_5(ctx: Context) -> Iterator[Outcome]:
    """REV-5 (四(二)): nothing unreviewed may be published (未经审核的，一律不得对外发布).

    * ``unreviewed`` (violation): the policy is issued or a material published while stages of
      the review chain have not signed (or a 退文 has voided the sign-off).
    * ``material`` (violation): the chain is complete, but the material published was not on
      the case when it was last completed (never submitted, or changed since).

    Never resolved: a review after publication does not undo the publication.
    """
    e, f = ctx.event, ctx.facts
    if not isinstance(e, MaterialPublished | PolicyIssued) or ctx.issuer is None:
        return
    what_zh, what_en = (
        (f"解读材料 {e.data.material_id}", f"material {e.data.material_id}")
        if isinstance(e, MaterialPublished)
        else ("政策性文件", "the policy document")
    )
    missing = f.missing_stages(ctx.rules)
    if missing:
        yield ctx.finding(
            "REV-5", "unreviewed", V,
            f"审核未完成即对外发布{what_zh};尚缺:{listed(missing)}",
            f"{what_en} published before the review was complete; missing: {listed(missing)}",
            also=[
                f.signatures_of(step.stage)[-1].evidence
                for step in ctx.rules.chain(ctx.issuer.kind)
                if step.stage in f.signed
            ],
        )
    elif isinstance(e, MaterialPublished) and e.data.material_id not in f.reviewed_materials:
        yield ctx.finding(
            "REV-5", "material", V,
            f"{what_zh}未经审核(未随送审件报审或报审后有改动)即对外发布",
            f"{what_en} was published without review (not submitted, or changed after review)",
        )


RULES = (
    Rule("REV-1", rev_1),
    Rule("REV-2", rev_2),
    Rule("REV-3", rev_3),
    Rule("REV-4", rev_4),
    Rule("REV-5", rev_5),
)
