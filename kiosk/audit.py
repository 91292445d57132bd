"""The audit log (审计日志): append-only, hash-chained with SM3, MAC'd with an evolving key.

Each entry stores ``hash = SM3(prev_hash ‖ canonical JSON of the entry)``: an edit, a deletion or
a reordering breaks the chain. Each entry also stores ``mac = HMAC-SM3(key_i, hash)`` where
``key_{i+1} = SM3("evolve" ‖ key_i)`` and only the current key is kept: someone who takes the
kiosk can recompute hashes but cannot forge the MACs of entries written before (forward
integrity). The back end, which holds the initial key, verifies MACs from the chain head sent
with each sync. Entries hold actions and identifiers, never personal data.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import hashes, hmac

from kiosk.journal import utc_now

AUDIT_SCHEMA: tuple[str, ...] = (
    """
    CREATE TABLE audit (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        at        TEXT NOT NULL,
        actor     TEXT NOT NULL,
        action    TEXT NOT NULL,
        subject   TEXT NOT NULL,
        details   TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash      TEXT NOT NULL,
        mac       TEXT NOT NULL
    );
    CREATE TABLE audit_key (
        one INTEGER PRIMARY KEY CHECK (one = 1),
        key BLOB NOT NULL
    );
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    """,
)

GENESIS = "0" * 64


def sm3(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SM3())
    digest.update(data)
    return digest.finalize()


def hmac_sm3(key: bytes, data: bytes) -> bytes:
    mac = hmac.HMAC(key, hashes.SM3())
    mac.update(data)
    return mac.finalize()


def evolve(key: bytes) -> bytes:
    return sm3(b"evolve" + key)


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: str
    actor: str
    action: str
    subject: str
    details: Mapping[str, Any]
    prev_hash: str
    hash: str
    mac: str


def _canonical(at: str, actor: str, action: str, subject: str, details: str) -> bytes:
    return json.dumps([at, actor, action, subject, details], ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class AuditLog:
    def __init__(self, conn: sqlite3.Connection, initial_key: bytes, clock: Callable[[], datetime] = utc_now) -> None:
        self._conn = conn
        self._clock = clock
        self._lock = threading.Lock()
        if conn.execute("SELECT key FROM audit_key").fetchone() is None:
            conn.execute("INSERT INTO audit_key(one, key) VALUES (1, ?)", (initial_key,))

    def append(self, actor: str, action: str, subject: str, details: Mapping[str, Any] | None = None) -> AuditEntry:
        """Appends one entry in its own durable transaction (or the caller's, if one is open)."""
        body = json.dumps(details or {}, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        at = self._clock().isoformat()
        with self._lock:
            own = not self._conn.in_transaction
            if own:
                self._conn.execute("BEGIN IMMEDIATE")
            try:
                row = self._conn.execute("SELECT hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
                prev = row[0] if row else GENESIS
                key = self._conn.execute("SELECT key FROM audit_key").fetchone()[0]
                digest = sm3(bytes.fromhex(prev) + _canonical(at, actor, action, subject, body)).hex()
                mac = hmac_sm3(key, bytes.fromhex(digest)).hex()
                cur = self._conn.execute(
                    "INSERT INTO audit(at, actor, action, subject, details, prev_hash, hash, mac)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (at, actor, action, subject, body, prev, digest, mac),
                )
                # The old key is overwritten: past MACs cannot be forged from the kiosk.
                self._conn.execute("UPDATE audit_key SET key = ?", (evolve(key),))
                if own:
                    self._conn.execute("COMMIT")
            except BaseException:
                if own:
                    self._conn.execute("ROLLBACK")
                raise
        return AuditEntry(int(cur.lastrowid or 0), at, actor, action, subject, json.loads(body), prev, digest, mac)

    def head(self) -> str:
        row = self._conn.execute("SELECT hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
        return row[0] if row else GENESIS

    def entries(self) -> list[AuditEntry]:
        rows = self._conn.execute(
            "SELECT id, at, actor, action, subject, details, prev_hash, hash, mac FROM audit ORDER BY id"
        ).fetchall()
        return [AuditEntry(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7], r[8]) for r in rows]


def verify_chain(conn: sqlite3.Connection, initial_key: bytes | None = None) -> int | None:
    """Returns the id of the first entry that does not verify, or None when the chain is whole.
    With ``initial_key`` (the back end's copy) the MACs are checked too."""
    prev = GENESIS
    key = initial_key
    expected_id = None
    for row in conn.execute("SELECT id, at, actor, action, subject, details, prev_hash, hash, mac FROM audit ORDER BY id"):
        entry_id, at, actor, action, subject, details, prev_hash, digest, mac = row
        if expected_id is not None and entry_id != expected_id:
            return expected_id
        if prev_hash != prev or sm3(bytes.fromhex(prev) + _canonical(at, actor, action, subject, details)).hex() != digest:
            return entry_id
        if key is not None:
            if hmac_sm3(key, bytes.fromhex(digest)).hex() != mac:
                return entry_id
            key = evolve(key)
        prev = digest
        expected_id = entry_id + 1
    return None
