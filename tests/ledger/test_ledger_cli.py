"""``kiosk ledger status|report|restock|count`` through the real command line entry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kiosk.cli import main
from kiosk.ledger import LEDGER_SCHEMA, CardLedger, RejectReason
from kiosk.storage import open_state_db


def _run(capsys, *argv: str) -> tuple[int, dict]:
    code = main(list(argv))
    out = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(out[-1]) if out else {}


def test_status_counts_per_place_and_balance(tmp_path: Path, capsys) -> None:
    state = str(tmp_path)
    assert (
        _run(
            capsys, "ledger", "--state-dir", state, "restock", "--range", "C001", "C010", "--operator", "S1"
        )[0]
        == 0
    )
    ledger = CardLedger(open_state_db(tmp_path, {"ledger": LEDGER_SCHEMA}))
    ledger.feed("C001", visit_id="V1")
    ledger.issue("C001", visit_id="V1")
    ledger.feed("C002", visit_id="V2")
    ledger.reject("C002", RejectReason.NOT_TAKEN, visit_id="V2")

    code, status = _run(capsys, "ledger", "--state-dir", state, "status", "--json")
    assert code == 0
    assert status["per_place"]["hopper"] == 8 and status["per_place"]["issued"] == 1
    assert status["per_place"]["reject_bin"] == 1
    assert status["books_balanced"] is True and status["balanced"] is None

    code, counted = _run(
        capsys,
        "ledger",
        "--state-dir",
        state,
        "count",
        "--hopper",
        "8",
        "--reject-bin",
        "1",
        "--operator",
        "S1",
    )
    assert code == 0 and counted["balanced"] is True
    assert _run(capsys, "ledger", "--state-dir", state, "status", "--json")[1]["balanced"] is True

    code, mismatch = _run(
        capsys,
        "ledger",
        "--state-dir",
        state,
        "count",
        "--hopper",
        "7",
        "--reject-bin",
        "1",
        "--operator",
        "S1",
    )
    assert code == 3 and mismatch["error"]["code"] == "ledger.discrepancy"
    status = _run(capsys, "ledger", "--state-dir", state, "status", "--json")[1]
    assert status["balanced"] is False and len(status["open_discrepancies"]) == 1


def test_report_prints_the_period_contract(tmp_path: Path, capsys) -> None:
    state = str(tmp_path)
    _run(
        capsys, "ledger", "--state-dir", state, "restock", "--cards", "C1001,C1002,C1003", "--operator", "S1"
    )
    code, report = _run(capsys, "ledger", "--state-dir", state, "report", "--period", "month", "--json")
    assert code == 0
    assert {
        k: report[k]
        for k in (
            "opening",
            "restocked",
            "issued",
            "spoiled",
            "handed_over",
            "closing",
            "counted",
            "balanced",
        )
    } == {
        "opening": 0,
        "restocked": 3,
        "issued": 0,
        "spoiled": 0,
        "handed_over": 0,
        "closing": 3,
        "counted": None,
        "balanced": None,
    }
    assert report["cards"]["restocked"] == ["C1001", "C1002", "C1003"]
    code, old = _run(
        capsys, "ledger", "--state-dir", state, "report", "--period", "day", "--date", "2020-01-01", "--json"
    )
    assert code == 0 and old["closing"] == 0


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["report", "--period", "year", "--json"], "ledger.bad_period"),
        (["report", "--period", "day", "--date", "2026-13-01"], "ledger.bad_date"),
        (["restock", "--range", "A001", "B005", "--operator", "S1"], "ledger.invalid_card_number"),
        (["count", "--hopper", "-1", "--reject-bin", "0", "--operator", "S1"], "ledger.bad_input"),
    ],
)
def test_bad_input_is_a_json_error(tmp_path: Path, capsys, argv, code) -> None:
    exit_code, out = _run(capsys, "ledger", "--state-dir", str(tmp_path), *argv)
    assert exit_code == 2
    assert out["error"]["code"] == code
