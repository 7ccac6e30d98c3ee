"""Who may publish, subscribe and administer what on the log (权限): the one table of it.

Every party connects as a user of its own (an nkey); the server's authorisation, generated from
this table and the organs file, decides by subject what each may do, so no code path can write
where its party may not. A new organ is one line of `events/data/organs.json`.

    party          publishes                                     subscribes
    <organ code>   jiedu.intake.<code>.*.*                       its outcomes, its inbox
    monitor        jiedu.intake.cyberspace_office.monitor.*      its outcomes, its inbox
    intake         jiedu.events.> but the deadline, matcher and  its inbox
                   erasure types,
                   REJECTED, outcomes (core and bucket), leases;
                   consumes INTAKE, erases its personal messages;
                   reads EVENTS, REJECTED
    deadlines      jiedu.events.*.*.<deadline type>; reads EVENTS its inbox
    privacy        jiedu.events.*.*.PersonalDataErased;          its inbox
                   reads EVENTS
    matcher        jiedu.events.*.*.ConsultationMatched;         its inbox
                   reads EVENTS
    projector      reads EVENTS                                  its inbox
    auditor        reads EVENTS, REJECTED, CHECKPOINTS, outcomes its inbox
    api            jiedu.intake.*.*.* (not the monitor's);       every source's outcomes,
                   reads REJECTED, CHECKPOINTS, outcomes         its inbox
    operator       the JetStream API (streams, consumers,        its inbox
                   buckets), CHECKPOINTS, the buckets' keys

"reads S" is the JetStream API a reader of stream S needs (stream info, its own consumers,
direct and message gets, acks and flow control), and nothing that changes S. Nobody but the
operator may create, update, purge or delete a stream or a message, and nobody may connect
without an identity (the server has no anonymous user).
"""

from __future__ import annotations

from dataclasses import dataclass

from events import streams
from events.catalogue import EVENT_TYPES, MATCHER_TYPES
from events.organs import Organs
from events.roles import MONITOR

INTAKE = "intake"
DEADLINES = "deadlines"
PRIVACY = "privacy"
"""The privacy service (`jiedu privacy erase`): records erasures, nothing else."""
MATCHER = "matcher"
PROJECTOR = "projector"
AUDITOR = "auditor"
OPERATOR = "operator"
MONITOR_PARTY = "monitor"
API_PARTY = "api"
"""The HTTP API: publishes the departments' HTTP intake for them, and reads for its readers."""
SERVICES = (
    INTAKE, DEADLINES, MATCHER, PRIVACY, PROJECTOR, AUDITOR, OPERATOR, MONITOR_PARTY, API_PARTY
)
"""The parties that are not an organ's upstream system."""

DEADLINE_TYPES = tuple(t.__name__ for t in EVENT_TYPES if t.__name__.startswith("Deadline"))
"""Derived by the deadline service alone (PUB-2, PUB-3, QA-4, OP-4, SUP-1 clocks)."""
ERASURE_TYPE = "PersonalDataErased"
"""Recorded by the privacy service alone, when it destroyed a data subject's keys."""
MATCHED_TYPES = tuple(sorted(MATCHER_TYPES))
"""Derived by the matching service alone (QA-4's suggestions from the Q&A library)."""

API = "$JS.API"
LOGS = (streams.EVENTS, streams.REJECTED, streams.CHECKPOINTS)
"""The append-only streams; every service may read their configuration (to check it)."""


@dataclass(frozen=True)
class Permissions:
    """One user's permissions, as nats-server reads them (deny wins over allow)."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    publish_deny: tuple[str, ...] = ()
    subscribe_deny: tuple[str, ...] = ()

    def as_config(self) -> dict[str, object]:
        def side(allow: tuple[str, ...], deny: tuple[str, ...]) -> dict[str, list[str]]:
            return {"allow": list(allow), **({"deny": list(deny)} if deny else {})}

        return {
            "publish": side(self.publish, self.publish_deny),
            "subscribe": side(self.subscribe, self.subscribe_deny),
        }


def inbox_prefix(party: str) -> str:
    """Where a party's replies arrive: a space of its own, so no one reads another's answers."""
    return f"_INBOX_{party}"


def reads(stream: str) -> tuple[str, ...]:
    """The JetStream API a reader of `stream` uses: info, consumers of its own (pull, ordered
    push), direct and message gets, acks and flow-control replies. Nothing that changes it."""
    return (
        f"{API}.STREAM.INFO.{stream}",
        f"{API}.CONSUMER.CREATE.{stream}",
        f"{API}.CONSUMER.CREATE.{stream}.>",
        f"{API}.CONSUMER.INFO.{stream}.>",
        f"{API}.CONSUMER.MSG.NEXT.{stream}.>",
        f"{API}.CONSUMER.DELETE.{stream}.>",
        f"{API}.DIRECT.GET.{stream}",
        f"{API}.DIRECT.GET.{stream}.>",
        f"{API}.STREAM.MSG.GET.{stream}",
        f"$JS.ACK.{stream}.>",
        f"$JS.FC.{stream}.>",
    )


def _kv_stream(bucket: str) -> str:
    return f"KV_{bucket}"


def _kv_keys(bucket: str) -> str:
    return f"$KV.{bucket}.>"


COMMON = (
    f"{API}.INFO",
    f"{API}.STREAM.NAMES",  # finding a stream by subject (ordered consumers without a stream)
    *(f"{API}.STREAM.INFO.{s}" for s in (*LOGS, streams.INTAKE)),
)
"""What every service may ask: account info, stream names, the configuration of the streams
(each checks at start-up that the log cannot shrink)."""


def _service(party: str, *publish: str, deny: tuple[str, ...] = ()) -> Permissions:
    inbox = inbox_prefix(party)
    return Permissions(
        publish=tuple(dict.fromkeys((*COMMON, *publish))),
        subscribe=(f"{inbox}.>",),
        publish_deny=deny,
    )


def _source(
    party: str, department: str, system: str = "*", *, reserved: tuple[str, ...] = ()
) -> Permissions:
    """An upstream system: publishes only under its department's intake subject (as the one
    system named, or as any but the `reserved` ones) and hears only its own outcomes."""
    inbox = inbox_prefix(party)
    return Permissions(
        publish=(f"jiedu.intake.{department}.{system}.*",),
        subscribe=(streams.outcomes_subject(department, system), f"{inbox}.>"),
        publish_deny=tuple(f"jiedu.intake.{department}.{s}.*" for s in reserved),
        subscribe_deny=tuple(streams.outcomes_subject(department, s) for s in reserved),
    )


def table(organs: Organs) -> dict[str, Permissions]:
    """Every party's permissions: one per organ's upstream system, then the services."""
    clash = {o.code for o in organs.organs} & set(SERVICES)
    if clash:
        raise ValueError(f"organ codes {sorted(clash)} are names of Jiedu's own parties")
    monitor_department, monitor_system = MONITOR
    parties: dict[str, Permissions] = {}
    for organ in organs.organs:
        reserved = (monitor_system,) if organ.code == monitor_department else ()
        parties[organ.code] = _source(organ.code, organ.code, reserved=reserved)
    parties[MONITOR_PARTY] = _source(MONITOR_PARTY, monitor_department, monitor_system)
    outcomes, leases = streams.OUTCOMES_BUCKET, streams.LEASES_BUCKET
    parties[INTAKE] = _service(
        INTAKE,
        streams.ALL_EVENTS,
        "jiedu.rejected.>",
        "jiedu.outcomes.>",
        _kv_keys(outcomes),
        _kv_keys(leases),
        *reads(streams.EVENTS),
        *reads(streams.REJECTED),
        *reads(_kv_stream(outcomes)),
        *reads(_kv_stream(leases)),
        f"{API}.CONSUMER.INFO.{streams.INTAKE}.>",
        f"{API}.CONSUMER.MSG.NEXT.{streams.INTAKE}.>",
        f"$JS.ACK.{streams.INTAKE}.>",
        # a new lease holder makes its partition's consumer anew to take back what a dead
        # holder fetched and never acknowledged (`IntakeService._reclaim`): INTAKE's only
        f"{API}.CONSUMER.DELETE.{streams.INTAKE}.>",
        f"{API}.CONSUMER.CREATE.{streams.INTAKE}.>",
        f"{API}.CONSUMER.DURABLE.CREATE.{streams.INTAKE}.>",
        # overwrite a decided message that may name a person (`Intake._erase_personal`)
        f"{API}.STREAM.MSG.DELETE.{streams.INTAKE}",
        deny=tuple(
            streams.type_filter(t) for t in (*DEADLINE_TYPES, *MATCHED_TYPES, ERASURE_TYPE)
        ),
    )
    parties[DEADLINES] = _service(
        DEADLINES,
        *(streams.type_filter(t) for t in DEADLINE_TYPES),
        *reads(streams.EVENTS),
    )
    parties[PRIVACY] = _service(
        PRIVACY, streams.type_filter(ERASURE_TYPE), *reads(streams.EVENTS)
    )
    parties[MATCHER] = _service(
        MATCHER,
        *(streams.type_filter(t) for t in MATCHED_TYPES),
        *reads(streams.EVENTS),
    )
    projector_leases = streams.PROJECTOR_LEASES_BUCKET
    parties[PROJECTOR] = _service(  # and the lease that makes one projector process active
        PROJECTOR,
        *reads(streams.EVENTS),
        _kv_keys(projector_leases),
        *reads(_kv_stream(projector_leases)),
    )
    parties[AUDITOR] = _service(
        AUDITOR,
        *reads(streams.EVENTS),
        *reads(streams.REJECTED),
        *reads(streams.CHECKPOINTS),
        *reads(_kv_stream(outcomes)),
    )
    monitor_subject = streams.INTAKE_SUBJECT.format(
        source_department=monitor_department, source_system=monitor_system, case_id="*"
    )
    parties[API_PARTY] = Permissions(
        # each organ's events as that organ's system (the API checks the caller's token
        # first); never the monitor's feed, which speaks over NATS with its own key (OP-5)
        publish=(
            *COMMON,
            streams.INTAKE_SUBJECTS,
            *reads(streams.REJECTED),
            *reads(streams.CHECKPOINTS),
            *reads(_kv_stream(outcomes)),
        ),
        publish_deny=(monitor_subject,),
        subscribe=(streams.ALL_OUTCOMES, f"{inbox_prefix(API_PARTY)}.>"),
    )
    parties[OPERATOR] = _service(
        OPERATOR,
        f"{API}.>",
        "$KV.>",
        "$JS.ACK.>",
        "$JS.FC.>",
        streams.CHECKPOINT_SUBJECTS,
    )
    return parties
