"""1:1 match against 102×126 ID photos: the bands on the calibration table, the CLI contract."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from camera.calibration import pair_table
from camera.match import FaceMatcher, id_photo_face_box
from kiosk.cli import main
from kiosk.devices.camera import MatchDecision, NoFace, SeveralFaces, UnreadableImage, decide


@pytest.fixture(scope="module")
def table(faces_dir: Path, matcher: FaceMatcher):
    return pair_table(faces_dir, matcher)


def test_every_genuine_pair_is_accepted_and_every_impostor_rejected(table, matcher: FaceMatcher) -> None:
    genuine = [r for r in table if r.same_person]
    impostor = [r for r in table if not r.same_person]
    assert len(genuine) == 14 and len(impostor) == 16
    for row in genuine:
        assert row.distance <= matcher.accept_distance, row
    for row in impostor:
        assert row.distance >= matcher.reject_distance, row
    # The margin the default bands leave on this (small) set.
    assert max(r.distance for r in genuine) < min(r.distance for r in impostor)


def test_id_photo_is_102_by_126_and_its_face_is_found_after_upscaling(
    portraits, matcher: FaceMatcher
) -> None:
    id_photo = portraits["obama.jpg"].id_photo
    assert id_photo.shape == (126, 102, 3)
    template = matcher.encode_reference(id_photo)
    assert not template.assumed_box
    assert "encoding" not in repr(template)


def test_known_id_photo_box_is_used_when_the_detector_finds_nothing(portraits, matcher: FaceMatcher) -> None:
    # A very soft ID photo (a worn chip image): the detector gives up, the known box still encodes.
    soft = cv2.GaussianBlur(portraits["obama.jpg"].id_photo, (0, 0), 6)
    template = matcher.encode_reference(soft)
    assert template.assumed_box
    box = id_photo_face_box(306, 378)
    assert 0 < box.left < box.right < 306 and 0 < box.top < box.bottom < 378


def test_tight_bands_turn_a_genuine_pair_into_review(portraits, analyzer) -> None:
    strict = FaceMatcher(analyzer, accept_distance=0.2, reject_distance=0.6)
    result = strict.verify(portraits["obama.jpg"].id_photo, portraits["obama2.jpg"].frame)
    assert result.decision is MatchDecision.REVIEW and not result.match


def test_decision_bands() -> None:
    assert decide(0.45, 0.45, 0.55) is MatchDecision.ACCEPT
    assert decide(0.5, 0.45, 0.55) is MatchDecision.REVIEW
    assert decide(0.55, 0.45, 0.55) is MatchDecision.REJECT


def test_verify_refuses_images_without_exactly_one_face(
    matcher: FaceMatcher, faces_dir: Path, portraits
) -> None:
    from camera.capture import read_image_rgb

    blank = np.full((480, 640, 3), 128, np.uint8)
    with pytest.raises(NoFace):
        matcher.verify(portraits["obama.jpg"].id_photo, blank)
    with pytest.raises(SeveralFaces):
        matcher.verify(portraits["obama.jpg"].id_photo, read_image_rgb(faces_dir / "two_people.jpg"))
    with pytest.raises(UnreadableImage):
        read_image_rgb(faces_dir / "README.md")


def _cli(capsys, *argv: str) -> tuple[int, dict]:
    code = main(list(argv))
    out = capsys.readouterr().out.strip().splitlines()[-1]
    return code, json.loads(out)


def test_cli_verify_accepts_same_person_and_rejects_another(capsys, faces_dir: Path) -> None:
    code, body = _cli(
        capsys, "face", "verify", str(faces_dir / "obama.jpg"), str(faces_dir / "obama2.jpg"), "--json"
    )
    assert code == 0 and body["match"] is True and body["decision"] == "accept"
    assert body["distance"] < body["threshold"]
    code, body = _cli(
        capsys, "face", "verify", str(faces_dir / "obama.jpg"), str(faces_dir / "biden.jpg"), "--json"
    )
    assert code == 1 and body["match"] is False and body["decision"] == "reject"


@pytest.mark.parametrize(
    ("probe", "error"),
    [
        ("two_people.jpg", "several_faces"),
        ("README.md", "unreadable_image"),
        ("missing.jpg", "unreadable_image"),
    ],
)
def test_cli_verify_errors_exit_2_with_an_error_object(
    capsys, faces_dir: Path, probe: str, error: str
) -> None:
    code, body = _cli(
        capsys, "face", "verify", str(faces_dir / "obama.jpg"), str(faces_dir / probe), "--json"
    )
    assert code == 2 and body["error"]["code"] == error


def test_cli_verify_no_face(capsys, tmp_path: Path, faces_dir: Path) -> None:
    grey = tmp_path / "grey.png"
    cv2.imwrite(str(grey), np.full((200, 200, 3), 120, np.uint8))
    code, body = _cli(capsys, "face", "verify", str(faces_dir / "obama.jpg"), str(grey))
    assert code == 2 and body["error"]["code"] == "no_face"


def test_cli_verify_takes_a_102x126_id_photo_file(capsys, tmp_path: Path, portraits, faces_dir: Path) -> None:
    id_file = tmp_path / "id.png"
    cv2.imwrite(str(id_file), cv2.cvtColor(portraits["obama3.jpg"].id_photo, cv2.COLOR_RGB2BGR))
    code, body = _cli(capsys, "face", "verify", str(id_file), str(faces_dir / "obama.jpg"), "--json")
    assert code == 0 and body["decision"] == "accept"
    code, body = _cli(capsys, "face", "verify", str(id_file), str(faces_dir / "biden2.jpg"), "--json")
    assert code == 1 and body["decision"] == "reject"
