"""Fault injection from the engineer menu (故障演练): when the kiosk runs on simulators, an
engineer or a trainer rehearses every failure the simulators offer, from the screen.

:class:`FaultPanel` is built by the composition root from its ``simulators`` dict and added as
the service ``faults``. It only calls each simulator's own fault surface — ``fault_names()``,
``inject(name, count=None, **params)``, ``clear_faults()`` — and imports no simulator: the core
knows them by the :class:`FaultInjectable` Protocol. A kiosk on real devices has no ``faults``
service, and the menu shows no fault page.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

log = logging.getLogger(__name__)

# Parameters for faults that cannot be armed without one (the simulator's own default otherwise).
DEFAULT_PARAMS: Mapping[tuple[str, str], Mapping[str, Any]] = {
    ("idreader", "status"): {"sw3": 0x41},  # "read failed", a status the module really answers
}


@runtime_checkable
class FaultInjectable(Protocol):
    """The fault surface every simulator offers."""

    def fault_names(self) -> list[str]: ...

    def inject(self, name: str, count: int | None = None, **params: Any) -> None: ...

    def clear_faults(self) -> None: ...


class FaultRefused(Exception):
    """The simulator refused the fault (unknown name, nothing to inject it into)."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message_key = code
        super().__init__(f"{code}: {message}")


class FaultPanel:
    """The simulators' faults by device. Faults are armed until cleared (``count=None``), so
    the failure stays on screen while the engineer looks at it."""

    def __init__(self, targets: Mapping[str, FaultInjectable]) -> None:
        self._targets = dict(targets)
        self._armed: dict[str, list[str]] = {name: [] for name in self._targets}
        self._lock = threading.Lock()

    @classmethod
    def from_simulators(cls, simulators: Mapping[str, Any]) -> FaultPanel:
        """Every simulator with a fault surface; the chip station's PSAM (a simulator of its own
        inside the smart-card simulator) appears as ``psam``."""
        targets: dict[str, FaultInjectable] = {}
        for name, sim in simulators.items():
            if isinstance(sim, FaultInjectable):
                targets[name] = sim
            psam = getattr(sim, "psam", None)
            if name == "smartcard" and isinstance(psam, FaultInjectable):
                targets["psam"] = psam
        return cls(targets)

    def devices(self) -> list[str]:
        return list(self._targets)

    def faults(self, device: str) -> list[str]:
        return list(self._target(device).fault_names())

    def armed(self, device: str) -> list[str]:
        """The faults injected from this panel and not cleared since."""
        with self._lock:
            return list(self._armed.get(device, []))

    def inject(self, device: str, fault: str, count: int | None = None, **params: Any) -> None:
        target = self._target(device)
        if fault not in target.fault_names():
            raise FaultRefused("faults.unknown_fault", f"{device} has no fault {fault!r}")
        arguments = {**DEFAULT_PARAMS.get((device, fault), {}), **params}
        try:
            target.inject(fault, count, **arguments)
        except (ValueError, RuntimeError) as exc:
            # e.g. a card fault with no card in the chip station
            raise FaultRefused("faults.refused", f"{device}/{fault}: {exc}") from exc
        except Exception as exc:  # a simulator's own error type (e.g. PinPadError): same meaning
            raise FaultRefused("faults.refused", f"{device}/{fault}: {type(exc).__name__}") from exc
        with self._lock:
            if fault not in self._armed[device]:
                self._armed[device].append(fault)
        log.warning("faults.injected device=%s fault=%s count=%s", device, fault, count)

    def clear(self, device: str) -> None:
        self._target(device).clear_faults()
        with self._lock:
            self._armed[device] = []
        log.warning("faults.cleared device=%s", device)

    def clear_all(self) -> None:
        for device in self._targets:
            self.clear(device)

    def _target(self, device: str) -> FaultInjectable:
        try:
            return self._targets[device]
        except KeyError:
            raise FaultRefused("faults.unknown_device", f"no simulator {device!r}") from None
