"""Every text a person reads comes from the catalogs, in both languages."""

from __future__ import annotations

import re
from pathlib import Path

from kiosk.i18n import Translator, load_messages

REPO = Path(__file__).resolve().parents[2]
KEY_CALLS = re.compile(r"""(?:\bt|\.text|_t)\(\s*["']([a-z_]+\.[a-z0-9_.]+)["']""")
KEY_FIELDS = re.compile(r"""(?:_key|message_key)\s*[:=]\s*["']([a-z_]+\.[a-z0-9_.]+)["']""")


def keys_used_in_code() -> set[str]:
    keys: set[str] = set()
    for folder in ("kiosk", "screens"):
        for path in (REPO / folder).rglob("*"):
            if path.suffix not in (".py", ".kv") or "locale" in path.parts:
                continue
            text = path.read_text(encoding="utf-8")
            keys.update(KEY_CALLS.findall(text))
            keys.update(KEY_FIELDS.findall(text))
    return keys


def test_both_languages_define_the_same_keys() -> None:
    zh, en = load_messages("zh_CN"), load_messages("en")
    assert set(zh) - set(en) == set(), "keys missing in English"
    assert set(en) - set(zh) == set(), "keys missing in Chinese"


def test_every_key_used_in_the_code_is_in_the_catalogs() -> None:
    zh = load_messages("zh_CN")
    used = keys_used_in_code()
    assert len(used) > 30, "the scan found too few keys: the pattern is broken"
    missing = sorted(k for k in used if k not in zh)
    assert missing == []


def test_chinese_is_the_default_and_english_switchable() -> None:
    t = Translator()
    assert t.language == "zh_CN"
    assert t.text("app.title") == "社会保障卡自助服务"
    assert t.text("app.title", "en") == "Social Security Card Self-Service"
    assert t.text("ui.countdown", "en", seconds=9) == "9 s left"
