"""What the services that write derived events share: the deadline service (期限服务, clocks'
events) and the matching service (问答库匹配, ConsultationMatched).

Each reads projections it may run itself, and runs one loop that appends events the log
implies, under each case's optimistic lock. This module holds their common lifecycle (start the
projections and wait until they feed their live generation, then the loop; stop the loop, then
the projections) and their common entry point (`serve`), so that the two differ only in what
their loop decides.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from nats.aio.client import Client

from projections.base import Projection
from services import bootstrap
from services.adapters.config import Settings
from services.adapters.eventlog import EventLog, check_streams
from services.adapters.readmodels import ReadStore
from services.projector import ProjectorService, store_for


class DerivingService:
    """A loop that appends derived events, beside the projections it reads. Subclasses give
    the loop (`_run`, which ends soon after `_stop` is set) and its task's name."""

    task_name = "deriving"

    def __init__(
        self, nc: Client, store: ReadStore, projections: Sequence[Projection], *,
        run_projection: bool = True,
    ) -> None:
        """``run_projection=False``: another runner in the process (or the projector process)
        keeps `projections` in the same store; this service only reads them."""
        self.js = nc.jetstream()
        self.log = EventLog(nc)
        self.store = store
        self.projectors = ProjectorService(self.js, store, projections) if run_projection else None
        self.appended: list[str] = []
        """IDs of the events this instance appended (for tests and logs)."""
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self, ready_timeout: float = 60.0) -> None:
        """Check that the log cannot shrink (refusing to run if it can), start the projections
        (waiting until they feed their live generation), then the loop."""
        await check_streams(self.js)
        self._stop.clear()
        if self.projectors is not None:
            await self.projectors.start()
            await self.projectors.ready(ready_timeout)
        self._task = asyncio.create_task(self._run(), name=self.task_name)

    async def stop(self) -> None:
        """Finish the pass in hand, then stop the loop and the projections."""
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self.projectors is not None:
            await self.projectors.stop()

    async def _run(self) -> None:
        raise NotImplementedError


async def serve(
    settings: Settings, name: str, make: Callable[[Client, ReadStore], DerivingService]
) -> None:
    """Run the service `make` builds (with its own projection runner and store) until SIGTERM
    or Ctrl-C, on a connection named `name`."""
    store = await asyncio.to_thread(store_for, settings)
    try:
        async with bootstrap.parts(settings, name) as parts:
            service = make(parts.nc, store)
            await service.start()
            await bootstrap.until_signalled()
            await service.stop()
    finally:
        await asyncio.to_thread(store.close)
