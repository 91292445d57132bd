"""[idreader] — ID card reader

``simulate = true`` starts the simulator at the far end of the real link instead of opening
field hardware."""

from __future__ import annotations

from dataclasses import dataclass


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
    # How many times a failed find → select → read is repeated (from find).
    retries: int = 2
    # Read fingerprint data too (30 10); off by default: storing it has legal implications.
    read_fingerprint: bool = False
    # Vendor WLT photo decoder (ctypes): library path and symbol. Empty path: no decoder.
    photo_decoder_library: str = ""
    photo_decoder_symbol: str = "unpack"
    # Simulator: card/SAM processing delay added to the wire time.
    sim_card_delay_s: float = 0.05
    # Simulator: the shared fictitious people (deck) and their reference pictures, relative to
    # the installation; the card placed at start ("" = none, the demo places cards).
    sim_people_file: str = "config/demo-people.json"
    sim_faces_dir: str = "../shared/testdata/faces"
    sim_initial_card: str = ""

    def __post_init__(self) -> None:
        if self.baud not in (115200, 57600, 38400, 19200, 9600):
            raise ValueError("baud must be one of 115200, 57600, 38400, 19200, 9600")
        for name in ("find_timeout_s", "select_timeout_s", "read_timeout_s", "poll_interval_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")
        if self.retries < 0:
            raise ValueError("retries must be ≥ 0")
        if self.sim_card_delay_s < 0:
            raise ValueError("sim_card_delay_s must be ≥ 0")
