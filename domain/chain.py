"""The audit hash chain (审计哈希链) and signed checkpoints: pure functions, no I/O.

Why: auditors replay the log for the quarterly checks and must be able to show that what they
replay is what was recorded. Each event's link covers the previous link, so changing, removing,
inserting or reordering any stored event changes every later link; the office signs the head
(sequence, link) with its Ed25519 key at quarter ends and on demand, and a published signed head
pins all history before it.

Byte layout (version 1). For the stored message at stream sequence ``seq`` with subject
``subject`` (UTF-8) and body ``data`` (the exact bytes JetStream stored, never re-encoded)::

    link_0   = GENESIS = SHA-256(b"jiedu/audit-chain/v1/genesis")
    link_n   = SHA-256( link_{n-1}                    32 bytes, raw digest
                      || seq                          8 bytes, unsigned big-endian
                      || len(subject)                 4 bytes, unsigned big-endian
                      || subject                      UTF-8 bytes
                      || len(data)                    8 bytes, unsigned big-endian
                      || data )                       the stored bytes

Links are written as 64 lower-case hex digits. The lengths make the encoding unambiguous (no
subject/body boundary can be shifted). Headers and the stored timestamp are not covered: the
event's meaning is in its body, and its place in the log is its sequence.

A checkpoint signs this text, UTF-8, with Ed25519::

    jiedu/audit-checkpoint/v1\\n<seq>\\n<link hex>\\n<signed_at ISO 8601>\\n<label>\\n

`verify_chain` is the pure check over an iterable of (seq, subject, data), the signed
checkpoints and the audit projection's stored links; it names the first sequence where they
disagree.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

GENESIS: bytes = hashlib.sha256(b"jiedu/audit-chain/v1/genesis").digest()
GENESIS_HEX: str = GENESIS.hex()
CHECKPOINT_TAG = "jiedu/audit-checkpoint/v1"

_SEQ = struct.Struct(">Q")
_SUBJECT_LEN = struct.Struct(">I")
_DATA_LEN = struct.Struct(">Q")


def link(previous: bytes, seq: int, subject: str, data: bytes) -> bytes:
    """The raw 32-byte link of one stored message (see the module docstring)."""
    s = subject.encode()
    h = hashlib.sha256(previous)
    h.update(_SEQ.pack(seq))
    h.update(_SUBJECT_LEN.pack(len(s)))
    h.update(s)
    h.update(_DATA_LEN.pack(len(data)))
    h.update(data)
    return h.digest()


def links(
    messages: Iterable[tuple[int, str, bytes]], start: bytes = GENESIS
) -> Iterator[tuple[int, bytes]]:
    """(seq, link) for each message in the order given, chained from `start`."""
    current = start
    for seq, subject, data in messages:
        current = link(current, seq, subject, data)
        yield seq, current


# ── keys ─────────────────────────────────────────────────────────────────────────────────────


def new_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_private(pem: bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("not an Ed25519 private key")
    return key


def load_public(pem: bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def key_id(key: Ed25519PublicKey) -> str:
    """A short name for a public key: the first 16 hex digits of SHA-256 of its raw bytes."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


# ── checkpoints ──────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Checkpoint:
    """A signed chain head: the link after sequence `seq`, signed at `signed_at` (ISO 8601, as
    the signer wrote it) under a `label` (``on_demand`` or ``quarter:2026Q3``)."""

    seq: int
    link: str
    signed_at: str
    label: str
    key_id: str
    signature: str  # base64 of the 64-byte Ed25519 signature

    def message(self) -> bytes:
        return signed_text(self.seq, self.link, self.signed_at, self.label)

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq, "link": self.link, "signed_at": self.signed_at, "label": self.label,
            "key_id": self.key_id, "signature": self.signature,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Checkpoint:
        return cls(
            int(d["seq"]), str(d["link"]), str(d["signed_at"]), str(d["label"]),
            str(d["key_id"]), str(d["signature"]),
        )

    def valid_under(self, key: Ed25519PublicKey) -> bool:
        try:
            key.verify(base64.b64decode(self.signature), self.message())
        except (InvalidSignature, ValueError):
            return False
        return True


def signed_text(seq: int, link_hex: str, signed_at: str, label: str) -> bytes:
    return f"{CHECKPOINT_TAG}\n{seq}\n{link_hex}\n{signed_at}\n{label}\n".encode()


def sign(key: Ed25519PrivateKey, seq: int, link_hex: str, signed_at: str, label: str) -> Checkpoint:
    signature = key.sign(signed_text(seq, link_hex, signed_at, label))
    return Checkpoint(
        seq, link_hex, signed_at, label, key_id(key.public_key()),
        base64.b64encode(signature).decode(),
    )


# ── verification ─────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Divergence:
    """The first place where the log, the audit rows or a checkpoint disagree."""

    seq: int
    reason: str


@dataclass
class ChainReport:
    """What `verify_chain` found: the recomputed head and the first divergence, if any."""

    head_seq: int = 0
    head: str = GENESIS_HEX
    events: int = 0
    checkpoints: int = 0
    divergence: Divergence | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.divergence is None


class ChainCheck:
    """`verify_chain` one message at a time, for a log read in chunks: it holds the running
    link, the next expected sequence and the checkpoints, never the log (the chain of a
    million events is checked in constant memory).

    Feed every message in the order read with `add`, then call `finish`. `verify_chain` is
    this over an iterable; the checks and the divergence named are the same."""

    def __init__(
        self, checkpoints: Sequence[Checkpoint], public_key: Ed25519PublicKey | None
    ) -> None:
        self.report = ChainReport()
        self.found: list[Divergence] = []
        self.by_seq: dict[int, list[Checkpoint]] = {}
        for cp in checkpoints:
            if public_key is None or not cp.valid_under(public_key):
                self.found.append(Divergence(cp.seq, f"checkpoint {cp.label} at {cp.seq}: "
                                  f"signature does not verify under the public key (key "
                                  f"{cp.key_id})"))
            elif cp.seq == 0:
                if cp.link != GENESIS_HEX:
                    self.found.append(Divergence(0, f"checkpoint {cp.label} at 0 signed link "
                                      f"{cp.link[:12]}…; the empty chain is {GENESIS_HEX[:12]}…"))
            else:
                self.by_seq.setdefault(cp.seq, []).append(cp)
        self.report.checkpoints = len(checkpoints)
        self.current = GENESIS
        self.expected = 1
        self.first_broken: int | None = None

    def add(
        self, seq: int, subject: str, data: bytes, *, has_row: bool = False,
        row_link: str | None = None,
    ) -> str:
        """Chain one message on; `has_row`: the audit projection has a row at `seq`, whose
        stored link is `row_link`. Returns the recomputed link (hex)."""
        if seq != self.expected and self.first_broken is None:
            what = "missing or out of order" if seq > self.expected else "out of order or repeated"
            self.first_broken = broken = self.expected if seq > self.expected else seq
            self.found.append(Divergence(broken, f"log sequence {broken} {what} "
                                         f"(expected {self.expected}, read {seq})"))
        self.current = link(self.current, seq, subject, data)
        hex_ = self.current.hex()
        if has_row and row_link != hex_ and self.first_broken is None:
            self.first_broken = seq
            self.found.append(Divergence(seq, f"link {hex_[:12]}… recomputed from the log "
                                         f"differs from the audit row's "
                                         f"{(row_link or 'none')[:12]}…"))
        if self.by_seq:
            for cp in self.by_seq.pop(seq, ()):
                if cp.link != hex_:
                    self.found.append(Divergence(cp.seq, f"checkpoint {cp.label} signed link "
                                                 f"{cp.link[:12]}… at {cp.seq}; the log gives "
                                                 f"{hex_[:12]}…"))
        self.expected = max(self.expected, seq + 1)
        self.report.events += 1
        self.report.head_seq, self.report.head = seq, hex_
        return hex_

    def finish(self, rows_beyond: tuple[int, int] | None = None) -> ChainReport:
        """The report. `rows_beyond`: (lowest, highest) sequence of the audit rows after the
        last message read (`head_seq`), if there are any: events removed from the end."""
        report = self.report
        found = list(self.found)
        for seq, cps in self.by_seq.items():
            for cp in cps:
                found.append(Divergence(min(seq, report.head_seq + 1), f"checkpoint {cp.label} "
                                        f"at {seq} is beyond the log's end ({report.head_seq})"))
        if rows_beyond is not None:
            low, high = rows_beyond
            found.append(Divergence(low, f"audit rows up to {high} beyond the log's "
                                    f"end ({report.head_seq})"))
        report.divergence = min(found, key=lambda d: d.seq) if found else None
        return report


def verify_chain(
    messages: Iterable[tuple[int, str, bytes]],
    checkpoints: Sequence[Checkpoint],
    public_key: Ed25519PublicKey | None,
    audit_links: Mapping[int, str | None] | None = None,
) -> ChainReport:
    """Recompute the chain over `messages` (the log as read, in the order read) and check it.

    - Sequences must start at 1 and rise by exactly one: a gap names the missing sequence, a
      sequence out of order or repeated names the place where order broke.
    - `audit_links` (seq → stored link): each recomputed link must equal the stored one, and
      every stored sequence must be in the log (an audit row for an event no longer there).
    - Each checkpoint must be signed by `public_key` and its link must equal the recomputed
      link at its sequence; a checkpoint beyond the log's end means events were removed. A
      checkpoint at sequence 0 signs the empty chain: its link must be `GENESIS` (the office
      signed a log that held nothing yet, as a fresh system did for its first quarter).
    The divergence reported is the one with the lowest sequence. (`ChainCheck` does the same
    one message at a time.)"""
    check = ChainCheck(checkpoints, public_key)
    links_ = audit_links or {}
    for seq, subject, data in messages:
        check.add(seq, subject, data, has_row=seq in links_, row_link=links_.get(seq))
    extra = [s for s in links_ if s > check.report.head_seq]
    return check.finish((min(extra), max(extra)) if extra else None)
