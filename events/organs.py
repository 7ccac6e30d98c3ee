"""The district's organs (区级国家机关各部门, 管委会, 街道办事处) as data, not code."""

from __future__ import annotations

import json
from functools import cache, cached_property
from importlib import resources
from pathlib import Path
from typing import Literal

from events.envelope import Record, Token

OrganKind = Literal["office", "department", "management_committee", "subdistrict"]


class Organ(Record):
    code: Token
    name: str
    kind: OrganKind


class Organs(Record):
    district: str
    organs: tuple[Organ, ...]

    @cached_property
    def by_code(self) -> dict[str, Organ]:
        return {o.code: o for o in self.organs}

    def __contains__(self, code: object) -> bool:
        return code in self.by_code

    def get(self, code: str) -> Organ | None:
        return self.by_code.get(code)

    def name(self, code: str) -> str:
        organ = self.get(code)
        return organ.name if organ else code


@cache
def load_organs(path: Path | None = None) -> Organs:
    """The organs list: the packaged file, or an operator's replacement (`JIEDU_ORGANS_FILE`)."""
    text = (
        path.read_text(encoding="utf-8")
        if path
        else resources.files("events").joinpath("data/organs.json").read_text(encoding="utf-8")
    )
    return Organs.model_validate(json.loads(text))
