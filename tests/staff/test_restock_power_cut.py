"""A power cut in the middle of a restock: the child process restocking 50 cards is killed with
SIGKILL (kill -9) at points inside and just after the ledger's transaction; after a reopen every
card is registered exactly once or not at all, the books balance, and redoing the restock neither
loses nor double counts a card."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kiosk import staff_actions as sa
from kiosk.app import state_components
from kiosk.audit import AuditLog, verify_chain
from kiosk.ledger import (
    CardAlreadyRegistered,
    CardLedger,
    CountSource,
    Movement,
    Place,
    StockCount,
    card_range,
)
from kiosk.runtime import Services
from kiosk.staff import Role, StaffSession
from kiosk.storage import open_state_db

REPO = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("restock_child.py")
CARDS = card_range("R00000001", "R00000050")
AUDIT_KEY = bytes(range(32))


def _kill_restock_at(state_dir: Path, pattern: str, nth: int) -> None:
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), str(state_dir), pattern, str(nth)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready", "the child never reached the kill point"
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("pattern", "nth", "registered_after_cut"),
    [
        ("INSERT INTO ledger_movements", 1, 0),  # first card of the transaction
        ("INSERT INTO ledger_movements", 25, 0),  # half way
        ("INSERT INTO ledger_movements", 50, 0),  # last card, before COMMIT
        ("COMMIT", 1, 0),  # the commit itself
        ("INSERT INTO staff_actions", 1, 50),  # after the ledger committed, before the action record
        ("INSERT INTO audit", 1, 50),  # before the audit entry
    ],
)
def test_a_power_cut_in_the_middle_of_a_restock_loses_no_card_and_counts_none_twice(
    tmp_path: Path, pattern: str, nth: int, registered_after_cut: int
) -> None:
    state_dir = tmp_path / "state"
    _kill_restock_at(state_dir, pattern, nth)

    conn = open_state_db(state_dir, state_components())  # reopen after the cut
    try:
        ledger = CardLedger(conn)
        balance = ledger.balance()
        assert balance.registered == registered_after_cut
        restocked = Counter(m.card_number for m in ledger.movements() if m.movement is Movement.RESTOCKED)
        assert all(n == 1 for n in restocked.values()), "a card counted twice"
        assert set(restocked) == set(ledger.cards_in(Place.HOPPER))
        assert balance.held == balance.expected.total  # the books add up
        assert verify_chain(conn, AUDIT_KEY) is None

        # The staff member does the restock again after the power comes back.
        services = Services()
        services.devices.update(
            ledger=ledger, staff_log=sa.StaffActionLog(conn), audit=AuditLog(conn, AUDIT_KEY)
        )
        desk = sa.StaffDesk(services, "K-TEST-01", text=lambda key: key, export_dir=state_dir / "reports")
        session = StaffSession("1001", Role.STAFF, datetime.now(UTC))
        if registered_after_cut:
            with pytest.raises(CardAlreadyRegistered):
                sa.restock(desk, session, CARDS)
        else:
            assert sa.restock(desk, session, CARDS).registered == tuple(CARDS)

        assert ledger.cards_in(Place.HOPPER) == CARDS
        assert Counter(
            m.card_number for m in ledger.movements() if m.movement is Movement.RESTOCKED
        ) == Counter(CARDS)
        assert {ledger.card(n).registered_by for n in CARDS} == {"1001"}
        counted = ledger.count(StockCount(hopper=50, reject_bin=0), source=CountSource.STAFF, operator="1001")
        assert counted.balanced
        assert verify_chain(conn, AUDIT_KEY) is None
    finally:
        conn.close()
