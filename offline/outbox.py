"""The outbox (待上送队列) in the kiosk's state database.

Whatever the back end has not acknowledged — result reports (回盘), activations (启用), ledger
movements (卡片台账), audit records, destruction records, applications taken while offline
(离线受理申请) — is a row here until the back end acknowledges it. Rules, each enforced by the
schema as well as by the code:

- an unacknowledged row is never deleted (a trigger refuses it) and its payload is never dropped
  (a CHECK refuses it);
- an acknowledged row never goes back to another state;
- every payload is sealed (SM4-GCM, :mod:`offline.sealing`) bound to its idempotency key and kind;
- after acknowledgement the payload is overwritten (``PRAGMA secure_delete``) and, for a message
  that held personal data, a destruction record (销毁记录: what, when, why — never the data) is
  written locally and queued for the back end, in the same transaction.

The caller opens the connection (WAL, ``synchronous=FULL``, foreign keys: ``kiosk.storage.connect``)
and applies :data:`OUTBOX_SCHEMA` as component ``"outbox"``. :meth:`Outbox.enqueue` is one durable
transaction, or joins the caller's open transaction so a visit's journal step and the message it
produced commit together. This module imports nothing from ``kiosk`` but ``kiosk.devices``.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from kiosk.devices import DeviceState, DeviceStatus
from offline.errors import KeyReusedError, MessageNotFound, NotQuarantined, OutboxError, SealingError
from offline.sealing import Sealer

OUTBOX_COMPONENT = "outbox"

OUTBOX_SCHEMA: tuple[str, ...] = (
    """
    CREATE TABLE outbox (
        id               INTEGER PRIMARY KEY AUTOINCREMENT,
        idempotency_key  TEXT NOT NULL UNIQUE,
        kind             TEXT NOT NULL,
        visit_id         TEXT,
        personal_data    TEXT NOT NULL DEFAULT '',
        payload          BLOB,
        created_at       TEXT NOT NULL,
        attempts         INTEGER NOT NULL DEFAULT 0,
        next_attempt_at  TEXT NOT NULL,
        state            TEXT NOT NULL DEFAULT 'pending'
                         CHECK (state IN ('pending', 'in_flight', 'acknowledged', 'quarantined')),
        last_error       TEXT,
        sent_at          TEXT,
        acknowledged_at  TEXT,
        acknowledgement  TEXT,
        purged_at        TEXT,
        CHECK (payload IS NOT NULL OR state = 'acknowledged')
    );
    CREATE INDEX outbox_due ON outbox(state, next_attempt_at, id);
    CREATE INDEX outbox_by_visit ON outbox(visit_id, id);
    CREATE TRIGGER outbox_never_delete_unacknowledged BEFORE DELETE ON outbox
        WHEN OLD.state <> 'acknowledged'
    BEGIN
        SELECT RAISE(ABORT, 'outbox: an unacknowledged message is never deleted');
    END;
    CREATE TRIGGER outbox_acknowledged_is_final BEFORE UPDATE OF state ON outbox
        WHEN OLD.state = 'acknowledged' AND NEW.state <> 'acknowledged'
    BEGIN
        SELECT RAISE(ABORT, 'outbox: an acknowledged message stays acknowledged');
    END;
    CREATE TABLE outbox_destruction_records (
        id               INTEGER PRIMARY KEY AUTOINCREMENT,
        idempotency_key  TEXT NOT NULL,
        kind             TEXT NOT NULL,
        visit_id         TEXT,
        what             TEXT NOT NULL,
        why              TEXT NOT NULL,
        method           TEXT NOT NULL,
        destroyed_at     TEXT NOT NULL
    );
    CREATE TRIGGER outbox_destruction_records_append_only BEFORE UPDATE ON outbox_destruction_records
    BEGIN
        SELECT RAISE(ABORT, 'outbox: destruction records are append-only');
    END;
    CREATE TRIGGER outbox_destruction_records_kept BEFORE DELETE ON outbox_destruction_records
    BEGIN
        SELECT RAISE(ABORT, 'outbox: destruction records are append-only');
    END;
    """,
)

_IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._-]{8,128}$")  # the back-end contract's pattern


class MessageKind(enum.Enum):
    """What a message reports to the back end."""

    RESULT_REPORT = "result_report"  # 回盘: card number, ATR, card identification code
    ACTIVATION = "activation"  # 启用: both applications enabled
    LEDGER_MOVEMENT = "ledger_movement"  # 卡片台账: a blank card used, spoiled, rejected
    AUDIT = "audit"  # 审计记录
    DESTRUCTION_RECORD = "destruction_record"  # 销毁记录
    APPLICATION = "application"  # 离线受理申请: queued for central production (集中制卡)

    @property
    def default_personal_data(self) -> tuple[PersonalData, ...]:
        if self is MessageKind.APPLICATION:
            return (PersonalData.ID_TEXT, PersonalData.PHOTO, PersonalData.CONSENT)
        return ()


class PersonalData(enum.Enum):
    """Categories of personal data a payload may hold (what a destruction record names).

    There is deliberately no face template: templates live in memory only and never enter the
    outbox (research/anchors.md §3.2)."""

    ID_TEXT = "id_text"  # 身份证文字信息
    PHOTO = "photo"  # 证件照/现场照
    CONSENT = "consent"  # 授权同意记录
    CONTACT = "contact"  # 联系电话、地址
    BANK_ACCOUNT = "bank_account"  # 银行账号


class MessageState(enum.Enum):
    PENDING = "pending"  # waiting for its turn or its next attempt
    IN_FLIGHT = "in_flight"  # claimed: being sent, or sent with the outcome not known yet
    ACKNOWLEDGED = "acknowledged"  # the back end has it; the payload is purged
    QUARANTINED = "quarantined"  # refused or ambiguous after look-up: staff decide (last_error)


def utc_now() -> datetime:
    return datetime.now(UTC)


def stamp(moment: datetime) -> str:
    """Fixed-width ISO-8601 in UTC, so stored times compare as text."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class OutboxMessage:
    """One row as staff and the worker see it (never the payload)."""

    id: int
    idempotency_key: str
    kind: MessageKind
    visit_id: str | None
    personal_data: tuple[PersonalData, ...]
    created_at: datetime
    attempts: int
    next_attempt_at: datetime
    state: MessageState
    last_error: str | None
    sent_at: datetime | None
    acknowledged_at: datetime | None
    acknowledgement: str | None
    purged: bool

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "idempotency_key": self.idempotency_key,
            "kind": self.kind.value,
            "visit_id": self.visit_id,
            "personal_data": [p.value for p in self.personal_data],
            "created_at": stamp(self.created_at),
            "attempts": self.attempts,
            "next_attempt_at": stamp(self.next_attempt_at),
            "state": self.state.value,
            "last_error": self.last_error,
            "sent_at": stamp(self.sent_at) if self.sent_at else None,
            "acknowledged_at": stamp(self.acknowledged_at) if self.acknowledged_at else None,
            "acknowledgement": self.acknowledgement,
            "purged": self.purged,
        }


@dataclass(frozen=True)
class Delivery:
    """A claimed message with its opened payload, handed to a :class:`offline.sync.Sender`."""

    message_id: int
    idempotency_key: str
    kind: MessageKind
    visit_id: str | None
    attempt: int
    payload: bytes = field(repr=False)


@dataclass(frozen=True)
class DestructionRecord:
    """销毁记录: what was destroyed, when and why — never the data itself."""

    id: int
    idempotency_key: str
    kind: MessageKind
    visit_id: str | None
    what: tuple[PersonalData, ...]
    why: str
    method: str
    destroyed_at: datetime

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "idempotency_key": self.idempotency_key,
            "kind": self.kind.value,
            "visit_id": self.visit_id,
            "what": [p.value for p in self.what],
            "why": self.why,
            "method": self.method,
            "destroyed_at": stamp(self.destroyed_at),
        }


@dataclass(frozen=True)
class OutboxStatus:
    counts: dict[MessageState, int]
    oldest_unacknowledged_at: datetime | None
    oldest_unacknowledged_age_s: float | None
    destruction_records: int

    def as_dict(self) -> dict[str, object]:
        return {
            "counts": {state.value: self.counts.get(state, 0) for state in MessageState},
            "oldest_pending_at": stamp(self.oldest_unacknowledged_at)
            if self.oldest_unacknowledged_at
            else None,
            "oldest_pending_age_s": (
                round(self.oldest_unacknowledged_age_s, 1)
                if self.oldest_unacknowledged_age_s is not None
                else None
            ),
            "destruction_records": self.destruction_records,
        }


# Outcomes the sync worker settles in one transaction (see :meth:`Outbox.settle`).
@dataclass(frozen=True)
class Acknowledged:
    message_id: int
    acknowledgement: str


@dataclass(frozen=True)
class RetryLater:
    """Provably not processed (or proven by look-up not to have arrived): pending again."""

    message_id: int
    at: datetime
    error: str
    counts_as_attempt: bool = True


@dataclass(frozen=True)
class OutcomeUnknown:
    """Sent, outcome not known and the look-up could not be asked: stays in flight until ``at``."""

    message_id: int
    at: datetime
    error: str


@dataclass(frozen=True)
class Quarantine:
    message_id: int
    reason: str


Outcome = Acknowledged | RetryLater | OutcomeUnknown | Quarantine

PURGE_METHOD = "payload overwritten in the state database (SQLite secure_delete)"

_COLUMNS = (
    "id, idempotency_key, kind, visit_id, personal_data, created_at, attempts, next_attempt_at, state,"
    " last_error, sent_at, acknowledged_at, acknowledgement, payload IS NULL"
)


class Outbox:
    """The outbox over one connection. Thread-safe for its own calls; give the sync worker its
    own connection (WAL lets it read while a visit writes; ``BEGIN IMMEDIATE`` serialises writers).
    Without a ``sealer`` (staff commands) it can report, list and retry, but not enqueue or send.
    When the connection is shared with another writer (the visit journal), pass that writer's
    ``lock`` so another thread never joins a transaction it did not open."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        sealer: Sealer | None = None,
        clock: Callable[[], datetime] = utc_now,
        *,
        lock: threading.RLock | None = None,
    ) -> None:
        self._conn = conn
        self._sealer = sealer
        self._clock = clock
        self._lock = lock if lock is not None else threading.RLock()
        # Freed pages (a purged payload) are zeroed rather than left in the file.
        conn.execute("PRAGMA secure_delete=ON")

    @property
    def connection(self) -> sqlite3.Connection:
        return self._conn

    def _require_sealer(self) -> Sealer:
        if self._sealer is None:
            raise SealingError("this outbox was opened without the key file", code="outbox.key_missing")
        return self._sealer

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """Joins the caller's open transaction, or runs one durable ``BEGIN IMMEDIATE … COMMIT``."""
        with self._lock:
            if self._conn.in_transaction:
                yield self._conn
                return
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # ------------------------------------------------------------ producing

    def enqueue(
        self,
        idempotency_key: str,
        kind: MessageKind,
        payload: bytes,
        *,
        visit_id: str | None = None,
        personal_data: Sequence[PersonalData] | None = None,
    ) -> int:
        """Queues one message and returns its id.

        If the connection is inside a transaction (e.g. the visit journal's), the row joins it and
        commits with the caller's other writes; otherwise the call is one durable transaction.
        Enqueuing the same key again for the same kind and visit returns the existing id (a step
        re-run after a crash); for anything else it raises :class:`KeyReusedError`.
        """
        if not _IDEMPOTENCY_KEY.match(idempotency_key):
            raise OutboxError("idempotency key must match [A-Za-z0-9._-]{8,128}", code="outbox.bad_key")
        categories = tuple(kind.default_personal_data if personal_data is None else personal_data)
        sealed = self._require_sealer().seal(payload, _context(idempotency_key, kind))
        now = stamp(self._clock())
        with self._transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO outbox(idempotency_key, kind, visit_id, personal_data, payload, created_at,"
                " next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(idempotency_key) DO NOTHING",
                (
                    idempotency_key,
                    kind.value,
                    visit_id,
                    ",".join(p.value for p in categories),
                    sealed,
                    now,
                    now,
                ),
            )
            if cursor.rowcount == 1:
                return int(cursor.lastrowid or 0)
            row = conn.execute(
                "SELECT id, kind, visit_id FROM outbox WHERE idempotency_key = ?", (idempotency_key,)
            ).fetchone()
        if row[1] != kind.value or row[2] != visit_id:
            raise KeyReusedError(f"idempotency key {idempotency_key} already queued for another message")
        return int(row[0])

    # ------------------------------------------------------------ reading

    def get(self, message_id: int) -> OutboxMessage:
        with self._lock:
            row = self._conn.execute(f"SELECT {_COLUMNS} FROM outbox WHERE id = ?", (message_id,)).fetchone()
        if row is None:
            raise MessageNotFound(f"no outbox message {message_id}")
        return _message(row)

    def by_key(self, idempotency_key: str) -> OutboxMessage | None:
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_COLUMNS} FROM outbox WHERE idempotency_key = ?", (idempotency_key,)
            ).fetchone()
        return _message(row) if row else None

    def messages(self, state: MessageState | None = None, limit: int = 100) -> list[OutboxMessage]:
        with self._lock:
            if state is None:
                rows = self._conn.execute(f"SELECT {_COLUMNS} FROM outbox ORDER BY id LIMIT ?", (limit,))
            else:
                rows = self._conn.execute(
                    f"SELECT {_COLUMNS} FROM outbox WHERE state = ? ORDER BY id LIMIT ?", (state.value, limit)
                )
            return [_message(r) for r in rows.fetchall()]

    def status(self) -> OutboxStatus:
        with self._lock:
            counts = {
                MessageState(s): n
                for s, n in self._conn.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state").fetchall()
            }
            oldest = self._conn.execute(
                "SELECT MIN(created_at) FROM outbox WHERE state IN ('pending', 'in_flight')"
            ).fetchone()[0]
            records = self._conn.execute("SELECT COUNT(*) FROM outbox_destruction_records").fetchone()[0]
        oldest_at = datetime.fromisoformat(oldest) if oldest else None
        age = (self._clock() - oldest_at).total_seconds() if oldest_at else None
        return OutboxStatus(counts, oldest_at, age, records)

    def device_status(self, alert_after_attempts: int = 6) -> DeviceStatus:
        """For the engineer menu and telemetry: quarantined messages, or messages still not
        acknowledged after ``alert_after_attempts`` attempts, need staff."""
        status = self.status()
        quarantined = status.counts.get(MessageState.QUARANTINED, 0)
        waiting = status.counts.get(MessageState.PENDING, 0) + status.counts.get(MessageState.IN_FLIGHT, 0)
        with self._lock:
            stuck = self._conn.execute(
                "SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'in_flight') AND attempts >= ?",
                (alert_after_attempts,),
            ).fetchone()[0]
        levels = {"pending": waiting, "quarantined": quarantined, "stuck": stuck}
        if quarantined:
            return DeviceStatus(
                "outbox",
                DeviceState.ATTENTION,
                "outbox.quarantined",
                "outbox.quarantined",
                f"{quarantined} quarantined",
                levels,
            )
        if stuck:
            return DeviceStatus(
                "outbox",
                DeviceState.ATTENTION,
                "outbox.stuck",
                "outbox.stuck",
                f"{stuck} unacknowledged after {alert_after_attempts} attempts",
                levels,
            )
        return DeviceStatus("outbox", DeviceState.READY, "ok", "outbox.ok", "", levels)

    def destruction_records(self, limit: int = 100) -> list[DestructionRecord]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, idempotency_key, kind, visit_id, what, why, method, destroyed_at"
                " FROM outbox_destruction_records ORDER BY id LIMIT ?",
                (limit,),
            ).fetchall()
        return [
            DestructionRecord(
                r[0],
                r[1],
                MessageKind(r[2]),
                r[3],
                _categories(r[4]),
                r[5],
                r[6],
                datetime.fromisoformat(r[7]),
            )
            for r in rows
        ]

    # ------------------------------------------------------------ staff

    def retry(self, message_id: int) -> OutboxMessage:
        """Releases a quarantined message for another try (staff, after checking with the back
        end); the reason it was quarantined stays in ``last_error`` until the next attempt."""
        with self._transaction() as conn:
            row = conn.execute("SELECT state FROM outbox WHERE id = ?", (message_id,)).fetchone()
            if row is None:
                raise MessageNotFound(f"no outbox message {message_id}")
            if row[0] != MessageState.QUARANTINED.value:
                raise NotQuarantined(f"message {message_id} is {row[0]}, not quarantined")
            conn.execute(
                "UPDATE outbox SET state = 'pending', next_attempt_at = ? WHERE id = ?",
                (stamp(self._clock()), message_id),
            )
        return self.get(message_id)

    def prune_acknowledged(self, before: datetime) -> int:
        """Deletes acknowledged rows (already purged of payload) acknowledged before ``before``."""
        with self._transaction() as conn:
            return conn.execute(
                "DELETE FROM outbox WHERE state = 'acknowledged' AND acknowledged_at < ?", (stamp(before),)
            ).rowcount

    # ------------------------------------------------------------ the sync worker's side

    def due_heads(self, limit: int) -> list[int]:
        """Pending messages whose attempt is due and that are first in line for their visit: a
        visit's message waits while an earlier one of the same visit is unacknowledged (in
        flight, pending or quarantined), so the back end sees a visit's messages in order."""
        now = stamp(self._clock())
        with self._lock:
            rows = self._conn.execute(
                "SELECT o.id FROM outbox o WHERE o.state = 'pending' AND o.next_attempt_at <= ?"
                " AND (o.visit_id IS NULL OR NOT EXISTS (SELECT 1 FROM outbox p WHERE p.visit_id = o.visit_id"
                "      AND p.id < o.id AND p.state <> 'acknowledged'))"
                " ORDER BY o.next_attempt_at, o.id LIMIT ?",
                (now, limit),
            ).fetchall()
        return [r[0] for r in rows]

    def in_flight(self, *, due_only: bool) -> list[int]:
        """Messages sent with the outcome unknown: all of them after a restart, else those whose
        next look-up is due."""
        with self._lock:
            if due_only:
                rows = self._conn.execute(
                    "SELECT id FROM outbox WHERE state = 'in_flight' AND next_attempt_at <= ? ORDER BY id",
                    (stamp(self._clock()),),
                ).fetchall()
            else:
                rows = self._conn.execute(
                    "SELECT id FROM outbox WHERE state = 'in_flight' ORDER BY id"
                ).fetchall()
        return [r[0] for r in rows]

    def claim(self, message_ids: Iterable[int], lease: timedelta) -> list[Delivery | Quarantine]:
        """Marks pending messages in flight (one durable commit) *before* they are sent, then
        opens their payloads. A crash after this point leaves them in flight: the next start
        resolves them by look-up or re-sends them with the same idempotency key. A payload that
        cannot be opened (key removed, tampered) comes back as a :class:`Quarantine` outcome."""
        now = self._clock()
        claimed: list[tuple[int, str, str, str | None, int, bytes]] = []
        with self._transaction() as conn:
            for message_id in message_ids:
                row = conn.execute(
                    "UPDATE outbox SET state = 'in_flight', attempts = attempts + 1, sent_at = ?,"
                    " next_attempt_at = ? WHERE id = ? AND state = 'pending'"
                    " RETURNING id, idempotency_key, kind, visit_id, attempts, payload",
                    (stamp(now), stamp(now + lease), message_id),
                ).fetchall()
                claimed.extend(row)
        return [self._delivery(*row) for row in claimed]

    def reopen(self, message_id: int, lease: timedelta, *, resend: bool) -> Delivery | Quarantine:
        """An in-flight message again (recovery): with ``resend`` its attempt is counted."""
        now = self._clock()
        with self._transaction() as conn:
            row = conn.execute(
                "UPDATE outbox SET attempts = attempts + ?, sent_at = CASE WHEN ? THEN ? ELSE sent_at END,"
                " next_attempt_at = ? WHERE id = ? AND state = 'in_flight'"
                " RETURNING id, idempotency_key, kind, visit_id, attempts, payload",
                (int(resend), int(resend), stamp(now), stamp(now + lease), message_id),
            ).fetchall()
        if not row:
            raise MessageNotFound(f"message {message_id} is not in flight")
        return self._delivery(*row[0])

    def settle(self, outcomes: Sequence[Outcome]) -> None:
        """Records the outcomes of a batch in one durable transaction. An acknowledgement purges
        the payload and, for personal data, writes a destruction record and queues it."""
        if not outcomes:
            return
        now = self._clock()
        with self._transaction() as conn:
            for outcome in outcomes:
                if isinstance(outcome, Acknowledged):
                    self._acknowledge(conn, outcome, now)
                elif isinstance(outcome, RetryLater):
                    conn.execute(
                        "UPDATE outbox SET state = 'pending', next_attempt_at = ?, last_error = ?,"
                        " attempts = attempts - ? WHERE id = ? AND state = 'in_flight'",
                        (
                            stamp(outcome.at),
                            outcome.error[:500],
                            int(not outcome.counts_as_attempt),
                            outcome.message_id,
                        ),
                    )
                elif isinstance(outcome, OutcomeUnknown):
                    conn.execute(
                        "UPDATE outbox SET next_attempt_at = ?, last_error = ? WHERE id = ? AND state = 'in_flight'",
                        (stamp(outcome.at), outcome.error[:500], outcome.message_id),
                    )
                else:
                    conn.execute(
                        "UPDATE outbox SET state = 'quarantined', last_error = ? WHERE id = ? AND state = 'in_flight'",
                        (outcome.reason[:500], outcome.message_id),
                    )

    def _acknowledge(self, conn: sqlite3.Connection, outcome: Acknowledged, now: datetime) -> None:
        row = conn.execute(
            "UPDATE outbox SET state = 'acknowledged', acknowledged_at = ?, acknowledgement = ?,"
            " last_error = NULL, payload = NULL, purged_at = ?"
            " WHERE id = ? AND state IN ('in_flight', 'pending', 'quarantined')"
            " RETURNING idempotency_key, kind, visit_id, personal_data",
            (stamp(now), outcome.acknowledgement[:200], stamp(now), outcome.message_id),
        ).fetchall()
        if not row or not row[0][3]:
            return
        key, kind, visit_id, categories = row[0]
        why = (
            f"acknowledged by the back end ({outcome.acknowledgement[:60]}): purpose achieved (PIPL art. 47)"
        )
        conn.execute(
            "INSERT INTO outbox_destruction_records(idempotency_key, kind, visit_id, what, why, method,"
            " destroyed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (key, kind, visit_id, categories, why, PURGE_METHOD, stamp(now)),
        )
        record = {
            "record": "destruction",
            "idempotency_key": key,
            "kind": kind,
            "visit_id": visit_id,
            "what": categories.split(","),
            "why": why,
            "method": PURGE_METHOD,
            "destroyed_at": stamp(now),
        }
        self.enqueue(
            destruction_key(key),
            MessageKind.DESTRUCTION_RECORD,
            json.dumps(record, ensure_ascii=False, sort_keys=True).encode("utf-8"),
            visit_id=visit_id,
            personal_data=(),
        )

    def _delivery(
        self, message_id: int, key: str, kind: str, visit_id: str | None, attempts: int, sealed: bytes
    ) -> Delivery | Quarantine:
        kind_ = MessageKind(kind)
        try:
            payload = self._require_sealer().open(sealed, _context(key, kind_))
        except SealingError as exc:
            return Quarantine(message_id, f"payload cannot be opened: {exc.code}")
        return Delivery(message_id, key, kind_, visit_id, attempts, payload)


def destruction_key(key: str) -> str:
    """The idempotency key of the destruction record of message ``key`` (deterministic)."""
    candidate = f"{key}.destroyed"
    if len(candidate) <= 128:
        return candidate
    return "destroyed." + hashlib.sha256(key.encode("ascii")).hexdigest()


def _context(key: str, kind: MessageKind) -> bytes:
    return f"outbox\x00{key}\x00{kind.value}".encode("ascii")


def _categories(text: str) -> tuple[PersonalData, ...]:
    return tuple(PersonalData(p) for p in text.split(",") if p)


def _message(row: tuple) -> OutboxMessage:  # type: ignore[type-arg]
    return OutboxMessage(
        id=row[0],
        idempotency_key=row[1],
        kind=MessageKind(row[2]),
        visit_id=row[3],
        personal_data=_categories(row[4]),
        created_at=datetime.fromisoformat(row[5]),
        attempts=row[6],
        next_attempt_at=datetime.fromisoformat(row[7]),
        state=MessageState(row[8]),
        last_error=row[9],
        sent_at=datetime.fromisoformat(row[10]) if row[10] else None,
        acknowledged_at=datetime.fromisoformat(row[11]) if row[11] else None,
        acknowledgement=row[12],
        purged=bool(row[13]),
    )
