"""The ESC/POS receipt printer driver (凭条打印机驱动).

Protocol and transport are apart, as in python-escpos: python-escpos's ``Escpos`` class (through
its ``Dummy`` connection, which only collects bytes) builds every command of a receipt — text
style, native QR (``GS ( k``), cut — and a thin link carries the bytes and the status replies
over a TCP socket, a serial port or a device file (``/dev/usb/lp0``). python-escpos's own
connection classes are not used for I/O because ``File`` cannot read status replies and the
others read with one fixed timeout; status polling needs a deadline per query.

Chinese is sent as GB18030 bytes, line by line, after ``FS &`` (Chinese mode). We do not go
through python-escpos's MagicEncode: it switches code pages for lines without a Han character,
which breaks full-width punctuation (research/deps.md §4).

A job is followed by ``GS r 1``: the printer answers it only once it has processed everything
before it, so its reply means "the receipt is out"; while it has not come, the driver polls the
real-time ``DLE EOT`` statuses to learn why (paper end, cover open, cutter error).
"""

from __future__ import annotations

import logging
import os
import select
import socket
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from escpos.printer import Dummy

from kiosk.devices import DeviceState, DeviceStatus
from kiosk.devices.receipt import (
    OneTimeNotice,
    PaperState,
    PrintResult,
    ReceiptCoverOpen,
    ReceiptPaperOut,
    ReceiptPrinterError,
    ReceiptPrinterFault,
    ReceiptPrinterOffline,
    StaffReport,
    Voucher,
)
from printer.receipt import protocol as p
from printer.receipt.templates import (
    Align,
    Cut,
    Feed,
    QrCode,
    ReceiptLayout,
    Rule,
    TextLine,
    columns_for,
    notice_layout,
    report_layout,
    voucher_layout,
)

log = logging.getLogger(__name__)

DEVICE = "receipt"

# --------------------------------------------------------------------------- encoding


def encode_layout(layout: ReceiptLayout, *, profile: str = "RP326") -> bytes:
    """The ESC/POS bytes of a laid-out receipt."""
    printer = Dummy(profile=profile)
    printer.hw("INIT")
    printer._raw(p.CHINESE_MODE_ON)
    for element in layout.elements:
        if isinstance(element, TextLine):
            printer.set(
                align=element.align.value,
                bold=element.bold,
                custom_size=True,
                width=element.scale,
                height=element.scale,
            )
            printer._raw(element.text.encode("gb18030") + b"\n")
        elif isinstance(element, Rule):
            printer.set(align=Align.LEFT.value, bold=False, custom_size=True, width=1, height=1)
            printer._raw((element.char * layout.columns).encode("gb18030") + b"\n")
        elif isinstance(element, Feed):
            printer._raw(p.ESC + b"d" + bytes([element.lines]))
        elif isinstance(element, QrCode):
            printer.set(align=Align.CENTER.value)
            printer.qr(element.content, size=element.module_dots, native=True)
            printer._raw(b"\n")
            printer.set(align=Align.LEFT.value)
        elif isinstance(element, Cut):
            printer.cut()
    return bytes(printer.output)


# --------------------------------------------------------------------------- links


class ReceiptLink(Protocol):
    """The byte pipe to the printer."""

    def write(self, data: bytes) -> None: ...

    def read_byte(self, timeout_s: float) -> int | None:
        """One reply byte, or None when nothing came within the timeout."""
        ...

    def discard_input(self) -> None: ...

    def close(self) -> None: ...


class TcpLink:
    """Raw TCP (port 9100 style) to a network printer or the loopback simulator."""

    def __init__(self, host: str, port: int, *, connect_timeout_s: float = 2.0) -> None:
        self._address = (host, port)
        self._connect_timeout = connect_timeout_s
        self._sock: socket.socket | None = None
        self._pending: deque[int] = deque()

    def _socket(self) -> socket.socket:
        if self._sock is None:
            try:
                self._sock = socket.create_connection(self._address, timeout=self._connect_timeout)
            except OSError as exc:
                raise ReceiptPrinterOffline(f"connect {self._address[0]}:{self._address[1]}: {exc}") from exc
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self._sock

    def write(self, data: bytes) -> None:
        sock = self._socket()
        try:
            sock.settimeout(self._connect_timeout)
            sock.sendall(data)
        except OSError as exc:
            self._drop()
            raise ReceiptPrinterOffline(f"send: {exc}") from exc

    def read_byte(self, timeout_s: float) -> int | None:
        if self._pending:
            return self._pending.popleft()
        sock = self._socket()
        sock.settimeout(max(timeout_s, 0.001))
        try:
            chunk = sock.recv(64)
        except TimeoutError:
            return None
        except OSError as exc:
            self._drop()
            raise ReceiptPrinterOffline(f"recv: {exc}") from exc
        if not chunk:
            self._drop()
            raise ReceiptPrinterOffline("printer closed the connection")
        self._pending.extend(chunk)
        return self._pending.popleft()

    def discard_input(self) -> None:
        self._pending.clear()
        if self._sock is None:
            return
        self._sock.settimeout(0)
        try:
            while self._sock.recv(256):
                pass
        except (BlockingIOError, TimeoutError):
            pass
        except OSError:
            self._drop()

    def _drop(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def close(self) -> None:
        self._drop()


class SerialLink:
    """A serial port (``/dev/ttyUSB0``, or a pty slave) through pyserial."""

    def __init__(self, path: str, baud: int = 9600) -> None:
        import serial

        try:
            self._port = serial.Serial(path, baud, timeout=0.5, write_timeout=5)
        except (serial.SerialException, OSError) as exc:
            raise ReceiptPrinterOffline(f"open {path}: {exc}") from exc

    def write(self, data: bytes) -> None:
        try:
            self._port.write(data)
            self._port.flush()
        except Exception as exc:  # pyserial raises SerialException or OSError subclasses
            raise ReceiptPrinterOffline(f"write: {exc}") from exc

    def read_byte(self, timeout_s: float) -> int | None:
        self._port.timeout = timeout_s
        data = self._port.read(1)
        return data[0] if data else None

    def discard_input(self) -> None:
        self._port.reset_input_buffer()

    def close(self) -> None:
        self._port.close()


class DeviceFileLink:
    """A printer device file opened read-write (``/dev/usb/lp0``: the USB printer class has a
    back channel for the status replies)."""

    def __init__(self, path: str) -> None:
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        except OSError as exc:
            raise ReceiptPrinterOffline(f"open {path}: {exc}") from exc

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            raise ReceiptPrinterOffline(f"write: {exc}") from exc

    def read_byte(self, timeout_s: float) -> int | None:
        ready, _, _ = select.select([self._fd], [], [], timeout_s)
        if not ready:
            return None
        data = os.read(self._fd, 1)
        return data[0] if data else None

    def discard_input(self) -> None:
        while select.select([self._fd], [], [], 0)[0]:
            if not os.read(self._fd, 256):
                break

    def close(self) -> None:
        os.close(self._fd)


def open_link(transport: str, address: str, *, baud: int = 9600) -> ReceiptLink:
    """``tcp`` → ``host:port``; ``serial`` → a tty path; ``usb``/``file`` → a device file."""
    if transport == "tcp":
        host, _, port = address.rpartition(":")
        return TcpLink(host or "127.0.0.1", int(port))
    if transport == "serial":
        return SerialLink(address, baud)
    if transport in ("usb", "file"):
        return DeviceFileLink(address)
    raise ValueError(f"unknown receipt printer transport {transport!r}")


# --------------------------------------------------------------------------- driver


def paper_state_of(status: p.PrinterStatus) -> PaperState:
    if status.paper_end or status.paper_end_stop:
        return PaperState.OUT
    if status.paper_near_end:
        return PaperState.NEAR_END
    return PaperState.ADEQUATE


_PAPER_LEVEL = {PaperState.ADEQUATE: 2, PaperState.NEAR_END: 1, PaperState.OUT: 0}


class EscPosReceiptPrinter:
    """The receipt printer (implements ``kiosk.devices.receipt.ReceiptPrinter``).

    ``paper_dots`` is the printable width (576 for 80 mm, 384 for 58 mm); ``status_timeout_s``
    bounds each status reply; ``job_timeout_s`` bounds a whole receipt; ``poll_interval_s`` is how
    long the driver waits for the end-of-job marker before it asks the printer why.
    """

    def __init__(
        self,
        link: ReceiptLink,
        *,
        profile: str = "RP326",
        paper_dots: int = 576,
        language: str = "zh_CN",
        status_timeout_s: float = 1.0,
        job_timeout_s: float = 30.0,
        poll_interval_s: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._link = link
        self._profile = profile
        self._columns = columns_for(paper_dots)
        self._language = language
        self._status_timeout = status_timeout_s
        self._job_timeout = job_timeout_s
        self._poll_interval = poll_interval_s
        self._clock = clock

    # ---------------------------------------------------------------- status

    def _exchange(self, query: bytes) -> tuple[int, int | None]:
        """Sends a DLE EOT query and returns (its reply, a GS r marker seen meanwhile or None)."""
        self._link.write(query)
        deadline = self._clock() + self._status_timeout
        marker: int | None = None
        while True:
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise ReceiptPrinterOffline(f"no reply to DLE EOT {query[-1]}")
            byte = self._link.read_byte(remaining)
            if byte is None:
                continue
            if p.is_dle_eot_reply(byte):
                return byte, marker
            if p.is_gs_r_reply(byte):
                marker = byte
            else:
                log.warning("receipt.stray_reply byte=0x%02x", byte)

    def read_status(self) -> p.PrinterStatus:
        """All four real-time statuses (DLE EOT 1, 2, 3, 4)."""
        replies = [
            self._exchange(q)[0]
            for q in (p.DLE_EOT_PRINTER, p.DLE_EOT_OFFLINE_CAUSE, p.DLE_EOT_ERROR_CAUSE, p.DLE_EOT_PAPER)
        ]
        return p.PrinterStatus.from_replies(*replies)

    def paper_state(self) -> PaperState:
        try:
            return paper_state_of(self.read_status())
        except ReceiptPrinterOffline:
            return PaperState.UNKNOWN

    def status(self) -> DeviceStatus:
        try:
            self._link.discard_input()
            status = self.read_status()
        except ReceiptPrinterOffline as exc:
            return DeviceStatus(DEVICE, DeviceState.OFFLINE, exc.code, exc.message_key, detail=str(exc))
        paper = paper_state_of(status)
        levels = {"paper": _PAPER_LEVEL[paper]}
        if status.cutter_error or status.unrecoverable or (status.error and not status.cover_open):
            return DeviceStatus(
                DEVICE,
                DeviceState.FAULT,
                "receipt.fault",
                "receipt.fault",
                detail=f"cutter_error={status.cutter_error} unrecoverable={status.unrecoverable}",
                levels=levels,
            )
        if status.cover_open:
            return DeviceStatus(
                DEVICE, DeviceState.ATTENTION, "receipt.cover_open", "receipt.cover_open", levels=levels
            )
        if paper is PaperState.OUT:
            return DeviceStatus(
                DEVICE, DeviceState.ATTENTION, "receipt.paper_out", "receipt.paper_out", levels=levels
            )
        if status.offline:
            return DeviceStatus(
                DEVICE, DeviceState.ATTENTION, "receipt.not_ready", "receipt.not_ready", levels=levels
            )
        if paper is PaperState.NEAR_END:
            return DeviceStatus(
                DEVICE, DeviceState.READY, "receipt.paper_near_end", "receipt.paper_near_end", levels=levels
            )
        return DeviceStatus(DEVICE, DeviceState.READY, levels=levels)

    # ---------------------------------------------------------------- printing

    def print_voucher(self, voucher: Voucher) -> PrintResult:
        return self.print_layout(voucher_layout(voucher, columns=self._columns, language=self._language))

    def print_notice(self, notice: OneTimeNotice) -> PrintResult:
        return self.print_layout(notice_layout(notice, columns=self._columns, language=self._language))

    def print_report(self, report: StaffReport) -> PrintResult:
        return self.print_layout(report_layout(report, columns=self._columns, language=self._language))

    def print_layout(self, layout: ReceiptLayout) -> PrintResult:
        job = encode_layout(layout, profile=self._profile)
        self._link.discard_input()  # a late marker of an earlier, failed job must not end this one
        before = self.read_status()
        self._raise_if_not_ready(before, partial=False)
        log.info("receipt.print kind=%s bytes=%d", layout.kind, len(job))
        self._link.write(job + p.GS_R_PAPER)
        marker = self._await_marker()
        paper = PaperState.NEAR_END if marker & p.GS_R_NEAR_END else PaperState.ADEQUATE
        if marker & p.GS_R_END:
            paper = PaperState.OUT
        return PrintResult(len(job), paper)

    def _await_marker(self) -> int:
        deadline = self._clock() + self._job_timeout
        while True:
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise ReceiptPrinterOffline("receipt not confirmed within the job timeout")
            byte = self._link.read_byte(min(self._poll_interval, remaining))
            if byte is not None:
                if p.is_gs_r_reply(byte):
                    return byte
                continue  # a DLE EOT reply that came late: not ours to wait for
            # Nothing yet: the printer may be busy or stopped. Ask it (real-time, answered even
            # when its buffer is held).
            cause, marker = self._exchange(p.DLE_EOT_OFFLINE_CAUSE)
            if marker is not None:
                return marker
            if cause & (p.BIT_PAPER_END_STOP | p.BIT_COVER_OPEN | p.BIT_ERROR):
                status = self.read_status()
                self._link.write(p.DLE_DC4_CLEAR_BUFFER)
                self._raise_if_not_ready(status, partial=True)
                raise ReceiptPrinterFault("printer stopped during the receipt", code="receipt.stopped")

    def _raise_if_not_ready(self, status: p.PrinterStatus, *, partial: bool) -> None:
        where = "during the receipt" if partial else "before printing"
        if status.cutter_error or status.unrecoverable:
            raise ReceiptPrinterFault(f"printer error {where}")
        if status.cover_open:
            raise ReceiptCoverOpen(f"cover open {where}")
        if status.paper_end or status.paper_end_stop:
            log.warning("receipt.paper_out partial=%s", partial)
            raise ReceiptPaperOut(f"paper out {where}", partial=partial)
        if status.error:
            raise ReceiptPrinterFault(f"printer error {where}")

    def close(self) -> None:
        self._link.close()


__all__ = [
    "DeviceFileLink",
    "EscPosReceiptPrinter",
    "ReceiptLink",
    "ReceiptPrinterError",
    "SerialLink",
    "TcpLink",
    "encode_layout",
    "open_link",
    "paper_state_of",
]
