"""Valid events as upstream systems send them, for tests (`tests/factories.py` re-exports
these) and the benchmark's hostile mix (`services.tools.fuzz`) to vary."""

from __future__ import annotations

import itertools
from typing import Any

import orjson

_ids = itertools.count(1)

OA = "oa"


def envelope(type_: str, case_id: str, department: str = "drc", **data: Any) -> dict[str, Any]:
    return {
        "event_id": f"ev-{next(_ids):06d}",
        "type": type_,
        "schema_version": 2 if type_ == "DraftSubmitted" else 1,
        "case_id": case_id,
        "department": department,
        "actor": {"id": "u-001", "name": "张三"},
        "source_system": OA,
        "occurred_at": "2026-07-06T09:30:00+08:00",
        "data": data,
    }


def material(material_id: str = "m1", form: str = "text") -> dict[str, Any]:
    return {
        "material_id": material_id,
        "form": form,
        "background": "依据《重庆市行政机关政策解读工作办法》",
        "main_content": "主要内容",
        "audience": "辖区企业",
        "standards": "执行标准",
        "time_limits": "自印发之日起施行",
        "cautions": "注意事项",
        "key_terms": [{"term": "政策兑现", "explanation": "兑现承诺的扶持资金"}],
        "old_vs_new": "与旧政策相比",
    }


def plan(title: str = "关于促进楼宇经济发展的若干措施") -> dict[str, Any]:
    return {
        "title": title,
        "category": "normative",
        "forms": ["text", "chart", "press_release"],
        "channels": [
            {"channel": "government_website", "name": "渝中区人民政府网"},
            {"channel": "news_media", "name": "渝中报"},
        ],
        "release_date": None,
    }


def draft(case_id: str, department: str = "drc", **over: Any) -> dict[str, Any]:
    data = {
        "title": "关于促进楼宇经济发展的若干措施",
        "scope": "normative",
        "kind": "document",
        "issuer": {"kind": "department", "lead": department, "co_issuers": []},
        "plan": plan(),
        "materials": [material()],
    }
    data.update(over)
    return envelope("DraftSubmitted", case_id, department, **data)


def consultation(
    case_id: str, consultation_id: str, department: str = "drc", asker: dict[str, Any] | None = None
) -> dict[str, Any]:
    event = envelope(
        "ConsultationReceived",
        case_id,
        department,
        consultation_id=consultation_id,
        channel="hotline",
        question="补贴怎么申请?",
        received_by=department,
    )
    if asker is not None:
        event["data"]["asker"] = asker
    return event


ASKER_NAME, ASKER_PHONE, ASKER_EMAIL = "欧阳明哲", "13912345678", "ouyang.mz@example.cn"
"""A citizen who asks (咨询人): texts that appear nowhere else in the tests' events."""


def asker(name: str = ASKER_NAME, phone: str = ASKER_PHONE, email: str | None = ASKER_EMAIL
          ) -> dict[str, Any]:
    out = {"name": name, "phone": phone, "reply_via": "phone"}
    if email:
        out["email"] = email
    return out


def answer(case_id: str, consultation_id: str, department: str = "drc") -> dict[str, Any]:
    return envelope(
        "ConsultationAnswered",
        case_id,
        department,
        consultation_id=consultation_id,
        answer="请登录网站申请",
        from_library=True,
        instant=True,
    )


def issued(case_id: str, department: str = "drc") -> dict[str, Any]:
    return envelope(
        "PolicyIssued",
        case_id,
        department,
        document_number="渝中发改发〔2026〕7号",
        issue_date="2026-07-06",
    )


def qa_entry(
    case_id: str, entry_id: str, department: str = "drc", type_: str = "QAEntryPublished",
    **over: Any,
) -> dict[str, Any]:
    """A Q&A entry published (or, with `type_`, revised) on a policy case (QA-1)."""
    data: dict[str, Any] = {
        "entry_id": entry_id,
        "material_id": "m1",
        "question": "楼宇经济扶持资金怎么申请？",
        "answer": "符合条件的企业于每年3月通过区发展改革委网站提交申请材料。",
        "keywords": ["楼宇经济", "扶持资金"],
        "benefit_office": {"name": "区政务服务中心", "contact": "023-63000000"},
    }
    data.update(over)
    return envelope(type_, case_id, department, **data)


def withdrawn(case_id: str, entry_id: str, department: str = "drc") -> dict[str, Any]:
    return envelope("QAEntryWithdrawn", case_id, department, entry_id=entry_id, reason="政策调整")


def repealed(case_id: str, on: str = "2026-12-31", department: str = "drc") -> dict[str, Any]:
    return envelope("PolicyRepealed", case_id, department, kind="repealed", repealed_on=on,
                    document_number="渝中府发〔2026〕30号")


def dumps(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event)
