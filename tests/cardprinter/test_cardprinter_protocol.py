"""Wire format: framing, replies, panels; random bytes never crash the parsers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from printer.cardprinter import protocol as p


def test_encode_frames_command_with_esc_separators_and_cr():
    assert p.encode("Pcim", "F") == b"\x1bPcim;F\r"
    assert p.encode("Sis") == b"\x1bSis\r"


@pytest.mark.parametrize("bad", ["a;b", "\r", "é"])
def test_encode_refuses_parameters_that_would_break_the_frame(bad):
    with pytest.raises(p.ProtocolError):
        p.encode("Pcim", bad)


@pytest.mark.parametrize("levels", [2, 32, 64, 128])
def test_panel_pack_unpack_round_trip(levels):
    rng = np.random.default_rng(levels)
    dots = rng.integers(0, levels, size=(p.CARD_HEIGHT_DOTS, p.CARD_WIDTH_DOTS), dtype=np.uint8)
    data = p.pack_panel(dots, levels)
    assert len(data) == p.panel_size(levels)
    assert np.array_equal(p.unpack_panel(data, levels), dots)


def test_one_bit_panel_is_1016_by_648_bits():
    assert p.panel_size(2) == 1016 * 648 // 8


def test_parser_reads_panel_data_containing_cr_and_esc_bytes():
    data = bytes([p.CR, p.ESC, ord(";")]) * (p.panel_size(2) // 3) + b"\x00" * (p.panel_size(2) % 3)
    stream = p.encode("Ss") + p.encode_panel("k", 2, data) + p.encode("Se")
    parser = p.CommandParser()
    commands = []
    for i in range(0, len(stream), 7919):  # arbitrary chunking
        commands += parser.feed(stream[i : i + 7919])
    assert [c.name for c in commands] == ["Ss", "Db", "Se"]
    assert commands[1].params == ("k", "2") and commands[1].data == data


def test_parser_skips_garbage_before_esc_and_flags_bad_frames():
    commands = p.CommandParser().feed(b"noise\x1bRlr;p\r\x1b\xff\xfe\r\x1bSis\r")
    assert [c.name for c in commands] == ["Rlr", "?", "Sis"]


def test_parse_reply_values_and_errors():
    assert p.parse_reply(b"OK\r").ok
    reply = p.parse_reply(b"ERR T\r")
    assert reply.error is p.ErrorCode.MECHANICAL and not reply.ok
    assert p.parse_position(p.parse_reply(b"SMART CARD")) is p.PositionWord.SMART_CARD
    assert p.parse_flags(p.parse_reply(b"WAR_FEEDER_EMPTY,INF_CARD_SMART")) == {
        p.Flag.WAR_FEEDER_EMPTY,
        p.Flag.INF_CARD_SMART,
    }
    assert p.parse_ribbon(p.parse_reply(b"YMCKO,187,200")) == ("YMCKO", 187, 200)
    assert p.parse_fields(p.parse_reply(b"fed=3,bin=1")) == {"fed": 3, "bin": 1}


@pytest.mark.parametrize("raw", [b"", b"ERR Z", b"\x00OK", "卡".encode(), b"x" * 600])
def test_parse_reply_rejects_garbage(raw):
    with pytest.raises(p.ProtocolError):
        p.parse_reply(raw)


def test_emboss_line_refuses_characters_an_embosser_cannot_press():
    assert p.emboss_line(1, 402, 315, "A00000001") == b"\x1bDem;1;402;315;A00000001\r"
    with pytest.raises(p.ProtocolError):
        p.emboss_line(2, 402, 118, "张三")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=8))
def test_command_parser_never_crashes_on_random_bytes(chunks):
    parser = p.CommandParser()
    for chunk in chunks:
        for command in parser.feed(chunk):
            assert command.name == "?" or command.name.isalnum()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_reply_parsers_raise_only_protocol_error(raw):
    try:
        reply = p.parse_reply(raw)
    except p.ProtocolError:
        return
    for parse in (p.parse_position, p.parse_ribbon, p.parse_fields):
        try:
            parse(reply)
        except p.ProtocolError:
            pass
    p.parse_flags(reply)


def test_a_flags_reply_starting_with_err_mechanical_is_not_an_error_reply() -> None:
    from printer.cardprinter import protocol as p

    reply = p.parse_reply(b"ERR_MECHANICAL,INF_CARD_PRINT\r")
    assert reply.error is None
    assert p.Flag.ERR_MECHANICAL in p.parse_flags(reply)
