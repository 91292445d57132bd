"""Scripted visits for ``kiosk demo --headless --json --scenario NAME`` (模拟办事).

A scenario is a whole visit through the real UI and the real links (pty, pcscd + vpcd, loopback
TCP/HTTP) with a **scripted citizen** who does what a person does: touches the same on-screen
buttons (synthetic touches at the buttons' positions, counted by the app), puts the ID card on
the simulated reader, looks into the simulated camera and performs the liveness action the
screen asks for, types PINs on the simulated PIN pad, takes the card from the printer's slot and
the ID card back. The simulators are the far ends of the links: nothing in the kiosk is faked.

Each scenario names its person (``config/demo-people.json``), what it injects (a printer jam, a
failed chip write, the network down, a power cut) and the outcome a correct kiosk reaches.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kiosk.config import KioskConfig, load_config

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class CitizenScript:
    """What the citizen does where a screen offers a choice (defaults: the plain path)."""

    person: str = "first_issue"
    face_of: str | None = None  # someone else looks into the camera (face_mismatch)
    choices: dict[str, str] = field(default_factory=dict)  # screen title key → choice
    optional: tuple[str, ...] = ()  # optional consent items the citizen ticks
    take_card: bool = True
    pins: tuple[str, ...] = ("371958", "371958", "582947", "582947")
    think_s: float = 0.6  # pause before each action (0 with --fast)


@dataclass(frozen=True)
class Scenario:
    name: str
    business: str
    expect: str
    description: str
    citizen: CitizenScript = field(default_factory=CitizenScript)
    setup: Callable[[Any], None] | None = None  # (kiosk) → None, before the visit
    during: Callable[[Any, str], None] | None = None  # (kiosk, screen) each time a screen appears
    config: dict[str, dict[str, Any]] = field(default_factory=dict)
    power_cut_at: str | None = None  # kill the kiosk when this step starts, then restart it
    reason: str | None = None  # the notice's code the visit must end with (None: no check)
    # Who acts: by default a ScriptedCitizen doing one visit of ``business``. Another actor (a
    # staff member: scenarios_staff.py) is built the same way, (ui, kiosk, scenario, fast=, log=),
    # runs on the scripted thread, and may add to or override the report (``report_fields()``).
    actor: Callable[..., Any] | None = None
    prepare: Callable[[KioskConfig], None] | None = None  # (config) → None, on the state before the kiosk is built
    # A scenario that is not a citizen's visit (the engineer menu, the self-check) runs its own
    # script: called like run_visit, returns a report with the same keys.
    run: Callable[..., dict[str, Any]] | None = None


def _inject(device: str, fault: str, count: int | None = 1, **params: Any) -> Callable[[Any], None]:
    def setup(kiosk: Any) -> None:
        if device == "smartcard":
            # The next blank in the hopper has a chip that fails while it is written.
            printer = kiosk.simulators["cardprinter"]
            printer.chip_station.card(printer.hopper[0]).inject(fault, count, **params)
        else:
            kiosk.simulators[device].inject(fault, count=count, **params)

    return setup


def _inject_when(screen: str, device: str, fault: str, count: int | None = 1, **params: Any) -> Callable[[Any, str], None]:
    """Arms a fault once the visit reaches ``screen``: the kiosk was in service when the citizen
    started (the pre-visit check passed) and the fault happens under way."""
    armed: list[bool] = []

    def during(kiosk: Any, name: str) -> None:
        if name == screen and not armed:
            armed.append(True)
            _inject(device, fault, count, **params)(kiosk)

    return during


def _network_down(kiosk: Any) -> None:
    kiosk.simulators["backend"].stop()


SCENARIOS: dict[str, Scenario] = {}


def scenario(s: Scenario) -> Scenario:
    SCENARIOS[s.name] = s
    return s


scenario(Scenario("first_issue", "first_issue", "card_issued",
                  "首次申领即时制卡: a first card made, activated, taken, voucher printed"))
scenario(Scenario("renewal", "renewal", "card_issued", "换领: the card expires within the renewal window",
                  CitizenScript(person="renewal", choices={"visit.reason.title": "expiring",
                                                            "visit.photo.source_title": "keep"})))
scenario(Scenario("replacement", "replacement", "card_issued", "补领 after a formal loss report; the old card is cancelled",
                  CitizenScript(person="replacement", choices={"visit.photo.source_title": "new"})))
scenario(Scenario("replacement_without_loss_report", "replacement", "notice_printed",
                  "补领 refused: no loss report (one-time notice)", CitizenScript(person="replacement_without_loss_report"), reason="replacement_needs_loss_report"))
scenario(Scenario("face_mismatch", "first_issue", "notice_printed",
                  "someone else looks into the camera: refused after the retries, staffed path",
                  CitizenScript(person="face_mismatch"), reason="face_mismatch"))
scenario(Scenario("temporary_card_not_recalled", "first_issue", "notice_printed",
                  "a temporary card is held: notice to return it at the counter",
                  CitizenScript(person="temporary_card_not_recalled"), reason="temporary_card_not_recalled"))
scenario(Scenario("hopper_empty", "first_issue", "notice_printed",
                  "the hopper runs empty under way (the last blank misfed): the application is kept, notice printed",
                  during=_inject_when("choose", "cardprinter", "hopper_empty", count=1), reason="hopper_empty"))
scenario(Scenario("card_jam", "first_issue", "notice_printed",
                  "the card jams while printing: rejected, recorded, reported; notice printed",
                  setup=_inject("cardprinter", "jam", count=1, stage="print"), reason="card_jam"))
scenario(Scenario("chip_write_fails", "first_issue", "card_issued",
                  "the first blank's chip write fails: it is spoiled, the second blank is made and issued",
                  setup=_inject("smartcard", "tearing", count=1)))
scenario(Scenario("card_not_taken", "first_issue", "notice_printed",
                  "the citizen walks away without the card: retracted to the reject bin, recorded",
                  CitizenScript(take_card=False), config={"cardprinter": {"take_card_timeout_s": 5}}, reason="card_not_taken"))
scenario(Scenario("network_down", "first_issue", "application_queued",
                  "the card-management system is unreachable: the application is queued for central production",
                  setup=_network_down, reason="application_queued"))
scenario(Scenario("power_cut_during_production", "first_issue", "card_issued",
                  "power cut while the chip is written: at restart the card is rejected and recorded, the "
                  "application is found by its key, and the citizen's next visit makes the card",
                  power_cut_at="produce"))


# More scenarios live beside this module (each calls ``scenario(...)`` at import): the other
# citizen businesses, the staff menu, the engineer menu. A module not built yet is skipped.
SCENARIO_MODULES = ("scenarios_more", "scenarios_staff", "scenarios_engineer")


def _load_more_scenarios() -> None:
    import importlib
    import importlib.util

    for name in SCENARIO_MODULES:
        module = f"kiosk.commands.{name}"
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)


# --------------------------------------------------------------------------- the scripted citizen


class ScriptedCitizen:
    """Watches the kiosk's screen from its own thread and acts on each new prompt."""

    def __init__(self, ui: Any, kiosk: Any, scenario: Scenario, *, fast: bool, log: list[str]) -> None:
        self.ui = ui
        self.kiosk = kiosk
        self.scenario = scenario
        self.script = scenario.citizen
        self.think = 0.0 if fast else self.script.think_s
        self.log = log
        self.done = threading.Event()
        self.error: str | None = None
        self._seen: set[int] = set()
        self._pins = list(self.script.pins)
        self._people = _people()
        self._analyzer: Any = None
        self._performer: LivenessPerformer | None = None
        self._poses: dict[Any, Any] = {}  # the citizen's face with the eyes shut or turned, made once
        self._outcome_before: Any = None  # the kiosk's last outcome before this visit began
        self.business_touched_at: float | None = None
        self.screens: list[str] = []
        self.on_new_screen: Callable[[str], None] | None = None  # e.g. a screenshot before acting

    # -- running on the Kivy thread -----------------------------------------------------------
    def _on_ui(self, fn: Callable[[], Any], timeout: float = 10.0) -> Any:
        from screens.touch import run_on_ui

        return run_on_ui(fn, timeout)

    def touch(self, choice: str) -> None:
        for _ in range(200):
            if self._on_ui(lambda: self._finger_down(choice)):
                time.sleep(0.08)  # a finger rests on the glass for a moment
                self._on_ui(self._finger.up)
                self.log.append(f"touch {choice}")
                time.sleep(0.25 if choice.startswith("option:") else 0.0)  # a ScrollView passes a tap on late
                return
            time.sleep(0.05)
        raise RuntimeError(f"no button {choice!r} on screen {self.ui.manager.current}")

    def _finger_down(self, choice: str) -> bool:
        """On the Kivy thread: puts a finger on the shown, enabled button answering ``choice``."""
        from screens.touch import SyntheticTouch, bring_into_view, find_choice, settled

        widget = find_choice(self.ui, choice)
        if widget is None or not settled(widget):
            return False
        bring_into_view(widget)
        x, y = widget.to_window(*widget.center)
        self._finger = SyntheticTouch(x, y)
        self._finger.down()
        return True

    def pause(self) -> None:
        if self.think:
            time.sleep(self.think)

    # -- the visit -----------------------------------------------------------------------------
    def run(self) -> None:
        try:
            self.visit()
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self._stop_performing()
            self.done.set()

    def _stop_performing(self) -> None:
        if self._performer is not None:
            self._performer.stop()
            self.log.append(f"  poses: {' '.join(self._performer.timeline)}")
            self._performer = None

    def visit(self) -> None:
        """One whole visit, from the home screen until the kiosk has recorded its outcome (raises
        when the citizen cannot go on). Another actor may call it for a visit within its script."""
        self._wait_home()
        if self.kiosk.simulators.get("camera") is not None:
            self._play(self._frame(), ())  # the citizen stands in front of the kiosk
        self.pause()
        self._outcome_before = self.kiosk.core.last_outcome  # an earlier visit's, when there was one
        self.business_touched_at = time.monotonic()
        self.touch(f"business:{self.scenario.business}")
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if self._visit_over():
                self._stop_performing()
                return
            self._step()
            time.sleep(0.02)
        raise TimeoutError(f"the visit of {self.scenario.business} did not end in 600 s")

    def _wait_home(self) -> None:
        for _ in range(600):
            ready = self._on_ui(lambda: self.ui.manager is not None and self.ui.manager.current == "home"
                                and bool(self.ui.manager.get_screen("home").businesses))
            face = self.kiosk.core.services.devices.get("face")
            warm = face is None or getattr(face, "_worker_up", True)
            if ready and warm:
                return
            time.sleep(0.1)
        raise RuntimeError("the home screen never offered a business")

    def _visit_over(self) -> bool:
        core = self.kiosk.core
        outcome = core.last_outcome
        return (self.business_touched_at is not None and outcome is not None
                and outcome is not self._outcome_before and not core.visit_running)

    def _step(self) -> None:
        snapshot = self._on_ui(self._snapshot)
        if snapshot is None:
            return
        name, prompt_id, data, choices = snapshot
        if name == "pin_entry":
            self._pin_entry(data, prompt_id)
            return
        if prompt_id in self._seen:
            if name == "face":
                self._face_follow()
            return
        self._seen.add(prompt_id)
        self.screens.append(name)
        if self.on_new_screen is not None:
            self.on_new_screen(name)
        if self.scenario.during is not None:
            self.scenario.during(self.kiosk, name)
        handler = getattr(self, f"_on_{name}", None)
        if handler is not None:
            handler(data, choices)

    def _snapshot(self) -> tuple[str, int, dict[str, Any], tuple[str, ...]] | None:
        screen = self.ui.manager.current_screen
        prompt = getattr(screen, "prompt", None)
        if prompt is None:
            return None
        return screen.name, id(prompt), dict(prompt.data), tuple(prompt.choices)

    def _choice_for(self, data: dict[str, Any], default: str) -> str:
        return self.script.choices.get(str(data.get("title_key", "")), default)

    # -- screens ---------------------------------------------------------------------------------
    def _on_id_card(self, data: dict[str, Any], choices: tuple[str, ...]) -> None:
        self.pause()
        self.kiosk.simulators["idreader"].place(self.script.person)
        self.log.append(f"id card placed ({self.script.person})")

    def _on_consent(self, data: dict[str, Any], choices: tuple[str, ...]) -> None:
        for item in data.get("items", ()):
            if item.get("required") or item.get("key") in self.script.optional:
                self.pause()
                self.touch(f"option:{item['key']}")
        self.pause()
        self.touch("agree")

    def _on_confirm(self, data: dict[str, Any], choices: tuple[str, ...]) -> None:
        self.pause()
        self.touch(self._choice_for(data, choices[0]))

    def _on_choose(self, data: dict[str, Any], choices: tuple[str, ...]) -> None:
        self.pause()
        self.touch(self._choice_for(data, choices[0]))

    def _on_message(self, data: dict[str, Any], choices: tuple[str, ...]) -> None:
        if choices:
            self.pause()
            self.touch(self._choice_for(data, choices[0]))

    _on_progress_result = _on_message  # the progress query: print (or the choice scripted)

    def _on_keypad_entry(self, data: dict[str, Any], choices: tuple[str, ...]) -> None:
        for digit in "13800138000":
            self.touch(f"key:{digit}")
        self.touch("key:enter")

    def _on_notice(self, data: dict[str, Any], choices: tuple[str, ...]) -> None:
        self.pause()
        self.touch("done")

    def _on_take_item(self, data: dict[str, Any], choices: tuple[str, ...]) -> None:
        slot = data.get("slot")
        if slot == "card":
            if self.script.take_card:
                threading.Thread(target=self._take_card, daemon=True).start()
        elif slot == "id_card":
            self.pause()
            self.kiosk.simulators["idreader"].lift()
            self.log.append("id card taken back")

    def _take_card(self) -> None:
        printer = self.kiosk.simulators["cardprinter"]
        for _ in range(600):
            if printer.take_card():
                self.log.append("card taken")
                return
            time.sleep(0.05)

    def _pin_entry(self, data: dict[str, Any], prompt_id: int) -> None:
        if data.get("update") or prompt_id in self._seen:
            return
        self._seen.add(prompt_id)
        self.screens.append("pin_entry")
        if self.on_new_screen is not None:
            self.on_new_screen("pin_entry")
        pin = self._pins.pop(0) if self._pins else "371958"
        self.pause()
        self.kiosk.simulators["pinpad"].queue_keys(pin + "E")
        self.log.append("PIN typed on the pad")

    # -- the face --------------------------------------------------------------------------------
    def _on_face(self, data: dict[str, Any], choices: tuple[str, ...]) -> None:
        self._challenge_done: tuple[str, int] | None = None
        self._play(self._frame(), ())

    def _face_follow(self) -> None:
        # (action, how many were done before it): the same action can be asked again later in an
        # attempt, or first in the next attempt.
        asked = self._on_ui(lambda: (getattr(self.ui.manager.current_screen, "challenge_key", None),
                                     getattr(self.ui.manager.current_screen, "challenge_step", 0)))
        key = asked[0] if asked else None
        if key and asked != getattr(self, "_challenge_done", None):
            from kiosk.devices.camera import LivenessChallenge

            challenge = next((c for c in LivenessChallenge if c.message_key == key), None)
            if challenge is not None:
                self._challenge_done = asked
                self._play(self._frame(), (challenge,))

    def _frame(self) -> Any:
        if getattr(self, "_frontal", None) is None:
            from camera.capture import read_image_rgb
            from camera.scenes import live_frame

            from camera.analysis import FaceAnalyzer

            person = self._people[self.script.face_of or self.script.person]
            photo = read_image_rgb(REPO.parent / "shared" / "testdata" / "faces" / camera_photo(person))
            self._analyzer = FaceAnalyzer(detect_width=min(photo.shape[1], 800))
            box = self._analyzer.detect(photo)[0]
            self._frontal = live_frame(photo, box)
        return self._frontal

    def _play(self, frame: Any, challenges: tuple[Any, ...]) -> None:
        camera = self.kiosk.simulators["camera"]
        self._stop_performing()
        if not challenges:
            camera.play([frame])
            return
        self._performer = LivenessPerformer(camera, self.kiosk.core.services.devices["face"], frame,
                                            challenges[0], self._poses)
        self._performer.start()
        self.log.append(f"liveness action {challenges[0].value}")


class LivenessPerformer:
    """The simulated citizen doing one liveness action the screen asks for, until it asks for another.

    A person in front of the kiosk watches the screen, not a clock: they face it, do the action
    (shut the eyes, turn the head), hold it, face the screen again, and repeat until the screen
    moves on. So each pose here is held until the face pipeline has analysed it ``hold`` times,
    counting only frames captured after the pose was shown. How fast the face worker runs (17
    frames a second on an idle machine, 2 on a loaded CI runner) then no longer decides whether the
    action is seen; a clock-timed script was missed whenever the worker fell behind it.
    """

    def __init__(self, camera: Any, pipeline: Any, frontal: Any, challenge: Any,
                 poses: dict[Any, Any], *, hold: int = 3, pose_timeout_s: float = 4.0) -> None:
        self.camera = camera
        self.pipeline = pipeline
        self.frontal = frontal
        self.challenge = challenge
        self.poses = poses
        self.hold = hold
        self.pose_timeout_s = pose_timeout_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="liveness-performer", daemon=True)
        self._began = time.monotonic()
        self.timeline: list[str] = []  # when each pose was shown and how many analysed frames it got

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _pose(self) -> Any:
        if self.challenge not in self.poses:
            from camera.analysis import FaceAnalyzer
            from camera.scenes import close_eyes, turn_head
            from kiosk.devices.camera import LivenessChallenge

            analyzer = FaceAnalyzer(detect_width=320)
            box = analyzer.detect(self.frontal)[0]
            if self.challenge is LivenessChallenge.BLINK:
                self.poses[self.challenge] = close_eyes(self.frontal, box, analyzer)[0]
            else:
                sign = 1.0 if self.challenge is LivenessChallenge.TURN_LEFT else -1.0
                self.poses[self.challenge] = turn_head(self.frontal, box, sign * 35.0)
        return self.poses[self.challenge]

    def _run(self) -> None:
        try:
            pose = self._pose()
        except Exception as exc:  # the report says so; the camera keeps showing the frontal face
            self.timeline.append(f"no pose: {type(exc).__name__}: {exc}")
            return
        self.timeline.append(f"pose ready {time.monotonic() - self._began:.1f}s")
        while not self._stop.is_set():
            for name, frame in (("front", self.frontal), (self.challenge.value, pose)):
                if self._stop.is_set():
                    return
                self.timeline.append(f"{name}@{time.monotonic() - self._began:.1f}s:{self._show(frame)}")

    def _show(self, frame: Any) -> int:
        """Shows ``frame`` until ``hold`` frames captured after it have been analysed; returns how
        many were (fewer when the time for a pose ran out or the performer was stopped)."""
        self.camera.play([frame])
        deadline = time.monotonic() + self.pose_timeout_s
        shown_from = self.pipeline.preview().frame_index + 1  # a frame being read now is the old pose
        counted_from: int | None = None
        while not self._stop.is_set() and time.monotonic() < deadline:
            if counted_from is None:
                if self.pipeline.preview().analysed_index > shown_from:
                    counted_from = self.pipeline.frames_analysed - 1
            elif self.pipeline.frames_analysed - counted_from >= self.hold:
                break
            time.sleep(0.01)
        return 0 if counted_from is None else self.pipeline.frames_analysed - counted_from


def camera_photo(person: dict[str, Any]) -> str:
    """The face this person shows the camera: their own (the ID photo's), or ``live_photo``."""
    return str(person.get("live_photo") or person["photo"])


def _people() -> dict[str, dict[str, Any]]:
    data = json.loads((REPO / "config" / "demo-people.json").read_text(encoding="utf-8"))
    return {p["key"]: p for p in data["people"]}


# --------------------------------------------------------------------------- running a scenario


def scenario_config(name: str, state_dir: Path, *, fast: bool) -> KioskConfig:
    s = SCENARIOS[name]
    config = load_config("demo")
    people = _people()
    face = camera_photo(people[s.citizen.face_of or s.citizen.person])  # who stands in front of the camera
    config = replace(
        config,
        kiosk=replace(config.kiosk, state_dir=state_dir, log_dir=state_dir / "log",
                      screenshot_dir=state_dir / "screenshots", voice_enabled=not fast, fullscreen=False),
        backend=replace(config.backend, sim_state_dir=state_dir / "backend-sim"),
        cardprinter=replace(config.cardprinter, sim_output_dir=str(state_dir / "card-faces"),
                            **({"sim_mechanics_s": 0.0} if fast else {})),
        idreader=replace(config.idreader, sim_initial_card="", **({"sim_card_delay_s": 0.0} if fast else {})),
        camera=replace(config.camera, sim_source=(str(REPO.parent / "shared" / "testdata" / "faces" / face),)),
    )
    for section, values in s.config.items():
        config = replace(config, **{section: replace(getattr(config, section), **values)})
    return config


_load_more_scenarios()


def mask_card_number(number: str | None) -> str | None:
    return f"{number[:2]}*****{number[-2:]}" if number else None


def ledger_balanced(kiosk: Any) -> bool | None:
    """The ledger's cards in the kiosk against what the printer's sensors count (read only)."""
    from kiosk.ledger import StockCount

    services = kiosk.core.services
    printer, ledger = services.devices.get("cardprinter"), services.devices.get("ledger")
    if printer is None or ledger is None:
        return None
    counters = printer.counters()
    if counters.hopper_count is None or counters.reject_bin_count is None:
        return None
    observed = StockCount.from_levels({"hopper": counters.hopper_count, "reject_bin": counters.reject_bin_count})
    return ledger.balance().expected.as_dict() == observed.as_dict()


def receipt_text(stream: bytes) -> str:
    """The readable text of an ESC/POS job, read with the printer's own parser (commands and
    their parameters dropped, text in GB 18030, one line per LF)."""
    from printer.receipt import protocol

    lines, line = [], b""
    for command in protocol.parse(stream):
        if command.op is protocol.Op.TEXT:
            line += command.data
        elif command.op in (protocol.Op.LF, protocol.Op.FEED_LINES, protocol.Op.CUT):
            lines.append(line.decode("gb18030", errors="replace").strip())
            line = b""
    lines.append(line.decode("gb18030", errors="replace").strip())
    return "\n".join(text for text in lines if text)


def _printed(kiosk: Any, screenshots: Path | None) -> list[str]:
    sim = kiosk.simulators.get("receipt")
    if sim is None:
        return []
    texts = []
    for n, stream in enumerate(list(sim.receipts)):
        texts.append(receipt_text(bytes(stream)))
        if screenshots is not None:
            from printer.receipt.render import render_to_png

            render_to_png(bytes(stream), screenshots / f"receipt-{n}.png", font_path=kiosk.core.config.kiosk.font_path)
    return texts


def _steps(journal: Any, visit_id: str) -> list[dict[str, Any]]:
    from kiosk.journal import StepEvent

    started: dict[str, Any] = {}
    out: list[dict[str, Any]] = []
    for entry in journal.entries(visit_id):
        if entry.event is StepEvent.STARTED and entry.step not in started:
            started[entry.step] = entry.at
        elif entry.event in (StepEvent.DONE, StepEvent.FAILED) and entry.step in started:
            out.append({"name": entry.step, "seconds": round((entry.at - started[entry.step]).total_seconds(), 3),
                        "result": entry.event.value})
    return out


def _watch_for_power_cut(kiosk: Any, step: str) -> None:
    """Cuts the power (SIGKILL, no clean-up of any kind) once ``step`` has fed a blank card."""
    journal = kiosk.core.journal
    while True:
        visit = next(iter(journal.unfinished_visits()), None)
        if visit is not None:
            for entry in journal.entries(visit.visit_id):
                if entry.step == step and "blank" in entry.data:
                    os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(0.005)


def run_script_ui(kiosk: Any, make_script: Callable[[Any, list[str]], Any], log: list[str], *,
                  screenshots: Path | None, lang: str | None, elder: bool,
                  thread_name: str) -> tuple[Any, str | None]:
    """Runs the kiosk's UI with the script ``make_script(ui, log)`` (a citizen, a staff member, an
    engineer) on its own thread until the script is done, a screenshot of each new screen when
    asked; returns (the script or None, the UI's error or None)."""
    from screens.boot import run_kiosk_ui
    from screens.touch import stop_when

    box: dict[str, Any] = {}

    def begin(ui: Any) -> None:
        if lang:
            ui.switch_language(lang)
        if elder:
            ui.toggle_elder(True)
        script = box["script"] = make_script(ui, log)
        if screenshots is not None:
            def shoot(name: str) -> None:
                time.sleep(0.4)  # the layout settles and is drawn
                script._on_ui(lambda: ui.take_screenshot(name))

            script.on_new_screen = shoot
        threading.Thread(target=script.run, name=thread_name, daemon=True).start()
        stop_when(script.done, ui)

    ui_error = None
    try:
        run_kiosk_ui(kiosk.core, kiosk.staff, screenshot_dir=screenshots, actions=[(0.2, begin)],
                     demo_pinpad_press=None, auto_screenshots=False)
    except Exception as exc:  # the report says so; a visit's own state is in the journal
        ui_error = f"{type(exc).__name__}: {exc}"
    return box.get("script"), ui_error


def run_visit(name: str, config: KioskConfig, *, fast: bool, screenshots: Path | None, lang: str | None = None,
              elder: bool = False, cut_power: bool = False) -> dict[str, Any]:
    """One visit of scenario ``name`` in this process through the real UI; returns the report."""
    from kiosk.app import build_kiosk, prepare_kivy_environment
    from kiosk.timing import VisitTimer

    s = SCENARIOS[name]
    prepare_kivy_environment(config, headless=True)
    kiosk = build_kiosk(config, console_log=False)
    try:
        printer_sim = kiosk.simulators.get("cardprinter")
        if printer_sim is not None:
            printer_sim.take_delay_s = None  # the scripted citizen takes the card (or not)
        if s.setup is not None and not getattr(kiosk, "_setup_done", False):
            s.setup(kiosk)
        if cut_power and s.power_cut_at:
            threading.Thread(target=_watch_for_power_cut, args=(kiosk, s.power_cut_at), daemon=True).start()
        timer = VisitTimer()
        kiosk.core.visit_timer = timer
        log: list[str] = []
        citizen, ui_error = run_script_ui(
            kiosk, lambda ui, log_: (s.actor or ScriptedCitizen)(ui, kiosk, s, fast=fast, log=log_), log,
            screenshots=screenshots, lang=lang, elder=elder, thread_name="scripted-citizen",
        )
        outcome = kiosk.core.last_outcome
        ended = time.monotonic()
        total = ended - citizen.business_touched_at if citizen and citizen.business_touched_at else None
        produce = dict(outcome.results.get("produce", {})) if outcome else {}
        outbox = kiosk.core.services.devices.get("outbox")
        status = outbox.status().as_dict() if outbox is not None else {}
        counts = status.get("counts", {})
        ui = citizen.ui if citizen else None
        report = {
            "scenario": name,
            "business": s.business,
            "outcome": outcome.outcome if outcome else None,
            "reason": outcome.reason if outcome else None,
            "card_number": mask_card_number(produce.get("card_number")),
            "touches": getattr(ui, "touches", None),
            "seconds": {
                "total": round(total, 3) if total is not None else None,
                "devices": round(timer.totals["devices"], 3),
                "backend": round(timer.totals["backend"], 3),
                "citizen": round(timer.totals["citizen"], 3),
                "kiosk": round(total - timer.totals["citizen"], 3) if total is not None else None,
            },
            "steps": _steps(kiosk.core.journal, outcome.visit_id) if outcome else [],
            "ledger_balanced": ledger_balanced(kiosk),
            "outbox_pending": int(counts.get("pending", 0)) + int(counts.get("in_flight", 0)),
            "screenshots": str(screenshots) if screenshots is not None else None,
            "visit_id": outcome.visit_id if outcome else None,
            "screens": citizen.screens if citizen else [],
            "citizen_log": log,
            "error": ui_error or (citizen.error if citizen else "the scripted citizen never started"),
            "recovered": [{"visit": r.visit_id, "steps": list(r.compensated_steps)} for r in kiosk.recovered],
            "printed": _printed(kiosk, screenshots),
        }
        if citizen is not None and hasattr(citizen, "report_fields"):
            report.update(citizen.report_fields())
        return report
    finally:
        kiosk.close()


def run_scenario(name: str, *, fast: bool, state_dir: Path | None = None, screenshots: Path | None = None,
                 lang: str | None = None, elder: bool = False) -> dict[str, Any]:
    """The whole scenario: one visit, or for a power cut a child kiosk killed mid-production and
    the visit done again after the restart. Adds ``expected`` and ``passed``."""
    s = SCENARIOS[name]
    own_dir = state_dir is None
    if state_dir is None:
        state_dir = Path(tempfile.mkdtemp(prefix=f"kiosk-scenario-{name}-"))
    config = scenario_config(name, state_dir, fast=fast)
    if s.prepare is not None:
        s.prepare(config)
    power_cut: dict[str, Any] | None = None
    if s.power_cut_at:
        argv = [sys.executable, "-m", "kiosk", "demo", "--headless", "--json", "--scenario", name,
                "--state-dir", str(state_dir), "--cut-power"] + (["--fast"] if fast else [])
        child = subprocess.run(argv, capture_output=True, text=True, timeout=300,
                               env=dict(os.environ, SDL_VIDEODRIVER="offscreen"))
        power_cut = {"step": s.power_cut_at, "child_exit": child.returncode,
                     "killed": child.returncode == -signal.SIGKILL}
    try:
        report = (s.run or run_visit)(name, config, fast=fast, screenshots=screenshots, lang=lang, elder=elder)
    finally:
        if own_dir and os.environ.get("KIOSK_KEEP_SCENARIO_STATE") != "1":
            shutil.rmtree(state_dir, ignore_errors=True)
    report["expected"] = s.expect
    report["passed"] = (
        report["outcome"] == s.expect
        and (s.reason is None or report["reason"] == s.reason)
        and not report["error"]
        and (power_cut is None or power_cut["killed"])
    )
    if power_cut is not None:
        report["power_cut"] = power_cut
    return report
