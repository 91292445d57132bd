"""Three face failures for one ID number lock face verification; only a keyed hash is stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kiosk.face_lock import FACE_LOCK_SCHEMA, FaceLock, FaceLockEvent, FaceVerificationLocked
from kiosk.storage import open_state_db

ID = "11010519491231002X"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def lock(tmp_path: Path):
    conn = open_state_db(tmp_path, {"face_lock": FACE_LOCK_SCHEMA})
    clock = Clock()
    yield FaceLock(conn, b"k" * 32, failures_before_lock=3, lock_minutes=30, clock=clock), clock, tmp_path
    conn.close()


def test_three_failures_lock_then_the_lock_expires(lock) -> None:
    face_lock, clock, _ = lock
    assert face_lock.check(ID).remaining_tries == 3
    face_lock.record_failure(ID, "match.reject")
    assert face_lock.record_failure(ID, "liveness.timed_out").remaining_tries == 1
    state = face_lock.record_failure(ID, "match.reject")
    assert state.locked and state.locked_until == clock.now + timedelta(minutes=30)
    with pytest.raises(FaceVerificationLocked):
        face_lock.check(ID)
    assert not face_lock.state("110105194912310038").locked  # another person is not affected
    clock.now += timedelta(minutes=31)
    assert face_lock.check(ID).remaining_tries == 3
    events = [e for e, _, _ in face_lock.events(ID)]
    assert events == [FaceLockEvent.FAILURE] * 3 + [FaceLockEvent.LOCKED, FaceLockEvent.REFUSED]


def test_success_clears_the_count(lock) -> None:
    face_lock, _, _ = lock
    face_lock.record_failure(ID, "match.reject")
    face_lock.record_failure(ID, "match.reject")
    face_lock.record_success(ID)
    assert not face_lock.record_failure(ID, "match.reject").locked


def test_the_id_number_is_never_stored(lock) -> None:
    face_lock, _, tmp_path = lock
    for _ in range(3):
        face_lock.record_failure(ID, "match.reject")
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert ID.encode() not in data and ID[:17].encode() not in data
    other = FaceLock(face_lock._conn, b"z" * 32)
    assert other.subject(ID) != face_lock.subject(ID)
    assert face_lock.subject(ID.lower()) == face_lock.subject(ID)


def test_short_keys_are_refused(lock) -> None:
    face_lock, _, _ = lock
    with pytest.raises(ValueError):
        FaceLock(face_lock._conn, b"short")
