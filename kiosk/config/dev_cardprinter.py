"""[cardprinter] — card printer, card face layout, embosser

``simulate = true`` starts the simulator at the far end of the real link instead of opening
field hardware."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class CardFaceLayout:
    """Card face positions in millimetres on an 85.6 × 54 mm card."""

    photo_x_mm: float = 5.0
    photo_y_mm: float = 17.0
    photo_w_mm: float = 20.0
    photo_h_mm: float = 25.0
    text_x_mm: float = 28.0
    name_y_mm: float = 20.0
    sex_y_mm: float = 25.0
    ssn_y_mm: float = 30.0
    card_number_y_mm: float = 35.0
    issue_date_y_mm: float = 40.0
    font_pt: float = 8.0


@dataclass(frozen=True)
class CardPrinterSection:
    """Card printer with hopper, chip station, reject bin, optional embosser."""

    simulate: bool = False
    # "tcp" (host:port), "serial" (device path) or "usb" (printer device file, e.g. /dev/usb/lp0).
    transport: str = "usb"
    address: str = "/dev/usb/lp0"
    dpi: int = 300
    embosser_fitted: bool = False
    emboss_name: bool = False
    # Seconds the citizen has to take the card before it is retracted into the reject bin.
    take_card_timeout_s: int = 30
    hopper_capacity: int = 100
    hopper_near_empty: int = 10
    reject_bin_capacity: int = 20
    ribbon_low_percent: int = 10
    layout: CardFaceLayout = field(default_factory=CardFaceLayout)

    def __post_init__(self) -> None:
        if self.transport not in ("tcp", "serial", "usb"):
            raise ValueError("transport must be 'tcp', 'serial' or 'usb'")
