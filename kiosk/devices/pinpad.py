"""Encrypted PIN pad (EPP, 密码键盘): what the core calls.

The pad holds a master key (主密钥, loaded at installation, checked by its check value 校验值)
and working keys (工作密钥) delivered by the bank encrypted under the master key. In encrypted
entry the clear PIN never leaves the pad: the host receives one key event per key press (a
digit shows as ``*``, its value unknown) and, after ENTER, a :class:`PinBlock` — the PIN
encrypted under the PIN working key (ISO 9564 format 0 with 3DES, or its 16-byte SM4 variant).

Plain entry (明文输入) exists for the social-security PIN only, because the chip's CHANGE PIN
APDU carries the new PIN itself: the digits are returned in a ``bytearray`` that the caller
must wipe (:func:`wipe`) right after use. See docs/security.md.

Stdlib only, plus ``kiosk.devices``.
"""

from __future__ import annotations

import enum
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from kiosk.devices import Audience, DeviceError, DeviceStatus

__all__ = [
    "KeyAlgorithm",
    "KeyEvent",
    "KeyEventKind",
    "KeySlot",
    "PinBlock",
    "PinBlockFormat",
    "PinPad",
    "PinPadInfo",
    "wipe",
]


class KeyAlgorithm(enum.Enum):
    """Block cipher of a key: 3DES (double length, 8-byte blocks) or SM4 (国密, 16-byte blocks)."""

    TDES = "3des"
    SM4 = "sm4"

    @property
    def block_size(self) -> int:
        return 8 if self is KeyAlgorithm.TDES else 16


class PinBlockFormat(enum.Enum):
    """ISO 9564-1 format 0 (= ANSI X9.8) over 8 bytes, or the same fields widened to 16 bytes for SM4."""

    ISO0 = "iso0"
    ISO0_SM4 = "iso0-sm4"

    @classmethod
    def for_algorithm(cls, algorithm: KeyAlgorithm) -> PinBlockFormat:
        return cls.ISO0 if algorithm is KeyAlgorithm.TDES else cls.ISO0_SM4


class KeyEventKind(enum.Enum):
    """One key press during entry. DIGIT carries no value: the screen shows one dot per DIGIT."""

    DIGIT = "digit"
    CLEAR = "clear"  # 更正: removes the last digit (the pad sends 08h)
    CANCEL = "cancel"  # 取消
    ENTER = "enter"  # 确认


@dataclass(frozen=True, slots=True)
class KeyEvent:
    """A key event with the number of digits now entered (what the screen draws as dots)."""

    kind: KeyEventKind
    digits_entered: int


KeyListener = Callable[[KeyEvent], None]


class PinBlock:
    """An encrypted PIN block (PIN 密文). Never printable: ``repr``/``str`` hide the bytes.

    ``bytes(block)`` gives the ciphertext for the one place that needs it (the bank request).
    Two blocks compare equal in constant time; equal blocks under the same key and account mean
    the same PIN (format 0 is deterministic), which is how re-entry is checked without the PIN.
    """

    __slots__ = ("_data", "algorithm", "format", "key_slot")

    def __init__(self, data: bytes, algorithm: KeyAlgorithm, key_slot: tuple[int, int]) -> None:
        if len(data) != algorithm.block_size:
            raise ValueError("PIN block length does not match the algorithm")
        self._data = bytes(data)
        self.algorithm = algorithm
        self.format = PinBlockFormat.for_algorithm(algorithm)
        self.key_slot = key_slot

    def __bytes__(self) -> bytes:
        return self._data

    def __repr__(self) -> str:
        return f"PinBlock({self.format.value}, key={self.key_slot}, <hidden>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PinBlock):
            return NotImplemented
        return (
            self.algorithm is other.algorithm
            and self.key_slot == other.key_slot
            and hmac.compare_digest(self._data, other._data)
        )

    __hash__ = None  # type: ignore[assignment]  # not a dict key: a hash would leak equality


@dataclass(frozen=True, slots=True)
class KeySlot:
    """A key loaded in the pad, known by its check value only (校验值, first 4 bytes of E(K, 0…0)).

    ``working_index`` is ``None`` for a master key.
    """

    master_index: int
    working_index: int | None
    algorithm: KeyAlgorithm
    check_value: str

    @property
    def kind(self) -> str:
        return "master" if self.working_index is None else "working"


@dataclass(frozen=True, slots=True)
class PinPadInfo:
    """Model, serial number, firmware and the loaded keys (by check value) of a pad."""

    model: str
    serial: str
    firmware: str
    command_set: str
    keys: tuple[KeySlot, ...] | None = field(default=None)  # None: the pad cannot list its keys


def wipe(buffer: bytearray) -> None:
    """Overwrites a buffer that held PIN digits or key material, then empties it."""
    for i in range(len(buffer)):
        buffer[i] = 0
    buffer.clear()


# --------------------------------------------------------------------------- errors


class PinPadError(DeviceError):
    """Root of the PIN pad errors (密码键盘故障)."""

    default_code = "pinpad.error"
    default_message_key = "pinpad.error"


class PinPadNoReplyError(PinPadError):
    default_code = "pinpad.no_reply"
    default_message_key = "pinpad.error"


class PinPadChecksumError(PinPadError):
    """A reply frame failed its BCC/LRC (bad line, wrong baud rate)."""

    default_code = "pinpad.bad_checksum"
    default_message_key = "pinpad.error"


class PinPadFrameError(PinPadError):
    default_code = "pinpad.bad_frame"
    default_message_key = "pinpad.error"


class PinPadCommandError(PinPadError):
    """The pad answered with a status other than OK (parameter error, invalid command, battery)."""

    default_code = "pinpad.command_refused"
    default_message_key = "pinpad.error"


class PinPadSelfTestError(PinPadError):
    """Self-test failed or the tamper switch fired (防拆): the pad must be replaced or re-keyed."""

    default_code = "pinpad.self_test_failed"
    default_message_key = "pinpad.out_of_service"


class PinPadKeysMissingError(PinPadError):
    """No valid master or working key (密钥未加载 / 主密钥无效)."""

    default_code = "pinpad.keys_missing"
    default_message_key = "pinpad.out_of_service"


class PinPadKeyCheckError(PinPadError):
    """A loaded key's check value differs from the expected one: the key was not used."""

    default_code = "pinpad.check_value_mismatch"
    default_message_key = "pinpad.error"


class PinEntryTimeoutError(PinPadError):
    """The citizen did not finish the PIN in time (输入超时)."""

    default_code = "pinpad.entry_timeout"
    default_message_key = "pinpad.entry_timeout"
    default_audience = Audience.CITIZEN


class PinEntryCancelledError(PinPadError):
    """The citizen pressed CANCEL (取消), or the host cancelled the entry."""

    default_code = "pinpad.entry_cancelled"
    default_message_key = "pinpad.entry_cancelled"
    default_audience = Audience.CITIZEN


# --------------------------------------------------------------------------- protocol


@runtime_checkable
class PinPad(Protocol):
    """What the core calls on the PIN pad. Entry calls block; run them on a worker thread."""

    def status(self) -> DeviceStatus: ...

    def info(self) -> PinPadInfo: ...

    def reset(self) -> None: ...

    def load_master_key(
        self, index: int, key: bytearray, algorithm: KeyAlgorithm, expected_check_value: str | None = None
    ) -> str: ...

    def load_working_key(
        self,
        master_index: int,
        working_index: int,
        encrypted_key: bytes,
        algorithm: KeyAlgorithm,
        expected_check_value: str | None = None,
    ) -> str: ...

    def read_pin_block(
        self,
        account_number: str,
        key_slot: tuple[int, int],
        algorithm: KeyAlgorithm,
        length: int,
        timeout_s: int,
        on_key: KeyListener | None = None,
    ) -> PinBlock: ...

    def read_plain_pin(self, length: int, timeout_s: int, on_key: KeyListener | None = None) -> bytearray: ...

    def cancel(self) -> None: ...
