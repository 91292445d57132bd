"""解挂 Cancel a loss report (DOMAIN.md, business 3): the card and its fund account usable again —
only **before** a replacement was applied for; after that the card-management system refuses and
the citizen gets the one-time notice (the replacement card is on its way).

ID card → lookup (offline: notice) → face consent → face → the card must be reported lost →
confirm → cancel → the result → voucher (the electronic card hint when the card is active again) →
ID card back.
"""

from __future__ import annotations

from typing import Any

from kiosk.backend.api import CardState, LossCancellation, NoticeCode
from kiosk.flows import card_services, common
from kiosk.flows.card_services import local_time_text, mask_card_number, send_once, show_result
from kiosk.flows.common import ask, identity, masked_identity_values
from kiosk.visit import Flow, Step, VisitCancelled, VisitContext, VisitEnded

REQUIRES = ("idreader", "photo_decoder", "face", "backend", "receipt")
OFFLINE = "service_unavailable_offline"


def lookup(ctx: VisitContext) -> dict[str, Any]:
    found = card_services.lookup_person(ctx, OFFLINE)
    return {"card_state": found.card.state.value if found.card else None}


def confirm(ctx: VisitContext) -> dict[str, Any]:
    """Step ``confirm``: the card must be reported lost (临时挂失 or 挂失); the citizen confirms."""
    card = identity(ctx)
    record = card_services.person(ctx).card
    if record is None:
        raise VisitEnded("notice_printed", NoticeCode.NO_CARD.value)
    if record.state not in (CardState.TEMPORARY_LOSS, CardState.LOST):
        raise VisitEnded("notice_printed", NoticeCode.CARD_NOT_REPORTED_LOST.value)
    kind = "temporary" if record.state is CardState.TEMPORARY_LOSS else "formal"
    shown = masked_identity_values(card)
    rows = [("visit.data.name", shown["name"]), ("visit.data.id_number", shown["id_number"]),
            ("card_services.card_number", mask_card_number(record.card_number))]
    answer = ask(ctx, "confirm", {"title_key": "unloss.confirm.title", "intro_key": f"unloss.confirm.intro_{kind}",
                                  "rows": rows, "note_key": "unloss.confirm.note",
                                  "choice_keys": {"cancel_loss": "unloss.confirm.do", "leave": "card_services.leave"},
                                  "secondary": ["leave"]},
                 ("cancel_loss", "leave"), voice_key="unloss.confirm.voice")
    if answer.choice != "cancel_loss":
        raise VisitCancelled("cancel_loss_declined")
    return {"kind": kind}


def cancel(ctx: VisitContext) -> dict[str, Any]:
    """Step ``cancel``: 解挂, once. A replacement already applied for → the notice."""
    card = identity(ctx)
    backend = ctx.services.backend
    done: LossCancellation = send_once(ctx, "cancelLoss", "cancel_loss",
                                       lambda k: backend.cancel_loss(k, card.id_number), OFFLINE)
    ctx.values["cancellation"] = done
    return {"card_state": done.card_state.value, "cancelled_at": done.cancelled_at.isoformat()}


def voucher(ctx: VisitContext) -> dict[str, Any]:
    done: LossCancellation = ctx.values["cancellation"]
    active = done.card_state is CardState.NORMAL
    values = {"cancelled_at": local_time_text(done.cancelled_at)}
    show_result(ctx, "unloss.result", values, voice_key="unloss.result_voice")
    notes = ["unloss.voucher.cancelled_at", "unloss.voucher.note_usable" if active else "unloss.voucher.note_not_activated"]
    printed = common.print_voucher(ctx, "unloss.voucher.result", card_number=done.card_number, notes=notes,
                                   e_card=active, values=values)
    ctx.values["outcome"] = "loss_cancelled"
    return {"printed": printed, "e_card": active}


FLOW = Flow(
    key="cancel_loss_report",
    title_key="business.cancel_loss_report",
    description_key="business.cancel_loss_report.description",
    steps=(
        Step("id_card", common.read_id_card),
        Step("lookup", lookup),
        Step("face_consent", common.face_consent),
        Step("face", card_services.verify_face, common.stop_face),
        Step("confirm", confirm),
        Step("cancel", cancel),
        Step("voucher", voucher),
        Step("return_id", common.return_id_card),
    ),
    requires=REQUIRES,
    order=50,
    on_failure=common.on_failure,
)
