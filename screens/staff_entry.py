"""The staff and engineer entry (工作人员/运维入口): reached from the hidden corner of the home
screen; a staff id and a password on the on-screen keypad; then the menu of the role. While it
is open the kiosk shows citizens that it is out of service."""

from __future__ import annotations

from kivy.app import App
from kivy.properties import ListProperty, ObjectProperty, OptionProperty, StringProperty
from kivy.uix.screenmanager import Screen


class StaffLoginScreen(Screen):
    role = OptionProperty("staff", options=["staff", "engineer"])
    stage = OptionProperty("id", options=["id", "password"])
    staff_id = StringProperty("")
    error_key = StringProperty("")

    def on_pre_enter(self, *args: object) -> None:
        self.stage = "id"
        self.staff_id = ""
        self.error_key = ""
        self.ids.keypad.value = ""

    def entered(self, value: str) -> None:
        if not value:
            return
        if self.stage == "id":
            self.staff_id = value
            self.stage = "password"
            self.ids.keypad.value = ""
            return
        self.ids.keypad.value = ""
        app = App.get_running_app()
        error = app.staff_login(self.role, self.staff_id, value)
        if error:
            self.error_key = error
            self.stage = "id"
            self.staff_id = ""


class StaffMenuScreen(Screen):
    """The signed-in menu. It shows every device's state with its code and message and is where
    the staff (restock, reconcile) and engineer (self-tests, faults, logs) pages attach."""

    session = ObjectProperty(None, allownone=True)
    statuses = ListProperty([])
    role_title_key = StringProperty("menu.staff_title")
    pages = ListProperty([])  # [(screen name, title key)] for the signed-in role

    def on_pre_enter(self, *args: object) -> None:
        self.refresh()

    def on_pages(self, *_args: object) -> None:
        from screens.widgets import KButton

        app = App.get_running_app()
        box = self.ids.page_buttons
        box.clear_widgets()
        for screen, title_key in self.pages:
            button = KButton(text=app.t(title_key, app.lang), kind="primary", choice=f"page:{screen}")
            button.bind(on_release=lambda _b, s=screen: app.open_page(s))
            box.add_widget(button)

    def refresh(self) -> None:
        app = App.get_running_app()
        self.statuses = app.device_status_lines()
