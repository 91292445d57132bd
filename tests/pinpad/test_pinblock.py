"""Known-answer tests of the PIN block arithmetic and the KMY3501 framing (pure, no link)."""

from __future__ import annotations

import pytest
from gmssl.sm4 import SM4_ENCRYPT, CryptSM4
from hypothesis import given
from hypothesis import strategies as st

from hardware.pinpad import kmy3501, pinblock
from kiosk.devices.pinpad import KeyAlgorithm, PinBlock, PinPadChecksumError, PinPadError

TDES, SM4 = KeyAlgorithm.TDES, KeyAlgorithm.SM4


def test_single_des_known_answer_through_double_length_key() -> None:
    # K1 = K2 makes 3DES-EDE collapse to single DES: the classic FIPS 46 worked example.
    key = bytes.fromhex("133457799BBCDFF1" * 2)
    assert (
        pinblock.encrypt_ecb(key, TDES, bytes.fromhex("0123456789ABCDEF")).hex().upper() == "85E813540F0AB405"
    )


def test_sm4_known_answer_from_gb_t_32907() -> None:
    key = bytes.fromhex("0123456789abcdeffedcba9876543210")
    assert pinblock.encrypt_ecb(key, SM4, key).hex() == "681edf34d206965e86b3e94f536e4246"


def test_check_values() -> None:
    # DES(0123456789ABCDEF, 0) = D5D44FF720683D0D (published single-DES value).
    assert pinblock.check_value(bytes.fromhex("0123456789ABCDEF" * 2), TDES) == "D5D44FF7"
    key = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    reference = CryptSM4()
    reference.set_key(key, SM4_ENCRYPT)
    assert pinblock.check_value(key, SM4) == reference.crypt_ecb(bytes(16))[:4].hex().upper()


def test_iso0_clear_block_published_example() -> None:
    # PIN 1234, PAN 43219876543210987 → 0412AC89ABCDEF67 (the common worked example of format 0).
    assert pinblock.clear_pin_block(b"1234", "43219876543210987", TDES).hex().upper() == "0412AC89ABCDEF67"


def test_account_digits_exclude_the_check_digit() -> None:
    assert pinblock.account_digits("6217001234567890128") == "123456789012"
    assert pinblock.account_digits("12345") == "000000001234"


def test_sm4_variant_widens_both_fields_to_16_bytes() -> None:
    clear = pinblock.clear_pin_block(b"582914", "6217001234567890128", SM4)
    assert clear.hex().upper() == "06582914FFFFFFFFFFFFEDCBA9876FED"


def test_encrypted_blocks_known_answers() -> None:
    key = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    account = "6217001234567890128"
    assert pinblock.clear_pin_block(b"582914", account, TDES).hex().upper() == "06583B20A9876FED"
    assert pinblock.encrypted_pin_block(b"582914", account, key, TDES).hex().upper() == "4E1BC4F389A920E4"
    sm4 = pinblock.encrypted_pin_block(b"582914", account, key, SM4)
    assert sm4.hex().upper() == "CC74BCB2DC250277D7B916DF3D2009CA"
    # An independent SM4 implementation (gmssl) agrees.
    reference = CryptSM4()
    reference.set_key(key, SM4_ENCRYPT)
    assert reference.crypt_ecb(pinblock.clear_pin_block(b"582914", account, SM4))[:16] == sm4


@given(
    pin=st.text(alphabet="0123456789", min_size=4, max_size=12),
    account=st.text(alphabet="0123456789", min_size=13, max_size=19),
    algorithm=st.sampled_from([TDES, SM4]),
)
def test_pin_block_round_trip(pin: str, account: str, algorithm: KeyAlgorithm) -> None:
    key = bytes(range(16))
    block = pinblock.encrypted_pin_block(pin.encode(), account, key, algorithm)
    assert len(block) == algorithm.block_size
    assert pinblock.pin_from_block(block, account, key, algorithm) == pin.encode()


@pytest.mark.parametrize("pin", [b"123", b"12a456", b"1234567890123"])
def test_pin_field_refuses_malformed_pins(pin: bytes) -> None:
    with pytest.raises(ValueError):
        pinblock.pin_field(pin, TDES)


def test_pin_block_value_never_shows_its_bytes() -> None:
    block = PinBlock(bytes.fromhex("4E1BC4F389A920E4"), TDES, (0, 1))
    for text in (repr(block), str(block), f"{block}", f"{[block]}"):
        assert "4e1bc4f3" not in text.lower()
    assert bytes(block) == bytes.fromhex("4E1BC4F389A920E4")
    assert block == PinBlock(bytes.fromhex("4E1BC4F389A920E4"), TDES, (0, 1))
    assert block != PinBlock(bytes.fromhex("4E1BC4F389A920E5"), TDES, (0, 1))


def test_kmy3501_frame_layout() -> None:
    # reset: LEN 01, CMD 31, BCC 01^31 = 30 → 02 "0131" "30" 03
    assert kmy3501.encode_frame(b"\x31") == b"\x020131" + b"30\x03"
    assert kmy3501.decode_frame(kmy3501.encode_frame(b"\x04hello")) == b"\x04hello"


def test_kmy3501_bad_bcc_is_a_checksum_error() -> None:
    frame = bytearray(kmy3501.encode_frame(b"\x04\x01\x02"))
    frame[-2] ^= 0x01
    with pytest.raises(PinPadChecksumError):
        kmy3501.decode_frame(bytes(frame))


@given(st.binary(max_size=64))
def test_corrupt_frames_raise_only_pin_pad_errors(data: bytes) -> None:
    for frame in (data, b"\x02" + data + b"\x03"):
        try:
            kmy3501.decode_frame(frame)
        except PinPadError:
            pass
