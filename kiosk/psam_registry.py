"""The PSAM registry (PSAM卡登记): which terminal security module (安全访问控制模块) sits in this
kiosk, every use of it per visit, and its retirement with a destruction record.

A PSAM is registered from what the card itself says (its terminal number, EF 0016, and its card
serial, EF 0015, read by ``services.psam.identity()``), never from typing. One PSAM is active at a
time: a new one is registered only after the old one is retired. A retired PSAM never comes back.
Each use (``record_use(visit_id, operation)``: personalization, PIN reload …) is a row tied to the
active PSAM. Retiring writes a destruction record (销毁记录): what, when, why, who (and a witness).

Rows are append-only except the PSAM's own retirement columns, which are written once.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from kiosk.devices.smartcard import PsamIdentity
from kiosk.journal import utc_now

PSAM_SCHEMA: tuple[str, ...] = (
    """
    CREATE TABLE psam_registry (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        terminal_number TEXT NOT NULL,
        psam_serial     TEXT NOT NULL,
        atr             TEXT NOT NULL,
        algorithms      TEXT NOT NULL,
        registered_at   TEXT NOT NULL,
        registered_by   TEXT NOT NULL,
        retired_at      TEXT,
        retired_by      TEXT,
        UNIQUE (terminal_number, psam_serial)
    );
    CREATE UNIQUE INDEX psam_one_active ON psam_registry((1)) WHERE retired_at IS NULL;
    CREATE TABLE psam_uses (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        psam_id   INTEGER NOT NULL REFERENCES psam_registry(id),
        visit_id  TEXT NOT NULL,
        operation TEXT NOT NULL,
        at        TEXT NOT NULL
    );
    CREATE INDEX psam_uses_by_psam ON psam_uses(psam_id, id);
    CREATE TABLE psam_destructions (
        id      INTEGER PRIMARY KEY AUTOINCREMENT,
        psam_id INTEGER NOT NULL UNIQUE REFERENCES psam_registry(id),
        what    TEXT NOT NULL,
        at      TEXT NOT NULL,
        why     TEXT NOT NULL,
        who     TEXT NOT NULL,
        witness TEXT
    );
    CREATE TRIGGER psam_registry_retire_once BEFORE UPDATE ON psam_registry
        WHEN OLD.retired_at IS NOT NULL
          OR NEW.terminal_number IS NOT OLD.terminal_number OR NEW.psam_serial IS NOT OLD.psam_serial
          OR NEW.registered_at IS NOT OLD.registered_at OR NEW.registered_by IS NOT OLD.registered_by
        BEGIN SELECT RAISE(ABORT, 'a PSAM record changes only once, when it is retired'); END;
    CREATE TRIGGER psam_registry_no_delete BEFORE DELETE ON psam_registry
        BEGIN SELECT RAISE(ABORT, 'PSAM records are never deleted'); END;
    CREATE TRIGGER psam_uses_no_update BEFORE UPDATE ON psam_uses
        BEGIN SELECT RAISE(ABORT, 'PSAM uses are append-only'); END;
    CREATE TRIGGER psam_uses_no_delete BEFORE DELETE ON psam_uses
        BEGIN SELECT RAISE(ABORT, 'PSAM uses are append-only'); END;
    CREATE TRIGGER psam_destructions_no_update BEFORE UPDATE ON psam_destructions
        BEGIN SELECT RAISE(ABORT, 'destruction records are append-only'); END;
    CREATE TRIGGER psam_destructions_no_delete BEFORE DELETE ON psam_destructions
        BEGIN SELECT RAISE(ABORT, 'destruction records are append-only'); END;
    """,
)


# --------------------------------------------------------------------------- errors


class PsamRegistryError(Exception):
    """Root of the registry's refusals; nothing was changed."""

    code = "psam.registry_error"
    message_key = "psam.registry_error"

    def __init__(self, message: str) -> None:
        super().__init__(f"{self.code}: {message}")


class PsamNotRegistered(PsamRegistryError):
    """No PSAM is registered (or the one named is unknown): register the PSAM in the slot first."""

    code = message_key = "psam.not_registered"


class PsamAlreadyActive(PsamRegistryError):
    """Another PSAM is still registered as in use: retire it first."""

    code = message_key = "psam.already_active"


class PsamRetired(PsamRegistryError):
    """This PSAM was retired (and destroyed): it may not be used or registered again."""

    code = message_key = "psam.retired"


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class PsamRecord:
    psam_id: int
    terminal_number: str
    psam_serial: str
    atr: str
    algorithms: tuple[str, ...]
    registered_at: datetime
    registered_by: str
    retired_at: datetime | None = None
    retired_by: str | None = None

    @property
    def active(self) -> bool:
        return self.retired_at is None

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.psam_id,
            "terminal_number": self.terminal_number,
            "psam_serial": self.psam_serial,
            "atr": self.atr,
            "algorithms": list(self.algorithms),
            "registered_at": self.registered_at.isoformat(),
            "registered_by": self.registered_by,
            "retired_at": self.retired_at.isoformat() if self.retired_at else None,
            "retired_by": self.retired_by,
        }


@dataclass(frozen=True)
class PsamUse:
    use_id: int
    psam_id: int
    visit_id: str
    operation: str
    at: datetime


@dataclass(frozen=True)
class PsamDestruction:
    """销毁记录: what was destroyed, when, why, by whom (and who witnessed it)."""

    destruction_id: int
    psam_id: int
    what: str
    at: datetime
    why: str
    who: str
    witness: str | None


# --------------------------------------------------------------------------- the registry


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


class PsamRegistry:
    """The PSAM registry over the state database. Thread-safe; each write is one transaction."""

    def __init__(self, conn: sqlite3.Connection, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._conn = conn
        self._clock = clock
        self._lock = threading.RLock()

    def _write(self, work: Callable[[sqlite3.Connection], int]) -> int:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(self._conn)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
            return result

    def register(self, identity: PsamIdentity, *, operator: str) -> PsamRecord:
        """Registers the PSAM read from the slot. The same PSAM registered again is returned as it
        is (a second tap changes nothing); another PSAM while one is active is refused, as is a
        retired one."""
        if not operator.strip():
            raise PsamRegistryError("registering a PSAM needs an operator")
        if not identity.terminal_number:
            raise PsamRegistryError("the PSAM reported no terminal number")

        def work(conn: sqlite3.Connection) -> int:
            same = conn.execute(
                "SELECT id, retired_at FROM psam_registry WHERE terminal_number = ? AND psam_serial = ?",
                (identity.terminal_number, identity.psam_serial),
            ).fetchone()
            if same is not None:
                if same[1] is not None:
                    raise PsamRetired(f"PSAM {identity.terminal_number} was retired on {same[1][:10]}")
                return int(same[0])
            active = conn.execute(
                "SELECT terminal_number FROM psam_registry WHERE retired_at IS NULL"
            ).fetchone()
            if active is not None:
                raise PsamAlreadyActive(f"PSAM {active[0]} is still registered: retire it first")
            cursor = conn.execute(
                "INSERT INTO psam_registry(terminal_number, psam_serial, atr, algorithms, registered_at,"
                " registered_by) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    identity.terminal_number,
                    identity.psam_serial,
                    identity.atr,
                    ",".join(a.value for a in identity.algorithms),
                    _utc(self._clock()),
                    operator,
                ),
            )
            return int(cursor.lastrowid or 0)

        return self.get(self._write(work))

    def active(self) -> PsamRecord | None:
        with self._lock:
            row = self._conn.execute(f"{_SELECT} WHERE retired_at IS NULL").fetchone()
        return None if row is None else _record(row)

    def get(self, psam_id: int) -> PsamRecord:
        with self._lock:
            row = self._conn.execute(f"{_SELECT} WHERE id = ?", (psam_id,)).fetchone()
        if row is None:
            raise PsamNotRegistered(f"no PSAM {psam_id}")
        return _record(row)

    def all(self) -> list[PsamRecord]:
        with self._lock:
            return [_record(r) for r in self._conn.execute(f"{_SELECT} ORDER BY id")]

    def record_use(self, visit_id: str, operation: str) -> PsamUse:
        """One use of the active PSAM for a visit (PSAM使用记录), e.g. ``personalize``."""
        if not visit_id or not operation:
            raise PsamRegistryError("a PSAM use needs a visit and an operation")
        at = _utc(self._clock())

        def work(conn: sqlite3.Connection) -> int:
            active = conn.execute("SELECT id FROM psam_registry WHERE retired_at IS NULL").fetchone()
            if active is None:
                raise PsamNotRegistered("no PSAM is registered: register the PSAM in the slot first")
            cursor = conn.execute(
                "INSERT INTO psam_uses(psam_id, visit_id, operation, at) VALUES (?, ?, ?, ?)",
                (active[0], visit_id, operation, at),
            )
            return int(cursor.lastrowid or 0)

        use_id = self._write(work)
        with self._lock:
            row = self._conn.execute(
                "SELECT id, psam_id, visit_id, operation, at FROM psam_uses WHERE id = ?", (use_id,)
            ).fetchone()
        return PsamUse(row[0], row[1], row[2], row[3], datetime.fromisoformat(row[4]))

    def uses(self, psam_id: int) -> list[PsamUse]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, psam_id, visit_id, operation, at FROM psam_uses WHERE psam_id = ? ORDER BY id",
                (psam_id,),
            ).fetchall()
        return [PsamUse(r[0], r[1], r[2], r[3], datetime.fromisoformat(r[4])) for r in rows]

    def use_count(self, psam_id: int) -> int:
        with self._lock:
            return int(
                self._conn.execute("SELECT COUNT(*) FROM psam_uses WHERE psam_id = ?", (psam_id,)).fetchone()[
                    0
                ]
            )

    def retire(self, psam_id: int, *, why: str, operator: str, witness: str | None = None) -> PsamDestruction:
        """Retires the PSAM and writes its destruction record (what, when, why, who) in the same
        transaction. A retired PSAM is refused for use and registration from then on."""
        if not why.strip() or not operator.strip():
            raise PsamRegistryError("retiring a PSAM needs a reason and an operator")
        at = _utc(self._clock())

        def work(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                "SELECT terminal_number, psam_serial, retired_at FROM psam_registry WHERE id = ?", (psam_id,)
            ).fetchone()
            if row is None:
                raise PsamNotRegistered(f"no PSAM {psam_id}")
            if row[2] is not None:
                raise PsamRetired(f"PSAM {row[0]} is already retired")
            conn.execute(
                "UPDATE psam_registry SET retired_at = ?, retired_by = ? WHERE id = ?",
                (at, operator, psam_id),
            )
            cursor = conn.execute(
                "INSERT INTO psam_destructions(psam_id, what, at, why, who, witness) VALUES (?, ?, ?, ?, ?, ?)",
                (psam_id, f"PSAM terminal {row[0]} serial {row[1]}", at, why, operator, witness),
            )
            return int(cursor.lastrowid or 0)

        destruction_id = self._write(work)
        return self._destruction(destruction_id)

    def destruction(self, psam_id: int) -> PsamDestruction | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT id FROM psam_destructions WHERE psam_id = ?", (psam_id,)
            ).fetchone()
        return None if row is None else self._destruction(row[0])

    def _destruction(self, destruction_id: int) -> PsamDestruction:
        with self._lock:
            r = self._conn.execute(
                "SELECT id, psam_id, what, at, why, who, witness FROM psam_destructions WHERE id = ?",
                (destruction_id,),
            ).fetchone()
        return PsamDestruction(r[0], r[1], r[2], datetime.fromisoformat(r[3]), r[4], r[5], r[6])


_SELECT = (
    "SELECT id, terminal_number, psam_serial, atr, algorithms, registered_at, registered_by, retired_at,"
    " retired_by FROM psam_registry"
)


def _record(r: sqlite3.Row | tuple) -> PsamRecord:  # type: ignore[type-arg]
    return PsamRecord(
        r[0],
        r[1],
        r[2],
        r[3],
        tuple(a for a in r[4].split(",") if a),
        datetime.fromisoformat(r[5]),
        r[6],
        datetime.fromisoformat(r[7]) if r[7] else None,
        r[8],
    )
