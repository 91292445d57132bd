"""The scripted staff scenarios of ``kiosk demo --headless --json --fast --scenario NAME`` end to
end (issue 13): a staff member through the real staff screens (hidden corner, login, restock,
reject bin, count, closing with a reviewer; a supervisor's note), two citizens' visits in between,
on the real links. Each test then opens the state the day left behind and reads the ledger report
the way staff would (``kiosk ledger report --json``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kiosk.ledger import CountSource, Movement, Place, card_range
from tests.e2e.scenario_run import State, run_scenario

pytestmark = [pytest.mark.pcsc, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]


def ledger_cli(state: Path, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "kiosk", "ledger", "--state-dir", str(state), *args, "--json"],
        capture_output=True, text=True, timeout=60, cwd=REPO, env=dict(os.environ), check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def assert_the_day(report: dict[str, Any], state: State, tmp_path: Path, *, counted: int) -> dict[str, Any]:
    """What both scenarios share: the same day's movements, booked card by card."""
    assert report["error"] is None and report["passed"], report
    assert report["business"] == "staff" and report["ledger_balanced"] is True
    assert [(v["scenario"], v["outcome"], v["reason"]) for v in report["visits"]] == [
        ("renewal", "card_issued", None),
        ("card_jam", "notice_printed", "card_jam"),
    ]
    assert "staff_login" in report["screens"] and "staff_restock:done" in report["screens"]
    assert all(step["result"] == "done" for step in report["steps"]), report["steps"]

    # The ledger report as staff read it from the command line: the same figures as the scenario's.
    day = ledger_cli(tmp_path, "report", "--period", "day", "--date", report["day"])
    for key in ("opening", "restocked", "issued", "spoiled", "handed_over", "closing", "counted", "balanced"):
        assert day[key] == report["ledger"][key], key
    assert (day["opening"], day["restocked"], day["issued"], day["spoiled"], day["handed_over"], day["closing"]) == (
        20, 50, 1, 1, 1, 68
    )
    assert day["counted"] == counted
    assert day["cards"]["restocked"] == card_range("A00000021", "A00000070")

    # Card by card: the issued card and the spoiled one, the spoiled one handed over.
    (issued,) = day["cards"]["issued"]
    assert state.ledger.card(issued).place is Place.ISSUED
    (spoiled,) = day["cards"]["spoiled"]
    assert spoiled["reason"] == "jam"
    assert day["cards"]["handed_over"] == [spoiled["card_number"]]
    assert state.ledger.card(spoiled["card_number"]).place is Place.HANDED_OVER
    assert state.ledger.cards_in(Place.REJECT_BIN) == []
    assert len(state.ledger.cards_in(Place.HOPPER)) == 68
    restock = [m for m in state.ledger.movements() if m.movement is Movement.RESTOCKED and m.operator == "1001"]
    assert len(restock) == 50

    # Printed on the receipt printer: the voucher, the notice, the handover list, the day's slip.
    printed = report["printed"]
    handover = [text for text in printed if "废卡交接清单" in text]
    assert len(handover) == 1 and spoiled["card_number"] in handover[0]
    slip = [text for text in printed if "空白卡日结对账单" in text]
    assert len(slip) == 1 and "复核人：1002" in slip[0]
    assert any("业务凭证" in text for text in printed) and any("一次性告知" in text for text in printed)

    # Exported as files (JSON + the receipt as PNG), and every action recorded with who did it.
    exported = report["exported"]
    assert any(n.startswith("handover") and n.endswith(".json") for n in exported)
    assert any(n.startswith("handover") and n.endswith(".png") for n in exported)
    assert any(n.startswith("day-") and n.endswith(".json") for n in exported)
    assert any(n.startswith("day-") and n.endswith(".png") for n in exported)
    actions = {(a["staff_id"], a["action"]) for a in report["staff_actions"]}
    assert {("1001", "restock"), ("1001", "reject_bin_emptied"), ("1001", "count"), ("1001", "period_closed")} <= actions
    closing = report["closing"]
    assert (closing["operator"], closing["reviewer"], closing["counted"]) == ("1001", "1002", counted)
    return day


def test_staff_restock_and_reconcile_closes_the_day_balanced(tmp_path: Path) -> None:
    report = run_scenario("staff_restock_and_reconcile", tmp_path)
    state = State(tmp_path)
    assert report["outcome"] == "ledger_reconciled" and report["reason"] is None
    day = assert_the_day(report, state, tmp_path, counted=68)
    assert day["balanced"] is True and day["open_discrepancies"] == []
    assert report["closing"]["balanced"] is True
    assert state.ledger.open_discrepancies() == []
    status = ledger_cli(tmp_path, "status")
    assert status["balanced"] is True and status["books_balanced"] is True


def test_staff_count_mismatch_leaves_the_discrepancy_open_with_the_supervisors_note(tmp_path: Path) -> None:
    report = run_scenario("staff_count_mismatch", tmp_path)
    state = State(tmp_path)
    assert (report["outcome"], report["reason"]) == ("discrepancy_open", "count_mismatch")
    day = assert_the_day(report, state, tmp_path, counted=67)
    assert day["balanced"] is False
    assert report["closing"]["balanced"] is False and report["closing"]["open_discrepancies"] == 1
    (open_one,) = state.ledger.open_discrepancies()
    assert open_one.source is CountSource.STAFF and open_one.open
    assert (open_one.expected["hopper"], open_one.observed["hopper"]) == (68, 67)
    assert open_one.noted_by == "2001" and open_one.note and open_one.resolved_by is None
    status = ledger_cli(tmp_path, "status")
    assert status["balanced"] is False and len(status["open_discrepancies"]) == 1
    actions = {(a["staff_id"], a["action"], a["outcome"]) for a in report["staff_actions"]}
    assert ("1001", "count", "discrepancy") in actions and ("2001", "discrepancy_noted", "ok") in actions
