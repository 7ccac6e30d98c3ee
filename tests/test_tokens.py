"""API tokens (issue 16): issued per organ and role, shown once, kept only as a hash, found in
constant time, revoked from the next lookup on."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from services.adapters.tokens import TOKENS_FILE, Role, Tokens, role_of


@pytest.mark.parametrize(
    ("party", "role", "department"),
    [("drc", Role.DEPARTMENT, "drc"), ("gov_office", Role.GOV_OFFICE, "gov_office"),
     ("auditor", Role.AUDITOR, None)],
)
def test_a_token_carries_its_partys_role_and_organ(
    tmp_path: Path, party: str, role: Role, department: str | None
) -> None:
    assert role_of(party) == (role, department)
    record, token = Tokens(tmp_path).issue(party)
    found = Tokens(tmp_path).find(token)  # another reader of the same file
    assert found == record and (found.role, found.department) == (role, department)


def test_only_the_hash_is_kept_readable_by_its_owner_alone(tmp_path: Path) -> None:
    _, token = Tokens(tmp_path).issue("drc")
    secret = token.rsplit("_", 1)[1]
    kept = tmp_path / TOKENS_FILE
    assert secret not in kept.read_text()
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700


def test_anything_but_a_live_token_finds_nothing(tmp_path: Path) -> None:
    tokens = Tokens(tmp_path)
    record, token = tokens.issue("drc")
    _, other = tokens.issue("drc")
    prefix, token_id, secret = token.split("_", 2)
    for wrong in ("", "jiedu", "jiedu__", f"{prefix}_{token_id}_", f"x_{token_id}_{secret}",
                  f"{prefix}_{token_id}_{secret}x", f"{prefix}_nosuch_{secret}",
                  f"{prefix}_{token_id}_{other.rsplit('_', 1)[1]}"):
        assert tokens.find(wrong) is None, wrong
    assert tokens.find(token) == record


def test_a_revoked_token_is_refused_by_a_reader_that_found_it_before(tmp_path: Path) -> None:
    reader = Tokens(tmp_path)
    record, token = Tokens(tmp_path).issue("drc")
    _, kept = Tokens(tmp_path).issue("education")
    assert reader.find(token) == record
    revoked = Tokens(tmp_path).revoke(record.id)
    assert [r.id for r in revoked] == [record.id] and revoked[0].revoked_at is not None
    assert reader.find(token) is None  # the reader sees the file changed
    assert reader.find(kept) is not None
    assert Tokens(tmp_path).revoke(record.id) == []  # once
    assert [r.party for r in Tokens(tmp_path).revoke("education")] == ["education"]
    assert reader.find(kept) is None
