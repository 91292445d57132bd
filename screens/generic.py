"""Generic prompt screens every business uses: a message with choices, a progress screen, and
the one-time notice (一次性告知单)."""

from __future__ import annotations

from kivy.app import App
from kivy.uix.label import Label

from screens.base import PromptScreen
from screens.theme import THEME
from screens.widgets import KButton


def _t(key: str, **values: object) -> str:
    app = App.get_running_app()
    return app.t(key, app.lang, **values) if app is not None else key


class MessageScreen(PromptScreen):
    """``data``: ``title_key``, ``body_key`` (+ ``values``), ``choice_keys`` {choice: key},
    ``danger`` (choices shown as danger buttons)."""

    def fill(self) -> None:
        key = self.data.get("body_key")
        self.ids.body.text = _t(key, **dict(self.data.get("values", {}))) if key else ""
        box = self.ids.choices
        box.clear_widgets()
        keys = dict(self.data.get("choice_keys", {}))
        danger = set(self.data.get("danger", ()))
        for choice in self.prompt.choices if self.prompt else ():
            button = KButton(text=_t(keys.get(choice, f"choice.{choice}")), kind="danger" if choice in danger else "primary", choice=choice)
            button.bind(on_release=lambda _b, c=choice: self.answer(c))
            box.add_widget(button)


class ProgressScreen(PromptScreen):
    """``data``: ``title_key``, ``stages`` [(key, state)], ``fraction``, ``eta_s``."""

    def fill(self) -> None:
        self.ids.topbar.title_key = self.data.get("title_key", "app.title")
        self.ids.headline.text = _t(self.data.get("headline_key", "ui.please_wait"))
        panel = self.ids.panel
        panel.fraction = float(self.data.get("fraction", 0.0))
        panel.eta_s = float(self.data.get("eta_s", -1))
        stages = panel.ids.stage_list
        stages.clear_widgets()
        app = App.get_running_app()
        scale = app.font_scale if app is not None else 1.0
        marks = {"done": "ui.stage_done", "now": "ui.stage_now", "next": "ui.stage_next"}
        for key, state in self.data.get("stages", ()):
            label = Label(
                text=f"{_t(marks[state])}  {_t(key)}",
                font_size=THEME.body * scale,
                bold=state == "now",
                color=THEME.rgba("text" if state != "next" else "text_muted"),
                halign="left",
                valign="middle",
                size_hint_y=None,
                height=THEME.body * scale * 1.8,
            )
            label.bind(size=lambda w, s: setattr(w, "text_size", s))
            stages.add_widget(label)


class NoticeScreen(PromptScreen):
    """The one-time notice: ``reason_key``, ``missing_keys``, ``todo_key``, ``where``,
    ``time_limit_key``, ``values``; printed on the receipt printer with the same text."""

    def fill(self) -> None:
        values = dict(self.data.get("values", {}))
        self.ids.reason.text = _t(self.data.get("reason_key", "notice.reason_unknown"), **values)
        missing = [_t(k, **values) for k in self.data.get("missing_keys", ())]
        self.ids.missing.text = "\n".join(f"· {m}" for m in missing) if missing else _t("notice.nothing_missing")
        self.ids.todo.text = _t(self.data.get("todo_key", "notice.todo_counter"), **values)
        where_key = self.data.get("where_key")
        self.ids.where.text = _t(where_key, **values) if where_key else (self.data.get("where", "") or _t("notice.where_counter", **values))
        self.ids.printed.text = _t("notice.printed" if self.data.get("printed") else "notice.not_printed")
