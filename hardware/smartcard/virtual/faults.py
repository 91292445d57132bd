"""Fault injection shared by the virtual card and the virtual PSAM (simulators).

``fault_names()``, ``inject(name, count=None, **params)``, ``clear_faults()`` — the surface every
simulator offers to tests and the engineer menu.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from hardware.smartcard.virtual.vpcd import CardPulled

WRITE_INS = (0xDC, 0xD6)

FAULTS = {
    "wrong_sw": "answer a wrong status word (params: sw=0x6581, ins=None, p1=None, skip=0); once by default",
    "card_pulled": "the card leaves the reader on a command (params: ins=None, p1=None, skip=0)",
    "tearing": "a write is cut half-way and the card leaves (params: ins=None (DC or D6), p1=None, skip=0)",
    "pin_tries_exhausted": "the PIN try counter drops to 0 now (VERIFY answers 6983)",
    "slow": "each command is delayed (params: delay_s=0.2); every command unless count is given",
}


@dataclass
class _Fault:
    name: str
    remaining: int | None
    params: dict[str, Any] = field(default_factory=dict)
    skip: int = 0

    def matches(self, apdu: bytes) -> bool:
        ins = self.params.get("ins")
        p1 = self.params.get("p1")
        if self.name == "tearing" and ins is None and apdu[1] not in WRITE_INS:
            return False
        if ins is not None and apdu[1] != ins:
            return False
        return p1 is None or apdu[2] == p1


class FaultPlan:
    """Faults armed on one virtual card. Thread-safe: tests inject while the link thread serves."""

    one_shot = ("wrong_sw", "card_pulled", "tearing")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self.fired: list[str] = []

    def fault_names(self) -> list[str]:
        return sorted(FAULTS)

    def inject(self, name: str, count: int | None = None, **params: Any) -> None:
        if name not in FAULTS:
            raise ValueError(f"unknown fault {name!r}; known: {', '.join(sorted(FAULTS))}")
        if count is None and name in self.one_shot:
            count = 1
        with self._lock:
            self._faults.append(_Fault(name, count, dict(params), int(params.get("skip", 0))))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, name: str) -> bool:
        """Consumes an armed immediate fault (e.g. pin_tries_exhausted)."""
        with self._lock:
            for fault in self._faults:
                if fault.name == name:
                    self._consume(fault)
                    return True
        return False

    def _consume(self, fault: _Fault) -> None:
        self.fired.append(fault.name)
        if fault.remaining is not None:
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.remove(fault)

    def before(self, apdu: bytes) -> tuple[str, dict[str, Any]] | None:
        """Called for every APDU before it runs. Sleeps for ``slow``; returns the fault that takes
        over this command (wrong_sw / card_pulled / tearing), or None."""
        delay = 0.0
        chosen: tuple[str, dict[str, Any]] | None = None
        with self._lock:
            for fault in list(self._faults):
                if fault.name == "slow":
                    delay = max(delay, float(fault.params.get("delay_s", 0.2)))
                    self._consume(fault)
                elif chosen is None and fault.name in self.one_shot and fault.matches(apdu):
                    if fault.skip > 0:
                        fault.skip -= 1
                        continue
                    chosen = (fault.name, fault.params)
                    self._consume(fault)
        if delay:
            time.sleep(delay)  # the slow-card fault is a delay by definition
        if chosen and chosen[0] == "card_pulled":
            raise CardPulled()
        return chosen
