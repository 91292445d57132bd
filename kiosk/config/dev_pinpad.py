"""[pinpad] — encrypted PIN pad

``simulate = true`` starts the simulator at the far end of the real link instead of opening
field hardware."""

from __future__ import annotations

from dataclasses import dataclass

PIN_ALGORITHMS = ("3des", "sm4")


@dataclass(frozen=True)
class PinPadSection:
    """Encrypted PIN pad (EPP, 密码键盘)."""

    simulate: bool = False
    port: str = "/dev/kiosk-pinpad"
    baud: int = 9600
    # Wire protocol family (hardware/pinpad/commandset.py registry): "kmy3501".
    command_set: str = "kmy3501"
    pin_length: int = 6
    entry_timeout_s: int = 30
    reply_timeout_s: float = 1.0
    # The financial PIN key (PIN 工作密钥) the bank delivers: its master key slot, its own slot,
    # the algorithm of the PIN block ("sm4": 16-byte SM4 variant, "3des": ISO 9564 format 0).
    pin_key_master_index: int = 0
    pin_key_index: int = 1
    pin_algorithm: str = "sm4"
    # The key index the bank knows the PIN key by (sent with the PIN block).
    bank_key_index: int = 1
    # Entry rounds (first + confirmation) before the PIN step gives up.
    max_attempts: int = 3

    def __post_init__(self) -> None:
        if self.baud not in (9600, 19200, 38400, 57600, 115200):
            raise ValueError("baud must be one of 9600, 19200, 38400, 57600, 115200")
        if not self.command_set:
            raise ValueError("command_set must name a PIN pad family (e.g. kmy3501)")
        if not 4 <= self.pin_length <= 12:
            raise ValueError("pin_length must be 4 to 12")
        if not 5 <= self.entry_timeout_s <= 255:
            raise ValueError("entry_timeout_s must be 5 to 255 (the pad takes one byte of seconds)")
        if self.reply_timeout_s <= 0:
            raise ValueError("reply_timeout_s must be > 0")
        if not 0 <= self.pin_key_master_index <= 15:
            raise ValueError("pin_key_master_index must be 0 to 15")
        if not 0 <= self.pin_key_index <= 254:
            raise ValueError("pin_key_index must be 0 to 254")
        if self.pin_algorithm not in PIN_ALGORITHMS:
            raise ValueError("pin_algorithm must be 3des or sm4")
        if self.bank_key_index < 0:
            raise ValueError("bank_key_index must be ≥ 0")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be ≥ 1")
