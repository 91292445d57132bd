"""``kiosk cardface render DATA.json --out FACE.png``: the personalized card side (卡面预览).

DATA.json is one object with ``name``, ``sex`` (男/女/male/female/1/2), ``ssn``, ``card_number``,
``issue_date`` (YYYY-MM-DD) and ``photo`` (a path, relative to the JSON file's folder; may be
empty for a card without a photo). The layout, rotation and ribbon come from the
``[cardprinter]`` configuration, the font from ``[kiosk] font_path``. ``--panels DIR`` also
writes each printer panel (y, m, c, k, o as the printer receives them) as PNG.
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path
from typing import Any

from kiosk.commands._common import print_error, print_json
from kiosk.devices.cardprinter import CardFace, Sex

_SEX = {
    "男": Sex.MALE,
    "male": Sex.MALE,
    "m": Sex.MALE,
    "1": Sex.MALE,
    "女": Sex.FEMALE,
    "female": Sex.FEMALE,
    "f": Sex.FEMALE,
    "2": Sex.FEMALE,
    "未说明": Sex.UNSPECIFIED,
    "unspecified": Sex.UNSPECIFIED,
    "9": Sex.UNSPECIFIED,
}
_FIELDS = ("name", "sex", "ssn", "card_number", "issue_date")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("cardface", help="card face (卡面) rendering")
    sub = parser.add_subparsers(dest="cardface_command", metavar="ACTION", required=True)
    render = sub.add_parser(
        "render",
        help="render the personalized side to PNG",
        description="Render the personalized card side from a JSON object.",
    )
    render.add_argument("data", type=Path, help="JSON object: name, sex, ssn, card_number, issue_date, photo")
    render.add_argument("--out", type=Path, required=True, help="PNG file for the upright preview")
    render.add_argument("--panels", type=Path, default=None, help="also write the printer panels here")
    render.set_defaults(func=run_render)


def _face_from_json(path: Path) -> CardFace:
    """Raises ValueError with a message naming the bad field."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError("DATA.json must hold one object")  # noqa: TRY004 (bad input, not a bug)
    missing = [k for k in _FIELDS if not isinstance(data.get(k), str) or not data[k].strip()]
    if missing:
        raise ValueError(f"missing or empty text fields: {', '.join(missing)}")
    sex = _SEX.get(data["sex"].strip().lower())
    if sex is None:
        raise ValueError(f"sex must be 男/女 (or male/female), not {data['sex']!r}")
    try:
        issued = date.fromisoformat(data["issue_date"])
    except ValueError:
        raise ValueError("issue_date must be YYYY-MM-DD") from None
    photo = b""
    if data.get("photo"):
        photo_path = Path(data["photo"])
        if not photo_path.is_absolute():
            photo_path = path.parent / photo_path
        if not photo_path.is_file():
            raise ValueError(f"photo not found: {photo_path}")
        photo = photo_path.read_bytes()
    return CardFace(
        name=data["name"].strip(),
        sex=sex,
        ssn=data["ssn"].strip(),
        card_number=data["card_number"].strip(),
        issue_date=issued,
        photo=photo,
    )


def run_render(args: argparse.Namespace) -> int:
    from kiosk.config import ConfigError, load_config
    from printer.cardface import CardFaceError, CardFaceRenderer, FaceLayout

    if not args.data.is_file():
        return print_error("cardface.no_data_file", f"no such file: {args.data}")
    try:
        face = _face_from_json(args.data)
    except (ValueError, OSError) as exc:
        return print_error("cardface.bad_data", str(exc))
    try:
        config = load_config(getattr(args, "profile", None))
    except ConfigError as exc:
        return print_error("config.invalid", str(exc))
    section = config.cardprinter
    try:
        renderer = CardFaceRenderer(
            FaceLayout.from_config(section.layout),
            config.kiosk.font_path,
            dpi=section.dpi,
            rotation_deg=section.face_rotation_deg,
            ribbon=section.ribbon,
        )
        rendered = renderer.render(face)
    except CardFaceError as exc:
        return print_error("cardface.render_failed", str(exc))
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_bytes(rendered.preview_png())
        panels: list[str] = []
        if args.panels is not None:
            args.panels.mkdir(parents=True, exist_ok=True)
            images = {"k": rendered.black}
            if rendered.colour is not None:
                images["colour"] = rendered.colour
            if rendered.overlay is not None:
                images["o"] = rendered.overlay
            for name, image in images.items():
                target = args.panels / f"panel_{name}.png"
                image.save(target)
                panels.append(str(target))
    except OSError as exc:
        return print_error("cardface.write_failed", str(exc))
    print_json(
        {
            "out": str(args.out),
            "width": rendered.preview.width,
            "height": rendered.preview.height,
            "ribbon": rendered.ribbon,
            "rotation_deg": section.face_rotation_deg,
            "panels": panels,
        }
    )
    return 0
