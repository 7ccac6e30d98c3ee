"""The key store (密钥库): each data subject's keys, outside the log and never in NATS.

One SQLite file beside the data (`<data dir>/keys.sqlite3`, or `JIEDU_KEYSTORE`):

    jiedu_secret(name, value)                 the secret that keys the subject IDs
    subject_keys(subject_id, version, cipher, key, created_at, erased_at, erased_by, reason)

Erasing destroys the key (the row stays, `key` NULL, with who, when and why): the sealed fields
in the log then open to nothing, wherever the log was copied. SQLite runs with `secure_delete`
(freed and overwritten content is zeroed in the file) and a rollback journal that is deleted on
commit, so a destroyed key is in no file under the data directory afterwards; the tests prove it.

A key that should be there and is not (no row for a subject and version the log names) is
*lost*, which is reported as a fault, never shown as erased (`KeyState.LOST`).

Synchronous (sqlite3): call it from a thread, never on an event loop.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from domain.privacy import Cipher_, KeyState
from services.adapters.config import Settings

KEYSTORE_FILE = "keys.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jiedu_secret (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS subject_keys (
    subject_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    cipher TEXT NOT NULL,
    key BLOB,
    created_at TEXT NOT NULL,
    erased_at TEXT,
    erased_by TEXT,
    reason TEXT,
    PRIMARY KEY (subject_id, version)
);
"""


@dataclass(frozen=True)
class Erasure:
    """What erasing a subject did: which key versions it destroyed (none if already erased)."""

    subject_id: str
    versions: tuple[int, ...]
    at: datetime
    by: str
    reason: str


class KeyStore:
    """Data subjects' keys in one SQLite file. Thread-safe: one connection behind a lock."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA secure_delete = ON")
        self._db.execute("PRAGMA journal_mode = DELETE")
        self._db.executescript(_SCHEMA)
        os.chmod(path, 0o600)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def secret(self) -> bytes:
        """The secret keying subject IDs, made on first use."""
        with self._tx() as db:
            row = db.execute("SELECT value FROM jiedu_secret WHERE name = 'subject'").fetchone()
            if row:
                return bytes(row[0])
            value = os.urandom(32)
            db.execute("INSERT INTO jiedu_secret VALUES ('subject', ?)", (value,))
            return value

    def current(self, subject_id: str, cipher: Cipher_) -> tuple[int, bytes]:
        """The subject's live key (version, key), a new one if it has none or it was erased:
        a person who asks again after erasure gets a fresh key, the old data stays erased."""
        with self._tx() as db:
            row = db.execute(
                "SELECT version, key, cipher FROM subject_keys WHERE subject_id = ? "
                "ORDER BY version DESC LIMIT 1", (subject_id,)
            ).fetchone()
            if row and row[1] is not None and row[2] == cipher.value:
                return int(row[0]), bytes(row[1])
            version = int(row[0]) + 1 if row else 1
            key = os.urandom(cipher.key_size)
            db.execute(
                "INSERT INTO subject_keys (subject_id, version, cipher, key, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (subject_id, version, cipher.value, key, datetime.now(UTC).isoformat()),
            )
            return version, key

    def key(self, subject_id: str, version: int) -> bytes | KeyState:
        """The key of one version, or why there is none: erased, or lost (a fault)."""
        with self._lock:
            row = self._db.execute(
                "SELECT key, erased_at FROM subject_keys WHERE subject_id = ? AND version = ?",
                (subject_id, version),
            ).fetchone()
        if row is None:
            return KeyState.LOST
        if row[0] is None:
            return KeyState.ERASED if row[1] else KeyState.LOST
        return bytes(row[0])

    def erase(self, subject_id: str, by: str, reason: str) -> Erasure:
        """Destroy every key of the subject. Idempotent: erasing again destroys nothing more.
        Raises `LookupError` for a subject the store never knew."""
        at = datetime.now(UTC)
        with self._tx() as db:
            rows = db.execute(
                "SELECT version, key FROM subject_keys WHERE subject_id = ?", (subject_id,)
            ).fetchall()
            if not rows:
                raise LookupError(f"no data subject {subject_id}")
            live = tuple(int(v) for v, k in rows if k is not None)
            db.execute(
                "UPDATE subject_keys SET key = NULL, erased_at = ?, erased_by = ?, reason = ? "
                "WHERE subject_id = ? AND key IS NOT NULL",
                (at.isoformat(), by, reason, subject_id),
            )
        with self._lock:
            self._db.execute("VACUUM")  # no free page keeps a destroyed key
        return Erasure(subject_id, live, at, by, reason)


    def erased_versions(self, subject_id: str) -> tuple[int, ...]:
        """Every version of the subject's keys destroyed so far, in order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT version FROM subject_keys WHERE subject_id = ? AND key IS NULL "
                "AND erased_at IS NOT NULL ORDER BY version", (subject_id,)
            ).fetchall()
        return tuple(int(v) for (v,) in rows)


def keystore_path(settings: Settings) -> Path:
    return settings.keystore or settings.data_dir / KEYSTORE_FILE
