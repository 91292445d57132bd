"""Helpers shared by the smart-card tests (card data, serials, photos)."""

from __future__ import annotations

import itertools
from datetime import date

from hardware.smartcard.crypto import Algorithm
from hardware.smartcard.layout import card_number_check_char
from kiosk.devices.smartcard import CardData

_serials = itertools.count(0x5A000001)


def next_serial() -> int:
    return next(_serials)


def sample_card_data(
    photo: bytes | None = None, name: str = "欧阳娜娜", number_body: str = "B7654321"
) -> CardData:
    return CardData(
        application_id="APP-TEST-1",
        card_number=number_body + card_number_check_char(number_body),
        ssn="11010519491231002X",
        name=name,
        sex="2",
        ethnicity_code="01",
        birth_date=date(1949, 12, 31),
        issue_date=date(2026, 11, 23),
        expiry_date=date(2036, 11, 23),
        photo_jpeg=photo,
    )


def sample_photo(size: int = 3000) -> bytes:
    body = bytes((i * 7 + 3) % 251 for i in range(size - 4))
    return b"\xff\xd8" + body + b"\xff\xd9"


ALGORITHMS = [Algorithm.TDES, Algorithm.SM4]
BACKENDS = ["psam", "hsm"]
