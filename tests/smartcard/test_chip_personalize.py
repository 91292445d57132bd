"""Personalization on the real pcscd + vpcd stack with the virtual cards (simulators)."""

from __future__ import annotations

import logging
import time

import pytest
from chip_helpers import ALGORITHMS, BACKENDS, next_serial, sample_card_data, sample_photo

from hardware.smartcard.apdu import wait_for_card
from hardware.smartcard.crypto import Algorithm
from hardware.smartcard.sscard import ChipStation
from hardware.smartcard.virtual import VirtualPsam, blank_card_for, personalized_card
from kiosk.devices.smartcard import (
    CardNotBlankError,
    ChipAlgorithm,
    PersonalizationError,
    ReadBackMismatchError,
    SocialSecurityCardStation,
)

pytestmark = pytest.mark.pcsc


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("algorithm", ALGORITHMS, ids=lambda a: a.value)
def test_blank_card_is_personalized_read_back_and_reported(rig, algorithm: Algorithm, backend: str) -> None:
    card = rig.insert(blank_card_for(next_serial(), algorithm))
    station = rig.station(backend)
    assert isinstance(station, SocialSecurityCardStation)
    before = station.read_card_basic()
    assert before.is_blank and before.algorithm is ChipAlgorithm(algorithm.value)
    photo = sample_photo()
    data = sample_card_data(photo)

    result = station.personalize(data)

    assert result.card_number == data.card_number
    assert result.card_identification_code == card.card_identification_code
    assert result.atr == card.atr.hex().upper()
    assert result.bank_account == card.pan
    assert result.algorithm is ChipAlgorithm(algorithm.value)
    after = station.read_card_basic()
    assert (after.card_number, after.ssn, after.name, after.sex) == (
        data.card_number,
        data.ssn,
        data.name,
        "2",
    )
    assert (after.issue_date, after.expiry_date, after.birth_date) == (
        data.issue_date,
        data.expiry_date,
        data.birth_date,
    )
    assert after.birth_place == data.ssn[:6] and after.spec_version == "3.00" and after.ethnicity_code == "01"
    assert bytes(card.photo[: len(photo)]) == photo
    if backend == "hsm":
        assert rig.hsm.calls > 10  # the key work really went through the HSM transport


def test_psam_holding_region_diversified_keys_is_sent_fewer_factors(rig) -> None:
    rig.swap_psam(VirtualPsam(key_level=2))
    rig.insert(blank_card_for(next_serial(), Algorithm.SM4))
    with pytest.raises(PersonalizationError) as caught:
        rig.station("psam", key_level=0, auto_level=False).personalize(sample_card_data())
    assert caught.value.sw == 0x6700 and caught.value.reject_card
    rig.remove()
    rig.insert(blank_card_for(next_serial(), Algorithm.SM4))
    backend = rig.backend("psam", key_level=0)  # finds level 2 by itself
    assert ChipStation(rig.sim.card_reader, backend).personalize(sample_card_data()).card_number
    assert backend.key_level == 2


def test_a_personalized_card_is_not_personalized_again(rig) -> None:
    rig.insert(personalized_card(next_serial()))
    with pytest.raises(CardNotBlankError) as caught:
        rig.station().personalize(sample_card_data())
    assert caught.value.reject_card


# Wrong status word at chosen steps: (ins, p1) of the command that fails, and what it is.
WRONG_SW_STEPS = [
    pytest.param(0xA4, 0x04, id="select-ssse"),
    pytest.param(0xB2, 0x01, id="read-card-identification-code"),
    pytest.param(0x88, None, id="internal-auth"),
    pytest.param(0x82, None, id="external-auth"),
    pytest.param(0xDC, 0x02, id="write-first-record"),
    pytest.param(0xDC, 0x0D, id="write-last-record"),
    pytest.param(0xD6, None, id="write-photo"),
    pytest.param(0xB0, None, id="read-back-photo"),
]


@pytest.mark.parametrize("ins,p1", WRONG_SW_STEPS)
def test_wrong_status_word_at_any_step_rejects_the_card(rig, ins: int, p1: int | None) -> None:
    card = rig.insert(blank_card_for(next_serial(), Algorithm.SM4))
    card.inject("wrong_sw", sw=0x6581, ins=ins, p1=p1)
    with pytest.raises(PersonalizationError) as caught:
        rig.station().personalize(sample_card_data(sample_photo(600)))
    assert caught.value.reject_card
    assert caught.value.sw == 0x6581
    assert card.faults.fired == ["wrong_sw"]


@pytest.mark.slow
def test_every_script_step_failing_ends_in_a_typed_error(rig) -> None:
    """Fails the n-th written record for each record, counted from the script's own writes."""
    for skip in range(12):
        card = rig.insert(blank_card_for(next_serial(), Algorithm.TDES))
        card.inject("wrong_sw", sw=0x6A84, ins=0xDC, skip=skip)
        with pytest.raises(PersonalizationError) as caught:
            rig.station("hsm").personalize(sample_card_data())
        assert caught.value.sw == 0x6A84 and caught.value.step.startswith("write.EF0")
        assert card.write_count == skip
        rig.remove()


def test_psam_failure_rejects_the_card(rig) -> None:
    rig.insert(blank_card_for(next_serial(), Algorithm.SM4))
    rig.sim.inject("wrong_sw", target="psam", sw=0x6A88, ins=0xDE, skip=3)
    with pytest.raises(PersonalizationError) as caught:
        rig.station("psam").personalize(sample_card_data())
    assert caught.value.reject_card and caught.value.sw == 0x6A88


@pytest.mark.parametrize("skip", [0, 5, 11])
def test_card_pulled_mid_script_is_reported_for_rejection(rig, skip: int) -> None:
    card = rig.insert(blank_card_for(next_serial(), Algorithm.SM4))
    card.inject("card_pulled", ins=0xDC, skip=skip)
    with pytest.raises(PersonalizationError) as caught:
        rig.station().personalize(sample_card_data())
    assert caught.value.reject_card
    assert caught.value.code == "smartcard.card_removed"
    assert card.write_count == skip


@pytest.mark.parametrize("ins,p1", [(0xDC, 0x09), (0xD6, None)], ids=["name-record", "photo"])
def test_torn_write_leaves_a_partial_record_and_a_rejected_card(rig, ins: int, p1: int | None) -> None:
    card = rig.insert(blank_card_for(next_serial(), Algorithm.SM4))
    card.inject("tearing", ins=ins, p1=p1)
    data = sample_card_data(sample_photo(800))
    with pytest.raises(PersonalizationError) as caught:
        rig.station().personalize(data)
    assert caught.value.reject_card and caught.value.code == "smartcard.card_removed"
    # The chip really holds a half-written item: a rejected card, never a good one.
    if ins == 0xDC:
        name = card.records[0x09]
        assert name != bytes(30) and name[:4] == data.name.encode("gbk")[:4] and name[-1:] == b"\x00"
    else:
        assert card.photo[:2] == b"\xff\xd8" and bytes(card.photo[200:240]) == bytes(40)
    # Put back into the reader, it is no longer blank enough to be taken for good.
    assert rig.sim.chip_station.wait_empty(5)
    assert wait_for_card(rig.sim.card_reader, 5, present=False)
    rig.insert(card)
    with pytest.raises((PersonalizationError, CardNotBlankError)):
        rig.station().personalize(data)


def test_read_back_mismatch_is_detected(rig, monkeypatch) -> None:
    card = rig.insert(blank_card_for(next_serial(), Algorithm.TDES))
    original = card._update_record  # a card that acknowledges a write it did not keep

    def forgetful(cla, apdu, p1, p2, data, tearing):  # type: ignore[no-untyped-def]
        answer = original(cla, apdu, p1, p2, data, tearing)
        if p1 == 0x0A:
            card.records[0x0A] = b"9"
        return answer

    monkeypatch.setattr(card, "_update_record", forgetful)
    with pytest.raises(ReadBackMismatchError) as caught:
        rig.station("hsm").personalize(sample_card_data())
    assert caught.value.step == "readback.EF06.0A" and caught.value.reject_card


def test_slow_card_still_personalizes(rig) -> None:
    card = rig.insert(blank_card_for(next_serial(), Algorithm.SM4))
    card.inject("slow", count=5, delay_s=0.05)
    started = time.monotonic()
    result = rig.station("hsm").personalize(sample_card_data())
    assert result.card_number and time.monotonic() - started >= 0.25


def test_a_card_too_slow_for_the_deadline_is_rejected(rig) -> None:
    card = rig.insert(blank_card_for(next_serial(), Algorithm.SM4))
    card.inject("slow", delay_s=0.02)
    station = rig.station("hsm")
    station.script_deadline_s = 0.3
    with pytest.raises(PersonalizationError) as caught:
        station.personalize(sample_card_data())
    assert caught.value.code == "smartcard.card_too_slow" and caught.value.reject_card


def test_apdus_carrying_keys_or_pins_are_never_logged(rig, caplog) -> None:
    rig.insert(blank_card_for(next_serial(), Algorithm.SM4))
    caplog.set_level(logging.DEBUG)
    station = rig.station("psam")
    data = sample_card_data()
    station.personalize(data)
    station.verify_pin(bytearray(b"123456"))
    text = caplog.text
    assert "ins=20 sw=9000" in text  # INS and SW are logged ...
    for secret in (data.ssn, data.name, "123456", data.card_number):  # ... nothing else
        assert secret not in text
