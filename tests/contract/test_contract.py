"""The contract as data: generated documents are current, and the wire format round-trips."""

from __future__ import annotations

import orjson
import pytest

import factories as f
from events import contract
from events.catalogue import EVENT_TYPES, SYSTEM_TYPES, DraftSubmitted, IssuerKind
from events.codec import decode, encode, loads
from events.outcomes import Reason, Rejection


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
