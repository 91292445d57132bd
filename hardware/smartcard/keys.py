"""Key work (密钥运算) behind one interface, two back ends (LD/T 6001.5):

* :class:`PsamKeyBackend` — the social-security PSAM in a second reader slot
  (INITIALIZE ENVIRONMENT, DELIVERY SESSION KEY, CIPHER DATA; three-level diversification);
* :class:`HsmKeyBackend` — the card-management system's HSM (加密机) through an injected
  :class:`kiosk.devices.smartcard.HsmTransport` (the back-end client supplies it).

Neither root keys, card keys nor session keys ever leave the PSAM/HSM: the kiosk only sends
randoms, diversification factors and messages, and gets back auth data, MACs and cryptograms.
:class:`SimulatedHsm` (a SIMULATOR) implements the HSM side in-process with the simulation root
keys so that tests — and later the back-end simulator — can host it.

HSM operations (``KeyWorkRequest``): ``diversifier`` = algorithm id ‖ L1 ‖ L2 ‖ L3 (25 bytes);
``data`` = session factor (8 bytes) ‖ input; the HSM derives card key = three-level
diversification of the root key, session key = E_card(session factor padded to one block), then
* ``external_authenticate``: input = original random (8) → auth data (8);
* ``mac``: input = message (header ‖ data) → 4-byte MAC, IV zero;
* ``encrypt``: input = plain data (e.g. a BCD PIN) → E_session(LD ‖ data ‖ 80-padding).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Protocol

from hardware.smartcard import crypto
from hardware.smartcard.apdu import CardChannel, CommandApdu
from hardware.smartcard.crypto import Algorithm
from hardware.smartcard.layout import PSAM_DF_NAME, SsseKey, unbcd
from hardware.smartcard.virtual.rootkeys import simulation_root_key
from kiosk.devices import DeviceError, DeviceState, DeviceStatus
from kiosk.devices.smartcard import (
    ChipAlgorithm,
    HsmTransport,
    KeyBackendError,
    KeyBackendKind,
    KeyWorkRequest,
    PsamIdentity,
    SmartCardError,
)

log = logging.getLogger(__name__)

__all__ = [
    "CardKeyContext",
    "HsmKeyBackend",
    "KeyBackend",
    "PsamKeyBackend",
    "SimulatedHsm",
    "SsseKey",
]


@dataclass(frozen=True)
class CardKeyContext:
    """What the key work needs to know about the card: algorithm, 卡识别码 (city code) and the
    card serial (ATR historical bytes 6–13), plus the application id for the HSM's audit."""

    algorithm: Algorithm
    card_identification_code: bytes
    card_serial: bytes
    application_id: str = ""

    @property
    def city_code(self) -> str:
        return self.card_identification_code[:3].hex().upper()

    @property
    def factors(self) -> tuple[bytes, bytes, bytes]:
        return crypto.diversification_factors(self.city_code, self.card_serial)


class KeyBackend(Protocol):
    """One interface for the PSAM and the HSM. ``session_random`` is the card challenge that makes
    the session key (8 bytes); every method returns only derived values."""

    kind: KeyBackendKind

    def auth_data(
        self, ctx: CardKeyContext, key: SsseKey, session_random: bytes, original_random: bytes
    ) -> bytes:
        """8-byte authentication data (EXTERNAL AUTHENTICATE, or the expected INTERNAL AUTHENTICATE reply)."""
        ...

    def mac(self, ctx: CardKeyContext, key: SsseKey, session_random: bytes, message: bytes) -> bytes:
        """4-byte secure-messaging MAC over ``message`` (CLA INS P1 P2 Lc ‖ data)."""
        ...

    def encrypt(self, ctx: CardKeyContext, key: SsseKey, session_random: bytes, plain: bytearray) -> bytes:
        """E_session(LD ‖ plain ‖ 80-padding). ``plain`` may be a PIN: the caller wipes it."""
        ...

    def status(self) -> DeviceStatus: ...


# --------------------------------------------------------------------------- PSAM


class PsamKeyBackend:
    """Key work in the PSAM (PSAM卡) in reader ``reader``.

    ``key_level`` is the diversification level of the keys the PSAM holds (0 root, 1 or 2
    region-diversified); the PSAM is sent the remaining 3 − level factors, and with ``auto_level``
    a PSAM that refuses the factor count (6700) is tried at the other levels. ``usage_codes`` maps
    the algorithm to DELIVERY SESSION KEY P1 (the virtual PSAM uses the algorithm id). The
    channel is opened lazily and kept; a PSAM that disappears is reopened once.
    """

    kind = KeyBackendKind.PSAM

    def __init__(
        self,
        reader: str,
        *,
        key_level: int = 0,
        auto_level: bool = True,
        usage_codes: dict[Algorithm, int] | None = None,
    ) -> None:
        self.reader = reader
        self.key_level = key_level
        self.auto_level = auto_level
        self.usage_codes = usage_codes or {alg: alg.algorithm_id for alg in Algorithm}
        self._channel: CardChannel | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            if self._channel is not None:
                self._channel.close()
                self._channel = None

    def _open(self) -> CardChannel:
        if self._channel is None:
            channel = CardChannel(self.reader)
            channel.open()
            try:
                channel.transmit(CommandApdu(0x00, 0xA4, 0x04, 0x00, PSAM_DF_NAME)).expect(step="psam.select")
            except SmartCardError:
                channel.close()
                raise
            self._channel = channel
        return self._channel

    def _run(self, action, step: str):  # type: ignore[no-untyped-def]
        with self._lock:
            for attempt in (1, 2):
                try:
                    return action(self._open())
                except SmartCardError as exc:
                    if self._channel is not None:
                        self._channel.close()
                        self._channel = None
                    if attempt == 2 or exc.sw is not None:
                        raise KeyBackendError(
                            f"PSAM {step} failed: {exc}", code="smartcard.psam_failed", sw=exc.sw, step=step
                        ) from exc
                    log.info("smartcard.psam_reopen step=%s", step)
        raise AssertionError("unreachable")

    def _deliver(
        self, channel: CardChannel, ctx: CardKeyContext, key: SsseKey, session_random: bytes
    ) -> None:
        channel.transmit(CommandApdu(0xBF, 0xEC, 0x00, 0x00, ctx.card_identification_code[:1])).expect(
            step="psam.initialize_environment"
        )
        factor = session_random.ljust(ctx.algorithm.block_size, b"\x00")
        usage = self.usage_codes[ctx.algorithm]
        levels = [self.key_level] + [lvl for lvl in (0, 1, 2) if lvl != self.key_level]
        for level in levels if self.auto_level else levels[:1]:
            factors = b"".join(ctx.factors[level:])
            response = channel.transmit(
                CommandApdu(0xBF, 0xDE, usage, key.key_id, factors + factor, sensitive=True)
            )
            if response.sw == 0x6700 and self.auto_level:
                continue  # the PSAM holds keys of another diversification level (第9部分 §8): try the next
            response.expect(step="psam.delivery_session_key")
            if level != self.key_level:
                log.info("smartcard.psam_key_level level=%d", level)
                self.key_level = level
            return
        raise KeyBackendError(
            "PSAM refused every diversification level",
            code="smartcard.psam_key_level",
            step="psam.delivery_session_key",
            sw=0x6700,
        )

    def auth_data(
        self, ctx: CardKeyContext, key: SsseKey, session_random: bytes, original_random: bytes
    ) -> bytes:
        def action(channel: CardChannel) -> bytes:
            self._deliver(channel, ctx, key, session_random)
            block = original_random.ljust(ctx.algorithm.block_size, b"\x00")
            out = (
                channel.transmit(CommandApdu(0x80, 0xFA, 0x00, 0x00, block))
                .expect(step="psam.cipher_data")
                .data
            )
            if ctx.algorithm is Algorithm.SM4:
                out = bytes(a ^ b for a, b in zip(out[:8], out[8:16]))
            return out[:8]

        return self._run(action, "auth_data")

    def mac(self, ctx: CardKeyContext, key: SsseKey, session_random: bytes, message: bytes) -> bytes:
        def action(channel: CardChannel) -> bytes:
            self._deliver(channel, ctx, key, session_random)
            iv = b"\x00" * ctx.algorithm.block_size
            return (
                channel.transmit(CommandApdu(0x80, 0xFA, 0x05, 0x00, iv + message))
                .expect(step="psam.mac")
                .data[:4]
            )

        return self._run(action, "mac")

    def encrypt(self, ctx: CardKeyContext, key: SsseKey, session_random: bytes, plain: bytearray) -> bytes:
        def action(channel: CardChannel) -> bytes:
            self._deliver(channel, ctx, key, session_random)
            block = bytearray((len(plain),)) + plain + b"\x80"
            block += b"\x00" * (-len(block) % ctx.algorithm.block_size)
            try:
                return (
                    channel.transmit_secret(bytes.fromhex("80FA0000"), block).expect(step="psam.encrypt").data
                )
            finally:
                block[:] = b"\x00" * len(block)

        return self._run(action, "encrypt")

    def identity(self) -> PsamIdentity:
        """Terminal number (EF 0016) and PSAM serial (EF 0015) for the PSAM registry."""

        def action(channel: CardChannel) -> PsamIdentity:
            serial = (
                channel.transmit(CommandApdu(0x00, 0xB0, 0x95, 0x00, le=0)).expect(step="psam.read_0015").data
            )
            terminal = (
                channel.transmit(CommandApdu(0x00, 0xB0, 0x96, 0x00, le=6)).expect(step="psam.read_0016").data
            )
            return PsamIdentity(
                unbcd(terminal),
                serial.hex().upper(),
                channel.atr.hex().upper(),
                tuple(ChipAlgorithm(a.value) for a in self.usage_codes),
            )

        return self._run(action, "identity")

    def status(self) -> DeviceStatus:
        try:
            self.identity()
        except SmartCardError as exc:
            state = DeviceState.OFFLINE if exc.sw is None else DeviceState.FAULT
            return DeviceStatus("psam", state, exc.code, exc.message_key, detail=str(exc))
        return DeviceStatus.ready("psam")


# --------------------------------------------------------------------------- HSM


class HsmKeyBackend:
    """Key work in the card-management HSM through ``transport`` (the back-end client)."""

    kind = KeyBackendKind.HSM

    def __init__(self, transport: HsmTransport) -> None:
        self.transport = transport

    def _call(
        self,
        ctx: CardKeyContext,
        operation: str,
        key: SsseKey,
        session_random: bytes,
        payload: bytes | bytearray,
    ) -> bytes:
        diversifier = bytes((ctx.algorithm.algorithm_id,)) + b"".join(ctx.factors)
        data = bytearray(session_random.ljust(8, b"\x00")[:8]) + bytearray(payload)
        request = KeyWorkRequest(ctx.application_id, operation, key.name, diversifier, data)
        try:
            return bytes(self.transport.key_work(request))
        except SmartCardError:
            raise
        except DeviceError as exc:
            raise KeyBackendError(
                f"HSM {operation} failed: {exc}", code="smartcard.hsm_failed", retryable=exc.retryable
            ) from exc
        except Exception as exc:  # the transport is another package's code: wrap whatever it raises
            raise KeyBackendError(
                f"HSM {operation} failed: {type(exc).__name__}", code="smartcard.hsm_failed", retryable=True
            ) from exc
        finally:
            data[:] = b"\x00" * len(data)

    def auth_data(
        self, ctx: CardKeyContext, key: SsseKey, session_random: bytes, original_random: bytes
    ) -> bytes:
        return self._call(ctx, "external_authenticate", key, session_random, original_random)[:8]

    def mac(self, ctx: CardKeyContext, key: SsseKey, session_random: bytes, message: bytes) -> bytes:
        return self._call(ctx, "mac", key, session_random, message)[:4]

    def encrypt(self, ctx: CardKeyContext, key: SsseKey, session_random: bytes, plain: bytearray) -> bytes:
        return self._call(ctx, "encrypt", key, session_random, plain)

    def status(self) -> DeviceStatus:
        return DeviceStatus.ready("hsm")


class SimulatedHsm:
    """SIMULATED card-management HSM (模拟加密机) holding the simulation root keys.

    ``compute`` matches the back-end simulator's ``BackendHsm`` protocol; ``key_work`` makes it
    an :class:`HsmTransport` for in-process tests. Answers ValueError on bad input, as an HSM
    answers an error code.
    """

    def __init__(self) -> None:
        self.calls = 0

    def key_work(self, request: KeyWorkRequest) -> bytes:
        return self.compute(request.operation, request.key_name, request.diversifier, request.data)

    def compute(self, operation: str, key_name: str, diversifier: bytes, data: bytes | bytearray) -> bytes:
        self.calls += 1
        if len(diversifier) != 25:
            raise ValueError("diversifier must be algorithm id + three 8-byte factors")
        algorithm = Algorithm.from_id(diversifier[0])
        key = SsseKey[key_name]
        factors = [bytes(diversifier[i : i + 8]) for i in (1, 9, 17)]
        card_key = crypto.diversify_levels(algorithm, simulation_root_key(algorithm, key), factors)
        if len(data) < 8:
            raise ValueError("data must start with the 8-byte session factor")
        session = crypto.session_key(algorithm, card_key, bytes(data[:8]))
        payload = data[8:]
        if operation == "external_authenticate":
            return crypto.auth_data(algorithm, session, bytes(payload))
        if operation == "mac":
            return crypto.mac(algorithm, session, payload)
        if operation == "encrypt":
            return crypto.encrypt_data(algorithm, session, payload)
        raise ValueError(f"unknown operation {operation!r}")
