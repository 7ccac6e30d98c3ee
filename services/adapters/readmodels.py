"""Read-model stores (读模型库): SQLite (embedded default) and PostgreSQL, one behaviour.

A store is an eventsourcing tracking recorder (`SQLiteTrackingRecorder`,
`PostgresTrackingRecorder`) extended with the read-model tables, so that rows and the log
position they reflect commit in one transaction: each event takes effect exactly once, across
crashes and redeliveries. Tracking is one row per store generation, strictly increasing.

Generations make rebuilds possible without downtime. Each projection's rows live in tables
suffixed with a generation number (`case_summary__g3`); `jiedu_live` names the generation that
serves, and a view with the table's plain name (`case_summary`) selects from it, so readers never
see a suffix. A rebuild fills a new generation from sequence 1 while the live one keeps serving
and being fed, then switches the pointer and the views in one transaction — only once the new
generation has reached the live one's position, so readers never step back in time.

    jiedu_generations(name, projection, number, version, state, created_at, changed_at)
        state: building → live → retired (tables dropped)
    jiedu_live(projection, generation)       the pointer
    tracking / jiedu_tracking(application_name = generation name, notification_id = position)

Writers of one generation are serialised (SQLite: BEGIN IMMEDIATE; PostgreSQL: the tracking row
is read FOR UPDATE), and every batch re-reads the position inside its transaction, so even two
runners feeding the same generation apply each event once.

Everything here is synchronous (sqlite3, psycopg): call it from a thread, never on an event loop.
"""

from __future__ import annotations

import base64
import functools
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from operator import itemgetter
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
from eventsourcing.persistence import Tracking
from eventsourcing.sqlite import SQLiteCursor, SQLiteDatastore, SQLiteTrackingRecorder

from projections.base import Dialect, Key, Projection, Row, Table, Type

try:
    from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
    from psycopg import Connection as PgConnection
    from psycopg import Cursor as PgCursor
    from psycopg.conninfo import conninfo_to_dict
    from psycopg.rows import DictRow, TupleRow, tuple_row
    from psycopg.types.json import Jsonb

    HAVE_POSTGRES = True
except ImportError:  # the `postgres` extra is not installed: SQLite only
    HAVE_POSTGRES = False

SQLITE_FILE = "readmodels.sqlite3"
GENERATIONS = "jiedu_generations"
LIVE = "jiedu_live"
PG_TRACKING = "jiedu_tracking"
INCIDENTS = "jiedu_incidents"

BUILDING, LIVE_STATE, RETIRED = "building", "live", "retired"

Lock = Literal["share", "update"] | None


class Superseded(Exception):
    """The generation being filled was retired meanwhile (a later rebuild started)."""


@dataclass(frozen=True)
class Generation:
    """One store generation of a projection: its tables are `<table>__g<number>`."""

    projection: str
    number: int
    version: int
    state: str

    @property
    def name(self) -> str:
        return f"{self.projection}__g{self.number}"

    @property
    def suffix(self) -> str:
        return f"__g{self.number}"

    def physical(self, table: Table) -> str:
        return table.name + self.suffix


@dataclass(frozen=True)
class Status:
    generation: Generation
    position: int


# ── value conversion ─────────────────────────────────────────────────────────────────────────

Convert = Callable[[Any], Any]


def _same(v: Any) -> Any:
    return v


def _none_safe(fn: Convert) -> Convert:
    def convert(v: Any) -> Any:
        return None if v is None else fn(v)

    return convert


def _text(v: Any) -> str:
    return v if type(v) is str else str(v)  # StrEnum → its value, never its name


def _utc(v: datetime) -> datetime:
    return v.astimezone(UTC)


def _json_text(v: Any) -> str:
    """JSON as orjson writes it, in both dialects (dates, enums and all)."""
    return orjson.dumps(v, option=orjson.OPT_SORT_KEYS).decode()


_TO_SQLITE: dict[Type, Convert] = {
    Type.TEXT: _none_safe(_text),
    Type.INT: _same,
    Type.BOOL: _none_safe(lambda v: int(bool(v))),
    Type.JSON: _none_safe(_json_text),
    Type.DATE: _none_safe(date.isoformat),
    Type.TIMESTAMP: _none_safe(lambda v: _utc(v).isoformat(timespec="microseconds")),
}
_FROM_SQLITE: dict[Type, Convert] = {
    Type.TEXT: _same,
    Type.INT: _same,
    Type.BOOL: _none_safe(bool),
    Type.JSON: _none_safe(orjson.loads),
    Type.DATE: _none_safe(date.fromisoformat),
    Type.TIMESTAMP: _none_safe(datetime.fromisoformat),
}
_TO_POSTGRES: dict[Type, Convert] = {
    Type.TEXT: _none_safe(_text),
    Type.INT: _same,
    Type.BOOL: _none_safe(bool),
    Type.JSON: _none_safe(lambda v: Jsonb(v, dumps=_json_text)),
    Type.DATE: _same,
    Type.TIMESTAMP: _same,
}
_FROM_POSTGRES: dict[Type, Convert] = {
    **{t: _same for t in Type},
    Type.TIMESTAMP: _none_safe(_utc),
}
_CONVERTERS: dict[Dialect, tuple[dict[Type, Convert], dict[Type, Convert]]] = {
    "sqlite": (_TO_SQLITE, _FROM_SQLITE),
    "postgresql": (_TO_POSTGRES, _FROM_POSTGRES),
}


@functools.cache
def _params_of(dialect: Dialect, table: Table) -> Callable[[Row], list[Any]]:
    """A row → its column values as `dialect` stores them, converting only the columns that
    need it (upserts run this for every changed row of every batch)."""
    names = table.column_names
    getter = itemgetter(*names) if len(names) > 1 else (lambda row: (row[names[0]],))
    to = _CONVERTERS[dialect][0]
    converting = [(i, to[t]) for i, t in enumerate(table.columns.values()) if to[t] is not _same]

    def params(row: Row) -> list[Any]:
        values = list(getter(row))
        for i, convert in converting:
            values[i] = convert(values[i])
        return values

    return params


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# ── transactions ─────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Incident:
    """An event in EVENTS that cannot be decoded (事故): every projection of the store stops
    before it until an operator decides to skip it, and that decision is kept here with it.

    It can only be in the log through a defect (only the intake may write EVENTS); its raw
    bytes are kept as found, for the operator and the auditors."""

    sequence: int
    subject: str
    raw: bytes
    error: str
    found_at: str
    skipped_at: str | None = None
    skipped_by: str | None = None
    reason: str | None = None

    @property
    def open(self) -> bool:
        return self.skipped_at is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "sequence": self.sequence, "subject": self.subject,
            "raw_base64": base64.b64encode(self.raw).decode(),
            "raw_text": self.raw.decode("utf-8", errors="replace")[:500],
            "error": self.error, "found_at": self.found_at, "status": (
                "open" if self.open else "skipped"
            ), "skipped_at": self.skipped_at, "skipped_by": self.skipped_by,
            "reason": self.reason,
        }


_INCIDENT_COLUMNS = "sequence, subject, raw, error, found_at, skipped_at, skipped_by, reason"


def _incident(row: Sequence[Any]) -> Incident:
    seq, subject, raw, *rest = row
    return Incident(int(seq), subject, base64.b64decode(raw), *rest)


class Tx(ABC):
    """One transaction on a store: the SQL both dialects share, written once with `?`."""

    dialect: Dialect
    schema: str | None = None

    @abstractmethod
    def run(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    @abstractmethod
    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    @abstractmethod
    def many(self, sql: str, params: Iterable[Sequence[Any]]) -> None: ...

    @abstractmethod
    def lock_projection(self, projection: str) -> None:
        """Serialise management work (create, switch, drop) on one projection."""

    @abstractmethod
    def position(self, generation: str, *, lock: bool = False) -> int:
        """The last sequence the generation reflects (0: none); `lock` holds its tracking row
        until the end of the transaction, so no other writer moves it meanwhile."""

    @abstractmethod
    def set_position(self, generation: str, seq: int) -> None:
        """Record the new position; raises eventsourcing's IntegrityError unless it increases."""

    def q(self, name: str) -> str:
        return f'"{self.schema}"."{name}"' if self.schema else f'"{name}"'

    def locking(self, lock: Lock) -> str:
        if self.dialect == "sqlite" or lock is None:
            return ""  # SQLite: the whole database is locked by BEGIN IMMEDIATE
        return " FOR SHARE" if lock == "share" else " FOR UPDATE"

    # ── generations ──

    def live(self, projection: str, *, lock: Lock = None) -> Generation | None:
        found = self.rows(
            f"SELECT generation FROM {self.q(LIVE)} WHERE projection = ?{self.locking(lock)}",
            (projection,),
        )
        return self.generation(found[0][0]) if found else None

    def generation(self, name: str, *, lock: Lock = None) -> Generation | None:
        found = self.rows(
            f"SELECT projection, number, version, state FROM {self.q(GENERATIONS)} "
            f"WHERE name = ?{self.locking(lock)}",
            (name,),
        )
        return Generation(*found[0]) if found else None

    def generations(self, projection: str | None = None) -> list[Generation]:
        where, params = ("WHERE projection = ?", (projection,)) if projection else ("", ())
        return [
            Generation(*r)
            for r in self.rows(
                f"SELECT projection, number, version, state FROM {self.q(GENERATIONS)} {where} "
                "ORDER BY projection, number",
                params,
            )
        ]

    # ── incidents ──

    def incident(self, sequence: int) -> Incident | None:
        found = self.rows(
            f"SELECT {_INCIDENT_COLUMNS} FROM {self.q(INCIDENTS)} WHERE sequence = ?",
            (sequence,),
        )
        return _incident(found[0]) if found else None

    def record_incident(self, sequence: int, subject: str, raw: bytes, error: str) -> None:
        """Keep an undecodable event, once (the first finding stands)."""
        self.run(
            f"INSERT INTO {self.q(INCIDENTS)} (sequence, subject, raw, error, found_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (sequence) DO NOTHING",
            (sequence, subject, base64.b64encode(raw).decode(), error[:2000], _now()),
        )

    # ── rows ──

    def _convert(self, table: Table) -> tuple[list[Convert], list[Convert]]:
        to, from_ = _CONVERTERS[self.dialect]
        types = table.columns.values()
        return [to[t] for t in types], [from_[t] for t in types]

    def load(self, table: Table, physical: str, keys: Sequence[Key]) -> dict[Key, Row]:
        """The stored rows among `keys`, by key."""
        to, from_ = self._convert(table)
        key_to = [to[table.column_names.index(c)] for c in table.key]
        cols = ", ".join(f'"{c}"' for c in table.column_names)
        key_cols = ", ".join(f'"{c}"' for c in table.key)
        found: dict[Key, Row] = {}
        width = len(table.key)
        for chunk in _chunks(keys, 500):
            if width == 1:
                where = f'"{table.key[0]}" IN ({", ".join("?" * len(chunk))})'
            else:
                row_ph = f"({', '.join('?' * width)})"
                where = f"({key_cols}) IN (VALUES {', '.join([row_ph] * len(chunk))})"
            params = [conv(v) for k in chunk for conv, v in zip(key_to, k, strict=True)]
            for r in self.rows(f"SELECT {cols} FROM {self.q(physical)} WHERE {where}", params):
                row = {c: conv(v) for c, conv, v in zip(table.column_names, from_, r, strict=True)}
                found[table.key_of(row)] = row
        return found

    def upsert(self, table: Table, physical: str, rows: Sequence[Row]) -> None:
        if not rows:
            return
        cols = table.column_names
        listed = ", ".join(f'"{c}"' for c in cols)
        keys = ", ".join(f'"{c}"' for c in table.key)
        others = [c for c in cols if c not in table.key]
        action = (
            "DO UPDATE SET " + ", ".join(f'"{c}" = excluded."{c}"' for c in others)
            if others
            else "DO NOTHING"
        )
        sql = (
            f"INSERT INTO {self.q(physical)} ({listed}) VALUES ({', '.join('?' * len(cols))}) "
            f"ON CONFLICT ({keys}) {action}"
        )
        params = _params_of(self.dialect, table)
        self.many(sql, [params(r) for r in rows])

    def insert(self, table: Table, physical: str, rows: Iterable[Row]) -> None:
        """Add rows none of which is stored yet, in bulk (filling a fresh generation): plain
        inserts here, a COPY on PostgreSQL."""
        listed = ", ".join(f'"{c}"' for c in table.column_names)
        params = _params_of(self.dialect, table)
        self.many(
            f"INSERT INTO {self.q(physical)} ({listed}) "
            f"VALUES ({', '.join('?' * len(table.column_names))})",
            (params(r) for r in rows),
        )

    def delete(self, table: Table, physical: str, keys: Sequence[Key]) -> None:
        if not keys:
            return
        to, _ = self._convert(table)
        key_to = [to[table.column_names.index(c)] for c in table.key]
        where = " AND ".join(f'"{c}" = ?' for c in table.key)
        self.many(
            f"DELETE FROM {self.q(physical)} WHERE {where}",
            [[conv(v) for conv, v in zip(key_to, k, strict=True)] for k in keys],
        )

    def select(
        self,
        table: Table,
        physical: str,
        where: Mapping[str, Any] | None = None,
        order_by: Sequence[str] | None = None,
        limit: int | None = None,
        after: Sequence[Any] | None = None,
    ) -> list[Row]:
        """Rows of one table whose columns equal the values in `where` (None values ignored; a
        tuple or frozenset: any of its values); with `after` (values of the `order_by` columns, which must not be null), only the rows
        that come after them: a page that starts where the last one ended (a cursor)."""
        to, from_ = self._convert(table)
        given = {c: v for c, v in (where or {}).items() if v is not None}
        unknown = given.keys() - table.columns.keys()
        if unknown or not set(order_by or ()) <= table.columns.keys():
            raise KeyError(f"{table.name} has no column {sorted(unknown) or order_by}")
        conditions: list[str] = []
        params: list[Any] = []
        for c, v in given.items():
            convert = to[table.column_names.index(c)]
            if isinstance(v, tuple | frozenset):  # any of these values
                conditions.append(f'"{c}" IN ({", ".join("?" for _ in v) or "NULL"})')
                params += [convert(x) for x in sorted(v)]
            else:
                conditions.append(f'"{c}" = ?')
                params.append(convert(v))
        columns = tuple(order_by or table.key)
        if after is not None:
            if len(after) != len(columns):
                raise ValueError(f"a cursor of {table.name} has {len(columns)} values")
            names = ", ".join(f'"{c}"' for c in columns)
            conditions.append(f"({names}) > ({', '.join('?' for _ in columns)})")
            params += [to[table.column_names.index(c)](v) for c, v in zip(columns, after, strict=True)]
        clause = " AND ".join(conditions)
        order = ", ".join(f'"{c}"' for c in columns)
        sql = (
            f"SELECT {', '.join(f'{chr(34)}{c}{chr(34)}' for c in table.column_names)} "
            f"FROM {self.q(physical)}{' WHERE ' + clause if clause else ''} ORDER BY {order}"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [
            {c: conv(v) for c, conv, v in zip(table.column_names, from_, r, strict=True)}
            for r in self.rows(sql, params)
        ]


class _SQLiteTx(Tx):
    dialect: Dialect = "sqlite"

    def __init__(self, store: SQLiteStore, cursor: SQLiteCursor) -> None:
        self.store = store
        self.cursor = cursor

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.cursor.execute(sql, params)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self.cursor.execute(sql, params)
        return [tuple(r) for r in self.cursor.fetchall()]

    def many(self, sql: str, params: Iterable[Sequence[Any]]) -> None:
        self.cursor.executemany(sql, params)

    def lock_projection(self, projection: str) -> None:
        pass  # BEGIN IMMEDIATE holds the database's only write lock

    def position(self, generation: str, *, lock: bool = False) -> int:
        found = self.rows(
            "SELECT notification_id FROM tracking WHERE application_name = ?", (generation,)
        )
        return int(found[0][0]) if found and found[0][0] is not None else 0

    def set_position(self, generation: str, seq: int) -> None:
        self.store._insert_tracking(self.cursor, Tracking(generation, seq))


# ── stores ───────────────────────────────────────────────────────────────────────────────────


class StoreClosed(RuntimeError):
    """A transaction asked of a store that is closing or closed."""


class InUse:
    """The transactions in progress on a store, in any thread, so that closing it waits for
    them: the pools close connections that are in use, and closing a SQLite connection while
    another thread runs a statement on it can crash the process (a service's thread still
    reading as `jiedu up` stops on Ctrl-C, say)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._count = 0
        self._closing = False

    @contextmanager
    def entered(self) -> Iterator[None]:
        with self._changed:
            if self._closing:
                raise StoreClosed("the read store is closed")
            self._count += 1
        try:
            yield
        finally:
            with self._changed:
                self._count -= 1
                self._changed.notify_all()

    def closing(self, timeout_s: float) -> bool:
        """Refuse new transactions and wait up to `timeout_s` for those in progress to end;
        whether they did."""
        with self._changed:
            self._closing = True
            return self._changed.wait_for(lambda: self._count == 0, timeout_s)


CLOSE_WAIT_S = 30.0
"""How long closing a store waits for the transactions in progress (a rebuild's batch, a
long report query) before it closes their connections under them anyway."""


class ReadStore(ABC):
    """Where projections' rows, positions and generations live. Synchronous: use a thread."""

    dialect: Dialect
    schema: str | None = None
    _tracking_table: str = "tracking"

    def __init__(self) -> None:
        self._in_use = InUse()

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[Tx]:
        """A transaction: committed at the end of the block if `write`, else rolled back.
        Raises `StoreClosed` once the store is closing."""
        with self._in_use.entered(), self._transaction(write=write) as tx:
            yield tx

    def close(self) -> None:
        """Close the store once the transactions in progress have ended (see `InUse`)."""
        self._in_use.closing(CLOSE_WAIT_S)
        self._close()

    @abstractmethod
    def _transaction(self, *, write: bool) -> AbstractContextManager[Tx]: ...

    @abstractmethod
    def _create_tracking(self) -> None: ...

    @abstractmethod
    def _close(self) -> None: ...

    def ensure(self) -> None:
        """Create the tracking and bookkeeping tables if missing. Idempotent, and safe when
        several processes start at once (the loser of a creation race tries again)."""
        for attempt in range(3):
            try:
                self._create_tracking()
                break
            except Exception:
                if attempt == 2:
                    raise
        with self.transaction(write=True) as tx:
            tx.lock_projection("")  # concurrent CREATE TABLE IF NOT EXISTS can collide in PG
            tx.run(
                f"CREATE TABLE IF NOT EXISTS {tx.q(GENERATIONS)} (name TEXT PRIMARY KEY, "
                "projection TEXT NOT NULL, number INTEGER NOT NULL, version INTEGER NOT NULL, "
                "state TEXT NOT NULL, created_at TEXT NOT NULL, changed_at TEXT NOT NULL)"
            )
            tx.run(
                f"CREATE TABLE IF NOT EXISTS {tx.q(LIVE)} "
                "(projection TEXT PRIMARY KEY, generation TEXT NOT NULL)"
            )
            tx.run(
                f"CREATE TABLE IF NOT EXISTS {tx.q(INCIDENTS)} (sequence BIGINT PRIMARY KEY, "
                "subject TEXT NOT NULL, raw TEXT NOT NULL, error TEXT NOT NULL, "
                "found_at TEXT NOT NULL, skipped_at TEXT, skipped_by TEXT, reason TEXT)"
            )

    # ── generations ──

    def live(self, projection: str) -> Generation | None:
        with self.transaction(write=False) as tx:
            return tx.live(projection)

    def ensure_live(self, projection: Projection) -> Generation:
        """The live generation; if the projection has none yet, an empty one made live at once
        (there is nothing older to serve meanwhile)."""
        with self.transaction(write=True) as tx:
            tx.lock_projection(projection.name)
            live = tx.live(projection.name, lock="update")
            if live is not None:
                return live
            gen = self._create(tx, projection, LIVE_STATE)
            self._point(tx, projection, gen)
            return gen

    def create_generation(self, projection: Projection) -> Generation:
        """A new, empty generation to rebuild into; older unfinished ones are dropped first."""
        for stale in self.generations(projection.name):
            if stale.state == BUILDING:
                self.drop(projection, stale)
        with self.transaction(write=True) as tx:
            tx.lock_projection(projection.name)
            return self._create(tx, projection, BUILDING)

    def _create(self, tx: Tx, projection: Projection, state: str) -> Generation:
        found = tx.rows(
            f"SELECT MAX(number) FROM {tx.q(GENERATIONS)} WHERE projection = ?", (projection.name,)
        )
        number = int(found[0][0] or 0) + 1
        gen = Generation(projection.name, number, projection.version, state)
        for statement in projection.schema(self.dialect, gen.suffix, self.schema):
            tx.run(statement)
        now = _now()
        tx.run(
            f"INSERT INTO {tx.q(GENERATIONS)} VALUES (?, ?, ?, ?, ?, ?, ?)",
            (gen.name, gen.projection, gen.number, gen.version, state, now, now),
        )
        tx.set_position(gen.name, 0)
        return gen

    def _point(self, tx: Tx, projection: Projection, gen: Generation) -> None:
        """Make `gen` the one readers see: the pointer row and one view per table."""
        tx.run(
            f"INSERT INTO {tx.q(LIVE)} VALUES (?, ?) "
            "ON CONFLICT (projection) DO UPDATE SET generation = excluded.generation",
            (projection.name, gen.name),
        )
        for table in projection.tables:
            tx.run(f"DROP VIEW IF EXISTS {tx.q(table.name)}")
            tx.run(f"CREATE VIEW {tx.q(table.name)} AS SELECT * FROM {tx.q(gen.physical(table))}")

    def switch(
        self, projection: Projection, gen: Generation
    ) -> tuple[bool, Generation | None]:
        """Make `gen` live if it has reached the live generation's position.

        Returns (switched, the generation it replaced if any); (False, live) while `gen` is
        still behind. Raises `Superseded` if `gen` was retired meanwhile."""
        with self.transaction(write=True) as tx:
            tx.lock_projection(projection.name)
            current = tx.generation(gen.name, lock="update")
            if current is None or current.state == RETIRED:
                raise Superseded(gen.name)
            old = tx.live(projection.name, lock="update")
            if old is not None and old.name == gen.name:
                return True, None
            if old is not None and tx.position(old.name) > tx.position(gen.name):
                return False, old
            self._point(tx, projection, gen)
            now = _now()
            tx.run(
                f"UPDATE {tx.q(GENERATIONS)} SET state = ?, changed_at = ? WHERE name = ?",
                (LIVE_STATE, now, gen.name),
            )
            if old is not None:
                tx.run(
                    f"UPDATE {tx.q(GENERATIONS)} SET state = ?, changed_at = ? WHERE name = ?",
                    (RETIRED, now, old.name),
                )
            return True, old

    def drop(self, projection: Projection, gen: Generation) -> None:
        """Retire a generation that does not serve and drop its tables."""
        with self.transaction(write=True) as tx:
            tx.lock_projection(gen.projection)
            live = tx.live(gen.projection, lock="update")
            if live is not None and live.name == gen.name:
                raise ValueError(f"{gen.name} is live: switch to another generation first")
            tx.generation(gen.name, lock="update")
            tx.run(
                f"UPDATE {tx.q(GENERATIONS)} SET state = ?, changed_at = ? WHERE name = ?",
                (RETIRED, _now(), gen.name),
            )
            for table in projection.tables:
                tx.run(f"DROP TABLE IF EXISTS {tx.q(gen.physical(table))}")
            tx.run(
                f"DELETE FROM {tx.q(self._tracking_table)} WHERE application_name = ?",
                (gen.name,),
            )

    def generations(self, projection: str | None = None) -> list[Generation]:
        with self.transaction(write=False) as tx:
            return tx.generations(projection)

    def position(self, gen: Generation | str) -> int:
        with self.transaction(write=False) as tx:
            return tx.position(gen if isinstance(gen, str) else gen.name)

    def status(self, projection: str | None = None) -> list[Status]:
        """Every generation that is live or being built, with its position."""
        with self.transaction(write=False) as tx:
            return [
                Status(g, tx.position(g.name))
                for g in tx.generations(projection)
                if g.state != RETIRED
            ]

    # ── incidents ──

    def incidents(self) -> list[Incident]:
        """Every undecodable event met, open or skipped, in log order."""
        with self.transaction(write=False) as tx:
            return [
                _incident(r)
                for r in tx.rows(
                    f"SELECT {_INCIDENT_COLUMNS} FROM {tx.q(INCIDENTS)} ORDER BY sequence"
                )
            ]

    def open_incident(self) -> Incident | None:
        """The first incident no operator has decided on: where the projections stand."""
        return next((i for i in self.incidents() if i.open), None)

    def skip_incident(self, sequence: int, *, by: str, reason: str) -> Incident:
        """The operator's decision to go on past an undecodable event, recorded with it (who,
        when, why). The projections skip it from then on; nothing else ever does."""
        with self.transaction(write=True) as tx:
            found = tx.incident(sequence)
            if found is None:
                raise KeyError(f"no incident at sequence {sequence}")
            if not found.open:
                raise ValueError(f"the incident at {sequence} was skipped already")
            tx.run(
                f"UPDATE {tx.q(INCIDENTS)} SET skipped_at = ?, skipped_by = ?, reason = ? "
                "WHERE sequence = ?",
                (_now(), by, reason, sequence),
            )
            skipped = tx.incident(sequence)
            assert skipped is not None
            return skipped

    # ── reading ──

    def select(
        self,
        projection: Projection,
        table: Table,
        where: Mapping[str, Any] | None = None,
        order_by: Sequence[str] | None = None,
        limit: int | None = None,
        after: Sequence[Any] | None = None,
    ) -> list[Row]:
        """Rows of the live generation (what the view `table.name` shows); [] before any."""
        with self.transaction(write=False) as tx:
            live = tx.live(projection.name)
            if live is None:
                return []
            return tx.select(table, live.physical(table), where, order_by, limit, after)

    def analyze(self, projection: Projection) -> None:
        """Have the database gather statistics of the live generation's tables, so that its
        planner reads indexes for selective queries (PostgreSQL's autovacuum does it in time;
        after filling a generation in bulk it has not yet)."""
        with self.transaction(write=True) as tx:
            live = tx.live(projection.name)
            if live is not None:
                for table in projection.tables:
                    tx.run(f"ANALYZE {tx.q(live.physical(table))}")

    def dump(self, projection: Projection, gen: Generation | None = None) -> dict[str, list[Row]]:
        """Every row of every table of a generation (default: the live one), ordered by key:
        for comparing two read models."""
        with self.transaction(write=False) as tx:
            gen = gen or tx.live(projection.name)
            if gen is None:
                return {t.name: [] for t in projection.tables}
            return {t.name: tx.select(t, gen.physical(t)) for t in projection.tables}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class SQLiteStore(ReadStore, SQLiteTrackingRecorder):
    """The embedded store: one SQLite file (WAL) under the data directory."""

    dialect: Dialect = "sqlite"

    def __init__(self, path: Path | str, *, lock_timeout_s: int = 60) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        datastore = SQLiteDatastore(
            self.path, lock_timeout=lock_timeout_s, pool_timeout=lock_timeout_s
        )
        SQLiteTrackingRecorder.__init__(self, datastore)
        ReadStore.__init__(self)
        self._ensure_lock = threading.Lock()

    def _create_tracking(self) -> None:
        with self._ensure_lock:
            SQLiteTrackingRecorder.create_table(self)

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Tx]:
        with self.datastore.get_connection(commit=write) as conn:
            cursor = conn.cursor()
            try:
                if write:
                    # Durable against a crash of the process; a power loss may lose the last
                    # commits, rows and position together, and the log replays them.
                    cursor.execute("PRAGMA synchronous = NORMAL")
                cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield _SQLiteTx(self, cursor)
                except BaseException:
                    conn.rollback()
                    raise
                if write:
                    conn.commit()
                else:
                    conn.rollback()
            finally:
                cursor.sqlite_cursor.close()

    def _close(self) -> None:
        self.datastore.close()


if HAVE_POSTGRES:

    class _PostgresTx(Tx):
        dialect: Dialect = "postgresql"

        def __init__(self, store: PostgresStore, conn: PgConnection[DictRow]) -> None:
            self.store = store
            self.schema = store.schema
            self.cursor: PgCursor[TupleRow] = conn.cursor(row_factory=tuple_row)
            self.dict_cursor: PgCursor[DictRow] = conn.cursor()

        @staticmethod
        def _sql(sql: str) -> str:
            return sql.replace("?", "%s")

        def run(self, sql: str, params: Sequence[Any] = ()) -> None:
            self.cursor.execute(self._sql(sql), params)

        def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
            self.cursor.execute(self._sql(sql), params)
            return self.cursor.fetchall()

        def many(self, sql: str, params: Iterable[Sequence[Any]]) -> None:
            self.cursor.executemany(self._sql(sql), params)

        def insert(self, table: Table, physical: str, rows: Iterable[Row]) -> None:
            listed = ", ".join(f'"{c}"' for c in table.column_names)
            params = _params_of(self.dialect, table)
            with self.cursor.copy(f"COPY {self.q(physical)} ({listed}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(params(row))

        def lock_projection(self, projection: str) -> None:
            self.run("SELECT pg_advisory_xact_lock(hashtext(?))", (f"jiedu:{projection}",))

        def position(self, generation: str, *, lock: bool = False) -> int:
            found = self.rows(
                f"SELECT notification_id FROM {self.q(PG_TRACKING)} "
                f"WHERE application_name = ?{' FOR UPDATE' if lock else ''}",
                (generation,),
            )
            return int(found[0][0]) if found and found[0][0] is not None else 0

        def set_position(self, generation: str, seq: int) -> None:
            self.store._insert_tracking(self.dict_cursor, Tracking(generation, seq))

    class PostgresStore(ReadStore, PostgresTrackingRecorder):
        """The scaling store: one PostgreSQL schema (`public` unless told otherwise)."""

        dialect: Dialect = "postgresql"
        _tracking_table = PG_TRACKING

        def __init__(self, url: str, *, schema: str | None = None, pool_size: int = 4) -> None:
            url, from_url = split_schema(url)
            params = conninfo_to_dict(url)
            self.schema = schema or from_url or "public"
            datastore = PostgresDatastore(
                dbname=str(params.get("dbname") or "postgres"),
                host=str(params.get("host") or "localhost"),
                port=str(params.get("port") or 5432),
                user=str(params.get("user") or "postgres"),
                password=str(params.get("password") or ""),
                schema=self.schema,
                pool_size=pool_size,
                max_overflow=pool_size,
                connect_timeout=10,
                pool_open_timeout=None,  # later opens do not wait: concurrent waits race
            )
            datastore.pool.open(wait=True, timeout=10)  # fail here if PostgreSQL is unreachable
            PostgresTrackingRecorder.__init__(self, datastore, tracking_table_name=PG_TRACKING)
            ReadStore.__init__(self)

        def _create_tracking(self) -> None:
            with self.datastore.transaction(commit=True) as curs:
                curs.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            PostgresTrackingRecorder.create_table(self)

        @contextmanager
        def _transaction(self, *, write: bool) -> Iterator[Tx]:
            with self.datastore.get_connection() as conn, conn.transaction(
                force_rollback=not write
            ):
                yield _PostgresTx(self, conn)

        def _close(self) -> None:
            self.datastore.close()


def split_schema(url: str) -> tuple[str, str | None]:
    """Take Jiedu's own `schema` query parameter off a PostgreSQL URL (libpq rejects it)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    schema = next((v for k, v in query if k == "schema"), None)
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema


def open_store(
    database_url: str | None, data_dir: Path, *, schema: str | None = None
) -> ReadStore:
    """The store the settings name: PostgreSQL for a `postgresql://` URL (optionally with
    `?schema=NAME`), else the SQLite file `readmodels.sqlite3` under the data directory (or the
    file a `sqlite:///PATH` URL names). Tables are created if missing."""
    store: ReadStore
    if database_url and database_url.startswith(("postgresql://", "postgres://")):
        if not HAVE_POSTGRES:
            raise RuntimeError("DATABASE_URL is PostgreSQL but the `postgres` extra is missing")
        store = PostgresStore(database_url, schema=schema)
    elif database_url and database_url.startswith("sqlite:///"):
        store = SQLiteStore(database_url.removeprefix("sqlite:///"))
    elif database_url:
        raise ValueError(f"DATABASE_URL {database_url!r}: expected postgresql:// or sqlite:///")
    else:
        store = SQLiteStore(data_dir / SQLITE_FILE)
    store.ensure()
    return store
