"""挂失 Loss report (DOMAIN.md, business 3): the card and its fund account are frozen at once.

ID card → (the card-management system reachable? otherwise the notice with the hotline and the
nearest counter: a loss report is never queued, the citizen must know it was not made) → face
consent → face → temporary (临时挂失) or formal (正式挂失) where the region allows both at the kiosk →
confirm → report → the result with the time of the report → voucher → ID card back.

The holder's card state is looked up right after the ID card is read (to fail fast when the network
is down) but nothing about it is shown before the face has matched.
"""

from __future__ import annotations

from typing import Any

from kiosk.backend.api import CardState, LossKind, LossReport, NoticeCode
from kiosk.flows import card_services, common
from kiosk.flows.card_services import local_time_text, mask_card_number, send_once, show_result
from kiosk.flows.common import ask, identity, masked_identity_values, visit_config
from kiosk.visit import Flow, Step, VisitCancelled, VisitContext, VisitEnded

REQUIRES = ("idreader", "photo_decoder", "face", "backend", "receipt")
OFFLINE = "loss_report_offline"


def lookup(ctx: VisitContext) -> dict[str, Any]:
    """Step ``lookup``: the holder's record (offline: the notice, nothing queued)."""
    found = card_services.lookup_person(ctx, OFFLINE)
    return {"card_state": found.card.state.value if found.card else None}


def choose_kind(ctx: VisitContext) -> dict[str, Any]:
    """Step ``kind``: what the region allows at the kiosk for this card's state; asked only when
    there is a choice. A temporary report can still be made formal (临时转正式)."""
    found = card_services.person(ctx)
    card = found.card
    if card is None:
        raise VisitEnded("notice_printed", NoticeCode.NO_CARD.value)
    if card.state is CardState.LOST:
        raise VisitEnded("notice_printed", NoticeCode.CARD_ALREADY_REPORTED_LOST.value)
    if card.state is CardState.SEALED:
        raise VisitEnded("notice_printed", NoticeCode.CARD_SEALED.value)
    if card.state not in (CardState.NORMAL, CardState.NOT_ACTIVATED, CardState.TEMPORARY_LOSS):
        raise VisitEnded("notice_printed", NoticeCode.CARD_STATE_INVALID.value)
    allowed = [LossKind(m) for m in visit_config(ctx).region.loss_report_modes]
    if card.state is CardState.TEMPORARY_LOSS:
        if LossKind.FORMAL not in allowed:
            raise VisitEnded("notice_printed", NoticeCode.CARD_ALREADY_REPORTED_LOST.value)
        allowed = [LossKind.FORMAL]
    if not allowed:
        raise VisitEnded("notice_printed", NoticeCode.LOSS_MODE_NOT_ALLOWED.value)
    if len(allowed) == 1:
        kind = allowed[0]
    else:
        answer = ask(ctx, "choose", {"title_key": "loss.kind.title", "intro_key": "loss.kind.intro",
                                     "options": [(k.value, f"loss.kind.{k.value}", f"loss.kind.{k.value}_detail")
                                                 for k in allowed]},
                     [k.value for k in allowed], voice_key="loss.kind.intro")
        kind = LossKind(answer.choice)
    ctx.values["kind"] = kind
    return {"kind": kind.value, "chosen": len(allowed) > 1}


def confirm(ctx: VisitContext) -> dict[str, Any]:
    """Step ``confirm``: which card is frozen, and that the bank account is frozen with it."""
    card = identity(ctx)
    record = card_services.person(ctx).card
    assert record is not None
    kind: LossKind = ctx.values["kind"]
    shown = masked_identity_values(card)
    rows = [("visit.data.name", shown["name"]), ("visit.data.id_number", shown["id_number"]),
            ("card_services.card_number", mask_card_number(record.card_number))]
    answer = ask(ctx, "confirm", {"title_key": "loss.confirm.title", "intro_key": f"loss.confirm.intro_{kind.value}",
                                  "rows": rows, "note_key": "loss.confirm.note",
                                  "choice_keys": {"report": "loss.confirm.report", "leave": "card_services.leave"},
                                  "secondary": ["leave"]},
                 ("report", "leave"), voice_key="loss.confirm.voice")
    if answer.choice != "report":
        raise VisitCancelled("loss_report_declined")
    return {"confirmed": True}


def report(ctx: VisitContext) -> dict[str, Any]:
    """Step ``report``: 挂失, once (the key is journaled before the call)."""
    card = identity(ctx)
    kind: LossKind = ctx.values["kind"]
    backend = ctx.services.backend
    made: LossReport = send_once(ctx, "reportLoss", "report_loss",
                                 lambda k: backend.report_loss(k, card.id_number, kind), OFFLINE)
    ctx.values["report"] = made
    return {"report_id": made.report_id, "kind": made.kind.value, "card_state": made.card_state.value,
            "reported_at": made.reported_at.isoformat()}


def voucher(ctx: VisitContext) -> dict[str, Any]:
    """Step ``voucher``: the result on screen, then the voucher with the time of the report."""
    made: LossReport = ctx.values["report"]
    values = {"reported_at": local_time_text(made.reported_at)}
    show_result(ctx, f"loss.result.{made.kind.value}", values, voice_key="loss.result.voice")
    notes = ["loss.voucher.reported_at", "loss.voucher.note_frozen", f"loss.voucher.note_{made.kind.value}"]
    printed = common.print_voucher(ctx, f"loss.voucher.result_{made.kind.value}", card_number=made.card_number,
                                   notes=notes, values=values)
    ctx.values["outcome"] = "loss_reported"
    return {"printed": printed}


FLOW = Flow(
    key="loss_report",
    title_key="business.loss_report",
    description_key="business.loss_report.description",
    steps=(
        Step("id_card", common.read_id_card),
        Step("lookup", lookup),
        Step("face_consent", common.face_consent),
        Step("face", card_services.verify_face, common.stop_face),
        Step("kind", choose_kind),
        Step("confirm", confirm),
        Step("report", report),
        Step("voucher", voucher),
        Step("return_id", common.return_id_card),
    ),
    requires=REQUIRES,
    order=40,
    on_failure=common.on_failure,
)
