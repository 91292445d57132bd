"""PIN policy and the two PIN services, with the pad simulated over the pty link.

The chip and the bank are fakes with real behaviour: the fake chip keeps its PIN (default 123456)
and checks the old PIN on CHANGE PIN like the card; the fake bank decrypts the PIN block with the
PIN key (as its HSM would) and refuses weak PINs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

import pytest

from hardware.pinpad import pinblock
from hardware.pinpad.driver import EncryptedPinPad
from hardware.pinpad.simulator import PinPadSimulator
from kiosk.devices.pinpad import KeyAlgorithm
from kiosk.pins import (
    BankPinService,
    ChipPinMethod,
    ChipPinService,
    EntryStep,
    FinancialPinService,
    PinPolicy,
    PinPurpose,
    PinRefusal,
    PinResult,
    SocialSecurityPinService,
    birth_date_from_id,
)
from tests.pinpad.conftest import ACCOUNT, PIN_KEY, SLOT_3DES, SLOT_SM4, leaked_secrets, secret

BIRTH = date(1958, 3, 17)  # fictitious holder born 17 March 1958


# --------------------------------------------------------------------------- policy


@pytest.mark.parametrize("pin", ["582914", "730418", "112233", "135790", "123457", "000001"])
def test_policy_accepts(pin: str) -> None:
    assert PinPolicy().refusal(bytearray(pin.encode()), BIRTH) is None


@pytest.mark.parametrize(
    ("pin", "reason"),
    [
        ("123456", PinRefusal.DEFAULT),
        ("111111", PinRefusal.ALL_EQUAL),
        ("000000", PinRefusal.ALL_EQUAL),
        ("654321", PinRefusal.SEQUENCE),
        ("234567", PinRefusal.SEQUENCE),
        ("987654", PinRefusal.SEQUENCE),
        ("580317", PinRefusal.BIRTH_DATE),  # YYMMDD
        ("031758", PinRefusal.BIRTH_DATE),  # MMDDYY
        ("170358", PinRefusal.BIRTH_DATE),  # DDMMYY
        ("12345", PinRefusal.WRONG_LENGTH),
        ("12a456", PinRefusal.NOT_DIGITS),
    ],
)
def test_policy_refuses(pin: str, reason: PinRefusal) -> None:
    assert PinPolicy().refusal(bytearray(pin.encode()), BIRTH) is reason


def test_birth_date_rule_needs_the_birth_date() -> None:
    assert PinPolicy().refusal(bytearray(b"580317"), None) is None


def test_birth_date_from_id_number() -> None:
    assert birth_date_from_id("11010519580317002X") == BIRTH
    assert birth_date_from_id("110105195813170020") is None
    assert birth_date_from_id("1234") is None


# --------------------------------------------------------------------------- fakes


class VirtualChip:
    """A card's SSSE PIN: CHANGE PIN checks the old PIN; both commands wipe what they are given."""

    def __init__(self, pin: bytes = b"123456") -> None:
        self._pin = bytearray(pin)
        self.given: list[bytearray] = []
        self.commands: list[str] = []

    def change_pin(self, old_pin: bytearray, new_pin: bytearray) -> None:
        self.given += [old_pin, new_pin]
        self.commands.append("change")
        try:
            if old_pin != self._pin:
                raise RuntimeError("63C2 wrong old PIN")
            self._pin = bytearray(new_pin)
        finally:
            for buf in (old_pin, new_pin):
                buf[:] = bytes(len(buf))

    def reload_pin(self, new_pin: bytearray) -> None:
        self.given.append(new_pin)
        self.commands.append("reload")
        self._pin = bytearray(new_pin)
        new_pin[:] = bytes(len(new_pin))

    def verify_pin(self, pin: bytes) -> bool:
        return bytes(self._pin) == pin


@dataclass(frozen=True)
class Ack:
    card_number: str
    accepted: bool


class FakeBank:
    """Decrypts the PIN block with the PIN key as the bank HSM does; refuses weak PINs."""

    def __init__(self, algorithm: KeyAlgorithm) -> None:
        self.algorithm = algorithm
        self.requests: list[tuple[str, str, bytes, int]] = []
        self.pins: dict[str, bytes] = {}

    def set_financial_pin(self, key: str, card_number: str, pin_block: bytes, key_index: int = 1) -> Ack:
        assert isinstance(pin_block, bytes)
        self.requests.append((key, card_number, pin_block, key_index))
        pin = pinblock.pin_from_block(pin_block, ACCOUNT, PIN_KEY, self.algorithm)
        if PinPolicy().refusal(bytearray(pin)) is not None:
            return Ack(card_number, False)
        self.pins[card_number] = pin
        return Ack(card_number, True)


class RecordingObserver:
    def __init__(self) -> None:
        self.started: list[tuple[PinPurpose, EntryStep, int, int]] = []
        self.refusals: list[PinRefusal] = []
        self.dots: list[int] = []

    def entry_started(self, purpose: PinPurpose, step: EntryStep, attempt: int, timeout_s: int) -> None:
        self.started.append((purpose, step, attempt, timeout_s))

    def key(self, event) -> None:  # type: ignore[no-untyped-def]
        self.dots.append(event.digits_entered)

    def refused(self, purpose: PinPurpose, reason: PinRefusal) -> None:
        self.refusals.append(reason)


def test_fakes_satisfy_the_protocols() -> None:
    assert isinstance(VirtualChip(), ChipPinService)
    assert isinstance(FakeBank(KeyAlgorithm.TDES), BankPinService)


# --------------------------------------------------------------------------- social-security PIN


def ss_service(pad: EncryptedPinPad, chip: VirtualChip, observer: RecordingObserver | None = None, **kw):  # type: ignore[no-untyped-def]
    return SocialSecurityPinService(pad, chip, timeout_s=kw.pop("timeout_s", 10), observer=observer, **kw)


def test_social_security_pin_changed_from_default_then_verified(
    sim: PinPadSimulator, pad: EncryptedPinPad
) -> None:
    secret("582914")
    chip = VirtualChip()
    observer = RecordingObserver()
    sim.queue_keys("582914E582914E")
    outcome = ss_service(pad, chip, observer).set_pin(BIRTH)
    assert outcome.ok and outcome.attempts == 1
    assert chip.commands == ["change"]
    assert chip.verify_pin(b"582914") and not chip.verify_pin(b"123456")
    assert all(not any(buf) for buf in chip.given)  # every buffer handed over is zeros now
    assert [s[1] for s in observer.started] == [EntryStep.FIRST, EntryStep.CONFIRM]
    assert observer.dots.count(6) >= 2


def test_social_security_pin_reload(sim: PinPadSimulator, pad: EncryptedPinPad) -> None:
    secret("246813")
    chip = VirtualChip(b"999999")
    sim.queue_keys("246813E246813E")
    assert ss_service(pad, chip).set_pin(BIRTH, ChipPinMethod.RELOAD).ok
    assert chip.commands == ["reload"] and chip.verify_pin(b"246813")


@pytest.mark.parametrize(
    ("weak", "reason"),
    [
        ("123456", PinRefusal.DEFAULT),
        ("777777", PinRefusal.ALL_EQUAL),
        ("654321", PinRefusal.SEQUENCE),
        ("580317", PinRefusal.BIRTH_DATE),
    ],
)
def test_weak_social_security_pin_is_refused_then_a_good_one_is_set(
    sim: PinPadSimulator, pad: EncryptedPinPad, weak: str, reason: PinRefusal
) -> None:
    secret("582914")
    chip = VirtualChip()
    observer = RecordingObserver()
    sim.queue_keys(weak + "E" + "582914E582914E")
    outcome = ss_service(pad, chip, observer).set_pin(BIRTH)
    assert outcome.ok and outcome.attempts == 2 and outcome.refusals == (reason,)
    assert observer.refusals == [reason]
    assert chip.verify_pin(b"582914")


def test_mismatch_on_re_entry(sim: PinPadSimulator, pad: EncryptedPinPad) -> None:
    secret("582914"), secret("582915")
    chip = VirtualChip()
    sim.queue_keys("582914E582915E582914E582914E")
    outcome = ss_service(pad, chip).set_pin(BIRTH)
    assert outcome.ok and outcome.refusals == (PinRefusal.MISMATCH,)


def test_too_many_attempts_leaves_the_default(sim: PinPadSimulator, pad: EncryptedPinPad) -> None:
    chip = VirtualChip()
    sim.queue_keys("111111E" * 3)
    outcome = ss_service(pad, chip, max_attempts=3).set_pin(BIRTH)
    assert outcome.result is PinResult.TOO_MANY_ATTEMPTS
    assert chip.commands == [] and chip.verify_pin(b"123456")


def test_social_security_cancel(sim: PinPadSimulator, pad: EncryptedPinPad) -> None:
    chip = VirtualChip()
    sim.queue_keys("5829X")
    assert ss_service(pad, chip).set_pin(BIRTH).result is PinResult.CANCELLED
    assert chip.commands == []


def test_social_security_timeout(pad: EncryptedPinPad) -> None:
    chip = VirtualChip()
    assert ss_service(pad, chip, timeout_s=1).set_pin(BIRTH).result is PinResult.TIMED_OUT


def test_chip_error_still_wipes_the_buffers(sim: PinPadSimulator, pad: EncryptedPinPad) -> None:
    secret("582914")
    chip = VirtualChip(b"000111")  # not the default: CHANGE PIN fails on the old PIN
    sim.queue_keys("582914E582914E")
    with pytest.raises(RuntimeError):
        ss_service(pad, chip).set_pin(BIRTH)
    assert chip.given and all(not any(buf) for buf in chip.given)


# --------------------------------------------------------------------------- financial PIN


@pytest.mark.parametrize(
    ("slot", "algorithm"), [(SLOT_3DES, KeyAlgorithm.TDES), (SLOT_SM4, KeyAlgorithm.SM4)]
)
def test_financial_pin_block_accepted_by_the_bank(
    sim: PinPadSimulator, keyed_pad: EncryptedPinPad, slot: tuple[int, int], algorithm: KeyAlgorithm
) -> None:
    secret("730418")
    secret(pinblock.encrypted_pin_block(b"730418", ACCOUNT, PIN_KEY, algorithm))
    bank = FakeBank(algorithm)
    sim.queue_keys("730418E730418E")
    service = FinancialPinService(keyed_pad, bank, key_slot=slot, algorithm=algorithm, timeout_s=10)
    outcome = service.set_pin("visit-42", "C12345678", ACCOUNT)
    assert outcome.ok
    assert bank.pins == {"C12345678": b"730418"}
    ((key, card, block, index),) = bank.requests
    assert (
        key == "visit-42.pin1" and card == "C12345678" and len(block) == algorithm.block_size and index == 1
    )


def test_financial_mismatch_is_caught_from_blocks_alone(
    sim: PinPadSimulator, keyed_pad: EncryptedPinPad
) -> None:
    for pin in ("730418", "730481"):
        secret(pin)
        secret(pinblock.encrypted_pin_block(pin.encode(), ACCOUNT, PIN_KEY, KeyAlgorithm.TDES))
    bank = FakeBank(KeyAlgorithm.TDES)
    sim.queue_keys("730418E730481E730418E730418E")
    service = FinancialPinService(
        keyed_pad, bank, key_slot=SLOT_3DES, algorithm=KeyAlgorithm.TDES, timeout_s=10
    )
    outcome = service.set_pin("visit-43", "C1", ACCOUNT)
    assert outcome.ok and outcome.refusals == (PinRefusal.MISMATCH,)
    assert len(bank.requests) == 1  # the mismatched pair never reached the bank


def test_financial_weak_pin_refused_by_the_bank(sim: PinPadSimulator, keyed_pad: EncryptedPinPad) -> None:
    for pin in ("888888", "730418"):
        secret(pin)
        secret(pinblock.encrypted_pin_block(pin.encode(), ACCOUNT, PIN_KEY, KeyAlgorithm.TDES))
    bank = FakeBank(KeyAlgorithm.TDES)
    sim.queue_keys("888888E888888E730418E730418E")
    service = FinancialPinService(
        keyed_pad, bank, key_slot=SLOT_3DES, algorithm=KeyAlgorithm.TDES, timeout_s=10
    )
    outcome = service.set_pin("visit-44", "C2", ACCOUNT)
    assert outcome.ok and outcome.refusals == (PinRefusal.BANK_REFUSED,)
    assert [r[0] for r in bank.requests] == ["visit-44.pin1", "visit-44.pin2"]


def test_financial_cancel_and_timeout(sim: PinPadSimulator, keyed_pad: EncryptedPinPad) -> None:
    bank = FakeBank(KeyAlgorithm.TDES)
    service = FinancialPinService(
        keyed_pad, bank, key_slot=SLOT_3DES, algorithm=KeyAlgorithm.TDES, timeout_s=1
    )
    sim.queue_keys("73X")
    assert service.set_pin("v", "C3", ACCOUNT).result is PinResult.CANCELLED
    assert service.set_pin("v", "C3", ACCOUNT).result is PinResult.TIMED_OUT
    assert bank.requests == []


# --------------------------------------------------------------------------- the log scan itself


def test_log_scan_detects_a_leak(log_scan) -> None:  # type: ignore[no-untyped-def]
    secret("918273")
    logging.getLogger("kiosk.pins").info("pin_debug", extra={"value": "918273"})
    assert leaked_secrets(log_scan.lines) == {"918273"}
    log_scan.expect_leak = True


def test_key_components_are_parsed_combined_and_wiped() -> None:
    from kiosk.pins import combine_components, key_components_from_text

    raw = bytearray(b"# A\n00112233445566778899aabbccddeeff\r\n  FFEEDDCCBBAA99887766554433221100 \n")
    components = key_components_from_text(raw)
    assert raw == bytearray()
    kept = list(components)
    key = combine_components(components)
    assert key == bytearray(b"\xff" * 16)
    assert all(c == bytearray() for c in kept)
