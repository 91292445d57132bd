"""The PIN entry as the citizen sees it (密码输入界面): the PIN services' observer turned into
display prompts for the ``pin_entry`` screen. One dot per key event, a countdown, the reason a
PIN was refused. No digit ever reaches the UI: key events carry only how many were entered."""

from __future__ import annotations

from kiosk.devices.pinpad import KeyEvent, KeyEventKind
from kiosk.pins import EntryStep, PinPurpose, PinRefusal
from kiosk.prompts import Prompt, Prompter

SCREEN = "pin_entry"

_STEP_KEYS = {
    (PinPurpose.SOCIAL_SECURITY, EntryStep.FIRST): "pinpad.enter_social_security_pin",
    (PinPurpose.SOCIAL_SECURITY, EntryStep.CONFIRM): "pinpad.confirm_social_security_pin",
    (PinPurpose.FINANCIAL, EntryStep.FIRST): "pinpad.enter_financial_pin",
    (PinPurpose.FINANCIAL, EntryStep.CONFIRM): "pinpad.confirm_financial_pin",
}
_TITLE_KEYS = {
    PinPurpose.SOCIAL_SECURITY: "pin_entry.title_social_security",
    PinPurpose.FINANCIAL: "pin_entry.title_financial",
}


class PromptingPinObserver:
    """A :class:`kiosk.pins.PinEntryObserver` that shows the ``pin_entry`` screen. Called on the
    PIN pad's entry thread; :meth:`Prompter.show` hands the prompt to the UI thread."""

    def __init__(self, prompter: Prompter, length: int = 6) -> None:
        self.prompter = prompter
        self.length = length
        self._data: dict[str, object] = {}
        self._refusal: str = ""

    def entry_started(self, purpose: PinPurpose, step: EntryStep, attempt: int, timeout_s: int) -> None:
        self._data = {
            "title_key": _TITLE_KEYS[purpose],
            "step_key": _STEP_KEYS[(purpose, step)],
            "attempt": attempt,
            "length": self.length,
            "digits": 0,
            "refusal_key": self._refusal,
            "update": False,
        }
        self._refusal = ""
        self.prompter.show(Prompt(SCREEN, dict(self._data), timeout_s=float(timeout_s), voice_key=_STEP_KEYS[(purpose, step)]))

    def key(self, event: KeyEvent) -> None:
        if event.kind in (KeyEventKind.DIGIT, KeyEventKind.CLEAR):
            self._data.update(digits=event.digits_entered, update=True)
            self.prompter.show(Prompt(SCREEN, dict(self._data)))

    def refused(self, purpose: PinPurpose, reason: PinRefusal) -> None:
        # Shown with the next entry's prompt, which comes right after.
        self._refusal = reason.message_key
