"""KMY3501 (凯明扬) EPP command set: frames, BCC, status codes, commands.

Frame host→pad: ``02h`` + ASCII-hex of ``[LEN][CMD][DATA]`` + ASCII-hex of the BCC (XOR of the
binary LEN..DATA) + ``03h``; LEN counts CMD and DATA. The reply has the same shape with the
status byte in place of CMD: ``02h [LEN][ST][DATA] BCC 03h``. 9600 8N1.
Source: research/hardware.md §2.1 (third-party driver P1, product sheet P4), not a vendor manual.

Two commands are this project's extensions, used by the simulator and marked so in
docs/pinpad.md: algorithm ``40h`` (SM4) in ``46 01`` and ``3C`` (list keys by check value). A
real KMY3501 answers ``E0h`` (invalid command) to ``3C``; the driver then reports the key list
as unknown.
"""

from __future__ import annotations

import enum
from typing import ClassVar

from hardware.pinpad.commandset import ETX, STX, CommandSet, KeyByte, Reply, register
from kiosk.devices.pinpad import (
    KeyAlgorithm,
    KeySlot,
    PinEntryTimeoutError,
    PinPadChecksumError,
    PinPadCommandError,
    PinPadFrameError,
    PinPadKeysMissingError,
    PinPadSelfTestError,
)


class Cmd(enum.IntEnum):
    RESET = 0x31  # reset and self-test
    VERSION = 0x30
    SERIAL = 0x38
    LOAD_MASTER_KEY = 0x32
    LOAD_WORKING_KEY = 0x33
    LOAD_ACCOUNT = 0x34
    START_ENTRY = 0x35
    ACTIVATE_KEY = 0x43
    KEYPAD = 0x45
    SET_MODE = 0x46
    READ_PIN_BLOCK = 0x42
    KEY_INVENTORY = 0x3C  # project extension


class Status(enum.IntEnum):
    OK = 0x04
    PARAMETER_ERROR = 0x15
    TIMEOUT = 0x80
    OK_MASTER_KEY_INVALID = 0xA4
    INVALID_COMMAND_MASTER_KEY_INVALID = 0xB5
    BATTERY_LOW = 0xC4
    BATTERY_FAULT = 0xD5
    INVALID_COMMAND = 0xE0
    SELF_TEST_ERROR = 0xF0  # F0h–FFh: self-test errors (tamper among them; codes unconfirmed)


class Keypad(enum.IntEnum):
    CLOSE = 0x01
    OPEN = 0x02
    OPEN_SILENT = 0x03
    PLAIN = 0x04  # "system keyboard": digits are sent in clear


ALGORITHM_BYTE = {KeyAlgorithm.TDES: 0x30, KeyAlgorithm.SM4: 0x40}
ALGORITHM_OF_BYTE = {v: k for k, v in ALGORITHM_BYTE.items()}
WORKING_INDEX_MASTER = 0xFF  # inventory entry for the master key itself

KEY_MASKED = 0x2A
KEY_CLEAR = 0x08
KEY_ENTER = 0x0D
KEY_CANCEL = 0x1B

# Operations for which "OK, master key invalid" is still a success (the pad works, keys absent).
_KEYLESS_OPERATIONS = {
    "reset",
    "version",
    "serial",
    "set_algorithm",
    "load_master_key",
    "keypad",
    "inventory",
}


def bcc(data: bytes) -> int:
    value = 0
    for byte in data:
        value ^= byte
    return value


def encode_frame(body: bytes) -> bytes:
    """``body`` is ``CMD+DATA`` (request) or ``ST+DATA`` (reply); LEN and BCC are added here."""
    if len(body) > 0xFF:
        raise ValueError("frame body too long")
    binary = bytes([len(body)]) + body
    return bytes([STX]) + binary.hex().upper().encode() + f"{bcc(binary):02X}".encode() + bytes([ETX])


def decode_frame(frame: bytes) -> bytes:
    """Returns ``CMD/ST + DATA`` of a whole frame, checking STX/ETX, hex, LEN and BCC."""
    if len(frame) < 7 or frame[0] != STX or frame[-1] != ETX:
        raise PinPadFrameError("frame not delimited by 02h … 03h")
    try:
        binary = bytes.fromhex(frame[1:-3].decode("ascii"))
        check = int(frame[-3:-1].decode("ascii"), 16)
    except (UnicodeDecodeError, ValueError):
        raise PinPadFrameError("frame is not ASCII hex") from None
    if not binary or binary[0] != len(binary) - 1 or binary[0] == 0:
        raise PinPadFrameError("frame length byte does not match")
    if bcc(binary) != check:
        raise PinPadChecksumError("reply BCC mismatch", retryable=True)
    return binary[1:]


@register
class Kmy3501(CommandSet):
    name: ClassVar[str] = "kmy3501"

    def decode_reply(self, frame: bytes) -> Reply:
        body = decode_frame(frame)
        return Reply(body[0], body[1:])

    def check(self, reply: Reply, operation: str) -> Reply:
        st = reply.status
        if st == Status.OK:
            return reply
        if st == Status.OK_MASTER_KEY_INVALID:
            if operation in _KEYLESS_OPERATIONS:
                return reply
            raise PinPadKeysMissingError(f"{operation}: master key invalid (A4h)")
        if st == Status.INVALID_COMMAND_MASTER_KEY_INVALID:
            raise PinPadKeysMissingError(f"{operation}: invalid command, master key invalid (B5h)")
        if st == Status.TIMEOUT:
            raise PinEntryTimeoutError(f"{operation}: timeout (80h)")
        if st >= Status.SELF_TEST_ERROR:
            raise PinPadSelfTestError(f"{operation}: self-test error {st:02X}h")
        if st in (Status.BATTERY_LOW, Status.BATTERY_FAULT):
            raise PinPadCommandError(f"{operation}: battery {st:02X}h", code="pinpad.battery")
        if st == Status.INVALID_COMMAND:
            raise PinPadCommandError(f"{operation}: invalid command (E0h)", code="pinpad.invalid_command")
        if st == Status.PARAMETER_ERROR:
            raise PinPadCommandError(f"{operation}: parameter error (15h)", code="pinpad.parameter_error")
        raise PinPadCommandError(f"{operation}: status {st:02X}h")

    def key_byte(self, byte: int) -> KeyByte:
        if byte == KEY_MASKED:
            return KeyByte.MASKED_DIGIT
        if 0x30 <= byte <= 0x39:
            return KeyByte.PLAIN_DIGIT
        return {KEY_CLEAR: KeyByte.CLEAR, KEY_CANCEL: KeyByte.CANCEL, KEY_ENTER: KeyByte.ENTER}.get(
            byte, KeyByte.OTHER
        )

    # --- requests
    def reset(self) -> bytes:
        return encode_frame(bytes([Cmd.RESET]))

    def version(self) -> bytes:
        return encode_frame(bytes([Cmd.VERSION]))

    def serial_number(self) -> bytes:
        return encode_frame(bytes([Cmd.SERIAL]))

    def set_algorithm(self, algorithm: KeyAlgorithm) -> bytes:
        return encode_frame(bytes([Cmd.SET_MODE, 0x01, ALGORITHM_BYTE[algorithm]]))

    def load_master_key(self, index: int, key: bytearray) -> bytes:
        _index(index, 15)
        return encode_frame(bytes([Cmd.LOAD_MASTER_KEY, index]) + bytes(key))

    def load_working_key(self, master_index: int, working_index: int, encrypted_key: bytes) -> bytes:
        _index(master_index, 15)
        _index(working_index, 0xFE)
        return encode_frame(bytes([Cmd.LOAD_WORKING_KEY, master_index, working_index]) + encrypted_key)

    def activate_key(self, master_index: int, working_index: int) -> bytes:
        return encode_frame(bytes([Cmd.ACTIVATE_KEY, master_index, working_index]))

    def keypad_mode(self, plain: bool) -> bytes:
        return encode_frame(bytes([Cmd.KEYPAD, Keypad.PLAIN if plain else Keypad.OPEN]))

    def keypad_close(self) -> bytes:
        return encode_frame(bytes([Cmd.KEYPAD, Keypad.CLOSE]))

    def load_account(self, account_number: str) -> bytes:
        # The pad takes the 12 rightmost digits excluding the check digit (P1 kmy_dl_card_no).
        from hardware.pinpad.pinblock import account_digits

        return encode_frame(bytes([Cmd.LOAD_ACCOUNT]) + account_digits(account_number).encode("ascii"))

    def start_entry(self, length: int, timeout_s: int) -> bytes:
        if not 4 <= length <= 12:
            raise ValueError("PIN length is 4 to 12")
        timeout = max(1, min(255, int(timeout_s)))
        # len, display '*' (01), no add-on, no voice prompt, timeout in seconds
        return encode_frame(bytes([Cmd.START_ENTRY, length, 0x01, 0x00, 0x00, timeout]))

    def read_pin_block(self) -> bytes:
        return encode_frame(bytes([Cmd.READ_PIN_BLOCK]))

    def key_inventory(self) -> bytes | None:
        return encode_frame(bytes([Cmd.KEY_INVENTORY]))

    # --- reply values
    def parse_version(self, reply: Reply) -> tuple[str, str]:
        text = reply.data.decode("ascii", "replace").strip()
        model, _, firmware = text.partition(" ")
        return model, firmware.strip()

    def parse_check_value(self, reply: Reply) -> str:
        if len(reply.data) < 4:
            raise PinPadFrameError("check value missing from reply")
        return reply.data[:4].hex().upper()

    def parse_inventory(self, reply: Reply) -> tuple[KeySlot, ...]:
        data = reply.data
        if len(data) % 7:
            raise PinPadFrameError("key inventory length")
        slots = []
        for i in range(0, len(data), 7):
            mm, ww, alg = data[i], data[i + 1], data[i + 2]
            if alg not in ALGORITHM_OF_BYTE:
                raise PinPadFrameError("key inventory algorithm")
            slots.append(
                KeySlot(
                    mm,
                    None if ww == WORKING_INDEX_MASTER else ww,
                    ALGORITHM_OF_BYTE[alg],
                    data[i + 3 : i + 7].hex().upper(),
                )
            )
        return tuple(slots)


def _index(value: int, top: int) -> None:
    if not 0 <= value <= top:
        raise ValueError(f"key index {value} out of range 0–{top}")
