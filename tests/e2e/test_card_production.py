"""A blank card through the whole simulated production line, every link real: the card printer on
loopback TCP feeds it to the chip station, the printer simulator puts its virtual chip into the
vpcd reader, the chip is personalized through pcscd (keys from the virtual PSAM), the face is
printed, the card is ejected and taken; the ledger records each movement and stays balanced.
Also: the social-security PIN changed from 123456 on that chip through the simulated PIN pad."""

from __future__ import annotations

import threading
from datetime import date
from pathlib import Path

import pytest

from hardware.smartcard.layout import card_number_check_char
from kiosk.app import Kiosk
from kiosk.devices.cardprinter import CardFace, CardPosition, EjectOutcome, Sex
from kiosk.devices.smartcard import CardData, PersonalizationError
from kiosk.ledger import CountSource, Place, StockCount
from kiosk.pins import PinResult, SocialSecurityPinService

pytestmark = pytest.mark.pcsc

FACES = Path(__file__).resolve().parents[3] / "shared" / "testdata" / "faces"


def card_data(number_body: str = "C1234567") -> CardData:
    return CardData(
        application_id="APP-E2E-1",
        card_number=number_body + card_number_check_char(number_body),
        ssn="110101195503120048",
        name="张桂兰",
        sex="2",
        ethnicity_code="01",
        birth_date=date(1955, 3, 12),
        issue_date=date(2026, 11, 23),
        expiry_date=date(2036, 11, 23),
        photo_jpeg=b"\xff\xd8" + bytes(2000) + b"\xff\xd9",
    )


def face(number: str) -> CardFace:
    return CardFace(name="张桂兰", sex=Sex.FEMALE, ssn="110101195503120048", card_number=number,
                    issue_date=date(2026, 11, 23), photo=(FACES / "obama2.jpg").read_bytes())


def balanced(kiosk: Kiosk) -> bool:
    counters = kiosk.core.services.cardprinter.counters()
    count = StockCount.from_levels({"hopper": counters.hopper_count, "reject_bin": counters.reject_bin_count})
    return kiosk.core.services.ledger.count(count, source=CountSource.PRINTER, operator="kiosk").balanced


def test_a_card_is_fed_personalized_printed_ejected_and_taken(demo_kiosk: Kiosk) -> None:
    services = demo_kiosk.core.services
    printer, station, ledger = services.cardprinter, services.smartcard, services.ledger
    printer_sim = demo_kiosk.simulators["cardprinter"]
    fed = printer.feed_to_chip_station()
    blank_number = fed.card_number or ledger.cards_in(Place.HOPPER)[0]
    ledger.feed(blank_number, visit_id="V-e2e")
    assert printer.where_is_card() is CardPosition.CHIP_STATION
    assert station.read_card_basic().is_blank
    result = station.personalize(card_data())
    assert result.card_number == card_data().card_number and result.atr and result.bank_account
    info = station.read_card_basic()
    assert info.card_number == card_data().card_number and not info.is_blank
    printer.print_face(face(result.card_number))
    taker = threading.Timer(0.3, printer_sim.take_card)
    taker.start()
    ejected = printer.eject_to_citizen(timeout_s=10)
    assert ejected.outcome is EjectOutcome.TAKEN
    ledger.issue(blank_number, visit_id="V-e2e")
    assert ledger.card(blank_number).place is Place.ISSUED
    assert balanced(demo_kiosk)
    assert list(Path(demo_kiosk.core.config.cardprinter.sim_output_dir).glob("*.png")), "no printed face"


def test_a_failed_chip_write_sends_the_card_to_the_reject_bin_and_the_ledger_agrees(demo_kiosk: Kiosk) -> None:
    services = demo_kiosk.core.services
    printer, station, ledger = services.cardprinter, services.smartcard, services.ledger
    slot = demo_kiosk.simulators["smartcard"].chip_station
    fed = printer.feed_to_chip_station()
    blank_number = fed.card_number or ledger.cards_in(Place.HOPPER)[0]
    ledger.feed(blank_number, visit_id="V-e2e-2")
    slot.card.inject("tearing", count=1)
    with pytest.raises(PersonalizationError) as failure:
        station.personalize(card_data("C7654321"))
    assert failure.value.reject_card
    rejected = printer.reject("chip_write_failed")
    assert rejected.position is CardPosition.REJECT_BIN
    from kiosk.ledger import RejectReason

    ledger.reject(blank_number, RejectReason.PERSONALIZATION_FAILED, visit_id="V-e2e-2")
    assert ledger.card(blank_number).place is Place.REJECT_BIN
    assert balanced(demo_kiosk)


def test_social_security_pin_changed_from_the_default_on_the_chip_then_verified(demo_kiosk: Kiosk) -> None:
    services = demo_kiosk.core.services
    printer, station = services.cardprinter, services.smartcard
    printer.feed_to_chip_station()
    station.personalize(card_data("C2468135"))
    pad_sim = demo_kiosk.simulators["pinpad"]
    pad_sim.queue_keys("371958E371958E")
    outcome = SocialSecurityPinService(services.pinpad, station, timeout_s=10).set_pin(date(1955, 3, 12))
    assert outcome.result is PinResult.SET
    station.verify_pin(bytearray(b"371958"))
    from kiosk.devices.smartcard import PinWrongError

    with pytest.raises(PinWrongError):
        station.verify_pin(bytearray(b"123456"))


@pytest.mark.parametrize(
    ("fault", "params", "stage", "reason"),
    [
        ("jam", {"stage": "print"}, "print", "JAM"),
        ("jam", {"stage": "eject"}, "eject", "JAM"),
        ("ribbon_out", {}, "print", "MISPRINT"),
        ("card_not_taken", {}, "eject", "NOT_TAKEN"),
        ("hopper_empty", {}, "feed", None),
    ],
)
def test_every_printer_fault_leaves_the_card_in_a_known_place_and_the_ledger_balanced(
    demo_kiosk: Kiosk, fault: str, params: dict, stage: str, reason: str | None
) -> None:
    """The fault hits a card on its way; the error says who must act; the card ends in the
    reject bin (or never left the hopper), the ledger records it, and the counts agree."""
    from kiosk.devices import Audience
    from kiosk.devices.cardprinter import CardPrinterError
    from kiosk.ledger import RejectReason

    services = demo_kiosk.core.services
    printer, station, ledger = services.cardprinter, services.smartcard, services.ledger
    sim = demo_kiosk.simulators["cardprinter"]
    hopper_before = len(ledger.cards_in(Place.HOPPER))
    if stage == "feed":
        sim.inject(fault, count=1, **params)
        with pytest.raises(CardPrinterError) as error:
            printer.feed_to_chip_station()
        assert error.value.audience in (Audience.STAFF, Audience.ENGINEER)
        assert len(ledger.cards_in(Place.HOPPER)) == hopper_before
        assert balanced(demo_kiosk)
        return
    fed = printer.feed_to_chip_station()
    number = fed.card_number or ledger.cards_in(Place.HOPPER)[0]
    ledger.feed(number, visit_id="V-fault")
    station.personalize(card_data("D1357924"))
    if stage == "eject":
        printer.print_face(face(card_data("D1357924").card_number))
    sim.inject(fault, count=1, **params)
    outcome = None
    try:
        if stage == "print":
            printer.print_face(face(card_data("D1357924").card_number))
        else:
            outcome = printer.eject_to_citizen(timeout_s=0.5)
    except CardPrinterError as error:
        assert error.audience in (Audience.STAFF, Audience.ENGINEER)
        assert error.position is not None
    if outcome is None or outcome.outcome is not EjectOutcome.RETRACTED:
        recovered = printer.recover("visit_failed")
        assert recovered.rejected or recovered.found_at is CardPosition.REJECT_BIN
    assert printer.where_is_card() in (CardPosition.NONE, CardPosition.REJECT_BIN)
    ledger.reject(number, RejectReason[reason], visit_id="V-fault")
    assert ledger.card(number).place is Place.REJECT_BIN
    assert balanced(demo_kiosk)
