"""[pinpad] — encrypted PIN pad

``simulate = true`` starts the simulator at the far end of the real link instead of opening
field hardware."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class PinPadSection:
    """Encrypted PIN pad (EPP, 密码键盘)."""

    simulate: bool = False
    port: str = "/dev/kiosk-pinpad"
    baud: int = 9600
    command_set: str = "kmy3501"
    pin_length: int = 6
    entry_timeout_s: int = 30
    reply_timeout_s: float = 1.0
