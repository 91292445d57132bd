"""Receipt layouts (凭条版式): the business voucher (业务凭证), the one-time notice (一次性告知单)
and a generic staff list (工作人员报表), as a sequence of layout elements sized for the roll.

The layout knows the paper width in character columns (Font A: 12 dots per half-width column,
so 80 mm / 576 dots = 48 columns, 58 mm / 384 dots = 32 columns; a Han character takes two).
ID and card numbers are masked here, so no caller can print them in full by mistake.
Receipts are official documents printed in Chinese; an English label set exists for tests and
foreign-language kiosks.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from kiosk.devices.receipt import OneTimeNotice, StaffReport, Voucher

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
DOTS_PER_COLUMN = 12


class Align(enum.Enum):
    LEFT = "left"
    CENTER = "center"
    RIGHT = "right"


@dataclass(frozen=True)
class TextLine:
    """One printed line (already fitting the width). ``scale`` 2 = double width and height."""

    text: str
    align: Align = Align.LEFT
    bold: bool = False
    scale: int = 1


@dataclass(frozen=True)
class Rule:
    char: str = "-"


@dataclass(frozen=True)
class Feed:
    lines: int = 1


@dataclass(frozen=True)
class QrCode:
    content: str
    module_dots: int = 6


@dataclass(frozen=True)
class Cut:
    pass


Element = TextLine | Rule | Feed | QrCode | Cut


@dataclass(frozen=True)
class ReceiptLayout:
    """A laid-out receipt: the elements and the column count they were fitted to."""

    kind: str
    columns: int
    elements: tuple[Element, ...]

    def text(self) -> str:
        """The printed text, line by line (for tests and logs of non-personal receipts)."""
        return "\n".join(e.text for e in self.elements if isinstance(e, TextLine))


# --------------------------------------------------------------------------- masking


def _mask(value: str, head: int, tail: int) -> str:
    value = value.strip()
    if len(value) <= head + tail:
        # Too short to show both ends: show only the last character.
        return "*" * (len(value) - 1) + value[-1:] if value else ""
    return value[:head] + "*" * (len(value) - head - tail) + value[-tail:]


def mask_id_number(id_number: str) -> str:
    """ID number (公民身份号码) on a receipt: first 6 and last 4 (``110101********0048``)."""
    return _mask(id_number, 6, 4)


def mask_card_number(card_number: str) -> str:
    """Card numbers: bank card numbers (≥ 12 digits) keep first 6 and last 4 like the ID; the
    9-character social security card number keeps its first and last three (``A*****567``)."""
    card_number = card_number.strip()
    if len(card_number) >= 12:
        return _mask(card_number, 6, 4)
    return _mask(card_number, 1, 3)


# --------------------------------------------------------------------------- width helpers


def display_width(text: str) -> int:
    """Columns the text takes on a Chinese printer: ASCII takes one, every other character (sent
    as a multi-byte GB18030 code, so printed from the Chinese font: “”、–…) takes two."""
    return sum(1 if ord(ch) < 0x80 else 2 for ch in text)


def wrap(text: str, columns: int) -> list[str]:
    """Breaks a line at the column limit, counting Han characters double; never splits a
    character. Words are not kept together: Chinese has no spaces to break at."""
    lines: list[str] = []
    current = ""
    width = 0
    for ch in text:
        w = display_width(ch)
        if width + w > columns:
            lines.append(current)
            current, width = "", 0
        current += ch
        width += w
    if current or not lines:
        lines.append(current)
    return lines


def _label_value(label: str, value: str, columns: int, *, bold: bool = False) -> list[TextLine]:
    """``标签：值`` with the value's continuation lines indented under the value."""
    indent = display_width(label)
    if indent > columns // 2:
        return [TextLine(label)] + [TextLine("  " + line, bold=bold) for line in wrap(value, columns - 2)]
    parts = wrap(value, columns - indent)
    lines = [TextLine(label + parts[0], bold=bold)]
    lines += [TextLine(" " * indent + part, bold=bold) for part in parts[1:]]
    return lines


def _paragraph(text: str, columns: int, indent: int = 2) -> list[TextLine]:
    return [TextLine(" " * indent + line) for line in wrap(text, columns - indent)]


def _numbered(items: Iterable[str], columns: int) -> list[TextLine]:
    out: list[TextLine] = []
    for number, item in enumerate(items, start=1):
        head = f"  {number}. "
        parts = wrap(item, columns - len(head))
        out.append(TextLine(head + parts[0]))
        out += [TextLine(" " * len(head) + part) for part in parts[1:]]
    return out


def local_time(moment: datetime) -> str:
    return moment.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M:%S")


# --------------------------------------------------------------------------- labels

_LABELS: dict[str, dict[str, str]] = {
    "zh_CN": {
        "voucher.title": "社会保障卡业务凭证",
        "business": "业务类型：",
        "time": "办理时间：",
        "kiosk": "终端编号：",
        "serial": "业务流水号：",
        "id_number": "社会保障号码：",
        "card_number": "社保卡卡号：",
        "bank_card_number": "银行卡号：",
        "result": "办理结果：",
        "voucher.keep": "本凭证为办理业务的依据，请妥善保管。",
        "notice.title": "一次性告知单",
        "notice.time": "告知时间：",
        "notice.reason": "未能办理的原因：",
        "notice.missing": "需补充的材料：",
        "notice.none": "无",
        "notice.process": "办理流程：",
        "notice.time_limit": "办理时限：",
        "notice.where": "办理地点：",
        "notice.hotline": "咨询电话：",
        "notice.keep": "本单一次性告知所需材料，请妥善保管。",
        "report.printed": "打印时间：",
        "report.sign": "签字：",
    },
    "en": {
        "voucher.title": "Social Security Card Voucher",
        "business": "Business: ",
        "time": "Time: ",
        "kiosk": "Kiosk: ",
        "serial": "Serial no.: ",
        "id_number": "ID number: ",
        "card_number": "Card no.: ",
        "bank_card_number": "Bank card: ",
        "result": "Result: ",
        "voucher.keep": "Keep this voucher as proof of the transaction.",
        "notice.title": "One-time Notice",
        "notice.time": "Time: ",
        "notice.reason": "Why it could not be done:",
        "notice.missing": "Material still needed:",
        "notice.none": "none",
        "notice.process": "What to do:",
        "notice.time_limit": "Time limit: ",
        "notice.where": "Where to go:",
        "notice.hotline": "Hotline: ",
        "notice.keep": "This notice lists everything needed, once. Please keep it.",
        "report.printed": "Printed: ",
        "report.sign": "Signature: ",
    },
}

LANGUAGES = tuple(_LABELS)


def _labels(language: str) -> dict[str, str]:
    try:
        return _LABELS[language]
    except KeyError:
        raise ValueError(f"no receipt labels for language {language!r}") from None


def columns_for(paper_dots: int) -> int:
    return paper_dots // DOTS_PER_COLUMN


# --------------------------------------------------------------------------- templates


def voucher_layout(voucher: Voucher, *, columns: int = 48, language: str = "zh_CN") -> ReceiptLayout:
    """The business voucher (业务凭证)."""
    t = _labels(language)
    out: list[Element] = [
        *[
            TextLine(line, Align.CENTER, bold=True, scale=2)
            for line in wrap(t["voucher.title"], columns // 2)
        ],
    ]
    if voucher.branch:
        out += [TextLine(line, Align.CENTER) for line in wrap(voucher.branch, columns)]
    out.append(Rule())
    out += _label_value(t["business"], voucher.business, columns)
    out += _label_value(t["time"], local_time(voucher.completed_at), columns)
    out += _label_value(t["kiosk"], voucher.kiosk_id, columns)
    out += _label_value(t["serial"], voucher.serial_number, columns)
    out += _label_value(t["id_number"], mask_id_number(voucher.id_number), columns)
    if voucher.card_number:
        out += _label_value(t["card_number"], mask_card_number(voucher.card_number), columns)
    if voucher.bank_card_number:
        out += _label_value(t["bank_card_number"], mask_card_number(voucher.bank_card_number), columns)
    out += _label_value(t["result"], voucher.result, columns, bold=True)
    out.append(Rule())
    if voucher.qr_url:
        out.append(QrCode(voucher.qr_url, module_dots=6 if columns >= 40 else 4))
        out += [TextLine(line, Align.CENTER) for line in wrap(voucher.qr_caption, columns)]
    for note in voucher.notes:
        out += [TextLine(line) for line in wrap(note, columns)]
    out += [TextLine(line) for line in wrap(t["voucher.keep"], columns)]
    out += [Feed(1), Cut()]
    return ReceiptLayout("voucher", columns, tuple(out))


def notice_layout(notice: OneTimeNotice, *, columns: int = 48, language: str = "zh_CN") -> ReceiptLayout:
    """The one-time notice (一次性告知单): reason, missing material, process and time limit,
    where to go."""
    t = _labels(language)
    out: list[Element] = [
        *[TextLine(line, Align.CENTER, bold=True, scale=2) for line in wrap(t["notice.title"], columns // 2)],
    ]
    if notice.branch:
        out += [TextLine(line, Align.CENTER) for line in wrap(notice.branch, columns)]
    out.append(Rule())
    out += _label_value(t["business"], notice.business, columns)
    out += _label_value(t["notice.time"], local_time(notice.issued_at), columns)
    out += _label_value(t["kiosk"], notice.kiosk_id, columns)
    out += _label_value(t["serial"], notice.serial_number, columns)
    if notice.id_number:
        out += _label_value(t["id_number"], mask_id_number(notice.id_number), columns)
    out.append(Rule())
    out.append(TextLine(t["notice.reason"], bold=True))
    out += _paragraph(notice.reason, columns)
    out.append(TextLine(t["notice.missing"], bold=True))
    out += _numbered(notice.missing, columns) if notice.missing else _paragraph(t["notice.none"], columns)
    out.append(TextLine(t["notice.process"], bold=True))
    out += _numbered(notice.process, columns)
    out += _label_value(t["notice.time_limit"], notice.time_limit, columns, bold=True)
    out.append(TextLine(t["notice.where"], bold=True))
    out += _paragraph(notice.where, columns)
    out += _label_value(t["notice.hotline"], notice.hotline, columns)
    out.append(Rule())
    out += [TextLine(line) for line in wrap(t["notice.keep"], columns)]
    out += [Feed(1), Cut()]
    return ReceiptLayout("notice", columns, tuple(out))


def report_layout(report: StaffReport, *, columns: int = 48, language: str = "zh_CN") -> ReceiptLayout:
    """A staff list: title, label/value fields, a table, footer lines and signature lines.

    The table is printed in columns when it fits the roll; otherwise each row becomes a block of
    ``column：value`` lines, so nothing is ever cut off.
    """
    t = _labels(language)
    out: list[Element] = [
        *[TextLine(line, Align.CENTER, bold=True, scale=2) for line in wrap(report.title, columns // 2)],
        Rule(),
    ]
    out += _label_value(t["kiosk"], report.kiosk_id, columns)
    out += _label_value(t["report.printed"], local_time(report.printed_at), columns)
    for label, value in report.fields:
        out += _label_value(f"{label}：" if language == "zh_CN" else f"{label}: ", value, columns)
    if report.columns:
        out.append(Rule())
        widths = [
            max(display_width(c) for c in [header, *(row[i] for row in report.rows)])
            for i, header in enumerate(report.columns)
        ]
        if sum(widths) + len(widths) - 1 <= columns:
            out.append(TextLine(_row_text(report.columns, widths), bold=True))
            out += [TextLine(_row_text(row, widths)) for row in report.rows]
        else:
            for number, row in enumerate(report.rows, start=1):
                out.append(TextLine(f"#{number}", bold=True))
                for header, cell in zip(report.columns, row, strict=True):
                    out += _label_value(f"  {header}：", cell, columns)
    if report.footer:
        out.append(Rule())
        for line in report.footer:
            out += [TextLine(part) for part in wrap(line, columns)]
    if report.signatures:
        out.append(Rule())
        for who in report.signatures:
            out.append(Feed(1))
            label = f"{who}{t['report.sign']}"
            out.append(TextLine(label + "_" * max(4, columns - display_width(label) - 2)))
    out += [Feed(1), Cut()]
    return ReceiptLayout("report", columns, tuple(out))


def _row_text(cells: Iterable[str], widths: list[int]) -> str:
    return " ".join(
        cell + " " * (width - display_width(cell)) for cell, width in zip(cells, widths, strict=True)
    ).rstrip()
