"""The UI side of :class:`kiosk.prompts.Prompter`: a flow on its worker thread asks, the main
(Kivy) thread shows the screen, and the answer travels back through a queue."""

from __future__ import annotations

import queue
from collections.abc import Callable

from kivy.clock import Clock

from kiosk.prompts import Answer, AnswerSource, Prompt

Present = Callable[[Prompt, Callable[[Answer], None] | None], None]


class UiPrompter:
    def __init__(self, present: Present) -> None:
        self._present = present

    def ask(self, prompt: Prompt, until: AnswerSource | None = None) -> Answer:
        # Unbounded: a late second answer (the screen's countdown after ``until`` answered) must
        # never block the Kivy thread; only the first is read.
        answers: queue.Queue[Answer] = queue.Queue()
        Clock.schedule_once(lambda _dt: self._present(prompt, answers.put), 0)
        if until is None:
            return answers.get()
        until.start(answers.put)
        try:
            return answers.get()
        finally:
            until.stop()

    def show(self, prompt: Prompt) -> None:
        Clock.schedule_once(lambda _dt: self._present(prompt, None), 0)
