"""The card stock ledger (空白卡台账): blank cards accounted for like cash (比照一级现金凭证).

Every blank card is registered by its number when staff restock; every movement of a card
(restocked, fed, issued, rejected with a reason, handed over, destroyed, returned to the vault)
and every count is a row of ``ledger_movements``, written with the card's new place in the same
durable transaction (WAL, ``synchronous=FULL``). Nothing is ever updated in place except a card's
current place, and the movements are append-only (triggers refuse UPDATE and DELETE).

Places and the movements between them::

    (none) ─restocked─▶ hopper ─fed─▶ printer ─issued─▶ issued (to the holder)
                          │              └──rejected──▶ reject_bin ─handed_over─▶ handed_over
                          └─returned─▶ returned (to the vault)     └─destroyed───▶ destroyed

A card number is registered once, ever; a card moves only from the place its movement starts at,
so a card cannot be issued twice, fed unless it is in the hopper, or rejected unless it is in the
printer. Any other request raises a :class:`LedgerError` and changes nothing.

Balance (帐卡相符): registered − issued − handed over − destroyed − returned must equal the cards
the kiosk physically holds (hopper + in the printer + reject bin). A count (from the card
printer's counters or typed in by staff) that disagrees is recorded as a discrepancy (差错) and
raised as :class:`LedgerDiscrepancy`; it is never corrected silently: it stays open until a
supervisor notes and resolves it.

Period report (日清月结): :meth:`CardLedger.period_report` gives, for a day or month (local time,
Asia/Shanghai) or the current shift (交班: every movement since the last shift closing), the opening
balance, cards restocked, issued, spoiled, handed over, destroyed and returned with their numbers,
the closing balance, and the last count in the period. :meth:`CardLedger.close_period` records the
closing with its operator (经办人) and a reviewer (复核人) who is someone else.
"""

from __future__ import annotations

import contextlib
import enum
import json
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from kiosk.devices.receipt import StaffReport
from kiosk.journal import utc_now

LOCAL_TZ = ZoneInfo("Asia/Shanghai")

LEDGER_SCHEMA: tuple[str, ...] = (
    """
    CREATE TABLE ledger_cards (
        card_number   TEXT PRIMARY KEY,
        place         TEXT NOT NULL CHECK (place IN
                        ('hopper', 'printer', 'issued', 'reject_bin', 'handed_over', 'destroyed', 'returned')),
        batch         TEXT,
        registered_at TEXT NOT NULL,
        registered_by TEXT NOT NULL,
        last_movement INTEGER
    );
    CREATE TABLE ledger_movements (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        card_number TEXT REFERENCES ledger_cards(card_number),
        movement    TEXT NOT NULL CHECK (movement IN
                        ('restocked', 'fed', 'issued', 'rejected', 'handed_over', 'destroyed', 'returned',
                         'counted')),
        from_place  TEXT,
        to_place    TEXT,
        visit_id    TEXT,
        operator    TEXT NOT NULL,
        reason      TEXT,
        detail      TEXT,
        at          TEXT NOT NULL,
        CHECK ((movement = 'counted') = (card_number IS NULL))
    );
    CREATE INDEX ledger_movements_by_card ON ledger_movements(card_number, id);
    CREATE INDEX ledger_movements_by_time ON ledger_movements(at);
    CREATE TABLE ledger_counts (
        id                  INTEGER PRIMARY KEY AUTOINCREMENT,
        movement_id         INTEGER NOT NULL REFERENCES ledger_movements(id),
        source              TEXT NOT NULL CHECK (source IN ('printer', 'staff')),
        hopper              INTEGER NOT NULL,
        in_printer          INTEGER NOT NULL,
        reject_bin          INTEGER NOT NULL,
        expected_hopper     INTEGER NOT NULL,
        expected_in_printer INTEGER NOT NULL,
        expected_reject_bin INTEGER NOT NULL,
        balanced            INTEGER NOT NULL CHECK (balanced IN (0, 1)),
        operator            TEXT NOT NULL,
        at                  TEXT NOT NULL
    );
    CREATE TABLE ledger_discrepancies (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        count_id    INTEGER NOT NULL REFERENCES ledger_counts(id),
        detected_at TEXT NOT NULL,
        detail      TEXT NOT NULL,
        note        TEXT,
        noted_by    TEXT,
        resolved_at TEXT,
        resolved_by TEXT,
        resolution  TEXT
    );
    CREATE TRIGGER ledger_movements_no_update BEFORE UPDATE ON ledger_movements
        BEGIN SELECT RAISE(ABORT, 'ledger movements are append-only'); END;
    CREATE TRIGGER ledger_movements_no_delete BEFORE DELETE ON ledger_movements
        BEGIN SELECT RAISE(ABORT, 'ledger movements are append-only'); END;
    CREATE TRIGGER ledger_cards_no_delete BEFORE DELETE ON ledger_cards
        BEGIN SELECT RAISE(ABORT, 'registered cards are never deleted'); END;
    CREATE TRIGGER ledger_counts_no_update BEFORE UPDATE ON ledger_counts
        BEGIN SELECT RAISE(ABORT, 'counts are append-only'); END;
    """,
    # 2: period closings (交班/日结/月结) with the operator and the reviewer. A shift runs from the
    # last shift closing's last movement to now, so it is bounded by movement ids, not clocks.
    """
    CREATE TABLE ledger_closings (
        id                 INTEGER PRIMARY KEY AUTOINCREMENT,
        period             TEXT NOT NULL CHECK (period IN ('shift', 'day', 'month')),
        period_start       TEXT NOT NULL,
        period_end         TEXT NOT NULL,
        last_movement_id   INTEGER NOT NULL,
        opening            INTEGER NOT NULL,
        closing            INTEGER NOT NULL,
        counted            INTEGER,
        balanced           INTEGER CHECK (balanced IN (0, 1)),
        open_discrepancies INTEGER NOT NULL,
        operator           TEXT NOT NULL,
        reviewer           TEXT NOT NULL,
        at                 TEXT NOT NULL,
        report             TEXT NOT NULL,
        CHECK (reviewer <> operator)
    );
    CREATE INDEX ledger_closings_by_period ON ledger_closings(period, id);
    CREATE TRIGGER ledger_closings_no_update BEFORE UPDATE ON ledger_closings
        BEGIN SELECT RAISE(ABORT, 'closings are append-only'); END;
    CREATE TRIGGER ledger_closings_no_delete BEFORE DELETE ON ledger_closings
        BEGIN SELECT RAISE(ABORT, 'closings are append-only'); END;
    """,
)

PERIODS = ("shift", "day", "month")


# --------------------------------------------------------------------------- vocabulary


class Place(enum.Enum):
    """Where a registered card is (卡片位置)."""

    HOPPER = "hopper"  # 卡箱
    PRINTER = "printer"  # in the card printer: chip station, print position, output slot
    ISSUED = "issued"  # 已发卡 (taken by the holder)
    REJECT_BIN = "reject_bin"  # 废卡箱
    HANDED_OVER = "handed_over"  # 已交接 (to the card bureau, for central destruction)
    DESTROYED = "destroyed"  # 已销毁 (on site, with a record)
    RETURNED = "returned"  # 已退库 (unused blank back to the branch vault)

    @property
    def in_kiosk(self) -> bool:
        return self in (Place.HOPPER, Place.PRINTER, Place.REJECT_BIN)


class Movement(enum.Enum):
    """A ledger movement (台账变动)."""

    RESTOCKED = "restocked"  # 入库/补卡
    FED = "fed"  # 进卡
    ISSUED = "issued"  # 发卡
    REJECTED = "rejected"  # 废卡 (spoiled)
    HANDED_OVER = "handed_over"  # 废卡交接
    DESTROYED = "destroyed"  # 销毁
    RETURNED = "returned"  # 退库
    COUNTED = "counted"  # 盘点


# movement → (from place, to place)
TRANSITIONS: dict[Movement, tuple[Place, Place]] = {
    Movement.FED: (Place.HOPPER, Place.PRINTER),
    Movement.ISSUED: (Place.PRINTER, Place.ISSUED),
    Movement.REJECTED: (Place.PRINTER, Place.REJECT_BIN),
    Movement.HANDED_OVER: (Place.REJECT_BIN, Place.HANDED_OVER),
    Movement.DESTROYED: (Place.REJECT_BIN, Place.DESTROYED),
    Movement.RETURNED: (Place.HOPPER, Place.RETURNED),
}


class RejectReason(enum.Enum):
    """Why a card became a spoiled card (废卡原因)."""

    MISPRINT = "misprint"  # 印刷错误
    PERSONALIZATION_FAILED = "personalization_failed"  # 个人化失败
    CHIP_DEFECT = "chip_defect"  # 芯片损坏
    NOT_TAKEN = "not_taken"  # 未取卡回收
    JAM = "jam"  # 卡片卡住
    RECOVERY = "recovery"  # 断电恢复时回收
    STAFF = "staff"  # 工作人员回收


class CountSource(enum.Enum):
    PRINTER = "printer"  # the card printer's counters / sensors
    STAFF = "staff"  # a physical count typed in by staff


# --------------------------------------------------------------------------- errors


class LedgerError(Exception):
    """Root of the ledger's errors: a request the ledger refuses; nothing was changed."""

    code = "ledger.error"
    message_key = "ledger.error"

    def __init__(self, message: str) -> None:
        super().__init__(f"{self.code}: {message}")


class InvalidCardNumber(LedgerError):
    code = message_key = "ledger.invalid_card_number"


class CardNotRegistered(LedgerError):
    code = message_key = "ledger.card_not_registered"


class CardAlreadyRegistered(LedgerError):
    code = message_key = "ledger.card_already_registered"


class CardNotInPlace(LedgerError):
    """The card is not where the movement starts (e.g. fed while in the reject bin)."""

    code = message_key = "ledger.card_not_in_place"

    def __init__(self, card_number: str, place: Place, movement: Movement) -> None:
        self.card_number = card_number
        self.place = place
        self.movement = movement
        super().__init__(f"card {card_number} is {place.value}; cannot be {movement.value}")


class CardAlreadyIssued(CardNotInPlace):
    code = message_key = "ledger.card_already_issued"


class DiscrepancyNotFound(LedgerError):
    code = message_key = "ledger.discrepancy_not_found"


class PeriodNotCounted(LedgerError):
    """A period is closed only after staff counted the cards in it (盘点后方可结账)."""

    code = message_key = "ledger.period_not_counted"


class PeriodAlreadyClosed(LedgerError):
    code = message_key = "ledger.period_already_closed"


class ReviewerRequired(LedgerError):
    """A closing needs a reviewer (复核人) other than the operator (经办人)."""

    code = message_key = "ledger.reviewer_required"


class LedgerDiscrepancy(LedgerError):
    """A count disagrees with the ledger (帐卡不符). The count and the discrepancy are recorded
    before this is raised; nothing in the ledger was adjusted."""

    code = message_key = "ledger.discrepancy"

    def __init__(self, discrepancy: Discrepancy) -> None:
        self.discrepancy = discrepancy
        super().__init__(
            f"count disagrees with the ledger (discrepancy {discrepancy.discrepancy_id}): "
            f"expected {discrepancy.expected}, counted {discrepancy.observed}"
        )


# --------------------------------------------------------------------------- values

_CARD_NUMBER = re.compile(r"^[0-9A-Za-z]{4,32}$")


def check_card_number(card_number: str) -> str:
    if not isinstance(card_number, str) or not _CARD_NUMBER.match(card_number):
        raise InvalidCardNumber(f"{card_number!r} is not a card number (4–32 letters or digits)")
    return card_number


def card_range(first: str, last: str) -> list[str]:
    """The card numbers from ``first`` to ``last`` inclusive (号段): same prefix, the trailing
    digits counting up with their width kept (``A0000001``…``A0000050``)."""
    a, b = re.match(r"^(.*?)(\d+)$", first), re.match(r"^(.*?)(\d+)$", last)
    if not a or not b or a.group(1) != b.group(1) or len(a.group(2)) != len(b.group(2)):
        raise InvalidCardNumber(f"{first}…{last} is not a range of card numbers")
    start, end = int(a.group(2)), int(b.group(2))
    if end < start or end - start >= 10000:
        raise InvalidCardNumber(f"{first}…{last} is empty or longer than 10000 cards")
    width = len(a.group(2))
    return [check_card_number(f"{a.group(1)}{n:0{width}d}") for n in range(start, end + 1)]


@dataclass(frozen=True)
class CardRecord:
    card_number: str
    place: Place
    batch: str | None
    registered_at: datetime
    registered_by: str


@dataclass(frozen=True)
class MovementRecord:
    movement_id: int
    card_number: str | None
    movement: Movement
    from_place: Place | None
    to_place: Place | None
    visit_id: str | None
    operator: str
    reason: str | None
    at: datetime
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StockCount:
    """Cards physically held by the kiosk, per place."""

    hopper: int
    reject_bin: int
    in_printer: int = 0

    def __post_init__(self) -> None:
        if min(self.hopper, self.reject_bin, self.in_printer) < 0:
            raise ValueError("counts cannot be negative")

    @property
    def total(self) -> int:
        return self.hopper + self.reject_bin + self.in_printer

    def as_dict(self) -> dict[str, int]:
        return {"hopper": self.hopper, "in_printer": self.in_printer, "reject_bin": self.reject_bin}

    @classmethod
    def from_levels(cls, levels: Mapping[str, int]) -> StockCount:
        """The count a card printer reports in ``DeviceStatus.levels`` (``hopper``, ``reject_bin``,
        optionally ``in_printer``)."""
        try:
            return cls(
                hopper=levels["hopper"],
                reject_bin=levels["reject_bin"],
                in_printer=levels.get("in_printer", 0),
            )
        except KeyError as exc:
            raise ValueError(f"the printer's status has no {exc.args[0]!r} count") from None


@dataclass(frozen=True)
class LedgerBalance:
    """The ledger's view (帐): cards per place and whether the books add up."""

    per_place: dict[Place, int]

    @property
    def registered(self) -> int:
        return sum(self.per_place.values())

    @property
    def expected(self) -> StockCount:
        return StockCount(
            hopper=self.per_place[Place.HOPPER],
            reject_bin=self.per_place[Place.REJECT_BIN],
            in_printer=self.per_place[Place.PRINTER],
        )

    @property
    def held(self) -> int:
        """registered − issued − handed over − destroyed − returned."""
        p = self.per_place
        return (
            self.registered - p[Place.ISSUED] - p[Place.HANDED_OVER] - p[Place.DESTROYED] - p[Place.RETURNED]
        )


@dataclass(frozen=True)
class Discrepancy:
    discrepancy_id: int
    count_id: int
    detected_at: datetime
    expected: dict[str, int]
    observed: dict[str, int]
    source: CountSource
    operator: str
    note: str | None = None
    noted_by: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    resolution: str | None = None

    @property
    def open(self) -> bool:
        return self.resolved_at is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.discrepancy_id,
            "detected_at": self.detected_at.isoformat(),
            "expected": self.expected,
            "observed": self.observed,
            "source": self.source.value,
            "operator": self.operator,
            "note": self.note,
            "noted_by": self.noted_by,
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
            "resolved_by": self.resolved_by,
            "resolution": self.resolution,
        }


@dataclass(frozen=True)
class Reconciliation:
    """One count compared with the ledger."""

    count_id: int
    observed: StockCount
    expected: StockCount
    balanced: bool
    discrepancy: Discrepancy | None = None


@dataclass(frozen=True)
class PeriodReport:
    """日清月结: a day's or a month's movements and balances (local time)."""

    period: str  # "day" | "month"
    start: datetime
    end: datetime
    opening: int
    closing: int
    restocked: tuple[str, ...]
    issued: tuple[str, ...]
    spoiled: tuple[tuple[str, str], ...]  # (card number, reason)
    handed_over: tuple[str, ...]
    destroyed: tuple[str, ...]
    returned: tuple[str, ...]
    counted: StockCount | None
    counted_at: datetime | None
    open_discrepancies: tuple[Discrepancy, ...]
    blank_opening: int = 0
    blank_closing: int = 0
    bin_opening: int = 0
    bin_closing: int = 0
    # The newest movement the report covers: a closing of this report ends exactly there.
    last_movement_id: int = 0

    @property
    def balanced(self) -> bool | None:
        """None until staff count; then whether the count equals the closing balance and no
        discrepancy is open."""
        if self.counted is None:
            return None
        return self.counted.total == self.closing and not self.open_discrepancies

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "opening": self.opening,
            "restocked": len(self.restocked),
            "issued": len(self.issued),
            "spoiled": len(self.spoiled),
            "handed_over": len(self.handed_over),
            "destroyed": len(self.destroyed),
            "returned": len(self.returned),
            "closing": self.closing,
            "counted": self.counted.total if self.counted else None,
            "counted_detail": self.counted.as_dict() if self.counted else None,
            "counted_at": self.counted_at.isoformat() if self.counted_at else None,
            "balanced": self.balanced,
            "blank_stock": {"opening": self.blank_opening, "closing": self.blank_closing},
            "reject_bin": {"opening": self.bin_opening, "closing": self.bin_closing},
            "cards": {
                "restocked": list(self.restocked),
                "issued": list(self.issued),
                "spoiled": [{"card_number": c, "reason": r} for c, r in self.spoiled],
                "handed_over": list(self.handed_over),
                "destroyed": list(self.destroyed),
                "returned": list(self.returned),
            },
            "open_discrepancies": [d.as_dict() for d in self.open_discrepancies],
        }


@dataclass(frozen=True)
class PeriodClosing:
    """A closed period (交班/日结/月结): the report as it was closed, who did it (经办人) and who
    reviewed it (复核人)."""

    closing_id: int
    period: str
    start: datetime
    end: datetime
    last_movement_id: int
    opening: int
    closing: int
    counted: int | None
    balanced: bool | None
    open_discrepancies: int
    operator: str
    reviewer: str
    at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.closing_id,
            "period": self.period,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "last_movement_id": self.last_movement_id,
            "opening": self.opening,
            "closing": self.closing,
            "counted": self.counted,
            "balanced": self.balanced,
            "open_discrepancies": self.open_discrepancies,
            "operator": self.operator,
            "reviewer": self.reviewer,
            "at": self.at.isoformat(),
        }


# --------------------------------------------------------------------------- the ledger


def _utc(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("ledger timestamps must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


class CardLedger:
    """The card stock ledger over the state database. Thread-safe; every write is one
    ``BEGIN IMMEDIATE`` transaction."""

    def __init__(self, conn: sqlite3.Connection, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._conn = conn
        self._clock = clock
        self._lock = threading.RLock()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _now(self) -> str:
        return _utc(self._clock())

    # ---------------------------------------------------------------- movements

    def register_cards(
        self, card_numbers: Iterable[str], *, operator: str, batch: str | None = None
    ) -> list[str]:
        """Restock (补卡入库): registers every card, into the hopper, all or none."""
        numbers = [check_card_number(n) for n in card_numbers]
        if not numbers:
            raise InvalidCardNumber("no card numbers given")
        if len(set(numbers)) != len(numbers):
            raise CardAlreadyRegistered("the same card number is given twice")
        _require_operator(operator)
        at = self._now()
        with self._transaction() as conn:
            for number in numbers:
                if conn.execute("SELECT 1 FROM ledger_cards WHERE card_number = ?", (number,)).fetchone():
                    raise CardAlreadyRegistered(f"card {number} is already registered")
                conn.execute(
                    "INSERT INTO ledger_cards(card_number, place, batch, registered_at, registered_by)"
                    " VALUES (?, 'hopper', ?, ?, ?)",
                    (number, batch, at, operator),
                )
                self._record(
                    conn, number, Movement.RESTOCKED, None, Place.HOPPER, None, operator, None, {}, at
                )
        return numbers

    def feed(self, card_number: str, *, visit_id: str | None, operator: str = "kiosk") -> MovementRecord:
        """The printer took this card from the hopper (进卡)."""
        return self._move(card_number, Movement.FED, visit_id=visit_id, operator=operator)

    def issue(self, card_number: str, *, visit_id: str | None, operator: str = "kiosk") -> MovementRecord:
        """The holder took the finished card (发卡)."""
        return self._move(card_number, Movement.ISSUED, visit_id=visit_id, operator=operator)

    def reject(
        self,
        card_number: str,
        reason: RejectReason,
        *,
        visit_id: str | None,
        operator: str = "kiosk",
        detail: str = "",
    ) -> MovementRecord:
        """The card went into the reject bin (废卡)."""
        return self._move(
            card_number,
            Movement.REJECTED,
            visit_id=visit_id,
            operator=operator,
            reason=reason.value,
            detail={"detail": detail} if detail else {},
        )

    def hand_over(
        self, card_numbers: Iterable[str] | None = None, *, operator: str, reviewer: str | None = None
    ) -> list[str]:
        """Empty the reject bin (废卡交接): the given cards (default: all in the bin) are handed
        over for central destruction, in one transaction."""
        return self._move_many(
            Movement.HANDED_OVER,
            card_numbers,
            operator=operator,
            detail={"reviewer": reviewer} if reviewer else {},
        )

    def destroy(
        self, card_numbers: Iterable[str], *, operator: str, reviewer: str | None = None
    ) -> list[str]:
        """Spoiled cards destroyed on site (销毁), with who witnessed it."""
        return self._move_many(
            Movement.DESTROYED,
            card_numbers,
            operator=operator,
            detail={"reviewer": reviewer} if reviewer else {},
        )

    def return_to_vault(self, card_numbers: Iterable[str], *, operator: str) -> list[str]:
        """Unused blanks taken out of the hopper back to the branch vault (退库)."""
        return self._move_many(Movement.RETURNED, card_numbers, operator=operator, detail={})

    def _move(
        self,
        card_number: str,
        movement: Movement,
        *,
        visit_id: str | None,
        operator: str,
        reason: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> MovementRecord:
        check_card_number(card_number)
        _require_operator(operator)
        at = self._now()
        with self._transaction() as conn:
            movement_id = self._apply(
                conn, card_number, movement, visit_id, operator, reason, detail or {}, at
            )
        return self._movement(movement_id)

    def _move_many(
        self, movement: Movement, card_numbers: Iterable[str] | None, *, operator: str, detail: dict[str, Any]
    ) -> list[str]:
        _require_operator(operator)
        at = self._now()
        source = TRANSITIONS[movement][0]
        with self._transaction() as conn:
            if card_numbers is None:
                numbers = [
                    r[0]
                    for r in conn.execute(
                        "SELECT card_number FROM ledger_cards WHERE place = ? ORDER BY card_number",
                        (source.value,),
                    )
                ]
            else:
                numbers = [check_card_number(n) for n in card_numbers]
                if len(set(numbers)) != len(numbers):
                    raise CardNotInPlace(numbers[0], source, movement)
            for number in numbers:
                self._apply(conn, number, movement, None, operator, None, detail, at)
        return numbers

    def _apply(
        self,
        conn: sqlite3.Connection,
        card_number: str,
        movement: Movement,
        visit_id: str | None,
        operator: str,
        reason: str | None,
        detail: dict[str, Any],
        at: str,
    ) -> int:
        row = conn.execute("SELECT place FROM ledger_cards WHERE card_number = ?", (card_number,)).fetchone()
        if row is None:
            raise CardNotRegistered(f"card {card_number} was never registered")
        place = Place(row[0])
        source, target = TRANSITIONS[movement]
        if place is not source:
            if movement is Movement.ISSUED and place is Place.ISSUED:
                raise CardAlreadyIssued(card_number, place, movement)
            raise CardNotInPlace(card_number, place, movement)
        movement_id = self._record(
            conn, card_number, movement, source, target, visit_id, operator, reason, detail, at
        )
        conn.execute(
            "UPDATE ledger_cards SET place = ?, last_movement = ? WHERE card_number = ?",
            (target.value, movement_id, card_number),
        )
        return movement_id

    @staticmethod
    def _record(
        conn: sqlite3.Connection,
        card_number: str | None,
        movement: Movement,
        source: Place | None,
        target: Place | None,
        visit_id: str | None,
        operator: str,
        reason: str | None,
        detail: dict[str, Any],
        at: str,
    ) -> int:
        cursor = conn.execute(
            "INSERT INTO ledger_movements(card_number, movement, from_place, to_place, visit_id, operator, reason,"
            " detail, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                card_number,
                movement.value,
                source.value if source else None,
                target.value if target else None,
                visit_id,
                operator,
                reason,
                json.dumps(detail, ensure_ascii=False) if detail else None,
                at,
            ),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    # ---------------------------------------------------------------- counting

    def count(self, observed: StockCount, *, source: CountSource, operator: str) -> Reconciliation:
        """Records a count (盘点) and compares it with the ledger. If they differ, the count and a
        discrepancy are committed, then :class:`LedgerDiscrepancy` is raised."""
        _require_operator(operator)
        at = self._now()
        with self._transaction() as conn:
            expected = self._balance(conn).expected
            balanced = expected == observed
            movement_id = self._record(
                conn,
                None,
                Movement.COUNTED,
                None,
                None,
                None,
                operator,
                None,
                {"source": source.value, **observed.as_dict()},
                at,
            )
            count_id = conn.execute(
                "INSERT INTO ledger_counts(movement_id, source, hopper, in_printer, reject_bin, expected_hopper,"
                " expected_in_printer, expected_reject_bin, balanced, operator, at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    movement_id,
                    source.value,
                    observed.hopper,
                    observed.in_printer,
                    observed.reject_bin,
                    expected.hopper,
                    expected.in_printer,
                    expected.reject_bin,
                    int(balanced),
                    operator,
                    at,
                ),
            ).lastrowid
            assert count_id is not None
            discrepancy = None
            if not balanced:
                detail = {
                    "expected": expected.as_dict(),
                    "observed": observed.as_dict(),
                    "source": source.value,
                    "operator": operator,
                }
                discrepancy_id = conn.execute(
                    "INSERT INTO ledger_discrepancies(count_id, detected_at, detail) VALUES (?, ?, ?)",
                    (count_id, at, json.dumps(detail)),
                ).lastrowid
                assert discrepancy_id is not None
                discrepancy = Discrepancy(
                    discrepancy_id,
                    count_id,
                    _parse(at),
                    expected.as_dict(),
                    observed.as_dict(),
                    source,
                    operator,
                )
        if discrepancy is not None:
            raise LedgerDiscrepancy(discrepancy)
        return Reconciliation(count_id, observed, expected, True)

    def note_discrepancy(self, discrepancy_id: int, note: str, *, supervisor: str) -> Discrepancy:
        """A supervisor's explanation (主管说明); the discrepancy stays open."""
        _require_operator(supervisor)
        with self._transaction() as conn:
            if (
                conn.execute(
                    "UPDATE ledger_discrepancies SET note = ?, noted_by = ? WHERE id = ?",
                    (note, supervisor, discrepancy_id),
                ).rowcount
                != 1
            ):
                raise DiscrepancyNotFound(f"no discrepancy {discrepancy_id}")
        return self.discrepancy(discrepancy_id)

    def resolve_discrepancy(self, discrepancy_id: int, resolution: str, *, supervisor: str) -> Discrepancy:
        """Closes a discrepancy. Needs a supervisor's note first: nothing is closed unexplained.
        The card places are not touched: a found card or a loss is booked as its own movement."""
        _require_operator(supervisor)
        if not resolution.strip():
            raise LedgerError("a resolution needs a text")
        at = self._now()
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT note, resolved_at FROM ledger_discrepancies WHERE id = ?", (discrepancy_id,)
            ).fetchone()
            if row is None:
                raise DiscrepancyNotFound(f"no discrepancy {discrepancy_id}")
            if row[0] is None:
                raise LedgerError(f"discrepancy {discrepancy_id} has no supervisor's note yet")
            if row[1] is not None:
                raise LedgerError(f"discrepancy {discrepancy_id} is already resolved")
            conn.execute(
                "UPDATE ledger_discrepancies SET resolved_at = ?, resolved_by = ?, resolution = ?"
                " WHERE id = ?",
                (at, supervisor, resolution, discrepancy_id),
            )
        return self.discrepancy(discrepancy_id)

    # ---------------------------------------------------------------- queries

    def _balance(self, conn: sqlite3.Connection) -> LedgerBalance:
        per_place = {place: 0 for place in Place}
        for place, n in conn.execute("SELECT place, COUNT(*) FROM ledger_cards GROUP BY place"):
            per_place[Place(place)] = n
        return LedgerBalance(per_place)

    def balance(self) -> LedgerBalance:
        with self._lock:
            return self._balance(self._conn)

    def card(self, card_number: str) -> CardRecord:
        with self._lock:
            row = self._conn.execute(
                "SELECT card_number, place, batch, registered_at, registered_by FROM ledger_cards"
                " WHERE card_number = ?",
                (card_number,),
            ).fetchone()
        if row is None:
            raise CardNotRegistered(f"card {card_number} was never registered")
        return CardRecord(row[0], Place(row[1]), row[2], _parse(row[3]), row[4])

    def cards_in(self, place: Place) -> list[str]:
        with self._lock:
            return [
                r[0]
                for r in self._conn.execute(
                    "SELECT card_number FROM ledger_cards WHERE place = ? ORDER BY card_number",
                    (place.value,),
                )
            ]

    def last_registered(self) -> str | None:
        """The card number registered last (the restock page suggests the next one from it)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT card_number FROM ledger_movements WHERE movement = 'restocked' ORDER BY id DESC LIMIT 1"
            ).fetchone()
        return None if row is None else str(row[0])

    def _movement(self, movement_id: int) -> MovementRecord:
        rows = self._movements("WHERE id = ?", (movement_id,))
        return rows[0]

    def _movements(self, where: str, params: Sequence[Any]) -> list[MovementRecord]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, card_number, movement, from_place, to_place, visit_id, operator, reason, at, detail"
                f" FROM ledger_movements {where} ORDER BY id",
                tuple(params),
            ).fetchall()
        return [
            MovementRecord(
                r[0],
                r[1],
                Movement(r[2]),
                Place(r[3]) if r[3] else None,
                Place(r[4]) if r[4] else None,
                r[5],
                r[6],
                r[7],
                _parse(r[8]),
                json.loads(r[9]) if r[9] else {},
            )
            for r in rows
        ]

    def movements(
        self, card_number: str | None = None, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[MovementRecord]:
        clauses, params = [], []
        if card_number is not None:
            clauses.append("card_number = ?")
            params.append(card_number)
        if since is not None:
            clauses.append("at >= ?")
            params.append(_utc(since))
        if until is not None:
            clauses.append("at < ?")
            params.append(_utc(until))
        return self._movements(("WHERE " + " AND ".join(clauses)) if clauses else "", params)

    def discrepancy(self, discrepancy_id: int) -> Discrepancy:
        found = self._discrepancies("WHERE d.id = ?", (discrepancy_id,))
        if not found:
            raise DiscrepancyNotFound(f"no discrepancy {discrepancy_id}")
        return found[0]

    def open_discrepancies(self) -> list[Discrepancy]:
        return self._discrepancies("WHERE d.resolved_at IS NULL", ())

    def _discrepancies(self, where: str, params: Sequence[Any]) -> list[Discrepancy]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT d.id, d.count_id, d.detected_at, d.detail, d.note, d.noted_by, d.resolved_at,"
                " d.resolved_by, d.resolution FROM ledger_discrepancies d " + where + " ORDER BY d.id",
                tuple(params),
            ).fetchall()
        out = []
        for r in rows:
            detail = json.loads(r[3])
            out.append(
                Discrepancy(
                    r[0],
                    r[1],
                    _parse(r[2]),
                    detail["expected"],
                    detail["observed"],
                    CountSource(detail["source"]),
                    detail["operator"],
                    r[4],
                    r[5],
                    _parse(r[6]) if r[6] else None,
                    r[7],
                    r[8],
                )
            )
        return out

    def last_count(
        self,
        *,
        until: datetime | None = None,
        since: datetime | None = None,
        source: CountSource | None = None,
    ) -> tuple[StockCount, datetime, bool] | None:
        clauses, params = [], []
        if since is not None:
            clauses.append("at >= ?")
            params.append(_utc(since))
        if until is not None:
            clauses.append("at < ?")
            params.append(_utc(until))
        if source is not None:
            clauses.append("source = ?")
            params.append(source.value)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        with self._lock:
            row = self._conn.execute(
                f"SELECT hopper, reject_bin, in_printer, at, balanced FROM ledger_counts {where}"
                " ORDER BY id DESC LIMIT 1",
                tuple(params),
            ).fetchone()
        if row is None:
            return None
        return StockCount(row[0], row[1], row[2]), _parse(row[3]), bool(row[4])

    # ---------------------------------------------------------------- period report

    def period_report(self, period: str, day: date | None = None) -> PeriodReport:
        """日清 (``period="day"``) or 月结 (``"month"``, the month containing ``day``; default
        today), local time; or 交班 (``"shift"``): every movement since the last shift closing."""
        if period == "shift":
            last = self.last_closing("shift")
            after_id = last.last_movement_id if last else 0
            with self._lock:
                first_at = self._conn.execute(
                    "SELECT at FROM ledger_movements WHERE id > ? ORDER BY id LIMIT 1", (after_id,)
                ).fetchone()
            now = self._clock()
            start = last.at if last else (_parse(first_at[0]) if first_at else now)
            before = self._movements("WHERE id <= ?", (after_id,))
            during = self._movements("WHERE id > ?", (after_id,))
            counted = self._last_staff_count_after(after_id)
            # Discrepancies found up to now count against the shift (bound exclusive).
            return self._report(period, start, now, before, during, counted, now + timedelta(microseconds=1))
        day = day if day is not None else self._clock().astimezone(LOCAL_TZ).date()
        start, end = period_bounds(period, day)
        before = self.movements(until=start)
        during = self.movements(since=start, until=end)
        counted = self.last_count(since=start, until=end, source=CountSource.STAFF)
        return self._report(period, start, end, before, during, counted, end)

    def _last_staff_count_after(self, movement_id: int) -> tuple[StockCount, datetime, bool] | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT hopper, reject_bin, in_printer, at, balanced FROM ledger_counts"
                " WHERE source = 'staff' AND movement_id > ? ORDER BY id DESC LIMIT 1",
                (movement_id,),
            ).fetchone()
        if row is None:
            return None
        return StockCount(row[0], row[1], row[2]), _parse(row[3]), bool(row[4])

    def _report(
        self,
        period: str,
        start: datetime,
        end: datetime,
        before: list[MovementRecord],
        during: list[MovementRecord],
        counted: tuple[StockCount, datetime, bool] | None,
        discrepancies_before: datetime,
    ) -> PeriodReport:
        def stock(moves: list[MovementRecord]) -> tuple[int, int]:
            blank = bin_ = 0
            for m in moves:
                if m.movement is Movement.RESTOCKED:
                    blank += 1
                elif m.movement in (Movement.ISSUED, Movement.RETURNED):
                    blank -= 1
                elif m.movement is Movement.REJECTED:
                    blank -= 1
                    bin_ += 1
                elif m.movement in (Movement.HANDED_OVER, Movement.DESTROYED):
                    bin_ -= 1
            return blank, bin_

        blank_open, bin_open = stock(before)
        blank_delta, bin_delta = stock(during)

        def numbers(kind: Movement) -> tuple[str, ...]:
            return tuple(m.card_number for m in during if m.movement is kind and m.card_number)

        open_discrepancies = tuple(
            d for d in self.open_discrepancies() if d.detected_at < discrepancies_before
        )
        last_id = during[-1].movement_id if during else (before[-1].movement_id if before else 0)
        return PeriodReport(
            period=period,
            start=start,
            end=end,
            opening=blank_open + bin_open,
            closing=blank_open + bin_open + blank_delta + bin_delta,
            restocked=numbers(Movement.RESTOCKED),
            issued=numbers(Movement.ISSUED),
            spoiled=tuple(
                (m.card_number, m.reason or "")
                for m in during
                if m.movement is Movement.REJECTED and m.card_number
            ),
            handed_over=numbers(Movement.HANDED_OVER),
            destroyed=numbers(Movement.DESTROYED),
            returned=numbers(Movement.RETURNED),
            counted=counted[0] if counted else None,
            counted_at=counted[1] if counted else None,
            open_discrepancies=open_discrepancies,
            blank_opening=blank_open,
            blank_closing=blank_open + blank_delta,
            bin_opening=bin_open,
            bin_closing=bin_open + bin_delta,
            last_movement_id=last_id,
        )

    # ---------------------------------------------------------------- closing a period

    def close_period(self, report: PeriodReport, *, operator: str, reviewer: str) -> PeriodClosing:
        """Closes the period of ``report`` (交班/日结/月结) with the operator (经办人) and a reviewer
        (复核人) who is someone else. Refused before staff counted the period, and for a day or
        month already closed. An open discrepancy does not stop the closing: the closing says the
        books did not balance, and the discrepancy stays open until a supervisor resolves it."""
        _require_operator(operator)
        if not reviewer or not reviewer.strip() or reviewer == operator:
            raise ReviewerRequired("a closing needs a reviewer other than the operator")
        if report.counted is None:
            raise PeriodNotCounted(f"the {report.period} has not been counted by staff")
        at = self._now()
        with self._transaction() as conn:
            if report.period == "shift":
                last = conn.execute(
                    "SELECT MAX(last_movement_id) FROM ledger_closings WHERE period = 'shift'"
                ).fetchone()[0]
                if last is not None and report.last_movement_id <= last and report.last_movement_id:
                    raise PeriodAlreadyClosed("this shift is already closed")
            elif conn.execute(
                "SELECT 1 FROM ledger_closings WHERE period = ? AND period_start = ?",
                (report.period, _utc(report.start)),
            ).fetchone():
                raise PeriodAlreadyClosed(f"the {report.period} from {report.start.date()} is already closed")
            balanced = report.balanced
            closing_id = conn.execute(
                "INSERT INTO ledger_closings(period, period_start, period_end, last_movement_id, opening, closing,"
                " counted, balanced, open_discrepancies, operator, reviewer, at, report)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    report.period,
                    _utc(report.start),
                    _utc(report.end),
                    report.last_movement_id,
                    report.opening,
                    report.closing,
                    report.counted.total,
                    None if balanced is None else int(balanced),
                    len(report.open_discrepancies),
                    operator,
                    reviewer,
                    at,
                    json.dumps(report.as_dict(), ensure_ascii=False),
                ),
            ).lastrowid
            assert closing_id is not None
        return self.closing(closing_id)

    _CLOSING_COLUMNS = (
        "id, period, period_start, period_end, last_movement_id, opening, closing, counted, balanced,"
        " open_discrepancies, operator, reviewer, at"
    )

    @staticmethod
    def _closing_of(r: Sequence[Any]) -> PeriodClosing:
        return PeriodClosing(
            r[0], r[1], _parse(r[2]), _parse(r[3]), r[4], r[5], r[6], r[7],
            None if r[8] is None else bool(r[8]), r[9], r[10], r[11], _parse(r[12]),
        )

    def closing(self, closing_id: int) -> PeriodClosing:
        with self._lock:
            row = self._conn.execute(
                f"SELECT {self._CLOSING_COLUMNS} FROM ledger_closings WHERE id = ?", (closing_id,)
            ).fetchone()
        if row is None:
            raise LedgerError(f"no closing {closing_id}")
        return self._closing_of(row)

    def last_closing(self, period: str) -> PeriodClosing | None:
        with self._lock:
            row = self._conn.execute(
                f"SELECT {self._CLOSING_COLUMNS} FROM ledger_closings WHERE period = ? ORDER BY id DESC LIMIT 1",
                (period,),
            ).fetchone()
        return None if row is None else self._closing_of(row)

    def closings(self, period: str | None = None) -> list[PeriodClosing]:
        where, params = ("WHERE period = ?", (period,)) if period else ("", ())
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {self._CLOSING_COLUMNS} FROM ledger_closings {where} ORDER BY id", params
            ).fetchall()
        return [self._closing_of(r) for r in rows]


def period_bounds(period: str, day: date) -> tuple[datetime, datetime]:
    """Start (inclusive) and end (exclusive) of the local day or month containing ``day``."""
    if period == "day":
        start_day, end_day = day, day + timedelta(days=1)
    elif period == "month":
        start_day = day.replace(day=1)
        end_day = (start_day + timedelta(days=32)).replace(day=1)
    else:
        raise ValueError("period must be 'day' or 'month' (a shift has no calendar bounds)")
    return (datetime.combine(start_day, time(0), LOCAL_TZ), datetime.combine(end_day, time(0), LOCAL_TZ))


def _require_operator(operator: str) -> None:
    if not operator or not operator.strip():
        raise LedgerError("every ledger entry needs an operator")


# --------------------------------------------------------------------------- printed slips


def handover_slip(
    cards: Sequence[MovementRecord],
    *,
    kiosk_id: str,
    operator: str,
    printed_at: datetime,
    text: Callable[[str], str],
    reviewer: str | None = None,
) -> StaffReport:
    """The spoiled-card handover list (废卡交接清单) printed when staff empty the reject bin: each
    card with why it was spoiled, to go with the cards to central destruction. ``cards`` are the
    ``rejected`` movements of the cards handed over; ``text`` translates message keys."""
    rows = tuple(
        (m.card_number or "", text(f"ledger.reason.{m.reason}") if m.reason else "", _local(m.at))
        for m in cards
    )
    return StaffReport(
        title=text("ledger.handover.title"),
        printed_at=printed_at,
        kiosk_id=kiosk_id,
        fields=((text("ledger.slip.count"), str(len(rows))), (text("ledger.slip.operator"), operator))
        + (((text("ledger.slip.reviewer"), reviewer),) if reviewer else ()),
        columns=(text("ledger.slip.card_number"), text("ledger.slip.reason"), text("ledger.slip.time")),
        rows=rows,
        footer=(text("ledger.handover.footer"),),
    )


def period_slip(
    report: PeriodReport,
    *,
    kiosk_id: str,
    printed_at: datetime,
    text: Callable[[str], str],
    operator: str | None = None,
    reviewer: str | None = None,
) -> StaffReport:
    """The shift/day/month reconciliation slip (交班/日结/月结对账单) for the receipt printer; with
    the operator (经办人) and reviewer (复核人) of the closing when given."""

    def line(key: str, value: object) -> tuple[str, str]:
        return (text(key), "—" if value is None else str(value))

    balanced = report.balanced
    rows = (
        tuple((c, text("ledger.movement.restocked")) for c in compress_ranges(report.restocked))
        + tuple((c, text("ledger.movement.issued")) for c in report.issued)
        + tuple(
            (c, f"{text('ledger.movement.rejected')} {text(f'ledger.reason.{r}') if r else ''}".strip())
            for c, r in report.spoiled
        )
        + tuple((c, text("ledger.movement.handed_over")) for c in report.handed_over)
        + tuple((c, text("ledger.movement.destroyed")) for c in report.destroyed)
        + tuple((c, text("ledger.movement.returned")) for c in report.returned)
    )
    return StaffReport(
        title=text(f"ledger.report.title.{report.period}"),
        printed_at=printed_at,
        kiosk_id=kiosk_id,
        fields=(
            (
                text("ledger.slip.period"),
                f"{_local(report.start)} — {_local(report.end)}"
                if report.period == "shift"
                else f"{_local(report.start)[:10]} — {_local(report.end - timedelta(seconds=1))[:10]}",
            ),
            line("ledger.slip.opening", report.opening),
            line("ledger.slip.restocked", len(report.restocked)),
            line("ledger.slip.issued", len(report.issued)),
            line("ledger.slip.spoiled", len(report.spoiled)),
            line(
                "ledger.slip.handed_over",
                len(report.handed_over) + len(report.destroyed) + len(report.returned),
            ),
            line("ledger.slip.closing", report.closing),
            line("ledger.slip.counted", report.counted.total if report.counted else None),
            (
                text("ledger.slip.balanced"),
                text("ledger.slip.not_counted")
                if balanced is None
                else text(f"ledger.slip.balanced.{str(balanced).lower()}"),
            ),
            line("ledger.slip.open_discrepancies", len(report.open_discrepancies)),
        )
        + ((line("ledger.slip.operator", operator),) if operator else ())
        + ((line("ledger.slip.reviewer", reviewer),) if reviewer else ()),
        columns=(text("ledger.slip.card_number"), text("ledger.slip.movement")),
        rows=rows,
    )


def compress_ranges(numbers: Sequence[str]) -> list[str]:
    """Consecutive card numbers as ranges (``C0000001-C0000050``), the way card batches are
    written on paper; anything else as it is."""
    out: list[str] = []
    run: list[str] = []

    def close() -> None:
        if run:
            out.append(run[0] if len(run) == 1 else f"{run[0]}-{run[-1]}")
            run.clear()

    for number in numbers:
        if run and _successor(run[-1]) == number:
            run.append(number)
        else:
            close()
            run.append(number)
    close()
    return out


def _successor(number: str) -> str | None:
    match = re.match(r"^(.*?)(\d+)$", number)
    if not match:
        return None
    digits = match.group(2)
    return f"{match.group(1)}{int(digits) + 1:0{len(digits)}d}"


def _local(moment: datetime) -> str:
    return moment.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")
