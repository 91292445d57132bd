"""The face pipeline (人脸流程): capture, preview, quality, liveness, match and card photo, off the
caller's thread.

Two threads and a child process: the *capture* thread reads the camera as fast as it gives frames
and keeps only the newest (so the preview never shows a stale frame); the *analysis* thread hands
the newest frame, when the worker is free, to the face worker process (camera/worker.py: dlib
holds the GIL for a whole detection, so in-process face work would freeze the UI thread) for
detection + quality gate (+ the liveness session when one runs) and, when asked, the 1:1 match
and the card photo. The UI calls :meth:`FacePipeline.preview` from its own clock (a cheap
lock-protected read) and never waits for face work.

Results come back through the callback given with the request (called on the analysis thread:
a Kivy screen wraps it in ``Clock.schedule_once``) and can also be polled. Frames, templates and
photos stay in memory; nothing is logged but event names and codes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self

import cv2
import numpy as np

from camera.cardphoto import CardPhoto, chip_copy
from camera.worker import FaceWorker, WorkerConfig
from kiosk.devices import DeviceError
from kiosk.devices.camera import (
    CameraError,
    CapturedFrame,
    FaceBox,
    FrameSource,
    LivenessChallenge,
    LivenessProgress,
    LivenessResult,
    MatchResult,
    QualityResult,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreviewState:
    """What the preview widget draws now: the newest frame, the last face box and hint."""

    frame_index: int
    rgb: Any = field(repr=False)  # H×W×3 uint8 or None before the first frame
    face: FaceBox | None
    hint_key: str
    quality: QualityResult | None
    liveness: LivenessProgress | None
    analysed_index: int  # the frame the box and hint belong to (may lag the preview by a frame or two)


@dataclass(frozen=True)
class _Job:
    kind: str
    callback: Callable[[Any], None] | None
    reference_rgb: Any = field(default=None, repr=False)
    challenges: tuple[LivenessChallenge, ...] | None = None


class FacePipeline:
    """Runs the camera on a thread and the face work in a child process.

    ``start()``/``stop()``; ``preview()`` for the screen; ``start_liveness(callback)``,
    ``request_match(reference_rgb, callback)``, ``request_card_photo(callback)`` for the flow.
    """

    def __init__(
        self,
        source: FrameSource,
        config: WorkerConfig | None = None,
        *,
        read_timeout_s: float = 1.0,
        require_liveness: bool = True,
    ) -> None:
        self.source = source
        self.config = config or WorkerConfig()
        self.read_timeout_s = read_timeout_s
        # GB/T 38671: liveness passes before the face is compared. Off only for tools and benches.
        self.require_liveness = require_liveness
        self._worker = FaceWorker(self.config)
        self._worker_lock = threading.Lock()
        self._worker_up = False
        self.keep_warm = False
        self._lock = threading.Lock()
        self._new_frame = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._frame: CapturedFrame | None = None
        self._analysed_index = 0
        self._quality: QualityResult | None = None
        self._hint = "camera.hint.no_face"
        self._best: tuple[CapturedFrame, FaceBox, float] | None = None  # (frame, box, sharpness)
        self._liveness_active = False
        self._liveness_callback: Callable[[LivenessResult], None] | None = None
        self._progress: LivenessProgress | None = None
        self._jobs: list[_Job] = []
        self._results: dict[str, Any] = {}
        self.camera_error: DeviceError | None = None
        self.frames_captured = 0
        self.frames_analysed = 0

    # ----------------------------------------------------------------- lifecycle

    def warm_up(self) -> None:
        """Starts the face worker now (~2 s: it loads the models) so a visit does not wait for it;
        it then stays up between visits (:meth:`stop` keeps it, :meth:`close` ends it).

        ``keep_warm`` is set first: a :meth:`stop` that comes while the models load (the start-up
        recovery stops the face step of an interrupted visit) must not end the worker being warmed.
        """
        self.keep_warm = True
        with self._worker_lock:
            if not self._worker_up:
                self._worker.start()
                self._worker_up = True

    def start(self) -> None:
        """Starts the face worker unless warm (~2 s: it loads the models), opens the camera, starts the threads."""
        if self._threads:
            return
        with self._worker_lock:
            if not self._worker_up:
                self._worker.start()
                self._worker_up = True
        try:
            self.source.open()
        except CameraError:
            self._stop_worker()
            raise
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._capture_loop, name="camera-capture", daemon=True),
            threading.Thread(target=self._analysis_loop, name="camera-analysis", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stops the threads and the worker, closes the camera, forgets every frame, template and photo."""
        self._stop.set()
        with self._lock:
            self._new_frame.notify_all()
        for thread in self._threads:
            thread.join(timeout=35.0)
        self._threads = []
        if not self.keep_warm:
            self._stop_worker()
        self.source.close()
        with self._lock:
            self._frame = None
            self._best = None
            self._jobs.clear()
            self._results.clear()
            self._liveness_active = False

    def _stop_worker(self) -> None:
        with self._worker_lock:
            self._worker.stop()
            self._worker_up = False

    def close(self) -> None:
        """Stops everything, the warm worker included (shutdown)."""
        self.keep_warm = False
        self.stop()
        self._stop_worker()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- UI side

    def preview(self) -> PreviewState:
        """The newest frame and the latest face box/hint. Never blocks on face work."""
        with self._lock:
            frame = self._frame
            quality = self._quality
            return PreviewState(
                frame.index if frame else 0,
                frame.rgb if frame else None,
                quality.face if quality else None,
                self._hint,
                quality,
                self._progress,
                self._analysed_index,
            )

    def wait_for_frame(self, after_index: int, timeout_s: float = 1.0) -> int:
        """Blocks until a frame newer than ``after_index`` arrives (for a headless preview loop)."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while (self._frame is None or self._frame.index <= after_index) and not self._stop.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._new_frame.wait(remaining)
            return self._frame.index if self._frame else 0

    # ----------------------------------------------------------------- flow side

    def start_liveness(
        self,
        callback: Callable[[LivenessResult], None] | None = None,
        challenges: tuple[LivenessChallenge, ...] | None = None,
    ) -> None:
        """Starts a liveness session on the next analysed frames; the challenges (random unless
        given) appear in ``preview().liveness``; the result comes to ``callback`` and ``result("liveness")``."""
        with self._lock:
            self._results.pop("liveness", None)
            self._progress = None
            self._jobs.append(_Job("start_liveness", callback, challenges=challenges))
            self._new_frame.notify_all()

    def request_match(self, reference_rgb: np.ndarray, callback: Callable[[Any], None] | None = None) -> None:
        """Matches the best frame seen so far against ``reference_rgb`` (the ID photo). The callback
        gets a MatchResult or the CameraError that prevented it."""
        with self._lock:
            self._results.pop("match", None)
            self._jobs.append(_Job("match", callback, reference_rgb))
            self._new_frame.notify_all()

    def request_card_photo(self, callback: Callable[[Any], None] | None = None) -> None:
        """Makes the card photo from the best frame; callback gets a CardPhoto or a CameraError."""
        with self._lock:
            self._results.pop("card_photo", None)
            self._jobs.append(_Job("card_photo", callback))
            self._new_frame.notify_all()

    @staticmethod
    def decode_reference(photo: bytes) -> np.ndarray:
        """The ID card photo (BMP/JPEG bytes from the photo decoder) as RGB for :meth:`request_match`."""
        image = cv2.imdecode(np.frombuffer(photo, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise CameraError("the reference photo is not a readable image", code="camera.unreadable_image")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    @staticmethod
    def chip_photo(jpeg: bytes, max_bytes: int = 4096) -> bytes:
        """The chip's small copy (EF08, ≤ 4 KB) of an accepted card photo."""
        return chip_copy(jpeg, max_bytes)

    def result(self, kind: str) -> Any:
        """Polled result: ``"match"``, ``"card_photo"`` or ``"liveness"`` (None while pending)."""
        with self._lock:
            return self._results.get(kind)

    def forget_best_frame(self) -> None:
        """Drops the kept frame (a retake, or the visit ended)."""
        with self._lock:
            self._best = None

    # ----------------------------------------------------------------- threads

    def _capture_loop(self) -> None:
        while not self._stop.is_set():
            try:
                frame = self.source.read(self.read_timeout_s)
            except CameraError as exc:
                log.warning("camera.capture_failed", extra={"code": exc.code})
                self.camera_error = exc
                self._stop.wait(0.5)
                continue
            if frame is None:
                continue
            with self._lock:
                self._frame = frame
                self.frames_captured += 1
                self._new_frame.notify_all()

    def _analysis_loop(self) -> None:
        last_done = 0
        while not self._stop.is_set():
            with self._lock:
                while (
                    not self._stop.is_set()
                    and not self._jobs
                    and (self._frame is None or self._frame.index <= last_done)
                ):
                    self._new_frame.wait(0.5)
                if self._stop.is_set():
                    return
                frame = self._frame
                jobs, self._jobs = self._jobs, []
            for job in jobs:
                self._run_job(job)
            if frame is not None and frame.index > last_done:
                last_done = frame.index
                try:
                    self._analyse(frame)
                except CameraError as exc:
                    log.warning("camera.analysis_failed", extra={"code": exc.code})
                    self._stop.wait(0.2)

    def _analyse(self, frame: CapturedFrame) -> None:
        quality, progress = self._worker.call("analyse", frame)
        if progress is None and self._liveness_active:
            # No frame reached the session (no face): the time limit still runs.
            progress = self._worker.call("poll_liveness", frame.captured_at)
        hint = quality.hint_key
        if progress is not None and progress.result is None and quality.face is not None:
            hint = progress.hint_key
        finished = progress.result if progress is not None else None
        callback = None
        with self._lock:
            self._quality = quality
            self._analysed_index = frame.index
            self._hint = hint
            if progress is not None:
                self._progress = progress
            if quality.ok and quality.face is not None:
                sharpness = quality.measures.sharpness
                if (
                    self._best is None
                    or sharpness >= self._best[2] * 0.9
                    or frame.index - self._best[0].index > 30
                ):
                    self._best = (frame, quality.face, sharpness)
            self.frames_analysed += 1
            if finished is not None and self._liveness_active:
                self._liveness_active = False
                self._results["liveness"] = finished
                callback, self._liveness_callback = self._liveness_callback, None
        if callback is not None:
            callback(finished)

    def _run_job(self, job: _Job) -> None:
        if job.kind == "start_liveness":
            try:
                challenges = self._worker.call("start_liveness", job.challenges)
            except CameraError as exc:
                with self._lock:
                    self._results["liveness"] = exc
                if job.callback is not None:
                    job.callback(exc)  # type: ignore[arg-type]
                return
            with self._lock:
                self._liveness_active = True
                self._liveness_callback = job.callback
                # No action shown yet: the session asks for one once it has seen the face
                # straight (camera.liveness), so nobody turns before the frontal pose is measured.
                self._progress = LivenessProgress(
                    None,
                    0,
                    len(challenges),
                    "camera.hint.not_frontal",
                    self.config.liveness.time_limit_s,
                )
            return
        with self._lock:
            best = self._best
        outcome: Any
        try:
            if best is None:
                raise CameraError(
                    "no good frame yet",
                    code="camera.no_good_frame",
                    message_key="camera.hint.no_face",
                    retryable=True,
                )
            frame, box, _ = best
            if job.kind == "match" and self.require_liveness:
                with self._lock:
                    liveness = self._results.get("liveness")
                if not isinstance(liveness, LivenessResult) or not liveness.passed:
                    raise CameraError(
                        "liveness has not passed",
                        code="camera.liveness_required",
                        message_key="camera.liveness_required",
                        retryable=True,
                    )
            if job.kind == "match":
                outcome = self._worker.call("match", job.reference_rgb, frame.rgb, box)
            else:
                outcome = self._worker.call("card_photo", frame.rgb, box)
        except CameraError as exc:
            outcome = exc
        with self._lock:
            self._results[job.kind] = outcome
        if job.callback is not None:
            job.callback(outcome)


__all__ = ["CardPhoto", "FacePipeline", "MatchResult", "PreviewState", "WorkerConfig"]
