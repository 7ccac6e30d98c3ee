"""Sealing personal fields (issue 17, QA-4's 咨询人): what opens, what is bound, what erases."""

from __future__ import annotations

import os

import pytest

from domain.privacy import (
    ERASED,
    MASKED,
    Cipher_,
    KeyState,
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
