"""The codec is strict where the contract is (issue 12, items 2, 3 and 7), and reads an older
log leniently so that nothing once stored can stop a projection."""

from __future__ import annotations

from datetime import UTC, date
from typing import Any

import orjson
import pytest

import factories as f
from events.catalogue import ConsultationResultsPublished, DraftSubmitted, PolicyIssued
from events.codec import decode, loads
from events.envelope import EARLIEST_DAY, INT64_MAX, LATEST_DAY, MAX_COUNT
from events.outcomes import Reason, Rejection


def results(**data: Any) -> dict[str, Any]:
    base = {"url": "https://www.cqyz.gov.cn/yj/1", "comments_received": 3, "comments_adopted": 1}
    return f.envelope("ConsultationResultsPublished", "C-1", **{**base, **data})


def refused(body: bytes) -> Rejection:
    with pytest.raises(Rejection) as caught:
        decode(body)
    return caught.value


def with_int(field: str, literal: str) -> bytes:
    """A results event whose `field` is written as the JSON number `literal`, exactly."""
    return f.dumps(results(**{field: 7})).replace(f'"{field}":7'.encode(), f'"{field}":{literal}'.encode())


@pytest.mark.parametrize(
    ("literal", "reason"),
    [
        ("1" + "0" * 30, Reason.OUT_OF_RANGE),  # beyond 64 bits
        (str(2**63), Reason.OUT_OF_RANGE),
        (str(INT64_MAX), Reason.OUT_OF_RANGE),  # 64 bits, but no count of people is
        (str(MAX_COUNT + 1), Reason.OUT_OF_RANGE),
        ("-1", Reason.OUT_OF_RANGE),
        ("-" + "9" * 40, Reason.OUT_OF_RANGE),
        ("1e30", Reason.INVALID_FIELD),  # a float, not a JSON integer
        ("3.0", Reason.INVALID_FIELD),
        ('"3"', Reason.INVALID_FIELD),
        ("true", Reason.INVALID_FIELD),
        ("9" * 400, Reason.NOT_JSON),  # beyond a double: orjson reads it as no JSON number
        ("9" * 5000, Reason.NOT_JSON),
    ],
)
def test_counts_are_json_integers_within_their_bounds(literal: str, reason: Reason) -> None:
    assert refused(with_int("comments_received", literal)).reason == reason


def test_a_count_at_its_bounds_is_accepted() -> None:
    for literal in ("0", str(MAX_COUNT)):
        event = decode(with_int("comments_adopted", literal))
        assert isinstance(event, ConsultationResultsPublished)
        assert event.data.comments_adopted == int(literal)


@pytest.mark.parametrize(
    ("version", "reason"),
    [(0, Reason.OUT_OF_RANGE), (-1, Reason.OUT_OF_RANGE), ("2", Reason.INVALID_FIELD),
     (2.0, Reason.INVALID_FIELD), (None, Reason.INVALID_FIELD), (True, Reason.INVALID_FIELD)],
    ids=["0", "-1", "string", "float", "null", "true"],
)
def test_schema_version_is_an_integer_of_at_least_one(version: object, reason: Reason) -> None:
    assert refused(f.dumps({**f.draft("C-1"), "schema_version": version})).reason == reason


def test_a_schema_version_beyond_64_bits_is_unsupported_not_accepted() -> None:
    body = f.dumps(f.draft("C-1")).replace(b'"schema_version":2', b'"schema_version":' + b"9" * 30)
    assert refused(body).reason == Reason.UNSUPPORTED_VERSION


@pytest.mark.parametrize(
    "at", ["0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-08:00", "1999-12-31T23:59:59+08:00",
           "2100-01-01T00:00:00+08:00"],
)
def test_times_beyond_the_domain_are_out_of_range(at: str) -> None:
    assert refused(f.dumps({**f.draft("C-1"), "occurred_at": at})).reason == Reason.OUT_OF_RANGE


def test_the_domain_bounds_themselves_are_accepted() -> None:
    for at in (f"{EARLIEST_DAY}T00:00:00+08:00", f"{LATEST_DAY}T23:59:59-08:00"):
        assert isinstance(decode(f.dumps({**f.draft("C-1"), "occurred_at": at})), DraftSubmitted)


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31", "1970-01-01"])
def test_dates_beyond_the_domain_are_out_of_range(day: str) -> None:
    issued = f.issued("C-1")
    body = f.dumps({**issued, "data": {**issued["data"], "issue_date": day}})
    assert refused(body).reason == Reason.OUT_OF_RANGE


@pytest.mark.parametrize("at", [1751765400, 1751765400000, -62135596800, 0, 1.5e9])
def test_times_are_rfc3339_strings_never_numbers(at: object) -> None:
    assert refused(f.dumps({**f.draft("C-1"), "occurred_at": at})).reason == Reason.INVALID_FIELD


def test_dates_are_strings_never_numbers() -> None:
    issued = f.issued("C-1")
    body = f.dumps({**issued, "data": {**issued["data"], "issue_date": 20260706}})
    assert refused(body).reason == Reason.INVALID_FIELD


@pytest.mark.parametrize(
    "body",
    [
        b'{"case_id":"C-2",' + f.dumps(f.draft("C-1"))[1:],  # top level
        f.dumps(f.draft("C-1")).replace(b'"actor":{"id":"u-001"', b'"actor":{"id":"u-001","id":"u-002"'),
        f.dumps(f.draft("C-1")).replace(b'"type":"DraftSubmitted"', b'"type":"X","type":"DraftSubmitted"'),
    ],
    ids=["top level", "nested", "type"],
)
def test_duplicate_keys_are_refused_with_their_own_reason(body: bytes) -> None:
    rejection = refused(body)
    assert rejection.reason == Reason.DUPLICATE_KEY, rejection


def test_text_with_a_nul_character_is_refused_before_postgresql_sees_it() -> None:
    body = f.dumps({**f.draft("C-1"), "actor": {"id": "u-001", "name": "张\u0000三"}})
    assert b"\\u0000" in body
    assert refused(body).reason == Reason.UNSTORABLE_TEXT
    harmless = f.dumps({**f.draft("C-1"), "actor": {"id": "u-001", "name": "a\\u0000"}})
    assert decode(harmless).actor.name == "a\\u0000"  # an escaped backslash, no NUL


def test_deep_nesting_and_garbage_are_refused_not_raised() -> None:
    for body in (b"[" * 100_000, b'{"a":' * 5000 + b"1" + b"}" * 5000, b"\x00\xff\xfe", b""):
        assert refused(body).reason == Reason.NOT_JSON
    nested = f.dumps({**f.draft("C-1"), "correlation_id": {"a": [[[[[[[{}]]]]]]]}})
    assert refused(nested).reason == Reason.INVALID_FIELD


def test_an_older_log_with_extreme_values_is_read_at_the_domain_bounds() -> None:
    """Issue 12, item 3: an intake before these checks accepted such values; reading them back
    must not fail, so projections, rebuild and replay go on. The bytes stay as stored."""
    early = {**f.draft("OLD-1"), "occurred_at": "0001-01-01T00:00:00+08:00"}
    issued = f.issued("OLD-1")
    late = {**issued, "occurred_at": "9999-12-31T23:59:59-08:00",
            "data": {**issued["data"], "issue_date": "9999-12-31"}}
    first = loads(orjson.dumps(early))
    assert first.occurred_at.date() == EARLIEST_DAY
    assert first.occurred_at.astimezone(UTC).year == EARLIEST_DAY.year - 1  # converts, no overflow
    second = loads(orjson.dumps(late))
    assert isinstance(second, PolicyIssued)
    assert second.occurred_at.date() == LATEST_DAY and second.data.issue_date == LATEST_DAY
    assert second.occurred_at.astimezone(UTC).date() == date(LATEST_DAY.year + 1, 1, 1)


def test_an_older_log_with_lax_numbers_is_read_as_before() -> None:
    """What the lax intake once accepted (a numeric time, a string version, a huge count)."""
    old = {**f.draft("OLD-2"), "schema_version": "2", "occurred_at": 1751765400}
    event = loads(orjson.dumps(old))
    assert event.schema_version == 2 and event.occurred_at.year == 2025
    counted = loads(with_int("comments_received", str(10**15)))
    assert isinstance(counted, ConsultationResultsPublished)
    assert counted.data.comments_received == 10**15
