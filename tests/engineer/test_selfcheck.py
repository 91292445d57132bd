"""The self-check (kiosk/selftest.py): every required device and service, the consumables, the
back end or offline mode, disk space and the clock; out of service with a short reason for
citizens and the exact fault for engineers; in service again by itself when the fault clears."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from kiosk.devices import Audience, DeviceState
from kiosk.i18n import Translator
from kiosk.journal import JOURNAL_SCHEMA, Journal
from kiosk.runtime import KioskCore, Services
from kiosk.selftest import REQUIRED_DEVICES, SelfCheckMonitor, required_devices, run_selfcheck
from kiosk.storage import open_state_db
from kiosk.visit import Flow, Step
from tests.engineer.fakes import NOW, FakeDevice, FakeOutbox, demo_config, free_disk, full_services


@pytest.fixture
def config(tmp_path: Path):  # type: ignore[no-untyped-def]
    return demo_config(tmp_path / "state")


def check(services, config, **kwargs):  # type: ignore[no-untyped-def]
    kwargs.setdefault("disk_usage", free_disk(50_000))
    kwargs.setdefault("required", required_devices(config))
    return run_selfcheck(services, config, lambda: NOW, **kwargs)


def test_everything_ready_is_in_service_with_every_required_item_checked(config) -> None:
    report = check(full_services(), config)
    assert report.in_service
    names = [c.name for c in report.checks]
    for name in ("idreader", "smartcard", "psam", "cardprinter", "cards", "ribbon", "pinpad", "pinpad_keys",
                 "camera", "receipt", "paper", "backend", "disk", "clock"):
        assert name in names
    assert all(c.xfs_state in ("online", "deviceBusy") for c in report.checks if c.name in REQUIRED_DEVICES)
    assert report.check("cards").values == {"count": 50}


@pytest.mark.parametrize("missing", ["idreader", "smartcard", "psam", "cardprinter", "pinpad", "camera", "receipt", "backend"])
def test_a_required_device_that_is_not_there_takes_the_kiosk_out_of_service(config, missing: str) -> None:
    services = full_services()
    del services[missing]
    report = check(services, config)
    assert not report.in_service
    found = report.check(missing)
    assert found is not None and found.blocking
    assert (found.code, found.xfs_state, found.audience) == (f"{missing}.not_configured", "noDevice", Audience.ENGINEER)
    assert found.fix_key == "selftest.fix.not_configured"


def test_psam_is_required_only_with_psam_keys(config) -> None:
    from dataclasses import replace

    hsm = replace(config, smartcard=replace(config.smartcard, key_backend="hsm"))
    assert "psam" in required_devices(config)
    assert "psam" not in required_devices(hsm)


def test_an_empty_hopper_blocks_with_the_card_making_reason_and_the_staff_fix(config) -> None:
    services = full_services()
    services["cardprinter"].set(DeviceState.ATTENTION, "cardprinter.hopper_empty", hopper=0, ribbon_percent=80)
    services["cardprinter"].hopper = 0
    report = check(services, config)
    assert not report.in_service
    cards = report.check("cards")
    assert cards.blocking and cards.code == "cardprinter.hopper_empty" and cards.xfs_state == "userError"
    assert cards.audience is Audience.STAFF and cards.fix_key == "selftest.fix.refill_cards"
    first = report.blocking_statuses()[0]
    assert first.code == "cardprinter.hopper_empty"
    assert first.message_key == "selftest.citizen.card_making"  # short, for citizens


def test_low_cards_ribbon_and_paper_warn_staff_but_keep_serving(config) -> None:
    services = full_services()
    services["cardprinter"].set(DeviceState.READY, "cardprinter.hopper_near_empty", hopper=3, ribbon_percent=5)
    services["receipt"].set(DeviceState.READY, "receipt.paper_near_end", paper=1)
    report = check(services, config)
    assert report.in_service
    assert report.check("cards").code == "cardprinter.hopper_near_empty"
    assert report.check("ribbon").code == "cardprinter.ribbon_low"
    assert report.check("paper").code == "receipt.paper_near_end"
    assert {report.check(n).audience for n in ("cards", "ribbon", "paper")} == {Audience.STAFF}
    assert not report.check("cards").ok


def test_ribbon_out_and_paper_out_block(config) -> None:
    services = full_services()
    services["cardprinter"].set(DeviceState.READY, "ok", hopper=40, ribbon_percent=0)
    assert not check(services, config).in_service
    services = full_services()
    services["receipt"].set(DeviceState.ATTENTION, "receipt.paper_out", paper=0)
    report = check(services, config)
    assert [c.name for c in report.blocking] == ["receipt", "paper"]
    assert report.blocking_statuses()[0].message_key == "selftest.citizen.receipt"


def test_pin_pad_without_keys_blocks_and_says_load_the_keys(config) -> None:
    services = full_services()
    services["pinpad"].set(DeviceState.FAULT, "pinpad.keys_missing", "pinpad.out_of_service")
    report = check(services, config)
    keys = report.check("pinpad_keys")
    assert keys.blocking and keys.state is DeviceState.FAULT and keys.xfs_state == "hardwareError"
    assert keys.fix_key == "selftest.fix.pinpad_keys"


def test_back_end_down_is_offline_mode_with_an_outbox_and_out_of_service_without(config) -> None:
    services = full_services()
    services["backend"].set(DeviceState.OFFLINE, "backend.unreachable", "backend.unavailable")
    report = check(services, config)
    assert report.in_service
    backend = report.check("backend")
    assert (backend.code, backend.blocking, backend.xfs_state) == ("backend.offline_mode", False, "offline")
    del services["outbox"]
    report = check(services, config)
    assert not report.in_service
    assert report.blocking_statuses()[0].message_key == "selftest.citizen.network"


def test_disk_space_and_clock(config, tmp_path: Path) -> None:
    services = full_services()
    assert check(services, config, disk_usage=free_disk(1500)).check("disk").code == "disk.low"
    report = check(services, config, disk_usage=free_disk(100))
    assert not report.in_service and report.check("disk").code == "disk.full"
    old = run_selfcheck(services, config, lambda: NOW.replace(year=2000), required=required_devices(config),
                        disk_usage=free_disk(50_000))
    assert old.check("clock").code == "clock.not_set" and not old.in_service
    behind = check(services, config, last_recorded=NOW + timedelta(hours=2))
    assert behind.check("clock").code == "clock.behind_journal" and not behind.in_service
    assert check(services, config, last_recorded=NOW + timedelta(seconds=30)).in_service  # NTP step


def test_a_status_call_that_raises_is_a_fault_not_a_crash(config) -> None:
    services = full_services()
    services["camera"].error = RuntimeError("driver bug")
    report = check(services, config)
    camera = report.check("camera")
    assert (camera.state, camera.code, camera.blocking) == (DeviceState.FAULT, "camera.status_failed", True)


def test_other_services_are_shown_but_never_block(config) -> None:
    report = check(full_services(outbox=FakeOutbox(DeviceState.ATTENTION)), config)
    assert report.in_service
    assert report.check("outbox").code == "outbox.quarantined" and not report.check("outbox").blocking


def test_xfs_states_of_each_device_state(config) -> None:
    services = full_services()
    services["idreader"].set(DeviceState.BUSY, "idreader.reading")
    services["camera"].set(DeviceState.OFFLINE, "camera.unavailable")
    services["receipt"].set(DeviceState.OFFLINE, "receipt.offline")
    services["pinpad"].set(DeviceState.FAULT, "pinpad.self_test_failed")
    report = check(services, config)
    assert report.check("idreader").xfs_state == "deviceBusy" and not report.check("idreader").blocking
    assert report.check("camera").xfs_state == "noDevice"
    assert report.check("receipt").xfs_state == "offline"
    assert report.check("pinpad").xfs_state == "hardwareError"


def test_every_message_and_fix_key_is_in_both_catalogs(config) -> None:
    translator = Translator(("zh_CN", "en"))
    services = full_services()
    services["cardprinter"].set(DeviceState.ATTENTION, "cardprinter.jam")
    reports = [check(services, config), check({}, config), check(full_services(), config, disk_usage=free_disk(10))]
    for report in reports:
        for c in report.checks:
            for key in (c.fix_key, c.citizen_key):
                assert translator.has(key, "zh_CN") and translator.has(key, "en"), key


# --------------------------------------------------------------------------- the running kiosk


class NullPrompter:
    def ask(self, prompt, until=None):  # type: ignore[no-untyped-def]
        raise AssertionError("nothing should be asked")

    def show(self, prompt) -> None:  # type: ignore[no-untyped-def]
        pass


def core_with(tmp_path: Path, services: dict, flows: dict | None = None) -> KioskCore:
    config = demo_config(tmp_path / "state")
    conn = open_state_db(tmp_path / "state", {"journal": JOURNAL_SCHEMA})
    core = KioskCore(config, Translator(config.kiosk.languages), Journal(conn), Services(services), flows or {})
    core.selfcheck.require(required_devices(config))
    return core


def test_in_service_follows_the_fault_and_recovers_by_itself(tmp_path: Path) -> None:
    services = full_services()
    core = core_with(tmp_path, services)
    core.selfcheck.max_age_s = 0.05
    assert core.in_service() == (True, [])
    services["cardprinter"].set(DeviceState.ATTENTION, "cardprinter.cover_open")
    deadline = time.monotonic() + 5
    while core.in_service()[0] and time.monotonic() < deadline:
        time.sleep(0.02)
    ok, blocking = core.in_service()
    assert not ok and blocking[0].code == "cardprinter.cover_open"
    services["cardprinter"].set(DeviceState.READY, "ok", hopper=50, ribbon_percent=80)
    while not core.in_service()[0] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert core.in_service() == (True, [])


def test_the_home_screen_never_waits_on_a_slow_device(tmp_path: Path) -> None:
    services = full_services()
    core = core_with(tmp_path, services)
    core.selfcheck.run()
    slow = threading.Event()
    original = services["backend"].status

    def slow_status():  # type: ignore[no-untyped-def]
        slow.wait(2)
        return original()

    services["backend"].status = slow_status
    core.selfcheck.max_age_s = 0
    started = time.monotonic()
    for _ in range(5):
        core.in_service()
    assert time.monotonic() - started < 0.5, "in_service blocked on a device"
    slow.set()


def test_a_visit_is_refused_before_it_starts_when_the_check_fails(tmp_path: Path) -> None:
    ran: list[str] = []
    flows = {"b": Flow("b", "app.title", (Step("s", lambda ctx: ran.append("s")),))}
    services = full_services()
    core = core_with(tmp_path, services, flows)
    core.selfcheck.run()  # cached: in service
    services["pinpad"].set(DeviceState.FAULT, "pinpad.keys_missing")
    outcomes = []
    core.start_visit("b", NullPrompter(), on_done=outcomes.append).join(5)
    assert ran == [] and outcomes[0].outcome == "refused" and outcomes[0].reason == "out_of_service"
    services["pinpad"].set(DeviceState.READY)
    core.start_visit("b", NullPrompter(), on_done=outcomes.append).join(5)
    assert ran == ["s"] and outcomes[1].outcome == "completed"


def test_the_clock_is_checked_against_the_journal(tmp_path: Path) -> None:
    core = core_with(tmp_path, full_services())
    visit = core.journal.start_visit("b")
    core.journal.end_visit(visit, "completed")
    monitor = SelfCheckMonitor(core.services, core.config, journal=core.journal, clock=lambda: NOW.replace(year=2025),
                               required=required_devices(core.config), disk_usage=free_disk(50_000))
    report = monitor.run()
    assert report.check("clock").code == "clock.behind_journal"


def test_the_last_report_is_saved_when_it_changes(tmp_path: Path) -> None:
    services = full_services()
    saved = tmp_path / "selfcheck.json"
    monitor = SelfCheckMonitor(services, demo_config(tmp_path / "s"), save_path=saved, disk_usage=free_disk(50_000))
    monitor.run()
    first = saved.stat().st_mtime_ns
    monitor.run()
    assert saved.stat().st_mtime_ns == first  # nothing changed, nothing written
    services["camera"].set(DeviceState.OFFLINE, "camera.unavailable")
    monitor.run()
    assert '"camera.unavailable"' in saved.read_text()


def test_unconfigured_devices_are_not_required_unless_the_root_says_so(tmp_path: Path) -> None:
    config = demo_config(tmp_path / "state")
    assert run_selfcheck({}, config, lambda: NOW, disk_usage=free_disk(50_000)).in_service
    assert not run_selfcheck({}, config, lambda: NOW, required=required_devices(config),
                             disk_usage=free_disk(50_000)).in_service
    assert FakeDevice  # the fakes module stays importable for the UI tests
