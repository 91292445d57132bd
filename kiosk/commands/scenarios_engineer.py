"""Scripted field-engineer and start-up scenarios (``kiosk demo --headless --json --scenario NAME``)
for the engineer menu and the self-check (issue 14), through the real UI and the real links as in
:mod:`kiosk.commands.scenarios`:

- ``engineer_selftest``: a scripted field engineer (运维工程师) taps the hidden corner of the home
  screen five times, chooses the engineer role and signs in on the on-screen keypad, opens the
  self-test page and runs every device self-test from its button — the test ID card laid on the
  reader, the test chip card put in the chip station, the printer's test card (booked in the card
  ledger as spoiled), the PIN pad key test, the camera preview with the face box, the receipt
  test slip — then signs out. Outcome ``selftest_passed`` when every test shows a pass.
- ``startup_printer_missing``: the kiosk starts while its card printer is not there (nothing
  listens at the printer's configured address): the start-up self-check takes it out of service
  and the home screen shows citizens the short reason. Then the printer (the simulator) is switched
  on at that address, and the kiosk returns to service by itself — no touch, no restart. Outcome
  ``out_of_service``; the report says how long the return took (``back_in_service_s``).

SIMULATED people and devices only (the demo profile); nothing here is used by a kiosk in the field.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from kiosk.commands.scenarios import Scenario, ScriptedCitizen, scenario
from kiosk.config import KioskConfig

# The scenario's engineer account, added as ``kiosk staff add 9001 --role engineer`` would.
ENGINEER_ID = "9001"
ENGINEER_PASSWORD = "135790"
# The engineer's test ID card: a fictitious card of the ID reader simulator's deck.
TEST_ID_CARD = "first_issue"
# How long the kiosk may take to notice that the card printer is back (the home screen asks the
# self-check every second; a report older than ``max_age_s`` is refreshed off the UI thread).
BACK_IN_SERVICE_LIMIT_S = 60.0
# A self-test waits on its device (the printer's test card moves through the machine).
TEST_LIMIT_S = 90.0


# --------------------------------------------------------------------------- the scripted engineer


class ScriptedPerson(ScriptedCitizen):
    """The scripted citizen's hands and eyes (touches, the camera), with a script of its own."""

    def wait_ui(self, condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
        """Waits until ``condition`` (run on the Kivy thread) holds; RuntimeError naming ``what``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._on_ui(condition):
                return
            time.sleep(0.05)
        raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what} (screen {self.ui.manager.current})")

    def on_screen(self, name: str) -> None:
        """Waits for screen ``name`` to be shown and settled, and notes it (and a screenshot)."""
        manager = self.ui.manager
        self.wait_ui(lambda: manager.current == name and not manager.transition.is_active, f"screen {name}")
        time.sleep(0.1)  # its on_enter work and layout are done
        self.screens.append(name)
        self.shot(name)

    def shot(self, label: str) -> None:
        if self.on_new_screen is not None:
            self.on_new_screen(label)


class ScriptedEngineer(ScriptedPerson):
    """A field engineer at the kiosk: the hidden entry, the engineer login, the self-test page.
    Touches the same buttons a person would (synthetic touches, counted by the app)."""

    def __init__(self, ui: Any, kiosk: Any, scenario: Scenario, *, fast: bool, log: list[str]) -> None:
        super().__init__(ui, kiosk, scenario, fast=fast, log=log)
        self.results: dict[str, dict[str, Any]] = {}
        self.tests: list[str] = []
        self.seconds: dict[str, float] = {}  # each test, from its button to its result
        self.signed_out = False

    def type_on_keypad(self, digits: str) -> None:
        for digit in digits:
            self.touch(f"key:{digit}")
        self.touch("key:enter")

    def tap_hidden_corner(self) -> None:
        """Five quick taps (``[kiosk] entry_gesture_taps`` within ``entry_gesture_window_s``) on
        the top-left corner of the home screen, a finger down and up each, 0.15 s apart."""
        from screens.touch import touch

        corner = self.ui.manager.get_screen("home").ids.corner

        def five_taps() -> int:
            # All in one call on the Kivy thread: drawn in software on a busy test machine, a frame
            # can take half a second, and a tap per frame would be slower than the 3 s the gesture
            # allows; a person taps faster than that.
            done = 0
            for _ in range(int(corner.taps)):
                if done:
                    time.sleep(0.15)
                done += bool(touch(corner))
            return done

        self.wait_ui(lambda: self.ui.manager.current == "home" and not self.ui.manager.transition.is_active,
                     "the home screen")
        taps = self._on_ui(five_taps)
        self.log.append(f"hidden corner tapped {taps} times")

    # -- the visit to the kiosk ------------------------------------------------------------------
    def run(self) -> None:
        try:
            self._wait_home()
            self.screens.append("home")
            self.shot("home")
            if self.kiosk.simulators.get("camera") is not None:
                self._play(self._frame(), ())  # the engineer stands in front of the kiosk
            self.pause()
            self.business_touched_at = time.monotonic()
            self.sign_in()
            self.touch("page:eng_tests")
            self.on_screen("eng_tests")
            page = self.ui.manager.get_screen("eng_tests")
            self.tests = list(self._on_ui(lambda: list(page.tests)))
            for test in self.tests:
                self.pause()
                self.run_test(page, test)
            self.results = self._on_ui(lambda: {t: dict(r) for t, r in page.results.items()})
            self.touch("back")
            self.on_screen("staff_menu")
            self.touch("logout")
            self.on_screen("home")
            self.signed_out = True
        except Exception as exc:  # the report says so
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.done.set()

    def sign_in(self) -> None:
        self.tap_hidden_corner()
        self.on_screen("staff_login")
        self.pause()
        self.touch("role:engineer")
        self.wait_ui(lambda: self.ui.manager.current_screen.role == "engineer", "the engineer role chosen")
        self.type_on_keypad(ENGINEER_ID)
        self.pause()
        self.type_on_keypad(ENGINEER_PASSWORD)
        self.on_screen("staff_menu")
        self.log.append(f"signed in as engineer {ENGINEER_ID}")

    def run_test(self, page: Any, test: str) -> None:
        started = time.monotonic()
        if test == "camera":
            self.camera_test(page)
        else:
            self.device_test(page, test)
        self.seconds[test] = round(time.monotonic() - started, 3)
        ok = self._on_ui(lambda: page.results[test]["ok"])
        self.log.append(f"self-test {test}: {'pass' if ok else 'fail'}")
        self.shot(f"eng_tests-{test}")

    def device_test(self, page: Any, test: str) -> None:
        simulators = self.kiosk.simulators
        if test == "idreader":
            simulators["idreader"].place(TEST_ID_CARD)
            self.log.append("test ID card laid on the reader")
        elif test == "chip":
            simulators["smartcard"].insert(self.test_chip_card())
            self.log.append("test chip card put in the chip station")
        try:
            self.touch(f"test:{test}")
            self.wait_ui(lambda: test in page.results and not page.running, f"the {test} self-test", TEST_LIMIT_S)
        finally:
            if test == "idreader":
                simulators["idreader"].lift()
                self.log.append("test ID card taken off the reader")
            elif test == "chip":
                simulators["smartcard"].remove()
                self.log.append("test chip card taken out of the chip station")

    def camera_test(self, page: Any) -> None:
        """Starts the preview, looks into the camera until the face box is drawn over a few
        seconds of frames, then stops it (the result counts frames with and without a face)."""
        self.touch("test:camera")
        self.wait_ui(lambda: page.camera_on, "the camera preview", 60)
        preview = page.ids.preview
        self.wait_ui(lambda: preview.frames_shown > 30 and bool(preview.canvas.after.children),
                     "the face box on the camera preview", 30)
        self.shot("eng_tests-camera_preview")
        self.touch("test:camera_stop")
        self.wait_ui(lambda: "camera" in page.results and not page.camera_on, "the camera self-test result")

    def test_chip_card(self) -> Any:
        """The engineer's test chip card: personalized for a fictitious holder marked as a test
        (SIMULATOR: a virtual card for the chip station's vpcd slot)."""
        from hardware.smartcard.crypto import Algorithm
        from hardware.smartcard.virtual import personalized_card
        from kiosk.device_tests import TEST_CARD_NAME, TEST_CARD_SSN

        config = self.kiosk.core.config
        return personalized_card("ENGTEST1", algorithm=Algorithm(config.smartcard.sim_algorithm),
                                 ssn=TEST_CARD_SSN, name=TEST_CARD_NAME)


class PrinterMissingAtStart(ScriptedPerson):
    """Watches the home screen of a kiosk started without its card printer: out of service with the
    short reason for citizens, no business to start; then switches the printer (the simulator) on
    and waits, touching nothing, until the kiosk is back in service by itself."""

    def __init__(self, ui: Any, kiosk: Any, scenario: Scenario, *, fast: bool, log: list[str],
                 switch_printer_on: Callable[[], None]) -> None:
        super().__init__(ui, kiosk, scenario, fast=fast, log=log)
        self.switch_printer_on = switch_printer_on
        self.out_of_service: dict[str, Any] = {}
        self.back_in_service = False
        self.back_in_service_s: float | None = None
        self.back_in_service_text: str = ""

    def run(self) -> None:
        try:
            self._wait_home()
            self.business_touched_at = time.monotonic()  # the scenario's clock starts at the home screen
            home = self.ui.manager.get_screen("home")
            self.wait_ui(lambda: not home.in_service, "the home screen out of service", 15)
            self.screens.append("home")
            time.sleep(0.4)  # drawn
            self.out_of_service = self._on_ui(lambda: self.home_state(home))
            self.shot("home-out_of_service")
            self.log.append("home screen out of service: " + self.out_of_service["home_text"])
            self.pause()
            self.switch_printer_on()
            switched_on = time.monotonic()
            self.log.append("card printer switched on")
            deadline = switched_on + BACK_IN_SERVICE_LIMIT_S
            while time.monotonic() < deadline:
                if self._on_ui(lambda: home.in_service and not home.ids.business_grid.disabled):
                    self.back_in_service = True
                    self.back_in_service_s = round(time.monotonic() - switched_on, 3)
                    break
                time.sleep(0.1)
            if not self.back_in_service:
                raise RuntimeError(f"the kiosk was not back in service {BACK_IN_SERVICE_LIMIT_S:.0f} s after "
                                   "the card printer was switched on")
            time.sleep(0.4)
            self.back_in_service_text = self._on_ui(lambda: self.home_state(home))["home_text"]
            self.shot("home-back_in_service")
            self.log.append(f"back in service after {self.back_in_service_s} s")
        except Exception as exc:  # the report says so
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.done.set()

    def home_state(self, home: Any) -> dict[str, Any]:
        """On the Kivy thread: what a citizen sees on the home screen about the kiosk's service."""
        app = self.ui
        notice = app.t("home.out_of_service")
        shown = [w.text for w in home.walk() if isinstance(getattr(w, "text", None), str) and w.text and w.opacity > 0]
        enabled = [w.choice for w in home.walk()
                   if str(getattr(w, "choice", "")).startswith("business:") and not w.disabled and w.opacity > 0]
        return {
            "home_text": next((t for t in shown if t.startswith(notice)), ""),
            "citizen_reason_key": home.out_of_service_key,
            "citizen_reason": app.t(home.out_of_service_key),
            "businesses_offered": len(home.businesses),
            "businesses_enabled": len(enabled) if not home.ids.business_grid.disabled else 0,
        }


# --------------------------------------------------------------------------- running them


def _run_ui(kiosk: Any, make_script: Callable[[Any, list[str]], Any], screenshots: Path | None,
            lang: str | None, elder: bool) -> tuple[Any, str | None]:
    """Runs the kiosk's UI with ``make_script(ui, log)``'s ``run`` on its own thread until it is
    done; returns (the script, the UI's error or None)."""
    from kiosk.commands.scenarios import run_script_ui

    return run_script_ui(kiosk, make_script, [], screenshots=screenshots, lang=lang, elder=elder,
                         thread_name="scripted-engineer")


def _common_report(name: str, s: Scenario, kiosk: Any, script: Any, ui_error: str | None,
                   screenshots: Path | None) -> dict[str, Any]:
    # Defined after this module is loaded (scenarios.py loads it half-way, to register scenarios).
    from kiosk.commands.scenarios import _printed, ledger_balanced

    outbox = kiosk.core.services.devices.get("outbox")
    counts = outbox.status().as_dict().get("counts", {}) if outbox is not None else {}
    started = getattr(script, "business_touched_at", None)
    total = time.monotonic() - started if started else None
    return {
        "scenario": name,
        "business": s.business,
        "outcome": None,
        "reason": None,
        "card_number": None,
        "touches": getattr(getattr(script, "ui", None), "touches", None),
        "seconds": {"total": round(total, 3) if total is not None else None},
        "steps": [],
        "ledger_balanced": ledger_balanced(kiosk),
        "outbox_pending": int(counts.get("pending", 0)) + int(counts.get("in_flight", 0)),
        "screenshots": str(screenshots) if screenshots is not None else None,
        "visit_id": None,
        "screens": script.screens if script else [],
        "citizen_log": script.log if script else [],
        "error": ui_error or (script.error if script else "the script never started"),
        "recovered": [{"visit": r.visit_id, "steps": list(r.compensated_steps)} for r in kiosk.recovered],
        "printed": _printed(kiosk, screenshots),
    }


def _recorded(kiosk: Any, actor: str) -> list[dict[str, Any]]:
    """What the audit log holds of ``actor``'s actions (action, subject, outcome)."""
    audit = kiosk.core.services.devices.get("audit")
    if audit is None:
        return []
    return [{"action": e.action, "subject": e.subject, "outcome": e.details.get("outcome")}
            for e in audit.entries() if e.actor == actor]


def run_engineer_selftest(name: str, config: KioskConfig, *, fast: bool, screenshots: Path | None,
                          lang: str | None = None, elder: bool = False) -> dict[str, Any]:
    """The engineer's visit (``engineer_selftest``) in this process; returns the report."""
    from kiosk.app import build_kiosk, prepare_kivy_environment
    from kiosk.commands.scenarios import SCENARIOS
    from kiosk.staff import Role

    s = SCENARIOS[name]
    prepare_kivy_environment(config, headless=True)
    kiosk = build_kiosk(config, console_log=False)
    try:
        kiosk.staff.add(ENGINEER_ID, Role.ENGINEER, ENGINEER_PASSWORD)
        script, ui_error = _run_ui(
            kiosk, lambda ui, log: ScriptedEngineer(ui, kiosk, s, fast=fast, log=log), screenshots, lang, elder,
        )
        report = _common_report(name, s, kiosk, script, ui_error, screenshots)
        results = script.results if script else {}
        tests = script.tests if script else []
        selftests = {
            test: {"ok": bool(r["ok"]), "passed": int(r["passed"]), "failed": int(r["failed"]), "code": r["code"],
                   "seconds": script.seconds.get(test)}
            for test, r in results.items()
        }
        failing = [f"{t}:{selftests[t]['code']}" if t in selftests else f"{t}:not_run" for t in tests
                   if not selftests.get(t, {}).get("ok")]
        passed_all = bool(tests) and not failing and script is not None and script.signed_out
        report.update(
            outcome="selftest_passed" if passed_all else "selftest_failed",
            reason=None if passed_all else ",".join(failing) or "not_finished",
            engineer=ENGINEER_ID,
            selftests=selftests,
            recorded=_recorded(kiosk, ENGINEER_ID),
        )
        return report
    finally:
        kiosk.close()


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _card_printer_simulator(kiosk: Any, port: int) -> Any:
    """The card printer SIMULATOR as the demo builds it (kiosk/app.py), switched off: made, not
    started; ``start()`` switches it on at 127.0.0.1:``port``. Its hopper holds the blank cards the
    card ledger has in the hopper (the demo's numbered blanks, registered as a new demo kiosk does)."""
    from hardware.smartcard.virtual import blank_card_for
    from kiosk.app import _demo_hopper
    from kiosk.ledger import Place
    from printer.cardprinter.simulator import CardPrinterSimulator, SlotChipStation

    config = kiosk.core.config
    cp = config.cardprinter
    ledger = kiosk.core.services.devices["ledger"]
    chip = None
    smartcard_sim = kiosk.simulators.get("smartcard")
    if smartcard_sim is not None:
        algorithm = config.smartcard.sim_algorithm
        chip = SlotChipStation(smartcard_sim.chip_station, card_for=lambda n: blank_card_for(n, algorithm))
    out = Path(cp.sim_output_dir) if cp.sim_output_dir else Path(config.kiosk.state_dir) / "cardprinter-sim"
    return CardPrinterSimulator(
        _demo_hopper(config, ledger), reject_bin_cards=ledger.cards_in(Place.REJECT_BIN),
        chip_station=chip, output_dir=config.resolve(out), link="tcp", port=port,
        reject_bin_capacity=cp.reject_bin_capacity, hopper_near_empty=cp.hopper_near_empty,
        embosser_fitted=cp.embosser_fitted, mechanics_s=cp.sim_mechanics_s,
        card_orientation_deg=cp.face_rotation_deg,
    )


def run_startup_printer_missing(name: str, config: KioskConfig, *, fast: bool, screenshots: Path | None,
                                lang: str | None = None, elder: bool = False) -> dict[str, Any]:
    """``startup_printer_missing`` in this process; returns the report.

    The kiosk is configured for a card printer on the network (``transport = "tcp"`` at a loopback
    address) where nothing listens when it starts — as on site when the printer is switched off or
    unplugged; every other device is the demo's. The printer simulator is then switched on at that
    address while the home screen is shown."""
    from kiosk.app import build_kiosk, prepare_kivy_environment
    from kiosk.commands.scenarios import SCENARIOS

    s = SCENARIOS[name]
    port = _free_loopback_port()
    config = replace(config, cardprinter=replace(config.cardprinter, simulate=False, transport="tcp",
                                                 address=f"127.0.0.1:{port}"))
    key_file = config.resolve(config.kiosk.state_dir) / "outbox.key"
    if config.outbox.key_file is None and not key_file.exists():
        # The demo's site key, made as the composition root makes it when every device is
        # simulated (here the card printer is configured as a real one): the outbox, the face lock
        # and the audit log run as in the demo.
        from offline.sealing import add_key

        add_key(key_file, "demo1")
    prepare_kivy_environment(config, headless=True)
    kiosk = build_kiosk(config, console_log=False)
    try:
        startup = kiosk.core.selfcheck.last
        printer = _card_printer_simulator(kiosk, port)
        switched_on: list[bool] = []

        def switch_printer_on() -> None:
            printer.start()
            switched_on.append(True)
            kiosk.simulators["cardprinter"] = printer
            printer.take_delay_s = None

        try:
            script, ui_error = _run_ui(
                kiosk,
                lambda ui, log: PrinterMissingAtStart(ui, kiosk, s, fast=fast, log=log,
                                                      switch_printer_on=switch_printer_on),
                screenshots, lang, elder,
            )
            report = _common_report(name, s, kiosk, script, ui_error, screenshots)
            now = kiosk.core.selfcheck.run()  # a fresh check, the printer still switched on
        finally:
            if switched_on:
                printer.stop()
        blocking = [c.code for c in startup.blocking] if startup is not None else []
        shown = script.out_of_service if script else {}
        report.update(
            outcome="out_of_service" if startup is not None and not startup.in_service and shown else None,
            reason=blocking[0] if blocking else None,
            startup_selfcheck={"in_service": startup.in_service if startup else None, "blocking": blocking},
            out_of_service=shown,
            back_in_service=bool(script and script.back_in_service),
            back_in_service_s=script.back_in_service_s if script else None,
            back_in_service_text=script.back_in_service_text if script else "",
            selfcheck_now={"in_service": now.in_service, "blocking": [c.code for c in now.blocking]},
        )
        return report
    finally:
        kiosk.close()


scenario(Scenario("engineer_selftest", "engineer_menu", "selftest_passed",
                  "运维工程师: the engineer signs in through the hidden corner, runs every device self-test from "
                  "its button (ID reader loop, chip station, printer test card, PIN pad keys, camera preview, "
                  "receipt slip); all pass, each recorded with the engineer's id",
                  run=run_engineer_selftest))
scenario(Scenario("startup_printer_missing", "selfcheck", "out_of_service",
                  "开机自检: the kiosk starts without its card printer: out of service with the short reason; the "
                  "printer is switched on and the kiosk returns to service by itself",
                  reason="cardprinter.offline", run=run_startup_printer_missing))
