"""SM2 over SM3 with a CSPRNG nonce: verifies, differs every time, interoperates with gmssl."""

from __future__ import annotations

import secrets

import pytest
from gmssl import sm2 as gmssl_sm2
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.backend import signing
from kiosk.backend.signing import SignatureError, Sm2PrivateKey, Sm2PublicKey, canonical_request, sign, verify

KEY = Sm2PrivateKey.generate()


def test_signature_verifies_and_tampering_fails() -> None:
    sig = sign(KEY, b"submitApplication")
    assert verify(KEY.public_key, b"submitApplication", sig)
    assert not verify(KEY.public_key, b"submitApplicatioN", sig)
    other = Sm2PrivateKey.generate()
    assert not verify(other.public_key, b"submitApplication", sig)
    flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    assert not verify(KEY.public_key, b"submitApplication", flipped)


def test_two_signatures_of_one_message_differ_and_both_verify() -> None:
    sigs = {sign(KEY, b"same message") for _ in range(20)}
    assert len(sigs) == 20
    assert all(verify(KEY.public_key, b"same message", s) for s in sigs)


def test_nonce_comes_from_the_os_csprng(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[int] = []
    real = secrets.randbelow

    def spy(n: int) -> int:
        value = real(n)
        drawn.append(value)
        return value

    monkeypatch.setattr(signing.secrets, "randbelow", spy)
    sign(KEY, b"m")
    assert drawn, "sign() must draw its nonce from secrets"

    # And never from the random module (gmssl's weakness): seeding it changes nothing.
    import random

    random.seed(1)
    a = sign(KEY, b"m")
    random.seed(1)
    b = sign(KEY, b"m")
    assert a != b


def test_gmssl_verifies_our_signatures_and_we_verify_gmssl() -> None:
    pub = KEY.public_key
    theirs = gmssl_sm2.CryptSM2(private_key=KEY.hex(), public_key=pub.hex())
    ours = sign(KEY, b"interop")
    assert theirs.verify_with_sm3(ours, b"interop")
    their_sig = theirs.sign_with_sm3(b"interop", secrets.token_hex(32))
    assert verify(pub, b"interop", their_sig)
    assert not verify(pub, b"interoq", their_sig)


def test_public_key_matches_gmssl_key_generation() -> None:
    theirs = gmssl_sm2.CryptSM2(private_key=KEY.hex(), public_key="")
    assert theirs._kg(KEY.d, gmssl_sm2.default_ecc_table["g"]) == KEY.public_key.hex()


@settings(max_examples=15, deadline=None)
@given(st.binary(max_size=300))
def test_any_message_round_trips(message: bytes) -> None:
    assert verify(KEY.public_key, message, sign(KEY, message))


@settings(max_examples=40, deadline=None)
@given(st.text(max_size=140))
def test_garbage_signatures_are_false_not_crashes(text: str) -> None:
    assert verify(KEY.public_key, b"m", text) is False


def test_malformed_keys_raise_signature_error() -> None:
    with pytest.raises(SignatureError):
        Sm2PublicKey.from_hex("00" * 64)  # not on the curve
    with pytest.raises(SignatureError):
        Sm2PrivateKey.from_hex("zz" * 32)
    with pytest.raises(SignatureError):
        Sm2PrivateKey.from_hex("00" * 32)
    assert "hidden" in repr(KEY) and KEY.hex() not in repr(KEY)
    assert Sm2PublicKey.from_hex("04" + KEY.public_key.hex()) == KEY.public_key


def test_canonical_request_binds_every_part() -> None:
    base = ("POST", "/api/v1/applications", "2026-11-23T02:00:00Z", "ab" * 16, "V1.submit", b"{}")
    variants = {canonical_request(*base)}
    for i in range(6):
        changed = list(base)
        changed[i] = b"{ }" if i == 5 else str(changed[i]) + "x"
        variants.add(canonical_request(*changed))
    assert len(variants) == 7
