"""Where a visit's time goes (耗时统计): the back end, the devices, or waiting for the citizen.

:class:`VisitTimer` sums wall time per category. :func:`timed_services` wraps each service so
every call is timed (calls that wait for the citizen — PIN entry, taking the card — count as the
citizen's time), and :class:`TimedPrompter` times the waits for an answer on the screen. The
kiosk's own work is the total minus the citizen's time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from kiosk.prompts import Answer, AnswerSource, Prompt, Prompter

# Calls during which the device waits for the citizen (keys on the PIN pad, the card taken).
CITIZEN_CALLS = {
    ("pinpad", "read_plain_pin"),
    ("pinpad", "read_pin_block"),
    ("cardprinter", "eject_to_citizen"),
}
# Services whose time is not the device's (stores and bookkeeping in the state database).
UNTIMED = {"ledger", "outbox", "journal", "face_lock", "audit", "sync", "photo_decoder"}


class VisitTimer:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self.totals: dict[str, float] = {"backend": 0.0, "devices": 0.0, "citizen": 0.0}
        self.calls: dict[str, int] = {}

    def add(self, category: str, seconds: float, what: str) -> None:
        with self._lock:
            self.totals[category] = self.totals.get(category, 0.0) + seconds
            self.calls[what] = self.calls.get(what, 0) + 1


class _TimedService:
    def __init__(self, name: str, target: Any, timer: VisitTimer) -> None:
        self._name = name
        self._target = target
        self._timer = timer

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._target, attr)
        if not callable(value) or attr.startswith("_"):
            return value
        category = "backend" if self._name == "backend" else "devices"
        if (self._name, attr) in CITIZEN_CALLS:
            category = "citizen"
        timer, what = self._timer, f"{self._name}.{attr}"

        def call(*args: Any, **kwargs: Any) -> Any:
            start = timer.clock()
            try:
                return value(*args, **kwargs)
            finally:
                timer.add(category, timer.clock() - start, what)

        return call


def timed_services(services: Any, timer: VisitTimer) -> Any:
    """A copy of ``services`` whose devices are timed (same class, so ``has``/``statuses`` work)."""
    devices: Mapping[str, Any] = services.devices
    wrapped = {
        name: device if name in UNTIMED else _TimedService(name, device, timer) for name, device in devices.items()
    }
    copy = object.__new__(type(services))
    copy.__dict__.update(services.__dict__)
    copy.devices = wrapped
    return copy


class TimedPrompter:
    """Counts the time a prompt waits for its answer as the citizen's."""

    def __init__(self, prompter: Prompter, timer: VisitTimer) -> None:
        self._prompter = prompter
        self._timer = timer

    def ask(self, prompt: Prompt, until: AnswerSource | None = None) -> Answer:
        start = self._timer.clock()
        try:
            return self._prompter.ask(prompt, until) if until is not None else self._prompter.ask(prompt)
        finally:
            self._timer.add("citizen", self._timer.clock() - start, f"screen.{prompt.screen}")

    def show(self, prompt: Prompt) -> None:
        self._prompter.show(prompt)
