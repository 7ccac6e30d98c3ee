"""Child processes that live and die with their parent, and processes known by their ID."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from services.adapters import logs

PR_SET_PDEATHSIG = 1
"""prctl(2) option: the signal a process gets when the thread that started it ends."""


def tied_to_parent() -> Callable[[], None] | None:
    """A `preexec_fn` that has the kernel send the child SIGTERM when its parent dies, however
    it dies (`kill -9` included): a child of `jiedu up` (its nats-server, its projector
    process) must not outlive it unnoticed. Linux only, and only from the main thread, whose
    end is the process's (the signal follows the starting thread, not the process)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork
    parent = os.getpid()

    def tie() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the tie was made
            os.kill(os.getpid(), signal.SIGTERM)

    return tie


def alive(pid: int) -> bool:
    """Whether a process runs (a zombie, dead but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):  # Linux: the state after "(command) "
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] not in ("Z", "X")
    return True


def stop_pid(pid: int, timeout_s: float = 10.0) -> None:
    """Stop a process this one did not start (a server it adopted): SIGTERM, then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


class ChildProcess:
    """`python -m MODULE ARGS…` as a child of this process: restarted with backoff if it dies,
    stopped gracefully by `stop` (SIGTERM, then SIGKILL after `stop_timeout_s`), and gone with
    its parent however that ends (`tied_to_parent`, and the child's own watch of `--parent`,
    which this adds to its arguments). `jiedu up` runs its projector and its HTTP API so, each
    with a core and a GIL of its own."""

    def __init__(
        self, name: str, module: str, args: Sequence[str], env: Mapping[str, str], *,
        stop_timeout_s: float = 30.0,
    ) -> None:
        self.name, self.module, self.args, self.env = name, module, tuple(args), dict(env)
        self.stop_timeout_s = stop_timeout_s
        self.process: asyncio.subprocess.Process | None = None
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.log = logs.get(f"jiedu.{name}")

    async def _spawn(self) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", self.module, *self.args, "--parent", str(os.getpid()),
            env=self.env,
            preexec_fn=tied_to_parent(),  # also while it starts, before it watches `--parent`
            process_group=0,  # a terminal's Ctrl-C reaches the parent, which stops it in turn
        )

    async def start(self) -> None:
        self._stopping.clear()
        self.process = await self._spawn()
        self._task = asyncio.create_task(self._supervise(), name=f"{self.name}-process")

    async def _supervise(self) -> None:
        delay = 0.5
        while True:
            assert self.process is not None
            code = await self.process.wait()
            if self._stopping.is_set():
                return
            self.log.error(f"{self.name} process exited, restarting", exit_code=code, delay_s=delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            if self._stopping.is_set():
                return
            delay = min(delay * 2, 30.0)
            self.process = await self._spawn()

    async def stop(self) -> None:
        self._stopping.set()
        process = self.process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), self.stop_timeout_s)
            except TimeoutError:
                self.log.error(f"{self.name} process did not stop in time: killed")
                process.kill()
                await process.wait()
        if self._task is not None:
            await self._task
