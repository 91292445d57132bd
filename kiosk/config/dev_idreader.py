"""[idreader] — ID card reader

``simulate = true`` starts the simulator at the far end of the real link instead of opening
field hardware."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class IdReaderSection:
    """ID card reader (身份证阅读器, GA/T 467 SAM over serial)."""

    simulate: bool = False
    port: str = "/dev/kiosk-idreader"
    baud: int = 115200
    # Per-command reply timeouts (seconds).
    find_timeout_s: float = 0.5
    select_timeout_s: float = 0.5
    read_timeout_s: float = 2.0
    poll_interval_s: float = 0.3
    # Vendor WLT photo decoder (ctypes): library path and symbol. Empty path: no decoder.
    photo_decoder_library: str = ""
    photo_decoder_symbol: str = "unpack"
    # Simulator: card/SAM processing delay added to the wire time.
    sim_card_delay_s: float = 0.05
