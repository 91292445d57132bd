"""The engineer menu (screens/engineer.py) driven through the real Kivy shell with touches: the
engineer's own login and pages, live device status, every self-test, fault injection, the log,
outbox retry, configuration edit, diagnostics export; and the home screen out of service with a
short reason for citizens, back in service by itself when the fault clears."""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kiosk.devices import DeviceState
from kiosk.engineer import EngineerDesk
from kiosk.runtime import Services
from kiosk.staff import Role
from kiosk.visit import Flow, Step
from tests.engineer.ui_support import engineer_services, seed_log

pytestmark = pytest.mark.ui

ENGINEER_PAGES = ["eng_status", "eng_tests", "eng_faults", "eng_logs", "eng_outbox", "eng_config", "eng_diagnostics"]


@pytest.fixture(autouse=True)
def reference_panel() -> Iterator[None]:
    """The kiosk's 1280×1024 panel (the pages are laid out for it)."""
    from kivy.base import EventLoop

    EventLoop.ensure_window()
    from kivy.core.window import Window

    size = tuple(Window.size)
    Window.size = (1280, 1024)
    yield
    Window.size = size


def press(h: Any, choice: str, timeout: float = 3.0) -> Any:
    from screens.touch import press as touch_press

    found: list[Any] = []
    h.wait_for(lambda: bool(found.append(touch_press(h.ui, choice)) or found[-1]), timeout=timeout)
    h.pump(0.3)  # a ScrollView hands a short tap to its content after a short delay
    return found[-1]


def texts(widget: Any) -> list[str]:
    return [w.text for w in widget.walk() if isinstance(getattr(w, "text", None), str) and w.text and w.opacity > 0]


@pytest.fixture
def eng(make_ui: Any, tmp_path: Path) -> Iterator[Any]:
    """Builds the engineer UI; afterwards signs out and goes home, so no page or session of this
    test keeps running its clock events once the harness closes the database."""
    built: list[Any] = []

    def factory(**kwargs: Any) -> tuple[Any, dict]:
        h, devices = engineer_ui(make_ui, tmp_path, **kwargs)
        built.append(h)
        return h, devices

    yield factory
    for h in built:
        if h.ui.staff_session is not None:
            h.ui.staff_logout()
        h.ui.go_home()
        h.pump(0.4)


def engineer_ui(make_ui: Any, tmp_path: Path, *, faults: bool = True, flows: dict | None = None) -> tuple[Any, dict]:
    devices, _conn = engineer_services(tmp_path / "state")
    if not faults:
        del devices["faults"]
    seed_log(tmp_path / "state" / "log")
    h = make_ui(services=Services(devices), flows=flows, log_dir=tmp_path / "state" / "log")
    h.ui.engineer_desk = EngineerDesk(h.core, site_file=tmp_path / "site" / "kiosk.toml",
                                      export_roots=(tmp_path / "media",))
    h.core.selfcheck.max_age_s = 0.2
    h.staff.add("9001", Role.ENGINEER, "135790")
    h.staff.add("1001", Role.STAFF, "246810")
    return h, devices


def sign_in(h: Any, role: str = "engineer", staff_id: str = "9001", password: str = "135790") -> None:
    h.ui.open_staff_entry()
    h.wait_for(lambda: h.ui.manager.current == "staff_login")
    login = h.screen
    login.role = role
    login.entered(staff_id)
    login.entered(password)
    h.wait_for(lambda: h.ui.manager.current == "staff_menu")
    h.pump(0.3)


def open_page(h: Any, page: str) -> Any:
    press(h, f"page:{page}")
    h.wait_for(lambda: h.ui.manager.current == page and not h.ui.manager.transition.is_active)
    h.pump(0.3)
    return h.screen


def audit_actions(devices: dict) -> list[tuple[str, str, str]]:
    return [(e.actor, e.action, e.subject) for e in devices["audit"].entries()]


def test_the_engineer_signs_in_to_the_engineer_menu_and_staff_do_not_see_it(eng, tmp_path) -> None:
    h, _ = eng()
    sign_in(h, "staff", "1001", "246810")
    assert not any(screen.startswith("eng_") for screen, _ in h.screen.pages)
    h.ui.staff_logout()
    h.pump(0.3)
    h.ui.open_staff_entry()
    h.wait_for(lambda: h.ui.manager.current == "staff_login")
    h.screen.role = "staff"  # an engineer's account is refused at the staff login
    h.screen.entered("9001")
    h.screen.entered("135790")
    assert h.ui.manager.current == "staff_login" and h.screen.error_key == "staff.wrong_role"
    h.ui.go_home()
    h.pump(0.3)
    sign_in(h)
    assert [screen for screen, _ in h.screen.pages if screen.startswith("eng_")] == ENGINEER_PAGES
    assert "login" in h.staff.events("9001")


def test_fault_injection_is_hidden_without_simulators(eng, tmp_path) -> None:
    h, _ = eng(faults=False)
    sign_in(h)
    assert "eng_faults" not in [screen for screen, _ in h.screen.pages]


@pytest.mark.parametrize("page", ENGINEER_PAGES)
def test_every_page_has_choices_on_every_button_a_way_back_and_no_untranslated_text(eng, tmp_path, page) -> None:
    from screens.widgets import KButton

    h, _ = eng()
    sign_in(h)
    screen = open_page(h, page)
    for lang in ("zh_CN", "en"):
        h.ui.switch_language(lang)
        h.ui.toggle_elder(lang == "en")
        screen.dispatch("on_pre_enter")
        h.pump(0.4)
        buttons = [w for w in screen.walk() if isinstance(w, KButton)]
        assert buttons and all(b.choice for b in buttons), [b.text for b in buttons if not b.choice]
        assert all(b.height >= 60 and b.width >= 60 for b in buttons if b.opacity > 0 and b.width > 0)
        shown = texts(screen)
        assert not [t for t in shown if "{" in t or t.startswith(("engineer.", "selftest."))], shown
    press(h, "back")
    h.wait_for(lambda: h.ui.manager.current == "staff_menu")


def test_device_status_is_live_and_names_code_message_and_fix(eng, tmp_path) -> None:
    h, devices = eng()
    sign_in(h)
    page = open_page(h, "eng_status")
    h.wait_for(lambda: bool(page.rows))
    assert page.in_service
    devices["cardprinter"].set(DeviceState.ATTENTION, "cardprinter.jam", "cardprinter.jam")
    h.wait_for(lambda: not page.in_service, timeout=6)
    first = page.rows[0]
    assert (first["code"], first["xfs_state"], first["blocking"]) == ("cardprinter.jam", "userError", True)
    assert first["fix"] == "打开盖板取出卡住的卡，登记为废卡"
    assert any("cardprinter.jam" in t for t in texts(page))
    devices["cardprinter"].set(DeviceState.READY, "ok", hopper=50, ribbon_percent=80)
    h.wait_for(lambda: page.in_service, timeout=6)
    press(h, "check_now")
    h.wait_for(lambda: page.message_key == "engineer.status.checked")
    assert ("9001", "engineer.selfcheck", "kiosk") in audit_actions(devices)


def test_each_self_test_from_its_button_with_pass_fail_counts(eng, tmp_path) -> None:
    h, devices = eng()
    sign_in(h)
    page = open_page(h, "eng_tests")
    for test in ("idreader", "chip", "printer", "pinpad", "receipt"):
        press(h, f"test:{test}")
        h.wait_for(lambda test=test: test in page.results and not page.running, timeout=10)
    results = page.results
    assert results["idreader"]["ok"] and results["idreader"]["passed"] == 5
    assert not results["chip"]["ok"] and results["chip"]["code"] == "smartcard.no_card"  # no test card inserted
    assert results["printer"]["ok"] and devices["cardprinter"].moves == ["feed", "print", "reject"]
    assert results["pinpad"]["ok"] and devices["pinpad"].entries == 0  # no PIN entry
    assert results["receipt"]["ok"] and devices["receipt"].printed
    shown = "\n".join(texts(page))
    assert "成功 5 次，失败 0 次" in shown
    press(h, "test:camera")
    h.wait_for(lambda: page.camera_on, timeout=5)
    h.wait_for(lambda: page.ids.preview.frames_shown > 5, timeout=5)
    press(h, "test:camera_stop")
    h.wait_for(lambda: "camera" in page.results)
    assert page.results["camera"]["ok"] and devices["face"].stopped
    recorded = [a for a in audit_actions(devices) if a[1] == "engineer.selftest"]
    assert [s for _, _, s in recorded] == ["idreader", "chip", "printer", "pinpad", "receipt", "camera", "camera"]
    assert {actor for actor, _, _ in recorded} == {"9001"}


def test_fault_injection_from_the_menu_reaches_the_simulator_and_clears(eng, tmp_path) -> None:
    h, devices = eng()
    sim = devices["faults"]._targets["cardprinter"]
    sign_in(h)
    page = open_page(h, "eng_faults")
    press(h, "device:cardprinter")
    assert page.device == "cardprinter" and "jam" in page.faults
    press(h, "fault:cardprinter:jam")
    assert sim.injected == [("jam", None, {})] and page.armed == ["jam"]
    assert page.message_key == "engineer.faults.injected"
    press(h, "clear:cardprinter")
    assert sim.cleared == 1 and page.armed == []
    assert audit_actions(devices)[-2:] == [
        ("9001", "engineer.fault_injected", "cardprinter"), ("9001", "engineer.faults_cleared", "cardprinter"),
    ]


def test_the_log_viewer_shows_the_last_lines_redacted(eng, tmp_path) -> None:
    h, devices = eng()
    sign_in(h)
    page = open_page(h, "eng_logs")
    shown = "\n".join(texts(page))
    assert "step=read_id" in shown and "110101195503120048" not in shown and "**************0048" in shown
    assert page.level == "INFO" and "DEBUG" not in shown
    press(h, "level:WARNING")
    shown = "\n".join(texts(page))
    assert " INFO " not in shown and " WARNING " in shown and " ERROR " in shown
    assert ("9001", "engineer.log_viewed", "kiosk.log") in audit_actions(devices)


def test_outbox_tools_show_depth_age_and_quarantined_rows_and_retry_one(eng, tmp_path) -> None:
    h, devices = eng()
    sign_in(h)
    page = open_page(h, "eng_outbox")
    assert page.available and page.depth == 2
    assert [r["message_id"] for r in page.rows] == [1]
    assert "card_number_unknown" in page.rows[0]["reason"]
    press(h, "retry:1")
    assert page.message_key == "engineer.outbox.retried" and page.rows == []
    assert devices["outbox"].get(1).state.value == "pending"
    assert ("9001", "engineer.outbox_retry", "1") in audit_actions(devices)


def test_configuration_edit_is_validated_and_written_with_a_backup(eng, tmp_path) -> None:
    from kiosk.config import load_config

    h, devices = eng()
    site = tmp_path / "site" / "kiosk.toml"
    site.parent.mkdir()
    site.write_text('[kiosk]\nkiosk_id = "GZ-TH-0107"\n', encoding="utf-8")
    sign_in(h)
    page = open_page(h, "eng_config")
    assert page.section == "kiosk"
    press(h, "config:kiosk.idle_timeout_s")
    assert page.key == "kiosk.idle_timeout_s" and page.ids.value.text == "60"
    page.ids.value.text = "5"
    press(h, "save")
    assert page.error and page.message_values["setting"] == "kiosk.idle_timeout_s"
    assert site.read_text(encoding="utf-8") == '[kiosk]\nkiosk_id = "GZ-TH-0107"\n'
    page.ids.value.text = "90"
    press(h, "save")
    assert not page.error and page.message_key == "engineer.config.saved"
    assert len(list(site.parent.glob("kiosk.toml.*.bak"))) == 1
    assert load_config("demo", env={}, site_file=site).kiosk.idle_timeout_s == 90
    press(h, "section:next")
    assert page.section == "region"
    recorded = [(a, s) for _, a, s in audit_actions(devices) if a == "engineer.config_edit"]
    assert recorded == [("engineer.config_edit", "kiosk.idle_timeout_s")] * 2


def test_diagnostics_export_writes_a_redacted_bundle(eng, tmp_path) -> None:
    h, devices = eng()
    sign_in(h)
    page = open_page(h, "eng_diagnostics")
    assert page.destinations == [str(tmp_path / "state" / "diagnostics")]
    press(h, "export:0")
    h.wait_for(lambda: page.message_key == "engineer.diag.exported", timeout=15)
    bundle = Path(page.last_path)
    with tarfile.open(bundle, "r:gz") as tar:
        everything = "\n".join(tar.extractfile(m).read().decode("utf-8") for m in tar.getmembers() if m.isfile())
    assert "110101195503120048" not in everything and '"cardprinter"' in everything
    assert ("9001", "engineer.diagnostics_exported", str(bundle)) in audit_actions(devices)


def test_home_is_out_of_service_with_a_short_reason_and_recovers_by_itself(eng, tmp_path) -> None:
    started: list[str] = []
    flows = {"b": Flow("b", "app.title", (Step("s", lambda ctx: started.append("s")),))}
    h, devices = eng(flows=flows)
    home = h.ui.manager.get_screen("home")
    h.wait_for(lambda: home.in_service)
    devices["receipt"].set(DeviceState.ATTENTION, "receipt.paper_out", paper=0)
    h.wait_for(lambda: not home.in_service, timeout=6)
    assert home.out_of_service_key == "selftest.citizen.receipt"
    assert "暂停服务  凭条打印机维护中，请到柜台办理" in texts(home)
    assert not any("receipt.paper_out" in t for t in texts(home))  # the exact fault is for staff
    assert home.ids.business_grid.disabled
    assert home.ids.id_card_hint.opacity == 0, "an out-of-service kiosk does not ask for the ID card"
    h.ui.start_business("b")
    h.pump(0.5)
    assert started == [] and not h.core.visit_running
    devices["receipt"].set(DeviceState.READY, paper=2)
    h.wait_for(lambda: home.in_service, timeout=6)
    assert not home.ids.business_grid.disabled and home.ids.id_card_hint.opacity == 1
    h.ui.start_business("b")
    h.wait_for(lambda: started == ["s"] and not h.core.visit_running, timeout=5)
