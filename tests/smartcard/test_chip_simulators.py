"""The simulators themselves (no pcscd): robustness, the card-printer API, fault surface."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardware.smartcard.crypto import Algorithm
from hardware.smartcard.sscard import algorithm_from_fci, card_serial
from hardware.smartcard.virtual import (
    CardPulled,
    ChipStationSlot,
    SmartCardSimulator,
    VirtualPsam,
    blank_card_for,
    personalized_card,
)
from kiosk.devices.smartcard import CardNotSupportedError


@settings(max_examples=300)
@given(st.binary(min_size=0, max_size=64))
def test_virtual_card_answers_any_garbage_with_a_status_word(apdu: bytes) -> None:
    card = blank_card_for(1)
    card.process(b"\x00\xa4\x04\x00\x0f" + "sx1.sh.社会保障".encode("gbk"))
    answer = card.process(apdu)
    assert len(answer) >= 2


@settings(max_examples=200)
@given(st.binary(min_size=0, max_size=64))
def test_virtual_psam_answers_any_garbage_with_a_status_word(apdu: bytes) -> None:
    assert len(VirtualPsam().process(apdu)) >= 2


@given(st.binary(max_size=40))
def test_atr_and_fci_parsers_only_raise_their_typed_error(raw: bytes) -> None:
    for parse in (card_serial, algorithm_from_fci):
        try:
            parse(raw)
        except CardNotSupportedError:
            pass


def test_blank_cards_for_different_serials_differ_and_keep_the_serial_in_the_atr() -> None:
    a, b, c = blank_card_for("0000000000000001"), blank_card_for(2), blank_card_for("HOPPER-0003", "3des")
    assert len({a.atr, b.atr, c.atr}) == 3
    assert card_serial(a.atr) == bytes.fromhex("0000000000000001")
    assert card_serial(c.atr) == b"PER-0003" and c.algorithm is Algorithm.TDES
    assert a.keys != b.keys  # diversified per card


def test_fault_surface_is_the_same_everywhere() -> None:
    card, psam, sim = blank_card_for(5), VirtualPsam(), SmartCardSimulator()
    assert card.fault_names() == sim.fault_names()
    assert set(psam.fault_names()) == set(card.fault_names()) - {"pin_tries_exhausted"}
    with pytest.raises(ValueError):
        card.inject("meteor_strike")
    card.inject("card_pulled", ins=0x84)
    with pytest.raises(CardPulled):
        card.process(bytes.fromhex("0084000008"))
    card.inject("wrong_sw", sw=0x6F00, count=2)
    assert card.process(bytes.fromhex("0084000008")) == b"\x6f\x00"
    card.clear_faults()
    assert card.process(bytes.fromhex("0084000008"))[-2:] == b"\x90\x00"


def test_pin_tries_exhausted_locks_the_virtual_card() -> None:
    card = personalized_card(7)
    card.process(b"\x00\xa4\x04\x00\x0f" + "sx1.sh.社会保障".encode("gbk"))
    card.inject("pin_tries_exhausted")
    assert card.process(bytes.fromhex("0020000003123456")) == b"\x69\x83"


def test_slot_refuses_a_second_card_and_reports_a_missing_vpcd() -> None:
    slot = ChipStationSlot(0, port=1)  # nothing listens on port 1
    with pytest.raises(OSError):
        slot.insert(blank_card_for(9))
    assert not slot.occupied and slot.remove() is None
