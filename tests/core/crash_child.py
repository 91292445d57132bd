"""Child process for the kill -9 tests of the journal and recovery.

``run``: serves visits forever: feed a card (hopper → printer), personalize, eject (printer →
citizen), each step journaled; random pauses inside steps give the parent kill points between
and inside steps. ``recover``: runs start-up recovery once. The "printer" is a separate SQLite
file: like a real device, its state is not in the journal's transactions.
"""

from __future__ import annotations

import random
import sqlite3
import sys
import time
from pathlib import Path

from kiosk.journal import JOURNAL_SCHEMA, Journal
from kiosk.prompts import Answer, Prompt
from kiosk.recovery import recover
from kiosk.storage import connect, open_state_db
from kiosk.visit import Flow, Step, VisitContext, VisitRunner

CARDS = 400


def printer_db(directory: Path) -> sqlite3.Connection:
    conn = connect(directory / "printer.sqlite3")
    conn.execute("CREATE TABLE IF NOT EXISTS cards (number TEXT PRIMARY KEY, place TEXT NOT NULL)")
    if conn.execute("SELECT COUNT(*) FROM cards").fetchone()[0] == 0:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO cards VALUES (?, 'hopper')", [(f"C{i:05d}",) for i in range(CARDS)])
        conn.execute("COMMIT")
    return conn


class Printer:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def next_in_hopper(self) -> str:
        return self.conn.execute("SELECT number FROM cards WHERE place = 'hopper' ORDER BY number LIMIT 1").fetchone()[0]

    def move(self, number: str, src: str, dst: str) -> None:
        self.conn.execute("UPDATE cards SET place = ? WHERE number = ? AND place = ?", (dst, number, src))

    def place(self, number: str) -> str:
        return self.conn.execute("SELECT place FROM cards WHERE number = ?", (number,)).fetchone()[0]


def pause() -> None:
    time.sleep(random.random() * 0.004)


def feed(ctx: VisitContext) -> dict:
    printer: Printer = ctx.services
    number = printer.next_in_hopper()
    ctx.checkpoint(card=number)
    pause()
    printer.move(number, "hopper", "printer")
    pause()
    return {"card": number}


def reject_if_in_printer(ctx: VisitContext, data: dict) -> dict:
    printer: Printer = ctx.services
    number = data.get("card")
    if number is None:
        return {}
    pause()
    printer.move(number, "printer", "bin")
    return {"card": number, "place": printer.place(number)}


def personalize(ctx: VisitContext) -> dict:
    pause()
    return {"ok": True}


def eject(ctx: VisitContext) -> dict:
    printer: Printer = ctx.services
    number = ctx.saved["feed_card"]["card"]
    pause()
    printer.move(number, "printer", "citizen")
    pause()
    return {"card": number}


FLOW = Flow(
    key="crash_test",
    title_key="test",
    steps=(
        Step("feed_card", feed, reject_if_in_printer),
        Step("personalize", personalize),
        Step("eject_card", eject),
    ),
)


class Nobody:
    def ask(self, prompt: Prompt) -> Answer:
        return Answer("ok")

    def show(self, prompt: Prompt) -> None:
        return None


def main() -> None:
    mode, directory = sys.argv[1], Path(sys.argv[2])
    journal = Journal(open_state_db(directory, {"journal": JOURNAL_SCHEMA}))
    printer = Printer(printer_db(directory))
    if mode == "recover":
        recover(journal, {FLOW.key: FLOW}, printer)
        print("recovered", flush=True)
        return
    runner = VisitRunner(journal, Nobody(), printer)
    print("ready", flush=True)
    while printer.next_in_hopper():
        runner.run(FLOW)


if __name__ == "__main__":
    main()
