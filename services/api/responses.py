"""Responses in Jiedu's one JSON form (`services.adapters.jsonform`): times in Asia/Shanghai
with the offset written out, as the CLI prints them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi.responses import JSONResponse

from services.adapters.jsonform import compact


class JieduJSON(JSONResponse):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return compact(content)


def reply(
    content: Any, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> JieduJSON:
    """`content` as the response, in Jiedu's JSON form. Routes return this rather than the
    value itself: FastAPI's own encoder would write times in UTC."""
    return JieduJSON(content, status_code=status_code, headers=headers)
