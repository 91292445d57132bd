"""Reusable widgets: buttons, the top bar, a visible countdown, a progress panel, a digit keypad,
and the hidden corner that opens the staff/engineer entry. Layout and style are in kv/widgets.kv."""

from __future__ import annotations

import time
from collections.abc import Callable

from kivy.app import App
from kivy.clock import Clock
from kivy.properties import BooleanProperty, ListProperty, NumericProperty, OptionProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.widget import Widget


class KButton(Button):
    """A large touch target. ``kind``: primary, secondary or danger (colour is never the only
    cue: every button also says what it does)."""

    kind = OptionProperty("primary", options=["primary", "secondary", "danger"])
    # What pressing it answers (a prompt choice, "cancel", "key:7", "business:first_issue"):
    # how tests and the scripted citizen of `kiosk demo --headless` find the button to touch.
    choice = StringProperty("")


class TopBar(BoxLayout):
    title_key = StringProperty("app.title")
    show_cancel = BooleanProperty(False)

    def __init__(self, **kwargs: object) -> None:
        self.register_event_type("on_cancel")
        super().__init__(**kwargs)

    def on_cancel(self) -> None:
        pass


class Countdown(BoxLayout):
    """A visible countdown (剩余 N 秒) with a bar. ``start(seconds, on_expire)``; ``touch()``
    restarts it (any activity of the citizen), ``stop()`` ends it without calling back."""

    total = NumericProperty(0)
    remaining = NumericProperty(0)
    running = BooleanProperty(False)

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._deadline = 0.0
        self._on_expire: Callable[[], None] | None = None
        self._event = None

    def start(self, seconds: float, on_expire: Callable[[], None]) -> None:
        self.stop()
        self.total = seconds
        self._on_expire = on_expire
        self._deadline = time.monotonic() + seconds
        self.remaining = seconds
        self.running = True
        self._event = Clock.schedule_interval(self._tick, 0.25)

    def touch(self) -> None:
        if self.running:
            self._deadline = time.monotonic() + self.total
            self.remaining = self.total

    def stop(self) -> None:
        if self._event is not None:
            self._event.cancel()
            self._event = None
        self.running = False

    def _tick(self, _dt: float) -> None:
        self.remaining = max(0.0, self._deadline - time.monotonic())
        if self.remaining <= 0:
            callback = self._on_expire
            self.stop()
            if callback is not None:
                callback()


class ProgressPanel(BoxLayout):
    """What is happening and what comes next: a list of stages (done / now / next), a bar and
    the time left. ``stages`` is a list of (message key, state) with state in done, now, next."""

    stages = ListProperty([])
    fraction = NumericProperty(0.0)
    eta_s = NumericProperty(-1)


class Keypad(BoxLayout):
    """Digits on screen (for a mobile number or a staff password; never a PIN — PINs are entered
    on the encrypted PIN pad). ``value`` holds the digits; ``masked`` shows dots instead."""

    value = StringProperty("")
    max_length = NumericProperty(11)
    masked = BooleanProperty(False)

    def __init__(self, **kwargs: object) -> None:
        self.register_event_type("on_enter")
        super().__init__(**kwargs)

    def press(self, key: str) -> None:
        if key == "back":
            self.value = self.value[:-1]
        elif key == "clear":
            self.value = ""
        elif key == "enter":
            self.dispatch("on_enter", self.value)
        elif key.isdigit() and len(self.value) < self.max_length:
            self.value += key
        app = App.get_running_app()
        if app is not None and hasattr(app, "touched"):
            app.touched()

    def on_enter(self, value: str) -> None:
        pass


class HiddenCorner(Widget):
    """An invisible corner: ``taps`` taps within ``window_s`` seconds fire ``on_unlock`` (the way
    to the staff and engineer login; a citizen never finds it by chance)."""

    taps = NumericProperty(5)
    window_s = NumericProperty(3.0)

    def __init__(self, **kwargs: object) -> None:
        self.register_event_type("on_unlock")
        super().__init__(**kwargs)
        self._times: list[float] = []

    def on_touch_down(self, touch):  # type: ignore[no-untyped-def]
        if not self.collide_point(*touch.pos):
            return False
        now = time.monotonic()
        self._times = [t for t in self._times if now - t <= self.window_s] + [now]
        if len(self._times) >= self.taps:
            self._times = []
            self.dispatch("on_unlock")
        return True

    def on_unlock(self) -> None:
        pass
