"""[camera] — camera, face match and liveness ([camera] and [face])

``simulate = true`` starts the simulator at the far end of the real link instead of opening
field hardware."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class CameraSection:
    simulate: bool = False
    device: str = "/dev/video0"
    ir_device: str = ""
    width: int = 640
    height: int = 480
    fps: int = 30
    buffer_size: int = 1
    # Simulator: image or video files played as the camera (relative paths from the repo root).
    sim_source: tuple[str, ...] = ()


@dataclass(frozen=True)
class FaceSection:
    """1:1 match and liveness (人证核验)."""

    # face_recognition distance: ≤ accept → accept; ≥ reject → reject; between → manual review.
    accept_distance: float = 0.45
    reject_distance: float = 0.55
    liveness_challenges: int = 2
    liveness_time_limit_s: float = 15.0
    failures_before_lock: int = 3
    lock_minutes: int = 30
    photo_dir: Path | None = None

    def __post_init__(self) -> None:
        if not 0 < self.accept_distance <= self.reject_distance < 1:
            raise ValueError("need 0 < accept_distance ≤ reject_distance < 1")
