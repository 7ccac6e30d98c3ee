"""`jiedu privacy subject|erase`: a citizen's personal data (个人信息), found by its subject ID
and erased by destroying the subject's keys (crypto-shredding, see `services.privacy`).

`subject` computes the subject ID a person's contact maps to (the key store's secret is needed;
nothing is looked up by contact). `erase` destroys the keys and records a PersonalDataErased on
every case the subject appears on, as the privacy party; afterwards every view, replay and export
shows the fields as erased (已删除)."""

from __future__ import annotations

import asyncio
import getpass
from typing import Annotated

import typer

from domain.privacy import subject_of
from events.catalogue import Asker, ErasureReason
from services import bootstrap
from services.adapters.config import Settings
from services.adapters.eventlog import EventLog
from services.adapters.keystore import KeyStore, keystore_path
from services.cli.common import DataDir, Json, fail, print_json
from services.privacy import erase as erase_subject

privacy = typer.Typer(help="Citizens' personal data: subject IDs and erasure (个人信息删除).")


def register(app: typer.Typer) -> None:
    app.add_typer(privacy, name="privacy")


@privacy.command()
def subject(
    phone: Annotated[str | None, typer.Option(help="the person's phone number")] = None,
    email: Annotated[str | None, typer.Option(help="the person's e-mail address")] = None,
    name: Annotated[str | None, typer.Option(help="the name, if no contact was given")] = None,
    data_dir: DataDir = None,
) -> None:
    """The data subject ID of a person, from the contact they asked with."""
    asker = Asker(phone=phone, email=email, name=name)
    keys = KeyStore(keystore_path(Settings.from_env(data_dir=data_dir)))
    try:
        found = subject_of(keys.secret(), asker)
    finally:
        keys.close()
    if found is None:
        fail("give --phone, --email or --name")
    typer.echo(found)


@privacy.command()
def erase(
    subject_id: Annotated[str, typer.Argument(metavar="SUBJECT", help="ds-… (see `subject`)")],
    reason: Annotated[ErasureReason, typer.Option(help="why")] = ErasureReason.REQUEST,
    by: Annotated[str | None, typer.Option(help="who erases (default: the login name)")] = None,
    as_json: Json = False,
    data_dir: DataDir = None,
) -> None:
    """Destroy the subject's keys and record the erasure on every case they appear on."""
    settings = Settings.from_env(data_dir=data_dir)

    async def run() -> None:
        nc = await bootstrap.connect(bootstrap.nats_url(settings), "jiedu-privacy")
        keys = KeyStore(keystore_path(settings))
        try:
            done = await erase_subject(EventLog(nc), keys, subject_id, by=by or getpass.getuser(),
                                       reason=reason)
        except LookupError as e:
            fail(str(e), 1)
        finally:
            keys.close()
            await nc.close()
        if as_json:
            print_json({"subject_id": done.subject_id, "key_versions": list(done.key_versions),
                        "recorded": done.recorded})
            return
        typer.echo(f"erased {done.subject_id}: key versions {list(done.key_versions)} destroyed")
        for case, event_id in done.recorded.items():
            typer.echo(f"  {case}: {event_id}")

    asyncio.run(run())
