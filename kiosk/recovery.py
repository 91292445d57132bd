"""Start-up recovery (断电恢复): every visit the journal shows unfinished is compensated.

Runs before the kiosk serves anyone. For each unfinished visit, the compensations of its started
steps run in reverse order (:func:`kiosk.visit.compensate_visit`): a card left in the printer is
rejected and recorded, a submitted application stays with the back end (looked up later by its
idempotency key, never re-submitted). The visit is then closed as ``recovered`` so the next
citizen is not blocked.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kiosk.journal import Journal
from kiosk.prompts import Answer, Prompt
from kiosk.visit import Flow, VisitContext, compensate_visit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecoveredVisit:
    visit_id: str
    business: str
    compensated_steps: tuple[str, ...]
    error: str | None = None


class _NoCitizen:
    """Recovery runs with nobody at the screen: any question is answered 'cancel'."""

    def ask(self, prompt: Prompt, until: object = None) -> Answer:
        return Answer("cancel")

    def show(self, prompt: Prompt) -> None:
        return None


def recover(
    journal: Journal, flows: Mapping[str, Flow], services: Any, config: Any = None
) -> list[RecoveredVisit]:
    reports: list[RecoveredVisit] = []
    for visit in journal.unfinished_visits():
        flow = flows.get(visit.business)
        if flow is None:
            # Software changed under an unfinished visit: close it, flagged for staff, not lost.
            journal.end_visit(visit.visit_id, "interrupted", "unknown_business", recovered=True)
            reports.append(RecoveredVisit(visit.visit_id, visit.business, (), "unknown_business"))
            log.error("recovery: visit %s has unknown business %s", visit.visit_id, visit.business)
            continue
        ctx = VisitContext(visit.visit_id, visit.business, services, _NoCitizen(), journal, config=config)
        try:
            steps = compensate_visit(journal, flow, ctx)
        except Exception as exc:
            # Leave it active: the next start tries again; the engineer menu shows it.
            code = getattr(exc, "code", type(exc).__name__)
            log.error("recovery: visit %s compensation failed code=%s", visit.visit_id, code, exc_info=True)
            reports.append(RecoveredVisit(visit.visit_id, visit.business, (), str(code)))
            continue
        journal.end_visit(visit.visit_id, "interrupted", "recovered_after_restart", recovered=True)
        log.info("recovery: visit %s compensated steps=%s", visit.visit_id, ",".join(steps))
        reports.append(RecoveredVisit(visit.visit_id, visit.business, tuple(steps)))
    return reports
