"""The API served by uvicorn: in this process (`serve`, for `jiedu api`), or in a process of its
own beside the intake (`ApiProcess`, for `jiedu up`), so that HTTP requests and the intake do not
share one core and one GIL."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys

import uvicorn

from services import bootstrap
from services.adapters import logs
from services.adapters.config import Settings
from services.adapters.processes import tied_to_parent

log = logs.get("jiedu.api")

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8080


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


class ApiProcess:
    """`python -m services.api` as a child of `jiedu up`: restarted with backoff if it dies,
    stopped with SIGTERM, and gone with its parent however that ends."""

    def __init__(self, settings: Settings, nats_url: str, host: str, port: int) -> None:
        self.settings, self.nats_url, self.host, self.port = settings, nats_url, host, port
        self.process: asyncio.subprocess.Process | None = None
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def _environment(self) -> dict[str, str]:
        env = {
            **os.environ,
            "NATS_URL": self.nats_url,
            "JIEDU_DATA_DIR": str(self.settings.data_dir),
            "JIEDU_CREDENTIALS": str(self.settings.credentials),
            "JIEDU_LOG_LEVEL": self.settings.log_level,
        }
        env.pop("DATABASE_URL", None)
        if self.settings.database_url:
            env["DATABASE_URL"] = self.settings.database_url
        return env

    async def _spawn(self) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.api", "--host", self.host, "--port", str(self.port),
            "--parent", str(os.getpid()), env=self._environment(),
            preexec_fn=tied_to_parent(),
        )

    async def start(self) -> None:
        self._stopping.clear()
        self.process = await self._spawn()
        self._task = asyncio.create_task(self._supervise(), name="api-process")

    async def _supervise(self) -> None:
        delay = 0.5
        while True:
            assert self.process is not None
            code = await self.process.wait()
            if self._stopping.is_set():
                return
            log.error("api process exited, restarting", exit_code=code, delay_s=delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            if self._stopping.is_set():
                return
            delay = min(delay * 2, 30.0)
            self.process = await self._spawn()

    async def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        process = self.process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), timeout)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._task is not None:
            await self._task
