"""The visit engine (业务流程引擎).

A business flow is an explicit sequence of named :class:`Step` objects, run by
:class:`VisitRunner` on a worker thread. A step asks the UI through ``ctx.ask`` (never a
widget) and talks to devices and the back end through ``ctx.services``. The runner writes each
step's start, result, failure and compensation to the :class:`~kiosk.journal.Journal` *before*
moving on. When a step fails, or at the next start after a crash (:func:`compensate_visit`
called by :mod:`kiosk.recovery`), the compensations of the steps that started run in reverse
order. Compensations must be idempotent and look at the world (where is the card?) rather than
trust memory: a crash can fall between a device's action and its journal entry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kiosk.devices import DeviceError
from kiosk.journal import Journal, StepEvent, step_results, step_states
from kiosk.prompts import Answer, AnswerSource, Prompt, Prompter

log = logging.getLogger(__name__)


class VisitEnded(Exception):
    """Raised by a step to end the visit early with a business outcome (a refusal, a notice)."""

    def __init__(self, outcome: str, reason: str | None = None) -> None:
        self.outcome = outcome
        self.reason = reason
        super().__init__(f"{outcome}: {reason}" if reason else outcome)


class VisitCancelled(VisitEnded):
    def __init__(self, reason: str = "cancelled_by_citizen") -> None:
        super().__init__("cancelled", reason)


class VisitTimedOut(VisitEnded):
    def __init__(self, reason: str = "citizen_timeout") -> None:
        super().__init__("cancelled", reason)


class VisitContext:
    """What a step sees: the visit id, the services, the prompter, values in memory for this run,
    and the results saved by steps already done (from the journal, so a resume sees them)."""

    def __init__(
        self,
        visit_id: str,
        business: str,
        services: Any,
        prompter: Prompter,
        journal: Journal,
        saved: Mapping[str, Mapping[str, Any]] | None = None,
        config: Any = None,
        translator: Any = None,
    ) -> None:
        self.config = config  # the KioskConfig (None in unit tests of the engine)
        self.translator = translator
        self.visit_id = visit_id
        self.business = business
        self.services = services
        self.prompter = prompter
        self.journal = journal
        self.saved: dict[str, Mapping[str, Any]] = dict(saved or {})
        self.values: dict[str, Any] = {}
        self.current_step: str | None = None

    def ask(self, prompt: Prompt, until: AnswerSource | None = None) -> Answer:
        """Asks the UI (or ``until``, e.g. the ID reader, answers first); a cancel or a timeout
        ends the visit (compensations run)."""
        answer = self.prompter.ask(prompt, until) if until is not None else self.prompter.ask(prompt)
        if answer.cancelled:
            raise VisitCancelled()
        if answer.timed_out:
            raise VisitTimedOut()
        return answer

    def show(self, prompt: Prompt) -> None:
        self.prompter.show(prompt)

    def checkpoint(self, **data: Any) -> None:
        """Journals facts learned inside a running step (e.g. the idempotency key before an HTTP
        call, the card number fed) so a compensation after a crash can use them."""
        if self.current_step is None:
            raise RuntimeError("checkpoint outside a step")
        self.journal.record(self.visit_id, self.current_step, StepEvent.STARTED, data)

    def step_data(self, step: str) -> dict[str, Any]:
        """Everything journaled for ``step`` (start, checkpoints, result), merged in order."""
        merged: dict[str, Any] = {}
        for entry in self.journal.entries(self.visit_id):
            if entry.step == step and entry.event in (StepEvent.STARTED, StepEvent.DONE, StepEvent.FAILED):
                merged.update(entry.data)
        return merged


StepRun = Callable[[VisitContext], Mapping[str, Any] | None]
StepCompensation = Callable[[VisitContext, Mapping[str, Any]], Mapping[str, Any] | None]


@dataclass(frozen=True)
class Step:
    """One named step. ``run`` returns the facts to journal (JSON-able, non-personal) or None.
    ``compensate`` secures what the step may have left half-done (reject a card left in the
    printer, record it) and returns facts to journal; it must be idempotent."""

    name: str
    run: StepRun
    compensate: StepCompensation | None = None


@dataclass(frozen=True)
class Flow:
    """A business (业务): its key, catalog title key, steps, and the services it needs."""

    key: str
    title_key: str
    steps: tuple[Step, ...]
    requires: tuple[str, ...] = ()
    description_key: str = ""
    order: int = 100
    on_failure: Callable[[VisitContext, Exception], None] | None = None

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)


@dataclass(frozen=True)
class VisitOutcome:
    visit_id: str
    business: str
    outcome: str
    reason: str | None = None
    results: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


class VisitRunner:
    """Runs flows, journaling each step before moving on."""

    def __init__(
        self, journal: Journal, prompter: Prompter, services: Any, *, config: Any = None, translator: Any = None
    ) -> None:
        self.journal = journal
        self.prompter = prompter
        self.services = services
        self.config = config
        self.translator = translator

    def run(self, flow: Flow, visit_id: str | None = None, values: Mapping[str, Any] | None = None) -> VisitOutcome:
        """Runs ``flow`` to its end. With the id of an unfinished visit, resumes it: steps already
        done are skipped and their saved results are available in ``ctx.saved``."""
        if visit_id is None:
            visit_id = self.journal.start_visit(flow.key)
            saved: dict[str, Mapping[str, Any]] = {}
        else:
            saved = dict(step_results(self.journal.entries(visit_id)))
        ctx = VisitContext(
            visit_id, flow.key, self.services, self.prompter, self.journal, saved, self.config, self.translator
        )
        ctx.values.update(values or {})
        log.info("visit %s started business=%s resumed_steps=%d", visit_id, flow.key, len(saved))
        try:
            for step in flow.steps:
                if step.name in ctx.saved:
                    continue
                ctx.current_step = step.name
                self.journal.record(visit_id, step.name, StepEvent.STARTED)
                result = dict(step.run(ctx) or {})
                self.journal.record(visit_id, step.name, StepEvent.DONE, result)
                ctx.saved[step.name] = result
            ctx.current_step = None
            outcome = str(ctx.values.get("outcome", "completed"))
            self.journal.end_visit(visit_id, outcome)
            log.info("visit %s ended outcome=%s", visit_id, outcome)
            return VisitOutcome(visit_id, flow.key, outcome, None, dict(ctx.saved))
        except VisitEnded as ended:
            self._fail_step(ctx, ended.reason or ended.outcome)
            compensate_visit(self.journal, flow, ctx)
            self._present_failure(flow, ctx, ended)
            self.journal.end_visit(visit_id, ended.outcome, ended.reason)
            log.info("visit %s ended outcome=%s reason=%s", visit_id, ended.outcome, ended.reason)
            return VisitOutcome(visit_id, flow.key, ended.outcome, ended.reason, dict(ctx.saved))
        except Exception as exc:
            code = exc.code if isinstance(exc, DeviceError) else getattr(exc, "code", type(exc).__name__)
            log.error("visit %s step %s failed code=%s", visit_id, ctx.current_step, code, exc_info=True)
            self._fail_step(ctx, str(code))
            compensate_visit(self.journal, flow, ctx)
            self._present_failure(flow, ctx, exc)
            self.journal.end_visit(visit_id, "failed", str(code))
            return VisitOutcome(visit_id, flow.key, "failed", str(code), dict(ctx.saved))

    def _fail_step(self, ctx: VisitContext, code: str) -> None:
        if ctx.current_step is not None:
            self.journal.record(ctx.visit_id, ctx.current_step, StepEvent.FAILED, {"code": code})

    @staticmethod
    def _present_failure(flow: Flow, ctx: VisitContext, exc: Exception) -> None:
        if flow.on_failure is None:
            return
        try:
            flow.on_failure(ctx, exc)
        except Exception:  # the notice itself failed (printer out): the visit still ends, journaled
            log.exception("visit %s failure notice could not be presented", ctx.visit_id)


def compensate_visit(journal: Journal, flow: Flow, ctx: VisitContext) -> list[str]:
    """Runs, in reverse order, the compensation of every step of the visit that started and is
    not compensated yet. Each compensation is journaled (compensating → compensated), so a crash
    during recovery re-runs only what did not finish. Returns the steps compensated."""
    entries = journal.entries(ctx.visit_id)
    states = step_states(entries)
    done: list[str] = []
    for step in reversed(flow.steps):
        if step.name not in states or step.compensate is None:
            continue
        if states[step.name] is StepEvent.COMPENSATED:
            continue
        journal.record(ctx.visit_id, step.name, StepEvent.COMPENSATING)
        facts = step.compensate(ctx, ctx.step_data(step.name))
        journal.record(ctx.visit_id, step.name, StepEvent.COMPENSATED, dict(facts or {}))
        done.append(step.name)
    return done
