"""``kiosk face``: 1:1 match of two photos and the card photo from a photo (人证比对 / 制卡照片).

- ``kiosk face verify REFERENCE PROBE [--json]`` prints ``{"match", "distance", "threshold",
  "decision"}``; exit 0 accepted, 1 not, 2 with an ``error`` object (``no_face``,
  ``several_faces``, ``unreadable_image``).
- ``kiosk face cardphoto INPUT OUTPUT.jpg`` writes the 358×441 card photo or exits 2 when the
  quality gate refuses the photo.

Bands come from ``[face]`` in the configuration unless given on the command line.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from kiosk.commands._common import print_error, print_json
from kiosk.config import ConfigError, FaceSection, load_config

# face_recognition takes ~1.5 s to import: imported inside the commands so `kiosk --help` stays fast.


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("face", help="face match and card photo from image files")
    sub = parser.add_subparsers(dest="face_command", metavar="ACTION")
    verify = sub.add_parser("verify", help="compare the single face of two images (ID photo, live photo)")
    verify.add_argument("reference", help="reference image (the ID card photo)")
    verify.add_argument("probe", help="probe image (the live photo)")
    verify.add_argument("--json", action="store_true", help="print JSON (the default output is JSON too)")
    verify.add_argument("--accept-distance", type=float, help="override [face] accept_distance")
    verify.add_argument("--reject-distance", type=float, help="override [face] reject_distance")
    verify.set_defaults(func=_verify)
    card = sub.add_parser("cardphoto", help="write the 358×441 card photo (白底证件照) from a photo")
    card.add_argument("input", help="photo of the citizen")
    card.add_argument("output", help="output JPEG path")
    card.set_defaults(func=_cardphoto)
    parser.set_defaults(func=lambda args: _help(parser))


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 0


def _face_section(args: argparse.Namespace) -> FaceSection:
    return load_config(getattr(args, "profile", None)).face


_ERROR_CODES = {
    "camera.no_face": "no_face",
    "camera.several_faces": "several_faces",
    "camera.unreadable_image": "unreadable_image",
}


def _verify(args: argparse.Namespace) -> int:
    from camera.capture import read_image_rgb
    from camera.match import FaceMatcher
    from kiosk.devices.camera import FaceImageError

    try:
        section = _face_section(args)
    except ConfigError as exc:
        return print_error("config", str(exc))
    try:
        accept = args.accept_distance if args.accept_distance is not None else section.accept_distance
        reject = args.reject_distance if args.reject_distance is not None else section.reject_distance
        matcher = FaceMatcher(accept_distance=accept, reject_distance=max(accept, reject))
    except ValueError as exc:
        return print_error("bad_threshold", str(exc))
    try:
        result = matcher.verify(read_image_rgb(args.reference), read_image_rgb(args.probe))
    except FaceImageError as exc:
        return print_error(_ERROR_CODES.get(exc.code, "unreadable_image"), str(exc))
    print_json(
        {
            "match": result.match,
            "distance": round(result.distance, 3),
            "threshold": result.accept_distance,
            "decision": result.decision.value,
            "review_below": result.reject_distance,
        }
    )
    return 0 if result.match else 1


def _cardphoto(args: argparse.Namespace) -> int:
    from camera.analysis import FaceAnalyzer
    from camera.capture import read_image_rgb
    from camera.cardphoto import CardPhotoSpec, make_card_photo
    from camera.quality import QualityGate
    from camera.scenes import live_frame
    from kiosk.devices.camera import FaceImageError

    output = Path(args.output)
    if output.suffix.lower() not in (".jpg", ".jpeg"):
        return print_error("bad_output", "the output must be a .jpg file")
    try:
        photo = read_image_rgb(args.input)
    except FaceImageError as exc:
        return print_error("unreadable_image", str(exc))
    try:
        section = _face_section(args)
    except ConfigError as exc:
        return print_error("config", str(exc))
    # A photo file can be any size: find the face on a copy about as large as a camera frame
    # gives, then judge it in a 640×480 frame as the kiosk camera would see it.
    finder = FaceAnalyzer(detect_width=min(photo.shape[1], 800))
    boxes = finder.detect(photo)
    gate = QualityGate(FaceAnalyzer(detect_width=640))
    faces = gate.main_faces(boxes)
    if not faces:
        return print_error("no_face", "no face in the photo")
    if len(faces) > 1:
        return print_error("several_faces", f"{len(faces)} faces in the photo")
    box = faces[0]
    height, width = photo.shape[:2]
    if box.left <= 2 or box.top <= 2 or box.right >= width - 2 or box.bottom >= height - 2:
        return print_error("quality:face_cut_off", "the face is cut off by the photo's edge")
    frame = live_frame(photo, box)
    quality = gate.assess(frame)
    if not quality.ok or quality.face is None:
        issues = [i.value for i in quality.issues]
        return print_error(f"quality:{issues[0]}", "quality gate refused the photo: " + ", ".join(issues))
    spec = CardPhotoSpec(jpeg_quality=section.card_photo_quality, max_bytes=section.card_photo_max_kb * 1024)
    card = make_card_photo(frame, quality.face, spec)
    try:
        output.write_bytes(card.jpeg)
    except OSError as exc:
        return print_error("unwritable_output", exc.strerror or "cannot write the output")
    print_json(
        {
            "output": str(output),
            "width": card.width,
            "height": card.height,
            "bytes": len(card.jpeg),
            "quality": card.quality,
        }
    )
    return 0
