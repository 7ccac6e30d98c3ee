"""The audit hash chain and signed checkpoints (domain.chain): layout, and every kind of
tampering found at the right sequence."""

from __future__ import annotations

import hashlib
import struct

import pytest

from domain import chain
from domain.chain import GENESIS, Checkpoint, verify_chain

Msg = tuple[int, str, bytes]


def synthetic(n: int) -> list[Msg]:
    return [
        (i, f"jiedu.events.drc.C{i % 7}.ReviewSigned", f'{{"event_id":"e{i}","n":{i}}}'.encode())
        for i in range(1, n + 1)
    ]


def stored_links(log: list[Msg]) -> dict[int, str | None]:
    return {seq: link.hex() for seq, link in chain.links(log)}


KEY = chain.new_private_key()
OTHER = chain.new_private_key()


def signed_at(log: list[Msg], seq: int, key: object = KEY) -> Checkpoint:
    head = dict(chain.links(log))[seq].hex()
    assert isinstance(key, type(KEY))
    return chain.sign(key, seq, head, "2026-10-01T00:00:00+00:00", "quarter:2026Q3")


def test_the_byte_layout_is_the_documented_one() -> None:
    assert hashlib.sha256(b"jiedu/audit-chain/v1/genesis").digest() == GENESIS
    subject, data = "jiedu.events.drc.C1.PolicyIssued", "印发".encode()
    expected = hashlib.sha256(
        GENESIS + struct.pack(">Q", 5) + struct.pack(">I", len(subject)) + subject.encode()
        + struct.pack(">Q", len(data)) + data
    ).digest()
    assert chain.link(GENESIS, 5, subject, data) == expected


def test_moving_bytes_between_subject_and_body_changes_the_link() -> None:
    assert chain.link(GENESIS, 1, "a.b", b"c") != chain.link(GENESIS, 1, "a.", b"bc")


def test_an_untouched_log_verifies_against_links_and_checkpoints() -> None:
    log = synthetic(50)
    report = verify_chain(log, [signed_at(log, 30), signed_at(log, 50)], KEY.public_key(),
                          stored_links(log))
    assert report.ok, report.divergence
    assert (report.head_seq, report.events, report.checkpoints) == (50, 50, 2)
    assert report.head == dict(chain.links(log))[50].hex()


def changed(log: list[Msg], k: int) -> list[Msg]:
    out = list(log)
    seq, subject, data = out[k - 1]
    out[k - 1] = (seq, subject, data.replace(b'"n"', b'"m"'))
    return out


def removed_gap(log: list[Msg], k: int) -> list[Msg]:
    return [m for m in log if m[0] != k]


def removed_renumbered(log: list[Msg], k: int) -> list[Msg]:
    kept = [m for m in log if m[0] != k]
    return [(i, s, d) for i, (_, s, d) in enumerate(kept, start=1)]


def swapped_contents(log: list[Msg], k: int) -> list[Msg]:
    out = list(log)
    (a, sa, da), (b, sb, db) = out[k - 1], out[k]
    out[k - 1], out[k] = (a, sb, db), (b, sa, da)
    return out


def swapped_order(log: list[Msg], k: int) -> list[Msg]:
    out = list(log)
    out[k - 1], out[k] = out[k], out[k - 1]
    return out


def inserted_renumbered(log: list[Msg], k: int) -> list[Msg]:
    forged = [*log[: k - 1], (0, "jiedu.events.drc.C1.PolicyIssued", b'{"forged":true}'), *log[k - 1 :]]
    return [(i, s, d) for i, (_, s, d) in enumerate(forged, start=1)]


def inserted_repeated(log: list[Msg], k: int) -> list[Msg]:
    return [*log[:k], (k, "jiedu.events.drc.C1.PolicyIssued", b'{"forged":true}'), *log[k:]]


FORGERIES = [changed, removed_gap, removed_renumbered, swapped_contents, swapped_order,
             inserted_renumbered]


@pytest.mark.parametrize("forge", FORGERIES, ids=lambda f: f.__name__)
def test_tampering_is_named_at_its_sequence_by_the_audit_links(forge) -> None:  # type: ignore[no-untyped-def]
    log = synthetic(40)
    report = verify_chain(forge(log, 17), [], KEY.public_key(), stored_links(log))
    assert report.divergence is not None
    assert report.divergence.seq == 17, report.divergence


def test_a_repeated_sequence_is_named_where_order_breaks() -> None:
    log = synthetic(40)
    report = verify_chain(inserted_repeated(log, 17), [], KEY.public_key(), stored_links(log))
    assert report.divergence is not None and report.divergence.seq == 17


@pytest.mark.parametrize("forge", FORGERIES, ids=lambda f: f.__name__)
def test_tampering_before_a_checkpoint_is_caught_by_the_checkpoint_alone(forge) -> None:  # type: ignore[no-untyped-def]
    """A forger who rewrote the audit rows too (no links to compare) still meets the signed
    head: the divergence is at or before the checkpoint."""
    log = synthetic(40)
    report = verify_chain(forge(log, 17), [signed_at(log, 30)], KEY.public_key(), None)
    assert report.divergence is not None
    assert report.divergence.seq <= 30


def test_tampering_after_the_last_checkpoint_and_without_rows_goes_unseen() -> None:
    """What the chain cannot do: events after the last signed head are pinned by nothing."""
    log = synthetic(40)
    assert verify_chain(changed(log, 35), [signed_at(log, 30)], KEY.public_key(), None).ok


def test_a_truncated_log_fails_at_the_checkpoint_beyond_its_end() -> None:
    log = synthetic(40)
    report = verify_chain(log[:25], [signed_at(log, 30)], KEY.public_key(), None)
    assert report.divergence is not None and report.divergence.seq == 26


def test_audit_rows_beyond_the_log_are_a_divergence() -> None:
    log = synthetic(40)
    report = verify_chain(log[:39], [], KEY.public_key(), stored_links(log))
    assert report.divergence is not None and report.divergence.seq == 40


def test_an_edited_audit_link_is_named() -> None:
    log = synthetic(40)
    links = stored_links(log)
    links[12] = "0" * 64
    report = verify_chain(log, [], KEY.public_key(), links)
    assert report.divergence is not None and report.divergence.seq == 12


def test_a_checkpoint_signed_with_another_key_is_refused() -> None:
    log = synthetic(40)
    report = verify_chain(log, [signed_at(log, 20), signed_at(log, 30, OTHER)], KEY.public_key(),
                          stored_links(log))
    assert report.divergence is not None and report.divergence.seq == 30
    assert "signature" in report.divergence.reason


def test_a_checkpoint_whose_link_was_changed_no_longer_verifies() -> None:
    log = synthetic(40)
    good = signed_at(log, 30)
    forged = Checkpoint(**{**good.as_dict(), "link": dict(chain.links(log))[29].hex()})
    assert good.valid_under(KEY.public_key())
    assert not forged.valid_under(KEY.public_key())
    assert not verify_chain(log, [forged], KEY.public_key(), None).ok


def test_keys_round_trip_through_pem() -> None:
    key = chain.load_private(chain.private_pem(KEY))
    public = chain.load_public(chain.public_pem(KEY.public_key()))
    cp = chain.sign(key, 1, "ab" * 32, "2026-01-01T00:00:00+00:00", "on_demand")
    assert cp.valid_under(public)
    assert cp.key_id == chain.key_id(public)
    assert Checkpoint.from_dict(cp.as_dict()) == cp
    with pytest.raises(ValueError):
        chain.load_public(b"not a key")


def test_a_checkpoint_of_the_empty_chain_verifies_before_and_after_events_arrive() -> None:
    """Issue 13, defect 2: a fresh system signed `quarter:2026Q3` at sequence 0 (nothing stored
    yet), and verify called it "beyond the log's end" forever. Sequence 0 is the empty chain:
    its link is GENESIS, whatever is appended later."""
    empty = chain.sign(KEY, 0, chain.GENESIS_HEX, "2026-10-01T00:00:00+00:00", "quarter:2026Q3")
    assert verify_chain([], [empty], KEY.public_key(), None).ok
    log = synthetic(10)
    report = verify_chain(log, [empty, signed_at(log, 10)], KEY.public_key(), stored_links(log))
    assert report.ok and report.checkpoints == 2


def test_a_checkpoint_at_sequence_0_with_another_link_is_a_divergence() -> None:
    log = synthetic(10)
    forged = chain.sign(KEY, 0, "ab" * 32, "2026-10-01T00:00:00+00:00", "quarter:2026Q3")
    report = verify_chain(log, [forged], KEY.public_key(), None)
    assert report.divergence is not None and report.divergence.seq == 0
    assert "empty chain" in report.divergence.reason
