"""Card printer with chip station, reject bin and optional embosser (制卡机 / 卡片打印机): what the core calls.

A visit makes a card in steps the core journals one by one, so a restart can resume or
compensate (DESIGN.md "Layers"):

    feed_to_chip_station()   进卡到接触芯片工位   (the chip is then personalized over PC/SC)
    print_face(face)         打印卡面
    emboss(card_number, …)   凸字 (only on printers fitted with an embosser)
    eject_to_citizen()       出卡 (not taken in time → retracted into the reject bin 废卡箱)
    reject(reason)           废卡入废卡箱

``where_is_card()`` tells where the card is after any failure or restart. Failures are
:class:`CardPrinterError` subclasses carrying the card's ``position`` and ``card_number`` (when
known), a stable ``code``, a message key and the audience who must act. Stdlib only (plus
``kiosk.devices``).

Privacy: :class:`CardFace` holds name, ID number and photo; they are kept out of ``repr``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol, runtime_checkable

from kiosk.devices import Audience, DeviceError, DeviceStatus

# --------------------------------------------------------------------------- values


class CardPosition(enum.Enum):
    """Where a card is (卡片位置). ``NONE``: no card in the printer's path."""

    HOPPER = "hopper"  # 进卡箱 (still a blank card in the stack)
    CHIP_STATION = "chip_station"  # 接触芯片工位 (the encoder's contacts are on the chip)
    PRINT_HEAD = "print_head"  # 打印位 (inside, under the print head / after printing)
    OUTPUT_SLOT = "output_slot"  # 出卡口 (presented to the citizen, still held)
    REJECT_BIN = "reject_bin"  # 废卡箱
    TAKEN = "taken"  # taken by the citizen (领走)
    NONE = "none"

    @property
    def inside_printer(self) -> bool:
        """The card is in the printer's path, between the hopper and the exits."""
        return self in (CardPosition.CHIP_STATION, CardPosition.PRINT_HEAD, CardPosition.OUTPUT_SLOT)


class Sex(enum.Enum):
    """As printed on the card (性别)."""

    MALE = "male"
    FEMALE = "female"
    UNSPECIFIED = "unspecified"


@dataclass(frozen=True)
class CardFace:
    """The personalized side of a social security card (卡面个人化信息).

    ``ssn`` is the 社会保障号码 (the 18-character citizen ID number); ``photo`` the encoded image
    (JPEG/PNG bytes), empty for a child's card without a photo. ``name_latin`` is only used by
    the embosser (pinyin, upper case), never printed.
    """

    name: str = field(repr=False)
    sex: Sex
    ssn: str = field(repr=False)
    card_number: str
    issue_date: date
    photo: bytes = field(repr=False, default=b"")
    name_latin: str = field(repr=False, default="")


@dataclass(frozen=True)
class FedCard:
    """A card at the chip station after :meth:`CardPrinter.feed_to_chip_station`.

    ``card_number`` is the bureau's number on the blank card (e.g. ``A00000001``) when the
    printer can report it, else ``None`` (the core then takes it from the chip or the ledger).
    ``resumed`` is True when the card was already in the printer (no new card was fed).
    """

    position: CardPosition
    card_number: str | None
    resumed: bool = False


class EjectOutcome(enum.Enum):
    TAKEN = "taken"  # 已取卡
    RETRACTED = "retracted"  # not taken in time, pulled back into the reject bin (超时回收)


@dataclass(frozen=True)
class EjectResult:
    outcome: EjectOutcome
    card_number: str | None
    position: CardPosition
    waited_s: float


@dataclass(frozen=True)
class RejectResult:
    """A card put into the reject bin (废卡), with the reason the core gave."""

    card_number: str | None
    reason: str
    position: CardPosition = CardPosition.REJECT_BIN


@dataclass(frozen=True)
class PrinterCounters:
    """The printer's counters (计数器) and consumable levels.

    ``hopper_count`` / ``reject_bin_count`` are ``None`` when the printer only has empty/full
    sensors (most real printers); the ledger then counts by itself.
    """

    cards_fed: int = 0
    cards_printed: int = 0
    cards_ejected: int = 0
    cards_rejected: int = 0
    cards_embossed: int = 0
    ribbon_remaining: int | None = None
    ribbon_capacity: int | None = None
    hopper_count: int | None = None
    reject_bin_count: int | None = None
    reject_bin_capacity: int | None = None


@dataclass(frozen=True)
class RecoveryResult:
    """What :meth:`CardPrinter.recover` found after a restart and what it did (复位清卡)."""

    found_at: CardPosition
    card_number: str | None
    rejected: bool


# --------------------------------------------------------------------------- errors


class CardPrinterError(DeviceError):
    """Root of the card printer's errors. ``position`` says where the card is now (known after
    every failure: the driver reads it back), ``card_number`` which card it is when known."""

    default_code = "cardprinter.error"
    default_message_key = "cardprinter.error"
    default_audience = Audience.ENGINEER

    def __init__(
        self,
        message: str = "",
        *,
        position: CardPosition = CardPosition.NONE,
        card_number: str | None = None,
        code: str | None = None,
        message_key: str | None = None,
        audience: Audience | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message, code=code, message_key=message_key, audience=audience, retryable=retryable)
        self.position = position
        self.card_number = card_number


class CardPrinterOffline(CardPrinterError):
    default_code = "cardprinter.offline"
    default_message_key = "cardprinter.offline"


class CardPrinterProtocolError(CardPrinterError):
    """A reply that is not what the protocol allows (garbage, truncated, unknown)."""

    default_code = "cardprinter.protocol"
    default_message_key = "cardprinter.error"


class HopperEmpty(CardPrinterError):
    default_code = "cardprinter.hopper_empty"
    default_message_key = "cardprinter.hopper_empty"
    default_audience = Audience.STAFF


class RibbonOut(CardPrinterError):
    default_code = "cardprinter.ribbon_out"
    default_message_key = "cardprinter.ribbon_out"
    default_audience = Audience.STAFF


class CoverOpen(CardPrinterError):
    default_code = "cardprinter.cover_open"
    default_message_key = "cardprinter.cover_open"
    default_audience = Audience.STAFF


class RejectBinFull(CardPrinterError):
    default_code = "cardprinter.reject_bin_full"
    default_message_key = "cardprinter.reject_bin_full"
    default_audience = Audience.STAFF


class CardJam(CardPrinterError):
    """卡片堵塞: a mechanical fault during a move; ``position`` is where the card stopped."""

    default_code = "cardprinter.jam"
    default_message_key = "cardprinter.jam"
    default_audience = Audience.STAFF


class CardStuckAtChipStation(CardJam):
    default_code = "cardprinter.stuck_at_chip_station"
    default_message_key = "cardprinter.stuck_at_chip_station"


class CardInPrinter(CardPrinterError):
    """A card from an earlier visit is still inside: recover (reject) it before feeding."""

    default_code = "cardprinter.card_in_printer"
    default_message_key = "cardprinter.card_in_printer"
    default_audience = Audience.STAFF


class NoCardInPrinter(CardPrinterError):
    """A step that needs a card (print, emboss, eject) found none: the flow is out of order."""

    default_code = "cardprinter.no_card"
    default_message_key = "cardprinter.error"


class EmbosserNotFitted(CardPrinterError):
    default_code = "cardprinter.embosser_not_fitted"
    default_message_key = "cardprinter.error"


class CardNotTaken(CardPrinterError):
    """The card was presented and not taken, and could not be retracted: it sits in the slot."""

    default_code = "cardprinter.card_not_taken"
    default_message_key = "cardprinter.card_not_taken"
    default_audience = Audience.STAFF


# --------------------------------------------------------------------------- interface


@runtime_checkable
class CardPrinter(Protocol):
    """The card printer as the visit flow sees it. Every call blocks; run it off the UI thread."""

    def open(self) -> None:
        """Connects and sets the printer up for host-managed kiosk work."""

    def close(self) -> None: ...

    def status(self) -> DeviceStatus:
        """Staff-facing state: hopper near empty/empty, ribbon low/out, reject bin full, cover
        open, jam, card not taken; ``levels`` holds hopper/ribbon/reject-bin figures."""

    def where_is_card(self) -> CardPosition: ...

    def counters(self) -> PrinterCounters: ...

    def feed_to_chip_station(self) -> FedCard:
        """Takes a blank card from the hopper to the chip station (idempotent: a card already at
        the chip station is returned with ``resumed=True``)."""

    def accept_card_from_front(self) -> FedCard | None:
        """手动进卡: the holder's own card (to activate it, to change its PIN), pushed into the
        front slot, drawn in to the chip station. None while no card was pushed in (poll it);
        the card goes back with :meth:`eject_to_citizen`."""

    def reseat_at_chip_station(self) -> None:
        """Moves the card off the contacts and back (a chip that did not power up)."""

    def print_face(self, face: CardFace) -> None:
        """Prints the personalized side; the card stays inside (at the print position)."""

    def emboss(self, card_number: str, name_latin: str | None = None) -> None:
        """Embosses the card number (and the Latin name where configured)."""

    def eject_to_citizen(self, timeout_s: float | None = None) -> EjectResult:
        """Presents the card; waits for it to be taken, else retracts it into the reject bin."""

    def reject(self, reason: str) -> RejectResult:
        """Puts the card inside the printer into the reject bin (废卡)."""

    def recover(self, reason: str = "recovered_after_restart") -> RecoveryResult:
        """After a restart: rejects any card left in the printer's path and says where it was."""


__all__ = [
    "CardFace",
    "CardInPrinter",
    "CardJam",
    "CardNotTaken",
    "CardPosition",
    "CardPrinter",
    "CardPrinterError",
    "CardPrinterOffline",
    "CardPrinterProtocolError",
    "CardStuckAtChipStation",
    "CoverOpen",
    "DeviceStatus",
    "EjectOutcome",
    "EjectResult",
    "EmbosserNotFitted",
    "FedCard",
    "HopperEmpty",
    "NoCardInPrinter",
    "PrinterCounters",
    "RecoveryResult",
    "RejectBinFull",
    "RejectResult",
    "RibbonOut",
    "Sex",
]
