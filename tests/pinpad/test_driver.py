"""The driver against the simulated KMY3501 over a real pseudo-terminal link."""

from __future__ import annotations

import pytest

from hardware.pinpad import pinblock
from hardware.pinpad.commandset import command_set_names, get_command_set
from hardware.pinpad.driver import EncryptedPinPad
from hardware.pinpad.simulator import PinPadSimulator
from kiosk.devices import DeviceState
from kiosk.devices.pinpad import (
    KeyAlgorithm,
    KeyEvent,
    KeyEventKind,
    PinEntryCancelledError,
    PinEntryTimeoutError,
    PinPad,
    PinPadChecksumError,
    PinPadError,
    PinPadKeyCheckError,
    PinPadKeysMissingError,
    PinPadNoReplyError,
    PinPadSelfTestError,
)
from tests.pinpad.conftest import ACCOUNT, MASTER_3DES, PIN_KEY, SLOT_3DES, SLOT_SM4, secret

TDES, SM4 = KeyAlgorithm.TDES, KeyAlgorithm.SM4


def test_driver_satisfies_the_core_protocol(pad: EncryptedPinPad) -> None:
    assert isinstance(pad, PinPad)


def test_command_set_is_chosen_by_name() -> None:
    assert "kmy3501" in command_set_names()
    with pytest.raises(PinPadError) as err:
        get_command_set("no-such-pad")
    assert err.value.code == "pinpad.unknown_command_set"


def test_fresh_pad_reports_keys_missing(pad: EncryptedPinPad) -> None:
    status = pad.status()
    assert status.state is DeviceState.FAULT
    assert status.code == "pinpad.keys_missing"


def test_info_lists_keys_by_check_value(keyed_pad: EncryptedPinPad) -> None:
    info = keyed_pad.info()
    assert info.model == "KMY3501B"
    assert info.serial == "SIM00003501"
    assert info.firmware.startswith("SIM")
    assert info.keys is not None
    found = {(s.master_index, s.working_index, s.algorithm): s.check_value for s in info.keys}
    assert found == {
        (0, None, TDES): pinblock.check_value(MASTER_3DES, TDES),
        (0, 1, TDES): pinblock.check_value(PIN_KEY, TDES),
        (1, None, SM4): found[(1, None, SM4)],
        (1, 1, SM4): pinblock.check_value(PIN_KEY, SM4),
    }
    assert keyed_pad.status().state is DeviceState.READY


def test_master_key_load_returns_check_value_and_wipes_the_key(pad: EncryptedPinPad) -> None:
    key = bytearray(MASTER_3DES)
    kcv = pad.load_master_key(3, key, TDES)
    assert kcv == pinblock.check_value(MASTER_3DES, TDES)
    assert key == bytearray()


def test_wrong_expected_check_value_is_refused(pad: EncryptedPinPad) -> None:
    pad.load_master_key(0, bytearray(MASTER_3DES), TDES)
    with pytest.raises(PinPadKeyCheckError):
        pad.load_working_key(0, 2, pinblock.encrypt_ecb(MASTER_3DES, TDES, PIN_KEY), TDES, "00000000")


def test_working_key_without_master_key_is_keys_missing(pad: EncryptedPinPad) -> None:
    with pytest.raises(PinPadKeysMissingError):
        pad.load_working_key(5, 1, bytes(16), TDES)


@pytest.mark.parametrize(
    ("slot", "algorithm", "expected"),
    [(SLOT_3DES, TDES, "4E1BC4F389A920E4"), (SLOT_SM4, SM4, "CC74BCB2DC250277D7B916DF3D2009CA")],
)
def test_pin_block_known_answer_over_the_link(
    sim: PinPadSimulator,
    keyed_pad: EncryptedPinPad,
    slot: tuple[int, int],
    algorithm: KeyAlgorithm,
    expected: str,
) -> None:
    secret("582914")
    secret(bytes.fromhex(expected))
    sim.queue_keys("582914E")
    block = keyed_pad.read_pin_block(ACCOUNT, slot, algorithm, 6, 10)
    assert bytes(block).hex().upper() == expected
    assert block.algorithm is algorithm


def test_key_events_one_per_key_with_dot_count(sim: PinPadSimulator, keyed_pad: EncryptedPinPad) -> None:
    events: list[KeyEvent] = []
    sim.queue_keys("13C246813E")
    keyed_pad.read_pin_block(ACCOUNT, SLOT_3DES, TDES, 6, 10, events.append)
    kinds = [(e.kind, e.digits_entered) for e in events]
    d, c, e = KeyEventKind.DIGIT, KeyEventKind.CLEAR, KeyEventKind.ENTER
    assert kinds == [(d, 1), (d, 2), (c, 1), (d, 2), (d, 3), (d, 4), (d, 5), (d, 6), (e, 6)]


def test_listener_gets_events_and_enter_early_is_ignored(
    sim: PinPadSimulator, keyed_pad: EncryptedPinPad
) -> None:
    seen: list[KeyEvent] = []
    unsubscribe = keyed_pad.add_listener(seen.append)
    session = keyed_pad.start_pin_block_entry(ACCOUNT, SLOT_3DES, TDES, 6, 10)
    assert sim.wait_entry(5)
    assert sim.press("1")
    assert not sim.press("ENTER")  # too early: the pad ignores it
    sim.press_digits("35790")
    session.wait(10)
    unsubscribe()
    assert [e.kind for e in seen].count(KeyEventKind.DIGIT) == 6


def test_citizen_cancel(sim: PinPadSimulator, keyed_pad: EncryptedPinPad) -> None:
    sim.queue_keys("12X")
    with pytest.raises(PinEntryCancelledError):
        keyed_pad.read_pin_block(ACCOUNT, SLOT_3DES, TDES, 6, 10)


def test_host_cancel_closes_the_entry(sim: PinPadSimulator, keyed_pad: EncryptedPinPad) -> None:
    session = keyed_pad.start_pin_block_entry(ACCOUNT, SLOT_3DES, TDES, 6, 10)
    assert sim.wait_entry(5)
    keyed_pad.cancel()
    with pytest.raises(PinEntryCancelledError):
        session.wait(5)
    assert not sim.entry_active


def test_pad_timeout_ends_the_entry(keyed_pad: EncryptedPinPad) -> None:
    with pytest.raises(PinEntryTimeoutError):
        keyed_pad.read_pin_block(ACCOUNT, SLOT_3DES, TDES, 6, 1)


def test_injected_entry_timeout(sim: PinPadSimulator, keyed_pad: EncryptedPinPad) -> None:
    sim.inject("entry_timeout", count=1)
    with pytest.raises(PinEntryTimeoutError):
        keyed_pad.read_pin_block(ACCOUNT, SLOT_3DES, TDES, 6, 30)


def test_plain_entry_returns_digits_in_a_buffer(sim: PinPadSimulator, pad: EncryptedPinPad) -> None:
    secret("730418")
    sim.queue_keys("7304189")  # a seventh digit is ignored by the pad
    sim.queue_keys("E")
    digits = pad.read_plain_pin(6, 10)
    assert isinstance(digits, bytearray)
    assert digits == bytearray(b"730418")


def test_bad_bcc_is_reported(sim: PinPadSimulator, pad: EncryptedPinPad) -> None:
    sim.inject("bad_bcc", count=1)
    with pytest.raises(PinPadChecksumError):
        pad.info()
    assert pad.info().model == "KMY3501B"  # the link recovers


def test_no_reply(sim: PinPadSimulator, pad: EncryptedPinPad) -> None:
    sim.inject("no_reply", count=1)
    with pytest.raises(PinPadNoReplyError):
        pad.reset()
    sim.inject("no_reply")
    assert pad.status().state is DeviceState.OFFLINE


def test_tamper_erases_keys_and_fails_self_test(sim: PinPadSimulator, keyed_pad: EncryptedPinPad) -> None:
    sim.inject("tamper")
    with pytest.raises(PinPadSelfTestError):
        keyed_pad.reset()
    status = keyed_pad.status()
    assert status.state is DeviceState.FAULT and status.code == "pinpad.self_test_failed"
    sim.clear_faults()
    assert keyed_pad.info().keys == ()


def test_self_test_error(sim: PinPadSimulator, pad: EncryptedPinPad) -> None:
    sim.inject("self_test_error", count=1)
    with pytest.raises(PinPadSelfTestError):
        pad.reset()


def test_battery_low_needs_attention(sim: PinPadSimulator, keyed_pad: EncryptedPinPad) -> None:
    sim.inject("battery_low", count=1)
    assert keyed_pad.status().state is DeviceState.ATTENTION


def test_keys_missing(sim: PinPadSimulator, keyed_pad: EncryptedPinPad) -> None:
    sim.inject("keys_missing")
    with pytest.raises(PinPadKeysMissingError):
        keyed_pad.read_pin_block(ACCOUNT, SLOT_3DES, TDES, 6, 10)
    assert keyed_pad.status().code == "pinpad.keys_missing"


def test_unknown_fault_is_refused(sim: PinPadSimulator) -> None:
    assert "tamper" in sim.fault_names()
    with pytest.raises(PinPadError):
        sim.inject("no-such-fault")


@pytest.mark.parametrize("length", [1, 12, 40])
def test_line_noise_raises_only_pin_pad_errors(
    sim: PinPadSimulator, pad: EncryptedPinPad, length: int
) -> None:
    sim.inject("garbage", count=1, length=length)
    with pytest.raises(PinPadError):
        pad.reset()
    pad.reset()  # the next exchange is clean again


def test_demo_keys_are_listed_by_check_value(sim: PinPadSimulator, pad: EncryptedPinPad) -> None:
    from hardware.pinpad.simulator import DEMO_PIN_KEY

    sim.install_demo_keys(0, 1, SM4)
    info = pad.info()
    assert info.keys is not None
    assert [s.check_value for s in info.keys if s.working_index == 1] == [
        pinblock.check_value(DEMO_PIN_KEY, SM4)
    ]
    assert pad.status().state is DeviceState.READY
