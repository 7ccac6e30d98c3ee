"""The API served by uvicorn: in this process (`serve`, for `jiedu api`), or in a process of its
own beside the intake (`ApiProcess`, for `jiedu up`), so that HTTP requests and the intake do not
share one core and one GIL."""

from __future__ import annotations

import asyncio

import uvicorn

from services import bootstrap
from services.adapters import logs
from services.adapters.config import Settings
from services.adapters.processes import ChildProcess

log = logs.get("jiedu.api")

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8080

READY_WAIT_S = 60.0
"""How long `jiedu up` waits for its HTTP API to answer before it goes on without."""


def parse_address(text: str) -> tuple[str, int]:
    """`HOST:PORT` (or `:PORT`, or `PORT`) as a host and a port; ValueError for anything else."""
    host, _, port = text.rpartition(":")
    number = int(port)
    if not 0 < number < 65536:
        raise ValueError(f"port {number} is not 1–65535")
    return host.strip("[]") or DEFAULT_HOST, number


async def serve(
    settings: Settings, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *,
    parent: int | None = None,
) -> None:
    """Serve the API until SIGTERM or SIGINT (or until the process `parent` has gone)."""
    from services.api import create_app  # the app imports FastAPI: only where it is served

    config = uvicorn.Config(
        create_app(settings), host=host, port=port, log_config=None, access_log=False,
        lifespan="on", server_header=False, timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    if parent is None:
        await server.serve()
        return
    task = asyncio.create_task(server.serve())
    watch = asyncio.create_task(bootstrap.until_signalled(parent=parent))
    await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    await task
    watch.cancel()


class ApiProcess(ChildProcess):
    """`python -m services.api` as a child of `jiedu up`, logging to its own file `log_name`
    under the data dir (`services.adapters.logs`)."""

    def __init__(
        self, settings: Settings, nats_url: str, host: str, port: int, *,
        log_name: str = "api",
    ) -> None:
        super().__init__(
            "api", "services.api", ["--host", host, "--port", str(port), "--log-name", log_name],
            settings.child_environment(nats_url), stop_timeout_s=10.0,
        )
        self.host = "127.0.0.1" if host in ("", "0.0.0.0") else host
        self.port = port

    async def start(self) -> None:
        """Start the process and return once it accepts connections on its port, or after
        `READY_WAIT_S` (then with a warning; it may still come up): `jiedu up` shows the API's
        address as running only when requests to it are answered."""
        await super().start()
        address = f"nats://{self.host}:{self.port}"  # `listening` reads any such URL's host:port
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_WAIT_S
        while loop.time() < deadline:
            if await asyncio.to_thread(bootstrap.listening, address):
                return
            await asyncio.sleep(0.1)
        log.warning("the HTTP API is not answering yet", host=self.host, port=self.port)
