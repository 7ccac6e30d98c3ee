"""The log cannot shrink (issue 14): a service refuses to start on an EVENTS, REJECTED or
CHECKPOINTS that an operator's update has given a limit, a TTL, roll-ups or other subjects, or
that is gone, and names the difference."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from nats.aio.client import Client
from nats.js.api import DiscardPolicy, StreamConfig

from events import streams
from services import bootstrap
from services.adapters.config import Settings
from services.adapters.eventlog import LogShrinkable, check_streams
from services.adapters.readmodels import open_store
from services.deadlines import DeadlineService
from services.intake import IntakeService
from services.projector import ProjectorService


@pytest.fixture
async def operator(settings: Settings, nc: Client) -> AsyncIterator[Client]:
    """The operator's connection: the only identity that may change a stream."""
    client = await bootstrap.connect(str(settings.nats_url), "jiedu-operator")
    yield client
    await client.close()


async def change(operator: Client, config: StreamConfig, **changes: Any) -> None:
    await operator.jetstream().update_stream(replace(config, **changes))


async def refusals(settings: Settings, nc: Client) -> list[str]:
    """What each service says as it starts (each speaking as its own party)."""
    url = str(settings.nats_url)
    said: list[str] = []
    store = open_store(None, settings.data_dir)
    intake_nc = await bootstrap.connect(url, "jiedu-intake")
    deadlines_nc = await bootstrap.connect(url, "jiedu-deadlines")
    projector_nc = await bootstrap.connect(url, "jiedu-projector")
    try:
        for start in (
            IntakeService(intake_nc, bootstrap.organs(settings), settings).start,
            DeadlineService(deadlines_nc, store).start,
            ProjectorService(projector_nc.jetstream(), store).start,
        ):
            with pytest.raises(LogShrinkable) as refused:
                await start()
            said.append(str(refused.value))
        with pytest.raises(LogShrinkable) as refused:
            async with bootstrap.parts(settings, "jiedu-projector", ensure=False):
                pass
        said.append(str(refused.value))
    finally:
        for client in (intake_nc, deadlines_nc, projector_nc):
            await client.close()
        store.close()
    return said


async def test_the_locked_log_passes_the_check(nc: Client) -> None:
    await check_streams(nc.jetstream())


async def test_a_limit_on_events_stops_every_service_naming_it(
    settings: Settings, nc: Client, operator: Client
) -> None:
    await change(operator, streams.events_stream(), max_msgs=5, discard=DiscardPolicy.OLD)
    said = await refusals(settings, nc)
    assert len(said) == 4
    assert all("EVENTS: max_msgs is 5, expected -1" in s for s in said), said


@pytest.mark.parametrize(
    ("stream", "changes", "named"),
    [
        (streams.rejected_stream(), {"max_age": 3600.0}, "REJECTED: max_age is 3600.0"),
        (streams.checkpoints_stream(), {"max_bytes": 1 << 20}, "CHECKPOINTS: max_bytes is"),
        (streams.events_stream(), {"max_msgs_per_subject": 1}, "EVENTS: max_msgs_per_subject"),
        (streams.events_stream(), {"allow_msg_ttl": True}, "EVENTS: allow_msg_ttl is True"),
        (
            streams.events_stream(),
            {"subjects": [streams.ALL_EVENTS, "elsewhere.>"]},
            "EVENTS: subjects are",
        ),
    ],
)
async def test_an_update_that_lets_the_log_shrink_or_grow_otherwise_is_named(
    settings: Settings,
    nc: Client,
    operator: Client,
    stream: StreamConfig,
    changes: dict[str, Any],
    named: str,
) -> None:
    await change(operator, stream, **changes)
    with pytest.raises(LogShrinkable, match=named.replace(".", r"\.")):
        await check_streams(nc.jetstream())


async def test_a_deleted_checkpoints_stream_stops_the_services(
    settings: Settings, nc: Client, operator: Client
) -> None:
    await operator.jetstream().delete_stream(streams.CHECKPOINTS)
    said = await refusals(settings, nc)
    assert all("CHECKPOINTS: missing" in s for s in said), said


async def test_a_log_with_fewer_copies_than_the_replicas_setting_asks_is_refused(
    settings: Settings, nc: Client
) -> None:
    """Issue 18: with JIEDU_REPLICAS=3 a log kept on one node would die with it."""
    await check_streams(nc.jetstream(), replicas=1)
    with pytest.raises(LogShrinkable) as refused:
        await check_streams(nc.jetstream(), replicas=3)
    for name in (streams.EVENTS, streams.REJECTED, streams.CHECKPOINTS):
        assert f"{name}: num_replicas is 1, expected at least 3" in str(refused.value)
    with pytest.raises(LogShrinkable, match="num_replicas"):
        async with bootstrap.parts(replace(settings, replicas=3), "jiedu-projector"):
            pass
