"""`jiedu api`: the HTTP API alone, against a running system (its NATS server and read models)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated

import typer

from services import bootstrap
from services.adapters.config import Settings
from services.api.process import DEFAULT_HOST, DEFAULT_PORT, parse_address, serve
from services.cli.common import DataDir, fail


def register(app: typer.Typer) -> None:
    app.command("api")(api)


def api(
    http: Annotated[
        str, typer.Option("--http", envvar="JIEDU_HTTP", help="serve at HOST:PORT")
    ] = f"{DEFAULT_HOST}:{DEFAULT_PORT}",
    data_dir: DataDir = None,
) -> None:
    """Serve the HTTP API (/api/v1, /metrics, /healthz, /readyz) until Ctrl-C: the read models
    of the data dir (or DATABASE_URL) and the NATS server `jiedu up` runs (or NATS_URL)."""
    try:
        host, port = parse_address(http)
    except ValueError:
        fail(f"--http {http}: give HOST:PORT, e.g. 127.0.0.1:8080")
    with (
        contextlib.suppress(KeyboardInterrupt),
        bootstrap.serving(Settings.from_env(data_dir=data_dir)) as settings,
    ):
        typer.echo(f"HTTP API at http://{host}:{port}/api/v1/docs", err=True)
        typer.echo(console_addresses(host, port), err=True)
        asyncio.run(serve(settings, host, port))


def console_addresses(host: str, port: int) -> str:
    """Where `jiedu up` and `jiedu api` say the console and the public Q&A page are."""
    base = f"http://{host}:{port}"
    return (f"web console at {base}/console/ (log in with a token from "
            f"`jiedu creds token issue PARTY`); public Q&A search at {base}/qa")
