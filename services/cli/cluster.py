"""`jiedu cluster up|streams`: the three-node layout (deploy/cluster/) on one machine, and the
R3 streams of a deployed cluster.

`register(app)` adds the command group to the `jiedu` typer app (`services.cli`).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from services import bootstrap
from services.adapters.config import Settings
from services.cluster import PROCESSES, Layout, layout_for

DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/test?schema=jiedu_cluster"

cluster_app = typer.Typer(no_args_is_help=True, help="A three-node NATS cluster (R3).")


def register(app: typer.Typer) -> None:
    """Add `cluster` to the `jiedu` command line."""
    app.add_typer(cluster_app, name="cluster")


@cluster_app.command("up")
def up_command(
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="nodes' stores, processes' data and logs")
    ],
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help=f"PostgreSQL for the read models (default DATABASE_URL, else {DEFAULT_DATABASE})",
        ),
    ] = None,
) -> None:
    """Start the cluster layout on loopback: three nodes on free ports, the streams at three
    replicas, two intakes, two projectors (one feeding, one standing by), two deadline
    services. Prints NATS_URL; runs until Ctrl-C, then stops it all."""
    url = database_url or Settings.from_env().database_url or DEFAULT_DATABASE
    layout = layout_for(data_dir, url)
    asyncio.run(_up(layout))


async def _up(layout: Layout) -> None:
    try:
        await layout.start()
        typer.echo(
            f"cluster of 3 nodes (stores under {layout.cluster.directory}); "
            f"processes {', '.join(PROCESSES)} (logs under {layout.settings.data_dir}/<name>/)\n"
            f"NATS_URL={layout.url}\n"
            f"JIEDU_CREDENTIALS={layout.credentials.directory}\n"
            f"DATABASE_URL={layout.settings.database_url}",
            err=True,
        )
        await bootstrap.until_signalled()
    finally:
        await layout.stop()


@cluster_app.command("streams")
def streams_command() -> None:
    """Create (or raise to JIEDU_REPLICAS copies) the streams and buckets on the cluster that
    NATS_URL names, as the operator; then check that the log cannot shrink."""
    settings = Settings.from_env()
    if not settings.nats_url:
        typer.echo("NATS_URL must name the cluster's nodes", err=True)
        raise typer.Exit(2)
    asyncio.run(bootstrap.create_streams(settings))
    typer.echo(f"streams ready with {settings.replicas} replica(s)")
