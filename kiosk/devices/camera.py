"""Camera and face verification (摄像头 / 人证核验): what the core calls.

The core asks for three things: a live frame source (实时取景), a liveness session (活体检测) that
consumes frames and says whether the person at the kiosk moved as asked, and a 1:1 match (人证比对)
of the live face against the ID card photo. Frames are RGB ``numpy`` arrays (H×W×3, uint8); they
are typed ``Any`` here because this module is stdlib only.

Photos and face templates are personal data (个人信息): values here hold them in memory only and
never print them (``repr=False``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from kiosk.devices import Audience, DeviceError, DeviceStatus

# --------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class FaceBox:
    """A face's bounding box in pixels of the frame it was found in (face_recognition order)."""

    top: int
    right: int
    bottom: int
    left: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def centre(self) -> tuple[float, float]:
        return ((self.left + self.right) / 2.0, (self.top + self.bottom) / 2.0)

    def scaled(self, factor: float) -> FaceBox:
        return FaceBox(
            round(self.top * factor),
            round(self.right * factor),
            round(self.bottom * factor),
            round(self.left * factor),
        )

    def as_css(self) -> tuple[int, int, int, int]:
        """(top, right, bottom, left), the order face_recognition takes."""
        return (self.top, self.right, self.bottom, self.left)


@dataclass(frozen=True)
class CapturedFrame:
    """One frame from a source: RGB image, optional IR image (grey, H×W), capture time (monotonic s)."""

    index: int
    captured_at: float
    rgb: Any = field(repr=False)
    ir: Any = field(default=None, repr=False)


class QualityIssue(enum.Enum):
    """Why a frame is not good enough to match or to keep (质量检测). Value = message key suffix."""

    NO_FACE = "no_face"
    SEVERAL_FACES = "several_faces"
    FACE_CUT_OFF = "face_cut_off"
    TOO_FAR = "too_far"
    TOO_CLOSE = "too_close"
    OFF_CENTRE = "off_centre"
    NOT_FRONTAL = "not_frontal"
    BLURRY = "blurry"
    TOO_DARK = "too_dark"
    TOO_BRIGHT = "too_bright"
    EYES_CLOSED = "eyes_closed"
    HEAD_COVERED = "head_covered"

    @property
    def message_key(self) -> str:
        return f"camera.hint.{self.value}"


@dataclass(frozen=True, slots=True)
class QualityMeasures:
    """The figures behind a quality verdict (engineer menu, calibration); no image data."""

    face_width_ratio: float = 0.0
    centre_offset: float = 0.0
    yaw_deg: float = 0.0
    pitch_deg: float = 0.0
    sharpness: float = 0.0
    brightness: float = 0.0
    eye_aspect_ratio: float = 0.0
    forehead_contrast: float = 0.0


@dataclass(frozen=True, slots=True)
class QualityResult:
    """Verdict of the quality gate: ``ok`` or the issues found, the most useful first."""

    issues: tuple[QualityIssue, ...]
    face: FaceBox | None
    measures: QualityMeasures = QualityMeasures()

    @property
    def ok(self) -> bool:
        return not self.issues

    @property
    def hint_key(self) -> str:
        """The one hint to show and speak now (``camera.hint.ok`` when nothing is wrong)."""
        return self.issues[0].message_key if self.issues else "camera.hint.ok"


class LivenessChallenge(enum.Enum):
    """An action the citizen is asked to do (活体动作)."""

    BLINK = "blink"
    TURN_LEFT = "turn_left"
    TURN_RIGHT = "turn_right"

    @property
    def message_key(self) -> str:
        return f"camera.challenge.{self.value}"


class LivenessFailure(enum.Enum):
    """Why a liveness session failed. Value = message key suffix and machine code suffix."""

    TIMED_OUT = "timed_out"
    STILL_IMAGE = "still_image"
    FROZEN_FEED = "frozen_feed"
    IDENTITY_CHANGED = "identity_changed"
    FACE_LOST = "face_lost"
    SEVERAL_FACES = "several_faces"
    IR_ABSENT = "ir_absent"
    CANCELLED = "cancelled"

    @property
    def code(self) -> str:
        return f"camera.liveness.{self.value}"

    @property
    def message_key(self) -> str:
        return f"camera.liveness.{self.value}"


@dataclass(frozen=True, slots=True)
class LivenessResult:
    """Outcome of one liveness session: the challenges asked, in order, and how many were done."""

    passed: bool
    challenges: tuple[LivenessChallenge, ...]
    completed: int
    failure: LivenessFailure | None = None
    elapsed_s: float = 0.0
    frames: int = 0
    # What the measures saw of the action that was not done, for the engineer tuning the camera
    # (e.g. "turn_left frames=31 best_turn=9.8 need=15.0"): numbers only, no image or template.
    detail: str = ""

    @property
    def code(self) -> str:
        return "camera.liveness.passed" if self.passed else self.failure.code  # type: ignore[union-attr]

    @property
    def message_key(self) -> str:
        return "camera.liveness.passed" if self.passed else self.failure.message_key  # type: ignore[union-attr]


@dataclass(frozen=True, slots=True)
class LivenessProgress:
    """What the screen shows while a session runs: the current challenge and a hint key."""

    challenge: LivenessChallenge | None
    completed: int
    total: int
    hint_key: str
    remaining_s: float
    result: LivenessResult | None = None


class MatchDecision(enum.Enum):
    """Decision bands of the 1:1 match (人证比对): accept, manual review (人工复核), reject."""

    ACCEPT = "accept"
    REVIEW = "review"
    REJECT = "reject"


@dataclass(frozen=True, slots=True)
class MatchResult:
    """Distance between the live face and the ID photo and the decision from the configured bands."""

    distance: float
    accept_distance: float
    reject_distance: float
    decision: MatchDecision

    @property
    def match(self) -> bool:
        return self.decision is MatchDecision.ACCEPT


def decide(distance: float, accept_distance: float, reject_distance: float) -> MatchDecision:
    """≤ accept → ACCEPT; ≥ reject → REJECT; between → REVIEW (staff look at both faces)."""
    if distance <= accept_distance:
        return MatchDecision.ACCEPT
    if distance >= reject_distance:
        return MatchDecision.REJECT
    return MatchDecision.REVIEW


# --------------------------------------------------------------------------- errors


class CameraError(DeviceError):
    """Root of the camera package's errors."""

    default_code = "camera.error"
    default_message_key = "camera.error"


class CameraUnavailable(CameraError):
    default_code = "camera.unavailable"
    default_message_key = "camera.unavailable"


class FaceImageError(CameraError):
    """An image given for matching cannot be used (a citizen-facing retry, not a device fault)."""

    default_code = "camera.unreadable_image"
    default_message_key = "camera.unreadable_image"
    default_audience = Audience.CITIZEN


class UnreadableImage(FaceImageError):
    default_code = "camera.unreadable_image"
    default_message_key = "camera.unreadable_image"


class NoFace(FaceImageError):
    default_code = "camera.no_face"
    default_message_key = "camera.hint.no_face"


class SeveralFaces(FaceImageError):
    default_code = "camera.several_faces"
    default_message_key = "camera.hint.several_faces"


class QualityRejected(FaceImageError):
    """The quality gate refused the frame; ``result`` says why."""

    default_code = "camera.quality_rejected"
    default_message_key = "camera.quality_rejected"

    def __init__(self, result: QualityResult, message: str = "") -> None:
        self.result = result
        super().__init__(
            message or ",".join(i.value for i in result.issues),
            message_key=result.hint_key,
            retryable=True,
        )


# --------------------------------------------------------------------------- protocols


@runtime_checkable
class FrameSource(Protocol):
    """A camera (or its simulator) giving RGB frames, optionally with a paired IR frame."""

    @property
    def has_ir(self) -> bool: ...

    def open(self) -> None: ...

    def read(self, timeout_s: float = 1.0) -> CapturedFrame | None:
        """The next frame, or None when none came within ``timeout_s`` (end of a file source)."""
        ...

    def close(self) -> None: ...

    def status(self) -> DeviceStatus: ...


@runtime_checkable
class LivenessSession(Protocol):
    """One liveness check (活体检测): frames in, progress out, a result at the end."""

    @property
    def challenges(self) -> tuple[LivenessChallenge, ...]: ...

    def feed(self, frame: CapturedFrame) -> LivenessProgress: ...

    def cancel(self) -> LivenessResult: ...

    @property
    def result(self) -> LivenessResult | None: ...


@runtime_checkable
class FaceVerifier(Protocol):
    """1:1 match of a live face against the ID card photo (人证比对)."""

    def verify(self, reference_rgb: Any, probe_rgb: Any) -> MatchResult:
        """Compares the single face of each image. Raises NoFace / SeveralFaces / UnreadableImage."""
        ...

    def new_liveness_session(self) -> LivenessSession: ...
