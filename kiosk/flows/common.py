"""Steps every citizen business shares (公共环节): read the ID card, verify the face against its
photo, end on a one-time notice, print the voucher, hand the ID card back.

Personal data read here (the ID card's text and photo, the live face) stays in ``ctx.values`` in
memory for this visit only; the journal gets masked or non-personal facts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from kiosk.backend.api import BackendError, BackendRefused, NoticeCode
from kiosk.backend.notices import notice_for
from kiosk.devices import DeviceError
from kiosk.devices.idreader import (
    CardInserted,
    CardReadFailed,
    CardRemoved,
    IdentityCard,
    NoCardError,
    Validity,
)
from kiosk.devices.receipt import OneTimeNotice, Voucher
from kiosk.prompts import Answer, Prompt
from kiosk.runtime import mask_name
from kiosk.visit import VisitContext, VisitEnded

log = logging.getLogger(__name__)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def now_local() -> datetime:
    return datetime.now(SHANGHAI)


def visit_config(ctx: VisitContext) -> Any:
    if ctx.config is None:
        raise RuntimeError("a business flow needs the configuration (VisitRunner(config=...))")
    return ctx.config


def text(ctx: VisitContext, key: str, **values: Any) -> str:
    """A printed text (vouchers and notices are printed in Chinese, the official language)."""
    if ctx.translator is None:
        return key
    try:
        return ctx.translator.text(key, "zh_CN", **values)
    except (KeyError, IndexError, ValueError):
        return ctx.translator.text(key, "zh_CN")


def region_values(ctx: VisitContext) -> dict[str, Any]:
    region = visit_config(ctx).region
    return {"hotline": region.hotline, "counter_address": region.counter_address, "counter": region.counter_address,
            "days": region.production.central_production_days}


def ask(ctx: VisitContext, screen: str, data: Mapping[str, Any], choices: Iterable[str], *, voice_key: str | None = None,
        timeout_s: float | None = None, until: Any = None) -> Answer:
    """Asks one screen with the configured prompt timeout."""
    timeout = timeout_s if timeout_s is not None else visit_config(ctx).visit.prompt_timeout_s
    prompt = Prompt(screen, dict(data), tuple(choices), float(timeout), voice_key)
    return ctx.ask(prompt, until) if until is not None else ctx.ask(prompt)


# --------------------------------------------------------------------------- the ID card


class ReaderAnswers:
    """Answers the "place your ID card" prompt when the reader reads a card (an AnswerSource)."""

    def __init__(self, reader: Any) -> None:
        self.reader = reader
        self._remove: Callable[[], None] | None = None

    def start(self, deliver: Callable[[Answer], None]) -> None:
        def event(ev: Any) -> None:
            if isinstance(ev, CardInserted):
                deliver(Answer("card_read", {"card": ev.card}))
            elif isinstance(ev, CardReadFailed):
                deliver(Answer("read_failed", {"message_key": ev.message_key}))

        self._remove = self.reader.add_listener(event)

    def stop(self) -> None:
        if self._remove is not None:
            self._remove()
            self._remove = None


class ReaderEmpty:
    """Answers the "take back your ID card" prompt when the card has left the reader."""

    def __init__(self, reader: Any) -> None:
        self.reader = reader
        self._remove: Callable[[], None] | None = None

    def start(self, deliver: Callable[[Answer], None]) -> None:
        def event(ev: Any) -> None:
            if isinstance(ev, CardRemoved):
                deliver(Answer("taken"))

        self._remove = self.reader.add_listener(event)
        try:
            self.reader.read_identity()
        except NoCardError:
            deliver(Answer("taken"))  # already gone
        except DeviceError:
            pass  # the reader will tell (or the countdown ends)

    def stop(self) -> None:
        if self._remove is not None:
            self._remove()
            self._remove = None


def read_id_card(ctx: VisitContext) -> dict[str, Any]:
    """Step ``id_card``: the ID card on the reader (already lying there, or placed now)."""
    reader = ctx.services.idreader
    card: IdentityCard | None = None
    try:
        card = reader.read_identity()
    except NoCardError:
        card = None
    except DeviceError as exc:
        log.info("id card read at start failed code=%s", exc.code)
    error_key = ""
    cfg = visit_config(ctx)
    while card is None:
        answer = ask(
            ctx, "id_card",
            {"title_key": "visit.id_card.title", "instruction_key": "visit.id_card.instruction",
             "detail_key": "visit.id_card.detail", "error_key": error_key},
            (), voice_key="visit.id_card.instruction", timeout_s=cfg.visit.id_card_timeout_s,
            until=ReaderAnswers(reader),
        )
        if answer.choice == "card_read":
            card = answer.values["card"]
        else:
            error_key = str(answer.values.get("message_key") or "visit.id_card.read_failed")
    today = now_local().date()
    validity = card.validity_on(today)
    ctx.values["identity"] = card
    facts = {"id_last4": card.id_number[-4:], "card_type": card.card_type.value, "validity": validity.value}
    if validity in (Validity.EXPIRED, Validity.NOT_YET_VALID):
        ctx.values["notice_values"] = {"valid_until": str(card.valid_until or "")}
        raise VisitEnded("notice_printed", "id_card_expired")
    if card.id_number_valid is False:
        raise VisitEnded("notice_printed", "id_card_invalid")
    return facts


def identity(ctx: VisitContext) -> IdentityCard:
    card = ctx.values.get("identity")
    if card is None:
        raise RuntimeError("no ID card read in this visit")
    return card


def masked_identity_values(card: IdentityCard) -> dict[str, str]:
    return {"name": mask_name(card.name), "id_number": card.masked_id_number}


def age_on(birth: date | None, today: date) -> int | None:
    if birth is None:
        return None
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


# --------------------------------------------------------------------------- the face


class FaceAnswers:
    """Runs liveness then the 1:1 match on the face pipeline and answers the face prompt with
    the outcome: ``matched``, ``mismatch``, ``liveness_failed`` or ``face_error``."""

    def __init__(self, face: Any, reference: Any, challenges: int | None = None) -> None:
        self.face = face
        self.reference = reference
        self._deliver: Callable[[Answer], None] | None = None
        self._stopped = threading.Event()

    def start(self, deliver: Callable[[Answer], None]) -> None:
        self._deliver = deliver
        self.face.forget_best_frame()
        self.face.start_liveness(self._liveness_done)

    def _liveness_done(self, result: Any) -> None:
        if self._stopped.is_set() or self._deliver is None:
            return
        if not getattr(result, "passed", False):
            self._deliver(Answer("liveness_failed", {
                "code": getattr(result, "code", "liveness.failed"),
                # How far the citizen got, for the engineer reading the log (no image, no template).
                "progress": f"{getattr(result, 'completed', '?')}/{len(getattr(result, 'challenges', ()))} "
                            f"frames={getattr(result, 'frames', '?')} s={getattr(result, 'elapsed_s', 0):.1f} "
                            f"{getattr(result, 'detail', '')}".rstrip(),
            }))
            return
        self.face.request_match(self.reference, self._matched)

    def _matched(self, result: Any) -> None:
        if self._stopped.is_set() or self._deliver is None:
            return
        if isinstance(result, Exception):
            self._deliver(Answer("face_error", {"code": getattr(result, "code", "camera.error")}))
        elif getattr(result, "match", False):
            self._deliver(Answer("matched", {"distance": round(float(result.distance), 3)}))
        else:
            self._deliver(Answer("mismatch", {"distance": round(float(result.distance), 3),
                                              "decision": getattr(result.decision, "value", "")}))

    def stop(self) -> None:
        self._stopped.set()


def face_consent(ctx: VisitContext) -> dict[str, Any]:
    """Step ``face_consent``: the separate consent for face processing (人脸识别单独同意), with
    a guardian's consent under the configured age, and the staffed path as the other way."""
    card = identity(ctx)
    cfg = visit_config(ctx)
    items = [{"key": "face", "text_key": "visit.consent.face", "required": True, "detail_key": "visit.consent.face_detail"}]
    age = age_on(card.birth_date, now_local().date())
    if age is not None and age < cfg.region.face_guardian_consent_under_age:
        items.append({"key": "guardian", "text_key": "visit.consent.guardian", "required": True, "detail_key": ""})
    answer = ask(
        ctx, "consent",
        {"title_key": "visit.face_consent.title", "intro_key": "visit.face_consent.intro",
         "values": masked_identity_values(card), "items": items,
         "alternatives": {"use_counter": "visit.face_consent.use_counter"}},
        ("agree", "use_counter"), voice_key="visit.face_consent.voice",
    )
    if answer.choice == "use_counter":
        raise VisitEnded("notice_printed", "face_declined")
    return {"consented": sorted(answer.values.get("checked", []))}


def verify_face(ctx: VisitContext) -> dict[str, Any]:
    """Step ``face``: liveness, then the live face against the ID card photo (人证比对)."""
    card = identity(ctx)
    cfg = visit_config(ctx)
    lock = ctx.services.devices.get("face_lock")
    if lock is not None:
        try:
            lock.check(card.id_number)
        except Exception as exc:  # FaceVerificationLocked: the staffed path
            log.info("face verification locked code=%s", getattr(exc, "code", type(exc).__name__))
            raise VisitEnded("notice_printed", "face_locked") from exc
    face = ctx.services.face
    decoded = ctx.services.photo_decoder.decode(card.photo)
    reference = face.decode_reference(decoded.data)
    face.start()
    ctx.values["face_started"] = True
    last = ""
    for attempt in range(1, cfg.visit.face_attempts + 1):
        answer = ask(
            ctx, "face",
            {"title_key": "visit.face.title", "instruction_key": "visit.face.instruction", "preview": face.preview,
             "attempt": attempt},
            (), voice_key="visit.face.instruction", timeout_s=cfg.face.liveness_time_limit_s + 20,
            until=FaceAnswers(face, reference),
        )
        if answer.choice == "matched":
            if lock is not None:
                lock.record_success(card.id_number)
            # The card photo is made from the best frame now, while the citizen reads the next
            # screens, so it is ready when it is shown for acceptance.
            face.request_card_photo()
            return {"attempts": attempt, "distance": answer.values.get("distance")}
        last = answer.choice
        log.info("visit %s face attempt %d: %s code=%s %s", ctx.visit_id, attempt, answer.choice,
                 answer.values.get("code", answer.values.get("decision", "")), answer.values.get("progress", ""))
        if lock is not None and answer.choice in ("mismatch", "liveness_failed"):
            state = lock.record_failure(card.id_number, f"face.{answer.choice}")
            if state.locked:
                raise VisitEnded("notice_printed", "face_locked")
        if attempt < cfg.visit.face_attempts:
            again = ask(
                ctx, "message",
                {"title_key": "visit.face.title", "body_key": f"visit.face.retry_{answer.choice}",
                 "choice_keys": {"retry": "visit.face.retry", "use_counter": "visit.face_consent.use_counter"}},
                ("retry", "use_counter"), voice_key=f"visit.face.retry_{answer.choice}",
            )
            if again.choice == "use_counter":
                raise VisitEnded("notice_printed", "face_declined")
    raise VisitEnded("notice_printed", "face_mismatch" if last == "mismatch" else "face_failed")


def stop_face(ctx: VisitContext, _facts: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Compensation of the face step: the camera and the face worker stop; frames are dropped."""
    face = ctx.services.devices.get("face")
    if face is not None:
        try:
            face.forget_best_frame()
            face.stop()
        except Exception as exc:  # stopping must not block the rest of the compensation
            log.warning("face pipeline stop failed: %s", type(exc).__name__)
    return {}


# --------------------------------------------------------------------------- notices


# Kiosk-side reasons (not back-end codes): reason, missing, what to do, where (counter/hotline/kiosk).
KIOSK_NOTICES: dict[str, tuple[str, tuple[str, ...], str, str]] = {
    "id_card_expired": ("notice.kiosk.id_card_expired", ("notice.kiosk.missing_valid_id",), "notice.kiosk.todo_renew_id", "police"),
    "id_card_invalid": ("notice.kiosk.id_card_invalid", ("notice.kiosk.missing_valid_id",), "notice.kiosk.todo_counter", "counter"),
    "face_declined": ("notice.kiosk.face_declined", (), "notice.kiosk.todo_counter_identity", "counter"),
    "face_mismatch": ("notice.kiosk.face_mismatch", (), "notice.kiosk.todo_counter_identity", "counter"),
    "face_failed": ("notice.kiosk.face_failed", (), "notice.kiosk.todo_counter_identity", "counter"),
    "face_locked": ("notice.kiosk.face_locked", (), "notice.kiosk.todo_counter_identity", "counter"),
    "data_mismatch": ("notice.kiosk.data_mismatch", ("notice.kiosk.missing_data_correction",), "notice.kiosk.todo_counter", "counter"),
    "hopper_empty": ("notice.kiosk.hopper_empty", (), "notice.kiosk.todo_resume", "kiosk"),
    "card_jam": ("notice.kiosk.card_jam", (), "notice.kiosk.todo_resume", "kiosk"),
    "printer_fault": ("notice.kiosk.printer_fault", (), "notice.kiosk.todo_resume", "kiosk"),
    "chip_write_failed": ("notice.kiosk.chip_write_failed", (), "notice.kiosk.todo_resume", "kiosk"),
    "card_not_taken": ("notice.kiosk.card_not_taken", (), "notice.kiosk.todo_card_retracted", "counter"),
    "pin_not_set": ("notice.kiosk.pin_not_set", (), "notice.kiosk.todo_pin_later", "kiosk"),
    "device_fault": ("notice.kiosk.device_fault", (), "notice.kiosk.todo_resume", "kiosk"),
    "application_queued": ("outbox.notice_application_queued", (), "notice.kiosk.todo_wait_central", "counter"),
    "loss_report_offline": ("outbox.notice_loss_report_offline", (), "notice.kiosk.todo_loss_hotline", "hotline"),
    "service_unavailable_offline": ("notice.kiosk.offline", (), "notice.kiosk.todo_try_later", "counter"),
}

_WHERE_KEYS = {
    "counter": "notice.where_counter",
    "hotline": "notice.kiosk.where_hotline",
    "kiosk": "notice.kiosk.where_kiosk",
    "police": "notice.kiosk.where_police",
}


def record_psam_use(ctx: VisitContext, operation: str) -> None:
    """Writes one use of the PSAM for this visit (PSAM使用记录: ``personalize``, ``pin_set``,
    ``pin_reload``) when the chip's key work is done by a PSAM in this kiosk (not the back end's
    HSM). The chip operation has already happened, so a registry that refuses (no PSAM registered:
    staff must register it) is logged for staff, never a reason to fail the citizen's visit."""
    devices = ctx.services.devices
    registry = devices.get("psam_registry")
    if "psam" not in devices or registry is None:
        return
    try:
        registry.record_use(ctx.visit_id, operation)
    except Exception as exc:  # the registry's refusal (PsamNotRegistered) or its database
        log.warning("visit %s PSAM use %s not recorded: %s", ctx.visit_id, operation, type(exc).__name__)
        audit = devices.get("audit")
        if audit is not None:
            try:
                audit.append("system", "psam.use_not_recorded", ctx.visit_id,
                             {"operation": operation, "error": type(exc).__name__})
            except Exception:  # noqa: BLE001 - the warning above is already in the log
                pass


def notice_parts(reason: str) -> tuple[str, tuple[str, ...], str, str, str]:
    """(reason key, missing keys, todo key, where key, time-limit key) for a reason code: a
    kiosk reason, a back-end notice code, or anything else (the generic "cannot finish")."""
    if reason in KIOSK_NOTICES:
        reason_key, missing, todo, where = KIOSK_NOTICES[reason]
        return reason_key, missing, todo, _WHERE_KEYS[where], ""
    try:
        code = NoticeCode(reason)
    except ValueError:
        reason_key, missing, todo, where = KIOSK_NOTICES["device_fault"]
        return reason_key, missing, todo, _WHERE_KEYS[where], ""
    notice = notice_for(code)
    return notice.reason_key, (notice.missing_key,), notice.action_key, notice.where_key, ""


def failure_reason(exc: Exception) -> str:
    """The notice code of a failure: a business refusal, a back-end error, a device error."""
    if isinstance(exc, VisitEnded):
        return exc.reason or exc.outcome
    if isinstance(exc, BackendRefused):
        return exc.notice.value
    if isinstance(exc, BackendError):
        return exc.notice.value
    return "device_fault"


def present_notice(ctx: VisitContext, reason: str, values: Mapping[str, Any] | None = None) -> bool:
    """Prints the one-time notice (一次性告知单) and shows the same text; returns whether it printed."""
    values = {**region_values(ctx), **dict(ctx.values.get("notice_values", {})), **dict(values or {})}
    reason_key, missing, todo, where_key, limit_key = notice_parts(reason)
    cfg = visit_config(ctx)
    printed = False
    receipt = ctx.services.devices.get("receipt")
    card = ctx.values.get("identity")
    if receipt is not None:
        notice = OneTimeNotice(
            business=text(ctx, f"business.{ctx.business}"),
            issued_at=now_local(),
            kiosk_id=cfg.kiosk.kiosk_id,
            serial_number=ctx.visit_id,
            reason=text(ctx, reason_key, **values),
            missing=tuple(text(ctx, k, **values) for k in missing if k),
            process=(text(ctx, todo, **values),),
            time_limit=text(ctx, limit_key, **values) if limit_key else "",
            where=text(ctx, where_key, **values),
            hotline=cfg.region.hotline,
            id_number=card.id_number if card is not None else None,
            branch=cfg.kiosk.branch_name,
        )
        try:
            receipt.print_notice(notice)
            printed = True
        except DeviceError as exc:
            log.warning("visit %s notice not printed code=%s", ctx.visit_id, exc.code)
    ctx.values["notice_printed"] = printed
    ctx.values["notice_reason"] = reason
    try:
        ask(
            ctx, "notice",
            {"reason_key": reason_key, "missing_keys": [k for k in missing if k], "todo_key": todo,
             "where": text(ctx, where_key, **values) if ctx.translator is None else "",
             "where_key": where_key, "values": values, "printed": printed},
            ("done",), voice_key=reason_key, timeout_s=cfg.visit.notice_timeout_s,
        )
    except VisitEnded:
        pass  # cancel or timeout on the notice itself: the visit is over anyway
    return printed


def on_failure(ctx: VisitContext, exc: Exception) -> None:
    """Every refusal or failure ends on the one-time notice (printed), then the ID card goes back.
    A citizen's own cancel ends quietly (nothing to explain), with the ID card handed back."""
    reason = failure_reason(exc)
    if isinstance(exc, VisitEnded) and exc.outcome == "cancelled":
        return_id_card(ctx, quiet=True)
        return
    if not isinstance(exc, VisitEnded) or exc.outcome in ("notice_printed", "failed"):
        present_notice(ctx, reason)
    return_id_card(ctx, quiet=True)


# --------------------------------------------------------------------------- the end of a visit


def print_voucher(ctx: VisitContext, result_key: str, *, card_number: str | None = None,
                  bank_card_number: str | None = None, notes: Iterable[str] = (), e_card: bool = False,
                  values: Mapping[str, Any] | None = None) -> bool:
    """Prints the business voucher (业务凭证); a paper fault is shown, never hides the result."""
    cfg = visit_config(ctx)
    card = identity(ctx)
    receipt = ctx.services.devices.get("receipt")
    if receipt is None:
        return False
    voucher = Voucher(
        business=text(ctx, f"business.{ctx.business}"),
        completed_at=now_local(),
        kiosk_id=cfg.kiosk.kiosk_id,
        serial_number=ctx.visit_id,
        id_number=card.id_number,
        result=text(ctx, result_key, **dict(values or {})),
        card_number=card_number,
        bank_card_number=bank_card_number,
        qr_url=f"https://e-card.example.invalid/sscard?region={cfg.region.region_code}" if e_card else "",
        qr_caption=text(ctx, "visit.voucher.e_card_hint") if e_card else "",
        branch=cfg.kiosk.branch_name,
        notes=tuple(text(ctx, n, **dict(values or {})) for n in notes),
    )
    try:
        receipt.print_voucher(voucher)
    except DeviceError as exc:
        log.warning("visit %s voucher not printed code=%s", ctx.visit_id, exc.code)
        ctx.values["voucher_printed"] = False
        return False
    ctx.values["voucher_printed"] = True
    ctx.show(Prompt("take_item", {"title_key": "visit.take_voucher.title", "body_key": "visit.take_voucher.body",
                                  "slot": "receipt", "seconds": 5}))
    return True


def return_id_card(ctx: VisitContext, *, quiet: bool = False) -> dict[str, Any]:
    """Step ``return_id``: the citizen takes the ID card back (取回身份证)."""
    reader = ctx.services.devices.get("idreader")
    if reader is None or "identity" not in ctx.values:
        return {"returned": False}
    cfg = visit_config(ctx)
    try:
        answer = ask(
            ctx, "take_item",
            {"title_key": "visit.return_id.title", "body_key": "visit.return_id.body", "slot": "id_card",
             "seconds": cfg.visit.return_id_card_timeout_s},
            (), voice_key="visit.return_id.body", timeout_s=cfg.visit.return_id_card_timeout_s,
            until=ReaderEmpty(reader),
        )
    except VisitEnded:
        if not quiet:
            log.info("visit %s ID card left on the reader", ctx.visit_id)
        return {"returned": False}
    return {"returned": answer.choice == "taken"}
