"""[receipt] — receipt printer

``simulate = true`` starts the simulator at the far end of the real link instead of opening
field hardware."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ReceiptSection:
    """Thermal receipt printer (ESC/POS, 58/80 mm)."""

    simulate: bool = False
    transport: str = "serial"
    address: str = "/dev/kiosk-receipt"
    baud: int = 9600
    profile: str = "RP326"
    paper_width_mm: int = 80

    def __post_init__(self) -> None:
        if self.transport not in ("tcp", "serial", "usb", "file"):
            raise ValueError("transport must be 'tcp', 'serial', 'usb' or 'file'")
