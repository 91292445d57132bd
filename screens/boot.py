"""Starts the Kivy app. Kivy's window settings must be set before ``kivy.core.window`` is
imported (it creates the window), so this module configures Kivy first and only then imports
:mod:`screens.app`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiosk.runtime import KioskCore


def run_kiosk_ui(
    core: KioskCore,
    staff_accounts: Any,
    *,
    screenshot_dir: Path | None = None,
    on_first_frame: Callable[[], None] | None = None,
    exit_after_s: float | None = None,
    actions: list[tuple[float, Callable[[Any], None]]] | None = None,
    heartbeat: Callable[[], None] | None = None,
    heartbeat_s: float = 10.0,
    demo_pinpad_press: Callable[[str], Any] | None = None,
    auto_screenshots: bool = True,
) -> None:
    """Runs the app until it is closed (or ``exit_after_s``); ``actions`` are (delay, callable(ui))
    pairs scheduled after start (the demo's screenshot tour uses them)."""
    from kivy.config import Config

    config = core.config
    Config.set("graphics", "width", str(config.kiosk.window_width))
    Config.set("graphics", "height", str(config.kiosk.window_height))
    Config.set("graphics", "fullscreen", "auto" if config.kiosk.fullscreen else "0")
    Config.set("kivy", "exit_on_escape", "0")
    Config.set("input", "mouse", "mouse,disable_multitouch")
    from kivy.clock import Clock

    from screens.app import KioskUI

    ui = KioskUI(
        core, staff_accounts=staff_accounts, screenshot_dir=screenshot_dir, on_first_frame=on_first_frame,
        demo_pinpad_press=demo_pinpad_press, auto_screenshots=auto_screenshots,
    )
    for delay, action in actions or []:
        Clock.schedule_once(lambda _dt, a=action: a(ui), delay)
    if heartbeat is not None:
        # Called from the UI loop itself: when the UI freezes, the heartbeat stops.
        Clock.schedule_interval(lambda _dt: heartbeat(), heartbeat_s)
    if exit_after_s is not None:
        Clock.schedule_once(lambda _dt: ui.stop(), exit_after_s)
    ui.run()
