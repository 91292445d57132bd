"""The visit journal (业务流水日志): a durable record of every step of every visit.

Every step start, result, failure and compensation is committed (WAL, ``synchronous=FULL``)
*before* the flow moves on, so after a crash or a power cut :mod:`kiosk.recovery` knows where each
visit stopped. Journal data is JSON of non-personal facts only (codes, card numbers, idempotency
keys, counts); personal data is sealed elsewhere or not kept.
"""

from __future__ import annotations

import contextlib
import enum
import json
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

JOURNAL_SCHEMA: tuple[str, ...] = (
    """
    CREATE TABLE visits (
        visit_id   TEXT PRIMARY KEY,
        business   TEXT NOT NULL,
        state      TEXT NOT NULL CHECK (state IN ('active', 'ended', 'recovered')),
        outcome    TEXT,
        reason     TEXT,
        started_at TEXT NOT NULL,
        ended_at   TEXT
    );
    CREATE TABLE journal (
        id       INTEGER PRIMARY KEY AUTOINCREMENT,
        visit_id TEXT NOT NULL REFERENCES visits(visit_id),
        step     TEXT NOT NULL,
        event    TEXT NOT NULL,
        data     TEXT NOT NULL DEFAULT '{}',
        at       TEXT NOT NULL
    );
    CREATE INDEX journal_by_visit ON journal(visit_id, id);
    CREATE INDEX visits_by_state ON visits(state);
    """,
)


class StepEvent(enum.Enum):
    STARTED = "started"
    DONE = "done"
    FAILED = "failed"
    COMPENSATING = "compensating"
    COMPENSATED = "compensated"


@dataclass(frozen=True)
class JournalEntry:
    visit_id: str
    step: str
    event: StepEvent
    data: Mapping[str, Any]
    at: datetime


@dataclass(frozen=True)
class VisitRecord:
    visit_id: str
    business: str
    state: str
    outcome: str | None
    reason: str | None
    started_at: datetime
    ended_at: datetime | None


def utc_now() -> datetime:
    return datetime.now(UTC)


class Journal:
    """Writes and reads the journal. Thread-safe; every write is its own durable transaction,
    unless made inside :meth:`transaction` (then it commits with the caller's other writes,
    e.g. an outbox message produced by the same step)."""

    def __init__(self, conn: sqlite3.Connection, clock: Callable[[], datetime] = utc_now) -> None:
        self._conn = conn
        self._clock = clock
        self._lock = threading.RLock()
        self._depth = 0

    @property
    def connection(self) -> sqlite3.Connection:
        return self._conn

    @property
    def lock(self) -> threading.RLock:
        """The lock guarding the connection; writers sharing it (the outbox) take the same lock,
        so no thread joins a transaction another opened."""
        return self._lock

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One durable transaction (``BEGIN IMMEDIATE`` … ``COMMIT``); nests by joining."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self._conn
                finally:
                    self._depth -= 1
                return
            self._conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self._conn
            except BaseException:
                self._depth = 0
                self._conn.execute("ROLLBACK")
                raise
            self._depth = 0
            self._conn.execute("COMMIT")

    def start_visit(self, business: str, visit_id: str | None = None) -> str:
        visit_id = visit_id or new_visit_id(self._clock())
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO visits(visit_id, business, state, started_at) VALUES (?, ?, 'active', ?)",
                (visit_id, business, self._clock().isoformat()),
            )
        return visit_id

    def record(self, visit_id: str, step: str, event: StepEvent, data: Mapping[str, Any] | None = None) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO journal(visit_id, step, event, data, at) VALUES (?, ?, ?, ?, ?)",
                (visit_id, step, event.value, _dumps(data or {}), self._clock().isoformat()),
            )

    def end_visit(self, visit_id: str, outcome: str, reason: str | None = None, *, recovered: bool = False) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE visits SET state = ?, outcome = ?, reason = ?, ended_at = ? WHERE visit_id = ?",
                ("recovered" if recovered else "ended", outcome, reason, self._clock().isoformat(), visit_id),
            )

    def entries(self, visit_id: str) -> list[JournalEntry]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT visit_id, step, event, data, at FROM journal WHERE visit_id = ? ORDER BY id", (visit_id,)
            ).fetchall()
        return [
            JournalEntry(r[0], r[1], StepEvent(r[2]), json.loads(r[3]), datetime.fromisoformat(r[4])) for r in rows
        ]

    def visit(self, visit_id: str) -> VisitRecord | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT visit_id, business, state, outcome, reason, started_at, ended_at FROM visits WHERE visit_id = ?",
                (visit_id,),
            ).fetchone()
        return _visit(row) if row else None

    def unfinished_visits(self) -> list[VisitRecord]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT visit_id, business, state, outcome, reason, started_at, ended_at FROM visits"
                " WHERE state = 'active' ORDER BY started_at"
            ).fetchall()
        return [_visit(r) for r in rows]

    def find_step_data(self, step: str, field: str, value: str) -> list[dict[str, Any]]:
        """The merged data of every ``step`` (any visit) whose journaled ``field`` equals ``value``:
        how a later visit finds the application an interrupted one submitted."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT visit_id FROM journal WHERE step = ? AND json_extract(data, '$.' || ?) = ?",
                (step, field, value),
            ).fetchall()
        found: list[dict[str, Any]] = []
        for (visit_id,) in dict.fromkeys(rows):
            merged: dict[str, Any] = {"visit_id": visit_id}
            for entry in self.entries(visit_id):
                if entry.step == step:
                    merged.update(entry.data)
            found.append(merged)
        return found

    def recent_visits(self, limit: int = 50) -> list[VisitRecord]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT visit_id, business, state, outcome, reason, started_at, ended_at FROM visits"
                " ORDER BY started_at DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [_visit(r) for r in rows]


def step_states(entries: list[JournalEntry]) -> dict[str, StepEvent]:
    """The last event of each step, in the order the steps first appeared."""
    states: dict[str, StepEvent] = {}
    for entry in entries:
        states[entry.step] = entry.event
    return states


def step_results(entries: list[JournalEntry]) -> dict[str, Mapping[str, Any]]:
    """The data each completed step saved (what a resumed visit reuses)."""
    return {e.step: e.data for e in entries if e.event is StepEvent.DONE}


def new_visit_id(now: datetime) -> str:
    return now.strftime("V%Y%m%d%H%M%S-") + uuid.uuid4().hex[:8]


def _dumps(data: Mapping[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, sort_keys=True, default=str)


def _visit(row: tuple[Any, ...]) -> VisitRecord:
    return VisitRecord(
        row[0], row[1], row[2], row[3], row[4],
        datetime.fromisoformat(row[5]), datetime.fromisoformat(row[6]) if row[6] else None,
    )
