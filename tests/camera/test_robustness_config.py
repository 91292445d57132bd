"""Random frames never crash the gate or a liveness session; the config sections refuse nonsense."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from camera.liveness import ChallengeSession, LivenessSettings
from camera.quality import QualityGate
from kiosk.config.dev_camera import CameraSection, FaceSection
from kiosk.devices.camera import CapturedFrame, LivenessChallenge, QualityIssue


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), height=st.integers(40, 300), width=st.integers(40, 400))
def test_random_frames_never_crash_the_gate_or_the_session(analyzer, seed, height, width) -> None:
    rng = np.random.default_rng(seed)
    frame = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    result = QualityGate(analyzer).assess(frame)
    assert result.ok or result.issues
    session = ChallengeSession(
        analyzer, LivenessSettings(challenges=1), challenges=(LivenessChallenge.BLINK,)
    )
    progress = session.feed(CapturedFrame(1, 0.0, frame))
    assert progress.total == 1


def test_noise_frames_have_no_face(analyzer) -> None:
    frame = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    assert QualityGate(analyzer).assess(frame).issues == (QualityIssue.NO_FACE,)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"accept_distance": 0.6, "reject_distance": 0.5},
        {"liveness_challenges": 4},
        {"blink_ratio": 1.2},
        {"card_photo_quality": 10},
        {"lock_minutes": 0},
    ],
)
def test_face_section_refuses_bad_values(kwargs) -> None:
    with pytest.raises(ValueError):
        FaceSection(**kwargs)


def test_camera_section_refuses_bad_values() -> None:
    with pytest.raises(ValueError):
        CameraSection(fourcc="MJPEG")
    with pytest.raises(ValueError):
        CameraSection(sim_ir="screen")
    assert CameraSection().buffer_size == 1 and FaceSection().accept_distance == 0.45
