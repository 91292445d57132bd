"""The card photo (制卡照片) taken on the spot: 358×441 JPEG, white background, face centred.

Regional rule (DOMAIN.md, research/tender-requirements.md F7): 358×441 px, JPG, white
background, no hat, < 50 KB. The face is placed at a fixed size and position, the background
is separated with OpenCV's GrabCut seeded by the face box (the face: sure foreground; the head
and shoulders around it: probable foreground; the frame's upper corners: sure background) and
painted white, and the JPEG is written at quality ~70, lowered step by step if it would exceed
the size limit. The bytes are returned; writing them anywhere is the caller's decision.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from kiosk.devices.camera import FaceBox


@dataclass(frozen=True)
class CardPhotoSpec:
    width: int = 358
    height: int = 441
    face_width_ratio: float = 0.42  # detector face box width / photo width
    face_centre_y_ratio: float = 0.46  # face box centre height / photo height
    jpeg_quality: int = 70
    min_jpeg_quality: int = 40
    max_bytes: int = 40 * 1024
    grabcut_iterations: int = 4


@dataclass(frozen=True)
class CardPhoto:
    """The encoded card photo; personal data, memory only (``repr`` shows no bytes)."""

    jpeg: bytes
    width: int
    height: int
    quality: int
    background_white_ratio: float

    def __repr__(self) -> str:
        return f"CardPhoto({self.width}x{self.height}, {len(self.jpeg)} bytes, q={self.quality})"


def frame_to_card(rgb: np.ndarray, box: FaceBox, spec: CardPhotoSpec) -> tuple[np.ndarray, FaceBox]:
    """Scales and crops the frame so the face has the specified size and position."""
    scale = spec.face_width_ratio * spec.width / max(1, box.width)
    cx, cy = box.centre
    tx = spec.width / 2 - cx * scale
    ty = spec.face_centre_y_ratio * spec.height - cy * scale
    matrix = np.array([[scale, 0, tx], [0, scale, ty]], dtype=np.float64)
    card = cv2.warpAffine(
        rgb,
        matrix,
        (spec.width, spec.height),
        flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return card, FaceBox(
        round(box.top * scale + ty),
        round(box.right * scale + tx),
        round(box.bottom * scale + ty),
        round(box.left * scale + tx),
    )


def person_mask(card: np.ndarray, face: FaceBox, iterations: int = 4) -> np.ndarray:
    """Foreground (person) mask 0..1 float by GrabCut seeded from the face box."""
    height, width = card.shape[:2]
    mask = np.full((height, width), cv2.GC_PR_BGD, np.uint8)
    fw, fh = face.width, face.height
    cx = (face.left + face.right) // 2
    # Head (hair above the brows, ears) and shoulders below: probably the person.
    cv2.ellipse(
        mask, (cx, face.top + fh // 3), (int(fw * 0.85), int(fh * 1.05)), 0, 0, 360, cv2.GC_PR_FGD, -1
    )
    shoulders_top = face.bottom + fh // 5
    cv2.rectangle(
        mask,
        (max(0, cx - int(fw * 1.6)), shoulders_top),
        (min(width - 1, cx + int(fw * 1.6)), height - 1),
        cv2.GC_PR_FGD,
        -1,
    )
    cv2.rectangle(mask, (cx - fw // 2, face.bottom), (cx + fw // 2, shoulders_top), cv2.GC_PR_FGD, -1)
    # The face itself (inset) and the neck: surely the person.
    inset_x, inset_y = fw // 6, fh // 8
    cv2.rectangle(
        mask,
        (face.left + inset_x, face.top + inset_y),
        (face.right - inset_x, face.bottom - inset_y),
        cv2.GC_FGD,
        -1,
    )
    # The upper corners beside the head: surely background.
    corner_w = max(4, (width - int(fw * 2.0)) // 2)
    corner_h = max(4, face.top + fh // 3)
    mask[:corner_h, :corner_w] = cv2.GC_BGD
    mask[:corner_h, width - corner_w :] = cv2.GC_BGD
    mask[:4, :] = cv2.GC_BGD
    bgd_model = np.zeros((1, 65), np.float64)
    fgd_model = np.zeros((1, 65), np.float64)
    bgr = cv2.cvtColor(card, cv2.COLOR_RGB2BGR)
    cv2.grabCut(bgr, mask, None, bgd_model, fgd_model, iterations, cv2.GC_INIT_WITH_MASK)
    fg = np.where((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD), 1.0, 0.0).astype(np.float32)
    # Keep the component holding the face; drop islands of background taken for the person.
    count, labels = cv2.connectedComponents((fg > 0).astype(np.uint8))
    if count > 2:
        keep = labels[(face.top + face.bottom) // 2, cx]
        fg = (labels == keep).astype(np.float32)
    return cv2.GaussianBlur(fg, (0, 0), 1.5)


def make_card_photo(rgb: np.ndarray, box: FaceBox, spec: CardPhotoSpec | None = None) -> CardPhoto:
    """The card photo from a frame that passed the quality gate and the face box in it."""
    spec = spec or CardPhotoSpec()
    card, face = frame_to_card(rgb, box, spec)
    alpha = person_mask(card, face, spec.grabcut_iterations)[..., None]
    white = np.full_like(card, 255, dtype=np.float32)
    out = np.clip(card.astype(np.float32) * alpha + white * (1 - alpha), 0, 255).astype(np.uint8)
    background_white = float((alpha[..., 0] < 0.05).mean())
    quality = spec.jpeg_quality
    bgr = cv2.cvtColor(out, cv2.COLOR_RGB2BGR)
    while True:
        ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise ValueError("JPEG encoding failed")
        if len(encoded) <= spec.max_bytes or quality <= spec.min_jpeg_quality:
            break
        quality -= 5
    return CardPhoto(encoded.tobytes(), spec.width, spec.height, quality, round(background_white, 3))


def chip_copy(jpeg: bytes, max_bytes: int = 4096, width: int = 102, height: int = 126) -> bytes:
    """The chip's copy of the card photo (EF08 holds at most ``max_bytes``): the same picture
    scaled down and re-encoded, quality lowered step by step until it fits."""
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("the card photo is not a readable JPEG")
    small = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    for quality in range(80, 9, -5):
        ok, encoded = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok and len(encoded) <= max_bytes:
            return encoded.tobytes()
    raise ValueError(f"the chip photo does not fit in {max_bytes} bytes")
