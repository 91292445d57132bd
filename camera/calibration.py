"""Threshold calibration on the shared test photos (阈值标定).

Every live frame (a photo placed in a 640×480 frame, :func:`camera.scenes.live_frame`) is
compared with every other photo turned into a 102×126 ID card photo
(:func:`camera.scenes.id_card_photo`): same-person pairs (genuine) and different-person pairs
(impostor). The table is what the accept/reject bands in ``[face]`` are chosen from; the bench
prints it and the tests check the bands separate it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from camera.analysis import FaceAnalyzer
from camera.capture import read_image_rgb
from camera.match import FaceMatcher
from camera.scenes import id_card_photo, live_frame

# The portraits of shared/testdata/faces and whose they are (README there).
PORTRAITS = {
    "obama.jpg": "A",
    "obama2.jpg": "A",
    "obama3.jpg": "A",
    "obama-240p.jpg": "A",
    "biden.jpg": "B",
    "biden2.jpg": "B",
}


@dataclass(frozen=True)
class PairDistance:
    reference: str  # file the 102×126 ID photo was made from
    probe: str  # file the live frame was made from
    same_person: bool
    distance: float
    assumed_box: bool  # the ID photo's face was not detected; the known box was used


def pair_table(faces_dir: Path, matcher: FaceMatcher | None = None) -> list[PairDistance]:
    matcher = matcher or FaceMatcher()
    finder = FaceAnalyzer(detect_width=800)
    references = {}
    probes = {}
    for name in PORTRAITS:
        photo = read_image_rgb(faces_dir / name)
        box = finder.detect(photo)[0]
        references[name] = matcher.encode_reference(id_card_photo(photo, box))
        probes[name] = matcher.encode_probe(live_frame(photo, box))
    rows = []
    for ref_name, ref in references.items():
        for probe_name, probe in probes.items():
            if ref_name == probe_name:
                continue
            result = matcher.compare(ref, probe)
            rows.append(
                PairDistance(
                    ref_name,
                    probe_name,
                    PORTRAITS[ref_name] == PORTRAITS[probe_name],
                    result.distance,
                    ref.assumed_box,
                )
            )
    return rows
