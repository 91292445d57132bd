"""Ledger fixtures: a real state database (WAL, synchronous=FULL) in a temporary directory and a
clock the test moves."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kiosk.ledger import LEDGER_SCHEMA, CardLedger
from kiosk.storage import open_state_db


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    # 2026-11-23 09:00 in Beijing.
    return FakeClock(datetime(2026, 11, 23, 1, 0, tzinfo=UTC))


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def ledger(state_dir: Path, clock: FakeClock) -> Iterator[CardLedger]:
    conn = open_state_db(state_dir, {"ledger": LEDGER_SCHEMA})
    try:
        yield CardLedger(conn, clock=clock)
    finally:
        conn.close()
