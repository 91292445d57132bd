"""The face worker process (人脸分析子进程).

dlib holds Python's GIL for the whole of a detection or an encoding (measured here: another
thread stalled 172 ms while face_recognition ran), so face work on a *thread* freezes the UI
thread too. The pipeline therefore runs it in a child process started with ``spawn`` (no forked
locks): frames go over a pipe (~1 MB, ~1 ms), verdicts come back as the frozen value types.

Requests are tuples ``(kind, *args)``; every reply is ``("ok", value)`` or
``("error", code, message_key, message)``. Frames and templates live only in the two processes'
memory; the child logs nothing but event names.
"""

from __future__ import annotations

import multiprocessing
import random
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from camera.cardphoto import CardPhotoSpec
from camera.liveness import LivenessSettings
from camera.quality import QualityThresholds
from kiosk.devices.camera import CameraError, LivenessChallenge


@dataclass(frozen=True)
class WorkerConfig:
    """Everything the child needs to build its analyser, gate and matcher (picklable)."""

    detect_width: int = 320
    accept_distance: float = 0.45
    reject_distance: float = 0.55
    liveness: LivenessSettings = field(default_factory=LivenessSettings)
    thresholds: QualityThresholds = field(default_factory=QualityThresholds)
    card_spec: CardPhotoSpec = field(default_factory=CardPhotoSpec)
    require_ir: bool = False
    seed: int | None = None


def worker_main(conn: Connection, config: WorkerConfig) -> None:
    """Child process entry point: serves requests until ``("stop",)`` or the pipe closes."""
    from camera.analysis import FaceAnalyzer, face_distance
    from camera.cardphoto import make_card_photo
    from camera.liveness import ChallengeSession
    from camera.match import FaceMatcher
    from camera.quality import QualityGate

    analyzer = FaceAnalyzer(detect_width=config.detect_width)
    gate = QualityGate(analyzer, config.thresholds)
    rng = random.Random(config.seed) if config.seed is not None else None
    matcher = FaceMatcher(
        analyzer,
        accept_distance=config.accept_distance,
        reject_distance=config.reject_distance,
        liveness=config.liveness,
        rng=rng,
        require_ir=config.require_ir,
    )
    session: ChallengeSession | None = None
    conn.send(("ok", "ready"))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        kind = request[0]
        if kind == "stop":
            conn.send(("ok", None))
            return
        try:
            if kind == "analyse":
                frame = request[1]
                boxes = analyzer.detect(frame.rgb)
                quality = gate.assess(frame.rgb, boxes)
                progress = None
                if session is not None and session.result is None:
                    progress = session.feed(frame, boxes)
                reply: Any = (quality, progress)
            elif kind == "start_liveness":
                challenges: tuple[LivenessChallenge, ...] | None = request[1]
                session = ChallengeSession(
                    analyzer, config.liveness, challenges=challenges, rng=rng, require_ir=config.require_ir
                )
                reply = session.challenges
            elif kind == "poll_liveness":
                reply = session.poll(request[1]) if session is not None else None
            elif kind == "cancel_liveness":
                reply = session.cancel() if session is not None else None
            elif kind == "match":
                _, reference_rgb, probe_rgb, box = request
                probe = matcher.encode_probe(probe_rgb, box)
                live_face = session.reference_encoding if session is not None else None
                if (
                    live_face is not None
                    and face_distance(probe.encoding, live_face) > config.liveness.identity_distance
                ):
                    # The frame to match is not the face that passed liveness (a swap after the check).
                    raise CameraError(
                        "matched frame is not the live face",
                        code="camera.liveness.identity_changed",
                        message_key="camera.liveness.identity_changed",
                    )
                reply = matcher.compare(matcher.encode_reference(reference_rgb), probe)
            elif kind == "card_photo":
                _, rgb, box = request
                reply = make_card_photo(rgb, box, config.card_spec)
            else:
                raise CameraError(f"unknown request {kind!r}", code="camera.worker_bad_request")
        except CameraError as exc:
            conn.send(("error", exc.code, exc.message_key, str(exc)))
            continue
        except (ValueError, IndexError) as exc:
            conn.send(("error", "camera.analysis_failed", "camera.error", type(exc).__name__))
            continue
        conn.send(("ok", reply))


class FaceWorker:
    """Parent side: starts the child, sends one request at a time and waits for its reply."""

    def __init__(self, config: WorkerConfig, *, start_timeout_s: float = 30.0) -> None:
        self.config = config
        self.start_timeout_s = start_timeout_s
        self._conn: Connection | None = None
        self._process: multiprocessing.process.BaseProcess | None = None

    def start(self) -> None:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self._process = context.Process(
            target=worker_main, args=(child, self.config), name="face-worker", daemon=True
        )
        self._process.start()
        child.close()
        self._conn = parent
        if not parent.poll(self.start_timeout_s):
            self.stop()
            raise CameraError("face worker did not start", code="camera.worker_start_failed")
        parent.recv()

    def call(self, *request: Any, timeout_s: float = 30.0) -> Any:
        """Sends a request and returns the reply value; raises the CameraError the child reported."""
        if self._conn is None:
            raise CameraError("face worker not running", code="camera.worker_not_running")
        try:
            self._conn.send(request)
            if not self._conn.poll(timeout_s):
                raise CameraError("face worker did not answer", code="camera.worker_timeout", retryable=True)
            reply = self._conn.recv()
        except (EOFError, OSError, BrokenPipeError) as exc:
            raise CameraError(f"face worker gone: {type(exc).__name__}", code="camera.worker_gone") from exc
        if reply[0] == "error":
            _, code, message_key, message = reply
            raise CameraError(message, code=code, message_key=message_key)
        return reply[1]

    def stop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.send(("stop",))
                self._conn.poll(2.0)
            except (OSError, BrokenPipeError):
                pass  # the child is already gone; nothing to tell it
            self._conn.close()
            self._conn = None
        if self._process is not None:
            self._process.join(5.0)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(2.0)
            self._process = None
