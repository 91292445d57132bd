"""Synthetic touches (模拟触摸) for the UI tests and the scripted citizen of ``kiosk demo --headless``.

:func:`find_choice` finds the widget a citizen would press to answer ``choice`` (docs/screens.md:
every answering widget carries ``choice``); :func:`touch` presses it the way a finger does — a
touch down and up through the window's input dispatch — so the real path is exercised: the screen
manager, ScrollViews, disabled widgets, the countdown reset and the app's touch counter.

Call these on the Kivy thread. A widget inside a ScrollView is scrolled into view first; a
ScrollView hands a short tap to its content only after a short delay (its ``scroll_timeout``
logic, up to 0.2 s), so the answer may arrive a few frames after :func:`touch` returns.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Any

from kivy.base import EventLoop
from kivy.clock import Clock
from kivy.input.motionevent import MotionEvent
from kivy.uix.screenmanager import ScreenManager
from kivy.uix.scrollview import ScrollView
from kivy.uix.widget import Widget

_touch_ids = itertools.count(1)


class SyntheticTouch(MotionEvent):
    """A single-finger touch at window coordinates (x, y), dispatched like a real one."""

    def __init__(self, x: float, y: float) -> None:
        window = EventLoop.window
        super().__init__(
            "synthetic",
            next(_touch_ids),
            {"x": x / max(1.0, window.width - 1.0), "y": y / max(1.0, window.height - 1.0)},
            is_touch=True,
            type_id="touch",
        )
        self.profile = ["pos"]

    def depack(self, args: dict[str, float]) -> None:
        self.sx = args["x"]
        self.sy = args["y"]
        super().depack(args)

    def down(self) -> None:
        EventLoop.post_dispatch_input("begin", self)

    def up(self) -> None:
        EventLoop.post_dispatch_input("end", self)


def _shown(widget: Widget) -> bool:
    return widget.opacity > 0 and not widget.disabled


def find_choice(root: Any, choice: str) -> Widget | None:
    """The first shown, enabled, non-empty widget under ``root`` (a widget, or an app with a
    ``manager``) whose ``choice`` is ``choice``, in reading order; None if there is none. Only the
    current screen of a ScreenManager is searched; hidden (opacity 0) or disabled branches are
    skipped."""
    start = getattr(root, "manager", None) if not isinstance(root, Widget) else root
    if start is None:
        return None

    def visit(widget: Widget) -> Widget | None:
        if not _shown(widget):
            return None
        if getattr(widget, "choice", None) == choice and widget.width > 0 and widget.height > 0:
            return widget
        if isinstance(widget, ScreenManager):
            children = [widget.current_screen] if widget.current_screen is not None else []
        else:
            children = list(reversed(widget.children))  # Kivy keeps the last added first
        for child in children:
            found = visit(child)
            if found is not None:
                return found
        return None

    return visit(start)


def _ancestors(widget: Widget) -> list[Widget]:
    chain = []
    parent = widget.parent
    while parent is not None and parent is not parent.parent:
        chain.append(parent)
        parent = parent.parent
    return chain


def settled(widget: Widget) -> bool:
    """True when a touch would reach ``widget`` where it is drawn: no screen transition running
    and no layout pending above it (positions are final)."""
    for ancestor in [widget, *_ancestors(widget)]:
        if isinstance(ancestor, ScreenManager) and ancestor.transition.is_active:
            return False
        trigger = getattr(ancestor, "_trigger_layout", None)
        if trigger is not None and getattr(trigger, "is_triggered", False):
            return False
    return True


def bring_into_view(widget: Widget) -> None:
    """Scrolls every ScrollView around ``widget`` (innermost first) so that it is shown."""
    for ancestor in _ancestors(widget):
        if isinstance(ancestor, ScrollView) and not _fully_inside(widget, ancestor):
            # Only when hidden: scroll_to on content shorter than the view moves it off where
            # it is drawn, and the touch would then miss.
            ancestor.scroll_to(widget, padding=10, animate=False)
            ancestor.update_from_scroll()


def _fully_inside(widget: Widget, view: Widget) -> bool:
    left, bottom = widget.to_window(widget.x, widget.y)
    right, top = widget.to_window(widget.right, widget.top)
    v_left, v_bottom = view.to_window(view.x, view.y)
    v_right, v_top = view.to_window(view.right, view.top)
    return left >= v_left - 1 and right <= v_right + 1 and bottom >= v_bottom - 1 and top <= v_top + 1


def _inside(x: float, y: float, widget: Widget) -> bool:
    left, bottom = widget.to_window(widget.x, widget.y)
    right, top = widget.to_window(widget.right, widget.top)
    return left <= x <= right and bottom <= y <= top


def touch(widget: Widget) -> bool:
    """Touches ``widget`` at its centre (down, then up). Returns False without touching when it
    cannot be reached yet (a transition or layout pending: retry after a frame) or its centre
    lies outside the window or a ScrollView around it."""
    if not settled(widget):
        return False
    bring_into_view(widget)
    x, y = widget.to_window(*widget.center)
    window = EventLoop.window
    if window is None or not (0 <= x < window.width and 0 <= y < window.height):
        return False
    if any(isinstance(a, ScrollView) and not _inside(x, y, a) for a in _ancestors(widget)):
        return False
    finger = SyntheticTouch(x, y)
    finger.down()
    finger.up()
    return True


def press(root: Any, choice: str) -> Widget | None:
    """Finds the widget answering ``choice`` under ``root`` and touches it; returns the widget
    touched, or None (not shown, disabled, or not reachable yet)."""
    widget = find_choice(root, choice)
    if widget is None or not touch(widget):
        return None
    return widget


def run_on_ui(fn: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Runs ``fn`` on the Kivy thread from another thread (a scripted citizen) and returns its
    result; its exception is raised here. TimeoutError if the UI thread did not run it in time."""
    box: dict[str, Any] = {}
    ready = threading.Event()

    def run(_dt: float) -> None:
        try:
            box["value"] = fn()
        except Exception as exc:  # handed to the calling thread
            box["error"] = exc
        ready.set()

    Clock.schedule_once(run, 0)
    if not ready.wait(timeout):
        raise TimeoutError("the UI thread did not run the action")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def stop_when(done: threading.Event, app: Any, interval_s: float = 0.1) -> None:
    """Stops ``app`` once ``done`` is set (checked on the Kivy clock)."""

    def check(_dt: float) -> None:
        if done.is_set():
            app.stop()

    Clock.schedule_interval(check, interval_s)
