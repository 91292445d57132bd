"""Suite-wide set-up. Kivy reads its environment at import, so it is set here, first."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"

os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
os.environ.setdefault("KIVY_NO_FILELOG", "1")
os.environ.setdefault("KIVY_HOME", str(REPO_ROOT / ".kivy"))
if not os.environ.get("DISPLAY"):
    # Real pixels without X: Mesa llvmpipe through EGL (research/deps.md §3).
    os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")
    # Mesa's software renderer on the UI thread (kiosk.app.use_software_renderer_on_ui_thread).
    os.environ.setdefault("LP_NUM_THREADS", "0")
# No sound card in CI: voice prompts play into the dummy audio driver.
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import pytest  # noqa: E402

# One pcscd and one simulated chip station for the whole run, whichever directory asks first.
from tests.pcsc_session import pcscd, simulator  # noqa: E402, F401


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return SHARED


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    path = SHARED / "testdata" / "faces"
    if not path.is_dir():
        pytest.fail(f"test photos missing: {path} (../shared must sit beside the repo)")
    return path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("KIOSK_HARDWARE_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="needs real hardware (set KIOSK_HARDWARE_TESTS=1)")
    for item in items:
        if "hardware" in item.keywords:
            item.add_marker(skip)
