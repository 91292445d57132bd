"""ID card reader (身份证阅读器, GA/T 467 SAM_V module): what the core calls.

The core starts the reader's polling (``start``), listens for :class:`CardInserted` /
:class:`CardRemoved` / :class:`CardReadFailed` events, or asks for one read (``read_identity``).
What crosses the boundary is the frozen :class:`IdentityCard` (居民身份证 and the three other
layouts the same readers return). Failures are :class:`IdReaderError` subclasses with stable
codes and message keys. Stdlib only (plus ``kiosk.devices``).

Privacy: the ID number, name, address, photo and fingerprint are kept out of ``repr``; show the
ID number with :func:`mask_id_number` (first 6 + last 4).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol, runtime_checkable

from kiosk.devices import Audience, DeviceError, DeviceStatus

# --------------------------------------------------------------------------- values


class CardType(enum.Enum):
    """Card layout, from the type flag at text offset 248 (证件类型标识)."""

    RESIDENT = "resident"  # ' ' 居民身份证
    HK_MACAU_TAIWAN = "hk_macau_taiwan"  # 'J' 港澳台居民居住证
    FOREIGN_PERMANENT_2017 = "foreign_permanent_2017"  # 'I' 外国人永久居留身份证 (2017)
    FOREIGN_PERMANENT_2023 = "foreign_permanent_2023"  # 'Y' 外国人永久居留身份证 (2023)


class Sex(enum.Enum):
    """GB/T 2261.1 sex code (性别代码): 0 未知, 1 男, 2 女, 9 未说明."""

    UNKNOWN = "unknown"
    MALE = "male"
    FEMALE = "female"
    UNSPECIFIED = "unspecified"


class Validity(enum.Enum):
    """The card's period of validity (有效期限) against a given day (Asia/Shanghai)."""

    VALID = "valid"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    UNKNOWN = "unknown"  # a date on the card could not be read


def mask_id_number(id_number: str) -> str:
    """The ID number for screens and logs: first 6 and last 4 characters, ``*`` between.

    Numbers of 10 characters or fewer have nothing left to hide behind the first 6 + last 4, so
    only the last 4 are kept then.
    """
    n = len(id_number)
    if n > 10:
        return id_number[:6] + "*" * (n - 10) + id_number[-4:]
    return "*" * max(n - 4, 0) + id_number[-4:]


@dataclass(frozen=True)
class IdentityCard:
    """One read of an identity card (身份证信息), any of the four layouts.

    ``sex`` / ``ethnicity`` are ``None`` when the card holds a code outside the standard table:
    the raw code stays in ``sex_code`` / ``ethnicity_code`` and ``flags`` names it (never guessed).
    ``valid_until`` is ``None`` for 长期 (``long_term``) or an unreadable date (then flagged).
    ``id_number_valid`` is the GB 11643 check digit (resident, 'J' and 'Y' cards); ``None`` for the
    2017 foreign card, whose 15-character number has no published check character.
    ``validity`` was computed against ``checked_on`` (the reader's clock, Asia/Shanghai).
    ``photo`` is the raw 1024-byte WLT photo; ``fingerprint`` the opaque fingerprint data (30 10)
    or empty.
    """

    card_type: CardType
    name: str = field(repr=False)
    name_en: str | None = field(repr=False)
    sex: Sex | None
    sex_code: str
    ethnicity: str | None
    ethnicity_code: str | None
    birth_date: date | None = field(repr=False)
    address: str = field(repr=False)
    id_number: str = field(repr=False)
    issuer: str
    valid_from: date | None
    valid_until: date | None
    long_term: bool
    nationality: str | None
    id_number_valid: bool | None
    validity: Validity
    checked_on: date
    photo: bytes = field(repr=False, default=b"")
    fingerprint: bytes = field(repr=False, default=b"")
    permit_number: str | None = field(repr=False, default=None)  # 'J': 通行证号码
    issue_count: str | None = None  # 'J': 签发次数
    flags: tuple[str, ...] = ()

    @property
    def masked_id_number(self) -> str:
        return mask_id_number(self.id_number)

    def validity_on(self, today: date) -> Validity:
        """The validity against ``today`` (start and end day both inclusive; 长期 never expires)."""
        return validity_on(self.valid_from, self.valid_until, self.long_term, today)


def validity_on(valid_from: date | None, valid_until: date | None, long_term: bool, today: date) -> Validity:
    if valid_from is None or (valid_until is None and not long_term):
        return Validity.UNKNOWN
    if today < valid_from:
        return Validity.NOT_YET_VALID
    if valid_until is not None and today > valid_until:
        return Validity.EXPIRED
    return Validity.VALID


# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class CardInserted:
    """A card was placed and read (放置证件). Once per card: no repeat while it lies there."""

    card: IdentityCard
    read_s: float


@dataclass(frozen=True)
class CardRemoved:
    """The card that was read has left the reader (取走证件)."""


@dataclass(frozen=True)
class CardReadFailed:
    """A card lies on the reader but could not be read (ask the citizen to place it again)."""

    code: str
    message_key: str


IdReaderEvent = CardInserted | CardRemoved | CardReadFailed
IdReaderListener = Callable[[IdReaderEvent], None]


# --------------------------------------------------------------------------- errors


class IdReaderError(DeviceError):
    """Root of the ID reader's errors."""

    default_code = "idreader.error"
    default_message_key = "idreader.error"


class FrameError(IdReaderError):
    """A reply frame is malformed (bad preamble, length, layout)."""

    default_code = "idreader.bad_frame"
    default_message_key = "idreader.read_failed"


class BadChecksumError(FrameError):
    default_code = "idreader.bad_checksum"


class TruncatedFrameError(FrameError):
    default_code = "idreader.truncated_frame"


class ReplyTimeoutError(IdReaderError):
    """No complete reply within the command's timeout."""

    default_code = "idreader.timeout"
    default_message_key = "idreader.read_failed"


class PortUnavailableError(IdReaderError):
    """The serial port cannot be opened or has gone (USB unplugged)."""

    default_code = "idreader.port_unavailable"
    default_message_key = "idreader.port_unavailable"


class ReaderStatusError(IdReaderError):
    """The module answered with an SW3 status other than success. ``sw3`` is the raw byte."""

    def __init__(self, message: str = "", *, sw3: int, **kwargs: object) -> None:
        self.sw3 = sw3
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class NoCardError(ReaderStatusError):
    """No card on the reader (find 80 / select 81)."""

    default_code = "idreader.no_card"
    default_message_key = "idreader.no_card"
    default_audience = Audience.CITIZEN


class CardRemovedError(ReaderStatusError):
    """The card left during the read (SW3 41)."""

    default_code = "idreader.card_removed"
    default_message_key = "idreader.card_removed"
    default_audience = Audience.CITIZEN


class SamNotAuthorizedError(ReaderStatusError):
    default_code = "idreader.sam_not_authorized"
    default_message_key = "idreader.sam_not_authorized"


class SelfTestFailedError(ReaderStatusError):
    default_code = "idreader.self_test_failed"
    default_message_key = "idreader.self_test_failed"


class TextBlockError(IdReaderError):
    """The 256-byte text block cannot be parsed at all (wrong size)."""

    default_code = "idreader.bad_text"
    default_message_key = "idreader.read_failed"


class PhotoDecoderError(IdReaderError):
    """The WLT photo could not be decoded (生成照片失败)."""

    default_code = "idreader.photo_decode_failed"
    default_message_key = "idreader.photo_decode_failed"


class PhotoDecoderUnavailableError(PhotoDecoderError):
    """The vendor's WLT library or its symbol is missing."""

    default_code = "idreader.photo_decoder_missing"
    default_message_key = "idreader.photo_decoder_missing"


# --------------------------------------------------------------------------- interfaces


@dataclass(frozen=True)
class DecodedPhoto:
    """A decoded card photo: an image file's bytes (``media_type`` ``image/bmp`` or ``image/jpeg``)."""

    media_type: str
    data: bytes = field(repr=False)


@runtime_checkable
class PhotoDecoder(Protocol):
    """Turns the raw 1024-byte WLT photo into an image (vendor library or simulator)."""

    def decode(self, wlt: bytes) -> DecodedPhoto: ...


@runtime_checkable
class IdReader(Protocol):
    """What the core calls on the ID card reader.

    ``start`` begins polling on a worker thread; events go to every listener (on that thread).
    ``read_identity`` runs one find → select → read now (safe retries included) and raises
    :class:`NoCardError` when no card lies there; it may be called while polling runs.
    """

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def add_listener(self, listener: IdReaderListener) -> Callable[[], None]: ...

    def read_identity(self) -> IdentityCard: ...

    def status(self) -> DeviceStatus: ...

    def close(self) -> None: ...


@runtime_checkable
class SimulatedCardPlacer(Protocol):
    """The simulated reader's hand (模拟放卡): what the demo and end-to-end tests use to say
    "place card X". Keys are the ``key`` fields of ``config/demo-people.json`` plus the
    simulator's built-in cards. Only a simulator offers this; field hardware has a citizen."""

    def card_keys(self) -> list[str]: ...

    def place(self, key: str) -> None: ...

    def lift(self) -> None: ...
