"""PIN services (LD/T 6001.5) on the chip through pcscd + vpcd, both key back ends."""

from __future__ import annotations

import pytest
from chip_helpers import ALGORITHMS, BACKENDS, next_serial

from hardware.smartcard.crypto import Algorithm
from hardware.smartcard.virtual import personalized_card
from kiosk.devices.smartcard import PinBlockedError, PinFormatError, PinWrongError

pytestmark = pytest.mark.pcsc


def pin(text: str) -> bytearray:
    return bytearray(text.encode())


@pytest.mark.parametrize("algorithm", ALGORITHMS, ids=lambda a: a.value)
def test_default_pin_verifies_and_wrong_pins_count_down_to_the_lock(rig, algorithm: Algorithm) -> None:
    rig.insert(personalized_card(next_serial(), algorithm=algorithm, pin_tries=3))
    station = rig.station("hsm")
    station.verify_pin(pin("123456"))
    assert station.pin_tries_left() == 3
    with pytest.raises(PinWrongError) as caught:
        station.verify_pin(pin("000000"))
    assert caught.value.tries_left == 2 and caught.value.sw == 0x63C2
    with pytest.raises(PinWrongError):
        station.verify_pin(pin("000000"))
    with pytest.raises(PinBlockedError):
        station.verify_pin(pin("000000"))  # 63C0: the last try locked it
    with pytest.raises(PinBlockedError) as locked:
        station.verify_pin(pin("123456"))  # even the right PIN: 6983
    assert locked.value.sw == 0x6983 and station.pin_tries_left() == 0


def test_a_good_pin_resets_the_try_counter(rig) -> None:
    rig.insert(personalized_card(next_serial()))
    station = rig.station("psam")
    with pytest.raises(PinWrongError):
        station.verify_pin(pin("999999"))
    assert station.pin_tries_left() == 5
    station.verify_pin(pin("123456"))
    assert station.pin_tries_left() == 6


@pytest.mark.parametrize("algorithm", ALGORITHMS, ids=lambda a: a.value)
def test_change_pin_needs_the_old_pin(rig, algorithm: Algorithm) -> None:
    rig.insert(personalized_card(next_serial(), algorithm=algorithm))
    station = rig.station("psam")
    with pytest.raises(PinWrongError):
        station.change_pin(pin("111111"), pin("24680"))
    station.change_pin(pin("123456"), pin("24680"))
    station.verify_pin(pin("24680"))
    with pytest.raises(PinWrongError):
        station.verify_pin(pin("123456"))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("algorithm", ALGORITHMS, ids=lambda a: a.value)
def test_reload_sets_a_new_pin_on_a_locked_card(rig, algorithm: Algorithm, backend: str) -> None:
    card = rig.insert(personalized_card(next_serial(), algorithm=algorithm))
    card.inject("pin_tries_exhausted")
    station = rig.station(backend)
    with pytest.raises(PinBlockedError):
        station.verify_pin(pin("123456"))
    station.reload_pin(pin("13579246"))
    assert station.pin_tries_left() == 6
    station.verify_pin(pin("13579246"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_unblock_resets_the_counter_only_with_the_current_pin(rig, backend: str) -> None:
    card = rig.insert(personalized_card(next_serial(), algorithm=Algorithm.SM4, pin="8642"))
    card.inject("pin_tries_exhausted")
    station = rig.station(backend)
    with pytest.raises(PinBlockedError):
        station.unblock_pin(pin("1111"))
    assert station.pin_tries_left() == 0
    station.unblock_pin(pin("8642"))
    assert station.pin_tries_left() == 6
    station.verify_pin(pin("8642"))


def test_pin_buffers_are_wiped_on_success_and_on_error(rig) -> None:
    rig.insert(personalized_card(next_serial()))
    station = rig.station("hsm")
    good, bad, old, new, short = pin("123456"), pin("000000"), pin("123456"), pin("654321"), pin("12")
    station.verify_pin(good)
    with pytest.raises(PinWrongError):
        station.verify_pin(bad)
    station.change_pin(old, new)
    with pytest.raises(PinFormatError):
        station.verify_pin(short)
    reload = pin("112233")
    station.reload_pin(reload)
    for buffer in (good, bad, old, new, short, reload):
        assert buffer == bytearray(len(buffer))


def test_reload_with_bad_authentication_data_is_refused_by_the_card(rig) -> None:
    rig.insert(personalized_card(next_serial(), city_code="510100"))
    station = rig.station("hsm")
    station.key_backend.transport.key_work = lambda request: bytes(8 if request.operation != "mac" else 4)
    from kiosk.devices.smartcard import CardAuthenticationError

    with pytest.raises(CardAuthenticationError) as caught:
        station.reload_pin(pin("123456"))
    assert caught.value.sw == 0x6300
