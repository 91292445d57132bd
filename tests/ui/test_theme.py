from screens.theme import THEME, contrast_ratio, hex_rgba

PAIRS = [
    ("text", "background"), ("text", "surface"), ("text_muted", "background"), ("text_muted", "surface"),
    ("on_primary", "primary"), ("on_secondary", "secondary"), ("on_danger", "danger"),
    ("on_banner", "banner"), ("warning_text", "warning_bg"), ("success", "surface"),
]


def test_every_text_colour_pair_has_at_least_7_to_1_contrast() -> None:
    for fg, bg in PAIRS:
        ratio = contrast_ratio(hex_rgba(getattr(THEME, fg)), hex_rgba(getattr(THEME, bg)))
        assert ratio >= 7.0, f"{fg} on {bg}: {ratio:.2f}:1"


def test_contrast_measure_itself() -> None:
    assert round(contrast_ratio(hex_rgba("#000000"), hex_rgba("#FFFFFF")), 1) == 21.0
    assert round(contrast_ratio(hex_rgba("#777777"), hex_rgba("#FFFFFF")), 2) == 4.48


def test_touch_targets_and_elder_type_sizes() -> None:
    assert THEME.touch_min >= 60
    # The national elder norm: body ≥ 18 pt, largest ≥ 30 pt (≈ 24 px / 40 px at 96 dpi).
    assert THEME.body * 1.4 >= 24 * 1.4 and THEME.title * 1.4 >= 40
