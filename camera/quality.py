"""Quality gate (人脸质量检测) before anything is matched or kept.

Checks, in the order the hint is chosen: exactly one face; the face whole in the frame; size
(near/far); position (centred); frontal pose; sharpness; brightness; eyes open; forehead
uncovered (hat). Every failure is a :class:`QualityIssue` whose message key
(``camera.hint.*``) carries a short spoken/written hint in the catalogs ("靠近一点", "请摘下帽子").
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from camera.analysis import FaceAnalyzer, FaceObservation
from kiosk.devices.camera import FaceBox, QualityIssue, QualityMeasures, QualityResult


@dataclass(frozen=True)
class QualityThresholds:
    """Limits of the gate. Ratios are of the frame width; the defaults suit a 640×480 kiosk camera
    at arm's length (face ≈ 120–300 px wide)."""

    min_face_width_ratio: float = 0.18
    max_face_width_ratio: float = 0.50
    max_centre_offset: float = 0.22  # distance of the face centre from the frame centre / frame width
    edge_margin_px: int = 2  # a box touching the border means part of the face is outside
    max_nose_offset_deg: float = 20.0
    max_pitch_deg: float = 25.0
    min_sharpness: float = 60.0  # variance of the Laplacian of the face resized to 128 px wide
    min_brightness: float = 60.0
    max_brightness: float = 215.0
    min_eye_aspect_ratio: float = 0.15
    max_forehead_contrast: float = 45.0  # ΔE (CIELAB) between forehead and cheeks
    # A second face smaller than this share of the main face's width is a passer-by far behind.
    other_face_min_ratio: float = 0.5


def measure_sharpness(grey_face: np.ndarray) -> float:
    """Variance of the Laplacian on the face scaled to 128 px wide (scale-independent focus measure)."""
    height, width = grey_face.shape[:2]
    if width < 8 or height < 8:
        return 0.0
    scaled = cv2.resize(grey_face, (128, max(8, round(height * 128 / width))), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(scaled, cv2.CV_64F).var())


def forehead_contrast(rgb: np.ndarray, landmarks: np.ndarray) -> float:
    """Colour difference (ΔE in CIELAB) between the forehead above the brows and the cheeks.

    A cap or hat brim over the forehead gives a large difference; bare skin a small one. Long
    fringes do too: the hint asks to uncover the forehead, which is what the card photo needs.
    """
    brows = landmarks[17:27]
    eye_line = landmarks[36:48, 1].mean()
    brow_y = brows[:, 1].min()
    band = max(3.0, (eye_line - brow_y) * 0.8)
    x0, x1 = int(landmarks[19, 0]), int(landmarks[24, 0])
    y1 = int(brow_y - band * 0.3)
    y0 = int(y1 - band)
    cheek_y0, cheek_y1 = int(landmarks[29, 1]), int(landmarks[30, 1] + band * 0.3)
    cx0, cx1 = int(landmarks[40, 0]), int(landmarks[47, 0])
    height, width = rgb.shape[:2]
    if y0 < 0 or x1 <= x0 or cx1 <= cx0 or cheek_y1 > height or x1 > width:
        return 0.0
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
    # OpenCV's 8-bit Lab: L scaled to 0–255; bring it back to 0–100 for a true ΔE.
    lab[..., 0] *= 100.0 / 255.0
    forehead = lab[y0:y1, x0:x1].reshape(-1, 3).mean(axis=0)
    cheeks = np.concatenate(
        [
            lab[cheek_y0:cheek_y1, cx0 - (cx1 - cx0) // 4 : cx0].reshape(-1, 3),
            lab[cheek_y0:cheek_y1, cx1 : cx1 + (cx1 - cx0) // 4].reshape(-1, 3),
        ]
    )
    if cheeks.size == 0:
        return 0.0
    return float(np.linalg.norm(forehead - cheeks.mean(axis=0)))


class QualityGate:
    """Assesses one RGB frame. Stateless apart from its thresholds and analyser."""

    def __init__(
        self, analyzer: FaceAnalyzer | None = None, thresholds: QualityThresholds | None = None
    ) -> None:
        self.analyzer = analyzer or FaceAnalyzer()
        self.thresholds = thresholds or QualityThresholds()

    def main_faces(self, boxes: list[FaceBox]) -> list[FaceBox]:
        """The faces that count: the largest and any other at least ``other_face_min_ratio`` its width."""
        if not boxes:
            return []
        main = boxes[0]
        return [b for b in boxes if b is main or b.width >= main.width * self.thresholds.other_face_min_ratio]

    def assess(
        self, rgb: np.ndarray, boxes: list[FaceBox] | None = None, observation: FaceObservation | None = None
    ) -> QualityResult:
        """Runs every check; ``boxes``/``observation`` may be passed when already computed."""
        t = self.thresholds
        if boxes is None:
            boxes = self.analyzer.detect(rgb)
        faces = self.main_faces(boxes)
        if not faces:
            return QualityResult((QualityIssue.NO_FACE,), None)
        if len(faces) > 1:
            return QualityResult((QualityIssue.SEVERAL_FACES,), faces[0])
        box = faces[0]
        height, width = rgb.shape[:2]
        issues: list[QualityIssue] = []
        m = t.edge_margin_px
        if box.left <= m or box.top <= m or box.right >= width - m or box.bottom >= height - m:
            issues.append(QualityIssue.FACE_CUT_OFF)
        width_ratio = box.width / width
        if width_ratio < t.min_face_width_ratio:
            issues.append(QualityIssue.TOO_FAR)
        elif width_ratio > t.max_face_width_ratio:
            issues.append(QualityIssue.TOO_CLOSE)
        cx, cy = box.centre
        offset = float(np.hypot(cx - width / 2, cy - height / 2) / width)
        if offset > t.max_centre_offset:
            issues.append(QualityIssue.OFF_CENTRE)
        obs = observation or self.analyzer.observe(rgb, box)
        if abs(obs.nose_offset_deg) > t.max_nose_offset_deg or abs(obs.pitch_deg) > t.max_pitch_deg:
            issues.append(QualityIssue.NOT_FRONTAL)
        grey = cv2.cvtColor(rgb[box.top : box.bottom, box.left : box.right], cv2.COLOR_RGB2GRAY)
        # Light before focus: a dark face also has a weak Laplacian, and light is the fix then.
        brightness = float(grey.mean()) if grey.size else 0.0
        if brightness < t.min_brightness:
            issues.append(QualityIssue.TOO_DARK)
        elif brightness > t.max_brightness:
            issues.append(QualityIssue.TOO_BRIGHT)
        sharpness = measure_sharpness(grey)
        if sharpness < t.min_sharpness and issues[-1:] != [QualityIssue.TOO_DARK]:
            issues.append(QualityIssue.BLURRY)
        if obs.eye_aspect_ratio < t.min_eye_aspect_ratio:
            issues.append(QualityIssue.EYES_CLOSED)
        contrast = forehead_contrast(rgb, obs.landmarks)
        if contrast > t.max_forehead_contrast:
            issues.append(QualityIssue.HEAD_COVERED)
        measures = QualityMeasures(
            face_width_ratio=round(width_ratio, 3),
            centre_offset=round(offset, 3),
            yaw_deg=round(obs.nose_offset_deg, 1),
            pitch_deg=round(obs.pitch_deg, 1),
            sharpness=round(sharpness, 1),
            brightness=round(brightness, 1),
            eye_aspect_ratio=round(obs.eye_aspect_ratio, 3),
            forehead_contrast=round(contrast, 1),
        )
        return QualityResult(tuple(issues), box, measures)
