"""The citizen prompt screens (docs/screens.md, "Citizen screens"): each is presented with a Prompt
the way a flow asks, pressed with synthetic touches through the window (as the scripted citizen of
``kiosk demo --headless`` presses), and checked in both languages, in elder mode and at the two
panel sizes for clipped or overlapping text."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kiosk.prompts import CANCEL, TIMEOUT, Answer, Prompt
from screens.theme import THEME

pytestmark = pytest.mark.ui

# Business texts come from the flows' catalogs; these stand-ins make the screens look real.
SAMPLES: dict[str, dict[str, str]] = {
    "zh_CN": {
        "sample.first_issue": "首次申领社保卡",
        "sample.place_detail": "身份证放在下方读卡区，听到“嘀”的一声后再拿开",
        "sample.confirm_title": "核对个人信息",
        "sample.confirm_intro": "请核对社保卡管理系统登记的信息，无误请点“确认无误”",
        "sample.name": "姓名",
        "sample.id_number": "公民身份号码",
        "sample.phone": "联系电话",
        "sample.address": "通讯地址",
        "sample.insured_at": "参保地",
        "sample.employer": "工作单位",
        "sample.confirm_note": "如信息有误，请到柜台更正后再办理，本机不能修改登记信息",
        "sample.ok": "确认无误",
        "sample.wrong": "信息有误，去柜台更正",
        "sample.photo_title": "制卡照片",
        "sample.photo_intro": "请确认制卡照片，满意请点“使用这张照片”，否则点“重拍”",
        "sample.accept": "使用这张照片",
        "sample.retake": "重拍",
        "sample.bank_title": "选择开户银行",
        "sample.bank_intro": "请选择社保卡金融账户的开户银行",
        "sample.icbc": "中国工商银行",
        "sample.ccb": "中国建设银行",
        "sample.boc": "中国银行",
        "sample.abc": "中国农业银行",
        "sample.bocom": "交通银行",
        "sample.psbc": "中国邮政储蓄银行",
        "sample.same_branch": "本网点可当场开户，次日即可使用",
        "sample.consent_title": "授权与告知",
        "sample.consent_intro": "请阅读以下事项，勾选同意后继续办理",
        "sample.privacy": "我已阅读并同意《个人信息处理告知书》",
        "sample.privacy_detail": "您的身份信息和照片仅用于办理社保卡，按规定保存",
        "sample.face": "同意使用人脸识别核验本人身份",
        "sample.sms": "接收制卡进度短信通知",
        "sample.bank_news": "接收合作银行的产品信息",
        "sample.fee": "工本费：{yuan} 元",
        "sample.use_counter": "不使用人脸识别，去柜台办理",
        "sample.phone_title": "联系电话",
        "sample.phone_prompt": "请输入本人手机号码，用于接收制卡进度通知",
        "sample.phone_error": "手机号码应为以1开头的11位数字，请检查后重新输入",
        "sample.take_title": "取卡",
        "sample.take_card": "请取走您的社保卡",
        "sample.take_receipt": "请取走业务凭条，妥善保管",
        "sample.take_id": "请取回您的身份证",
    },
    "en": {
        "sample.first_issue": "First social security card",
        "sample.place_detail": "Lay the ID card on the reader below and lift it after the beep",
        "sample.confirm_title": "Check your details",
        "sample.confirm_intro": "Please check the details held by the card-management system and press \"Details are correct\"",
        "sample.name": "Name",
        "sample.id_number": "Citizen ID number",
        "sample.phone": "Phone",
        "sample.address": "Postal address",
        "sample.insured_at": "Insured at",
        "sample.employer": "Employer",
        "sample.confirm_note": "If anything is wrong, have it corrected at the counter first: this kiosk cannot change your registered details",
        "sample.ok": "Details are correct",
        "sample.wrong": "Something is wrong: go to the counter",
        "sample.photo_title": "Card photo",
        "sample.photo_intro": "Check the photo for your card: press \"Use this photo\" or \"Retake\"",
        "sample.accept": "Use this photo",
        "sample.retake": "Retake",
        "sample.bank_title": "Choose a bank",
        "sample.bank_intro": "Choose the bank that opens the card's financial account",
        "sample.icbc": "Industrial and Commercial Bank of China",
        "sample.ccb": "China Construction Bank",
        "sample.boc": "Bank of China",
        "sample.abc": "Agricultural Bank of China",
        "sample.bocom": "Bank of Communications",
        "sample.psbc": "Postal Savings Bank of China",
        "sample.same_branch": "Account opened here today, usable tomorrow",
        "sample.consent_title": "Consents",
        "sample.consent_intro": "Please read the following and tick what you agree to",
        "sample.privacy": "I have read and accept the notice on the processing of my personal information",
        "sample.privacy_detail": "Your identity data and photo are used only for your card and kept as the rules require",
        "sample.face": "I agree to verify my identity by face recognition",
        "sample.sms": "Send me text messages about my card",
        "sample.bank_news": "Send me offers from partner banks",
        "sample.fee": "Card fee: {yuan} yuan",
        "sample.use_counter": "No face recognition: I will go to the counter",
        "sample.phone_title": "Phone number",
        "sample.phone_prompt": "Enter your mobile number to receive news about your card",
        "sample.phone_error": "A mobile number has 11 digits and starts with 1. Please check it",
        "sample.take_title": "Take your card",
        "sample.take_card": "Please take your social security card",
        "sample.take_receipt": "Please take your receipt and keep it safe",
        "sample.take_id": "Please take back your ID card",
    },
}


@pytest.fixture
def ui(make_ui) -> Iterator[Any]:
    """The app at the reference 1280×1024 panel, with the sample business texts."""
    from kivy.core.window import Window

    size = tuple(Window.size)
    h = make_ui()
    translator = h.core.translator
    real_text = translator.text

    def text(key: str, language: str | None = None, **values: object) -> str:
        sample = SAMPLES.get(language or translator.language, {}).get(key)
        if sample is None:
            return real_text(key, language, **values)
        return sample.format(**values) if values else sample

    translator.text = text  # type: ignore[method-assign]
    Window.size = (1280, 1024)
    h.pump(0.3)
    yield h
    Window.size = size


def show(h: Any, prompt: Prompt, *, answering: bool = True) -> list[Answer]:
    """Presents ``prompt`` as the UI prompter does; returns the list the answers go to."""
    answers: list[Answer] = []
    # Outside a visit the app's idle timeout would go home during long tests.
    h.ui.touched()
    h.ui.present(prompt, answers.append if answering else None)
    manager = h.ui.manager
    try:
        h.wait_for(lambda: manager.current == prompt.screen and not manager.transition.is_active)
    except AssertionError as late:
        raise AssertionError(f"{prompt.screen} not shown: current={manager.current} transition={manager.transition.is_active}") from late
    h.pump(0.15)
    return answers


def press(h: Any, choice: str, timeout: float = 3.0) -> Any:
    """Finds the shown, enabled widget answering ``choice`` on the current screen and touches it
    through the window (retrying while a transition or layout is pending)."""
    from screens.touch import press as touch_press

    found: list[Any] = []
    h.wait_for(lambda: bool(found.append(touch_press(h.ui, choice)) or found[-1]), timeout=timeout)
    h.pump(0.3)  # a ScrollView hands a short tap to its content after a short delay
    return found[-1]


def texts(widget: Any) -> list[str]:
    return [w.text for w in widget.walk() if isinstance(getattr(w, "text", None), str) and w.text and w.opacity > 0]


def joined(widget: Any) -> str:
    return "\n".join(texts(widget))


def chinese_left(widget: Any) -> list[str]:
    """Texts with Chinese characters, except the language button ("中文") and data values."""
    data_values = {"张*明", "北京市东城区景山前街***号院**号楼*单元***室", "北京市东城区", "北京市***********有限公司"}
    return [
        t for t in texts(widget)
        if t != "中文" and t not in data_values and any("\u4e00" <= ch <= "\u9fff" for ch in t)
    ]


def id_card_prompt(**data: Any) -> Prompt:
    base = {"title_key": "sample.first_issue", "instruction_key": "idreader.place_card", "detail_key": "sample.place_detail"}
    return Prompt("id_card", {**base, **data}, choices=(), timeout_s=60)


def confirm_prompt(photo: bytes | None = None) -> Prompt:
    rows = [
        ("sample.name", "张*明"),
        ("sample.id_number", "110101********0048"),
        ("sample.phone", "138****8000"),
        ("sample.address", "北京市东城区景山前街***号院**号楼*单元***室"),
        ("sample.insured_at", "北京市东城区"),
        ("sample.employer", "北京市***********有限公司"),
    ]
    data: dict[str, Any] = {
        "title_key": "sample.confirm_title", "intro_key": "sample.confirm_intro", "rows": rows,
        "note_key": "sample.confirm_note", "choice_keys": {"ok": "sample.ok", "wrong": "sample.wrong"},
        "secondary": ["wrong"],
    }
    if photo is not None:
        data["photo_jpeg"] = photo
    return Prompt("confirm", data, choices=("ok", "wrong"), timeout_s=60)


def photo_prompt(photo: bytes) -> Prompt:
    """The card photo alone, to accept or retake (as the card-photo step asks)."""
    return Prompt(
        "confirm",
        {"title_key": "sample.photo_title", "intro_key": "sample.photo_intro", "rows": [], "photo_jpeg": photo,
         "choice_keys": {"accept": "sample.accept", "retake": "sample.retake"}, "secondary": ["retake"]},
        choices=("accept", "retake"), timeout_s=60,
    )


BANKS = [
    ("icbc", "sample.icbc", "sample.same_branch"),
    ("ccb", "sample.ccb", ""),
    ("boc", "sample.boc", ""),
    ("abc", "sample.abc", ""),
    ("bocom", "sample.bocom", ""),
    ("psbc", "sample.psbc", "sample.same_branch"),
]


def choose_prompt(timeout_s: float = 60) -> Prompt:
    return Prompt(
        "choose", {"title_key": "sample.bank_title", "intro_key": "sample.bank_intro", "options": BANKS},
        choices=tuple(b[0] for b in BANKS), timeout_s=timeout_s,
    )


def consent_prompt() -> Prompt:
    items = [
        {"key": "privacy", "text_key": "sample.privacy", "required": True, "detail_key": "sample.privacy_detail"},
        {"key": "face", "text_key": "sample.face", "required": True, "detail_key": ""},
        {"key": "sms", "text_key": "sample.sms", "required": False, "detail_key": ""},
        {"key": "bank_news", "text_key": "sample.bank_news", "required": False, "detail_key": ""},
    ]
    return Prompt(
        "consent",
        {
            "title_key": "sample.consent_title", "intro_key": "sample.consent_intro", "items": items,
            "fee_key": "sample.fee", "values": {"yuan": "0.00"}, "alternatives": {"use_counter": "sample.use_counter"},
        },
        choices=("agree", "use_counter"), timeout_s=60,
    )


def keypad_prompt(initial: str = "") -> Prompt:
    return Prompt(
        "keypad_entry",
        {
            "title_key": "sample.phone_title", "prompt_key": "sample.phone_prompt", "length": 11,
            "pattern": r"^1[3-9]\d{9}$", "error_key": "sample.phone_error", "initial": initial,
        },
        choices=("ok",), timeout_s=60,
    )


def take_prompt(slot: str = "card", body_key: str = "sample.take_card") -> Prompt:
    return Prompt("take_item", {"title_key": "sample.take_title", "body_key": body_key, "slot": slot, "seconds": 30})


@pytest.fixture
def photo(faces_dir: Path) -> bytes:
    return (faces_dir / "obama.jpg").read_bytes()


# -- layout checks ------------------------------------------------------------------------------


def layout_problems(screen: Any) -> list[str]:
    """Text that does not fit its label, widgets outside the window (outside ScrollViews),
    overlapping siblings in a box, and answering widgets smaller than the touch minimum."""
    from kivy.core.window import Window
    from kivy.uix.boxlayout import BoxLayout
    from kivy.uix.label import Label
    from kivy.uix.scrollview import ScrollView

    problems: list[str] = []
    width, height = Window.size

    def name(w: Any) -> str:
        return f"{type(w).__name__}({getattr(w, 'text', '')[:30]!r})"

    def visit(w: Any, scrolled: bool, in_topbar: bool) -> None:
        if w.opacity == 0 or w.width <= 0 or w.height <= 0:
            return
        x0, y0 = w.to_window(w.x, w.y)
        x1, y1 = w.to_window(w.right, w.top)
        if not scrolled and (x0 < -1 or y0 < -1 or x1 > width + 1 or y1 > height + 1):
            problems.append(f"{name(w)} outside the window: {(x0, y0, x1, y1)}")
        if isinstance(w, Label) and w.text and not w.shorten:
            tw, th = w.texture_size
            if th > w.height + 2 or tw > w.width + 2:
                problems.append(f"{name(w)} clipped: text {tw:.0f}×{th:.0f} in {w.width:.0f}×{w.height:.0f}")
        if getattr(w, "choice", "") and not in_topbar and min(w.width, w.height) < THEME.touch_min - 0.5:
            problems.append(f"{name(w)} touch target {w.width:.0f}×{w.height:.0f}")
        if isinstance(w, BoxLayout):
            shown = [c for c in w.children if c.opacity > 0 and c.width > 0 and c.height > 0]
            for i, a in enumerate(shown):
                for b in shown[i + 1 :]:
                    dx = min(a.right, b.right) - max(a.x, b.x)
                    dy = min(a.top, b.top) - max(a.y, b.y)
                    if dx > 1 and dy > 1:
                        problems.append(f"{name(a)} overlaps {name(b)}")
        for child in w.children:
            visit(child, scrolled or isinstance(w, ScrollView), in_topbar or type(w).__name__ == "TopBar")

    visit(screen, False, False)
    return problems


# -- id_card --------------------------------------------------------------------------------------


def test_id_card_shows_the_instruction_the_error_in_red_and_cancel_answers_cancel(ui) -> None:
    answers = show(ui, id_card_prompt(error_key="idreader.card_expired"))
    screen = ui.screen
    text = joined(screen)
    assert "请将身份证放在阅读器感应区上" in text and "听到“嘀”的一声后再拿开" in text
    assert screen.ids.error.text == "！ 您的身份证已过有效期，请先换领身份证"
    assert screen.ids.error.color == list(THEME.rgba("danger"))
    assert screen.ids.countdown.running
    press(ui, CANCEL)
    assert answers == [Answer(CANCEL)]
    assert ui.ui.touches >= 1, "the synthetic touch goes through the window like a finger"


def test_id_card_without_error_hides_the_error_and_the_card_moves(ui) -> None:
    show(ui, id_card_prompt())
    screen = ui.screen
    assert screen.ids.error.text == "" and screen.ids.error.height == 0
    # Sampled until four positions are seen: on a loaded runner the software renderer may draw only
    # a few frames a second, so a fixed 1.2 s window saw just three.
    seen: set[float] = set()

    def moved() -> bool:
        seen.add(round(screen.ids.drawing.offset, 2))
        return len(seen) > 3

    try:
        ui.wait_for(moved, timeout=15)
    except AssertionError:
        pytest.fail(f"the card drawing is not animated: offsets seen {sorted(seen)}")


def test_id_card_countdown_running_out_answers_timeout(ui) -> None:
    answers = show(ui, Prompt("id_card", {"title_key": "sample.first_issue"}, timeout_s=0.5))
    ui.wait_for(lambda: answers == [Answer(TIMEOUT)], timeout=4)


# -- confirm --------------------------------------------------------------------------------------


def test_confirm_shows_rows_photo_and_note_and_answers_the_first_choice(ui, photo) -> None:
    answers = show(ui, confirm_prompt(photo))
    screen = ui.screen
    text = joined(screen)
    for needle in ("核对个人信息", "公民身份号码", "110101********0048", "北京市东城区景山前街", "本机不能修改登记信息", "照片"):
        assert needle in text
    assert screen.has_photo and screen.ids.photo.texture is not None
    assert screen.ids.photo.width >= 250 and screen.ids.photo.height >= 250, "the photo is shown at a readable size"
    from screens.touch import find_choice

    ok, wrong = find_choice(screen, "ok"), find_choice(screen, "wrong")
    assert (ok.kind, ok.text, wrong.kind, wrong.text) == ("primary", "确认无误", "secondary", "信息有误，去柜台更正")
    press(ui, "ok")
    assert answers == [Answer("ok")]
    press(ui, "wrong")  # a second press on an answered prompt is ignored
    assert answers == [Answer("ok")]


def test_confirm_without_photo_gives_the_rows_the_width_and_answers_the_secondary_choice(ui) -> None:
    answers = show(ui, confirm_prompt())
    screen = ui.screen
    assert not screen.has_photo and screen.ids.photo_box.width == 0
    assert screen.ids.rows.width > 1100
    press(ui, "wrong")
    assert answers == [Answer("wrong")]


def test_confirm_with_the_photo_alone_shows_it_large_and_centred_for_acceptance(ui, photo) -> None:
    show(ui, confirm_prompt(photo))  # the same screen with rows just before
    answers = show(ui, photo_prompt(photo))
    screen = ui.screen
    ui.pump(0.2)
    assert screen.has_photo and not screen.has_rows
    image = screen.ids.photo
    shown_h = image.norm_image_size[1]
    assert shown_h >= 400, "the card photo to accept fills the free height"
    assert screen.ids.rows.width == 0
    assert abs(image.to_window(*image.center)[0] - screen.center_x) < 30, "the photo is centred"
    scroll = screen.ids.body_scroll
    assert image.to_window(image.x, image.y)[1] >= scroll.to_window(scroll.x, scroll.y)[1] - 1, "no scrolling needed"
    press(ui, "retake")
    assert answers == [Answer("retake")]


def test_confirm_with_an_unreadable_photo_shows_the_rows_without_it(ui) -> None:
    answers = show(ui, confirm_prompt(b"not a jpeg"))
    assert not ui.screen.has_photo and ui.screen.ids.photo_box.width == 0
    press(ui, "ok")
    assert answers == [Answer("ok")]


# -- choose ---------------------------------------------------------------------------------------


def test_choose_offers_one_big_button_per_option_none_preselected(ui) -> None:
    answers = show(ui, choose_prompt())
    screen = ui.screen
    cards = screen.cards()
    assert [c.choice for c in cards] == [b[0] for b in BANKS]
    assert all(c.state == "normal" for c in cards)
    assert "本网点可当场开户，次日即可使用" in joined(screen)
    assert all(c.height >= THEME.touch_min for c in cards)
    press(ui, "boc")
    assert answers == [Answer("boc")]


def test_choose_with_an_odd_number_of_options_keeps_the_last_one_as_wide(ui) -> None:
    five = Prompt("choose", {"title_key": "sample.bank_title", "intro_key": "sample.bank_intro", "options": BANKS[:5]},
                  choices=tuple(b[0] for b in BANKS[:5]), timeout_s=60)
    answers = show(ui, five)
    cards = ui.screen.cards()
    assert len(cards) == 5 and ui.screen.columns == 2
    ui.pump(0.2)
    assert abs(cards[-1].width - cards[0].width) < 1
    press(ui, "bocom")
    assert answers == [Answer("bocom")]


def test_choose_scrolls_to_an_option_below_the_fold_in_elder_mode(ui) -> None:
    ui.ui.toggle_elder(True)
    answers = show(ui, choose_prompt())
    ui.pump(0.3)
    screen = ui.screen
    last = screen.cards()[-1]
    scroll = screen.ids.options_scroll
    assert screen.ids.options.height > scroll.height, "six options in elder mode need scrolling"
    assert last.to_window(*last.center)[1] < scroll.to_window(scroll.x, scroll.y)[1], "the last option starts hidden"
    press(ui, "psbc")
    assert answers == [Answer("psbc")]


def test_choose_countdown_running_out_answers_timeout(ui) -> None:
    answers = show(ui, choose_prompt(timeout_s=0.5))
    ui.wait_for(lambda: answers == [Answer(TIMEOUT)], timeout=4)


# -- consent --------------------------------------------------------------------------------------


def test_consent_starts_unchecked_and_agree_waits_for_every_required_item(ui) -> None:
    from screens.touch import find_choice, touch

    answers = show(ui, consent_prompt())
    screen = ui.screen
    items = {w.key: w for w in screen.ids.item_list.children}
    assert not any(w.checked for w in items.values()), "nothing optional (or required) is pre-selected"
    assert "工本费：0.00 元" in joined(screen) and "请勾选全部“必选”项后，点击“同意并继续”" in joined(screen)
    assert joined(screen).count("未勾选") == 4 and joined(screen).count("必选") >= 2
    agree = screen._agree
    assert agree.disabled and find_choice(screen, "agree") is None
    touch(agree)  # a finger on the disabled button
    ui.pump(0.3)
    assert answers == []
    press(ui, "option:privacy")
    assert items["privacy"].checked and agree.disabled
    press(ui, "option:sms")  # optional: ticked then unticked again
    press(ui, "option:sms")
    assert not items["sms"].checked
    press(ui, "option:face")
    assert not agree.disabled
    assert "✓ 已勾选" in joined(items["face"]) and "未勾选" in joined(items["bank_news"])
    press(ui, "agree")
    assert answers == [Answer("agree", {"checked": ["privacy", "face"]})]
    assert not items["sms"].checked and not items["bank_news"].checked


def test_consent_unticking_a_required_item_disables_agree_and_the_alternative_answers(ui) -> None:
    answers = show(ui, consent_prompt())
    screen = ui.screen
    for key in ("privacy", "face", "bank_news"):
        press(ui, f"option:{key}")
    assert not screen._agree.disabled
    press(ui, "option:face")
    assert screen._agree.disabled
    press(ui, "use_counter")
    assert answers == [Answer("use_counter")]


def test_consent_presented_again_starts_unchecked(ui) -> None:
    show(ui, consent_prompt())
    press(ui, "option:privacy")
    show(ui, Prompt("message", {"body_key": "home.choose"}, choices=("ok",), timeout_s=30))
    show(ui, consent_prompt())
    assert not any(w.checked for w in ui.screen.ids.item_list.children)


# -- keypad_entry ---------------------------------------------------------------------------------


def type_digits(h: Any, digits: str) -> None:
    for digit in digits:
        press(h, f"key:{digit}")


def test_keypad_entry_refuses_a_bad_number_and_sends_a_good_one(ui) -> None:
    answers = show(ui, keypad_prompt())
    screen = ui.screen
    assert "请在数字键盘上输入11位数字，输完按“确认”" in joined(screen)
    type_digits(ui, "12345678901")
    assert screen.ids.keypad.value == "12345678901"
    press(ui, "key:enter")
    assert answers == []
    assert screen.ids.error.text == "！ 手机号码应为以1开头的11位数字，请检查后重新输入"
    press(ui, "key:clear")
    assert screen.ids.error.text == "", "the error goes once the citizen corrects"
    type_digits(ui, "1380013800")
    press(ui, "key:enter")  # ten digits: too short
    assert answers == [] and screen.ids.error.text
    type_digits(ui, "09")  # the keypad stops at eleven digits
    assert screen.ids.keypad.value == "13800138000"
    assert "已输入 11/11 位" in joined(screen)
    press(ui, "key:enter")
    assert answers == [Answer("ok", {"value": "13800138000"})]


def test_keypad_entry_starts_from_the_initial_value(ui) -> None:
    answers = show(ui, keypad_prompt(initial="13912345678"))
    assert ui.screen.ids.keypad.value == "13912345678"
    press(ui, "key:back")
    press(ui, "key:7")
    press(ui, "key:enter")
    assert answers == [Answer("ok", {"value": "13912345677"})]


# -- take_item ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("slot", "body_key", "text"), [
    ("card", "sample.take_card", "请取走您的社保卡"),
    ("receipt", "sample.take_receipt", "请取走业务凭条，妥善保管"),
    ("id_card", "sample.take_id", "请取回您的身份证"),
])
def test_take_item_is_display_only_with_its_drawing_and_countdown(ui, slot, body_key, text) -> None:
    from screens.touch import find_choice

    show(ui, take_prompt(slot, body_key), answering=False)
    screen = ui.screen
    assert screen.ids.body.text == text
    assert screen.ids.drawing.slot == slot
    countdown = screen.ids.countdown
    assert countdown.running and 25 < countdown.remaining <= 30
    assert find_choice(screen, CANCEL) is None, "nothing to cancel on a display-only screen"
    ui.pump(1.2)
    before = countdown.remaining
    from screens.touch import touch

    touch(screen.ids.body)
    ui.pump(0.1)
    assert countdown.remaining <= before, "a touch does not restart the device's time"
    seen = set()
    for _ in range(10):
        ui.pump(0.1)
        seen.add(round(screen.ids.drawing.offset, 2))
    assert len(seen) > 3, "the arrow moves"


# -- languages, elder mode, panel sizes ---------------------------------------------------------


def test_language_switch_refills_and_keeps_what_the_citizen_ticked(ui) -> None:
    show(ui, consent_prompt())
    screen = ui.screen
    press(ui, "option:face")

    def without_countdown() -> list[str]:
        return [t for t in texts(screen) if t != screen.ids.countdown.children[-1].text]

    zh = without_countdown()
    press(ui, "ui:language")
    ui.pump(0.2)
    en = joined(screen)
    assert "I agree to verify my identity by face recognition" in en and "Agree and continue" in en
    assert "✓ Ticked" in en and "Required" in en and 'Tick every "Required" item' in en
    assert chinese_left(screen) == [], "no Chinese left on the English screen"
    assert {w.key for w in screen.ids.item_list.children if w.checked} == {"face"}
    ui.ui.switch_language("zh_CN")
    ui.pump(0.2)
    assert without_countdown() == zh


@pytest.mark.parametrize("screen_name", ["id_card", "confirm", "choose", "consent", "keypad_entry", "take_item"])
def test_language_switch_refills_every_citizen_screen(ui, photo, screen_name) -> None:
    prompts = all_prompts(photo)
    show(ui, prompts[screen_name], answering=screen_name != "take_item")
    ui.ui.switch_language("en")
    ui.pump(0.2)
    assert chinese_left(ui.screen) == []


def test_elder_mode_enlarges_the_type_of_every_citizen_screen(ui, photo) -> None:
    from kivy.uix.label import Label

    for name, prompt in all_prompts(photo).items():
        ui.ui.toggle_elder(False)
        show(ui, prompt, answering=name != "take_item")
        labels = [w for w in ui.screen.walk() if isinstance(w, Label) and w.text]
        before = {id(w): w.font_size for w in labels}
        ui.ui.toggle_elder(True)
        ui.pump(0.2)
        assert all(w.font_size > before[id(w)] for w in labels), name
        body = [w for w in labels if w.font_size >= THEME.body * ui.ui.font_scale - 0.5]
        assert body, name
    ui.ui.toggle_elder(False)


def all_prompts(photo: bytes) -> dict[str, Prompt]:
    return {
        "id_card": id_card_prompt(error_key="idreader.read_failed"),
        "confirm": confirm_prompt(photo),
        "confirm_photo_only": photo_prompt(photo),
        "choose": choose_prompt(),
        "consent": consent_prompt(),
        "keypad_entry": keypad_prompt(initial="1380013"),
        "take_item": take_prompt(),
    }


@pytest.mark.parametrize("size", [(1280, 1024), (1920, 1080)])
def test_no_clipped_or_overlapping_text_in_both_languages_and_elder_mode(ui, photo, size, tmp_path) -> None:
    """Lays out every citizen screen in zh, en and elder mode and checks it. With
    KIOSK_SCREENSHOT_DIR set, every one is also saved as a PNG there (to look at); otherwise only
    the first, as a check that the screens really draw (PNG encoding is the slow part)."""
    from kivy.core.window import Window

    Window.size = size
    ui.pump(0.3)
    wanted = os.environ.get("KIOSK_SCREENSHOT_DIR")
    out = Path(wanted or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    modes: list[tuple[str, bool]] = [("zh_CN", False), ("en", False), ("zh_CN", True), ("en", True)]
    shots = 0
    for name, prompt in all_prompts(photo).items():
        for lang, elder in modes:
            ui.ui.switch_language(lang)
            ui.ui.toggle_elder(elder)
            show(ui, prompt, answering=name != "take_item")
            ui.pump(0.25)
            mode = "elder" if elder else "normal"
            problems += [f"{name} {lang} {mode} {size}: {p}" for p in layout_problems(ui.screen)]
            if wanted or not shots:
                shot = save_screenshot(ui, out / f"{name}-{lang}-{mode}-{size[0]}x{size[1]}.png")
                assert shot.stat().st_size > 10_000
                shots += 1
    ui.ui.toggle_elder(False)
    ui.ui.switch_language("zh_CN")
    assert problems == []


def save_screenshot(ui: Any, path: Path) -> Path:
    """The whole UI drawn into an offscreen buffer of the window's size (an offscreen SDL window
    keeps its first framebuffer size, so Window.screenshot would not show a resized window)."""
    ui.ui.root.export_to_png(str(path))
    return path


def test_find_choice_skips_hidden_and_disabled_widgets_and_other_screens(ui) -> None:
    from screens.touch import find_choice

    show(ui, consent_prompt())
    assert find_choice(ui.ui, "option:privacy") is not None
    assert find_choice(ui.ui, "agree") is None  # disabled
    assert find_choice(ui.ui, "business:first_issue") is None  # the home screen is not shown
    show(ui, take_prompt(), answering=False)
    assert find_choice(ui.ui, CANCEL) is None  # hidden in the top bar (opacity 0, width 0)
    assert find_choice(ui.ui, "ui:language") is not None

