"""Scripted visits of the card services after the first issue (``kiosk demo --headless --json
--scenario NAME``): loss report, cancelling it, the progress query, the PIN services and the
activation of a centrally produced card — through the real UI and links, as in
:mod:`kiosk.commands.scenarios`.

Where the citizen's own card is needed, the scripted citizen pushes it into the card printer's
front slot when the kiosk asks for it (``insert_card``): a virtual chip holding that person's card
as the card-management simulator knows it (card number, dates, bank account) and the PIN the
person set on it (``chip`` in ``config/demo-people.json``; the default 123456 on a new card).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import date
from typing import Any

from kiosk.commands.scenarios import REPO, CitizenScript, Scenario, scenario


def _person(key: str) -> dict[str, Any]:
    data = json.loads((REPO / "config" / "demo-people.json").read_text(encoding="utf-8"))
    return next(p for p in data["people"] if p["key"] == key)


def citizen_card(kiosk: Any, person_key: str) -> tuple[str, Any]:
    """The person's current card (as the card-management simulator holds it) as a virtual chip card:
    (card number, VirtualSocialSecurityCard). SIMULATOR only."""
    from hardware.smartcard.crypto import Algorithm
    from hardware.smartcard.virtual import blank_card
    from hardware.smartcard.virtual.sscard import PinState

    person = _person(person_key)
    state = kiosk.simulators["backend"].state
    row = state.query("SELECT * FROM cards WHERE id_number = ? AND state != 'cancelled' ORDER BY rowid DESC LIMIT 1",
                      (person["id_number"],))[0]
    holder = state.query("SELECT sex, ethnicity_code FROM persons WHERE id_number = ?", (person["id_number"],))[0]
    config = kiosk.core.config
    number = str(row["card_number"])
    serial = hashlib.sha256(number.encode()).digest()[:8]  # distinct from every blank card in the hopper
    card = blank_card(serial, algorithm=Algorithm(config.smartcard.sim_algorithm), pin_tries=config.region.pin_tries)
    card.personalize_directly(
        card_number=number, ssn=person["id_number"], name=person["name"], sex=holder["sex"],
        ethnicity=holder["ethnicity_code"], birth_date=date.fromisoformat(person["birth_date"]),
        issue_date=date.fromisoformat(row["issued_on"]), expiry_date=date.fromisoformat(row["expires_on"]),
    )
    chip = person.get("chip") or {}
    tries = int(chip.get("ss_pin_tries_left", config.region.pin_tries))
    card.pin = PinState(str(chip.get("ss_pin", "123456")).encode(), config.region.pin_tries, tries)
    if row["bank_account"]:
        card.pan = str(row["bank_account"])  # the bank's account, pre-personalized on the card (tag 5A)
    return number, card


def push_own_card(person_key: str, *, new_pin: str | None = None, pin_entries: int = 0) -> Callable[[Any, str], None]:
    """``during`` hook: when the kiosk asks for the card, the citizen pushes it into the slot. With
    ``new_pin``: once the kiosk shows the result after ``pin_entries`` PIN entries, the chip itself
    must hold the new PIN with a full try counter (else the scenario fails)."""
    state: dict[str, Any] = {"entries": 0}

    def during(kiosk: Any, screen: str) -> None:
        if screen == "insert_card":
            number, chip = citizen_card(kiosk, person_key)
            state["chip"] = chip
            if not kiosk.simulators["cardprinter"].insert_from_front(number, chip):
                raise RuntimeError("the card slot is occupied")
        elif screen == "pin_entry":
            state["entries"] += 1
        elif screen == "message" and new_pin is not None and state["entries"] >= pin_entries and "chip" in state:
            pin = state["chip"].pin
            if pin.digits != new_pin.encode() or pin.tries_left != pin.tries_max:
                raise RuntimeError("the chip does not hold the new PIN with a full try counter")

    return during


# The scripted citizen's liveness frames reach the face worker much later on a busy shared test
# machine than a person's movements on a kiosk: these visits test the business, not liveness speed,
# so they allow 25 s instead of the configured 15 s (production keeps [face] as configured).
FACE_ON_A_BUSY_MACHINE: dict[str, dict[str, Any]] = {"face": {"liveness_time_limit_s": 25.0}}


def with_face(**sections: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {**FACE_ON_A_BUSY_MACHINE, **sections}


def backend_unreachable(kiosk: Any) -> None:
    """The card-management system cannot be reached (its server stops; its records stay)."""
    kiosk.simulators["backend"].stop()


def bank_answers_later(kiosk: Any) -> None:
    """The bank answers the next account activation later ("pending", an hour in the simulator)."""
    kiosk.simulators["backend"].inject("bank_pending", count=1, operation="activateBankAccount")


scenario(Scenario("loss_report_temporary", "loss_report", "loss_reported",
                  "临时挂失: the card and its bank account frozen at once; voucher with the time of the report",
                  CitizenScript(person="active_card", choices={"loss.kind.title": "temporary"}), config=with_face()))
scenario(Scenario("loss_report_formal", "loss_report", "loss_reported",
                  "正式挂失: frozen at once; a replacement may follow",
                  CitizenScript(person="active_card", choices={"loss.kind.title": "formal"}), config=with_face()))
scenario(Scenario("loss_report_offline", "loss_report", "notice_printed",
                  "挂失 with the card-management system unreachable: nothing queued, the notice gives the hotline "
                  "and the nearest counter", CitizenScript(person="active_card"), setup=backend_unreachable))
scenario(Scenario("cancel_loss_report", "cancel_loss_report", "loss_cancelled",
                  "解挂 of a temporary loss report: the card and its bank account usable again",
                  CitizenScript(person="cancel_loss_report"), config=with_face()))
scenario(Scenario("cancel_loss_after_replacement", "cancel_loss_report", "notice_printed",
                  "解挂 refused: a replacement was already applied for (one-time notice)",
                  CitizenScript(person="cancel_loss_after_replacement"), config=with_face()))
scenario(Scenario("progress_query", "progress_query", "progress_shown",
                  "制卡进度: an application made at a counter, in central production, with the regional time limit; "
                  "printed", CitizenScript(person="progress_query")))
scenario(Scenario("pin_change", "pin_change", "pin_changed",
                  "修改社保密码: the card in the slot, the current PIN checked by the chip, the new one twice",
                  CitizenScript(person="active_card", pins=("246813", "371958", "371958")),
                  during=push_own_card("active_card", new_pin="371958", pin_entries=3)))
scenario(Scenario("pin_locked", "pin_change", "notice_printed",
                  "the social-security PIN is locked and this region resets it only at the counter: the card back, "
                  "one-time notice", CitizenScript(person="pin_locked"), during=push_own_card("pin_locked")))
scenario(Scenario("pin_reset", "pin_change", "pin_reset",
                  "a locked PIN reset at the kiosk where the region allows it: face verification, PIN reload "
                  "through the PSAM", CitizenScript(person="pin_locked", pins=("371958", "371958")),
                  during=push_own_card("pin_locked", new_pin="371958", pin_entries=2),
                  config=with_face(region={"kiosk_pin_reset_allowed": True})))
scenario(Scenario("financial_pin_change", "pin_change", "pin_changed",
                  "修改金融密码 through the bank: PIN blocks only, the bank checks the current PIN",
                  CitizenScript(person="active_card", choices={"pin_service.title": "fin_change"},
                                pins=("580731", "592604", "592604")),
                  during=push_own_card("active_card")))
scenario(Scenario("activate_central_card", "activation", "card_activated",
                  "领卡启用: the new card in the slot, both PINs set, both applications activated",
                  CitizenScript(person="activate_central_card"),
                  during=push_own_card("activate_central_card", new_pin="371958", pin_entries=4), config=with_face()))
scenario(Scenario("activation_pending", "activation", "card_activated",
                  "领卡启用 while the bank answers later: the voucher says pending, the confirmation waits in the outbox",
                  CitizenScript(person="activate_central_card"), setup=bank_answers_later,
                  during=push_own_card("activate_central_card", new_pin="371958", pin_entries=4), config=with_face()))
