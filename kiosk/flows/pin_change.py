"""密码服务 PIN services (DOMAIN.md, business 5), with the holder's card in the encoder.

ID card → the card pushed into the slot (its chip must carry the ID card's number) → which service:

- **change the social-security PIN** (修改社保密码): the tries left are shown; the current PIN on the
  PIN pad is checked by the chip (VERIFY, a wrong one counts down and says how many tries are left),
  then the new PIN twice under the PIN policy, written with CHANGE PIN (old ‖ new);
- **forgotten or locked** (忘记/锁定): the staffed path (a one-time notice to the counter), unless
  the region allows a reset at the kiosk (``[region] kiosk_pin_reset_allowed``): then face consent,
  face verification against the ID card, and the new PIN written by PIN reload through the PSAM or
  the HSM (重置, the old PIN unknown);
- **change the financial PIN** (修改金融密码) through the bank: PIN blocks only, the old one and the
  new one twice; the bank checks the old PIN.

Then the card goes back out of the slot, the voucher (the electronic card hint: the card is in use),
the ID card back. PINs exist in clear only inside the chip services' buffers (social security, wiped
after each APDU) or never (financial: PIN blocks).
"""

from __future__ import annotations

import logging
from typing import Any

from kiosk.backend.api import BackendAmbiguous, BackendError, BackendRefused, BackendTransient, CardState
from kiosk.devices.pinpad import KeyAlgorithm, KeyEventKind, PinEntryCancelledError, PinEntryTimeoutError, wipe
from kiosk.devices.smartcard import PinBlockedError, PinWrongError
from kiosk.flows import card_services, common, holder_card
from kiosk.flows.card_services import show_result
from kiosk.flows.common import ask, identity, record_psam_use, visit_config
from kiosk.pin_entry import SCREEN as PIN_SCREEN, PromptingPinObserver
from kiosk.pins import (
    ChipPinMethod,
    EntryStep,
    FinancialPinService,
    PinOutcome,
    PinPolicy,
    PinPurpose,
    PinResult,
    SocialSecurityPinService,
)
from kiosk.prompts import Prompt
from kiosk.visit import Flow, Step, VisitCancelled, VisitContext, VisitEnded, VisitTimedOut

log = logging.getLogger(__name__)

REQUIRES = ("idreader", "photo_decoder", "face", "cardprinter", "smartcard", "pinpad", "receipt")

SS_CHANGE, SS_RESET, FIN_CHANGE = "ss_change", "ss_reset", "fin_change"
OUTCOMES = {SS_CHANGE: "pin_changed", SS_RESET: "pin_reset", FIN_CHANGE: "pin_changed"}


# --------------------------------------------------------------------------- entry on the PIN pad


class NewPinObserver(PromptingPinObserver):
    """The ``pin_entry`` screen for a *new* PIN (请输入新密码 / 请再输入一次新密码)."""

    STEP_KEYS = {
        (PinPurpose.SOCIAL_SECURITY, EntryStep.FIRST): "pin_service.enter_new_ss_pin",
        (PinPurpose.SOCIAL_SECURITY, EntryStep.CONFIRM): "pin_service.confirm_new_ss_pin",
        (PinPurpose.FINANCIAL, EntryStep.FIRST): "pin_service.enter_new_fin_pin",
        (PinPurpose.FINANCIAL, EntryStep.CONFIRM): "pin_service.confirm_new_fin_pin",
    }
    TITLE_KEYS = {PinPurpose.SOCIAL_SECURITY: "pin_entry.title_social_security",
                  PinPurpose.FINANCIAL: "pin_entry.title_financial"}

    def __init__(self, prompter: Any, length: int = 6, title_key: str | None = None) -> None:
        super().__init__(prompter, length)
        self.title_key = title_key  # the business's own title (修改/重置); default: 设置…密码

    def entry_started(self, purpose: PinPurpose, step: EntryStep, attempt: int, timeout_s: int) -> None:
        key = self.STEP_KEYS[(purpose, step)]
        self._data = {"title_key": self.title_key or self.TITLE_KEYS[purpose], "step_key": key, "attempt": attempt,
                      "length": self.length, "digits": 0, "refusal_key": self._refusal, "update": False}
        self._refusal = ""
        self.prompter.show(Prompt(PIN_SCREEN, dict(self._data), timeout_s=float(timeout_s), voice_key=key))


def _title(ctx: VisitContext) -> str:
    return f"pin_service.title_{service_of(ctx)}"


def _entry_prompt(ctx: VisitContext, step_key: str, refusal_key: str) -> Any:
    """Shows the ``pin_entry`` screen for the *current* PIN; returns the key listener (dots)."""
    cfg = visit_config(ctx)
    data: dict[str, Any] = {"title_key": _title(ctx), "step_key": step_key, "attempt": 1,
                            "length": cfg.pinpad.pin_length, "digits": 0, "refusal_key": refusal_key, "update": False}
    ctx.show(Prompt(PIN_SCREEN, dict(data), timeout_s=float(cfg.pinpad.entry_timeout_s), voice_key=step_key))

    def on_key(event: Any) -> None:
        if event.kind in (KeyEventKind.DIGIT, KeyEventKind.CLEAR):
            data.update(digits=event.digits_entered, update=True)
            ctx.show(Prompt(PIN_SCREEN, dict(data)))

    return on_key


def _entered(read: Any) -> Any:
    """A PIN pad read; the pad's cancel key or its timeout end the visit as the citizen's choice."""
    try:
        return read()
    except PinEntryCancelledError as cancelled:
        raise VisitCancelled("pin_entry_cancelled") from cancelled
    except PinEntryTimeoutError as timed_out:
        raise VisitTimedOut() from timed_out


def _ended(ctx: VisitContext, outcome: PinOutcome) -> dict[str, Any]:
    if outcome.result is PinResult.CANCELLED:
        raise VisitCancelled("pin_entry_cancelled")
    if outcome.result is PinResult.TIMED_OUT:
        raise VisitTimedOut()
    if outcome.result is PinResult.TOO_MANY_ATTEMPTS:
        raise VisitEnded("notice_printed", "pin_not_changed")
    return {"result": outcome.result.value, "attempts": outcome.attempts,
            "refusals": [r.value for r in outcome.refusals]}


def _ss_service(ctx: VisitContext, chip: Any) -> SocialSecurityPinService:
    cfg = visit_config(ctx)
    return SocialSecurityPinService(
        ctx.services.pinpad, chip, policy=PinPolicy(length=cfg.pinpad.pin_length),
        timeout_s=cfg.pinpad.entry_timeout_s, max_attempts=cfg.pinpad.max_attempts,
        observer=NewPinObserver(ctx.prompter, cfg.pinpad.pin_length, _title(ctx)),
    )


def service_of(ctx: VisitContext) -> str:
    return str(ctx.values.get("service") or ctx.saved.get("service", {}).get("service") or "")


def _staffed_or_reset(ctx: VisitContext, reason: str) -> str:
    """A locked or forgotten PIN: the counter, unless this region resets it at the kiosk."""
    if not visit_config(ctx).region.kiosk_pin_reset_allowed:
        raise VisitEnded("notice_printed", reason)
    return SS_RESET


# --------------------------------------------------------------------------- steps


def _financial_change_offered(ctx: VisitContext) -> bool:
    return ctx.services.has("backend") and bool(holder_card.holder_card(ctx).pan)


def choose_service(ctx: VisitContext) -> dict[str, Any]:
    """Step ``service``: what the holder wants, with the tries left of the social-security PIN."""
    info = holder_card.holder_card(ctx)
    tries = info.pin_tries_left if info.pin_tries_left is not None else ctx.services.smartcard.pin_tries_left()
    reset_here = visit_config(ctx).region.kiosk_pin_reset_allowed
    if tries == 0:
        service = _staffed_or_reset(ctx, "pin_locked")
        answer = ask(ctx, "message", {"title_key": "pin_service.title", "body_key": "pin_service.locked_reset_here",
                                      "choice_keys": {"reset": "pin_service.reset", "leave": "card_services.leave"}},
                     ("reset", "leave"), voice_key="pin_service.locked_reset_here")
        if answer.choice != "reset":
            raise VisitCancelled("pin_reset_declined")
    else:
        options = [(SS_CHANGE, "pin_service.ss_change", "pin_service.ss_change_detail"),
                   ("ss_forgot", "pin_service.ss_forgot",
                    "pin_service.ss_forgot_detail_kiosk" if reset_here else "pin_service.ss_forgot_detail_counter")]
        if _financial_change_offered(ctx):
            options.append((FIN_CHANGE, "pin_service.fin_change", "pin_service.fin_change_detail"))
        answer = ask(ctx, "choose", {"title_key": "pin_service.title", "intro_key": "pin_service.intro",
                                     "values": {"tries": tries}, "options": options},
                     [o[0] for o in options], voice_key="pin_service.intro")
        service = _staffed_or_reset(ctx, "pin_forgotten") if answer.choice == "ss_forgot" else answer.choice
    ctx.values["service"] = service
    ctx.values["card_active"] = _card_active(ctx)
    return {"service": service, "tries_left": tries}


def _card_active(ctx: VisitContext) -> bool:
    """Whether the card-management system holds this card as the holder's card in use (for the
    electronic card hint); unknown (no back end reachable) counts as no."""
    backend = ctx.services.devices.get("backend")
    if backend is None:
        return False
    try:
        record = backend.query_person(identity(ctx).id_number).card
    except BackendError as exc:
        log.info("visit %s card state unknown code=%s", ctx.visit_id, exc.code)
        return False
    info = holder_card.holder_card(ctx)
    return record is not None and record.card_number == info.card_number and record.state is CardState.NORMAL


class _ChangeFromOldPin:
    """CHANGE PIN with the holder's current PIN (the PIN service gives the default one: ignored)."""

    def __init__(self, chip: Any, old_pin: bytearray) -> None:
        self._chip = chip
        self._old = old_pin

    def change_pin(self, default_pin: bytearray, new_pin: bytearray) -> None:
        wipe(default_pin)
        old = bytearray(self._old)
        self._chip.change_pin(old, new_pin)  # wipes both

    def reload_pin(self, new_pin: bytearray) -> None:
        self._chip.reload_pin(new_pin)


def change_ss_pin(ctx: VisitContext) -> dict[str, Any]:
    """Step ``ss_change``: the current PIN checked by the chip, then the new one twice."""
    if service_of(ctx) != SS_CHANGE:
        return {"skipped": True}
    cfg = visit_config(ctx)
    chip, pad = ctx.services.smartcard, ctx.services.pinpad
    refusal = ""
    old = bytearray()
    try:
        while True:
            on_key = _entry_prompt(ctx, "pin_service.enter_old_ss_pin", refusal)
            old = _entered(lambda: pad.read_plain_pin(cfg.pinpad.pin_length, cfg.pinpad.entry_timeout_s, on_key))
            try:
                chip.verify_pin(bytearray(old))  # the copy is wiped by the chip service
                break
            except PinWrongError as wrong:
                wipe(old)
                again = ask(ctx, "message", {"title_key": "pin_service.title", "body_key": "pin_service.wrong_old_pin",
                                             "values": {"tries": wrong.tries_left},
                                             "choice_keys": {"retry": "pin_service.retry", "forgot": "pin_service.ss_forgot"}},
                            ("retry", "forgot"), voice_key="pin_service.wrong_old_pin_voice")
                if again.choice == "forgot":
                    ctx.values["service"] = _staffed_or_reset(ctx, "pin_forgotten")
                    return {"result": "forgotten"}
                refusal = "pin_service.wrong_old_pin_short"
            except PinBlockedError:
                wipe(old)
                ctx.values["service"] = _staffed_or_reset(ctx, "pin_locked")
                return {"result": "locked"}
        outcome = _ss_service(ctx, _ChangeFromOldPin(chip, old)).set_pin(identity(ctx).birth_date)
    finally:
        wipe(old)
    return _ended(ctx, outcome)


def _only_for_reset(run: Any) -> Any:
    def step(ctx: VisitContext) -> dict[str, Any] | None:
        if service_of(ctx) != SS_RESET:
            return {"skipped": True}
        return run(ctx)

    step.__doc__ = run.__doc__
    return step


def reset_ss_pin(ctx: VisitContext) -> dict[str, Any]:
    """Step ``ss_reset``: after face verification, the new PIN twice, written by PIN reload (the
    PSAM or the HSM does the key work; the old PIN is not needed and the try counter is reset)."""
    if service_of(ctx) != SS_RESET:
        return {"skipped": True}
    outcome = _ss_service(ctx, ctx.services.smartcard).set_pin(identity(ctx).birth_date, ChipPinMethod.RELOAD)
    if outcome.result is PinResult.SET:
        record_psam_use(ctx, "pin_reload")
    return _ended(ctx, outcome)


class OldFinancialPinWrong(Exception):
    """The bank says the current financial PIN was wrong (raised through the PIN service)."""


class _BankChange:
    """The bank's PIN change as the financial PIN service's ``set_financial_pin``: the old PIN's
    block goes with each new one."""

    def __init__(self, backend: Any, old_block: bytes) -> None:
        self._backend = backend
        self._old = old_block

    def set_financial_pin(self, key: str, card_number: str, pin_block: bytes, key_index: int = 1) -> Any:
        result = self._backend.change_financial_pin(key, card_number, self._old, pin_block, key_index)
        if not result.old_pin_correct:
            raise OldFinancialPinWrong()
        return result


def change_fin_pin(ctx: VisitContext) -> dict[str, Any]:
    """Step ``fin_change``: 修改金融密码 through the bank — PIN blocks under the pad's key, bound to
    the account on the chip (tag 5A); never a PIN."""
    if service_of(ctx) != FIN_CHANGE:
        return {"skipped": True}
    cfg = visit_config(ctx)
    info = holder_card.holder_card(ctx)
    pad, backend = ctx.services.pinpad, ctx.services.backend
    slot = (cfg.pinpad.pin_key_master_index, cfg.pinpad.pin_key_index)
    algorithm = KeyAlgorithm(cfg.pinpad.pin_algorithm)
    refusal = ""
    for attempt in range(1, cfg.pinpad.max_attempts + 1):
        on_key = _entry_prompt(ctx, "pin_service.enter_old_fin_pin", refusal)
        old = _entered(lambda: pad.read_pin_block(info.pan, slot, algorithm, cfg.pinpad.pin_length,
                                                  cfg.pinpad.entry_timeout_s, on_key))
        service = FinancialPinService(
            pad, _BankChange(backend, bytes(old)), key_slot=slot, algorithm=algorithm,
            bank_key_index=cfg.pinpad.bank_key_index, length=cfg.pinpad.pin_length,
            timeout_s=cfg.pinpad.entry_timeout_s, max_attempts=cfg.pinpad.max_attempts,
            observer=NewPinObserver(ctx.prompter, cfg.pinpad.pin_length, _title(ctx)),
        )
        try:
            outcome = service.set_pin(card_services.key(ctx, f"fin_change.{attempt}"), info.card_number, info.pan)
        except OldFinancialPinWrong:
            refusal = "pin_service.wrong_old_pin_short"
            continue
        except BackendRefused as refused:
            raise VisitEnded("notice_printed", refused.notice.value) from refused
        except (BackendTransient, BackendAmbiguous) as down:
            raise VisitEnded("notice_printed", "service_unavailable_offline") from down
        return _ended(ctx, outcome)
    raise VisitEnded("notice_printed", "pin_not_changed")


def voucher(ctx: VisitContext) -> dict[str, Any]:
    service = service_of(ctx)
    info = holder_card.holder_card(ctx)
    show_result(ctx, f"pin_service.result_{service}", voice_key=f"pin_service.result_{service}")
    notes = ["pin_service.voucher.note_secret"]
    if ctx.values.get("holder_card_retained"):
        notes.append("holder_card.voucher.retained")
    printed = common.print_voucher(ctx, f"pin_service.voucher.result_{service}", card_number=info.card_number,
                                   notes=notes, e_card=bool(ctx.values.get("card_active")))
    ctx.values["outcome"] = OUTCOMES[service]
    return {"printed": printed, "service": service}


FLOW = Flow(
    key="pin_change",
    title_key="business.pin_change",
    description_key="business.pin_change.description",
    steps=(
        Step("id_card", common.read_id_card),
        Step("insert_card", holder_card.insert_card, holder_card.give_card_back),
        Step("service", choose_service),
        Step("ss_change", change_ss_pin),
        Step("face_consent", _only_for_reset(common.face_consent)),
        Step("face", _only_for_reset(card_services.verify_face), common.stop_face),
        Step("ss_reset", reset_ss_pin),
        Step("fin_change", change_fin_pin),
        Step("return_card", holder_card.return_card),
        Step("voucher", voucher),
        Step("return_id", common.return_id_card),
    ),
    requires=REQUIRES,
    order=70,
    on_failure=common.on_failure,
)
