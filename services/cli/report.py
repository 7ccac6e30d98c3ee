"""`jiedu report quarterly 2026Q3 --out DIR`: the quarterly inspection report (SUP-1, SUP-2).

`register(app)` adds the `report` command group to the `jiedu` typer app (`services.cli`).
The report reads the read models (SQLite under the data dir, or DATABASE_URL). The statistics
read model (`projections.statistics`) is kept by the projector once it is registered in
`projections.ALL`; until then, or whenever it is missing or behind the other read models, this
command builds it from the log first (which needs the NATS server of the data dir: Jiedu's own
is started for the command if none runs).
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from domain.calendar import SHANGHAI
from projections.statistics import Statistics
from services import audit, bootstrap, report
from services.adapters.config import Settings
from services.adapters.readmodels import ReadStore
from services.cli.common import DataDir, fail, out_dir
from services.projector import rebuild, store_for
from services.report import statistics_behind

report_app = typer.Typer(no_args_is_help=True, help="Reports published from the log (SUP-1).")


def register(app: typer.Typer) -> None:
    """Add `report quarterly` to the `jiedu` command line."""
    app.add_typer(report_app, name="report")


async def _build_statistics(settings: Settings, store: ReadStore) -> None:
    nc = await bootstrap.connect(bootstrap.nats_url(settings), "jiedu-report")
    try:
        await rebuild(nc.jetstream(), store, Statistics())
    finally:
        await nc.close()


async def _signed_head(settings: Settings, quarter: str) -> str | None:
    """The signed chain head the report pins: the quarter's own checkpoint, else the latest."""
    nc = await bootstrap.connect(settings.nats_url or "", "jiedu-report")
    try:
        found = await audit.read_checkpoints(nc.jetstream())
    finally:
        await nc.close()
    own = [cp for cp in found if cp.label == f"quarter:{quarter}"]
    if not (own or found):
        return None
    chosen = (own or found)[-1]
    return (
        f"{chosen.label} · sequence {chosen.seq} · link {chosen.link} · signed {chosen.signed_at}"
        f" · key {chosen.key_id} · Ed25519 {chosen.signature}"
    )


@report_app.command("quarterly")
def quarterly(
    quarter: Annotated[str, typer.Argument(help="the quarter, e.g. 2026Q3")],
    out: Annotated[Path, typer.Option("--out", help="directory to write the report into")],
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="ISO time the report is as of (default: the last event's)"),
    ] = None,
    weights: Annotated[
        Path | None, typer.Option("--weights", help="SUP-2 weights (default: deploy file)")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Write the quarterly inspection report: index.html, a page per department,
    statistics.csv and statistics.json. Same log and same --as-of: byte-identical files."""
    try:
        chosen = report.Quarter.parse(quarter)
        moment = datetime.fromisoformat(as_of) if as_of else None
    except ValueError as e:
        fail(str(e))
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=SHANGHAI)
    try:
        report.load_weights(weights)
    except (OSError, ValueError, KeyError, TypeError) as e:
        fail(f"--weights {weights or 'default'}: not SUP-2 weights ({e})")
    out_dir(out)
    settings = Settings.from_env(data_dir=data_dir)
    store = store_for(settings)
    try:
        if statistics_behind(store):
            typer.echo("building the statistics read model from the log …", err=True)
            with bootstrap.serving(settings) as running:
                asyncio.run(_build_statistics(running, store))
        inputs = report.load_inputs(store)
    finally:
        store.close()
    with bootstrap.serving(settings) as running:
        head = asyncio.run(_signed_head(running, chosen.label))
    try:
        built = report.quarterly(
            inputs, chosen.label, out, as_of=moment, weights_path=weights, chain_head=head
        )
    except OSError as e:
        fail(f"--out {out}: cannot write the report ({e.strerror or e})")
    district = built.figures["quarter"].get(report.DISTRICT, {})
    sys.stdout.write(
        f"{out / 'index.html'}: {len(built.departments)} departments, "
        f"{len(district.get('policies_issued', ()))} in-scope policies issued in {chosen.label}, "
        f"log {built.log['first_sequence']}..{built.log['last_sequence']}\n"
    )
