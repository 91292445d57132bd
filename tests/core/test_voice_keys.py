"""Every voice prompt a flow asks for is built at set-up (``python -m kiosk.voice --build-missing``)."""

from __future__ import annotations

import re
from pathlib import Path

from kiosk.i18n import Translator
from kiosk.voice import spoken_keys

FLOWS = Path(__file__).resolve().parents[2] / "kiosk" / "flows"


def test_every_literal_voice_key_of_the_flows_is_built_in_both_languages() -> None:
    literal = set()
    for path in FLOWS.glob("*.py"):
        literal |= set(re.findall(r'voice_key="([^"]+)"', path.read_text(encoding="utf-8")))
    assert len(literal) > 20  # the scan found the flows' prompts
    translator = Translator()
    for language in ("zh_CN", "en"):
        spoken = set(spoken_keys(language))
        missing = sorted(k for k in literal if k not in spoken)
        assert not missing, (language, missing)
        assert all(translator.has(k, language) for k in literal)


def test_run_time_keys_are_built_too() -> None:
    spoken = set(spoken_keys())
    for choice in ("mismatch", "liveness_failed", "face_error", "timeout"):
        assert f"visit.face.retry_{choice}" in spoken
