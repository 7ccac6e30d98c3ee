"""`jiedu bench`: the benchmark (`services/tools/bench.py`) from the command line.

`register(app)` adds the command to the `jiedu` typer app (`services.cli`). It starts its own
nats-servers (never the one `jiedu up` runs), prints a table and, with `--json FILE`, writes
every figure to FILE.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table as RichTable

from services.tools import bench, bench_api, cluster_bench


def register(app: typer.Typer) -> None:
    """Add `bench` to the `jiedu` command line."""
    app.command("bench")(bench_command)


def _parts(text: str) -> list[str]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    unknown = set(parts) - set(bench.PARTS) - set(bench.OPTIONAL_PARTS)
    if unknown or not parts:
        raise typer.BadParameter(f"choose among {','.join(bench.PARTS + bench.OPTIONAL_PARTS)}")
    return parts


def bench_command(
    events: Annotated[int, typer.Option("--events", min=1, help="N: events per part")] = 100_000,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="write every figure to this JSON file")
    ] = None,
    postgres: Annotated[
        str | None,
        typer.Option(
            "--postgres",
            help="PostgreSQL URL for the rebuild (default: DATABASE_URL if it is one, else "
            f"{bench.DEFAULT_POSTGRES}); a fresh schema is used and dropped",
        ),
    ] = None,
    parts: Annotated[
        str, typer.Option(
            "--parts", help="which parts to run: ingest,latency,rebuild (default), report, qa, api, "
            "fuzz (the hostile mix vs good events), verify (audit verify and replay: seconds, peak RSS)"
        )
    ] = ",".join(bench.PARTS),
    latency_events: Annotated[
        int | None,
        typer.Option(
            "--latency-events", min=1,
            help=f"events published for the latency part (default: min(N, {bench.LATENCY_EVENTS}))",
        ),
    ] = None,
    rate: Annotated[
        float, typer.Option("--rate", min=1, help="events/s published for the latency part")
    ] = bench.RATE,
    on_cluster: Annotated[
        bool,
        typer.Option(
            "--cluster",
            help="the loopback three-node cluster (R3) beside a single node: ingest, latency, "
            "rebuild, and the time from killing the EVENTS leader to the next accepted event",
        ),
    ] = False,
) -> None:
    """Measure ingest, latency and rebuild, each beside its baseline in the same run."""
    console = Console(stderr=True)
    if on_cluster:
        figures = asyncio.run(
            cluster_bench.run(
                events, latency_events=latency_events or min(events, bench.LATENCY_EVENTS),
                rate=rate, say=lambda line: console.print(f"[dim]{line}[/dim]"),
            )
        )
        if json_file is not None:
            json_file.parent.mkdir(parents=True, exist_ok=True)
            json_file.write_bytes(orjson.dumps(figures, option=orjson.OPT_INDENT_2) + b"\n")
        Console().print(cluster_table(figures))
        return
    result = asyncio.run(
        bench.run(
            events,
            postgres_url=bench.postgres_url(postgres),
            parts=_parts(parts),
            latency_events=latency_events,
            rate=rate,
            say=lambda line: console.print(f"[dim]{line}[/dim]"),
            more={"api": lambda workdir, say: bench_api.api_part(workdir, say=say)},
        )
    )
    if json_file is not None:
        json_file.parent.mkdir(parents=True, exist_ok=True)
        json_file.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
    Console().print(table(result))


def _num(value: Any, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and value < 10:
        return f"{value:.3g}{unit}"
    return f"{value:,.0f}{unit}"


def _met(met: bool | None) -> str:
    return {True: " [green]met[/green]", False: " [red]missed[/red]", None: ""}[met]


def table(result: dict[str, Any]) -> RichTable:
    """The figures as a readable table: figure, baseline, ratio, target (met or missed)."""
    m = result["machine"]
    load = result["load"]
    t = RichTable(
        title=f"jiedu bench — N = {result['n']:,}",
        caption=f"{m['cpus']} × {m['cpu_model']}, {m['memory_gb']} GB, {m['nats_server']}; "
        f"load (1/5/15 min) {load['start']} → {load.get('end')}",
    )
    t.add_column("measure", min_width=24)
    for column in ("figure", "baseline", "ratio"):
        t.add_column(column, justify="right")
    t.add_column("target")
    targets = result.get("targets", {})

    def target(key: str) -> str:
        found = targets.get(key)
        return f"{found['target']}{_met(found['met'])}" if found else ""

    for key, label in (("ingest", "ingest ev/s"), ("ingest_default_sync", "  with default sync")):
        x = result.get(key)
        if x is not None:
            t.add_row(
                label, _num(x["events_per_s"]), _num(x["baseline_per_s"]), _num(x["ratio"]),
                target("ingest.events_per_s") if key == "ingest" else
                target("ingest_default_sync.ratio"),
            )
            if key == "ingest":
                t.add_row("", "", "", "", target("ingest.ratio"))
    fz = result.get("fuzz")
    if fz is not None:
        t.add_row("intake msg/s, fuzz mix vs good", _num(fz["messages_per_s"]),
                  _num(fz["baseline_per_s"]), _num(fz["ratio"]), target("fuzz.ratio"))
        t.add_row("  drained (incl. the wait for unknown cases)", _num(fz["drained_per_s"]),
                  _num(fz["drained_baseline_per_s"]), _num(fz["drained_ratio"]), "")
        t.add_row("  CPU ms per message", _num(fz["cpu_ms_per_message"]),
                  _num(fz["cpu_ms_per_message_good"]), _num(fz["cpu_ratio"]), "")
        t.add_row("  consumer-limit errors", _num(fz["consumer_limit_errors"]), "", "",
                  target("fuzz.consumer_limit_errors"))
    lat = result.get("latency_ms")
    if lat is not None:
        t.add_row(f"latency ms at {lat['rate_per_s']:g}/s p50", _num(lat["p50"]), "", "", "")
        t.add_row("  p99", _num(lat["p99"]), "", "", target("latency_ms.p99"))
        stored = lat["to_appended"]
        t.add_row("  publish→stored p50/p99", f"{_num(stored['p50'])}/{_num(stored['p99'])}")
    lat = result.get("latency_ms_default_sync")
    if lat is not None:
        t.add_row("  with default sync p50/p99", f"{_num(lat['p50'])}/{_num(lat['p99'])}")
    rb = result.get("rebuild")
    if rb is not None:
        for store, label in (("sqlite", "SQLite"), ("postgres", "PostgreSQL")):
            x = rb[store]
            figure = _num(x["events_per_s"]) if x.get("events_per_s") else "—"
            t.add_row(
                f"rebuild ev/s, {label}", figure, _num(rb["baseline_per_s"]), _num(x.get("ratio")),
                target(f"rebuild.{store}.ratio") if x.get("ratio") is not None
                else x.get("error", ""),
            )
        t.add_row("  peak RSS MB", _num(rb["peak_rss_mb"]), "", "", target("rebuild.peak_rss_mb"))
    qa = result.get("qa")
    if qa is not None:
        _qa_rows(t, qa, target)
    ver = result.get("verify")
    if ver is not None:
        raw = ver["baseline"]
        t.add_row("audit verify s (raw consumer)", _num(ver["seconds"]), _num(raw["seconds"]),
                  _num(_ratio(ver["seconds"], raw["seconds"])), target("verify.seconds"))
        t.add_row("  peak RSS MB", _num(ver["peak_rss_mb"]), _num(raw["peak_rss_mb"]), "",
                  target("verify.peak_rss_mb"))
        t.add_row("  verdict", "OK" if ver["ok"] else f"DIVERGENCE {ver['divergence']}")
    rep = result.get("replay")
    if rep is not None:
        t.add_row("replay s (raw consumer)", _num(rep["seconds"]), _num(rep["baseline_seconds"]),
                  _num(_ratio(rep["seconds"], rep["baseline_seconds"])), "")
        t.add_row("  peak RSS MB", _num(rep["peak_rss_mb"]), _num(rep["baseline_peak_rss_mb"]),
                  "", target("replay.peak_rss_mb"))
    api = result.get("api")
    if api is not None:
        floor = api["baseline_healthz"]
        t.add_row(f"API reads at {api['rate_per_s']:g}/s, ms p50/p99", "", "", "", "")
        t.add_row("  /healthz (baseline)", f"{_num(floor['p50'])}/{_num(floor['p99'])}")
        for name, x in api["reads"].items():
            t.add_row(f"  {name}", f"{_num(x['p50'])}/{_num(x['p99'])}",
                      f"{_num(floor['p50'])}/{_num(floor['p99'])}", "",
                      "" if not x["errors"] else f"{x['errors']} errors")
        t.add_row("  worst p99", _num(api["read_p99_ms"]), "", "", target("api.read_p99_ms"))
        i = api["intake"]
        t.add_row("HTTP intake ev/s", _num(i["http"]["events_per_s"]),
                  _num(i["nats"]["events_per_s"]), _num(i["ratio"]), target("api.intake.ratio"))
    return t


def _qa_rows(t: RichTable, qa: dict[str, Any], target: Any) -> None:
    """Issue 15's figures: the library's search beside single characters (the baseline)."""
    lib, base = qa["quality"]["library"], qa["quality"]["baseline"]
    threshold = qa["threshold"]
    for key, label in (
        ("recall_at_1", f"Q&A recall@1 ({lib['questions']} questions)"),
        ("recall_at_5", "  recall@5"),
        ("mrr", "  MRR"),
        ("unanswerable_answered", f"  unanswerable answered (threshold {threshold})"),
        ("answerable_declined", "  answerable declined"),
    ):
        t.add_row(label, f"{lib[key]:.3f}", f"{base[key]:.3f}", "",
                  target(f"qa.quality.library.{key}"))
    for size, stores in qa["latency"].items():
        for store, by in stores.items():
            mine, other = by["library"], by.get("baseline", {})
            for pct in ("p50_ms", "p99_ms"):
                t.add_row(
                    f"Q&A search ms, {int(size):,} entries, {store} {pct[:3]}",
                    _num(mine[pct]), _num(other.get(pct)), _num(_ratio(mine[pct], other.get(pct))),
                    target(f"qa.latency.{size}.{store}.library.{pct}") if pct == "p99_ms" else "",
                )


def _ratio(figure: float, baseline: float | None) -> float | None:
    return round(figure / baseline, 2) if baseline else None


def cluster_table(result: dict[str, Any]) -> RichTable:
    """`--cluster`'s figures: each measure on the single node and on the cluster, this run."""
    one, three = result["single"], result["cluster"]
    t = RichTable(
        title=f"jiedu bench --cluster — N = {result['n']:,}, sync_interval always",
        caption=f"load (1/5/15 min) {result['load']['start']} → {result['load']['end']}",
    )
    for column in ("measure", "single node", "cluster (R3)", "ratio"):
        t.add_column(column, justify="left" if column == "measure" else "right")
    ratio = result["ratio"]
    t.add_row("ingest ev/s", _num(one["ingest_per_s"]), _num(three["ingest_per_s"]),
              _num(ratio["ingest"]))
    rate = one["latency_ms"]["rate_per_s"]
    for p in ("p50", "p99"):
        t.add_row(f"latency ms at {rate:g}/s {p}", _num(one["latency_ms"][p]),
                  _num(three["latency_ms"][p]), "")
    t.add_row("rebuild ev/s (SQLite)", _num(one["rebuild_per_s"]), _num(three["rebuild_per_s"]),
              _num(ratio["rebuild"]))
    f = three["failover"]
    t.add_row(f"kill -9 EVENTS leader ({f['killed']}) → next event s", "",
              _num(f["to_next_accepted_s"]), "")
    t.add_row("  lost / doubled", "", f"{f['lost']} / {f['doubled']}", "")
    return t
