"""The outbox table: durable enqueue (alone or inside the journal's transaction), the rules the
schema enforces, per-visit order, and no personal data in clear in the database file."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from outbox_helpers import Clock

from kiosk.journal import JOURNAL_SCHEMA, Journal, StepEvent
from kiosk.storage import migrate
from offline.errors import KeyReusedError, NotQuarantined, OutboxError
from offline.outbox import (
    Acknowledged,
    MessageKind,
    MessageState,
    Outbox,
    PersonalData,
    Quarantine,
)
from offline.sealing import Sealer

# Fictitious citizen (seeded personal data the database file must never show in clear).
NAME = "王秀英"
ID_NUMBER = "11010519491231002X"
PHONE = "13800138000"
PHOTO = b"\xff\xd8\xff\xe0JFIF-PHOTO-MARKER-" + bytes(range(256)) * 24  # spills into overflow pages


def application_payload() -> bytes:
    return json.dumps(
        {"name": NAME, "id_number": ID_NUMBER, "phone": PHONE, "photo": PHOTO.hex()}, ensure_ascii=False
    ).encode("utf-8")


def database_bytes(db_path: Path) -> bytes:
    """The database and its WAL, as a thief copying the disk would see them."""
    data = db_path.read_bytes()
    wal = db_path.with_name(db_path.name + "-wal")
    return data + (wal.read_bytes() if wal.exists() else b"")


def seeded_needles() -> list[bytes]:
    needles = [
        NAME.encode("utf-8"),
        NAME.encode("gb18030"),
        ID_NUMBER.encode(),
        ID_NUMBER[-10:].encode(),
        PHONE.encode(),
        b"PHOTO-MARKER",
        PHOTO.hex()[:40].encode(),
    ]
    # JSON with ensure_ascii escapes Chinese as \uXXXX.
    needles.append(json.dumps(NAME).strip('"').encode())
    return needles


def test_enqueue_is_durable_on_its_own(outbox: Outbox, db_path: Path) -> None:
    message_id = outbox.enqueue("V1.submit", MessageKind.APPLICATION, application_payload(), visit_id="V1")
    other = sqlite3.connect(db_path)  # another process's view: committed
    try:
        assert other.execute("SELECT state FROM outbox WHERE id = ?", (message_id,)).fetchone() == (
            "pending",
        )
    finally:
        other.close()
    message = outbox.get(message_id)
    assert message.state is MessageState.PENDING and message.attempts == 0
    assert message.personal_data == (PersonalData.ID_TEXT, PersonalData.PHOTO, PersonalData.CONSENT)


def test_enqueue_commits_with_the_journal_step_or_not_at_all(
    conn: sqlite3.Connection, outbox: Outbox
) -> None:
    migrate(conn, "journal", JOURNAL_SCHEMA)
    journal = Journal(conn)
    visit = journal.start_visit("first_issue")
    with pytest.raises(RuntimeError), journal.transaction():
        journal.record(visit, "submit_application", StepEvent.DONE, {"key": f"{visit}.submit"})
        outbox.enqueue(f"{visit}.submit", MessageKind.APPLICATION, application_payload(), visit_id=visit)
        raise RuntimeError("power cut before commit")
    assert outbox.by_key(f"{visit}.submit") is None
    assert journal.entries(visit) == []
    with journal.transaction():
        journal.record(visit, "submit_application", StepEvent.DONE, {"key": f"{visit}.submit"})
        outbox.enqueue(f"{visit}.submit", MessageKind.APPLICATION, application_payload(), visit_id=visit)
    assert outbox.by_key(f"{visit}.submit") is not None
    assert [e.step for e in journal.entries(visit)] == ["submit_application"]


def test_same_key_again_returns_the_same_message(outbox: Outbox) -> None:
    first = outbox.enqueue("V1.report", MessageKind.RESULT_REPORT, b"{}", visit_id="V1")
    assert outbox.enqueue("V1.report", MessageKind.RESULT_REPORT, b"{}", visit_id="V1") == first
    with pytest.raises(KeyReusedError):
        outbox.enqueue("V1.report", MessageKind.ACTIVATION, b"{}", visit_id="V1")
    assert outbox.status().counts[MessageState.PENDING] == 1


@pytest.mark.parametrize("key", ["short", "has space in it", "x" * 129, "键值键值键值键值"])
def test_a_key_outside_the_back_end_pattern_is_refused(outbox: Outbox, key: str) -> None:
    with pytest.raises(OutboxError) as caught:
        outbox.enqueue(key, MessageKind.AUDIT, b"{}")
    assert caught.value.code == "outbox.bad_key"


def test_the_schema_never_lets_an_unacknowledged_row_be_deleted_or_purged(
    outbox: Outbox, conn: sqlite3.Connection
) -> None:
    message_id = outbox.enqueue("V1.submit", MessageKind.APPLICATION, application_payload(), visit_id="V1")
    with pytest.raises(sqlite3.IntegrityError, match="never deleted"):
        conn.execute("DELETE FROM outbox WHERE id = ?", (message_id,))
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        conn.execute("UPDATE outbox SET payload = NULL WHERE id = ?", (message_id,))
    assert outbox.get(message_id).state is MessageState.PENDING


def test_an_acknowledged_message_stays_acknowledged(outbox: Outbox, conn: sqlite3.Connection) -> None:
    message_id = outbox.enqueue("V1.report", MessageKind.RESULT_REPORT, b"{}", visit_id="V1")
    outbox.settle([Acknowledged(message_id, "R1")])
    with pytest.raises(sqlite3.IntegrityError, match="stays acknowledged"):
        conn.execute("UPDATE outbox SET state = 'pending' WHERE id = ?", (message_id,))


def test_a_visits_messages_go_in_order_other_visits_do_not_wait(outbox: Outbox) -> None:
    report = outbox.enqueue("V1.report", MessageKind.RESULT_REPORT, b"{}", visit_id="V1")
    activation = outbox.enqueue("V1.activate", MessageKind.ACTIVATION, b"{}", visit_id="V1")
    other = outbox.enqueue("V2.report", MessageKind.RESULT_REPORT, b"{}", visit_id="V2")
    audit = outbox.enqueue("audit.000001", MessageKind.AUDIT, b"{}")
    assert outbox.due_heads(10) == [report, other, audit]
    outbox.claim([report], lease=__import__("datetime").timedelta(minutes=5))
    assert activation not in outbox.due_heads(10), "activation overtook its visit's result report"
    outbox.settle([Quarantine(report, "refused: test")])
    assert activation not in outbox.due_heads(10), "a quarantined report must still hold its visit back"
    outbox.retry(report)
    assert outbox.due_heads(10)[0] == report


def test_retry_only_releases_quarantined_messages(outbox: Outbox) -> None:
    message_id = outbox.enqueue("V1.report", MessageKind.RESULT_REPORT, b"{}", visit_id="V1")
    with pytest.raises(NotQuarantined):
        outbox.retry(message_id)


def test_status_counts_states_and_the_oldest_waiting_age(outbox: Outbox, clock: Clock) -> None:
    outbox.enqueue("V1.report", MessageKind.RESULT_REPORT, b"{}", visit_id="V1")
    clock.advance(90)
    outbox.enqueue("V2.report", MessageKind.RESULT_REPORT, b"{}", visit_id="V2")
    clock.advance(30)
    status = outbox.status()
    assert status.counts[MessageState.PENDING] == 2
    assert status.oldest_unacknowledged_age_s == pytest.approx(120)
    assert status.as_dict()["counts"] == {"pending": 2, "in_flight": 0, "acknowledged": 0, "quarantined": 0}


def test_no_personal_data_in_clear_in_the_database_file(
    outbox: Outbox, db_path: Path, conn: sqlite3.Connection
) -> None:
    outbox.enqueue("V1.submit", MessageKind.APPLICATION, application_payload(), visit_id="V1")
    outbox.enqueue(
        "V1.contact",
        MessageKind.RESULT_REPORT,
        application_payload(),
        visit_id="V1",
        personal_data=[PersonalData.CONTACT],
    )
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    raw = database_bytes(db_path)
    assert len(raw) > 4096
    found = [n for n in seeded_needles() if n in raw]
    assert found == [], f"personal data in clear in the state database: {found}"
    # The test can fail: the same payload stored unsealed is found.
    conn.execute("CREATE TABLE control (b BLOB)")
    conn.execute("INSERT INTO control VALUES (?)", (application_payload(),))
    assert ID_NUMBER.encode() in database_bytes(db_path)


def test_a_purged_payload_is_gone_from_the_file_not_just_unlinked(
    outbox: Outbox, db_path: Path, conn: sqlite3.Connection
) -> None:
    message_id = outbox.enqueue("V1.submit", MessageKind.APPLICATION, application_payload(), visit_id="V1")
    sealed = conn.execute("SELECT payload FROM outbox WHERE id = ?", (message_id,)).fetchone()[0]
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert sealed[-64:] in database_bytes(db_path)
    outbox.settle([Acknowledged(message_id, "R000001")])
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert sealed[-64:] not in database_bytes(db_path), "the ciphertext is still in the file after purge"


def test_enqueue_without_a_key_is_refused(conn: sqlite3.Connection) -> None:
    with pytest.raises(OutboxError) as caught:
        Outbox(conn).enqueue("V1.submit", MessageKind.APPLICATION, b"{}", visit_id="V1")
    assert caught.value.code == "outbox.key_missing"


def test_a_payload_that_cannot_be_opened_is_quarantined_not_lost(
    conn: sqlite3.Connection, outbox: Outbox, clock: Clock
) -> None:
    import datetime as dt
    import os

    message_id = outbox.enqueue("V1.submit", MessageKind.APPLICATION, b"{}", visit_id="V1")
    stranger = Outbox(conn, Sealer({"other": os.urandom(16)}, "other"), clock)
    [claimed] = stranger.claim([message_id], dt.timedelta(minutes=5))
    assert isinstance(claimed, Quarantine) and "outbox.key_missing" in claimed.reason
    stranger.settle([claimed])
    assert outbox.get(message_id).state is MessageState.QUARANTINED
    assert conn.execute("SELECT payload IS NOT NULL FROM outbox WHERE id = ?", (message_id,)).fetchone()[0]
