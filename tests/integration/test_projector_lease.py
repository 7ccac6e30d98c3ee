"""Issue 18: the projector lease — one of several projector processes feeds a store, the
others stand by; only the projector (and the operator) may write that lease."""

from __future__ import annotations

import asyncio

import pytest
from nats.aio.client import Client
from nats.js.errors import KeyNotFoundError
from test_permissions import Connect, as_party, count, refused_publish, refused_request

from events import streams
from services import bootstrap
from services.adapters import permissions
from services.adapters.config import Settings
from services.adapters.lease import Lease, bucket_keys

__all__ = ["as_party"]  # the fixture, used by name


async def test_one_holder_at_a_time_and_a_standby_takes_over_once_it_expires_or_is_released(
    nc: Client, settings: Settings
) -> None:
    projector = await bootstrap.connect(str(settings.nats_url), "jiedu-projector")
    try:
        kv = await projector.jetstream().key_value(streams.PROJECTOR_LEASES_BUCKET)
        first, second = (Lease(kv, "store.x", owner, ttl_s=0.6) for owner in ("a", "b"))
        assert await first.try_take() and first.held
        assert not await second.try_take()
        assert await first.renew()
        await first.release()
        assert await second.try_take(), "a released lease is taken at once"
        assert not await first.try_take()
        await asyncio.sleep(0.8)  # the holder stops renewing: the lease expires
        assert not second.held
        assert await first.try_take(), "an expired lease is taken over"
        assert not await second.renew(), "the old holder learns it lost the lease"
        assert second.revision is None
    finally:
        await projector.close()


async def test_the_intake_lists_its_leases_in_one_bounded_request(
    nc: Client, settings: Settings
) -> None:
    """`bucket_keys` replaced nats-py's `KeyValue.keys()`, whose watcher can wait for ever
    when a node goes, in the intake's lease loop: it names every key, deleted ones included
    (their `get` finds nothing), an empty bucket is no error, and the intake's narrow
    permissions allow it."""
    intake = await bootstrap.connect(str(settings.nats_url), "jiedu-intake")
    try:
        js = intake.jetstream(timeout=2)
        bucket = streams.LEASES_BUCKET
        assert await bucket_keys(js, bucket) == []
        kv = await js.key_value(bucket)
        for key in ("instance.a", "partition.0", "partition.1"):
            await kv.put(key, b'{"owner": "a", "until": 0}')
        await kv.put("partition.0", b'{"owner": "b", "until": 0}')  # two revisions, one key
        await kv.delete("partition.1")
        assert await bucket_keys(js, bucket) == ["instance.a", "partition.0", "partition.1"]
        with pytest.raises(KeyNotFoundError):
            await kv.get("partition.1")
    finally:
        await intake.close()


@pytest.mark.parametrize(
    "party",
    [permissions.INTAKE, permissions.DEADLINES, permissions.AUDITOR, permissions.MONITOR_PARTY,
     "finance"],
)
async def test_only_the_projector_writes_the_projector_leases(
    nc: Client, as_party: Connect, party: str
) -> None:
    """A put into the projector leases would stop the feeding projector."""
    bucket = streams.PROJECTOR_LEASES_BUCKET
    intruder = await as_party(party)
    await refused_publish(intruder, f"$KV.{bucket}.store.x", b'{"owner": "me"}')
    await refused_request(intruder, f"$JS.API.STREAM.PURGE.KV_{bucket}")
    assert await count(nc, f"KV_{bucket}") == 0


async def test_the_projector_may_not_write_the_intakes_leases(
    nc: Client, as_party: Connect
) -> None:
    projector = await as_party(permissions.PROJECTOR)
    await refused_publish(projector, f"$KV.{streams.LEASES_BUCKET}.partition.0", b"{}")
    assert await count(nc, f"KV_{streams.LEASES_BUCKET}") == 0
