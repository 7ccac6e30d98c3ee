"""Q&A entries through the real intake (QA-1): the lifecycle lands in the log, and each
impossible or unauthorised entry event is refused with its reason."""

from __future__ import annotations

from nats.aio.client import Client

import factories as f
from logtools import drained, facts, publish, rejected


async def test_qa1_an_entry_lifecycle_is_logged_and_the_impossible_steps_are_refused(
    nc: Client, intake: object
) -> None:
    accepted = [
        f.draft("QA-C1"),
        f.issued("QA-C1"),
        f.qa_entry("QA-C1", "e1"),
        f.qa_entry("QA-C1", "e1", type_="QAEntryRevised", answer="改为每年4月申请。"),
        f.withdrawn("QA-C1", "e1"),
        f.repealed("QA-C1"),
    ]
    for event in accepted:
        await publish(nc, event)
    refused = {
        await publish(nc, f.qa_entry("QA-C1", "e1")): "entry_exists",
        await publish(nc, f.withdrawn("QA-C1", "e1")): "unknown_reference",
        await publish(nc, f.qa_entry("QA-C1", "e2", type_="QAEntryRevised")): "unknown_reference",
        await publish(nc, f.qa_entry("QA-C1", "e3"), source="finance/oa"): "department_mismatch",
        await publish(nc, f.qa_entry("QA-C9", "e1")): "unknown_case",
    }
    await drained(nc)
    assert [e["event_id"] for _, e in await facts(nc) if e["type"] != "FindingRecorded"] == [
        e["event_id"] for e in accepted
    ]
    assert {seq: reason for seq, (reason, _) in (await rejected(nc)).items()} == refused


async def test_the_government_office_repeals_an_issued_policy_for_the_department(
    nc: Client, intake: object
) -> None:
    for event in (f.draft("QA-C2", department="housing"), f.issued("QA-C2", department="housing"),
                  f.draft("QA-C3", department="housing")):
        await publish(nc, event)
    await publish(nc, f.repealed("QA-C2", department="housing"), source="gov_office/oa")
    not_issued = await publish(nc, f.repealed("QA-C3", department="housing"))
    await drained(nc)
    assert [e["type"] for _, e in await facts(nc) if e["case_id"] == "QA-C2"][-1] == (
        "PolicyRepealed"
    )
    assert (await rejected(nc))[not_issued][0] == "unknown_reference"
