"""Frame sources (simulator, OpenCV driver on a fake AVI), the pipeline's preview while a match
runs, and the card photo."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from camera.analysis import FaceAnalyzer
from camera.capture import OpenCVCamera, SimulatedCamera, write_fake_video
from camera.cardphoto import CardPhoto, make_card_photo
from camera.liveness import LivenessSettings
from camera.pipeline import FacePipeline
from camera.scenes import blink_and_turn_script
from camera.worker import WorkerConfig
from kiosk.devices import DeviceState
from kiosk.devices.camera import (
    CameraError,
    CameraUnavailable,
    FrameSource,
    LivenessChallenge,
    LivenessResult,
    MatchDecision,
    MatchResult,
)


def test_simulator_plays_frames_in_order_and_stops_at_the_end(portraits) -> None:
    frames = [portraits["obama.jpg"].frame, portraits["biden.jpg"].frame]
    with SimulatedCamera(frames, loop=False, realtime=False) as camera:
        assert isinstance(camera, FrameSource)
        got = [camera.read(), camera.read(), camera.read()]
    assert np.array_equal(got[0].rgb, frames[0]) and np.array_equal(got[1].rgb, frames[1])
    assert got[2] is None


def test_simulator_faults(portraits) -> None:
    camera = SimulatedCamera([portraits["obama.jpg"].frame], realtime=False, noise_sigma=2.0, seed=1)
    assert set(camera.fault_names()) >= {"unplugged", "black", "frozen"}
    camera.open()
    first = camera.read()
    camera.inject("frozen", count=1)
    assert np.array_equal(camera.read().rgb, first.rgb)
    assert not np.array_equal(camera.read().rgb, first.rgb)  # grain again after the fault
    camera.inject("black", count=1)
    assert camera.read().rgb.mean() < 3  # a covered lens: black plus sensor grain
    camera.inject("unplugged")
    assert camera.status().state is DeviceState.OFFLINE
    with pytest.raises(CameraUnavailable):
        camera.read()
    camera.clear_faults()
    assert camera.read() is not None and camera.status().state is DeviceState.READY
    with pytest.raises(ValueError):
        camera.inject("melted")


def test_opencv_driver_reads_a_fake_camera_file(tmp_path: Path, portraits) -> None:
    video = write_fake_video(tmp_path / "fake.avi", [portraits["obama.jpg"].frame] * 5)
    with OpenCVCamera(str(video), width=640, height=480) as camera:
        frames = [camera.read() for _ in range(5)]
        assert camera.status().state is DeviceState.READY
        frames.append(camera.read())  # the end of the file: no frame, a read failure
    assert all(f is not None and f.rgb.shape == (480, 640, 3) for f in frames[:5])
    assert frames[5] is None
    assert FaceAnalyzer().detect(frames[0].rgb)
    with pytest.raises(CameraUnavailable):
        OpenCVCamera("/dev/video-none").open()


@pytest.fixture(scope="module")
def worker_config() -> WorkerConfig:
    return WorkerConfig(liveness=LivenessSettings(challenges=1, time_limit_s=10.0), seed=5)


def _wait_until_good(pipeline: FacePipeline) -> int:
    """Waits for a good frame analysed after this call (a verdict from before does not count)."""
    since = pipeline.preview().frame_index
    index = since
    for _ in range(300):
        index = pipeline.wait_for_frame(index, 1.0)
        state = pipeline.preview()
        if state.analysed_index > since and state.quality is not None and state.quality.ok:
            return index
    raise AssertionError("no good frame analysed")


def test_preview_keeps_running_while_a_match_runs(portraits, worker_config) -> None:
    camera = SimulatedCamera([portraits["obama.jpg"].frame], fps=30, noise_sigma=2.0, seed=3)
    done = threading.Event()
    results: list[object] = []
    with FacePipeline(camera, worker_config, require_liveness=False) as pipeline:
        index = _wait_until_good(pipeline)
        state = pipeline.preview()
        assert (
            state.face is not None and state.hint_key == "camera.hint.ok" and state.rgb.shape == (480, 640, 3)
        )
        pipeline.request_match(portraits["obama2.jpg"].id_photo, lambda r: (results.append(r), done.set()))
        seen = set()
        gaps = []
        last = time.monotonic()
        while not done.is_set():
            new = pipeline.wait_for_frame(index, 1.0)
            now = time.monotonic()
            if new > index:
                gaps.append(now - last)
                last = now
                seen.add(new)
                index = new
        assert done.wait(10)
    assert isinstance(results[0], MatchResult) and results[0].decision is MatchDecision.ACCEPT
    # The preview got new frames all through the match (the face work is in another process).
    assert len(seen) >= 2, seen
    print(f"preview frames during match: {len(seen)}, longest gap {max(gaps) * 1000:.0f} ms")


def test_pipeline_runs_a_liveness_session_on_a_scripted_camera(portraits, analyzer, worker_config) -> None:
    script = blink_and_turn_script(
        portraits["biden2.jpg"].frame, (LivenessChallenge.BLINK,), analyzer, hold=8
    )
    # At 10 fps the worker sees (nearly) every frame; the script then loops (a second blink).
    camera = SimulatedCamera(script, fps=10, noise_sigma=2.0, seed=4)
    done = threading.Event()
    outcome: list[object] = []
    with FacePipeline(camera, worker_config) as pipeline:
        _wait_until_good(pipeline)
        pipeline.start_liveness(
            lambda r: (outcome.append(r), done.set()), challenges=(LivenessChallenge.BLINK,)
        )
        assert done.wait(20)
        assert pipeline.result("liveness") is outcome[0]
        assert pipeline.preview().liveness is not None
        assert isinstance(outcome[0], LivenessResult) and outcome[0].passed, outcome
        # Liveness passed: the live face is matched; another person's frame is refused.
        matched = threading.Event()
        pipeline.request_match(portraits["biden.jpg"].id_photo, lambda _r: matched.set())
        assert matched.wait(10)
        assert pipeline.result("match").decision is MatchDecision.ACCEPT
        # Another person steps in after the check.
        camera.play([portraits["obama.jpg"].frame])
        swapped_at = pipeline.preview().frame_index
        for _ in range(200):
            pipeline.wait_for_frame(pipeline.preview().frame_index, 1.0)
            if pipeline.preview().analysed_index > swapped_at + 1:
                break
        pipeline.forget_best_frame()
        _wait_until_good(pipeline)
        matched.clear()
        pipeline.request_match(portraits["obama.jpg"].id_photo, lambda _r: matched.set())
        assert matched.wait(10)
        swapped = pipeline.result("match")
        assert isinstance(swapped, CameraError) and swapped.code == "camera.liveness.identity_changed", (
            swapped
        )


def test_the_action_is_shown_only_once_the_face_was_seen_straight(portraits, worker_config) -> None:
    # Shown at once, the action had a citizen turning before a busy worker measured the frontal
    # pose, and the turn was never seen. The preview asks to face the screen until then.
    camera = SimulatedCamera([portraits["biden2.jpg"].frame], fps=10, noise_sigma=2.0, seed=4)
    with FacePipeline(camera, worker_config) as pipeline:
        _wait_until_good(pipeline)
        pipeline.start_liveness(challenges=(LivenessChallenge.TURN_LEFT,))
        first = None
        for _ in range(100):
            progress = pipeline.preview().liveness
            if progress is not None:
                first = first or progress
                if progress.challenge is not None:
                    break
            time.sleep(0.05)
        assert first is not None and first.challenge is None and first.hint_key == "camera.hint.not_frontal"
        assert progress is not None and progress.challenge is LivenessChallenge.TURN_LEFT
        assert pipeline.frames_analysed >= 3


def test_match_is_refused_before_liveness(portraits, worker_config) -> None:
    camera = SimulatedCamera([portraits["obama.jpg"].frame], fps=30, noise_sigma=2.0)
    with FacePipeline(camera, worker_config) as pipeline:
        _wait_until_good(pipeline)
        done = threading.Event()
        pipeline.request_match(portraits["obama.jpg"].id_photo, lambda _r: done.set())
        assert done.wait(10)
        refused = pipeline.result("match")
    assert isinstance(refused, CameraError) and refused.code == "camera.liveness_required"


def test_pipeline_card_photo_and_no_good_frame(portraits, worker_config) -> None:
    camera = SimulatedCamera([np.full((480, 640, 3), 90, np.uint8)], fps=30, noise_sigma=2.0)
    with FacePipeline(camera, worker_config) as pipeline:
        done = threading.Event()
        pipeline.request_card_photo(lambda _r: done.set())
        assert done.wait(10)
        error = pipeline.result("card_photo")
        assert isinstance(error, CameraError) and error.code == "camera.no_good_frame"
        camera.play([portraits["obama.jpg"].frame])
        _wait_until_good(pipeline)
        done.clear()
        pipeline.request_card_photo(lambda _r: done.set())
        assert done.wait(10)
        photo = pipeline.result("card_photo")
    assert isinstance(photo, CardPhoto) and photo.width == 358


def test_card_photo_is_358_by_441_white_background_face_centred(portraits, frame_boxes, analyzer) -> None:
    photo = make_card_photo(portraits["obama.jpg"].frame, frame_boxes["obama.jpg"])
    assert isinstance(photo, CardPhoto) and "bytes" in repr(photo) and str(len(photo.jpeg)) in repr(photo)
    assert photo.jpeg[:2] == b"\xff\xd8" and 8 * 1024 <= len(photo.jpeg) <= 50 * 1024
    image = cv2.cvtColor(
        cv2.imdecode(np.frombuffer(photo.jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB
    )
    assert image.shape == (441, 358, 3)
    for corner in (image[:30, :30], image[:30, -30:]):
        assert corner.mean() > 245  # background whitened
    box = FaceAnalyzer(detect_width=358).detect(image)[0]
    cx, cy = box.centre
    assert abs(cx - 179) < 20 and abs(cy - 441 * 0.46) < 30
    assert 0.3 < box.width / 358 < 0.55


def test_cli_cardphoto_writes_the_photo_or_refuses(tmp_path: Path, faces_dir: Path, capsys) -> None:
    import json

    from kiosk.cli import main

    out = tmp_path / "card.jpg"
    assert main(["face", "cardphoto", str(faces_dir / "obama.jpg"), str(out)]) == 0
    assert cv2.imread(str(out)).shape == (441, 358, 3)
    capsys.readouterr()
    assert (
        main(["face", "cardphoto", str(faces_dir / "obama_partial_face.jpg"), str(tmp_path / "x.jpg")]) == 2
    )
    body = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert body["error"]["code"].startswith("quality") and not (tmp_path / "x.jpg").exists()


def test_opencv_driver_reads_a_second_ir_camera(tmp_path: Path, portraits) -> None:
    rgb = write_fake_video(tmp_path / "rgb.avi", [portraits["obama.jpg"].frame] * 3)
    ir = write_fake_video(tmp_path / "ir.avi", [portraits["obama.jpg"].frame] * 3)
    with OpenCVCamera(str(rgb), ir_device=str(ir)) as camera:
        frame = camera.read()
    assert camera.has_ir and frame.ir is not None and frame.ir.shape == (480, 640)


@pytest.mark.hardware
def test_real_v4l2_camera_gives_640x480_frames() -> None:
    # Twin in CI: test_opencv_driver_reads_a_fake_camera_file.
    with OpenCVCamera("/dev/video0", width=640, height=480) as camera:
        frame = camera.read()
    assert frame is not None and frame.rgb.shape == (480, 640, 3), camera.refused_settings


def test_a_closed_camera_between_visits_reports_idle_not_offline(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from camera.capture import OpenCVCamera

    assert SimulatedCamera([]).status().state is DeviceState.READY
    node = tmp_path / "video9"
    absent = OpenCVCamera(str(node))
    assert absent.status().state is DeviceState.OFFLINE
    node.write_bytes(b"")
    present = OpenCVCamera(str(node))
    status = present.status()
    assert (status.state, status.code) == (DeviceState.READY, "camera.idle")


class _SlowWorker:
    """Stands in for the face worker process: starting it takes a while (the models load)."""

    def __init__(self) -> None:
        self.running = False
        self.starts = 0

    def start(self) -> None:
        time.sleep(0.3)
        self.starts += 1
        self.running = True

    def stop(self) -> None:
        self.running = False


class _ClosedSource:
    def open(self) -> None: ...

    def close(self) -> None: ...


def test_a_stop_while_the_worker_warms_up_does_not_end_the_warm_worker() -> None:
    # At start the recovery of an interrupted visit stops its face step while the worker warms up
    # in the background: the worker must still be up afterwards, for the next citizen.
    pipeline = FacePipeline(_ClosedSource())  # type: ignore[arg-type]
    worker = _SlowWorker()
    pipeline._worker = worker  # type: ignore[assignment]
    warming = threading.Thread(target=pipeline.warm_up)
    warming.start()
    time.sleep(0.05)
    pipeline.stop()
    warming.join()
    assert worker.running and worker.starts == 1 and pipeline.keep_warm
    pipeline.close()
    assert not worker.running
