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

DEFAULT_PARTITIONS = 1
"""INTAKE is split by case so that one case is handled by one intake worker at a time, in order.
Fixed when the stream is created: changing it needs a new INTAKE stream.

One by default: one instance then takes everything waiting in one fetch and appends it in as
few atomic batches as fit, which `jiedu bench` measured as the fastest and the quickest to
answer on one machine (at 500 events/s, p50 75 ms with one partition against 160 ms with eight);
further instances stand by and take over its lease. Several partitions (JIEDU_PARTITIONS) let
several instances work at once, on machines of their own."""


def intake_subject(source_department: str, source_system: str, case_id: str) -> str:
    return f"jiedu.intake.{source_department}.{source_system}.{case_id}"


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
    return f"jiedu.events.{department}.{case_id}.{event_type}"


def case_filter(case_id: str) -> str:
    """All events of one case, whatever its department: the span of the case's optimistic lock."""
    return f"jiedu.events.*.{case_id}.>"


def department_filter(department: str) -> str:
    return f"jiedu.events.{department}.>"


ALL_EVENTS = "jiedu.events.>"


def rejected_subject(reason: str, intake_sequence: int | str) -> str:
    return f"jiedu.rejected.{reason}.{intake_sequence}"


def rejected_filter(intake_sequence: int) -> str:
    """One refused intake message, whatever its reason: recorded at most once."""
    return f"jiedu.rejected.*.{intake_sequence}"


def outcomes_subject(source_department: str, source_system: str) -> str:
    return f"jiedu.outcomes.{source_department}.{source_system}"


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
    partitions: int = DEFAULT_PARTITIONS, max_payload: int = 1024 * 1024
) -> StreamConfig:
    """Work queue: holds what sources publish (also while intake is down) until intake acks it."""
    return StreamConfig(
        name=INTAKE,
        subjects=[INTAKE_SUBJECTS],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        discard=DiscardPolicy.NEW,
        max_msg_size=intake_max_message(max_payload),
        subject_transform=SubjectTransform(
            src=INTAKE_SUBJECTS,
            dest=f"jiedu.intake.{{{{partition({partitions},3)}}}}"
            ".{{wildcard(1)}}.{{wildcard(2)}}.{{wildcard(3)}}",
        ),
    )


def _append_only(name: str, subject: str) -> StreamConfig:
    """A file stream that keeps everything: no limits, never deleted nor purged."""
    return StreamConfig(
        name=name,
        subjects=[subject],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.NEW,
        deny_delete=True,
        deny_purge=True,
    )


def events_stream() -> StreamConfig:
    """The log. Corrections are new events. Direct gets for reads, atomic batches for appends."""
    return replace(_append_only(EVENTS, ALL_EVENTS), allow_direct=True, allow_atomic=True)


def rejected_stream() -> StreamConfig:
    """Refused messages, raw, with reason and source in headers: where operators look."""
    return _append_only(REJECTED, "jiedu.rejected.>")


def checkpoints_stream() -> StreamConfig:
    """Signed heads of the audit hash chain."""
    return _append_only(CHECKPOINTS, CHECKPOINT_SUBJECTS)


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
