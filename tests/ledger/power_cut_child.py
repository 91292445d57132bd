"""Child process for the power-cut test: registers a range of cards and dies (``os._exit``, no
clean-up, like a power cut) after the N-th INSERT of the restock transaction."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from kiosk.ledger import LEDGER_SCHEMA, CardLedger, card_range
from kiosk.storage import open_state_db


def main() -> None:
    state_dir, first, last, die_after = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    conn = open_state_db(state_dir, {"ledger": LEDGER_SCHEMA})
    inserts = 0

    def trace(statement: str) -> None:
        nonlocal inserts
        if statement.lstrip().upper().startswith("INSERT INTO LEDGER_MOVEMENTS"):
            inserts += 1
            if inserts == die_after:
                os._exit(9)

    conn.set_trace_callback(trace)
    CardLedger(conn).register_cards(card_range(first, last), operator="S001")
    os._exit(0)


if __name__ == "__main__":
    main()
