"""`jiedu creds`: the parties' identities on the log (身份凭据). Each organ's upstream system,
the cyberspace office's monitor and each of Jiedu's services connects with a seed of its own;
the server's authorisation, generated from them and the permission table, decides what each may
do (README: "Identities and permissions")."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Annotated

import typer

from services import bootstrap
from services.adapters.config import Settings
from services.adapters.identities import Credentials, MissingIdentity
from services.adapters.tokens import AUDITOR, Tokens
from services.cli.common import fail

creds = typer.Typer(help="Identities of the parties: issue, list, revoke, server config.",
                    no_args_is_help=True)

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="where the embedded server and credentials live")
]


tokens = typer.Typer(
    help="Bearer tokens of the HTTP API, per organ and role (shown once, kept hashed).",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    creds.add_typer(tokens, name="token")
    app.add_typer(creds, name="creds")


def _settings(data_dir: Path | None) -> tuple[Settings, Credentials]:
    settings = Settings.from_env(data_dir=data_dir)
    return settings, Credentials(settings.credentials)


def _applied(settings: Settings) -> str:
    written = bootstrap.reload_authorization(settings)
    if settings.nats_url:
        return f"install {written} on the server at {settings.nats_url} and reload it"
    return f"{written} rewritten; the embedded server (if running) reloaded it"


@creds.command("list")
def list_parties(data_dir: DataDir = None) -> None:
    """Every party with its public key and whether it is issued or revoked."""
    settings, credentials = _settings(data_dir)
    credentials.ensure(bootstrap.organs(settings))
    revoked = credentials.revoked()
    for party in credentials.parties(bootstrap.organs(settings)):
        if party in revoked:
            typer.echo(f"{party:<24} revoked   (was {revoked[party][-1]})")
        else:
            typer.echo(f"{party:<24} issued    {credentials.public_key(party)}")


@creds.command("issue")
def issue(
    party: Annotated[str, typer.Argument(help="an organ's code, `monitor`, or a service")],
    out: Annotated[Path | None, typer.Option(help="copy the seed file here (mode 0600)")] = None,
    data_dir: DataDir = None,
) -> None:
    """Hand a party its seed file (a new key if it was revoked); nats-py connects with
    `nkeys_seed=FILE` and `inbox_prefix=_INBOX_<party>`."""
    settings, credentials = _settings(data_dir)
    try:
        path = credentials.issue(party, bootstrap.organs(settings))
    except KeyError as e:
        typer.echo(str(e.args[0]), err=True)
        raise typer.Exit(2) from None
    if out is not None:
        shutil.copyfile(path, out)
        os.chmod(out, 0o600)
        path = out
    typer.echo(f"{party}: {credentials.public_key(party)} → {path}")
    typer.echo(_applied(settings), err=True)


@creds.command("revoke")
def revoke(
    party: Annotated[str, typer.Argument(help="an organ's code, `monitor`, or a service")],
    data_dir: DataDir = None,
) -> None:
    """Withdraw a party's identity: its seed is deleted, its key recorded as revoked and left
    out of the authorisation, which takes effect on the server's reload (no restart): its
    connections are closed and it cannot connect again."""
    settings, credentials = _settings(data_dir)
    try:
        key = credentials.revoke(party)
    except MissingIdentity as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{party}: {key} revoked")
    typer.echo(_applied(settings), err=True)


@creds.command("config")
def config(
    out: Annotated[Path | None, typer.Option(help="write it here too")] = None,
    data_dir: DataDir = None,
) -> None:
    """The server's authorisation (nats-server `authorization` block, included by
    deploy/nats-server.conf's users): what an operator installs on an existing server."""
    settings, credentials = _settings(data_dir)
    written = credentials.write_authorization(bootstrap.organs(settings))
    if out is not None:
        shutil.copyfile(written, out)
    typer.echo(written.read_text(), nl=False)


@tokens.command("issue")
def token_issue(
    party: Annotated[
        str, typer.Argument(help="an organ's code (gov_office: the office's role) or `auditor`")
    ],
    data_dir: DataDir = None,
) -> None:
    """Make an HTTP API token and print it once (only its hash is kept): an organ's code gives
    a department's token (gov_office: the government office's), `auditor` an auditor's."""
    settings, _ = _settings(data_dir)
    if party != AUDITOR and party not in bootstrap.organs(settings):
        fail(f"{party!r} is neither an organ of the district nor `auditor`")
    record, token = Tokens(settings.credentials).issue(party)
    typer.echo(token)
    typer.echo(f"{party}: token {record.id}, role {record.role}; shown once, kept hashed", err=True)


@tokens.command("list")
def token_list(data_dir: DataDir = None) -> None:
    """Every token: its ID, party, role, when issued and, if so, revoked (never the secret)."""
    settings, _ = _settings(data_dir)
    for r in Tokens(settings.credentials).records().values():
        state = f"revoked {r.revoked_at}" if r.revoked_at else "live"
        typer.echo(f"{r.id}  {r.party:<24} {r.role:<10} issued {r.issued_at}  {state}")


@tokens.command("revoke")
def token_revoke(
    token: Annotated[str, typer.Argument(help="a token's ID, or a party (all its tokens)")],
    data_dir: DataDir = None,
) -> None:
    """Revoke a token, or every live token of a party: refused from the next request on."""
    settings, _ = _settings(data_dir)
    done = Tokens(settings.credentials).revoke(token)
    if not done:
        fail(f"no live token {token!r}", code=1)
    for r in done:
        typer.echo(f"{r.id} ({r.party}) revoked")
