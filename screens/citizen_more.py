"""More citizen prompt screens (办事群众界面，续), for the card services after the first issue:

- ``insert_card`` — "push your social security card into the card slot" (插入社保卡): ``title_key``,
  ``instruction_key``, ``detail_key``, ``error_key`` (optional, in red), ``values``. A card moving
  up into the slot, chip first. No choices but cancel; answered by the card printer when it has
  drawn the card in (an AnswerSource), or ``timeout``.
- ``progress_result`` — the progress of the holder's applications (制卡进度): ``title_key``,
  ``intro_key`` + ``values``, ``items`` [{``business_key``, ``stage_key``, ``track`` [(key,
  done|now|next)], ``facts`` [(label_key, value_text)], ``note_key`` + ``note_values``,
  ``limit_key`` + ``limit_values`` (the regional time limit, shown as a row; empty when it no
  longer applies)}],
  ``choice_keys`` {choice: key}, ``secondary``. Choices from ``prompt.choices`` (e.g. ``print``,
  ``done``), the first one primary.

Screens hold no business rule; every answering button carries ``choice``. Layouts are in
``kv/citizen_more.kv``.
"""

from __future__ import annotations

from typing import Any

from kivy.properties import BooleanProperty, ListProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout

from screens.base import PromptScreen
from screens.citizen import AnimatedScreen, CitizenScreen, Drawing, _t
from screens.widgets import KButton


class CardIntoSlotDrawing(Drawing):
    """The social security card moving up into the card slot, chip first and facing the citizen."""

    design = (380.0, 330.0)

    def draw(self) -> None:
        travel = self.offset * 64
        # The card below the slot (drawn first: the panel hides the part already inside).
        self.rect("primary", 96, 36 + travel, 188, 122, radius=10)
        self.rect("warning_bg", 118, 104 + travel, 40, 32, radius=5)  # the chip's contacts
        self.rect("text_muted", 124, 112 + travel, 28, 3)
        self.rect("text_muted", 124, 122 + travel, 28, 3)
        self.rect("on_primary", 174, 112 + travel, 90, 9)
        self.rect("on_primary", 174, 92 + travel, 64, 9)
        # The kiosk's front with the slot.
        self.rect("secondary", 20, 196, 340, 120, radius=16)
        self.rect("text", 70, 246, 240, 20, radius=6)
        self.arrow("success", 330, 182, "up", length=110)


class ProgressTrackMark(BoxLayout):
    """One stage of an application's way: its words, with a sign and weight (colour is never the
    only cue)."""

    text = StringProperty("")
    state = StringProperty("next")


class ProgressFact(BoxLayout):
    label_text = StringProperty("")
    value_text = StringProperty("")


class ProgressEntry(BoxLayout):
    """One application: what it is, where it stands, its dates and what to do."""

    business = StringProperty("")  # what it is and where it stands: 首次申领社保卡：制卡中
    note = StringProperty("")
    marks = ListProperty([])
    facts = ListProperty([])
    has_track = BooleanProperty(True)

    def on_marks(self, *_args: object) -> None:
        box = self.ids.track
        box.clear_widgets()
        for text, state in self.marks:
            box.add_widget(ProgressTrackMark(text=text, state=state))

    def on_facts(self, *_args: object) -> None:
        box = self.ids.fact_list
        box.clear_widgets()
        for label, value in self.facts:
            box.add_widget(ProgressFact(label_text=label, value_text=value))


class InsertCardScreen(AnimatedScreen):
    """``insert_card``: push the card into the slot. Answered by the card printer (an
    AnswerSource), by cancel in the top bar, or by the countdown."""

    def fill(self) -> None:
        self.ids.instruction.text = self.text("instruction_key", "holder_card.insert.instruction")
        self.ids.detail.text = self.text("detail_key")
        error = self.text("error_key")
        self.ids.error.text = f"{_t('citizen.error_mark')} {error}" if error else ""


_MARK_KEYS = {"done": "ui.stage_done", "now": "ui.stage_now", "next": "ui.stage_next"}


class ProgressResultScreen(CitizenScreen):
    """``progress_result``: each application with its stage, dates, time limit and what to do."""

    def fill(self) -> None:
        self.ids.intro.text = self.text("intro_key")
        box = self.ids.entries
        box.clear_widgets()
        for item in self.data.get("items", ()):
            box.add_widget(self._entry(dict(item)))
        self.ids.entries_scroll.scroll_y = 1
        actions = self.ids.actions
        actions.clear_widgets()
        keys = dict(self.data.get("choice_keys") or {})
        secondary = set(self.data.get("secondary") or ())
        for n, choice in enumerate(self.prompt.choices if self.prompt else ()):
            kind = "secondary" if (choice in secondary and n) else "primary"
            button = KButton(text=_t(keys.get(choice, f"choice.{choice}")), kind=kind, choice=choice)
            button.bind(on_release=lambda _b, c=choice: self.answer(c))
            actions.add_widget(button)

    @staticmethod
    def _entry(item: dict[str, Any]) -> ProgressEntry:
        track = [tuple(mark) for mark in item.get("track", ())]
        marks = [(f"{_t(_MARK_KEYS[state]).split(' ', 1)[0]} {_t(key)}", state) for key, state in track]
        limit_key = item.get("limit_key") or ""
        facts = [(_t(label), str(value)) for label, value in item.get("facts", ())]
        if limit_key:  # the regional time limit, as one more row
            facts.append((_t("progress.row.limit"), _t(limit_key, **dict(item.get("limit_values") or {}))))
        note_key = item.get("note_key") or ""
        entry = ProgressEntry(
            business=_t("progress.entry_title", business=_t(item.get("business_key", "")),
                        stage=_t(item.get("stage_key", ""))),
            note=_t(note_key, **dict(item.get("note_values") or {})) if note_key else "",
            has_track=len(marks) > 1,
        )
        # After construction: the lists fill children of the kv rule (ids exist only now).
        entry.marks = marks if len(marks) > 1 else []
        entry.facts = facts
        return entry


PROMPT_SCREENS: dict[str, type[PromptScreen]] = {
    "insert_card": InsertCardScreen,
    "progress_result": ProgressResultScreen,
}

KV_FILES = ["citizen_more.kv"]
