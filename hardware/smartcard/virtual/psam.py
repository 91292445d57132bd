"""VIRTUAL social-security PSAM (模拟PSAM卡): a simulator of the terminal security module, served
to pcscd via vpcd in the second slot. Holds the simulation root keys (optionally already
diversified to level 1 or 2 for its region, as issued PSAMs often are).

Commands (规范第9部分): SELECT (MF name / ADF D15600000590), READ BINARY by SFI (0015 card info,
0016 terminal number), INITIALIZE ENVIRONMENT BFEC, DELIVERY SESSION KEY BFDE, CIPHER DATA 80FA
(P1 00 encrypt, 05 single-block MAC whose first block is the IV). Replies with data come as
61xx + GET RESPONSE, as T=0 PSAMs do. Key usage P1 = algorithm id (01 3DES, 03 SM4) — the
simulator's choice; the driver takes the usage codes as a parameter for real PSAMs.
"""

from __future__ import annotations

import secrets
import threading

from hardware.smartcard import crypto
from hardware.smartcard.crypto import Algorithm
from hardware.smartcard.layout import PSAM_ADF_AID, PSAM_DF_NAME, bcd, tlv
from hardware.smartcard.virtual.faults import FaultPlan
from hardware.smartcard.virtual.rootkeys import SsseKey, simulation_root_key
from hardware.smartcard.virtual.vpcd import CardPulled


def _sw(value: int) -> bytes:
    return value.to_bytes(2, "big")


class VirtualPsam:
    """Simulated PSAM; see the module docstring."""

    def __init__(
        self,
        *,
        terminal_number: str = "110100000001",
        psam_serial: bytes | None = None,
        key_level: int = 0,
        city_code: str = "110100",
        algorithms: tuple[Algorithm, ...] = (Algorithm.TDES, Algorithm.SM4),
    ) -> None:
        if not 0 <= key_level <= 2:
            raise ValueError("key_level must be 0, 1 or 2")
        self.terminal_number = terminal_number
        self.psam_serial = psam_serial or secrets.token_bytes(10)
        self.key_level = key_level
        self.faults = FaultPlan()
        self._lock = threading.Lock()
        self._atr = bytes.fromhex("3B6A0000") + b"SSPSAM" + self.psam_serial[-4:]
        # Level-1/2 PSAMs hold keys already diversified for their region (第9部分 §7.3).
        region_factors = crypto.diversification_factors(city_code, b"\x00" * 8)[:key_level]
        self.keys = {
            (alg.algorithm_id, key.key_id): crypto.diversify_levels(
                alg, simulation_root_key(alg, key), region_factors
            )
            for alg in algorithms
            for key in SsseKey
        }
        self._reset()

    @property
    def atr(self) -> bytes:
        return self._atr

    def fault_names(self) -> list[str]:
        return [n for n in self.faults.fault_names() if n != "pin_tries_exhausted"]

    def inject(self, name: str, count: int | None = None, **params: object) -> None:
        if name == "pin_tries_exhausted":
            raise ValueError("a PSAM has no citizen PIN")
        self.faults.inject(name, count, **params)

    def clear_faults(self) -> None:
        self.faults.clear_faults()

    def power(self, on: bool) -> None:
        with self._lock:
            self._reset()

    def _reset(self) -> None:
        self.selected = False
        self.environment: int | None = None
        self.session: tuple[Algorithm, bytes] | None = None
        self.pending = b""

    def process(self, apdu: bytes) -> bytes:
        if len(apdu) < 4:
            return _sw(0x6700)
        fault = self.faults.before(apdu)
        with self._lock:
            if fault and fault[0] == "wrong_sw":
                return _sw(int(fault[1].get("sw", 0x6581)))
            try:
                return self._dispatch(apdu)
            except CardPulled:
                raise
            except (IndexError, ValueError):
                return _sw(0x6700)

    def _reply(self, data: bytes) -> bytes:
        self.pending = data
        return _sw(0x6100 | len(data))

    def _dispatch(self, apdu: bytes) -> bytes:
        cla, ins, p1, p2 = apdu[:4]
        body = apdu[4:]
        data = body[1 : 1 + body[0]] if len(body) > 1 else b""
        if ins == 0xC0:
            out, self.pending = self.pending, b""
            return out + b"\x90\x00" if out else _sw(0x6985)
        self.pending = b""
        if ins == 0xA4:
            if (p1 == 0x04 and data in (PSAM_DF_NAME, PSAM_ADF_AID)) or (p1 == 0x00 and data == b"\x3f\x00"):
                self.selected = True
                return self._reply(tlv(0x6F, tlv(0x84, data)))
            return _sw(0x6A82)
        if ins == 0xB0 and p1 & 0x80:
            sfi = p1 & 0x1F
            files = {0x15: self.psam_serial, 0x16: bcd(self.terminal_number, 6)}
            if sfi not in files:
                return _sw(0x6A82)
            return files[sfi][p2:] + b"\x90\x00"
        if not self.selected:
            return _sw(0x6985)
        if cla == 0xBF and ins == 0xEC:
            if len(data) != 1:
                return _sw(0x6700)
            self.environment = data[0]
            return b"\x90\x00"
        if cla == 0xBF and ins == 0xDE:
            return self._delivery_session_key(p1, p2, data)
        if cla == 0x80 and ins == 0xFA:
            return self._cipher_data(p1, data)
        return _sw(0x6D00)

    def _delivery_session_key(self, usage: int, key_id: int, data: bytes) -> bytes:
        if self.environment is None:
            return _sw(0x6985)
        try:
            algorithm = Algorithm.from_id(usage)
        except ValueError:
            return _sw(0x6A86)
        key = self.keys.get((usage, key_id))
        if key is None:
            return _sw(0x6A88)
        factor_len = algorithm.block_size
        n_factors, rest = divmod(len(data) - factor_len, 8)
        if rest or n_factors < 0 or n_factors + self.key_level > 3:
            return _sw(0x6700)
        factors = [data[i * 8 : i * 8 + 8] for i in range(n_factors)]
        card_key = crypto.diversify_levels(algorithm, key, factors)
        self.session = (algorithm, crypto.session_key(algorithm, card_key, data[-factor_len:]))
        return b"\x90\x00"

    def _cipher_data(self, p1: int, data: bytes) -> bytes:
        if self.session is None:
            return _sw(0x6985)
        algorithm, key = self.session
        size = algorithm.block_size
        if p1 == 0x00:
            if not data or len(data) % size:
                return _sw(0x6700)
            return self._reply(crypto.ecb_encrypt(algorithm, key, data))
        if p1 == 0x05:
            if len(data) < size:
                return _sw(0x6700)
            return self._reply(crypto.mac(algorithm, key, data[size:], iv=data[:size]))
        return _sw(0x6A86)
