"""Chip cryptography for the social security card (社保卡安全机制, 规范第4部分).

Pure functions over bytes: block ciphers (3DES, SM4), ISO padding, MAC, session keys, external
authentication data, encrypted data blocks (PIN reload) and three-level key diversification.
The same functions serve the simulated PSAM, the simulated HSM and the virtual card, so the
known-answer tests in ``tests/smartcard/test_crypto.py`` pin them against vectors computed
another way (gmssl, OpenSSL command line).

Where 第4部分 is explicit (padding, MAC truncation, session key from the random, auth data of
16-byte ciphers) we follow it; where the research note shows no rule (the diversification
function itself) we use the usual PBOC rule, ``K' = E_K(f) ‖ E_K(~f)`` for 3DES and
``K' = E_K(f ‖ ~f)`` for SM4, and say so in docs/smartcard.md.
"""

from __future__ import annotations

import enum

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


class Algorithm(enum.Enum):
    """Chip algorithm (FCI tag 9F0C/86: 01 DES/3DES, 02 SSF33, 03 SM4)."""

    TDES = "3des"
    SM4 = "sm4"

    @property
    def block_size(self) -> int:
        return 8 if self is Algorithm.TDES else 16

    @property
    def algorithm_id(self) -> int:
        """The 9F0C/86 algorithm byte."""
        return 0x01 if self is Algorithm.TDES else 0x03

    @classmethod
    def from_id(cls, value: int) -> Algorithm:
        if value == 0x01:
            return cls.TDES
        if value == 0x03:
            return cls.SM4
        raise ValueError(f"unsupported chip algorithm id {value:02X}")


def _cipher(algorithm: Algorithm, key: bytes | bytearray):
    if algorithm is Algorithm.SM4:
        if len(key) != 16:
            raise ValueError("SM4 key must be 16 bytes")
        return algorithms.SM4(bytes(key))
    if len(key) == 8:
        # Session keys of 8-byte ciphers are single DES keys (K1 = K2 = K3).
        return TripleDES(bytes(key) * 3)
    if len(key) == 16:
        return TripleDES(bytes(key) + bytes(key[:8]))  # two-key 3DES-EDE as K1 K2 K1
    if len(key) == 24:
        return TripleDES(bytes(key))
    raise ValueError("DES/3DES key must be 8, 16 or 24 bytes")


def ecb_encrypt(algorithm: Algorithm, key: bytes | bytearray, data: bytes | bytearray) -> bytes:
    if len(data) % algorithm.block_size:
        raise ValueError("data is not a whole number of blocks")
    encryptor = Cipher(_cipher(algorithm, key), modes.ECB()).encryptor()
    return encryptor.update(bytes(data)) + encryptor.finalize()


def ecb_decrypt(algorithm: Algorithm, key: bytes | bytearray, data: bytes | bytearray) -> bytes:
    if len(data) % algorithm.block_size:
        raise ValueError("data is not a whole number of blocks")
    decryptor = Cipher(_cipher(algorithm, key), modes.ECB()).decryptor()
    return decryptor.update(bytes(data)) + decryptor.finalize()


def iso_pad(data: bytes | bytearray, block_size: int) -> bytes:
    """ISO/IEC 9797-1 method 2: append 80, then 00 up to a whole block (always pads)."""
    padded = bytes(data) + b"\x80"
    return padded + b"\x00" * (-len(padded) % block_size)


def mac(
    algorithm: Algorithm, key: bytes | bytearray, message: bytes | bytearray, iv: bytes | None = None
) -> bytes:
    """4-byte MAC (第4部分 §8.2): CBC over the ISO-padded message, IV zero unless given.

    8-byte-block ciphers keep the left 4 bytes of the last block; 16-byte-block ciphers XOR
    the 16-byte result in four 4-byte chunks (§8.2.4).
    """
    size = algorithm.block_size
    iv = iv if iv is not None else b"\x00" * size
    if len(iv) != size:
        raise ValueError("MAC IV must be one block")
    encryptor = Cipher(_cipher(algorithm, key), modes.CBC(iv)).encryptor()
    last = (encryptor.update(iso_pad(message, size)) + encryptor.finalize())[-size:]
    if size == 8:
        return last[:4]
    out = bytearray(4)
    for i in range(0, 16, 4):
        for j in range(4):
            out[j] ^= last[i + j]
    return bytes(out)


def session_key(algorithm: Algorithm, key: bytes | bytearray, random: bytes) -> bytes:
    """Session key (§8.4): the card random (4 bytes padded with 00 to 8; 16 for SM4) encrypted
    under the (diversified) key. 8 bytes for 3DES (a DES key), 16 for SM4."""
    if len(random) not in (4, 8, 16):
        raise ValueError("session factor must be 4, 8 or 16 bytes")
    factor = random.ljust(algorithm.block_size, b"\x00")[: algorithm.block_size]
    return ecb_encrypt(algorithm, key, factor)


def auth_data(algorithm: Algorithm, session: bytes | bytearray, original: bytes) -> bytes:
    """8-byte authentication data (§9.3): E_session(original); for 16-byte ciphers the original
    is padded with 00 to 16 bytes and the two 8-byte halves of the result are XORed."""
    if len(original) != 8:
        raise ValueError("original random must be 8 bytes")
    if algorithm is Algorithm.TDES:
        return ecb_encrypt(algorithm, session, original)
    block = ecb_encrypt(algorithm, session, original + b"\x00" * 8)
    return bytes(a ^ b for a, b in zip(block[:8], block[8:]))


def encrypt_data(algorithm: Algorithm, key: bytes | bytearray, data: bytes | bytearray) -> bytes:
    """Encrypted data (§8.3.3): LD ‖ data ‖ 80-padding, ECB."""
    block = bytearray([len(data)]) + bytearray(data) + b"\x80"
    block += b"\x00" * (-len(block) % algorithm.block_size)
    try:
        return ecb_encrypt(algorithm, key, block)
    finally:
        block[:] = b"\x00" * len(block)


def decrypt_data(algorithm: Algorithm, key: bytes | bytearray, cryptogram: bytes) -> bytearray:
    """Inverse of :func:`encrypt_data`; returns the data (a bytearray the caller should wipe)."""
    plain = bytearray(ecb_decrypt(algorithm, key, cryptogram))
    length = plain[0]
    if length + 1 > len(plain) or plain[length + 1 : length + 2] not in (b"\x80", b""):
        plain[:] = b"\x00" * len(plain)
        raise ValueError("bad encrypted data block")
    data = plain[1 : 1 + length]
    plain[:] = b"\x00" * len(plain)
    return data


def pin_block(pin_digits: bytearray) -> bytearray:
    """BCD PIN (123456 → 12 34 56; an odd count is padded with F). 4–16 digits."""
    if not 4 <= len(pin_digits) <= 16 or any(not 0x30 <= c <= 0x39 for c in pin_digits):
        raise ValueError("PIN must be 4 to 16 digits")
    nibbles = [c - 0x30 for c in pin_digits]
    if len(nibbles) % 2:
        nibbles.append(0xF)
    out = bytearray((nibbles[i] << 4) | nibbles[i + 1] for i in range(0, len(nibbles), 2))
    nibbles[:] = [0] * len(nibbles)
    return out


def diversify(algorithm: Algorithm, key: bytes | bytearray, factor: bytes) -> bytes:
    """One level of key diversification with an 8-byte factor (PBOC rule, see module doc)."""
    if len(factor) != 8:
        raise ValueError("diversification factor must be 8 bytes")
    inverted = bytes(b ^ 0xFF for b in factor)
    if algorithm is Algorithm.TDES:
        return ecb_encrypt(algorithm, key, factor) + ecb_encrypt(algorithm, key, inverted)
    return ecb_encrypt(algorithm, key, factor + inverted)


def diversify_levels(
    algorithm: Algorithm, key: bytes | bytearray, factors: list[bytes] | tuple[bytes, ...]
) -> bytes:
    out = bytes(key)
    for factor in factors:
        out = diversify(algorithm, out, factor)
    return out


def diversification_factors(city_code: str, card_serial: bytes) -> tuple[bytes, bytes, bytes]:
    """The three diversification factors (第9部分 §7.3, SC spec §10.3).

    Level 1: ASCII of the first 2 digits of the city code ‖ 303030307368.
    Level 2: ASCII of the 6-digit city code ‖ 7378 (Zhejiang, "33": 4 digits ‖ 30307378).
    Level 3: the card serial, ATR historical bytes 6–13.
    """
    if len(city_code) != 6 or not city_code.isdigit():
        raise ValueError("city code must be 6 digits")
    if len(card_serial) != 8:
        raise ValueError("card serial must be 8 bytes")
    level1 = city_code[:2].encode() + bytes.fromhex("303030307368")
    if city_code.startswith("33"):
        level2 = city_code[:4].encode() + bytes.fromhex("30307378")
    else:
        level2 = city_code.encode() + bytes.fromhex("7378")
    return level1, level2, bytes(card_serial)
