"""Scripted staff scenarios (网点工作人员: 补卡、清废卡箱、盘点、日结) for ``kiosk demo --headless --json
--scenario NAME``: a **scripted staff member** goes through the real staff screens (the hidden
corner of the home screen, the staff login on the on-screen keypad, the menu and its pages), with
scripted citizens' visits in between, as in :mod:`kiosk.commands.scenarios`.

The day, as a branch does it:

1. The kiosk starts the day with 20 blank cards carried over from yesterday (A00000001–A00000020,
   registered the day before: :func:`stock_from_yesterday`).
2. Staff member 1001 signs in and restocks 50 cards (A00000021–A00000070) by number range, then
   signs out.
3. A citizen renews a card (换领: one card issued); the next citizen's first card jams in the
   printer (one card spoiled into the reject bin, one-time notice).
4. Staff member 1001 signs in again, empties the reject bin (the handover list is printed), counts
   what is physically in the hopper and the bin (the simulated printer's cards, as the staff
   member's eyes see them), and closes the day with staff member 1002 signing in as reviewer (复核).

``staff_restock_and_reconcile`` counts right: the day closes balanced (``ledger_reconciled``).
``staff_count_mismatch`` counts one card short: the count becomes an open discrepancy, the day is
closed as not balanced, supervisor 2001 signs in on the discrepancy page and notes "card missing";
the discrepancy stays open (``discrepancy_open``).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from kiosk.commands.scenarios import SCENARIOS, Scenario, ScriptedCitizen, scenario
from kiosk.config import KioskConfig
from kiosk.staff import Role

# Demo accounts, as ``kiosk staff add ID --role …`` would create them (fictitious passwords).
STAFF_ACCOUNTS: dict[str, tuple[Role, str]] = {
    "1001": (Role.STAFF, "111111"),  # the operator (经办人)
    "1002": (Role.STAFF, "222222"),  # the reviewer (复核人)
    "2001": (Role.SUPERVISOR, "999999"),  # the supervisor (主管)
}
CARRIED_OVER = ("A00000001", "A00000020")  # yesterday's closing stock
RESTOCK = ("A00000021", "A00000070")  # the 50 cards staff put in the hopper today


def stock_from_yesterday(config: KioskConfig) -> None:
    """``prepare`` hook: on a fresh state, the blank cards carried over from the day before are
    registered (yesterday, by operator 'demo-setup'), so today opens with them and the demo does
    not fill the hopper itself."""
    from kiosk.app import state_components
    from kiosk.journal import utc_now
    from kiosk.ledger import CardLedger, card_range
    from kiosk.storage import open_state_db

    conn = open_state_db(config.resolve(config.kiosk.state_dir), state_components())
    try:
        ledger = CardLedger(conn, clock=lambda: utc_now() - timedelta(days=1))
        if not ledger.movements():
            ledger.register_cards(card_range(*CARRIED_OVER), operator="demo-setup")
    finally:
        conn.close()


def add_staff_accounts(kiosk: Any) -> None:
    """``setup`` hook: the branch's staff accounts (salted slow hashes, as ``kiosk staff add``)."""
    for staff_id, (role, password) in STAFF_ACCOUNTS.items():
        kiosk.staff.add(staff_id, role, password)


@dataclass(frozen=True)
class StaffPlan:
    """What the scripted staff member does differently from one scenario to the other."""

    count_short_by: int = 0  # the hopper is counted this many cards short
    supervisor_note: str | None = None  # the note a supervisor writes on the count's discrepancy
    visits: tuple[str, ...] = ("renewal", "card_jam")  # the citizens' scenarios of the day, in order


class StaffStepFailed(RuntimeError):
    """A staff page did not end as the script expects (its message is in the text)."""


class ScriptedStaff(ScriptedCitizen):
    """A staff member who touches the real staff screens (synthetic touches, like the citizen)."""

    def __init__(self, ui: Any, kiosk: Any, scenario: Scenario, *, fast: bool, log: list[str],
                 plan: StaffPlan) -> None:
        super().__init__(ui, kiosk, scenario, fast=fast, log=log)
        self.fast = fast
        self.plan = plan
        self.think = 0.0 if fast else 0.4
        self.phases: list[dict[str, Any]] = []
        self.visits: list[dict[str, Any]] = []

    # -- the day ---------------------------------------------------------------------------------
    def run(self) -> None:
        try:
            self._wait_home()
            self.business_touched_at = time.monotonic()
            self._phase("sign_in", lambda: self._sign_in("1001"))
            self._phase("restock", self._restock)
            self._phase("sign_out", self._sign_out)
            for name in self.plan.visits:
                self._phase(f"visit:{name}", lambda name=name: self._citizen_visit(name))
            self._phase("sign_in", lambda: self._sign_in("1001"))
            self._phase("empty_reject_bin", self._empty_reject_bin)
            self._phase("count", self._count)
            self._phase("close_day", self._close_day)
            if self.plan.supervisor_note is not None:
                self._phase("supervisor_note", self._supervisor_note)
            self._phase("sign_out", self._sign_out)
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.done.set()

    def _phase(self, name: str, action: Callable[[], None]) -> None:
        started = time.monotonic()
        try:
            action()
        except Exception:
            self.phases.append({"name": name, "seconds": round(time.monotonic() - started, 3), "result": "failed"})
            raise
        self.phases.append({"name": name, "seconds": round(time.monotonic() - started, 3), "result": "done"})

    # -- what the staff member does --------------------------------------------------------------
    def _sign_in(self, staff_id: str) -> None:
        self._wait_home()
        self.pause()
        self._tap_hidden_corner()
        self._wait(lambda: self.ui.manager.current == "staff_login", "the staff login")
        self._seen_screen("staff_login")
        self._keypad(staff_id)
        self._keypad(STAFF_ACCOUNTS[staff_id][1])
        self._wait(lambda: self.ui.manager.current == "staff_menu", f"the menu after {staff_id} signed in")
        self._seen_screen("staff_menu")
        self.log.append(f"staff {staff_id} signed in")

    def _sign_out(self) -> None:
        self._to_menu()
        self.touch("logout")
        self._wait(lambda: self.ui.manager.current == "home" and self.ui.staff_session is None, "home after sign-out")
        self.log.append("staff signed out")

    def _restock(self) -> None:
        page = self._open("staff_restock")
        prefix = RESTOCK[0].rstrip("0123456789")
        if self._on_ui(lambda: page.prefix) != prefix:
            raise StaffStepFailed(f"the restock page offers prefix {page.prefix!r}, the cards are {prefix}…")
        self._keypad(RESTOCK[0][len(prefix):])
        self._wait(lambda: page.stage == "second", "the last card number")
        self._keypad(RESTOCK[1][len(prefix):])
        self._wait(lambda: page.stage == "confirm", "the restock confirmation")
        self._seen_screen("staff_restock:confirm")
        self.pause()
        self.touch("confirm")
        self._wait(lambda: page.stage == "done" and not page.busy, "the restock")
        self._seen_screen("staff_restock:done")
        self._expect_ok(page, "restock")
        self.log.append(f"restocked {RESTOCK[0]}-{RESTOCK[1]}")

    def _citizen_visit(self, name: str) -> None:
        # Imported here: this module is loaded while kiosk.commands.scenarios is still importing.
        from kiosk.commands.scenarios import mask_card_number

        template = SCENARIOS[name]
        if template.setup is not None:
            template.setup(self.kiosk)  # e.g. the card jam waiting for this visit's card
        citizen = ScriptedCitizen(self.ui, self.kiosk, template, fast=self.fast, log=self.log)
        citizen.on_new_screen = self.on_new_screen
        citizen.visit()
        self.screens.extend(f"{name}:{screen}" for screen in citizen.screens)
        outcome = self.kiosk.core.last_outcome
        produce = dict(outcome.results.get("produce", {}))
        self.visits.append({"scenario": name, "business": template.business, "visit_id": outcome.visit_id,
                            "outcome": outcome.outcome, "reason": outcome.reason,
                            "card_number": mask_card_number(produce.get("card_number"))})
        if outcome.outcome != template.expect or (template.reason is not None and outcome.reason != template.reason):
            raise StaffStepFailed(f"the {name} visit ended {outcome.outcome}/{outcome.reason}, not {template.expect}")

    def _empty_reject_bin(self) -> None:
        page = self._open("staff_reject_bin")
        physical = len(self.kiosk.simulators["cardprinter"].reject_bin)
        shown = self._on_ui(lambda: page.card_count)
        if shown != physical:
            raise StaffStepFailed(f"the page lists {shown} spoiled cards, the bin holds {physical}")
        self.pause()
        self.touch("confirm")
        self._wait(lambda: page.emptied and not page.busy, "the reject bin emptied")
        self._seen_screen("staff_reject_bin:emptied")
        self._expect_ok(page, "empty_reject_bin")
        self.log.append(f"reject bin emptied ({physical} cards handed over)")

    def _count(self) -> None:
        # What the staff member's eyes see: the cards physically in the simulated printer.
        printer = self.kiosk.simulators["cardprinter"]
        hopper = len(printer.hopper) - self.plan.count_short_by
        bin_cards = len(printer.reject_bin)
        page = self._open("staff_reconcile")
        self.touch("period:day")
        self._wait(lambda: page.stage == "hopper", "the hopper count")
        self._keypad(str(hopper))
        self._wait(lambda: page.stage == "bin", "the reject bin count")
        self._keypad(str(bin_cards))
        self._wait(lambda: page.stage == "result" and not page.busy, "the count's result")
        self._seen_screen("staff_reconcile:result")
        balanced = self._on_ui(lambda: page.balanced)
        self.log.append(f"counted hopper={hopper} reject_bin={bin_cards} balanced={balanced}")
        if balanced != (self.plan.count_short_by == 0):
            raise StaffStepFailed(f"the count of {hopper}+{bin_cards} was {'' if balanced else 'not '}balanced")

    def _close_day(self) -> None:
        page = self.ui.manager.get_screen("staff_reconcile")
        self.pause()
        self.touch("close")
        self._wait(lambda: page.stage == "reviewer_id", "the reviewer's sign-in")
        self._keypad("1002")
        self._keypad(STAFF_ACCOUNTS["1002"][1])
        self._wait(lambda: page.stage == "closed" and not page.busy, "the day closed", fail=lambda: page.stage == "result")
        self._seen_screen("staff_reconcile:closed")
        self._expect_ok(page, "close_day")
        self.log.append("day closed, reviewer 1002")

    def _supervisor_note(self) -> None:
        from kiosk.ledger import CountSource

        ledger = self.kiosk.core.services.devices["ledger"]
        mine = [d for d in ledger.open_discrepancies() if d.source is CountSource.STAFF]
        if not mine:
            raise StaffStepFailed("no open discrepancy from the staff count")
        discrepancy = mine[-1].discrepancy_id
        page = self._open("staff_discrepancies")
        self.touch(f"discrepancy:{discrepancy}")
        self._wait(lambda: page.stage == "auth_id", "the supervisor's sign-in")
        self._keypad("2001")
        self._keypad(STAFF_ACCOUNTS["2001"][1])
        self._wait(lambda: page.stage == "note" and not page.busy, "the supervisor's note")
        self.pause()
        self.touch(f"note:{self.plan.supervisor_note}")
        self._wait(lambda: page.stage == "resolve" and not page.busy, "the note recorded")
        self._seen_screen("staff_discrepancies:noted")
        self.log.append(f"supervisor 2001 noted discrepancy {discrepancy}: {self.plan.supervisor_note}; left open")

    # -- hands and eyes --------------------------------------------------------------------------
    def _tap_hidden_corner(self) -> None:
        """Taps the top-left corner of the home screen as many times as it asks (5 within 3 s).

        Each tap is one touch down and up in a single pass of the UI thread: on a busy machine a
        software-drawn frame takes a good part of a second, and a tap spread over several frames
        could let the 3 s window lapse. The corner's own count says whether each tap arrived; a
        lapsed gesture is tried again, as a person would."""
        from screens.touch import SyntheticTouch, settled

        def tap() -> tuple[int, bool] | None:
            home = self.ui.manager.get_screen("home")
            corner = home.ids.corner
            if self.ui.manager.current != "home" or not settled(corner):
                return None
            finger = SyntheticTouch(*corner.to_window(*corner.center))
            finger.down()
            finger.up()
            return len(corner._times), self.ui.manager.current == "staff_login"

        for _attempt in range(3):
            counts = []
            for _ in range(5):
                for _ in range(200):
                    result = self._on_ui(tap)
                    if result is not None:
                        break
                    time.sleep(0.05)
                else:
                    raise StaffStepFailed("the home screen's hidden corner never settled")
                counts.append(result[0])
                if result[1] or self._on_ui(lambda: self.ui.manager.current == "staff_login"):
                    self.log.append(f"hidden corner tapped {len(counts)} times")
                    return
                time.sleep(0.05)
            self.log.append(f"hidden corner: taps counted {counts}, trying again")
            time.sleep(3.5)  # let the corner forget the earlier taps
        raise StaffStepFailed(f"the hidden corner did not open the staff login (taps counted {counts})")

    def _keypad(self, digits: str) -> None:
        self.touch("key:clear")
        for digit in digits:
            self.touch(f"key:{digit}")
        self.touch("key:enter")

    def _to_menu(self) -> None:
        if self._on_ui(lambda: self.ui.manager.current) != "staff_menu":
            self.touch("back")
            self._wait(lambda: self.ui.manager.current == "staff_menu", "the staff menu")

    def _open(self, name: str) -> Any:
        self._to_menu()
        self.pause()
        self.touch(f"page:{name}")
        page = self.ui.manager.get_screen(name)
        self._wait(lambda: self.ui.manager.current == name and not page.busy, f"the page {name}")
        self._seen_screen(name)
        return page

    def _wait(self, condition: Callable[[], bool], what: str, timeout: float = 60.0,
              fail: Callable[[], bool] | None = None) -> None:
        """Waits until ``condition`` (run on the UI thread) holds; a page that says why it cannot
        go on (``fail``) or a timeout raises with the page's message."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._on_ui(condition):
                return
            if fail is not None and self._on_ui(fail):
                break
            time.sleep(0.05)
        raise StaffStepFailed(f"waiting for {what}: {self._page_message()}")

    def _page_message(self) -> str:
        def read() -> str:
            screen = self.ui.manager.current_screen
            key = getattr(screen, "message_key", "") or getattr(screen, "error_key", "")
            text = self.ui.t(key, **getattr(screen, "message_values", {})) if key else ""
            return f"screen {screen.name}: {text or '(no message)'}"

        return str(self._on_ui(read))

    def _expect_ok(self, page: Any, what: str) -> None:
        if self._on_ui(lambda: page.message_kind) != "ok":
            raise StaffStepFailed(f"{what}: {self._page_message()}")

    def _seen_screen(self, name: str) -> None:
        self.screens.append(name)
        if self.on_new_screen is not None:
            self.on_new_screen(name.replace(":", "-"))

    # -- the report ------------------------------------------------------------------------------
    def report_fields(self) -> dict[str, Any]:
        """The day as the ledger holds it: outcome ``ledger_reconciled`` when the day is closed
        balanced with nothing open, ``discrepancy_open`` while a discrepancy is open."""
        from kiosk.ledger import LOCAL_TZ

        services = self.kiosk.core.services
        ledger = services.devices["ledger"]
        report = ledger.period_report("day")
        closing = ledger.last_closing("day")
        closed_today = closing is not None and closing.start == report.start
        open_discrepancies = ledger.open_discrepancies()
        if open_discrepancies:
            outcome = "discrepancy_open"
            reason = "count_mismatch" if any(d.source.value == "staff" for d in open_discrepancies) else "sensor_mismatch"
        elif closed_today and closing is not None and closing.balanced:
            outcome, reason = "ledger_reconciled", None
        else:
            outcome, reason = "not_reconciled", None
        state_dir = self.kiosk.core.config.resolve(self.kiosk.core.config.kiosk.state_dir)
        staff_log = services.devices.get("staff_log")
        issued = [v["card_number"] for v in self.visits if v["outcome"] == "card_issued"]
        return {
            "business": "staff",
            "outcome": outcome,
            "reason": reason,
            "card_number": issued[0] if issued else None,
            "steps": self.phases,
            "visit_id": None,
            "visits": self.visits,
            "ledger": report.as_dict(),
            "closing": closing.as_dict() if closed_today and closing is not None else None,
            "day": report.start.astimezone(LOCAL_TZ).date().isoformat(),
            "staff_actions": [
                {"staff_id": e.staff_id, "action": e.action, "outcome": e.outcome}
                for e in (staff_log.entries() if staff_log is not None else [])
            ],
            "exported": sorted(p.name for p in (state_dir / "reports").glob("*")) if (state_dir / "reports").exists() else [],
        }


def staff_scenario(name: str, expect: str, description: str, plan: StaffPlan, reason: str | None = None) -> Scenario:
    return scenario(Scenario(
        name, "staff", expect, description,
        setup=add_staff_accounts, prepare=stock_from_yesterday, reason=reason,
        actor=functools.partial(ScriptedStaff, plan=plan),
    ))


staff_scenario(
    "staff_restock_and_reconcile", "ledger_reconciled",
    "staff: hidden entry, login, restock 50 cards; a renewal issues a card, a jam spoils one; the reject bin "
    "emptied (handover list printed), the day counted and closed with a reviewer: 帐卡相符",
    StaffPlan(),
)
staff_scenario(
    "staff_count_mismatch", "discrepancy_open",
    "staff: the same day counted one card short: the discrepancy is booked, the day closes unbalanced, a "
    "supervisor notes it and it stays open",
    StaffPlan(count_short_by=1, supervisor_note="card_missing"), reason="count_mismatch",
)
