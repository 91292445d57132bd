"""Encrypted PIN pad driver (密码键盘驱动): pyserial transport + a command set by name.

:class:`EncryptedPinPad` implements :class:`kiosk.devices.pinpad.PinPad`. It owns the serial
link and one lock; the wire format is the command set's (``commandset.py``, ``kmy3501.py``).
A PIN entry runs on a worker thread (:class:`PinEntrySession`) that streams key events to
listeners (one DIGIT per ``*``, CLEAR, CANCEL, ENTER) and ends in a :class:`PinBlock`
(encrypted entry) or a ``bytearray`` of digits (plain entry, social-security PIN only).

Nothing here logs frame contents: only operation names and status codes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, Self

import serial

from hardware.pinpad.commandset import ETX, STX, CommandSet, KeyByte, Reply, get_command_set
from kiosk.devices import DeviceState, DeviceStatus
from kiosk.devices.pinpad import (
    KeyAlgorithm,
    KeyEvent,
    KeyEventKind,
    KeyListener,
    PinBlock,
    PinEntryCancelledError,
    PinEntryTimeoutError,
    PinPadCommandError,
    PinPadError,
    PinPadFrameError,
    PinPadInfo,
    PinPadKeyCheckError,
    PinPadKeysMissingError,
    PinPadNoReplyError,
    wipe,
)

log = logging.getLogger(__name__)

DEVICE = "pinpad"
POLL_S = 0.05  # how often an entry loop looks at the cancel flag


class SerialLink(Protocol):
    timeout: float | None

    def reset_input_buffer(self) -> None: ...

    def write(self, data: bytes) -> int | None: ...

    def read(self, size: int = 1) -> bytes: ...

    def close(self) -> None: ...


def open_serial(port: str, baud: int) -> SerialLink:
    return serial.serial_for_url(port, baudrate=baud, bytesize=8, parity="N", stopbits=1, timeout=POLL_S)


class PinEntrySession:
    """One PIN entry on a worker thread. :meth:`wait` returns its result or raises its error."""

    def __init__(self, run: Callable[[PinEntrySession], Any]) -> None:
        self.cancelled = threading.Event()
        self._done = threading.Event()
        self._result: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, args=(run,), name="pinpad-entry", daemon=True)

    def _main(self, run: Callable[[PinEntrySession], Any]) -> None:
        try:
            self._result = run(self)
        except BaseException as exc:  # noqa: BLE001 — handed to the waiting thread, re-raised there
            self._error = exc
        finally:
            self._done.set()

    def start(self) -> PinEntrySession:
        self._thread.start()
        return self

    def cancel(self) -> None:
        self.cancelled.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout_s: float | None = None) -> Any:
        if not self._done.wait(timeout_s):
            raise PinEntryTimeoutError("entry session did not finish")
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._result


class EncryptedPinPad:
    """The PIN pad on a serial port. ``port`` may be a pty path from the simulator."""

    def __init__(
        self,
        port: str,
        *,
        baud: int = 9600,
        command_set: str | CommandSet = "kmy3501",
        reply_timeout_s: float = 1.0,
        serial_factory: Callable[[str, int], SerialLink] = open_serial,
    ) -> None:
        self.port = port
        self.baud = baud
        self.commands = get_command_set(command_set) if isinstance(command_set, str) else command_set
        self.reply_timeout_s = reply_timeout_s
        self._serial_factory = serial_factory
        self._link: SerialLink | None = None
        self._io = threading.RLock()
        self._listeners: list[KeyListener] = []
        self._session: PinEntrySession | None = None
        self._last_error: PinPadError | None = None

    # ------------------------------------------------------------------ link
    def open(self) -> EncryptedPinPad:
        with self._io:
            if self._link is None:
                try:
                    self._link = self._serial_factory(self.port, self.baud)
                except (serial.SerialException, OSError) as exc:
                    raise PinPadNoReplyError(f"cannot open {self.port}: {exc.__class__.__name__}") from exc
        return self

    def close(self) -> None:
        session = self._session
        if session is not None and not session.done:
            session.cancel()
            try:
                session.wait(5)
            except PinPadError:
                pass  # the entry was being abandoned anyway; its error is moot on close
        with self._io:
            if self._link is not None:
                self._link.close()
                self._link = None

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _require_link(self) -> SerialLink:
        if self._link is None:
            self.open()
        assert self._link is not None
        return self._link

    def _read_frame(self, first: bytes, deadline: float) -> bytes:
        """Reads up to ETX; ``first`` is the STX already read."""
        link = self._require_link()
        frame = bytearray(first)
        while time.monotonic() < deadline:
            byte = link.read(1)
            if not byte:
                continue
            frame += byte
            if byte[0] == ETX:
                return bytes(frame)
            if len(frame) > 600:
                raise PinPadFrameError("reply frame too long")
        raise PinPadNoReplyError("reply frame not finished in time", retryable=True)

    def _receive(self, operation: str) -> Reply:
        link = self._require_link()
        deadline = time.monotonic() + self.reply_timeout_s
        while time.monotonic() < deadline:
            byte = link.read(1)
            if byte and byte[0] == STX:
                reply = self.commands.decode_reply(self._read_frame(byte, deadline))
                log.debug("pinpad_reply", extra={"operation": operation, "status": f"{reply.status:02X}"})
                return reply
            # Anything before STX is noise or a late key byte of a finished entry: dropped.
        raise PinPadNoReplyError(f"{operation}: no reply from the PIN pad", retryable=True)

    def _transact(self, request: bytes | bytearray, operation: str, *, flush: bool = True) -> Reply:
        with self._io:
            link = self._require_link()
            if flush:
                link.reset_input_buffer()
            link.write(bytes(request))
            try:
                reply = self.commands.check(self._receive(operation), operation)
            except PinPadError as exc:
                self._last_error = exc
                log.warning("pinpad_command_failed", extra={"operation": operation, "code": exc.code})
                raise
            return reply

    # ------------------------------------------------------------------ management
    def reset(self) -> None:
        """Reset and self-test (复位自检). Raises on self-test/tamper errors."""
        reply = self._transact(self.commands.reset(), "reset")
        self._last_error = None
        if reply.status != 0x04:
            self._last_error = PinPadKeysMissingError("no valid master key after self-test")

    def info(self) -> PinPadInfo:
        model, firmware = self.commands.parse_version(self._transact(self.commands.version(), "version"))
        serial_no = (
            self._transact(self.commands.serial_number(), "serial").data.decode("ascii", "replace").strip()
        )
        keys = None
        request = self.commands.key_inventory()
        if request is not None:
            try:
                keys = self.commands.parse_inventory(self._transact(request, "inventory"))
            except PinPadCommandError as exc:
                if exc.code != "pinpad.invalid_command":
                    raise
        return PinPadInfo(model, serial_no, firmware, self.commands.name, keys)

    def status(self) -> DeviceStatus:
        session = self._session
        if session is not None and not session.done:
            return DeviceStatus(DEVICE, DeviceState.BUSY, code="pinpad.entry", message_key="pinpad.busy")
        try:
            self.reset()
        except PinPadNoReplyError as exc:
            return DeviceStatus(DEVICE, DeviceState.OFFLINE, exc.code, "pinpad.out_of_service", str(exc))
        except PinPadError as exc:
            state = DeviceState.ATTENTION if exc.code == "pinpad.battery" else DeviceState.FAULT
            return DeviceStatus(DEVICE, state, exc.code, exc.message_key, str(exc))
        if isinstance(self._last_error, PinPadKeysMissingError):
            err = self._last_error
            return DeviceStatus(DEVICE, DeviceState.FAULT, err.code, err.message_key, "no master key")
        return DeviceStatus(DEVICE, DeviceState.READY, message_key="pinpad.ready")

    def load_master_key(
        self, index: int, key: bytearray, algorithm: KeyAlgorithm, expected_check_value: str | None = None
    ) -> str:
        """Loads a clear master key at installation (主密钥灌装); returns the pad's check value.

        ``key`` is wiped before return, whatever happens.
        """
        frame = bytearray()
        try:
            with self._io:
                self._transact(self.commands.set_algorithm(algorithm), "set_algorithm")
                frame = bytearray(self.commands.load_master_key(index, key))
                kcv = self.commands.parse_check_value(self._transact(frame, "load_master_key"))
        finally:
            wipe(frame)
            wipe(key)
        log.info("pinpad_master_key_loaded", extra={"index": index, "algorithm": algorithm.value, "kcv": kcv})
        if expected_check_value is not None and expected_check_value.upper() != kcv:
            raise PinPadKeyCheckError(f"master key {index}: check value differs from the expected one")
        return kcv

    def load_working_key(
        self,
        master_index: int,
        working_index: int,
        encrypted_key: bytes,
        algorithm: KeyAlgorithm,
        expected_check_value: str | None = None,
    ) -> str:
        """Loads a working key delivered encrypted under master key ``master_index`` (工作密钥下载)."""
        with self._io:
            self._transact(self.commands.set_algorithm(algorithm), "set_algorithm")
            reply = self._transact(
                self.commands.load_working_key(master_index, working_index, encrypted_key), "load_working_key"
            )
        kcv = self.commands.parse_check_value(reply)
        log.info(
            "pinpad_working_key_loaded",
            extra={"master": master_index, "index": working_index, "algorithm": algorithm.value, "kcv": kcv},
        )
        if expected_check_value is not None and expected_check_value.upper() != kcv:
            raise PinPadKeyCheckError(f"working key {master_index}/{working_index}: check value mismatch")
        return kcv

    # ------------------------------------------------------------------ events
    def add_listener(self, listener: KeyListener) -> Callable[[], None]:
        """Key events of every entry go to ``listener`` (on the entry thread); returns an unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _emit(self, event: KeyEvent, on_key: KeyListener | None) -> None:
        for listener in ([on_key] if on_key else []) + list(self._listeners):
            try:
                listener(event)
            except Exception:  # a broken screen callback must not leave the pad in entry mode
                log.exception("pinpad_listener_failed")

    # ------------------------------------------------------------------ entry
    def start_pin_block_entry(
        self,
        account_number: str,
        key_slot: tuple[int, int],
        algorithm: KeyAlgorithm,
        length: int,
        timeout_s: int,
        on_key: KeyListener | None = None,
    ) -> PinEntrySession:
        """Starts an encrypted entry (密文输入); the session's result is a :class:`PinBlock`."""

        def run(session: PinEntrySession) -> PinBlock:
            with self._io:
                self._transact(self.commands.set_algorithm(algorithm), "set_algorithm")
                self._transact(self.commands.activate_key(*key_slot), "activate_key")
                self._transact(self.commands.load_account(account_number), "load_account")
                self._transact(self.commands.keypad_mode(plain=False), "keypad")
                self._run_entry(session, None, length, timeout_s, on_key)
                reply = self._transact(self.commands.read_pin_block(), "read_pin_block")
                if len(reply.data) != algorithm.block_size:
                    raise PinPadFrameError("PIN block of the wrong length")
                return PinBlock(reply.data, algorithm, key_slot)

        return self._start(run)

    def start_plain_entry(
        self, length: int, timeout_s: int, on_key: KeyListener | None = None
    ) -> PinEntrySession:
        """Starts a plain entry (明文输入) for the social-security PIN; result: ``bytearray`` of digits."""

        def run(session: PinEntrySession) -> bytearray:
            digits = bytearray()
            with self._io:
                try:
                    self._transact(self.commands.keypad_mode(plain=True), "keypad")
                    self._run_entry(session, digits, length, timeout_s, on_key)
                except BaseException:
                    wipe(digits)
                    raise
                return digits

        return self._start(run)

    def _start(self, run: Callable[[PinEntrySession], Any]) -> PinEntrySession:
        if self._session is not None and not self._session.done:
            raise PinPadCommandError("an entry is already running", code="pinpad.busy")
        self._require_link()
        self._session = PinEntrySession(run).start()
        return self._session

    def read_pin_block(
        self,
        account_number: str,
        key_slot: tuple[int, int],
        algorithm: KeyAlgorithm,
        length: int,
        timeout_s: int,
        on_key: KeyListener | None = None,
    ) -> PinBlock:
        session = self.start_pin_block_entry(account_number, key_slot, algorithm, length, timeout_s, on_key)
        result: PinBlock = session.wait()
        return result

    def read_plain_pin(self, length: int, timeout_s: int, on_key: KeyListener | None = None) -> bytearray:
        result: bytearray = self.start_plain_entry(length, timeout_s, on_key).wait()
        return result

    def cancel(self) -> None:
        """Cancels the running entry (the citizen touched 取消 on the screen, or the visit timed out)."""
        session = self._session
        if session is not None:
            session.cancel()

    def _close_keypad(self) -> None:
        try:
            self._transact(self.commands.keypad_close(), "keypad_close")
        except PinPadError as exc:
            # The entry is over either way; the next command resynchronises the link.
            log.warning("pinpad_close_failed", extra={"code": exc.code})

    def _run_entry(
        self,
        session: PinEntrySession,
        digits: bytearray | None,
        length: int,
        timeout_s: int,
        on_key: KeyListener | None,
    ) -> None:
        """Streams key bytes until ENTER. ``digits`` collects plain digits (None: encrypted entry)."""
        link = self._require_link()
        self._transact(self.commands.start_entry(length, timeout_s), "start_entry")
        log.info("pinpad_entry_started", extra={"plain": digits is not None, "length": length})
        # The pad enforces ``timeout_s``; the host gives it a little longer before giving up on it.
        deadline = time.monotonic() + timeout_s + 2 * self.reply_timeout_s
        count = 0
        while True:
            if session.cancelled.is_set():
                self._close_keypad()
                log.info("pinpad_entry_cancelled", extra={"by": "host"})
                raise PinEntryCancelledError("entry cancelled by the host")
            if time.monotonic() > deadline:
                self._close_keypad()
                raise PinEntryTimeoutError("the PIN pad did not end the entry in time")
            byte = link.read(1)
            if not byte:
                continue
            if byte[0] == STX:
                reply = self.commands.decode_reply(
                    self._read_frame(byte, time.monotonic() + self.reply_timeout_s)
                )
                self.commands.check(reply, "entry")  # 80h → PinEntryTimeoutError
                continue
            kind = self.commands.key_byte(byte[0])
            if kind is KeyByte.MASKED_DIGIT or (kind is KeyByte.PLAIN_DIGIT and digits is not None):
                if digits is not None:
                    digits.append(byte[0])
                count += 1
                self._emit(KeyEvent(KeyEventKind.DIGIT, count), on_key)
            elif kind is KeyByte.CLEAR:
                if digits:
                    digits[-1] = 0
                    del digits[-1]
                count = max(0, count - 1)
                self._emit(KeyEvent(KeyEventKind.CLEAR, count), on_key)
            elif kind is KeyByte.CANCEL:
                self._emit(KeyEvent(KeyEventKind.CANCEL, 0), on_key)
                log.info("pinpad_entry_cancelled", extra={"by": "citizen"})
                raise PinEntryCancelledError("the citizen pressed cancel")
            elif kind is KeyByte.ENTER:
                if count != length:
                    raise PinPadFrameError("ENTER before the PIN was complete")
                self._emit(KeyEvent(KeyEventKind.ENTER, count), on_key)
                log.info("pinpad_entry_finished")
                return
