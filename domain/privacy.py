"""Personal data (个人信息) by crypto-shredding: each data subject's fields sealed with a key of
their own, so that destroying the key erases them everywhere the log is copied, while the bytes
the audit chain hashes never change (个人信息保护法 art. 47: delete once the purpose is met).

Pure functions: keys come in as arguments (the key store is `services.adapters.keystore`).

- The data subject (数据主体) is named by a keyed hash of their contact (phone, else e-mail,
  else name, normalised), so the same asker is the same subject and the ID reveals nothing
  without the key store's secret.
- Each field is encrypted with AES-256-GCM, or SM4-GCM where 商用密码 is required, with the
  subject ID, the key version and the field's name as associated data: a sealed value moved to
  another subject, version or field fails to open.
- The nonce is synthetic (an HMAC of the associated data and the text under a key derived from
  the subject's key): the same text under the same key seals to the same bytes, so a source
  resending an event is recognised as a duplicate, and different texts never share a nonce.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from events.catalogue import Asker, SealedAsker, personal_fields

ERASED = "已删除"
"""What every view, replay and export shows for a field whose key was destroyed."""
MASKED = "***"
"""What a role without the right to a personal field sees instead of it."""

PERSONAL = personal_fields(Asker)
NONCE = 12
TAG = 16


class Cipher_(StrEnum):
    """The ciphers a deployment may choose (`JIEDU_PERSONAL_CIPHER`)."""

    AES_256_GCM = "AES-256-GCM"
    SM4_GCM = "SM4-GCM"  # GB/T 32907, 商用密码

    @property
    def key_size(self) -> int:
        return 32 if self is Cipher_.AES_256_GCM else 16


class KeyState(StrEnum):
    """Why a sealed field cannot be shown: erased on purpose, or a key the store should have
    but has not (reported as a fault, never shown as erased)."""

    ERASED = "erased"
    LOST = "lost"


def contact_of(asker: Asker) -> str | None:
    """What identifies the person, normalised: phone digits, else e-mail, else name."""
    if asker.phone and (digits := re.sub(r"\D", "", asker.phone)):
        return f"phone:{digits.removeprefix('86') if len(digits) == 13 else digits}"
    if asker.email:
        return f"email:{asker.email.strip().lower()}"
    if asker.name:
        return f"name:{asker.name.strip()}"
    return None


def subject_of(secret: bytes, asker: Asker) -> str | None:
    """The data subject's ID: a keyed hash of the contact (None when the asker names none)."""
    contact = contact_of(asker)
    if contact is None:
        return None
    return "ds-" + hmac.new(secret, contact.encode(), hashlib.sha256).hexdigest()[:32]


def _aad(subject_id: str, version: int, field: str) -> bytes:
    return f"{subject_id}|{version}|{field}".encode()


def _encrypt(cipher: Cipher_, key: bytes, nonce: bytes, text: bytes, aad: bytes) -> bytes:
    if cipher is Cipher_.AES_256_GCM:
        return AESGCM(key).encrypt(nonce, text, aad)
    enc = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
    enc.authenticate_additional_data(aad)
    return enc.update(text) + enc.finalize() + enc.tag


def _decrypt(cipher: Cipher_, key: bytes, nonce: bytes, sealed: bytes, aad: bytes) -> bytes:
    if cipher is Cipher_.AES_256_GCM:
        return AESGCM(key).decrypt(nonce, sealed, aad)
    body, tag = sealed[:-TAG], sealed[-TAG:]
    dec = Cipher(algorithms.SM4(key), modes.GCM(nonce, tag)).decryptor()
    dec.authenticate_additional_data(aad)
    return dec.update(body) + dec.finalize()


def seal(asker: Asker, subject_id: str, version: int, key: bytes, cipher: Cipher_) -> SealedAsker:
    """The asker as the log keeps it: every personal field encrypted, the rest as it was."""
    nonce_key = hmac.new(key, b"jiedu-nonce", hashlib.sha256).digest()
    sealed: dict[str, str] = {}
    for field in PERSONAL:
        value = getattr(asker, field)
        if value is None:
            continue
        aad, text = _aad(subject_id, version, field), value.encode()
        nonce = hmac.new(nonce_key, aad + b"\0" + text, hashlib.sha256).digest()[:NONCE]
        blob = nonce + _encrypt(cipher, key, nonce, text, aad)
        sealed[field] = base64.b64encode(blob).decode()
    return SealedAsker(subject_id=subject_id, key_version=version, algorithm=cipher.value,
                       sealed=sealed, reply_via=asker.reply_via)


def open_sealed(sealed: SealedAsker, key: bytes | KeyState) -> Asker:
    """The asker in clear, or with `ERASED` in every personal field if its key is destroyed.
    Raises `LookupError` for a lost key and `ValueError` for a value that fails to open (a
    wrong key or tampered bytes): faults to report, never to show as erased."""
    if key is KeyState.LOST:
        raise LookupError(f"no key for {sealed.subject_id} v{sealed.key_version}")
    clear: dict[str, str] = {}
    for field, text in sealed.sealed.items():
        if key is KeyState.ERASED:
            clear[field] = ERASED
            continue
        assert isinstance(key, bytes)
        blob = base64.b64decode(text)
        try:
            plain = _decrypt(Cipher_(sealed.algorithm), key, blob[:NONCE], blob[NONCE:],
                             _aad(sealed.subject_id, sealed.key_version, field))
        except InvalidTag:
            raise ValueError(f"{sealed.subject_id} {field}: does not open with its key") from None
        clear[field] = plain.decode()
    return Asker(reply_via=sealed.reply_via, **clear)


def masked(asker: Asker) -> Asker:
    """The asker as a role without the right to personal data sees it."""
    return asker.model_copy(
        update={f: (MASKED if getattr(asker, f) not in (None, ERASED) else getattr(asker, f))
                for f in PERSONAL}
    )


# ── retention (保存期限) ──────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class RetentionRule:
    """How long an asker's personal data is kept: until `asker_days_after_answer` days after
    the last of their consultations was answered (the purpose, 主动回复, is then fulfilled;
    个人信息保护法 art. 47). Data, from `deploy/privacy/retention.json`."""

    asker_days_after_answer: int
    scan_every_s: float = 3600.0

    @classmethod
    def from_json(cls, text: str | bytes) -> RetentionRule:
        raw = json.loads(text)
        rule = cls(int(raw["asker_days_after_answer"]), float(raw.get("scan_every_s", 3600)))
        if rule.asker_days_after_answer < 0 or rule.scan_every_s <= 0:
            raise ValueError(f"retention rule out of range: {raw}")
        return rule


@dataclass(frozen=True)
class Consulted:
    """One consultation of a data subject, as the retention rule needs it."""

    subject_id: str
    answered_at: datetime | None
    erased: bool


def due_for_erasure(
    consulted: Iterable[Consulted], rule: RetentionRule, now: datetime
) -> list[str]:
    """The subjects whose data the rule says to erase now: none of their consultations still
    open (unanswered: the reply is the purpose), the last answer at least the rule's days ago,
    and something left to erase."""
    by_subject: dict[str, list[Consulted]] = {}
    for c in consulted:
        by_subject.setdefault(c.subject_id, []).append(c)
    limit = timedelta(days=rule.asker_days_after_answer)
    due = []
    for subject, its in sorted(by_subject.items()):
        live = [c for c in its if not c.erased]
        if not live or any(c.answered_at is None for c in its):
            continue
        if max(c.answered_at for c in its if c.answered_at) + limit <= now:
            due.append(subject)
    return due
