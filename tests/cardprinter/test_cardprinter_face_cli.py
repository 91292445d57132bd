"""Card face rendering, the ``kiosk cardface render`` command, and the device-file links (pty)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kiosk.cli import main
from kiosk.config.dev_cardprinter import CardFaceLayout, CardPrinterSection
from kiosk.devices.cardprinter import CardPosition
from printer.cardface import CardFaceError, CardFaceRenderer, FaceLayout
from printer.cardprinter import protocol as p
from printer.cardprinter.driver import EvolisCardPrinter
from printer.cardprinter.simulator import CardPrinterSimulator
from printer.cardprinter.transport import SerialTransport, UsbPrinterTransport

FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")


def _px(mm: float) -> int:
    return round(mm * 300 / 25.4)


def test_preview_is_1016_by_648_with_photo_in_its_box(renderer, face):
    rendered = renderer.render(face)
    assert rendered.preview.size == (1016, 648)
    preview = np.asarray(rendered.preview)
    box = preview[_px(3.0) : _px(28.0), _px(61.6) : _px(81.6)]
    assert (box < 250).any(axis=2).mean() > 0.5  # the photo covers its box
    outside = preview[_px(0) : _px(2.5), :]
    assert (outside == 255).all()  # nothing above the photo's top edge


def test_text_goes_to_the_black_panel_and_photo_to_colour_rotated_180(renderer, face):
    rendered = renderer.render(face)
    black = np.asarray(rendered.black.convert("L")) < 128
    # Rotated 180°: the name line (5 mm, 20 mm) lands at the mirrored corner.
    y, x = 648 - _px(21.5), 1016 - _px(7)
    assert black[y - 20 : y + 20, x - 60 : x + 20].any()
    assert not black[_px(21.5) - 20 : _px(21.5) + 20, _px(5) : _px(8)].any()
    colour = np.asarray(rendered.colour)
    assert (colour[648 - _px(15.5), 1016 - _px(71.6)] < 250).any()


def test_panels_have_the_sizes_db_expects(renderer, face):
    panels = renderer.render(face).panels(32)
    assert [(name, levels) for name, levels, _ in panels] == [
        ("y", 32),
        ("m", 32),
        ("c", 32),
        ("k", 2),
        ("o", 2),
    ]
    for _, levels, data in panels:
        assert len(data) == p.panel_size(levels)


def test_mono_ribbon_puts_everything_on_k(face):
    rendered = CardFaceRenderer(FaceLayout(), FONT, ribbon="K").render(face)
    assert rendered.colour is None and rendered.overlay is None
    assert [name for name, _, _ in rendered.panels()] == ["k"]


def test_card_without_photo_renders(renderer, face):
    rendered = renderer.render(replace(face, photo=b""))
    assert (np.asarray(rendered.colour) == 255).all()


def test_unreadable_photo_is_a_card_face_error(renderer, face):
    with pytest.raises(CardFaceError):
        renderer.render(replace(face, photo=b"not a jpeg"))


def test_layout_from_config_copies_every_field():
    config = CardFaceLayout(photo_x_mm=60.0, font_pt=9.0, print_labels=False)
    assert FaceLayout.from_config(config) == FaceLayout(photo_x_mm=60.0, font_pt=9.0, print_labels=False)
    assert {f for f in FaceLayout.__dataclass_fields__} == {f for f in CardFaceLayout.__dataclass_fields__}


def test_config_refuses_a_photo_off_the_card():
    with pytest.raises(ValueError):
        CardFaceLayout(photo_x_mm=80.0)
    with pytest.raises(ValueError):
        CardPrinterSection(colour_levels=16)


def test_cli_renders_face_png(tmp_path, faces_dir, capsys):
    data = tmp_path / "face.json"
    data.write_text(
        json.dumps(
            {
                "name": "李秀英",
                "sex": "女",
                "ssn": "11010119550307002X",
                "card_number": "A00000042",
                "issue_date": "2026-11-23",
                "photo": str(faces_dir / "biden.jpg"),
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    out = tmp_path / "face.png"
    assert main(["cardface", "render", str(data), "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["out"] == str(out)
    assert Image.open(out).size == (1016, 648)


@pytest.mark.parametrize(
    "content,code",
    [
        ("{not json", "cardface.bad_data"),
        (json.dumps({"name": "张三"}), "cardface.bad_data"),
        (
            json.dumps(
                {"name": "张三", "sex": "x", "ssn": "1", "card_number": "A1", "issue_date": "2026-01-01"}
            ),
            "cardface.bad_data",
        ),
        (
            json.dumps(
                {
                    "name": "张三",
                    "sex": "男",
                    "ssn": "1",
                    "card_number": "A1",
                    "issue_date": "2026-01-01",
                    "photo": "missing.jpg",
                }
            ),
            "cardface.bad_data",
        ),
    ],
)
def test_cli_bad_input_is_json_error_exit_2(tmp_path, capsys, content, code):
    data = tmp_path / "face.json"
    data.write_text(content, encoding="utf-8")
    assert main(["cardface", "render", str(data), "--out", str(tmp_path / "x.png")]) == 2
    assert json.loads(capsys.readouterr().out)["error"]["code"] == code


@pytest.mark.parametrize("transport_cls", [UsbPrinterTransport, SerialTransport])
def test_device_file_links_over_a_pseudo_terminal(transport_cls, renderer, face, chip_station, tmp_path):
    with CardPrinterSimulator(
        ["A00000009"], link="pty", chip_station=chip_station, output_dir=tmp_path
    ) as sim:
        printer = EvolisCardPrinter(transport_cls(sim.address), renderer=renderer, poll_interval_s=0.01)
        printer.open()
        try:
            assert printer.feed_to_chip_station().card_number == "A00000009"
            printer.print_face(face)
            assert printer.where_is_card() is CardPosition.PRINT_HEAD
            assert printer.eject_to_citizen(timeout_s=1.0).card_number == "A00000009"
        finally:
            printer.close()
    assert (tmp_path / "A00000009.png").is_file()
