"""What must be interpreted, and by whom: SCOPE-1..3 (解读范围) and WHO-1 (谁起草、谁解读).

These rules hold for every policy case, in scope or not: they judge whether the declared scope
and accountability are right, which is what decides all the other duties.
"""

from __future__ import annotations

from collections.abc import Iterator

from domain.rules.base import Context, Outcome, Rule
from events.catalogue import (
    CaseKind,
    ConsultationDraftPublished,
    ConsultationResultsPublished,
    DraftResubmitted,
    DraftSubmitted,
    IssuerKind,
    PolicyIssued,
    Scope,
    Severity,
)

W, V = Severity.WARNING, Severity.VIOLATION


def scope_1(ctx: Context) -> Iterator[Outcome]:
    """SCOPE-1 (三(一)): the declared scope must be consistent.

    * ``category`` (warning): the plan's 文件类别 differs from the case's scope. Resolved when a
      resubmitted plan replaces it (the new plan is judged afresh).
    * ``major-decision`` (warning): a major administrative decision (重大行政决策) declared out of
      scope; such decisions are wide-reaching by nature (三(一)2). Not resolvable: no event
      changes a case's scope.
    """
    e = ctx.event
    if isinstance(e, DraftSubmitted | DraftResubmitted) and e.data.plan is not None:
        yield from ctx.resolve("SCOPE-1", "category", ctx.facts.plan_submissions)
        category, scope = e.data.plan.category, ctx.scope
        if scope is not None and category is not scope:
            yield ctx.finding(
                "SCOPE-1", "category", W,
                f"解读方案的文件类别({category})与案件的解读范围({scope})不一致",
                f"the plan's category ({category}) differs from the case's scope ({scope})",
            )
    if (
        isinstance(e, DraftSubmitted)
        and e.data.kind is CaseKind.MAJOR_DECISION
        and e.data.scope is Scope.OUT_OF_SCOPE
    ):
        yield ctx.finding(
            "SCOPE-1", "major-decision", W,
            "重大行政决策被标为无需解读;此类决策涉及面广、社会关注度高,应当解读",
            "a major administrative decision is marked out of scope; such decisions are "
            "wide-reaching and must be interpreted",
        )


def scope_2(ctx: Context) -> Iterator[Outcome]:
    """SCOPE-2 (三(二)): consultation drafts of normative documents and major decisions are
    interpreted, and the consultation results follow the draft.

    Applies when the case's scope is ``normative`` or its kind ``major_decision``.

    * ``no-interpretation`` (violation): a consultation draft published without its
      interpretation. Resolved by a later consultation draft published with one.
    * ``no-draft`` (warning): consultation results published with no draft before them. Not
      resolvable (the order is what is wrong).
    * ``no-results`` (warning): the policy is issued after a consultation draft whose results
      were never published. Resolved by a later ConsultationResultsPublished.
    """
    f = ctx.facts
    if not (ctx.scope is Scope.NORMATIVE or f.kind is CaseKind.MAJOR_DECISION):
        return
    e = ctx.event
    if isinstance(e, ConsultationDraftPublished):
        if e.data.interpretation_url is None:
            yield ctx.finding(
                "SCOPE-2", "no-interpretation", V,
                "征求意见稿发布时未同时发布解读材料",
                "consultation draft published without its interpretation",
            )
        else:
            drafts = (d for d, _ in f.consultation_drafts)
            yield from ctx.resolve("SCOPE-2", "no-interpretation", drafts)
    elif isinstance(e, ConsultationResultsPublished):
        if not f.consultation_drafts:
            yield ctx.finding(
                "SCOPE-2", "no-draft", W,
                "公布了征求意见结果,但此前未公开征求意见稿",
                "consultation results published, but no consultation draft was published before",
            )
        if f.issued is not None:
            yield from ctx.resolve("SCOPE-2", "no-results", [f.issued])
    elif (
        isinstance(e, PolicyIssued)
        and f.issued is None
        and f.consultation_drafts
        and not f.consultation_results
    ):
        yield ctx.finding(
            "SCOPE-2", "no-results", W,
            "政策已印发,但征求意见结果尚未在区政府网站公开",
            "policy issued while the results of its consultation are unpublished",
            also=[f.consultation_drafts[-1][0]],
        )


def scope_3(ctx: Context) -> Iterator[Outcome]:
    """SCOPE-3 (三(三)): implementing a superior document without a document of one's own: the
    implementation measures and standards are interpreted.

    * ``out-of-scope`` (violation): an implementation case declared out of scope.
    * ``superior`` (warning): an implementation case that does not name the superior document.

    Neither is resolvable: no later event changes what the case was opened as.
    """
    e = ctx.event
    if not (isinstance(e, DraftSubmitted) and e.data.kind is CaseKind.IMPLEMENTATION):
        return
    if e.data.scope is Scope.OUT_OF_SCOPE:
        yield ctx.finding(
            "SCOPE-3", "out-of-scope", V,
            "贯彻执行上级文件的措施被标为无需解读;应对贯彻措施、执行标准等进行解读",
            "implementation of a superior document is marked out of scope; its measures and "
            "standards must be interpreted",
        )
    if not (e.data.superior_document or "").strip():
        yield ctx.finding(
            "SCOPE-3", "superior", W,
            "贯彻执行类案件未注明所贯彻的上级文件",
            "implementation case does not name the superior document it implements",
        )


def who_1(ctx: Context) -> Iterator[Outcome]:
    """WHO-1 (二(一)): who drafts, interprets; for joint documents the lead department.

    Judged on the opening submission, for every case:

    * ``lead`` (violation): the case is charged to a department other than the issuer's lead.
    * ``co-issuer`` (violation): the lead is also listed among the co-issuers.
    * ``joint`` (warning): a joint document without co-issuers, or co-issuers on a document
      that is not joint.

    Not resolvable: no later event changes the issuer.
    """
    e = ctx.event
    if not isinstance(e, DraftSubmitted):
        return
    issuer = e.data.issuer
    if issuer.lead != e.department:
        yield ctx.finding(
            "WHO-1", "lead", V,
            f"案件责任单位为 {e.department},但发文牵头单位为 {issuer.lead};"
            "应由牵头(起草)单位负责解读",
            f"the case is charged to {e.department} but the issuer's lead is {issuer.lead}; the "
            "lead (drafting) department is accountable",
        )
    if issuer.lead in issuer.co_issuers:
        yield ctx.finding(
            "WHO-1", "co-issuer", V,
            f"牵头单位 {issuer.lead} 同时被列为配合单位",
            f"the lead department {issuer.lead} is also listed as a co-issuer",
        )
    joint = issuer.kind is IssuerKind.JOINT
    if joint != bool(issuer.co_issuers):
        yield ctx.finding(
            "WHO-1", "joint", W,
            "联合发文未列配合单位" if joint else "非联合发文却列有配合单位",
            "joint document without co-issuers" if joint else "co-issuers on a non-joint document",
        )


RULES = (
    Rule("SCOPE-1", scope_1, in_scope_only=False),
    Rule("SCOPE-2", scope_2, in_scope_only=False),
    Rule("SCOPE-3", scope_3, in_scope_only=False),
    Rule("WHO-1", who_1, in_scope_only=False),
)
