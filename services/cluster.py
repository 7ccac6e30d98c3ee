"""The cluster layout (deploy/cluster/) on one machine: three nats-server nodes on loopback,
the streams at three replicas, two intakes, two projector processes (one feeding PostgreSQL,
one standing by, by lease) and two deadline services, each in a process of its own.

`jiedu cluster up` runs it; the failover tests and `jiedu bench --cluster` use it to kill and
restart any node or process by name. Each process is what a machine of the deployment runs
(the systemd units), with the same settings (`jiedu.env`), so what survives here survives
there as far as one machine can show it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import orjson
from nats.js import JetStreamContext

from events import streams
from events.organs import Organs
from services import bootstrap
from services.adapters import logs
from services.adapters.cluster import LocalCluster, jetstream_ready
from services.adapters.config import Settings
from services.adapters.identities import Credentials
from services.adapters.lease import bucket_keys
from services.adapters.processes import tied_to_parent

log = logs.get("jiedu.cluster")

REPLICAS = 3
PROCESSES: dict[str, list[str]] = {
    "intake-a": ["-m", "services.cli", "intake"],
    "intake-b": ["-m", "services.cli", "intake"],
    "projector-a": ["-m", "services.projector", "--lease"],
    "projector-b": ["-m", "services.projector", "--lease"],
    "deadlines-a": ["-m", "services.deadlines"],
    "deadlines-b": ["-m", "services.deadlines"],
}
"""The services, two of each, as two machines of the deployment run them."""


class Layout:
    """The whole cluster layout under `settings.data_dir`: nodes in `nodes/`, each process's
    own data dir and log in `<name>/`. `settings.database_url` holds the read models."""

    def __init__(self, settings: Settings, credentials: Credentials, organs: Organs) -> None:
        self.cluster = LocalCluster(settings.data_dir / "nodes", credentials, organs)
        self.credentials = credentials
        self.settings = replace(
            settings, nats_url=self.cluster.url, replicas=REPLICAS,
            credentials_dir=credentials.directory,
        )
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.held_down: set[str] = set()
        """Processes stopped on purpose (a test's kill): not restarted until asked."""
        self.restarted: list[tuple[str, int | None]] = []
        """Processes that exited by themselves and were started again, with exit codes."""
        self._watch: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return self.cluster.url

    async def start(self, *, services: bool = True) -> Layout:
        """Start the nodes, wait for a leader, create the streams at R3 as the operator, then
        start every process (unless `services` is False: the nodes alone, for a benchmark)."""
        await asyncio.to_thread(self.cluster.start)
        await jetstream_ready(self.url, self.credentials)
        await bootstrap.create_streams(self.settings)
        if services:
            for name in PROCESSES:
                self.spawn(name)
            self._watch = asyncio.create_task(self._restart_exited(), name="cluster-watch")
        return self

    async def _restart_exited(self) -> None:
        """What systemd's `Restart=always` (deploy/cluster/systemd) does for each machine: a
        process that exits by itself (it could not start while a node was lost, say) is
        started again after a pause."""
        while True:
            await asyncio.sleep(1.0)
            for name, process in list(self.processes.items()):
                code = process.poll()
                if code is not None and name not in self.held_down:
                    log.warning("process exited: started again", process=name, exit_code=code)
                    self.restarted.append((name, code))
                    self.spawn(name)

    def environment(self, name: str) -> dict[str, str]:
        """What a machine's `jiedu.env` says, for the process `name`."""
        s = self.settings
        env = {
            **os.environ,
            "NATS_URL": self.url,
            "JIEDU_CREDENTIALS": str(self.credentials.directory),
            "JIEDU_DATA_DIR": str(s.data_dir / name),
            "JIEDU_REPLICAS": str(s.replicas),
            "JIEDU_PARTITIONS": str(s.partitions),
            "JIEDU_LEASE_TTL": str(s.lease_ttl_s),
            "JIEDU_ACK_WAIT": str(s.ack_wait_s),
            "JIEDU_WAIT_FOR_CASE": ",".join(map(str, s.wait_for_case_s)),
            "JIEDU_LOG_LEVEL": s.log_level,
        }
        env.pop("DATABASE_URL", None)
        if s.database_url and name.startswith("projector"):
            env["DATABASE_URL"] = s.database_url  # the deadline services keep their own clocks
        return env

    def spawn(self, name: str) -> subprocess.Popen[bytes]:
        """Start (or restart) the process `name`; its output goes to `<name>/process.log`.
        Called on the main thread: the process is tied to this one's life."""
        directory = self.settings.data_dir / name
        directory.mkdir(parents=True, exist_ok=True)
        with (directory / "process.log").open("ab") as out:
            process = subprocess.Popen(
                [sys.executable, *PROCESSES[name]], env=self.environment(name),
                stdout=out, stderr=subprocess.STDOUT, preexec_fn=tied_to_parent(),
            )
        self.processes[name] = process
        return process

    async def kill(self, name: str) -> None:
        """`kill -9` a process or a node (`n1`, `n2`, `n3`)."""
        if name in self.cluster.nodes:
            await asyncio.to_thread(self.cluster.kill, name)
            return
        self.held_down.add(name)
        process = self.processes[name]
        process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(process.wait)

    async def terminate(self, name: str) -> None:
        """Stop a process or a node gracefully (SIGTERM; a node enters lame-duck mode first
        and its clients move to the others), as a rolling restart does."""
        if name in self.cluster.nodes:
            await asyncio.to_thread(self.cluster.nodes[name].stop)
            return
        self.held_down.add(name)
        process = self.processes[name]
        process.terminate()
        await asyncio.to_thread(process.wait, 30)

    async def restart(self, name: str) -> None:
        if name in self.cluster.nodes:
            await asyncio.to_thread(self.cluster.restart, name)
        else:
            self.held_down.discard(name)
            self.spawn(name)

    async def stop(self) -> None:
        """Stop every process gracefully (SIGTERM), then the nodes."""
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        self.held_down.update(self.processes)
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for name, process in self.processes.items():
            try:
                await asyncio.to_thread(process.wait, 30)
            except subprocess.TimeoutExpired:
                log.error("process did not stop in time: killed", process=name)
                process.kill()
                await asyncio.to_thread(process.wait)
        await asyncio.to_thread(self.cluster.stop)

    def pid_of(self, instance: str) -> str | None:
        """The process whose lease owner name (`<host>-<pid>`) is `instance`."""
        pid = instance.rpartition("-")[2]
        return next((n for n, p in self.processes.items() if str(p.pid) == pid), None)


async def leader(js: JetStreamContext, stream: str) -> str | None:
    """The node that leads `stream` now (None while it has no leader)."""
    with contextlib.suppress(Exception):
        info = await js.stream_info(stream)
        return info.cluster.leader if info.cluster else None
    return None


async def lease_owners(js: JetStreamContext, bucket: str) -> dict[str, str]:
    """Key → owner instance of a lease bucket (intake partitions, projector stores)."""
    kv = await js.key_value(bucket)
    owners: dict[str, str] = {}
    for key in await bucket_keys(js, bucket):
        with contextlib.suppress(Exception):  # deleted, or not a lease's value
            entry = await kv.get(key)
            if entry.value:
                owners[key] = str(orjson.loads(entry.value)["owner"])
    return owners


ALL_STREAMS = (
    streams.EVENTS, streams.REJECTED, streams.CHECKPOINTS, streams.INTAKE,
    f"KV_{streams.OUTCOMES_BUCKET}", f"KV_{streams.LEASES_BUCKET}",
    f"KV_{streams.PROJECTOR_LEASES_BUCKET}",
)


async def all_current(js: JetStreamContext) -> bool:
    """Every stream and bucket has a leader and every replica is current: a node restarted
    has caught up, so the next may go without the cluster losing its majority anywhere."""
    for name in ALL_STREAMS:
        try:
            info = await js.stream_info(name)
        except Exception:
            return False
        cluster = info.cluster
        if cluster is None or not cluster.leader:
            return False
        replicas = cluster.replicas or []
        if len(replicas) != REPLICAS - 1 or not all(r.current and not r.offline for r in replicas):
            return False
    return True


async def events_head(js: JetStreamContext) -> int | None:
    """EVENTS' last sequence, or None while the stream cannot answer (no leader yet)."""
    try:
        return int((await js.stream_info(streams.EVENTS)).state.last_seq)
    except Exception:
        return None


async def next_accepted(js: JetStreamContext, after: int, timeout_s: float = 60.0) -> float:
    """Seconds until EVENTS holds an event past sequence `after`: after killing its leader,
    how long the log took to accept again (election, clients reconnecting, the intake's next
    append)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while loop.time() - started < timeout_s:
        head = await events_head(js)
        if head is not None and head > after:
            return loop.time() - started
        await asyncio.sleep(0.02)
    raise TimeoutError(f"EVENTS accepted nothing past {after} within {timeout_s} s")


def layout_for(data_dir: Path, database_url: str | None, **overrides: object) -> Layout:
    """The layout `jiedu cluster up` runs: credentials in `<data_dir>/creds`, the partitions
    one per intake."""
    settings = Settings.from_env(data_dir=data_dir, database_url=database_url, **overrides)
    if "partitions" not in overrides and "JIEDU_PARTITIONS" not in os.environ:
        settings = replace(settings, partitions=2)
    return Layout(settings, Credentials(settings.credentials), bootstrap.organs(settings))
