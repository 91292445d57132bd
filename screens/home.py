"""The home screen (首页): the businesses this kiosk can do now, the ID-card hint, the identity
just read (masked), the kiosk's state (online/offline, out of service) and the hidden corner to
the staff and engineer login."""

from __future__ import annotations

from kivy.animation import Animation
from kivy.app import App
from kivy.properties import BooleanProperty, ListProperty, NumericProperty, StringProperty
from kivy.uix.screenmanager import Screen

from screens.widgets import KButton


class HomeScreen(Screen):
    businesses = ListProperty([])  # [(key, title_key, description_key)]
    in_service = BooleanProperty(True)
    out_of_service_key = StringProperty("home.out_of_service_generic")
    identity_text = StringProperty("")
    online = BooleanProperty(True)
    hint_offset = NumericProperty(0)

    def on_enter(self, *args: object) -> None:
        self._pulse = Animation(hint_offset=16, duration=0.8) + Animation(hint_offset=0, duration=0.8)
        self._pulse.repeat = True
        self._pulse.start(self)

    def on_leave(self, *args: object) -> None:
        Animation.cancel_all(self, "hint_offset")

    def on_businesses(self, *_args: object) -> None:
        grid = self.ids.business_grid
        grid.clear_widgets()
        app = App.get_running_app()
        for key, title_key, _description_key in self.businesses:
            button = KButton(text=app.t(title_key, app.lang), kind="primary", choice=f"business:{key}")
            button.business_key = key
            button.title_key = title_key
            button.bind(on_release=lambda b: app.start_business(b.business_key))
            grid.add_widget(button)

    def retranslate(self) -> None:
        app = App.get_running_app()
        for button in self.ids.business_grid.children:
            button.text = app.t(button.title_key, app.lang)
