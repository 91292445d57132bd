"""Liveness by challenge (动作活体检测): blink, turn left, turn right, in a random order.

Each frame fed in is measured (eye aspect ratio, solvePnP yaw, research/hardware.md §4); a
challenge is met when the measure moves as the action demands, relative to the citizen's own
baseline:

- blink (眨眼): eyes seen open, then EAR below ``blink_ratio`` × the open-eye baseline for
  ``min_closed_frames`` frames, then open again;
- turn left / right (左转 / 右转头): yaw ``turn_deg`` beyond the frontal yaw for
  ``min_turn_frames`` frames, in the asked direction (positive yaw = the citizen's left). The
  frontal yaw is the median of the frames facing the screen.

No action is asked until the face has been seen facing the screen, steady, in ``baseline_frames``
frames running (the progress shows no challenge and the hint "face the screen" meanwhile): the
frontal pose must be measured before anyone is told to turn. Asked at once, a citizen turns before
a busy worker has seen the face straight, the turned head becomes the "frontal" pose and every
later frame is measured against it (seen on a loaded machine: one frontal frame, then only turns).
A head still turned from the last attempt restarts the settling instead.

The session fails on: time limit (or no motion at all by then: a still photo), a feed whose
frames stop changing (a frozen or replayed still frame; a real sensor never repeats a frame bit
for bit), a face whose identity changes between frames (the encoding is re-checked every few
frames and at each action), the face lost, several faces, and, with an IR camera, no face in IR.
See docs/camera.md for what this can and cannot stop.
"""

from __future__ import annotations

import logging
import random
import statistics
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from camera.analysis import FaceAnalyzer, FaceObservation, face_distance
from kiosk.devices.camera import (
    CapturedFrame,
    FaceBox,
    LivenessChallenge,
    LivenessFailure,
    LivenessProgress,
    LivenessResult,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LivenessSettings:
    challenges: int = 2
    time_limit_s: float = 15.0
    blink_ratio: float = 0.75
    reopen_ratio: float = 0.9
    min_closed_frames: int = 2
    turn_deg: float = 15.0
    min_turn_frames: int = 2
    # Frames that agree on the frontal pose before a turn is measured from it.
    baseline_frames: int = 3
    identity_distance: float = 0.6
    identity_check_every: int = 8
    frozen_frames: int = 4
    frozen_mean_diff: float = 0.3  # mean |Δ| grey level over the face below which two frames are "the same"
    face_lost_s: float = 2.0
    still_motion: float = 0.01  # landmark spread / face width below which nothing ever moved
    ir_max_misses: int = 2
    # Faces smaller than this share of the main face are passers-by, not a second person here.
    other_face_min_ratio: float = 0.5

    def __post_init__(self) -> None:
        if not 1 <= self.challenges <= len(LivenessChallenge):
            raise ValueError(f"challenges must be 1..{len(LivenessChallenge)}")
        if self.time_limit_s <= 0:
            raise ValueError("time_limit_s must be positive")


@dataclass
class _ChallengeState:
    challenge: LivenessChallenge
    started_at: float
    open_frames: int = 0
    closed_frames: int = 0
    closed_seen: bool = False
    turned_frames: int = 0
    frames: int = 0  # frames with a face measured for this action
    best_turn: float = 0.0  # the largest turn seen in the asked direction, degrees from frontal
    least_ear: float = 1.0  # the most shut the eyes looked, as a share of the open-eye baseline


@dataclass
class _Track:
    reference_encoding: Any = field(default=None, repr=False)
    open_ears: list[float] = field(default_factory=list)
    frontal_yaws: list[float] = field(default_factory=list)
    shapes: list[Any] = field(default_factory=list, repr=False)
    previous_grey: Any = field(default=None, repr=False)
    same_frames: int = 0
    last_face_at: float | None = None
    ir_hits: int = 0
    ir_misses: int = 0


def pick_challenges(count: int, rng: random.Random | None = None) -> tuple[LivenessChallenge, ...]:
    """``count`` distinct challenges in a random order (unpredictable to a prepared video)."""
    chooser = rng or random.SystemRandom()
    return tuple(chooser.sample(list(LivenessChallenge), count))


class ChallengeSession:
    """One liveness session. Not thread-safe: feed it from one worker (the pipeline does)."""

    def __init__(
        self,
        analyzer: FaceAnalyzer,
        settings: LivenessSettings | None = None,
        *,
        challenges: tuple[LivenessChallenge, ...] | None = None,
        rng: random.Random | None = None,
        require_ir: bool = False,
    ) -> None:
        self.analyzer = analyzer
        self.settings = settings or LivenessSettings()
        self._challenges = challenges or pick_challenges(self.settings.challenges, rng)
        self.require_ir = require_ir
        self._track = _Track()
        self._index = 0
        self._state: _ChallengeState | None = None
        self._started_at: float | None = None
        self._now = 0.0
        self._frames = 0
        self._result: LivenessResult | None = None
        self._settled = False  # the frontal pose measured: the challenges are shown and scored
        self.last_observation: FaceObservation | None = None

    # ----------------------------------------------------------------- protocol

    @property
    def challenges(self) -> tuple[LivenessChallenge, ...]:
        return self._challenges

    @property
    def result(self) -> LivenessResult | None:
        return self._result

    @property
    def reference_encoding(self) -> np.ndarray | None:
        """The encoding of the face that started the session (to tie the matched frame to it)."""
        return self._track.reference_encoding

    def cancel(self) -> LivenessResult:
        return self._finish(LivenessFailure.CANCELLED)

    def poll(self, now: float) -> LivenessProgress:
        """Checks the time limit when no frame comes (a camera that stopped)."""
        if self._result is None and self._started_at is not None:
            self._now = now
            self._check_time()
        return self._progress("camera.hint.ok")

    def feed(self, frame: CapturedFrame, boxes: list[FaceBox] | None = None) -> LivenessProgress:
        """Measures one frame and advances the session. ``boxes`` when the caller already detected."""
        if self._result is not None:
            return self._progress("camera.hint.ok")
        self._now = frame.captured_at
        if self._started_at is None:
            self._started_at = frame.captured_at
            self._state = _ChallengeState(self._challenges[0], frame.captured_at)
        self._frames += 1
        hint = self._step(frame, boxes)
        if self._result is None:
            self._check_time()
        return self._progress(hint)

    # ----------------------------------------------------------------- steps

    def _step(self, frame: CapturedFrame, boxes: list[FaceBox] | None) -> str:
        s = self.settings
        rgb = frame.rgb
        if boxes is None:
            boxes = self.analyzer.detect(rgb)
        if boxes:
            boxes = [b for b in boxes if b is boxes[0] or b.width >= boxes[0].width * s.other_face_min_ratio]
        if len(boxes) > 1:
            self._finish(LivenessFailure.SEVERAL_FACES)
            return "camera.hint.several_faces"
        if not boxes:
            last = self._track.last_face_at if self._track.last_face_at is not None else self._started_at
            if last is not None and self._now - last > s.face_lost_s:
                self._finish(LivenessFailure.FACE_LOST)
            return "camera.hint.no_face"
        box = boxes[0]
        self._track.last_face_at = self._now
        if self._frozen(rgb, box):
            self._finish(LivenessFailure.FROZEN_FEED)
            return "camera.hint.ok"
        obs = self.analyzer.observe(rgb, box)
        self.last_observation = obs
        self._track.shapes.append(_normalised_shape(obs))
        check_identity = self._frames == 1 or self._frames % s.identity_check_every == 0
        if check_identity and not self._identity_holds(rgb, box):
            return "camera.hint.ok"
        if check_identity and self.require_ir and not self._ir_check(frame, box):
            return "camera.hint.ok"
        # An action done: the face that did it must be the face that started.
        if self._advance(obs) and not self._identity_holds(rgb, box):
            return "camera.hint.ok"
        if not self._settled:
            return "camera.hint.not_frontal"
        return self._state.challenge.message_key if self._state else "camera.hint.ok"

    def _frozen(self, rgb: np.ndarray, box: FaceBox) -> bool:
        s = self.settings
        crop = cv2.cvtColor(rgb[box.top : box.bottom, box.left : box.right], cv2.COLOR_RGB2GRAY)
        crop = cv2.resize(crop, (64, 64), interpolation=cv2.INTER_AREA).astype(np.int16)
        previous = self._track.previous_grey
        self._track.previous_grey = crop
        if previous is None:
            return False
        if float(np.abs(crop - previous).mean()) < s.frozen_mean_diff:
            self._track.same_frames += 1
        else:
            self._track.same_frames = 0
        return self._track.same_frames >= s.frozen_frames

    def _identity_holds(self, rgb: np.ndarray, box: FaceBox) -> bool:
        encoding = self.analyzer.encode(rgb, box)
        if self._track.reference_encoding is None:
            self._track.reference_encoding = encoding
            return True
        if face_distance(encoding, self._track.reference_encoding) > self.settings.identity_distance:
            self._finish(LivenessFailure.IDENTITY_CHANGED)
            return False
        return True

    def _ir_check(self, frame: CapturedFrame, box: FaceBox) -> bool:
        """A face the RGB camera sees must also be in the IR image (a screen shows nothing in NIR)."""
        found = False
        if frame.ir is not None:
            ir = frame.ir
            height, width = ir.shape[:2]
            pad_x, pad_y = box.width // 2, box.height // 2
            y0, y1 = max(0, box.top - pad_y), min(height, box.bottom + pad_y)
            x0, x1 = max(0, box.left - pad_x), min(width, box.right + pad_x)
            crop = np.ascontiguousarray(cv2.cvtColor(ir[y0:y1, x0:x1], cv2.COLOR_GRAY2RGB))
            found = bool(crop.size) and bool(self.analyzer.detect(crop))
        if found:
            self._track.ir_hits += 1
            return True
        self._track.ir_misses += 1
        if self._track.ir_misses >= self.settings.ir_max_misses:
            self._finish(LivenessFailure.IR_ABSENT)
            return False
        return True

    def _advance(self, obs: FaceObservation) -> bool:
        """Updates the current challenge; True when it was just completed."""
        s = self.settings
        st = self._state
        assert st is not None
        track = self._track
        frontal_yaw = statistics.median(track.frontal_yaws) if track.frontal_yaws else obs.yaw_deg
        frontal = abs(obs.yaw_deg - frontal_yaw) < s.turn_deg / 2
        if not frontal and not self._settled:
            # The pose of the first frame or two, which the face has since left, was not its
            # frontal pose (the head still turned from the last attempt, say): start the baseline
            # again from here rather than measure every later frame against a turned head.
            track.frontal_yaws.clear()
            track.open_ears.clear()
            frontal_yaw, frontal = obs.yaw_deg, True
        baseline_ear = statistics.median(track.open_ears) if track.open_ears else obs.eye_aspect_ratio
        closed = bool(track.open_ears) and obs.eye_aspect_ratio < baseline_ear * s.blink_ratio
        # The open-eye baseline only from frontal frames: EAR reads higher on a turned face.
        if (
            frontal
            and not closed
            and obs.eye_aspect_ratio >= baseline_ear * s.reopen_ratio
            and len(track.open_ears) < 15
        ):
            track.open_ears.append(obs.eye_aspect_ratio)
        if frontal and len(track.frontal_yaws) < 15:
            track.frontal_yaws.append(obs.yaw_deg)
        if not self._settled:
            if len(track.frontal_yaws) < s.baseline_frames or not track.open_ears:
                return False
            # Steady and facing the screen: now the first action is asked, and its time starts.
            self._settled = True
            st.started_at = self._now
            log.info("camera.liveness.settled", extra={"frames": self._frames})
            return False
        st.frames += 1
        if baseline_ear > 0:
            st.least_ear = min(st.least_ear, obs.eye_aspect_ratio / baseline_ear)
        done = False
        if st.challenge is LivenessChallenge.BLINK:
            if closed:
                if st.open_frames >= 1:
                    st.closed_frames += 1
                    if st.closed_frames >= s.min_closed_frames:
                        st.closed_seen = True
            else:
                if st.closed_seen and obs.eye_aspect_ratio >= baseline_ear * s.reopen_ratio:
                    done = True
                if obs.eye_aspect_ratio >= baseline_ear * s.reopen_ratio:
                    st.open_frames += 1
                st.closed_frames = 0 if not st.closed_seen else st.closed_frames
        else:
            wanted = 1.0 if st.challenge is LivenessChallenge.TURN_LEFT else -1.0
            turn = (obs.yaw_deg - frontal_yaw) * wanted
            st.best_turn = max(st.best_turn, turn)
            if turn >= s.turn_deg:
                st.turned_frames += 1
                done = st.turned_frames >= s.min_turn_frames
            else:
                st.turned_frames = 0
        if done:
            log.info(
                "camera.liveness.challenge_done",
                extra={"challenge": st.challenge.value, "index": self._index},
            )
            self._index += 1
            if self._index >= len(self._challenges):
                self._result = LivenessResult(
                    True, self._challenges, self._index, None, self._elapsed(), self._frames
                )
                if self.require_ir and self._track.ir_hits == 0:
                    self._result = None
                    self._finish(LivenessFailure.IR_ABSENT)
            else:
                self._state = _ChallengeState(self._challenges[self._index], self._now)
        return done

    def _check_time(self) -> None:
        if self._elapsed() <= self.settings.time_limit_s:
            return
        if self._index == 0 and self._motion() < self.settings.still_motion:
            self._finish(LivenessFailure.STILL_IMAGE)
        else:
            self._finish(LivenessFailure.TIMED_OUT)

    def _motion(self) -> float:
        """How much the face shape moved over the session (landmarks normalised by face size)."""
        shapes = self._track.shapes
        if len(shapes) < 2:
            return 0.0
        stack = np.stack(shapes)
        return float(stack.std(axis=0).mean())

    def _elapsed(self) -> float:
        return 0.0 if self._started_at is None else self._now - self._started_at

    def _finish(self, failure: LivenessFailure) -> LivenessResult:
        if self._result is None:
            self._result = LivenessResult(
                False, self._challenges, self._index, failure, self._elapsed(), self._frames, self._detail()
            )
            log.info(
                "camera.liveness.failed",
                extra={"code": failure.code, "completed": self._index, "frames": self._frames,
                       "elapsed_s": round(self._elapsed(), 1), "detail": self._result.detail},
            )
        return self._result

    def _detail(self) -> str:
        """The measures of the action under way when the session failed (numbers only)."""
        st = self._state
        if st is None:
            return "no face measured"
        if not self._settled:
            return f"never facing the screen steadily: frames={self._frames} baseline={len(self._track.frontal_yaws)}"
        s = self.settings
        text = f"{st.challenge.value} frames={st.frames} baseline={len(self._track.frontal_yaws)}"
        if st.challenge is LivenessChallenge.BLINK:
            return text + f" least_ear={st.least_ear:.2f} need<{s.blink_ratio:.2f} open_frames={st.open_frames}"
        return text + f" best_turn={st.best_turn:.1f} need={s.turn_deg:.1f}"

    def _progress(self, hint: str) -> LivenessProgress:
        current = (
            self._challenges[self._index]
            if self._index < len(self._challenges) and self._result is None and self._settled
            else None
        )
        remaining = max(0.0, self.settings.time_limit_s - self._elapsed())
        return LivenessProgress(current, self._index, len(self._challenges), hint, remaining, self._result)


def _normalised_shape(obs: FaceObservation) -> np.ndarray:
    """Landmarks relative to the face box, so a head moving as a whole and a face changing shape
    both count as motion but camera noise (sub-pixel) hardly does."""
    box = obs.box
    origin = np.array([box.left, box.top], dtype=np.float64)
    return (np.asarray(obs.landmarks) - origin) / max(1, box.width)
