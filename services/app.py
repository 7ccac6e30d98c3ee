"""The intake as a faststream application (`jiedu intake`, or inside `jiedu up`).

faststream owns the connection, the lifecycle and the logging; the intake's partition workers
use the broker's JetStream connection, because they fetch by lease rather than by subscription.
"""

from __future__ import annotations

from faststream import FastStream
from faststream.nats import NatsBroker

from services import bootstrap, logs
from services.config import Settings
from services.eventlog import ensure_streams
from services.intake import IntakeService


def intake_app(settings: Settings) -> FastStream:
    logs.configure(settings.log_level)
    logger = logs.get("jiedu.faststream")
    broker = NatsBroker(bootstrap.nats_url(settings), logger=logger, max_reconnect_attempts=-1)
    app = FastStream(broker, logger=logger)
    service: dict[str, IntakeService] = {}

    @app.after_startup
    async def start() -> None:
        nc = broker.connection
        await ensure_streams(
            nc.jetstream(), partitions=settings.partitions, ack_wait_s=settings.ack_wait_s
        )
        service["intake"] = IntakeService(nc, bootstrap.organs(settings), settings)
        await service["intake"].start()

    @app.on_shutdown
    async def stop() -> None:
        if "intake" in service:
            await service["intake"].stop()

    return app
