"""领卡启用 Activation of a centrally produced card (DOMAIN.md, business 6), picked up at the branch.

ID card → face consent → face → the holder's record (a card produced centrally and not activated) →
the new card pushed into the slot (its chip must carry the ID card's number and the card number the
card-management system issued) → consent (only the two applications are opened: nothing else is
offered or pre-selected) → social-security PIN (from the default 123456, on the chip) → the
social-security application enabled → financial PIN (a PIN block to the bank) → the bank account
activated → the card back → voucher (with the electronic card hint) → ID card back.

The bank may answer the activation later (``pending``: hours): the voucher says so, and the
confirmation of the bank's answer (``confirmBankActivation``) waits in the outbox, which sends it
until the bank has answered. What cannot be sent now (the network lost mid-visit) is queued too.
"""

from __future__ import annotations

import logging
from typing import Any

from kiosk.backend.api import BackendAmbiguous, BackendRefused, BackendTransient, CardState, NoticeCode
from kiosk.backend.outbox_sender import outbox_payload
from kiosk.flows import card_services, common, holder_card
from kiosk.flows.card_services import key, show_result
from kiosk.flows.common import ask, identity, record_psam_use, visit_config
from kiosk.flows.instant import call_or_queue
from kiosk.flows.pin_change import NewPinObserver
from kiosk.pins import FinancialPinService, PinPolicy, PinResult, SocialSecurityPinService
from kiosk.visit import Flow, Step, VisitContext, VisitEnded
from offline.outbox import MessageKind, PersonalData

log = logging.getLogger(__name__)

REQUIRES = ("idreader", "photo_decoder", "face", "backend", "cardprinter", "smartcard", "pinpad", "receipt",
            "outbox")
OFFLINE = "service_unavailable_offline"


def lookup(ctx: VisitContext) -> dict[str, Any]:
    """Step ``lookup``: a card made for this holder and not activated yet (未启用)."""
    found = card_services.lookup_person(ctx, OFFLINE)
    record = found.card
    if record is None:
        raise VisitEnded("notice_printed", NoticeCode.NO_CARD.value)
    if record.state is CardState.NORMAL:
        raise VisitEnded("notice_printed", "card_already_active")
    if record.state is CardState.IN_PRODUCTION:
        raise VisitEnded("notice_printed", NoticeCode.APPLICATION_IN_PROGRESS.value)
    if record.state is CardState.SEALED:
        raise VisitEnded("notice_printed", NoticeCode.CARD_SEALED.value)
    if record.state is not CardState.NOT_ACTIVATED:
        raise VisitEnded("notice_printed", NoticeCode.CARD_STATE_INVALID.value)
    return {"card_last4": record.card_number[-4:]}


def check_card(ctx: VisitContext) -> dict[str, Any]:
    """Step ``check_card``: the card in the slot is the one issued to this holder (not an older card)."""
    info = holder_card.holder_card(ctx)
    record = card_services.person(ctx).card
    assert record is not None
    if info.card_number != record.card_number:
        raise VisitEnded("notice_printed", "activation_wrong_card")
    return {"matches": True, "pin_tries_left": info.pin_tries_left}


def consent(ctx: VisitContext) -> dict[str, Any]:
    """Step ``consent``: activating the two applications of this card, and nothing else (no upselling:
    SMS alerts, online banking, wealth products are the bank's business, not offered here)."""
    items = [
        {"key": "activate", "text_key": "activation.consent.activate", "required": True,
         "detail_key": "activation.consent.activate_detail"},
        {"key": "data_use", "text_key": "visit.consent.data_use", "required": True,
         "detail_key": "visit.consent.data_use_detail"},
    ]
    values = {"card_number": card_services.mask_card_number(holder_card.holder_card(ctx).card_number)}
    answer = ask(ctx, "consent", {"title_key": "activation.consent.title", "intro_key": "activation.consent.intro",
                                  "items": items, "values": values, "fee_key": "activation.consent.no_fee"},
                 ("agree",), voice_key="activation.consent.voice")
    return {"consents": sorted(answer.values.get("checked", []))}


def set_ss_pin(ctx: VisitContext) -> dict[str, Any]:
    """Step ``ss_pin``: the social-security PIN chosen by the holder, twice, written to the chip over
    the default one (the default counts as "not enabled")."""
    cfg = visit_config(ctx)
    service = SocialSecurityPinService(
        ctx.services.pinpad, ctx.services.smartcard, policy=PinPolicy(length=cfg.pinpad.pin_length),
        timeout_s=cfg.pinpad.entry_timeout_s, max_attempts=cfg.pinpad.max_attempts,
        observer=NewPinObserver(ctx.prompter, cfg.pinpad.pin_length),
    )
    outcome = service.set_pin(identity(ctx).birth_date)
    ctx.values["ss_pin"] = outcome.result.value
    if outcome.result is PinResult.SET:
        record_psam_use(ctx, "pin_set")
    return {"result": outcome.result.value, "attempts": outcome.attempts}


def activate_social_security(ctx: VisitContext) -> dict[str, Any]:
    """Step ``activate_ss``: 社保应用启用 (queued in the outbox if the network went away)."""
    info = holder_card.holder_card(ctx)
    reply = call_or_queue(ctx, "activateSocialSecurity", {"card_number": info.card_number,
                                                          "id_number": identity(ctx).id_number},
                          key(ctx, "activate_ss"), MessageKind.ACTIVATION, (PersonalData.ID_TEXT,))
    ctx.values["ss_state"] = "queued" if reply is None else str(reply.get("card_state"))
    return {"social_security": ctx.values["ss_state"]}


def set_fin_pin(ctx: VisitContext) -> dict[str, Any]:
    """Step ``fin_pin``: the financial PIN as PIN blocks bound to the account on the chip (tag 5A)."""
    cfg = visit_config(ctx)
    info = holder_card.holder_card(ctx)
    if not info.pan:
        return {"result": "no_account_on_chip"}
    from kiosk.devices.pinpad import KeyAlgorithm

    service = FinancialPinService(
        ctx.services.pinpad, ctx.services.backend, key_slot=(cfg.pinpad.pin_key_master_index, cfg.pinpad.pin_key_index),
        algorithm=KeyAlgorithm(cfg.pinpad.pin_algorithm), bank_key_index=cfg.pinpad.bank_key_index,
        length=cfg.pinpad.pin_length, timeout_s=cfg.pinpad.entry_timeout_s, max_attempts=cfg.pinpad.max_attempts,
        observer=NewPinObserver(ctx.prompter, cfg.pinpad.pin_length),
    )
    try:
        outcome = service.set_pin(key(ctx, "fin_pin"), info.card_number, info.pan)
    except BackendRefused as refused:
        raise VisitEnded("notice_printed", refused.notice.value) from refused
    except (BackendTransient, BackendAmbiguous) as down:
        # The PIN is the holder's to set later at the bank; the card is still usable for social security.
        log.info("visit %s financial PIN not set code=%s", ctx.visit_id, down.code)
        ctx.values["fin_pin"] = "deferred_offline"
        return {"result": "deferred_offline"}
    ctx.values["fin_pin"] = outcome.result.value
    return {"result": outcome.result.value, "attempts": outcome.attempts}


def activate_bank(ctx: VisitContext) -> dict[str, Any]:
    """Step ``activate_bank``: 金融账户激活 with the PIN set. The bank may answer later (``pending``):
    the confirmation of its answer goes to the outbox, sent until the bank has answered."""
    if ctx.values.get("fin_pin") != PinResult.SET.value:
        ctx.values["bank_state"] = "not_set"
        return {"bank": "not_set"}
    info = holder_card.holder_card(ctx)
    reply = call_or_queue(ctx, "activateBankAccount", {"card_number": info.card_number}, key(ctx, "activate_bank"),
                          MessageKind.ACTIVATION)
    state = "queued" if reply is None else str(reply.get("state"))
    if state == "pending":
        outbox = ctx.services.outbox
        outbox.enqueue(key(ctx, "confirm_bank"), MessageKind.ACTIVATION,
                       outbox_payload("confirmBankActivation", {"card_number": info.card_number}),
                       visit_id=ctx.visit_id, personal_data=())
        log.info("visit %s bank activation pending: confirmation queued", ctx.visit_id)
    ctx.values["bank_state"] = state
    return {"bank": state}


def voucher(ctx: VisitContext) -> dict[str, Any]:
    """Step ``voucher``: what is active now, what is still pending, with the electronic card hint."""
    info = holder_card.holder_card(ctx)
    bank = ctx.values.get("bank_state")
    ss_active = ctx.values.get("ss_state") == CardState.NORMAL.value
    notes = []
    if ctx.values.get("ss_pin") != PinResult.SET.value:
        notes.append("visit.voucher.ss_pin_not_set")
    if bank in ("pending", "queued"):
        notes.append("activation.voucher.bank_pending")
    elif bank == "not_set":
        notes.append("visit.voucher.fin_pin_not_set")
    if ctx.values.get("ss_state") == "queued":
        notes.append("visit.voucher.reports_queued")
    if ctx.values.get("holder_card_retained"):
        notes.append("holder_card.voucher.retained")
    shown = {"active": "active", "pending": "pending", "queued": "pending"}.get(str(bank), "ss_only")
    result = f"activation.voucher.result_{shown}"
    show_result(ctx, f"activation.result_{shown}", voice_key="activation.result_voice")
    printed = common.print_voucher(ctx, result, card_number=info.card_number, bank_card_number=info.pan or None,
                                   notes=notes, e_card=ss_active)
    ctx.values["outcome"] = "card_activated"
    return {"printed": printed, "notes": notes, "bank": bank}


FLOW = Flow(
    key="activation",
    title_key="business.activation",
    description_key="business.activation.description",
    steps=(
        Step("id_card", common.read_id_card),
        Step("face_consent", common.face_consent),
        Step("face", card_services.verify_face, common.stop_face),
        Step("lookup", lookup),
        Step("insert_card", holder_card.insert_card, holder_card.give_card_back),
        Step("check_card", check_card),
        Step("consent", consent),
        Step("ss_pin", set_ss_pin),
        Step("activate_ss", activate_social_security),
        Step("fin_pin", set_fin_pin),
        Step("activate_bank", activate_bank),
        Step("return_card", holder_card.return_card),
        Step("voucher", voucher),
        Step("return_id", common.return_id_card),
    ),
    requires=REQUIRES,
    order=80,
    on_failure=common.on_failure,
)
