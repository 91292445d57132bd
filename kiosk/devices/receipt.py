"""Thermal receipt printer (凭条打印机): what the core calls.

The core hands the printer finished texts (already translated, already chosen by the business
rules) in frozen values: the business voucher (业务凭证) every transaction prints, the one-time
notice (一次性告知单) every business that cannot be completed prints, and a generic staff report
(the reject-bin handover list, the reconciliation report). The driver lays them out, masks the
ID and card numbers (first 6 / last 4), prints them as ESC/POS with Chinese in GB18030, and
reports the paper state (near end, out) for the staff menu. Stdlib only (plus ``kiosk.devices``).

Timestamps are aware datetimes (UTC in storage); receipts show them in Asia/Shanghai.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from kiosk.devices import Audience, DeviceError, DeviceStatus

# --------------------------------------------------------------------------- values


class PaperState(enum.Enum):
    """Roll paper sensor (纸卷传感器), from DLE EOT 4 / GS r 1."""

    ADEQUATE = "adequate"
    NEAR_END = "near_end"
    OUT = "out"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Voucher:
    """Business voucher (业务凭证) for the holder: one per transaction.

    ``id_number`` and the card numbers are given in full and masked by the printer's template
    (first 6 / last 4 for 18-digit IDs and bank card numbers); they are never logged
    (``repr=False``). ``completed_at`` must be timezone-aware. ``qr_url`` leads to the electronic
    social security card (电子社保卡) and is printed as a QR code.
    """

    business: str
    completed_at: datetime
    kiosk_id: str
    serial_number: str
    id_number: str = field(repr=False)
    result: str
    succeeded: bool = True
    card_number: str | None = field(default=None, repr=False)
    bank_card_number: str | None = field(default=None, repr=False)
    qr_url: str = ""
    qr_caption: str = "扫码领取电子社保卡"
    branch: str = ""
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.completed_at.tzinfo is None:
            raise ValueError("completed_at must be timezone-aware")
        if not self.serial_number:
            raise ValueError("a voucher needs a serial number (业务流水号)")


@dataclass(frozen=True)
class OneTimeNotice:
    """One-time notice (一次性告知单): the reason, the missing material, the process and time
    limits, and where to go — never a bare error (DOMAIN.md, "Rules the kiosk must enforce")."""

    business: str
    issued_at: datetime
    kiosk_id: str
    serial_number: str
    reason: str
    missing: tuple[str, ...]
    process: tuple[str, ...]
    time_limit: str
    where: str
    hotline: str = "12333"
    id_number: str | None = field(default=None, repr=False)
    branch: str = ""

    def __post_init__(self) -> None:
        if self.issued_at.tzinfo is None:
            raise ValueError("issued_at must be timezone-aware")
        if not self.reason or not self.where:
            raise ValueError("a one-time notice needs a reason and where to go")


@dataclass(frozen=True)
class StaffReport:
    """A list printed for branch staff (工作人员报表): the reject-bin handover list (废卡交接清单),
    the reconciliation report (对账单). ``fields`` are label/value lines above the table; each
    row has one cell per column; ``signatures`` are the lines staff sign (经办人, 复核人)."""

    title: str
    printed_at: datetime
    kiosk_id: str
    fields: tuple[tuple[str, str], ...] = ()
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    footer: tuple[str, ...] = ()
    signatures: tuple[str, ...] = ("经办人", "复核人")

    def __post_init__(self) -> None:
        if self.printed_at.tzinfo is None:
            raise ValueError("printed_at must be timezone-aware")
        for row in self.rows:
            if len(row) != len(self.columns):
                raise ValueError("every row needs one cell per column")


@dataclass(frozen=True)
class PrintResult:
    """What a finished print job reports: bytes sent and the paper state after it."""

    bytes_sent: int
    paper: PaperState


# --------------------------------------------------------------------------- errors


class ReceiptPrinterError(DeviceError):
    """Root of the receipt printer's errors."""

    default_code = "receipt.error"
    default_message_key = "receipt.error"
    default_audience = Audience.ENGINEER


class ReceiptPaperOut(ReceiptPrinterError):
    """Paper end (缺纸). ``partial`` is True when the roll ran out in the middle of a receipt
    (the holder got half a voucher; the driver has cleared the rest from the printer's buffer,
    staff reload and reprint); False when nothing was printed."""

    default_code = "receipt.paper_out"
    default_message_key = "receipt.paper_out"
    default_audience = Audience.STAFF

    def __init__(self, message: str = "", *, partial: bool = False, **kwargs: object) -> None:
        self.partial = partial
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class ReceiptCoverOpen(ReceiptPrinterError):
    default_code = "receipt.cover_open"
    default_message_key = "receipt.cover_open"
    default_audience = Audience.STAFF


class ReceiptPrinterFault(ReceiptPrinterError):
    """Cutter error or another error the printer reports (DLE EOT 3): needs an engineer."""

    default_code = "receipt.fault"
    default_message_key = "receipt.fault"
    default_audience = Audience.ENGINEER


class ReceiptPrinterOffline(ReceiptPrinterError):
    """No answer on the link (port gone, connection refused, no status reply)."""

    default_code = "receipt.offline"
    default_message_key = "receipt.offline"
    default_audience = Audience.ENGINEER

    def __init__(self, message: str = "", **kwargs: object) -> None:
        kwargs.setdefault("retryable", True)
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- interface


@runtime_checkable
class ReceiptPrinter(Protocol):
    """The thermal receipt printer as the core sees it."""

    def status(self) -> DeviceStatus:
        """Polls the printer (DLE EOT 1/2/3/4) and maps it for staff: paper near end → READY
        with code ``receipt.paper_near_end`` (still serves citizens, staff are alerted), paper
        out / cover open → ATTENTION, cutter or other error → FAULT, no answer → OFFLINE.
        ``levels["paper"]`` is 2 adequate, 1 near end, 0 out."""
        ...

    def paper_state(self) -> PaperState: ...

    def print_voucher(self, voucher: Voucher) -> PrintResult:
        """Prints the voucher and waits until the printer has processed it. Raises
        :class:`ReceiptPaperOut` (``partial`` True if the roll ended mid-receipt),
        :class:`ReceiptCoverOpen`, :class:`ReceiptPrinterOffline`, :class:`ReceiptPrinterFault`."""
        ...

    def print_notice(self, notice: OneTimeNotice) -> PrintResult: ...

    def print_report(self, report: StaffReport) -> PrintResult: ...

    def close(self) -> None: ...
