"""Scenes for the simulated camera (模拟取景): live frames, ID-card-sized photos and edited frames
built from still photos, so liveness and matching can be exercised without a person.

- :func:`live_frame` places a photo's face in a 640×480 frame as a kiosk camera would see it.
- :func:`id_card_photo` makes a 102×126 image like the ID card chip photo (身份证照片).
- :func:`close_eyes` paints the eyes shut (skin-coloured lids and a lash line) and returns the EAR
  measured before and after, so callers check the edit with the measure itself.
- :func:`turn_head` shifts the middle of the face sideways so the nose moves towards one cheek,
  the 2-D signature of a head turn.
- :func:`blink_and_turn_script` strings these into a frame sequence for a liveness session.

A perspective warp of a flat photo is not a head turning (no parallax, no occlusion); these
scenes test the measuring and the session logic, not resistance to attacks (docs/camera.md).
"""

from __future__ import annotations

import cv2
import numpy as np

from camera.analysis import LEFT_EYE, RIGHT_EYE, FaceAnalyzer
from kiosk.devices.camera import FaceBox, LivenessChallenge

FRAME_SIZE = (640, 480)
ID_PHOTO_SIZE = (102, 126)


def live_frame(
    photo_rgb: np.ndarray,
    box: FaceBox,
    *,
    size: tuple[int, int] = FRAME_SIZE,
    face_width_ratio: float = 0.32,
    centre: tuple[float, float] = (0.5, 0.45),
) -> np.ndarray:
    """The photo scaled and shifted so its face is ``face_width_ratio`` of the frame width at ``centre``."""
    width, height = size
    scale = face_width_ratio * width / max(1, box.width)
    cx, cy = box.centre
    tx = centre[0] * width - cx * scale
    ty = centre[1] * height - cy * scale
    matrix = np.array([[scale, 0, tx], [0, scale, ty]], dtype=np.float64)
    return cv2.warpAffine(
        photo_rgb,
        matrix,
        (width, height),
        flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )


def id_card_photo(photo_rgb: np.ndarray, box: FaceBox) -> np.ndarray:
    """A 102×126 head-and-shoulders crop like the ID card photo (the face ≈ 60 % of the width)."""
    out_w, out_h = ID_PHOTO_SIZE
    crop_w = box.width / 0.6
    crop_h = crop_w * out_h / out_w
    cx, cy = box.centre
    top = cy - crop_h * 0.45
    left = cx - crop_w / 2
    src = np.float32([[left, top], [left + crop_w, top], [left, top + crop_h]])
    dst = np.float32([[0, 0], [out_w, 0], [0, out_h]])
    matrix = cv2.getAffineTransform(src, dst)
    return cv2.warpAffine(
        photo_rgb, matrix, (out_w, out_h), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE
    )


# Edit variants (lid curve sag, lid thickness, padding; all × eye width). The 68-point predictor
# regresses the whole face shape, so which edit it reads as shut differs from face to face; the
# variants are tried and the measure picks (research: "checked by the measure itself").
_LID_VARIANTS = tuple(
    (sag, thick, pad) for thick in (0.12, 0.06) for pad in (0.25, 0.5) for sag in (0.0, 0.1, 0.2)
)


def _paint_closed(
    frame_rgb: np.ndarray, landmarks: np.ndarray, sag: float, thick: float, padf: float
) -> np.ndarray:
    out = frame_rgb.copy()
    height, width = out.shape[:2]
    for eye in (landmarks[RIGHT_EYE], landmarks[LEFT_EYE]):
        corner_l, corner_r = eye[0], eye[3]
        eye_w = float(np.linalg.norm(corner_r - corner_l))
        pad = eye_w * padf
        x0, x1 = max(0, int(eye[:, 0].min() - pad)), min(width, int(eye[:, 0].max() + pad))
        y0, y1 = max(0, int(eye[:, 1].min() - pad)), min(height, int(eye[:, 1].max() + pad))
        # Skin sampled from the cheek just below the eye.
        sy0, sy1 = y1 + int(pad), y1 + int(pad + max(3, eye_w * 0.3))
        sample = out[sy0:sy1, x0:x1].reshape(-1, 3)
        skin = np.median(sample, axis=0) if len(sample) else np.array([180, 140, 120])
        corner_y = (corner_l[1] + corner_r[1]) / 2
        centre = (int((corner_l[0] + corner_r[0]) / 2), int(corner_y))
        cv2.ellipse(
            out,
            centre,
            (int(eye_w / 2 + pad), int((y1 - y0) / 2)),
            0,
            0,
            360,
            tuple(int(c) for c in skin),
            -1,
        )
        out[y0:y1, x0:x1] = cv2.GaussianBlur(out[y0:y1, x0:x1], (0, 0), max(1.0, eye_w * 0.08))
        # The closed lid: a dark curve from corner to corner (quadratic Bézier).
        mid = np.array([(corner_l[0] + corner_r[0]) / 2, corner_y + sag * eye_w])
        ts = np.linspace(0, 1, 12)[:, None]
        curve = (1 - ts) ** 2 * corner_l + 2 * (1 - ts) * ts * mid + ts**2 * corner_r
        cv2.polylines(
            out, [curve.astype(np.int32)], False, (40, 30, 30), max(1, round(eye_w * thick)), cv2.LINE_AA
        )
    return out


def close_eyes(
    frame_rgb: np.ndarray, box: FaceBox, analyzer: FaceAnalyzer
) -> tuple[np.ndarray, float, float]:
    """Paints both eyes shut; returns (edited frame, EAR before, EAR after) for the variant the
    eye-aspect-ratio measure reads as most closed. The caller decides whether that is shut enough.
    """
    landmarks = analyzer.landmarks(frame_rgb, box)
    open_ear = analyzer.observe(frame_rgb, box).eye_aspect_ratio
    best: tuple[np.ndarray, float] | None = None
    rng = np.random.default_rng(0)
    for sag, thick, pad in _LID_VARIANTS:
        edited = _paint_closed(frame_rgb, landmarks, sag, thick, pad)
        # Judged as a camera would deliver it: the worst EAR of the clean edit and two grainy copies,
        # so the chosen edit reads closed under sensor noise too, not only on the exact pixels.
        ear = max(
            analyzer.observe(img, box).eye_aspect_ratio
            for img in (edited, add_sensor_noise(edited, rng), add_sensor_noise(edited, rng))
        )
        if best is None or ear < best[1]:
            best = (edited, ear)
        if ear < open_ear * 0.6:
            break
    assert best is not None
    return best[0], open_ear, best[1]


def turn_head(frame_rgb: np.ndarray, box: FaceBox, degrees: float) -> np.ndarray:
    """Warps the face so it looks turned by ``degrees`` (positive = the citizen's left).

    On a turning head the middle of the face (nose, eyes, mouth) swings towards one side while the
    outline of the head hardly moves. The warp does that: a horizontal shift of the face's middle,
    strongest at the centre of the face box and fading to nothing at its edges, so the landmarks
    move against the jaw line as they do on a real turn (a flat trapezoid warp of the whole face
    moved them together and read as no turn, or the wrong one, on faces not quite frontal).
    """
    height, width = frame_rgb.shape[:2]
    cx, cy = box.centre
    shift = float(np.sin(np.radians(degrees))) * 0.45 * box.width  # > 0: towards the image's right
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    weight = np.exp(-(((xs - cx) / (box.width * 0.38)) ** 2 + ((ys - cy) / (box.height * 0.55)) ** 2) / 2)
    return cv2.remap(
        frame_rgb, xs - shift * weight.astype(np.float32), ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def add_sensor_noise(frame_rgb: np.ndarray, rng: np.random.Generator, sigma: float = 2.0) -> np.ndarray:
    """A real sensor never gives two identical frames; simulated frames get the same grain."""
    noise = rng.normal(0.0, sigma, frame_rgb.shape)
    return np.clip(frame_rgb.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def blink_and_turn_script(
    frame_rgb: np.ndarray,
    challenges: tuple[LivenessChallenge, ...],
    analyzer: FaceAnalyzer,
    *,
    hold: int = 4,
    turn_degrees: float = 35.0,
    ramp: int | None = None,
) -> list[np.ndarray]:
    """Frames of a person doing ``challenges`` in order, from one frontal ``frame_rgb``.

    Each action: ``hold`` frontal frames, then the action (eyes shut for ``hold`` frames, or a turn
    in three steps of ``ramp`` frames each (default ``hold // 2``), then held ``hold`` frames),
    then frontal again. Raises ValueError if the frame has no face.
    """
    boxes = analyzer.detect(frame_rgb)
    if not boxes:
        raise ValueError("no face in the frame to script")
    box = boxes[0]
    frames: list[np.ndarray] = [frame_rgb] * hold
    closed = None
    for challenge in challenges:
        if challenge is LivenessChallenge.BLINK:
            if closed is None:
                closed, _, _ = close_eyes(frame_rgb, box, analyzer)
            frames += [closed] * hold
        else:
            sign = 1.0 if challenge is LivenessChallenge.TURN_LEFT else -1.0
            for step in (0.4, 0.75, 1.0):
                frames += [turn_head(frame_rgb, box, sign * turn_degrees * step)] * max(1, ramp or hold // 2)
            frames += [turn_head(frame_rgb, box, sign * turn_degrees)] * hold
        frames += [frame_rgb] * hold
    return frames
