"""Issue 18: the projector lease — one of several projector processes feeds a store, the
others stand by; only the projector (and the operator) may write that lease."""

from __future__ import annotations

import asyncio

import pytest
from nats.aio.client import Client
from test_permissions import Connect, as_party, count, refused_publish, refused_request

from events import streams
from services import bootstrap
from services.adapters import permissions
from services.adapters.config import Settings
from services.adapters.lease import Lease

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
