"""Social security application (SSSE, 社会保障应用) and the chip-station driver.

Services are named as the terminal-interface standard LD/T 6001.5 names them:
``read_card_basic`` (iReadCardBas), ``verify_pin`` (iVerifyPIN), ``change_pin`` (iChangePIN),
``reload_pin`` (iReloadPIN, 重置), ``unblock_pin`` (iUnblockPIN, 解锁); ``personalize`` runs the
personalization script (:mod:`hardware.smartcard.personalize`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from hardware.smartcard import crypto
from hardware.smartcard.apdu import CardChannel, CommandApdu, ResponseApdu, list_readers, wait_for_card
from hardware.smartcard.crypto import Algorithm
from hardware.smartcard.keys import CardKeyContext, KeyBackend
from hardware.smartcard.layout import (
    DATA_ITEMS,
    ITEMS_BY_TAG,
    SSSE_NAME,
    DataItem,
    SsseKey,
    find_tlv,
    join_name,
    unan,
    unbcd,
    unbcd_date,
)
from hardware.smartcard.pboc import read_bank_account
from kiosk.devices import DeviceState, DeviceStatus
from kiosk.devices.smartcard import (
    CardAuthenticationError,
    CardBasicInfo,
    CardData,
    CardNotSupportedError,
    CardStatusError,
    ChipAlgorithm,
    NoCardError,
    PersonalizationResult,
    PinBlockedError,
    PinFormatError,
    PinWrongError,
    ReaderUnavailableError,
    SmartCardError,
)

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- application layer


def card_serial(atr: bytes) -> bytes:
    """Card serial: ATR historical bytes 6–13 (第10部分 §5.1.2)."""
    if len(atr) < 2:
        raise CardNotSupportedError("ATR too short", code="smartcard.bad_atr")
    t0 = atr[1]
    count = t0 & 0x0F
    i, y = 2, t0 >> 4
    while True:
        i += (y & 0x0F).bit_count()
        if not y & 0x8:
            break
        if i - 1 >= len(atr):
            raise CardNotSupportedError("ATR malformed", code="smartcard.bad_atr")
        y = atr[i - 1] >> 4
    historical = atr[i : i + count]
    if len(historical) < 13:
        raise CardNotSupportedError("ATR has no card serial", code="smartcard.bad_atr", reject_card=True)
    return bytes(historical[5:13])


def algorithm_from_fci(fci: bytes, city_code: str | None = None) -> Algorithm:
    """Chip algorithm from the SSSE FCI (9F0C containing tag 86); without it, the region code
    decides (SC spec §10.1: "11…" means SSF33, which we cannot use; else DES)."""
    issuer = find_tlv(fci, 0x9F0C)
    if issuer is not None:
        alg = find_tlv(issuer, 0x86)
        if alg:
            if alg[0] == 0x02:
                raise CardNotSupportedError(
                    "SSF33 card", code="smartcard.ssf33_unsupported", reject_card=True
                )
            try:
                return Algorithm.from_id(alg[0])
            except ValueError as exc:
                raise CardNotSupportedError(
                    str(exc), code="smartcard.algorithm_unknown", reject_card=True
                ) from exc
    if city_code is not None and city_code.startswith("11"):
        raise CardNotSupportedError(
            "SSF33 card (region 11, no algorithm id)", code="smartcard.ssf33_unsupported", reject_card=True
        )
    return Algorithm.TDES


def select_ssse(channel: CardChannel) -> bytes:
    """SELECT the SSSE by its DF name; returns the FCI. A card without it is not a 社保卡."""
    response = channel.transmit(CommandApdu(0x00, 0xA4, 0x04, 0x00, SSSE_NAME, le=0x00))
    if response.sw == 0x6A82:
        raise CardNotSupportedError(
            "no social security application",
            code="smartcard.not_social_security_card",
            reject_card=True,
            sw=response.sw,
            step="ssse.select",
        )
    return response.expect(step="ssse.select").data


def select_ef(channel: CardChannel, fid: int) -> None:
    channel.transmit(CommandApdu(0x00, 0xA4, 0x02, 0x00, fid.to_bytes(2, "big"))).expect(
        step=f"select.{fid:04X}"
    )


def read_item(channel: CardChannel, item: DataItem) -> ResponseApdu:
    """READ RECORD by record identifier in the current EF (P2 = 00), exact Le."""
    return channel.transmit(CommandApdu(0x00, 0xB2, item.tag, 0x00, le=2 + item.length))


def record_value(item: DataItem, response: ResponseApdu, step: str) -> bytes:
    response.expect(step=step)
    data = response.data
    if len(data) < 2 or data[0] != item.tag or data[1] != len(data) - 2:
        raise CardStatusError(
            f"record {item.tag:02X} malformed", code="smartcard.record_malformed", step=step
        )
    return data[2:]


@dataclass(frozen=True)
class SsseSession:
    """What a session learned about the card: ATR, algorithm, 卡识别码, serial."""

    atr: bytes
    algorithm: Algorithm
    card_identification_code: bytes

    def key_context(self, application_id: str = "") -> CardKeyContext:
        return CardKeyContext(
            self.algorithm, self.card_identification_code, card_serial(self.atr), application_id
        )


def open_ssse(channel: CardChannel) -> SsseSession:
    fci = select_ssse(channel)
    select_ef(channel, 0xEF05)
    ident = record_value(ITEMS_BY_TAG[0x01], read_item(channel, ITEMS_BY_TAG[0x01]), "ef05.read_01")
    algorithm = algorithm_from_fci(fci, ident[:3].hex())
    return SsseSession(channel.atr, algorithm, ident)


def external_authenticate(
    channel: CardChannel, backend: KeyBackend, ctx: CardKeyContext, key: SsseKey
) -> None:
    """GET CHALLENGE ×2 (session factor R1, original R2) → key back end → EXTERNAL AUTHENTICATE."""
    r1 = channel.transmit(CommandApdu(0x00, 0x84, 0x00, 0x00, le=8)).expect(step="get_challenge").data
    r2 = channel.transmit(CommandApdu(0x00, 0x84, 0x00, 0x00, le=8)).expect(step="get_challenge").data
    auth = backend.auth_data(ctx, key, r1, r2)
    response = channel.transmit(CommandApdu(0x00, 0x82, 0x00, key.key_id, auth + r2, sensitive=True))
    if response.sw != 0x9000:
        raise CardAuthenticationError(
            f"external authentication with {key.name} refused ({response.sw:04X})",
            code="smartcard.external_auth_refused",
            sw=response.sw,
            step=f"external_auth.{key.name}",
            reject_card=True,
        )


def internal_authenticate(channel: CardChannel, backend: KeyBackend, ctx: CardKeyContext) -> None:
    """Proves the card genuine (IRK): the card's answer must equal the back end's."""
    r1, r2 = crypto_random(8), crypto_random(8)
    answer = channel.transmit(CommandApdu(0x00, 0x88, 0x00, 0x00, r1 + r2, le=8)).expect(step="internal_auth")
    expected = backend.auth_data(ctx, SsseKey.IRK, r1, r2)
    if answer.data[:8] != expected:
        raise CardAuthenticationError(
            "card failed internal authentication",
            code="smartcard.card_not_genuine",
            step="internal_auth",
            reject_card=True,
        )


def crypto_random(n: int) -> bytes:
    import secrets

    return secrets.token_bytes(n)


def read_ssse_records(channel: CardChannel, on_protected: Callable[[], None]) -> dict[int, bytes]:
    """Reads every EF05/EF06 item; calls ``on_protected`` once (RKSSSE auth) if EF06 answers 6982."""
    values: dict[int, bytes] = {}
    authenticated = False
    for ef in (0xEF05, 0xEF06):
        select_ef(channel, ef)
        for item in (i for i in DATA_ITEMS if i.ef == ef):
            response = read_item(channel, item)
            if response.sw == 0x6982 and not authenticated:
                on_protected()
                authenticated = True
                select_ef(channel, ef)
                response = read_item(channel, item)
            values[item.tag] = record_value(item, response, f"{ef:04X}.read_{item.tag:02X}")
    return values


def card_basic_from_records(
    atr: bytes, algorithm: Algorithm, values: dict[int, bytes], pan: str, tries: int | None
) -> CardBasicInfo:
    def text(tag: int) -> str:
        return unan(values[tag]).decode("ascii", errors="replace")

    return CardBasicInfo(
        atr=atr.hex().upper(),
        algorithm=ChipAlgorithm(algorithm.value),
        card_identification_code=values[0x01].hex().upper(),
        card_category=text(0x02),
        spec_version=text(0x03),
        initialization_org=unbcd(values[0x04]),
        issue_date=unbcd_date(values[0x05]),
        expiry_date=unbcd_date(values[0x06]),
        card_number=text(0x07)[:9],
        ssn=text(0x08),
        name=join_name(values[0x09], values[0x4E]),
        sex=text(0x0A),
        ethnicity_code=unbcd(values[0x0B]),
        birth_place=unbcd(values[0x0C]),
        birth_date=unbcd_date(values[0x0D]),
        pan=pan,
        pin_tries_left=tries,
    )


def pin_tries(channel: CardChannel) -> int:
    """VERIFY without data: 63Cx gives the tries left, 6983 means locked, 9000 already verified."""
    response = channel.transmit(CommandApdu(0x00, 0x20, 0x00, 0x00))
    if response.sw & 0xFFF0 == 0x63C0:
        return response.sw & 0x0F
    if response.sw == 0x6983:
        return 0
    response.expect(step="pin_tries")
    return -1


def _raise_for_pin(response: ResponseApdu, step: str) -> None:
    if response.sw == 0x9000:
        return
    if response.sw & 0xFFF0 == 0x63C0:
        left = response.sw & 0x0F
        if left == 0:
            raise PinBlockedError("PIN now blocked", sw=response.sw, step=step)
        raise PinWrongError(f"wrong PIN, {left} tries left", tries_left=left, sw=response.sw, step=step)
    if response.sw == 0x6983:
        raise PinBlockedError("PIN blocked", sw=response.sw, step=step)
    response.expect(step=step)


def _wipe(*buffers: bytearray) -> None:
    for buffer in buffers:
        buffer[:] = b"\x00" * len(buffer)


def _check_pin_digits(*pins: bytearray) -> None:
    for pin in pins:
        if not 4 <= len(pin) <= 16 or any(not 0x30 <= c <= 0x39 for c in pin):
            raise PinFormatError("PIN must be 4 to 16 digits")


# --------------------------------------------------------------------------- the driver


class ChipStation:
    """Chip station driver (芯片读写): the card in ``reader`` with key work by ``key_backend``.

    Implements :class:`kiosk.devices.smartcard.SocialSecurityCardStation`. Every call opens one
    card session; ``personalize`` holds the card exclusively for the whole script.
    """

    def __init__(
        self,
        reader: str,
        key_backend: KeyBackend,
        *,
        photo_chunk: int = 0xF0,
        card_wait_s: float = 2.0,
        script_deadline_s: float = 20.0,
    ) -> None:
        self.reader = reader
        self.key_backend = key_backend
        self.photo_chunk = photo_chunk
        # pcscd notices a card up to one presence poll (0.4 s) after it arrives: wait for it.
        self.card_wait_s = card_wait_s
        # A card slower than this is rejected rather than holding the printer (checked between steps).
        self.script_deadline_s = script_deadline_s
        self._lock = threading.Lock()

    def _await_card(self) -> None:
        if self.card_wait_s > 0 and not wait_for_card(self.reader, self.card_wait_s):
            raise NoCardError(f"no card in {self.reader!r} after {self.card_wait_s} s", retryable=True)

    def _channel(self, exclusive: bool = False) -> CardChannel:
        self._await_card()
        return CardChannel(self.reader, exclusive=exclusive)

    def status(self) -> DeviceStatus:
        if self.reader not in list_readers():
            return DeviceStatus(
                "smartcard",
                DeviceState.OFFLINE,
                "smartcard.reader_unavailable",
                "smartcard.reader_unavailable",
                detail=f"reader {self.reader!r} not found",
            )
        backend = self.key_backend.status()
        if backend.state is not DeviceState.READY:
            return DeviceStatus(
                "smartcard", backend.state, backend.code, backend.message_key, detail=backend.detail
            )
        return DeviceStatus.ready("smartcard")

    def read_card_basic(self) -> CardBasicInfo:
        """iReadCardBas: EF05, EF06 (RKSSSE external auth where the card protects it), the PAN and
        the PIN try counter."""
        with self._lock, self._channel() as channel:
            pan = read_bank_account(channel)
            session = open_ssse(channel)
            ctx = session.key_context()
            values = read_ssse_records(
                channel, lambda: external_authenticate(channel, self.key_backend, ctx, SsseKey.RKSSSE)
            )
            tries = pin_tries(channel)
            return card_basic_from_records(channel.atr, session.algorithm, values, pan, tries)

    def personalize(self, card: CardData) -> PersonalizationResult:
        from hardware.smartcard.personalize import personalize_card

        with self._lock:
            self._await_card()
            return personalize_card(
                self.reader,
                card,
                self.key_backend,
                photo_chunk=self.photo_chunk,
                deadline_s=self.script_deadline_s,
            )

    def pin_tries_left(self) -> int:
        with self._lock, self._channel() as channel:
            select_ssse(channel)
            return pin_tries(channel)

    def verify_pin(self, pin: bytearray) -> None:
        """iVerifyPIN (校验密码). Raises PinWrongError(tries_left) / PinBlockedError. Wipes ``pin``."""
        try:
            _check_pin_digits(pin)
            block = crypto.pin_block(pin)
            with self._lock, self._channel() as channel:
                select_ssse(channel)
                try:
                    response = channel.transmit_secret(bytes.fromhex("00200000"), block)
                finally:
                    _wipe(block)
                _raise_for_pin(response, "verify_pin")
        finally:
            _wipe(pin)

    def change_pin(self, old_pin: bytearray, new_pin: bytearray) -> None:
        """iChangePIN (修改密码): 805E0100 old ‖ FF ‖ new. Wipes both buffers."""
        try:
            _check_pin_digits(old_pin, new_pin)
            old, new = crypto.pin_block(old_pin), crypto.pin_block(new_pin)
            data = old + b"\xff" + new
            _wipe(old, new)
            with self._lock, self._channel() as channel:
                select_ssse(channel)
                try:
                    response = channel.transmit_secret(bytes.fromhex("805E0100"), data)
                finally:
                    _wipe(data)
                _raise_for_pin(response, "change_pin")
        finally:
            _wipe(old_pin, new_pin)

    def reload_pin(self, new_pin: bytearray) -> None:
        """iReloadPIN (重置密码): PUK external auth, then 8424 0001 with the new PIN encrypted and
        MACed under STKSSSE session keys from the key back end. Wipes ``new_pin``."""
        self._pin_with_puk(new_pin, p2=0x01, step="reload_pin")

    def unblock_pin(self, pin: bytearray) -> None:
        """iUnblockPIN (解锁密码): 8424 0000 with the current PIN; resets the try counter."""
        self._pin_with_puk(pin, p2=0x00, step="unblock_pin")

    def _pin_with_puk(self, pin: bytearray, *, p2: int, step: str) -> None:
        try:
            _check_pin_digits(pin)
            with self._lock, self._channel() as channel:
                session = open_ssse(channel)
                ctx = session.key_context()
                external_authenticate(channel, self.key_backend, ctx, SsseKey.PUK)
                r3 = (
                    channel.transmit(CommandApdu(0x00, 0x84, 0x00, 0x00, le=8))
                    .expect(step="get_challenge")
                    .data
                )
                block = crypto.pin_block(pin)
                try:
                    cryptogram = self.key_backend.encrypt(ctx, SsseKey.STKSSSE, r3, block)
                finally:
                    _wipe(block)
                header = bytes((0x84, 0x24, 0x00, p2, len(cryptogram) + 4))
                mac = self.key_backend.mac(ctx, SsseKey.STKSSSE, r3, header + cryptogram)
                response = channel.transmit(
                    CommandApdu(0x84, 0x24, 0x00, p2, cryptogram + mac, sensitive=True)
                )
                _raise_for_pin(response, step)
        finally:
            _wipe(pin)


def find_card_reader(preferred: str = "") -> str:
    """``preferred`` if pcscd knows it, else the first reader (used by the CLI)."""
    readers = list_readers()
    if preferred:
        if preferred not in readers:
            raise ReaderUnavailableError(f"reader {preferred!r} not found (known: {readers})")
        return preferred
    if not readers:
        raise ReaderUnavailableError("no PC/SC reader (is pcscd running?)")
    return readers[0]


__all__ = [
    "ChipStation",
    "NoCardError",
    "SmartCardError",
    "SsseSession",
    "algorithm_from_fci",
    "card_serial",
    "external_authenticate",
    "find_card_reader",
    "open_ssse",
    "read_ssse_records",
    "select_ssse",
]
