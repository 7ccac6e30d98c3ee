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

import asyncio
import contextlib
import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from nats.aio.client import Client

from domain.privacy import (
    Cipher_,
    Consulted,
    KeyState,
    RetentionRule,
    due_for_erasure,
    open_sealed,
    seal,
    subject_of,
)
from events import streams
from events.catalogue import (
    Asker,
    ConsultationReceived,
    ErasureReason,
    Event,
    PersonalDataErased,
    PersonalDataErasedData,
    SealedAsker,
)
from events.codec import encode, loads
from events.envelope import Actor
from events.outcomes import Reason, Rejection
from events.streams import Header
from projections.qa_consultations import CONSULTATIONS, QAConsultations
from services.adapters import logs
from services.adapters.config import Settings
from services.adapters.eventlog import Conflict, EventLog
from services.adapters.keystore import KeyStore
from services.adapters.readmodels import ReadStore

retention_log = logs.get("jiedu.privacy")

ERASER_SYSTEM = "jiedu"
"""The source system named on erasure events: Jiedu itself."""

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


def holds_personal_bytes(raw: bytes) -> bool:
    """Whether a message as sent may hold personal data (an asker), by a cheap look."""
    return b"asker" in raw


def without_personal(raw: bytes) -> bytes:
    """A refused message as REJECTED may keep it: the asker's fields but the way to reply
    dropped (personal ones, sealed ones, unknown ones), with a note naming them. A body that is not a JSON object but mentions an asker is dropped whole
    (it cannot be told apart), with a note."""
    if not holds_personal_bytes(raw):
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


# ── erasure (删除) ───────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Erased:
    """What `erase` did: the keys destroyed and the erasure events recorded, by case."""

    subject_id: str
    key_versions: tuple[int, ...]
    recorded: dict[str, str]
    """case ID → the PersonalDataErased event ID recorded there (now or by an earlier run)."""


async def appearances(log: EventLog, subject_id: str) -> dict[str, list[ConsultationReceived]]:
    """The consultations whose asker is the subject, by case, from the log itself."""
    out: dict[str, list[ConsultationReceived]] = {}
    for _, body in await log.read(streams.type_filter("ConsultationReceived")):
        e = loads(body)
        if (isinstance(e, ConsultationReceived) and isinstance(e.data.asker, SealedAsker)
                and e.data.asker.subject_id == subject_id):
            out.setdefault(e.case_id, []).append(e)
    return out


def erasure_event(
    subject_id: str, versions: tuple[int, ...], reason: ErasureReason, by: str,
    consultations: list[ConsultationReceived], at: datetime,
) -> PersonalDataErased:
    """The erasure as one case records it. Its ID is derived from subject, versions and case,
    so running the same erasure again records nothing twice."""
    first = consultations[0]
    digest = hashlib.sha256(
        f"{subject_id}|{','.join(map(str, versions))}|{first.case_id}".encode()
    ).hexdigest()[:32]
    return PersonalDataErased(
        event_id=f"erased-{digest}",
        case_id=first.case_id,
        department=first.department,
        actor=Actor(id=by),
        source_system=ERASER_SYSTEM,
        occurred_at=at,
        data=PersonalDataErasedData(
            subject_id=subject_id, key_versions=list(versions), reason=reason,
            consultation_ids=[c.data.consultation_id for c in consultations],
        ),
    )


async def erase(
    log: EventLog, keys: KeyStore, subject_id: str, *, by: str, reason: ErasureReason
) -> Erased:
    """Destroy the subject's keys, then record a PersonalDataErased on every case the subject
    appears on (under the case's lock). The keys go first: erasure is what the law asks for,
    and a run cut short is finished by running it again (the events' IDs are deterministic)."""
    found = await appearances(log, subject_id)
    try:
        await asyncio.to_thread(keys.erase, subject_id, by, str(reason))
    except LookupError:
        if found:  # the log names the subject, the store has no key: never erased, lost
            raise LookupError(f"{subject_id}: in the log, but the key store has no key for it "
                              "(lost, not erased)") from None
        raise
    versions = await asyncio.to_thread(keys.erased_versions, subject_id)
    now = datetime.now(UTC)
    recorded: dict[str, str] = {}
    for case_id, consultations in sorted(found.items()):
        event = erasure_event(subject_id, versions, reason, by, consultations, now)
        recorded[case_id] = event.event_id
        for _ in range(10):
            history = await log.history(case_id)
            if any(e.event_id == event.event_id for _, e in history):
                break
            message = (streams.event_subject(event.department, case_id, event.type),
                       encode(event), {Header.EVENT_ID: event.event_id})
            try:
                await log.append(case_id, [message], expected_last=history[-1][0])
                break
            except Conflict:
                continue
        else:
            raise RuntimeError(f"case {case_id}: still moving after 10 tries")
    return Erased(subject_id, versions, recorded)


# ── retention (保存期限) ─────────────────────────────────────────────────────────────────────

RETENTION_FILE = Path(__file__).resolve().parents[1] / "deploy" / "privacy" / "retention.json"
"""The retention rule shipped with the code; `JIEDU_RETENTION_FILE` names another."""
RETENTION_ACTOR = "jiedu-retention"
"""Who erases by the retention rule, as the erasure events name it."""


def retention_rule(settings: Settings) -> RetentionRule:
    return RetentionRule.from_json((settings.retention_file or RETENTION_FILE).read_bytes())


class RetentionService:
    """Applies the retention rule while Jiedu runs: every `scan_every_s`, erases the askers
    whose purpose is fulfilled (`domain.privacy.due_for_erasure`), read from the consultations
    read model the projector keeps, as the privacy party."""

    def __init__(
        self, nc: Client, store: ReadStore, keys: KeyStore, rule: RetentionRule,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.log = EventLog(nc)
        self.store = store
        self.keys = keys
        self.rule = rule
        self.clock = clock
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="privacy-retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.to_thread(self.keys.close)

    async def _loop(self) -> None:
        while True:
            try:
                await self.scan_once()
            except Exception:  # tried again at the next scan
                retention_log.exception("retention scan failed")
            await asyncio.sleep(self.rule.scan_every_s)

    async def scan_once(self) -> list[str]:
        """Erase every subject the rule says is due now; returns their IDs."""
        rows = await asyncio.to_thread(
            self.store.select, QAConsultations(), CONSULTATIONS, {}
        )
        consulted = [
            Consulted(r["asker_subject"], r["answered_at"], r["asker_erased_at"] is not None)
            for r in rows if r["asker_subject"]
        ]
        due = due_for_erasure(consulted, self.rule, self.clock())
        for subject_id in due:
            await erase(self.log, self.keys, subject_id, by=RETENTION_ACTOR,
                        reason=ErasureReason.RETENTION)
            retention_log.info("erased by the retention rule", subject_id=subject_id)
        return due
