"""VIRTUAL social security card (模拟社保卡): a simulator of the chip, served to pcscd via vpcd.

Implements the SSSE application (SELECT by name, EF05/EF06 records by identifier, EF08 photo,
GET CHALLENGE, EXTERNAL/INTERNAL AUTHENTICATE, secure-messaging UPDATE RECORD, VERIFY,
CHANGE PIN 805E, PIN reload/unblock 8424) and a pre-personalized PBOC debit application
(read-only: tag 5A). Keys are the simulation root keys diversified for this card, so every MAC
and cryptogram is really checked. Faults come from :class:`FaultPlan`.
"""

from __future__ import annotations

import logging
import secrets
import threading
from dataclasses import dataclass
from datetime import date

from hardware.smartcard import crypto
from hardware.smartcard.crypto import Algorithm
from hardware.smartcard.layout import (
    DATA_ITEMS,
    IDENTIFICATION_CODE_MIDDLE,
    ITEMS_BY_TAG,
    PHOTO_SIZE,
    SSSE_NAME,
    UNIONPAY_DEBIT_AID,
    Encoding,
    an,
    bcd,
    bcd_date,
    card_number_check_char,
    luhn_complete,
    split_name,
    tlv,
)
from hardware.smartcard.virtual.faults import FaultPlan
from hardware.smartcard.virtual.rootkeys import SsseKey, simulation_root_key
from hardware.smartcard.virtual.vpcd import CardPulled

log = logging.getLogger(__name__)

SW_OK = b"\x90\x00"


def _sw(value: int) -> bytes:
    return value.to_bytes(2, "big")


def card_atr(serial: bytes, algorithm: Algorithm) -> bytes:
    """ATR 3B 6F 00 00 + 15 historical bytes; historical bytes 6–13 are the card serial."""
    if len(serial) != 8:
        raise ValueError("card serial must be 8 bytes")
    historical = b"SSC" + bytes((0x30, algorithm.algorithm_id)) + serial + b"\x90\x00"
    return bytes.fromhex("3B6F0000") + historical


@dataclass(frozen=True)
class PinState:
    digits: bytes
    tries_max: int
    tries_left: int


class VirtualSocialSecurityCard:
    """Simulated blank (or personalized) social security card; see the module docstring."""

    def __init__(
        self,
        *,
        serial: bytes,
        algorithm: Algorithm = Algorithm.SM4,
        city_code: str = "110100",
        pan: str | None = None,
        pin: str = "123456",
        pin_tries: int = 6,
        protected_ef06: bool | None = None,
    ) -> None:
        self.serial = bytes(serial)
        self.algorithm = algorithm
        self.city_code = city_code
        self.faults = FaultPlan()
        self._lock = threading.RLock()
        self._atr = card_atr(self.serial, algorithm)
        # 3.0 (SM4) cards protect EF06 with RKSSSE (SC spec §10.2); 2.0 3DES cards read it freely.
        self.protected_ef06 = (algorithm is Algorithm.SM4) if protected_ef06 is None else protected_ef06
        ident = (
            bcd(city_code, 3)
            + IDENTIFICATION_CODE_MIDDLE
            + self.serial[-4:]
            + secrets.token_bytes(2)
            + b"\xff\xff"
        )
        self.records: dict[int, bytes] = {}
        for item in DATA_ITEMS:
            filler = b"\xff" if item.encoding is Encoding.CN else b"\x00"
            self.records[item.tag] = filler * item.length
        self.records[0x01] = ident
        self.records[0x04] = bcd("9156000002" + city_code + city_code + "1", 12)
        self.photo = bytearray(PHOTO_SIZE)
        self.pin = PinState(pin.encode(), pin_tries, pin_tries)
        self.pan = pan or luhn_complete("621700" + str(int.from_bytes(self.serial, "big") % 10**12).zfill(12))
        self.keys = {
            key: crypto.diversify_levels(
                algorithm,
                simulation_root_key(algorithm, key),
                crypto.diversification_factors(city_code, self.serial),
            )
            for key in SsseKey
        }
        self.write_count = 0
        self._reset_session()

    # ----------------------------------------------------------------- simulator surface

    @property
    def atr(self) -> bytes:
        return self._atr

    @property
    def card_identification_code(self) -> str:
        return self.records[0x01].hex().upper()

    def fault_names(self) -> list[str]:
        return self.faults.fault_names()

    def inject(self, name: str, count: int | None = None, **params: object) -> None:
        self.faults.inject(name, count, **params)
        if name == "pin_tries_exhausted" and self.faults.take(name):
            with self._lock:
                self.pin = PinState(self.pin.digits, self.pin.tries_max, 0)

    def clear_faults(self) -> None:
        self.faults.clear_faults()

    def power(self, on: bool) -> None:
        with self._lock:
            self._reset_session()

    def personalize_directly(
        self,
        *,
        card_number: str,
        ssn: str,
        name: str,
        sex: str = "1",
        ethnicity: str = "01",
        birth_place: str = "",
        birth_date: date = date(1960, 5, 1),
        issue_date: date = date(2024, 1, 1),
        expiry_date: date = date(2034, 1, 1),
        spec_version: str = "3.00",
        photo: bytes = b"",
    ) -> None:
        """Writes the SSSE data straight into the chip (as the card bureau did) — for the
        already-personalized card; the kiosk's own personalization goes through APDUs."""
        first, rest = split_name(name)
        values = {
            0x02: b"3",
            0x03: spec_version.encode(),
            0x05: bcd_date(issue_date),
            0x06: bcd_date(expiry_date),
            0x07: card_number.encode(),
            0x08: ssn.encode(),
            0x09: first,
            0x4E: rest,
            0x0A: sex.encode(),
            0x0B: bcd(ethnicity, 1),
            0x0C: bcd(birth_place or ssn[:6], 3),
            0x0D: bcd_date(birth_date),
        }
        with self._lock:
            for tag, value in values.items():
                item = ITEMS_BY_TAG[tag]
                self.records[tag] = value if item.encoding is Encoding.CN else an(value, item.length)
            self.photo[: len(photo)] = photo

    # ----------------------------------------------------------------- APDU processing

    def _reset_session(self) -> None:
        self.app: str | None = None
        self.current_ef: int | None = None
        self.challenges: list[bytes] = []
        self.authenticated: set[SsseKey] = set()

    def process(self, apdu: bytes) -> bytes:
        if len(apdu) < 4:
            return _sw(0x6700)
        fault = self.faults.before(apdu)
        with self._lock:
            if fault and fault[0] == "wrong_sw":
                return _sw(int(fault[1].get("sw", 0x6581)))
            try:
                return self._dispatch(apdu, tearing=bool(fault and fault[0] == "tearing"))
            except CardPulled:
                raise
            except (IndexError, ValueError):
                return _sw(0x6700)

    def _dispatch(self, apdu: bytes, *, tearing: bool) -> bytes:
        cla, ins, p1, p2 = apdu[:4]
        body = apdu[4:]
        lc_data = body[1 : 1 + body[0]] if len(body) > 1 else b""
        le = None
        if len(body) == 1:
            le = body[0]
        elif len(body) > 1 and len(body) == 2 + body[0]:
            le = body[1 + body[0]]
        if ins == 0xA4:
            return self._select(p1, lc_data)
        if ins == 0x84:
            return self._get_challenge(le or 0)
        if self.app == "pboc":
            if ins == 0xB2:
                return self._pboc_read_record(p1, p2, le)
            return _sw(0x6982) if ins in (0xDC, 0xD6, 0xE2) else _sw(0x6D00)
        if self.app != "ssse":
            return _sw(0x6985)
        if ins == 0xB2:
            return self._read_record(p1, p2, le)
        if ins == 0xDC:
            return self._update_record(cla, apdu, p1, p2, lc_data, tearing)
        if ins == 0xB0:
            return self._read_binary(p1, p2, le)
        if ins == 0xD6:
            return self._update_binary(cla, p1, p2, lc_data, tearing)
        if ins == 0x82:
            return self._external_authenticate(p2, lc_data)
        if ins == 0x88:
            return self._internal_authenticate(lc_data)
        if ins == 0x20:
            return self._verify(lc_data)
        if ins == 0x5E and cla == 0x80:
            return self._change_pin(lc_data)
        if ins == 0x24 and cla == 0x84:
            return self._reload(apdu, p2, lc_data)
        return _sw(0x6D00)

    def _select(self, p1: int, name: bytes) -> bytes:
        if p1 == 0x04:
            self._reset_session()
            if name == SSSE_NAME:
                self.app = "ssse"
                issuer = bytes.fromhex("9F0C03") + bytes((0x86, 0x01, self.algorithm.algorithm_id))
                a5 = bytes.fromhex("88011E") + issuer
                return tlv(0x6F, tlv(0x84, SSSE_NAME) + tlv(0xA5, a5)) + SW_OK
            if name == UNIONPAY_DEBIT_AID:
                self.app = "pboc"
                a5 = tlv(0x50, b"UnionPay Debit") + bytes.fromhex("8701019F3803") + b"\x9f\x1a\x02"
                return tlv(0x6F, tlv(0x84, UNIONPAY_DEBIT_AID) + tlv(0xA5, a5)) + SW_OK
            return _sw(0x6A82)
        if p1 == 0x00 and name == b"\x3f\x00":
            self._reset_session()
            return SW_OK
        if p1 == 0x02 and self.app == "ssse" and len(name) == 2:
            fid = int.from_bytes(name, "big")
            if fid in (0xEF05, 0xEF06, 0xEF07, 0xEF08):
                self.current_ef = fid
                return SW_OK
        return _sw(0x6A82)

    def _get_challenge(self, le: int) -> bytes:
        if le not in (4, 8, 16):
            return _sw(0x6700)
        random = secrets.token_bytes(le)
        self.challenges = (self.challenges + [random])[-2:]
        return random + SW_OK

    def _ef_for(self, p2: int) -> int | None:
        sfi = p2 >> 3
        return self.current_ef if sfi == 0 else {5: 0xEF05, 6: 0xEF06, 8: 0xEF08}.get(sfi)

    def _read_record(self, p1: int, p2: int, le: int | None) -> bytes:
        ef = self._ef_for(p2)
        if ef not in (0xEF05, 0xEF06):
            return _sw(0x6986)
        if p2 & 0x07 != 0x00:
            return _sw(0x6A86)  # SSSE records are addressed by identifier (P2 mode 000)
        item = ITEMS_BY_TAG.get(p1)
        if item is None or item.ef != ef:
            return _sw(0x6A83)
        if ef == 0xEF06 and self.protected_ef06 and SsseKey.RKSSSE not in self.authenticated:
            return _sw(0x6982)
        record = tlv(p1, self.records[p1])
        if le != len(record):
            return _sw(0x6C00 | len(record))
        return record + SW_OK

    def _check_mac(self, message: bytes, mac: bytes) -> bool:
        if not self.challenges:
            return False
        challenge = self.challenges[-1]
        self.challenges = []
        session = crypto.session_key(self.algorithm, self.keys[SsseKey.STKSSSE], challenge)
        return secrets.compare_digest(crypto.mac(self.algorithm, session, message), mac)

    def _update_record(self, cla: int, apdu: bytes, p1: int, p2: int, data: bytes, tearing: bool) -> bytes:
        ef = self._ef_for(p2)
        if ef not in (0xEF05, 0xEF06):
            return _sw(0x6986)
        if SsseKey.UKSSSE not in self.authenticated:
            return _sw(0x6982)
        if cla != 0x04:
            return _sw(0x6987)  # EF05/EF06 writes need secure messaging
        if len(data) < 6 or not self._check_mac(apdu[:5] + data[:-4], data[-4:]):
            return _sw(0x6988)
        record = data[:-4]
        item = ITEMS_BY_TAG.get(p1)
        if item is None or item.ef != ef or item.tag in (0x01, 0x04):
            return _sw(0x6A83) if item is None or item.ef != ef else _sw(0x6985)
        if record[0] != p1 or record[1] != item.length or len(record) != 2 + item.length:
            return _sw(0x6700)
        value = record[2:]
        if tearing:
            half = len(value) // 2
            self.records[p1] = value[:half] + self.records[p1][half:]
            raise CardPulled()
        self.records[p1] = value
        self.write_count += 1
        return SW_OK

    def _read_binary(self, p1: int, p2: int, le: int | None) -> bytes:
        ef, offset = self._binary_target(p1, p2)
        if ef != 0xEF08:
            return _sw(0x6986)
        if SsseKey.RKSSSE not in self.authenticated:
            return _sw(0x6982)
        if offset >= PHOTO_SIZE:
            return _sw(0x6B00)
        want = 256 if not le else le
        return bytes(self.photo[offset : offset + want]) + SW_OK

    def _binary_target(self, p1: int, p2: int) -> tuple[int | None, int]:
        if p1 & 0x80:
            ef = {8: 0xEF08, 7: 0xEF07}.get(p1 & 0x1F)
            if ef is not None:
                self.current_ef = ef
            return ef, p2
        return self.current_ef, (p1 << 8) | p2

    def _update_binary(self, cla: int, p1: int, p2: int, data: bytes, tearing: bool) -> bytes:
        ef, offset = self._binary_target(p1, p2)
        if ef != 0xEF08:
            return _sw(0x6986)
        if SsseKey.UKSSSE not in self.authenticated:
            return _sw(0x6982)
        if cla != 0x00:
            return _sw(0x6E00)
        if offset + len(data) > PHOTO_SIZE:
            return _sw(0x6B00)
        if tearing:
            half = len(data) // 2
            self.photo[offset : offset + half] = data[:half]
            raise CardPulled()
        self.photo[offset : offset + len(data)] = data
        self.write_count += 1
        return SW_OK

    def _key_for(self, key_id: int) -> SsseKey | None:
        for key in SsseKey:
            if key.key_id == key_id:
                return key
        return None

    def _external_authenticate(self, p2: int, data: bytes) -> bytes:
        key = self._key_for(p2)
        if key is None:
            return _sw(0x6A88)
        if len(data) != 16:
            return _sw(0x6700)
        if len(self.challenges) < 2 or data[8:] != self.challenges[-1]:
            self.challenges = []
            return _sw(0x6984)
        r1, r2 = self.challenges
        self.challenges = []
        session = crypto.session_key(self.algorithm, self.keys[key], r1)
        if not secrets.compare_digest(crypto.auth_data(self.algorithm, session, r2), data[:8]):
            return _sw(0x6300)
        self.authenticated.add(key)
        return SW_OK

    def _internal_authenticate(self, data: bytes) -> bytes:
        if len(data) != 16:
            return _sw(0x6700)
        session = crypto.session_key(self.algorithm, self.keys[SsseKey.IRK], data[:8])
        return crypto.auth_data(self.algorithm, session, data[8:]) + SW_OK

    def _pin_digits(self, value: bytes) -> bytes | None:
        text = value.hex().upper().rstrip("F")
        return text.encode() if text.isdigit() and 4 <= len(text) <= 16 else None

    def _pin_tries_sw(self) -> bytes:
        return _sw(0x6983) if self.pin.tries_left == 0 else _sw(0x63C0 | self.pin.tries_left)

    def _check_pin(self, digits: bytes | None) -> bytes | None:
        """None when right; else the SW to answer (and the try counter is decremented)."""
        if self.pin.tries_left == 0:
            return _sw(0x6983)
        if digits is not None and secrets.compare_digest(digits, self.pin.digits):
            self.pin = PinState(self.pin.digits, self.pin.tries_max, self.pin.tries_max)
            return None
        self.pin = PinState(self.pin.digits, self.pin.tries_max, self.pin.tries_left - 1)
        return self._pin_tries_sw()

    def _verify(self, data: bytes) -> bytes:
        if not data:
            return self._pin_tries_sw()
        if not 2 <= len(data) <= 8:
            return _sw(0x6700)
        return self._check_pin(self._pin_digits(data)) or SW_OK

    def _change_pin(self, data: bytes) -> bytes:
        if b"\xff" not in data:
            return _sw(0x6A80)
        cut = data.index(b"\xff")
        old, new = data[:cut], self._pin_digits(data[cut + 1 :])
        if new is None:
            return _sw(0x6A80)
        failed = self._check_pin(self._pin_digits(old))
        if failed:
            return failed
        self.pin = PinState(new, self.pin.tries_max, self.pin.tries_max)
        return SW_OK

    def _reload(self, apdu: bytes, p2: int, data: bytes) -> bytes:
        if SsseKey.PUK not in self.authenticated:
            return _sw(0x6982)
        if p2 not in (0x00, 0x01) or len(data) < 4 + self.algorithm.block_size:
            return _sw(0x6A86) if p2 not in (0x00, 0x01) else _sw(0x6700)
        challenge = self.challenges[-1] if self.challenges else None
        if challenge is None or not self._check_mac(apdu[:5] + data[:-4], data[-4:]):
            return _sw(0x6988)
        session = crypto.session_key(self.algorithm, self.keys[SsseKey.STKSSSE], challenge)
        try:
            plain = crypto.decrypt_data(self.algorithm, session, data[:-4])
        except ValueError:
            return _sw(0x6A80)
        digits = self._pin_digits(bytes(plain))
        plain[:] = b"\x00" * len(plain)
        if digits is None:
            return _sw(0x6A80)
        if p2 == 0x01:  # reload: set a new PIN and reset the counter (重置密码)
            self.pin = PinState(digits, self.pin.tries_max, self.pin.tries_max)
            return SW_OK
        if not secrets.compare_digest(digits, self.pin.digits):  # unblock: the current PIN must match
            return _sw(0x63C0 | self.pin.tries_left)
        self.pin = PinState(self.pin.digits, self.pin.tries_max, self.pin.tries_max)
        return SW_OK

    # ----------------------------------------------------------------- PBOC (read-only)

    def _pboc_read_record(self, p1: int, p2: int, le: int | None) -> bytes:
        if p2 & 0x07 != 0x04:
            return _sw(0x6A86)
        sfi = p2 >> 3
        pan_bcd = bytes.fromhex(self.pan + ("F" if len(self.pan) % 2 else ""))
        track2_hex = self.pan + "D341222012345"
        track2 = bytes.fromhex(track2_hex + ("F" if len(track2_hex) % 2 else ""))
        records = {
            (1, 1): tlv(0x70, tlv(0x57, track2) + bytes.fromhex("5F2002") + b"  "),
            (1, 2): tlv(0x70, tlv(0x5A, pan_bcd) + bytes.fromhex("5F3401015F2403341231")),
        }
        record = records.get((sfi, p1))
        if record is None:
            return _sw(0x6A83)
        if le != len(record):
            return _sw(0x6C00 | len(record))
        return record + SW_OK


def blank_card(
    serial: bytes | str | int,
    *,
    algorithm: Algorithm = Algorithm.SM4,
    city_code: str = "110100",
    pin_tries: int = 6,
) -> VirtualSocialSecurityCard:
    """Factory: a blank virtual card (SIMULATOR) with the given card serial (8 bytes, hex text or
    an int) and a pre-personalized PBOC application with a Luhn-valid account number."""
    if isinstance(serial, int):
        serial = serial.to_bytes(8, "big")
    elif isinstance(serial, str):
        serial = bytes.fromhex(serial) if len(serial) == 16 else serial.encode().rjust(8, b"0")[-8:]
    return VirtualSocialSecurityCard(
        serial=serial, algorithm=algorithm, city_code=city_code, pin_tries=pin_tries
    )


def personalized_card(
    serial: bytes | str | int,
    *,
    algorithm: Algorithm = Algorithm.SM4,
    city_code: str = "110100",
    card_number: str | None = None,
    ssn: str = "110101196005010018",
    name: str = "张三",
    pin: str = "123456",
    pin_tries: int = 6,
    photo: bytes = b"",
) -> VirtualSocialSecurityCard:
    """Factory: a card already personalized and activated (SIMULATOR), for the PIN services."""
    card = blank_card(serial, algorithm=algorithm, city_code=city_code, pin_tries=pin_tries)
    if card_number is None:
        body = "A" + str(int.from_bytes(card.serial, "big") % 10**7).zfill(7)
        card_number = body + card_number_check_char(body)
    card.pin = PinState(pin.encode(), pin_tries, pin_tries)
    card.personalize_directly(card_number=card_number, ssn=ssn, name=name, photo=photo)
    return card
