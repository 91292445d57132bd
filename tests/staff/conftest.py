"""Staff fixtures: the staff rig (tests/staff/rig.py) on a temporary state database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.staff.rig import FONT, StaffRig, build_rig


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[StaffRig]:
    if not FONT.is_file():
        pytest.fail(f"CJK font missing: {FONT} (fonts-wqy-microhei)")
    built = build_rig(tmp_path)
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def artifacts() -> Path:
    """Where the rendered reports are kept for a person to look at."""
    path = Path("/tmp/staff_shots")
    path.mkdir(parents=True, exist_ok=True)
    return path
