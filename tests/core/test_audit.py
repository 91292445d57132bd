from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from kiosk.audit import AUDIT_SCHEMA, GENESIS, AuditLog, evolve, hmac_sm3, sm3, verify_chain
from kiosk.storage import open_state_db

KEY = bytes(range(32))


@pytest.fixture
def audit(tmp_path: Path) -> AuditLog:
    conn = open_state_db(tmp_path, {"audit": AUDIT_SCHEMA})
    log = AuditLog(conn, KEY)
    for i in range(5):
        log.append("staff:1001", "restock", f"card:A{i:08d}", {"count": i})
    return log


def test_sm3_known_answer() -> None:
    assert sm3(b"abc").hex() == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"


def test_a_whole_chain_verifies_with_and_without_the_key(audit: AuditLog) -> None:
    conn = audit._conn
    assert verify_chain(conn) is None
    assert verify_chain(conn, KEY) is None
    assert audit.entries()[0].prev_hash == GENESIS
    assert audit.head() == audit.entries()[-1].hash


def test_the_log_refuses_updates_and_deletes(audit: AuditLog) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        audit._conn.execute("UPDATE audit SET actor = 'x' WHERE id = 2")
    with pytest.raises(sqlite3.IntegrityError):
        audit._conn.execute("DELETE FROM audit WHERE id = 2")


def _without_triggers(conn: sqlite3.Connection) -> None:
    conn.execute("DROP TRIGGER audit_no_update")
    conn.execute("DROP TRIGGER audit_no_delete")


def test_an_edit_is_detected_at_the_edited_entry(audit: AuditLog) -> None:
    _without_triggers(audit._conn)
    audit._conn.execute("""UPDATE audit SET details = '{"count":99}' WHERE id = 3""")
    assert verify_chain(audit._conn) == 3


def test_a_deletion_is_detected(audit: AuditLog) -> None:
    _without_triggers(audit._conn)
    audit._conn.execute("DELETE FROM audit WHERE id = 2")
    assert verify_chain(audit._conn) == 2


def test_a_rebuilt_chain_is_caught_by_the_macs(audit: AuditLog) -> None:
    """An insider recomputes every hash after an edit: only the MACs (with the back end's
    initial key) reveal it, since the kiosk no longer holds the keys that made them."""
    conn = audit._conn
    _without_triggers(conn)
    conn.execute("""UPDATE audit SET actor = 'staff:9999' WHERE id = 2""")
    from kiosk.audit import _canonical

    prev = GENESIS
    for row in conn.execute("SELECT id, at, actor, action, subject, details FROM audit ORDER BY id").fetchall():
        digest = sm3(bytes.fromhex(prev) + _canonical(*row[1:])).hex()
        conn.execute("UPDATE audit SET prev_hash = ?, hash = ? WHERE id = ?", (prev, digest, row[0]))
        prev = digest
    assert verify_chain(conn) is None
    assert verify_chain(conn, KEY) == 2


def test_the_stored_key_has_moved_past_every_written_entry(audit: AuditLog) -> None:
    stored = audit._conn.execute("SELECT key FROM audit_key").fetchone()[0]
    key = KEY
    for _ in range(5):
        key = evolve(key)
    assert stored == key
    assert hmac_sm3(stored, bytes.fromhex(audit.entries()[0].hash)).hex() != audit.entries()[0].mac
