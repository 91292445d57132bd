"""Card face rendering (卡面个人化打印版面): the personalized side at the printer's resolution.

From a :class:`FaceLayout` (positions in millimetres, same field names as the configuration's
``CardFaceLayout``) and a :class:`~kiosk.devices.cardprinter.CardFace`, renders 1016 × 648 dots
at 300 dpi:

* a **preview** (RGB, upright, what the citizen will see) for people and tests;
* the **panels** the printer wants: on a YMCKO ribbon the photo goes to the colour panels
  (Y, M, C) and the text to the resin black panel K (sharper than composite black; the SDK's
  ``TEXTINBLACK``, research/hardware.md §1.3), plus a full overlay O; on a K ribbon everything
  is black (the photo dithered). Panels are turned by ``rotation_deg`` (180 when the cards lie
  in the hopper upside down, as the peer kiosk's ``CardForm.ini`` has it, research/sscard.md §5).

Layout defaults follow the national card standard (research/sscard.md §5): photo 20 × 25 mm,
4 mm from the right edge and 3 mm from the top. The font is passed in (a CJK TrueType file).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from kiosk.devices.cardprinter import CardFace, Sex
from printer.cardprinter.protocol import CARD_HEIGHT_DOTS, CARD_WIDTH_DOTS, pack_panel

MM_PER_INCH = 25.4
RIBBONS = ("YMCKO", "K")

SEX_TEXT = {Sex.MALE: "男", Sex.FEMALE: "女", Sex.UNSPECIFIED: "未说明"}
LABELS = {
    "name": "姓名",
    "sex": "性别",
    "ssn": "社会保障号码",
    "card_number": "社会保障卡号",
    "issue_date": "发卡日期",
}


class CardFaceError(ValueError):
    """The face cannot be rendered (bad photo, bad layout): a programming or data error."""


@dataclass(frozen=True)
class FaceLayout:
    """Positions in mm from the card's top-left corner, face up (mirror of the config's
    ``CardFaceLayout``; ``kiosk/app.py`` copies it over with :meth:`from_config`)."""

    photo_x_mm: float = 61.6
    photo_y_mm: float = 3.0
    photo_w_mm: float = 20.0
    photo_h_mm: float = 25.0
    text_x_mm: float = 5.0
    name_y_mm: float = 20.0
    sex_y_mm: float = 25.0
    ssn_y_mm: float = 30.0
    card_number_y_mm: float = 35.0
    issue_date_y_mm: float = 40.0
    font_pt: float = 8.0
    print_labels: bool = True
    label_gap_mm: float = 1.5

    @classmethod
    def from_config(cls, layout: Any) -> FaceLayout:
        """Copies the fields of the same name from a config object (duck-typed: drivers may
        not import ``kiosk.config``)."""
        return cls(**{f.name: getattr(layout, f.name) for f in fields(cls) if hasattr(layout, f.name)})


def issue_date_text(day: date) -> str:
    """发卡日期 as printed: ``2026年11月`` (year and month, as the peer and the cards show)."""
    return f"{day.year}年{day.month}月"


@dataclass(frozen=True)
class RenderedFace:
    """One rendered face. ``colour`` is RGB, ``black`` and ``overlay`` are 1-bit images, all in
    the printer's orientation; ``preview`` is upright."""

    preview: Image.Image
    colour: Image.Image | None
    black: Image.Image
    overlay: Image.Image | None
    ribbon: str

    def panels(self, colour_levels: int = 32) -> list[tuple[str, int, bytes]]:
        """``(panel, levels, packed bytes)`` for each ``Db`` command, in print order."""
        out: list[tuple[str, int, bytes]] = []
        if self.colour is not None:
            rgb = np.asarray(self.colour, dtype=np.uint16)
            scale = colour_levels - 1
            # Subtractive inks: yellow absorbs blue, magenta green, cyan red.
            for panel, channel in (("y", 2), ("m", 1), ("c", 0)):
                ink = ((255 - rgb[:, :, channel]) * scale + 127) // 255
                out.append((panel, colour_levels, pack_panel(ink.astype(np.uint8), colour_levels)))
        out.append(("k", 2, pack_panel(_ink_of(self.black), 2)))
        if self.overlay is not None:
            out.append(("o", 2, pack_panel(_ink_of(self.overlay), 2)))
        return out

    def preview_png(self) -> bytes:
        buf = io.BytesIO()
        self.preview.save(buf, format="PNG", compress_level=3)
        return buf.getvalue()


def _ink_of(bitmap: Image.Image) -> np.ndarray:
    """1 where the 1-bit image is black (ink), 0 where white."""
    return (np.asarray(bitmap.convert("L")) < 128).astype(np.uint8)


class CardFaceRenderer:
    """Renders faces for one printer set-up. Fonts are loaded once (the .ttc is large)."""

    def __init__(
        self,
        layout: FaceLayout,
        font_path: Path | str,
        *,
        dpi: int = 300,
        rotation_deg: int = 180,
        ribbon: str = "YMCKO",
    ) -> None:
        if rotation_deg not in (0, 180):
            raise CardFaceError("rotation_deg must be 0 or 180")
        if ribbon not in RIBBONS:
            raise CardFaceError(f"ribbon must be one of {RIBBONS}")
        if dpi != 300:
            # The panel size on the wire is fixed at 1016 × 648 (300 dpi, E1 §2).
            raise CardFaceError("only 300 dpi printers are supported")
        self.layout, self.dpi, self.rotation_deg, self.ribbon = layout, dpi, rotation_deg, ribbon
        try:
            self._font = ImageFont.truetype(str(font_path), self._pt(layout.font_pt))
        except OSError as exc:
            raise CardFaceError(f"cannot load font {font_path}: {exc}") from exc

    def _px(self, mm: float) -> int:
        return round(mm * self.dpi / MM_PER_INCH)

    def _pt(self, pt: float) -> int:
        return max(1, round(pt * self.dpi / 72))

    def render(self, face: CardFace) -> RenderedFace:
        lay = self.layout
        size = (CARD_WIDTH_DOTS, CARD_HEIGHT_DOTS)
        colour = Image.new("RGB", size, "white")
        text = Image.new("L", size, 255)  # text mask, black = ink
        draw = ImageDraw.Draw(text)
        lines = (
            ("name", face.name, lay.name_y_mm),
            ("sex", SEX_TEXT[face.sex], lay.sex_y_mm),
            ("ssn", face.ssn, lay.ssn_y_mm),
            ("card_number", face.card_number, lay.card_number_y_mm),
            ("issue_date", issue_date_text(face.issue_date), lay.issue_date_y_mm),
        )
        x0 = self._px(lay.text_x_mm)
        for key, value, y_mm in lines:
            x, y = x0, self._px(y_mm)
            if lay.print_labels:
                label = LABELS[key]
                draw.text((x, y), label, font=self._font, fill=0)
                x += round(draw.textlength(label, font=self._font)) + self._px(lay.label_gap_mm)
            draw.text((x, y), value, font=self._font, fill=0)

        photo_box = (
            self._px(lay.photo_x_mm),
            self._px(lay.photo_y_mm),
            self._px(lay.photo_w_mm),
            self._px(lay.photo_h_mm),
        )
        photo = self._photo(face.photo, photo_box[2:]) if face.photo else None
        if photo is not None:
            colour.paste(photo, photo_box[:2])

        preview = colour.copy()
        preview.paste((0, 0, 0), mask=ImageOps.invert(text))
        rotate = (lambda im: im.rotate(180)) if self.rotation_deg == 180 else (lambda im: im)

        if self.ribbon == "K":
            # One black panel: the photo dithered (Floyd–Steinberg) under the text.
            mono = colour.convert("L").convert("1")
            mono_l = mono.convert("L")
            mono_l.paste(0, mask=ImageOps.invert(text))
            return RenderedFace(
                preview=mono_l.convert("RGB"),
                colour=None,
                black=rotate(mono_l.convert("1")),
                overlay=None,
                ribbon="K",
            )
        black = text.point(lambda v: 0 if v < 128 else 255).convert("1")
        overlay = Image.new("1", size, 0)  # varnish over the whole face
        return RenderedFace(
            preview=preview,
            colour=rotate(colour),
            black=rotate(black),
            overlay=rotate(overlay),
            ribbon="YMCKO",
        )

    def _photo(self, data: bytes, box: tuple[int, int]) -> Image.Image:
        try:
            with Image.open(io.BytesIO(data)) as im:
                # A JPEG can be decoded straight at a reduced scale: the box is only ~236 × 295.
                im.draft("RGB", (box[0] * 2, box[1] * 2))
                im.load()
                photo = ImageOps.exif_transpose(im).convert("RGB")
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise CardFaceError(f"photo cannot be read: {type(exc).__name__}") from exc
        # Cover the 20 × 25 mm box keeping the aspect (ID photos are 358 × 441, close to 4:5); a
        # taller photo is cut more below than above, where the head is.
        return ImageOps.fit(photo, box, method=Image.Resampling.LANCZOS, centering=(0.5, 0.25))


def render_preview_png(face: CardFace, renderer: CardFaceRenderer, out: Path) -> RenderedFace:
    """Renders ``face`` and writes the upright preview to ``out`` (PNG)."""
    rendered = renderer.render(face)
    out.write_bytes(rendered.preview_png())
    return rendered


__all__ = [
    "CardFaceError",
    "CardFaceRenderer",
    "FaceLayout",
    "RenderedFace",
    "issue_date_text",
    "render_preview_png",
]
