"""Staff and engineer accounts (工作人员 / 运维工程师): salted slow hashes (scrypt), roles, lockout
after repeated failures, and a record of every login attempt. The menus behind the login are
built by the staff- and engineer-menu work; this module is what they stand on."""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from kiosk.journal import utc_now

STAFF_SCHEMA: tuple[str, ...] = (
    """
    CREATE TABLE staff_accounts (
        staff_id      TEXT PRIMARY KEY,
        role          TEXT NOT NULL CHECK (role IN ('staff', 'supervisor', 'engineer')),
        salt          BLOB NOT NULL,
        password_hash BLOB NOT NULL,
        failures      INTEGER NOT NULL DEFAULT 0,
        locked_until  TEXT,
        created_at    TEXT NOT NULL
    );
    CREATE TABLE staff_events (
        id       INTEGER PRIMARY KEY AUTOINCREMENT,
        staff_id TEXT NOT NULL,
        event    TEXT NOT NULL,
        at       TEXT NOT NULL
    );
    """,
)

# scrypt cost: ~50 ms here, slow enough against guessing, quick enough for a touch screen.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


class Role(enum.Enum):
    STAFF = "staff"
    SUPERVISOR = "supervisor"
    ENGINEER = "engineer"


class LoginRefused(Exception):
    def __init__(self, code: str, message_key: str) -> None:
        self.code = code
        self.message_key = message_key
        super().__init__(code)


@dataclass(frozen=True)
class StaffSession:
    staff_id: str
    role: Role
    started_at: datetime


def _hash(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, **_SCRYPT)


class StaffAccounts:
    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        failures_before_lockout: int = 5,
        lockout_minutes: int = 15,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._conn = conn
        self._failures_before_lockout = failures_before_lockout
        self._lockout = timedelta(minutes=lockout_minutes)
        self._clock = clock
        self._lock = threading.Lock()

    def add(self, staff_id: str, role: Role, password: str) -> None:
        if len(password) < 6:
            raise ValueError("a password has at least 6 characters")
        salt = secrets.token_bytes(16)
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute(
                "INSERT INTO staff_accounts(staff_id, role, salt, password_hash, created_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT(staff_id) DO UPDATE SET role = excluded.role, salt = excluded.salt,"
                " password_hash = excluded.password_hash, failures = 0, locked_until = NULL",
                (staff_id, role.value, salt, _hash(password, salt), self._clock().isoformat()),
            )
            self._event(staff_id, "account_set")
            self._conn.execute("COMMIT")

    def login(self, staff_id: str, password: str, roles: tuple[Role, ...]) -> StaffSession:
        """Checks the password; refuses unknown ids, wrong roles, wrong passwords and locked
        accounts alike after the same slow hash, and records every attempt."""
        now = self._clock()
        with self._lock:
            row = self._conn.execute(
                "SELECT role, salt, password_hash, failures, locked_until FROM staff_accounts WHERE staff_id = ?",
                (staff_id,),
            ).fetchone()
            salt = row[1] if row else secrets.token_bytes(16)
            ok = row is not None and hmac.compare_digest(_hash(password, salt), row[2])
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                if row is None:
                    self._event(staff_id, "login_unknown_id")
                    raise LoginRefused("staff.login_failed", "staff.login_failed")
                if row[4] and datetime.fromisoformat(row[4]) > now:
                    self._event(staff_id, "login_while_locked")
                    raise LoginRefused("staff.locked", "staff.locked")
                if not ok:
                    failures = row[3] + 1
                    locked = (now + self._lockout).isoformat() if failures >= self._failures_before_lockout else None
                    self._conn.execute(
                        "UPDATE staff_accounts SET failures = ?, locked_until = ? WHERE staff_id = ?",
                        (0 if locked else failures, locked, staff_id),
                    )
                    self._event(staff_id, "login_failed_locked" if locked else "login_failed")
                    raise LoginRefused("staff.locked" if locked else "staff.login_failed",
                                       "staff.locked" if locked else "staff.login_failed")
                role = Role(row[0])
                if role not in roles:
                    self._event(staff_id, "login_wrong_role")
                    raise LoginRefused("staff.wrong_role", "staff.wrong_role")
                self._conn.execute(
                    "UPDATE staff_accounts SET failures = 0, locked_until = NULL WHERE staff_id = ?", (staff_id,)
                )
                self._event(staff_id, "login")
            except LoginRefused:
                self._conn.execute("COMMIT")
                raise
            self._conn.execute("COMMIT")
        return StaffSession(staff_id, role, now)

    def logout(self, session: StaffSession) -> None:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            self._event(session.staff_id, "logout")
            self._conn.execute("COMMIT")

    def events(self, staff_id: str) -> list[str]:
        with self._lock:
            return [r[0] for r in self._conn.execute(
                "SELECT event FROM staff_events WHERE staff_id = ? ORDER BY id", (staff_id,))]

    def _event(self, staff_id: str, event: str) -> None:
        self._conn.execute(
            "INSERT INTO staff_events(staff_id, event, at) VALUES (?, ?, ?)", (staff_id, event, self._clock().isoformat())
        )
