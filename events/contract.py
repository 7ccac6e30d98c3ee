"""The published contract, generated from the code: a JSON Schema per event type and an
AsyncAPI 3 document of every channel. `python -m events.contract` rewrites `events/schema/`;
a test fails when the files there are stale.

Beside what pydantic derives from the models, the contract says what an integrator would
otherwise learn from rejections: who may send each type for whom (`events.roles`), each type's
current `schema_version` (a `const`), the monitor's source system, the headers of EVENTS and
REJECTED, and the server's address. The integrator's guide is `deploy/INTEGRATING.md`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson
from faststream.nats import JStream, NatsBroker
from faststream.specification import AsyncAPI

from events import roles, streams
from events.catalogue import EVENT_TYPES, SYSTEM_TYPES, Event, OpinionDetected, ReviewSigned
from events.envelope import Envelope
from events.organs import load_organs
from events.outcomes import Outcome, Reason
from events.streams import Header

SCHEMA_DIR = Path(__file__).parent / "schema"
VERSION = "1"


def asyncapi() -> dict[str, object]:
    """Channels as the services use them; the broker here is for documentation only."""
    broker = NatsBroker(f"nats://{streams.NATS_HOST}:{streams.DEFAULT_NATS_PORT}")

    @broker.subscriber(
        streams.INTAKE_SUBJECT,
        stream=JStream(streams.INTAKE, declare=False),
        title="intake",
        description="Upstream OA systems, the 12345 hotline (gov_services_office) and the "
        "cyberspace office's monitor (cyberspace_office.monitor) publish events here, one JSON "
        "object per message, under their own department and system; each type's schema says "
        "who may send it for whom. Work queue: kept until the intake has decided; every "
        "message ends in EVENTS or REJECTED, and its outcome is announced on the outcomes "
        "channel. Guide with worked examples: deploy/INTEGRATING.md.",
    )
    async def intake(body: Event) -> None:  # pragma: no cover - documentation only
        """Decode, validate, authorise, apply to the case, append under the case's lock."""

    broker.publisher(
        streams.EVENT_SUBJECT,
        title="events",
        description="The immutable log (stream EVENTS): accepted facts and the findings and "
        "deadline events derived from them, each with its event ID in a header (see the "
        "message's headers). Never deleted nor purged.",
        schema=Event,
    )
    broker.publisher(
        streams.REJECTED_SUBJECT,
        title="rejected",
        description="Refused messages (stream REJECTED): the raw bytes as received, with "
        "the reason and the source in headers (see the message's headers).",
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
    document: dict[str, Any] = spec.to_jsonable()
    document["servers"]["development"].update(SERVER)
    for t in EVENT_TYPES:
        annotated(document["components"]["schemas"][t.__name__], t)
    messages = document["components"]["messages"]
    messages["events:Message"]["headers"] = _headers(EVENTS_HEADERS, required=[Header.EVENT_ID])
    messages["rejected:Message"]["headers"] = _headers(
        REJECTED_HEADERS, required=list(REJECTED_HEADERS)
    )
    return document


SERVER: dict[str, Any] = {
    "host": f"{streams.NATS_HOST}:{{port}}",
    "description": "Jiedu's own nats-server 2.15, which `jiedu up` starts on "
    f"{streams.NATS_HOST} and port JIEDU_NATS_PORT (default {streams.DEFAULT_NATS_PORT}; "
    "the address it runs at is written to DATA_DIR/nats.url). With NATS_URL set, Jiedu uses "
    "that server instead.",
    "variables": {
        "port": {
            "default": str(streams.DEFAULT_NATS_PORT),
            "description": "JIEDU_NATS_PORT of the `jiedu up` that runs the server",
        }
    },
}

EVENTS_HEADERS: dict[str, dict[str, Any]] = {
    Header.EVENT_ID: {"type": "string", "description": "the event's `event_id`"},
    Header.INTAKE_SUBJECT: {
        "type": "string",
        "description": "the intake subject, with its partition, of the message the event came "
        "in (or, for a finding, was derived from); absent on deadline events",
    },
    Header.INTAKE_SEQUENCE: {
        "type": "string", "pattern": "^[0-9]+$",
        "description": "that message's sequence in INTAKE: the `intake_sequence` of its "
        "outcome; absent on deadline events",
    },
}

REJECTED_HEADERS: dict[str, dict[str, Any]] = {
    Header.REASON: {"type": "string", "enum": [r.value for r in Reason],
                    "description": "why it was refused (README: reason codes)"},
    Header.DETAIL: {"type": "string", "description": "what was wrong, for people"},
    Header.INTAKE_SUBJECT: {"type": "string",
                            "description": "the intake subject it came in on, with its partition"},
    Header.INTAKE_SEQUENCE: {"type": "string", "pattern": "^[0-9]+$",
                             "description": "its sequence in INTAKE"},
    Header.REJECTED_AT: {"type": "string", "format": "date-time",
                         "description": "when it was refused"},
}


def _headers(properties: dict[str, dict[str, Any]], *, required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required}


def senders(event_type: type[Envelope]) -> str:
    """Who may send `event_type`, and for whose case, as `domain.authorisation` decides."""
    name = event_type.__name__
    if name in SYSTEM_TYPES:
        return "Derived by Jiedu itself: sent in, it is refused (reserved_type)."
    if event_type is OpinionDetected:
        department, system = roles.MONITOR
        return (
            f"Sent only by the cyberspace office's monitor: published on "
            f"{streams.INTAKE_SUBJECT.format(source_department=department, source_system=system, case_id='<case_id>')}"
            f" with `source_system` {system!r} (else not_monitor), for any organ's policy case."
        )
    organs = load_organs()
    if name in roles.ONLY_GOV_OFFICE:
        return (
            f"Sent only by the government office (gov_office, {organs.name('gov_office')}), "
            "for any organ's case (else role_mismatch)."
        )
    text = (
        "Sent by the case's accountable department: `department` is the source department of "
        "the subject it is published on"
    )
    others = [code for code, types in roles.ACTS_FOR_ANY_DEPARTMENT.items() if name in types]
    if others:
        text += "; also by " + ", ".join(
            f"{code} ({organs.name(code)}{roles.ROLE_NOTES.get(code, '')})" for code in others
        ) + " for any organ's case"
    if event_type is ReviewSigned:
        text += "; stage " + ", ".join(
            f"{stage} only by {office}" for stage, office in roles.STAGE_OWNER.items()
        ) + " (else role_mismatch)"
    return text + ". Any other source is refused (department_mismatch)."


def annotated(schema: dict[str, Any], event_type: type[Envelope]) -> dict[str, Any]:
    """An event type's schema (pydantic's) with the contract's facts added."""
    schema["description"] = f"{schema.get('description', '').strip()}\n\n{senders(event_type)}"
    properties = schema["properties"]
    properties["schema_version"] = {
        "const": event_type.SCHEMA_VERSION,
        "default": event_type.SCHEMA_VERSION,
        "type": "integer",
        "title": "Schema Version",
        "description": "the version of this type that Jiedu writes; an older one is still "
        "accepted and upcast, a newer one refused (unsupported_version)",
    }
    if event_type is OpinionDetected:
        properties["source_system"] = {**properties["source_system"], "const": roles.MONITOR[1]}
    return schema


def documents() -> dict[str, bytes]:
    """File name → content of every generated document."""
    option = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
    out = {
        f"{t.__name__}.schema.json": orjson.dumps(annotated(t.model_json_schema(), t), option=option)
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
