"""`jiedu bench --parts qa` at small sizes: every figure the issue names is there, as a number,
on both stores, beside its baseline; its targets are reported, not asserted. The figures
themselves come from `jiedu bench --parts qa` at 10,000 and 100,000 entries."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from pgtools import PG_URL, postgres_or_skip
from projections.qa_library import QALibrary
from services.adapters.readmodels import open_store
from services.tools import bench, bench_qa, qa_set


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    postgres_or_skip()
    workdir = Path(tmp_path_factory.mktemp("bench-qa"))
    out = {"qa": bench.qa_part(workdir, PG_URL, sizes=(300, 600))}  # small: for the shape
    out["targets"] = bench.targets(out)
    return out


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def test_quality_figures_for_the_library_and_the_baseline(result: dict[str, Any]) -> None:
    quality = result["qa"]["quality"]
    for name in ("library", "baseline"):
        q = quality[name]
        assert q["questions"] >= 300 and q["unanswerable"] >= 30 and q["entries"] >= 150
        for key in ("recall_at_1", "recall_at_5", "mrr"):
            assert 0 < q[key] <= 1, (name, key)
        assert q["recall_at_1"] <= q["mrr"] <= q["recall_at_5"] <= 1
        threshold = str(result["qa"]["threshold"])
        assert q["by_threshold"][threshold]["unanswerable_answered"] == q["unanswerable_answered"]


def test_latency_on_both_stores_at_each_size_beside_the_baseline(result: dict[str, Any]) -> None:
    latency = result["qa"]["latency"]
    assert set(latency) == {"300", "600"}
    stores = {"sqlite", "postgresql"} if os.environ.get("JIEDU_REQUIRE_POSTGRES") == "1" else {
        "sqlite"}
    for by_store in latency.values():
        assert stores <= set(by_store)
        for by in by_store.values():
            for name in ("library", "baseline"):
                assert _positive(by[name]["p50_ms"]) and by[name]["p99_ms"] >= by[name]["p50_ms"]
                assert by[name]["searches"] >= 300


def test_the_qa_targets_are_reported_not_asserted(result: dict[str, Any]) -> None:
    targets = result["targets"]
    assert {k for k in targets if k.startswith("qa.")} == {
        "qa.quality.library.recall_at_1", "qa.quality.library.recall_at_5",
        "qa.quality.library.unanswerable_answered",
        "qa.latency.100000.sqlite.library.p99_ms", "qa.latency.100000.postgresql.library.p99_ms",
    }
    assert targets["qa.quality.library.recall_at_1"]["met"] in (True, False)
    assert targets["qa.latency.100000.sqlite.library.p99_ms"]["met"] is None  # not at this size


def test_the_fast_fill_gives_the_rows_of_applying_every_event(tmp_path: Path) -> None:
    """The benchmark's large libraries are filled by copying prototypes: the same rows as the
    projection applying each event through the runner's unit of work."""
    qa = qa_set.load()
    size = len(qa.entries) + 2 * bench_qa.PER_POLICY + 7  # some synthetic policies, one partial
    slow, fast = (open_store(f"sqlite:///{tmp_path / name}.sqlite3", tmp_path)
                  for name in ("slow", "fast"))
    projection = QALibrary()
    bench_qa.project(slow, projection, bench_qa.library_events(qa, size))
    bench_qa.load(fast, projection, qa, size)
    expected = slow.dump(projection)
    assert len(expected["qa_entries"]) == size
    assert fast.dump(projection) == expected
