"""The parties' identities (身份): nkey seeds on disk and the server authorisation made of them.

A credentials directory holds one seed per party (`<party>.nk`, mode 0600; the directory 0700),
the record of revoked parties (`revoked.json`) and the generated `authorization.conf` that
nats-server includes: each party's public key with its permissions from `permissions.table`.
`jiedu up` creates all of it in its data dir on first start; with an existing server
(`NATS_URL`) the operator installs the same file there and hands each system its seed.

A revoked party's seed is deleted and its user left out of the authorisation, which the server
applies on reload: its connections are closed and it cannot connect again. Issuing it anew
makes a new key.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import nkeys

from events.organs import Organs
from services.adapters.permissions import Permissions, inbox_prefix, table

AUTHORIZATION_FILE = "authorization.conf"
REVOKED_FILE = "revoked.json"
SEED_SUFFIX = ".nk"


class MissingIdentity(Exception):
    """A party has no seed here: never issued, or revoked."""


def new_seed() -> bytes:
    """A fresh user seed (`SU…`), from 32 random bytes."""
    seed: bytes = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    return seed


def public_key(seed: str | bytes) -> str:
    raw = seed.encode() if isinstance(seed, str) else seed
    key: bytes = nkeys.from_seed(bytearray(raw)).public_key
    return key.decode()


def _write_private(path: Path, data: bytes) -> None:
    """Write a secret readable by its owner only, never for a moment by anyone else."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(path, 0o600)


@dataclass
class Credentials:
    """The seeds of every party in one directory, and the authorisation they make.

    `extra`: parties beyond Jiedu's own with their permissions (the tests' harness)."""

    directory: Path
    extra: Mapping[str, Permissions] = field(default_factory=dict)

    def path(self, party: str) -> Path:
        return self.directory / f"{party}{SEED_SUFFIX}"

    def parties(self, organs: Organs) -> dict[str, Permissions]:
        return {**table(organs), **self.extra}

    def _prepare(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)

    def revoked(self) -> dict[str, list[str]]:
        """Revoked parties and the public keys they had."""
        path = self.directory / REVOKED_FILE
        if not path.exists():
            return {}
        found: dict[str, list[str]] = json.loads(path.read_text())
        return found

    def _save_revoked(self, revoked: dict[str, list[str]]) -> None:
        self._prepare()
        (self.directory / REVOKED_FILE).write_text(json.dumps(revoked, indent=1, sort_keys=True))

    def seed(self, party: str) -> str:
        try:
            return self.path(party).read_text().strip()
        except FileNotFoundError:
            status = "revoked" if party in self.revoked() else "not issued"
            raise MissingIdentity(
                f"no identity for {party!r} in {self.directory} ({status}): "
                f"`jiedu creds issue {party}` makes one"
            ) from None

    def public_key(self, party: str) -> str:
        return public_key(self.seed(party))

    def ensure(self, organs: Organs) -> None:
        """Create a seed for every party that has none, except the revoked ones."""
        self._prepare()
        revoked = self.revoked()
        for party in self.parties(organs):
            if party not in revoked and not self.path(party).exists():
                _write_private(self.path(party), new_seed())

    def issue(self, party: str, organs: Organs) -> Path:
        """The party's seed file, made anew if it has none (a revoked party gets a new key)."""
        if party not in self.parties(organs):
            raise KeyError(f"{party!r} is neither an organ of the district nor a Jiedu party")
        self._prepare()
        if not self.path(party).exists():
            _write_private(self.path(party), new_seed())
        revoked = self.revoked()
        if revoked.pop(party, None) is not None:
            self._save_revoked(revoked)
        return self.path(party)

    def revoke(self, party: str) -> str:
        """Delete the party's seed and record its key as revoked; returns the key."""
        key = self.public_key(party)
        revoked = self.revoked()
        revoked.setdefault(party, []).append(key)
        self._save_revoked(revoked)
        self.path(party).unlink()
        return key

    def authorization(self, organs: Organs) -> str:
        """nats-server's `authorization` block: each issued party with its permissions. No
        anonymous user: a connection without a known key is refused."""
        users = []
        for party, permissions in self.parties(organs).items():
            if not self.path(party).exists():
                continue
            user = {"nkey": self.public_key(party), "permissions": permissions.as_config()}
            users.append(f"    # {party}\n    " + json.dumps(user, ensure_ascii=False))
        return (
            "# Generated by Jiedu from the organs file and services/adapters/permissions.py;\n"
            "# regenerate (jiedu creds …) rather than edit.\n"
            "authorization {\n  users: [\n" + ",\n".join(users) + "\n  ]\n}\n"
        )

    def write_authorization(self, organs: Organs) -> Path:
        self.ensure(organs)
        path = self.directory / AUTHORIZATION_FILE
        path.write_text(self.authorization(organs))
        return path

    def connect_options(self, party: str) -> dict[str, str]:
        """What nats-py's `connect` needs to speak as `party`."""
        return {"nkeys_seed_str": self.seed(party), "inbox_prefix": inbox_prefix(party)}


_SERVED: dict[str, Path] = {}
"""Credentials directories of the servers this process started or found, by URL."""


def register(url: str, directory: Path) -> None:
    _SERVED[url] = directory


def registered(url: str) -> Path | None:
    return _SERVED.get(url)
