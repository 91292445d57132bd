"""Card photo decoding (身份证照片解码): the raw 1024-byte WLT photo → an image.

No open-source WLT decoder exists (research/idcard.md §3): field kiosks call the reader vendor's
closed library. :class:`VendorWltDecoder` is a ctypes adapter for it (library path and symbol
from configuration); :class:`SimulatedPhotoDecoder` stands in for it with the simulator's cards,
mapping each simulated photo to that identity's reference picture. Both satisfy
:class:`kiosk.devices.idreader.PhotoDecoder`. The raw WLT bytes are never changed or logged.
"""

from __future__ import annotations

import ctypes
import logging
import struct
from pathlib import Path

from hardware.idreader.simulator import load_deck
from kiosk.devices.idreader import DecodedPhoto, PhotoDecoderError, PhotoDecoderUnavailableError

log = logging.getLogger(__name__)

PHOTO_WIDTH = 102
PHOTO_HEIGHT = 126
RAW_BGR_LEN = PHOTO_WIDTH * PHOTO_HEIGHT * 3  # 38556: what libwlt2bmp-style callers allocate
BMP_LEN = 14 + 40 + 308 * PHOTO_HEIGHT  # 38862: a BMP with 4-byte-padded rows (U4)


def bmp_from_bgr(raw: bytes, width: int = PHOTO_WIDTH, height: int = PHOTO_HEIGHT) -> bytes:
    """A 24-bit BMP file from top-down BGR pixel rows (what vendor 'raw' outputs hold)."""
    row = width * 3
    stride = (row + 3) & ~3
    pixels = b"".join(
        raw[y * row : (y + 1) * row] + b"\x00" * (stride - row) for y in range(height - 1, -1, -1)
    )
    header = struct.pack("<2sIHHI", b"BM", 54 + len(pixels), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, len(pixels), 3780, 3780, 0, 0)
    return header + info + pixels


class VendorWltDecoder:
    """ctypes adapter for the reader vendor's WLT library (``libwlt2bmp.so``, ``WltRS`` …).

    The symbol is called as ``int symbol(const unsigned char *wlt, unsigned char *out, int flag)``
    (the ``unpack(src, dst, 0)`` form of the Linux/Android libraries) and must return
    ``success_code``. ``out`` is 38 862 bytes; the library fills it with a BMP file (starts with
    ``BM``) or with 102×126 BGR pixels, which are wrapped into a BMP here. Vendors whose function
    has another signature need their own adapter.
    Raises :class:`PhotoDecoderUnavailableError` at construction when the library or symbol is
    missing, so a misconfigured kiosk says so at start, not at the first citizen.
    """

    def __init__(
        self, library_path: str | Path, symbol: str = "unpack", *, flag: int = 0, success_code: int = 1
    ):
        if not str(library_path):
            raise PhotoDecoderUnavailableError("no WLT decoder library configured")
        try:
            library = ctypes.CDLL(str(library_path))
        except OSError as exc:
            raise PhotoDecoderUnavailableError(f"cannot load WLT library {library_path}: {exc}") from exc
        try:
            function = getattr(library, symbol)
        except AttributeError as exc:
            raise PhotoDecoderUnavailableError(
                f"WLT library {library_path} has no symbol {symbol!r}"
            ) from exc
        function.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]
        function.restype = ctypes.c_int
        self._function = function
        self._library = library
        self.flag = flag
        self.success_code = success_code

    def decode(self, wlt: bytes) -> DecodedPhoto:
        if len(wlt) != 1024:
            raise PhotoDecoderError(f"WLT photo of {len(wlt)} bytes, expected 1024")
        out = ctypes.create_string_buffer(BMP_LEN)
        result = self._function(bytes(wlt), out, self.flag)
        if result != self.success_code:
            raise PhotoDecoderError(f"WLT library returned {result}")
        data = out.raw
        if data[:2] == b"BM":
            size = int.from_bytes(data[2:6], "little")
            return DecodedPhoto("image/bmp", data[: size if 54 < size <= len(data) else len(data)])
        return DecodedPhoto("image/bmp", bmp_from_bgr(data[:RAW_BGR_LEN]))


class SimulatedPhotoDecoder:
    """Simulated WLT decoder (模拟照片解码): maps a simulator card's photo bytes to its face picture.

    Built from the same people file as the simulator (plus its built-in cards); the pictures are
    the files named there, in ``faces_dir``. Photo bytes not from the simulator raise
    :class:`PhotoDecoderError`: this decoder decodes nothing real.
    """

    def __init__(self, people_file: Path, faces_dir: Path) -> None:
        self.faces_dir = Path(faces_dir)
        self._files = {card.photo: card.photo_file for card in load_deck(people_file).values()}

    def picture_path(self, wlt: bytes) -> Path:
        """The reference picture of the simulated card whose photo is ``wlt``."""
        name = self._files.get(bytes(wlt))
        if name is None:
            raise PhotoDecoderError("not a simulated card photo")
        return self.faces_dir / name

    def decode(self, wlt: bytes) -> DecodedPhoto:
        path = self.picture_path(wlt)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise PhotoDecoderUnavailableError(f"reference picture missing: {path.name}") from exc
        media = "image/png" if path.suffix.lower() == ".png" else "image/jpeg"
        return DecodedPhoto(media, data)
