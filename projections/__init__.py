"""Pure projections: events in, read-model rows out, no I/O (see `projections.base`).

`ALL` is the registry: every projection the runner (`services.projector`) keeps up to date, by
its name. To add one, write a `Projection` subclass in its own module and add an instance here.
"""

from __future__ import annotations

from projections.audit import AuditTrail
from projections.base import MemoryRows, Projection, Rows, Table, Type
from projections.case_summary import CaseSummary
from projections.deadlines import Deadlines
from projections.findings import Findings
from projections.qa_consultations import QAConsultations
from projections.qa_library import QALibrary
from projections.statistics import Statistics

ALL: tuple[Projection, ...] = (
    CaseSummary(),
    Findings(),
    Deadlines(),
    AuditTrail(),
    Statistics(),
    QALibrary(),
    QAConsultations(),
)


def by_name(name: str) -> Projection:
    """The registered projection called `name`; KeyError names the known ones."""
    for p in ALL:
        if p.name == name:
            return p
    raise KeyError(f"no projection {name!r}; known: {', '.join(p.name for p in ALL)}")


__all__ = [
    "ALL",
    "AuditTrail",
    "CaseSummary",
    "Deadlines",
    "Findings",
    "MemoryRows",
    "Projection",
    "QAConsultations",
    "QALibrary",
    "Rows",
    "Statistics",
    "Table",
    "Type",
    "by_name",
]
