"""Publication (信息发布): PUB-1 (the district website first) and PUB-4 (media interpretations).

PUB-2 (20 working days) and PUB-3 (at least 2 forms, judged at PUB-2's deadline) are clocks of
the deadline service; it reads ``CaseFacts.website_text``, ``issue_date`` and
``forms_published``.
"""

from __future__ import annotations

from collections.abc import Iterator

from domain.rules.base import Context, Outcome, Rule
from events.catalogue import (
    Channel,
    MaterialPublished,
    MediaInterpretationCorrected,
    MediaInterpretationReported,
    Severity,
)

W, V = Severity.WARNING, Severity.VIOLATION
WEBSITE = Channel.GOVERNMENT_WEBSITE


def pub_1(ctx: Context) -> Iterator[Outcome]:
    """PUB-1 (四(三)2(1)): the district website is the first platform (第一平台); materials
    are linked to their policy there; other platforms agree with it.

    * ``website-first`` (warning): a material published on another channel while it is not on
      the district website. Resolved when that material is published on the website.
    * ``unlinked`` (violation): a material on the website not linked to its policy document.
      Resolved by a later website publication of the material that is linked.
    * ``no-url`` (warning): a website publication without its address, so the link cannot be
      checked. Resolved by a later website publication of the material with one.

    Whether other platforms' content agrees with the website's is not in the events.
    """
    e, f = ctx.event, ctx.facts
    if not isinstance(e, MaterialPublished):
        return
    d = e.data
    earlier = [p for p in f.publications if p.material_id == d.material_id]
    if d.channel is not WEBSITE:
        if d.material_id not in f.on_website:
            yield ctx.finding(
                "PUB-1", "website-first", W,
                f"解读材料 {d.material_id} 在区政府网站发布前先在 {d.channel} 发布",
                f"material {d.material_id} published on {d.channel} before the district website",
            )
        return
    on_site = [p.evidence for p in earlier if p.channel is WEBSITE]
    yield from ctx.resolve(
        "PUB-1", "website-first", [p.evidence for p in earlier if p.channel is not WEBSITE]
    )
    if not d.linked_to_policy:
        yield ctx.finding(
            "PUB-1", "unlinked", V,
            f"区政府网站上的解读材料 {d.material_id} 未与对应的政策性文件相互关联",
            f"material {d.material_id} on the district website is not linked to its policy",
        )
    else:
        yield from ctx.resolve("PUB-1", "unlinked", on_site)
    if d.url is None:
        yield ctx.finding(
            "PUB-1", "no-url", W,
            f"区政府网站发布的解读材料 {d.material_id} 未记录网址",
            f"material {d.material_id} published on the district website without its URL",
        )
    else:
        yield from ctx.resolve("PUB-1", "no-url", on_site)


def pub_4(ctx: Context) -> Iterator[Outcome]:
    """PUB-4 (四(三)2(3)): media's own interpretations (媒体自主编发) consult the drafting
    unit; misreadings (误解误读) get corrected.

    * ``not-consulted`` (warning): the outlet did not consult the drafting unit. Not
      resolvable: the consultation did not happen.
    * ``misreading`` (violation): the report misreads the policy. Resolved by
      MediaInterpretationCorrected for that report.
    """
    e, f = ctx.event, ctx.facts
    if isinstance(e, MediaInterpretationReported):
        d = e.data
        if not d.drafting_unit_consulted:
            yield ctx.finding(
                "PUB-4", "not-consulted", W,
                f"{d.outlet} 自主编发的解读稿件({d.report_id})未征求起草单位意见",
                f"{d.outlet}'s own interpretation ({d.report_id}) did not consult the drafting "
                "unit",
            )
        if d.misreading:
            yield ctx.finding(
                "PUB-4", "misreading", V,
                f"{d.outlet} 的解读稿件({d.report_id})存在误解误读,应协调媒体予以纠正",
                f"{d.outlet}'s report ({d.report_id}) misreads the policy; the drafting unit "
                "must have it corrected",
            )
    elif isinstance(e, MediaInterpretationCorrected):
        report = f.media_reports.get(e.data.report_id)
        if report is not None:
            yield from ctx.resolve("PUB-4", "misreading", [report.reported])


RULES = (
    Rule("PUB-1", pub_1),
    Rule("PUB-4", pub_4),
)
