"""UI tests: the real Kivy shell in this process, drawn offscreen (SDL + Mesa llvmpipe) or on
Xvfb, with frames pumped by the test."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from kiosk.config import load_config
from kiosk.i18n import Translator
from kiosk.journal import JOURNAL_SCHEMA, Journal
from kiosk.runtime import KioskCore, Services
from kiosk.staff import STAFF_SCHEMA, StaffAccounts
from kiosk.storage import open_state_db


class UiHarness:
    def __init__(self, ui, core, staff) -> None:  # type: ignore[no-untyped-def]
        self.ui = ui
        self.core = core
        self.staff = staff

    def pump(self, seconds: float = 0.2) -> None:
        from kivy.base import EventLoop

        end = time.monotonic() + seconds
        while time.monotonic() < end:
            EventLoop.idle()
            time.sleep(0.005)

    def wait_for(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        from kivy.base import EventLoop

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            EventLoop.idle()
            if condition():
                return
            time.sleep(0.005)
        raise AssertionError("UI condition not reached in time")

    @property
    def screen(self):  # type: ignore[no-untyped-def]
        return self.ui.manager.current_screen


@pytest.fixture
def make_ui(tmp_path: Path) -> Iterator[Callable[..., UiHarness]]:
    from kivy.base import EventLoop

    EventLoop.ensure_window()
    from kivy.core.window import Window

    from screens.app import KioskUI

    built: list[UiHarness] = []

    def factory(flows=None, services=None, **kiosk_overrides) -> UiHarness:  # type: ignore[no-untyped-def]
        config = load_config("demo", env={}, site_file=Path("/nonexistent"))
        config = replace(config, kiosk=replace(config.kiosk, state_dir=tmp_path / "state", **kiosk_overrides))
        conn = open_state_db(tmp_path / "state", {"journal": JOURNAL_SCHEMA, "staff": STAFF_SCHEMA})
        core = KioskCore(config, Translator(config.kiosk.languages), Journal(conn), services or Services(), flows or {})
        staff = StaffAccounts(conn, failures_before_lockout=3, lockout_minutes=15)
        ui = KioskUI(core, staff_accounts=staff, screenshot_dir=tmp_path / "shots")
        root = ui.build()
        ui.root = root
        Window.add_widget(root)
        harness = UiHarness(ui, core, staff)
        built.append(harness)
        harness.pump(0.3)
        return harness

    yield factory
    for harness in built:
        Window.remove_widget(harness.ui.root)
        # kv's `app` proxy caches the running app until on_stop: release it for the next test.
        harness.ui.dispatch("on_stop")
        harness.ui.core.journal.connection.close()
