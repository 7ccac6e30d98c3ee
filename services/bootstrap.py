"""The composition root: reads settings, starts or finds the NATS server, wires the services.

Entry points (the CLI, the faststream apps, the tests) get their parts from here and nowhere else.
"""

from __future__ import annotations

import asyncio
import fcntl
import gc
import os
import signal
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext

from events.organs import Organs, load_organs
from events.roles import MONITOR
from services.adapters import identities, permissions
from services.adapters.config import Settings
from services.adapters.eventlog import EventLog, check_streams, ensure_streams
from services.adapters.identities import Credentials
from services.adapters.natsserver import NatsServer, reload_server
from services.adapters.processes import stop_pid

URL_FILE = "nats.url"
UP_LOCK = "up.lock"
"""Held by the one `jiedu up` that runs on a data dir; names its process ID."""

GC_THRESHOLDS = (50_000, 20, 20)
"""Young-generation allocations between collections, and the CPython defaults' ratios above
it, made rarer: see `tune_gc`."""


def tune_gc() -> None:
    """Take what start-up built (modules, pydantic schemas, the calendar, the organs) out of the
    cyclic garbage collector's sight, and let it run less often.

    Every event the services handle allocates a few dozen short-lived objects without cycles
    (the decoded event, rows, outcomes), which reference counting frees. With CPython's
    defaults the collector runs every 700 allocations and its older generations walk every
    long-lived object again; `jiedu bench`'s rebuild spent a third of its time there. Call once,
    from an entry point, after the imports."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def server_for(settings: Settings) -> NatsServer:
    return NatsServer(
        settings.data_dir / "nats",
        settings.nats_port,
        credentials=Credentials(settings.credentials),
        organs=organs(settings),
    )


def reload_authorization(settings: Settings) -> Path:
    """Rewrite the authorisation from the credentials as they are now, and have the embedded
    server of the data dir (if it runs) apply it without a restart. Returns the file: with an
    existing server (NATS_URL) the operator installs it there and reloads that server."""
    written = Credentials(settings.credentials).write_authorization(organs(settings))
    if not settings.nats_url:
        reload_server(server_for(settings).pid_file)
    return written


def nats_url(settings: Settings) -> str:
    """NATS_URL if set; else the URL `jiedu up` recorded in the data dir; else the default port."""
    if settings.nats_url:
        return settings.nats_url
    recorded = settings.data_dir / URL_FILE
    if recorded.exists():
        return recorded.read_text().strip()
    return server_for(settings).url


def record_url(data_dir: Path, url: str) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / URL_FILE).write_text(url + "\n")


def organs(settings: Settings) -> Organs:
    return load_organs(settings.organs_file)


def listening(url: str) -> bool:
    """Whether something accepts connections at a nats:// URL."""
    host, _, port = url.removeprefix("nats://").rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=0.5).close()
    except (OSError, ValueError):
        return False
    return True


PARTY_OF_CONNECTION: dict[str, str] = {
    "jiedu-intake": permissions.INTAKE,
    "jiedu-demo": permissions.INTAKE,
    "jiedu-deadlines": permissions.DEADLINES,
    "jiedu-privacy": permissions.PRIVACY,
    "jiedu-matcher": permissions.MATCHER,
    "jiedu-projector": permissions.PROJECTOR,
    "jiedu-rebuild": permissions.PROJECTOR,
    "jiedu-audit-checkpoint": permissions.OPERATOR,
    "jiedu-operator": permissions.OPERATOR,
    "jiedu-api": permissions.API_PARTY,
}
"""Whom each of Jiedu's services' connections speaks for, by the connection's name. Any other
connection names its party itself (`connect(..., party=...)`): the read-only commands (`jiedu
tail`, `status`, `lag`, `audit verify`, `replay`, `report`) say `permissions.AUDITOR`, the
sources their organ."""


class UnknownConnection(ValueError):
    """A connection name that speaks for no party, given without one: a slip in the code, never
    a reason to connect as someone (an identity is chosen, not defaulted)."""


def party_of(name: str) -> str:
    """The party the connection `name` speaks for; an unknown name is an error naming them."""
    try:
        return PARTY_OF_CONNECTION[name]
    except KeyError:
        raise UnknownConnection(
            f"connection {name!r} speaks for no party: pass party= one of "
            f"{', '.join(permissions.SERVICES)} or an organ's code, or use one of the names "
            f"{', '.join(PARTY_OF_CONNECTION)}"
        ) from None


def credentials_for(url: str) -> Path:
    """The credentials of the server at `url`: those this process started or found it with,
    else the configured ones (`JIEDU_CREDENTIALS`, or `<JIEDU_DATA_DIR>/creds`)."""
    return identities.registered(url) or Settings.from_env().credentials


async def connect(
    url: str, name: str, *, party: str | None = None, credentials: Path | None = None
) -> Client:
    """A connection as `party` (by default the party its `name` speaks for, see
    `PARTY_OF_CONNECTION`; `UnknownConnection` if it speaks for none) that rides out server
    restarts; the first connect fails fast. `url` may name several servers, comma-separated (a
    cluster's nodes, as NATS tools take NATS_URL): it connects to one and moves to another when
    that one goes."""
    return await nats.connect(
        servers(url), name=name, connect_timeout=5, allow_reconnect=True,
        max_reconnect_attempts=-1, reconnect_time_wait=0.5,
        **identity(url, name, party=party, credentials=credentials),
    )


def servers(url: str) -> list[str]:
    """The server URLs of a NATS_URL: one, or a cluster's nodes separated by commas."""
    return [u.strip() for u in url.split(",") if u.strip()]


def identity(
    url: str, name: str, *, party: str | None = None, credentials: Path | None = None
) -> dict[str, str]:
    """The options of nats-py's `connect` that make a connection speak as `party` (by default
    the party its `name` speaks for)."""
    party = party or party_of(name)  # before anything else: an unknown name is a slip
    return Credentials(credentials or credentials_for(url)).connect_options(party)


async def create_streams(settings: Settings) -> None:
    """Create the streams, buckets and intake consumers if missing, as the operator (the only
    party that may), then check that the log cannot shrink."""
    nc = await connect(
        nats_url(settings), "jiedu-operator", credentials=settings.credentials
    )
    try:
        await ensure_streams(
            nc.jetstream(), partitions=settings.partitions, ack_wait_s=settings.ack_wait_s,
            replicas=settings.replicas,
        )
        await check_streams(nc.jetstream(), replicas=settings.replicas)
    finally:
        await nc.drain()


@contextmanager
def serving(settings: Settings) -> Iterator[Settings]:
    """Settings naming a NATS server that runs: NATS_URL, or the one `jiedu up` runs for this
    data dir, or Jiedu's own nats-server started on the data dir for as long as the command
    runs (so `jiedu tail --data-dir DIR` reads what `jiedu demo --data-dir DIR` left)."""
    if settings.nats_url:
        identities.register(settings.nats_url, settings.credentials)
        yield settings
        return
    url = nats_url(settings)
    if listening(url):
        identities.register(url, settings.credentials)
        yield replace(settings, nats_url=url)
        return
    server = server_for(settings).start()
    record_url(settings.data_dir, server.url)
    try:
        yield replace(settings, nats_url=server.url)
    finally:
        server.stop()


class DataDirBusy(RuntimeError):
    """Another `jiedu up` runs on the data dir, or another program holds its port."""


@dataclass(frozen=True)
class Owned:
    """What `owning` gives `jiedu up`: settings naming the server, and the process ID of a
    server it adopted (None: it started its own, or NATS_URL names one it does not own)."""

    settings: Settings
    adopted: int | None = None


@contextmanager
def _up_lock(data_dir: Path) -> Iterator[None]:
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / UP_LOCK).open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "?"
            raise DataDirBusy(
                f"another `jiedu up` (process {holder}) runs on {data_dir}; stop it first"
            ) from None
        lock.truncate(0)
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        yield  # the lock goes with the file, when this process ends however it ends


@contextmanager
def owning(settings: Settings) -> Iterator[Owned]:
    """For `jiedu up`: the data dir's nats-server for as long as this process runs, and no
    other `jiedu up` on the same data dir.

    Its own server is tied to this process's life (`NatsServer`). A server found running on
    the data dir's store (a `jiedu up` of an older version killed with `kill -9`, say) is
    adopted, not silently reused: `Owned.adopted` names it, and it is stopped with this
    process like its own. NATS_URL names a server someone else runs: used as it is."""
    if settings.nats_url:
        yield Owned(settings)
        return
    with _up_lock(settings.data_dir):
        server = server_for(settings)
        url = nats_url(settings)
        pid = server.running_pid()
        if pid is not None and listening(url):
            try:
                yield Owned(replace(settings, nats_url=url), adopted=pid)
            finally:
                stop_pid(pid)
            return
        if listening(server.url):
            raise DataDirBusy(
                f"another program listens on port {server.port}: choose a free one with "
                "JIEDU_NATS_PORT"
            )
        server.start()
        record_url(settings.data_dir, server.url)
        try:
            yield Owned(replace(settings, nats_url=server.url))
        finally:
            server.stop()


@dataclass
class Parts:
    nc: Client
    log: EventLog


@asynccontextmanager
async def parts(
    settings: Settings, name: str, *, party: str | None = None, ensure: bool = False
) -> AsyncIterator[Parts]:
    """A connection as `party` (by default the party `name` speaks for), on a log checked not
    to shrink (a missing stream is refused, named); `ensure` first creates what is missing, as
    the operator."""
    if ensure:
        await create_streams(settings)
    nc = await connect(nats_url(settings), name, party=party, credentials=settings.credentials)
    try:
        await check_streams(nc.jetstream(), replicas=settings.replicas)
        yield Parts(nc, EventLog(nc))
    finally:
        await nc.drain()


class Sources:
    """Connections as upstream systems, one per party, opened as they are first needed: how
    the demo and `jiedu emit` publish, each message as the source its subject names."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.connections: dict[str, tuple[Client, JetStreamContext]] = {}

    @staticmethod
    def party(department: str, system: str) -> str:
        return permissions.MONITOR_PARTY if (department, system) == MONITOR else department

    async def connection(self, department: str, system: str) -> tuple[Client, JetStreamContext]:
        """The connection of the source that publishes as `department`/`system`, and its
        JetStream context."""
        party = self.party(department, system)
        if party not in self.connections:
            nc = await connect(
                nats_url(self.settings), f"jiedu-source-{party}", party=party,
                credentials=self.settings.credentials,
            )
            self.connections[party] = (nc, nc.jetstream())
        return self.connections[party]

    async def close(self) -> None:
        for nc, _ in self.connections.values():
            await nc.drain()
        self.connections.clear()


async def until_signalled(*, parent: int | None = None) -> None:
    """Return on SIGTERM or SIGINT: how a service process waits for its end. With `parent`
    (a process ID), also once that process has gone: a child of `jiedu up` does not outlive
    it, even if it was killed without a chance to stop its children."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with suppress(NotImplementedError):
            loop.add_signal_handler(sig, stopping.set)
    while not stopping.is_set():
        with suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), 1.0)
        if parent is not None and os.getppid() != parent:
            return
