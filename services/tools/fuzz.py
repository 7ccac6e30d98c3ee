"""The hostile mix (issue 12, issue 19): a seeded generator of intake messages of more than 40
kinds — valid drafts, issues, reviews and exact resends among malformed JSON, broken fields of
every upstream type, values out of range, wildcard subjects, unknown departments and cases that
do not exist — each with what must become of it (`Sent.expect`: `accepted`, `duplicate`, a
reason code, `ANY_REJECTION`, or `REFUSED` at publish).

`tests/integration/test_intake_fuzz.py` checks the conservation law on it; `jiedu bench --parts
fuzz` measures the intake's throughput on it against good events. One generator for both, so
the benchmark's "bad input" is the input the tests prove is decided correctly."""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from events import streams
from services.tools import demo
from services.tools import factories as f

ANY_REJECTION = "rejected"
REFUSED = "refused at publish"
"""Expected outcomes besides `accepted`, `duplicate` and a reason code."""


@dataclass
class Sent:
    kind: str
    expect: str
    subject: str
    body: bytes


@dataclass
class World:
    """What the generator has sent so far, so that follow-ups name real cases."""

    rng: random.Random
    n: int = 0
    open_cases: list[str] = field(default_factory=list)
    issued: set[str] = field(default_factory=set)
    accepted: list[dict[str, Any]] = field(default_factory=list)

    def case(self) -> str:
        self.n += 1
        return f"FZ-{self.n:06d}"

    def an_open_case(self) -> str | None:
        return self.rng.choice(self.open_cases) if self.open_cases else None


LIMIT = streams.intake_max_message(1024 * 1024)


def subject(event: dict[str, Any], department: str | None = None, system: str | None = None,
            case: str | None = None) -> str:
    return streams.intake_subject(department or event["department"],
                                  system or event["source_system"], case or event["case_id"])


def msg(kind: str, expect: str, event: dict[str, Any] | bytes, subj: str | None = None) -> Sent:
    body = event if isinstance(event, bytes) else f.dumps(event)
    assert subj is not None or isinstance(event, dict)
    return Sent(kind, expect, subj or subject(event), body)  # type: ignore[arg-type]


def raw_number(event: dict[str, Any], key: str, literal: str) -> bytes:
    """`event` with the JSON value of `key` (a unique key, set to 7) written as `literal`."""
    return f.dumps(event).replace(f'"{key}":7'.encode(), f'"{key}":{literal}'.encode(), 1)


def results(case: str) -> dict[str, Any]:
    return f.envelope("ConsultationResultsPublished", case, url="https://www.cqyz.gov.cn/r",
                      comments_received=7, comments_adopted=0)


# ── the kinds: each makes one message (or a few) and says what must become of it ────────────

Kind = Callable[[World], list[Sent]]
KINDS: dict[str, tuple[Kind, float]] = {}
"""kind name → (generator, relative weight); weight 0: a fixed few, not proportional."""
FIXED = {"boundary-size garbage": 2, "boundary-size valid draft": 2, "1 MiB body": 3,
         "INTAKE limit + 1 body": 3}


def kind(name: str, weight: float = 1.0) -> Callable[[Kind], Kind]:
    def register(fn: Kind) -> Kind:
        KINDS[name] = (fn, weight)
        return fn
    return register


@kind("valid draft", 6)
def _draft(w: World) -> list[Sent]:
    case = w.case()
    w.open_cases.append(case)
    event = f.draft(case)
    w.accepted.append(event)
    return [msg("valid draft", "accepted", event)]


@kind("valid issued", 3)
def _issued(w: World) -> list[Sent]:
    case = next((c for c in reversed(w.open_cases[-50:]) if c not in w.issued), None)
    if case is None:
        return _draft(w)
    w.issued.add(case)
    event = f.issued(case)
    w.accepted.append(event)
    return [msg("valid issued", "accepted", event)]


@kind("valid review", 3)
def _review(w: World) -> list[Sent]:
    case = w.an_open_case()
    if case is None:
        return _draft(w)
    event = f.envelope("ReviewSigned", case, stage="section_head", signer="王五")
    w.accepted.append(event)
    return [msg("valid review", "accepted", event)]


@kind("large valid title (100 KB)", 0.2)
def _large(w: World) -> list[Sent]:
    case = w.case()
    w.open_cases.append(case)
    event = f.draft(case)
    event["data"]["title"] = "楼" * 35_000
    return [msg("large valid title (100 KB)", "accepted", event)]


@kind("resent exactly", 2)
def _resent(w: World) -> list[Sent]:
    if not w.accepted:
        return _draft(w)
    return [msg("resent exactly", "duplicate", w.rng.choice(w.accepted))]


@kind("event ID reused with other content")
def _conflict(w: World) -> list[Sent]:
    drafts = [e for e in w.accepted if e["type"] == "DraftSubmitted"]
    if not drafts:
        return _draft(w)
    earlier = w.rng.choice(drafts)
    changed = {**earlier, "data": {**earlier["data"], "title": f"另一个标题 {w.rng.random()}"}}
    return [msg("event ID reused with other content", "event_id_conflict", changed)]


@kind("unknown case")
def _unknown(w: World) -> list[Sent]:
    return [msg("unknown case", "unknown_case", f.issued(f"NONE-{w.case()}"))]


@kind("second opening of a case")
def _second_open(w: World) -> list[Sent]:
    case = w.an_open_case()
    if case is None:
        return _draft(w)
    return [msg("second opening of a case", "case_exists", f.draft(case))]


@kind("reserved type sent in")
def _reserved(w: World) -> list[Sent]:
    event = f.envelope("FindingRecorded", w.case(), finding_id="f1", rule_id="REV-5",
                       rule_set="2021-11-24", severity="violation", evidence=[{"event_id": "e1"}],
                       message_zh="未经审核即发布", message_en="published before review")
    if w.rng.random() < 0.5:  # the matcher's suggestions (QA-4) are Jiedu's too
        event = f.envelope("ConsultationMatched", w.case(), consultation_id="c1",
                           suggestions=[{"entry_id": "e1", "case_id": "C-1", "score": 1.5,
                                         "confidence": 0.9}],
                           answerable=True, threshold=0.3, searched_on="2026-07-06")
    return [msg("reserved type sent in", "reserved_type", event)]


@kind("another department's event")
def _other_department(w: World) -> list[Sent]:
    event = f.draft(w.case())
    return [msg("another department's event", "department_mismatch", event,
                subject(event, department="finance"))]


@kind("unknown department")
def _unknown_department(w: World) -> list[Sent]:
    event = f.draft(w.case(), department="mars")
    return [msg("unknown department", "unknown_department", event)]


@kind("source system not the subject's")
def _source(w: World) -> list[Sent]:
    event = f.draft(w.case())
    return [msg("source system not the subject's", "source_mismatch", event,
                subject(event, system="erp"))]


@kind("case not the subject's")
def _case_mismatch(w: World) -> list[Sent]:
    event = f.draft(w.case())
    return [msg("case not the subject's", "case_mismatch", event, subject(event, case="OTHER"))]


@kind("1 MiB body", 0)
def _mib(w: World) -> list[Sent]:
    return [msg("1 MiB body", REFUSED, b"x" * 1024 * 1024, streams.intake_subject("drc", "oa", w.case()))]


@kind("INTAKE limit + 1 body", 0)
def _over(w: World) -> list[Sent]:
    return [msg("INTAKE limit + 1 body", REFUSED, b"{" * (LIMIT + 1),
                streams.intake_subject("drc", "oa", w.case()))]


@kind("boundary-size garbage", 0)
def _boundary_garbage(w: World) -> list[Sent]:
    return [msg("boundary-size garbage", "not_json", b"\xff" * LIMIT,
                streams.intake_subject("drc", "oa", w.case()))]


@kind("boundary-size valid draft", 0)
def _boundary_valid(w: World) -> list[Sent]:
    case = w.case()
    event = f.draft(case)
    title = event["data"]["title"]
    event["data"]["title"] = "x" * (LIMIT - len(f.dumps(event)) + len(title.encode()))
    assert len(f.dumps(event)) == LIMIT
    w.open_cases.append(case)
    return [msg("boundary-size valid draft", "accepted", event)]


def _numbers(name: str, literal: Callable[[random.Random], str], expect: str) -> None:
    @kind(name)
    def make(w: World) -> list[Sent]:
        event = results(w.case())
        return [msg(name, expect, raw_number(event, "comments_received", literal(w.rng)),
                    subject(event))]


_numbers("count beyond 64 bits", lambda r: str(r.randrange(2**64, 2**200)), "out_of_range")
_numbers("count of 2^63", lambda r: str(2**63), "out_of_range")
_numbers("count beyond its field's bound", lambda r: str(r.randrange(10**8 + 1, 2**63)), "out_of_range")
_numbers("negative count", lambda r: str(-r.randrange(1, 2**70)), "out_of_range")
_numbers("count as a float", lambda r: r.choice(["1e30", "3.0", "-0.5", "1E400"]), ANY_REJECTION)
_numbers("count as a string", lambda r: '"12"', "invalid_field")


def _version(name: str, literal: str, expect: str) -> None:
    @kind(name)
    def make(w: World) -> list[Sent]:
        event = {**f.draft(w.case()), "schema_version": 7}
        return [msg(name, expect, raw_number(event, "schema_version", literal), subject(event))]


_version("schema_version 0", "0", "out_of_range")
_version("schema_version -1", "-1", "out_of_range")
_version('schema_version "2"', '"2"', "invalid_field")
_version("schema_version 2.0", "2.0", "invalid_field")
_version("schema_version beyond 64 bits", "9" * 30, "unsupported_version")


def _time(name: str, value: Any, expect: str) -> None:
    @kind(name)
    def make(w: World) -> list[Sent]:
        return [msg(name, expect, {**f.draft(w.case()), "occurred_at": value})]


_time("time in year 1", "0001-01-01T00:00:00+08:00", "out_of_range")
_time("time in year 9999", "9999-12-31T23:59:59-08:00", "out_of_range")
_time("time as epoch seconds", 1751765400, "invalid_field")
_time("time as a negative number", -62135596800, "invalid_field")
_time("time without offset", "2026-07-06T09:30:00", "naive_timestamp")


@kind("date in year 1")
def _date(w: World) -> list[Sent]:
    event = f.issued(f"NONE-{w.case()}")
    event["data"]["issue_date"] = "0001-01-01"
    return [msg("date in year 1", "out_of_range", event)]


def _stray(name: str, make_subject: Callable[[str], str], expect: str) -> None:
    @kind(name)
    def make(w: World) -> list[Sent]:
        event = f.draft(w.case())
        return [msg(name, expect, event, make_subject(event["case_id"]))]


_stray("subject: * as department", lambda c: f"jiedu.intake.*.oa.{c}", "invalid_subject")
_stray("subject: * as system", lambda c: f"jiedu.intake.drc.*.{c}", "invalid_subject")
_stray("subject: > as case", lambda c: "jiedu.intake.drc.oa.>", "invalid_subject")
_stray("subject: > as department", lambda c: f"jiedu.intake.>.oa.{c}", "invalid_subject")
_stray("subject: empty token", lambda c: f"jiedu.intake..oa.{c}", REFUSED)
_stray("subject: trailing dot", lambda c: "jiedu.intake.drc.oa.", REFUSED)
_stray("subject: odd characters", lambda c: f"jiedu.intake.drc.o\u00e4\u2603.{c}", "source_mismatch")
_stray("subject: too many tokens", lambda c: f"jiedu.intake.drc.oa.{c}.x", REFUSED)


def _garbage(name: str, body: Callable[[random.Random], bytes], expect: str) -> None:
    @kind(name)
    def make(w: World) -> list[Sent]:
        return [msg(name, expect, body(w.rng), streams.intake_subject("drc", "oa", w.case()))]


_garbage("binary garbage", lambda r: b"\xff" + r.randbytes(r.randrange(0, 512)), "not_json")
_garbage("empty body", lambda r: b"", "not_json")
_garbage("JSON array", lambda r: b"[1,2,3]", "not_object")
_garbage("JSON scalar", lambda r: r.choice([b"null", b"42", b'"x"', b"true"]), "not_object")
_garbage("deep nesting", lambda r: b"[" * r.randrange(1025, 50_000), "not_json")
_garbage("lone surrogate", lambda r: f.dumps(f.draft("S")).replace(
    b'"title":"', b'"title":"\\ud800', 1), "not_json")
_garbage("unknown type", lambda r: f.dumps({**f.draft("U"), "type": "PolicyInvented"}), "unknown_type")
_garbage("no type", lambda r: f.dumps({k: v for k, v in f.draft("U").items() if k != "type"}),
         "unknown_type")


@kind("nesting inside a field")
def _nested_field(w: World) -> list[Sent]:
    event = {**f.draft(w.case()), "correlation_id": "NEST"}
    depth = w.rng.randrange(100, 1000)
    body = f.dumps(event).replace(b'"NEST"', b'{"a":' * depth + b"1" + b"}" * depth)
    return [msg("nesting inside a field", ANY_REJECTION, body, subject(event))]


@kind("duplicate key, top level")
def _dup_top(w: World) -> list[Sent]:
    event = f.draft(w.case())
    body = b'{"case_id":"ELSEWHERE",' + f.dumps(event)[1:]
    return [msg("duplicate key, top level", "duplicate_key", body, subject(event))]


@kind("duplicate key, nested")
def _dup_nested(w: World) -> list[Sent]:
    event = f.draft(w.case())
    body = f.dumps(event).replace(b'"scope":"normative"', b'"scope":"normative","scope":"out_of_scope"')
    return [msg("duplicate key, nested", "duplicate_key", body, subject(event))]


@kind("NUL in text")
def _nul(w: World) -> list[Sent]:
    event = f.draft(w.case())
    event["data"]["title"] = "楼宇\u0000经济"
    return [msg("NUL in text", "unstorable_text", event)]


@kind("missing field")
def _missing(w: World) -> list[Sent]:
    event = {k: v for k, v in f.draft(w.case()).items() if k != "actor"}
    return [msg("missing field", "missing_field", event)]


@kind("unknown field")
def _extra(w: World) -> list[Sent]:
    return [msg("unknown field", "invalid_field", {**f.draft(w.case()), "priority": "high"})]


def _examples() -> dict[str, tuple[str, dict[str, Any]]]:
    """One valid event of each upstream type, with its source's subject: from the demo quarter."""
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    messages = demo.generate(cases=40)
    # an answer from the library names its entry (QA-4): the example with those fields
    named = [m for m in messages
             if m.body["type"] == "ConsultationAnswered" and "entry_id" in m.body["data"]]
    for m in named[:1] + messages:
        out.setdefault(m.body["type"], (m.subject, m.body))
    # the demo quarter confirms no calendar year: the government office's confirmation
    year = f.envelope("CalendarYearConfirmed", "calendar-2027", "gov_office", year=2027,
                      notice="国办发明电〔2026〕X号", holidays=["2027-01-01"], make_up_working_days=[])
    out.setdefault(year["type"], (subject(year), year))
    # the asker's personal fields (issue 17), each broken in turn like every other field
    subj, consultation = out["ConsultationReceived"]
    consultation = copy.deepcopy(consultation)
    consultation["data"]["asker"] = {"name": "张三", "phone": "13800000000",
                                     "email": "zs@example.cn", "reply_via": "phone"}
    out["ConsultationReceived"] = (subj, consultation)
    # the Q&A library's types the demo quarter does not send (withdrawal, repeal)
    for event in (f.qa_entry("FZ-QA", "e1"), f.qa_entry("FZ-QA", "e1", type_="QAEntryRevised"),
                  f.withdrawn("FZ-QA", "e1"), f.repealed("FZ-QA")):
        out.setdefault(event["type"], (subject(event), event))
    return out


def _paths(value: dict[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for key, inner in value.items():
        yield (*prefix, key)
        if isinstance(inner, dict):
            yield from _paths(inner, (*prefix, key))


EXAMPLES = _examples()
FIELD_PATHS = [(t, p) for t, (_, e) in sorted(EXAMPLES.items()) for p in _paths(e) if p != ("type",)]
"""Every upstream event type with every field it has, nested ones included: each is broken in
turn (the reserved types have their own kind)."""
BREAKERS = ["HUGE", [[[[[[[[["deep"]]]]]]]]], {"$": {"$": None}}]
"""Values no field takes: an integer beyond 64 bits, nested lists, an object of unknown keys."""


@kind("every type, every field broken", 6)
def _broken(w: World) -> list[Sent]:
    event_type, path = FIELD_PATHS[w.n % len(FIELD_PATHS)]
    w.n += 1
    subj, example = EXAMPLES[event_type]
    event = copy.deepcopy(example)
    target = event
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = w.rng.choice(BREAKERS)
    body = f.dumps(event).replace(b'"HUGE"', b"1" + b"0" * 40)
    return [msg("every type, every field broken", ANY_REJECTION, body, subj)]


def generate(count: int, seed: int) -> list[Sent]:
    """`count` messages, the same for the same seed: the fixed few at the size limits, every
    kind 40 times, then kinds drawn by weight (about a quarter of them valid)."""
    rng = random.Random(seed)
    world = World(rng)
    out: list[Sent] = []
    for name, n in FIXED.items():
        for _ in range(n):
            out += KINDS[name][0](world)
    names = [n for n, (_, weight) in KINDS.items() if weight > 0]
    weights = [KINDS[n][1] for n in names]
    for _ in range(40):  # every kind at least once, then by weight
        for name in names:
            out += KINDS[name][0](world)
    while len(out) < count:
        out += KINDS[rng.choices(names, weights)[0]][0](world)
    return out[:count]


