"""The base of every prompt screen: it shows a :class:`kiosk.prompts.Prompt` and sends back one
:class:`kiosk.prompts.Answer` (a choice, cancel, or timeout from the visible countdown)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kivy.app import App
from kivy.properties import DictProperty, ObjectProperty
from kivy.uix.screenmanager import Screen

from kiosk.prompts import CANCEL, TIMEOUT, Answer, Prompt

Reply = Callable[[Answer], None]


@dataclass(frozen=True)
class MenuPage:
    """A page of the staff/engineer menu: its screen name, its title key, and the roles
    (``staff``, ``supervisor``, ``engineer``) that see it."""

    screen: str
    title_key: str
    roles: tuple[str, ...]


class PromptScreen(Screen):
    """Subclasses fill their widgets from ``self.data`` in :meth:`fill`."""

    data = DictProperty({})
    prompt = ObjectProperty(None, allownone=True)

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._reply: Reply | None = None

    def present(self, prompt: Prompt, reply: Reply | None) -> None:
        self.prompt = prompt
        self.data = dict(prompt.data)
        self._reply = reply
        self.fill()
        countdown = self.ids.get("countdown")
        if countdown is not None:
            if prompt.timeout_s and reply is not None:
                app = App.get_running_app()
                factor = app.timeout_factor if app is not None else 1.0
                countdown.start(prompt.timeout_s * factor, lambda: self.answer(TIMEOUT))
            else:
                countdown.stop()

    def fill(self) -> None:
        """Fills the widgets from ``self.data``."""

    def answer(self, choice: str, **values: object) -> None:
        """Sends the answer once; later presses on the same prompt are ignored."""
        countdown = self.ids.get("countdown")
        if countdown is not None:
            countdown.stop()
        reply, self._reply = self._reply, None
        if reply is not None:
            reply(Answer(choice, dict(values)))

    def cancel(self) -> None:
        self.answer(CANCEL)

    def on_leave(self, *args: object) -> None:
        # The prompt may have been answered by a device (ID card read): its countdown stops here.
        countdown = self.ids.get("countdown")
        if countdown is not None:
            countdown.stop()

    def on_touch_down(self, touch):  # type: ignore[no-untyped-def]
        countdown = self.ids.get("countdown")
        if countdown is not None:
            countdown.touch()
        app = App.get_running_app()
        if app is not None and hasattr(app, "touched"):
            app.touched()
        return super().on_touch_down(touch)
