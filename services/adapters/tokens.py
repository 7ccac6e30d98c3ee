"""Bearer tokens of the HTTP API (访问令牌): one per organ and role, stored hashed.

`jiedu creds token issue PARTY` makes a token and prints it once; only its SHA-256 is kept, in
`<credentials dir>/api-tokens.json` (mode 0600, beside the parties' nkey seeds), with whom it
speaks for. A token reads `jiedu_<id>_<secret>`: the id finds its record, the secret (32 random
bytes) is compared by hash in constant time. A secret of that much entropy needs no slow hash.
Revoking marks the record; a running API re-reads the file when it changes, so a revocation
takes effect on the next request, without a restart.

Roles (who may see what, issue 16):
- `department`: an organ's own cases, findings, clocks, rejections and outcomes; posts its own
  events (HTTP intake);
- `gov_office`: the government office (区政府办公室), everything, and supervision: publishes the
  quarterly report; posts its own events like any organ;
- `auditor`: everything, read-only (verify, replay, exports);
- `public`: no token: published reports and the Q&A library only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

TOKENS_FILE = "api-tokens.json"
PREFIX = "jiedu"
GOV_OFFICE = "gov_office"
"""The organ code of the government office, whose tokens carry the office's role."""
AUDITOR = "auditor"


class Role(StrEnum):
    PUBLIC = "public"
    DEPARTMENT = "department"
    GOV_OFFICE = "gov_office"
    AUDITOR = "auditor"


@dataclass(frozen=True)
class TokenRecord:
    """One issued token, without its secret."""

    id: str
    party: str
    role: Role
    department: str | None
    """The organ the token speaks for (None for the auditor)."""
    sha256: str
    issued_at: str
    revoked_at: str | None = None


def role_of(party: str) -> tuple[Role, str | None]:
    """The role and organ a token for `party` carries: the auditor; the government office;
    any other organ as a department."""
    if party == AUDITOR:
        return Role.AUDITOR, None
    if party == GOV_OFFICE:
        return Role.GOV_OFFICE, GOV_OFFICE
    return Role.DEPARTMENT, party


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Tokens:
    """The token records of one credentials directory."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / TOKENS_FILE
        self._stamp: tuple[int, int, int] | None = None
        self._records: dict[str, TokenRecord] = {}

    def records(self) -> dict[str, TokenRecord]:
        """Every record by id, re-read when the file has changed since the last call."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._records = None, {}
            return self._records
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)  # each save is a new file: a new inode
        if stamp != self._stamp:
            raw = json.loads(self.path.read_text())
            self._records = {
                r["id"]: TokenRecord(**{**r, "role": Role(r["role"])}) for r in raw["tokens"]
            }
            self._stamp = stamp
        return self._records

    def _save(self, records: dict[str, TokenRecord]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path.parent, 0o700)
        body = json.dumps({"tokens": [asdict(r) for r in records.values()]}, indent=1)
        temporary = self.path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(body)
        temporary.replace(self.path)  # readers see the old file or the new one, whole

    def issue(self, party: str) -> tuple[TokenRecord, str]:
        """A new token for `party` (an organ's code or `auditor`): its record and the token,
        which is shown once and kept nowhere."""
        role, department = role_of(party)
        token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        record = TokenRecord(
            id=token_id, party=party, role=role, department=department,
            sha256=_digest(secret), issued_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        records = dict(self.records())
        records[token_id] = record
        self._save(records)
        return record, f"{PREFIX}_{token_id}_{secret}"

    def revoke(self, token_or_party: str) -> list[TokenRecord]:
        """Revoke one token (by its id) or every live token of a party; the revoked records."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        records = dict(self.records())
        chosen = [
            r for r in records.values()
            if r.revoked_at is None and token_or_party in (r.id, r.party)
        ]
        for r in chosen:
            records[r.id] = TokenRecord(**{**asdict(r), "revoked_at": now})
        if chosen:
            self._save(records)
        return [records[r.id] for r in chosen]

    def find(self, token: str) -> TokenRecord | None:
        """The live record `token` was issued as; None for anything else (malformed, unknown,
        wrong secret, revoked)."""
        prefix, _, rest = token.partition("_")
        token_id, _, secret = rest.partition("_")
        if prefix != PREFIX or not token_id or not secret:
            return None
        record = self.records().get(token_id)
        if record is None or record.revoked_at is not None:
            return None
        if not hmac.compare_digest(record.sha256, _digest(secret)):
            return None
        return record
