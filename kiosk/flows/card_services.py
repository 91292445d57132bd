"""What the card services after the first issue share (挂失、解挂、进度查询、密码服务、领卡启用): the
holder's record looked up, one mutating back-end call sent once, a result shown, the kiosk-side
one-time notice reasons of these businesses.

Their notice reasons are merged into :data:`kiosk.flows.common.KIOSK_NOTICES` at import, so
``common.on_failure`` prints them like any other refusal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from kiosk.backend.api import (
    BackendAmbiguous,
    BackendRefused,
    BackendTransient,
    NoticeCode,
    PersonRecord,
    idempotency_key,
)
from kiosk.flows import common
from kiosk.flows.common import SHANGHAI, ask, identity
from kiosk.prompts import Prompt
from kiosk.visit import VisitContext, VisitEnded

log = logging.getLogger(__name__)

T = TypeVar("T")

# Reason → (reason key, missing keys, what to do, where: counter | hotline | kiosk | police).
CARD_SERVICE_NOTICES: dict[str, tuple[str, tuple[str, ...], str, str]] = {
    "card_already_active": ("card_services.notice.card_already_active", (), "card_services.notice.todo_nothing",
                            "kiosk"),
    "activation_wrong_card": ("card_services.notice.activation_wrong_card", ("card_services.notice.missing_new_card",),
                              "card_services.notice.todo_insert_new_card", "kiosk"),
    "pin_locked": ("card_services.notice.pin_locked", ("card_services.notice.missing_id_and_card",),
                   "card_services.notice.todo_pin_counter", "counter"),
    "pin_forgotten": ("card_services.notice.pin_forgotten", ("card_services.notice.missing_id_and_card",),
                      "card_services.notice.todo_pin_counter", "counter"),
    "pin_not_changed": ("card_services.notice.pin_not_changed", (), "card_services.notice.todo_pin_again", "kiosk"),
}
common.KIOSK_NOTICES.update(CARD_SERVICE_NOTICES)


def key(ctx: VisitContext, step: str) -> str:
    return idempotency_key(ctx.visit_id, step)


def mask_card_number(number: str | None) -> str:
    """A card number on the screen: the first two and last three characters (A1*****23X)."""
    if not number:
        return ""
    return f"{number[:2]}{'*' * max(len(number) - 5, 0)}{number[-3:]}"


def local_time_text(moment: datetime) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def checking(ctx: VisitContext, headline_key: str = "visit.checking") -> None:
    ctx.show(Prompt("progress", {"title_key": f"business.{ctx.business}", "headline_key": headline_key,
                                 "stages": [("visit.stage.eligibility", "now")], "fraction": 0.1, "eta_s": 2}))


def lookup_person(ctx: VisitContext, offline_reason: str) -> PersonRecord:
    """人员信息查询 for the ID card just read; unreachable → the notice ``offline_reason``; a record
    that disagrees with the ID card → the data-correction notice."""
    card = identity(ctx)
    checking(ctx)
    try:
        person: PersonRecord = ctx.services.backend.query_person(card.id_number)
    except BackendRefused as refused:
        raise VisitEnded("notice_printed", refused.notice.value) from refused
    except (BackendTransient, BackendAmbiguous) as down:
        log.info("visit %s back end unreachable code=%s", ctx.visit_id, down.code)
        raise VisitEnded("notice_printed", offline_reason) from down
    if person.name != card.name or person.birth_date != card.birth_date:
        raise VisitEnded("notice_printed", NoticeCode.DATA_MISMATCH.value)
    ctx.values["person"] = person
    return person


def person(ctx: VisitContext) -> PersonRecord:
    found = ctx.values.get("person")
    if found is None:
        raise RuntimeError("no person looked up in this visit")
    return found


def send_once(ctx: VisitContext, operation: str, step_key: str, call: Callable[[str], T], offline_reason: str) -> T:
    """One mutating call with its idempotency key journaled first; a lost reply is looked up by the
    key (never sent twice in effect); a refusal ends on its notice, the network down on
    ``offline_reason``."""
    backend = ctx.services.backend
    request_key = key(ctx, step_key)
    ctx.checkpoint(idempotency_key=request_key)
    try:
        try:
            return call(request_key)
        except BackendAmbiguous:
            found = backend.recover(operation, request_key)
            return found if found is not None else call(request_key)
    except BackendRefused as refused:
        raise VisitEnded("notice_printed", refused.notice.value) from refused
    except (BackendTransient, BackendAmbiguous) as down:
        raise VisitEnded("notice_printed", offline_reason) from down


def show_result(ctx: VisitContext, body_key: str, values: Mapping[str, Any] | None = None, *,
                voice_key: str | None = None) -> None:
    """The result on the screen, in words, before the voucher is printed (the citizen touches 取凭条).
    ``voice_key``: a text without placeholders (the spoken prompt is made from the catalog text)."""
    ask(ctx, "message", {"title_key": f"business.{ctx.business}", "body_key": body_key, "values": dict(values or {}),
                         "choice_keys": {"voucher": "card_services.take_voucher"}},
        ("voucher",), voice_key=voice_key)


def verify_face(ctx: VisitContext) -> dict[str, Any]:
    """Step ``face``: the shared face verification; the camera stops as soon as it has matched
    (these businesses take no card photo after it)."""
    facts = common.verify_face(ctx)
    common.stop_face(ctx)
    return facts


__all__ = ["CARD_SERVICE_NOTICES", "checking", "key", "local_time_text", "lookup_person", "mask_card_number",
           "person", "send_once", "show_result", "verify_face"]
