"""[camera] — camera, face match and liveness ([camera] and [face])

``simulate = true`` starts the simulator at the far end of the real link instead of opening
field hardware."""

from __future__ import annotations

from dataclasses import dataclass
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
    fourcc: str = "MJPG"
    # Simulator: image or video files played as the camera (relative paths from the repo root).
    sim_source: tuple[str, ...] = ()
    sim_fps: float = 30.0
    # Sensor grain of the simulator (a real sensor never repeats a frame; 0 = exact copies).
    sim_noise_sigma: float = 2.0
    # Simulated IR camera: "" none, "face" (sees the face), "blank" (sees none: a screen replay).
    sim_ir: str = ""

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0 or self.fps <= 0 or self.buffer_size < 1:
            raise ValueError("width, height, fps must be positive and buffer_size ≥ 1")
        if len(self.fourcc) != 4:
            raise ValueError("fourcc must be 4 characters (MJPG, YUYV)")
        if self.sim_ir not in ("", "face", "blank"):
            raise ValueError('sim_ir must be "", "face" or "blank"')


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
    # Detector input width (px): frames are downscaled to this before HOG detection.
    detect_width: int = 320
    # Liveness measures (docs/camera.md): blink = EAR below blink_ratio × the open-eye baseline;
    # a turn = yaw turn_deg beyond frontal; identity re-checked against this distance.
    blink_ratio: float = 0.75
    turn_deg: float = 15.0
    identity_distance: float = 0.6
    # Quality gate: smallest face width as a share of the frame width ("靠近一点" below it).
    min_face_width_ratio: float = 0.18
    # Card photo (358×441 JPEG): quality and the size it must stay under.
    card_photo_quality: int = 70
    card_photo_max_kb: int = 40
    # Start the face worker (model loading, ~2 s) at kiosk start and keep it between visits.
    warm_worker: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.accept_distance <= self.reject_distance < 1:
            raise ValueError("need 0 < accept_distance ≤ reject_distance < 1")
        if not 1 <= self.liveness_challenges <= 3:
            raise ValueError("liveness_challenges must be 1..3 (blink, turn left, turn right)")
        if self.liveness_time_limit_s <= 0 or self.failures_before_lock < 1 or self.lock_minutes < 1:
            raise ValueError("liveness_time_limit_s, failures_before_lock and lock_minutes must be positive")
        if not 0 < self.blink_ratio < 1 or self.turn_deg <= 0 or not 0 < self.identity_distance < 1:
            raise ValueError("need 0 < blink_ratio < 1, turn_deg > 0, 0 < identity_distance < 1")
        if not 30 <= self.card_photo_quality <= 95 or self.card_photo_max_kb < 10:
            raise ValueError("card_photo_quality must be 30..95 and card_photo_max_kb ≥ 10")
