"""Every stream, subject pattern and key-value bucket of Jiedu, defined once.

Subjects carry department and case so that NATS permissions can confine a source to its own
department, and so that one case's history is one wildcard away:

    jiedu.intake.<source department>.<source system>.<case>    sources publish here
    jiedu.intake.<partition>.<source department>.<source system>.<case>   … and it is stored so
    jiedu.events.<accountable department>.<case>.<type>        the log
    jiedu.rejected.<reason>.<intake sequence>                  refused messages, raw
    jiedu.outcomes.<source department>.<source system>         answers to sources (core NATS)
    jiedu.checkpoints.…                                        signed heads of the audit chain
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
    SubjectTransform,
)

INTAKE = "INTAKE"
EVENTS = "EVENTS"
REJECTED = "REJECTED"
CHECKPOINTS = "CHECKPOINTS"
CHECKPOINT_SUBJECTS = "jiedu.checkpoints.>"
OUTCOMES_BUCKET = "JIEDU_OUTCOMES"
LEASES_BUCKET = "JIEDU_INTAKE_LEASES"
PROJECTOR_LEASES_BUCKET = "JIEDU_PROJECTOR_LEASES"
"""Which projector process feeds the read models of one store; the others stand by."""

NATS_HOST = "127.0.0.1"
DEFAULT_NATS_PORT = 4333
"""Where `jiedu up` runs its own nats-server: 127.0.0.1, port `JIEDU_NATS_PORT` (this by
default; not 4222, where a machine's older server may listen). `NATS_URL` names another."""

DEFAULT_PARTITIONS = 1
"""INTAKE is split by case so that one case is handled by one intake worker at a time, in order.
Fixed when the stream is created: changing it needs a new INTAKE stream.

One by default: one instance then takes everything waiting in one fetch and appends it in as
few atomic batches as fit, which `jiedu bench` measured as the fastest and the quickest to
answer on one machine (at 500 events/s, p50 75 ms with one partition against 160 ms with eight);
further instances stand by and take over its lease. Several partitions (JIEDU_PARTITIONS) let
several instances work at once, on machines of their own."""

DEFAULT_REPLICAS = 1
"""Copies JetStream keeps of every stream and bucket: one on a single node; three in a cluster
(`JIEDU_REPLICAS=3`, deploy/cluster/), so that losing any one node loses nothing acknowledged
(an append is acknowledged once a majority has it)."""


# ── subject tokens ───────────────────────────────────────────────────────────────────────────
# A value that goes into a subject is one token of it: a dot would add a token, a space is not
# allowed, and `*` or `>` would be a wildcard (JetStream stores a literal one, but INTAKE's
# partition transform cannot map it, so the message would sit in INTAKE undecided). The event
# envelope's field types use the same patterns, so what validates as an event fits a subject.

NAME_TOKEN = r"^[a-z][a-z0-9_-]{0,63}$"
"""A department code or a source system's name: lower case, e.g. `drc`, `oa`."""
CASE_TOKEN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$"
"""A case ID: letters, digits, `_` and `-`, e.g. `DRC-2026-017`."""
TYPE_TOKEN = r"^[A-Z][A-Za-z]{0,63}$"
"""An event type's name, e.g. `PolicyIssued`."""

_NAME, _CASE, _TYPE = re.compile(NAME_TOKEN), re.compile(CASE_TOKEN), re.compile(TYPE_TOKEN)


class SubjectTokenError(ValueError):
    """A value that cannot be one token of a Jiedu subject."""


def _token(what: str, value: str, pattern: re.Pattern[str]) -> str:
    if pattern.fullmatch(value) is None:
        raise SubjectTokenError(
            f"{what} {value!r} cannot be a subject token: it must match {pattern.pattern}"
        )
    return value


def name_token(what: str, value: str) -> str:
    """`value` if it is a department code or system name fit for a subject; else raise."""
    return _token(what, value, _NAME)


def case_token(value: str) -> str:
    """`value` if it is a case ID fit for a subject; else raise `SubjectTokenError`."""
    return _token("case", value, _CASE)


# ── subjects ─────────────────────────────────────────────────────────────────────────────────
# Each pattern once, with its placeholders named as the AsyncAPI document shows them.

INTAKE_SUBJECT = "jiedu.intake.{source_department}.{source_system}.{case_id}"
EVENT_SUBJECT = "jiedu.events.{department}.{case_id}.{type}"
REJECTED_SUBJECT = "jiedu.rejected.{reason}.{intake_sequence}"
OUTCOMES_SUBJECT = "jiedu.outcomes.{source_department}.{source_system}"
ALL_OUTCOMES = "jiedu.outcomes.*.*"


def intake_subject(source_department: str, source_system: str, case_id: str) -> str:
    """Where a source publishes an event of `case_id`; raises `SubjectTokenError` for a value
    that is not one subject token."""
    return INTAKE_SUBJECT.format(
        source_department=name_token("department", source_department),
        source_system=name_token("source system", source_system),
        case_id=case_token(case_id),
    )


INTAKE_SUBJECTS = "jiedu.intake.*.*.*"
"""What sources publish to. A subject with a wildcard token sent literally (`jiedu.intake.*.oa.c1`,
`…oa.>`; client libraries allow it) is stored too, but as sent: the partition transform maps
literal subjects only. Partition 0's consumer also takes these strays (`STRAY_INTAKE`), and the
intake rejects them (`invalid_subject`), so none stays in INTAKE undecided. Subjects with an
empty token match no stream: the server refuses them at publish."""

STRAY_INTAKE = INTAKE_SUBJECTS
"""Stored intake messages that were never partitioned: five tokens, against six for the rest.

Partition 0's consumer takes them as its second filter. That has a cost: a consumer with two
filters took the server half as much CPU again per intake message (`jiedu bench --parts ingest
--events 5000`, server CPU 7.2–7.8 s against 4.6–5.3 s with flushed writes, 2.5–2.9 s against
1.1–1.2 s without, on a loaded shared machine). A consumer of their own with this one filter is
no way out: a single-filter consumer matches a stored subject as a pattern, so it never
delivers one with a `>` token."""

WILDCARDS = frozenset({"*", ">"})


def intake_partition_filter(partition: int) -> str:
    return f"jiedu.intake.{partition}.*.*.*"


@dataclass(frozen=True)
class IntakeAddress:
    """Where a stored intake message came from, read off its (partitioned) subject."""

    partition: int | None
    """None for a stray (see `INTAKE_SUBJECTS`)."""
    source_department: str
    source_system: str
    case_id: str

    @classmethod
    def parse(cls, subject: str) -> IntakeAddress:
        tokens = subject.split(".")
        if len(tokens) == 5:  # a stray, stored as sent
            return cls(None, *tokens[2:])
        _, _, partition, department, system, case = subject.split(".", 5)
        return cls(int(partition), department, system, case)

    @property
    def routable(self) -> bool:
        """Names one source and one case: partitioned, no wildcard token."""
        tokens = (self.source_department, self.source_system, self.case_id)
        return self.partition is not None and WILDCARDS.isdisjoint(tokens)


def event_subject(department: str, case_id: str, event_type: str) -> str:
    return EVENT_SUBJECT.format(
        department=name_token("department", department), case_id=case_token(case_id),
        type=_token("event type", event_type, _TYPE),
    )


def type_filter(event_type: str) -> str:
    """All events of one type, on every department's cases (a permission's span)."""
    return EVENT_SUBJECT.format(
        department="*", case_id="*", type=_token("event type", event_type, _TYPE)
    )


def case_filter(case_id: str) -> str:
    """All events of one case, whatever its department: the span of the case's optimistic lock."""
    return f"jiedu.events.*.{case_token(case_id)}.>"


def department_filter(department: str) -> str:
    return f"jiedu.events.{name_token('department', department)}.>"


ALL_EVENTS = "jiedu.events.>"


def rejected_subject(reason: str, intake_sequence: int) -> str:
    return REJECTED_SUBJECT.format(reason=reason, intake_sequence=intake_sequence)


def rejected_filter(intake_sequence: int) -> str:
    """One refused intake message, whatever its reason: recorded at most once."""
    return f"jiedu.rejected.*.{intake_sequence}"


def outcomes_subject(source_department: str, source_system: str) -> str:
    """Where the intake answers the source a message came from. Not checked: the intake
    answers every stored intake subject, and whatever NATS stored is a subject already."""
    return OUTCOMES_SUBJECT.format(source_department=source_department, source_system=source_system)


def intake_consumer(partition: int) -> str:
    return f"intake-p{partition}"


COPY_HEADROOM = 16 * 1024
"""Bytes Jiedu may add when it copies an intake message into EVENTS or REJECTED: its own
headers, at most about 7.5 KiB — the intake subject (under the server's 4 KiB control line), a
detail of at most `events.outcomes.MAX_DETAIL` (1,000) characters (3 KB of UTF-8), and under
400 bytes of sequence, event ID, lock, batch and time headers. The source's own headers are not
copied. The rest of the 16 KiB is margin; it costs a source 1.6 % of `max_payload`."""


def intake_max_message(max_payload: int) -> int:
    """INTAKE's `max_msg_size` on a server with this `max_payload` (1 MiB by default): whatever
    INTAKE stores, body and headers, fits EVENTS and REJECTED whole with Jiedu's headers added.
    A larger message (for example a body of exactly 1 MiB) is refused by JetStream when it is
    published, as the publisher's error (`message size exceeds maximum allowed`, 10054): it
    never reaches INTAKE, so it can never stop the intake, and nothing is truncated."""
    return max_payload - COPY_HEADROOM


def intake_stream(
    partitions: int = DEFAULT_PARTITIONS,
    max_payload: int = 1024 * 1024,
    replicas: int = DEFAULT_REPLICAS,
) -> StreamConfig:
    """Work queue: holds what sources publish (also while intake is down) until intake acks it."""
    return StreamConfig(
        name=INTAKE,
        subjects=[INTAKE_SUBJECTS],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        discard=DiscardPolicy.NEW,
        max_msg_size=intake_max_message(max_payload),
        num_replicas=replicas,
        subject_transform=SubjectTransform(
            src=INTAKE_SUBJECTS,
            dest=f"jiedu.intake.{{{{partition({partitions},3)}}}}"
            ".{{wildcard(1)}}.{{wildcard(2)}}.{{wildcard(3)}}",
        ),
    )


def _append_only(name: str, subject: str, replicas: int) -> StreamConfig:
    """A file stream that keeps everything: no limits, never deleted nor purged."""
    return StreamConfig(
        name=name,
        subjects=[subject],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.NEW,
        deny_delete=True,
        deny_purge=True,
        num_replicas=replicas,
    )


def events_stream(replicas: int = DEFAULT_REPLICAS) -> StreamConfig:
    """The log. Corrections are new events. Direct gets for reads, atomic batches for appends."""
    return replace(
        _append_only(EVENTS, ALL_EVENTS, replicas), allow_direct=True, allow_atomic=True
    )


def rejected_stream(replicas: int = DEFAULT_REPLICAS) -> StreamConfig:
    """Refused messages, raw, with reason and source in headers: where operators look. Atomic
    batches allowed (stores made during issue 19 have them), though refusals are kept one by
    one, each under its lock (`EventLog.reject_all` says why)."""
    return replace(_append_only(REJECTED, "jiedu.rejected.>", replicas), allow_atomic=True)


def checkpoints_stream(replicas: int = DEFAULT_REPLICAS) -> StreamConfig:
    """Signed heads of the audit hash chain."""
    return _append_only(CHECKPOINTS, CHECKPOINT_SUBJECTS, replicas)


def intake_consumer_config(partition: int, ack_wait_s: float) -> ConsumerConfig:
    strays = [STRAY_INTAKE] if partition == 0 else []
    return ConsumerConfig(
        durable_name=intake_consumer(partition),
        filter_subjects=[intake_partition_filter(partition), *strays],
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ack_wait_s,
        max_deliver=-1,  # the intake counts deliveries itself and rejects; nothing is dropped
        max_ack_pending=10_000,
    )


class Header:
    """Headers Jiedu reads or writes (JetStream's own are in nats.js.api.Header)."""

    EXPECTED_LAST_SUBJECT_SEQ = "Nats-Expected-Last-Subject-Sequence"
    EXPECTED_LAST_SUBJECT_SEQ_SUBJECT = "Nats-Expected-Last-Subject-Sequence-Subject"
    BATCH_ID = "Nats-Batch-Id"
    BATCH_SEQUENCE = "Nats-Batch-Sequence"
    BATCH_COMMIT = "Nats-Batch-Commit"
    INTAKE_SUBJECT = "Jiedu-Intake-Subject"
    INTAKE_SEQUENCE = "Jiedu-Intake-Sequence"
    REASON = "Jiedu-Reason"
    DETAIL = "Jiedu-Detail"
    REJECTED_AT = "Jiedu-Rejected-At"
    EVENT_ID = "Jiedu-Event-Id"


WRONG_LAST_SEQUENCE = 10071
"""JetStream's error code when an optimistic-concurrency expectation fails."""
BATCH_INCOMPLETE = 10176
"""JetStream's error code when part of an atomic batch did not arrive (none of it is stored)."""
