"""Tables as data, in-memory rows, and the registry of projections."""

from __future__ import annotations

import sqlite3

import pytest

from projections import ALL, by_name
from projections.base import MemoryRows, Table, Type

T = Table("things", {"id": Type.TEXT, "n": Type.INT, "tags": Type.JSON, "on": Type.DATE},
          key=("id",), indexes=(("n",),))


def test_a_table_refuses_names_that_would_need_escaping() -> None:
    with pytest.raises(ValueError, match="identifier"):
        Table("Things; DROP", {"id": Type.TEXT}, key=("id",))
    with pytest.raises(ValueError, match="identifier"):
        Table("things", {"id-x": Type.TEXT}, key=("id-x",))


def test_a_table_key_and_indexes_name_its_columns() -> None:
    with pytest.raises(ValueError, match="must name columns"):
        Table("things", {"id": Type.TEXT}, key=("other",))
    with pytest.raises(ValueError, match="must name columns"):
        Table("things", {"id": Type.TEXT}, key=("id",), indexes=(("nope",),))


def test_complete_fills_missing_columns_and_refuses_unknown_ones() -> None:
    assert T.complete({"id": "a"}) == {"id": "a", "n": None, "tags": None, "on": None}
    with pytest.raises(KeyError, match="colour"):
        T.complete({"id": "a", "colour": "red"})


def test_ddl_per_dialect_and_it_runs_on_sqlite() -> None:
    pg = " ".join(T.ddl("postgresql", "things__g2", "s1"))
    assert '"s1"."things__g2"' in pg and "JSONB" in pg and '"on" DATE' in pg
    lite = T.ddl("sqlite", "things__g2")
    db = sqlite3.connect(":memory:")
    for statement in lite:
        db.execute(statement)
    names = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    assert {"things__g2", "things__g2__n"} <= names


def test_memory_rows_hand_out_copies() -> None:
    rows = MemoryRows()
    rows.put(T, {"id": "a", "n": 1, "tags": {"x": 1}})
    got = rows.get(T, "a")
    assert got is not None
    got["n"] = 2
    got["tags"]["y"] = 2
    assert rows.get(T, "a") == {"id": "a", "n": 1, "tags": {"x": 1}, "on": None}
    rows.delete(T, "a")
    assert rows.get(T, "a") is None and rows.rows(T) == []


def test_the_registry_names_each_projection_once() -> None:
    names = [p.name for p in ALL]
    assert len(names) == len(set(names)) and "case_summary" in names
    assert by_name("case_summary") is ALL[names.index("case_summary")]
    with pytest.raises(KeyError, match="case_summary"):
        by_name("nonexistent")


def test_schema_suffixes_every_table() -> None:
    for p in ALL:
        ddl = p.schema("sqlite", "__g7")
        for t in p.tables:
            assert any(f'"{t.name}__g7"' in s for s in ddl)
