"""How a flow talks to the UI: it *asks* with a :class:`Prompt` and gets an :class:`Answer`.

The flow runs on a worker thread and never touches a widget. The UI (``screens/``) implements
:class:`Prompter`: it shows the screen the prompt names with the prompt's data and sends back the
citizen's answer. Tests and the scripted citizen of ``kiosk demo --headless`` implement it too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

CANCEL = "cancel"
TIMEOUT = "timeout"


@dataclass(frozen=True)
class Prompt:
    """A screen to show. ``choices`` are the answers it may send back (empty: display only, e.g.
    a progress screen). ``data`` holds what the screen shows: masked or non-personal values and
    message keys, never a PIN. ``timeout_s`` is the visible countdown (None: no timeout)."""

    screen: str
    data: Mapping[str, Any] = field(default_factory=dict)
    choices: tuple[str, ...] = ()
    timeout_s: float | None = None
    voice_key: str | None = None


@dataclass(frozen=True)
class Answer:
    """``choice`` is one of the prompt's choices, :data:`CANCEL` or :data:`TIMEOUT`."""

    choice: str
    values: Mapping[str, Any] = field(default_factory=dict)

    @property
    def cancelled(self) -> bool:
        return self.choice == CANCEL

    @property
    def timed_out(self) -> bool:
        return self.choice == TIMEOUT


class AnswerSource(Protocol):
    """Something besides the citizen's touch that may answer a prompt: an ID card put on the
    reader while the "place your ID card" screen waits, a card taken from the slot. ``start``
    gets the function to call with the answer; ``stop`` is called when the prompt is over."""

    def start(self, deliver: Callable[[Answer], None]) -> None: ...

    def stop(self) -> None: ...


class Prompter(Protocol):
    def ask(self, prompt: Prompt, until: AnswerSource | None = None) -> Answer:
        """Shows the prompt and blocks the calling (flow) thread until the answer comes (from the
        screen, or from ``until`` when given, whichever is first)."""

    def show(self, prompt: Prompt) -> None:
        """Shows a display-only prompt (progress) and returns at once."""
