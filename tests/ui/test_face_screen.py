"""The face screen over the real camera pipeline (simulated camera, face work in its child
process): the preview shows the newest frame and the face box, and keeps drawing at the display
rate while a 1:1 match runs."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from camera.capture import SimulatedCamera
from camera.pipeline import FacePipeline
from camera.worker import WorkerConfig
from kiosk.prompts import Prompt
from kiosk.runtime import Services
from kiosk.visit import Flow, Step

pytestmark = [pytest.mark.ui, pytest.mark.slow]


def test_preview_shows_the_face_box_and_keeps_running_while_a_match_runs(make_ui, faces_dir: Path) -> None:
    from camera.analysis import FaceAnalyzer
    from camera.scenes import id_card_photo, live_frame

    finder = FaceAnalyzer(detect_width=800)
    live = np.asarray(Image.open(faces_dir / "obama.jpg").convert("RGB"))
    reference = np.asarray(Image.open(faces_dir / "obama2.jpg").convert("RGB"))
    frame = live_frame(live, finder.detect(live)[0])  # 640×480, the face framed as at the kiosk
    id_photo = id_card_photo(reference, finder.detect(reference)[0])  # 102×126
    camera = SimulatedCamera([frame], fps=30, noise_sigma=2.0)
    pipeline = FacePipeline(camera, WorkerConfig(), require_liveness=False)
    pipeline.start()
    matches: list[object] = []
    try:
        def face_step(ctx):
            ctx.ask(Prompt("face", {"preview": pipeline.preview}, choices=("ok",), timeout_s=60))

        h = make_ui(flows={"face": Flow("face", "app.title", (Step("face", face_step),))}, services=Services())
        h.ui.start_business("face")
        h.wait_for(lambda: h.ui.manager.current == "face")
        preview = h.screen.ids.preview
        h.wait_for(lambda: preview.frames_shown >= 10, timeout=10)
        h.wait_for(lambda: pipeline.preview().face is not None, timeout=10)
        # A good frame must exist before a match can use it (the quality gate passed once).
        h.wait_for(lambda: (q := pipeline.preview().quality) is not None and q.ok, timeout=10)
        h.pump(0.3)
        assert len(preview.canvas.after.children) > 0, "no face box drawn"
        assert h.screen.hint_key.startswith("camera.")
        before = preview.frames_shown
        started = time.monotonic()
        pipeline.request_match(id_photo, matches.append)
        h.wait_for(lambda: bool(matches), timeout=20)
        elapsed = time.monotonic() - started
        h.pump(0.5)
        shown = preview.frames_shown - before
        fps = shown / (elapsed + 0.5)
        # A real figure: the preview drew frames the whole time the match ran.
        print(f"preview drew {fps:.1f} frames/s while a match ran for {elapsed:.2f} s")
        assert fps >= 10, f"preview stalled while matching: {fps:.1f} frames/s"
        shot = h.ui.take_screenshot("face")
        assert shot is not None
        assert getattr(matches[0], "decision", None) is not None, matches[0]
        assert elapsed > 0.05, "the match returned at once: nothing was measured"
        h.screen.cancel()
        h.wait_for(lambda: not h.core.visit_running)
    finally:
        pipeline.stop()
