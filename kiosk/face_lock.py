"""Face verification lock (人脸核验锁定): repeated failures for one ID number lock the face step.

DOMAIN.md: "face verification failures are rate-limited and recorded". After
``failures_before_lock`` consecutive failures (a rejected match, or a failed liveness, as the flow
decides) for one ID number, face verification for that number is refused until ``lock_minutes``
have passed; the citizen is sent to the staffed path (人工窗口). A success clears the count.

The ID number is personal data: the table keeps only HMAC-SHA256(key, ID number) under a key
the composition root passes in (from the key file), so the database alone cannot tell whose
attempts these were and a dictionary of the 18-digit numbers cannot be run against it without
the key. Every attempt and every lock is recorded (``face_lock_events``), never the number.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

FACE_LOCK_SCHEMA: tuple[str, ...] = (
    """
    CREATE TABLE face_lock (
        subject      TEXT PRIMARY KEY,      -- hex HMAC-SHA256 of the ID number
        failures     INTEGER NOT NULL DEFAULT 0,
        locked_until TEXT,
        updated_at   TEXT NOT NULL
    );
    CREATE TABLE face_lock_events (
        id       INTEGER PRIMARY KEY AUTOINCREMENT,
        subject  TEXT NOT NULL,
        event    TEXT NOT NULL CHECK (event IN ('failure', 'success', 'locked', 'refused', 'unlocked')),
        reason   TEXT NOT NULL DEFAULT '',
        at       TEXT NOT NULL
    );
    CREATE INDEX face_lock_events_subject ON face_lock_events(subject);
    """,
)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class FaceLockEvent(enum.Enum):
    FAILURE = "failure"
    SUCCESS = "success"
    LOCKED = "locked"
    REFUSED = "refused"
    UNLOCKED = "unlocked"


@dataclass(frozen=True)
class FaceLockState:
    """Whether face verification is open for a number now, and for how long it stays locked."""

    locked: bool
    failures: int
    locked_until: datetime | None
    remaining_tries: int

    @property
    def message_key(self) -> str:
        return "camera.face_locked" if self.locked else "camera.face_open"


class FaceVerificationLocked(Exception):
    """Face verification is locked for this number; ``state.locked_until`` says until when."""

    code = "face.locked"
    message_key = "camera.face_locked"

    def __init__(self, state: FaceLockState) -> None:
        self.state = state
        super().__init__(self.code)


class FaceLock:
    """Counts face failures per ID number (stored as a keyed hash) and locks after the limit."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        key: bytes,
        *,
        failures_before_lock: int = 3,
        lock_minutes: int = 30,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if len(key) < 16:
            raise ValueError("the face lock key must be at least 16 bytes")
        if failures_before_lock < 1 or lock_minutes < 1:
            raise ValueError("failures_before_lock and lock_minutes must be ≥ 1")
        self._conn = conn
        self._key = bytes(key)
        self.failures_before_lock = failures_before_lock
        self.lock_duration = timedelta(minutes=lock_minutes)
        self._clock = clock
        self._mutex = threading.Lock()

    def subject(self, id_number: str) -> str:
        """The keyed hash that stands for the ID number (upper-cased: the check character X)."""
        normalised = id_number.strip().upper().encode("ascii", "strict")
        return hmac.new(self._key, normalised, hashlib.sha256).hexdigest()

    def state(self, id_number: str) -> FaceLockState:
        return self._state(self.subject(id_number), self._clock())

    def check(self, id_number: str) -> FaceLockState:
        """Raises FaceVerificationLocked (and records the refusal) while locked."""
        subject = self.subject(id_number)
        with self._mutex:
            now = self._clock()
            state = self._state(subject, now)
            if state.locked:
                self._event(subject, FaceLockEvent.REFUSED, "", now)
                raise FaceVerificationLocked(state)
            return state

    def record_failure(self, id_number: str, reason: str) -> FaceLockState:
        """One failed verification (``reason``: a machine code such as ``match.reject``)."""
        subject = self.subject(id_number)
        with self._mutex:
            now = self._clock()
            current = self._state(subject, now)
            failures = 0 if current.locked_until is not None and not current.locked else current.failures
            failures += 1
            locked_until = now + self.lock_duration if failures >= self.failures_before_lock else None
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute(
                    "INSERT INTO face_lock(subject, failures, locked_until, updated_at) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT(subject) DO UPDATE SET failures = excluded.failures,"
                    " locked_until = excluded.locked_until, updated_at = excluded.updated_at",
                    (subject, failures, locked_until.isoformat() if locked_until else None, now.isoformat()),
                )
                self._insert_event(subject, FaceLockEvent.FAILURE, reason, now)
                if locked_until is not None:
                    self._insert_event(subject, FaceLockEvent.LOCKED, reason, now)
                self._conn.execute("COMMIT")
            except sqlite3.Error:
                self._conn.execute("ROLLBACK")
                raise
            return self._state(subject, now)

    def record_success(self, id_number: str) -> None:
        subject = self.subject(id_number)
        with self._mutex:
            now = self._clock()
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute("DELETE FROM face_lock WHERE subject = ?", (subject,))
                self._insert_event(subject, FaceLockEvent.SUCCESS, "", now)
                self._conn.execute("COMMIT")
            except sqlite3.Error:
                self._conn.execute("ROLLBACK")
                raise

    def unlock(self, id_number: str, reason: str) -> None:
        """A staff unlock (after checking the citizen in person); recorded with its reason."""
        subject = self.subject(id_number)
        with self._mutex:
            now = self._clock()
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute("DELETE FROM face_lock WHERE subject = ?", (subject,))
                self._insert_event(subject, FaceLockEvent.UNLOCKED, reason, now)
                self._conn.execute("COMMIT")
            except sqlite3.Error:
                self._conn.execute("ROLLBACK")
                raise

    def events(self, id_number: str) -> list[tuple[FaceLockEvent, str, datetime]]:
        rows = self._conn.execute(
            "SELECT event, reason, at FROM face_lock_events WHERE subject = ? ORDER BY id",
            (self.subject(id_number),),
        ).fetchall()
        return [(FaceLockEvent(e), r, datetime.fromisoformat(a)) for e, r, a in rows]

    # ----------------------------------------------------------------- internals

    def _state(self, subject: str, now: datetime) -> FaceLockState:
        row = self._conn.execute(
            "SELECT failures, locked_until FROM face_lock WHERE subject = ?", (subject,)
        ).fetchone()
        if row is None:
            return FaceLockState(False, 0, None, self.failures_before_lock)
        failures, until_text = row
        until = datetime.fromisoformat(until_text) if until_text else None
        locked = until is not None and now < until
        if until is not None and not locked:
            # The lock expired: the count starts again.
            return FaceLockState(False, 0, until, self.failures_before_lock)
        return FaceLockState(locked, failures, until, 0 if locked else self.failures_before_lock - failures)

    def _event(self, subject: str, event: FaceLockEvent, reason: str, now: datetime) -> None:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._insert_event(subject, event, reason, now)
            self._conn.execute("COMMIT")
        except sqlite3.Error:
            self._conn.execute("ROLLBACK")
            raise

    def _insert_event(self, subject: str, event: FaceLockEvent, reason: str, now: datetime) -> None:
        self._conn.execute(
            "INSERT INTO face_lock_events(subject, event, reason, at) VALUES (?, ?, ?, ?)",
            (subject, event.value, reason, now.isoformat()),
        )
