"""The journal and start-up recovery, tested with a real ``kill -9`` of a child process between
and inside steps, and again during recovery itself."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kiosk.journal import JOURNAL_SCHEMA, Journal, StepEvent
from kiosk.prompts import Answer, Prompt
from kiosk.recovery import recover
from kiosk.storage import open_state_db
from kiosk.visit import Flow, Step, VisitEnded, VisitRunner

CHILD = Path(__file__).with_name("crash_child.py")
REPO = Path(__file__).resolve().parents[2]


def start_child(mode: str, directory: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(
        [sys.executable, str(CHILD), mode, str(directory)], stdout=subprocess.PIPE, text=True, env=env
    )


def places(directory: Path) -> dict[str, str]:
    conn = sqlite3.connect(directory / "printer.sqlite3")
    try:
        return dict(conn.execute("SELECT number, place FROM cards").fetchall())
    finally:
        conn.close()


def check_invariants(directory: Path) -> tuple[int, int]:
    conn = sqlite3.connect(directory / "kiosk.sqlite3")
    try:
        active = conn.execute("SELECT COUNT(*) FROM visits WHERE state = 'active'").fetchone()[0]
        compensated = [
            json.loads(row[0])
            for row in conn.execute("SELECT data FROM journal WHERE event = 'compensated' AND step = 'feed_card'")
        ]
    finally:
        conn.close()
    cards = places(directory)
    assert active == 0, "an unfinished visit was left after recovery"
    assert "printer" not in cards.values(), "a card was left in the printer"
    assert len(cards) == 400, "a card disappeared"
    in_bin = {n for n, p in cards.items() if p == "bin"}
    journaled_rejects = {c["card"] for c in compensated if c.get("place") == "bin"}
    assert in_bin == journaled_rejects, "a rejected card is not journaled, or a journaled reject is not in the bin"
    return len(in_bin), sum(1 for p in cards.values() if p == "citizen")


@pytest.mark.slow
def test_kill_9_between_and_inside_steps_then_recovery_leaves_no_card_behind(tmp_path: Path) -> None:
    rng = random.Random(1234)
    rejected = issued = 0
    for round_ in range(12):
        child = start_child("run", tmp_path)
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.005, 0.12))
        child.send_signal(signal.SIGKILL)
        child.wait()
        # Kill the recovery itself now and then, before letting it finish.
        if round_ % 3 == 1:
            rec = start_child("recover", tmp_path)
            time.sleep(rng.uniform(0.0, 0.15))
            rec.send_signal(signal.SIGKILL)
            rec.wait()
        rec = start_child("recover", tmp_path)
        out, _ = rec.communicate(timeout=60)
        assert rec.returncode == 0 and "recovered" in out
        rejected, issued = check_invariants(tmp_path)
    assert issued > 0, "no visit finished: the kill points never fell after a whole visit"
    assert rejected > 0, "no kill ever left a card in the printer: the test did not exercise recovery"


class Scripted:
    def __init__(self, answers: list[str]) -> None:
        self.answers = answers
        self.asked: list[Prompt] = []

    def ask(self, prompt: Prompt) -> Answer:
        self.asked.append(prompt)
        return Answer(self.answers.pop(0))

    def show(self, prompt: Prompt) -> None:
        self.asked.append(prompt)


def make_journal(tmp_path: Path) -> Journal:
    return Journal(open_state_db(tmp_path, {"journal": JOURNAL_SCHEMA}))


def test_each_step_is_journaled_before_the_next_starts(tmp_path: Path) -> None:
    journal = make_journal(tmp_path)
    seen: list[list[tuple[str, StepEvent]]] = []

    def step(name: str):
        def run(ctx):
            seen.append([(e.step, e.event) for e in journal.entries(ctx.visit_id)])
            return {"step": name}
        return Step(name, run)

    flow = Flow("t", "t", (step("a"), step("b")))
    outcome = VisitRunner(journal, Scripted([]), None).run(flow)
    assert outcome.outcome == "completed"
    assert seen[1] == [("a", StepEvent.STARTED), ("a", StepEvent.DONE), ("b", StepEvent.STARTED)]
    assert journal.visit(outcome.visit_id).state == "ended"


def test_cancel_runs_compensations_in_reverse_order_and_journals_them(tmp_path: Path) -> None:
    journal = make_journal(tmp_path)
    order: list[str] = []
    flow = Flow(
        "t",
        "t",
        (
            Step("first", lambda ctx: {"x": 1}, lambda ctx, d: order.append("first") or {"undone": d["x"]}),
            Step("second", lambda ctx: None, lambda ctx, d: order.append("second") or {}),
            Step("ask", lambda ctx: ctx.ask(Prompt("confirm", choices=("ok",))) and None),
        ),
    )
    outcome = VisitRunner(journal, Scripted(["cancel"]), None).run(flow)
    assert outcome.outcome == "cancelled"
    assert order == ["second", "first"]
    events = [(e.step, e.event) for e in journal.entries(outcome.visit_id)]
    assert ("ask", StepEvent.FAILED) in events
    assert events[-1] == ("first", StepEvent.COMPENSATED)
    assert journal.entries(outcome.visit_id)[-1].data == {"undone": 1}


def test_a_step_refusal_ends_the_visit_with_its_reason(tmp_path: Path) -> None:
    journal = make_journal(tmp_path)

    def refuse(ctx):
        raise VisitEnded("notice_printed", "replacement_requires_loss_report")

    outcome = VisitRunner(journal, Scripted([]), None).run(Flow("t", "t", (Step("check", refuse),)))
    assert (outcome.outcome, outcome.reason) == ("notice_printed", "replacement_requires_loss_report")
    record = journal.visit(outcome.visit_id)
    assert (record.state, record.outcome, record.reason) == ("ended", "notice_printed", "replacement_requires_loss_report")


def test_resume_skips_done_steps_and_sees_their_results(tmp_path: Path) -> None:
    journal = make_journal(tmp_path)
    calls: list[str] = []
    flow = Flow(
        "t",
        "t",
        (
            Step("submit", lambda ctx: calls.append("submit") or {"application": "APP-1"}),
            Step("make", lambda ctx: calls.append("make:" + ctx.saved["submit"]["application"]) or None),
        ),
    )
    visit_id = journal.start_visit("t")
    journal.record(visit_id, "submit", StepEvent.STARTED)
    journal.record(visit_id, "submit", StepEvent.DONE, {"application": "APP-1"})
    VisitRunner(journal, Scripted([]), None).run(flow, visit_id=visit_id)
    assert calls == ["make:APP-1"]


def test_recovery_compensates_only_what_is_not_compensated_yet(tmp_path: Path) -> None:
    journal = make_journal(tmp_path)
    runs: list[str] = []
    flow = Flow("t", "t", (Step("a", lambda c: None, lambda c, d: runs.append("a") or {}),
                           Step("b", lambda c: None, lambda c, d: runs.append("b") or {})))
    visit_id = journal.start_visit("t")
    for step in ("a", "b"):
        journal.record(visit_id, step, StepEvent.STARTED)
    journal.record(visit_id, "b", StepEvent.COMPENSATING)
    journal.record(visit_id, "b", StepEvent.COMPENSATED)
    reports = recover(journal, {"t": flow}, None)
    assert runs == ["a"]
    assert reports[0].compensated_steps == ("a",)
    assert journal.visit(visit_id).state == "recovered"
    assert journal.unfinished_visits() == []


def test_recovery_closes_a_visit_of_an_unknown_business_without_losing_it(tmp_path: Path) -> None:
    journal = make_journal(tmp_path)
    visit_id = journal.start_visit("retired_business")
    reports = recover(journal, {}, None)
    assert reports[0].error == "unknown_business"
    assert journal.visit(visit_id).reason == "unknown_business"
