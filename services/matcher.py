"""The matching service (问答库匹配, QA-4): every consultation received is searched in the Q&A
library, and the suggestions are written on its case as a `ConsultationMatched`, so that the
person at the hotline or the window sees them and the log keeps what was offered.

Shaped like the deadline service (`services.deadlines`; both are `services.deriving` services):

* the `qa_consultations` projection (`projections.qa_consultations`) keeps each consultation
  and whether it has been matched; the `qa_library` projection is the library searched
  (`services.qa`); the projection runner keeps both;
* a loop appends one `ConsultationMatched` per consultation with a deterministic event ID
  (`domain.qa_matching.matched_event_id`) under the case's optimistic lock. Before a pass the
  projections are brought up to the log head ``H``; a consultation is matched only if its case's
  last sequence ``L`` is at most ``H`` (the projection has seen every event of the case, so it
  knows whether the case holds a match already), and the append expects ``L``. Several
  instances therefore write each suggestion once: the second finds the case moved on and, on
  its next pass, the consultation matched. A replay or rebuild reads the event and never
  searches again.

It never holds up the intake: it runs beside it with a connection of its own (party `matcher`,
which may publish nothing but ConsultationMatched), and the search runs in a thread.

`python -m services.matcher` runs it (with its own projection runner) until SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import date
from typing import Any

from nats.aio.client import Client

from domain.calendar import SHANGHAI
from domain.qa_matching import matched_event
from events import streams
from events.catalogue import Suggestion
from events.codec import encode
from events.streams import Header
from projections.base import Row
from projections.qa_consultations import CONSULTATIONS, QAConsultations
from projections.qa_library import ENTRIES, QALibrary
from services import bootstrap, deriving
from services.adapters import logs
from services.adapters.config import Settings
from services.adapters.eventlog import Conflict
from services.adapters.readmodels import ReadStore
from services.deriving import DerivingService
from services.projector import head, wait_caught_up
from services.qa import QASearch

log = logs.get("jiedu.matcher")

SUGGESTIONS = 5
"""Entries suggested per consultation."""


class MatcherService(DerivingService):
    """Runs the matching loop (and, if asked, the projections it reads)."""

    task_name = "matcher"

    def __init__(
        self,
        nc: Client,
        store: ReadStore,
        *,
        search: QASearch | None = None,
        poll_s: float = 0.2,
        catch_up_timeout_s: float = 10.0,
        concurrency: int = 8,
        run_projection: bool = True,
    ) -> None:
        """``run_projection=False``: another runner in the process (or the projector
        process) keeps `qa_consultations` and `qa_library` in the same store."""
        self.consultations = QAConsultations()
        self.search = search or QASearch(store)
        super().__init__(
            nc, store, [self.consultations, self.search.projection], run_projection=run_projection
        )
        self.poll_s = poll_s
        self.catch_up_timeout_s = catch_up_timeout_s
        self.concurrency = concurrency

    async def settle(self, passes: int = 50) -> int:
        """Run passes until every consultation is matched (for `jiedu demo` and tests);
        returns how many events this call appended."""
        total = 0
        for _ in range(passes):
            appended = await self.scan_once()
            total += len(appended)
            if not appended and not await asyncio.to_thread(self._unmatched):
                return total
        raise TimeoutError(f"consultations still unmatched after {passes} passes")

    async def _run(self) -> None:
        delay = self.poll_s
        while not self._stop.is_set():
            try:
                await self.scan_once()
                delay = self.poll_s
            except Exception:
                log.exception("matching pass failed, trying again", delay_s=delay)
                delay = min(delay * 2, 30.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)

    async def scan_once(self) -> list[str]:
        """Match every consultation not yet matched whose case the projections have seen
        whole; returns the IDs this pass appended."""
        target = await head(self.js)
        try:
            await wait_caught_up(
                self.js, self.store, [self.consultations, self.search.projection],
                timeout=self.catch_up_timeout_s, at_least=target,
            )
        except TimeoutError as e:
            log.warning("projections behind the log; matching postponed", error=str(e))
            return []
        waiting = await asyncio.to_thread(self._unmatched)
        limit = asyncio.Semaphore(self.concurrency)
        appended: list[str] = []

        async def one(row: Row) -> None:
            async with limit:
                try:
                    event_id = await self._match(row, target)
                except Exception:  # one consultation's trouble does not hold up the others
                    log.exception("consultation not matched", case_id=row["case_id"],
                                  consultation_id=row["consultation_id"])
                    return
                if event_id is not None:
                    appended.append(event_id)

        await asyncio.gather(*(one(r) for r in waiting))
        self.appended.extend(appended)
        return appended

    async def _match(self, row: Row, seen: int) -> str | None:
        """Search for one consultation and append its suggestions, expecting the case's last
        sequence; None if the case moved on beyond what the projection has seen."""
        case_id = row["case_id"]
        last = await self.log.last_sequence(case_id)
        if last > seen:
            return None  # the projection may not know everything on the case: next pass
        day: date = row["received_at"].astimezone(SHANGHAI).date()
        found = await asyncio.to_thread(
            self.search.search, row["question"], limit=SUGGESTIONS, as_of=day
        )
        event = matched_event(
            case_id=case_id, department=row["department"],
            consultation_id=row["consultation_id"], received_event_id=row["received_event_id"],
            received_at=row["received_at"], searched_on=day,
            suggestions=[
                Suggestion(entry_id=h.entry_id, case_id=h.case_id, score=round(h.score, 6),
                           confidence=round(min(max(h.confidence, 0.0), 1.0), 4))
                for h in found.hits
            ],
            answerable=found.answerable, threshold=self.search.threshold,
        )
        subject = streams.event_subject(event.department, case_id, event.type)
        try:
            await self.log.append(
                case_id, [(subject, encode(event), {Header.EVENT_ID: event.event_id})],
                expected_last=last,
            )
        except Conflict:
            return None  # another instance, or a new fact: decided again next pass
        log.info("consultation matched", case_id=case_id, event_id=event.event_id,
                 answerable=event.data.answerable, suggestions=len(event.data.suggestions))
        return event.event_id

    def _unmatched(self) -> list[Row]:
        return self.store.select(self.consultations, CONSULTATIONS, {"matched": False})


def suggestions_of(store: ReadStore, consultation_id: str, case_id: str | None = None
                   ) -> list[dict[str, Any]]:
    """The consultations with this ID (on `case_id` only, if given) with their suggestions,
    each suggestion with the entry's question and answer as the library now holds them
    (synchronous: call it in a thread). `jiedu qa suggestions`."""
    library = QALibrary()
    found = store.select(QAConsultations(), CONSULTATIONS,
                         {"consultation_id": consultation_id, "case_id": case_id})
    out = []
    for row in found:
        shown = []
        for s in row["suggestions"] or []:
            entries = store.select(library, ENTRIES,
                                   {"case_id": s["case_id"], "entry_id": s["entry_id"]})
            entry = entries[0] if entries else {}
            shown.append({**s, "question": entry.get("question"),
                          "answer": entry.get("answer"), "status": entry.get("status")})
        out.append({**row, "suggestions": shown if row["matched"] else None})
    return out


async def serve(settings: Settings) -> None:
    """Run the matching service (with its own projection runner) until SIGTERM or Ctrl-C."""
    await deriving.serve(settings, "jiedu-matcher", MatcherService)


if __name__ == "__main__":
    settings = Settings.from_env()
    logs.configure(settings.log_level, fmt=settings.log_format)  # no file: several may run
    bootstrap.tune_gc()
    asyncio.run(serve(settings))
