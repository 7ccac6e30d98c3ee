"""Closing a read store while other threads use it (a service's reader as `jiedu up` stops on
Ctrl-C): the close waits for the transactions in progress, and later ones are refused."""

from __future__ import annotations

import threading

import pytest

from pgtools import Stores
from services.adapters.readmodels import StoreClosed


def test_closing_waits_for_a_transaction_in_progress_then_refuses_new_ones(
    stores: Stores,
) -> None:
    store = stores()
    inside, release = threading.Event(), threading.Event()
    seen: list[object] = []

    def reader() -> None:
        with store.transaction(write=False) as tx:
            inside.set()
            release.wait(10)
            seen.append(tx.rows("SELECT 1")[0][0])  # the connection is still open

    thread = threading.Thread(target=reader)
    thread.start()
    assert inside.wait(10)
    closer = threading.Thread(target=store.close)
    closer.start()
    closer.join(0.3)
    assert closer.is_alive(), "the store closed under a transaction in progress"
    with pytest.raises(StoreClosed), store.transaction(write=False):
        pass
    release.set()
    thread.join(10)
    closer.join(10)
    assert not closer.is_alive()
    assert seen == [1]
    with pytest.raises(StoreClosed), store.transaction(write=True):
        pass
