"""WLT photo decoders: the simulated one and the ctypes adapter for a vendor library."""

from __future__ import annotations

import ctypes.util
import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from hardware.idreader.photo import BMP_LEN, SimulatedPhotoDecoder, VendorWltDecoder
from hardware.idreader.simulator import load_deck
from kiosk.devices.idreader import PhotoDecoder, PhotoDecoderError, PhotoDecoderUnavailableError
from tests.idreader.conftest import PEOPLE_FILE


def test_simulated_decoder_maps_each_card_to_its_reference_picture(faces_dir: Path) -> None:
    decoder = SimulatedPhotoDecoder(PEOPLE_FILE, faces_dir)
    assert isinstance(decoder, PhotoDecoder)
    deck = load_deck(PEOPLE_FILE)
    for key, expected in (
        ("first_issue", "biden2.jpg"),
        ("face_mismatch", "obama.jpg"),
        ("foreign_permanent_2017", "biden.jpg"),  # a built-in card of the simulator
    ):
        photo = decoder.decode(deck[key].photo)
        assert photo.media_type == "image/jpeg"
        # Digests, not the bytes: a failing comparison of two photos would be diffed byte by byte.
        assert hashlib.sha256(photo.data).hexdigest() == hashlib.sha256((faces_dir / expected).read_bytes()).hexdigest(), key
    assert {decoder.picture_path(c.photo).name for c in deck.values()} <= {
        p.name for p in faces_dir.iterdir()
    }


def test_simulated_decoder_refuses_photos_it_did_not_make(faces_dir: Path) -> None:
    with pytest.raises(PhotoDecoderError):
        SimulatedPhotoDecoder(PEOPLE_FILE, faces_dir).decode(b"\x00" * 1024)


def test_vendor_decoder_missing_library_is_a_clear_typed_error(tmp_path: Path) -> None:
    with pytest.raises(PhotoDecoderUnavailableError) as caught:
        VendorWltDecoder(tmp_path / "libwlt2bmp.so")
    assert caught.value.code == "idreader.photo_decoder_missing"
    with pytest.raises(PhotoDecoderUnavailableError):
        VendorWltDecoder("")


def test_vendor_decoder_missing_symbol_is_a_clear_typed_error() -> None:
    libc = ctypes.util.find_library("c")
    assert libc
    with pytest.raises(PhotoDecoderUnavailableError, match="no symbol"):
        VendorWltDecoder(libc, "no_such_wlt_symbol")


FAKE_VENDOR = r"""
/* Stand-in for a vendor WLT library: writes 102x126 BGR pixels derived from the input. */
int unpack(const unsigned char *wlt, unsigned char *out, int flag) {
    if (wlt[0] == 0xFF) return -3;
    for (int i = 0; i < 102 * 126 * 3; i++) out[i] = wlt[i % 1024] ^ (unsigned char)flag;
    return 1;
}
"""


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc to build a stand-in vendor library")
def test_vendor_decoder_calls_the_library_and_wraps_raw_pixels_in_a_bmp(tmp_path: Path) -> None:
    source = tmp_path / "fake.c"
    source.write_text(FAKE_VENDOR)
    library = tmp_path / "libfakewlt.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(library), str(source)], check=True)
    decoder = VendorWltDecoder(library, "unpack")
    wlt = bytes(range(256)) * 4
    photo = decoder.decode(wlt)
    assert photo.media_type == "image/bmp" and photo.data[:2] == b"BM" and len(photo.data) == BMP_LEN
    # Bottom-up rows: the first pixel row in the file is the last image row.
    last_row_start = 125 * 102 * 3
    assert photo.data[54:57] == bytes(wlt[(last_row_start + i) % 1024] for i in range(3))
    with pytest.raises(PhotoDecoderError, match="returned -3"):
        decoder.decode(b"\xff" * 1024)
    with pytest.raises(PhotoDecoderError):
        decoder.decode(b"\x00" * 10)
