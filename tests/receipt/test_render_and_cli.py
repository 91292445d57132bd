"""Rendering the ESC/POS stream to PNG, and ``kiosk receipt render``."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from kiosk.cli import main
from printer.receipt.escpos_printer import encode_layout
from printer.receipt.render import render_stream
from printer.receipt.templates import notice_layout, voucher_layout

from .conftest import E_CARD_URL, FONT


def _decode_qr(image: Image.Image) -> str:
    array = np.array(image.convert("L"))
    text, _, _ = cv2.QRCodeDetector().detectAndDecode(array)
    return text


def test_rendered_voucher_carries_a_readable_qr_to_the_e_card(voucher) -> None:
    image = render_stream(encode_layout(voucher_layout(voucher)), font_path=FONT)
    assert image.width == 576 + 32
    assert _decode_qr(image) == E_CARD_URL


def test_rendered_lines_take_the_printer_cell_widths(voucher) -> None:
    narrow = render_stream(encode_layout(voucher_layout(voucher, columns=32)), font_path=FONT, paper_dots=384)
    assert narrow.width == 384 + 32
    # Ink stays inside the printable width (no glyph spills over the roll's edge).
    array = np.array(narrow)
    assert (array[:, 16 + 384 + 1 :] == 255).all()


def test_render_from_simulator_bytes_matches_render_from_layout(receipt_printer, simulator, notice) -> None:
    receipt_printer.print_notice(notice)
    from_wire = render_stream(simulator.receipts[0], font_path=FONT)
    from_layout = render_stream(encode_layout(notice_layout(notice)), font_path=FONT)
    assert np.array_equal(np.array(from_wire), np.array(from_layout))


def test_cli_renders_a_voucher_png(tmp_path: Path, capsys) -> None:
    data = {
        "business": "首次申领及即时制卡",
        "completed_at": "2026-11-23T10:05:12+08:00",
        "kiosk_id": "KIOSK-0001",
        "serial_number": "KS1",
        "id_number": "110101199003070048",
        "result": "办理成功",
        "card_number": "A01234567",
        "qr_url": E_CARD_URL,
        "notes": ["请妥善保管"],
    }
    source = tmp_path / "voucher.json"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    out, stream = tmp_path / "voucher.png", tmp_path / "voucher.bin"
    code = main(
        [
            "receipt",
            "render",
            "voucher",
            str(source),
            "--out",
            str(out),
            "--escpos",
            str(stream),
            "--font",
            str(FONT),
            "--json",
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["escpos_bytes"] == len(stream.read_bytes())
    assert "110101********0048".encode("gb18030") in stream.read_bytes()
    assert _decode_qr(Image.open(out)) == E_CARD_URL


def test_cli_renders_a_notice_png(tmp_path: Path) -> None:
    data = {
        "business": "首次申领",
        "kiosk_id": "K1",
        "serial_number": "S1",
        "reason": "缺少相片",
        "missing": ["相片"],
        "process": ["在本机拍照"],
        "time_limit": "当场办结",
        "where": "本机",
    }
    source = tmp_path / "notice.json"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "notice.png"
    assert main(["receipt", "render", "notice", str(source), "--out", str(out), "--font", str(FONT)]) == 0
    assert Image.open(out).height > 300


@pytest.mark.parametrize(
    ("kind", "content", "code"),
    [
        ("ticket", "{}", "receipt.bad_kind"),
        ("voucher", "[1, 2]", "receipt.bad_data"),
        ("voucher", "{not json", "receipt.bad_data"),
        ("voucher", '{"business": "x"}', "receipt.bad_data"),
        ("voucher", '{"business": "x", "colour": "red"}', "receipt.bad_data"),
    ],
)
def test_cli_bad_input_is_a_json_error(tmp_path: Path, capsys, kind, content, code) -> None:
    source = tmp_path / "data.json"
    source.write_text(content, encoding="utf-8")
    assert main(["receipt", "render", kind, str(source), "--out", str(tmp_path / "x.png")]) == 2
    assert json.loads(capsys.readouterr().out)["error"]["code"] == code
