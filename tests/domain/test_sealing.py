"""Sealing personal fields (issue 17, QA-4's 咨询人): what opens, what is bound, what erases."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from domain.privacy import (
    ERASED,
    MASKED,
    Cipher_,
    Consulted,
    KeyState,
    RetentionRule,
    due_for_erasure,
    masked,
    open_sealed,
    seal,
    subject_of,
)
from events.catalogue import Asker, ReplyVia

ASKER = Asker(name="张三", phone="138-0000-1234", email="ZS@example.cn", reply_via=ReplyVia.PHONE)
SECRET = b"s" * 32


@pytest.mark.parametrize("cipher", list(Cipher_))
def test_sealed_fields_open_with_the_key_and_hide_the_text(cipher: Cipher_) -> None:
    key = os.urandom(cipher.key_size)
    sealed = seal(ASKER, "ds-" + "a" * 32, 1, key, cipher)
    assert set(sealed.sealed) == {"name", "phone", "email"}
    blob = sealed.model_dump_json()
    for text in ("张三", "\\u5f20", "138-0000-1234", "13800001234", "ZS@example.cn"):
        assert text not in blob
    assert open_sealed(sealed, key) == ASKER
    assert sealed.algorithm == cipher.value and sealed.reply_via == ReplyVia.PHONE


@pytest.mark.parametrize("cipher", list(Cipher_))
def test_the_same_text_seals_to_the_same_bytes_so_a_resent_event_is_a_duplicate(
    cipher: Cipher_,
) -> None:
    key = os.urandom(cipher.key_size)
    one = seal(ASKER, "ds-" + "a" * 32, 1, key, cipher)
    assert seal(ASKER, "ds-" + "a" * 32, 1, key, cipher) == one
    other = seal(ASKER.model_copy(update={"name": "李四"}), "ds-" + "a" * 32, 1, key, cipher)
    assert other.sealed["name"][:16] != one.sealed["name"][:16]  # never the same nonce


def test_a_sealed_value_is_bound_to_its_subject_version_and_field() -> None:
    key = os.urandom(32)
    sealed = seal(ASKER, "ds-" + "a" * 32, 1, key, Cipher_.AES_256_GCM)
    for moved in (
        sealed.model_copy(update={"subject_id": "ds-" + "b" * 32}),
        sealed.model_copy(update={"key_version": 2}),
        sealed.model_copy(update={"sealed": {"name": sealed.sealed["phone"]}}),
    ):
        with pytest.raises(ValueError, match="does not open"):
            open_sealed(moved, key)
    with pytest.raises(ValueError, match="does not open"):
        open_sealed(sealed, os.urandom(32))


def test_an_erased_key_shows_every_personal_field_as_erased_and_a_lost_one_is_a_fault() -> None:
    sealed = seal(ASKER, "ds-" + "a" * 32, 1, os.urandom(32), Cipher_.AES_256_GCM)
    erased = open_sealed(sealed, KeyState.ERASED)
    assert (erased.name, erased.phone, erased.email) == (ERASED, ERASED, ERASED)
    assert erased.reply_via == ReplyVia.PHONE
    with pytest.raises(LookupError):
        open_sealed(sealed, KeyState.LOST)


def test_the_same_asker_is_the_same_subject_and_the_id_shows_no_contact() -> None:
    subject = subject_of(SECRET, ASKER)
    assert subject is not None and subject.startswith("ds-")
    same = Asker(name="张先生", phone="+86 138 0000 1234")
    assert subject_of(SECRET, same) == subject
    assert subject_of(b"t" * 32, ASKER) != subject  # keyed: the secret is needed to link
    assert "13800001234" not in subject
    assert subject_of(SECRET, Asker(email="zs@EXAMPLE.cn")) == subject_of(
        SECRET, Asker(email="zs@example.cn"))
    assert subject_of(SECRET, Asker(reply_via=ReplyVia.NONE)) is None


def test_a_role_without_the_right_sees_masked_fields_and_erased_stays_erased() -> None:
    shown = masked(ASKER)
    assert (shown.name, shown.phone, shown.email) == (MASKED, MASKED, MASKED)
    erased = masked(Asker(name=ERASED, phone=ERASED))
    assert (erased.name, erased.phone, erased.email) == (ERASED, ERASED, None)


# ── retention (保存期限) ─────────────────────────────────────────────────────────────────────

NOW = datetime(2026, 12, 6, tzinfo=UTC)
RULE = RetentionRule(asker_days_after_answer=30)


def _c(subject: str, days_ago: float | None, erased: bool = False) -> Consulted:
    return Consulted(subject, None if days_ago is None else NOW - timedelta(days=days_ago), erased)


def test_retention_erases_an_asker_n_days_after_their_last_answer_and_no_sooner() -> None:
    consulted = [_c("ds-a", 31), _c("ds-b", 29), _c("ds-c", 40), _c("ds-c", 10),
                 _c("ds-d", 30), _c("ds-e", 90, erased=True)]
    assert due_for_erasure(consulted, RULE, NOW) == ["ds-a", "ds-d"]


def test_retention_waits_while_any_consultation_of_the_asker_is_unanswered() -> None:
    assert due_for_erasure([_c("ds-a", 300), _c("ds-a", None)], RULE, NOW) == []


def test_the_retention_rule_is_data_and_refuses_nonsense() -> None:
    rule = RetentionRule.from_json(
        (Path(__file__).parents[2] / "deploy" / "privacy" / "retention.json").read_text())
    assert rule.asker_days_after_answer > 0
    with pytest.raises(ValueError):
        RetentionRule.from_json('{"asker_days_after_answer": -1}')
