"""Social security card chip and PSAM (社保卡芯片读写与PSAM): what the core calls.

The core reads a card (``read_card_basic``, LD/T 6001.5 iReadCardBas), personalizes the SSSE
application of a blank card in the card printer's chip station (个人化), runs the PIN services
on the chip (校验/修改/重置/解锁 密码) and reads the PSAM's identity for the PSAM registry.
Values that cross the boundary are frozen dataclasses; failures are :class:`SmartCardError`
subclasses with stable codes and message keys. Stdlib only (plus ``kiosk.devices``).

PINs cross this boundary as ``bytearray`` of ASCII digits; every service zeroes the buffers it
is given before it returns (also on error), so the clear PIN lives no longer than one APDU.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol, runtime_checkable

from kiosk.devices import Audience, DeviceError, DeviceStatus

# --------------------------------------------------------------------------- values


class ChipAlgorithm(enum.Enum):
    """Algorithm of the SSSE keys (FCI 9F0C/86)."""

    TDES = "3des"
    SM4 = "sm4"


class KeyBackendKind(enum.Enum):
    """Who does the key work (密钥运算): a PSAM in a second slot or the card-management HSM."""

    PSAM = "psam"
    HSM = "hsm"


@dataclass(frozen=True)
class CardData:
    """What the card-management system gives for one card (即制卡标注/getCardData) → EF05/EF06/EF08.

    ``ssn`` is the social security number (社会保障号码, the ID number); ``sex`` '1' male,
    '2' female, '9' unspecified; ``ethnicity_code`` GB 3304 two digits ("01" 汉);
    ``birth_place`` GB/T 2260 six digits (empty: the first six digits of the SSN);
    ``card_category`` 卡类别 ('3' adult); ``spec_version`` 规范版本 ("3.00").
    ``card_number`` is the 9-character card number with its check character.
    """

    application_id: str
    card_number: str
    ssn: str = field(repr=False)
    name: str = field(repr=False)
    sex: str
    ethnicity_code: str
    birth_date: date
    issue_date: date
    expiry_date: date
    birth_place: str = ""
    card_category: str = "3"
    spec_version: str = "3.00"
    photo_jpeg: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class CardBasicInfo:
    """iReadCardBas: the card's basic data (EF05 + EF06) and the bank account (tag 5A)."""

    atr: str
    algorithm: ChipAlgorithm
    card_identification_code: str  # 卡识别码, 32 hex digits
    card_category: str
    spec_version: str
    initialization_org: str  # 初始化机构编号
    issue_date: date | None
    expiry_date: date | None
    card_number: str
    ssn: str = field(repr=False)
    name: str = field(repr=False)
    sex: str = ""
    ethnicity_code: str = ""
    birth_place: str = ""
    birth_date: date | None = None
    pan: str = field(default="", repr=False)
    pin_tries_left: int | None = None

    @property
    def region_code(self) -> str:
        """Issuing region: the first 6 digits of the card identification code."""
        return self.card_identification_code[:6]

    @property
    def is_blank(self) -> bool:
        return not self.card_number


@dataclass(frozen=True)
class PersonalizationResult:
    """回盘 data: what the card-management system expects back after a good personalization."""

    card_number: str
    card_identification_code: str
    atr: str
    bank_account: str = field(repr=False)
    algorithm: ChipAlgorithm = ChipAlgorithm.SM4
    steps: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class PsamIdentity:
    """PSAM registry entry: terminal number (EF 0016) and PSAM card number (EF 0015)."""

    terminal_number: str
    psam_serial: str
    atr: str
    algorithms: tuple[ChipAlgorithm, ...] = ()


@dataclass(frozen=True)
class KeyWorkRequest:
    """One key-work call to the card-management HSM (加密机运算).

    ``operation`` is ``external_authenticate`` | ``mac`` | ``encrypt``; ``key_name`` one of
    UKSSSE, RKSSSE, IRK, PUK, STKSSSE; ``diversifier`` = algorithm id (01 3DES, 03 SM4) ‖ the three
    8-byte diversification factors; ``data`` = session factor (8 bytes) ‖ input. See
    docs/smartcard.md for each operation's input and output. ``data`` may carry an encoded PIN
    (PIN reload): transports must never log it.
    """

    application_id: str
    operation: str
    key_name: str
    diversifier: bytes
    data: bytes | bytearray = field(repr=False)


@runtime_checkable
class HsmTransport(Protocol):
    """What the back-end client must offer so the chip driver can use the HSM (加密机) for key work.

    Returns the operation's output bytes or raises a :class:`DeviceError` subclass (or any
    exception, which the driver wraps in :class:`KeyBackendError`).
    """

    def key_work(self, request: KeyWorkRequest) -> bytes: ...


# --------------------------------------------------------------------------- errors


class SmartCardError(DeviceError):
    """Root of the smart-card package's errors. ``reject_card`` says the card in the chip station
    must go to the reject bin (废卡); ``step`` and ``sw`` name the script step and status word."""

    default_code = "smartcard.error"
    default_message_key = "smartcard.error"

    def __init__(
        self,
        message: str = "",
        *,
        code: str | None = None,
        message_key: str | None = None,
        audience: Audience | None = None,
        retryable: bool = False,
        reject_card: bool = False,
        step: str | None = None,
        sw: int | None = None,
    ) -> None:
        super().__init__(message, code=code, message_key=message_key, audience=audience, retryable=retryable)
        self.reject_card = reject_card
        self.step = step
        self.sw = sw


class ReaderUnavailableError(SmartCardError):
    default_code = "smartcard.reader_unavailable"
    default_message_key = "smartcard.reader_unavailable"


class NoCardError(SmartCardError):
    default_code = "smartcard.no_card"
    default_message_key = "smartcard.no_card"
    default_audience = Audience.CITIZEN


class CardRemovedError(SmartCardError):
    default_code = "smartcard.card_removed"
    default_message_key = "smartcard.card_removed"


class CardStatusError(SmartCardError):
    """The card answered a status word other than the expected one."""

    default_code = "smartcard.bad_status"
    default_message_key = "smartcard.bad_status"


class CardNotSupportedError(SmartCardError):
    """Not a social security card, or an algorithm we cannot use (SSF33)."""

    default_code = "smartcard.not_supported"
    default_message_key = "smartcard.not_supported"
    default_audience = Audience.CITIZEN


class CardDataError(SmartCardError):
    """The card data from the card-management system cannot be written (bad length, encoding)."""

    default_code = "smartcard.card_data_invalid"
    default_message_key = "smartcard.card_data_invalid"


class PersonalizationError(SmartCardError):
    """A personalization step failed; the card is rejected (never reported as good)."""

    default_code = "smartcard.personalization_failed"
    default_message_key = "smartcard.personalization_failed"


class CardNotBlankError(PersonalizationError):
    """The card in the chip station already carries SSSE data: it is rejected, not overwritten."""

    default_code = "smartcard.card_not_blank"
    default_message_key = "smartcard.card_not_blank"
    default_audience = Audience.STAFF


class ReadBackMismatchError(PersonalizationError):
    default_code = "smartcard.readback_mismatch"
    default_message_key = "smartcard.readback_mismatch"


class PinWrongError(SmartCardError):
    """63Cx: wrong PIN; ``tries_left`` more tries before the PIN locks."""

    default_code = "smartcard.pin_wrong"
    default_message_key = "smartcard.pin_wrong"
    default_audience = Audience.CITIZEN

    def __init__(self, message: str = "", *, tries_left: int = 0, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(message, **kwargs)
        self.tries_left = tries_left


class PinBlockedError(SmartCardError):
    """6983: the PIN is locked (密码已锁)."""

    default_code = "smartcard.pin_blocked"
    default_message_key = "smartcard.pin_blocked"
    default_audience = Audience.CITIZEN


class PinFormatError(SmartCardError):
    default_code = "smartcard.pin_format"
    default_message_key = "smartcard.pin_format"
    default_audience = Audience.CITIZEN


class KeyBackendError(SmartCardError):
    """The PSAM or the HSM could not do the key work."""

    default_code = "smartcard.key_backend_failed"
    default_message_key = "smartcard.key_backend_failed"


class CardAuthenticationError(SmartCardError):
    """The card failed internal authentication (not a genuine card) or refused ours."""

    default_code = "smartcard.authentication_failed"
    default_message_key = "smartcard.authentication_failed"


# --------------------------------------------------------------------------- protocols


@runtime_checkable
class SocialSecurityCardStation(Protocol):
    """The chip station (芯片读写) with its key back end: what the core calls."""

    def status(self) -> DeviceStatus: ...

    def read_card_basic(self) -> CardBasicInfo: ...

    def personalize(self, card: CardData) -> PersonalizationResult: ...

    def verify_pin(self, pin: bytearray) -> None: ...

    def change_pin(self, old_pin: bytearray, new_pin: bytearray) -> None: ...

    def reload_pin(self, new_pin: bytearray) -> None: ...

    def unblock_pin(self, pin: bytearray) -> None: ...

    def pin_tries_left(self) -> int: ...


@runtime_checkable
class PsamModule(Protocol):
    """The PSAM (终端安全模块) in the second slot, for the PSAM registry."""

    def status(self) -> DeviceStatus: ...

    def identity(self) -> PsamIdentity: ...
