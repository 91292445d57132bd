"""PIN pad fixtures: a simulated KMY3501 on a pty, the driver on its slave side, keys loaded over
the link, and a log scan that fails any test whose log lines carry a registered secret."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from hardware.pinpad import pinblock
from hardware.pinpad.driver import EncryptedPinPad
from hardware.pinpad.simulator import PinPadSimulator
from kiosk.devices.pinpad import KeyAlgorithm

# Test keys (fictitious). Master keys are loaded in clear over the link (installation), working
# keys encrypted under them, as the bank would deliver them.
MASTER_3DES = bytes.fromhex("11223344556677888877665544332211")
MASTER_SM4 = bytes.fromhex("A1B2C3D4E5F60718293A4B5C6D7E8F90")
PIN_KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
SLOT_3DES = (0, 1)
SLOT_SM4 = (1, 1)
ACCOUNT = "6217001234567890128"

# Every PIN, PIN block (hex) and key (hex) a test uses is registered here; the log scan fails a
# test whose captured log output contains any of them.
SECRETS: set[str] = {PIN_KEY.hex(), MASTER_3DES.hex(), MASTER_SM4.hex()}


def secret(value: str | bytes) -> str | bytes:
    """Registers ``value`` (a PIN or PIN block) for the log scan and returns it."""
    if isinstance(value, bytes):
        SECRETS.add(value.hex())
    else:
        SECRETS.add(value)
    return value


# Bookkeeping attributes (timestamps, thread ids) are left out: their digits are not log content.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) - {"msg", "args"}


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        # The message, its arguments and every extra field, as any handler could render them.
        self.lines.append(record.getMessage())
        self.lines.append(repr({k: v for k, v in record.__dict__.items() if k not in _STANDARD}))
        if record.exc_info:
            self.lines.append(logging.Formatter().formatException(record.exc_info))


def leaked_secrets(lines: list[str]) -> set[str]:
    text = "\n".join(lines).lower()
    return {s for s in SECRETS if s.lower() in text}


@pytest.fixture(autouse=True)
def log_scan() -> Iterator[_Capture]:
    root = logging.getLogger()
    handler = _Capture()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    leaks = leaked_secrets(handler.lines)
    if leaks and not getattr(handler, "expect_leak", False):
        pytest.fail(f"{len(leaks)} secret value(s) found in log output")


@pytest.fixture
def sim() -> Iterator[PinPadSimulator]:
    with PinPadSimulator() as simulator:
        yield simulator


@pytest.fixture
def pad(sim: PinPadSimulator) -> Iterator[EncryptedPinPad]:
    with EncryptedPinPad(sim.path, reply_timeout_s=0.5) as driver:
        yield driver


@pytest.fixture
def keyed_pad(pad: EncryptedPinPad) -> EncryptedPinPad:
    """The pad with a 3DES master + PIN key in slot (0, 1) and an SM4 pair in (1, 1), loaded over the link."""
    pad.load_master_key(0, bytearray(MASTER_3DES), KeyAlgorithm.TDES)
    pad.load_working_key(
        0,
        1,
        pinblock.encrypt_ecb(MASTER_3DES, KeyAlgorithm.TDES, PIN_KEY),
        KeyAlgorithm.TDES,
        pinblock.check_value(PIN_KEY, KeyAlgorithm.TDES),
    )
    pad.load_master_key(1, bytearray(MASTER_SM4), KeyAlgorithm.SM4)
    pad.load_working_key(
        1,
        1,
        pinblock.encrypt_ecb(MASTER_SM4, KeyAlgorithm.SM4, PIN_KEY),
        KeyAlgorithm.SM4,
        pinblock.check_value(PIN_KEY, KeyAlgorithm.SM4),
    )
    return pad
