"""[kiosk] — the terminal itself: identity, language, screen, timeouts, directories."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class KioskSection:
    kiosk_id: str = "KIOSK-0001"
    branch_name: str = "示例银行 示例支行"
    branch_address: str = "示例市示例区示例路 1 号"
    # Simplified Chinese by default; English switchable on every screen.
    language: str = "zh_CN"
    languages: tuple[str, ...] = ("zh_CN", "en")
    state_dir: Path = Path("/var/lib/kiosk")
    log_dir: Path = Path("/var/log/kiosk")
    screenshot_dir: Path = Path("/var/lib/kiosk/screenshots")
    fullscreen: bool = True
    window_width: int = 1280
    window_height: int = 1024
    # Seconds without a touch before a citizen screen returns home (multiplied in elder mode).
    idle_timeout_s: int = 60
    elder_timeout_factor: float = 2.0
    elder_font_scale: float = 1.4
    # Font with CJK glyphs; Kivy's default font has none.
    font_path: Path = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
    # Voice prompts (generated from the catalogs with espeak-ng, or recorded files dropped in).
    voice_enabled: bool = True
    voice_dir: Path | None = None
    # Staff/engineer entry: number of taps on the hidden corner within entry_gesture_window_s.
    entry_gesture_taps: int = 5
    entry_gesture_window_s: float = 3.0

    def __post_init__(self) -> None:
        if self.language not in self.languages:
            raise ValueError(f"language {self.language!r} is not among languages {list(self.languages)}")
        if self.idle_timeout_s < 10:
            raise ValueError("idle_timeout_s must be at least 10 seconds")
        if self.elder_timeout_factor < 1:
            raise ValueError("elder_timeout_factor must be ≥ 1")
