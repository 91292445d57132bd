"""Child process for the restock power-cut test: a staff member restocks 50 cards through
``kiosk.staff_actions.restock`` on the real state database; when the N-th SQL statement starting
with PATTERN is about to run, the child says ``ready`` and waits to be killed (``kill -9`` by the
parent, in the middle of the restock)."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from kiosk.app import state_components
from kiosk.audit import AuditLog
from kiosk.ledger import CardLedger, card_range
from kiosk.runtime import Services
from kiosk.staff import Role, StaffSession
from kiosk.staff_actions import StaffActionLog, StaffDesk, restock
from kiosk.storage import open_state_db

AUDIT_KEY = bytes(range(32))


def main() -> None:
    state_dir, pattern, nth = Path(sys.argv[1]), sys.argv[2].upper(), int(sys.argv[3])
    conn = open_state_db(state_dir, state_components())
    services = Services()
    services.devices.update(
        ledger=CardLedger(conn), staff_log=StaffActionLog(conn), audit=AuditLog(conn, AUDIT_KEY)
    )
    desk = StaffDesk(services, "K-TEST-01", text=lambda key: key, export_dir=state_dir / "reports")
    seen = 0

    def trace(statement: str) -> None:
        nonlocal seen
        if statement.lstrip().upper().startswith(pattern):
            seen += 1
            if seen == nth:
                print("ready", flush=True)
                time.sleep(120)  # killed here

    conn.set_trace_callback(trace)
    session = StaffSession("1001", Role.STAFF, datetime.now(UTC))
    restock(desk, session, card_range("R00000001", "R00000050"))
    print("done", flush=True)


if __name__ == "__main__":
    main()
