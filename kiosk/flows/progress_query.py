"""制卡进度查询 Progress query (DOMAIN.md, business 4): the stage of an application made elsewhere —
submitted, in production, ready at which branch, mailed — with the regional time limits from the
configuration ([region.production]); printable.

ID card → query → the applications on screen (print or done) → voucher when asked → ID card back.
No face verification: the query changes nothing and shows only the stage, dates and the pickup
branch of the ID card holder's own applications (as at a counter's query window, the ID card is
the credential).
"""

from __future__ import annotations

from typing import Any

from kiosk.backend.api import BackendAmbiguous, BackendRefused, BackendTransient, Business, Progress, ProgressItem
from kiosk.flows import card_services, common
from kiosk.flows.card_services import mask_card_number
from kiosk.flows.common import ask, identity, visit_config
from kiosk.visit import Flow, Step, VisitContext, VisitEnded

REQUIRES = ("idreader", "backend", "receipt")
OFFLINE = "service_unavailable_offline"

# The way of a centrally produced card; ready_for_pickup and mailed are the two ends of stage 3.
CENTRAL_TRACK = ("submitted", "in_production", "ready", "collected")
_TRACK_INDEX = {"submitted": 0, "in_production": 1, "ready_for_pickup": 2, "mailed": 2, "collected": 3}


def query(ctx: VisitContext) -> dict[str, Any]:
    """Step ``query``: 制卡进度 of every application of the holder."""
    card = identity(ctx)
    card_services.checking(ctx, "progress.checking")
    try:
        progress: Progress = ctx.services.backend.query_progress(card.id_number)
    except BackendRefused as refused:
        raise VisitEnded("notice_printed", refused.notice.value) from refused
    except (BackendTransient, BackendAmbiguous) as down:
        raise VisitEnded("notice_printed", OFFLINE) from down
    ctx.values["progress"] = progress
    return {"applications": len(progress.items), "stages": [i.stage.value for i in progress.items]}


def _limit(ctx: VisitContext, item: ProgressItem) -> tuple[str, dict[str, Any]]:
    production = visit_config(ctx).region.production
    if item.business is Business.REPLACEMENT:
        return "progress.limit.working_days", {"days": production.replacement_working_days}
    unit = "working_days" if production.central_production_working_days else "days"
    return f"progress.limit.{unit}", {"days": production.central_production_days}


def _track(item: ProgressItem) -> list[tuple[str, str]]:
    stage = item.stage.value
    if stage not in _TRACK_INDEX:  # issued on the spot, or failed: no production track
        return [(f"progress.stage.{stage}", "now")]
    now = _TRACK_INDEX[stage]
    names = [("progress.stage.mailed" if stage == "mailed" and n == 2 else f"progress.track.{name}")
             for n, name in enumerate(CENTRAL_TRACK)]
    return [(key, "done" if n < now else "now" if n == now else "next") for n, key in enumerate(names)]


def shown_item(ctx: VisitContext, item: ProgressItem) -> dict[str, Any]:
    """One application as the ``progress_result`` screen shows it: message keys, masked values."""
    stage = item.stage.value
    facts: list[tuple[str, str]] = [("progress.row.submitted_on", item.submitted_on.isoformat())]
    if item.expected_ready_on is not None and stage in ("submitted", "in_production"):
        facts.append(("progress.row.expected_on", item.expected_ready_on.isoformat()))
    if item.branch:
        facts.append(("progress.row.branch", item.branch))
    limit_key, limit_values = _limit(ctx, item)
    return {"business_key": f"progress.business.{item.business.value}", "stage": stage, "stage_key": f"progress.stage.{stage}",
            "track": _track(item), "facts": facts, "note_key": f"progress.note.{stage}",
            "note_values": {"branch": item.branch or ""},
            # The regional time limit, while the card is still being made.
            "limit_key": limit_key if stage in ("submitted", "in_production") else "", "limit_values": limit_values}


def show(ctx: VisitContext) -> dict[str, Any]:
    """Step ``show``: the applications, newest first; the citizen prints them or is done."""
    progress: Progress = ctx.values["progress"]
    items = [shown_item(ctx, item) for item in reversed(progress.items)]
    answer = ask(ctx, "progress_result", {"title_key": "progress.title", "intro_key": "progress.intro",
                                          "values": {"count": len(items)}, "items": items,
                                          "choice_keys": {"print": "progress.print", "done": "progress.done"},
                                          "secondary": ["done"]},
                 ("print", "done"), voice_key="progress.intro_voice")
    ctx.values["outcome"] = "progress_shown"
    ctx.values["print"] = answer.choice == "print"
    return {"print": answer.choice == "print"}


def voucher(ctx: VisitContext) -> dict[str, Any]:
    """Step ``voucher``: printed when asked (可打印): one paragraph per application."""
    if not ctx.values.get("print"):
        return {"printed": False}
    progress: Progress = ctx.values["progress"]
    notes: list[str] = []
    for item in reversed(progress.items):
        shown = shown_item(ctx, item)
        notes.append(common.text(ctx, "progress.voucher.item", business=common.text(ctx, shown["business_key"]),
                                 stage=common.text(ctx, shown["stage_key"])))
        notes.append(common.text(ctx, "progress.voucher.submitted", submitted_on=item.submitted_on.isoformat()))
        if item.expected_ready_on is not None and shown["limit_key"]:
            notes.append(common.text(ctx, "progress.voucher.expected", expected_on=item.expected_ready_on.isoformat(),
                                     limit=common.text(ctx, shown["limit_key"], **shown["limit_values"])))
        if item.branch:
            notes.append(common.text(ctx, "progress.voucher.branch", branch=item.branch))
        if item.card_number:
            notes.append(common.text(ctx, "progress.voucher.card", card_number=mask_card_number(item.card_number)))
    latest = progress.items[-1]
    printed = common.print_voucher(ctx, f"progress.voucher.result_{latest.stage.value}", notes=notes)
    return {"printed": printed}


FLOW = Flow(
    key="progress_query",
    title_key="business.progress_query",
    description_key="business.progress_query.description",
    steps=(
        Step("id_card", common.read_id_card),
        Step("query", query),
        Step("show", show),
        Step("voucher", voucher),
        Step("return_id", common.return_id_card),
    ),
    requires=REQUIRES,
    order=60,
    on_failure=common.on_failure,
)
