"""SSSE file structure and data items (社会保障卡文件结构和数据项 V2.0), pure functions over bytes.

Record = tag(1) ‖ len(1) ‖ value; the tag is the record identifier. "cn" is packed BCD
right-padded with F, "an" is left-aligned and right-padded with 00. Both the driver and the
virtual card use this table, so a wrong length or encoding shows up in read-back and in the
known-value tests of ``tests/smartcard/test_layout.py``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date

SSSE_NAME = "sx1.sh.社会保障".encode("gbk")  # 7378312E73682EC9E7BBE1B1A3D5CF
PSAM_DF_NAME = SSSE_NAME
PSAM_ADF_AID = bytes.fromhex("D15600000590")
UNIONPAY_DEBIT_AID = bytes.fromhex("A000000333010101")
PHOTO_SIZE = 0x1000  # EF08 数字相片, 4 KB
PHOTO_CHUNK = 0xF0  # UPDATE/READ BINARY chunk (short APDU)
IDENTIFICATION_CODE_MIDDLE = bytes.fromhex("D156000005")


class Encoding(enum.Enum):
    CN = "cn"  # BCD, F-padded
    AN = "an"  # ASCII/GBK, 00-padded
    B = "b"  # binary


@dataclass(frozen=True)
class DataItem:
    ef: int
    tag: int
    name: str
    encoding: Encoding
    length: int


DATA_ITEMS: tuple[DataItem, ...] = (
    DataItem(0xEF05, 0x01, "card_identification_code", Encoding.B, 16),  # 卡识别码
    DataItem(0xEF05, 0x02, "card_category", Encoding.AN, 1),  # 卡类别
    DataItem(0xEF05, 0x03, "spec_version", Encoding.AN, 4),  # 规范版本
    DataItem(0xEF05, 0x04, "initialization_org", Encoding.CN, 12),  # 初始化机构编号
    DataItem(0xEF05, 0x05, "issue_date", Encoding.CN, 4),  # 发卡日期
    DataItem(0xEF05, 0x06, "expiry_date", Encoding.CN, 4),  # 卡有效期
    DataItem(0xEF05, 0x07, "card_number", Encoding.AN, 9),  # 卡号
    DataItem(0xEF06, 0x08, "ssn", Encoding.AN, 18),  # 社会保障号码
    DataItem(0xEF06, 0x09, "name", Encoding.AN, 30),  # 姓名
    DataItem(0xEF06, 0x4E, "name_extension", Encoding.AN, 20),  # 姓名扩展
    DataItem(0xEF06, 0x0A, "sex", Encoding.AN, 1),  # 性别
    DataItem(0xEF06, 0x0B, "ethnicity", Encoding.CN, 1),  # 民族
    DataItem(0xEF06, 0x0C, "birth_place", Encoding.CN, 3),  # 出生地
    DataItem(0xEF06, 0x0D, "birth_date", Encoding.CN, 4),  # 出生日期
)
ITEMS_BY_TAG = {item.tag: item for item in DATA_ITEMS}
ITEMS_BY_NAME = {item.name: item for item in DATA_ITEMS}
# Items the card factory writes at initialization (卡片初始化); the kiosk never rewrites them.
FACTORY_TAGS = (0x01, 0x04)


def item(name: str) -> DataItem:
    return ITEMS_BY_NAME[name]


def bcd(digits: str, length: int) -> bytes:
    """Packed BCD of ``digits`` right-padded with F to ``length`` bytes."""
    if any(c not in "0123456789" for c in digits) or len(digits) > 2 * length:
        raise ValueError("not a BCD digit string of the right length")
    text = digits + "F" * (2 * length - len(digits))
    return bytes.fromhex(text)


def unbcd(value: bytes) -> str:
    return value.hex().upper().split("F", 1)[0]


def an(text: bytes, length: int) -> bytes:
    if len(text) > length:
        raise ValueError("text longer than the data item")
    return text + b"\x00" * (length - len(text))


def unan(value: bytes) -> bytes:
    return value.rstrip(b"\x00")


def bcd_date(day: date) -> bytes:
    return bcd(day.strftime("%Y%m%d"), 4)


def unbcd_date(value: bytes) -> date | None:
    digits = unbcd(value)
    if len(digits) != 8:
        return None
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return None


def tlv(tag: int, value: bytes) -> bytes:
    return bytes((tag, len(value))) + value


_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def card_number_check_char(first8: str) -> str:
    """Check character of the card number (V2.0 附录A): C9 = 11 − (Σ Ci·Wi mod 11); 10 → 'X', 11 → '0'.
    Letters count as 10–35 (A = 10)."""
    if len(first8) != 8 or not first8.isalnum() or not first8.isascii():
        raise ValueError("card number body must be 8 letters or digits")
    total = sum(int(c, 36) * w for c, w in zip(first8.upper(), _WEIGHTS))
    check = 11 - total % 11
    return "X" if check == 10 else "0" if check == 11 else str(check)


def card_number_valid(number: str) -> bool:
    try:
        return len(number) == 9 and card_number_check_char(number[:8]) == number[8].upper()
    except ValueError:
        return False


def split_name(name: str) -> tuple[bytes, bytes]:
    """GBK name → (姓名 ≤ 30 bytes, 姓名扩展 ≤ 20 bytes), split on a character boundary."""
    first = bytearray()
    rest = bytearray()
    for char in name:
        encoded = char.encode("gbk")  # UnicodeEncodeError for characters outside GBK
        if not rest and len(first) + len(encoded) <= 30:
            first += encoded
        else:
            rest += encoded
    if len(rest) > 20:
        raise ValueError("name longer than 50 GBK bytes")
    return bytes(first), bytes(rest)


def join_name(name: bytes, extension: bytes) -> str:
    return (unan(name) + unan(extension)).decode("gbk", errors="replace")


def luhn_valid(pan: str) -> bool:
    if not pan.isdigit() or not 12 <= len(pan) <= 19:
        return False
    total = 0
    for i, c in enumerate(reversed(pan)):
        d = int(c)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def luhn_complete(body: str) -> str:
    for d in "0123456789":
        if luhn_valid(body + d):
            return body + d
    raise ValueError("no Luhn digit")  # unreachable for digit strings


def find_tlv(data: bytes, wanted: int) -> bytes | None:
    """Finds a BER-TLV tag (1 or 2 bytes) anywhere in ``data``, descending into constructed tags."""
    i = 0
    while i < len(data):
        tag = data[i]
        i += 1
        if tag in (0x00, 0xFF):
            continue
        if tag & 0x1F == 0x1F:
            if i >= len(data):
                return None
            tag = (tag << 8) | data[i]
            i += 1
        if i >= len(data):
            return None
        length = data[i]
        i += 1
        if length == 0x81:
            if i >= len(data):
                return None
            length = data[i]
            i += 1
        elif length > 0x80:
            return None
        value = data[i : i + length]
        if len(value) != length:
            return None
        if tag == wanted:
            return value
        first = tag >> 8 if tag > 0xFF else tag
        if first & 0x20:
            found = find_tlv(value, wanted)
            if found is not None:
                return found
        i += length
    return None


class SsseKey(enum.Enum):
    """SSSE keys (SC spec 附录B) with the key id used in EXTERNAL AUTHENTICATE P2 / PSAM P2."""

    UKSSSE = 0x12  # update EF05/EF06/EF08
    RKSSSE = 0x0A  # read EF06 (3.0 cards) and EF07/EF08
    IRK = 0x08  # internal authentication (the card is genuine)
    PUK = 0x10  # PIN unblock / reload
    STKSSSE = 0x09  # SSSE maintenance: secure-messaging MAC and data encryption

    @property
    def key_id(self) -> int:
        return self.value
