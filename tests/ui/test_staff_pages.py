"""The staff menu pages (screens/staff_pages.py) driven as a staff member would: the hidden entry,
login on the keypad, the menu, then every page by the ``choice`` of its buttons. Behind the pages:
the real ledger, audit and registry on the state database, the card and receipt printer
simulators on real loopback links (tests/staff/rig.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kiosk.journal import utc_now
from kiosk.ledger import Place, RejectReason, card_range
from tests.staff.rig import PASSWORDS, StaffRig, build_rig

pytestmark = pytest.mark.ui

SHOTS = Path("/tmp/staff_shots")
STAFF_PAGES = [
    "staff_levels",
    "staff_restock",
    "staff_ribbon",
    "staff_paper",
    "staff_reject_bin",
    "staff_reconcile",
    "staff_discrepancies",
    "staff_psam",
]


@pytest.fixture
def staff_ui(make_ui, tmp_path: Path) -> Iterator[tuple[Any, StaffRig]]:
    from kivy.core.window import Window

    size = Window.size
    Window.size = (1280, 1024)  # the reference kiosk panel
    rig = build_rig(tmp_path, clock=utc_now)
    h = None
    try:
        h = make_ui(services=rig.services)
        h.pump(0.3)
        yield h, rig
    finally:
        if h is not None:
            from kivy.clock import Clock

            # No page action may still be running on its worker thread when the database closes,
            # and this app's idle tick must not sign anyone out in a later test.
            pages = [h.ui.manager.get_screen(name) for name in STAFF_PAGES]
            h.wait_for(lambda: not any(page.busy for page in pages), timeout=30)
            h.ui.staff_logout()
            Clock.unschedule(h.ui._tick)
        rig.close()
        Window.size = size


def buttons(h, choice: str) -> list[Any]:  # type: ignore[no-untyped-def]
    from screens.widgets import KButton

    return [
        w
        for w in h.screen.walk()
        if isinstance(w, KButton) and w.choice == choice and not w.disabled and w.opacity > 0 and w.height > 0
    ]


def press(h, choice: str) -> None:  # type: ignore[no-untyped-def]
    found = buttons(h, choice)
    assert len(found) == 1, f"{choice!r}: {len(found)} buttons on {h.ui.manager.current}"
    h.ui.touched()  # a real press is a touch (keeps the idle timeout away)
    found[0].dispatch("on_release")
    h.pump(0.05)


def keypad(h, digits: str) -> None:  # type: ignore[no-untyped-def]
    press(h, "key:clear")
    for d in digits:
        press(h, f"key:{d}")
    press(h, "key:enter")


def sign_in(h, staff_id: str = "1001") -> None:  # type: ignore[no-untyped-def]
    h.ui.open_staff_entry()
    h.pump(0.3)
    keypad(h, staff_id)
    keypad(h, PASSWORDS[staff_id])
    h.wait_for(lambda: h.ui.manager.current == "staff_menu")


def open_page(h, name: str) -> Any:  # type: ignore[no-untyped-def]
    if h.ui.manager.current != "staff_menu":
        press(h, "back")
        h.wait_for(lambda: h.ui.manager.current == "staff_menu")
    press(h, f"page:{name}")
    h.wait_for(lambda: h.ui.manager.current == name)
    page = h.screen
    h.wait_for(lambda: not page.busy)
    return page


def message(h) -> str:  # type: ignore[no-untyped-def]
    page = h.screen
    return h.ui.t(page.message_key, **page.message_values) if page.message_key else ""


# --------------------------------------------------------------------------- entry and menu


def test_entry_login_and_menu_list_the_staff_pages_and_close_service(staff_ui) -> None:
    from types import SimpleNamespace

    h, _rig = staff_ui
    corner = h.ui.manager.get_screen("home").ids.corner
    for _ in range(corner.taps):  # the hidden entry on the home screen
        corner.on_touch_down(SimpleNamespace(pos=tuple(corner.center)))
    h.pump(0.3)
    assert h.ui.manager.current == "staff_login"
    keypad(h, "1001")
    keypad(h, PASSWORDS["1001"])
    h.wait_for(lambda: h.ui.manager.current == "staff_menu")
    menu = h.screen
    names = [screen for screen, _title in menu.pages]
    assert [n for n in names if n.startswith("staff_")] == STAFF_PAGES
    assert h.ui.manager.get_screen("home").in_service is False  # "out of service" for citizens
    assert h.ui.staff_session.staff_id == "1001"
    h.ui.staff_logout()
    h.pump(0.3)
    sign_in(h, "2001")
    assert [n for n, _t in h.screen.pages if n.startswith("staff_")] == STAFF_PAGES


def test_a_wrong_password_locks_the_account_on_the_login_screen(staff_ui) -> None:
    h, rig = staff_ui
    h.ui.open_staff_entry()
    h.pump(0.3)
    login = h.screen
    for _ in range(3):
        keypad(h, "1001")
        keypad(h, "123123")
    assert login.error_key == "staff.locked"
    keypad(h, "1001")
    keypad(h, PASSWORDS["1001"])
    h.pump(0.2)
    assert h.ui.manager.current == "staff_login" and login.error_key == "staff.locked"
    events = rig.accounts.events("1001")
    assert events[-4:] == ["login_failed", "login_failed", "login_failed_locked", "login_while_locked"]


# --------------------------------------------------------------------------- restock, levels


def test_restock_a_range_typed_on_the_keypad_registers_every_card(staff_ui) -> None:
    h, rig = staff_ui
    sign_in(h)
    page = open_page(h, "staff_restock")
    assert page.prefix == "A"
    keypad(h, "00000101")
    assert page.stage == "second"
    keypad(h, "00000150")
    assert page.stage == "confirm"
    assert page.cards[0] == "A00000101" and len(page.cards) == 50
    press(h, "confirm")
    h.wait_for(lambda: page.stage == "done")
    assert page.message_kind == "ok" and "已登记50张" in message(h)
    assert rig.ledger.cards_in(Place.HOPPER) == card_range("A00000101", "A00000150")
    assert rig.staff_log.last("restock").staff_id == "1001"

    press(h, "again")
    h.wait_for(lambda: not page.busy)
    assert page.ids.keypad.value == "00000151", "the next number after the batch is suggested"
    press(h, "mode:count")
    keypad(h, "00000151")
    keypad(h, "10")
    assert page.cards[-1] == "A00000160"
    press(h, "confirm")
    h.wait_for(lambda: page.stage == "done")
    assert rig.ledger.balance().expected.hopper == 60


def test_a_restock_the_hopper_sensor_disagrees_with_is_shown_as_a_discrepancy(staff_ui) -> None:
    h, rig = staff_ui
    hands = rig.services.devices["stock_hands"]
    load = hands.load_hopper
    hands.load_hopper = lambda numbers: load(list(numbers)[:-2])
    sign_in(h)
    page = open_page(h, "staff_restock")
    keypad(h, "00000001")
    keypad(h, "00000020")
    press(h, "confirm")
    h.wait_for(lambda: page.stage == "done")
    assert page.message_kind == "warn" and "传感器为18张" in message(h)
    assert len(rig.ledger.open_discrepancies()) == 1
    levels = open_page(h, "staff_levels")
    h.wait_for(lambda: levels.alert_count >= 0)
    assert levels.alert_count == 1
    rows = {row.name_key: row for row in levels.rows}
    assert rows["staffpage.level_name.cards"].message_key == "staffpage.level.cards_sensor_mismatch"


def test_levels_page_alerts_when_cards_run_low_and_the_bin_fills(staff_ui) -> None:
    h, rig = staff_ui
    sign_in(h)
    page = open_page(h, "staff_levels")
    h.wait_for(lambda: page.alert_count >= 0)
    states = {row.name_key.rsplit(".", 1)[1]: row.state for row in page.rows}
    assert states == {"cards": "out", "ribbon": "ok", "paper": "ok", "reject_bin": "ok"}
    rig.ledger.register_cards(card_range("A00000001", "A00000030"), operator="1001")
    rig.card_sim.load_hopper(card_range("A00000001", "A00000030"))
    rig.spoil([RejectReason.MISPRINT] * 16)  # 14 blanks left; 16 in the bin (near full at 15)
    rig.card_sim.ribbon_remaining = 10
    rig.receipt_sim.inject("paper_near_end")
    press(h, "refresh")
    h.wait_for(lambda: not page.busy)
    states = {row.name_key.rsplit(".", 1)[1]: row.state for row in page.rows}
    assert states == {"cards": "ok", "ribbon": "low", "paper": "low", "reject_bin": "low"}
    assert page.alert_count == 3


# --------------------------------------------------------------------------- ribbon, paper


def test_ribbon_and_paper_pages_record_the_change_and_read_the_device_back(staff_ui) -> None:
    h, rig = staff_ui
    rig.card_sim.ribbon_remaining = 3
    rig.receipt_sim.inject("paper_out")
    sign_in(h, "1002")
    page = open_page(h, "staff_ribbon")
    assert page.level_key == "staffpage.level.ribbon_low"
    press(h, "confirm")
    h.wait_for(lambda: page.done and not page.busy)
    assert page.message_kind == "ok" and "200 / 200" in message(h)
    page = open_page(h, "staff_paper")
    assert page.paper_key == "staffpage.level.paper_out"
    press(h, "confirm")
    h.wait_for(lambda: page.done and not page.busy)
    assert page.message_kind == "ok" and page.paper_key == "staffpage.level.paper_ok"
    assert [(e.staff_id, e.action) for e in rig.staff_log.entries()] == [
        ("1002", "ribbon_changed"),
        ("1002", "paper_changed"),
    ]


# --------------------------------------------------------------------------- reject bin


def test_empty_the_reject_bin_lists_the_cards_and_prints_the_handover_list(staff_ui) -> None:
    h, rig = staff_ui
    rig.ledger.register_cards(card_range("A00000001", "A00000010"), operator="1001")
    rig.card_sim.load_hopper(card_range("A00000001", "A00000010"))
    spoiled = rig.spoil([RejectReason.PERSONALIZATION_FAILED, RejectReason.NOT_TAKEN])
    sign_in(h)
    page = open_page(h, "staff_reject_bin")
    assert page.card_count == 2
    rows = [h.ui.t(r.text_key, **r.text_values) for r in reversed(page.ids.cards.children)]
    assert spoiled[0] in rows[0] and "芯片个人化失败" in rows[0] and "超时未取回收" in rows[1]
    press(h, "confirm")
    h.wait_for(lambda: page.emptied and not page.busy)
    assert page.message_kind == "ok" and "交接清单已打印" in message(h)
    assert rig.ledger.cards_in(Place.HANDED_OVER) == spoiled and page.card_count == 0
    printed = rig.receipt_sim.receipts[-1].decode("gb18030", errors="replace")
    assert "废卡交接清单" in printed and all(n in printed for n in spoiled)
    press(h, "reprint")
    h.wait_for(lambda: not page.busy)
    assert len(rig.receipt_sim.receipts) == 2


# --------------------------------------------------------------------------- count, discrepancy, closing


def test_a_count_mismatch_goes_to_the_supervisor_and_stays_open_until_resolved(staff_ui) -> None:
    h, rig = staff_ui
    rig.ledger.register_cards(card_range("A00000001", "A00000020"), operator="1001")
    rig.card_sim.load_hopper(card_range("A00000001", "A00000020"))
    sign_in(h, "1001")
    page = open_page(h, "staff_reconcile")
    press(h, "period:day")
    keypad(h, "19")
    keypad(h, "0")
    h.wait_for(lambda: page.stage == "result")
    assert not page.balanced and page.message_kind == "error"
    assert "卡箱应有20张、实点19张" in message(h)
    (open_one,) = rig.ledger.open_discrepancies()

    press(h, "supervisor")
    h.wait_for(lambda: h.ui.manager.current == "staff_discrepancies")
    disc = h.screen
    h.wait_for(lambda: disc.open_count == 1)
    press(h, f"discrepancy:{open_one.discrepancy_id}")
    assert disc.stage == "auth_id"
    keypad(h, "1002")  # a staff member is not a supervisor
    keypad(h, PASSWORDS["1002"])
    h.wait_for(lambda: not disc.busy)
    assert disc.stage == "auth_id" and disc.message_key == "staff.wrong_role"
    keypad(h, "2001")
    keypad(h, PASSWORDS["2001"])
    h.wait_for(lambda: disc.stage == "note")
    press(h, "note:miscount")
    h.wait_for(lambda: disc.stage == "resolve" and not disc.busy)
    noted = rig.ledger.discrepancy(open_one.discrepancy_id)
    assert noted.open and noted.noted_by == "2001" and noted.note == "清点有误，已重新清点"
    assert rig.ledger.period_report("day").balanced is False

    # The recount agrees; the supervisor then closes the discrepancy.
    page = open_page(h, "staff_reconcile")
    press(h, "period:day")
    keypad(h, "20")
    keypad(h, "0")
    h.wait_for(lambda: page.stage == "result")
    assert page.balanced
    disc = open_page(h, "staff_discrepancies")
    assert disc.supervisor_id == "", "the supervisor signed in for the earlier visit only"
    press(h, f"discrepancy:{open_one.discrepancy_id}")
    keypad(h, "2001")
    keypad(h, PASSWORDS["2001"])
    h.wait_for(lambda: disc.stage == "resolve")
    press(h, "resolve:recount_balanced")
    h.wait_for(lambda: disc.stage == "list" and not disc.busy)
    assert rig.ledger.open_discrepancies() == [] and disc.open_count == 0
    assert rig.ledger.discrepancy(open_one.discrepancy_id).resolved_by == "2001"
    assert rig.ledger.period_report("day").balanced is True


def test_a_finger_on_a_period_button_reaches_it_past_the_hidden_result_buttons(staff_ui) -> None:
    """A real touch (down and up through the window), not a dispatched release: the hidden
    result row (recount, close) lies where the period buttons are drawn and must not take it."""
    from screens.touch import SyntheticTouch, find_choice

    h, _rig = staff_ui
    sign_in(h)
    page = open_page(h, "staff_reconcile")
    h.pump(0.3)
    button = find_choice(h.ui, "period:day")
    finger = SyntheticTouch(*button.to_window(*button.center))
    finger.down()
    h.pump(0.1)
    finger.up()
    h.wait_for(lambda: page.stage == "hopper")
    assert page.period == "day"


def test_close_the_day_with_a_reviewer_prints_and_exports_the_report(staff_ui) -> None:
    h, rig = staff_ui
    rig.ledger.register_cards(card_range("A00000001", "A00000010"), operator="1001")
    rig.card_sim.load_hopper(card_range("A00000001", "A00000010"))
    rig.spoil([RejectReason.MISPRINT])
    sign_in(h, "1001")
    page = open_page(h, "staff_reconcile")
    press(h, "period:day")
    keypad(h, "9")
    keypad(h, "1")
    h.wait_for(lambda: page.stage == "result")
    assert page.balanced
    values = {line.label_key: line.value for line in page.ids.report.children}
    assert (
        values["ledger.slip.opening"],
        values["ledger.slip.restocked"],
        values["ledger.slip.spoiled"],
        values["ledger.slip.closing"],
        values["ledger.slip.counted"],
    ) == ("0", "10", "1", "10", "10")
    press(h, "close")
    keypad(h, "1001")  # the operator cannot review themself
    keypad(h, PASSWORDS["1001"])
    h.wait_for(lambda: not page.busy)
    assert page.message_key == "ledger.reviewer_required" and page.stage == "result"
    press(h, "close")
    keypad(h, "1002")
    keypad(h, PASSWORDS["1002"])
    h.wait_for(lambda: page.stage == "closed")
    assert page.message_kind == "ok" and "复核人1002" in message(h)
    closing = rig.ledger.last_closing("day")
    assert (closing.operator, closing.reviewer, closing.balanced) == ("1001", "1002", True)
    printed = rig.receipt_sim.receipts[-1].decode("gb18030", errors="replace")
    assert "空白卡日结对账单" in printed and "复核人：1002" in printed
    reports = sorted((rig.state_dir / "reports").glob("day-*"))
    assert [p.suffix for p in reports] == [".json", ".png"]


# --------------------------------------------------------------------------- PSAM


def test_psam_page_registers_the_card_in_the_slot_and_retires_it(staff_ui) -> None:
    h, rig = staff_ui
    sign_in(h)
    page = open_page(h, "staff_psam")
    assert not page.registered and page.slot_terminal == "440100000107"
    press(h, "register")
    h.wait_for(lambda: page.registered and not page.busy)
    assert page.terminal_number == "440100000107" and page.slot_state_key == "staffpage.psam.slot_matches"
    rig.psam_registry.record_use("V-1", "personalize")
    press(h, "refresh")
    h.wait_for(lambda: page.uses == 1)
    press(h, "retire")
    assert page.stage == "retire"
    press(h, "reason:damaged")
    h.wait_for(lambda: not page.registered and not page.busy)
    assert "损坏" in message(h) and "1001" in message(h)
    record = rig.psam_registry.all()[0]
    destruction = rig.psam_registry.destruction(record.psam_id)
    assert (destruction.why, destruction.who) == ("损坏", "1001")


# --------------------------------------------------------------------------- how the pages look


def _window_box(w: Any) -> tuple[float, float, float, float]:
    x, y = w.to_window(w.x, w.y)
    return (x, y, x + w.width, y + w.height)


def _shown(w: Any, screen: Any) -> bool:
    """Drawn and touchable: not disabled, no transparent ancestor, and inside the
    visible part of any ScrollView it sits in (the rest is scrolled away, not overlapping)."""
    from kivy.uix.scrollview import ScrollView

    if w.disabled or w.opacity == 0 or w.width <= 0 or w.height <= 0:
        return False
    box = _window_box(w)
    node = w.parent
    while node is not None and node is not screen:
        if node.opacity == 0:  # a collapsed (zero-height) parent does not clip: still drawn
            return False
        if isinstance(node, ScrollView):
            view = _window_box(node)
            if box[0] < view[0] - 1 or box[1] < view[1] - 1 or box[2] > view[2] + 1 or box[3] > view[3] + 1:
                return False
        node = node.parent
    return True


def _problems(h) -> list[str]:  # type: ignore[no-untyped-def]
    """Visible buttons outside the window or overlapping each other; labels whose text is taller
    or wider than their box (clipped or spilling onto a neighbour)."""
    from kivy.core.window import Window
    from kivy.uix.label import Label

    from screens.widgets import KButton

    found = []
    boxes = []
    for w in h.screen.walk():
        if isinstance(w, KButton) and _shown(w, h.screen):
            box = _window_box(w)
            if box[0] < -1 or box[1] < -1 or box[2] > Window.width + 1 or box[3] > Window.height + 1:
                found.append(f"button {w.choice!r} outside the window {box}")
            boxes.append((w.choice, box))
    for i, (a, ra) in enumerate(boxes):
        for b, rb in boxes[i + 1 :]:
            if ra[0] < rb[2] - 1 and rb[0] < ra[2] - 1 and ra[1] < rb[3] - 1 and rb[1] < ra[3] - 1:
                found.append(f"buttons {a!r} and {b!r} overlap")
    topbar = next(w for w in h.screen.walk() if type(w).__name__ == "TopBar")
    in_topbar = {id(w) for w in topbar.walk()}
    top = _window_box(topbar)[1]
    for w in h.screen.walk():
        if isinstance(w, Label) and w.text and _shown(w, h.screen):
            if w.texture_size[1] > w.height + 2 or (w.text_size[0] and w.texture_size[0] > w.width + 2):
                found.append(f"label {w.text[:30]!r} clipped: texture {w.texture_size} in {w.size}")
            if id(w) not in in_topbar and _window_box(w)[3] > top + 1:
                found.append(f"label {w.text[:30]!r} runs under the top bar")
    return found


def test_every_staff_page_in_chinese_english_and_elder_mode(staff_ui) -> None:
    h, rig = staff_ui
    rig.ledger.register_cards(card_range("A00000001", "A00000012"), operator="1001")
    rig.card_sim.load_hopper(card_range("A00000001", "A00000012"))
    rig.spoil([RejectReason.PERSONALIZATION_FAILED, RejectReason.NOT_TAKEN, RejectReason.MISPRINT])
    rig.card_sim.ribbon_remaining = 15
    sign_in(h)
    out = SHOTS / "pages"
    out.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    for lang, elder in (("zh_CN", False), ("en", False), ("zh_CN", True), ("en", True)):
        h.ui.switch_language(lang)
        h.ui.toggle_elder(elder)
        for name in STAFF_PAGES:
            page = open_page(h, name)
            for label in _stages_for_pictures(h, name, page):
                h.wait_for(lambda page=page: not page.busy)
                h.pump(0.4)
                problems += [f"{name}/{label} {lang} elder={elder}: {p}" for p in _problems(h)]
                # Drawn into an offscreen buffer of the panel's size (the test window's own
                # buffer keeps the size it was created with).
                path = out / f"{name}-{label}-{lang}-{'elder' if elder else 'normal'}.png"
                h.ui.root.export_to_png(str(path))
                assert path.stat().st_size > 10_000
    h.ui.toggle_elder(False)
    h.ui.switch_language("zh_CN")
    assert problems == [], "\n".join(problems)


def _stages_for_pictures(h, name: str, page: Any) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """Walks each page through its stages, yielding a label where a picture is taken. The kiosk
    state carries over from language to language (restocks, counts, discrepancies pile up)."""
    if name == "staff_restock":
        yield "first"
        first = page.ids.keypad.value or "00000013"
        keypad(h, first)
        keypad(h, f"{int(first) + 9:08d}")
        yield "confirm"
        press(h, "confirm")
        h.wait_for(lambda: page.stage == "done")
        yield "done"
    elif name == "staff_reconcile":
        yield "period"
        press(h, "period:shift")
        keypad(h, "8")  # always short: a discrepancy for the pictures
        yield "bin"
        keypad(h, "3")
        h.wait_for(lambda: page.stage == "result")
        yield "result"
        press(h, "close")
        keypad(h, "1002")
        yield "reviewer"
        keypad(h, PASSWORDS["1002"])
        h.wait_for(lambda: page.stage in ("closed", "result"))
        yield "closed"
    elif name == "staff_discrepancies":
        h.wait_for(lambda: not page.busy)
        yield "list"
        if page.ids.rows.children:
            press(h, page.ids.rows.children[-1].button_choice)
            yield "auth"
            keypad(h, "2001")
            keypad(h, PASSWORDS["2001"])
            h.wait_for(lambda: page.stage in ("note", "resolve"))
            yield page.stage
    elif name == "staff_psam":
        yield "view"
        if not page.registered:
            press(h, "register")
            h.wait_for(lambda: page.registered)
            yield "registered"
        press(h, "retire")
        yield "retire"
    elif name == "staff_reject_bin":
        yield "view"
        if page.card_count:
            press(h, "confirm")
            h.wait_for(lambda: page.emptied)
            yield "emptied"
    elif name in ("staff_ribbon", "staff_paper"):
        yield "view"
        press(h, "confirm")
        h.wait_for(lambda: page.done)
        yield "done"
    else:
        yield "view"
