"""ID card reader driver (身份证阅读器驱动): pyserial, GA/T 467 SAM_V module.

:class:`IdCardReader` implements :class:`kiosk.devices.idreader.IdReader`. It polls find on a
worker thread; when a card answers it runs select → read, emits one :class:`CardInserted` per
card (none while the same card lies there) and :class:`CardRemoved` when finds say it has gone.
Every command flushes the input first, waits for its reply with its own timeout, discards
garbage up to the next preamble and checks length and checksum. What is safe to repeat (find,
select, read: they change nothing) is retried, always from find (research/idcard.md §6); reset
SAM and set baud never are.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import date
from typing import Any, Protocol, Self

import serial

from hardware.idreader import protocol as p
from kiosk.devices import DeviceState, DeviceStatus
from kiosk.devices.idreader import (
    CardInserted,
    CardReadFailed,
    CardRemoved,
    CardRemovedError,
    FrameError,
    IdentityCard,
    IdReaderError,
    IdReaderEvent,
    IdReaderListener,
    NoCardError,
    PortUnavailableError,
    ReaderStatusError,
    ReplyTimeoutError,
    SamNotAuthorizedError,
    SelfTestFailedError,
    TruncatedFrameError,
)

log = logging.getLogger(__name__)

DEVICE = "idreader"
# pyserial read slice: a read returns as soon as the bytes asked for are there, so this only
# bounds how late a timeout is noticed.
READ_SLICE_S = 0.02


class SerialLink(Protocol):
    """The part of ``serial.Serial`` the driver uses (an in-memory twin serves the fuzz bench)."""

    def reset_input_buffer(self) -> None: ...

    def write(self, data: bytes) -> int | None: ...

    def read(self, size: int = 1) -> bytes: ...

    def close(self) -> None: ...


def receive_reply(
    link: SerialLink,
    rx: bytearray,
    timeout_s: float,
    *,
    inter_byte_timeout_s: float = 0.1,
    plausible: Callable[[p.Reply], bool] = lambda reply: True,
) -> p.Reply:
    """Reads one reply frame from ``link``, resynchronizing on garbage.

    Raises :class:`ReplyTimeoutError` when nothing complete arrives within ``timeout_s``,
    :class:`TruncatedFrameError` when a started frame stops for ``inter_byte_timeout_s``, and
    :class:`BadChecksumError` / :class:`FrameError` for a complete but bad frame. Replies that
    are well formed but not ``plausible`` for the command (a late answer to an earlier one) are
    skipped.
    """
    deadline = time.monotonic() + timeout_s
    last_rx = time.monotonic()
    while True:
        frame, discarded = p.take_frame(rx)
        if discarded:
            log.debug("idreader.resync", extra={"discarded": discarded})
        if frame is not None:
            reply = p.parse_reply(frame)
            if plausible(reply):
                return reply
            log.info("idreader.stale_reply_skipped", extra={"sw3": reply.sw3})
            continue
        if len(rx) >= p.HEADER_LEN:
            want = p.frame_length(bytes(rx[: p.HEADER_LEN])) - len(rx)
        else:
            want = p.HEADER_LEN - len(rx)
        now = time.monotonic()
        if rx.startswith(p.PREAMBLE) and now - last_rx > inter_byte_timeout_s:
            raise TruncatedFrameError(f"frame stopped after {len(rx)} bytes")
        if now >= deadline:
            if rx:
                raise TruncatedFrameError(f"timeout with {len(rx)} bytes of a frame")
            raise ReplyTimeoutError(f"no reply within {timeout_s:.3f} s")
        chunk = link.read(max(want, 1))
        if chunk:
            rx += chunk
            last_rx = time.monotonic()


def _plausible_for(command: p.Command | None) -> Callable[[p.Reply], bool]:
    """Whether a reply can be the answer to ``command`` (guards against a late earlier reply)."""

    def check(reply: p.Reply) -> bool:
        if reply.sw3 == p.Sw3.FIND_SUCCESS:
            return command is p.Command.FIND_CARD
        if reply.sw3 == p.Sw3.SUCCESS:
            if command is p.Command.SELECT_CARD:
                return len(reply.data) == 8
            if command in (p.Command.READ_TEXT_PHOTO, p.Command.READ_WITH_FINGERPRINT):
                return len(reply.data) >= 4 + p.TEXT_LEN
            return command is not p.Command.FIND_CARD
        return True

    return check


# Replies that show the SAM working: its own status check, and a card read (SAM authentication).
_PROVES_SAM = frozenset({p.Command.SAM_STATUS, p.Command.READ_TEXT_PHOTO, p.Command.READ_WITH_FINGERPRINT})


class IdCardReader:
    """Driver of a GA/T 467 SAM_V ID card reader on a serial port (``/dev/ttyUSB0``, a pty …).

    Timeouts are per command; ``retries`` is how many times a failed find → select → read is
    repeated from find. ``today`` is the day (or a callable giving it) validity is judged on,
    default Asia/Shanghai now. ``removal_confirmations`` finds answering "no card" in a row make
    a removal (a card sliding on the reader must not flicker in and out).
    """

    def __init__(
        self,
        port: str,
        baud: int = 115200,
        *,
        find_timeout_s: float = 0.5,
        select_timeout_s: float = 0.5,
        read_timeout_s: float = 2.0,
        poll_interval_s: float = 0.3,
        with_fingerprint: bool = False,
        retries: int = 2,
        inter_byte_timeout_s: float = 0.1,
        reopen_interval_s: float = 1.0,
        sam_check_interval_s: float = 3.0,
        removal_confirmations: int = 2,
        today: date | Callable[[], date] | None = None,
    ) -> None:
        self.port = port
        self.baud = baud
        self.find_timeout_s = find_timeout_s
        self.select_timeout_s = select_timeout_s
        self.read_timeout_s = read_timeout_s
        self.poll_interval_s = poll_interval_s
        self.with_fingerprint = with_fingerprint
        self.retries = retries
        self.inter_byte_timeout_s = inter_byte_timeout_s
        self.reopen_interval_s = reopen_interval_s
        self.sam_check_interval_s = sam_check_interval_s
        self.removal_confirmations = max(1, removal_confirmations)
        self._today = today
        self._link: Any = None
        self._rx = bytearray()
        self._io = threading.RLock()
        self._listeners: list[IdReaderListener] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._busy = False
        self._port_error: str | None = None
        self._module_fault: ReaderStatusError | None = None
        self._sam_id: str | None = None
        self.last_read_s: float | None = None

    # ----------------------------------------------------------------- port

    def open(self) -> IdCardReader:
        """Opens the port (idempotent); raises :class:`PortUnavailableError`. Polling checks the SAM."""
        with self._io:
            if self._link is None:
                try:
                    self._link = serial.Serial(
                        self.port, self.baud, timeout=READ_SLICE_S, write_timeout=1.0, exclusive=True
                    )
                except (serial.SerialException, OSError, ValueError) as exc:
                    self._port_error = type(exc).__name__
                    raise PortUnavailableError(f"cannot open {self.port}: {type(exc).__name__}") from exc
                self._port_error = None
                self._rx.clear()
                log.info("idreader.port_opened", extra={"port": self.port, "baud": self.baud})
        return self

    def close(self) -> None:
        self.stop()
        with self._io:
            self._drop_link()

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _drop_link(self) -> None:
        if self._link is not None:
            try:
                self._link.close()
            except (serial.SerialException, OSError) as exc:
                log.debug("idreader.close_failed", extra={"error": type(exc).__name__})
            self._link = None

    # ----------------------------------------------------------------- commands

    def _transact(self, command: p.Command | None, timeout_s: float, frame: bytes | None = None) -> p.Reply:
        """Sends one command (or the raw ``frame``) and returns its reply (I/O lock held by the caller)."""
        if self._link is None:
            self.open()
        link = self._link
        try:
            link.reset_input_buffer()
            self._rx.clear()
            if frame is None:
                assert command is not None
                frame = p.build_command(command)
            link.write(frame)
            reply = receive_reply(
                link,
                self._rx,
                timeout_s,
                inter_byte_timeout_s=self.inter_byte_timeout_s,
                plausible=_plausible_for(command),
            )
        except (serial.SerialException, OSError) as exc:
            # USB unplugged / pty closed: the port is gone until it can be opened again.
            self._port_error = type(exc).__name__
            self._drop_link()
            raise PortUnavailableError(f"{self.port}: {type(exc).__name__}") from exc
        self._note_module_state(command, reply)
        return reply

    def _note_module_state(self, command: p.Command | None, reply: p.Reply) -> None:
        """SW3 66/60 on any reply marks the module faulty; only a good SAM check or a good read
        clears it (a find answering "no card" says nothing about the SAM)."""
        if reply.sw3 in (p.Sw3.SAM_NOT_AUTHORIZED, p.Sw3.SELF_TEST_FAILED):
            if self._module_fault is None or self._module_fault.sw3 != reply.sw3:
                log.warning("idreader.module_fault", extra={"sw3": reply.sw3})
            self._module_fault = p.status_error(reply.sw3)
        elif reply.sw3 == p.Sw3.SUCCESS and command in _PROVES_SAM and self._module_fault is not None:
            log.info("idreader.module_recovered")
            self._module_fault = None

    def _day(self) -> date | None:
        if self._today is None:
            return None
        return self._today() if callable(self._today) else self._today

    def _find(self) -> p.Reply:
        reply = self._transact(p.Command.FIND_CARD, self.find_timeout_s)
        return p.check_reply(reply, "find", accept=(p.Sw3.FIND_SUCCESS,))

    def _select_and_read(self) -> IdentityCard:
        p.check_reply(self._transact(p.Command.SELECT_CARD, self.select_timeout_s), "select")
        command = p.Command.READ_WITH_FINGERPRINT if self.with_fingerprint else p.Command.READ_TEXT_PHOTO
        # 30 10 moves twice the bytes: give it the extra wire time on top of the read timeout.
        timeout = self.read_timeout_s + (1.5 * 2400 * 10 / self.baud if self.with_fingerprint else 0.0)
        reply = p.check_reply(self._transact(command, timeout), "read")
        record = p.split_read_data(reply.data)
        return p.parse_identity(record.text, record.photo, record.fingerprint, today=self._day())

    def _read_with_retries(self, found: bool) -> IdentityCard:
        """find (unless ``found``) → select → read, repeated from find on what is safe to repeat."""
        last: IdReaderError | None = None
        for attempt in range(self.retries + 1):
            started = time.monotonic()
            try:
                if not (found and attempt == 0):
                    self._find()
                card = self._select_and_read()
                self.last_read_s = time.monotonic() - started
                if attempt:
                    log.info("idreader.read_recovered", extra={"attempt": attempt + 1})
                return card
            except NoCardError as exc:
                # The card has gone (or never was there): a removal mid-read surfaces as such.
                if last is not None and isinstance(last, CardRemovedError):
                    raise last from exc
                raise
            except (FrameError, ReplyTimeoutError, CardRemovedError) as exc:
                last = exc
            except ReaderStatusError as exc:
                if not exc.retryable:
                    raise
                last = exc
            log.info("idreader.read_retry", extra={"attempt": attempt + 1, "code": last.code})
        assert last is not None
        raise last

    def read_identity(self) -> IdentityCard:
        """One find → select → read now, with safe retries; :class:`NoCardError` if no card."""
        with self._io:
            self._busy = True
            try:
                return self._read_with_retries(found=False)
            finally:
                self._busy = False

    def check_sam(self) -> None:
        """SAM status check (11 FF); raises the module's error (66, 60 …) if it is not OK."""
        with self._io:
            p.check_reply(self._transact(p.Command.SAM_STATUS, self.find_timeout_s), "sam_status")

    def sam_id(self) -> str:
        """The SAM management number (12 FF), retried on frame noise (U1 reads it 3 times)."""
        with self._io:
            last: IdReaderError | None = None
            for _ in range(self.retries + 1):
                try:
                    reply = p.check_reply(self._transact(p.Command.SAM_ID, self.find_timeout_s), "sam_id")
                    self._sam_id = p.format_sam_id(reply.data)
                    return self._sam_id
                except (FrameError, ReplyTimeoutError) as exc:
                    last = exc
            assert last is not None
            raise last

    def reset_sam(self) -> None:
        """Resets the SAM (10 FF). Never retried: a vendor tool labels it 慎用 (use with care)."""
        with self._io:
            p.check_reply(self._transact(p.Command.RESET_SAM, self.read_timeout_s), "reset")

    def read_new_address(self) -> str | None:
        """The newest appended address (30 03) of the card on the reader; ``None`` when it has none."""
        with self._io:
            self._find()
            p.check_reply(self._transact(p.Command.SELECT_CARD, self.select_timeout_s), "select")
            reply = self._transact(p.Command.READ_NEW_ADDRESS, self.read_timeout_s)
            if reply.sw3 == p.Sw3.NO_CONTENT:
                return None
            return p.parse_new_address(p.check_reply(reply, "new_address").data)

    def set_baud(self, baud: int) -> None:
        """Switches the module's and the port's speed (60 xx). Not retried: the speed may have changed."""
        frame = p.build_set_baud(baud)
        with self._io:
            p.check_reply(self._transact(None, self.find_timeout_s, frame=frame), "set_baud")
            self._link.baudrate = baud
            self.baud = baud

    # ----------------------------------------------------------------- status

    def status(self) -> DeviceStatus:
        """For the engineer menu: port gone, SAM not authorized, self-test failed, busy, ready."""
        detail = f"port={self.port} baud={self.baud}"
        if self._port_error is not None:
            return DeviceStatus(
                DEVICE, DeviceState.OFFLINE, "idreader.port_unavailable", "idreader.port_unavailable",
                f"{detail} error={self._port_error}",
            )  # fmt: skip
        fault = self._module_fault
        if isinstance(fault, (SamNotAuthorizedError, SelfTestFailedError)):
            return DeviceStatus(DEVICE, DeviceState.FAULT, fault.code, fault.message_key, detail)
        if self._link is None:
            return DeviceStatus(
                DEVICE, DeviceState.OFFLINE, "idreader.not_open", "idreader.port_unavailable", detail
            )
        if self._busy:
            return DeviceStatus(DEVICE, DeviceState.BUSY, "idreader.reading", "idreader.reading", detail)
        return DeviceStatus(DEVICE, DeviceState.READY, "ok", "idreader.ready", detail)

    # ----------------------------------------------------------------- polling

    def add_listener(self, listener: IdReaderListener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _emit(self, event: IdReaderEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a listener's bug must not stop the reader; it is logged
                log.exception("idreader.listener_failed")

    def start(self) -> None:
        """Starts polling on a worker thread (opens the port if needed; retries opening if gone)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, name="idreader-poll", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _poll(self) -> None:
        present = False  # a card lies on the reader and has had its event
        read_ok = False  # ... and was read (else retry the read on every poll)
        latched_iin: bytes | None = None
        absent = 0
        last_sam_check = float("-inf")  # check the SAM (11 FF) on the first idle poll
        while not self._stop.is_set():
            wait = self.poll_interval_s
            try:
                with self._io:
                    if self._link is None:
                        self.open()
                    find = self._transact(p.Command.FIND_CARD, self.find_timeout_s)
                    if find.sw3 == p.Sw3.FIND_SUCCESS:
                        absent = 0
                        iin = find.data[:4]
                        if present and read_ok and latched_iin and any(latched_iin) and iin != latched_iin:
                            # Another card answered without a "no card" in between: a swap.
                            self._emit(CardRemoved())
                            present = read_ok = False
                        if not read_ok:
                            self._busy = True
                            try:
                                card = self._read_with_retries(found=True)
                            except (FrameError, ReplyTimeoutError, ReaderStatusError) as exc:
                                log.info("idreader.poll_read_failed", extra={"code": exc.code})
                                # A card that left before select is no card; anything else lies
                                # there unread: say so once, keep trying on the next polls.
                                if not present and not isinstance(exc, NoCardError):
                                    self._emit(CardReadFailed(exc.code, exc.message_key))
                                    present = True
                            else:
                                present = read_ok = True
                                latched_iin = iin
                                self._emit(CardInserted(card, self.last_read_s or 0.0))
                            finally:
                                self._busy = False
                    elif find.sw3 == p.Sw3.FIND_FAILED and present:
                        absent += 1
                        if absent >= self.removal_confirmations:
                            present = read_ok = False
                            latched_iin = None
                            absent = 0
                            self._emit(CardRemoved())
                        else:
                            wait = min(self.poll_interval_s, 0.05)  # confirm the removal soon
                    now = time.monotonic()
                    faulty = self._module_fault is not None  # then check every poll, to see recovery
                    if not present and (faulty or now - last_sam_check >= self.sam_check_interval_s):
                        last_sam_check = now
                        self._transact(p.Command.SAM_STATUS, self.find_timeout_s)
            except PortUnavailableError as exc:
                log.warning("idreader.port_unavailable", extra={"code": exc.code})
                if present:
                    present = read_ok = False
                    self._emit(CardRemoved())
                wait = self.reopen_interval_s
            except IdReaderError as exc:
                # Noise on a find or the SAM check: the next poll starts afresh.
                log.info("idreader.poll_error", extra={"code": exc.code})
            self._stop.wait(wait)
