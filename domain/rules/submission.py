"""What goes up for review: SYNC-1 (三同步), PLAN-1 (解读方案) and MAT-1 (解读材料).

A plan or material is judged each time it is submitted (DraftSubmitted, DraftResubmitted). A
finding about a submitted plan or material is resolved when a resubmission replaces it; the
replacement is judged afresh and gets its own finding if it falls short too.
"""

from __future__ import annotations

from collections.abc import Iterator

from domain.rules.base import Context, Outcome, Rule, listed
from events.catalogue import (
    DraftResubmitted,
    DraftSubmitted,
    InterpretationPlan,
    Material,
    ReviewSigned,
    Severity,
)

W, V = Severity.WARNING, Severity.VIOLATION


def sync_1(ctx: Context) -> Iterator[Outcome]:
    """SYNC-1 (二(三), 四(二)): document, plan and materials are submitted, reviewed and
    deployed together (同步组织、同步审签、同步部署).

    * ``incomplete`` (violation): a submission without a plan or without materials. Resolved by
      the DraftResubmitted that makes plan and materials complete (one that still leaves
      something out resolves nothing and adds nothing: the first finding stands).
    * ``coverage`` (violation): a signature of the review chain that does not cover the plan
      or the materials. Resolved by a later signature of the same stage that covers both.
    """
    e, f = ctx.event, ctx.facts
    if isinstance(e, DraftSubmitted):
        missing = _missing_parts(e.data.plan, e.data.materials)
        if missing:
            yield ctx.finding(
                "SYNC-1", "incomplete", V,
                f"政策性文件送审时未一并报送{'和'.join(z for z, _ in missing)}",
                f"the document was submitted without its {' and '.join(en for _, en in missing)}",
            )
    elif isinstance(e, DraftResubmitted):
        plan = e.data.plan or f.plan
        if plan is not None and (e.data.materials or f.materials):
            yield from ctx.resolve("SYNC-1", "incomplete", [s.evidence for s in f.submissions])
    elif isinstance(e, ReviewSigned) and ctx.issuer is not None:
        stage = e.data.stage
        if stage not in {s.stage for s in ctx.rules.chain(ctx.issuer.kind)}:
            return
        uncovered = [
            (zh, en)
            for covered, zh, en in (
                (e.data.covers_plan, "解读方案", "plan"),
                (e.data.covers_materials, "解读材料", "materials"),
            )
            if not covered
        ]
        if uncovered:
            yield ctx.finding(
                "SYNC-1", "coverage", V,
                f"{stage} 审签未涵盖{'和'.join(z for z, _ in uncovered)}",
                f"the {stage} signature does not cover the {' and '.join(x for _, x in uncovered)}",
            )
        else:
            yield from ctx.resolve(
                "SYNC-1", "coverage", [s.evidence for s in f.signatures_of(stage)]
            )


def _missing_parts(
    plan: InterpretationPlan | None, materials: tuple[Material, ...]
) -> list[tuple[str, str]]:
    missing = []
    if plan is None:
        missing.append(("解读方案", "interpretation plan"))
    if not materials:
        missing.append(("解读材料", "interpretation materials"))
    return missing


def plan_1(ctx: Context) -> Iterator[Outcome]:
    """PLAN-1 (四(一)2, 附件): the plan follows the template; its starred options are required
    in principle (原则上为必选项): text material, graphic/animation/audio-video material, press
    release; the government website and news media as channels.

    * ``options`` (warning, "in principle"): a submitted plan lacks starred options. Resolved
      when a resubmitted plan replaces it.

    The plan's release time, if it has one, must fall within 20 working days of issue: a clock
    of the deadline service, not judged here.
    """
    e = ctx.event
    if not isinstance(e, DraftSubmitted | DraftResubmitted) or e.data.plan is None:
        return
    yield from ctx.resolve("PLAN-1", "options", ctx.facts.plan_submissions)
    plan = e.data.plan
    forms = set(plan.forms)
    channels = {c.channel for c in plan.channels}
    missing = [
        "/".join(sorted(group)) for group in ctx.rules.plan_forms if not forms & group
    ] + [str(c) for c in ctx.rules.plan_channels if c not in channels]
    if missing:
        yield ctx.finding(
            "PLAN-1", "options", W,
            f"解读方案缺少模板的必选项(加*):{listed(missing)}",
            f"the interpretation plan lacks the template's starred options: {listed(missing)}",
        )


def mat_1(ctx: Context) -> Iterator[Outcome]:
    """MAT-1 (四(一)3): each material covers background/basis/purpose; content, measures,
    audience, standards, time limits, cautions; key terms; old-vs-new comparison; and for
    benefits (政策兑现) the office's name, address, contact and hours.

    One finding per submitted material and kind of gap:

    * ``sections-<i>`` (warning): sections missing from the i-th material of the submission
      (these are what materials "mainly include").
    * ``benefit-<i>`` (violation): a material on benefits that does not state the office's
      name, address, contact and hours (要注明).

    Resolved when a resubmission carries the same material ID again (judged afresh).
    """
    e = ctx.event
    if not isinstance(e, DraftSubmitted | DraftResubmitted):
        return
    for i, m in enumerate(e.data.materials):
        for evidence, j in ctx.facts.versions_of(m.material_id):
            yield from ctx.resolve("MAT-1", f"sections-{j}", [evidence])
            yield from ctx.resolve("MAT-1", f"benefit-{j}", [evidence])
        sections = [s for s in ctx.rules.material_sections if _blank(getattr(m, s))]
        if sections:
            yield ctx.finding(
                "MAT-1", f"sections-{i}", W,
                f"解读材料 {m.material_id} 缺少:{listed(sections)}",
                f"interpretation material {m.material_id} lacks: {listed(sections)}",
            )
        if m.involves_benefits:
            office = m.benefit_office
            fields = [
                name
                for name in ctx.rules.benefit_office_fields
                if office is None or _blank(getattr(office, name))
            ]
            if fields:
                yield ctx.finding(
                    "MAT-1", f"benefit-{i}", V,
                    f"涉及政策兑现的解读材料 {m.material_id} 未注明兑现机构的:{listed(fields)}",
                    f"material {m.material_id} on benefits does not state the office's: "
                    f"{listed(fields)}",
                )


def _blank(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, tuple):
        return not value
    return False


RULES = (
    Rule("SYNC-1", sync_1),
    Rule("PLAN-1", plan_1),
    Rule("MAT-1", mat_1),
)
