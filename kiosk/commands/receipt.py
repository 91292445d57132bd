"""``kiosk receipt render KIND DATA.json --out RECEIPT.png`` (KIND ``voucher`` | ``notice`` |
``report``): lays the receipt out, encodes it as the ESC/POS bytes the printer would get, and
renders those bytes to a PNG for review. ``--escpos FILE`` also writes the bytes.

DATA is a JSON object with the fields of ``kiosk.devices.receipt.Voucher`` / ``OneTimeNotice`` /
``StaffReport``; times are ISO 8601 with an offset (default: now).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kiosk.commands._common import print_error, print_json
from kiosk.config import ConfigError, load_config
from kiosk.config.dev_receipt import PAPER_DOTS
from kiosk.devices.receipt import OneTimeNotice, StaffReport, Voucher

KINDS: dict[str, tuple[type, str]] = {
    "voucher": (Voucher, "completed_at"),
    "notice": (OneTimeNotice, "issued_at"),
    "report": (StaffReport, "printed_at"),
}


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("receipt", help="receipt printer: render vouchers and notices")
    inner = parser.add_subparsers(dest="receipt_command", metavar="ACTION", required=True)
    render = inner.add_parser("render", help="render a receipt from JSON data to a PNG")
    render.add_argument("kind", help="voucher, notice or report")
    render.add_argument("data", type=Path)
    render.add_argument("--out", type=Path, required=True)
    render.add_argument("--escpos", type=Path, help="also write the ESC/POS bytes here")
    render.add_argument(
        "--paper-mm", type=int, choices=sorted(PAPER_DOTS), help="roll width (default: config)"
    )
    render.add_argument("--language", choices=("zh_CN", "en"), help="label language (default: config)")
    render.add_argument("--font", type=Path, help="CJK font (default: [kiosk] font_path)")
    render.add_argument("--json", action="store_true", help="print a JSON summary")
    render.set_defaults(func=run_render)


def _value_for(field_type: Any, value: Any) -> Any:
    """Converts a JSON value to what the dataclass field wants (tuples, nested tuples, times)."""
    origin = typing.get_origin(field_type)
    if field_type is datetime or (
        origin in (typing.Union, types.UnionType) and datetime in typing.get_args(field_type)
    ):
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError("times need an offset, e.g. 2026-11-23T10:05:00+08:00")
        return moment
    if origin is tuple:
        args = typing.get_args(field_type)
        if not isinstance(value, list):
            raise ValueError("expected a list")
        inner = args[0] if args else Any
        return tuple(_value_for(inner, item) for item in value)
    return value


def build(kind: str, data: dict[str, Any]) -> Voucher | OneTimeNotice | StaffReport:
    cls, time_field = KINDS[kind]
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"unknown field(s) for {kind}: {', '.join(sorted(unknown))}")
    values = {name: _value_for(hints[name], value) for name, value in data.items()}
    values.setdefault(time_field, datetime.now(UTC))
    return cls(**values)


def run_render(args: argparse.Namespace) -> int:
    if args.kind not in KINDS:
        return print_error(
            "receipt.bad_kind", f"KIND must be one of {', '.join(sorted(KINDS))}, not {args.kind!r}"
        )
    try:
        config = load_config(args.profile)
    except ConfigError as exc:
        return print_error("config.invalid", str(exc))
    try:
        data = json.loads(args.data.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return print_error("receipt.bad_data", f"cannot read {args.data}: {exc}")
    if not isinstance(data, dict):
        return print_error("receipt.bad_data", "DATA must be a JSON object")
    try:
        value = build(args.kind, data)
    except (TypeError, ValueError) as exc:
        return print_error("receipt.bad_data", str(exc))

    from printer.receipt.escpos_printer import encode_layout
    from printer.receipt.render import render_to_png
    from printer.receipt.templates import columns_for, notice_layout, report_layout, voucher_layout

    paper_dots = PAPER_DOTS[args.paper_mm or config.receipt.paper_width_mm]
    language = args.language or config.receipt.language
    font = args.font or config.resolve(config.kiosk.font_path)
    if not font.exists():
        return print_error("receipt.no_font", f"font not found: {font}")
    layout_of = {"voucher": voucher_layout, "notice": notice_layout, "report": report_layout}[args.kind]
    layout = layout_of(value, columns=columns_for(paper_dots), language=language)  # type: ignore[arg-type]
    stream = encode_layout(layout, profile=config.receipt.profile)
    if args.escpos:
        args.escpos.parent.mkdir(parents=True, exist_ok=True)
        args.escpos.write_bytes(stream)
    try:
        render_to_png(stream, args.out, font_path=font, paper_dots=paper_dots)
    except OSError as exc:
        return print_error("receipt.cannot_write", str(exc))
    if args.json:
        print_json(
            {"kind": args.kind, "out": str(args.out), "escpos_bytes": len(stream), "paper_dots": paper_dots}
        )
    return 0
