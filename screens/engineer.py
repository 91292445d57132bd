"""Engineer menu pages (运维工程师菜单): device status, self-tests, fault injection, the log,
outbox tools, configuration and the diagnostics bundle. Layouts in ``kv/engineer.kv``.

The pages hold no rule: each calls the core's :class:`kiosk.engineer.EngineerDesk` with the
signed-in engineer's id (every action is recorded there), on a worker thread when it touches a
device, and shows what came back. Texts are message keys translated in the kv rules (language
and elder mode apply at once); every button sets ``choice`` (docs/screens.md); every page has a
way back to the menu.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from kivy.app import App
from kivy.clock import Clock
from kivy.factory import Factory
from kivy.properties import (
    BooleanProperty,
    DictProperty,
    ListProperty,
    NumericProperty,
    ObjectProperty,
    StringProperty,
)
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.screenmanager import Screen

from kiosk.engineer import EngineerDesk
from kiosk.faults import FaultRefused
from kiosk.siteconfig import ConfigEditRefused
from screens.base import MenuPage
from screens.theme import THEME
from screens.widgets import KButton

log = logging.getLogger(__name__)

ENGINEER = ("engineer",)

MENU_PAGES = [
    MenuPage("eng_status", "engineer.page.status", ENGINEER),
    MenuPage("eng_tests", "engineer.page.tests", ENGINEER),
    MenuPage("eng_faults", "engineer.page.faults", ENGINEER),
    MenuPage("eng_logs", "engineer.page.logs", ENGINEER),
    MenuPage("eng_outbox", "engineer.page.outbox", ENGINEER),
    MenuPage("eng_config", "engineer.page.config", ENGINEER),
    MenuPage("eng_diagnostics", "engineer.page.diagnostics", ENGINEER),
]

KV_FILES = ["engineer.kv"]

# The colour that goes with each state (never the only cue: the state is also written out).
STATE_COLOURS = {"ready": "success", "busy": "primary", "attention": "warning_text", "fault": "danger", "offline": "danger"}


def page_available(screen: str, core: Any) -> bool:
    """Fault injection only where the kiosk runs on simulators (the ``faults`` service)."""
    if screen == "eng_faults":
        return "faults" in core.services.devices
    return True


def _app() -> Any:
    return App.get_running_app()


def desk() -> EngineerDesk:
    """The running app's engineer desk (made on first use)."""
    app = _app()
    found = getattr(app, "engineer_desk", None)
    if found is None:
        found = EngineerDesk(app.core)
        app.engineer_desk = found
    return found


def actor() -> str:
    session = _app().staff_session
    return session.staff_id if session is not None else "?"


def off_ui(work: Callable[[], Any], done: Callable[[Any, BaseException | None], None]) -> threading.Thread:
    """Runs ``work`` on a thread; ``done(result, error)`` is called on the UI thread."""

    def run() -> None:
        result: Any = None
        error: BaseException | None = None
        try:
            result = work()
        except Exception as exc:  # handed to the page, which shows the code
            log.warning("engineer.work_failed error=%s", type(exc).__name__)
            error = exc
        Clock.schedule_once(lambda _dt: done(result, error), 0)

    thread = threading.Thread(target=run, name="engineer-page", daemon=True)
    thread.start()
    return thread


def error_code(exc: BaseException) -> str:
    return str(getattr(exc, "code", "") or f"error.{type(exc).__name__}")


def name_of(check_or_device: str) -> str:
    """A device's or check's name in the current language (the raw name where none is known)."""
    app = _app()
    key = f"engineer.check.{check_or_device}"
    return app.t(key) if app.core.translator.has(key, app.lang) else check_or_device


def fault_label(fault: str) -> str:
    app = _app()
    key = f"engineer.fault.{fault}"
    return app.t(key) if app.core.translator.has(key, app.lang) else fault


def button(text: str, choice: str, on_release: Callable[[], Any], kind: str = "secondary") -> KButton:
    widget = KButton(text=text, choice=choice, kind=kind)
    widget.bind(on_release=lambda _b: on_release())
    return widget


class EngineerPage(Screen):
    """A page of the engineer menu: ``message_key``/``message_values`` is the line at the bottom
    (the outcome of the last action), ``error`` colours it, ``busy`` while a worker runs."""

    message_key = StringProperty("")
    message_values = DictProperty({})
    error = BooleanProperty(False)
    busy = BooleanProperty(False)

    def say(self, message_key: str, error: bool = False, /, **values: Any) -> None:
        self.message_values = {k: str(v) for k, v in values.items()}
        self.message_key = message_key
        self.error = error

    def on_pre_enter(self, *args: Any) -> None:
        self.say("")


# --------------------------------------------------------------------------- device status


class EngStatusRow(BoxLayout):
    """One line of the status page (layout in kv)."""

    device_name = StringProperty("")
    state_text = StringProperty("")
    xfs_state = StringProperty("")
    state_colour = StringProperty("text")
    code = StringProperty("")
    message = StringProperty("")
    fix = StringProperty("")
    blocking = BooleanProperty(False)
    warning = BooleanProperty(False)


class EngineerStatusPage(EngineerPage):
    """Every device and service with its state (and the XFS4IoT state), code, message and fix,
    refreshed every second from the self-check (which runs off the UI thread)."""

    rows = ListProperty([])
    in_service = BooleanProperty(True)
    checked_at = StringProperty("")
    blocking = NumericProperty(0)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._event: Any = None
        self._signature: Any = None

    def on_enter(self, *args: Any) -> None:
        self.refresh()
        self._event = Clock.schedule_interval(lambda _dt: self.refresh(), 1.0)

    def on_leave(self, *args: Any) -> None:
        if self._event is not None:
            self._event.cancel()
            self._event = None

    def refresh(self, force: bool = False) -> None:
        report = desk().report(max_age_s=1.0)
        signature = (report.at, _app().lang)
        if signature == self._signature and not force:
            return
        self._signature = signature
        self.show(report)

    def show(self, report: Any) -> None:
        app = _app()
        self.in_service = report.in_service
        self.blocking = len(report.blocking)
        self.checked_at = report.at.astimezone().strftime("%H:%M:%S")
        rows = []
        # What blocks first, then what needs attention soon, then the rest (in device order).
        ordered = sorted(report.checks, key=lambda c: (not c.blocking, c.ok))
        for check in ordered:
            values = {k: v for k, v in check.values.items()}
            warning = not check.blocking and not check.ok  # low, or worked around (offline mode)
            rows.append({
                "device_name": name_of(check.name),
                "state_text": app.t("engineer.status.warning") if warning else app.t(f"device.state.{check.state.value}"),
                "xfs_state": check.xfs_state,
                "state_colour": "warning_text" if warning else STATE_COLOURS.get(check.state.value, "text"),
                "warning": warning,
                "code": check.code,
                "message": app.t(check.message_key, **values),
                "fix": app.t(check.fix_key),
                "blocking": check.blocking,
            })
        if rows != self.rows:
            self.rows = rows

    def on_rows(self, *_args: Any) -> None:
        box = self.ids.status_rows
        if len(box.children) != len(self.rows):
            box.clear_widgets()
            for _ in self.rows:
                box.add_widget(EngStatusRow())
        for widget, row in zip(reversed(box.children), self.rows, strict=True):
            for key, value in row.items():
                setattr(widget, key, value)

    def check_now(self) -> None:
        self.busy = True

        def done(report: Any, error: BaseException | None) -> None:
            self.busy = False
            if error is not None:
                self.say("engineer.failed", True, code=error_code(error))
                return
            self.show(report)
            self.say("engineer.status.checked")

        off_ui(lambda: desk().run_selfcheck(actor()), done)


# --------------------------------------------------------------------------- self-tests


class EngResult(BoxLayout):
    """One test's last result on the self-test page (layout in kv)."""

    test_name = StringProperty("")
    text = StringProperty("")
    ok = ObjectProperty(None, allownone=True)  # None: not run yet


class EngineerTestsPage(EngineerPage):
    """One button per device self-test; each result with its pass/fail counts. The camera test
    shows the live preview with the face box until it is stopped."""

    tests = ListProperty([])  # test names available on this kiosk
    results = DictProperty({})  # test → {"ok", "passed", "failed", "code", "text"}
    running = StringProperty("")
    camera_on = BooleanProperty(False)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._camera: Any = None
        self._camera_event: Any = None

    def on_pre_enter(self, *args: Any) -> None:
        super().on_pre_enter(*args)
        self.tests = desk().available_tests()
        self.rebuild()

    def on_running(self, *_args: Any) -> None:
        self.rebuild()

    def on_results(self, *_args: Any) -> None:
        self.rebuild()

    def rebuild(self) -> None:
        """The test buttons (disabled while one runs; the camera's turns into "stop") and the
        result of each test run on this page."""
        app = _app()
        buttons, results = self.ids.test_buttons, self.ids.results
        buttons.clear_widgets()
        results.clear_widgets()
        for test in self.tests:
            if test == "camera" and self.camera_on:
                widget = button(app.t("engineer.test.camera_stop"), "test:camera_stop", self.stop_camera, "danger")
            else:
                widget = button(app.t(f"engineer.test.{test}"), f"test:{test}", lambda t=test: self.run(t), "primary")
                widget.disabled = bool(self.running)
            buttons.add_widget(widget)
            found = self.results.get(test)
            results.add_widget(EngResult(
                test_name=app.t(f"engineer.test.{test}"), text=self.result_text(test, self.results, app.lang),
                ok=None if found is None else found["ok"],
            ))

    def on_leave(self, *args: Any) -> None:
        if self._camera is not None:
            self.stop_camera()

    def run(self, test: str) -> None:
        if self.running:
            return
        if test == "camera":
            self.start_camera()
            return
        self.running = test
        self.say("engineer.test.running", test_name=_app().t(f"engineer.test.{test}"))
        off_ui(lambda: desk().run_test(actor(), test), lambda r, e: self._done(test, r, e))

    def _done(self, test: str, result: Any, error: BaseException | None) -> None:
        self.running = ""
        if error is not None:
            self.results = {**self.results, test: {"ok": False, "passed": 0, "failed": 1,
                                                   "code": error_code(error), "key": "engineer.failed", "values": {}}}
            self.say("engineer.failed", True, code=error_code(error))
            return
        self.results = {**self.results, test: {
            "ok": result.ok, "passed": result.passed, "failed": result.failed, "code": result.code,
            "key": result.message_key, "values": {k: str(v) for k, v in result.values.items()},
        }}
        self.say("engineer.test.done_ok" if result.ok else "engineer.test.done_failed", not result.ok,
                 test_name=_app().t(f"engineer.test.{test}"))

    def result_text(self, test: str, results: dict[str, Any], lang: str) -> str:
        app = _app()
        found = results.get(test)
        if not found:
            return app.t("engineer.test.not_run")
        verdict = app.t("engineer.test.pass" if found["ok"] else "engineer.test.fail")
        counts = app.t("engineer.test.counts", passed=found["passed"], failed=found["failed"])
        return f"{verdict}  {counts}  ({found['code']})\n{app.t(found['key'], **found['values'])}"

    # -- camera ----------------------------------------------------------------------------
    def start_camera(self) -> None:
        camera = desk().camera_preview(actor())
        self.running = "camera"
        self.say("engineer.test.camera_starting")

        def started(_result: Any, error: BaseException | None) -> None:
            if error is not None:
                self.running = ""
                self._camera = None
                self._done("camera", camera.result(), None)
                return
            self._camera = camera
            self.camera_on = True
            self.rebuild()
            self.say("engineer.test.camera_running")
            self._camera_event = Clock.schedule_interval(self._frame, 1 / 30)

        off_ui(camera.start, started)

    def _frame(self, _dt: float) -> None:
        if self._camera is None:
            return
        state = self._camera.preview()
        self.ids.preview.show(state)
        _app().touched()

    def stop_camera(self) -> None:
        if self._camera_event is not None:
            self._camera_event.cancel()
            self._camera_event = None
        camera, self._camera = self._camera, None
        self.camera_on = False
        self.rebuild()
        if camera is None:
            return
        result = camera.stop()
        desk().camera_done(actor(), result)
        self._done("camera", result, None)


# --------------------------------------------------------------------------- faults


class EngineerFaultsPage(EngineerPage):
    """The simulators' faults by device: arm one (until cleared), clear a device's faults."""

    devices = ListProperty([])
    device = StringProperty("")
    faults = ListProperty([])
    armed = ListProperty([])
    armed_text = StringProperty("")
    device_text = StringProperty("")
    state_text = StringProperty("")
    state_blocking = BooleanProperty(False)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._event: Any = None

    def on_enter(self, *args: Any) -> None:
        self._event = Clock.schedule_interval(lambda _dt: self.show_state(), 1.0)

    def on_leave(self, *args: Any) -> None:
        if self._event is not None:
            self._event.cancel()
            self._event = None

    def show_state(self) -> None:
        """The chosen device's state now, from the self-check (refreshed off the UI thread)."""
        report = desk().report(max_age_s=1.0)
        found = report.check(self.device) if self.device else None
        if found is None:
            self.state_text, self.state_blocking = "", False
            return
        app = _app()
        self.state_text = app.t("engineer.faults.state", state=app.t(f"device.state.{found.state.value}"), code=found.code)
        self.state_blocking = found.blocking

    def on_pre_enter(self, *args: Any) -> None:
        super().on_pre_enter(*args)
        panel = desk().faults
        self.devices = panel.devices() if panel is not None else []
        if self.devices and self.device not in self.devices:
            self.device = self.devices[0]
        self.show_device()

    def choose(self, device: str) -> None:
        self.device = device
        self.show_device()

    def show_device(self) -> None:
        panel = desk().faults
        if panel is None or not self.device:
            self.faults, self.armed = [], []
        else:
            self.faults = panel.faults(self.device)
            self.armed = panel.armed(self.device)
        self.rebuild()

    def rebuild(self) -> None:
        panel = desk().faults
        devices, faults = self.ids.device_buttons, self.ids.fault_buttons
        devices.clear_widgets()
        faults.clear_widgets()
        self.armed_text = ("、" if _app().lang.startswith("zh") else ", ").join(fault_label(f) for f in self.armed)
        self.show_state()
        self.device_text = name_of(self.device) if self.device else ""
        for device in self.devices:
            armed = len(panel.armed(device)) if panel is not None else 0
            text = ("√ " if device == self.device else "") + name_of(device) + (f"  ({armed})" if armed else "")
            devices.add_widget(button(text, f"device:{device}", lambda d=device: self.choose(d),
                                      "primary" if device == self.device else "secondary"))
        for fault in self.faults:
            armed = fault in self.armed
            text = ("■ " if armed else "") + fault_label(fault)
            faults.add_widget(button(text, f"fault:{self.device}:{fault}", lambda f=fault: self.inject(f),
                                     "danger" if armed else "secondary"))

    def inject(self, fault: str) -> None:
        device = self.device
        try:
            desk().inject_fault(actor(), device, fault)
        except FaultRefused as refused:
            self.say("engineer.faults.refused", True, fault=fault_label(fault), code=refused.code)
            return
        self.armed = desk().faults.armed(device)
        self.rebuild()
        self.say("engineer.faults.injected", fault=fault_label(fault), device=name_of(device))

    def clear(self) -> None:
        desk().clear_faults(actor(), self.device)
        self.armed = []
        self.rebuild()
        self.say("engineer.faults.cleared", device=name_of(self.device))


# --------------------------------------------------------------------------- logs


class EngineerLogsPage(EngineerPage):
    """The last lines of the kiosk's log (redacted at creation, and again here)."""

    level = StringProperty("INFO")
    lines = NumericProperty(0)

    def on_pre_enter(self, *args: Any) -> None:
        super().on_pre_enter(*args)
        desk().log_viewed(actor())
        self.load()

    def set_level(self, level: str) -> None:
        self.level = level
        self.load()

    def load(self) -> None:
        lines = desk().log_lines(limit=120, min_level=self.level)
        self.lines = len(lines)
        box = self.ids.log_lines
        box.clear_widgets()
        # One label per line: a single label for the whole log would outgrow a GL texture.
        for line in lines or [_app().t("engineer.logs.empty")]:
            level = line.split(" ", 3)[2] if line.count(" ") >= 3 else ""
            colour = {"ERROR": "danger", "CRITICAL": "danger", "WARNING": "warning_text"}.get(level, "text")
            box.add_widget(Factory.EngSmall(text=line, color=THEME.rgba(colour)))
        self.ids.scroll.scroll_y = 0  # the newest lines at the bottom, in view


# --------------------------------------------------------------------------- outbox


class EngOutboxRow(BoxLayout):
    """A quarantined message with its reason and the retry button (layout in kv)."""

    message_id = NumericProperty(0)
    line = StringProperty("")
    reason = StringProperty("")


class EngineerOutboxPage(EngineerPage):
    """The offline queue: depth, oldest message's age, quarantined rows with their reasons, retry."""

    available = BooleanProperty(False)
    depth = NumericProperty(0)
    oldest = StringProperty("")
    counts_text = StringProperty("")
    rows = ListProperty([])

    def on_pre_enter(self, *args: Any) -> None:
        super().on_pre_enter(*args)
        self.load()

    def load(self) -> None:
        summary = desk().outbox_summary()
        self.available = summary is not None
        if summary is None:
            self.rows = []
            self.show_rows()
            return
        app = _app()
        self.depth = summary.depth
        age = summary.oldest_age_s
        self.oldest = app.t("engineer.outbox.none") if age is None else _age_text(age)
        self.counts_text = "   ".join(f"{app.t(f'engineer.outbox.state.{s}')} {n}" for s, n in summary.counts.items())
        self.rows = [
            {"message_id": r.id, "line": f"#{r.id}  {r.kind}  {app.t('engineer.outbox.attempts', n=r.attempts)}  "
             f"{r.created_at.astimezone().strftime('%m-%d %H:%M')}", "reason": r.reason or "-"}
            for r in summary.quarantined
        ]
        self.show_rows()

    def show_rows(self) -> None:
        box = self.ids.outbox_rows
        box.clear_widgets()
        for row in self.rows:
            box.add_widget(EngOutboxRow(**row))
        if not self.rows:
            box.add_widget(Factory.EngText(text=_app().t("engineer.outbox.no_quarantined")))

    def retry(self, message_id: int) -> None:
        message_id = int(message_id)
        refused = desk().retry_outbox(actor(), message_id)
        if refused:
            self.say("engineer.outbox.retry_refused", True, id=message_id, code=refused)
        else:
            self.say("engineer.outbox.retried", id=message_id)
        self.load()


def _age_text(seconds: float) -> str:
    app = _app()
    if seconds < 120:
        return app.t("engineer.age.seconds", n=int(seconds))
    if seconds < 7200:
        return app.t("engineer.age.minutes", n=int(seconds // 60))
    if seconds < 172800:
        return app.t("engineer.age.hours", n=int(seconds // 3600))
    return app.t("engineer.age.days", n=int(seconds // 86400))


# --------------------------------------------------------------------------- configuration


class EngineerConfigPage(EngineerPage):
    """The running configuration, section by section; one key edited at a time, validated by the
    configuration's loader and written to the site file with a timestamped backup."""

    sections = ListProperty([])
    section = StringProperty("")
    rows = ListProperty([])
    key = StringProperty("")
    current = StringProperty("")
    site_file = StringProperty("")

    def on_pre_enter(self, *args: Any) -> None:
        super().on_pre_enter(*args)
        self._entries = desk().config_entries()
        self.sections = list(dict.fromkeys(e.key.split(".", 1)[0] for e in self._entries))
        if self.section not in self.sections:
            self.section = self.sections[0] if self.sections else ""
        self.site_file = str(desk().site_file)
        self.show_section()

    def step_section(self, step: int) -> None:
        if not self.sections:
            return
        index = (self.sections.index(self.section) + step) % len(self.sections)
        self.section = self.sections[index]
        self.show_section()

    def show_section(self) -> None:
        self.rows = [
            {"text": f"{e.key.split('.', 1)[1]} = {e.value}", "config_key": e.key, "choice": f"config:{e.key}"}
            for e in self._entries if e.key.split(".", 1)[0] == self.section
        ]
        box = self.ids.config_rows
        box.clear_widgets()
        for row in self.rows:
            box.add_widget(EngineerConfigRow(kind="primary" if row["config_key"] == self.key else "secondary", **row))

    def select(self, key: str) -> None:
        self.key = key
        for widget in self.ids.config_rows.children:
            widget.kind = "primary" if widget.config_key == key else "secondary"
        self.current = next((e.value for e in self._entries if e.key == key), "")
        value = self.current
        if value.startswith('"') and value.endswith('"'):
            value = value[1:-1]
        self.ids.value.text = "" if value == "(unset)" else value
        self.say("")

    def save(self) -> None:
        if not self.key:
            self.say("engineer.config.choose_key", True)
            return
        try:
            edit = desk().edit_config(actor(), self.key, self.ids.value.text)
        except ConfigEditRefused as refused:
            self.say("engineer.config.refused", True, setting=refused.key, problem=refused.problem)
            return
        self.say("engineer.config.saved", setting=edit.key, new=edit.new,
                 backup=str(edit.backup) if edit.backup else _app().t("engineer.config.no_backup"))


class EngineerConfigRow(KButton):
    """A key = value line of the configuration page (touch to edit)."""

    config_key = StringProperty("")

    def on_release(self) -> None:
        _app().manager.get_screen("eng_config").select(self.config_key)


# --------------------------------------------------------------------------- diagnostics


class EngineerDiagnosticsPage(EngineerPage):
    """The diagnostics bundle (versions, configuration without secrets, device states, the last
    log lines, outbox counts; redacted) to the kiosk's export directory or a USB stick."""

    destinations = ListProperty([])
    last_path = StringProperty("")

    def on_pre_enter(self, *args: Any) -> None:
        super().on_pre_enter(*args)
        self.rescan()

    def rescan(self) -> None:
        """The kiosk's export directory and every USB stick mounted now."""
        self.destinations = [str(p) for p in desk().export_destinations()]
        box = self.ids.destinations
        box.clear_widgets()
        app = _app()
        for index, path in enumerate(self.destinations):
            key = "engineer.diag.to_kiosk" if index == 0 else "engineer.diag.to_usb"
            box.add_widget(button(app.t(key, path=path), f"export:{index}", lambda i=index: self.export(i), "primary"))
        if len(self.destinations) == 1:
            box.add_widget(Factory.EngSmall(text=app.t("engineer.diag.no_usb")))
        box.add_widget(button(app.t("engineer.diag.rescan"), "rescan", self.rescan))

    def export(self, index: int) -> None:
        if self.busy:
            return
        from pathlib import Path

        directory = Path(self.destinations[index])
        self.busy = True
        self.say("engineer.diag.exporting")

        def done(bundle: Any, error: BaseException | None) -> None:
            self.busy = False
            if error is not None:
                self.say("engineer.failed", True, code=error_code(error))
                return
            self.last_path = str(bundle.path)
            self.say("engineer.diag.exported", files=len(bundle.files), size=max(1, bundle.size // 1024))

        off_ui(lambda: desk().export_diagnostics(actor(), directory), done)


SCREENS: dict[str, type[Screen]] = {
    "eng_status": EngineerStatusPage,
    "eng_tests": EngineerTestsPage,
    "eng_faults": EngineerFaultsPage,
    "eng_logs": EngineerLogsPage,
    "eng_outbox": EngineerOutboxPage,
    "eng_config": EngineerConfigPage,
    "eng_diagnostics": EngineerDiagnosticsPage,
}
