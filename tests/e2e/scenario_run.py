"""Running ``kiosk demo --headless --json --fast --scenario NAME`` in a child process and opening
the state it leaves behind (shared by the scenario test files)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from kiosk.journal import Journal
from kiosk.ledger import CardLedger

REPO = Path(__file__).resolve().parents[2]


def run_scenario(name: str, state: Path) -> dict[str, Any]:
    env = dict(os.environ, SDL_VIDEODRIVER="offscreen", KIVY_NO_ARGS="1")
    done = subprocess.run(
        [sys.executable, "-m", "kiosk", "demo", "--headless", "--json", "--fast", "--scenario", name,
         "--state-dir", str(state)],
        capture_output=True, text=True, timeout=400, cwd=REPO, env=env,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no JSON report (exit {done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    report = json.loads(lines[-1])
    assert report["error"] is None, report
    assert done.returncode == (0 if report["passed"] else 1)
    return report


def why_not(report: dict[str, Any], state: "State") -> str:
    """A failed scenario, the reason first (CI shows only the start of a long message): the
    outcome, the face attempts' log lines (liveness measures, no personal data), then the report."""
    face = [line.split(" INFO ")[-1] for line in state.log_text().splitlines() if "face attempt" in line]
    return f"{report.get('outcome')} / {report.get('reason')}; {' | '.join(face)}; report: {report}"


class State:
    """What a visit left behind: the kiosk's state database, its log and the simulated card-management
    system's records."""

    def __init__(self, state: Path) -> None:
        self.dir = state
        self.conn = sqlite3.connect(state / "kiosk.sqlite3")
        self.journal = Journal(self.conn)
        self.ledger = CardLedger(self.conn)
        self.backend = sqlite3.connect(state / "backend-sim" / "backend.sqlite")
        self.backend.row_factory = sqlite3.Row

    def visit(self, visit_id: str) -> tuple[str, str | None]:
        row = self.conn.execute("SELECT outcome, reason FROM visits WHERE visit_id = ?", (visit_id,)).fetchone()
        return row[0], row[1]

    def steps(self, visit_id: str) -> dict[str, dict[str, Any]]:
        """Each step's final event and its merged data."""
        out: dict[str, dict[str, Any]] = {}
        for entry in self.journal.entries(visit_id):
            step = out.setdefault(entry.step, {"event": None, "data": {}})
            step["event"] = entry.event
            step["data"].update(entry.data)
        return out

    def outbox(self) -> list[tuple[str, str]]:
        return self.conn.execute("SELECT kind, state FROM outbox ORDER BY id").fetchall()

    def card_of(self, id_number: str) -> sqlite3.Row:
        return self.backend.execute(
            "SELECT * FROM cards WHERE id_number = ? AND state != 'cancelled' ORDER BY rowid DESC LIMIT 1", (id_number,)
        ).fetchone()

    def requests(self, operation: str) -> list[sqlite3.Row]:
        return self.backend.execute("SELECT * FROM requests WHERE operation = ?", (operation,)).fetchall()

    def log_text(self) -> str:
        return "".join(p.read_text(encoding="utf-8", errors="replace") for p in (self.dir / "log").glob("*.log*"))

    def raw_state(self) -> bytes:
        return b"".join(p.read_bytes() for p in self.dir.glob("kiosk.sqlite3*"))

    def moves(self, visit_id: str) -> list[tuple[str, str]]:
        return [(m.movement.value, m.card_number) for m in self.ledger.movements() if m.visit_id == visit_id]

    def card(self, number: str) -> sqlite3.Row:
        return self.backend.execute("SELECT * FROM cards WHERE card_number = ?", (number,)).fetchone()

    def cards_of(self, id_number: str) -> list[sqlite3.Row]:
        return self.backend.execute("SELECT * FROM cards WHERE id_number = ? ORDER BY rowid", (id_number,)).fetchall()
