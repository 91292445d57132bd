"""Colours, type sizes and spacing (主题). Contrast: body text on background ≥ 7:1, button text on
button ≥ 7:1 (checked by tests/ui/test_theme.py). Sizes are pixels on the reference 1280×1024
panel; elder mode (长者模式) multiplies type by ``config.kiosk.elder_font_scale``."""

from __future__ import annotations

from dataclasses import dataclass


def hex_rgba(value: str, alpha: float = 1.0) -> tuple[float, float, float, float]:
    value = value.lstrip("#")
    r, g, b = (int(value[i : i + 2], 16) / 255 for i in (0, 2, 4))
    return (r, g, b, alpha)


def relative_luminance(rgb: tuple[float, ...]) -> float:
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    la, lb = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


@dataclass(frozen=True)
class Theme:
    background: str = "#F4F6F9"
    surface: str = "#FFFFFF"
    text: str = "#14181F"
    text_muted: str = "#3D4654"
    primary: str = "#0A4A8F"
    on_primary: str = "#FFFFFF"
    secondary: str = "#E3E8F0"
    on_secondary: str = "#14181F"
    danger: str = "#9E1C1C"
    on_danger: str = "#FFFFFF"
    success: str = "#1B5E20"
    warning_bg: str = "#FFF4D6"
    warning_text: str = "#5A3B00"
    banner: str = "#0A4A8F"
    on_banner: str = "#FFFFFF"
    # Type sizes (px) at scale 1.0; elder mode scales them.
    body: int = 30
    small: int = 24
    title: int = 46
    huge: int = 64
    button: int = 34
    # Touch targets: never under 60×60 px (CONVENTIONS.md); ours are larger.
    touch_min: int = 96
    line_height: float = 1.35
    padding: int = 28
    spacing: int = 22

    def rgba(self, name: str, alpha: float = 1.0) -> tuple[float, float, float, float]:
        return hex_rgba(getattr(self, name), alpha)


THEME = Theme()
