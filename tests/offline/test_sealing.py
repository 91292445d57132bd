"""Sealing at rest: SM4-GCM (RFC 8998 vector), tamper and context binding, key file rules, rotation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offline.errors import SealingError
from offline.sealing import Sealer, add_key, read_key_file, sm4_gcm_decrypt, sm4_gcm_encrypt

# RFC 8998 appendix A.1 (SM4-GCM).
RFC_KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
RFC_IV = bytes.fromhex("00001234567800000000ABCD")
RFC_AAD = bytes.fromhex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2")
RFC_PLAIN = bytes.fromhex(
    "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD"
    "EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA"
)
RFC_CIPHER = bytes.fromhex(
    "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735"
    "D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D"
)
RFC_TAG = bytes.fromhex("83DE3541E4C2B58177E065A9BF7B62EC")


def test_sm4_gcm_matches_rfc8998_vector() -> None:
    ciphertext, tag = sm4_gcm_encrypt(RFC_KEY, RFC_IV, RFC_PLAIN, RFC_AAD)
    assert (ciphertext, tag) == (RFC_CIPHER, RFC_TAG)
    assert sm4_gcm_decrypt(RFC_KEY, RFC_IV, RFC_CIPHER, RFC_TAG, RFC_AAD) == RFC_PLAIN


@settings(max_examples=60, deadline=None)
@given(plaintext=st.binary(max_size=2048), context=st.binary(max_size=64))
def test_seal_then_open_gives_back_the_payload(plaintext: bytes, context: bytes) -> None:
    sealer = Sealer({"k1": b"\x01" * 16}, "k1")
    envelope = sealer.seal(plaintext, context)
    assert sealer.open(envelope, context) == plaintext
    assert Sealer.key_id_of(envelope) == "k1"


@settings(max_examples=60, deadline=None)
@given(position=st.integers(min_value=0), flip=st.integers(min_value=1, max_value=255))
def test_any_altered_byte_is_refused(position: int, flip: int) -> None:
    sealer = Sealer({"k1": b"\x02" * 16}, "k1")
    envelope = bytearray(sealer.seal("王秀英 11010519491231002X".encode(), b"ctx"))
    envelope[position % len(envelope)] ^= flip
    with pytest.raises(SealingError):
        sealer.open(bytes(envelope), b"ctx")


def test_a_payload_moved_to_another_message_does_not_open() -> None:
    sealer = Sealer({"k1": os.urandom(16)}, "k1")
    envelope = sealer.seal(b"payload", b"outbox\x00key-A\x00application")
    with pytest.raises(SealingError) as caught:
        sealer.open(envelope, b"outbox\x00key-B\x00application")
    assert caught.value.code == "outbox.seal_tampered"


def test_two_seals_of_the_same_payload_differ() -> None:
    sealer = Sealer({"k1": os.urandom(16)}, "k1")
    assert sealer.seal(b"same", b"c") != sealer.seal(b"same", b"c")


def test_rotation_seals_with_the_new_key_and_still_opens_the_old(tmp_path: Path) -> None:
    path = tmp_path / "outbox.key"
    add_key(path, "k2026a")
    old = Sealer.from_key_file(path).seal(b"before rotation", b"c")
    add_key(path, "k2026b")
    rotated = Sealer.from_key_file(path)
    assert rotated.current == "k2026b"
    assert rotated.open(old, b"c") == b"before rotation"
    assert Sealer.key_id_of(rotated.seal(b"after", b"c")) == "k2026b"
    _, order = read_key_file(path)
    assert order == ["k2026b", "k2026a"]


def test_a_payload_under_a_removed_key_names_the_key(tmp_path: Path) -> None:
    envelope = Sealer({"gone": os.urandom(16)}, "gone").seal(b"x", b"c")
    with pytest.raises(SealingError) as caught:
        Sealer({"new": os.urandom(16)}, "new").open(envelope, b"c")
    assert caught.value.code == "outbox.key_missing"
    assert "gone" in str(caught.value)


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "outbox.key"
    add_key(path, "k1")
    assert path.stat().st_mode & 0o777 == 0o600
    path.chmod(0o644)
    with pytest.raises(SealingError) as caught:
        Sealer.from_key_file(path)
    assert caught.value.code == "outbox.key_file_permissions"


def test_malformed_key_file_error_never_echoes_key_material(tmp_path: Path) -> None:
    path = tmp_path / "outbox.key"
    secret = "00112233445566778899aabbccddeeff0011"  # 36 hex: one line too long
    path.write_text(f"k1 {secret}\n")
    path.chmod(0o600)
    with pytest.raises(SealingError) as caught:
        Sealer.from_key_file(path)
    assert caught.value.code == "outbox.key_malformed"
    assert "line 1" in str(caught.value)
    assert secret not in str(caught.value) and secret[:32] not in str(caught.value)


def test_missing_key_file_is_a_sealing_error(tmp_path: Path) -> None:
    with pytest.raises(SealingError) as caught:
        Sealer.from_key_file(tmp_path / "absent.key")
    assert caught.value.code == "outbox.key_file_unreadable"


def test_sealer_repr_does_not_show_keys() -> None:
    key = bytes(range(16))
    assert key.hex() not in repr(Sealer({"k1": key}, "k1")) and str(key) not in repr(
        Sealer({"k1": key}, "k1")
    )
