"""PIN block formatting and key arithmetic (PIN 块计算), pure functions.

- ISO 9564-1 format 0 (ANSI X9.8): PIN field ``0 | N | PIN | F…F`` (16 nibbles) XOR account
  field ``0000 | 12 rightmost account digits excluding the check digit``; encrypted 3DES-ECB.
- SM4 variant (国密 PIN 块, 32 hex): the same two fields widened to 32 nibbles — PIN field padded
  with F, account field with 20 leading zeros — XORed and encrypted SM4-ECB under the PIN key.
  This is the widening Chinese banks use with SM4 (research/anchors.md §3.1: "32 hex for SM4");
  confirm the exact layout with the acquiring bank before go-live.
- Check value (校验值, KCV): the first 4 bytes of the key's encryption of an all-zero block.
- Working keys arrive encrypted under the master key, ECB.

The pad (and its simulator) use these functions; the host driver never does, because the host
never has the PIN working key. They are here, apart from any I/O, so they can be tested with
known-answer vectors.
"""

from __future__ import annotations

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from cryptography.hazmat.primitives.ciphers.algorithms import SM4

from kiosk.devices.pinpad import KeyAlgorithm

CHECK_VALUE_LEN = 4
KEY_LEN = 16  # double-length 3DES and SM4 keys are both 16 bytes


def _cipher(key: bytes | bytearray, algorithm: KeyAlgorithm) -> Cipher[modes.ECB]:
    if len(key) != KEY_LEN:
        raise ValueError("keys are 16 bytes (double-length 3DES or SM4)")
    if algorithm is KeyAlgorithm.TDES:
        # Double-length 3DES is K1 K2 K1; spelt out because cryptography deprecates 16-byte keys.
        algo: TripleDES | SM4 = TripleDES(bytes(key) + bytes(key[:8]))
    else:
        algo = SM4(bytes(key))
    return Cipher(algo, modes.ECB())


def encrypt_ecb(key: bytes | bytearray, algorithm: KeyAlgorithm, data: bytes) -> bytes:
    if len(data) % algorithm.block_size:
        raise ValueError("data is not a whole number of blocks")
    enc = _cipher(key, algorithm).encryptor()
    return enc.update(data) + enc.finalize()


def decrypt_ecb(key: bytes | bytearray, algorithm: KeyAlgorithm, data: bytes) -> bytes:
    if len(data) % algorithm.block_size:
        raise ValueError("data is not a whole number of blocks")
    dec = _cipher(key, algorithm).decryptor()
    return dec.update(data) + dec.finalize()


def check_value(key: bytes | bytearray, algorithm: KeyAlgorithm) -> str:
    """The key's check value as 8 upper-case hex digits."""
    return encrypt_ecb(key, algorithm, bytes(algorithm.block_size))[:CHECK_VALUE_LEN].hex().upper()


def account_digits(account_number: str) -> str:
    """The 12 rightmost digits of the account number excluding its check digit (left-padded with 0)."""
    if not account_number.isdigit() or len(account_number) < 2:
        raise ValueError("the account number must be digits")
    return account_number[:-1][-12:].rjust(12, "0")


def pin_field(pin: bytes | bytearray, algorithm: KeyAlgorithm) -> bytes:
    """``0 N PIN F…`` as bytes: 8 for format 0, 16 for the SM4 variant. ``pin`` is ASCII digits."""
    if not 4 <= len(pin) <= 12 or not all(0x30 <= b <= 0x39 for b in pin):
        raise ValueError("a PIN is 4 to 12 digits")
    nibbles = [0, len(pin)] + [b - 0x30 for b in pin]
    nibbles += [0xF] * (algorithm.block_size * 2 - len(nibbles))
    return bytes((nibbles[i] << 4) | nibbles[i + 1] for i in range(0, len(nibbles), 2))


def account_field(account_number: str, algorithm: KeyAlgorithm) -> bytes:
    return bytes.fromhex(account_digits(account_number).rjust(algorithm.block_size * 2, "0"))


def clear_pin_block(pin: bytes | bytearray, account_number: str, algorithm: KeyAlgorithm) -> bytes:
    """The PIN block before encryption (PIN field XOR account field)."""
    return bytes(a ^ b for a, b in zip(pin_field(pin, algorithm), account_field(account_number, algorithm)))


def encrypted_pin_block(
    pin: bytes | bytearray, account_number: str, pin_key: bytes | bytearray, algorithm: KeyAlgorithm
) -> bytes:
    """What the pad returns: the clear PIN block encrypted ECB under the PIN working key."""
    return encrypt_ecb(pin_key, algorithm, clear_pin_block(pin, account_number, algorithm))


def pin_from_block(
    block: bytes, account_number: str, pin_key: bytes | bytearray, algorithm: KeyAlgorithm
) -> bytes:
    """Inverse of :func:`encrypted_pin_block` (what the bank HSM does); used by test doubles only."""
    clear = bytes(
        a ^ b
        for a, b in zip(decrypt_ecb(pin_key, algorithm, block), account_field(account_number, algorithm))
    )
    nibbles = [n for byte in clear for n in (byte >> 4, byte & 0xF)]
    if nibbles[0] != 0 or not 4 <= nibbles[1] <= 12:
        raise ValueError("not a format 0 PIN block")
    digits = nibbles[2 : 2 + nibbles[1]]
    if any(d > 9 for d in digits) or any(n != 0xF for n in nibbles[2 + nibbles[1] :]):
        raise ValueError("not a format 0 PIN block")
    return bytes(0x30 + d for d in digits)
