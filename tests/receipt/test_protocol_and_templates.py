"""ESC/POS parsing and status bytes (pure functions), layout and masking."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.devices.receipt import StaffReport
from printer.receipt import protocol as p
from printer.receipt.escpos_printer import encode_layout
from printer.receipt.templates import (
    TextLine,
    display_width,
    mask_card_number,
    mask_id_number,
    notice_layout,
    report_layout,
    voucher_layout,
    wrap,
)


def test_status_bits_round_trip_through_replies() -> None:
    status = p.PrinterStatus(offline=True, cover_open=True, paper_near_end=True, cutter_error=True)
    replies = [status.reply(n) for n in (1, 2, 3, 4)]
    assert replies == [0x1A, 0x16, 0x1A, 0x1E]
    assert p.PrinterStatus.from_replies(*replies) == status
    assert p.PrinterStatus(paper_end=True).reply(4) == 0x72  # python-escpos RT_MASK_NOPAPER


def test_dle_eot_and_gs_r_replies_are_told_apart() -> None:
    for status in (p.PrinterStatus(), p.PrinterStatus(paper_end=True, paper_near_end=True)):
        assert p.is_gs_r_reply(status.gs_r_reply()) and not p.is_dle_eot_reply(status.gs_r_reply())
        for n in (1, 2, 3, 4):
            assert p.is_dle_eot_reply(status.reply(n)) and not p.is_gs_r_reply(status.reply(n))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(min_value=1, max_value=700), max_size=12))
def test_parser_gives_the_same_commands_however_the_stream_is_split(voucher, cuts) -> None:
    stream = encode_layout(voucher_layout(voucher))
    whole = p.parse(stream)
    parser = p.StreamParser()
    pieces = []
    last = 0
    for cut in sorted({c % len(stream) for c in cuts}) + [len(stream)]:
        pieces += parser.feed(stream[last:cut])
        last = cut
    assert pieces == whole
    assert b"".join(c.raw for c in whole) == stream


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_crash_the_parser(data) -> None:
    commands = p.parse(data)
    assert b"".join(c.raw for c in commands) == data


def test_masking_shows_first_six_and_last_four() -> None:
    assert mask_id_number("110101199003070048") == "110101********0048"
    assert mask_id_number("11010119900307004X") == "110101********004X"
    assert mask_card_number("6228480012345671234") == "622848*********1234"
    assert mask_card_number("A01234567") == "A*****567"
    assert mask_card_number("123") == "**3"


@settings(max_examples=100, deadline=None)
@given(
    text=st.text(alphabet=st.sampled_from("社会保障卡ABC123（）：“” -"), max_size=120),
    columns=st.sampled_from([32, 48]),
)
def test_wrapped_lines_never_exceed_the_roll(text, columns) -> None:
    lines = wrap(text, columns)
    assert "".join(lines) == text
    assert all(display_width(line) <= columns for line in lines)


def test_full_width_punctuation_counts_double() -> None:
    assert display_width("（张三）：“A”") == 7 * 2 + 1  # seven double-byte characters and one ASCII


def test_every_layout_line_fits_58mm_and_80mm(voucher, notice) -> None:
    report = StaffReport(
        title="空白卡日结对账单",
        printed_at=voucher.completed_at,
        kiosk_id="K1",
        fields=(("期初", "50"),),
        columns=("卡号", "原因", "访客流水"),
        rows=(("C0000001", "个人化失败" * 3, "V" * 30),),
    )
    for columns in (32, 48):
        for layout in (
            voucher_layout(voucher, columns=columns),
            notice_layout(notice, columns=columns),
            report_layout(report, columns=columns),
        ):
            for element in layout.elements:
                if isinstance(element, TextLine):
                    assert display_width(element.text) * element.scale <= columns, element.text


def test_english_labels(voucher) -> None:
    text = voucher_layout(voucher, language="en").text()
    assert "Business: " in text and "110101********0048" in text
