"""[receipt] — receipt printer

``simulate = true`` starts the simulator at the far end of the real link instead of opening
field hardware."""

from __future__ import annotations

from dataclasses import dataclass

# Printable dots per line of each roll width (Font A: 12 dots a column; research/hardware.md §3).
PAPER_DOTS = {58: 384, 80: 576}


@dataclass(frozen=True)
class ReceiptSection:
    """Thermal receipt printer (ESC/POS, 58/80 mm)."""

    simulate: bool = False
    # tcp ("host:port", raw port 9100 style), serial (a tty path), usb/file (a device file such as
    # /dev/usb/lp0, opened read-write for the status back channel).
    transport: str = "serial"
    address: str = "/dev/kiosk-receipt"
    baud: int = 9600
    # python-escpos capability profile (RP326: Rongta, 80 mm, native QR).
    profile: str = "RP326"
    paper_width_mm: int = 80
    # Language of the printed labels (receipts are official documents: Chinese by default).
    language: str = "zh_CN"
    # Bound on each status reply (DLE EOT n), on a whole receipt, and how long to wait for the
    # end-of-receipt marker (GS r 1) before asking the printer why it has not come.
    status_timeout_s: float = 1.0
    job_timeout_s: float = 30.0
    poll_interval_s: float = 0.2
    # Where the voucher's QR code leads (the electronic social security card, 电子社保卡);
    # empty: the core passes the link from the back end, or no QR code is printed.
    ecard_qr_url: str = ""
    # Simulator only: the roll length in text lines and the near-end sensor threshold.
    sim_paper_lines: int = 5000
    sim_near_end_lines: int = 300

    def __post_init__(self) -> None:
        if self.transport not in ("tcp", "serial", "usb", "file"):
            raise ValueError("transport must be 'tcp', 'serial', 'usb' or 'file'")
        if self.paper_width_mm not in PAPER_DOTS:
            raise ValueError("paper_width_mm must be 58 or 80")
        if self.language not in ("zh_CN", "en"):
            raise ValueError("language must be 'zh_CN' or 'en'")
        if not 0 < self.status_timeout_s <= 10:
            raise ValueError("status_timeout_s must be in (0, 10]")
        if not 0 < self.poll_interval_s <= self.job_timeout_s:
            raise ValueError("poll_interval_s must be > 0 and ≤ job_timeout_s")
        if self.sim_paper_lines < 0 or self.sim_near_end_lines < 0:
            raise ValueError("sim_paper_lines and sim_near_end_lines cannot be negative")

    @property
    def paper_dots(self) -> int:
        return PAPER_DOTS[self.paper_width_mm]
