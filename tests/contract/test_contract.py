"""The contract as data: generated documents are current, and the wire format round-trips."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

import factories as f
from events import contract
from events.catalogue import EVENT_TYPES, SYSTEM_TYPES, DraftSubmitted, IssuerKind
from events.codec import decode, encode, loads
from events.outcomes import Reason, Rejection
from events.roles import ACTS_FOR_ANY_DEPARTMENT, MONITOR, ONLY_GOV_OFFICE
from events.streams import Header
from services.adapters.config import Settings


def test_json_schemas_and_asyncapi_in_the_repo_are_current() -> None:
    assert contract.stale() == [], "run `python -m events.contract` and commit events/schema/"


def test_asyncapi_documents_every_channel_as_version_3() -> None:
    document = orjson.loads((contract.SCHEMA_DIR / "asyncapi.json").read_bytes())
    assert document["asyncapi"] == "3.0.0"
    assert set(document["channels"]) == {"intake", "events", "rejected", "outcomes"}


def test_every_event_type_has_a_schema_with_its_type_as_a_constant() -> None:
    for t in EVENT_TYPES:
        schema = orjson.loads((contract.SCHEMA_DIR / f"{t.__name__}.schema.json").read_bytes())
        assert schema["properties"]["type"]["const"] == t.__name__


def test_the_catalogue_reserves_findings_and_deadlines_for_the_system() -> None:
    assert {"FindingRecorded", "FindingResolved", "DeadlineBreached"} <= SYSTEM_TYPES
    assert "PolicyIssued" not in SYSTEM_TYPES


def test_an_event_survives_the_wire_unchanged() -> None:
    event = decode(f.dumps(f.draft("RT-1")))
    assert loads(encode(event)) == event


def test_a_version_1_draft_is_upcast_to_name_its_lead_department() -> None:
    """v1 said only `"issuer": "department"` plus co-issuers; WHO-1 needs the lead by name."""
    v1 = f.draft("UP-1", department="housing")
    v1["schema_version"] = 1
    v1["data"] = {**v1["data"], "issuer": "department", "co_issuers": ["finance"]}
    event = decode(orjson.dumps(v1))
    assert isinstance(event, DraftSubmitted) and event.schema_version == 2
    assert event.data.issuer.kind is IssuerKind.JOINT
    assert (event.data.issuer.lead, event.data.issuer.co_issuers) == ("housing", ("finance",))


def test_a_version_1_draft_without_co_issuers_stays_a_department_document() -> None:
    v1 = f.draft("UP-2")
    v1["schema_version"] = 1
    v1["data"] = {**v1["data"], "issuer": "district_government"}
    event = decode(orjson.dumps(v1))
    assert isinstance(event, DraftSubmitted)
    assert event.data.issuer.kind is IssuerKind.DISTRICT_GOVERNMENT


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", Reason.NOT_JSON),
        (b'"a string"', Reason.NOT_OBJECT),
        (b'{"type": 7}', Reason.UNKNOWN_TYPE),
        (
            orjson.dumps({**f.issued("X"), "occurred_at": "2026-07-06 09:30"}),
            Reason.NAIVE_TIMESTAMP,
        ),
        (orjson.dumps({**f.issued("X"), "case_id": "a.b"}), Reason.INVALID_FIELD),
        (orjson.dumps({**f.issued("X"), "department": "drc.>"}), Reason.INVALID_FIELD),
        (
            orjson.dumps({k: v for k, v in f.issued("X").items() if k != "data"}),
            Reason.MISSING_FIELD,
        ),
    ],
)
def test_decode_names_the_first_thing_wrong(body: bytes, reason: Reason) -> None:
    with pytest.raises(Rejection) as caught:
        decode(body)
    assert caught.value.reason is reason


# ── what an integrator had to find by trial (issue 13) ──────────────────────────────────────


def _schema(name: str) -> dict[str, Any]:
    body: dict[str, Any] = orjson.loads((contract.SCHEMA_DIR / f"{name}.schema.json").read_bytes())
    return body


def test_each_schema_names_its_current_schema_version_as_a_constant() -> None:
    for t in EVENT_TYPES:
        assert _schema(t.__name__)["properties"]["schema_version"]["const"] == t.SCHEMA_VERSION
    assert _schema("DraftSubmitted")["properties"]["schema_version"]["const"] == 2


def test_the_schemas_name_the_monitor_and_who_may_record_for_another_department() -> None:
    """OP-5, REV-2, REV-3, SUP-1, QA-3: the district roles, as `domain.authorisation` decides."""
    opinion = _schema("OpinionDetected")
    assert opinion["properties"]["source_system"]["const"] == MONITOR[1] == "monitor"
    assert "jiedu.intake.cyberspace_office.monitor.<case_id>" in opinion["description"]
    consultation = _schema("ConsultationReceived")["description"]
    assert "gov_services_office" in consultation and "12345 hotline" in consultation
    review = _schema("ReviewSigned")["description"]
    assert "news_office only by news_office" in review
    assert "leaders_sign_off only by gov_office" in review
    assert "Sent only by the government office" in _schema("InspectionConducted")["description"]
    assert "reserved_type" in _schema("FindingRecorded")["description"]
    for office, types in ACTS_FOR_ANY_DEPARTMENT.items():
        for name in types - {"OpinionDetected"} - ONLY_GOV_OFFICE:
            assert office in _schema(name)["description"], (office, name)
    for name in ("ConsultationReceived", "OpinionDetected"):  # which case they belong to
        assert "belongs to the" in _schema(name)["description"] and "policy" in _schema(name)["description"]


def test_asyncapi_gives_the_events_and_rejected_headers_and_the_port() -> None:
    document = orjson.loads((contract.SCHEMA_DIR / "asyncapi.json").read_bytes())
    messages = document["components"]["messages"]
    events_headers = messages["events:Message"]["headers"]["properties"]
    assert {Header.EVENT_ID, Header.INTAKE_SEQUENCE, Header.INTAKE_SUBJECT} <= events_headers.keys()
    rejected = messages["rejected:Message"]["headers"]["properties"]
    assert rejected[Header.REASON]["enum"] == [r.value for r in Reason]
    assert {Header.DETAIL, Header.INTAKE_SUBJECT, Header.INTAKE_SEQUENCE} <= rejected.keys()
    server = document["servers"]["development"]
    assert server["host"] == "127.0.0.1:{port}"
    assert server["variables"]["port"]["default"] == str(Settings().nats_port) == "4333"
    assert "JIEDU_NATS_PORT" in server["description"] and "NATS_URL" in server["description"]
    assert document["components"]["schemas"]["DraftSubmitted"]["properties"]["schema_version"][
        "const"] == 2
