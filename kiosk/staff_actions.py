"""Staff actions (网点工作人员操作): what branch staff do at the kiosk, as plain core functions the
staff pages (and a scripted staff member) call.

Card stock is accounted for like cash (比照一级现金凭证, DOMAIN.md). Each action takes the
:class:`StaffDesk` (the services and settings it works with) and the signed-in
:class:`~kiosk.staff.StaffSession`, checks the role, does the work through the core's services
(ledger, card printer, receipt printer, PSAM registry), and records who did it twice: in the
``staff_actions`` table of the state database (always) and in the audit chain (when the site key
is installed). Refusals are recorded too.

- :func:`restock` (补卡入库): registers every card by number (a range, a count from the first
  number, or a list) in one transaction, then compares the ledger with the hopper sensor where the
  printer has one: a difference is booked as a discrepancy and returned, never hidden.
- :func:`change_ribbon` (更换色带): the ribbon counter restarts (the printer's own figure where it
  reports one, else the kiosk's counter from ``[cardprinter] ribbon_capacity``).
- :func:`change_paper` (更换凭条纸): the paper sensor is read back and must say the roll is fine.
- :func:`empty_reject_bin` (清废卡箱): every spoiled card moves to "handed over" and the handover list
  (废卡交接清单: number and reason) is printed and exported, to go with the cards to central
  destruction.
- :func:`reconcile` (盘点) and :func:`close_period` (交班/日结/月结): the staff's physical count
  against the books; a closing with operator and reviewer, printed and exported (JSON + PNG).
- :func:`note_discrepancy`, :func:`resolve_discrepancy`: a supervisor's note and resolution.
- :func:`register_psam`, :func:`retire_psam`: the PSAM registry (terminal number from the card).
- :func:`stock_levels`: cards, ribbon, paper and reject bin against the configured thresholds, with
  the alerts staff see on screen (and, later, telemetry).

Every action is quick except printing and device polls: the pages run them off the UI thread.
"""

from __future__ import annotations

import enum
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol

from kiosk.devices import DeviceError
from kiosk.devices.receipt import PaperState, StaffReport
from kiosk.devices.smartcard import PsamIdentity
from kiosk.journal import utc_now
from kiosk.ledger import (
    LOCAL_TZ,
    CardLedger,
    CountSource,
    Discrepancy,
    LedgerDiscrepancy,
    LedgerError,
    Movement,
    PeriodClosing,
    PeriodReport,
    Place,
    Reconciliation,
    StockCount,
    card_range,
    check_card_number,
    handover_slip,
    period_slip,
)
from kiosk.psam_registry import PsamDestruction, PsamNotRegistered, PsamRecord, PsamRegistry
from kiosk.staff import Role, StaffSession

log = logging.getLogger(__name__)

STAFF_ACTIONS_SCHEMA: tuple[str, ...] = (
    """
    CREATE TABLE staff_actions (
        id       INTEGER PRIMARY KEY AUTOINCREMENT,
        at       TEXT NOT NULL,
        staff_id TEXT NOT NULL,
        role     TEXT NOT NULL,
        action   TEXT NOT NULL,
        subject  TEXT NOT NULL,
        outcome  TEXT NOT NULL,
        detail   TEXT NOT NULL
    );
    CREATE INDEX staff_actions_by_action ON staff_actions(action, id);
    CREATE TRIGGER staff_actions_no_update BEFORE UPDATE ON staff_actions
        BEGIN SELECT RAISE(ABORT, 'staff actions are append-only'); END;
    CREATE TRIGGER staff_actions_no_delete BEFORE DELETE ON staff_actions
        BEGIN SELECT RAISE(ABORT, 'staff actions are append-only'); END;
    """,
)

STAFF_ROLES = (Role.STAFF, Role.SUPERVISOR)


# --------------------------------------------------------------------------- errors


class StaffActionError(Exception):
    """Root of the staff actions' refusals: ``code`` for the record, ``message_key`` for the page."""

    code = "staff.action_refused"
    message_key = "staff.action_refused"

    def __init__(self, message: str = "", *, code: str | None = None, message_key: str | None = None) -> None:
        if code:
            self.code = code
        if message_key:
            self.message_key = message_key
        super().__init__(f"{self.code}: {message}" if message else self.code)


class NotPermitted(StaffActionError):
    """The signed-in role may not do this (e.g. a supervisor's note by a staff member)."""

    code = message_key = "staff.not_permitted"


class ServiceMissing(StaffActionError):
    """The device or service the action needs is not configured on this kiosk."""

    code = message_key = "staff.service_missing"


class DeviceUnavailable(StaffActionError):
    """The device did not answer; ``code`` is the device error's code."""

    code = message_key = "staff.device_unavailable"


class BadCardInput(StaffActionError):
    code = message_key = "staff.bad_card_input"


# --------------------------------------------------------------------------- the action record


@dataclass(frozen=True)
class StaffActionEntry:
    entry_id: int
    at: datetime
    staff_id: str
    role: str
    action: str
    subject: str
    outcome: str
    detail: dict[str, Any]


class StaffActionLog:
    """Who did which staff action when (工作人员操作记录), append-only, in the state database."""

    def __init__(self, conn: sqlite3.Connection, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._conn = conn
        self._clock = clock
        self._lock = threading.Lock()

    def record(
        self, staff_id: str, role: str, action: str, subject: str, outcome: str, detail: dict[str, Any]
    ) -> int:
        at = self._clock().isoformat()
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                cursor = self._conn.execute(
                    "INSERT INTO staff_actions(at, staff_id, role, action, subject, outcome, detail)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (at, staff_id, role, action, subject, outcome, json.dumps(detail, ensure_ascii=False)),
                )
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        return int(cursor.lastrowid or 0)

    def entries(self, *, action: str | None = None, staff_id: str | None = None) -> list[StaffActionEntry]:
        clauses, params = [], []
        if action is not None:
            clauses.append("action = ?")
            params.append(action)
        if staff_id is not None:
            clauses.append("staff_id = ?")
            params.append(staff_id)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT id, at, staff_id, role, action, subject, outcome, detail FROM staff_actions {where}"
                " ORDER BY id",
                tuple(params),
            ).fetchall()
        return [
            StaffActionEntry(
                r[0], datetime.fromisoformat(r[1]), r[2], r[3], r[4], r[5], r[6], json.loads(r[7])
            )
            for r in rows
        ]

    def last(self, action: str, outcome: str | None = None) -> StaffActionEntry | None:
        found = [e for e in self.entries(action=action) if outcome is None or e.outcome == outcome]
        return found[-1] if found else None


# --------------------------------------------------------------------------- the desk


class StockHands(Protocol):
    """A stand-in for the staff member's hands on simulated devices (the demo only, marked as
    simulated): puts the restocked cards into the simulated hopper, takes the spoiled cards out
    of the simulated reject bin, fits a new ribbon, loads a new roll. A real kiosk has none."""

    def load_hopper(self, card_numbers: Sequence[str]) -> None: ...

    def empty_reject_bin(self) -> None: ...

    def change_ribbon(self) -> None: ...

    def load_paper(self) -> None: ...


@dataclass(frozen=True)
class LevelThresholds:
    """From ``[cardprinter]``: when staff are alerted."""

    hopper_capacity: int = 100
    hopper_near_empty: int = 10
    reject_bin_capacity: int = 20
    reject_bin_near_full: int = 15
    ribbon_low_percent: int = 10
    ribbon_capacity: int = 200

    @classmethod
    def from_config(cls, config: Any) -> LevelThresholds:
        cp = config.cardprinter
        return cls(
            hopper_capacity=cp.hopper_capacity,
            hopper_near_empty=cp.hopper_near_empty,
            reject_bin_capacity=cp.reject_bin_capacity,
            reject_bin_near_full=cp.reject_bin_near_full,
            ribbon_low_percent=cp.ribbon_low_percent,
            ribbon_capacity=cp.ribbon_capacity,
        )


@dataclass(frozen=True)
class StaffDesk:
    """What the staff actions work with: the core's services (``ledger``, ``staff_log``,
    ``cardprinter``, ``receipt``, ``audit``, ``psam``, ``psam_registry``, ``report_renderer``,
    ``stock_hands``), the kiosk id and the printed language, where exported reports go, the level
    thresholds, the staff accounts (to authorize a reviewer or supervisor) and the clock."""

    services: Any
    kiosk_id: str
    text: Callable[[str], str]
    export_dir: Path
    thresholds: LevelThresholds = LevelThresholds()
    accounts: Any = None
    clock: Callable[[], datetime] = utc_now

    @classmethod
    def of(cls, core: Any, accounts: Any = None) -> StaffDesk:
        """The desk of a running :class:`kiosk.runtime.KioskCore`: reports in the receipt's
        language, exported under ``<state_dir>/reports``."""
        config = core.config
        language = config.receipt.language
        translator = core.translator
        return cls(
            services=core.services,
            kiosk_id=config.kiosk.kiosk_id,
            text=lambda key: translator.text(key, language),
            export_dir=config.resolve(config.kiosk.state_dir) / "reports",
            thresholds=LevelThresholds.from_config(config),
            accounts=accounts,
        )

    def service(self, name: str) -> Any:
        found = self.services.devices.get(name)
        if found is None:
            raise ServiceMissing(f"{name} is not configured", message_key=f"staff.service_missing.{name}")
        return found

    def optional(self, name: str) -> Any:
        return self.services.devices.get(name)

    @property
    def ledger(self) -> CardLedger:
        return self.service("ledger")  # type: ignore[no-any-return]


def _require(session: StaffSession, *roles: Role) -> None:
    if session.role not in roles:
        raise NotPermitted(f"{session.staff_id} ({session.role.value}) may not do this")


def _record(
    desk: StaffDesk,
    session: StaffSession,
    action: str,
    subject: str,
    outcome: str,
    detail: dict[str, Any] | None = None,
) -> None:
    """Writes who did what: the staff action table, then the audit chain when configured."""
    detail = detail or {}
    staff_log = desk.optional("staff_log")
    if staff_log is not None:
        staff_log.record(session.staff_id, session.role.value, action, subject, outcome, detail)
    else:
        log.warning("staff action not recorded in the state database (no staff_log): %s", action)
    audit = desk.optional("audit")
    if audit is not None:
        try:
            audit.append(
                session.staff_id,
                f"staff.{action}",
                subject,
                {"role": session.role.value, "outcome": outcome, **detail},
            )
        except sqlite3.Error:
            # The staff action table holds the record; a broken audit chain is for the engineer.
            log.exception("audit append failed for staff action %s", action)


# --------------------------------------------------------------------------- restock


def cards_for_restock(first: str, *, last: str | None = None, count: int | None = None) -> list[str]:
    """The card numbers of a restock: ``first``…``last`` (号段), or ``count`` cards from ``first``."""
    try:
        check_card_number(first)
        if last is not None and count is None:
            return card_range(first, last)
        if count is not None and last is None:
            if not 1 <= count <= 10000:
                raise BadCardInput("a restock is 1 to 10000 cards")
            head = first.rstrip("0123456789")
            digits = first[len(head) :]
            if not digits:
                raise BadCardInput(f"{first} has no serial digits to count from")
            end = int(digits) + count - 1
            if len(str(end)) > len(digits):
                raise BadCardInput("the count runs past the last number of this width")
            return card_range(first, f"{head}{end:0{len(digits)}d}")
    except LedgerError as exc:
        raise BadCardInput(str(exc)) from exc
    raise BadCardInput("give the last card number or the count, not both")


@dataclass(frozen=True)
class RestockResult:
    registered: tuple[str, ...]
    ledger_hopper: int
    sensor_hopper: int | None  # the printer's hopper count, None where it has no such sensor
    discrepancy: Discrepancy | None  # the ledger and the sensor disagree (booked, stays open)

    @property
    def first(self) -> str:
        return self.registered[0]

    @property
    def last(self) -> str:
        return self.registered[-1]


def restock(
    desk: StaffDesk, session: StaffSession, card_numbers: Iterable[str], *, batch: str | None = None
) -> RestockResult:
    """补卡入库: registers every card into the hopper (all or none, one transaction), then checks
    the ledger against the hopper sensor. After a power cut in the middle, the restock either
    happened whole or not at all: doing it again registers the cards once or is refused as
    already registered."""
    _require(session, *STAFF_ROLES)
    numbers = list(card_numbers)
    subject = f"{numbers[0]}-{numbers[-1]}" if numbers else ""
    try:
        registered = desk.ledger.register_cards(numbers, operator=session.staff_id, batch=batch)
    except LedgerError as exc:
        _record(desk, session, "restock", subject, f"refused:{exc.code}", {"count": len(numbers)})
        raise
    hands = desk.optional("stock_hands")
    if hands is not None:
        hands.load_hopper(registered)
    _record(
        desk,
        session,
        "restock",
        subject,
        "ok",
        {"count": len(registered), "first": registered[0], "last": registered[-1], "batch": batch},
    )
    sensor, discrepancy = _compare_with_sensors(desk, session, "restock")
    return RestockResult(tuple(registered), desk.ledger.balance().expected.hopper, sensor, discrepancy)


def _printer_counters(desk: StaffDesk) -> Any:
    printer = desk.optional("cardprinter")
    if printer is None:
        return None
    try:
        return printer.counters()
    except DeviceError as exc:
        log.warning("card printer counters unavailable: %s", exc.code)
        return None


def _compare_with_sensors(
    desk: StaffDesk, session: StaffSession, why: str
) -> tuple[int | None, Discrepancy | None]:
    """Books the printer's own counts (hopper, reject bin) as a count of source ``printer``; a
    difference becomes an open discrepancy. Returns (hopper sensor, discrepancy)."""
    counters = _printer_counters(desk)
    if counters is None or counters.hopper_count is None:
        return None, None
    expected = desk.ledger.balance().expected
    observed = StockCount(
        hopper=counters.hopper_count,
        reject_bin=expected.reject_bin if counters.reject_bin_count is None else counters.reject_bin_count,
        in_printer=expected.in_printer,
    )
    try:
        desk.ledger.count(observed, source=CountSource.PRINTER, operator=session.staff_id)
    except LedgerDiscrepancy as exc:
        _record(
            desk,
            session,
            "sensor_mismatch",
            why,
            "discrepancy",
            {
                "discrepancy": exc.discrepancy.discrepancy_id,
                "expected": expected.as_dict(),
                "sensor": observed.as_dict(),
            },
        )
        return counters.hopper_count, exc.discrepancy
    return counters.hopper_count, None


# --------------------------------------------------------------------------- consumables


@dataclass(frozen=True)
class RibbonResult:
    remaining: int
    capacity: int
    from_printer: bool  # the printer reports the ribbon left (else the kiosk counts prints)
    ok: bool  # the ribbon now reads above the low threshold


def change_ribbon(desk: StaffDesk, session: StaffSession) -> RibbonResult:
    """更换色带: after staff fitted a new ribbon, the ribbon counter restarts. Where the printer
    reports the ribbon left, its figure must now be above the low threshold (else the ribbon is
    not new or not seen: ``ok`` False)."""
    _require(session, *STAFF_ROLES)
    printer = desk.service("cardprinter")
    hands = desk.optional("stock_hands")
    if hands is not None:
        hands.change_ribbon()
    try:
        counters = printer.counters()
    except DeviceError as exc:
        _record(desk, session, "ribbon_changed", "ribbon", f"refused:{exc.code}")
        raise DeviceUnavailable(str(exc), code=exc.code, message_key=exc.message_key) from exc
    if counters.ribbon_remaining is not None and counters.ribbon_capacity:
        remaining, capacity, from_printer = counters.ribbon_remaining, counters.ribbon_capacity, True
    else:
        remaining = capacity = desk.thresholds.ribbon_capacity
        from_printer = False
    ok = remaining * 100 // capacity > desk.thresholds.ribbon_low_percent
    _record(
        desk,
        session,
        "ribbon_changed",
        "ribbon",
        "ok" if ok else "still_low",
        {
            "cards_printed": counters.cards_printed,
            "remaining": remaining,
            "capacity": capacity,
            "from_printer": from_printer,
        },
    )
    return RibbonResult(remaining, capacity, from_printer, ok)


@dataclass(frozen=True)
class PaperResult:
    state: PaperState
    ok: bool
    error_code: str | None = None


def change_paper(desk: StaffDesk, session: StaffSession) -> PaperResult:
    """更换凭条纸: after staff loaded a new roll, the paper sensor must say the roll is fine."""
    _require(session, *STAFF_ROLES)
    receipt = desk.service("receipt")
    hands = desk.optional("stock_hands")
    if hands is not None:
        hands.load_paper()
    error_code = None
    try:
        state = receipt.paper_state()
    except DeviceError as exc:
        state, error_code = PaperState.UNKNOWN, exc.code
    ok = state is PaperState.ADEQUATE
    _record(
        desk,
        session,
        "paper_changed",
        "paper",
        "ok" if ok else f"paper_{state.value}",
        {"paper": state.value, "error": error_code},
    )
    return PaperResult(state, ok, error_code)


# --------------------------------------------------------------------------- printing and export


@dataclass(frozen=True)
class ExportedFiles:
    json_path: Path
    png_path: Path | None  # None when no renderer is configured


@dataclass(frozen=True)
class PrintOutcome:
    printed: bool
    error_key: str | None = None
    error_code: str | None = None


def print_slip(desk: StaffDesk, slip: StaffReport) -> PrintOutcome:
    """Prints a staff report on the receipt printer; a printer problem is returned, not raised
    (the ledger movement is already booked and the report is exported: staff reprint)."""
    receipt = desk.optional("receipt")
    if receipt is None:
        return PrintOutcome(False, "staff.service_missing.receipt", "staff.service_missing")
    try:
        receipt.print_report(slip)
    except DeviceError as exc:
        log.warning("staff report not printed: %s", exc.code)
        return PrintOutcome(False, exc.message_key, exc.code)
    return PrintOutcome(True)


def reprint(desk: StaffDesk, session: StaffSession, slip: StaffReport) -> PrintOutcome:
    _require(session, *STAFF_ROLES)
    outcome = print_slip(desk, slip)
    _record(desk, session, "reprint", slip.title, "ok" if outcome.printed else f"failed:{outcome.error_code}")
    return outcome


def slip_as_dict(slip: StaffReport) -> dict[str, Any]:
    return {
        "title": slip.title,
        "printed_at": slip.printed_at.isoformat(),
        "kiosk_id": slip.kiosk_id,
        "fields": [list(f) for f in slip.fields],
        "columns": list(slip.columns),
        "rows": [list(r) for r in slip.rows],
        "footer": list(slip.footer),
        "signatures": list(slip.signatures),
    }


def export_slip(desk: StaffDesk, stem: str, slip: StaffReport, data: dict[str, Any]) -> ExportedFiles:
    """Writes ``<stem>-<local time>.json`` (the slip as printed plus ``data``) and, with a
    renderer, the same slip as a receipt PNG. Files are written whole (temp file, fsync, rename)."""
    desk.export_dir.mkdir(parents=True, exist_ok=True)
    stamp = slip.printed_at.astimezone(LOCAL_TZ).strftime("%Y%m%d-%H%M%S")
    base = desk.export_dir / f"{stem}-{stamp}"
    n = 1
    while base.with_suffix(".json").exists():
        n += 1
        base = desk.export_dir / f"{stem}-{stamp}-{n}"
    json_path = base.with_suffix(".json")
    body = json.dumps({"slip": slip_as_dict(slip), **data}, ensure_ascii=False, indent=2, default=str)
    tmp = json_path.with_suffix(".json.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.write(body)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, json_path)
    png_path = None
    renderer = desk.optional("report_renderer")
    if renderer is not None:
        png_path = renderer(slip, base.with_suffix(".png"))
    return ExportedFiles(json_path, png_path)


# --------------------------------------------------------------------------- reject bin


@dataclass(frozen=True)
class SpoiledCard:
    card_number: str
    reason: str  # RejectReason value
    at: datetime
    visit_id: str | None


def reject_bin_contents(desk: StaffDesk) -> list[SpoiledCard]:
    """The spoiled cards the ledger says are in the reject bin, with why each was spoiled."""
    ledger = desk.ledger
    out = []
    for number in ledger.cards_in(Place.REJECT_BIN):
        rejected = [m for m in ledger.movements(number) if m.movement is Movement.REJECTED]
        last = rejected[-1]
        out.append(SpoiledCard(number, last.reason or "", last.at, last.visit_id))
    return out


@dataclass(frozen=True)
class HandoverResult:
    cards: tuple[SpoiledCard, ...]
    slip: StaffReport | None
    printed: PrintOutcome
    files: ExportedFiles | None
    discrepancy: Discrepancy | None = None  # the bin sensor disagreed with the ledger


def empty_reject_bin(
    desk: StaffDesk, session: StaffSession, *, reviewer: str | None = None
) -> HandoverResult:
    """清废卡箱: the spoiled cards go to "handed over" (one transaction), the handover list with
    each card's number and reason is printed and exported, to travel with the cards to central
    destruction (集中销毁)."""
    _require(session, *STAFF_ROLES)
    ledger = desk.ledger
    cards = reject_bin_contents(desk)
    if not cards:
        _record(desk, session, "reject_bin_emptied", "0", "empty")
        return HandoverResult((), None, PrintOutcome(False), None)
    # The bin's own count first: a card missing from the bin is raised before the list is signed.
    _, discrepancy = _compare_with_sensors(desk, session, "empty_reject_bin")
    rejected = [
        [m for m in ledger.movements(c.card_number) if m.movement is Movement.REJECTED][-1] for c in cards
    ]
    numbers = ledger.hand_over([c.card_number for c in cards], operator=session.staff_id, reviewer=reviewer)
    hands = desk.optional("stock_hands")
    if hands is not None:
        hands.empty_reject_bin()
    now = desk.clock()
    slip = handover_slip(
        rejected,
        kiosk_id=desk.kiosk_id,
        operator=session.staff_id,
        printed_at=now,
        text=desk.text,
        reviewer=reviewer,
    )
    printed = print_slip(desk, slip)
    files = export_slip(
        desk,
        "handover",
        slip,
        {
            "kind": "handover",
            "operator": session.staff_id,
            "reviewer": reviewer,
            "cards": [
                {
                    "card_number": c.card_number,
                    "reason": c.reason,
                    "rejected_at": c.at.isoformat(),
                    "visit_id": c.visit_id,
                }
                for c in cards
            ],
        },
    )
    _record(
        desk,
        session,
        "reject_bin_emptied",
        str(len(numbers)),
        "ok" if printed.printed else "not_printed",
        {
            "cards": numbers,
            "reviewer": reviewer,
            "file": str(files.json_path),
            "discrepancy": discrepancy.discrepancy_id if discrepancy else None,
        },
    )
    return HandoverResult(tuple(cards), slip, printed, files, discrepancy)


# --------------------------------------------------------------------------- count and closing


def reconcile(desk: StaffDesk, session: StaffSession, counted: StockCount) -> Reconciliation:
    """盘点: the physical count staff entered against the books. A difference is booked as a
    discrepancy (returned in the result, open until a supervisor resolves it)."""
    _require(session, *STAFF_ROLES)
    try:
        result = desk.ledger.count(counted, source=CountSource.STAFF, operator=session.staff_id)
    except LedgerDiscrepancy as exc:
        d = exc.discrepancy
        _record(
            desk,
            session,
            "count",
            str(counted.total),
            "discrepancy",
            {"counted": counted.as_dict(), "expected": d.expected, "discrepancy": d.discrepancy_id},
        )
        return Reconciliation(d.count_id, counted, StockCount(**d.expected), False, d)
    _record(desk, session, "count", str(counted.total), "balanced", {"counted": counted.as_dict()})
    return result


def period_report(desk: StaffDesk, period: str, day: date | None = None) -> PeriodReport:
    return desk.ledger.period_report(period, day)


@dataclass(frozen=True)
class ClosingResult:
    closing: PeriodClosing
    report: PeriodReport
    slip: StaffReport
    printed: PrintOutcome
    files: ExportedFiles


def close_period(
    desk: StaffDesk,
    session: StaffSession,
    period: str,
    *,
    reviewer: StaffSession,
    day: date | None = None,
) -> ClosingResult:
    """交班/日结/月结: closes the shift, day or month with the signed-in operator and a reviewer
    (复核人, another staff member or a supervisor who signed in for it), prints the
    reconciliation slip and exports it (JSON + PNG). Needs a staff count in the period first."""
    _require(session, *STAFF_ROLES)
    _require(reviewer, *STAFF_ROLES)
    report = desk.ledger.period_report(period, day)
    try:
        closing = desk.ledger.close_period(report, operator=session.staff_id, reviewer=reviewer.staff_id)
    except LedgerError as exc:
        _record(
            desk, session, "period_closed", period, f"refused:{exc.code}", {"reviewer": reviewer.staff_id}
        )
        raise
    slip = period_slip(
        report,
        kiosk_id=desk.kiosk_id,
        printed_at=desk.clock(),
        text=desk.text,
        operator=session.staff_id,
        reviewer=reviewer.staff_id,
    )
    printed = print_slip(desk, slip)
    stem = f"{period}-{report.start.astimezone(LOCAL_TZ):%Y%m%d}" if period != "shift" else "shift"
    files = export_slip(
        desk, stem, slip, {"kind": "period", "report": report.as_dict(), "closing": closing.as_dict()}
    )
    _record(
        desk,
        session,
        "period_closed",
        period,
        "ok" if printed.printed else "not_printed",
        {
            "closing": closing.closing_id,
            "reviewer": reviewer.staff_id,
            "balanced": report.balanced,
            "file": str(files.json_path),
        },
    )
    return ClosingResult(closing, report, slip, printed, files)


def open_discrepancies(desk: StaffDesk) -> list[Discrepancy]:
    return desk.ledger.open_discrepancies()


def note_discrepancy(
    desk: StaffDesk, supervisor: StaffSession, discrepancy_id: int, note: str
) -> Discrepancy:
    """主管说明: only a supervisor writes it; the discrepancy stays open."""
    _require(supervisor, Role.SUPERVISOR)
    found = desk.ledger.note_discrepancy(discrepancy_id, note, supervisor=supervisor.staff_id)
    _record(desk, supervisor, "discrepancy_noted", str(discrepancy_id), "ok", {"note": note})
    return found


def resolve_discrepancy(
    desk: StaffDesk, supervisor: StaffSession, discrepancy_id: int, resolution: str
) -> Discrepancy:
    """Closes a discrepancy (a supervisor, after a note)."""
    _require(supervisor, Role.SUPERVISOR)
    try:
        found = desk.ledger.resolve_discrepancy(discrepancy_id, resolution, supervisor=supervisor.staff_id)
    except LedgerError as exc:
        _record(desk, supervisor, "discrepancy_resolved", str(discrepancy_id), f"refused:{exc.code}")
        raise
    _record(desk, supervisor, "discrepancy_resolved", str(discrepancy_id), "ok", {"resolution": resolution})
    return found


def authorize(desk: StaffDesk, staff_id: str, password: str, roles: tuple[Role, ...]) -> StaffSession:
    """A second person signs in on the open menu (a reviewer, a supervisor): the same password
    check, lockout and login record as the entry. Raises :class:`kiosk.staff.LoginRefused`."""
    if desk.accounts is None:
        raise ServiceMissing("no staff accounts", message_key="staff.no_accounts")
    return desk.accounts.login(staff_id, password, roles)  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- PSAM


@dataclass(frozen=True)
class PsamView:
    """The registry's PSAM and the card in the slot, for the PSAM page."""

    registered: PsamRecord | None
    uses: int
    in_slot: PsamIdentity | None
    slot_error_key: str | None

    @property
    def slot_matches(self) -> bool | None:
        if self.registered is None or self.in_slot is None:
            return None
        return (self.registered.terminal_number, self.registered.psam_serial) == (
            self.in_slot.terminal_number,
            self.in_slot.psam_serial,
        )


def psam_view(desk: StaffDesk) -> PsamView:
    registry: PsamRegistry = desk.service("psam_registry")
    record = registry.active()
    in_slot, error_key = None, None
    psam = desk.optional("psam")
    if psam is None:
        error_key = "staff.service_missing.psam"
    else:
        try:
            in_slot = psam.identity()
        except DeviceError as exc:
            error_key = exc.message_key
    return PsamView(record, registry.use_count(record.psam_id) if record else 0, in_slot, error_key)


def register_psam(desk: StaffDesk, session: StaffSession) -> PsamRecord:
    """PSAM登记: reads the terminal number and serial from the PSAM in the slot and registers it."""
    _require(session, *STAFF_ROLES)
    registry: PsamRegistry = desk.service("psam_registry")
    psam = desk.service("psam")
    try:
        identity = psam.identity()
    except DeviceError as exc:
        _record(desk, session, "psam_registered", "", f"refused:{exc.code}")
        raise DeviceUnavailable(str(exc), code=exc.code, message_key=exc.message_key) from exc
    try:
        record = registry.register(identity, operator=session.staff_id)
    except Exception as exc:
        _record(
            desk,
            session,
            "psam_registered",
            identity.terminal_number,
            f"refused:{getattr(exc, 'code', 'error')}",
        )
        raise
    _record(
        desk,
        session,
        "psam_registered",
        record.terminal_number,
        "ok",
        {"psam_serial": record.psam_serial, "psam_id": record.psam_id},
    )
    return record


def retire_psam(
    desk: StaffDesk, session: StaffSession, why: str, *, witness: str | None = None
) -> PsamDestruction:
    """PSAM停用: retires the registered PSAM with a destruction record (what, when, why, who)."""
    _require(session, *STAFF_ROLES)
    registry: PsamRegistry = desk.service("psam_registry")
    record = registry.active()
    if record is None:
        raise PsamNotRegistered("no PSAM is registered")
    destruction = registry.retire(record.psam_id, why=why, operator=session.staff_id, witness=witness)
    _record(
        desk,
        session,
        "psam_retired",
        record.terminal_number,
        "ok",
        {"why": why, "witness": witness, "destruction": destruction.destruction_id},
    )
    return destruction


# --------------------------------------------------------------------------- levels at a glance


class LevelState(enum.Enum):
    OK = "ok"
    LOW = "low"  # cards low, ribbon low, paper near end, reject bin nearly full, sensor mismatch
    OUT = "out"  # no cards, ribbon out, paper out, reject bin full
    UNKNOWN = "unknown"  # the device did not answer


@dataclass(frozen=True)
class Level:
    """One consumable: ``name`` is ``cards``, ``ribbon``, ``paper`` or ``reject_bin``; ``value``
    of ``capacity`` (paper: 2 fine, 1 near end, 0 out); ``sensor`` the device's own count where it
    has one; ``message_key`` what the page says."""

    name: str
    state: LevelState
    value: int | None
    capacity: int | None
    message_key: str
    sensor: int | None = None

    @property
    def alert_code(self) -> str:
        """The machine code for telemetry (``staff.cards_low``)."""
        return f"staff.{self.name}_{self.state.value}"

    @property
    def fraction(self) -> float:
        if self.value is None or not self.capacity:
            return 0.0
        return max(0.0, min(1.0, self.value / self.capacity))


@dataclass(frozen=True)
class StockLevels:
    levels: tuple[Level, ...]

    @property
    def alerts(self) -> tuple[Level, ...]:
        return tuple(level for level in self.levels if level.state is not LevelState.OK)

    def level(self, name: str) -> Level:
        return next(level for level in self.levels if level.name == name)


def stock_levels(desk: StaffDesk) -> StockLevels:
    """Cards left, ribbon left, paper state and reject bin fill, against ``[cardprinter]``'s
    thresholds. The ledger is the count of cards; the printer's sensor count is shown beside it
    and a difference is an alert."""
    t = desk.thresholds
    counters = _printer_counters(desk)
    expected = desk.ledger.balance().expected if desk.optional("ledger") is not None else None

    # Cards in the hopper (ledger) and the hopper sensor.
    if expected is None:
        cards = Level("cards", LevelState.UNKNOWN, None, t.hopper_capacity, "staffpage.level.unknown")
    else:
        hopper = expected.hopper
        sensor = counters.hopper_count if counters is not None else None
        if hopper == 0:
            state, key = LevelState.OUT, "staffpage.level.cards_out"
        elif sensor is not None and sensor != hopper:
            state, key = LevelState.LOW, "staffpage.level.cards_sensor_mismatch"
        elif hopper <= t.hopper_near_empty:
            state, key = LevelState.LOW, "staffpage.level.cards_low"
        else:
            state, key = LevelState.OK, "staffpage.level.cards_ok"
        cards = Level("cards", state, hopper, t.hopper_capacity, key, sensor)

    # Ribbon: the printer's figure, else the kiosk's counter since the last ribbon change.
    if counters is None:
        ribbon = Level("ribbon", LevelState.UNKNOWN, None, None, "staffpage.level.unknown")
    else:
        if counters.ribbon_remaining is not None and counters.ribbon_capacity:
            left, capacity = counters.ribbon_remaining, counters.ribbon_capacity
        else:
            staff_log = desk.optional("staff_log")
            change = staff_log.last("ribbon_changed") if staff_log is not None else None
            since = change.detail.get("cards_printed", 0) if change is not None else 0
            capacity = t.ribbon_capacity
            left = max(0, capacity - (counters.cards_printed - since))
        if left <= 0:
            state, key = LevelState.OUT, "staffpage.level.ribbon_out"
        elif left * 100 // capacity <= t.ribbon_low_percent:
            state, key = LevelState.LOW, "staffpage.level.ribbon_low"
        else:
            state, key = LevelState.OK, "staffpage.level.ribbon_ok"
        ribbon = Level("ribbon", state, left, capacity, key)

    # Receipt paper: the printer's sensor.
    receipt = desk.optional("receipt")
    paper_state = PaperState.UNKNOWN
    if receipt is not None:
        try:
            paper_state = receipt.paper_state()
        except DeviceError as exc:
            log.warning("paper state unavailable: %s", exc.code)
    paper = {
        PaperState.ADEQUATE: Level("paper", LevelState.OK, 2, 2, "staffpage.level.paper_ok"),
        PaperState.NEAR_END: Level("paper", LevelState.LOW, 1, 2, "staffpage.level.paper_low"),
        PaperState.OUT: Level("paper", LevelState.OUT, 0, 2, "staffpage.level.paper_out"),
        PaperState.UNKNOWN: Level("paper", LevelState.UNKNOWN, None, 2, "staffpage.level.unknown"),
    }[paper_state]

    # Reject bin: the ledger's spoiled cards against the bin's capacity.
    if expected is None:
        bin_level = Level(
            "reject_bin", LevelState.UNKNOWN, None, t.reject_bin_capacity, "staffpage.level.unknown"
        )
    else:
        held = expected.reject_bin
        sensor = counters.reject_bin_count if counters is not None else None
        if held >= t.reject_bin_capacity:
            state, key = LevelState.OUT, "staffpage.level.bin_full"
        elif sensor is not None and sensor != held:
            state, key = LevelState.LOW, "staffpage.level.bin_sensor_mismatch"
        elif held >= t.reject_bin_near_full:
            state, key = LevelState.LOW, "staffpage.level.bin_near_full"
        else:
            state, key = LevelState.OK, "staffpage.level.bin_ok"
        bin_level = Level("reject_bin", state, held, t.reject_bin_capacity, key, sensor)
    return StockLevels((cards, ribbon, paper, bin_level))


def suggested_first_card(desk: StaffDesk) -> str | None:
    """The number after the card registered last (the next card of the batch), or None."""
    last = desk.ledger.last_registered()
    if last is None:
        return None
    head = last.rstrip("0123456789")
    digits = last[len(head) :]
    if not digits or len(str(int(digits) + 1)) > len(digits):
        return None
    return f"{head}{int(digits) + 1:0{len(digits)}d}"
