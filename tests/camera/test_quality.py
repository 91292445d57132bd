"""The quality gate passes good frames and names what is wrong with bad ones."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from camera.capture import read_image_rgb
from camera.quality import QualityGate
from camera.scenes import close_eyes, live_frame
from kiosk.devices.camera import QualityIssue
from kiosk.i18n import load_messages


@pytest.fixture(scope="module")
def gate(analyzer) -> QualityGate:
    return QualityGate(analyzer)


@pytest.mark.parametrize("name", ["obama.jpg", "obama3.jpg", "obama-240p.jpg", "biden.jpg", "biden2.jpg"])
def test_frontal_portraits_pass(gate, portraits, name) -> None:
    result = gate.assess(portraits[name].frame)
    assert result.ok, result
    assert result.hint_key == "camera.hint.ok"


def test_turned_face_is_not_frontal(gate, portraits) -> None:
    assert QualityIssue.NOT_FRONTAL in gate.assess(portraits["obama2.jpg"].frame).issues


def test_partial_face_is_refused(gate, faces_dir) -> None:
    photo = read_image_rgb(faces_dir / "obama_partial_face.jpg")
    frame = cv2.resize(photo, (round(480 * photo.shape[1] / photo.shape[0]), 480))
    canvas = np.full((480, 640, 3), 200, np.uint8)
    canvas[:, : frame.shape[1]] = frame
    result = gate.assess(canvas)
    assert not result.ok and QualityIssue.FACE_CUT_OFF in result.issues


def test_two_people_are_refused(gate, faces_dir) -> None:
    photo = read_image_rgb(faces_dir / "two_people.jpg")
    frame = cv2.resize(photo, (640, round(640 * photo.shape[0] / photo.shape[1])))
    result = gate.assess(frame)
    assert result.issues == (QualityIssue.SEVERAL_FACES,)


def test_empty_frame_has_no_face(gate) -> None:
    result = gate.assess(np.full((480, 640, 3), 90, np.uint8))
    assert result.issues == (QualityIssue.NO_FACE,) and result.face is None


def test_closed_eyes_checked_by_the_ear_measure_are_refused(gate, portraits, frame_boxes, analyzer) -> None:
    frame, open_ear, closed_ear = close_eyes(
        portraits["biden2.jpg"].frame, frame_boxes["biden2.jpg"], analyzer
    )
    assert closed_ear < gate.thresholds.min_eye_aspect_ratio <= open_ear
    assert QualityIssue.EYES_CLOSED in gate.assess(frame).issues


def test_size_position_light_focus_and_hat(gate, portraits, frame_boxes) -> None:
    p = portraits["obama.jpg"]
    assert gate.assess(live_frame(p.photo, p.box, face_width_ratio=0.12)).hint_key == "camera.hint.too_far"
    assert QualityIssue.TOO_CLOSE in gate.assess(live_frame(p.photo, p.box, face_width_ratio=0.75)).issues
    assert QualityIssue.OFF_CENTRE in gate.assess(live_frame(p.photo, p.box, centre=(0.2, 0.45))).issues
    assert gate.assess((p.frame * 0.25).astype(np.uint8)).hint_key == "camera.hint.too_dark"
    assert (
        gate.assess(np.clip(p.frame.astype(int) + 140, 0, 255).astype(np.uint8)).hint_key
        == "camera.hint.too_bright"
    )
    assert gate.assess(cv2.GaussianBlur(p.frame, (0, 0), 4)).hint_key == "camera.hint.blurry"
    box = frame_boxes["obama.jpg"]
    hat = p.frame.copy()
    cv2.rectangle(hat, (box.left - 30, 0), (box.right + 30, box.top + box.height // 8), (30, 30, 120), -1)
    result = gate.assess(hat)
    assert result.issues == (QualityIssue.HEAD_COVERED,), result


def test_every_hint_has_chinese_and_english_text() -> None:
    zh, en = load_messages("zh_CN"), load_messages("en")
    for issue in QualityIssue:
        assert issue.message_key in zh and issue.message_key in en
    assert zh["camera.hint.too_far"] == "靠近一点"
    assert zh["camera.hint.head_covered"] == "请摘下帽子"
