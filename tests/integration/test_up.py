"""Defect 6 of issue 13: `jiedu up` and the nats-server it runs live and die together.

These start the real `jiedu up` (its own nats-server on a free port, the intake, the projector
process) and kill it the hard way.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from services.adapters.config import Settings
from services.adapters.natsserver import free_port, running_pid
from services.adapters.processes import alive
from services.bootstrap import listening, record_url, server_for

WAIT_S = 90.0
"""Bound for each wait: start-up on a loaded 2-core machine takes seconds, not minutes."""


def wait_for(what: str, done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {WAIT_S} s: {what}")
        time.sleep(0.1)


@pytest.fixture
def up_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "DATABASE_URL")}
    return {**env, "JIEDU_NATS_PORT": str(free_port()), "JIEDU_LOG_LEVEL": "warning",
            "JIEDU_HTTP": f"127.0.0.1:{free_port()}"}


@pytest.fixture
def start_up(up_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Starts `jiedu up --data-dir DIR [ARGS]` in a process group of its own (as a terminal
    would: Ctrl-C reaches the whole group), its standard error in DIR/up-<n>.err; ends what is
    left at the end of the test."""
    started: list[subprocess.Popen[bytes]] = []

    def start(data_dir: Path, *args: str) -> subprocess.Popen[bytes]:
        data_dir.mkdir(parents=True, exist_ok=True)
        err = (data_dir / f"up-{len(started)}.err").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "up", "--data-dir", str(data_dir), *args],
            env=up_env, stdout=subprocess.DEVNULL, stderr=err, process_group=0,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
            process.wait(30)


def server_pid(data_dir: Path) -> int | None:
    return running_pid(data_dir / "nats")


def projector_pids(parent: int, module: str = "services.projector") -> list[int]:
    """The `python -m <module>` children of a process (the projector's by default)."""
    out = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(parent)],
                         capture_output=True, text=True, check=False).stdout
    return [int(line.split()[0]) for line in out.splitlines() if f"-m {module}" in line]


def test_kill_9_of_jiedu_up_takes_its_nats_server_projector_and_api_along(
    start_up: Callable[..., subprocess.Popen[bytes]], tmp_path: Path, up_env: dict[str, str]
) -> None:
    up = start_up(tmp_path / "data")
    url = f"nats://127.0.0.1:{up_env['JIEDU_NATS_PORT']}"
    http = f"nats://{up_env['JIEDU_HTTP']}"  # `listening` reads host:port from any such URL
    wait_for("jiedu up runs its server", lambda: server_pid(tmp_path / "data") is not None
             and listening(url))
    wait_for("jiedu up runs its projector", lambda: bool(projector_pids(up.pid)))
    wait_for("jiedu up serves its HTTP API", lambda: listening(http))
    server, projectors = server_pid(tmp_path / "data"), projector_pids(up.pid)
    apis = projector_pids(up.pid, "services.api")
    assert server is not None and alive(server) and apis

    os.kill(up.pid, signal.SIGKILL)
    up.wait(10)

    wait_for("the nats-server ends with its parent", lambda: not alive(server))
    wait_for("the projector ends with its parent", lambda: not any(map(alive, projectors)))
    wait_for("the HTTP API ends with its parent", lambda: not any(map(alive, apis)))
    assert not listening(url) and not listening(http)


def test_jiedu_up_adopts_a_server_left_on_its_data_dir_says_so_and_stops_it(
    start_up: Callable[..., subprocess.Popen[bytes]], tmp_path: Path, up_env: dict[str, str]
) -> None:
    data = tmp_path / "data"
    as_up = Settings(data_dir=data, nats_port=int(up_env["JIEDU_NATS_PORT"]))
    left = server_for(as_up).start()  # as if orphaned
    record_url(data, left.url)
    assert left.process is not None

    up = start_up(data)
    said = data / "up-0.err"
    wait_for("jiedu up says it adopted the server", lambda: b"adopted" in said.read_bytes())
    line = next(x for x in said.read_text().splitlines() if "adopted" in x)
    assert f"process {left.process.pid}" in line and left.url in line

    second = start_up(data)  # a second `jiedu up` on the same data dir is refused
    assert second.wait(WAIT_S) == 2
    assert b"another `jiedu up`" in (data / "up-1.err").read_bytes()
    assert up.poll() is None and left.process.poll() is None

    up.send_signal(signal.SIGTERM)
    assert up.wait(WAIT_S) == 0
    assert left.process.wait(WAIT_S) is not None  # the adopted server stopped with it


def test_ctrl_c_while_the_demo_loads_stops_jiedu_up_cleanly(
    start_up: Callable[..., subprocess.Popen[bytes]], tmp_path: Path, up_env: dict[str, str]
) -> None:
    """Ctrl-C during `jiedu up --demo`'s load once closed the read store under the load, which
    went on reading it: a traceback and exit status 1 (and, once, a segmentation fault). The
    load is stopped first; then everything stops, with status 0."""
    data = tmp_path / "data"
    up = start_up(data, "--demo")
    http = f"nats://{up_env['JIEDU_HTTP']}"
    wait_for("jiedu up serves its HTTP API", lambda: listening(http))
    time.sleep(2.0)  # the demo's load takes tens of seconds: it is under way
    os.killpg(up.pid, signal.SIGINT)  # what a terminal does on Ctrl-C

    assert up.wait(WAIT_S) == 0, (data / "up-0.err").read_text()[-3000:]
    err = (data / "up-0.err").read_text()
    assert "Traceback" not in err and "Error" not in err, err[-3000:]
    assert "demo load interrupted" in (data / "logs" / "jiedu.log").read_text()
