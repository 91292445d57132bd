"""Every message key and error code of the PIN pad has a text in both languages."""

from __future__ import annotations

import pytest

from kiosk.devices import pinpad as d
from kiosk.i18n import load_messages
from kiosk.pins import PinRefusal

ERRORS = [cls for cls in vars(d).values() if isinstance(cls, type) and issubclass(cls, d.PinPadError)]
KEYS = sorted(
    {cls.default_message_key for cls in ERRORS}
    | {cls.default_code for cls in ERRORS}
    | {r.message_key for r in PinRefusal}
    | {"pinpad.ready", "pinpad.busy", "pinpad.battery", "pinpad.simulated_keypad"}
)


@pytest.mark.parametrize("language", ["zh_CN", "en"])
def test_every_pinpad_key_has_a_text(language: str) -> None:
    messages = load_messages(language)
    missing = [key for key in KEYS if not messages.get(key)]
    assert missing == []


def test_chinese_texts_are_chinese() -> None:
    zh, en = load_messages("zh_CN"), load_messages("en")
    assert all(zh[key] != en[key] for key in KEYS)
