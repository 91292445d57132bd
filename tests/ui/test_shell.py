"""The Kivy shell: fonts, languages, elder mode, prompts asked from a worker thread, the visible
countdown, the idle timeout, and the hidden staff entry."""

from __future__ import annotations

import threading

import pytest

from kiosk.prompts import Prompt
from kiosk.runtime import Services
from kiosk.staff import Role
from kiosk.visit import Flow, Step

pytestmark = pytest.mark.ui


def test_default_font_draws_chinese_glyphs_not_boxes(make_ui) -> None:
    make_ui()
    from kivy.core.text import Label as CoreLabel

    def pixels(text: str) -> bytes:
        label = CoreLabel(text=text, font_size=48)
        label.refresh()
        return bytes(label.texture.pixels)

    # With a font lacking CJK glyphs, every character is the same 'missing glyph' box.
    assert pixels("社") != pixels("保")
    assert pixels("社") != pixels("口")


def test_home_shows_no_business_notice_when_none_is_registered(make_ui) -> None:
    h = make_ui()
    home = h.ui.manager.get_screen("home")
    assert home.businesses == []
    texts = [w.text for w in home.walk() if hasattr(w, "text")]
    assert any("本机暂不能办理业务" in t for t in texts)


def test_language_switch_changes_every_visible_text_and_back(make_ui) -> None:
    h = make_ui()
    home = h.ui.manager.get_screen("home")
    zh = sorted(w.text for w in home.walk() if getattr(w, "text", ""))
    h.ui.switch_language("en")
    h.pump(0.2)
    en = sorted(w.text for w in home.walk() if getattr(w, "text", ""))
    assert any("Place your ID card" in t for t in en)
    assert not any("请将身份证" in t for t in en)
    h.ui.switch_language("zh_CN")
    h.pump(0.2)
    assert sorted(w.text for w in home.walk() if getattr(w, "text", "")) == zh


def test_elder_mode_enlarges_type_and_slows_timeouts(make_ui) -> None:
    h = make_ui()
    home = h.ui.manager.get_screen("home")
    labels = [w for w in home.walk() if type(w).__name__ == "Label" and w.text]
    before = {id(w): w.font_size for w in labels}
    h.ui.toggle_elder(True)
    h.pump(0.2)
    assert all(w.font_size > before[id(w)] for w in labels)
    # The footer (branch, network, clock) grows least; it stays above 18 pt (24 px at 96 dpi).
    assert min(w.font_size for w in labels) >= 24 * 1.15 - 0.01
    assert max(w.font_size for w in labels) >= 40
    assert h.ui.timeout_factor == h.core.config.kiosk.elder_timeout_factor > 1


def business(*steps: Step, key: str = "test_business") -> dict[str, Flow]:
    return {key: Flow(key, "app.title", tuple(steps))}


def test_registered_business_appears_and_runs_off_the_ui_thread(make_ui) -> None:
    threads: list[str] = []

    def ask(ctx):
        threads.append(threading.current_thread().name)
        answer = ctx.ask(Prompt("message", {"title_key": "app.title", "body_key": "home.choose"}, choices=("ok",), timeout_s=30))
        ctx.values["outcome"] = "answered_" + answer.choice

    h = make_ui(flows=business(Step("ask", ask)))
    home = h.ui.manager.get_screen("home")
    assert [b[0] for b in home.businesses] == ["test_business"]
    buttons = [w for w in home.ids.business_grid.children]
    buttons[0].dispatch("on_release")
    h.wait_for(lambda: h.ui.manager.current == "message")
    assert threads and threads[0] != threading.main_thread().name
    choice = [w for w in h.screen.ids.choices.children][0]
    choice.dispatch("on_release")
    h.wait_for(lambda: h.ui.manager.current == "home" and not h.core.visit_running)
    visit = h.core.journal.recent_visits(1)[0]
    assert (visit.state, visit.outcome) == ("ended", "answered_ok")


def test_business_needing_an_unconfigured_service_is_not_shown(make_ui) -> None:
    flows = {"needs": Flow("needs", "app.title", (), requires=("cardprinter",))}
    h = make_ui(flows=flows, services=Services())
    assert h.ui.manager.get_screen("home").businesses == []


def test_visible_countdown_ends_the_visit_when_it_runs_out(make_ui) -> None:
    def ask(ctx):
        ctx.ask(Prompt("message", {"body_key": "home.choose"}, choices=("ok",), timeout_s=0.6))

    h = make_ui(flows=business(Step("ask", ask)))
    h.ui.start_business("test_business")
    h.wait_for(lambda: h.ui.manager.current == "message")
    assert h.screen.ids.countdown.running
    h.wait_for(lambda: not h.core.visit_running, timeout=5)
    visit = h.core.journal.recent_visits(1)[0]
    assert (visit.outcome, visit.reason) == ("cancelled", "citizen_timeout")


def test_cancel_button_on_every_prompt_ends_the_visit(make_ui) -> None:
    def ask(ctx):
        ctx.ask(Prompt("message", {"body_key": "home.choose"}, choices=("ok",), timeout_s=30))

    h = make_ui(flows=business(Step("ask", ask)))
    h.ui.start_business("test_business")
    h.wait_for(lambda: h.ui.manager.current == "message")
    topbar = [w for w in h.screen.walk() if type(w).__name__ == "TopBar"][0]
    assert topbar.show_cancel
    topbar.dispatch("on_cancel")
    h.wait_for(lambda: not h.core.visit_running)
    assert h.core.journal.recent_visits(1)[0].reason == "cancelled_by_citizen"


def test_hidden_corner_opens_the_staff_login_and_marks_out_of_service(make_ui) -> None:
    from types import SimpleNamespace

    h = make_ui()
    corner = h.ui.manager.get_screen("home").ids.corner
    tap = SimpleNamespace(pos=tuple(corner.center))
    elsewhere = SimpleNamespace(pos=(corner.right + 200, corner.y))
    for _ in range(corner.taps - 1):
        assert corner.on_touch_down(tap)
    assert not corner.on_touch_down(elsewhere)
    assert h.ui.manager.current == "home"
    corner.on_touch_down(tap)
    h.pump(0.3)
    assert h.ui.manager.current == "staff_login"
    assert h.ui.manager.get_screen("home").in_service is False


def test_staff_login_through_the_keypad_and_lockout(make_ui) -> None:
    h = make_ui()
    h.staff.add("1001", Role.STAFF, "246810")
    h.ui.open_staff_entry()
    h.pump(0.3)
    login = h.screen
    login.entered("1001")
    login.entered("999999")
    assert login.error_key == "staff.login_failed"
    login.entered("1001")
    login.entered("246810")
    h.pump(0.3)
    assert h.ui.manager.current == "staff_menu"
    h.ui.staff_logout()
    h.pump(0.3)
    for _ in range(3):
        h.ui.open_staff_entry()
        h.screen.entered("1001")
        h.screen.entered("000000")
    assert h.screen.error_key == "staff.locked"
    h.screen.entered("1001")
    h.screen.entered("246810")
    assert h.screen.error_key == "staff.locked", "a locked account must refuse even the right password"


def test_idle_timeout_returns_home_from_the_staff_login(make_ui) -> None:
    h = make_ui(idle_timeout_s=10)
    h.ui.open_staff_entry()
    h.pump(0.2)
    assert h.ui.manager.current == "staff_login"
    h.ui._last_touch -= 11
    h.ui._tick(0)
    h.pump(0.3)
    assert h.ui.manager.current == "home"


def test_screenshot_is_a_real_picture(make_ui) -> None:
    h = make_ui()
    h.pump(0.5)
    path = h.ui.take_screenshot("home")
    assert path is not None and path.stat().st_size > 10_000
    from PIL import Image

    image = Image.open(path).convert("RGB")
    colours = image.getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 50, "a blank or one-colour screenshot"


def test_a_prompt_with_a_voice_key_is_spoken_and_shown(make_ui) -> None:
    from kiosk.voice import build_missing

    def ask(ctx):
        ctx.ask(Prompt("message", {"body_key": "home.insert_id"}, choices=("ok",), timeout_s=30, voice_key="home.insert_id"))

    h = make_ui(flows=business(Step("ask", ask)))
    build_missing(h.core.translator, ("home.insert_id",))
    h.ui.start_business("test_business")
    h.wait_for(lambda: h.ui.manager.current == "message")
    assert h.ui.spoken == ["home.insert_id"]
    texts = [w.text for w in h.screen.walk() if getattr(w, "text", "")]
    assert "请将身份证放在感应区" in texts
    h.screen.cancel()
    h.wait_for(lambda: not h.core.visit_running)


def test_the_card_read_on_home_is_shown_masked_in_the_chosen_language(make_ui) -> None:
    from kiosk.runtime import IdentityShown

    h = make_ui()
    home = h.ui.manager.get_screen("home")
    h.ui._identity_read(IdentityShown("张**", "110101********0048", "valid"))
    h.wait_for(lambda: home.identity_text.startswith("已读取身份证"))
    assert "110101********0048" in home.identity_text
    h.ui.switch_language("en")
    assert home.identity_text.startswith("ID card read")
    h.ui._identity_read(None)
    h.wait_for(lambda: home.identity_text == "")


def test_progress_screen_says_what_happens_and_what_comes_next(make_ui) -> None:
    def produce(ctx):
        ctx.show(Prompt("progress", {
            "title_key": "app.title",
            "stages": [("ui.please_wait", "done"), ("home.insert_id", "now"), ("notice.title", "next")],
            "fraction": 0.4, "eta_s": 75,
        }))
        ctx.ask(Prompt("message", {"body_key": "home.choose"}, choices=("ok",), timeout_s=30))

    h = make_ui(flows=business(Step("produce", produce)))
    h.ui.start_business("test_business")
    h.wait_for(lambda: h.ui.manager.get_screen("progress").ids.panel.fraction == 0.4)
    panel = h.ui.manager.get_screen("progress").ids.panel
    lines = [w.text for w in panel.ids.stage_list.children][::-1]
    assert lines[0].startswith("√ 已完成") and lines[1].startswith("▶ 正在进行") and lines[2].startswith("○ 稍后")
    texts = [w.text for w in panel.walk() if getattr(w, "text", "")]
    assert "已完成 40%，约还需 75 秒" in texts
    h.wait_for(lambda: h.ui.manager.current == "message")
    h.screen.cancel()
    h.wait_for(lambda: not h.core.visit_running)


def test_one_time_notice_screen_shows_reason_missing_todo_and_where(make_ui) -> None:
    def refuse(ctx):
        ctx.ask(Prompt("notice", {
            "reason_key": "notice.reason_unknown", "missing_keys": ["notice.todo_counter"],
            "todo_key": "notice.todo_counter", "where": "示例路 100 号", "printed": True,
        }, choices=("done",), timeout_s=60))

    h = make_ui(flows=business(Step("refuse", refuse)))
    h.ui.start_business("test_business")
    h.wait_for(lambda: h.ui.manager.current == "notice")
    ids = h.screen.ids
    assert ids.reason.text == "业务暂时无法办理"
    assert ids.missing.text == "· 请携带本人身份证到柜台办理"
    assert ids.where.text == "示例路 100 号"
    assert ids.printed.text == "告知单已打印，请取走"
    h.screen.answer("done")
    h.wait_for(lambda: not h.core.visit_running)
