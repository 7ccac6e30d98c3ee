"""Issue 20, the first minutes: what a newcomer sees when `jiedu up` starts.

On a terminal (a real pseudo-terminal), `jiedu up` prints its banner once it is ready and then
only warnings and errors, rendered for people; the full JSON logs go to rotated files under the
data dir, one per process, and to standard error as JSON when it is not a terminal or when
`--log-format json` asks. These start the real `jiedu up` on a free port and a temporary data dir.
"""

from __future__ import annotations

import os
import pty
import re
import signal
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import orjson
import pytest

from services.adapters import logs
from services.adapters.natsserver import free_port
from services.bootstrap import listening
from services.cli.screen import QUIET

WAIT_S = 90.0
"""Bound for each wait: start-up on a loaded 2-core machine takes seconds, not minutes."""
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def wait_for(what: str, done: Callable[[], bool], timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.1)


class Terminal:
    """A pseudo-terminal a process writes to, and everything it has written, as text."""

    def __init__(self) -> None:
        self.master, self.slave = pty.openpty()
        attrs = termios.tcgetattr(self.slave)
        attrs[1] &= ~termios.ONLCR  # keep the process's own line ends
        termios.tcsetattr(self.slave, termios.TCSANOW, attrs)
        self._chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: every writer has gone
                return
            if not chunk:
                return
            self._chunks.append(chunk)

    def text(self) -> str:
        return ANSI.sub("", b"".join(self._chunks).decode("utf-8", "replace")).replace("\r", "")

    def close(self) -> None:
        os.close(self.slave)
        self._reader.join(10)
        os.close(self.master)


@pytest.fixture
def up_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("NATS_URL", "DATABASE_URL", "JIEDU_CREDENTIALS", "JIEDU_LOG_FORMAT")}
    return {**env, "JIEDU_NATS_PORT": str(free_port()), "JIEDU_LOG_LEVEL": "info",
            "JIEDU_HTTP": f"127.0.0.1:{free_port()}", "COLUMNS": "120", "TERM": "xterm"}


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test started; those still running at its end are stopped."""
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.terminate()
            process.wait(30)


def jiedu_up(
    started: list[subprocess.Popen[bytes]], env: dict[str, str], data: Path, *args: str,
    stdout: int | IO[bytes], stderr: int | IO[bytes],
) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "up", "--data-dir", str(data), *args],
        env=env, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
    )
    started.append(process)
    return process


def projector_pids(parent: int) -> list[int]:
    """The `python -m services.projector` children of a process."""
    out = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(parent)],
                         capture_output=True, text=True, check=False).stdout
    return [int(line.split()[0]) for line in out.splitlines() if "services.projector" in line]


def kill_projector(up: subprocess.Popen[bytes]) -> None:
    """Make `jiedu up` log an error: its projector process dies (and is restarted)."""
    wait_for("jiedu up runs its projector", lambda: bool(projector_pids(up.pid)))
    for pid in projector_pids(up.pid):
        os.kill(pid, signal.SIGKILL)


def json_records(text: str) -> list[dict[str, Any]]:
    """Every line of `text` as a JSON log record (a line that is not one fails the test)."""
    records = [orjson.loads(line) for line in text.splitlines() if line.strip()]
    for record in records:
        assert {"event", "level", "timestamp", "logger"} <= set(record), record
    return records


def test_up_on_a_terminal_prints_its_banner_once_ready_then_only_warnings_and_errors(
    up_env: dict[str, str], started: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    data, port = tmp_path / "data", up_env["JIEDU_NATS_PORT"]
    terminal = Terminal()
    up = jiedu_up(started, up_env, data, stdout=terminal.slave, stderr=terminal.slave)
    wait_for("the banner", lambda: QUIET in terminal.text())
    assert listening(f"nats://{up_env['JIEDU_HTTP']}"), "the banner came before the HTTP API"
    wait_for("the intake's info records in its log file",
             lambda: b"partition acquired" in (data / "logs" / "jiedu.log").read_bytes())
    kill_projector(up)
    wait_for("the error, on the terminal", lambda: "projector process exited" in terminal.text())
    up.send_signal(signal.SIGINT)  # Ctrl-C
    assert up.wait(WAIT_S) == 0
    terminal.close()

    shown = terminal.text()
    banner, _, after = shown.partition(QUIET + "\n")
    lines = banner.splitlines()
    assert lines[0] == "Jiedu is running. Ctrl-C stops it."
    parts = {line.split("  ")[1].strip(): line for line in lines[1:] if line.startswith("  ")}
    assert f"nats://127.0.0.1:{port}" in parts["NATS"] and str(data / "nats") in parts["NATS"]
    assert {"intake", "projector", "deadline service", "identities", "logs"} <= set(parts)
    assert f"http://{up_env['JIEDU_HTTP']}/api/v1" in parts["HTTP API"]
    assert str(data / "creds") in parts["identities"]
    assert "jiedu keys init" in parts["checkpoints"]  # no office key yet: what to do
    assert "Try, in another terminal:" in lines
    assert f"jiedu status --data-dir {data}" in banner and f"jiedu cases --data-dir {data}" in banner
    assert shown.count("Jiedu is running") == 1

    said = [line for line in after.splitlines() if line.strip()]
    assert said, "the projector's death was not shown"
    assert all(not line.lstrip().startswith("{") for line in said), said  # no JSON for people
    assert all(re.search(r"\[(warning|error|critical) *\]", line) for line in said), said
    assert "partition acquired" not in shown  # an info record: in the file, not on the terminal

    logged = data / "logs"
    assert {p.name for p in logged.iterdir()} == {"jiedu.log", "jiedu-projector.log", "jiedu-api.log"}
    records = json_records((logged / "jiedu.log").read_text())
    assert {"partition acquired", "projector process exited, restarting"} <= {
        r["event"] for r in records}
    json_records((logged / "jiedu-projector.log").read_text())


@pytest.mark.parametrize("stderr_on", ["terminal, --log-format json", "file, auto"])
def test_up_writes_json_lines_on_standard_error_when_asked_or_not_on_a_terminal(
    stderr_on: str, up_env: dict[str, str], started: list[subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    out = (tmp_path / "stdout").open("wb")
    if stderr_on.startswith("terminal"):
        terminal: Terminal | None = Terminal()
        assert terminal is not None
        up = jiedu_up(started, up_env, data, "--log-format", "json", stdout=out,
                      stderr=terminal.slave)
        err: Callable[[], str] = terminal.text
    else:
        terminal = None
        err_file = tmp_path / "stderr"
        up = jiedu_up(started, up_env, data, stdout=out, stderr=err_file.open("wb"))

        def err() -> str:
            return err_file.read_text()

    wait_for("the banner", lambda: QUIET in (tmp_path / "stdout").read_text())
    wait_for("info records on standard error", lambda: "partition acquired" in err())
    kill_projector(up)
    wait_for("the error on standard error", lambda: "projector process exited" in err())
    up.send_signal(signal.SIGTERM)
    assert up.wait(WAIT_S) == 0
    if terminal is not None:
        terminal.close()

    records = json_records(err())  # every line
    levels = {r["level"] for r in records}
    assert {"info", "error"} <= levels
    loggers = {r["logger"] for r in records}
    assert {"jiedu.intake", "jiedu.projector"} <= loggers
    assert "Jiedu is running" in (tmp_path / "stdout").read_text()  # the banner on standard output


def test_log_files_rotate_at_their_size_keeping_the_backups_asked_for(tmp_path: Path) -> None:
    file = tmp_path / "logs" / "x.log"
    with open(os.devnull, "w") as nowhere:
        try:
            logs.configure("info", fmt="json", file=file, max_bytes=2_000, backups=2,
                           stream=nowhere)
            log = logs.get("jiedu.test")
            for n in range(200):
                log.info("record", n=n, text="政策解读" * 5)
        finally:
            logs.configure("warning", fmt="json")
    kept = sorted(p.name for p in file.parent.iterdir())
    assert kept == ["x.log", "x.log.1", "x.log.2"]
    numbers = []
    for name in ("x.log.2", "x.log.1", "x.log"):
        path = file.parent / name
        assert path.stat().st_size <= 2_000
        numbers.extend(r["n"] for r in json_records(path.read_text(encoding="utf-8")))
    assert numbers == list(range(numbers[0], 200))  # the newest, in order, none lost between files
    assert numbers[0] > 0  # older ones rotated away


def test_up_with_the_demo_on_a_terminal_shows_progress_then_the_demo_summary(
    up_env: dict[str, str], started: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    terminal = Terminal()
    up = jiedu_up(started, up_env, data, "--demo", stdout=terminal.slave, stderr=terminal.slave)
    wait_for("the demo's summary and the word it is quiet", lambda: QUIET in terminal.text(),
             timeout=300)
    up.send_signal(signal.SIGINT)
    assert up.wait(WAIT_S) == 0
    terminal.close()

    shown = terminal.text()
    banner, _, rest = shown.partition("messages published")
    assert "Jiedu is running" in banner and "Demo quarter" not in banner
    assert "messages decided" in rest and "events projected" in rest
    summary = rest[rest.index("Demo quarter 2026Q3 loaded:"):]
    lines = summary.splitlines()
    assert re.match(r"Demo quarter 2026Q3 loaded: [\d,]+ messages, [\d,]+ events in the log, "
                    r"[\d,]+ rejected\.$", lines[0])
    assert lines[1].startswith("  cases ")
    assert any(line.startswith("  findings ") for line in lines)
    assert "by rule: SCOPE-1" in summary and "PUB-2" in summary
    clocks = next(line for line in lines if line.startswith("  clocks "))
    assert "met on time" in clocks and "breached" in clocks
    assert f"Try: jiedu report quarterly 2026Q3 --out report-2026Q3 --data-dir {data}" in lines
    assert lines[-1] == QUIET
    assert "{" not in shown  # no JSON record reached the terminal


def test_demo_not_on_a_terminal_says_each_stage_in_a_plain_line_then_the_summary(
    up_env: dict[str, str], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "demo", "--data-dir", str(data)],
        env=up_env, capture_output=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    lines = done.stdout.decode().splitlines()
    assert re.fullmatch(r"published [\d,]+ messages", lines[0]), lines
    assert re.fullmatch(r"decided [\d,]+ messages", lines[1]), lines
    assert re.fullmatch(r"projected [\d,]+ events", lines[2]), lines
    assert lines[3].startswith("Demo quarter 2026Q3 loaded: ")
    assert lines[-1] == f"Try: jiedu report quarterly 2026Q3 --out report-2026Q3 --data-dir {data}"
    assert "━" not in done.stdout.decode()  # no progress bar in a file
    json_records(done.stderr.decode())  # the logs: JSON, standard error not being a terminal
    assert {p.name for p in (data / "logs").iterdir()} == {"demo.log", "demo-projector.log"}
