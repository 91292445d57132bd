"""The demo kiosk as `make run` builds it: every simulated device behind its real link."""

from __future__ import annotations

import threading
import time

from kiosk.app import Kiosk
from kiosk.devices import DeviceState
from kiosk.runtime import IdentityShown


def wait_until(condition, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached")


def test_every_simulated_device_is_built_and_ready(demo_kiosk: Kiosk) -> None:
    devices = demo_kiosk.core.services.devices
    for name in ("idreader", "cardprinter", "receipt", "pinpad", "backend", "outbox", "ledger"):
        assert name in devices, name
    wait_until(lambda: all(s.state is DeviceState.READY for s in demo_kiosk.core.device_statuses()
                           if s.device in ("idreader", "pinpad", "receipt")))
    states = {s.device: s.state for s in demo_kiosk.core.device_statuses()}
    assert states.get("cardprinter") in (DeviceState.READY,), states


def test_a_card_placed_on_the_simulated_reader_is_shown_masked(demo_kiosk: Kiosk, people) -> None:
    shown: list[IdentityShown | None] = []
    demo_kiosk.core.identity_listeners.append(shown.append)
    demo_kiosk.simulators["idreader"].place("first_issue")
    wait_until(lambda: any(s is not None for s in shown))
    identity = next(s for s in shown if s is not None)
    person = people["first_issue"]
    assert identity.masked_id_number == person["id_number"][:6] + "********" + person["id_number"][-4:]
    assert identity.masked_name == person["name"][0] + "**"
    assert person["name"] not in repr(shown)
    demo_kiosk.simulators["idreader"].lift()
    wait_until(lambda: shown[-1] is None)


def test_the_demo_ledger_and_the_simulated_hopper_agree(demo_kiosk: Kiosk) -> None:
    from kiosk.ledger import Place

    ledger = demo_kiosk.core.services.ledger
    printer = demo_kiosk.core.services.cardprinter
    assert len(ledger.cards_in(Place.HOPPER)) == printer.counters().hopper_count > 0


def test_closing_the_kiosk_stops_every_simulator_thread(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from kiosk.app import build_kiosk
    from tests.e2e.conftest import demo_config

    before = {t.ident for t in threading.enumerate()}
    kiosk = build_kiosk(demo_config(tmp_path / "s"), console_log=False)
    kiosk.close()
    wait_until(lambda: not [t for t in threading.enumerate() if t.ident not in before and t.is_alive()], timeout=10)
