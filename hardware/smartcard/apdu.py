"""APDU layer over pyscard (PC/SC): command/response values, status words, one card channel.

Honest like pyscard itself: status words are surfaced as :class:`StatusWord` (each with a
message key), never hidden; the only things handled here are the ISO 7816-4 transport cases
61xx (GET RESPONSE until done) and 6Cxx (repeat with the length the card asked for).
Logging shows INS and SW only — never data, because APDUs carry PINs, MACs and personal data.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Self

from smartcard.Exceptions import CardConnectionException, NoCardException
from smartcard.scard import (
    SCARD_E_CANCELLED,
    SCARD_E_TIMEOUT,
    SCARD_PROTOCOL_T0,
    SCARD_PROTOCOL_T1,
    SCARD_S_SUCCESS,
    SCARD_SCOPE_USER,
    SCARD_SHARE_EXCLUSIVE,
    SCARD_SHARE_SHARED,
    SCARD_STATE_CHANGED,
    SCARD_STATE_MUTE,
    SCARD_STATE_PRESENT,
    SCARD_STATE_UNAWARE,
    SCardCancel,
    SCardEstablishContext,
    SCardGetStatusChange,
    SCardListReaders,
    SCardReleaseContext,
)
from smartcard.System import readers as pcsc_readers

from kiosk.devices.smartcard import (
    CardRemovedError,
    CardStatusError,
    NoCardError,
    ReaderUnavailableError,
)

log = logging.getLogger(__name__)


class StatusWord(enum.Enum):
    """Status words the social security card and PSAM answer (规范第5部分 §5), with message keys."""

    SUCCESS = 0x9000
    MORE_DATA = 0x6100  # 61xx
    PIN_WRONG = 0x63C0  # 63Cx, x = tries left
    WARNING_FILE_FILLED = 0x6281
    MEMORY_FAILURE = 0x6581
    WRONG_LENGTH = 0x6700
    SECURITY_NOT_SATISFIED = 0x6982
    AUTH_BLOCKED = 0x6983
    DATA_INVALID = 0x6984
    CONDITIONS_NOT_SATISFIED = 0x6985
    NO_CURRENT_EF = 0x6986
    SM_DATA_MISSING = 0x6987
    SM_DATA_WRONG = 0x6988
    WRONG_DATA = 0x6A80
    NOT_SUPPORTED = 0x6A81
    FILE_NOT_FOUND = 0x6A82
    RECORD_NOT_FOUND = 0x6A83
    NOT_ENOUGH_MEMORY = 0x6A84
    WRONG_P1P2 = 0x6A86
    KEY_NOT_FOUND = 0x6A88
    WRONG_OFFSET = 0x6B00
    WRONG_LE = 0x6C00  # 6Cxx, xx = right Le
    INS_NOT_SUPPORTED = 0x6D00
    CLA_NOT_SUPPORTED = 0x6E00
    NO_DIAGNOSIS = 0x6F00
    APPLICATION_BLOCKED = 0x9303
    UNKNOWN = -1

    @property
    def message_key(self) -> str:
        return f"smartcard.sw.{self.name.lower()}"

    @classmethod
    def of(cls, sw: int) -> StatusWord:
        if sw >> 8 == 0x61:
            return cls.MORE_DATA
        if sw >> 8 == 0x6C:
            return cls.WRONG_LE
        if sw & 0xFFF0 == 0x63C0:
            return cls.PIN_WRONG
        try:
            return cls(sw)
        except ValueError:
            return cls.UNKNOWN


@dataclass(frozen=True)
class CommandApdu:
    """One command APDU (short form). ``sensitive`` marks PIN/key data: never logged."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = field(default=b"", repr=False)
    le: int | None = None
    sensitive: bool = False

    def __post_init__(self) -> None:
        for name in ("cla", "ins", "p1", "p2"):
            if not 0 <= getattr(self, name) <= 0xFF:
                raise ValueError(f"{name} out of range")
        if len(self.data) > 255:
            raise ValueError("short APDU data is at most 255 bytes")
        if self.le is not None and not 0 <= self.le <= 0xFF:
            raise ValueError("Le out of range")

    def to_bytes(self) -> bytes:
        out = bytes((self.cla, self.ins, self.p1, self.p2))
        if self.data:
            out += bytes((len(self.data),)) + self.data
        if self.le is not None:
            out += bytes((self.le,))
        return out

    @classmethod
    def parse(cls, raw: bytes) -> CommandApdu:
        """Parses a short APDU (cases 1–4); raises ValueError on a malformed one."""
        if len(raw) < 4:
            raise ValueError("APDU shorter than 4 bytes")
        cla, ins, p1, p2 = raw[:4]
        body = raw[4:]
        if not body:
            return cls(cla, ins, p1, p2)
        if len(body) == 1:
            return cls(cla, ins, p1, p2, le=body[0])
        lc = body[0]
        if lc == 0 or len(body) not in (1 + lc, 2 + lc):
            raise ValueError("Lc does not match the data")
        le = body[1 + lc] if len(body) == 2 + lc else None
        return cls(cla, ins, p1, p2, bytes(body[1 : 1 + lc]), le)


@dataclass(frozen=True)
class ResponseApdu:
    data: bytes = field(repr=False)
    sw1: int
    sw2: int

    @property
    def sw(self) -> int:
        return (self.sw1 << 8) | self.sw2

    @property
    def status(self) -> StatusWord:
        return StatusWord.of(self.sw)

    @property
    def ok(self) -> bool:
        return self.sw == 0x9000

    def expect(self, *accepted: int, step: str = "") -> ResponseApdu:
        """Returns self when the SW is one of ``accepted`` (default 9000), else raises."""
        if self.sw in (accepted or (0x9000,)):
            return self
        raise CardStatusError(
            f"{step or 'apdu'} answered {self.sw:04X}",
            code=f"smartcard.sw_{self.sw:04x}",
            message_key=self.status.message_key,
            step=step or None,
            sw=self.sw,
        )


def list_readers() -> list[str]:
    """Reader names known to pcscd (empty when pcscd has none or is not running)."""
    try:
        return [str(r) for r in pcsc_readers()]
    except Exception as exc:  # noqa: BLE001 — pyscard raises a bare Exception subclass when pcscd is down
        log.debug("smartcard.list_readers_failed %s", type(exc).__name__)
        return []


class CardChannel:
    """One connection to the card in one reader (one card session).

    ``exclusive`` keeps other applications off the card for the whole session (personalization
    runs in one exclusive session). Use as a context manager.
    """

    def __init__(self, reader: str, *, exclusive: bool = False) -> None:
        self.reader = reader
        self._exclusive = exclusive
        self._connection = None
        self.atr: bytes = b""
        self.apdu_count = 0

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        matches = [r for r in pcsc_readers_safe() if str(r) == self.reader]
        if not matches:
            raise ReaderUnavailableError(f"reader {self.reader!r} not found")
        connection = matches[0].createConnection()
        try:
            connection.connect(
                protocol=SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1,
                mode=SCARD_SHARE_EXCLUSIVE if self._exclusive else SCARD_SHARE_SHARED,
            )
        except (NoCardException, CardConnectionException) as exc:
            _release_quietly(connection)
            raise NoCardError(f"no card in {self.reader!r}", retryable=True) from exc
        self._connection = connection
        self.atr = bytes(connection.getATR())
        log.debug("smartcard.connected reader=%s", self.reader)

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.disconnect()
            except CardConnectionException as exc:  # card already gone: nothing left to release
                log.debug("smartcard.disconnect_failed %s", type(exc).__name__)
            _release_quietly(self._connection)
            self._connection = None

    def _raw(self, apdu: list[int]) -> ResponseApdu:
        if self._connection is None:
            raise ReaderUnavailableError("channel not open")
        try:
            data, sw1, sw2 = self._connection.transmit(apdu)
        except CardConnectionException as exc:
            raise CardRemovedError(
                f"card gone from {self.reader!r} during INS {apdu[1]:02X}", reject_card=True
            ) from exc
        self.apdu_count += 1
        log.debug("smartcard.apdu ins=%02X sw=%02X%02X", apdu[1], sw1, sw2)
        return ResponseApdu(bytes(data), sw1, sw2)

    def transmit(self, command: CommandApdu) -> ResponseApdu:
        """Sends ``command``; follows 61xx with GET RESPONSE and repeats once on 6Cxx."""
        raw = list(command.to_bytes())
        try:
            response = self._raw(raw)
        finally:
            if command.sensitive:
                raw[:] = [0] * len(raw)
        if response.sw1 == 0x6C and command.le is not None and not command.sensitive:
            response = self._raw(
                list(
                    CommandApdu(
                        command.cla, command.ins, command.p1, command.p2, command.data, response.sw2
                    ).to_bytes()
                )
            )
        return self._collect(response)

    def transmit_secret(self, header: bytes, secret: bytearray, le: int | None = None) -> ResponseApdu:
        """Sends CLA INS P1 P2 ‖ Lc ‖ ``secret`` [‖ Le], where ``secret`` holds a PIN or key data.

        The APDU buffer is built in a bytearray and zeroed right after the exchange; the caller
        zeroes ``secret``. Only INS and SW reach the log.
        """
        if len(header) != 4 or len(secret) > 255:
            raise ValueError("bad header or data length")
        buffer = bytearray(header) + bytearray((len(secret),)) + secret
        if le is not None:
            buffer.append(le)
        raw = list(buffer)
        try:
            response = self._raw(raw)
        finally:
            buffer[:] = b"\x00" * len(buffer)
            raw[:] = [0] * len(raw)
        return self._collect(response)

    def _collect(self, response: ResponseApdu) -> ResponseApdu:
        data = bytearray(response.data)
        while response.sw1 == 0x61:
            response = self._raw([0x00, 0xC0, 0x00, 0x00, response.sw2])
            data += response.data
        return ResponseApdu(bytes(data), response.sw1, response.sw2)


def _release_quietly(connection) -> None:  # type: ignore[no-untyped-def]
    try:
        connection.release()
    except Exception as exc:  # noqa: BLE001 — a dead pcscd must not mask the error being reported
        log.debug("smartcard.release_failed %s", type(exc).__name__)


def wait_for_card(reader: str, timeout: float, *, present: bool = True, atr: bytes | None = None) -> bool:
    """Blocks until a card is present in (or, ``present=False``, absent from) ``reader`` — with
    ``atr``, until that very card is there; False on timeout. Uses SCardGetStatusChange, so it
    wakes at the event, not at a poll."""
    hresult, context = SCardEstablishContext(SCARD_SCOPE_USER)
    if hresult != SCARD_S_SUCCESS:
        raise ReaderUnavailableError(f"pcscd not reachable ({hresult & 0xFFFFFFFF:#x})")
    try:
        deadline = time.monotonic() + timeout
        state = SCARD_STATE_UNAWARE
        while True:
            remaining = max(0, int((deadline - time.monotonic()) * 1000))
            hresult, states = SCardGetStatusChange(context, remaining, [(reader, state)])
            if hresult == SCARD_E_TIMEOUT:
                return False
            if hresult != SCARD_S_SUCCESS:
                raise ReaderUnavailableError(f"reader {reader!r} not available ({hresult & 0xFFFFFFFF:#x})")
            _, state, current_atr = states[0]
            here = bool(state & SCARD_STATE_PRESENT) and not state & SCARD_STATE_MUTE
            if here == present and (not present or atr is None or bytes(current_atr) == atr):
                return True
            if time.monotonic() >= deadline:
                return False
            state &= ~SCARD_STATE_CHANGED
    finally:
        SCardReleaseContext(context)


def pcsc_readers_safe() -> list:
    try:
        return list(pcsc_readers())
    except Exception as exc:  # noqa: BLE001 — pcscd down: the caller reports reader_unavailable
        log.debug("smartcard.readers_failed %s", type(exc).__name__)
        return []


# --------------------------------------------------------------------------- reader watching


class CardEventKind(enum.Enum):
    INSERTED = "inserted"
    REMOVED = "removed"


@dataclass(frozen=True)
class CardEvent:
    kind: CardEventKind
    reader: str
    atr: bytes = b""


class ReaderWatcher:
    """Watches readers for card inserted / removed (SCardGetStatusChange on its own thread).

    ``on_event`` is called on the watcher thread. ``stop()`` cancels the blocking call at once
    (SCardCancel), so no polling delay is needed to shut down.
    """

    WAIT_MS = 500

    def __init__(self, readers: Iterable[str], on_event: Callable[[CardEvent], None]) -> None:
        self._readers = list(readers)
        self._on_event = on_event
        self._context: int | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._ready = threading.Event()

    def start(self) -> None:
        hresult, context = SCardEstablishContext(SCARD_SCOPE_USER)
        if hresult != SCARD_S_SUCCESS:
            raise ReaderUnavailableError(f"pcscd not reachable ({hresult:#x})")
        hresult, known = SCardListReaders(context, [])
        missing = [r for r in self._readers if r not in (known or [])]
        if missing:
            SCardReleaseContext(context)
            raise ReaderUnavailableError(f"readers not found: {missing}")
        self._context = context
        self._thread = threading.Thread(target=self._run, name="smartcard-watcher", daemon=True)
        self._thread.start()
        self._ready.wait(5)

    def stop(self) -> None:
        self._stopping.set()
        if self._context is not None:
            SCardCancel(self._context)
        if self._thread is not None:
            self._thread.join(self.WAIT_MS / 1000 + 5)
            if self._thread.is_alive():
                log.warning("smartcard.watcher_stuck")
                return  # releasing the context under a running call would block this thread too
        if self._context is not None:
            SCardReleaseContext(self._context)
            self._context = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        states = [(r, SCARD_STATE_UNAWARE) for r in self._readers]
        present = {r: False for r in self._readers}
        first = True
        while not self._stopping.is_set():
            # A bounded wait: SCardCancel wakes a call in progress, but a cancel that lands between
            # two calls is lost, so the loop must come round to check _stopping by itself.
            hresult, new_states = SCardGetStatusChange(self._context, 0 if first else self.WAIT_MS, states)
            if hresult == SCARD_E_CANCELLED or self._stopping.is_set():
                return
            if hresult == SCARD_E_TIMEOUT and not first:
                continue
            if hresult != SCARD_S_SUCCESS:
                log.warning("smartcard.watch_failed hresult=%#x", hresult & 0xFFFFFFFF)
                time.sleep(0.1)  # pcscd restarting: do not spin
                continue
            for reader, event_state, atr in new_states:
                now = bool(event_state & SCARD_STATE_PRESENT)
                if now != present[reader]:
                    present[reader] = now
                    if not first or now:
                        kind = CardEventKind.INSERTED if now else CardEventKind.REMOVED
                        self._on_event(CardEvent(kind, reader, bytes(atr) if now else b""))
            states = [(r, s & ~SCARD_STATE_CHANGED) for r, s, _ in new_states]
            if first:
                first = False
                self._ready.set()
