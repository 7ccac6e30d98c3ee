"""`jiedu keys init`, `jiedu audit show|verify|checkpoint|export` and `jiedu replay`: the
auditors' commands (审计).

`register(app)` adds them to the `jiedu` typer app (`services.cli`). `keys init` needs nothing
but a directory. `audit show` and `audit export` read the audit trail read model (SQLite under
the data dir, or DATABASE_URL). `audit verify`, `audit checkpoint` and `replay` also read the log,
from the NATS server that serves the data dir (started for the command if none runs).
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from nats.js.errors import NotFoundError
from rich.console import Console
from rich.table import Table as RichTable

from domain.calendar import SHANGHAI
from domain.chain import Checkpoint, key_id
from services import audit, bootstrap
from services.adapters import permissions
from services.adapters.config import Settings
from services.cli.common import DataDir, Json, fail, local_time, out_dir, print_json
from services.projector import store_for

PublicKey = Annotated[
    Path | None,
    typer.Option("--public-key", help="the office's public key (default: DATA_DIR/keys/…pub.pem)"),
]
PrivateKey = Annotated[
    Path | None,
    typer.Option("--private-key", help="the office's private key (default: DATA_DIR/keys/…pem)"),
]

keys_app = typer.Typer(no_args_is_help=True, help="The office's Ed25519 signing key (签名密钥).")
audit_app = typer.Typer(
    no_args_is_help=True,
    help="Audit trail, hash chain and signed checkpoints (审计轨迹与防篡改校验).",
)


def register(app: typer.Typer) -> None:
    """Add `keys`, `audit` and `replay` to the `jiedu` command line."""
    app.add_typer(keys_app, name="keys")
    app.add_typer(audit_app, name="audit")
    app.command("replay")(replay_command)


def _settings(data_dir: Path | None) -> Settings:
    return Settings.from_env(data_dir=data_dir)


# ── keys ─────────────────────────────────────────────────────────────────────────────────────


@keys_app.command("init")
def keys_init(
    data_dir: DataDir = None,
    private_key: PrivateKey = None,
    public_key: PublicKey = None,
    force: Annotated[bool, typer.Option(help="replace an existing key pair")] = False,
) -> None:
    """Create the office's Ed25519 key pair: the private key (mode 0600) signs checkpoints; give
    the public key to auditors."""
    settings = _settings(data_dir)
    default_private, default_public = audit.key_paths(settings.data_dir)
    private, public = private_key or default_private, public_key or default_public
    try:
        kid = audit.init_keys(private, public, force=force)
    except FileExistsError as e:
        typer.echo(f"{e}: not replaced (use --force to replace the key pair)", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"key {kid}\nprivate: {private} (0600)\npublic:  {public}")


# ── show and export ──────────────────────────────────────────────────────────────────────────


def _local(at: datetime | None) -> str:
    return f"{at.astimezone(SHANGHAI):%Y-%m-%d %H:%M}" if at is not None else ""


@audit_app.command("show")
def show(
    case: Annotated[str, typer.Argument(help="case ID")],
    as_json: Json = False,
    data_dir: DataDir = None,
) -> None:
    """One case's story, in log order: when, who, what, the rule, what caused it (the
    canonical JSON Lines of an export: `jiedu audit export --case`)."""
    store = store_for(_settings(data_dir))
    try:
        rows = audit.trail(store, case=case)
    finally:
        store.close()
    if not rows:
        typer.echo(f"no audit rows for case {case}", err=True)
        raise typer.Exit(1)
    if as_json:
        print_json(rows)
        return
    seq_of = {r["event_id"]: r["seq"] for r in rows}
    table = RichTable(title=f"审计轨迹 · {case} · {len(rows)} event(s)", box=None,
                      header_style="bold")
    for h in ("seq", "occurred (Beijing)", "who", "dept/system", "what", "cause", "link"):
        table.add_column(h, no_wrap=h != "what", overflow="fold")
    for r in rows:
        cause = r["causation_id"]
        table.add_row(
            str(r["seq"]), _local(r["occurred_at"]), r["actor_name"] or r["actor_id"],
            f"{r['department']}/{r['source_system']}",
            f"{r['summary_zh']}" + (f" [{r['rule_id']}]" if r["rule_id"] else ""),
            (f"← #{seq_of[cause]}" if cause in seq_of else (cause or "")),
            (r["link"] or "")[:12],
        )
    Console().print(table)


@audit_app.command("export")
def export(
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv")] = "jsonl",
    case: Annotated[str | None, typer.Option(help="only this case")] = None,
    department: Annotated[str | None, typer.Option(help="only this accountable department")] = None,
    actor: Annotated[str | None, typer.Option(help="only this actor ID")] = None,
    rule: Annotated[str | None, typer.Option(help="only this rule ID, e.g. PUB-2")] = None,
    since: Annotated[str | None, typer.Option(help="occurred at or after (ISO; Beijing)")] = None,
    until: Annotated[str | None, typer.Option(help="occurred before (ISO; Beijing)")] = None,
    as_html: Annotated[bool, typer.Option("--html", help="an HTML timeline of --case")] = False,
    out: Annotated[Path | None, typer.Option(help="write here instead of standard output")] = None,
    data_dir: DataDir = None,
) -> None:
    """The audit trail as JSON Lines, CSV (UTF-8 with BOM) or, for one case, a self-contained
    HTML timeline."""
    if fmt not in ("jsonl", "csv"):
        typer.echo("--format must be jsonl or csv", err=True)
        raise typer.Exit(2)
    if as_html and not case:
        typer.echo("--html needs --case", err=True)
        raise typer.Exit(2)
    times = [audit.parse_as_of(t) if t else None for t in (since, until)]
    if any(isinstance(t, int) for t in times):
        typer.echo("--since/--until take times, not sequences", err=True)
        raise typer.Exit(2)
    store = store_for(_settings(data_dir))
    try:
        rows = audit.trail(
            store, case=case, department=department, actor=actor,
            rule=rule.upper() if rule else None,
            since=times[0] if isinstance(times[0], datetime) else None,
            until=times[1] if isinstance(times[1], datetime) else None,
        )
    finally:
        store.close()
    if as_html:
        assert case is not None
        body = audit.html_timeline(case, rows).encode()
    elif fmt == "csv":
        body = audit.to_csv(rows)
    else:
        body = audit.to_jsonl(rows)
    if out is None:
        sys.stdout.buffer.write(body)
    else:
        out.write_bytes(body)
        typer.echo(f"{len(rows)} row(s) → {out}", err=True)


# ── verify and checkpoint ────────────────────────────────────────────────────────────────────


@audit_app.command("verify")
def verify_command(
    data_dir: DataDir = None,
    public_key: PublicKey = None,
    skip_rows: Annotated[
        bool, typer.Option("--skip-rows", help="check the chain and checkpoints only")
    ] = False,
    as_json: Json = False,
) -> None:
    """Recompute the hash chain from the log and check it against the audit trail's rows and
    every signed checkpoint. Exit 0 when all hold; else name the first sequence where they
    diverge and exit 1."""
    settings = _settings(data_dir)
    key_file = public_key or audit.key_paths(settings.data_dir)[1]
    key = audit.load_public_key(key_file) if key_file.exists() else None
    started = time.perf_counter()
    try:
        with bootstrap.serving(settings) as s:
            report = asyncio.run(_verify(s, key, skip_rows))
    except NotFoundError:
        typer.echo("the log (stream EVENTS) does not exist yet: start `jiedu up` first", err=True)
        raise typer.Exit(2) from None
    if key is None:
        report.notes.append(f"no public key at {key_file}: checkpoints cannot be verified")
    seconds = time.perf_counter() - started
    audit.record_verify(settings.data_dir, {
        **report.as_dict(), "seconds": round(seconds, 3),
        "verified_at": datetime.now(UTC).isoformat(),
    })
    if as_json:
        print_json({**report.as_dict(), "seconds": round(seconds, 3)})
    else:
        typer.echo(
            f"log: {report.events} event(s), head {report.head_seq} {report.head}\n"
            f"audit rows: {report.rows}; checkpoints: {report.checkpoints}; {seconds:.2f} s"
        )
        for note in report.notes:
            typer.echo(f"note: {note}")
        d = report.divergence
        typer.echo("OK: the log, the audit trail and every checkpoint agree" if d is None
                   else f"DIVERGENCE at sequence {d.seq}: {d.reason}")
    raise typer.Exit(0 if report.ok else 1)


async def _verify(settings: Settings, key: Ed25519PublicKey | None, skip_rows: bool
                  ) -> audit.AuditReport:
    nc = await bootstrap.connect(
        bootstrap.nats_url(settings), "jiedu-audit-verify", party=permissions.AUDITOR
    )
    store = await asyncio.to_thread(store_for, settings)
    try:
        return await audit.verify_log(nc.jetstream(), store, key, skip_rows=skip_rows)
    finally:
        await nc.close()
        await asyncio.to_thread(store.close)


@audit_app.command("checkpoint")
def checkpoint_command(
    data_dir: DataDir = None,
    private_key: PrivateKey = None,
    label: Annotated[str, typer.Option(help="on_demand, or e.g. quarter:2026Q3")] = "on_demand",
    upto: Annotated[int | None, typer.Option(help="sign the head after this sequence")] = None,
    as_json: Json = False,
) -> None:
    """Sign the current chain head (or the head after --upto) with the office's key and append
    it to the CHECKPOINTS stream."""
    settings = _settings(data_dir)
    key_file = private_key or audit.key_paths(settings.data_dir)[0]
    if not key_file.exists():
        typer.echo(f"no private key at {key_file}: run `jiedu keys init` first", err=True)
        raise typer.Exit(2)
    key = audit.load_private_key(key_file)
    with bootstrap.serving(settings) as s:
        cp = asyncio.run(_checkpoint(s, key, label, upto))
    if as_json:
        print_json({**cp.as_dict(), "public_key_id": key_id(key.public_key())})
        return
    signed = local_time(datetime.fromisoformat(cp.signed_at))
    typer.echo(f"signed {cp.label} at sequence {cp.seq}: link {cp.link}\n"
               f"at {signed} with key {key_id(key.public_key())}")


async def _checkpoint(
    settings: Settings, key: Ed25519PrivateKey, label: str, upto: int | None
) -> Checkpoint:
    nc = await bootstrap.connect(bootstrap.nats_url(settings), "jiedu-audit-checkpoint")
    try:
        return await audit.checkpoint(nc.jetstream(), key, label=label, upto=upto)
    finally:
        await nc.close()


# ── replay ───────────────────────────────────────────────────────────────────────────────────


def replay_command(
    as_of: Annotated[
        str, typer.Option("--as-of", help="a log sequence, or a time (ISO 8601; Beijing if no zone)")
    ],
    out: Annotated[Path, typer.Option("--out", help="a new directory for the replayed store")],
    by: Annotated[
        str, typer.Option(help="for a time: recorded (stored time, default) or occurred")
    ] = "recorded",
    data_dir: DataDir = None,
) -> None:
    """Build every read model as of a point of the log into a fresh store under --out (the live
    stores are not touched) and export each table as canonical JSON Lines with a manifest."""
    if by not in ("recorded", "occurred"):
        typer.echo("--by must be recorded or occurred", err=True)
        raise typer.Exit(2)
    try:
        point = audit.parse_as_of(as_of)
    except ValueError:
        typer.echo(f"--as-of {as_of!r} is neither a sequence nor an ISO 8601 time", err=True)
        raise typer.Exit(2) from None
    if (out / "readmodels.sqlite3").exists():
        fail(f"{out} holds a store already: replay into a new directory")
    out_dir(out)
    with bootstrap.serving(_settings(data_dir)) as s:
        done = asyncio.run(_replay(s, out, point, by))
    typer.echo(f"replayed as of sequence {done.as_of_seq} (head {done.head}) into {done.out}")
    for table, digest in sorted(done.files.items()):
        typer.echo(f"  {table}.jsonl  sha256 {digest}")


async def _replay(
    settings: Settings, out: Path, point: int | datetime, by: str
) -> audit.Replayed:
    nc = await bootstrap.connect(
        bootstrap.nats_url(settings), "jiedu-replay", party=permissions.AUDITOR
    )
    try:
        return await audit.replay_log(
            nc.jetstream(), out, point, "occurred" if by == "occurred" else "recorded"
        )
    finally:
        await nc.close()
