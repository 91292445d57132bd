"""Face verification (人脸识别核验): the live preview with the face box and the current hint or
liveness challenge. The flow hands the screen a ``preview`` callable in the prompt data (the core's
view of the camera pipeline, returning the newest frame, face box and hint); the screen polls it
at the display rate. Detection and matching run elsewhere, so the preview never waits for them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kivy.app import App
from kivy.clock import Clock
from kivy.graphics import Color, Line
from kivy.graphics.texture import Texture
from kivy.properties import NumericProperty, StringProperty
from kivy.uix.image import Image

from kiosk.prompts import Prompt
from screens.base import PromptScreen, Reply
from screens.theme import THEME


class FacePreview(Image):
    """Shows RGB frames (H×W×3 uint8) with the face box drawn over them, mirrored like a mirror."""

    frames_shown = NumericProperty(0)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fit_mode = "contain"
        self._texture_size: tuple[int, int] | None = None
        self._last_index = -1

    def show(self, state: Any) -> None:
        rgb = getattr(state, "rgb", None)
        if rgb is None or state.frame_index == self._last_index:
            return
        self._last_index = state.frame_index
        height, width = rgb.shape[:2]
        if self._texture_size != (width, height):
            self.texture = Texture.create(size=(width, height), colorfmt="rgb")
            self.texture.flip_vertical()
            self.texture.flip_horizontal()  # a mirror: the citizen moves left, the image moves left
            self._texture_size = (width, height)
        self.texture.blit_buffer(rgb.tobytes(), colorfmt="rgb", bufferfmt="ubyte")
        self.canvas.ask_update()
        self._draw_box(state.face, width, height)
        self.frames_shown += 1

    def _draw_box(self, face: Any, width: int, height: int) -> None:
        self.canvas.after.clear()
        if face is None or not self.norm_image_size[0]:
            return
        shown_w, shown_h = self.norm_image_size
        x0 = self.center_x - shown_w / 2
        y0 = self.center_y - shown_h / 2
        sx, sy = shown_w / width, shown_h / height
        # Mirrored horizontally, and Kivy's y axis points up.
        left = x0 + (width - face.right) * sx
        bottom = y0 + (height - face.bottom) * sy
        with self.canvas.after:
            Color(*THEME.rgba("success"))
            Line(rectangle=(left, bottom, face.width * sx, (face.bottom - face.top) * sy), width=3)


class FaceScreen(PromptScreen):
    """``data``: ``preview`` (callable → preview state), ``title_key``, ``instruction_key``."""

    hint_key = StringProperty("camera.hint.no_face")
    challenge_key = StringProperty("")
    challenge_step = NumericProperty(0)  # actions done in this attempt (the next one is asked)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._event = None
        self._preview: Callable[[], Any] | None = None

    def present(self, prompt: Prompt, reply: Reply | None) -> None:
        super().present(prompt, reply)
        self._preview = prompt.data.get("preview")
        # A new attempt: nothing of the last one's instruction stays on screen.
        self.challenge_key = ""
        self.challenge_step = 0
        self.hint_key = "camera.hint.no_face"
        if self._event is None:
            self._event = Clock.schedule_interval(self._tick, 1 / 30)

    def on_leave(self, *args: Any) -> None:
        super().on_leave(*args)
        if self._event is not None:
            self._event.cancel()
            self._event = None
        self._preview = None

    def _tick(self, _dt: float) -> None:
        if self._preview is None:
            return
        state = self._preview()
        self.ids.preview.show(state)
        liveness = getattr(state, "liveness", None)
        if liveness is not None and liveness.challenge is not None:
            self.challenge_key = liveness.challenge.message_key
            self.challenge_step = liveness.completed
        self.hint_key = getattr(state, "hint_key", "") or ""
        app = App.get_running_app()
        if app is not None:
            app.touched()
