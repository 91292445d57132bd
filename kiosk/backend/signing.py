"""SM2 signatures over SM3 digests (SM2 签名, GB/T 32918.2) for the back-end link.

Every request the kiosk sends to the card-management system (卡管系统) is signed; the
simulator verifies it. Two reasons for an own implementation instead of gmssl's ``CryptSM2``:

- gmssl draws the per-signature nonce ``k`` from :mod:`random` (Mersenne Twister, predictable;
  a predictable or repeated ``k`` reveals the private key). Here ``k`` comes from
  :mod:`secrets` (the OS CSPRNG), always.
- gmssl signs in ~6-10 ms on this machine; the issue's target is ≤ 5 ms per request. Signing
  only multiplies the fixed base point G, so a precomputed 4-bit window table of G turns the
  scalar multiplication into 64 mixed additions (well under 1 ms in pure Python).

The digest is SM3 (from ``cryptography``/OpenSSL, much faster than gmssl's pure-Python SM3)
over Z_A ‖ M, with the default signer id ``1234567812345678`` (GB/T 35276), so signatures are
interchangeable with gmssl's ``sign_with_sm3``/``verify_with_sm3`` (a test checks both ways).
The ``cryptography`` package has SM3 and SM4 but no SM2 curve, so it cannot sign.

Signatures are ``r ‖ s``, 32 bytes each, hex-encoded (128 hex digits), as gmssl produces.
Keys: private key = 32-byte integer as 64 hex digits; public key = ``x ‖ y`` as 128 hex digits.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from functools import lru_cache

from cryptography.hazmat.primitives import hashes

# Curve sm2p256v1 (GB/T 32918.5).
P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
A = P - 3
B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
GX = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7
GY = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0
DEFAULT_SIGNER_ID = b"1234567812345678"

_Jac = tuple[int, int, int]  # Jacobian (X, Y, Z); Z == 0 is the point at infinity
_INF: _Jac = (1, 1, 0)


class SignatureError(ValueError):
    """A key or signature is malformed (not: a signature that does not verify — that is False)."""


def sm3(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SM3())
    digest.update(data)
    return digest.finalize()


def _double(pt: _Jac) -> _Jac:
    x, y, z = pt
    if z == 0 or y == 0:
        return _INF
    delta = z * z % P
    gamma = y * y % P
    beta = x * gamma % P
    alpha = 3 * (x - delta) * (x + delta) % P  # a = -3
    x3 = (alpha * alpha - 8 * beta) % P
    z3 = ((y + z) * (y + z) - gamma - delta) % P
    y3 = (alpha * (4 * beta - x3) - 8 * gamma * gamma) % P
    return (x3, y3, z3)


def _add_affine(pt: _Jac, qx: int, qy: int) -> _Jac:
    """Jacobian + affine (mixed addition)."""
    x1, y1, z1 = pt
    if z1 == 0:
        return (qx, qy, 1)
    z1z1 = z1 * z1 % P
    u2 = qx * z1z1 % P
    s2 = qy * z1 * z1z1 % P
    h = (u2 - x1) % P
    r = (s2 - y1) % P
    if h == 0:
        return _double(pt) if r == 0 else _INF
    h2 = h * h % P
    h3 = h * h2 % P
    x1h2 = x1 * h2 % P
    x3 = (r * r - h3 - 2 * x1h2) % P
    y3 = (r * (x1h2 - x3) - y1 * h3) % P
    return (x3, y3, z1 * h % P)


def _add(p1: _Jac, p2: _Jac) -> _Jac:
    if p1[2] == 0:
        return p2
    if p2[2] == 0:
        return p1
    x1, y1, z1 = p1
    x2, y2, z2 = p2
    z1z1 = z1 * z1 % P
    z2z2 = z2 * z2 % P
    u1 = x1 * z2z2 % P
    u2 = x2 * z1z1 % P
    s1 = y1 * z2 * z2z2 % P
    s2 = y2 * z1 * z1z1 % P
    h = (u2 - u1) % P
    r = (s2 - s1) % P
    if h == 0:
        return _double(p1) if r == 0 else _INF
    h2 = h * h % P
    h3 = h * h2 % P
    u1h2 = u1 * h2 % P
    x3 = (r * r - h3 - 2 * u1h2) % P
    y3 = (r * (u1h2 - x3) - s1 * h3) % P
    return (x3, y3, z1 * z2 * h % P)


def _to_affine(pt: _Jac) -> tuple[int, int]:
    x, y, z = pt
    if z == 0:
        raise SignatureError("point at infinity")
    zinv = pow(z, -1, P)
    zinv2 = zinv * zinv % P
    return (x * zinv2 % P, y * zinv2 * zinv % P)


@lru_cache(maxsize=1)
def _g_table() -> tuple[tuple[tuple[int, int] | None, ...], ...]:
    """table[i][j] = j · 16^i · G in affine coordinates (j = 0 is None), 64 × 16 points."""
    table = []
    base: _Jac = (GX, GY, 1)
    for _ in range(64):
        row: list[tuple[int, int] | None] = [None]
        acc: _Jac = _INF
        bx, by = _to_affine(base)
        for _j in range(1, 16):
            acc = _add_affine(acc, bx, by)
            row.append(_to_affine(acc))
        table.append(tuple(row))
        for _k in range(4):
            base = _double(base)
    return tuple(table)


def _mul_g(k: int) -> _Jac:
    """k·G with the fixed-base window table (64 mixed additions, no doublings)."""
    table = _g_table()
    acc: _Jac = _INF
    i = 0
    while k:
        digit = k & 15
        if digit:
            qx, qy = table[i][digit]  # type: ignore[misc]
            acc = _add_affine(acc, qx, qy)
        k >>= 4
        i += 1
    return acc


def _mul(k: int, point: tuple[int, int]) -> _Jac:
    """k·Q for an arbitrary point (4-bit fixed window)."""
    px, py = point
    window: list[_Jac] = [_INF, (px, py, 1)]
    for _ in range(14):
        window.append(_add_affine(window[-1], px, py))
    acc: _Jac = _INF
    for shift in range((k.bit_length() + 3) // 4 * 4 - 4, -4, -4):
        for _ in range(4):
            acc = _double(acc)
        digit = (k >> shift) & 15
        if digit:
            acc = _add(acc, window[digit])
    return acc


def _on_curve(x: int, y: int) -> bool:
    return 0 <= x < P and 0 <= y < P and (y * y - (x * x * x + A * x + B)) % P == 0


@dataclass(frozen=True)
class Sm2PublicKey:
    """An SM2 public key (公钥), ``x ‖ y`` as 128 hex digits."""

    x: int
    y: int

    def __post_init__(self) -> None:
        if not _on_curve(self.x, self.y):
            raise SignatureError("public key is not a point of sm2p256v1")

    @classmethod
    def from_hex(cls, text: str) -> Sm2PublicKey:
        text = text.strip().lower()
        if text.startswith("04") and len(text) == 130:
            text = text[2:]
        if len(text) != 128:
            raise SignatureError("public key must be 128 hex digits (x ‖ y)")
        try:
            return cls(int(text[:64], 16), int(text[64:], 16))
        except ValueError as exc:
            raise SignatureError("public key is not hex") from exc

    def hex(self) -> str:
        return f"{self.x:064x}{self.y:064x}"

    def z_value(self, signer_id: bytes = DEFAULT_SIGNER_ID) -> bytes:
        """Z_A = SM3(ENTL ‖ ID ‖ a ‖ b ‖ xG ‖ yG ‖ xA ‖ yA)."""
        entl = (len(signer_id) * 8).to_bytes(2, "big")
        parts = b"".join(v.to_bytes(32, "big") for v in (A, B, GX, GY, self.x, self.y))
        return sm3(entl + signer_id + parts)


@dataclass(frozen=True, repr=False)
class Sm2PrivateKey:
    """An SM2 private key (私钥). Never logged: ``repr`` hides it."""

    d: int

    def __post_init__(self) -> None:
        if not 1 <= self.d < N - 1:
            raise SignatureError("private key out of range")

    def __repr__(self) -> str:
        return "Sm2PrivateKey(<hidden>)"

    @classmethod
    def generate(cls) -> Sm2PrivateKey:
        return cls(secrets.randbelow(N - 2) + 1)

    @classmethod
    def from_hex(cls, text: str) -> Sm2PrivateKey:
        text = text.strip()
        if len(text) != 64:
            raise SignatureError("private key must be 64 hex digits")
        try:
            return cls(int(text, 16))
        except ValueError as exc:
            raise SignatureError("private key is not hex") from exc

    def hex(self) -> str:
        return f"{self.d:064x}"

    @property
    def public_key(self) -> Sm2PublicKey:
        return _public_key(self.d)


@lru_cache(maxsize=16)
def _public_key(d: int) -> Sm2PublicKey:
    x, y = _to_affine(_mul_g(d))
    return Sm2PublicKey(x, y)


@lru_cache(maxsize=16)
def _inverse_1_plus_d(d: int) -> int:
    return pow(1 + d, -1, N)


def _digest(message: bytes, public: Sm2PublicKey, signer_id: bytes) -> int:
    return int.from_bytes(sm3(public.z_value(signer_id) + message), "big")


def sign(key: Sm2PrivateKey, message: bytes, signer_id: bytes = DEFAULT_SIGNER_ID) -> str:
    """SM2 signature of SM3(Z_A ‖ message) as hex ``r ‖ s``. The nonce k comes from the OS
    CSPRNG (:func:`secrets.randbelow`), fresh for every signature, so two signatures of the same
    message differ."""
    e = _digest(message, key.public_key, signer_id)
    d = key.d
    while True:
        k = secrets.randbelow(N - 1) + 1
        x1, _y1 = _to_affine(_mul_g(k))
        r = (e + x1) % N
        if r == 0 or r + k == N:
            continue
        s = _inverse_1_plus_d(d) * (k - r * d) % N
        if s == 0:
            continue
        return f"{r:064x}{s:064x}"


def verify(
    public: Sm2PublicKey, message: bytes, signature: str, signer_id: bytes = DEFAULT_SIGNER_ID
) -> bool:
    """True if ``signature`` (hex ``r ‖ s``) is a valid SM2 signature of ``message`` by ``public``."""
    if len(signature) != 128:
        return False
    try:
        r = int(signature[:64], 16)
        s = int(signature[64:], 16)
    except ValueError:
        return False
    if not (1 <= r < N and 1 <= s < N):
        return False
    t = (r + s) % N
    if t == 0:
        return False
    e = _digest(message, public, signer_id)
    point = _add(_mul_g(s), _mul(t, (public.x, public.y)))
    if point[2] == 0:
        return False
    x1, _ = _to_affine(point)
    return (e + x1) % N == r


def canonical_request(
    method: str, path: str, timestamp: str, nonce: str, idempotency_key: str, body: bytes
) -> bytes:
    """The string a request signature covers (docs/api/openapi.yaml, "Signature")."""
    return "\n".join((method.upper(), path, timestamp, nonce, idempotency_key, sm3(body).hex())).encode(
        "utf-8"
    )
