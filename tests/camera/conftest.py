"""Camera fixtures: the test photos as RGB, 640×480 live frames and 102×126 ID photos built from
them, and one shared analyser. Session-scoped: face_recognition costs ~30–90 ms a call here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from camera.analysis import FaceAnalyzer
from camera.capture import read_image_rgb
from camera.match import FaceMatcher
from camera.scenes import id_card_photo, live_frame
from kiosk.devices.camera import FaceBox


@dataclass(frozen=True)
class Portrait:
    name: str
    photo: np.ndarray
    box: FaceBox  # in the photo
    frame: np.ndarray  # 640×480 live frame
    id_photo: np.ndarray  # 102×126


PORTRAIT_FILES = ("obama.jpg", "obama2.jpg", "obama3.jpg", "obama-240p.jpg", "biden.jpg", "biden2.jpg")


@pytest.fixture(scope="session")
def analyzer() -> FaceAnalyzer:
    return FaceAnalyzer()


@pytest.fixture(scope="session")
def matcher(analyzer: FaceAnalyzer) -> FaceMatcher:
    return FaceMatcher(analyzer, accept_distance=0.45, reject_distance=0.55)


@pytest.fixture(scope="session")
def portraits(faces_dir: Path) -> dict[str, Portrait]:
    finder = FaceAnalyzer(detect_width=800)
    out = {}
    for name in PORTRAIT_FILES:
        photo = read_image_rgb(faces_dir / name)
        box = finder.detect(photo)[0]
        out[name] = Portrait(name, photo, box, live_frame(photo, box), id_card_photo(photo, box))
    return out


@pytest.fixture(scope="session")
def frame_boxes(portraits: dict[str, Portrait], analyzer: FaceAnalyzer) -> dict[str, FaceBox]:
    return {name: analyzer.detect(p.frame)[0] for name, p in portraits.items()}
