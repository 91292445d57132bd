"""ESC/POS wire facts (pure functions over bytes): status queries and replies, and a streaming
parser of the command stream that the simulator and the PNG renderer share.

Status bits are Epson's (research/hardware.md §3, T2):

- ``DLE EOT 1`` printer status: fixed bits 1 and 4 (0x12); bit 3 offline.
- ``DLE EOT 2`` offline cause: bit 2 cover open, bit 5 printing stopped by paper end, bit 6 error.
- ``DLE EOT 3`` error cause: bit 3 autocutter error, bit 5 unrecoverable, bit 6 auto-recoverable.
- ``DLE EOT 4`` roll paper sensor: bits 2–3 (0x0C) near end, bits 5–6 (0x60) paper end.
- ``GS r 1`` paper sensor (not real-time: answered when the printer reaches it in its buffer,
  which makes it a "job processed" marker): bits 0–1 (0x03) near end, bits 2–3 (0x0C) end;
  bit 4 is 0, which tells it apart from a DLE EOT reply (bit 4 is 1).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

ESC = b"\x1b"
GS = b"\x1d"
DLE = b"\x10"
FS = b"\x1c"
EOT = b"\x04"

FIXED = 0x12  # bits 1 and 4 of every DLE EOT reply

DLE_EOT_PRINTER = DLE + EOT + b"\x01"
DLE_EOT_OFFLINE_CAUSE = DLE + EOT + b"\x02"
DLE_EOT_ERROR_CAUSE = DLE + EOT + b"\x03"
DLE_EOT_PAPER = DLE + EOT + b"\x04"
GS_R_PAPER = GS + b"r\x01"
# Epson's real-time "clear buffer(s)" (DLE DC4 fn=8, fixed parameters): drops what is left of a
# job after a paper end so it does not resume half a receipt once staff reload the roll.
CLEAR_BUFFER_PARAMS = bytes([1, 3, 20, 1, 6, 2, 8])
DLE_DC4_CLEAR_BUFFER = DLE + b"\x14\x08" + CLEAR_BUFFER_PARAMS
CHINESE_MODE_ON = FS + b"&"
CHINESE_MODE_OFF = FS + b"."

BIT_OFFLINE = 0x08
BIT_COVER_OPEN = 0x04
BIT_PAPER_END_STOP = 0x20
BIT_ERROR = 0x40
BIT_CUTTER_ERROR = 0x08
BIT_UNRECOVERABLE = 0x20
BIT_AUTO_RECOVERABLE = 0x40
BITS_NEAR_END = 0x0C
BITS_PAPER_END = 0x60
GS_R_NEAR_END = 0x03
GS_R_END = 0x0C


def is_dle_eot_reply(byte: int) -> bool:
    """A DLE EOT reply has bit 1 set, bit 4 set and bit 7 clear."""
    return byte & 0x93 == 0x12


def is_gs_r_reply(byte: int) -> bool:
    """A GS r reply has bits 4 and 7 clear."""
    return byte & 0x90 == 0x00


@dataclass(frozen=True)
class PrinterStatus:
    """The printer's state as its four DLE EOT replies tell it."""

    offline: bool = False
    cover_open: bool = False
    paper_end_stop: bool = False
    error: bool = False
    cutter_error: bool = False
    unrecoverable: bool = False
    paper_near_end: bool = False
    paper_end: bool = False

    def reply(self, n: int) -> int:
        """The byte a printer in this state answers to ``DLE EOT n``."""
        if n == 1:
            return FIXED | (BIT_OFFLINE if self.offline else 0)
        if n == 2:
            return (
                FIXED
                | (BIT_COVER_OPEN if self.cover_open else 0)
                | (BIT_PAPER_END_STOP if self.paper_end_stop else 0)
                | (BIT_ERROR if self.error else 0)
            )
        if n == 3:
            return (
                FIXED
                | (BIT_CUTTER_ERROR if self.cutter_error else 0)
                | (BIT_UNRECOVERABLE if self.unrecoverable else 0)
            )
        if n == 4:
            return (
                FIXED
                | (BITS_NEAR_END if self.paper_near_end else 0)
                | (BITS_PAPER_END if self.paper_end else 0)
            )
        raise ValueError(f"DLE EOT {n} is not a status query")

    def gs_r_reply(self) -> int:
        return (GS_R_NEAR_END if self.paper_near_end else 0) | (GS_R_END if self.paper_end else 0)

    @classmethod
    def from_replies(cls, printer: int, offline_cause: int, error_cause: int, paper: int) -> PrinterStatus:
        for byte in (printer, offline_cause, error_cause, paper):
            if not is_dle_eot_reply(byte):
                raise ValueError(f"0x{byte:02x} is not a DLE EOT reply")
        return cls(
            offline=bool(printer & BIT_OFFLINE),
            cover_open=bool(offline_cause & BIT_COVER_OPEN),
            paper_end_stop=bool(offline_cause & BIT_PAPER_END_STOP),
            error=bool(offline_cause & BIT_ERROR),
            cutter_error=bool(error_cause & BIT_CUTTER_ERROR),
            unrecoverable=bool(error_cause & BIT_UNRECOVERABLE),
            paper_near_end=bool(paper & BITS_NEAR_END),
            paper_end=bool(paper & BITS_PAPER_END),
        )


# --------------------------------------------------------------------------- command stream


class Op(enum.Enum):
    """What a parsed ESC/POS command does (only what the renderer and simulator need)."""

    TEXT = "text"  # printable bytes (GB18030 / ASCII)
    LF = "lf"
    INIT = "init"  # ESC @
    PRINT_MODE = "print_mode"  # ESC ! n
    BOLD = "bold"  # ESC E n
    UNDERLINE = "underline"  # ESC - n
    ALIGN = "align"  # ESC a n
    FEED_LINES = "feed_lines"  # ESC d n
    FEED_DOTS = "feed_dots"  # ESC J n
    CHAR_SIZE = "char_size"  # GS ! n
    CUT = "cut"  # GS V
    RASTER = "raster"  # GS v 0
    QR = "qr"  # GS ( k
    REAL_TIME_STATUS = "real_time_status"  # DLE EOT n
    TRANSMIT_STATUS = "transmit_status"  # GS r n
    CLEAR_BUFFER = "clear_buffer"  # DLE DC4 8 1 3 20 1 6 2 8 (real-time)
    CHINESE_ON = "chinese_on"  # FS &
    CHINESE_OFF = "chinese_off"  # FS .
    OTHER = "other"  # understood and ignored (code page, line spacing, …)


@dataclass(frozen=True)
class Command:
    op: Op
    raw: bytes
    arg: int = 0
    data: bytes = b""
    extra: tuple[int, ...] = ()


# Fixed-length commands: prefix → number of parameter bytes after it.
_FIXED: dict[bytes, tuple[Op, int]] = {
    ESC + b"@": (Op.INIT, 0),
    ESC + b"!": (Op.PRINT_MODE, 1),
    ESC + b"E": (Op.BOLD, 1),
    ESC + b"-": (Op.UNDERLINE, 1),
    ESC + b"a": (Op.ALIGN, 1),
    ESC + b"d": (Op.FEED_LINES, 1),
    ESC + b"J": (Op.FEED_DOTS, 1),
    ESC + b"t": (Op.OTHER, 1),
    ESC + b"M": (Op.OTHER, 1),
    ESC + b"2": (Op.OTHER, 0),
    ESC + b"3": (Op.OTHER, 1),
    ESC + b"G": (Op.OTHER, 1),
    ESC + b"{": (Op.OTHER, 1),
    ESC + b"V": (Op.OTHER, 1),
    ESC + b"=": (Op.OTHER, 1),
    ESC + b"p": (Op.OTHER, 3),
    ESC + b"c": (Op.OTHER, 2),
    GS + b"!": (Op.CHAR_SIZE, 1),
    GS + b"B": (Op.OTHER, 1),
    GS + b"H": (Op.OTHER, 1),
    GS + b"f": (Op.OTHER, 1),
    GS + b"h": (Op.OTHER, 1),
    GS + b"w": (Op.OTHER, 1),
    GS + b"b": (Op.OTHER, 1),
    GS + b"a": (Op.OTHER, 1),
    GS + b"L": (Op.OTHER, 2),
    GS + b"W": (Op.OTHER, 2),
    GS + b"r": (Op.TRANSMIT_STATUS, 1),
    DLE + EOT: (Op.REAL_TIME_STATUS, 1),
    DLE + b"\x05": (Op.OTHER, 1),  # DLE ENQ n (real-time request)
    FS + b"&": (Op.CHINESE_ON, 0),
    FS + b".": (Op.CHINESE_OFF, 0),
    FS + b"!": (Op.OTHER, 1),
    FS + b"W": (Op.OTHER, 1),
}


class Incomplete(Exception):
    """More bytes are needed to finish the command at the head of the buffer."""


@dataclass
class StreamParser:
    """Splits an ESC/POS byte stream into :class:`Command` values, across chunk boundaries.

    Unknown escape sequences become ``OTHER`` two-byte commands so one odd byte never stalls
    the stream (a real printer also just ignores what it does not know).
    """

    _buffer: bytearray = field(default_factory=bytearray)

    def feed(self, chunk: bytes) -> list[Command]:
        self._buffer += chunk
        commands: list[Command] = []
        while self._buffer:
            try:
                command, used = _parse_one(bytes(self._buffer))
            except Incomplete:
                break
            del self._buffer[:used]
            commands.append(command)
        return commands

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def flush(self) -> list[Command]:
        """The end of the stream: trailing text is text, a truncated command is OTHER."""
        rest = bytes(self._buffer)
        self._buffer.clear()
        if not rest:
            return []
        if rest[0] >= 0x20:
            return [Command(Op.TEXT, rest, data=rest)]
        return [Command(Op.OTHER, rest)]


def parse(stream: bytes) -> list[Command]:
    """Parses a whole stream (trailing bytes as by :meth:`StreamParser.flush`)."""
    parser = StreamParser()
    return parser.feed(stream) + parser.flush()


def _need(buf: bytes, n: int) -> None:
    if len(buf) < n:
        raise Incomplete


def _parse_one(buf: bytes) -> tuple[Command, int]:
    first = buf[0]
    if first == 0x0A:
        return Command(Op.LF, buf[:1]), 1
    if first == 0x0D:
        return Command(Op.OTHER, buf[:1]), 1
    if first in (0x1B, 0x1D, 0x10, 0x1C):
        return _parse_escape(buf)
    if first < 0x20:
        return Command(Op.OTHER, buf[:1]), 1
    # A run of printable bytes up to the next control byte. Bytes ≥ 0x80 start GB18030
    # sequences whose trailing bytes are ≥ 0x30, so no control byte can hide inside one.
    # A run reaching the end of the buffer may continue in the next chunk (possibly in the middle
    # of a multi-byte character): wait for the byte that ends it.
    end = 1
    while end < len(buf) and buf[end] >= 0x20:
        end += 1
    if end == len(buf):
        raise Incomplete
    return Command(Op.TEXT, buf[:end], data=buf[:end]), end


def _parse_escape(buf: bytes) -> tuple[Command, int]:
    _need(buf, 2)
    prefix = buf[:2]
    if prefix in _FIXED:
        op, n = _FIXED[prefix]
        _need(buf, 2 + n)
        raw = buf[: 2 + n]
        return Command(op, raw, arg=raw[2] if n else 0, extra=tuple(raw[2:])), 2 + n
    if prefix == GS + b"V":
        # GS V m (m = 0, 1, 48, 49) or GS V m n (m = 65, 66: feed n then cut)
        _need(buf, 3)
        m = buf[2]
        if m in (65, 66):
            _need(buf, 4)
            return Command(Op.CUT, buf[:4], arg=m, extra=(buf[3],)), 4
        return Command(Op.CUT, buf[:3], arg=m), 3
    if prefix == DLE + b"\x14":
        # DLE DC4 fn …: fn 8 (clear buffers) has 7 parameter bytes, fn 1/2 have 2.
        _need(buf, 3)
        n = 7 if buf[2] == 8 else 2
        _need(buf, 3 + n)
        op = Op.CLEAR_BUFFER if buf[2] == 8 and buf[3 : 3 + n] == CLEAR_BUFFER_PARAMS else Op.OTHER
        return Command(op, buf[: 3 + n], arg=buf[2]), 3 + n
    if prefix == GS + b"v":
        _need(buf, 8)
        # GS v 0 m xL xH yL yH d1…dk, k = (xL + xH·256) · (yL + yH·256)
        width_bytes = buf[4] + buf[5] * 256
        height = buf[6] + buf[7] * 256
        total = 8 + width_bytes * height
        _need(buf, total)
        return Command(Op.RASTER, buf[:total], data=buf[8:total], extra=(width_bytes, height)), total
    if prefix == GS + b"(":
        _need(buf, 5)
        length = buf[3] + buf[4] * 256
        total = 5 + length
        _need(buf, total)
        kind = buf[2:3]
        if kind == b"k":
            # pL pH cn fn [m] data: cn 49 = QR
            cn, fn = buf[5], buf[6]
            if cn == 49 and fn == 80:  # store data: m = '0', data follows
                return Command(Op.QR, buf[:total], arg=fn, data=buf[8:total]), total
            return Command(Op.QR, buf[:total], arg=fn, extra=tuple(buf[7:total])), total
        return Command(Op.OTHER, buf[:total]), total
    if prefix == GS + b"k":
        _need(buf, 3)
        m = buf[2]
        if m <= 6:  # NUL-terminated form
            end = buf.find(b"\x00", 3)
            if end < 0:
                raise Incomplete
            return Command(Op.OTHER, buf[: end + 1]), end + 1
        _need(buf, 4)
        total = 4 + buf[3]
        _need(buf, total)
        return Command(Op.OTHER, buf[:total]), total
    if prefix == ESC + b"*":
        _need(buf, 5)
        m = buf[2]
        dots = buf[3] + buf[4] * 256
        total = 5 + dots * (3 if m in (32, 33) else 1)
        _need(buf, total)
        return Command(Op.OTHER, buf[:total]), total
    return Command(Op.OTHER, prefix), 2
