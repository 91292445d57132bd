"""Wire format and text-block parsing, against the research note's test vectors."""

from __future__ import annotations

from datetime import UTC, date

import pytest

from hardware.idreader import protocol as p
from hardware.idreader.simulator import extra_cards, load_deck, simulated_photo
from kiosk.devices.idreader import (
    BadChecksumError,
    CardRemovedError,
    CardType,
    FrameError,
    NoCardError,
    SamNotAuthorizedError,
    SelfTestFailedError,
    Sex,
    TextBlockError,
    TruncatedFrameError,
    Validity,
    mask_id_number,
)
from tests.idreader.conftest import PEOPLE_FILE, TODAY

COMMAND_VECTORS = {
    p.Command.RESET_SAM: "AA AA AA 96 69 00 03 10 FF EC",
    p.Command.SAM_STATUS: "AA AA AA 96 69 00 03 11 FF ED",
    p.Command.SAM_ID: "AA AA AA 96 69 00 03 12 FF EE",
    p.Command.FIND_CARD: "AA AA AA 96 69 00 03 20 01 22",
    p.Command.SELECT_CARD: "AA AA AA 96 69 00 03 20 02 21",
    p.Command.READ_TEXT_PHOTO: "AA AA AA 96 69 00 03 30 01 32",
    p.Command.READ_NEW_ADDRESS: "AA AA AA 96 69 00 03 30 03 30",
    p.Command.READ_WITH_FINGERPRINT: "AA AA AA 96 69 00 03 30 10 23",
}


@pytest.mark.parametrize(
    "command,expected", list(COMMAND_VECTORS.items()), ids=lambda v: getattr(v, "name", "")
)
def test_command_frames_match_the_published_vectors(command: p.Command, expected: str) -> None:
    assert p.build_command(command) == bytes.fromhex(expected)


def test_set_max_rf_bytes_and_set_baud_frames() -> None:
    assert p.build_command(p.Command.SET_MAX_RF_BYTES, b"\x50") == bytes.fromhex(
        "AA AA AA 96 69 00 04 61 FF 50 CA"
    )
    assert p.parse_command(p.build_set_baud(9600)) == p.HostCommand(0x60, 0x04, b"")
    with pytest.raises(ValueError):
        p.build_set_baud(12345)


@pytest.mark.parametrize(
    "frame,sw3,data_len",
    [
        ("AA AA AA 96 69 00 08 00 00 9F 00 00 00 00 97", 0x9F, 4),
        ("AA AA AA 96 69 00 04 00 00 80 84", 0x80, 0),
        ("AA AA AA 96 69 00 0C 00 00 90 00 00 00 00 00 00 00 00 9C", 0x90, 8),
        ("AA AA AA 96 69 00 04 00 00 81 85", 0x81, 0),
        ("AA AA AA 96 69 00 04 00 00 41 45", 0x41, 0),
    ],
)
def test_reply_vectors_parse(frame: str, sw3: int, data_len: int) -> None:
    reply = p.parse_reply(bytes.fromhex(frame))
    assert (reply.sw3, len(reply.data)) == (sw3, data_len)


def test_wrong_checksum_from_a_published_bug_is_refused() -> None:
    # U7 sends find card with checksum 21 instead of 22.
    with pytest.raises(BadChecksumError):
        p.parse_command(bytes.fromhex("AA AA AA 96 69 00 03 20 01 21"))


def test_truncated_and_overlong_frames_are_refused() -> None:
    frame = p.build_reply(p.Sw3.SUCCESS, b"\x01" * 8)
    with pytest.raises(TruncatedFrameError):
        p.parse_reply(frame[:-3])
    with pytest.raises(FrameError):
        p.parse_reply(frame + b"\x00")
    with pytest.raises(FrameError):
        p.parse_reply(b"\x00" + frame[1:])


def test_read_reply_sizes_match_the_real_modules() -> None:
    card = load_deck(PEOPLE_FILE)["first_issue"]
    frame = p.build_reply(p.Sw3.SUCCESS, p.build_read_data(card.text_block, card.photo))
    assert len(frame) == 1295 and frame[:10] == bytes.fromhex("AA AA AA 96 69 05 08 00 00 90")
    assert frame[10:14] == bytes.fromhex("01 00 04 00")
    with_fp = p.build_reply(p.Sw3.SUCCESS, p.build_read_data(card.text_block, card.photo, b"\x11" * 1024))
    assert len(with_fp) == 2321 and with_fp[:10] == bytes.fromhex("AA AA AA 96 69 09 0A 00 00 90")
    assert p.decode_read_frame(with_fp, today=TODAY).fingerprint == b"\x11" * 1024


def test_take_frame_discards_garbage_and_false_preambles() -> None:
    good = p.build_reply(p.Sw3.FIND_FAILED)
    buffer = bytearray(b"\x01\x02\xaa\xaa" + p.PREAMBLE + b"\xff\xff\x00" + good + b"\xaa\xaa")
    frame, discarded = p.take_frame(buffer)
    assert frame == good and discarded == 4 + 8
    assert buffer == b"\xaa\xaa"  # a possible preamble start is kept for the next read


@pytest.mark.parametrize(
    "sw3,error",
    [
        (0x80, NoCardError),
        (0x81, NoCardError),
        (0x41, CardRemovedError),
        (0x66, SamNotAuthorizedError),
        (0x60, SelfTestFailedError),
    ],
)
def test_status_bytes_map_to_typed_errors(sw3: int, error: type) -> None:
    exc = p.status_error(sw3)
    assert isinstance(exc, error) and exc.sw3 == sw3


def test_every_sw3_code_has_a_stable_code_and_a_catalogued_message_key() -> None:
    from kiosk.i18n import load_messages

    zh, en = load_messages("zh_CN"), load_messages("en")
    for status in p.Sw3:
        assert status.code.startswith("idreader.")
        assert status.message_key in zh and status.message_key in en, status
    unknown = p.status_error(0x77)
    assert unknown.code == "idreader.sw3.unknown" and unknown.sw3 == 0x77


@pytest.mark.parametrize("number,ok", [("11010519491231002X", True), ("11010519491231002x", True),
                                       ("440524188001010014", True), ("440524188001010015", False),
                                       ("44052418800101001", False), ("4405241880010100AX", False)])  # fmt: skip
def test_gb11643_check_digit(number: str, ok: bool) -> None:
    assert p.id_number_check_digit_ok(number) is ok


def _parse(key: str, today: date = TODAY):
    card = load_deck(PEOPLE_FILE)[key]
    return p.parse_identity(card.text_block, card.photo, today=today)


def test_resident_layout_from_the_demo_people() -> None:
    card = _parse("renewal")
    assert card.card_type is CardType.RESIDENT
    assert (card.name, card.sex, card.ethnicity, card.ethnicity_code) == ("王建国", Sex.MALE, "汉", "01")
    assert card.birth_date == date(1962, 11, 5) and card.valid_until == date(2030, 4, 20)
    assert card.address == "示例市示例区建设大街12号" and card.issuer == "示例市公安局示例分局"
    assert card.id_number_valid and card.validity is Validity.VALID and card.flags == ()
    assert card.photo == simulated_photo("renewal")


def test_long_term_card_has_no_expiry() -> None:
    card = _parse("first_issue")
    assert card.long_term and card.valid_until is None
    assert card.validity_on(date(2099, 1, 1)) is Validity.VALID


def test_expired_card_is_expired_the_day_after_its_end_date() -> None:
    card = _parse("expired_id", today=date(2026, 8, 8))
    assert card.validity is Validity.VALID  # the end date itself is still valid (assumed inclusive)
    assert card.validity_on(date(2026, 8, 9)) is Validity.EXPIRED
    assert card.validity_on(date(2006, 8, 7)) is Validity.NOT_YET_VALID


def test_rare_characters_outside_the_bmp_survive() -> None:
    assert _parse("rare_characters").name == "王𠮷"
    assert _parse("rare_characters").address == "示例市示例区䶮路1号"
    assert _parse("rare_address").address == "示例市𠀋𡈽𤋮路18号"


def test_hk_macau_taiwan_layout() -> None:
    card = _parse("hk_macau_taiwan")
    assert card.card_type is CardType.HK_MACAU_TAIWAN
    assert card.ethnicity is None and card.ethnicity_code is None
    assert card.permit_number == "H12345678" and card.issue_count == "02"
    assert card.id_number.startswith("8") and card.id_number_valid


def test_foreign_2017_layout_keeps_inner_spaces_and_has_no_check_digit() -> None:
    card = _parse("foreign_permanent_2017")
    assert card.card_type is CardType.FOREIGN_PERMANENT_2017
    assert card.name_en == "SMITH, JOHN PAUL" and card.name == "史密斯"
    assert card.nationality == "USA" and card.id_number == "USA110070010201"
    assert card.id_number_valid is None and card.birth_date == date(1970, 1, 2)


def test_foreign_2023_layout_joins_the_long_english_name() -> None:
    card = _parse("foreign_permanent_2023")
    assert card.card_type is CardType.FOREIGN_PERMANENT_2023
    assert card.name_en == "MONTGOMERY-WILLIAMSON, ALEXANDRA CATHERINE"
    assert card.nationality == "GBR" and card.sex is Sex.FEMALE and card.id_number_valid


def test_bad_check_digit_is_reported_not_raised() -> None:
    card = _parse("bad_check_digit")
    assert card.id_number_valid is False


def test_unknown_codes_are_kept_raw_and_flagged_never_guessed() -> None:
    card = _parse("unknown_codes")
    assert card.sex is None and card.sex_code == "5"
    assert card.ethnicity is None and card.ethnicity_code == "77"
    assert {"sex_code", "ethnicity_code"} <= set(card.flags)


def test_unknown_type_flag_is_read_as_resident_and_flagged() -> None:
    block = bytearray(load_deck(PEOPLE_FILE)["renewal"].text_block)
    block[248:250] = "Q".encode("utf-16-le")
    card = p.parse_identity(bytes(block), today=TODAY)
    assert card.card_type is CardType.RESIDENT and "card_type_flag" in card.flags


def test_undecodable_text_and_bad_dates_are_flagged() -> None:
    block = bytearray(load_deck(PEOPLE_FILE)["renewal"].text_block)
    block[0:2] = b"\x00\xd8"  # a lone high surrogate
    block[36:52] = "19621399".encode("utf-16-le")
    card = p.parse_identity(bytes(block), today=TODAY)
    assert "undecodable:name" in card.flags and "birth_date" in card.flags and card.birth_date is None


def test_text_block_of_the_wrong_size_raises() -> None:
    with pytest.raises(TextBlockError):
        p.parse_identity(b"\x20\x00" * 100)


def test_mask_keeps_first_six_and_last_four() -> None:
    assert mask_id_number("11010519491231002X") == "110105********002X"
    assert mask_id_number("USA110070010201") == "USA110*****0201"
    assert _parse("renewal").masked_id_number == "110101********0011"
    assert "110101196211050011" not in repr(_parse("renewal"))


def test_sam_id_format() -> None:
    data = (
        bytes([5, 0, 1, 0])
        + (20080808).to_bytes(4, "little")
        + (123456).to_bytes(4, "little")
        + (7).to_bytes(4, "little")
    )
    assert p.format_sam_id(data) == "05.01-20080808-0000123456-0000000007"


def test_shanghai_today_uses_the_local_date() -> None:
    from datetime import datetime

    late_utc = datetime(2026, 11, 23, 17, 30, tzinfo=UTC)  # 01:30 on the 24th in Shanghai
    assert p.shanghai_today(lambda: late_utc) == date(2026, 11, 24)


def test_every_extra_card_round_trips_through_the_text_block() -> None:
    for card in extra_cards():
        parsed = p.parse_identity(card.text_block, today=TODAY)
        assert parsed.name == card.text.name and parsed.card_type is card.text.card_type


@pytest.mark.parametrize(
    "number", ["1101011962110500²1", "１１０１０１１９６２１１０５００１１", "11010119621105001٣"]
)
def test_non_ascii_digits_in_an_id_number_are_invalid_not_a_crash(number: str) -> None:
    # str.isdigit() accepts superscripts and full-width digits that int() refuses (found by the fuzz bench).
    assert p.id_number_check_digit_ok(number) is False
