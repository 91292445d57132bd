"""Data items, encodings, APDU values and parsers (no pcscd needed)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from chip_helpers import sample_card_data
from hypothesis import given
from hypothesis import strategies as st

from hardware.smartcard.apdu import CommandApdu, ResponseApdu, StatusWord
from hardware.smartcard.crypto import Algorithm
from hardware.smartcard.layout import (
    SSSE_NAME,
    bcd,
    bcd_date,
    card_number_check_char,
    card_number_valid,
    find_tlv,
    join_name,
    luhn_valid,
    split_name,
    unbcd,
    unbcd_date,
)
from hardware.smartcard.personalize import encode_card_data
from hardware.smartcard.sscard import algorithm_from_fci, card_serial
from hardware.smartcard.virtual import card_atr
from kiosk.devices.smartcard import CardDataError, CardNotSupportedError, CardStatusError


def test_ssse_name_is_the_gbk_bytes_of_the_spec() -> None:
    assert SSSE_NAME.hex().upper() == "7378312E73682EC9E7BBE1B1A3D5CF"


def test_card_number_check_character_matches_the_worked_example() -> None:
    assert card_number_check_char("D2143569") == "X"
    assert card_number_valid("D2143569X")
    assert not card_number_valid("D21435690")


def test_bcd_and_dates_are_f_padded_packed_digits() -> None:
    assert bcd("01", 1) == b"\x01"
    assert bcd("110105", 3).hex() == "110105"
    assert bcd("123", 3).hex().upper() == "123FFF"
    assert unbcd(bytes.fromhex("123FFF")) == "123"
    from datetime import date

    assert bcd_date(date(2018, 4, 3)).hex() == "20180403"
    assert unbcd_date(bytes.fromhex("20180403")) == date(2018, 4, 3)
    assert unbcd_date(b"\xff" * 4) is None


def test_long_names_spill_into_the_name_extension_on_a_character_boundary() -> None:
    name = "阿卜杜热合曼·买买提艾力阿卜杜拉"  # 16 characters = 32 GBK bytes
    first, rest = split_name(name)
    assert len(first) == 30 and len(rest) == 2
    assert join_name(first + b"\x00" * 0, rest) == name
    with pytest.raises(ValueError):
        split_name("名" * 26)
    with pytest.raises(UnicodeEncodeError):
        split_name("\U00020bb7")  # outside GBK


def test_luhn() -> None:
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")


def test_card_serial_is_historical_bytes_6_to_13() -> None:
    serial = bytes.fromhex("0102030405060708")
    assert card_serial(card_atr(serial, Algorithm.SM4)) == serial
    with pytest.raises(CardNotSupportedError):
        card_serial(bytes.fromhex("3B6800005353434152443031"))


def test_algorithm_comes_from_the_fci_or_the_region_code() -> None:
    fci = bytes.fromhex("6F1C840F7378312E73682EC9E7BBE1B1A3D5CFA50988011E9F0C03860103")
    assert algorithm_from_fci(fci) is Algorithm.SM4
    assert algorithm_from_fci(fci.replace(bytes.fromhex("860103"), bytes.fromhex("860101"))) is Algorithm.TDES
    assert algorithm_from_fci(bytes.fromhex("6F03840100"), "510100") is Algorithm.TDES
    with pytest.raises(CardNotSupportedError):
        algorithm_from_fci(bytes.fromhex("6F03840100"), "110100")  # SSF33
    with pytest.raises(CardNotSupportedError):
        algorithm_from_fci(fci.replace(bytes.fromhex("860103"), bytes.fromhex("860102")))


def test_status_words_have_message_keys_and_parametric_families() -> None:
    assert StatusWord.of(0x63C3) is StatusWord.PIN_WRONG
    assert StatusWord.of(0x6112) is StatusWord.MORE_DATA
    assert StatusWord.of(0x6C0B) is StatusWord.WRONG_LE
    assert StatusWord.of(0x6983).message_key == "smartcard.sw.auth_blocked"
    assert StatusWord.of(0x1234) is StatusWord.UNKNOWN
    with pytest.raises(CardStatusError) as caught:
        ResponseApdu(b"", 0x6A, 0x82).expect(step="select")
    assert caught.value.sw == 0x6A82 and caught.value.step == "select"
    assert caught.value.message_key == "smartcard.sw.file_not_found"


def test_command_apdu_cases_encode() -> None:
    assert CommandApdu(0x00, 0x84, 0, 0, le=8).to_bytes().hex() == "0084000008"
    assert CommandApdu(0x00, 0x20, 0, 0, bytes.fromhex("123456")).to_bytes().hex() == "0020000003123456"
    assert CommandApdu(0x00, 0xA4, 4, 0, b"\x01", le=0).to_bytes().hex() == "00a404000101" + "00"
    with pytest.raises(ValueError):
        CommandApdu(0x00, 0xD6, 0, 0, bytes(256))


@given(st.binary(max_size=300))
def test_command_parser_never_crashes_on_garbage(raw: bytes) -> None:
    try:
        parsed = CommandApdu.parse(raw)
    except ValueError:
        return
    assert parsed.to_bytes() == raw or raw[4:5] == b"\x00"


@given(st.binary(max_size=200), st.integers(0, 0xFFFF))
def test_tlv_search_never_crashes(data: bytes, tag: int) -> None:
    found = find_tlv(data, tag)
    assert found is None or isinstance(found, bytes)


def test_card_data_that_cannot_be_written_is_refused_before_any_apdu() -> None:
    good = sample_card_data()
    encode_card_data(good)
    for bad, code in [
        (replace(good, card_number="B76543210"), "smartcard.card_number_invalid"),
        (replace(good, ssn="123"), "smartcard.ssn_invalid"),
        (replace(good, sex="M"), "smartcard.sex_invalid"),
        (replace(good, name="\U00020bb7"), "smartcard.name_not_encodable"),
        (replace(good, photo_jpeg=bytes(5000)), "smartcard.photo_too_large"),
        (replace(good, ethnicity_code="1A"), "smartcard.card_data_invalid"),
    ]:
        with pytest.raises(CardDataError) as caught:
            encode_card_data(bad)
        assert caught.value.code == code


def test_every_status_word_and_error_has_text_in_both_languages() -> None:
    import kiosk.devices.smartcard as api
    from kiosk.i18n import load_messages

    keys = {sw.message_key for sw in StatusWord}
    keys |= {
        cls.default_message_key
        for cls in vars(api).values()
        if isinstance(cls, type) and issubclass(cls, api.SmartCardError)
    }
    for language in ("zh_CN", "en"):
        missing = keys - set(load_messages(language))
        assert missing == set(), (language, missing)
