"""What every projection is made of: tables described as data, and a pure `apply`.

A projection turns events into read-model rows (读模型). It does no I/O: `apply` receives each
event with its log sequence and a `Rows` handle, reads the rows it needs with `get`, and hands
back the new state with `put` or `delete`. Whoever calls it decides where rows live:
`MemoryRows` keeps them in dicts (tests, reasoning about a projection on paper), and the runner
(`services.projector`) gives it a unit of work over SQLite or PostgreSQL that loads rows once per
batch and writes each changed row once, together with the log position, in one transaction.

Why rows rather than a list of SQL-like changes: a case's status depends on what happened before
(a website publication turns an *issued* case into a *published* one, a late signature does not
reopen an issued case), so a projection must read its current state; and a batch that touches
one case a hundred times should write that case once.

Tables are data (`Table`), so one description gives the DDL for both dialects, the type
conversions, and the generation-suffixed copies a rebuild fills while the live one serves.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from operator import itemgetter
from typing import Any, ClassVar, Literal, NamedTuple, Protocol

from events.catalogue import Event

Row = dict[str, Any]
Key = tuple[Any, ...]
Dialect = Literal["sqlite", "postgresql"]

_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,40}$")


class Type(StrEnum):
    """Column types, with the Python value a projection puts and gets."""

    TEXT = "text"  # str
    INT = "int"  # int
    BOOL = "bool"  # bool
    JSON = "json"  # dict or list of JSON values (str keys)
    DATE = "date"  # datetime.date
    TIMESTAMP = "timestamp"  # aware datetime.datetime (read back in UTC)


SQL_TYPES: dict[Dialect, dict[Type, str]] = {
    "sqlite": {
        Type.TEXT: "TEXT",
        Type.INT: "INTEGER",
        Type.BOOL: "INTEGER",
        Type.JSON: "TEXT",
        Type.DATE: "TEXT",
        Type.TIMESTAMP: "TEXT",
    },
    "postgresql": {
        Type.TEXT: "TEXT",
        Type.INT: "BIGINT",
        Type.BOOL: "BOOLEAN",
        Type.JSON: "JSONB",
        Type.DATE: "DATE",
        Type.TIMESTAMP: "TIMESTAMPTZ",
    },
}


@dataclass(frozen=True, eq=False)
class Table:
    """One read-model table: its name (global, the name readers query), columns, primary key and
    secondary indexes. Names are plain lower-case identifiers, so they never need escaping."""

    name: str
    columns: Mapping[str, Type]
    key: tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...] = ()
    column_names: tuple[str, ...] = field(init=False)
    json_columns: tuple[str, ...] = field(init=False)
    _key_getter: Callable[[Row], Any] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for name in (self.name, *self.columns):
            if not _IDENTIFIER.match(name):
                raise ValueError(f"{name!r} is not a plain lower-case identifier")
        for cols in (self.key, *self.indexes):
            if not cols or not set(cols) <= set(self.columns):
                raise ValueError(f"{self.name}: {cols} must name columns of the table")
        object.__setattr__(self, "column_names", tuple(self.columns))
        object.__setattr__(
            self, "json_columns", tuple(c for c, t in self.columns.items() if t is Type.JSON)
        )
        # itemgetter of one column gives a value, of several a tuple: keys are always tuples
        get = itemgetter(*self.key)
        getter = get if len(self.key) > 1 else (lambda row: (get(row),))
        object.__setattr__(self, "_key_getter", getter)

    def key_of(self, row: Row) -> Key:
        return self._key_getter(row)  # type: ignore[no-any-return]

    def complete(self, row: Row) -> Row:
        """The row with every column, in table order (None for those not given); an unknown
        column is a bug in the projection and raises."""
        if row.keys() == self.columns.keys():
            return row  # complete already (a row read back and changed): keep it as it is
        if not row.keys() <= self.columns.keys():
            raise KeyError(f"{self.name} has no column {sorted(row.keys() - self.columns.keys())}")
        return {c: row.get(c) for c in self.column_names}

    def ddl(self, dialect: Dialect, physical: str | None = None, schema: str | None = None) -> list[str]:
        """CREATE statements for this table stored as `physical` (default: its own name), in
        `schema` (PostgreSQL only)."""
        physical = physical or self.name
        qualified = f'"{schema}"."{physical}"' if schema else f'"{physical}"'
        types = SQL_TYPES[dialect]
        cols = ", ".join(f'"{c}" {types[t]}' for c, t in self.columns.items())
        key = ", ".join(f'"{c}"' for c in self.key)
        out = [f"CREATE TABLE IF NOT EXISTS {qualified} ({cols}, PRIMARY KEY ({key}))"]
        for cols_ in self.indexes:
            index = f"{physical}__{'_'.join(cols_)}"
            listed = ", ".join(f'"{c}"' for c in cols_)
            out.append(f'CREATE INDEX IF NOT EXISTS "{index}" ON {qualified} ({listed})')
        return out


class Rows(Protocol):
    """What `Projection.apply` reads and writes through. `get` returns the caller's own copy;
    `put` takes the row over (do not change it afterwards) and stores it whole."""

    def get(self, table: Table, *key: Any) -> Row | None: ...

    def put(self, table: Table, row: Row) -> None: ...

    def delete(self, table: Table, *key: Any) -> None: ...


def copy_row(table: Table, row: Row) -> Row:
    """A copy deep enough for a projection to change the top level of its JSON values in place
    (a nested JSON value is to be replaced, not changed)."""
    out = dict(row)
    for c in table.json_columns:
        value = out[c]
        if value is not None:
            out[c] = value.copy()
    return out


class MemoryRows:
    """Rows in dicts: for tests, and for running a projection over a list of events."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[Key, Row]] = {}

    def get(self, table: Table, *key: Any) -> Row | None:
        row = self.tables.get(table.name, {}).get(key)
        return None if row is None else copy_row(table, row)

    def put(self, table: Table, row: Row) -> None:
        row = table.complete(row)
        self.tables.setdefault(table.name, {})[table.key_of(row)] = row

    def delete(self, table: Table, *key: Any) -> None:
        self.tables.get(table.name, {}).pop(key, None)

    def rows(self, table: Table) -> list[Row]:
        """Every row of `table`, ordered by key."""
        found = self.tables.get(table.name, {})
        return [copy_row(table, found[k]) for k in sorted(found)]


class Stored(NamedTuple):
    """One message as JetStream stored it: what the audit chain covers, plus the stored time."""

    seq: int
    subject: str
    data: bytes
    stored_at: datetime | None = None


class Projection(ABC):
    """One read model. Subclass, set `name`, `version` and `tables`, write `apply`, and add an
    instance to `projections.ALL`. Bump `version` whenever `apply` or the tables change: the
    runner then rebuilds the read model from the log while the old one keeps serving."""

    name: ClassVar[str]
    version: ClassVar[int]
    tables: ClassVar[tuple[Table, ...]]

    def touches(self, event: Event) -> Iterable[tuple[Table, Key]]:
        """Rows `apply` will `get` for this event, so that the runner can load a whole batch's
        rows in one query. Only a hint: a row not named here is loaded when asked for."""
        return ()

    @abstractmethod
    def apply(self, event: Event, seq: int, rows: Rows) -> None:
        """Apply one event, at log sequence `seq`, to the rows. Pure: no I/O, no clock, no
        randomness, so that a rebuild gives exactly what live processing gave."""

    def apply_stored(self, stored: Stored, event: Event, rows: Rows) -> None:
        """Apply one event given as stored (subject, exact bytes, stored time). Most projections
        need only the decoded event; the audit trail needs the bytes for its hash chain."""
        self.apply(event, stored.seq, rows)

    def schema(self, dialect: Dialect, suffix: str = "", schema: str | None = None) -> list[str]:
        """The DDL of every table, each stored as `<table><suffix>`."""
        return [s for t in self.tables for s in t.ddl(dialect, t.name + suffix, schema)]

    def run(self, events: Iterable[tuple[int, Event]], rows: MemoryRows | None = None) -> MemoryRows:
        """Apply events (with their sequences) in order to in-memory rows: the projection's
        meaning, without any store."""
        rows = rows if rows is not None else MemoryRows()
        for seq, event in events:
            self.apply(event, seq, rows)
        return rows
