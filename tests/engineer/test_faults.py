"""Fault injection from the engineer menu (kiosk/faults.py): the panel offers exactly the faults
each simulator offers, arms them until cleared, records who did it, and a fault armed on a real
simulator link takes the kiosk out of service until it is cleared."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from camera.capture import SimulatedCamera
from hardware.pinpad.simulator import PinPadSimulator
from kiosk.audit import AUDIT_SCHEMA, AuditLog
from kiosk.devices import DeviceState
from kiosk.engineer import EngineerDesk
from kiosk.faults import FaultPanel, FaultRefused
from kiosk.i18n import Translator
from kiosk.journal import JOURNAL_SCHEMA, Journal
from kiosk.runtime import KioskCore, Services
from kiosk.selftest import run_selfcheck
from kiosk.storage import open_state_db
from printer.receipt.escpos_printer import EscPosReceiptPrinter, TcpLink
from printer.receipt.simulator import ReceiptPrinterSimulator
from tests.engineer.fakes import NOW, FakeSimulator, demo_config, free_disk


def test_the_panel_offers_each_simulators_own_faults_and_skips_what_has_none() -> None:
    camera = SimulatedCamera()
    pad = PinPadSimulator()
    panel = FaultPanel.from_simulators({"camera": camera, "pinpad": pad, "hsm": object(), "printer": FakeSimulator()})
    assert panel.devices() == ["camera", "pinpad", "printer"]
    assert panel.faults("camera") == camera.fault_names()
    assert panel.faults("pinpad") == pad.fault_names()


def test_inject_arms_until_cleared_and_clear_clears() -> None:
    sim = FakeSimulator()
    panel = FaultPanel({"cardprinter": sim})
    panel.inject("cardprinter", "jam")
    assert sim.injected == [("jam", None, {})]
    assert panel.armed("cardprinter") == ["jam"]
    panel.clear("cardprinter")
    assert sim.cleared == 1 and panel.armed("cardprinter") == []


def test_a_refused_fault_says_why() -> None:
    panel = FaultPanel({"cardprinter": FakeSimulator()})
    with pytest.raises(FaultRefused) as unknown:
        panel.inject("cardprinter", "meteor")
    assert unknown.value.code == "faults.unknown_fault"
    with pytest.raises(FaultRefused) as device:
        panel.inject("toaster", "jam")
    assert device.value.code == "faults.unknown_device"


def test_a_fault_that_needs_a_parameter_gets_a_sensible_default() -> None:
    sim = FakeSimulator(names=["status"])
    FaultPanel({"idreader": sim}).inject("idreader", "status")
    assert sim.injected == [("status", None, {"sw3": 0x41})]


def test_the_chip_station_psam_is_its_own_device() -> None:
    class SmartCardSim(FakeSimulator):
        def __init__(self) -> None:
            super().__init__(names=["wrong_sw", "tearing"])
            self.psam = FakeSimulator(names=["wrong_sw"])

    sim = SmartCardSim()
    panel = FaultPanel.from_simulators({"smartcard": sim})
    assert panel.devices() == ["smartcard", "psam"]
    panel.inject("psam", "wrong_sw")
    assert sim.psam.injected and not sim.injected


@pytest.fixture
def receipt_link() -> Iterator[tuple[ReceiptPrinterSimulator, EscPosReceiptPrinter]]:
    sim = ReceiptPrinterSimulator(paper_lines=5000, near_end_lines=300)
    sim.start()
    host, port = sim.address
    printer = EscPosReceiptPrinter(TcpLink(host, port), status_timeout_s=1.0, job_timeout_s=5.0, poll_interval_s=0.05)
    try:
        yield sim, printer
    finally:
        printer.close()
        sim.stop()


def test_every_receipt_fault_from_the_panel_shows_in_the_self_check_and_clears(tmp_path: Path, receipt_link) -> None:
    """Over the real loopback link: the panel arms the simulator's fault, the driver reads it."""
    sim, printer = receipt_link
    config = demo_config(tmp_path)
    panel = FaultPanel.from_simulators({"receipt": sim})

    def report():  # type: ignore[no-untyped-def]
        return run_selfcheck({"receipt": printer}, config, lambda: NOW, disk_usage=free_disk(50_000))

    assert report().in_service
    expected = {"paper_out": "receipt.paper_out", "cover_open": "receipt.cover_open"}
    for fault, code in expected.items():
        panel.inject("receipt", fault)
        after = report()
        assert not after.in_service and after.blocking[0].code == code
        panel.clear("receipt")
        assert report().in_service, fault
    panel.inject("receipt", "paper_near_end")
    near = report()
    assert near.in_service and near.check("paper").code == "receipt.paper_near_end"
    panel.clear("receipt")


def test_the_desk_records_every_injection_and_clearing_with_the_engineer(tmp_path: Path) -> None:
    config = demo_config(tmp_path / "state")
    conn = open_state_db(tmp_path / "state", {"journal": JOURNAL_SCHEMA, "audit": AUDIT_SCHEMA})
    audit = AuditLog(conn, b"k" * 32)
    camera = SimulatedCamera()
    services = Services({"camera": camera, "faults": FaultPanel.from_simulators({"camera": camera}), "audit": audit})
    core = KioskCore(config, Translator(config.kiosk.languages), Journal(conn), services, {})
    desk = EngineerDesk(core, site_file=tmp_path / "site.toml")
    desk.inject_fault("9001", "camera", "unplugged")
    assert camera.status().state is DeviceState.OFFLINE
    with pytest.raises(FaultRefused):
        desk.inject_fault("9001", "camera", "meteor")
    desk.clear_faults("9001", "camera")
    assert camera.status().state is DeviceState.READY
    assert [(e.actor, e.action, e.subject, e.details["outcome"]) for e in audit.entries()] == [
        ("9001", "engineer.fault_injected", "camera", "done"),
        ("9001", "engineer.fault_injected", "camera", "refused"),
        ("9001", "engineer.faults_cleared", "camera", "done"),
    ]
