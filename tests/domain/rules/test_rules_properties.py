"""Properties of the engine over generated cases: independent cases arriving in any interleaving
get the same findings (their evidence's log positions move with the interleaving, and always
point at the right events); and facts rebuilt from the log judge as the live ones did."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from rulecases import ALL_GROUNDS, Events, Log, material, plan

from domain.rules import CaseFacts, Judgement, judge
from events.catalogue import (
    Channel,
    Event,
    FindingRecorded,
    FindingResolved,
    Form,
    Issuer,
    IssuerKind,
    OpinionKind,
    ResponseKind,
    ReviewStage,
    Scope,
)

STEPS = ("sign", "sign", "sign", "return", "resubmit", "issue", "publish", "publish",
         "consultation_draft", "consultation_results", "media", "correct", "consult", "opinion",
         "decision")
DEPARTMENTS = ("drc", "finance", "hrss", "education")


@st.composite
def case_events(draw: st.DrawFn, index: int) -> list[Event]:
    """A policy case of random shape whose events an intake would accept."""
    department = DEPARTMENTS[index % len(DEPARTMENTS)]
    ev = Events(case_id=f"case{index}", department=department)
    kind = draw(st.sampled_from(list(IssuerKind)))
    co = ("housing",) if kind is IssuerKind.JOINT else ()
    lead = draw(st.sampled_from([department, department, "planning"]))
    scope = draw(st.sampled_from(list(Scope)))
    materials = draw(st.sampled_from([(), (material(),), (material(cautions=None),)]))
    events: list[Event] = [
        ev.draft(
            scope=scope,
            issuer=Issuer(kind=kind, lead=lead, co_issuers=co),
            plan_=draw(st.sampled_from([None, plan(), plan(forms=(Form.TEXT,))])),
            materials=materials,
        )
    ]
    reports: list[str] = []
    opinions: list[str] = []
    steps = draw(st.lists(st.tuples(st.sampled_from(STEPS), st.integers(0, 11)), max_size=14))
    for n, (step, k) in enumerate(steps):
        stages = list(ReviewStage)
        match step:
            case "sign":
                grounds = ALL_GROUNDS if k % 4 else ALL_GROUNDS[:2]
                events.append(ev.sign(stages[k % len(stages)], grounds, covers_plan=k != 5))
            case "return":
                events.append(ev.returned("plan"))
            case "resubmit":
                events.append(ev.resubmit(plan() if k % 2 else None, (material("m1"),)))
            case "issue":
                events.append(ev.issued())
            case "publish":
                channels = [Channel.GOVERNMENT_WEBSITE, Channel.WECHAT, Channel.NEWS_MEDIA]
                events.append(ev.published(
                    f"m{k % 2 + 1}", [Form.TEXT, Form.CHART][k % 2], channels[k % 3],
                    linked=k % 5 != 0, url=None if k == 7 else "https://www.cqyz.gov.cn/jd/1.html",
                ))
            case "consultation_draft":
                events.append(ev.consultation_draft(interpretation=k % 2 == 0))
            case "consultation_results":
                events.append(ev.consultation_results())
            case "media":
                reports.append(f"r{n}")
                events.append(ev.media(f"r{n}", consulted=k % 2 == 0, misreading=k % 3 == 0))
            case "correct" if reports:
                events.append(ev.corrected(reports[k % len(reports)]))
            case "consult":
                q = f"q{n}"
                events.append(ev.received(q, received_by=[department, "gov_services_office"][k % 2]))
                if k % 3:
                    events.append(ev.referred(q, to=[department, "finance"][k % 2]))
                events.append(ev.answered(q, from_library=k % 2 == 0, instant=k % 4 == 0,
                                          by_drafting_unit=k % 5 == 0))
            case "opinion":
                o = f"o{n}"
                opinions.append(o)
                kinds, responses = list(OpinionKind), list(ResponseKind)
                events.append(ev.opinion(o, kind=kinds[k % len(kinds)]))
                events.append(ev.response(
                    o, kind=responses[k % len(responses)],
                    referred_to=("区委网信办",) if k % 2 else (),
                ))
            case "decision" if opinions:
                o = opinions[k % len(opinions)]
                events.append(ev.adopted(o) if k % 2 else ev.declined(o))
            case _:
                pass
    return events


@st.composite
def interleaved(draw: st.DrawFn) -> tuple[list[list[Event]], list[Event]]:
    """Several independent cases, and one order in which their events arrive (each case's own
    events keep their order)."""
    count = draw(st.integers(2, 4))
    cases = [draw(case_events(i)) for i in range(count)]
    turns = draw(st.permutations([i for i, events in enumerate(cases) for _ in events]))
    cursors = [0] * count
    arrival: list[Event] = []
    for i in turns:
        arrival.append(cases[i][cursors[i]])
        cursors[i] += 1
    return cases, arrival


def without_positions(judgement: Judgement) -> dict[str, Any]:
    """A judgement with the log sequences left out of its evidence (they depend on arrival)."""
    dumped = dataclass_dump(judgement)
    for f in dumped["findings"]:
        f["evidence"] = [e["event_id"] for e in f["evidence"]]
    for r in dumped["resolutions"]:
        r["resolved_by"] = r["resolved_by"]["event_id"]
    return dumped


def dataclass_dump(judgement: Judgement) -> dict[str, Any]:
    return {
        "findings": [f.model_dump() for f in judgement.findings],
        "resolutions": [r.model_dump() for r in judgement.resolutions],
    }


def by_case(log: Log) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    out: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for e, j in log.judgements:
        out.setdefault(e.case_id, []).append((e.event_id, without_positions(j)))
    return out


@settings(max_examples=150, deadline=None)
@given(interleaved())
def test_interleaving_independent_cases_never_changes_their_findings(
    scenario: tuple[list[list[Event]], list[Event]],
) -> None:
    cases, arrival = scenario
    alone: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for events in cases:
        log = Log()
        for e in events:
            log.add(e)
        alone.update(by_case(log))
    together = Log()
    for e in arrival:
        together.add(e)
    assert by_case(together) == alone
    positions = {e.event_id: seq for seq, e in together.records}
    for _, j in together.judgements:
        for f in j.findings:
            for ev in f.evidence:
                assert ev.sequence is None or ev.sequence == positions[ev.event_id]


@settings(max_examples=100, deadline=None)
@given(case_events(0))
def test_facts_folded_from_the_log_judge_every_event_as_live(events: list[Event]) -> None:
    log = Log()
    for e in events:
        log.add(e)
    live = iter(log.judgements)
    for i, (_, e) in enumerate(log.records):
        if isinstance(e, FindingRecorded | FindingResolved):
            continue
        event, judgement = next(live)
        assert event is e
        assert judge(CaseFacts.fold(log.records[:i]), None, e) == judgement
    open_ids = set(log.facts["case0"].open_findings)
    recorded = {f.finding_id for f in log.findings()}
    resolved = {r.finding_id for _, j in log.judgements for r in j.resolutions}
    assert resolved <= recorded
    assert open_ids == recorded - resolved
