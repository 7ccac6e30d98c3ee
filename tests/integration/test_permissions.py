"""Locks on the log (issue 14): each attempt of the table is refused by the server itself.

Every attempt is made as a real party, with the identity and the permissions the generated
authorisation gives it, on a real nats-server; each test checks that the server refused it
(a permissions violation reported to the client) and that nothing changed, and most check that
the party allowed to do the same thing can.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import nats
import orjson
import pytest
from nats.aio.client import Client
from nats.errors import NoServersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import DiscardPolicy, StreamConfig

import factories as f
from events import streams
from services import bootstrap
from services.adapters import identities, permissions
from services.adapters.config import Settings
from services.adapters.natsserver import NatsServer

SHORT_S = 1.0
"""How long a refused request waits for the answer that never comes (the server drops it)."""
VIOLATION_WAIT_S = 10.0
"""Bound on waiting for the server's report of a violation (loaded machine)."""

DEPARTMENT = "finance"
OTHER_DEPARTMENT = "education"
NOT_INTAKE = (DEPARTMENT, permissions.MONITOR_PARTY, permissions.DEADLINES, permissions.MATCHER,
              permissions.PROJECTOR, permissions.AUDITOR, permissions.OPERATOR, permissions.API_PARTY,
              permissions.PRIVACY)
NOT_OPERATOR = (DEPARTMENT, permissions.MONITOR_PARTY, permissions.INTAKE, permissions.DEADLINES,
                permissions.MATCHER, permissions.PROJECTOR, permissions.AUDITOR,
                permissions.API_PARTY, permissions.PRIVACY)


class Party:
    """A connection as one party that records the violations the server reports to it."""

    def __init__(self, nc: Client, violations: list[str], closed: asyncio.Event) -> None:
        self.nc = nc
        self.closed = closed
        self.js = nc.jetstream(timeout=SHORT_S)
        self.violations = violations

    async def violation(self, fragment: str) -> str:
        """The server's report of a refused publish or subscription naming `fragment`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + VIOLATION_WAIT_S
        while loop.time() < deadline:
            for v in self.violations:
                if "permissions violation" in v.lower() and fragment.lower() in v.lower():
                    return v
            await asyncio.sleep(0.02)
        raise AssertionError(f"no violation for {fragment!r}; seen: {self.violations}")


Connect = Callable[[str], Awaitable[Party]]


@pytest.fixture
async def as_party(settings: Settings, nc: Client) -> AsyncIterator[Connect]:
    """Connect as a party (the `nc` fixture has had the operator create the streams)."""
    opened: list[Client] = []

    async def connect(party: str) -> Party:
        violations: list[str] = []

        closed = asyncio.Event()

        async def on_error(e: Exception) -> None:
            violations.append(str(e))

        async def on_closed() -> None:
            closed.set()

        url = str(settings.nats_url)
        client = await nats.connect(
            url, name=f"test-{party}", error_cb=on_error, closed_cb=on_closed,
            allow_reconnect=False,
            **bootstrap.identity(url, "test", party=party),
        )
        opened.append(client)
        return Party(client, violations, closed)

    yield connect
    for client in opened:
        await client.close()


async def count(nc: Client, stream: str) -> int:
    return int((await nc.jetstream().stream_info(stream)).state.messages)


async def refused_publish(party: Party, subject: str, body: bytes = b"{}") -> None:
    """A JetStream publish the server drops: no acknowledgement, a violation reported."""
    with pytest.raises((NatsTimeout, TimeoutError)):
        await party.js.publish(subject, body, timeout=SHORT_S)
    await party.violation(subject)


async def refused_request(party: Party, subject: str, body: bytes = b"") -> None:
    """A JetStream API request the server drops (no answer), reporting a violation."""
    with pytest.raises((NatsTimeout, TimeoutError)):
        await party.nc.request(subject, body, timeout=SHORT_S)
    await party.violation(subject)


def forged_policy(department: str = DEPARTMENT) -> bytes:
    return f.dumps(f.issued("C-1", department=department))


# ── sources ──────────────────────────────────────────────────────────────────────────────────


async def test_a_department_may_not_publish_under_another_departments_intake_subject(
    nc: Client, as_party: Connect
) -> None:
    finance = await as_party(DEPARTMENT)
    before = await count(nc, streams.INTAKE)
    await refused_publish(finance, streams.intake_subject(OTHER_DEPARTMENT, "oa", "C-1"))
    assert await count(nc, streams.INTAKE) == before
    # its own subject is open to it
    ack = await finance.js.publish(streams.intake_subject(DEPARTMENT, "oa", "C-1"), b"{}")
    assert ack.stream == streams.INTAKE


@pytest.mark.parametrize("party", ["cyberspace_office", DEPARTMENT, permissions.INTAKE])
async def test_only_the_monitor_publishes_on_the_monitors_subject(
    nc: Client, as_party: Connect, party: str
) -> None:
    """OP-5: opinions come only from the cyberspace office's monitoring feed; not even the
    office's own OA system may speak as it."""
    intruder = await as_party(party)
    subject = streams.intake_subject("cyberspace_office", "monitor", "O-1")
    await refused_publish(intruder, subject)
    monitor = await as_party(permissions.MONITOR_PARTY)
    assert (await monitor.js.publish(subject, b"{}")).stream == streams.INTAKE
    assert await count(nc, streams.INTAKE) == 1


async def test_the_monitor_publishes_nowhere_else(as_party: Connect) -> None:
    monitor = await as_party(permissions.MONITOR_PARTY)
    await refused_publish(monitor, streams.intake_subject("cyberspace_office", "oa", "C-1"))


async def test_a_department_may_not_hear_another_departments_outcomes_or_read_the_log(
    as_party: Connect,
) -> None:
    finance = await as_party(DEPARTMENT)
    for subject in (
        streams.outcomes_subject(OTHER_DEPARTMENT, "oa"),
        streams.ALL_EVENTS,
        f"{permissions.inbox_prefix(permissions.INTAKE)}.>",
    ):
        await finance.nc.subscribe(subject)
        await finance.violation(subject)
    await refused_request(finance, f"$JS.API.STREAM.INFO.{streams.EVENTS}")


async def test_the_intake_may_not_publish_as_a_source(nc: Client, as_party: Connect) -> None:
    intake = await as_party(permissions.INTAKE)
    await refused_publish(intake, streams.intake_subject(DEPARTMENT, "oa", "C-1"))


# ── the HTTP API ─────────────────────────────────────────────────────────────────────────────


async def test_the_api_publishes_any_organs_intake_but_never_the_monitors(
    nc: Client, as_party: Connect
) -> None:
    """The API posts for each organ it has checked a token of; the monitor's feed (OP-5) it
    may not speak for at all."""
    api = await as_party(permissions.API_PARTY)
    for department in (DEPARTMENT, OTHER_DEPARTMENT, "cyberspace_office"):
        ack = await api.js.publish(streams.intake_subject(department, "oa", "C-1"), b"{}")
        assert ack.stream == streams.INTAKE
    await refused_publish(api, streams.intake_subject("cyberspace_office", "monitor", "C-1"))
    assert await count(nc, streams.INTAKE) == 3


async def test_the_api_may_not_read_the_log_nor_hear_another_partys_replies(
    as_party: Connect,
) -> None:
    """It reads REJECTED, CHECKPOINTS and the outcomes (for its readers and its intake), and
    the projections' read models: never the log's events themselves, nor anyone's inbox."""
    api = await as_party(permissions.API_PARTY)
    await refused_request(api, f"$JS.API.CONSUMER.CREATE.{streams.EVENTS}", b"{}")
    await refused_request(api, f"$JS.API.DIRECT.GET.{streams.EVENTS}", b'{"seq": 1}')
    await refused_request(api, f"$JS.API.CONSUMER.MSG.NEXT.{streams.INTAKE}.intake-0", b"1")
    for subject in ("_INBOX_intake.>", streams.ALL_EVENTS, "jiedu.rejected.>"):
        await api.nc.subscribe(subject)
        await api.violation(subject)
    # what it may: every source's outcomes, and REJECTED's messages
    await api.nc.subscribe(streams.ALL_OUTCOMES)
    assert (await api.js.stream_info(streams.REJECTED)).config.name == streams.REJECTED


# ── the log ──────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("party", NOT_INTAKE)
async def test_only_the_intake_writes_the_log(nc: Client, as_party: Connect, party: str) -> None:
    """The forgeries of issue 14: a PolicyIssued, a FindingRecorded or an OpinionDetected
    straight into EVENTS."""
    intruder = await as_party(party)
    for event_type in ("PolicyIssued", "FindingRecorded", "OpinionDetected"):
        await refused_publish(
            intruder, streams.event_subject(DEPARTMENT, "C-1", event_type), forged_policy()
        )
    assert await count(nc, streams.EVENTS) == 0
    intake = await as_party(permissions.INTAKE)
    ack = await intake.js.publish(
        streams.event_subject(DEPARTMENT, "C-1", "PolicyIssued"), forged_policy()
    )
    assert ack.stream == streams.EVENTS


@pytest.mark.parametrize("party", NOT_INTAKE)
async def test_only_the_intake_writes_rejected(nc: Client, as_party: Connect, party: str) -> None:
    intruder = await as_party(party)
    await refused_publish(intruder, streams.rejected_subject("not_json", 1), b"x")
    assert await count(nc, streams.REJECTED) == 0
    intake = await as_party(permissions.INTAKE)
    assert (await intake.js.publish(streams.rejected_subject("not_json", 1), b"x")).seq == 1


@pytest.mark.parametrize("party", [permissions.INTAKE, DEPARTMENT, permissions.OPERATOR])
async def test_only_the_deadline_service_writes_deadline_events(
    nc: Client, as_party: Connect, party: str
) -> None:
    intruder = await as_party(party)
    for event_type in permissions.DEADLINE_TYPES:
        await refused_publish(intruder, streams.event_subject(DEPARTMENT, "C-1", event_type))
    deadlines = await as_party(permissions.DEADLINES)
    ack = await deadlines.js.publish(
        streams.event_subject(DEPARTMENT, "C-1", "DeadlineStarted"), b"{}"
    )
    assert ack.stream == streams.EVENTS
    assert await count(nc, streams.EVENTS) == 1


async def test_the_deadline_service_writes_no_other_event(nc: Client, as_party: Connect) -> None:
    deadlines = await as_party(permissions.DEADLINES)
    await refused_publish(deadlines, streams.event_subject(DEPARTMENT, "C-1", "FindingRecorded"))
    await refused_publish(
        deadlines, streams.event_subject(DEPARTMENT, "C-1", "ConsultationMatched")
    )


@pytest.mark.parametrize(
    "party", [permissions.INTAKE, permissions.DEADLINES, DEPARTMENT, permissions.OPERATOR]
)
async def test_qa4_only_the_matcher_writes_consultation_matched(
    nc: Client, as_party: Connect, party: str
) -> None:
    intruder = await as_party(party)
    await refused_publish(
        intruder, streams.event_subject(DEPARTMENT, "C-1", "ConsultationMatched")
    )
    matcher = await as_party(permissions.MATCHER)
    ack = await matcher.js.publish(
        streams.event_subject(DEPARTMENT, "C-1", "ConsultationMatched"), b"{}"
    )
    assert ack.stream == streams.EVENTS
    assert await count(nc, streams.EVENTS) == 1


async def test_qa4_the_matcher_writes_no_other_event(nc: Client, as_party: Connect) -> None:
    matcher = await as_party(permissions.MATCHER)
    for event_type in ("ConsultationAnswered", "QAEntryPublished", "DeadlineStarted",
                       "FindingRecorded"):
        await refused_publish(matcher, streams.event_subject(DEPARTMENT, "C-1", event_type))
    await refused_publish(matcher, f"jiedu.intake.{DEPARTMENT}.oa.C-1")
    await refused_publish(matcher, streams.rejected_subject("not_json", 1), b"x")
    assert await count(nc, streams.EVENTS) == 0


@pytest.mark.parametrize(
    "party", [permissions.INTAKE, permissions.DEADLINES, DEPARTMENT, permissions.OPERATOR]
)
async def test_only_the_privacy_party_records_erasures(
    nc: Client, as_party: Connect, party: str
) -> None:
    """Issue 17: an erasure claims a person's data is gone; only `jiedu privacy erase`, which
    destroyed the keys, may say so."""
    intruder = await as_party(party)
    await refused_publish(intruder, streams.event_subject(DEPARTMENT, "C-1", "PersonalDataErased"))
    privacy = await as_party(permissions.PRIVACY)
    ack = await privacy.js.publish(
        streams.event_subject(DEPARTMENT, "C-1", "PersonalDataErased"), b"{}"
    )
    assert ack.stream == streams.EVENTS
    assert await count(nc, streams.EVENTS) == 1


async def test_the_privacy_party_writes_no_other_event_nor_intake_and_deletes_nothing(
    nc: Client, as_party: Connect
) -> None:
    privacy = await as_party(permissions.PRIVACY)
    for event_type in ("ConsultationReceived", "FindingRecorded", "DeadlineStarted"):
        await refused_publish(privacy, streams.event_subject(DEPARTMENT, "C-1", event_type))
    await refused_publish(privacy, streams.intake_subject(DEPARTMENT, "oa", "C-1"))
    await refused_request(privacy, f"$JS.API.STREAM.MSG.DELETE.{streams.INTAKE}", b'{"seq": 1}')
    assert await count(nc, streams.EVENTS) == 0


@pytest.mark.parametrize("party", [p for p in NOT_INTAKE if p != permissions.OPERATOR])
async def test_only_the_intake_erases_a_message_from_intake(
    as_party: Connect, party: str
) -> None:
    """The intake overwrites decided messages naming a person (issue 17); no one else but the
    operator may delete from the work queue."""
    intruder = await as_party(party)
    await refused_request(intruder, f"$JS.API.STREAM.MSG.DELETE.{streams.INTAKE}", b'{"seq": 1}')


# ── administration ───────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("party", NOT_OPERATOR)
@pytest.mark.parametrize("stream", [streams.EVENTS, streams.CHECKPOINTS])
async def test_only_the_operator_updates_purges_or_deletes_a_stream(
    nc: Client, as_party: Connect, party: str, stream: str
) -> None:
    """Limits would drop history (deny_delete and deny_purge do not stop them); deleting the
    stream would drop all of it."""
    intruder = await as_party(party)
    shrunk = StreamConfig(
        name=stream, subjects=[streams.ALL_EVENTS if stream == streams.EVENTS
                               else streams.CHECKPOINT_SUBJECTS],
        max_msgs=5, discard=DiscardPolicy.OLD, deny_delete=True, deny_purge=True,
    )
    api = "$JS.API"
    await refused_request(intruder, f"{api}.STREAM.UPDATE.{stream}",
                          orjson.dumps(shrunk.as_dict()))
    await refused_request(intruder, f"{api}.STREAM.PURGE.{stream}")
    await refused_request(intruder, f"{api}.STREAM.DELETE.{stream}")
    await refused_request(intruder, f"{api}.STREAM.MSG.DELETE.{stream}", b'{"seq": 1}')
    info = await nc.jetstream().stream_info(stream)
    assert info.config.max_msgs == -1
    # the operator may (and the services then refuse to run: test_log_locks.py)
    operator = await as_party(permissions.OPERATOR)
    assert (await operator.js.stream_info(stream)).config.name == stream


@pytest.mark.parametrize("party", NOT_OPERATOR)
async def test_only_the_operator_creates_a_stream(as_party: Connect, party: str) -> None:
    intruder = await as_party(party)
    config = StreamConfig(name="SHADOW", subjects=["shadow.>"])
    await refused_request(intruder, "$JS.API.STREAM.CREATE.SHADOW", orjson.dumps(config.as_dict()))


@pytest.mark.parametrize(
    "party",
    [DEPARTMENT, permissions.MONITOR_PARTY, permissions.AUDITOR, permissions.PROJECTOR,
     permissions.DEADLINES, permissions.API_PARTY],
)
@pytest.mark.parametrize("bucket", [streams.OUTCOMES_BUCKET, streams.LEASES_BUCKET])
async def test_nobody_but_the_intake_and_the_operator_writes_the_outcomes_or_leases(
    nc: Client, as_party: Connect, party: str, bucket: str
) -> None:
    """A put into the outcomes bucket would rewrite what `jiedu status` answers; one into the
    leases would take the intake's partitions."""
    intruder = await as_party(party)
    await refused_publish(intruder, f"$KV.{bucket}.partition.0", b'{"owner": "me"}')
    await refused_request(intruder, f"$JS.API.STREAM.PURGE.KV_{bucket}")
    assert await count(nc, f"KV_{bucket}") == 0


# ── who may connect ──────────────────────────────────────────────────────────────────────────


async def test_a_connection_without_credentials_is_refused(settings: Settings) -> None:
    with pytest.raises((NoServersError, nats.errors.Error, OSError)):
        await nats.connect(
            str(settings.nats_url), connect_timeout=2, allow_reconnect=False,
            max_reconnect_attempts=0,
        )


async def test_an_unknown_key_is_refused(settings: Settings) -> None:
    stranger = identities.new_seed().decode()
    with pytest.raises((NoServersError, nats.errors.Error, OSError)):
        await nats.connect(
            str(settings.nats_url), connect_timeout=2, allow_reconnect=False,
            max_reconnect_attempts=0, nkeys_seed_str=stranger,
        )


async def test_a_revoked_organ_is_refused_after_a_reload_without_a_restart(
    nats_server: NatsServer, settings: Settings, nc: Client, as_party: Connect
) -> None:
    finance = await as_party(DEPARTMENT)
    seed = nats_server.credentials.seed(DEPARTMENT)
    assert (await finance.js.publish(streams.intake_subject(DEPARTMENT, "oa", "C-1"), b"{}")).seq
    pid = nats_server.process.pid if nats_server.process else None

    key = nats_server.credentials.revoke(DEPARTMENT)
    nats_server.reload()

    await asyncio.wait_for(finance.closed.wait(), VIOLATION_WAIT_S)  # closed by the server
    with pytest.raises((NoServersError, nats.errors.Error, OSError)):
        await nats.connect(
            str(settings.nats_url), connect_timeout=2, allow_reconnect=False,
            max_reconnect_attempts=0, nkeys_seed_str=seed,
        )
    assert nats_server.credentials.revoked() == {DEPARTMENT: [key]}
    # the log went on: same server process, the others still connected
    assert nats_server.process is not None and nats_server.process.pid == pid
    assert nats_server.process.poll() is None
    education = await as_party(OTHER_DEPARTMENT)
    ack = await education.js.publish(streams.intake_subject(OTHER_DEPARTMENT, "oa", "C-2"), b"{}")
    assert ack.seq == 2
    assert nc.is_connected


async def test_a_reissued_organ_gets_a_new_key(nats_server: NatsServer, tmp_path: Path) -> None:
    creds = nats_server.credentials
    old = creds.public_key(DEPARTMENT)
    creds.revoke(DEPARTMENT)
    path = creds.issue(DEPARTMENT, nats_server.organs)
    assert creds.public_key(DEPARTMENT) != old
    assert path.stat().st_mode & 0o777 == 0o600
    assert DEPARTMENT not in creds.revoked()
