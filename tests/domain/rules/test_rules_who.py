"""WHO-1 (谁起草、谁解读): one accountable department; for joint documents, the lead."""

from __future__ import annotations

from rulecases import Case, evidence_ids, only, rule_ids

from events.catalogue import Issuer, IssuerKind, Scope, Severity


def test_who_1_kept_for_each_kind_of_issuer() -> None:
    issuers = [
        Issuer(kind=IssuerKind.DEPARTMENT, lead="drc"),
        Issuer(kind=IssuerKind.DISTRICT_GOVERNMENT, lead="drc"),
        Issuer(kind=IssuerKind.JOINT, lead="drc", co_issuers=("finance", "hrss")),
    ]
    for i, issuer in enumerate(issuers):
        c = Case(f"c{i}")
        assert c.add(c.draft(issuer=issuer)).findings == ()


def test_who_1_case_charged_to_a_department_that_is_not_the_lead() -> None:
    c = Case(department="finance")
    d = c.draft(issuer=Issuer(kind=IssuerKind.JOINT, lead="drc", co_issuers=("finance",)))
    f = only(c.add(d), "WHO-1")
    assert f.severity is Severity.VIOLATION
    assert f.finding_id == f"WHO-1_lead_{d.event_id}"
    assert evidence_ids(f) == [d.event_id]
    assert "finance" in f.message_en and "drc" in f.message_en


def test_who_1_lead_listed_among_its_co_issuers() -> None:
    c = Case()
    d = c.draft(issuer=Issuer(kind=IssuerKind.JOINT, lead="drc", co_issuers=("drc", "finance")))
    f = only(c.add(d), "WHO-1")
    assert f.finding_id == f"WHO-1_co-issuer_{d.event_id}"
    assert f.severity is Severity.VIOLATION


def test_who_1_joint_document_without_co_issuers() -> None:
    c = Case()
    f = only(c.add(c.draft(issuer=Issuer(kind=IssuerKind.JOINT, lead="drc"))), "WHO-1")
    assert f.severity is Severity.WARNING
    assert "joint document without co-issuers" in f.message_en


def test_who_1_co_issuers_on_a_document_that_is_not_joint() -> None:
    c = Case()
    issuer = Issuer(kind=IssuerKind.DEPARTMENT, lead="drc", co_issuers=("finance",))
    f = only(c.add(c.draft(issuer=issuer)), "WHO-1")
    assert f.finding_id.startswith("WHO-1_joint_")


def test_who_1_judges_out_of_scope_cases_too() -> None:
    c = Case(department="finance")
    d = c.draft(scope=Scope.OUT_OF_SCOPE, issuer=Issuer(kind=IssuerKind.DEPARTMENT, lead="drc"))
    assert rule_ids(c.add(d)) == ["WHO-1"]


def test_who_1_every_way_at_once_gives_one_finding_each() -> None:
    c = Case(department="finance")
    d = c.draft(issuer=Issuer(kind=IssuerKind.DEPARTMENT, lead="drc", co_issuers=("drc",)))
    j = c.add(d)
    assert rule_ids(j) == ["WHO-1"] * 3
    assert len({f.finding_id for f in j.findings}) == 3
