"""The two PINs of a new card (设置密码): policy and services.

- **Social-security PIN** (社保应用密码) on the chip: entered twice on the PIN pad in plain entry,
  checked against :class:`PinPolicy` in a ``bytearray``, then written to the chip through an
  injected :class:`ChipPinService` (CHANGE PIN from the default 123456, or reload through the
  PSAM/HSM). Every buffer that held digits is wiped right after the chip command, also on error.
- **Financial PIN** (金融密码): entered twice on the pad in encrypted entry; the host sees two
  :class:`~kiosk.devices.pinpad.PinBlock` values only. Re-entry is checked by comparing the two
  blocks (format 0 is deterministic for one key and account); the weak-PIN rules are the bank's,
  enforced when the block reaches it through the injected :class:`BankPinService`.

Why the split, and what it protects against: docs/security.md. The core never imports a driver:
the pad is a :class:`~kiosk.devices.pinpad.PinPad`.
"""

from __future__ import annotations

import enum
import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol, runtime_checkable

from kiosk.devices.pinpad import (
    KeyAlgorithm,
    KeyEvent,
    PinBlock,
    PinEntryCancelledError,
    PinEntryTimeoutError,
    PinPad,
    wipe,
)

log = logging.getLogger(__name__)

DEFAULT_SOCIAL_SECURITY_PIN = "123456"


# --------------------------------------------------------------------------- policy


class PinRefusal(enum.Enum):
    """Why a new PIN is refused; ``message_key`` is what the citizen reads."""

    WRONG_LENGTH = "wrong_length"
    NOT_DIGITS = "not_digits"
    DEFAULT = "default"  # 不能使用初始密码
    ALL_EQUAL = "all_equal"  # 111111
    SEQUENCE = "sequence"  # 123456, 654321 (also 012345, 987654 …)
    BIRTH_DATE = "birth_date"  # 出生日期
    MISMATCH = "mismatch"  # 两次输入不一致
    BANK_REFUSED = "bank_refused"  # the bank judged the financial PIN too simple

    @property
    def message_key(self) -> str:
        return f"pinpad.refused.{self.value}"


BIRTH_DATE_FORMS = ("%y%m%d", "%m%d%y", "%d%m%y")


@dataclass(frozen=True)
class PinPolicy:
    """Rules for a new PIN (密码规则). The PIN is checked in the caller's ``bytearray``; no copy is kept.

    Birth-date forms refused (6 digits): YYMMDD, MMDDYY, DDMMYY — the three orders in which a
    date is commonly written; the 8-digit YYYYMMDD cannot fit a 6-digit PIN.
    """

    length: int = 6
    default_pin: str = DEFAULT_SOCIAL_SECURITY_PIN
    birth_date_forms: tuple[str, ...] = BIRTH_DATE_FORMS

    def __post_init__(self) -> None:
        if not 4 <= self.length <= 12:
            raise ValueError("PIN length must be 4 to 12")

    def refusal(self, pin: bytearray, birth_date: date | None = None) -> PinRefusal | None:
        """The first rule ``pin`` (ASCII digits) breaks, or ``None`` when it is acceptable."""
        if len(pin) != self.length:
            return PinRefusal.WRONG_LENGTH
        if not all(0x30 <= b <= 0x39 for b in pin):
            return PinRefusal.NOT_DIGITS
        if _same(pin, self.default_pin.encode()):
            return PinRefusal.DEFAULT
        if all(b == pin[0] for b in pin):
            return PinRefusal.ALL_EQUAL
        steps = {pin[i + 1] - pin[i] for i in range(len(pin) - 1)}
        if steps in ({1}, {-1}):
            return PinRefusal.SEQUENCE
        if birth_date is not None:
            for form in self.birth_date_forms:
                if _same(pin, birth_date.strftime(form).encode()):
                    return PinRefusal.BIRTH_DATE
        return None


def _same(pin: bytearray, candidate: bytes) -> bool:
    """Equality without making an immutable copy of the PIN."""
    if len(pin) != len(candidate):
        return False
    diff = 0
    for a, b in zip(pin, candidate):
        diff |= a ^ b
    return diff == 0


def birth_date_from_id(id_number: str) -> date | None:
    """The birth date in an 18-digit resident ID number (digits 7–14, YYYYMMDD), if valid."""
    if len(id_number) != 18 or not id_number[6:14].isdigit():
        return None
    try:
        return date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
    except ValueError:
        return None


# --------------------------------------------------------------------------- services injected


@runtime_checkable
class ChipPinService(Protocol):
    """The chip's PIN commands (hardware/smartcard). Both wipe the buffers they are given."""

    def change_pin(self, old_pin: bytearray, new_pin: bytearray) -> None:
        """CHANGE PIN ``80 5E 01 00`` (old ‖ FF ‖ new)."""

    def reload_pin(self, new_pin: bytearray) -> None:
        """PIN reload ``84 24 00 01`` with the PSAM/HSM (when the old PIN is unknown)."""


class PinSetAck(Protocol):
    @property
    def accepted(self) -> bool: ...


@runtime_checkable
class BankPinService(Protocol):
    """The bank's financial-PIN setting (``BackendClient.set_financial_pin``): a PIN block only.

    ``accepted`` False means the bank refused this PIN (its weak-PIN rules); other failures raise.
    """

    def set_financial_pin(
        self, key: str, card_number: str, pin_block: bytes, key_index: int = 1
    ) -> PinSetAck: ...


class EntryStep(enum.Enum):
    FIRST = "first"  # 请输入新密码
    CONFIRM = "confirm"  # 请再输入一次


class PinPurpose(enum.Enum):
    SOCIAL_SECURITY = "social_security"
    FINANCIAL = "financial"


class PinEntryObserver(Protocol):
    """What the entry screen is told: one dot per DIGIT event, a countdown from ``timeout_s``."""

    def entry_started(self, purpose: PinPurpose, step: EntryStep, attempt: int, timeout_s: int) -> None: ...

    def key(self, event: KeyEvent) -> None: ...

    def refused(self, purpose: PinPurpose, reason: PinRefusal) -> None: ...


class SilentObserver:
    """An observer that shows nothing (CLI, tests)."""

    def entry_started(self, purpose: PinPurpose, step: EntryStep, attempt: int, timeout_s: int) -> None:
        return None

    def key(self, event: KeyEvent) -> None:
        return None

    def refused(self, purpose: PinPurpose, reason: PinRefusal) -> None:
        return None


class PinResult(enum.Enum):
    SET = "set"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    TOO_MANY_ATTEMPTS = "too_many_attempts"


@dataclass(frozen=True)
class PinOutcome:
    """How a PIN setting ended; ``refusals`` lists why earlier attempts were refused (no digits)."""

    purpose: PinPurpose
    result: PinResult
    attempts: int
    refusals: tuple[PinRefusal, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.result is PinResult.SET


class ChipPinMethod(enum.Enum):
    CHANGE_FROM_DEFAULT = "change"  # the new card still has 123456
    RELOAD = "reload"  # PSAM/HSM reload (重置), old PIN unknown


# --------------------------------------------------------------------------- services


class SocialSecurityPinService:
    """Sets the social-security PIN on the chip (设置社保卡密码)."""

    def __init__(
        self,
        pad: PinPad,
        chip: ChipPinService,
        *,
        policy: PinPolicy | None = None,
        timeout_s: int = 30,
        max_attempts: int = 3,
        observer: PinEntryObserver | None = None,
    ) -> None:
        self.pad = pad
        self.chip = chip
        self.policy = policy or PinPolicy()
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.observer: PinEntryObserver = observer or SilentObserver()

    def _enter(self, step: EntryStep, attempt: int) -> bytearray:
        self.observer.entry_started(PinPurpose.SOCIAL_SECURITY, step, attempt, self.timeout_s)
        return self.pad.read_plain_pin(self.policy.length, self.timeout_s, self.observer.key)

    def set_pin(
        self, birth_date: date | None, method: ChipPinMethod = ChipPinMethod.CHANGE_FROM_DEFAULT
    ) -> PinOutcome:
        purpose = PinPurpose.SOCIAL_SECURITY
        refusals: list[PinRefusal] = []
        for attempt in range(1, self.max_attempts + 1):
            first = bytearray()
            second = bytearray()
            try:
                try:
                    first = self._enter(EntryStep.FIRST, attempt)
                    refusal = self.policy.refusal(first, birth_date)
                    if refusal is None:
                        second = self._enter(EntryStep.CONFIRM, attempt)
                        if not _buffers_equal(first, second):
                            refusal = PinRefusal.MISMATCH
                except PinEntryCancelledError:
                    return _ended(purpose, PinResult.CANCELLED, attempt, refusals)
                except PinEntryTimeoutError:
                    return _ended(purpose, PinResult.TIMED_OUT, attempt, refusals)
                if refusal is not None:
                    refusals.append(refusal)
                    log.info("pin_refused", extra={"purpose": purpose.value, "reason": refusal.value})
                    self.observer.refused(purpose, refusal)
                    continue
                wipe(second)
                self._write_to_chip(first, method)
                log.info(
                    "pin_set", extra={"purpose": purpose.value, "method": method.value, "attempt": attempt}
                )
                return PinOutcome(purpose, PinResult.SET, attempt, tuple(refusals))
            finally:
                wipe(first)
                wipe(second)
        return _ended(purpose, PinResult.TOO_MANY_ATTEMPTS, self.max_attempts, refusals)

    def _write_to_chip(self, new_pin: bytearray, method: ChipPinMethod) -> None:
        if method is ChipPinMethod.RELOAD:
            self.chip.reload_pin(new_pin)
            return
        old = bytearray(self.policy.default_pin.encode())
        try:
            self.chip.change_pin(old, new_pin)
        finally:
            wipe(old)


class FinancialPinService:
    """Sets the financial PIN at the bank (设置金融密码) from PIN blocks only."""

    def __init__(
        self,
        pad: PinPad,
        bank: BankPinService,
        *,
        key_slot: tuple[int, int],
        algorithm: KeyAlgorithm,
        bank_key_index: int = 1,
        length: int = 6,
        timeout_s: int = 30,
        max_attempts: int = 3,
        observer: PinEntryObserver | None = None,
    ) -> None:
        self.pad = pad
        self.bank = bank
        self.key_slot = key_slot
        self.algorithm = algorithm
        self.bank_key_index = bank_key_index
        self.length = length
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.observer: PinEntryObserver = observer or SilentObserver()

    def _enter(self, account_number: str, step: EntryStep, attempt: int) -> PinBlock:
        self.observer.entry_started(PinPurpose.FINANCIAL, step, attempt, self.timeout_s)
        return self.pad.read_pin_block(
            account_number, self.key_slot, self.algorithm, self.length, self.timeout_s, self.observer.key
        )

    def set_pin(self, idempotency_key: str, card_number: str, account_number: str) -> PinOutcome:
        """``account_number`` is the bank account on the chip (tag 5A) that the PIN block is bound to."""
        purpose = PinPurpose.FINANCIAL
        refusals: list[PinRefusal] = []
        for attempt in range(1, self.max_attempts + 1):
            try:
                first = self._enter(account_number, EntryStep.FIRST, attempt)
                second = self._enter(account_number, EntryStep.CONFIRM, attempt)
            except PinEntryCancelledError:
                return _ended(purpose, PinResult.CANCELLED, attempt, refusals)
            except PinEntryTimeoutError:
                return _ended(purpose, PinResult.TIMED_OUT, attempt, refusals)
            if first != second:
                refusal = PinRefusal.MISMATCH
            else:
                # A fresh key per attempt: a refused attempt must not be replayed as the same request.
                ack = self.bank.set_financial_pin(
                    f"{idempotency_key}.pin{attempt}", card_number, bytes(first), self.bank_key_index
                )
                if ack.accepted:
                    log.info("pin_set", extra={"purpose": purpose.value, "attempt": attempt})
                    return PinOutcome(purpose, PinResult.SET, attempt, tuple(refusals))
                refusal = PinRefusal.BANK_REFUSED
            refusals.append(refusal)
            log.info("pin_refused", extra={"purpose": purpose.value, "reason": refusal.value})
            self.observer.refused(purpose, refusal)
        return _ended(purpose, PinResult.TOO_MANY_ATTEMPTS, self.max_attempts, refusals)


def _buffers_equal(a: bytearray, b: bytearray) -> bool:
    if len(a) != len(b):
        return False
    diff = 0
    for x, y in zip(a, b):
        diff |= x ^ y
    return diff == 0


def _ended(purpose: PinPurpose, result: PinResult, attempt: int, refusals: list[PinRefusal]) -> PinOutcome:
    log.info("pin_not_set", extra={"purpose": purpose.value, "result": result.value, "attempt": attempt})
    return PinOutcome(purpose, result, attempt, tuple(refusals))


# --------------------------------------------------------------------------- key installation


class KeyComponentError(ValueError):
    """Key component text is not hex of the right length (the message never quotes the text)."""


def key_components_from_text(raw: bytearray, key_length: int = 16) -> list[bytearray]:
    """Parses key components (密钥分量), one hex line each (``#`` comments, blanks ignored).

    Works on a ``bytearray`` and returns ``bytearray`` values so the caller can wipe every copy;
    ``raw`` is wiped here.
    """
    components: list[bytearray] = []
    current = bytearray()
    nibble = -1
    in_comment = False
    try:
        # A final newline ends the last line; iterating ``raw + b"\n"`` would leave an unwiped copy.
        for byte in itertools.chain(raw, b"\n"):
            if byte in (0x0A, 0x0D):
                in_comment = False
                if nibble >= 0:
                    raise KeyComponentError("odd number of hex digits in a component")
                if current:
                    if len(current) != key_length:
                        raise KeyComponentError(f"a component must be {key_length} bytes")
                    components.append(current)
                    current = bytearray()
                continue
            if in_comment or byte in (0x20, 0x09):
                continue
            if byte == 0x23:  # '#'
                in_comment = True
                continue
            value = _hex_value(byte)
            if nibble < 0:
                nibble = value
            else:
                current.append((nibble << 4) | value)
                nibble = -1
    except KeyComponentError:
        for component in components:
            wipe(component)
        raise
    finally:
        wipe(current)
        wipe(raw)
    if not components:
        raise KeyComponentError("no key component given")
    return components


def _hex_value(byte: int) -> int:
    if 0x30 <= byte <= 0x39:
        return byte - 0x30
    if 0x41 <= byte <= 0x46 or 0x61 <= byte <= 0x66:
        return (byte | 0x20) - 0x61 + 10
    raise KeyComponentError("a component holds a character that is not hex")


def combine_components(components: Sequence[bytearray]) -> bytearray:
    """XOR of the components (dual control: each custodian holds one); the components are wiped."""
    try:
        if len({len(c) for c in components}) != 1:
            raise KeyComponentError("components differ in length")
        key = bytearray(len(components[0]))
        for component in components:
            for i, b in enumerate(component):
                key[i] ^= b
        return key
    finally:
        for component in components:
            wipe(component)


def install_master_key(
    pad: PinPad,
    index: int,
    algorithm: KeyAlgorithm,
    components: Sequence[bytearray],
    expected_check_value: str | None = None,
) -> str:
    """Loads a master key made of components into the pad (主密钥灌装); returns its check value.

    The engineer menu and ``kiosk pinpad load-key`` call this. Nothing here logs key material:
    the pad wipes the combined key, this wipes the components.
    """
    key = combine_components(components)
    try:
        return pad.load_master_key(index, key, algorithm, expected_check_value)
    finally:
        wipe(key)
