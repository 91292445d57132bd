"""Voice prompts (语音提示): one audio file per message key and language.

Every voice prompt is also shown as text (the key's catalog text). Files are looked up in the
configured ``kiosk.voice_dir`` first (a site drops recorded files there: ``<lang>/<key>.wav``),
then in the generated cache, which ``python -m kiosk.voice --build-missing`` fills with
espeak-ng (Mandarin ``cmn``, English ``en``) from the catalogs. A cached file records the hash
of its text, so a changed text is spoken anew.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

from kiosk.i18n import Translator, po_files, read_catalog

CACHE_DIR = Path(__file__).resolve().parents[1] / "var" / "voice"
ESPEAK_VOICES = {"zh_CN": "cmn", "en": "en"}

# Keys spoken when their screen appears. Business flows add theirs through Prompt.voice_key,
# some of them made at run time (a notice's reason, a retry's cause): every text of the flow
# catalogs without placeholders is built too (spoken_keys), so the files exist before a citizen
# needs them.
VOICE_KEYS: tuple[str, ...] = (
    "home.insert_id",
    "ui.please_wait",
    "notice.title",
    "notice.printed",
)
FLOW_CATALOGS = ("flows", "flows_more", "backend")  # backend: the one-time notices' reasons


def spoken_keys(language: str = "zh_CN") -> tuple[str, ...]:
    """VOICE_KEYS and every flow-catalog key whose text has no placeholder."""
    keys = list(VOICE_KEYS)
    for path in po_files(language):
        if path.stem in FLOW_CATALOGS:
            keys += [key for key, text in read_catalog(path, language) if "{" not in text]
    return tuple(dict.fromkeys(keys))


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def cached_path(key: str, language: str, text: str, cache_dir: Path = CACHE_DIR) -> Path:
    return cache_dir / language / f"{key}.{text_hash(text)}.wav"


def find_prompt(
    key: str, language: str, translator: Translator, site_dir: Path | None = None, cache_dir: Path = CACHE_DIR
) -> Path | None:
    """The audio file for ``key`` in ``language``: a recorded site file, else the generated one."""
    if site_dir is not None:
        recorded = site_dir / language / f"{key}.wav"
        if recorded.exists():
            return recorded
    generated = cached_path(key, language, translator.text(key, language), cache_dir)
    return generated if generated.exists() else None


def build_missing(translator: Translator, keys: tuple[str, ...] | None = None, cache_dir: Path = CACHE_DIR) -> list[Path]:
    """Generates the files that are missing or whose text changed (default: :func:`spoken_keys`);
    returns those written."""
    keys = spoken_keys() if keys is None else keys
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    written = []
    for language in translator.languages:
        voice = ESPEAK_VOICES.get(language)
        if voice is None:
            continue
        for key in keys:
            text = translator.text(key, language)
            path = cached_path(key, language, text, cache_dir)
            if path.exists():
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            for stale in path.parent.glob(f"{key}.*.wav"):
                stale.unlink()
            # Slower speech (-s 140) for elderly listeners.
            subprocess.run([espeak, "-v", voice, "-s", "140", "-w", str(path), text], check=True, capture_output=True)
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kiosk.voice", description=__doc__)
    parser.add_argument("--build-missing", action="store_true", help="generate missing prompt files with espeak-ng")
    args = parser.parse_args(argv)
    if args.build_missing:
        written = build_missing(Translator())
        print(f"voice prompts: {len(written)} written in {CACHE_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
