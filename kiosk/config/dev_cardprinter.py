"""[cardprinter] — card printer, card face layout, embosser

``simulate = true`` starts the simulator at the far end of the real link instead of opening
field hardware."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CardFaceLayout:
    """Card face positions in millimetres from the top-left corner, face up, on an 85.6 × 54 mm
    card. Photo 20 × 25 mm, 4 mm from the right edge and 3 mm from the top (national card
    standard, research/sscard.md §5)."""

    photo_x_mm: float = 61.6
    photo_y_mm: float = 3.0
    photo_w_mm: float = 20.0
    photo_h_mm: float = 25.0
    text_x_mm: float = 5.0
    name_y_mm: float = 20.0
    sex_y_mm: float = 25.0
    ssn_y_mm: float = 30.0
    card_number_y_mm: float = 35.0
    issue_date_y_mm: float = 40.0
    font_pt: float = 8.0
    # Print the labels (姓名, 性别, 社会保障号码, 社会保障卡号, 发卡日期) before the values; turn
    # off for card stock with the labels pre-printed by the bureau.
    print_labels: bool = True
    label_gap_mm: float = 1.5

    def __post_init__(self) -> None:
        if min(self.photo_w_mm, self.photo_h_mm, self.font_pt) <= 0:
            raise ValueError("photo size and font_pt must be positive")
        if not (
            0 <= self.photo_x_mm
            and self.photo_x_mm + self.photo_w_mm <= 86.0
            and 0 <= self.photo_y_mm
            and self.photo_y_mm + self.photo_h_mm <= 54.0
        ):
            raise ValueError("photo must lie on the card (86 × 54 mm)")
        for name in ("text_x_mm", "name_y_mm", "sex_y_mm", "ssn_y_mm", "card_number_y_mm", "issue_date_y_mm"):
            if not 0 <= getattr(self, name) <= 86.0:
                raise ValueError(f"{name} must lie on the card")


@dataclass(frozen=True)
class CardPrinterSection:
    """Card printer with hopper, chip station, reject bin, optional embosser."""

    simulate: bool = False
    # "tcp" (host:port), "serial" (device path) or "usb" (printer device file, e.g. /dev/usb/lp0).
    transport: str = "usb"
    address: str = "/dev/usb/lp0"
    baud: int = 9600
    dpi: int = 300
    # Ribbon fitted: "YMCKO" (colour photo, text on the resin black panel, overlay) or "K" (mono).
    ribbon: str = "YMCKO"
    # Levels per colour panel on the wire (Db;y;32 …): 32, 64 or 128 (5/6/7 bits per dot).
    colour_levels: int = 32
    # 180 when the blank cards lie in the hopper upside down relative to the face (the peer's
    # CardForm.ini uses 180 on an Evolis Zenius).
    face_rotation_deg: int = 180
    embosser_fitted: bool = False
    emboss_name: bool = False
    # Emboss positions (mm): horizontal from the left edge to the first character's centre,
    # vertical from the bottom edge to the line's midpoint.
    emboss_number_h_mm: float = 10.2
    emboss_number_v_mm: float = 8.0
    emboss_name_h_mm: float = 10.2
    emboss_name_v_mm: float = 3.5
    # Seconds the citizen has to take the card before it is retracted into the reject bin.
    take_card_timeout_s: int = 30
    poll_interval_s: float = 0.2
    reply_timeout_s: float = 5.0
    # Bound on one mechanical step (feed, print, eject, reject).
    motion_timeout_s: float = 60.0
    hopper_capacity: int = 100
    # Staff are alerted (levels page, telemetry) at or below this many blank cards in the hopper.
    hopper_near_empty: int = 10
    reject_bin_capacity: int = 20
    # Staff are alerted when the reject bin holds this many spoiled cards (nearly full).
    reject_bin_near_full: int = 15
    ribbon_low_percent: int = 10
    # Prints per ribbon, for the kiosk's own ribbon counter (reset when staff change the ribbon)
    # on printers that do not report the ribbon left.
    ribbon_capacity: int = 200
    # Simulator only: seconds per mechanical move (0 = instant) and where printed faces go
    # (empty: under the state directory, decided by kiosk/app.py).
    sim_mechanics_s: float = 0.5
    sim_output_dir: str = ""
    layout: CardFaceLayout = field(default_factory=CardFaceLayout)

    def __post_init__(self) -> None:
        if self.transport not in ("tcp", "serial", "usb"):
            raise ValueError("transport must be 'tcp', 'serial' or 'usb'")
        if self.dpi != 300:
            raise ValueError("dpi must be 300 (the panel size on the wire is 1016 × 648)")
        if self.ribbon not in ("YMCKO", "K"):
            raise ValueError("ribbon must be 'YMCKO' or 'K'")
        if self.colour_levels not in (32, 64, 128):
            raise ValueError("colour_levels must be 32, 64 or 128")
        if self.face_rotation_deg not in (0, 180):
            raise ValueError("face_rotation_deg must be 0 or 180")
        if self.take_card_timeout_s <= 0 or self.poll_interval_s <= 0:
            raise ValueError("take_card_timeout_s and poll_interval_s must be positive")
        if self.reply_timeout_s <= 0 or self.motion_timeout_s <= 0:
            raise ValueError("reply_timeout_s and motion_timeout_s must be positive")
        if not 0 <= self.hopper_near_empty <= self.hopper_capacity:
            raise ValueError("hopper_near_empty must be between 0 and hopper_capacity")
        if self.reject_bin_capacity <= 0:
            raise ValueError("reject_bin_capacity must be positive")
        if not 0 < self.reject_bin_near_full <= self.reject_bin_capacity:
            raise ValueError("reject_bin_near_full must be between 1 and reject_bin_capacity")
        if not 0 <= self.ribbon_low_percent <= 100:
            raise ValueError("ribbon_low_percent must be 0–100")
        if self.ribbon_capacity <= 0:
            raise ValueError("ribbon_capacity must be positive")
        if self.sim_mechanics_s < 0:
            raise ValueError("sim_mechanics_s cannot be negative")
