"""A case's consultations (政策咨询) with their askers (咨询人, issue 17).

The asker is kept sealed (`events.catalogue.SealedAsker`) in the log and the read model, and
opened here, per request, with the data subject's key from the key store:

- in clear for those who must reply or oversee the reply (QA-4 主动回复咨询人): the case's own
  department (the drafting unit, 起草单位) and the government office;
- masked (`***`) for every other reader (auditors);
- `已删除` once the subject's key was destroyed (`jiedu privacy erase`), for everyone;
- a key the store should have and has not is reported (`asker_key: "lost"`, fields null, an
  error logged), never shown as erased.
"""

from __future__ import annotations

import functools
import threading
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException

from domain.privacy import masked
from events.catalogue import Asker, SealedAsker
from projections.case_summary import CASES, CaseSummary
from projections.qa_consultations import CONSULTATIONS, QAConsultations
from services.adapters import logs
from services.adapters.keystore import KeyStore, keystore_path
from services.adapters.tokens import Role
from services.api.auth import Principal, Reader
from services.api.context import Context, context_of
from services.api.responses import JieduJSON, reply
from services.privacy import reveal

router = APIRouter(tags=["consultations"])
Ctx = Annotated[Context, Depends(context_of)]
log = logs.get("jiedu.api.privacy")

KEYS = "keystore"


_opening = threading.Lock()


def _keys(ctx: Context) -> KeyStore:
    """The key store, opened on the first read that needs it (reads run in threads)."""
    with _opening:
        if KEYS not in ctx.extras:
            ctx.extras[KEYS] = _Closing(KeyStore(keystore_path(ctx.settings)))
    keys: KeyStore = ctx.extras[KEYS].keys
    return keys


class _Closing:
    """Keeps the key store for the app's life and closes it with the app (`Context.close`)."""

    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys

    async def stop(self) -> None:
        self.keys.close()


def sees_personal(who: Principal, department: str) -> bool:
    """Who may see an asker in clear: the case's department and the government office."""
    return who.role == Role.GOV_OFFICE or (
        who.role == Role.DEPARTMENT and who.department == department
    )


def shown(keys: KeyStore, asker: dict[str, Any] | None, clear: bool) -> dict[str, Any]:
    """The asker columns as this reader sees them."""
    if asker is None:
        return {"asker": None, "asker_key": None}
    form: Asker | SealedAsker = (
        SealedAsker.model_validate(asker) if "subject_id" in asker else Asker.model_validate(asker)
    )
    try:
        opened = reveal(keys, form)
    except (LookupError, ValueError) as fault:
        log.error("an asker cannot be opened", fault=str(fault))
        return {"asker": {"reply_via": asker.get("reply_via"), "name": None, "phone": None,
                          "email": None}, "asker_key": "lost"}
    state = "erased" if (isinstance(form, SealedAsker) and not form.sealed) or any(
        v == "已删除" for v in (opened.name, opened.phone, opened.email)) else "ok"
    view = opened if clear else masked(opened)
    return {"asker": view.model_dump(mode="json"), "asker_key": state}


def consultation_rows(ctx: Context, who: Principal, case_id: str) -> list[dict[str, Any]] | None:
    store = ctx.read_store()
    found = store.select(CaseSummary(), CASES, {"case_id": case_id})
    if not found or not who.may_read(found[0]["department"]):
        return None
    clear = sees_personal(who, found[0]["department"])
    keys = _keys(ctx)
    out = []
    for row in store.select(QAConsultations(), CONSULTATIONS, {"case_id": case_id},
                            order_by=("received_seq",)):
        item = {k: v for k, v in row.items() if k not in ("asker", "asker_subject")}
        out.append(item | shown(keys, row["asker"], clear))
    return out


@router.get("/cases/{case_id}/consultations", response_class=JieduJSON)
async def get_consultations(ctx: Ctx, who: Reader, case_id: str) -> JieduJSON:
    """A case's consultations, each with its asker: in clear for the case's department and the
    government office, masked for others, 已删除 once erased."""
    found = await ctx.read(functools.partial(consultation_rows, ctx, who, case_id))
    if found is None:
        raise HTTPException(404, f"no case {case_id} you may read")
    return reply({"case_id": case_id, "consultations": found})
