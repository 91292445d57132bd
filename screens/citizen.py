"""Citizen prompt screens (办事群众界面), as docs/screens.md ("Citizen screens") specifies: place the
ID card (放置身份证), review and confirm (信息确认), pick one of several (选择), consents and optional
services (授权同意), digits on an on-screen keypad (手机号码), and take an item from a slot (取卡/取凭条).

The screens show what the flow put in ``prompt.data`` (message keys, already-masked strings) and
send back one answer; they hold no business rule. Every answering widget carries ``choice`` so tests
and the scripted citizen find it (:mod:`screens.touch`). Layouts are in ``kv/citizen.kv``.
"""

from __future__ import annotations

import io
import logging
import re
from typing import Any

from kivy.animation import Animation
from kivy.app import App
from kivy.core.image import Image as CoreImage
from kivy.graphics import Color, Rectangle, RoundedRectangle, Triangle
from kivy.properties import BooleanProperty, NumericProperty, OptionProperty, StringProperty
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout
from kivy.uix.label import Label
from kivy.uix.screenmanager import Screen
from kivy.uix.widget import Widget

from kiosk.prompts import Prompt
from screens.base import PromptScreen, Reply
from screens.theme import THEME
from screens.widgets import KButton

log = logging.getLogger(__name__)


def _t(key: str, **values: object) -> str:
    app = App.get_running_app()
    return app.t(key, app.lang, **values) if app is not None else key


class CitizenScreen(PromptScreen):
    """A prompt screen of the citizen: ``answerable`` is true while a reply is awaited (the top
    bar's cancel is shown then); :meth:`reset` clears what the citizen did on the previous prompt
    (and only there: :meth:`fill` runs again on a language or elder-mode switch)."""

    answerable = BooleanProperty(False)

    def present(self, prompt: Prompt, reply: Reply | None) -> None:
        self.answerable = reply is not None
        self.reset(prompt)
        super().present(prompt, reply)

    def reset(self, prompt: Prompt) -> None:
        """Per-prompt state, before :meth:`fill`."""

    def values(self) -> dict[str, Any]:
        return dict(self.data.get("values") or {})

    def text(self, field: str, default_key: str = "") -> str:
        """The text of the message key in ``data[field]`` (or ``default_key``), with ``values``."""
        key = self.data.get(field) or default_key
        return _t(key, **self.values()) if key else ""


class AnimatedScreen(CitizenScreen):
    """A screen whose drawing moves while it is shown (``anim`` runs from 0 to 1 and back)."""

    anim = NumericProperty(0.0)

    def animation(self) -> Animation:
        animation = Animation(anim=1.0, duration=0.8, t="in_out_sine") + Animation(anim=0.0, duration=0.8, t="in_out_sine")
        animation.repeat = True
        return animation

    def on_enter(self, *args: object) -> None:
        Animation.cancel_all(self, "anim")
        self.anim = 0.0
        self.animation().start(self)

    def on_leave(self, *args: object) -> None:
        super().on_leave(*args)
        Animation.cancel_all(self, "anim")


# -- drawings -------------------------------------------------------------------------------------


class Drawing(Widget):
    """A drawing in design units (``design`` = width, height), scaled to fit and centred; redrawn
    when it moves, resizes or ``offset`` (0..1, the animation phase) changes."""

    offset = NumericProperty(0.0)
    design = (380.0, 300.0)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bind(pos=self._redraw, size=self._redraw, offset=self._redraw)

    @property
    def unit(self) -> float:
        return max(0.0, min(self.width / self.design[0], self.height / self.design[1]))

    def at(self, x: float, y: float) -> tuple[float, float]:
        u = self.unit
        return (self.center_x + (x - self.design[0] / 2) * u, self.center_y + (y - self.design[1] / 2) * u)

    def rect(self, colour: str, x: float, y: float, w: float, h: float, radius: float = 0) -> None:
        u = self.unit
        Color(*THEME.rgba(colour))
        if radius:
            RoundedRectangle(pos=self.at(x, y), size=(w * u, h * u), radius=[radius * u])
        else:
            Rectangle(pos=self.at(x, y), size=(w * u, h * u))

    def arrow(self, colour: str, x: float, tip_y: float, pointing: str, length: float = 90) -> None:
        """An arrow pointing ``down`` or ``up`` with its tip at (x, tip_y)."""
        sign = 1 if pointing == "down" else -1
        head = 42
        Color(*THEME.rgba(colour))
        shaft_bottom = tip_y + sign * head
        shaft_top = tip_y + sign * length
        self.rect(colour, x - 9, min(shaft_bottom, shaft_top), 18, abs(shaft_top - shaft_bottom))
        points = [*self.at(x - 30, shaft_bottom), *self.at(x + 30, shaft_bottom), *self.at(x, tip_y)]
        Triangle(points=points)

    def id_card(self, x: float, y: float) -> None:
        """The ID card (220×138 units) with its lower-left corner at (x, y)."""
        self.rect("primary", x, y, 220, 138, radius=12)
        self.rect("on_primary", x + 16, y + 62, 52, 60)
        self.rect("on_primary", x + 84, y + 104, 118, 10)
        self.rect("on_primary", x + 84, y + 82, 90, 10)
        self.rect("on_primary", x + 16, y + 22, 188, 10)

    def reader(self, x: float, y: float) -> None:
        """The ID reader's pad (300×46 units) and its sensing area."""
        self.rect("text_muted", x, y, 300, 46, radius=10)
        self.rect("secondary", x + 50, y + 30, 200, 6, radius=3)

    def _redraw(self, *_args: object) -> None:
        self.canvas.clear()
        if self.unit <= 0:
            return
        with self.canvas:
            self.draw()

    def draw(self) -> None:
        """Subclasses draw here (inside ``self.canvas``)."""


class CardOnReaderDrawing(Drawing):
    """The ID card moving down onto the reader (as on the home screen), an arrow beside it."""

    design = (380.0, 290.0)

    def draw(self) -> None:
        lift = (1.0 - self.offset) * 70  # 70 units above the pad, down to lying on it
        self.reader(30, 10)
        self.id_card(50, 64 + lift)
        self.arrow("success", 330, 90 + lift * 0.6, "down", length=110)


class SlotDrawing(Drawing):
    """Where to take the item from: the card slot with the new card sticking out, the receipt
    slot with the voucher, or the ID reader with the ID card; an arrow moves towards it."""

    slot = OptionProperty("card", options=["card", "receipt", "id_card"])
    design = (380.0, 320.0)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bind(slot=self._redraw)

    def draw(self) -> None:
        travel = self.offset * 28
        if self.slot == "id_card":
            self.reader(40, 20)
            self.id_card(80, 74)
            self.arrow("success", 190, 226 - travel, "down", length=80)
            return
        self.rect("secondary", 20, 170, 340, 140, radius=16)
        if self.slot == "card":
            self.rect("text", 60, 214, 260, 24, radius=6)
            self.rect("primary", 90, 130, 200, 96, radius=10)
            self.rect("on_primary", 110, 150, 40, 30, radius=4)
            self.rect("on_primary", 170, 156, 96, 10)
            tip = 120
        else:
            self.rect("text", 100, 214, 180, 18, radius=6)
            self.rect("text_muted", 126, 96, 128, 128)
            self.rect("surface", 129, 99, 122, 122)
            for row in range(4):
                self.rect("text_muted", 144, 190 - row * 24, 92 - (row % 2) * 30, 8)
            tip = 86
        self.arrow("success", 190, tip - 28 + travel, "up", length=80)


# -- list items -----------------------------------------------------------------------------------


class ChoiceCard(ButtonBehavior, Label):
    """One option of ``choose``: a big button with a title and an optional detail line (one
    label, so the text is centred in the button whatever its height)."""

    choice = StringProperty("")
    title = StringProperty("")
    detail = StringProperty("")


class ConsentItem(ButtonBehavior, BoxLayout):
    """One consent or optional service: a drawn check box, the text, and words saying whether it
    is ticked and whether it is required (colour is never the only cue)."""

    choice = StringProperty("")
    key = StringProperty("")
    text = StringProperty("")
    detail = StringProperty("")
    required = BooleanProperty(False)
    checked = BooleanProperty(False)


class ConfirmRow(BoxLayout):
    """A row of ``confirm``: what it is (translated) and the value (already masked)."""

    label_text = StringProperty("")
    value_text = StringProperty("")


class EqualRow(BoxLayout):
    """A row of buttons side by side, all as tall as the one whose text needs most (a long
    English label wraps to two lines; its neighbours grow with it instead of looking shorter)."""

    def add_widget(self, widget: Widget, *args: Any, **kwargs: Any) -> None:
        widget.size_hint_y = 1
        if isinstance(widget, Label):  # a plain Widget keeps an empty cell (odd option count)
            widget.bind(texture_size=self._fit)
        super().add_widget(widget, *args, **kwargs)
        self._fit()

    def remove_widget(self, widget: Widget, *args: Any, **kwargs: Any) -> None:
        if isinstance(widget, Label):
            widget.unbind(texture_size=self._fit)
        super().remove_widget(widget, *args, **kwargs)
        self._fit()

    def _fit(self, *_args: object) -> None:
        needed = [c.texture_size[1] + 40 for c in self.children if isinstance(c, Label)]
        self.height = max([THEME.touch_min * 1.1, *needed])


# -- screens --------------------------------------------------------------------------------------


class IdCardScreen(AnimatedScreen):
    """``id_card``: place the ID card on the reader. Answered by the ID reader (an AnswerSource),
    by cancel in the top bar, or by the countdown."""

    def animation(self) -> Animation:
        animation = (
            Animation(anim=1.0, duration=1.2, t="out_quad")
            + Animation(anim=1.0, duration=0.9)
            + Animation(anim=0.0, duration=0.01)
            + Animation(anim=0.0, duration=0.3)
        )
        animation.repeat = True
        return animation

    def fill(self) -> None:
        self.ids.instruction.text = self.text("instruction_key", "citizen.id_card_instruction")
        self.ids.detail.text = self.text("detail_key")
        error = self.text("error_key")
        self.ids.error.text = f"{_t('citizen.error_mark')} {error}" if error else ""


class ConfirmScreen(CitizenScreen):
    """``confirm``: what the card-management system holds, rows of (label key, masked value),
    the photo beside them when given, and the prompt's choices (the first one primary)."""

    has_photo = BooleanProperty(False)
    has_rows = BooleanProperty(True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._photo_bytes: bytes | None = None

    def fill(self) -> None:
        self.ids.intro.text = self.text("intro_key")
        self.ids.note.text = self.text("note_key")
        rows = self.ids.rows
        rows.clear_widgets()
        self.has_rows = bool(self.data.get("rows"))
        for label_key, value_text in self.data.get("rows", ()):
            rows.add_widget(ConfirmRow(label_text=_t(label_key), value_text=str(value_text)))
        self._show_photo(self.data.get("photo_jpeg"))
        box = self.ids.choices
        box.clear_widgets()
        keys = dict(self.data.get("choice_keys") or {})
        secondary = set(self.data.get("secondary") or ())
        danger = set(self.data.get("danger") or ())
        for n, choice in enumerate(self.prompt.choices if self.prompt else ()):
            kind = "danger" if choice in danger else "secondary" if (choice in secondary and n) else "primary"
            button = KButton(text=_t(keys.get(choice, f"choice.{choice}")), kind=kind, choice=choice)
            button.bind(on_release=lambda _b, c=choice: self.answer(c))
            box.add_widget(button)

    def _show_photo(self, jpeg: bytes | None) -> None:
        if jpeg is self._photo_bytes:
            return
        self._photo_bytes = jpeg
        photo = self.ids.photo
        if not jpeg:
            photo.texture = None
            self.has_photo = False
            return
        try:
            photo.texture = CoreImage(io.BytesIO(jpeg), ext="jpg").texture
        except Exception as error:  # noqa: BLE001 — Kivy raises a bare Exception ("Unable to load image").
            log.error("confirm photo unreadable error=%s", type(error).__name__)
            photo.texture = None
            self.has_photo = False
            return
        self.has_photo = True


class ChooseScreen(CitizenScreen):
    """``choose``: one big button per option, its ``choice`` the option's value; none pre-selected.
    More than four options go in two columns when the panel is wide enough for the type size."""

    columns = NumericProperty(1)

    def fill(self) -> None:
        self.ids.intro.text = self.text("intro_key")
        self.columns = self._columns()
        self._build()
        self.ids.options_scroll.scroll_y = 1

    def _columns(self) -> int:
        app = App.get_running_app()
        scale = app.font_scale if app is not None else 1.0
        return 2 if len(self.data.get("options", ())) > 4 and self.width / scale >= 1100 else 1

    def on_size(self, *_args: object) -> None:
        if self.prompt is not None and self._columns() != self.columns:
            self.columns = self._columns()
            self._build()

    def _build(self) -> None:
        box = self.ids.options
        box.clear_widgets()
        values = self.values()
        cards = []
        for value, label_key, detail_key in self.data.get("options", ()):
            card = ChoiceCard(choice=str(value), title=_t(label_key, **values), detail=_t(detail_key, **values) if detail_key else "")
            card.bind(on_release=lambda c: self.answer(c.choice))
            cards.append(card)
        columns = int(self.columns)
        for start in range(0, len(cards), columns):
            row = EqualRow(size_hint_y=None, spacing=THEME.spacing)
            for card in cards[start : start + columns]:
                row.add_widget(card)
            for _ in range(columns - len(cards[start : start + columns])):
                row.add_widget(Widget())  # keeps the last card as wide as the others
            box.add_widget(row)

    def cards(self) -> list[ChoiceCard]:
        """The option buttons in reading order."""
        return [w for row in reversed(self.ids.options.children) for w in reversed(row.children) if isinstance(w, ChoiceCard)]


class ConsentScreen(CitizenScreen):
    """``consent``: every box starts unticked; touching an item toggles it; ``agree`` is enabled
    once every required item is ticked and answers with the ticked keys."""

    all_required = BooleanProperty(False)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._checked: set[str] = set()
        self._agree: KButton | None = None

    def reset(self, prompt: Prompt) -> None:
        self._checked = set()
        self.ids.items_scroll.scroll_y = 1

    def _items(self) -> list[dict[str, Any]]:
        return [dict(item) for item in self.data.get("items", ())]

    def fill(self) -> None:
        values = self.values()
        self.ids.intro.text = self.text("intro_key")
        self.ids.fee.text = self.text("fee_key")
        box = self.ids.item_list
        box.clear_widgets()
        for item in self._items():
            key = str(item["key"])
            widget = ConsentItem(
                choice=f"option:{key}",
                key=key,
                text=_t(item["text_key"], **values),
                detail=_t(item["detail_key"], **values) if item.get("detail_key") else "",
                required=bool(item.get("required")),
                checked=key in self._checked,
            )
            widget.bind(on_release=lambda w: self.toggle(w.key))
            box.add_widget(widget)
        actions = self.ids.actions
        actions.clear_widgets()
        for choice, key in dict(self.data.get("alternatives") or {}).items():
            button = KButton(text=_t(key, **values), kind="secondary", choice=choice)
            button.bind(on_release=lambda _b, c=choice: self.answer(c))
            actions.add_widget(button)
        self._agree = KButton(text=_t("citizen.agree"), choice="agree", disabled_color=THEME.rgba("on_primary"))
        self._agree.bind(on_release=lambda _b: self.agree())
        actions.add_widget(self._agree)
        self._update()

    def toggle(self, key: str) -> None:
        self._checked ^= {key}
        for widget in self.ids.item_list.children:
            if widget.key == key:
                widget.checked = key in self._checked
        self._update()

    def checked_keys(self) -> list[str]:
        """The ticked keys, in the order of the items."""
        return [str(item["key"]) for item in self._items() if str(item["key"]) in self._checked]

    def _update(self) -> None:
        required = {str(item["key"]) for item in self._items() if item.get("required")}
        self.all_required = required <= self._checked
        if self._agree is not None:
            # Disabled: faded (the hint above says why); enabled: the solid primary button.
            self._agree.disabled = not self.all_required
            self._agree.opacity = 1.0 if self.all_required else 0.4
        hint = "citizen.consent_ready" if self.all_required else "citizen.consent_hint"
        self.ids.hint.text = _t(hint, agree=_t("citizen.agree"))

    def agree(self) -> None:
        if self.all_required:
            self.answer("agree", checked=self.checked_keys())


class KeypadEntryScreen(CitizenScreen):
    """``keypad_entry``: digits on the on-screen keypad (a mobile number; never a PIN). ``key:enter``
    answers ``ok`` with ``{"value": digits}`` only when ``pattern`` matches; otherwise the error is
    shown and nothing is sent."""

    length = NumericProperty(11)
    error_shown = BooleanProperty(False)

    def reset(self, prompt: Prompt) -> None:
        self.length = int(prompt.data.get("length") or 11)
        keypad = self.ids.keypad
        keypad.max_length = self.length
        keypad.value = "".join(c for c in str(prompt.data.get("initial") or "") if c.isdigit())[: self.length]
        self.error_shown = False

    def on_kv_post(self, base_widget: Widget) -> None:
        super().on_kv_post(base_widget)
        keypad = self.ids.keypad
        keypad.bind(value=self._typed)
        # The keys keep their touch size; the keypad is only as tall as its keys (no gap above
        # the enter key on a tall panel).
        for grid in (c for c in keypad.children if isinstance(c, GridLayout)):
            grid.size_hint_y = None
            grid.bind(minimum_height=grid.setter("height"))
            grid.height = grid.minimum_height

    def _typed(self, _keypad: Widget, _value: str) -> None:
        self.error_shown = False  # the citizen is correcting: the old error no longer applies

    def fill(self) -> None:
        self.ids.prompt_label.text = self.text("prompt_key")
        self.ids.hint.text = _t("citizen.keypad_hint", length=self.length, enter=_t("ui.key_enter"))
        self._fill_error()

    def on_error_shown(self, *_args: object) -> None:
        self._fill_error()

    def _fill_error(self) -> None:
        error = self.text("error_key", "citizen.keypad_error") if self.error_shown else ""
        self.ids.error.text = f"{_t('citizen.error_mark')} {error}" if error else ""

    def valid(self, digits: str) -> bool:
        if not digits.isdigit() or (self.length and len(digits) != self.length):
            return False
        pattern = self.data.get("pattern")
        if not pattern:
            return True
        try:
            return re.fullmatch(pattern, digits) is not None
        except re.error as error:
            log.error("keypad_entry pattern invalid error=%s", error)
            return False

    def entered(self, digits: str) -> None:
        if self.valid(digits):
            self.answer("ok", value=digits)
        else:
            self.error_shown = True


class TakeItemScreen(AnimatedScreen):
    """``take_item`` (display only): take the new card, the voucher or the ID card; the countdown
    bar shows ``seconds`` (the device says when the item is taken)."""

    slot = StringProperty("card")

    def present(self, prompt: Prompt, reply: Reply | None) -> None:
        super().present(prompt, reply)
        seconds = float(prompt.data.get("seconds") or 0)
        if seconds > 0 and reply is None:
            # Display only: the device ends the wait, not this bar.
            self.ids.countdown.start(seconds, lambda: None)

    def fill(self) -> None:
        slot = str(self.data.get("slot") or "card")
        self.slot = slot if slot in ("card", "receipt", "id_card") else "card"
        self.ids.body.text = self.text("body_key")

    def on_touch_down(self, touch):  # type: ignore[no-untyped-def]
        # The bar counts the device's time to take the item: a touch must not restart it.
        app = App.get_running_app()
        if app is not None and hasattr(app, "touched"):
            app.touched()
        return Screen.on_touch_down(self, touch)


PROMPT_SCREENS: dict[str, type[PromptScreen]] = {
    "id_card": IdCardScreen,
    "confirm": ConfirmScreen,
    "choose": ChooseScreen,
    "consent": ConsentScreen,
    "keypad_entry": KeypadEntryScreen,
    "take_item": TakeItemScreen,
}

KV_FILES = ["citizen.kv"]
