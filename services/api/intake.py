"""HTTP intake (HTTP 接入): `POST /api/v1/events` takes one event, or a batch (a JSON array of
events), from an organ's system authenticated by its token, publishes each to INTAKE under that
organ's subject — exactly as the system would over NATS — and answers what the intake decided.

Each event of a batch is one intake message of its own, its bytes exactly as they stood in the
array (the intake judges them: duplicate keys, `2.0` for an integer, NUL characters, …). Any
other body is one message, whatever it holds: the intake decides it like any other (`not_json`,
`not_object`, …), and REJECTED keeps it raw. So the conservation of NATS sources holds here:
every event posted ends in EVENTS or in REJECTED, once.

The subject names the caller's organ (from its token, never from the body), the event's
`source_system` and `case_id` when they are valid subject tokens, else placeholders the intake
then refuses the event under (`source_mismatch`, `case_mismatch`, a missing field). The
cyberspace office's monitor feed (OP-5) is not taken over HTTP: the monitor speaks over NATS
with its own key, and the API's identity may not publish on its subject at all, so an event
claiming that system goes under the placeholder system and is refused.

Answers: 201 when every event is accepted (or some accepted, the rest duplicates); 200 when all
are duplicates (each with the sequence of its first sending); 422 when any is rejected, each with
its reason and detail; 202 when the intake has not decided every event within `wait` seconds
(`GET /api/v1/outcomes/{event_id}` tells later). 413 for a body or an event too large to store,
401/403 for a caller who may not post. Never 500 for what a caller sends.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, OrderedDict
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import APIError
from prometheus_client import Histogram

from events import streams
from events.outcomes import Outcome
from events.roles import MONITOR
from services.adapters import logs
from services.api.auth import Source
from services.api.context import Context, context_of
from services.api.responses import JieduJSON, reply

log = logs.get("jiedu.api.intake")

router = APIRouter(tags=["intake"])
Ctx = Annotated[Context, Depends(context_of)]

MAX_BATCH = 1000
"""Events in one request; more is refused whole (413), nothing published."""
MAX_BODY = 16 * 1024 * 1024
"""Bytes of one request's body; more is refused whole (413) as it arrives."""
PLACEHOLDER_SYSTEM = "http"
"""The subject's system for an event whose `source_system` is missing, not a subject token,
or the monitor's: the intake refuses such an event (missing field, source_mismatch)."""
PLACEHOLDER_CASE = "unnamed-case"
"""The subject's case for an event whose `case_id` is missing or not a subject token."""
EARLY_KEPT = 10_000
"""Outcomes kept that arrived before their publisher had its acknowledgement (rare)."""
PUBLISH_TIMEOUT_S = 5.0


class OutcomeListener:
    """Every source's outcomes (`jiedu.outcomes.*.*`), handed to the request waiting for each
    intake sequence; counted by status and reason for /metrics, NATS sources included."""

    def __init__(self, nc: Client) -> None:
        self.nc = nc
        self.waiting: dict[int, asyncio.Future[Outcome]] = {}
        self.early: OrderedDict[int, Outcome] = OrderedDict()
        self.counts: Counter[tuple[str, str]] = Counter()
        self.decided = Histogram(
            "jiedu_http_intake_decided_seconds",
            "From publishing an HTTP-posted event to INTAKE to hearing the intake's outcome",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=None,  # exposed by /metrics from here: one per app, not per process
        )
        self.sub: Any = None

    async def start(self) -> None:
        self.sub = await self.nc.subscribe(streams.ALL_OUTCOMES, cb=self._heard)

    async def stop(self) -> None:
        if self.sub is not None:
            await self.sub.unsubscribe()
            self.sub = None

    async def _heard(self, msg: Msg) -> None:
        try:
            answers = [Outcome.model_validate(a) for a in orjson.loads(msg.data)]
        except (orjson.JSONDecodeError, ValueError, TypeError):
            log.error("an outcome message did not decode", subject=msg.subject)
            return
        for outcome in answers:
            self.counts[(outcome.status, str(outcome.reason or ""))] += 1
            waiter = self.waiting.pop(outcome.intake_sequence, None)
            if waiter is not None:
                if not waiter.done():
                    waiter.set_result(outcome)
                continue
            self.early[outcome.intake_sequence] = outcome
            while len(self.early) > EARLY_KEPT:
                self.early.popitem(last=False)

    def expect(self, intake_sequence: int) -> asyncio.Future[Outcome]:
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        heard = self.early.pop(intake_sequence, None)
        if heard is not None:
            future.set_result(heard)
        else:
            self.waiting[intake_sequence] = future
        return future

    def forget(self, intake_sequence: int) -> None:
        self.waiting.pop(intake_sequence, None)


def listener(ctx: Context) -> OutcomeListener:
    found = ctx.extras.get("outcomes")
    if not isinstance(found, OutcomeListener):
        raise HTTPException(503, "not connected to NATS: the intake cannot be reached")
    return found


def split(body: bytes) -> tuple[list[tuple[bytes, Any]], bool]:
    """The intake messages of a body, each with what it decodes to (None: not JSON), and
    whether the body was a batch: a JSON array's elements, each its exact bytes; anything
    else, the body whole."""
    try:
        whole = orjson.loads(body)
    except orjson.JSONDecodeError:
        return [(body, None)], False
    if not isinstance(whole, list):
        return [(body, whole)], False
    text = body.decode()  # orjson accepted it: valid UTF-8
    decoder = json.JSONDecoder()
    out: list[tuple[bytes, Any]] = []
    i = text.index("[") + 1
    try:
        while True:
            while text[i].isspace():
                i += 1
            if text[i] == "]":
                break
            value, end = decoder.raw_decode(text, i)
            out.append((text[i:end].encode(), value))
            i = end
            while text[i].isspace():
                i += 1
            if text[i] == ",":
                i += 1
    except (ValueError, IndexError, RecursionError):  # orjson and json differ: one message
        return [(body, whole)], False
    return out, True


def subject_of(department: str, value: Any) -> str:
    """The intake subject an event goes to from `department` (see the module docstring)."""
    fields = value if isinstance(value, dict) else {}
    system, case = fields.get("source_system"), fields.get("case_id")
    try:
        system = streams.name_token("source system", system) if isinstance(system, str) else None
    except streams.SubjectTokenError:
        system = None
    if system is None or (department, system) == MONITOR:
        system = PLACEHOLDER_SYSTEM
    try:
        case = streams.case_token(case) if isinstance(case, str) else None
    except streams.SubjectTokenError:
        case = None
    return streams.intake_subject(department, system, case or PLACEHOLDER_CASE)


async def read_body(request: Request) -> bytes:
    """The body, refused (413) as soon as it passes MAX_BODY."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise HTTPException(413, f"a request's body holds at most {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def answer(outcome: Outcome | None, intake_sequence: int) -> dict[str, Any]:
    if outcome is None:
        return {"status": "pending", "intake_sequence": intake_sequence}
    return outcome.model_dump(exclude_none=True)


def status_code(answers: list[dict[str, Any]]) -> int:
    statuses = {a["status"] for a in answers}
    if "rejected" in statuses:
        return 422
    if "pending" in statuses:
        return 202
    return 201 if "accepted" in statuses else 200


async def submit(
    ctx: Context, department: str, messages: list[tuple[bytes, Any]], wait: float
) -> list[dict[str, Any]]:
    """Publish each message to INTAKE as `department`'s system and wait up to `wait` seconds
    for the intake's outcomes, in the order given."""
    outcomes = listener(ctx)
    assert ctx.nc is not None
    limit = streams.intake_max_message(ctx.nc.max_payload)
    too_large = [i for i, (raw, _) in enumerate(messages) if len(raw) > limit]
    if too_large:
        raise HTTPException(
            413, f"event(s) {too_large[:10]} exceed the {limit} bytes INTAKE stores; none posted"
        )
    js = ctx.nc.jetstream()
    started = time.perf_counter()
    try:
        acks = await asyncio.wait_for(
            asyncio.gather(*[
                await js.publish_async(subject_of(department, value), raw)
                for raw, value in messages
            ]),
            PUBLISH_TIMEOUT_S,
        )
    except (TimeoutError, NatsTimeout, APIError) as e:
        log.error("publishing HTTP intake failed", department=department, error=str(e))
        raise HTTPException(503, "INTAKE did not acknowledge the events; post them again "
                                 "(a repeated event ID is answered as a duplicate)") from None
    sequences = [ack.seq for ack in acks]
    futures = [outcomes.expect(seq) for seq in sequences]
    done, _ = await asyncio.wait(futures, timeout=wait) if futures else (set(), set())
    elapsed = time.perf_counter() - started
    answers = []
    for seq, future in zip(sequences, futures, strict=True):
        if future in done:
            outcomes.decided.observe(elapsed)
            answers.append(answer(future.result(), seq))
        else:
            outcomes.forget(seq)
            future.cancel()
            answers.append(answer(None, seq))
    return answers


@router.post(
    "/events",
    response_class=JieduJSON,
    status_code=201,
    responses={
        200: {"description": "every event a duplicate of one accepted before"},
        202: {"description": "not every event decided within `wait` seconds"},
        413: {"description": "the body or an event is too large; nothing posted"},
        422: {"description": "an event was rejected (its reason and detail)"},
    },
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"oneOf": [
            {"type": "object", "description": "one event (the intake's envelope)"},
            {"type": "array", "items": {"type": "object"}, "maxItems": MAX_BATCH,
             "description": "a batch: each element one intake message"},
        ]},
    }}}},
)
async def post_events(
    request: Request, ctx: Ctx, who: Source,
    wait: Annotated[
        float, Query(ge=0, le=120, description="seconds to wait for the intake's decision")
    ] = 30.0,
) -> JieduJSON:
    """Post one event (answered with its outcome) or a batch (answered with `outcomes`, one per
    event in order), as the caller's organ; see the module docs for the status codes."""
    assert who.department is not None  # a department or the office: an organ
    messages, batch = split(await read_body(request))
    if batch and not messages:
        raise HTTPException(422, "an empty batch: post at least one event")
    if len(messages) > MAX_BATCH:
        raise HTTPException(413, f"a batch holds at most {MAX_BATCH} events; none posted")
    answers = await submit(ctx, who.department, messages, wait)
    return reply(answers[0] if not batch else {"outcomes": answers}, status_code(answers))
