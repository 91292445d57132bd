"""1:1 match of the live face against the ID card photo (人证比对).

The ID card chip photo is 102×126 px (research/idcard.md §3): its face is ~60 px wide, below
what the HOG detector finds (≳80 px). :meth:`FaceMatcher.encode_reference` therefore enlarges a
small photo (×3, cubic) before detecting, and when the detector still finds nothing it passes
the known face box of an ID photo (the head fills the centre of the frame by regulation).

The distance (Euclidean on the 128-D encodings) is banded by configuration:
≤ ``accept_distance`` accept, ≥ ``reject_distance`` reject, between: manual review (人工复核).
Encodings live in memory only and are never logged.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

import cv2
import numpy as np

from camera.analysis import FaceAnalyzer, face_distance
from camera.liveness import ChallengeSession, LivenessSettings
from kiosk.devices.camera import FaceBox, MatchResult, NoFace, SeveralFaces, UnreadableImage, decide

log = logging.getLogger(__name__)

# A reference smaller than this (longest side, px) is treated as an ID-card chip photo.
SMALL_PHOTO_PX = 300
_UPSCALE = 3


@dataclass(frozen=True)
class FaceTemplate:
    """A face encoding (特征值) and where it came from; personal data, memory only."""

    encoding: np.ndarray
    box: FaceBox
    assumed_box: bool = False  # True when the detector found nothing and the ID-photo box was used

    def __repr__(self) -> str:  # never print the template itself
        return f"FaceTemplate(box={self.box}, assumed_box={self.assumed_box})"


def id_photo_face_box(width: int, height: int) -> FaceBox:
    """Where the face sits in an ID card photo: centred, ~70 % of the width, upper-middle."""
    face_w = width * 0.7
    left = (width - face_w) / 2
    top = height * 0.22
    return FaceBox(round(top), round(left + face_w), round(top + face_w * 1.05), round(left))


class FaceMatcher:
    """face_recognition matching with accept/review/reject bands. Implements ``FaceVerifier``."""

    def __init__(
        self,
        analyzer: FaceAnalyzer | None = None,
        *,
        accept_distance: float = 0.45,
        reject_distance: float = 0.55,
        liveness: LivenessSettings | None = None,
        rng: random.Random | None = None,
        require_ir: bool = False,
    ) -> None:
        if not 0 < accept_distance <= reject_distance < 1:
            raise ValueError("need 0 < accept_distance ≤ reject_distance < 1")
        self.analyzer = analyzer or FaceAnalyzer()
        self.accept_distance = accept_distance
        self.reject_distance = reject_distance
        self.liveness = liveness or LivenessSettings()
        self._rng = rng
        self.require_ir = require_ir

    # ----------------------------------------------------------------- templates

    def encode_reference(self, rgb: np.ndarray) -> FaceTemplate:
        """Template of the single face in the reference (the ID card photo, or any photo)."""
        _check_image(rgb)
        height, width = rgb.shape[:2]
        if max(height, width) < SMALL_PHOTO_PX:
            big = cv2.resize(rgb, (width * _UPSCALE, height * _UPSCALE), interpolation=cv2.INTER_CUBIC)
            boxes = FaceAnalyzer(detect_width=big.shape[1], upsample=1).detect(big)
            if len(boxes) > 1:
                raise SeveralFaces("several faces in the reference photo")
            assumed = not boxes
            box = boxes[0] if boxes else id_photo_face_box(big.shape[1], big.shape[0])
            return FaceTemplate(self.analyzer.encode(big, box), box, assumed)
        return self._single(rgb, "reference")

    def encode_probe(self, rgb: np.ndarray, box: FaceBox | None = None) -> FaceTemplate:
        """Template of the live face; ``box`` when the pipeline already found it."""
        _check_image(rgb)
        if box is not None:
            return FaceTemplate(self.analyzer.encode(rgb, box), box)
        return self._single(rgb, "probe")

    def _single(self, rgb: np.ndarray, role: str) -> FaceTemplate:
        boxes = self.analyzer.detect(rgb)
        if not boxes:
            # A face that fills a large photo can be missed on the downscaled copy: try full size.
            boxes = FaceAnalyzer(detect_width=max(rgb.shape[1], 1), upsample=1).detect(rgb)
        if not boxes:
            raise NoFace(f"no face in the {role} image")
        if len(boxes) > 1:
            raise SeveralFaces(f"{len(boxes)} faces in the {role} image")
        return FaceTemplate(self.analyzer.encode(rgb, boxes[0]), boxes[0])

    # ----------------------------------------------------------------- decisions

    def compare(self, reference: FaceTemplate, probe: FaceTemplate) -> MatchResult:
        distance = round(face_distance(reference.encoding, probe.encoding), 4)
        decision = decide(distance, self.accept_distance, self.reject_distance)
        log.info("camera.match", extra={"decision": decision.value, "distance": distance})
        return MatchResult(distance, self.accept_distance, self.reject_distance, decision)

    def verify(self, reference_rgb: np.ndarray, probe_rgb: np.ndarray) -> MatchResult:
        return self.compare(self.encode_reference(reference_rgb), self.encode_probe(probe_rgb))

    def new_liveness_session(self) -> ChallengeSession:
        return ChallengeSession(self.analyzer, self.liveness, rng=self._rng, require_ir=self.require_ir)


def _check_image(rgb: object) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise UnreadableImage("expected an RGB uint8 image")
    if min(rgb.shape[:2]) < 32:
        raise UnreadableImage("image too small")
