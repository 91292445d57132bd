"""Instant issuance (即时制卡): first issue, replacement and renewal share this visit.

home → business → ID card → face consent → face (liveness + 1:1) → eligibility (card state,
renewal window, loss report, temporary card, fee) → personal data confirmed → cooperating bank →
consents and fee (nothing optional pre-selected) → card photo accepted → submit → card made
(feed, chip, print, emboss) → social-security PIN → bank account opened, financial PIN →
both applications activated → card taken → voucher → ID card back.

Every mutating back-end call carries the idempotency key of its visit and step (a second blank
card after a spoiled one is a new attempt: ``.1``). What must reach the back end even when the
network is down (the result report 回盘, activations, spoiled-card reports, an application left
for central production) goes through the outbox with that same key, so it is sent exactly once
in effect. The compensations look at the world (where is the card?) and are idempotent.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kiosk.backend.api import (
    BackendAmbiguous,
    BackendRefused,
    BackendTransient,
    Business,
    BusinessReason,
    CardData as BackendCardData,
    NoticeCode,
    PersonRecord,
    TemporaryCardStatus,
    idempotency_key,
)
from kiosk.backend.outbox_sender import outbox_payload
from kiosk.devices import DeviceError
from kiosk.devices.cardprinter import CardFace, CardPosition, CardPrinterError, EjectOutcome, HopperEmpty, Sex
from kiosk.devices.smartcard import CardData as ChipCardData, PersonalizationError
from kiosk.flows import common
from kiosk.flows.common import ask, identity, now_local, record_psam_use, visit_config
from kiosk.ledger import Place, RejectReason
from kiosk.pin_entry import PromptingPinObserver
from kiosk.pins import FinancialPinService, PinPolicy, PinResult, SocialSecurityPinService
from kiosk.prompts import Prompt
from kiosk.visit import Flow, Step, VisitContext, VisitEnded
from offline.outbox import MessageKind, PersonalData

log = logging.getLogger(__name__)

REQUIRES = ("idreader", "photo_decoder", "face", "backend", "cardprinter", "smartcard", "pinpad", "receipt", "ledger")


@dataclass(frozen=True)
class IssuanceRules:
    business: Business
    reason: BusinessReason | None  # fixed reason (replacement: lost); None = asked (renewal) or none


# --------------------------------------------------------------------------- back-end helpers


def _key(ctx: VisitContext, step: str, attempt: int = 0) -> str:
    return idempotency_key(ctx.visit_id, step, attempt)


def call_or_queue(ctx: VisitContext, operation: str, body: Mapping[str, Any], key: str, kind: MessageKind,
                  personal: tuple[PersonalData, ...] = ()) -> dict[str, Any] | None:
    """Sends a report the back end must get (回盘, activation, record). If the network is down or
    the reply is lost, the same request goes to the outbox with the same idempotency key and is
    sent later, exactly once in effect. Returns the reply, or None when queued."""
    backend = ctx.services.backend
    try:
        return backend.call(operation, dict(body), key)
    except (BackendTransient, BackendAmbiguous) as exc:
        outbox = ctx.services.devices.get("outbox")
        if outbox is None:
            raise
        outbox.enqueue(key, kind, outbox_payload(operation, body), visit_id=ctx.visit_id, personal_data=personal)
        ctx.values.setdefault("queued", []).append(operation)
        log.info("visit %s %s queued in the outbox code=%s", ctx.visit_id, operation, exc.code)
        return None


def _queued(ctx: VisitContext) -> list[str]:
    return list(ctx.values.get("queued", []))


# --------------------------------------------------------------------------- steps


def choose_reason(rules: IssuanceRules):  # type: ignore[no-untyped-def]
    def run(ctx: VisitContext) -> dict[str, Any]:
        if rules.reason is not None or rules.business is not Business.RENEWAL:
            ctx.values["reason"] = rules.reason
            return {"reason": rules.reason.value if rules.reason else None}
        reasons = [BusinessReason.EXPIRING, BusinessReason.DAMAGED, BusinessReason.DATA_CHANGED,
                   BusinessReason.THIRD_GENERATION_UPGRADE, BusinessReason.BANK_CHANGE]
        answer = ask(ctx, "choose", {"title_key": "visit.reason.title", "intro_key": "visit.reason.intro",
                                     "options": [(r.value, f"visit.reason.{r.value}", "") for r in reasons]},
                     [r.value for r in reasons], voice_key="visit.reason.intro")
        ctx.values["reason"] = BusinessReason(answer.choice)
        return {"reason": answer.choice}

    return run


def check_eligibility(rules: IssuanceRules):  # type: ignore[no-untyped-def]
    def run(ctx: VisitContext) -> dict[str, Any]:
        card = identity(ctx)
        backend = ctx.services.backend
        ctx.show(Prompt("progress", {"title_key": f"business.{ctx.business}", "headline_key": "visit.checking",
                                     "stages": [("visit.stage.eligibility", "now")], "fraction": 0.1, "eta_s": 2}))
        try:
            person: PersonRecord = backend.query_person(card.id_number)
            if person.name != card.name or person.birth_date != card.birth_date:
                raise VisitEnded("notice_printed", NoticeCode.DATA_MISMATCH.value)
            reason = ctx.values.get("reason")
            resumed = _resumable_application(ctx, person)
            if resumed is None:
                found = backend.check_eligibility(card.id_number, rules.business, reason)
                if not found.eligible and found.refusal is not None:
                    if found.renewal_window_opens_on:
                        ctx.values["notice_values"] = {"opens_on": found.renewal_window_opens_on.isoformat()}
                    raise VisitEnded("notice_printed", found.refusal.value)
                fee_fen = found.fee_fen
                old_card = found.old_card_number
            else:
                fee_fen, old_card = 0, person.card.card_number if person.card else None
        except BackendRefused as refused:
            raise VisitEnded("notice_printed", refused.notice.value) from refused
        except BackendTransient as down:
            if rules.business is Business.FIRST_ISSUE and ctx.services.devices.get("outbox") is not None:
                ctx.values["offline"] = True
                ctx.values["person"] = None
                ctx.values["fee_fen"] = 0
                return {"offline": True, "code": down.code}
            raise VisitEnded("notice_printed", "service_unavailable_offline") from down
        if person.temporary_card is TemporaryCardStatus.HELD:
            raise VisitEnded("notice_printed", NoticeCode.TEMPORARY_CARD_NOT_RECALLED.value)
        ctx.values.update(person=person, fee_fen=fee_fen, old_card_number=old_card, resumed_application=resumed)
        return {"fee_fen": fee_fen, "old_card_last4": old_card[-4:] if old_card else None,
                "resumed_application": resumed}

    return run


def _resumable_application(ctx: VisitContext, person: PersonRecord) -> str | None:
    """An application this kiosk submitted and did not finish (a jam, a power cut, an empty
    hopper) is taken up again when the same person comes back: never applied for twice."""
    if person.open_application is None:
        return None
    for entry in ctx.journal.find_step_data("submit", "application_id", person.open_application):
        if entry.get("business") == ctx.business or entry.get("business") is None:
            return person.open_application
    return None


def confirm_offline(ctx: VisitContext) -> None:
    answer = ask(ctx, "message", {"title_key": f"business.{ctx.business}", "body_key": "visit.offline.offer_queue",
                                  "values": common.region_values(ctx),
                                  "choice_keys": {"queue": "visit.offline.queue", "cancel": "visit.offline.leave"}},
                 ("queue", "cancel"), voice_key="visit.offline.offer_queue_voice")
    if answer.choice != "queue":
        raise VisitEnded("cancelled", "offline_declined")


def confirm_data(ctx: VisitContext) -> dict[str, Any]:
    """Step ``confirm_data``: what the card-management system holds, to confirm (data come from
    the base information library, not from typing); the mobile number on record or a new one."""
    card = identity(ctx)
    if ctx.values.get("offline"):
        confirm_offline(ctx)
    person: PersonRecord | None = ctx.values.get("person")
    mobile_masked = person.mobile_masked if person is not None else None
    while True:
        rows = [
            ("visit.data.name", common.mask_name(card.name)),
            ("visit.data.id_number", card.masked_id_number),
            ("visit.data.sex", common.text(ctx, f"visit.sex.{card.sex_code}")),
            ("visit.data.ethnicity", card.ethnicity or ""),
            ("visit.data.birth_date", card.birth_date.isoformat() if card.birth_date else ""),
            ("visit.data.mobile", mobile_masked or common.text(ctx, "visit.data.mobile_none")),
        ]
        choices = ("confirm", "change_mobile", "data_wrong") if mobile_masked else ("add_mobile", "data_wrong")
        answer = ask(ctx, "confirm", {"title_key": "visit.data.title", "intro_key": "visit.data.intro", "rows": rows,
                                      "choice_keys": {"confirm": "visit.data.confirm", "change_mobile": "visit.data.change_mobile",
                                                      "add_mobile": "visit.data.add_mobile", "data_wrong": "visit.data.wrong"},
                                      "secondary": ["change_mobile", "data_wrong"]},
                     choices, voice_key="visit.data.intro")
        if answer.choice == "data_wrong":
            raise VisitEnded("notice_printed", "data_mismatch")
        if answer.choice == "confirm":
            return {"mobile": "on_record"}
        entry = ask(ctx, "keypad_entry", {"title_key": "visit.mobile.title", "prompt_key": "visit.mobile.prompt",
                                          "length": 11, "pattern": r"^1[3-9]\d{9}$", "error_key": "visit.mobile.invalid"},
                    ("ok",), voice_key="visit.mobile.prompt")
        mobile = str(entry.values["value"])
        ctx.values["mobile"] = mobile
        mobile_masked = f"{mobile[:3]}****{mobile[-4:]}"


def choose_bank(ctx: VisitContext) -> dict[str, Any]:
    """Step ``bank``: the cooperating bank (合作银行), from configuration; none pre-selected."""
    banks = [_bank(entry) for entry in visit_config(ctx).backend.banks]
    if len(banks) == 1:
        ctx.values["bank"] = banks[0]
        return {"bank_code": banks[0][0], "chosen": False}
    answer = ask(ctx, "choose", {"title_key": "visit.bank.title", "intro_key": "visit.bank.intro",
                                 "options": [(code, name, "") for code, name in banks]},
                 [code for code, _ in banks], voice_key="visit.bank.intro")
    ctx.values["bank"] = next(b for b in banks if b[0] == answer.choice)
    return {"bank_code": answer.choice, "chosen": True}


def _bank(entry: str) -> tuple[str, str]:
    """A ``[backend] banks`` entry: ``"code:名称"`` or just the name (then the name is the code)."""
    code, _, name = entry.partition(":")
    return (code, name) if name else (entry, entry)


def consents(ctx: VisitContext) -> dict[str, Any]:
    """Step ``consent``: the application and data-use consents (required) and the optional bank
    services (never pre-selected), with the fee shown before consent."""
    cfg = visit_config(ctx)
    fee = int(ctx.values.get("fee_fen", 0))
    items = [
        {"key": "apply", "text_key": f"visit.consent.apply_{ctx.business}", "required": True, "detail_key": ""},
        {"key": "data_use", "text_key": "visit.consent.data_use", "required": True, "detail_key": "visit.consent.data_use_detail"},
    ]
    if not ctx.values.get("offline"):
        items += [{"key": s, "text_key": f"visit.optional.{s}", "required": False, "detail_key": f"visit.optional.{s}_detail"}
                  for s in cfg.visit.optional_services]
    fee_key = "visit.fee.free" if fee == 0 else "visit.fee.amount"
    answer = ask(ctx, "consent", {"title_key": "visit.consent.title", "intro_key": "visit.consent.intro", "items": items,
                                  "fee_key": fee_key, "values": {"yuan": f"{fee / 100:.2f}"}},
                 ("agree",), voice_key="visit.consent.intro")
    checked = set(answer.values.get("checked", []))
    optional = tuple(s for s in cfg.visit.optional_services if s in checked)
    ctx.values["optional_services"] = optional
    if fee > 0:
        # Paying by QR code at the kiosk is not built: a fee sends the citizen to the counter.
        raise VisitEnded("notice_printed", NoticeCode.FEE_NOT_PAID.value)
    return {"consents": sorted(checked & {"apply", "data_use"}), "optional_services": list(optional)}


def card_photo(rules: IssuanceRules):  # type: ignore[no-untyped-def]
    def run(ctx: VisitContext) -> dict[str, Any]:
        """Step ``photo``: the card photo (358×441, white background) taken now and shown for
        acceptance; at replacement/renewal the photo on record may be kept."""
        face = ctx.services.face
        person: PersonRecord | None = ctx.values.get("person")
        if rules.business is not Business.FIRST_ISSUE and person is not None and person.photo_on_record:
            keep = ask(ctx, "choose", {"title_key": "visit.photo.source_title", "intro_key": "visit.photo.keep_or_new",
                                       "options": [("keep", "visit.photo.keep", ""), ("new", "visit.photo.new", "")]},
                       ("keep", "new"), voice_key="visit.photo.keep_or_new")
            if keep.choice == "keep":
                ctx.values["card_photo"] = None
                common.stop_face(ctx)
                return {"photo": "on_record"}
        for attempt in range(1, 4):
            photo = _take_card_photo(ctx, face, reuse=attempt == 1)
            answer = ask(ctx, "confirm", {"title_key": "visit.photo.title", "intro_key": "visit.photo.intro",
                                          "rows": [], "photo_jpeg": photo,
                                          "choice_keys": {"accept": "visit.photo.accept", "retake": "visit.photo.retake"},
                                          "secondary": ["retake"]},
                         ("accept", "retake"), voice_key="visit.photo.intro")
            if answer.choice == "accept":
                ctx.values["card_photo"] = photo
                ctx.values["chip_photo"] = face.chip_photo(photo)
                common.stop_face(ctx)
                return {"photo": "taken", "attempts": attempt, "bytes": len(photo)}
        raise VisitEnded("notice_printed", "face_failed")

    return run


def _take_card_photo(ctx: VisitContext, face: Any, *, reuse: bool) -> bytes:
    """The photo made from the best frame after the face match (asked for then), or a new one."""
    import time

    ctx.show(Prompt("face", {"title_key": "visit.photo.title", "instruction_key": "visit.photo.look", "preview": face.preview}))
    if not reuse:
        face.forget_best_frame()
        face.request_card_photo()
    deadline = time.monotonic() + 15
    result = face.result("card_photo")
    while time.monotonic() < deadline:
        if result is not None and not (isinstance(result, Exception) and getattr(result, "retryable", False)):
            break
        if result is not None:  # no good frame yet after a retake: ask again when the next ones came
            time.sleep(0.3)
            face.request_card_photo()
        time.sleep(0.02)
        result = face.result("card_photo")
    if result is None:
        raise VisitEnded("notice_printed", "face_failed")
    if isinstance(result, Exception):
        raise VisitEnded("notice_printed", "face_failed")
    return bytes(result.jpeg)


def submit(rules: IssuanceRules):  # type: ignore[no-untyped-def]
    def run(ctx: VisitContext) -> dict[str, Any]:
        """Step ``submit``: the application (申领受理), once: the key is journaled before the call;
        a lost reply is looked up by that key. Offline, a first issue is left for central
        production in the outbox (sealed), and a one-time notice says so."""
        card = identity(ctx)
        key = _key(ctx, "submit")
        ctx.checkpoint(idempotency_key=key, business=ctx.business)
        if ctx.values.get("resumed_application"):
            ctx.values["application_id"] = ctx.values["resumed_application"]
            return {"application_id": ctx.values["application_id"], "business": ctx.business, "resumed": True}
        bank_code = ctx.values["bank"][0]
        photo = ctx.values.get("card_photo")
        if ctx.values.get("offline"):
            body = {"id_number": card.id_number, "business": rules.business.value, "bank_code": bank_code,
                    "person_type": "resident", "fee_paid_fen": 0, "central_production": True}
            if ctx.values.get("mobile"):
                body["mobile"] = ctx.values["mobile"]
            if photo:
                import base64

                body["photo_jpeg_base64"] = base64.b64encode(photo).decode()
            ctx.services.outbox.enqueue(key, MessageKind.APPLICATION, outbox_payload("submitApplication", body),
                                        visit_id=ctx.visit_id)
            ctx.values["outcome"] = "application_queued"
            ctx.values["queued"] = ["submitApplication"]
            common.present_notice(ctx, "application_queued")
            raise VisitEnded("application_queued", "application_queued")
        backend = ctx.services.backend
        kwargs = dict(id_number=card.id_number, business=rules.business, reason=ctx.values.get("reason"),
                      mobile=ctx.values.get("mobile"), bank_code=bank_code, photo_jpeg=photo,
                      fee_paid_fen=int(ctx.values.get("fee_fen", 0)))
        try:
            application = backend.submit_application(key, **kwargs)
        except BackendAmbiguous:
            application = backend.recover("submitApplication", key)
            if application is None:
                application = backend.submit_application(key, **kwargs)
        except BackendRefused as refused:
            raise VisitEnded("notice_printed", refused.notice.value) from refused
        except BackendTransient as down:
            raise VisitEnded("notice_printed", "service_unavailable_offline") from down
        ctx.values["application_id"] = application.application_id
        return {"application_id": application.application_id, "business": ctx.business}

    return run


def _chip_data(data: BackendCardData, chip_photo: bytes | None) -> ChipCardData:
    return ChipCardData(
        application_id=data.application_id, card_number=data.card_number, ssn=data.id_number, name=data.name,
        sex=data.sex, ethnicity_code=data.ethnicity_code, birth_date=data.birth_date, issue_date=data.issue_date,
        expiry_date=data.valid_until, card_category=data.card_category, spec_version=data.spec_version,
        photo_jpeg=chip_photo,
    )


def _mark(ctx: VisitContext, attempt: int) -> BackendCardData:
    backend = ctx.services.backend
    key = _key(ctx, "mark", attempt)
    try:
        return backend.mark_instant_issue(key, ctx.values["application_id"])
    except BackendAmbiguous:
        found = backend.recover("markInstantIssue", key)
        return found if found is not None else backend.mark_instant_issue(key, ctx.values["application_id"])
    except BackendRefused as refused:
        raise VisitEnded("notice_printed", refused.notice.value) from refused
    except BackendTransient as down:
        raise VisitEnded("notice_printed", "service_unavailable_offline") from down


PRODUCTION_STAGES = ("feed", "chip", "print", "emboss")


def _progress(ctx: VisitContext, now: str, attempt: int) -> None:
    cfg = visit_config(ctx)
    stages = [s for s in PRODUCTION_STAGES if s != "emboss" or cfg.cardprinter.embosser_fitted]
    expected = {"feed": cfg.visit.expected_feed_s, "chip": cfg.visit.expected_chip_s,
                "print": cfg.visit.expected_print_s, "emboss": cfg.visit.expected_emboss_s}
    index = stages.index(now)
    total = sum(expected[s] for s in stages)
    left = sum(expected[s] for s in stages[index:])
    marks = [(f"visit.stage.{s}", "done" if i < index else "now" if i == index else "next") for i, s in enumerate(stages)]
    ctx.show(Prompt("progress", {"title_key": "visit.production.title", "headline_key": "visit.production.headline",
                                 "stages": marks, "fraction": round(1 - left / total, 2), "eta_s": left,
                                 "attempt": attempt}, voice_key="visit.production.headline" if index == 0 else None))


def produce_card(ctx: VisitContext) -> dict[str, Any]:
    """Step ``produce``: a blank card from the hopper to the chip station, personalized, printed,
    embossed where fitted. A spoiled card goes to the reject bin, is recorded in the ledger and
    reported (card number voided), and the next blank is tried under a new attempt key."""
    cfg = visit_config(ctx)
    card = identity(ctx)
    printer, station, ledger = ctx.services.cardprinter, ctx.services.smartcard, ctx.services.ledger
    spoiled: list[str] = []
    for attempt in range(cfg.visit.card_attempts):
        data = _mark(ctx, attempt)
        ctx.checkpoint(attempt=attempt, card_number=data.card_number)
        _progress(ctx, "feed", attempt)
        try:
            fed = printer.feed_to_chip_station()
        except HopperEmpty as empty:
            _report_failure(ctx, data, attempt, "other", "hopper_empty")
            raise VisitEnded("notice_printed", "hopper_empty") from empty
        except CardPrinterError as fault:
            _secure_card(ctx, None, RejectReason.JAM, fault.code)
            _report_failure(ctx, data, attempt, "card_jam" if "jam" in fault.code else "other", fault.code)
            raise VisitEnded("notice_printed", "card_jam" if "jam" in fault.code else "printer_fault") from fault
        blank = fed.card_number or _first_in_hopper(ledger)
        if not fed.resumed:
            ledger.feed(blank, visit_id=ctx.visit_id)
        ctx.checkpoint(blank=blank)
        _progress(ctx, "chip", attempt)
        try:
            result = station.personalize(_chip_data(data, ctx.values.get("chip_photo")))
        except PersonalizationError as failed:
            log.warning("visit %s personalization failed code=%s attempt=%d", ctx.visit_id, failed.code, attempt)
            _secure_card(ctx, blank, RejectReason.PERSONALIZATION_FAILED, failed.code)
            _report_failure(ctx, data, attempt, "chip_write", failed.code)
            spoiled.append(blank)
            continue
        ctx.checkpoint(personalized=True)
        record_psam_use(ctx, "personalize")
        _progress(ctx, "print", attempt)
        face = CardFace(name=data.name, sex=Sex.FEMALE if data.sex == "2" else Sex.MALE, ssn=data.id_number,
                        card_number=data.card_number, issue_date=data.issue_date,
                        photo=ctx.values.get("card_photo") or b"", name_latin="")
        try:
            printer.print_face(face)
            if cfg.cardprinter.embosser_fitted:
                _progress(ctx, "emboss", attempt)
                printer.emboss(data.card_number)
        except CardPrinterError as fault:
            reason = RejectReason.JAM if "jam" in fault.code else RejectReason.MISPRINT
            _secure_card(ctx, blank, reason, fault.code)
            _report_failure(ctx, data, attempt, "card_jam" if reason is RejectReason.JAM else "print", fault.code)
            raise VisitEnded("notice_printed", "card_jam" if reason is RejectReason.JAM else "printer_fault") from fault
        ctx.values.update(card_data=data, personalization=result, blank=blank)
        del card  # the chip and the face carry the data now
        return {"card_number": data.card_number, "blank": blank, "attempt": attempt, "spoiled": spoiled,
                "atr": result.atr}
    raise VisitEnded("notice_printed", "chip_write_failed")


def _first_in_hopper(ledger: Any) -> str:
    cards = ledger.cards_in(Place.HOPPER)
    if not cards:
        raise VisitEnded("notice_printed", "hopper_empty")
    return cards[0]


def _secure_card(ctx: VisitContext, blank: str | None, reason: RejectReason, detail: str) -> None:
    """A spoiled card: into the reject bin (the printer recovers whatever is inside) and into the
    ledger, once."""
    printer, ledger = ctx.services.cardprinter, ctx.services.ledger
    try:
        where = printer.where_is_card()
        if where is not CardPosition.NONE and where.inside_printer:
            printer.reject(reason.value)
    except CardPrinterError:
        printer.recover("visit_failed")
    if blank is not None and ledger.card(blank).place is Place.PRINTER:
        ledger.reject(blank, reason, visit_id=ctx.visit_id, detail=detail)
    ctx.checkpoint(rejected=blank, reject_reason=reason.value)


def _report_failure(ctx: VisitContext, data: BackendCardData, attempt: int, fail_type: str, detail: str = "") -> None:
    body = {"application_id": data.application_id, "card_number": data.card_number, "success": False,
            "fail_type": fail_type, "fail_reason": detail or fail_type}
    call_or_queue(ctx, "reportResult", body, _key(ctx, "report_failure", attempt), MessageKind.RESULT_REPORT)


def compensate_produce(ctx: VisitContext, facts: Mapping[str, Any]) -> dict[str, Any]:
    """After a failure or a power cut: a card still in the printer goes to the reject bin and the
    ledger; a card number allocated and not reported is reported as failed (through the outbox)."""
    printer, ledger = ctx.services.devices.get("cardprinter"), ctx.services.devices.get("ledger")
    out: dict[str, Any] = {}
    if printer is not None:
        try:
            recovered = printer.recover("visit_interrupted")
            out["printer"] = recovered.found_at.value
        except DeviceError as exc:
            out["printer_error"] = exc.code
    blank = facts.get("blank")
    if ledger is not None and blank and ledger.card(blank).place is Place.PRINTER:
        ledger.reject(blank, RejectReason.RECOVERY, visit_id=ctx.visit_id, detail="visit_interrupted")
        out["rejected"] = blank
    if facts.get("card_number") and not facts.get("reported") and "application_id" in ctx.step_data("submit"):
        attempt = int(facts.get("attempt", 0))
        key = _key(ctx, "report_failure", attempt)
        outbox = ctx.services.devices.get("outbox")
        if outbox is not None and outbox.by_key(key) is None and not ctx.step_data("report").get("reported"):
            body = {"application_id": ctx.step_data("submit")["application_id"], "card_number": facts["card_number"],
                    "success": False, "fail_type": "other", "fail_reason": "visit_interrupted"}
            outbox.enqueue(key, MessageKind.RESULT_REPORT, outbox_payload("reportResult", body), visit_id=ctx.visit_id,
                           personal_data=())
            out["failure_queued"] = key
    return out


def report_result(ctx: VisitContext) -> dict[str, Any]:
    """Step ``report``: 回盘 — card number, ATR, card identification code, bank account."""
    data: BackendCardData = ctx.values["card_data"]
    result = ctx.values["personalization"]
    body = {"application_id": data.application_id, "card_number": data.card_number, "success": True,
            "atr": result.atr, "card_identification_code": result.card_identification_code,
            "bank_account": result.bank_account}
    reply = call_or_queue(ctx, "reportResult", body, _key(ctx, "report"), MessageKind.RESULT_REPORT,
                          (PersonalData.BANK_ACCOUNT,))
    return {"reported": True, "queued": reply is None}


def set_ss_pin(ctx: VisitContext) -> dict[str, Any]:
    """Step ``ss_pin``: the social-security PIN, twice, on the PIN pad, written to the chip."""
    cfg = visit_config(ctx)
    card = identity(ctx)
    # The PIN is written to the chip: the printed card goes back to the chip station first.
    ctx.services.cardprinter.reseat_at_chip_station()
    service = SocialSecurityPinService(
        ctx.services.pinpad, ctx.services.smartcard, policy=PinPolicy(length=cfg.pinpad.pin_length),
        timeout_s=cfg.pinpad.entry_timeout_s, max_attempts=cfg.pinpad.max_attempts,
        observer=PromptingPinObserver(ctx.prompter, cfg.pinpad.pin_length),
    )
    outcome = service.set_pin(card.birth_date)
    ctx.values["ss_pin"] = outcome.result.value
    if outcome.result is PinResult.SET:
        record_psam_use(ctx, "pin_set")
    return {"result": outcome.result.value, "attempts": outcome.attempts}


def open_account_and_fin_pin(ctx: VisitContext) -> dict[str, Any]:
    """Step ``fin_pin``: the bank account (pre-opened on the card, tag 5A) opened with only the
    services the holder chose, then the financial PIN as a PIN block only."""
    cfg = visit_config(ctx)
    data: BackendCardData = ctx.values["card_data"]
    result = ctx.values["personalization"]
    if _queued(ctx):
        return {"result": "deferred_offline"}
    backend = ctx.services.backend
    key = _key(ctx, "open_account")
    try:
        backend.open_bank_account(key, data.card_number, result.bank_account, ctx.values.get("optional_services", ()))
    except BackendAmbiguous:
        backend.recover("openBankAccount", key)
    except BackendTransient:
        return {"result": "deferred_offline"}
    service = FinancialPinService(
        ctx.services.pinpad, backend, key_slot=(cfg.pinpad.pin_key_master_index, cfg.pinpad.pin_key_index),
        algorithm=_algorithm(cfg.pinpad.pin_algorithm), bank_key_index=cfg.pinpad.bank_key_index,
        length=cfg.pinpad.pin_length, timeout_s=cfg.pinpad.entry_timeout_s, max_attempts=cfg.pinpad.max_attempts,
        observer=PromptingPinObserver(ctx.prompter, cfg.pinpad.pin_length),
    )
    try:
        outcome = service.set_pin(_key(ctx, "fin_pin"), data.card_number, result.bank_account)
    except BackendTransient:
        return {"result": "deferred_offline"}
    ctx.values["fin_pin"] = outcome.result.value
    return {"result": outcome.result.value, "attempts": outcome.attempts}


def _algorithm(name: str) -> Any:
    from kiosk.devices.pinpad import KeyAlgorithm

    return KeyAlgorithm(name)


def activate(ctx: VisitContext) -> dict[str, Any]:
    """Step ``activate``: the social-security application enabled (启用) and, with a financial
    PIN set, the bank account activated; what cannot be sent now is queued."""
    card = identity(ctx)
    data: BackendCardData = ctx.values["card_data"]
    ss = call_or_queue(ctx, "activateSocialSecurity", {"card_number": data.card_number, "id_number": card.id_number},
                       _key(ctx, "activate_ss"), MessageKind.ACTIVATION, (PersonalData.ID_TEXT,))
    bank_state = "not_set"
    if ctx.values.get("fin_pin") == PinResult.SET.value:
        reply = call_or_queue(ctx, "activateBankAccount", {"card_number": data.card_number},
                              _key(ctx, "activate_bank"), MessageKind.ACTIVATION)
        bank_state = "queued" if reply is None else str(reply.get("state"))
    ctx.values["bank_state"] = bank_state
    return {"social_security": "queued" if ss is None else ss.get("card_state"), "bank": bank_state}


def deliver_card(ctx: VisitContext) -> dict[str, Any]:
    """Step ``deliver``: the card to the slot with a countdown; not taken in time, it is pulled
    back into the reject bin, recorded, reported, and the citizen told where to go."""
    cfg = visit_config(ctx)
    printer, ledger = ctx.services.cardprinter, ctx.services.ledger
    blank = ctx.values["blank"]
    data: BackendCardData = ctx.values["card_data"]
    ctx.show(Prompt("take_item", {"title_key": "visit.take_card.title", "body_key": "visit.take_card.body",
                                  "slot": "card", "seconds": cfg.cardprinter.take_card_timeout_s},
                    voice_key="visit.take_card.body"))
    ejected = printer.eject_to_citizen(timeout_s=cfg.cardprinter.take_card_timeout_s)
    if ejected.outcome is EjectOutcome.TAKEN:
        ledger.issue(blank, visit_id=ctx.visit_id)
        ctx.values["outcome"] = "card_issued"
        return {"taken": True, "waited_s": round(ejected.waited_s, 2)}
    ledger.reject(blank, RejectReason.NOT_TAKEN, visit_id=ctx.visit_id, detail="retracted")
    # The card is made and active but lies in the reject bin: the card-management system is told
    # (a ledger movement record), and the holder is sent to the counter with the notice.
    call_or_queue(ctx, "submitKioskRecord",
                  {"kind": "ledger_movement", "record": {"movement": "rejected", "reason": "not_taken",
                                                         "card_number": data.card_number, "visit": ctx.visit_id,
                                                         "at": now_local().isoformat()}},
                  _key(ctx, "retracted"), MessageKind.LEDGER_MOVEMENT)
    raise VisitEnded("notice_printed", "card_not_taken")


def compensate_deliver(ctx: VisitContext, facts: Mapping[str, Any]) -> dict[str, Any]:
    return compensate_produce(ctx, ctx.step_data("produce"))


def voucher(ctx: VisitContext) -> dict[str, Any]:
    """Step ``voucher``: the business voucher; the electronic card hint on an active card."""
    data: BackendCardData = ctx.values["card_data"]
    result = ctx.values["personalization"]
    notes = []
    if ctx.values.get("ss_pin") != PinResult.SET.value:
        notes.append("visit.voucher.ss_pin_not_set")
    if ctx.values.get("bank_state") in ("pending", "queued"):
        notes.append("visit.voucher.bank_pending")
    elif ctx.values.get("bank_state") == "not_set":
        notes.append("visit.voucher.fin_pin_not_set")
    if _queued(ctx):
        notes.append("visit.voucher.reports_queued")
    printed = common.print_voucher(ctx, f"visit.voucher.result_{ctx.business}", card_number=data.card_number,
                                   bank_card_number=result.bank_account, notes=notes, e_card=True)
    return {"printed": printed, "notes": notes}


def flow(key: str, rules: IssuanceRules, order: int) -> Flow:
    reason_step = (Step("reason", choose_reason(rules)),) if rules.business is Business.RENEWAL else ()
    steps = (
        Step("id_card", common.read_id_card),
        Step("face_consent", common.face_consent),
        Step("face", common.verify_face, common.stop_face),
        *reason_step,
        Step("eligibility", check_eligibility(rules)),
        Step("confirm_data", confirm_data),
        Step("bank", choose_bank),
        Step("consent", consents),
        Step("photo", card_photo(rules), common.stop_face),
        Step("submit", submit(rules)),
        Step("produce", produce_card, compensate_produce),
        Step("report", report_result),
        Step("ss_pin", set_ss_pin),
        Step("fin_pin", open_account_and_fin_pin),
        Step("activate", activate),
        Step("deliver", deliver_card, compensate_deliver),
        Step("voucher", voucher),
        Step("return_id", common.return_id_card),
    )
    return Flow(key=key, title_key=f"business.{key}", steps=steps, requires=REQUIRES,
                description_key=f"business.{key}.description", order=order, on_failure=common.on_failure)


__all__ = ["IssuanceRules", "call_or_queue", "flow"]
