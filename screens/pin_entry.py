"""PIN entry (密码输入): the citizen types on the encrypted PIN pad; this screen shows one dot per
key event, the countdown, what to do, and why a PIN was refused. It never receives a digit.

In ``kiosk demo`` a stand-in keypad, clearly marked as simulated, presses the simulated pad's keys
(the composition root hands the app a ``demo_pinpad_press`` callable; screens know no device)."""

from __future__ import annotations

from kivy.app import App
from kivy.properties import NumericProperty, StringProperty

from kiosk.prompts import Prompt
from screens.base import PromptScreen, Reply


class PinEntryScreen(PromptScreen):
    digits = NumericProperty(0)
    length = NumericProperty(6)
    refusal_key = StringProperty("")
    step_key = StringProperty("")

    def present(self, prompt: Prompt, reply: Reply | None) -> None:
        if prompt.data.get("update") and self.prompt is not None:
            # A key event: the dots change, the countdown runs on.
            self.digits = int(prompt.data.get("digits", 0))
            return
        super().present(prompt, reply)
        if prompt.timeout_s:
            app = App.get_running_app()
            # Informative: the PIN pad itself ends the entry at its timeout.
            self.ids.countdown.start(prompt.timeout_s, lambda: None)
            if app is not None:
                app.touched()

    def fill(self) -> None:
        self.digits = int(self.data.get("digits", 0))
        self.length = int(self.data.get("length", 6))
        self.refusal_key = str(self.data.get("refusal_key") or "")
        self.step_key = str(self.data.get("step_key") or "")
