"""The UI side of :class:`kiosk.prompts.Prompter`: a flow on its worker thread asks, the main
(Kivy) thread shows the screen, and the answer travels back through a queue."""

from __future__ import annotations

import queue
from collections.abc import Callable

from kivy.clock import Clock

from kiosk.prompts import Answer, Prompt

Present = Callable[[Prompt, Callable[[Answer], None] | None], None]


class UiPrompter:
    def __init__(self, present: Present) -> None:
        self._present = present

    def ask(self, prompt: Prompt) -> Answer:
        answers: queue.Queue[Answer] = queue.Queue(maxsize=1)
        Clock.schedule_once(lambda _dt: self._present(prompt, answers.put), 0)
        return answers.get()

    def show(self, prompt: Prompt) -> None:
        Clock.schedule_once(lambda _dt: self._present(prompt, None), 0)
