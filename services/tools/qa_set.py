"""The district's Q&A library as data (`services/tools/data/qa/`): the entries each department
publishes about its policies, the questions citizens ask of each, and questions the library
cannot answer. The demo quarter publishes it; the benchmark (`jiedu bench --parts qa`) uses it
as the evaluation set.

Files: `<department>.json`, an array of entries (entry_id, policy_title — a title of the demo's
drafters —, question, answer, keywords, benefit_office or null, citizen_questions), and
`unanswerable.json`, an array of questions no entry answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

DATA = Path(__file__).resolve().parent / "data" / "qa"
UNANSWERABLE = "unanswerable.json"


@dataclass(frozen=True)
class SetEntry:
    """One entry of the set, with the citizens' questions it answers."""

    department: str
    entry_id: str
    policy_title: str
    question: str
    answer: str
    keywords: tuple[str, ...]
    benefit_office: dict[str, Any] | None
    citizen_questions: tuple[str, ...]


@dataclass(frozen=True)
class QASet:
    entries: tuple[SetEntry, ...]
    unanswerable: tuple[str, ...]

    def policies(self) -> dict[tuple[str, str], str]:
        """(department, policy title) → a case ID of its own, in file order."""
        out: dict[tuple[str, str], str] = {}
        for e in self.entries:
            key = (e.department, e.policy_title)
            if key not in out:
                out[key] = f"QA-{e.department.replace('_', '-')}-{len(out) + 1:03d}"
        return out

    def questions(self) -> Iterator[tuple[str, SetEntry]]:
        """Every citizen question with the entry that answers it."""
        for e in self.entries:
            for q in e.citizen_questions:
                yield q, e


def load(directory: Path = DATA) -> QASet:
    """Read the set; a malformed file raises naming it."""
    entries: list[SetEntry] = []
    unanswerable: tuple[str, ...] = ()
    for path in sorted(directory.glob("*.json")):
        body = orjson.loads(path.read_bytes())
        if path.name == UNANSWERABLE:
            unanswerable = tuple(str(q) for q in body)
            continue
        try:
            entries += [
                SetEntry(
                    department=path.stem, entry_id=str(e["entry_id"]),
                    policy_title=str(e["policy_title"]), question=str(e["question"]),
                    answer=str(e["answer"]), keywords=tuple(e.get("keywords") or ()),
                    benefit_office=e.get("benefit_office"),
                    citizen_questions=tuple(e.get("citizen_questions") or ()),
                )
                for e in body
            ]
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{path}: malformed entry ({exc})") from exc
    return QASet(tuple(entries), unanswerable)
