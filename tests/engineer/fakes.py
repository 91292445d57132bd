"""Fake services for the engineer tests: each answers its Protocol's calls from plain fields the
test sets, so a fault appears and clears the way a device's would."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from kiosk.config import KioskConfig, load_config
from kiosk.devices import DeviceError, DeviceState, DeviceStatus
from kiosk.devices.cardprinter import PrinterCounters
from kiosk.devices.pinpad import KeyAlgorithm, KeySlot, PinPadInfo
from kiosk.devices.receipt import PaperState, PrintResult
from kiosk.devices.smartcard import PsamIdentity


def demo_config(state_dir: Path) -> KioskConfig:
    from dataclasses import replace

    config = load_config("demo", env={}, site_file=Path("/nonexistent"))
    return replace(config, kiosk=replace(config.kiosk, state_dir=state_dir, log_dir=state_dir / "log"))


class FakeDevice:
    """A device whose status() is whatever the test set (or raises ``error``)."""

    def __init__(self, name: str, state: DeviceState = DeviceState.READY, code: str = "ok", **levels: int) -> None:
        self.name = name
        self.set(state, code, **levels)
        self.error: Exception | None = None
        self.status_calls = 0

    def set(self, state: DeviceState, code: str = "ok", message_key: str = "device.ready", **levels: int) -> None:
        self._status = DeviceStatus(self.name, state, code, message_key, "fake", dict(levels))

    def status(self) -> DeviceStatus:
        self.status_calls += 1
        if self.error is not None:
            raise self.error
        return self._status


class FakePrinter(FakeDevice):
    """Card printer: status, counters, and the test-card sequence."""

    def __init__(self, hopper: int = 50, ribbon_percent: int = 80) -> None:
        super().__init__("cardprinter", hopper=hopper, reject_bin=0, ribbon_percent=ribbon_percent)
        self.hopper = hopper
        self.moves: list[str] = []
        self.fail_at: str | None = None
        self.faces: list[Any] = []

    def counters(self) -> PrinterCounters:
        return PrinterCounters(hopper_count=self.hopper, ribbon_remaining=80, ribbon_capacity=100)

    def _move(self, stage: str) -> None:
        if self.fail_at == stage:
            from kiosk.devices.cardprinter import CardJam

            raise CardJam(f"jam at {stage}")
        self.moves.append(stage)

    def feed_to_chip_station(self) -> Any:
        self._move("feed")
        from kiosk.devices.cardprinter import CardPosition, FedCard

        return FedCard(CardPosition.CHIP_STATION, None)

    def print_face(self, face: Any) -> None:
        self._move("print")
        self.faces.append(face)

    def reject(self, reason: str) -> Any:
        self._move("reject")
        return SimpleNamespace(card_number=None, reason=reason)


class FakeReceipt(FakeDevice):
    def __init__(self) -> None:
        super().__init__("receipt", paper=2)
        self.printed: list[Any] = []
        self.error_on_print: DeviceError | None = None

    def paper_state(self) -> PaperState:
        return PaperState.ADEQUATE

    def print_report(self, report: Any) -> PrintResult:
        if self.error_on_print is not None:
            raise self.error_on_print
        self.printed.append(report)
        return PrintResult(100, PaperState.ADEQUATE)


class FakeReader(FakeDevice):
    """ID reader: each read_identity() takes the next outcome (an object, or an error to raise)."""

    def __init__(self, outcomes: list[Any] | None = None) -> None:
        super().__init__("idreader")
        self.outcomes = list(outcomes or [])

    def read_identity(self) -> Any:
        outcome = self.outcomes.pop(0) if self.outcomes else SimpleNamespace(name="张三")
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


class FakeStation(FakeDevice):
    def __init__(self, card: Any = None) -> None:
        super().__init__("smartcard")
        self.card = card

    def read_card_basic(self) -> Any:
        if self.card is None:
            from kiosk.devices.smartcard import NoCardError

            raise NoCardError("no card in the chip station")
        return self.card


class FakePsam(FakeDevice):
    def __init__(self) -> None:
        super().__init__("psam")

    def identity(self) -> PsamIdentity:
        return PsamIdentity("110100000001", "0102030405060708", "3B00")


class FakePad(FakeDevice):
    def __init__(self, keys: tuple[KeySlot, ...] | None = None) -> None:
        super().__init__("pinpad")
        self.keys = keys if keys is not None else (
            KeySlot(0, None, KeyAlgorithm.SM4, "1A2B3C4D"), KeySlot(0, 1, KeyAlgorithm.SM4, "5E6F7A8B"),
        )
        self.resets = 0
        self.entries = 0

    def reset(self) -> None:
        self.resets += 1

    def info(self) -> PinPadInfo:
        return PinPadInfo("KMY3501", "SN1", "1.0", "kmy3501", self.keys)

    def read_plain_pin(self, *args: Any, **kwargs: Any) -> bytearray:  # must never be called by a test
        self.entries += 1
        return bytearray()

    read_pin_block = read_plain_pin


class FakeOutbox:
    def __init__(self, state: DeviceState = DeviceState.READY) -> None:
        self.state = state

    def device_status(self) -> DeviceStatus:
        code = "ok" if self.state is DeviceState.READY else "outbox.quarantined"
        return DeviceStatus("outbox", self.state, code, "outbox.ok")


@dataclass
class FakeSimulator:
    """A simulator's fault surface."""

    names: list[str] = field(default_factory=lambda: ["jam", "paper_out"])
    injected: list[tuple[str, int | None, dict[str, Any]]] = field(default_factory=list)
    cleared: int = 0

    def fault_names(self) -> list[str]:
        return list(self.names)

    def inject(self, name: str, count: int | None = None, **params: Any) -> None:
        if name not in self.names:
            raise ValueError(f"unknown fault {name!r}")
        self.injected.append((name, count, params))

    def clear_faults(self) -> None:
        self.cleared += 1
        self.injected.clear()


def full_services(**overrides: Any) -> dict[str, Any]:
    """Every required device, ready, plus the outbox (offline mode available)."""
    devices: dict[str, Any] = {
        "idreader": FakeReader(),
        "smartcard": FakeStation(),
        "psam": FakePsam(),
        "cardprinter": FakePrinter(),
        "pinpad": FakePad(),
        "camera": FakeDevice("camera"),
        "receipt": FakeReceipt(),
        "backend": FakeDevice("backend"),
        "outbox": FakeOutbox(),
    }
    devices.update(overrides)
    return devices


def free_disk(mb: int) -> Any:
    return lambda _path: SimpleNamespace(free=mb * 2**20, total=10 * mb * 2**20, used=0)


NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
TODAY = date(2026, 3, 1)
