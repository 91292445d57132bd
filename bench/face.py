"""Face: detect+encode time per 640×480 frame (target ≤ 150 ms), preview frame rate while a match
runs on the analysis thread (target ≥ 25 fps), and the same/different-person distance table."""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from pathlib import Path

DESCRIPTION = "detect_encode_ms per 640×480 frame (≤150), preview_fps_while_matching (≥25), pairs table"

FACES = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "faces"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--faces", type=Path, default=FACES)
    parser.add_argument("--runs", type=int, default=10)


def run(args: argparse.Namespace) -> dict:
    from camera.analysis import FaceAnalyzer
    from camera.calibration import pair_table
    from camera.capture import SimulatedCamera, read_image_rgb
    from camera.match import FaceMatcher
    from camera.pipeline import FacePipeline
    from camera.scenes import id_card_photo, live_frame
    from camera.worker import WorkerConfig

    analyzer = FaceAnalyzer()
    matcher = FaceMatcher(analyzer)
    photo = read_image_rgb(args.faces / "obama.jpg")
    box = FaceAnalyzer(detect_width=800).detect(photo)[0]
    frame = live_frame(photo, box)
    id_photo = id_card_photo(
        read_image_rgb(args.faces / "obama2.jpg"),
        FaceAnalyzer(detect_width=800).detect(read_image_rgb(args.faces / "obama2.jpg"))[0],
    )
    for _ in range(2):  # warm-up: first calls page the models in
        analyzer.encode(frame, analyzer.detect(frame)[0])
    detect_times, encode_times, times = [], [], []
    for _ in range(args.runs):
        started = time.perf_counter()
        found = analyzer.detect(frame)
        detected = time.perf_counter()
        analyzer.encode(frame, found[0])
        ended = time.perf_counter()
        detect_times.append((detected - started) * 1000)
        encode_times.append((ended - detected) * 1000)
        times.append((ended - started) * 1000)
    detect_encode = statistics.median(times)

    # Preview loop: a consumer takes every new frame (as the UI clock would) while matches run.
    camera = SimulatedCamera([frame], fps=30, noise_sigma=2.0)
    shown = 0
    matches = 0
    # No liveness step here: the bench measures the preview while real matches run.
    config = WorkerConfig(accept_distance=matcher.accept_distance, reject_distance=matcher.reject_distance)
    decisions = []
    with FacePipeline(camera, config, require_liveness=False) as pipeline:
        index = 0
        while pipeline.preview().quality is None or not pipeline.preview().quality.ok:
            index = pipeline.wait_for_frame(index, 1.0)
        done = threading.Event()
        started = time.monotonic()
        while time.monotonic() - started < 3.0:
            done.clear()
            pipeline.request_match(id_photo, lambda r: (decisions.append(r), done.set()))
            while not done.is_set():
                new = pipeline.wait_for_frame(index, 0.2)
                if new > index:
                    shown += 1
                    index = new
            matches += 1
        elapsed = time.monotonic() - started
    preview_fps = shown / elapsed

    rows = pair_table(args.faces, matcher)
    genuine = [r.distance for r in rows if r.same_person]
    impostor = [r.distance for r in rows if not r.same_person]
    return {
        "detect_encode_ms": round(detect_encode, 1),
        "detect_ms": round(statistics.median(detect_times), 1),
        "encode_ms": round(statistics.median(encode_times), 1),
        "detect_encode_target_ms": 150,
        "detect_encode_ratio_to_target": round(detect_encode / 150, 3),
        "preview_fps_while_matching": round(preview_fps, 1),
        "preview_fps_target": 25,
        "preview_fps_ratio_to_target": round(preview_fps / 25, 3),
        "matches_during_preview": matches,
        "match_decisions": sorted(
            {getattr(getattr(d, "decision", None), "value", type(d).__name__) for d in decisions}
        ),
        "accept_distance": matcher.accept_distance,
        "reject_distance": matcher.reject_distance,
        "genuine_max": round(max(genuine), 3),
        "impostor_min": round(min(impostor), 3),
        "pairs": [
            {
                "reference_id_photo": r.reference,
                "live": r.probe,
                "same_person": r.same_person,
                "distance": round(r.distance, 3),
            }
            for r in sorted(rows, key=lambda r: r.distance)
        ],
    }
