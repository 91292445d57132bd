"""The holder's own card in the card slot (插入社保卡): shared by the businesses that need the chip of a
card the citizen already holds (PIN services 密码服务, activation 领卡启用).

The card printer's front slot is the way in: the citizen pushes the card in, the printer draws it
to its contact chip station (the same encoder that personalizes blank cards, so no second reader is
needed), the chip is read and must belong to the person on the ID card, and at the end the card goes
back out of the same slot. The step's compensation gives the card back whatever happened later (a
refusal, a cancel, a crash): a citizen's card is never left inside. A card not taken in time is
drawn back in (the printer's retract goes to the reject bin, where staff find it) and recorded.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from kiosk.devices import DeviceError
from kiosk.devices.cardprinter import CardPosition, EjectOutcome
from kiosk.devices.smartcard import CardBasicInfo, SmartCardError
from kiosk.flows import common
from kiosk.flows.common import ask, identity, now_local, visit_config
from kiosk.prompts import Answer, Prompt
from kiosk.visit import VisitContext, VisitEnded

log = logging.getLogger(__name__)

# Kiosk-side notice reasons of the businesses that take the holder's card.
HOLDER_CARD_NOTICES: dict[str, tuple[str, tuple[str, ...], str, str]] = {
    "holder_card_not_yours": ("holder_card.notice.not_yours", ("holder_card.notice.missing_own_card",),
                              "notice.kiosk.todo_counter", "counter"),
    "holder_card_unreadable": ("holder_card.notice.unreadable", (), "holder_card.notice.todo_damaged", "counter"),
    "holder_card_retained": ("holder_card.notice.retained", (), "holder_card.notice.todo_collect", "counter"),
}
common.KIOSK_NOTICES.update(HOLDER_CARD_NOTICES)

POLL_S = 0.3
RETRIES = 3  # consecutive retryable faults tolerated while waiting for the card


class FrontSlotAnswers:
    """Answers the "insert your card" prompt when the printer has drawn a card in from the front
    slot (``inserted``), or a device fault (``device_error``). Polls off the UI thread; ``stop``
    waits for a poll in progress, so no card is drawn in after the prompt is over."""

    def __init__(self, printer: Any, poll_s: float = POLL_S) -> None:
        self.printer = printer
        self.poll_s = poll_s
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, deliver: Callable[[Answer], None]) -> None:
        self._thread = threading.Thread(target=self._poll, args=(deliver,), name="front-slot", daemon=True)
        self._thread.start()

    def _poll(self, deliver: Callable[[Answer], None]) -> None:
        failures = 0
        while not self._stopped.is_set():
            try:
                fed = self.printer.accept_card_from_front()
            except DeviceError as exc:
                failures += 1
                # A lost reply (the link reconnects on the next command) is tried again; a fault
                # that persists, or one that no retry can cure, ends the wait.
                if not exc.retryable or failures >= RETRIES:
                    deliver(Answer("device_error", {"code": exc.code}))
                    return
                log.info("front slot poll failed code=%s (retrying)", exc.code)
                self._stopped.wait(self.poll_s)
                continue
            failures = 0
            if fed is not None:
                deliver(Answer("inserted", {"resumed": fed.resumed}))
                return
            self._stopped.wait(self.poll_s)

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)


def holder_card(ctx: VisitContext) -> CardBasicInfo:
    card = ctx.values.get("holder_card")
    if card is None:
        raise RuntimeError("no card of the holder read in this visit")
    return card


def insert_card(ctx: VisitContext) -> dict[str, Any]:
    """Step ``insert_card``: the holder pushes the card into the slot; the chip is read (iReadCardBas)
    and must carry the social security number of the ID card just read."""
    person = identity(ctx)
    cfg = visit_config(ctx)
    answer = ask(
        ctx, "insert_card",
        {"title_key": "holder_card.insert.title", "instruction_key": "holder_card.insert.instruction",
         "detail_key": "holder_card.insert.detail"},
        (), voice_key="holder_card.insert.instruction", timeout_s=cfg.visit.id_card_timeout_s,
        until=FrontSlotAnswers(ctx.services.cardprinter),
    )
    if answer.choice != "inserted":
        log.warning("visit %s front slot failed code=%s", ctx.visit_id, answer.values.get("code"))
        raise VisitEnded("notice_printed", "device_fault")
    ctx.checkpoint(card_inside=True)
    ctx.show(Prompt("progress", {"title_key": f"business.{ctx.business}", "headline_key": "holder_card.reading",
                                 "stages": [("holder_card.stage.read", "now")], "fraction": 0.2, "eta_s": 2}))
    try:
        info = ctx.services.smartcard.read_card_basic()
    except SmartCardError as exc:
        log.info("visit %s holder card unreadable code=%s", ctx.visit_id, exc.code)
        raise VisitEnded("notice_printed", "holder_card_unreadable") from exc
    if info.is_blank or info.ssn != person.id_number:
        raise VisitEnded("notice_printed", "holder_card_not_yours")
    ctx.values["holder_card"] = info
    return {"card_last4": info.card_number[-4:], "pin_tries_left": info.pin_tries_left}


def give_card_back(ctx: VisitContext, _facts: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The card goes back out of the slot (退卡) if it is inside; the step at the end of a visit and
    the compensation of ``insert_card`` (idempotent: it looks where the card is)."""
    printer = ctx.services.devices.get("cardprinter")
    if printer is None:
        return {"returned": False}
    try:
        where = printer.where_is_card()
    except DeviceError as exc:
        return {"returned": False, "printer_error": exc.code}
    if where not in (CardPosition.CHIP_STATION, CardPosition.PRINT_HEAD, CardPosition.OUTPUT_SLOT):
        return {"returned": where is CardPosition.NONE}
    timeout = visit_config(ctx).cardprinter.take_card_timeout_s
    ctx.show(Prompt("take_item", {"title_key": "holder_card.take_back.title", "body_key": "holder_card.take_back.body",
                                  "slot": "card", "seconds": timeout}, voice_key="holder_card.take_back.body"))
    try:
        result = printer.eject_to_citizen(timeout_s=timeout)
    except DeviceError as exc:
        log.error("visit %s holder card not given back code=%s", ctx.visit_id, exc.code)
        return {"returned": False, "printer_error": exc.code}
    if result.outcome is EjectOutcome.TAKEN:
        return {"returned": True}
    # Retracted: a citizen's card is kept safe inside, recorded, and staff hand it back.
    ctx.values["holder_card_retained"] = True
    from kiosk.backend.api import idempotency_key
    from kiosk.flows.instant import call_or_queue
    from offline.outbox import MessageKind

    info = ctx.values.get("holder_card")
    record = {"movement": "holder_card_retained", "visit": ctx.visit_id, "at": now_local().isoformat(),
              "card_number": info.card_number if info is not None else (result.card_number or "")}
    try:
        call_or_queue(ctx, "submitKioskRecord", {"kind": "ledger_movement", "record": record},
                      idempotency_key(ctx.visit_id, "holder_card_retained"), MessageKind.LEDGER_MOVEMENT)
    except DeviceError as exc:  # the record is for staff; the card is safe either way
        log.error("visit %s retained-card record not sent code=%s", ctx.visit_id, exc.code)
    return {"returned": False, "retained": True}


def return_card(ctx: VisitContext) -> dict[str, Any]:
    """Step ``return_card``: the business is done, the card goes back to the holder."""
    return give_card_back(ctx)


__all__ = ["FrontSlotAnswers", "give_card_back", "holder_card", "insert_card", "return_card"]
