"""Staff menu pages (网点工作人员菜单): levels at a glance, restock, ribbon, paper, reject bin,
count and reconcile (with the reviewer's sign-in), the supervisor's note on a discrepancy, and the
PSAM registry. Layouts in ``kv/staff_pages.kv``.

The pages hold no business rule: each button calls one function of :mod:`kiosk.staff_actions` with
the signed-in :attr:`KioskUI.staff_session`, on a worker thread (printing and device polls block),
and shows what came back. Every text is a message key translated in the kv rules, so the language
and elder-mode switches apply at once; every button sets ``choice`` (docs/screens.md).
"""

from __future__ import annotations

import logging
import string
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from kivy.app import App
from kivy.clock import Clock
from kivy.properties import (
    BooleanProperty,
    DictProperty,
    ListProperty,
    NumericProperty,
    OptionProperty,
    StringProperty,
)
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.screenmanager import Screen

from kiosk.ledger import LOCAL_TZ, Reconciliation, StockCount
from kiosk.staff import LoginRefused, Role, StaffSession
from kiosk.staff_actions import (
    BadCardInput,
    StaffDesk,
    StockLevels,
    authorize,
    cards_for_restock,
    change_paper,
    change_ribbon,
    close_period,
    empty_reject_bin,
    note_discrepancy,
    open_discrepancies,
    period_report,
    psam_view,
    reconcile,
    register_psam,
    reject_bin_contents,
    reprint,
    resolve_discrepancy,
    restock,
    retire_psam,
    stock_levels,
    suggested_first_card,
)
from screens.base import MenuPage
from screens.theme import THEME
from screens.widgets import Keypad

log = logging.getLogger(__name__)
T = TypeVar("T")

STAFF_AND_SUPERVISOR = ("staff", "supervisor")

MENU_PAGES = [
    MenuPage("staff_levels", "staffpage.levels", STAFF_AND_SUPERVISOR),
    MenuPage("staff_restock", "staffpage.restock", STAFF_AND_SUPERVISOR),
    MenuPage("staff_ribbon", "staffpage.ribbon", STAFF_AND_SUPERVISOR),
    MenuPage("staff_paper", "staffpage.paper", STAFF_AND_SUPERVISOR),
    MenuPage("staff_reject_bin", "staffpage.reject_bin", STAFF_AND_SUPERVISOR),
    MenuPage("staff_reconcile", "staffpage.reconcile", STAFF_AND_SUPERVISOR),
    MenuPage("staff_discrepancies", "staffpage.discrepancies", STAFF_AND_SUPERVISOR),
    MenuPage("staff_psam", "staffpage.psam", STAFF_AND_SUPERVISOR),
]

KV_FILES = ["staff_pages.kv"]

# The supervisor's note and resolution are chosen from lists (no Chinese typing on the kiosk);
# the text stored in the ledger is the printed language's (an official record).
NOTE_KEYS = ("miscount", "card_found", "card_missing", "sensor_fault")
RESOLUTION_KEYS = ("recount_balanced", "booked", "sensor_serviced")
PSAM_RETIRE_KEYS = ("expired", "damaged", "replaced")
PERIODS = ("shift", "day", "month")


def _app() -> Any:
    return App.get_running_app()


def _local(moment: Any) -> str:
    return moment.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")


# --------------------------------------------------------------------------- rows


class LevelRow(BoxLayout):
    """One consumable on the levels page: name, bar, amount, state in words, what to do."""

    name_key = StringProperty("")
    state = StringProperty("ok")
    message_key = StringProperty("")
    amount_key = StringProperty("")
    amount_values = DictProperty({})
    sensor_text_key = StringProperty("")
    sensor_values = DictProperty({})
    fraction = NumericProperty(0.0)


class InfoLine(BoxLayout):
    """A label and a value (the value already a display string or a key with values)."""

    label_key = StringProperty("")
    value = StringProperty("")
    value_key = StringProperty("")
    value_values = DictProperty({})
    strong = BooleanProperty(False)


class ListRow(BoxLayout):
    """A row of a list (spoiled card, discrepancy) with an optional button at its end."""

    text = StringProperty("")
    text_key = StringProperty("")
    text_values = DictProperty({})
    button_key = StringProperty("")
    button_choice = StringProperty("")
    selected = BooleanProperty(False)
    on_choose: Callable[[], None] | None = None

    def choose(self) -> None:
        if self.on_choose is not None:
            self.on_choose()


class StageBox(BoxLayout):
    """Buttons that are there only in some stages (layout in kv: a hidden box has no height, is
    transparent and disabled).

    Hidden, it takes no touch at all: its buttons keep their own heights and lie over whatever is
    drawn where the box collapsed, and Kivy lets a disabled widget swallow a touch that lands on it
    — so the hidden "close"/"recount" row of the reconcile page took the touch meant for the shown
    "day" button above it."""

    shown = BooleanProperty(True)

    def on_touch_down(self, touch: Any) -> bool:
        if not self.shown:
            return False
        return bool(super().on_touch_down(touch))


# --------------------------------------------------------------------------- the page base


def panels_of(container: Any, **others: Any) -> dict[str, Any]:
    """The container's panels by name, as strong references (``ids`` holds weak proxies, and a
    panel out of the tree must stay alive): the keypad plus ``others``."""
    children = list(container.children)
    panels = {"keypad": next(c for c in children if isinstance(c, Keypad))}
    for name, proxy in others.items():
        panels[name] = next(c for c in children if c == proxy)
    return panels


def show_only(container: Any, panels: dict[str, Any], wanted: str | None) -> None:
    """Puts only the panel ``wanted`` into ``container`` (the others are kept, out of the tree):
    a hidden panel takes no room and cannot be touched."""
    for child in list(container.children):
        container.remove_widget(child)
    if wanted is not None:
        container.add_widget(panels[wanted])


class StaffPage(Screen):
    """A staff page: runs one action at a time off the UI thread and shows its outcome as a
    message key (translated in kv, so a language switch re-translates it)."""

    busy = BooleanProperty(False)
    message_key = StringProperty("")
    message_values = DictProperty({})
    message_kind = OptionProperty("info", options=["info", "ok", "warn", "error"])

    def on_pre_enter(self, *args: object) -> None:
        self.say("")
        self.reset()
        self.refresh()

    def reset(self) -> None:
        """Back to the page's first stage."""

    def refresh(self) -> None:
        """Reloads what the page shows."""

    @property
    def session(self) -> StaffSession | None:
        return _app().staff_session

    def desk(self) -> StaffDesk:
        app = _app()
        return StaffDesk.of(app.core, app.staff_accounts)

    def say(self, key: str, kind: str = "info", **values: Any) -> None:
        self.message_values = {k: str(v) for k, v in values.items()}
        self.message_key = key
        self.message_kind = kind

    def run(
        self,
        work: Callable[[], T],
        done: Callable[[T], None],
        *,
        failed: Callable[[Exception], None] | None = None,
    ) -> None:
        """Runs ``work`` on a worker thread; ``done(result)`` (or the error shown, then
        ``failed(error)``) on the UI thread."""
        if self.busy:
            return
        self.busy = True

        def worker() -> None:
            try:
                result, error = work(), None
            except Exception as exc:  # the page shows every refusal; nothing leaves the thread unseen
                if not hasattr(exc, "message_key"):
                    log.exception("staff page %s: action failed", self.name)
                result, error = None, exc
            Clock.schedule_once(lambda _dt: self._finish(done, failed, result, error), 0)

        threading.Thread(target=worker, name=f"staff-page-{self.name}", daemon=True).start()

    def _finish(
        self,
        done: Callable[[Any], None],
        failed: Callable[[Exception], None] | None,
        result: Any,
        error: Exception | None,
    ) -> None:
        self.busy = False
        if error is None:
            done(result)
            return
        self.say(getattr(error, "message_key", "staffpage.error_unexpected"), "error")
        if failed is not None:
            failed(error)


# --------------------------------------------------------------------------- levels


class StaffLevelsPage(StaffPage):
    alert_count = NumericProperty(-1)

    def refresh(self) -> None:
        self.run(lambda: stock_levels(self.desk()), self._show)

    def _show(self, levels: StockLevels) -> None:
        box = self.ids.levels
        box.clear_widgets()
        self.rows: list[LevelRow] = []
        for level in levels.levels:
            amount_key, amount_values = "", {}
            if level.value is not None and level.name != "paper":
                amount_key = f"staffpage.amount.{level.name}"
                amount_values = {"value": level.value, "capacity": level.capacity}
            self.rows.append(
                LevelRow(
                    name_key=f"staffpage.level_name.{level.name}",
                    state=level.state.value,
                    message_key=level.message_key,
                    amount_key=amount_key,
                    amount_values=amount_values,
                    sensor_text_key="staffpage.amount.sensor" if level.sensor is not None else "",
                    sensor_values={"sensor": level.sensor} if level.sensor is not None else {},
                    fraction=level.fraction,
                )
            )
        # Two cards a row, both as tall as the taller one (their texts wrap differently).
        for pair in (self.rows[i : i + 2] for i in range(0, len(self.rows), 2)):
            line = BoxLayout(size_hint_y=None, spacing=THEME.spacing)

            def fit(*_args: object, line: BoxLayout = line) -> None:
                line.height = max(card.minimum_height for card in line.children)

            for card in pair:
                card.bind(minimum_height=fit)
                line.add_widget(card)
            fit()
            box.add_widget(line)
        self.alert_count = len(levels.alerts)


# --------------------------------------------------------------------------- restock


class StaffRestockPage(StaffPage):
    stage = OptionProperty("first", options=["first", "second", "confirm", "done"])
    mode = OptionProperty("range", options=["range", "count"])
    prefix = StringProperty("A")
    first_digits = StringProperty("")
    second_digits = StringProperty("")
    cards = ListProperty([])

    def reset(self) -> None:
        self.stage, self.mode = "first", "range"
        self.first_digits = self.second_digits = ""
        self.cards = []
        self.ids.keypad.value = ""

    def refresh(self) -> None:
        self.run(lambda: suggested_first_card(self.desk()), self._suggest)

    def _suggest(self, suggestion: str | None) -> None:
        if suggestion and self.stage == "first" and not self.ids.keypad.value:
            head = suggestion.rstrip(string.digits)
            self.prefix = head or ""
            self.ids.keypad.value = suggestion[len(head) :]  # the next number, shown as the first card

    @property
    def first(self) -> str:
        return f"{self.prefix}{self.first_digits}"

    def next_prefix(self) -> None:
        letters = ["", *string.ascii_uppercase]
        self.prefix = (
            letters[(letters.index(self.prefix) + 1) % len(letters)] if self.prefix in letters else "A"
        )

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        if self.stage == "second":
            self.ids.keypad.value = ""

    def edit(self) -> None:
        self.stage = "first"
        self.ids.keypad.value = self.first_digits
        self.say("")

    def entered(self, value: str) -> None:
        if self.busy or not value:
            return
        if self.stage == "first":
            self.first_digits = value
            self.second_digits = ""
            self.stage = "second"
            self.ids.keypad.value = ""
            self.say("")
            return
        if self.stage != "second":
            return
        self.second_digits = value
        try:
            if self.mode == "range":
                cards = cards_for_restock(self.first, last=f"{self.prefix}{value}")
            else:
                cards = cards_for_restock(self.first, count=int(value))
        except BadCardInput as exc:
            self.say(exc.message_key, "error")
            self.ids.keypad.value = ""
            return
        self.cards = cards
        self.stage = "confirm"
        self.ids.keypad.value = ""
        self.say("")

    def confirm(self) -> None:
        session, cards = self.session, list(self.cards)
        if session is None or self.stage != "confirm":
            return
        self.run(
            lambda: restock(self.desk(), session, cards),
            self._done,
            failed=lambda _e: setattr(self, "stage", "confirm"),
        )

    def _done(self, result: Any) -> None:
        self.stage = "done"
        values = {
            "count": len(result.registered),
            "first": result.first,
            "last": result.last,
            "hopper": result.ledger_hopper,
        }
        if result.discrepancy is not None:
            self.say("staffpage.restock.sensor_mismatch", "warn", sensor=result.sensor_hopper, **values)
        else:
            self.say("staffpage.restock.done", "ok", **values)

    def again(self) -> None:
        self.reset()
        self.say("")
        self.refresh()


# --------------------------------------------------------------------------- ribbon and paper


class StaffRibbonPage(StaffPage):
    done = BooleanProperty(False)
    level_key = StringProperty("")
    level_values = DictProperty({})

    def reset(self) -> None:
        self.done = False

    def refresh(self) -> None:
        self.run(lambda: stock_levels(self.desk()).level("ribbon"), self._show)

    def _show(self, level: Any) -> None:
        self.level_key = level.message_key
        self.level_values = (
            {"value": level.value, "capacity": level.capacity} if level.value is not None else {}
        )

    def confirm(self) -> None:
        session = self.session
        if session is None:
            return
        self.run(lambda: change_ribbon(self.desk(), session), self._done)

    def _done(self, result: Any) -> None:
        self.done = True
        key = "staffpage.ribbon.done" if result.ok else "staffpage.ribbon.still_low"
        self.say(key, "ok" if result.ok else "warn", remaining=result.remaining, capacity=result.capacity)
        self.refresh()


class StaffPaperPage(StaffPage):
    done = BooleanProperty(False)
    paper_key = StringProperty("")

    def reset(self) -> None:
        self.done = False

    def refresh(self) -> None:
        self.run(
            lambda: stock_levels(self.desk()).level("paper"),
            lambda level: setattr(self, "paper_key", level.message_key),
        )

    def confirm(self) -> None:
        session = self.session
        if session is None:
            return
        self.run(lambda: change_paper(self.desk(), session), self._done)

    def _done(self, result: Any) -> None:
        self.done = True
        if result.ok:
            self.say("staffpage.paper.done", "ok")
        else:
            self.say(
                "staffpage.paper.not_ok",
                "warn",
                state=_app().t(f"staffpage.paper_state.{result.state.value}"),
            )
        self.refresh()


# --------------------------------------------------------------------------- reject bin


class StaffRejectBinPage(StaffPage):
    card_count = NumericProperty(0)
    emptied = BooleanProperty(False)
    can_reprint = BooleanProperty(False)

    def reset(self) -> None:
        self.emptied = False
        self.can_reprint = False
        self._slip: Any = None

    def refresh(self) -> None:
        self.run(lambda: reject_bin_contents(self.desk()), self._show)

    def _show(self, cards: list[Any]) -> None:
        box = self.ids.cards
        box.clear_widgets()
        for card in cards:
            box.add_widget(
                ListRow(
                    text_key="staffpage.bin.row",
                    text_values={
                        "card": card.card_number,
                        "reason": _app().t(f"ledger.reason.{card.reason}") if card.reason else "",
                        "time": _local(card.at),
                    },
                )
            )
        self.card_count = len(cards)

    def confirm(self) -> None:
        session = self.session
        if session is None or self.card_count == 0:
            return
        self.run(lambda: empty_reject_bin(self.desk(), session), self._done)

    def _done(self, result: Any) -> None:
        self.emptied = True
        self._slip = result.slip
        self.can_reprint = result.slip is not None
        if not result.cards:
            self.say("staffpage.bin.empty", "info")
        elif result.printed.printed:
            self.say("staffpage.bin.done", "ok", count=len(result.cards), file=result.files.json_path.name)
        else:
            self.say(
                "staffpage.bin.not_printed",
                "warn",
                count=len(result.cards),
                reason=_app().t(result.printed.error_key or "staffpage.error_unexpected"),
                file=result.files.json_path.name,
            )
        if result.discrepancy is not None:
            printed = "staffpage.bin.printed_yes" if result.printed.printed else "staffpage.bin.printed_no"
            self.say(
                "staffpage.bin.sensor_mismatch", "warn", count=len(result.cards), printed=_app().t(printed)
            )
        self.refresh()

    def reprint(self) -> None:
        session, slip = self.session, self._slip
        if session is None or slip is None:
            return
        self.run(lambda: reprint(self.desk(), session, slip), self._reprinted)

    def _reprinted(self, outcome: Any) -> None:
        if outcome.printed:
            self.say("staffpage.reprinted", "ok")
        else:
            self.say(
                "staffpage.not_reprinted",
                "warn",
                reason=_app().t(outcome.error_key or "staffpage.error_unexpected"),
            )


# --------------------------------------------------------------------------- count and reconcile


class StaffReconcilePage(StaffPage):
    stage = OptionProperty(
        "period", options=["period", "hopper", "bin", "result", "reviewer_id", "reviewer_password", "closed"]
    )
    period = StringProperty("shift")
    hopper_count = StringProperty("")
    bin_count = StringProperty("")
    balanced = BooleanProperty(True)
    reviewer_id = StringProperty("")
    can_reprint = BooleanProperty(False)

    def on_kv_post(self, base_widget: Any) -> None:
        self._panels = panels_of(self.ids.right, report=self.ids.report_view)
        self.on_stage(self, self.stage)

    def on_stage(self, _page: Any, stage: str) -> None:
        if hasattr(self, "_panels"):
            show_only(self.ids.right, self._panels, "report" if stage in ("result", "closed") else "keypad")

    def reset(self) -> None:
        self.stage = "period"
        self.hopper_count = self.bin_count = self.reviewer_id = ""
        self.ids.keypad.value = ""
        self.ids.report.clear_widgets()
        self.can_reprint = False
        self._slip: Any = None

    def choose_period(self, period: str) -> None:
        self.period = period
        self.stage = "hopper"
        self.ids.keypad.value = ""
        self.say("")

    def recount(self) -> None:
        self.stage = "hopper"
        self.hopper_count = self.bin_count = ""
        self.ids.keypad.value = ""
        self.say("")

    def start_close(self) -> None:
        self.stage = "reviewer_id"
        self.reviewer_id = ""
        self.ids.keypad.value = ""
        self.say("staffpage.reconcile.reviewer_hint", "info")

    def entered(self, value: str) -> None:
        if self.busy or not value:
            return
        keypad = self.ids.keypad
        keypad.value = ""
        if self.stage == "hopper":
            self.hopper_count = value
            self.stage = "bin"
        elif self.stage == "bin":
            self.bin_count = value
            self._reconcile()
        elif self.stage == "reviewer_id":
            self.reviewer_id = value
            self.stage = "reviewer_password"
        elif self.stage == "reviewer_password":
            self._close(value)

    def _reconcile(self) -> None:
        session = self.session
        if session is None:
            return
        counted = StockCount(hopper=int(self.hopper_count), reject_bin=int(self.bin_count))
        period = self.period

        def work() -> tuple[Reconciliation, Any]:
            desk = self.desk()
            result = reconcile(desk, session, counted)
            return result, period_report(desk, period)

        self.run(work, self._reconciled, failed=lambda _e: setattr(self, "stage", "hopper"))

    def _reconciled(self, outcome: tuple[Reconciliation, Any]) -> None:
        result, report = outcome
        self.stage = "result"
        self.balanced = result.balanced
        self._show_report(report)
        if result.balanced:
            self.say("staffpage.reconcile.balanced", "ok", total=result.observed.total)
        else:
            e, o = result.expected, result.observed
            self.say(
                "staffpage.reconcile.discrepancy",
                "error",
                expected_hopper=e.hopper,
                counted_hopper=o.hopper,
                expected_bin=e.reject_bin,
                counted_bin=o.reject_bin,
            )

    def _show_report(self, report: Any) -> None:
        box = self.ids.report
        box.clear_widgets()
        lines = [
            ("staffpage.report.period", "", f"staffpage.period.{report.period}"),
            ("ledger.slip.opening", str(report.opening), ""),
            ("ledger.slip.restocked", str(len(report.restocked)), ""),
            ("ledger.slip.issued", str(len(report.issued)), ""),
            ("ledger.slip.spoiled", str(len(report.spoiled)), ""),
            (
                "ledger.slip.handed_over",
                str(len(report.handed_over) + len(report.destroyed) + len(report.returned)),
                "",
            ),
            ("ledger.slip.closing", str(report.closing), ""),
            ("ledger.slip.counted", "—" if report.counted is None else str(report.counted.total), ""),
            ("ledger.slip.open_discrepancies", str(len(report.open_discrepancies)), ""),
        ]
        for label, value, value_key in lines:
            box.add_widget(
                InfoLine(
                    label_key=label,
                    value=value,
                    value_key=value_key,
                    strong=label in ("ledger.slip.closing", "ledger.slip.counted"),
                )
            )

    def _close(self, password: str) -> None:
        session, reviewer_id, period = self.session, self.reviewer_id, self.period
        if session is None:
            return

        def work() -> Any:
            desk = self.desk()
            reviewer = authorize(desk, reviewer_id, password, (Role.STAFF, Role.SUPERVISOR))
            return close_period(desk, session, period, reviewer=reviewer)

        def failed(error: Exception) -> None:
            if isinstance(error, LoginRefused):
                self.stage = "reviewer_id"
            else:
                self.stage = "result"

        self.run(work, self._closed, failed=failed)

    def _closed(self, result: Any) -> None:
        self.stage = "closed"
        self._slip = result.slip
        self.can_reprint = True
        values = {
            "operator": result.closing.operator,
            "reviewer": result.closing.reviewer,
            "file": result.files.json_path.name,
        }
        if result.printed.printed:
            self.say("staffpage.reconcile.closed", "ok", **values)
        else:
            self.say(
                "staffpage.reconcile.closed_not_printed",
                "warn",
                reason=_app().t(result.printed.error_key or "staffpage.error_unexpected"),
                **values,
            )

    def reprint(self) -> None:
        session, slip = self.session, self._slip
        if session is None or slip is None:
            return
        self.run(
            lambda: reprint(self.desk(), session, slip),
            lambda o: (
                self.say("staffpage.reprinted", "ok")
                if o.printed
                else self.say(
                    "staffpage.not_reprinted",
                    "warn",
                    reason=_app().t(o.error_key or "staffpage.error_unexpected"),
                )
            ),
        )

    def open_discrepancies_page(self) -> None:
        _app().open_page("staff_discrepancies")


# --------------------------------------------------------------------------- discrepancies


class StaffDiscrepancyPage(StaffPage):
    """Open discrepancies (未结差错); a supervisor notes and resolves one. A staff member's session
    asks the supervisor to sign in here (on the keypad) for this page visit only."""

    stage = OptionProperty("list", options=["list", "auth_id", "auth_password", "note", "resolve"])
    selected = NumericProperty(0)
    selected_noted = BooleanProperty(False)
    open_count = NumericProperty(0)
    supervisor_id = StringProperty("")
    auth_id = StringProperty("")

    def on_kv_post(self, base_widget: Any) -> None:
        self._panels = panels_of(self.ids.right, options=self.ids.options)
        self.on_stage(self, self.stage)

    def on_stage(self, _page: Any, stage: str) -> None:
        if hasattr(self, "_panels"):
            wanted = (
                "keypad"
                if stage in ("auth_id", "auth_password")
                else "options"
                if stage in ("note", "resolve")
                else None
            )
            show_only(self.ids.right, self._panels, wanted)

    def reset(self) -> None:
        self.stage = "list"
        self.selected = 0
        self._noted: dict[int, bool] = {}
        self.auth_id = ""
        self.ids.keypad.value = ""
        self._supervisor: StaffSession | None = None
        self.supervisor_id = ""
        session = self.session
        if session is not None and session.role is Role.SUPERVISOR:
            self._supervisor = session
            self.supervisor_id = session.staff_id

    def on_leave(self, *args: object) -> None:
        # A supervisor signed in on this page for this visit only.
        self._supervisor = None
        self.supervisor_id = ""

    def refresh(self) -> None:
        self.run(lambda: open_discrepancies(self.desk()), self._show)

    def _show(self, found: list[Any]) -> None:
        box = self.ids.rows
        box.clear_widgets()
        self._noted = {d.discrepancy_id: d.note is not None for d in found}
        for d in found:
            row = ListRow(
                text_key="staffpage.discrepancy.row_noted" if d.note else "staffpage.discrepancy.row",
                text_values={
                    "id": d.discrepancy_id,
                    "time": _local(d.detected_at),
                    "operator": d.operator,
                    "expected_hopper": d.expected["hopper"],
                    "counted_hopper": d.observed["hopper"],
                    "expected_bin": d.expected["reject_bin"],
                    "counted_bin": d.observed["reject_bin"],
                    "source": _app().t(f"staffpage.count_source.{d.source.value}"),
                    "note": d.note or "",
                    "noted_by": d.noted_by or "",
                },
                button_key="staffpage.discrepancy.choose",
                button_choice=f"discrepancy:{d.discrepancy_id}",
                selected=d.discrepancy_id == self.selected,
            )
            row.on_choose = lambda i=d.discrepancy_id: self.choose(i)
            box.add_widget(row)
        self.open_count = len(found)
        if self.selected and self.selected not in self._noted:
            self.selected = 0
            self.stage = "list"

    def choose(self, discrepancy_id: int) -> None:
        self.selected = discrepancy_id
        self.selected_noted = self._noted.get(discrepancy_id, False)
        for row in self.ids.rows.children:
            row.selected = row.button_choice == f"discrepancy:{discrepancy_id}"
        if self._supervisor is None:
            self.stage = "auth_id"
            self.ids.keypad.value = ""
            self.say("")
        else:
            self.stage = "resolve" if self.selected_noted else "note"
            self.say("")

    def entered(self, value: str) -> None:
        if self.busy or not value:
            return
        self.ids.keypad.value = ""
        if self.stage == "auth_id":
            self.auth_id = value
            self.stage = "auth_password"
        elif self.stage == "auth_password":
            staff_id = self.auth_id
            self.run(
                lambda: authorize(self.desk(), staff_id, value, (Role.SUPERVISOR,)),
                self._authorized,
                failed=lambda _e: setattr(self, "stage", "auth_id"),
            )

    def _authorized(self, supervisor: StaffSession) -> None:
        self._supervisor = supervisor
        self.supervisor_id = supervisor.staff_id
        self.stage = "resolve" if self.selected_noted else "note"
        self.say("staffpage.discrepancy.supervisor_in", "ok", staff_id=supervisor.staff_id)

    def note(self, key: str) -> None:
        supervisor, discrepancy_id = self._supervisor, self.selected
        if supervisor is None or not discrepancy_id:
            return

        def work() -> Any:
            desk = self.desk()
            return note_discrepancy(desk, supervisor, discrepancy_id, desk.text(f"staffpage.note.{key}"))

        self.run(work, self._noted_done)

    def _noted_done(self, d: Any) -> None:
        self.selected_noted = True
        self.stage = "resolve"
        self.say("staffpage.discrepancy.noted", "ok", id=d.discrepancy_id)
        self.refresh()

    def resolve(self, key: str) -> None:
        supervisor, discrepancy_id = self._supervisor, self.selected
        if supervisor is None or not discrepancy_id:
            return

        def work() -> Any:
            desk = self.desk()
            return resolve_discrepancy(
                desk, supervisor, discrepancy_id, desk.text(f"staffpage.resolution.{key}")
            )

        self.run(work, self._resolved)

    def _resolved(self, d: Any) -> None:
        self.selected = 0
        self.stage = "list"
        self.say("staffpage.discrepancy.resolved", "ok", id=d.discrepancy_id)
        self.refresh()


# --------------------------------------------------------------------------- PSAM


class StaffPsamPage(StaffPage):
    stage = OptionProperty("view", options=["view", "retire"])
    registered = BooleanProperty(False)
    terminal_number = StringProperty("")
    psam_serial = StringProperty("")
    registered_text = StringProperty("")
    uses = NumericProperty(0)
    slot_terminal = StringProperty("")
    slot_error_key = StringProperty("")
    slot_state_key = StringProperty("")

    def reset(self) -> None:
        self.stage = "view"

    def refresh(self) -> None:
        self.run(lambda: psam_view(self.desk()), self._show)

    def _show(self, view: Any) -> None:
        record = view.registered
        self.registered = record is not None
        self.terminal_number = record.terminal_number if record else ""
        self.psam_serial = record.psam_serial if record else ""
        self.registered_text = f"{_local(record.registered_at)}  {record.registered_by}" if record else ""
        self.uses = view.uses
        self.slot_terminal = view.in_slot.terminal_number if view.in_slot else ""
        self.slot_error_key = view.slot_error_key or ""
        match = view.slot_matches
        self.slot_state_key = (
            "staffpage.psam.slot_unknown"
            if view.in_slot is None
            else "staffpage.psam.slot_unregistered"
            if match is None
            else "staffpage.psam.slot_matches"
            if match
            else "staffpage.psam.slot_differs"
        )

    def register(self) -> None:
        session = self.session
        if session is None:
            return
        self.run(lambda: register_psam(self.desk(), session), self._registered)

    def _registered(self, record: Any) -> None:
        self.say("staffpage.psam.registered_done", "ok", terminal=record.terminal_number)
        self.refresh()

    def start_retire(self) -> None:
        self.stage = "retire"
        self.say("")

    def retire(self, key: str) -> None:
        session = self.session
        if session is None:
            return

        def work() -> Any:
            desk = self.desk()
            return retire_psam(desk, session, desk.text(f"staffpage.psam.reason.{key}"))

        self.run(work, self._retired)

    def _retired(self, destruction: Any) -> None:
        self.stage = "view"
        self.say(
            "staffpage.psam.retired_done",
            "ok",
            what=destruction.what,
            time=_local(destruction.at),
            why=destruction.why,
            who=destruction.who,
        )
        self.refresh()


SCREENS: dict[str, type[Screen]] = {
    "staff_levels": StaffLevelsPage,
    "staff_restock": StaffRestockPage,
    "staff_ribbon": StaffRibbonPage,
    "staff_paper": StaffPaperPage,
    "staff_reject_bin": StaffRejectBinPage,
    "staff_reconcile": StaffReconcilePage,
    "staff_discrepancies": StaffDiscrepancyPage,
    "staff_psam": StaffPsamPage,
}

__all__ = ["KV_FILES", "MENU_PAGES", "SCREENS"]
