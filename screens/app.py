"""The Kivy application (界面外壳): full screen, one ScreenManager, layouts in ``kv/``, a CJK font
as the default, every text through the catalogs (zh_CN default, English on every screen), elder
mode (larger type, slower timeouts), an idle timeout back home, and the staff/engineer entry.

It is handed a :class:`kiosk.runtime.KioskCore` by the composition root and never sees a device.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from kivy.app import App
from kivy.clock import Clock
from kivy.core.text import DEFAULT_FONT, LabelBase
from kivy.core.window import Window
from kivy.lang import Builder
from kivy.properties import BooleanProperty, NumericProperty, ObjectProperty, StringProperty
from kivy.uix.screenmanager import NoTransition, ScreenManager

from kiosk.prompts import Answer, Prompt
from kiosk.runtime import KioskCore
from kiosk.staff import LoginRefused, Role, StaffSession
from kiosk.visit import VisitOutcome
from kiosk.voice import find_prompt
from screens.base import MenuPage, PromptScreen
from screens.generic import MessageScreen, NoticeScreen, ProgressScreen
from screens.face import FaceScreen
from screens.home import HomeScreen
from screens.pin_entry import PinEntryScreen
from screens.prompter import UiPrompter
from screens.staff_entry import StaffLoginScreen, StaffMenuScreen

log = logging.getLogger(__name__)
KV_DIR = Path(__file__).parent / "kv"
SHANGHAI = ZoneInfo("Asia/Shanghai")

# Prompt screens by name: generic ones here; each business adds its own (screen name → class).
PROMPT_SCREENS: dict[str, type[PromptScreen]] = {
    "message": MessageScreen,
    "progress": ProgressScreen,
    "notice": NoticeScreen,
    "pin_entry": PinEntryScreen,
    "face": FaceScreen,
}


KV_FILES = ["widgets.kv", "generic.kv", "home.kv", "staff_entry.kv", "pin_entry.kv", "face.kv"]

# Screen areas, each a module that may define PROMPT_SCREENS (prompt screen name → class),
# SCREENS (page name → Screen class), KV_FILES (files in kv/) and MENU_PAGES (MenuPage list for
# the staff/engineer menu). An area not built yet is skipped.
SCREEN_AREAS: tuple[str, ...] = ("screens.citizen", "screens.citizen_more", "screens.staff_pages", "screens.engineer")


def screen_areas() -> list[Any]:
    import importlib
    import importlib.util

    return [importlib.import_module(name) for name in SCREEN_AREAS if importlib.util.find_spec(name) is not None]


def all_prompt_screens() -> dict[str, type[PromptScreen]]:
    screens = dict(PROMPT_SCREENS)
    for area in screen_areas():
        screens.update(getattr(area, "PROMPT_SCREENS", {}))
    return screens


def all_kv_files() -> list[str]:
    files = list(KV_FILES)
    for area in screen_areas():
        files += [f for f in getattr(area, "KV_FILES", ()) if f not in files]
    return files


def menu_pages(role: str, core: Any = None) -> list[MenuPage]:
    """The staff/engineer menu's pages for ``role`` (staff, supervisor, engineer), in area order.
    With ``core``, an area's ``page_available(screen, core)`` may hide a page this kiosk cannot
    offer (fault injection without simulators)."""
    pages: list[MenuPage] = []
    for area in screen_areas():
        available = getattr(area, "page_available", None)
        pages += [
            p for p in getattr(area, "MENU_PAGES", ())
            if role in p.roles and (core is None or available is None or available(p.screen, core))
        ]
    return pages


def load_kv_files() -> None:
    """Loads the layouts once per process (a second load would apply every rule twice)."""
    for kv in all_kv_files():
        path = str(KV_DIR / kv)
        Builder.unload_file(path)
        Builder.load_file(path)


class KioskUI(App):
    lang = StringProperty("zh_CN")
    elder = BooleanProperty(False)
    font_scale = NumericProperty(1.0)
    clock_text = StringProperty("")
    staff_open = BooleanProperty(False)
    # In the demo: presses a key of the simulated PIN pad (None on a real kiosk).
    demo_pinpad_press = ObjectProperty(None, allownone=True)

    def __init__(
        self,
        core: KioskCore,
        *,
        staff_accounts: Any = None,
        screenshot_dir: Path | None = None,
        on_first_frame: Callable[[], None] | None = None,
        demo_pinpad_press: Callable[[str], Any] | None = None,
        auto_screenshots: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.demo_pinpad_press = demo_pinpad_press
        self.auto_screenshots = auto_screenshots
        self.core = core
        self.staff_accounts = staff_accounts
        self.screenshot_dir = screenshot_dir
        self._on_first_frame = on_first_frame
        self._first_frame_seen = False
        self._last_touch = time.monotonic()
        self._session: StaffSession | None = None
        self.lang = core.config.kiosk.language
        self.title = core.translator.text("app.title", self.lang)
        self.manager: ScreenManager | None = None
        self.shots: list[Path] = []
        self.touches = 0
        self.spoken: list[str] = []
        self._identity: Any = None
        self._sound: Any = None

    # -- text ---------------------------------------------------------------------------------
    def t(self, key: str, lang: str | None = None, **values: Any) -> str:
        try:
            return self.core.translator.text(key, lang or self.lang, **values)
        except (KeyError, IndexError, ValueError):
            return self.core.translator.text(key, lang or self.lang)

    def config_value(self, section: str, key: str) -> Any:
        return getattr(getattr(self.core.config, section), key)

    @property
    def timeout_factor(self) -> float:
        return self.core.config.kiosk.elder_timeout_factor if self.elder else 1.0

    def switch_language(self, lang: str | None = None) -> None:
        languages = list(self.core.config.kiosk.languages)
        self.lang = lang or languages[(languages.index(self.lang) + 1) % len(languages)]
        self._retranslate()

    def toggle_elder(self, on: bool | None = None) -> None:
        self.elder = (not self.elder) if on is None else on
        self.font_scale = self.core.config.kiosk.elder_font_scale if self.elder else 1.0
        self._retranslate()

    def _retranslate(self) -> None:
        if self.manager is None:
            return
        home = self.manager.get_screen("home")
        home.retranslate()
        home.identity_text = self._identity_text(self._identity)
        current = self.manager.current_screen
        if isinstance(current, PromptScreen) and current.prompt is not None:
            current.fill()

    # -- building -----------------------------------------------------------------------------
    def build(self) -> ScreenManager:
        font = self.core.config.kiosk.font_path
        if font.exists():
            LabelBase.register(DEFAULT_FONT, str(font))
        else:
            log.error("CJK font missing at %s: Chinese would render as boxes", font)
        load_kv_files()
        # No shader transition: a fade renders both screens into FBOs each frame (slow on a kiosk
        # PC without a GPU) and, when prompts follow each other fast, left the manager with no
        # screen attached while it still reported the transition as running.
        manager = ScreenManager(transition=NoTransition())
        manager.add_widget(HomeScreen(name="home"))
        for name, cls in all_prompt_screens().items():
            manager.add_widget(cls(name=name))
        manager.add_widget(StaffLoginScreen(name="staff_login"))
        manager.add_widget(StaffMenuScreen(name="staff_menu"))
        for area in screen_areas():
            for name, cls in getattr(area, "SCREENS", {}).items():
                manager.add_widget(cls(name=name))
        if self.auto_screenshots:
            manager.bind(current=lambda *_a: Clock.schedule_once(lambda _dt: self.take_screenshot(), 0.8))
        self.manager = manager
        Window.bind(on_touch_down=self._touch_down)
        Window.bind(on_draw=self._drawn)
        self.core.identity_listeners.append(self._identity_read)
        Clock.schedule_interval(self._tick, 1.0)
        self.refresh_home()
        self._tick(0)
        return manager

    def _drawn(self, *_args: Any) -> None:
        if not self._first_frame_seen and self.manager is not None and self.manager.current == "home":
            self._first_frame_seen = True
            if self._on_first_frame is not None:
                self._on_first_frame()

    # -- the home screen ------------------------------------------------------------------------
    def refresh_home(self) -> None:
        if self.manager is None:
            return
        home: HomeScreen = self.manager.get_screen("home")
        home.businesses = [(b.key, b.title_key, b.description_key) for b in self.core.businesses()]
        ok, blocking = self.core.in_service()
        home.in_service = ok and not self.staff_open
        if self.staff_open:
            home.out_of_service_key = "home.out_of_service_staff"
        elif blocking:
            home.out_of_service_key = blocking[0].message_key
        home.ids.business_grid.disabled = not ok  # out of service: no business can be started
        home.online = self.core.online()

    def _identity_read(self, identity: Any) -> None:
        """Called from the ID reader's thread: an identity (masked) or None when the card left."""
        self._identity = identity
        text = self._identity_text(identity)
        Clock.schedule_once(lambda _dt: self._show_identity(text), 0)

    def _identity_text(self, identity: Any) -> str:
        if identity is None:
            text = ""
        elif identity.validity == "expired":
            text = self.t("home.identity_expired", name=identity.masked_name, id_number=identity.masked_id_number)
        else:
            text = self.t("home.identity_read", name=identity.masked_name, id_number=identity.masked_id_number)
        return text

    def _show_identity(self, text: str) -> None:
        if self.manager is not None:
            self.manager.get_screen("home").identity_text = text
            Clock.schedule_once(lambda _dt: self.take_screenshot(), 0.5)

    def on_stop(self) -> None:
        """The app closes: its clock tick and window handlers go with it (none fires on a dead UI)."""
        Clock.unschedule(self._tick)
        Window.unbind(on_touch_down=self._touch_down)
        Window.unbind(on_draw=self._drawn)

    def _tick(self, _dt: float) -> None:
        self.clock_text = datetime.now(SHANGHAI).strftime("%Y-%m-%d %H:%M")
        if self.manager is None:
            return
        if self.manager.current == "home":
            self.refresh_home()
        elif not self.core.visit_running:
            idle = self.core.config.kiosk.idle_timeout_s * self.timeout_factor
            if time.monotonic() - self._last_touch > idle:
                self.staff_logout() if self._session else self.go_home()

    def touched(self) -> None:
        self._last_touch = time.monotonic()

    def _touch_down(self, *_args: Any) -> None:
        self.touches += 1  # every touch on the screen (the PIN pad is a separate device)
        self.touched()

    def go_home(self) -> None:
        self.staff_open = False
        if self.manager is not None:
            self.manager.current = "home"
            self.refresh_home()

    # -- visits ---------------------------------------------------------------------------------
    def start_business(self, key: str) -> None:
        if self.core.visit_running:
            return
        if not self.core.in_service()[0]:
            self.refresh_home()
            return
        self.touched()
        self.core.start_visit(key, UiPrompter(self.present), on_done=self._visit_done)

    def present(self, prompt: Prompt, reply: Callable[[Answer], None] | None) -> None:
        assert self.manager is not None
        screen = self.manager.get_screen(prompt.screen)
        screen.present(prompt, reply)
        self.manager.current = prompt.screen
        if prompt.voice_key:
            self.speak(prompt.voice_key)

    def speak(self, key: str) -> None:
        """Plays the voice prompt of ``key`` (its text is on the screen as well)."""
        if not self.core.config.kiosk.voice_enabled:
            return
        path = find_prompt(key, self.lang, self.core.translator, self.core.config.kiosk.voice_dir)
        if path is None:
            log.warning("voice prompt missing key=%s lang=%s", key, self.lang)
            return
        from kivy.core.audio import SoundLoader

        if self._sound is not None:
            self._sound.stop()
        self._sound = SoundLoader.load(str(path))
        if self._sound is not None:
            self._sound.play()
        self.spoken.append(key)

    def _visit_done(self, outcome: VisitOutcome) -> None:
        self.last_outcome = outcome
        log.info("visit %s done outcome=%s", outcome.visit_id, outcome.outcome)
        Clock.schedule_once(lambda _dt: self.go_home(), 0)

    # -- staff and engineer entry ---------------------------------------------------------------
    def open_staff_entry(self) -> None:
        if self.core.visit_running or self.manager is None:
            return
        self.staff_open = True
        self.refresh_home()
        self.touched()
        self.manager.current = "staff_login"

    def staff_login(self, role: str, staff_id: str, password: str) -> str | None:
        """Returns an error message key, or None when signed in (then the menu is shown)."""
        if self.staff_accounts is None:
            return "staff.no_accounts"
        roles = (Role.ENGINEER,) if role == "engineer" else (Role.STAFF, Role.SUPERVISOR)
        try:
            self._session = self.staff_accounts.login(staff_id, password, roles)
        except LoginRefused as refused:
            return refused.message_key
        assert self.manager is not None
        menu: StaffMenuScreen = self.manager.get_screen("staff_menu")
        menu.session = self._session
        menu.role_title_key = "menu.engineer_title" if role == "engineer" else "menu.staff_title"
        menu.pages = [(p.screen, p.title_key) for p in menu_pages(self._session.role.value, self.core)]
        self.manager.current = "staff_menu"
        return None

    @property
    def staff_session(self) -> StaffSession | None:
        """The signed-in staff member or engineer (None when the menu is closed)."""
        return self._session

    def open_page(self, name: str) -> None:
        """Opens a staff/engineer page (a screen of an area's SCREENS) from the menu."""
        if self._session is None or self.manager is None:
            return
        self.touched()
        self.manager.current = name

    def back_to_menu(self) -> None:
        if self.manager is not None and self._session is not None:
            self.manager.current = "staff_menu"

    def staff_logout(self) -> None:
        if self._session is not None and self.staff_accounts is not None:
            self.staff_accounts.logout(self._session)
        self._session = None
        self.go_home()

    def device_status_lines(self) -> list[dict[str, str]]:
        lines = []
        for status in self.core.device_statuses():
            lines.append({
                "device": self.t(f"device.name.{status.device}"),
                "state": self.t(f"device.state.{status.state.value}"),
                "code": status.code,
                "message": self.t(status.message_key),
            })
        return lines

    # -- screenshots ----------------------------------------------------------------------------
    def take_screenshot(self, label: str | None = None) -> Path | None:
        if self.screenshot_dir is None or self.manager is None:
            return None
        self.screenshot_dir.mkdir(parents=True, exist_ok=True)
        mode = "elder" if self.elder else "normal"
        name = f"{len(self.shots):03d}-{label or self.manager.current}-{self.lang}-{mode}.png"
        path = self.screenshot_dir / name
        if path.exists():
            path.unlink()
        # Window.screenshot inserts a 4-digit counter before the extension; rename to our name.
        written = Window.screenshot(name=str(path))
        if written:
            os.replace(written, path)
            self.shots.append(path)
            return path
        return None

