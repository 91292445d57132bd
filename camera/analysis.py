"""Face measures from one frame (人脸分析): detection, 68 landmarks, eye aspect ratio, head pose, encoding.

Everything here is a pure function of the pixels handed in; nothing is kept or logged.
Detection runs on a downscaled copy (HOG cost grows with pixel count, research/hardware.md §4)
and boxes are mapped back to the full frame; landmarks and encodings use the full frame.
"""

from __future__ import annotations

import math
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from kiosk.devices.camera import FaceBox

_fr_lock = threading.Lock()
_fr_modules: tuple[Any, Any] | None = None


def _face_recognition() -> tuple[Any, Any]:
    """face_recognition and its api module, imported on first use: the import loads the dlib models
    (~1.5 s, ~150 MB), which only the face worker process and the tools need, not the kiosk's own
    process at start-up."""
    global _fr_modules
    with _fr_lock:
        if _fr_modules is None:
            with warnings.catch_warnings():
                # face_recognition_models imports pkg_resources (setuptools<81): a deprecation warning only.
                warnings.simplefilter("ignore", UserWarning)
                import face_recognition
                from face_recognition import api

            _fr_modules = (face_recognition, api)
        return _fr_modules

# 68-point indices (iBUG 300-W): eyes 36–41 (subject's right) and 42–47 (subject's left).
RIGHT_EYE = slice(36, 42)
LEFT_EYE = slice(42, 48)

# Generic 3-D head (mm) for solvePnP: nose tip, chin, eye outer corners, mouth corners
# (the six points of research/hardware.md §4, F6).
_MODEL_POINTS = np.array(
    [
        (0.0, 0.0, 0.0),  # nose tip 30
        (0.0, -330.0, -65.0),  # chin 8
        (-225.0, 170.0, -135.0),  # right eye outer corner 36 (image left)
        (225.0, 170.0, -135.0),  # left eye outer corner 45
        (-150.0, -150.0, -125.0),  # right mouth corner 48
        (150.0, -150.0, -125.0),  # left mouth corner 54
    ],
    dtype=np.float64,
)
_POSE_INDICES = (30, 8, 36, 45, 48, 54)

# dlib's models are shared C++ objects; calls from two threads at once are not documented as
# safe, so the analyser serialises them (the pipeline runs one worker anyway).
_DLIB_LOCK = threading.Lock()


@dataclass(frozen=True)
class FaceObservation:
    """One face in one frame: box, landmarks (68×2, float), and the measures derived from them."""

    box: FaceBox
    landmarks: Any = field(repr=False)
    eye_aspect_ratio: float
    # solvePnP yaw, positive = the citizen turned to their left (liveness compares it over frames).
    yaw_deg: float
    pitch_deg: float
    # Nose offset between the cheeks in rough degrees (quality gate: is the face frontal now).
    nose_offset_deg: float


def eye_aspect_ratio(landmarks: np.ndarray) -> float:
    """Mean EAR of both eyes: (|p2−p6| + |p3−p5|) / (2·|p1−p4|) (Soukupová & Čech 2016)."""

    def one(eye: np.ndarray) -> float:
        a = np.linalg.norm(eye[1] - eye[5])
        b = np.linalg.norm(eye[2] - eye[4])
        c = np.linalg.norm(eye[0] - eye[3])
        return float((a + b) / (2.0 * c)) if c > 0 else 0.0

    return (one(landmarks[RIGHT_EYE]) + one(landmarks[LEFT_EYE])) / 2.0


def nose_offset_deg(landmarks: np.ndarray) -> float:
    """How far the nose sits from midway between the cheeks (landmarks 2, 14, nose ridge 27–30).

    Positive = the nose toward the image's right (the citizen's left on an unmirrored frame). A
    frontal face gives ~0; the value is asin of the normalised offset, so it reads in rough
    degrees. Steady on real photos, so the quality gate uses it for "face the screen"; it hardly
    moves under a flat perspective warp, so liveness uses the solvePnP yaw instead.
    """
    left_cheek = landmarks[2]
    right_cheek = landmarks[14]
    nose = landmarks[27:31].mean(axis=0)
    span = right_cheek[0] - left_cheek[0]
    if span <= 0:
        return 0.0
    # 0 when the nose is midway, ±1 when it reaches a cheek.
    offset = ((nose[0] - left_cheek[0]) / span - 0.5) * 2.0
    return math.degrees(math.asin(max(-1.0, min(1.0, offset))))


def head_pose_pnp(landmarks: np.ndarray, frame_width: int, frame_height: int) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees by solvePnP against a generic head; focal ≈ frame width."""
    image_points = np.array([landmarks[i] for i in _POSE_INDICES], dtype=np.float64)
    focal = float(frame_width)
    camera = np.array(
        [[focal, 0, frame_width / 2.0], [0, focal, frame_height / 2.0], [0, 0, 1]], dtype=np.float64
    )
    ok, rvec, _ = cv2.solvePnP(_MODEL_POINTS, image_points, camera, np.zeros(4), flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        return (0.0, 0.0, 0.0)
    rotation, _ = cv2.Rodrigues(rvec)
    # Euler angles from the rotation matrix (x = pitch, y = yaw, z = roll).
    sy = math.hypot(rotation[0, 0], rotation[1, 0])
    pitch = math.degrees(math.atan2(rotation[2, 1], rotation[2, 2]))
    yaw = math.degrees(math.atan2(-rotation[2, 0], sy))
    roll = math.degrees(math.atan2(rotation[1, 0], rotation[0, 0]))
    # The model's y axis points up and the image's down: a level face gives pitch ≈ ±180.
    pitch = (pitch + 360.0) % 360.0 - 180.0
    return (yaw, pitch, roll)


class FaceAnalyzer:
    """Detects faces and measures them. ``detect_width``: width of the copy the detector sees."""

    def __init__(self, detect_width: int = 320, upsample: int = 1) -> None:
        self.detect_width = detect_width
        self.upsample = upsample

    def detect(self, rgb: np.ndarray, *, upsample: int | None = None) -> list[FaceBox]:
        """All faces, largest first, in full-frame pixels."""
        height, width = rgb.shape[:2]
        factor = 1.0
        small = rgb
        if width > self.detect_width:
            factor = width / self.detect_width
            small = cv2.resize(rgb, (self.detect_width, round(height / factor)), interpolation=cv2.INTER_AREA)
        with _DLIB_LOCK:
            face_recognition, _ = _face_recognition()
            found = face_recognition.face_locations(
                np.ascontiguousarray(small),
                number_of_times_to_upsample=self.upsample if upsample is None else upsample,
            )
        boxes = [FaceBox(*css).scaled(factor) for css in found]
        boxes = [_clip(b, width, height) for b in boxes]
        return sorted(boxes, key=lambda b: b.width * b.height, reverse=True)

    def landmarks(self, rgb: np.ndarray, box: FaceBox) -> np.ndarray:
        with _DLIB_LOCK:
            _, fr_api = _face_recognition()
            shape = fr_api.pose_predictor_68_point(rgb, fr_api._css_to_rect(box.as_css()))
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)

    def observe(self, rgb: np.ndarray, box: FaceBox) -> FaceObservation:
        points = self.landmarks(rgb, box)
        yaw, pitch, _ = head_pose_pnp(points, rgb.shape[1], rgb.shape[0])
        # solvePnP's yaw is negative when the nose swings to the image's right (citizen's left).
        return FaceObservation(box, points, eye_aspect_ratio(points), -yaw, pitch, nose_offset_deg(points))

    def encode(self, rgb: np.ndarray, box: FaceBox, *, jitters: int = 1) -> np.ndarray:
        """The 128-D face_recognition encoding (template, 特征值) of the face in ``box``."""
        with _DLIB_LOCK:
            face_recognition, _ = _face_recognition()
            encodings = face_recognition.face_encodings(
                np.ascontiguousarray(rgb), known_face_locations=[box.as_css()], num_jitters=jitters
            )
        return encodings[0]


def _clip(box: FaceBox, width: int, height: int) -> FaceBox:
    return FaceBox(max(0, box.top), min(width, box.right), min(height, box.bottom), max(0, box.left))


def face_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance of two encodings (face_recognition.face_distance)."""
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)))
