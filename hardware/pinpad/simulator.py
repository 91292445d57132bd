"""Simulated KMY3501 encrypted PIN pad (密码键盘模拟器) on a pseudo-terminal.

:class:`PinPadSimulator` owns the master side of a pty (``os.openpty``); the driver opens
:attr:`PinPadSimulator.path` with pyserial exactly as it opens ``/dev/ttyUSB0``. It speaks the
KMY3501 command set byte for byte (``kmy3501.py``), holds master and working keys, computes real
check values and PIN blocks (``pinblock.py``), and streams one key byte per key press.

Key presses come from :meth:`press` / :meth:`press_digits` (tests, the on-screen stand-in keypad
of ``kiosk demo``) or from a script queued with :meth:`queue_keys`, played when the next entry
starts. The clear PIN exists only inside this object — as it exists only inside a real pad.

Faults (:meth:`fault_names`): ``no_reply``, ``bad_bcc``, ``entry_timeout``, ``self_test_error``,
``tamper``, ``keys_missing``, ``battery_low``, ``garbage``. Output is not paced at the baud rate.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Self

from hardware.pinpad import kmy3501 as k
from hardware.pinpad import pinblock
from hardware.pinpad.commandset import ETX, STX
from hardware.ptylink import PseudoTerminal
from kiosk.devices.pinpad import KeyAlgorithm, PinPadError, wipe

log = logging.getLogger(__name__)

FAULTS = (
    "no_reply",  # swallow the next command(s)
    "bad_bcc",  # corrupt the BCC of the next reply(ies)
    "entry_timeout",  # the next entry times out at once (80h)
    "self_test_error",  # reset/self-test answers F2h
    "tamper",  # tamper switch: keys erased, self-test F1h, other commands B5h until cleared
    "keys_missing",  # erase every key now (A4h/B5h from then on)
    "battery_low",  # reset/self-test answers C4h
    "garbage",  # the next reply(ies) replaced by line noise (``length`` bytes, default 12)
)

# Fictitious keys for `kiosk demo` (never a real bank's): the demo pad and the demo back end share them.
DEMO_MASTER_KEY = bytes.fromhex("5A5A5A5A5A5A5A5AA5A5A5A5A5A5A5A5")
DEMO_PIN_KEY = bytes.fromhex("3C3C3C3C3C3C3C3CC3C3C3C3C3C3C3C3")

KEY_NAMES = {"CLEAR": k.KEY_CLEAR, "CANCEL": k.KEY_CANCEL, "ENTER": k.KEY_ENTER}
SCRIPT_ALIASES = {"C": "CLEAR", "X": "CANCEL", "E": "ENTER"}


@dataclass
class _Key:
    algorithm: KeyAlgorithm
    value: bytearray


@dataclass
class _Entry:
    length: int
    deadline: float
    plain: bool
    digits: bytearray


class PinPadSimulator:
    """The far end of the PIN pad link. Use as a context manager or call start()/stop()."""

    def __init__(
        self, *, serial: str = "SIM00003501", firmware: str = "SIM-3.20", key_delay_s: float = 0.0
    ) -> None:
        self._serial = serial
        self._firmware = firmware
        self._key_delay_s = key_delay_s
        self._lock = threading.RLock()
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pty: PseudoTerminal | None = None
        self._master: int | None = None
        self._path = ""
        self._faults: dict[str, int | None] = {}
        self._keys: dict[tuple[int, int | None], _Key] = {}
        self._mode = KeyAlgorithm.TDES
        self._active: tuple[int, int] | None = None
        self._account = ""
        self._plain_keypad = False
        self._entry: _Entry | None = None
        self._entered: bytearray | None = None  # PIN after ENTER, until the block is read
        self._script: deque[str] = deque()
        self.entry_started = threading.Event()
        self.commands_seen: list[int] = []
        self._garbage_length = 12

    # ------------------------------------------------------------------ lifecycle
    @property
    def path(self) -> str:
        return self._path

    def start(self) -> PinPadSimulator:
        if self._thread is not None:
            return self
        self._pty = PseudoTerminal()
        self._master, self._path = self._pty.master, self._pty.path
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name="pinpad-simulator", daemon=True)
        self._thread.start()
        log.info("pinpad_simulator_started", extra={"path": self._path})
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._pty is not None:
            self._pty.close()
            self._pty = None
        self._master = None
        with self._lock:
            self._end_entry()
            if self._entered is not None:
                wipe(self._entered)
                self._entered = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ faults
    def fault_names(self) -> list[str]:
        return list(FAULTS)

    def inject(self, name: str, count: int | None = None, **params: Any) -> None:
        """Injects ``name`` for the next ``count`` occurrences (``None``: until cleared)."""
        if name not in FAULTS:
            raise PinPadError(f"unknown simulator fault {name!r}", code="pinpad.unknown_fault")
        with self._lock:
            if name in ("keys_missing", "tamper"):
                self._erase_keys()
            self._faults[name] = count
            if name == "garbage":
                self._garbage_length = int(params.get("length", 12))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, name: str) -> bool:
        if name not in self._faults:
            return False
        left = self._faults[name]
        if left is not None:
            if left <= 1:
                del self._faults[name]
            else:
                self._faults[name] = left - 1
        return True

    # ------------------------------------------------------------------ keys (for set-up and tests)
    def install_master_key(self, index: int, key: bytes, algorithm: KeyAlgorithm) -> None:
        """Puts a master key in the pad as the installer's key ceremony would."""
        with self._lock:
            self._keys[(index, None)] = _Key(algorithm, bytearray(key))

    def install_working_key(
        self, master_index: int, working_index: int, key: bytes, algorithm: KeyAlgorithm
    ) -> None:
        with self._lock:
            self._keys[(master_index, working_index)] = _Key(algorithm, bytearray(key))

    def install_demo_keys(self, master_index: int, working_index: int, algorithm: KeyAlgorithm) -> None:
        """Loads the fictitious demo master key and PIN key (``kiosk demo``)."""
        self.install_master_key(master_index, DEMO_MASTER_KEY, algorithm)
        self.install_working_key(master_index, working_index, DEMO_PIN_KEY, algorithm)

    def _erase_keys(self) -> None:
        for key in self._keys.values():
            wipe(key.value)
        self._keys.clear()
        self._active = None

    # ------------------------------------------------------------------ key presses
    @property
    def entry_active(self) -> bool:
        with self._lock:
            return self._entry is not None

    def wait_entry(self, timeout_s: float = 5.0) -> bool:
        """Waits until an entry is open (for live presses from tests)."""
        return self.entry_started.wait(timeout_s)

    def queue_keys(self, keys: Iterable[str] | str) -> None:
        """Queues a key script played when the next entry starts.

        A string is read character by character: digits, ``C`` CLEAR, ``X`` CANCEL, ``E`` ENTER.
        """
        with self._lock:
            for key in keys:
                self._script.append(SCRIPT_ALIASES.get(key, key))

    def press_digits(self, digits: str, *, enter: bool = True) -> None:
        for digit in digits:
            self.press(digit)
        if enter:
            self.press("ENTER")

    def press(self, key: str) -> bool:
        """One key press: ``"0"``–``"9"``, ``"CLEAR"``, ``"CANCEL"``, ``"ENTER"``.

        Returns False when the pad ignored it (no entry open, PIN full, ENTER too early).
        """
        key = SCRIPT_ALIASES.get(key, key)
        with self._lock:
            entry = self._entry
            if entry is None:
                return False
            if len(key) == 1 and key.isdigit():
                if len(entry.digits) >= entry.length:
                    return False
                entry.digits.append(ord(key))
                self._send(bytes([ord(key) if entry.plain else k.KEY_MASKED]))
                return True
            if key == "CLEAR":
                if not entry.digits:
                    return False
                entry.digits[-1] = 0
                del entry.digits[-1]
                self._send(bytes([k.KEY_CLEAR]))
                return True
            if key == "CANCEL":
                self._send(bytes([k.KEY_CANCEL]))
                self._end_entry()
                return True
            if key == "ENTER":
                if len(entry.digits) != entry.length:
                    return False
                if not entry.plain:
                    self._entered = bytearray(entry.digits)
                self._send(bytes([k.KEY_ENTER]))
                self._end_entry()
                return True
        raise ValueError(f"unknown key {key!r}")

    def _end_entry(self) -> None:
        if self._entry is not None:
            wipe(self._entry.digits)
            self._entry = None
        self.entry_started.clear()

    # ------------------------------------------------------------------ serving
    def _send(self, data: bytes) -> None:
        if self._master is None:
            return
        with self._write_lock:
            os.write(self._master, data)

    def _serve(self) -> None:
        buffer = bytearray()
        while not self._stop.is_set():
            assert self._master is not None
            ready, _, _ = select.select([self._master], [], [], 0.02)
            self._tick()
            if not ready:
                continue
            try:
                chunk = os.read(self._master, 4096)
            except OSError:
                return
            buffer += chunk
            while True:
                start = buffer.find(STX)
                if start < 0:
                    buffer.clear()
                    break
                end = buffer.find(ETX, start)
                if end < 0:
                    del buffer[:start]
                    break
                frame = bytes(buffer[start : end + 1])
                del buffer[: end + 1]
                self._handle(frame)

    def _tick(self) -> None:
        """Entry deadlines and the queued key script."""
        with self._lock:
            entry = self._entry
            if entry is None:
                return
            if time.monotonic() >= entry.deadline:
                self._end_entry()
                self._send(k.encode_frame(bytes([k.Status.TIMEOUT])))
                return
            script = bool(self._script)
        if script:
            with self._lock:
                key = self._script.popleft() if self._script else None
            if key is not None:
                self.press(key)
                if self._key_delay_s:
                    self._stop.wait(self._key_delay_s)

    def _handle(self, frame: bytes) -> None:
        try:
            body = k.decode_frame(frame)
        except PinPadError:
            # A real pad answers a corrupt request with a parameter error.
            self._reply(k.Status.PARAMETER_ERROR)
            return
        with self._lock:
            self.commands_seen.append(body[0])
            if self._take_fault("no_reply"):
                return
            status, data, after = self._execute(body[0], body[1:])
            self._reply(status, data)
            if after is not None:
                after()

    def _reply(self, status: int, data: bytes = b"") -> None:
        frame = bytearray(k.encode_frame(bytes([status]) + data))
        with self._lock:
            if self._take_fault("garbage"):
                frame = bytearray(os.urandom(self._garbage_length))
            elif self._take_fault("bad_bcc"):
                frame[-2] = ord("0") if frame[-2] != ord("0") else ord("1")
        self._send(bytes(frame))

    def _key_status(self) -> int:
        return k.Status.OK if any(w is None for _, w in self._keys) else k.Status.OK_MASTER_KEY_INVALID

    def _execute(self, cmd: int, data: bytes) -> tuple[int, bytes, Any]:
        tampered = "tamper" in self._faults
        if cmd == k.Cmd.RESET:
            self._end_entry()
            if tampered:
                return 0xF1, b"", None
            if self._take_fault("self_test_error"):
                return 0xF2, b"", None
            if self._take_fault("battery_low"):
                return k.Status.BATTERY_LOW, b"", None
            self._mode = KeyAlgorithm.TDES
            return self._key_status(), b"", None
        if cmd == k.Cmd.VERSION:
            return k.Status.OK, f"KMY3501B {self._firmware}".encode(), None
        if cmd == k.Cmd.SERIAL:
            return k.Status.OK, self._serial.encode(), None
        if tampered:
            return k.Status.INVALID_COMMAND_MASTER_KEY_INVALID, b"", None
        if cmd == k.Cmd.SET_MODE:
            if len(data) != 2 or data[0] not in (0x00, 0x01):
                return k.Status.PARAMETER_ERROR, b"", None
            if data[1] in k.ALGORITHM_OF_BYTE:
                self._mode = k.ALGORITHM_OF_BYTE[data[1]]
                return k.Status.OK, b"", None
            return k.Status.PARAMETER_ERROR, b"", None
        if cmd == k.Cmd.LOAD_MASTER_KEY:
            if len(data) != 1 + pinblock.KEY_LEN or data[0] > 15:
                return k.Status.PARAMETER_ERROR, b"", None
            key = bytearray(data[1:])
            self._keys[(data[0], None)] = _Key(self._mode, key)
            return k.Status.OK, bytes.fromhex(pinblock.check_value(key, self._mode)), None
        if cmd == k.Cmd.LOAD_WORKING_KEY:
            if len(data) != 2 + pinblock.KEY_LEN:
                return k.Status.PARAMETER_ERROR, b"", None
            master = self._keys.get((data[0], None))
            if master is None or master.algorithm is not self._mode:
                return k.Status.INVALID_COMMAND_MASTER_KEY_INVALID, b"", None
            clear = bytearray(pinblock.decrypt_ecb(master.value, self._mode, data[2:]))
            self._keys[(data[0], data[1])] = _Key(self._mode, clear)
            return k.Status.OK, bytes.fromhex(pinblock.check_value(clear, self._mode)), None
        if cmd == k.Cmd.ACTIVATE_KEY:
            if len(data) != 2:
                return k.Status.PARAMETER_ERROR, b"", None
            if (data[0], data[1]) not in self._keys:
                return k.Status.INVALID_COMMAND_MASTER_KEY_INVALID, b"", None
            self._active = (data[0], data[1])
            return k.Status.OK, b"", None
        if cmd == k.Cmd.KEYPAD:
            if len(data) != 1 or data[0] not in tuple(k.Keypad):
                return k.Status.PARAMETER_ERROR, b"", None
            if data[0] == k.Keypad.CLOSE:
                self._end_entry()
            else:
                self._plain_keypad = data[0] == k.Keypad.PLAIN
            return k.Status.OK, b"", None
        if cmd == k.Cmd.LOAD_ACCOUNT:
            if len(data) != 12 or not data.isdigit():
                return k.Status.PARAMETER_ERROR, b"", None
            self._account = data.decode()
            return k.Status.OK, b"", None
        if cmd == k.Cmd.START_ENTRY:
            return self._start_entry(data)
        if cmd == k.Cmd.READ_PIN_BLOCK:
            return self._pin_block()
        if cmd == k.Cmd.KEY_INVENTORY:
            out = bytearray()
            for (mm, ww), key in sorted(
                self._keys.items(), key=lambda kv: (kv[0][0], -1 if kv[0][1] is None else kv[0][1])
            ):
                out += bytes(
                    [mm, k.WORKING_INDEX_MASTER if ww is None else ww, k.ALGORITHM_BYTE[key.algorithm]]
                )
                out += bytes.fromhex(pinblock.check_value(key.value, key.algorithm))
            return k.Status.OK, bytes(out), None
        return k.Status.INVALID_COMMAND, b"", None

    def _start_entry(self, data: bytes) -> tuple[int, bytes, Any]:
        if len(data) != 5 or not 4 <= data[0] <= 12 or data[4] == 0:
            return k.Status.PARAMETER_ERROR, b"", None
        if not self._plain_keypad and (self._active is None or self._active not in self._keys):
            return k.Status.OK_MASTER_KEY_INVALID, b"", None
        self._end_entry()
        if self._entered is not None:
            wipe(self._entered)
            self._entered = None
        self._entry = _Entry(data[0], time.monotonic() + data[4], self._plain_keypad, bytearray())
        if self._take_fault("entry_timeout"):
            self._entry.deadline = 0.0  # the next tick reports 80h
        self.entry_started.set()
        return k.Status.OK, b"", None

    def _pin_block(self) -> tuple[int, bytes, Any]:
        if self._active is None or self._active not in self._keys:
            return k.Status.INVALID_COMMAND_MASTER_KEY_INVALID, b"", None
        if self._entered is None or len(self._account) != 12:
            return k.Status.PARAMETER_ERROR, b"", None
        key = self._keys[self._active]
        try:
            # The pad holds the 12 account digits; a dummy check digit restores the full-number form.
            block = pinblock.encrypted_pin_block(self._entered, self._account + "0", key.value, key.algorithm)
        finally:
            wipe(self._entered)
            self._entered = None
        return k.Status.OK, block, None


class DemoBankPinDecoder:
    """The simulated bank's side of the demo PIN key (模拟银行): decrypts a PIN block made by a
    pad holding :data:`DEMO_PIN_KEY`, as the bank's HSM would. For the back-end simulator only."""

    def __init__(self, algorithm: KeyAlgorithm) -> None:
        self.algorithm = algorithm

    def decode(self, pin_block: bytes, account_number: str, key_index: int) -> bytes:
        return pinblock.pin_from_block(pin_block, account_number, DEMO_PIN_KEY, self.algorithm)
