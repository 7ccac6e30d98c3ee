"""The published contract, generated from the code: a JSON Schema per event type and an
AsyncAPI 3 document of every channel. `python -m events.contract` rewrites `events/schema/`;
a test fails when the files there are stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
from faststream.nats import JStream, NatsBroker
from faststream.specification import AsyncAPI

from events import streams
from events.catalogue import EVENT_TYPES, Event
from events.outcomes import Outcome

SCHEMA_DIR = Path(__file__).parent / "schema"
VERSION = "1"


def asyncapi() -> dict[str, object]:
    """Channels as the services use them; the broker here is for documentation only."""
    broker = NatsBroker("nats://127.0.0.1:4333", description="Jiedu's own nats-server 2.15")

    @broker.subscriber(
        streams.INTAKE_SUBJECT,
        stream=JStream(streams.INTAKE, declare=False),
        title="intake",
        description="Upstream OA systems and the cyberspace office's monitor publish events "
        "here. A source may publish only under its own department. Work queue: kept until "
        "the intake has decided; every message ends in EVENTS or REJECTED.",
    )
    async def intake(body: Event) -> None:  # pragma: no cover - documentation only
        """Decode, validate, authorise, apply to the case, append under the case's lock."""

    broker.publisher(
        streams.EVENT_SUBJECT,
        title="events",
        description="The immutable log (stream EVENTS): accepted facts and the findings and "
        "deadline events derived from them. Never deleted nor purged.",
        schema=Event,
    )
    broker.publisher(
        streams.REJECTED_SUBJECT,
        title="rejected",
        description="Refused messages (stream REJECTED): the raw bytes as received, with "
        "headers Jiedu-Reason, Jiedu-Detail, Jiedu-Intake-Subject, Jiedu-Intake-Sequence.",
        schema=bytes,
    )
    broker.publisher(
        streams.OUTCOMES_SUBJECT,
        title="outcomes",
        description="What became of a source's intake messages: a JSON array of outcomes per "
        "intake batch (core NATS); also kept by event ID in the key-value bucket "
        f"{streams.OUTCOMES_BUCKET}.",
        schema=list[Outcome],
    )
    spec = AsyncAPI(
        broker,
        title="Jiedu 解读",
        version=VERSION,
        description="Policy interpretation duties of Yuzhong District as events.",
        schema_version="3.0.0",
    ).to_specification()
    document: dict[str, object] = spec.to_jsonable()
    return document


def documents() -> dict[str, bytes]:
    """File name → content of every generated document."""
    option = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
    out = {
        f"{t.__name__}.schema.json": orjson.dumps(t.model_json_schema(), option=option)
        for t in EVENT_TYPES
    }
    out["asyncapi.json"] = orjson.dumps(asyncapi(), option=option)
    return out


def stale() -> list[str]:
    """Names of generated files that are missing, differ, or should not be there."""
    wanted = documents()
    present = {p.name for p in SCHEMA_DIR.glob("*.json")}
    return sorted(
        {
            n
            for n, body in wanted.items()
            if not (SCHEMA_DIR / n).exists() or (SCHEMA_DIR / n).read_bytes() != body
        }
        | (present - wanted.keys())
    )


def write() -> None:
    SCHEMA_DIR.mkdir(exist_ok=True)
    for stale_file in SCHEMA_DIR.glob("*.json"):
        stale_file.unlink()
    for name, body in documents().items():
        (SCHEMA_DIR / name).write_bytes(body)


if __name__ == "__main__":
    write()
    sys.stdout.write(f"wrote {len(documents())} files to {SCHEMA_DIR}\n")
