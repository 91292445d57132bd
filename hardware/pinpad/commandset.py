"""PIN pad command sets (指令集) and their registry.

A command set turns each pad operation into a request frame and each reply frame into values or
a :class:`~kiosk.devices.pinpad.PinPadError`. The driver (``driver.py``) only moves bytes; adding
a pad family is one module with a :class:`CommandSet` subclass registered here by name
(configuration ``[pinpad] command_set``).
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass
from typing import ClassVar

from kiosk.devices.pinpad import KeyAlgorithm, KeyEventKind, KeySlot, PinPadError

STX = 0x02
ETX = 0x03


@dataclass(frozen=True, slots=True)
class Reply:
    """A decoded reply: the pad's status byte and data."""

    status: int
    data: bytes


class KeyByte(enum.Enum):
    """What one byte streamed during entry means."""

    MASKED_DIGIT = "masked"  # '*' in encrypted entry
    PLAIN_DIGIT = "plain"  # '0'…'9' in plain entry
    CLEAR = "clear"
    CANCEL = "cancel"
    ENTER = "enter"
    OTHER = "other"  # function keys, '.', noise: ignored


KEY_EVENT_OF = {
    KeyByte.CLEAR: KeyEventKind.CLEAR,
    KeyByte.CANCEL: KeyEventKind.CANCEL,
    KeyByte.ENTER: KeyEventKind.ENTER,
}


class CommandSet(abc.ABC):
    """One pad family's wire protocol. Requests are complete frames (bytes) ready to write."""

    name: ClassVar[str]

    # --- framing
    @abc.abstractmethod
    def decode_reply(self, frame: bytes) -> Reply:
        """``frame`` runs from STX to ETX inclusive; raises checksum/frame errors."""

    @abc.abstractmethod
    def check(self, reply: Reply, operation: str) -> Reply:
        """Raises the error the status stands for; returns the reply when it is OK."""

    @abc.abstractmethod
    def key_byte(self, byte: int) -> KeyByte: ...

    # --- requests
    @abc.abstractmethod
    def reset(self) -> bytes: ...

    @abc.abstractmethod
    def version(self) -> bytes: ...

    @abc.abstractmethod
    def serial_number(self) -> bytes: ...

    @abc.abstractmethod
    def set_algorithm(self, algorithm: KeyAlgorithm) -> bytes: ...

    @abc.abstractmethod
    def load_master_key(self, index: int, key: bytearray) -> bytes:
        """The frame holds key material: the caller wipes it after writing."""

    @abc.abstractmethod
    def load_working_key(self, master_index: int, working_index: int, encrypted_key: bytes) -> bytes: ...

    @abc.abstractmethod
    def activate_key(self, master_index: int, working_index: int) -> bytes: ...

    @abc.abstractmethod
    def keypad_mode(self, plain: bool) -> bytes: ...

    @abc.abstractmethod
    def keypad_close(self) -> bytes: ...

    @abc.abstractmethod
    def load_account(self, account_number: str) -> bytes: ...

    @abc.abstractmethod
    def start_entry(self, length: int, timeout_s: int) -> bytes: ...

    @abc.abstractmethod
    def read_pin_block(self) -> bytes: ...

    @abc.abstractmethod
    def key_inventory(self) -> bytes | None:
        """The key-listing request, or ``None`` when the family has none."""

    # --- reply values
    @abc.abstractmethod
    def parse_version(self, reply: Reply) -> tuple[str, str]:
        """(model, firmware)."""

    @abc.abstractmethod
    def parse_check_value(self, reply: Reply) -> str: ...

    @abc.abstractmethod
    def parse_inventory(self, reply: Reply) -> tuple[KeySlot, ...]: ...


_REGISTRY: dict[str, type[CommandSet]] = {}


def register(cls: type[CommandSet]) -> type[CommandSet]:
    _REGISTRY[cls.name] = cls
    return cls


def command_set_names() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def get_command_set(name: str) -> CommandSet:
    """The command set called ``name`` (e.g. ``"kmy3501"``)."""
    _load_builtin()
    try:
        return _REGISTRY[name]()
    except KeyError:
        raise PinPadError(
            f"unknown PIN pad command set {name!r} (known: {', '.join(sorted(_REGISTRY))})",
            code="pinpad.unknown_command_set",
        ) from None


def _load_builtin() -> None:
    # Imported lazily so that this module stays importable by the families themselves.
    from hardware.pinpad import kmy3501  # noqa: F401
