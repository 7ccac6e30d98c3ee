"""Personal data at the edges of the system: sealed by the intake before the log keeps it,
opened (or masked, or shown as erased) for those who read it, erased by destroying keys.

Where personal data can live, and for how long (the closing note of issue 17 repeats this):

- INTAKE: the message as the source sent it, in clear, until the intake acknowledges it (the
  work queue then deletes it; see `tests/integration/test_privacy.py` for the store files).
- EVENTS: only sealed (`SealedAsker`); erased for good when the subject's key is destroyed.
- REJECTED: never: a refused message's personal fields are dropped, with a note, before it is
  kept (`without_personal`).
- The key store (`services.adapters.keystore`): the keys, until erasure.
- Read models, exports, the quarterly report, logs: never (they keep no asker).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import orjson

from domain.privacy import Cipher_, KeyState, open_sealed, seal, subject_of
from events.catalogue import Asker, ConsultationReceived, Event, SealedAsker
from events.outcomes import Reason, Rejection
from services.adapters.keystore import KeyStore

DROPPED_NOTE = "personal_data_dropped"
"""The key a REJECTED message's asker gets, listing the personal fields taken out of it."""


class Sealer:
    """Seals the personal fields of events with their data subject's key (`domain.privacy`)."""

    def __init__(self, keystore: Path, cipher: Cipher_) -> None:
        self.keystore = keystore
        self.cipher = cipher
        self._secret: bytes | None = None

    @functools.cached_property
    def keys(self) -> KeyStore:
        """Opened on first use: an intake that never sees an asker never touches it."""
        return KeyStore(self.keystore)

    @staticmethod
    def holds_personal(event: Event | None) -> bool:
        return isinstance(event, ConsultationReceived) and event.data.asker is not None

    def seal(self, event: Event) -> Event:
        """The event as the log may keep it. Synchronous (the key store): call from a thread."""
        assert isinstance(event, ConsultationReceived) and event.data.asker is not None
        asker = event.data.asker
        if isinstance(asker, SealedAsker):
            raise Rejection(
                Reason.INVALID_FIELD, "data.asker: sealed personal data is written only by Jiedu"
            )
        if self._secret is None:
            self._secret = self.keys.secret()
        subject = subject_of(self._secret, asker)
        if subject is None:  # nothing personal in it: only the way to reply
            return event
        version, key = self.keys.current(subject, self.cipher)
        sealed = seal(asker, subject, version, key, self.cipher)
        return event.model_copy(update={"data": event.data.model_copy(update={"asker": sealed})})


def reveal(keys: KeyStore, asker: Asker | SealedAsker) -> Asker:
    """The asker in clear (its fields `ERASED` once the key is destroyed). Raises `LookupError`
    when the key is lost (a fault to report, never shown as erased)."""
    if isinstance(asker, Asker):
        return asker
    key = keys.key(asker.subject_id, asker.key_version)
    if key is KeyState.LOST:
        raise LookupError(
            f"key store has no key for {asker.subject_id} v{asker.key_version}, and no erasure"
        )
    return open_sealed(asker, key)


def without_personal(raw: bytes) -> bytes:
    """A refused message as REJECTED may keep it: the asker's fields but the way to reply
    dropped (personal ones, sealed ones, unknown ones), with a note naming them. A body that is not a JSON object but mentions an asker is dropped whole
    (it cannot be told apart), with a note."""
    if b"asker" not in raw:
        return raw
    try:
        body: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return orjson.dumps({DROPPED_NOTE: "the whole body: not JSON, it may name a person"})
    data: Any = body.get("data") if isinstance(body, dict) else None
    asker: Any = data.get("asker") if isinstance(data, dict) else None
    if not isinstance(asker, dict):
        if isinstance(body, dict) and isinstance(data, dict):
            return raw if "asker" not in data else orjson.dumps(
                {**body, "data": {**data, "asker": {DROPPED_NOTE: ["asker"]}}})
        return orjson.dumps({DROPPED_NOTE: "the whole body: its asker cannot be found"})
    dropped = [k for k in asker if k != "reply_via"]  # unknown keys may name a person too
    kept = {k: v for k, v in asker.items() if k not in dropped}
    return orjson.dumps({**body, "data": {**data, "asker": {**kept, DROPPED_NOTE: dropped}}})
