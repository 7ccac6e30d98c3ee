"""PUB-1 (the district website first; materials linked to their policy) and PUB-4 (media's own
interpretations and corrections)."""

from __future__ import annotations

from rulecases import Case, evidence_ids, material, only, rule_ids

from events.catalogue import Channel, Form, Severity


def published_case() -> Case:
    c = Case()
    c.reviewed(c.draft(materials=(material("m1"), material("m2", Form.CHART))))
    c.add(c.issued())
    return c


# ── PUB-1 ────────────────────────────────────────────────────────────────────────────────────


def test_pub_1_kept_website_first_linked_then_other_platforms() -> None:
    c = published_case()
    assert c.add(c.published("m1")).findings == ()
    for channel in (Channel.WECHAT, Channel.WEIBO, Channel.NEWS_MEDIA, Channel.NOTICE_BOARD):
        assert c.add(c.published("m1", channel=channel)).findings == ()
    assert c.log.findings() == []


def test_pub_1_material_on_another_platform_before_the_website() -> None:
    c = published_case()
    p = c.published("m1", channel=Channel.WECHAT)
    f = only(c.add(p), "PUB-1")
    assert f.severity is Severity.WARNING
    assert f.finding_id == f"PUB-1_website-first_{p.event_id}"
    assert evidence_ids(f) == [p.event_id]
    assert c.add(c.published("m2")).resolutions == ()  # another material on the website
    site = c.published("m1")
    r = c.add(site)
    assert [(x.finding_id, x.resolved_by.event_id) for x in r.resolutions] == [
        (f.finding_id, site.event_id)
    ]


def test_pub_1_material_on_the_website_not_linked_to_its_policy() -> None:
    c = published_case()
    p = c.published("m1", linked=False)
    f = only(c.add(p), "PUB-1")
    assert f.severity is Severity.VIOLATION
    assert f.finding_id == f"PUB-1_unlinked_{p.event_id}"
    assert c.add(c.published("m2")).resolutions == ()
    r = c.add(c.published("m1"))
    assert [x.finding_id for x in r.resolutions] == [f.finding_id]


def test_pub_1_website_publication_without_its_url() -> None:
    c = published_case()
    p = c.published("m1", url=None)
    f = only(c.add(p), "PUB-1")
    assert f.severity is Severity.WARNING
    assert f.finding_id == f"PUB-1_no-url_{p.event_id}"
    r = c.add(c.published("m1"))
    assert [x.finding_id for x in r.resolutions] == [f.finding_id]


def test_pub_1_linking_and_url_are_asked_of_the_website_only() -> None:
    c = published_case()
    c.add(c.published("m1"))
    assert c.add(c.published("m1", channel=Channel.NEWS_MEDIA, linked=False, url=None)).findings == ()


def test_pub_1_unlinked_and_without_url_gives_two_findings() -> None:
    c = published_case()
    j = c.add(c.published("m1", linked=False, url=None))
    assert rule_ids(j) == ["PUB-1", "PUB-1"]
    assert {f.severity for f in j.findings} == {Severity.WARNING, Severity.VIOLATION}


# ── PUB-4 ────────────────────────────────────────────────────────────────────────────────────


def test_pub_4_kept_media_interpretation_that_consulted_the_drafting_unit() -> None:
    c = published_case()
    assert c.add(c.media(consulted=True, misreading=False)).findings == ()


def test_pub_4_outlet_did_not_consult_the_drafting_unit() -> None:
    c = published_case()
    m = c.media("r1", consulted=False)
    f = only(c.add(m), "PUB-4")
    assert f.severity is Severity.WARNING
    assert f.finding_id == f"PUB-4_not-consulted_{m.event_id}"
    assert "渝中报" in f.message_zh and "r1" in f.message_en
    assert c.add(c.corrected("r1")).resolutions == ()  # the consultation never happened


def test_pub_4_misreading_resolved_by_its_correction() -> None:
    c = published_case()
    m = c.media("r1", consulted=True, misreading=True)
    f = only(c.add(m), "PUB-4")
    assert f.severity is Severity.VIOLATION
    assert f.finding_id == f"PUB-4_misreading_{m.event_id}"
    c.add(c.media("r2"))
    assert c.add(c.corrected("r2")).resolutions == ()  # another report
    fix = c.corrected("r1")
    r = c.add(fix)
    assert [(x.finding_id, x.resolved_by.event_id) for x in r.resolutions] == [
        (f.finding_id, fix.event_id)
    ]
    assert c.open == {}


def test_pub_4_unconsulted_misreading_gives_both_findings() -> None:
    c = published_case()
    j = c.add(c.media("r1", consulted=False, misreading=True))
    assert sorted(f.finding_id.split("_")[1] for f in j.findings) == [
        "misreading", "not-consulted"
    ]
    r = c.add(c.corrected("r1"))
    assert [x.finding_id.split("_")[1] for x in r.resolutions] == ["misreading"]
