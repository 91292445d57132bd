"""Evolis-style escape commands (卡片打印机指令集): framing, replies, error codes, panels.

Pure functions over bytes; no I/O. Source: research/hardware.md §1.2–1.5. Each command is
marked by where it comes from:

* [G] Evolis Programming Guide A5013 (E1): ``Pem``, ``Rtp``/``Rsn``/``Rfv``, ``Rse``, ``Sis``,
  ``Ss``/``Sr``/``Db``/``Se``/``Ser``, ``Pmi``, ``Rco``.
* [C] seen in kiosk code for newer firmware (E4/E5): ``Pcim``, ``Pcem``, ``Pcrm``, ``Pneab``,
  ``Psmgr``, ``Pbc``, ``Rlr;p`` / ``Rlr;h``.
* [ours] where no public source gives the wire form, we define one in the same style and say so:
  ``Rst`` (status flags, standing in for the SDK's ``evolis_get_status``; the flag names are the
  SDK's, E2), ``Rri`` (ribbon remaining/capacity, for ``evolis_get_ribbon``), ``Rcn`` (number
  printed on the blank card, answered by the simulator or a printer with a card-back reader),
  ``Dem`` (emboss one line, modelled on Datacard's ``~EM%font;h;v;data`` escape, D1/D2),
  ``Srs`` (reset after a mechanical fault), the ``BEZEL`` position word, the ``ERR <c>``
  reply form and the CR that ends each reply (on USB the real printer answers on the back
  channel; E1 gives replies as ASCII text without saying how they end).

Framing: ``ESC name ; p1 ; … ; pn CR`` (0x1B … 0x0D). ``Db`` carries binary panel data whose
length follows from its parameters, so the parser reads exactly that many bytes before the CR.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

ESC = 0x1B
CR = 0x0D
SEP = b";"

# The printable area of a CR-80 card at 300 dpi (E1 §2).
CARD_WIDTH_DOTS = 1016
CARD_HEIGHT_DOTS = 648

# A non-panel command longer than this is garbage: the parser drops it rather than buffer it.
MAX_COMMAND_BYTES = 512
# A reply longer than this is garbage.
MAX_REPLY_BYTES = 512

# Db levels parameter → bits per dot (E1: 2 → 1 bit, 32/64/128 → 5/6/7 bits).
PANEL_BITS = {2: 1, 32: 5, 64: 6, 128: 7}
PANELS = ("y", "m", "c", "k", "o")


class ErrorCode(enum.Enum):
    """The printer's error codes (E1 §5 NACK codes; ``B`` and ``N`` are [ours])."""

    COMMAND = "1"  # unknown command
    PARAMETER = "2"  # bad parameter
    MECHANICAL = "T"  # time-out / mechanical: jam
    COVER = "C"  # cover open
    FEEDER = "F"  # feeder (hopper) empty or feed failure
    RIBBON = "R"  # ribbon out / missing
    REJECT_BOX = "B"  # [ours] reject box full
    NO_CARD = "N"  # [ours] the command needs a card and there is none


class Flag(enum.Enum):
    """Status flags, named as in the Evolis SDK's status model (E2 ``evolis/Status.py``)."""

    INF_FEEDER_NEAR_EMPTY = "INF_FEEDER_NEAR_EMPTY"
    WAR_FEEDER_EMPTY = "WAR_FEEDER_EMPTY"
    INF_RIBBON_LOW = "INF_RIBBON_LOW"
    WAR_RIBBON_ENDED = "WAR_RIBBON_ENDED"
    WAR_NO_RIBBON = "WAR_NO_RIBBON"
    WAR_REJECT_BOX_FULL = "WAR_REJECT_BOX_FULL"
    WAR_COVER_OPEN = "WAR_COVER_OPEN"
    ERR_MECHANICAL = "ERR_MECHANICAL"
    ERR_HEAD_TEMP = "ERR_HEAD_TEMP"
    INF_CARD_SMART = "INF_CARD_SMART"
    INF_CARD_PRINT = "INF_CARD_PRINT"
    INF_CARD_EJECT = "INF_CARD_EJECT"


class PositionWord(enum.Enum):
    """Replies to ``Rlr;p`` (E4 comment table; ``BEZEL`` is [ours], the SDK's INF_CARD_EJECT)."""

    NO_CARD = "NO CARD"
    SMART_CARD = "SMART CARD"
    CARD = "CARD"  # inside, at the print position
    BEZEL = "BEZEL"


class ProtocolError(ValueError):
    """Bytes that do not follow the framing (raised by the pure functions here)."""


@dataclass(frozen=True)
class Command:
    """One escape command: ``name`` (``Sis``), ``params`` (strings) and, for ``Db``, ``data``."""

    name: str
    params: tuple[str, ...] = ()
    data: bytes = b""

    def __repr__(self) -> str:  # panel data would flood a log
        extra = f", data=<{len(self.data)} bytes>" if self.data else ""
        return f"Command({self.name!r}, {self.params!r}{extra})"


@dataclass(frozen=True)
class Reply:
    """A reply: ``OK``, a value, or ``ERR <code>``."""

    text: str
    error: ErrorCode | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,7}$")
_PARAM = re.compile(r"^[\x20-\x3A\x3C-\x7E]*$")  # printable ASCII except ';'


# --------------------------------------------------------------------------- encoding


def encode(name: str, *params: object) -> bytes:
    """``ESC name;p1;…;pn CR``. Parameters are text without ``;`` or control characters."""
    if not _NAME.match(name) or name == "Db":
        raise ProtocolError(f"bad command name {name!r}")
    parts = [name]
    for p in params:
        text = str(p)
        if not _PARAM.match(text):
            raise ProtocolError(f"bad parameter for {name}: not printable ASCII without ';'")
        parts.append(text)
    return bytes([ESC]) + ";".join(parts).encode("ascii") + bytes([CR])


def panel_size(levels: int) -> int:
    """Bytes of one ``Db`` panel: 1016 × 648 dots × bits per dot, rounded up to a byte."""
    try:
        bits = PANEL_BITS[levels]
    except KeyError:
        raise ProtocolError(f"unsupported panel levels {levels}") from None
    return (CARD_WIDTH_DOTS * CARD_HEIGHT_DOTS * bits + 7) // 8


def encode_panel(panel: str, levels: int, data: bytes) -> bytes:
    """``ESC Db;panel;levels;<data> CR`` (E1 "download bitmap")."""
    if panel not in PANELS:
        raise ProtocolError(f"unknown panel {panel!r}")
    if panel in ("k", "o") and levels != 2:
        raise ProtocolError("k and o panels are 1 bit (levels 2)")
    if len(data) != panel_size(levels):
        raise ProtocolError(f"panel data is {len(data)} bytes, expected {panel_size(levels)}")
    return bytes([ESC]) + f"Db;{panel};{levels};".encode("ascii") + data + bytes([CR])


def pack_panel(dots: np.ndarray, levels: int) -> bytes:
    """Packs a 648 × 1016 array of ink amounts (0 … levels−1) row-major, MSB first."""
    bits = PANEL_BITS.get(levels)
    if bits is None:
        raise ProtocolError(f"unsupported panel levels {levels}")
    if dots.shape != (CARD_HEIGHT_DOTS, CARD_WIDTH_DOTS):
        raise ProtocolError(f"panel must be {CARD_HEIGHT_DOTS}×{CARD_WIDTH_DOTS}, got {dots.shape}")
    values = np.clip(dots, 0, levels - 1).astype(np.uint64).reshape(-1)
    if bits == 1:
        return np.packbits(values.astype(np.uint8)).tobytes()
    # 8 dots of `bits` bits fill exactly `bits` bytes (1016 × 648 is a multiple of 8): gather
    # each group into one big-endian 64-bit word and keep its low `bits` bytes.
    shifts = np.arange(7, -1, -1, dtype=np.uint64) * np.uint64(bits)
    words = np.bitwise_or.reduce(values.reshape(-1, 8) << shifts, axis=1)
    return words.astype(">u8").view(np.uint8).reshape(-1, 8)[:, 8 - bits :].tobytes()


def unpack_panel(data: bytes, levels: int) -> np.ndarray:
    """The inverse of :func:`pack_panel`: a 648 × 1016 uint8 array of ink amounts."""
    bits = PANEL_BITS.get(levels)
    if bits is None:
        raise ProtocolError(f"unsupported panel levels {levels}")
    if len(data) != panel_size(levels):
        raise ProtocolError(f"panel data is {len(data)} bytes, expected {panel_size(levels)}")
    raw = np.frombuffer(data, dtype=np.uint8)
    if bits == 1:
        return np.unpackbits(raw).reshape(CARD_HEIGHT_DOTS, CARD_WIDTH_DOTS)
    padded = np.zeros((raw.size // bits, 8), dtype=np.uint8)
    padded[:, 8 - bits :] = raw.reshape(-1, bits)
    words = padded.view(">u8").astype(np.uint64)
    shifts = np.arange(7, -1, -1, dtype=np.uint64) * np.uint64(bits)
    values = (words >> shifts) & np.uint64(levels - 1)
    return values.astype(np.uint8).reshape(CARD_HEIGHT_DOTS, CARD_WIDTH_DOTS)


# --------------------------------------------------------------------------- commands the driver sends

# Set once at open: the host manages errors (Pem;2 [G]); feeding and ejecting never block
# (Psmgr;2 [C]); the printer's own bezel time-out action is off so the host decides what happens
# to a card not taken (Pbc;A;D [C]); input from the feeder (Pcim;F [C]); rejects go to the
# default reject box (Pcrm;D [C]).
SETUP = (("Pem", "2"), ("Psmgr", "2"), ("Pbc", "A", "D"), ("Pcim", "F"), ("Pcrm", "D"))


def setup_commands() -> list[bytes]:
    return [encode(*c) for c in SETUP]


def feed_to_chip_station() -> bytes:
    """``Sis`` [G]: the card goes under the contact station (from the feeder if none is inside)."""
    return encode("Sis")


def take_in_from_front() -> list[bytes]:
    """The holder's own card from the front slot to the contact station: input from the manual
    slot (``Pcim;M`` [C], after the older ``Pmi;M`` [G]), then ``Sis`` [G]. With ``Psmgr;2`` set
    the printer does not wait for a card: no card at the front → ``ERR F``."""
    return [encode("Pcim", "M"), encode("Sis")]


def input_from_feeder() -> bytes:
    """``Pcim;F`` [C]: card input from the feeder again (the set-up default)."""
    return encode("Pcim", "F")


def print_job(panels: Iterable[tuple[str, int, bytes]]) -> list[bytes]:
    """Keep the card after printing (``Pneab;E`` [C]), ``Ss`` start, ``Sr`` front side, one
    ``Db`` per panel, ``Se`` end: the card is printed and held at the print position."""
    out = [encode("Pneab", "E"), encode("Ss"), encode("Sr")]
    out += [encode_panel(p, levels, data) for p, levels, data in panels]
    out.append(encode("Se"))
    return out


def eject_commands() -> list[bytes]:
    """E4's eject: ``Ss``, ``Pneab;A;1``, ``Pcem;I`` (to the bezel), ``Se``."""
    return [encode("Ss"), encode("Pneab", "A", "1"), encode("Pcem", "I"), encode("Se")]


def reject_commands() -> list[bytes]:
    """E4's reject: ``Ss``, ``Pneab;A;1``, ``Pcrm;D``, ``Ser`` [G] (also retracts a card from the bezel)."""
    return [encode("Ss"), encode("Pneab", "A", "1"), encode("Pcrm", "D"), encode("Ser")]


def emboss_line(font: int, h_mils: int, v_mils: int, text: str) -> bytes:
    """``Dem;font;h;v;text`` [ours, after Datacard ~EM%]: offsets in mils, horizontal from the
    left edge to the centre of the first character, vertical from the bottom edge to the
    characters' midpoint (D2). Emboss fonts hold digits, A–Z, space and a few signs only."""
    if not re.fullmatch(r"[0-9A-Z .,/&'\-]{1,32}", text):
        raise ProtocolError("emboss text must be 1–32 of 0-9 A-Z space . , / & ' -")
    return encode("Dem", font, h_mils, v_mils, text)


# --------------------------------------------------------------------------- replies


def encode_reply(text: str) -> bytes:
    return text.encode("ascii") + bytes([CR])


def encode_error(code: ErrorCode) -> bytes:
    return encode_reply(f"ERR {code.value}")


def parse_reply(raw: bytes) -> Reply:
    """One reply (with or without its CR). Raises :class:`ProtocolError` for garbage."""
    if raw.endswith(bytes([CR])):
        raw = raw[:-1]
    if len(raw) > MAX_REPLY_BYTES:
        raise ProtocolError("reply too long")
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise ProtocolError("reply is not ASCII") from None
    if not text or any(not (0x20 <= ord(ch) < 0x7F) for ch in text):
        raise ProtocolError("empty reply or control characters in it")
    # "ERR <code>" is an error reply; a status-flags reply may itself begin with "ERR_MECHANICAL".
    if text == "ERR" or text.startswith("ERR "):
        code = text[3:].strip()
        try:
            return Reply(text, ErrorCode(code))
        except ValueError:
            raise ProtocolError(f"unknown error code {code!r}") from None
    return Reply(text)


def parse_position(reply: Reply) -> PositionWord:
    try:
        return PositionWord(reply.text)
    except ValueError:
        if reply.text == "OK":  # newer firmware answers OK for no card (E4)
            return PositionWord.NO_CARD
        raise ProtocolError(f"unknown position {reply.text!r}") from None


def parse_flags(reply: Reply) -> frozenset[Flag]:
    """``Rst``: ``OK`` or comma-separated flag names; names we do not know are kept out (and
    make the caller's status say 'unknown flag' in its detail, not crash)."""
    if reply.text == "OK":
        return frozenset()
    flags = set()
    for name in reply.text.split(","):
        try:
            flags.add(Flag(name.strip()))
        except ValueError:
            continue
    return frozenset(flags)


def parse_fields(reply: Reply) -> dict[str, int]:
    """``key=value,…`` (``Rco`` counters). Non-integer or malformed items raise."""
    out: dict[str, int] = {}
    if reply.text == "OK":
        return out
    for item in reply.text.split(","):
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise ProtocolError(f"bad counter item {item!r}")
        try:
            out[key] = int(value)
        except ValueError:
            raise ProtocolError(f"bad counter value {item!r}") from None
    return out


def parse_ribbon(reply: Reply) -> tuple[str, int, int]:
    """``Rri``: ``type,remaining,capacity`` (e.g. ``YMCKO,187,200``)."""
    parts = reply.text.split(",")
    if len(parts) != 3:
        raise ProtocolError(f"bad ribbon reply {reply.text!r}")
    try:
        remaining, capacity = int(parts[1]), int(parts[2])
    except ValueError:
        raise ProtocolError(f"bad ribbon reply {reply.text!r}") from None
    if remaining < 0 or capacity < 0:
        raise ProtocolError("negative ribbon count")
    return parts[0], remaining, capacity


# --------------------------------------------------------------------------- parsing commands (far end)


class CommandParser:
    """Splits a byte stream into :class:`Command` objects (the simulator's side of the link).

    Bytes before an ESC are skipped; a command that breaks the framing (bad name, no CR within
    :data:`MAX_COMMAND_BYTES`, a ``Db`` header that names an unknown panel) is reported as
    ``Command("?")`` so the far end answers ``ERR 1`` and the stream resynchronises at the next ESC.
    """

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, chunk: bytes) -> list[Command]:
        self._buf += chunk
        out: list[Command] = []
        while True:
            cmd = self._next()
            if cmd is None:
                return out
            out.append(cmd)

    def _next(self) -> Command | None:
        buf = self._buf
        start = buf.find(bytes([ESC]))
        if start < 0:
            buf.clear()
            return None
        if start:
            del buf[:start]
        if buf[1:4] == b"Db;":
            return self._next_panel()
        end = buf.find(bytes([CR]), 1, MAX_COMMAND_BYTES + 1)
        if end < 0:
            if len(buf) > MAX_COMMAND_BYTES:
                del buf[:1]  # no CR in reach: drop this ESC and look for the next one
                return Command("?")
            return None
        body = bytes(buf[1:end])
        del buf[: end + 1]
        try:
            text = body.decode("ascii")
        except UnicodeDecodeError:
            return Command("?")
        name, *params = text.split(";")
        if not _NAME.match(name) or any(not _PARAM.match(p) for p in params):
            return Command("?")
        return Command(name, tuple(params))

    def _next_panel(self) -> Command | None:
        buf = self._buf
        # Header: ESC Db;p;levels;   (at most 1 + 3 + 2 + 4 bytes)
        header_end = -1
        semis = 0
        for i in range(4, min(len(buf), 16)):
            if buf[i] == ord(";"):
                semis += 1
                if semis == 2:
                    header_end = i
                    break
        if header_end < 0:
            if len(buf) >= 16:
                del buf[:1]
                return Command("?")
            return None
        try:
            _, panel, levels_text = bytes(buf[1:header_end]).decode("ascii").split(";")
            levels = int(levels_text)
            size = panel_size(levels)
            if panel not in PANELS:
                raise ProtocolError(panel)
        except (UnicodeDecodeError, ValueError):
            del buf[:1]
            return Command("?")
        total = header_end + 1 + size + 1
        if len(buf) < total:
            return None
        if buf[total - 1] != CR:
            del buf[:1]
            return Command("?")
        data = bytes(buf[header_end + 1 : total - 1])
        del buf[:total]
        return Command("Db", (panel, str(levels)), data)


__all__ = [
    "CARD_HEIGHT_DOTS",
    "CARD_WIDTH_DOTS",
    "Command",
    "CommandParser",
    "ErrorCode",
    "Flag",
    "PositionWord",
    "ProtocolError",
    "Reply",
    "eject_commands",
    "emboss_line",
    "encode",
    "encode_error",
    "encode_panel",
    "encode_reply",
    "feed_to_chip_station",
    "pack_panel",
    "panel_size",
    "parse_fields",
    "parse_flags",
    "parse_position",
    "parse_reply",
    "parse_ribbon",
    "print_job",
    "reject_commands",
    "setup_commands",
    "take_in_from_front",
    "input_from_feeder",
    "unpack_panel",
]
