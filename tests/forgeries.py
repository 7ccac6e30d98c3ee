"""Forged logs for the audit tests: each takes the stored log and a sequence k and returns the
log as someone who rewrote history at k would leave it (verify must name k, or the first
sequence the forgery moved)."""

from __future__ import annotations

from collections.abc import Callable

from projections.base import Stored


def changed(log: list[Stored], k: int) -> list[Stored]:
    m = log[k - 1]
    return [*log[: k - 1], m._replace(data=m.data[:-1] + b" }"), *log[k:]]


def removed(log: list[Stored], k: int) -> list[Stored]:
    return [m for m in log if m.seq != k]


def swapped(log: list[Stored], k: int) -> list[Stored]:
    a, b = log[k - 1], log[k]
    return [*log[: k - 1], b, a, *log[k + 1 :]]


def inserted(log: list[Stored], k: int) -> list[Stored]:
    """A copy of event k-1's message slipped in at k, everything after renumbered."""
    forged = [*log[: k - 1], log[k - 2], *log[k - 1 :]]
    return [m._replace(seq=i) for i, m in enumerate(forged, start=1)]


def undecodable(log: list[Stored], k: int) -> list[Stored]:
    m = log[k - 1]
    return [*log[: k - 1], m._replace(data=b"not json"), *log[k:]]


FORGERIES: list[Callable[[list[Stored], int], list[Stored]]] = [
    changed, removed, swapped, inserted, undecodable,
]
