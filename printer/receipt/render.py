"""Receipt preview (凭条预览): renders an ESC/POS byte stream to a PNG the way a thermal printer
lays it out, for review by people and for tests.

It reads the same bytes the printer gets (from :func:`encode_layout` or from the simulator's
``receipts``), so what is checked is what is sent: GB18030 text on a 12/24-dot cell grid
(half-width 12 dots, Han characters 24), ``GS !`` / ``ESC !`` sizes, ``ESC E`` bold,
``ESC a`` alignment, native QR codes (``GS ( k``, drawn with the ``qrcode`` library), raster
images (``GS v 0``), feeds and cuts (a dashed line). The CJK font is passed in (the printer's
own font is in its ROM; ours only has to be readable).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import qrcode
from PIL import Image, ImageDraw, ImageFont, ImageOps

from printer.receipt import protocol as p

CELL = 12  # dots per half-width column (Font A 12×24)
LINE = 24  # glyph height in dots
PITCH = 30  # default line spacing (ESC 2) in dots
MARGIN = 16


@dataclass
class _Span:
    data: bytes
    bold: bool
    width: int
    height: int


class _Canvas:
    def __init__(self, paper_dots: int, font_path: Path) -> None:
        self.paper_dots = paper_dots
        self.font_path = str(font_path)
        self.strips: list[Image.Image] = []
        self._fonts: dict[int, ImageFont.FreeTypeFont] = {}

    def font(self, size: int) -> ImageFont.FreeTypeFont:
        if size not in self._fonts:
            self._fonts[size] = ImageFont.truetype(self.font_path, size)
        return self._fonts[size]

    def blank(self, height: int) -> None:
        if height > 0:
            self.strips.append(Image.new("L", (self.paper_dots, height), 255))

    def text_line(self, spans: list[_Span], align: int) -> None:
        height = max((s.height for s in spans), default=1)
        strip = Image.new("L", (self.paper_dots, PITCH * height), 255)
        cells: list[tuple[str, _Span]] = []
        for span in spans:
            for ch in span.data.decode("gb18030", errors="replace"):
                cells.append((ch, span))
        total = sum(_cell_width(ch) * s.width for ch, s in cells)
        x = {1: (self.paper_dots - total) // 2, 2: self.paper_dots - total}.get(align, 0)
        x = max(0, x)
        for ch, span in cells:
            advance = _cell_width(ch) * span.width
            font = self.font(LINE * span.height)
            top = PITCH * (height - span.height)
            natural = max(1, int(font.getlength(ch)))
            # The cell is one line pitch high so descenders (g, y, _) are not cut off.
            glyph = Image.new("L", (natural + 1, PITCH * span.height), 255)
            gdraw = ImageDraw.Draw(glyph)
            gdraw.text((0, 0), ch, font=font, fill=0)
            if span.bold:
                gdraw.text((1, 0), ch, font=font, fill=0)
            # The printer's ROM font fits every glyph in its cell (12 or 24 dots a column, times
            # the width factor): squeeze or stretch ours the same way.
            target = advance if span.width != span.height else min(advance, glyph.width)
            if target != glyph.width:
                glyph = glyph.resize((max(1, target), glyph.height))
            left = x + (advance - glyph.width) // 2
            strip.paste(0, (left, top, left + glyph.width, top + glyph.height), mask=ImageOps.invert(glyph))
            x += advance
        self.strips.append(strip)

    def image(self, image: Image.Image, align: int) -> None:
        strip = Image.new("L", (self.paper_dots, image.height), 255)
        x = {1: (self.paper_dots - image.width) // 2, 2: self.paper_dots - image.width}.get(align, 0)
        strip.paste(image, (max(0, x), 0))
        self.strips.append(strip)

    def cut(self) -> None:
        strip = Image.new("L", (self.paper_dots, 24), 255)
        draw = ImageDraw.Draw(strip)
        for x in range(0, self.paper_dots, 16):
            draw.line([(x, 12), (x + 8, 12)], fill=0, width=2)
        self.strips.append(strip)

    def result(self) -> Image.Image:
        height = sum(s.height for s in self.strips) + 2 * MARGIN
        page = Image.new("L", (self.paper_dots + 2 * MARGIN, max(height, 2 * MARGIN + 1)), 255)
        y = MARGIN
        for strip in self.strips:
            page.paste(strip, (MARGIN, y))
            y += strip.height
        return page


def _cell_width(ch: str) -> int:
    """A Chinese printer prints every double-byte (GB18030) character in a full 24-dot cell and
    only ASCII in a 12-dot one."""
    return CELL if ord(ch) < 0x80 else 2 * CELL


def render_stream(stream: bytes, *, font_path: Path, paper_dots: int = 576) -> Image.Image:
    """The receipt image of an ESC/POS stream (grey-scale, one dot = one pixel, 203 dpi)."""
    canvas = _Canvas(paper_dots, font_path)
    align, bold, width, height = 0, False, 1, 1
    spans: list[_Span] = []
    qr_data = b""
    qr_module = 3

    def flush_line() -> None:
        nonlocal spans
        if spans:
            canvas.text_line(spans, align)
        else:
            canvas.blank(PITCH * height)
        spans = []

    for command in p.parse(stream):
        op = command.op
        if op is p.Op.TEXT:
            spans.append(_Span(command.data, bold, width, height))
        elif op is p.Op.LF:
            flush_line()
        elif op is p.Op.INIT:
            align, bold, width, height = 0, False, 1, 1
        elif op is p.Op.ALIGN:
            align = command.arg - 48 if command.arg >= 48 else command.arg
        elif op is p.Op.BOLD:
            bold = bool(command.arg & 1)
        elif op is p.Op.PRINT_MODE:
            bold = bool(command.arg & 0x08)
            height = 2 if command.arg & 0x10 else 1
            width = 2 if command.arg & 0x20 else 1
        elif op is p.Op.CHAR_SIZE:
            width = (command.arg >> 4) + 1
            height = (command.arg & 0x0F) + 1
        elif op is p.Op.FEED_LINES:
            if spans:
                flush_line()
                canvas.blank(PITCH * max(command.arg - 1, 0))
            else:
                canvas.blank(PITCH * command.arg)
        elif op is p.Op.FEED_DOTS:
            canvas.blank(command.arg)
        elif op is p.Op.QR:
            if command.arg == 80:
                qr_data = command.data
            elif command.arg == 67 and command.extra:
                qr_module = command.extra[0]
            elif command.arg == 81 and qr_data:
                code = qrcode.QRCode(border=2, box_size=max(1, qr_module))
                code.add_data(qr_data.decode("utf-8", errors="replace"))
                code.make(fit=True)
                canvas.image(code.make_image().get_image().convert("L"), align)
        elif op is p.Op.RASTER:
            width_bytes, rows = command.extra
            bits = Image.frombytes("1", (width_bytes * 8, rows), command.data)
            # In ESC/POS a set bit is a black dot; in PIL mode "1" a set bit is white.
            canvas.image(Image.eval(bits.convert("L"), lambda v: 255 - v), align)
        elif op is p.Op.CUT:
            if spans:
                flush_line()
            canvas.cut()
    if spans:
        flush_line()
    return canvas.result()


def render_to_png(stream: bytes, out: Path, *, font_path: Path, paper_dots: int = 576) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    render_stream(stream, font_path=font_path, paper_dots=paper_dots).save(out, "PNG")
    return out
