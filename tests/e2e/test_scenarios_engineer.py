"""The engineer menu and the self-check end to end through ``kiosk demo --headless --json --fast
--scenario NAME`` (issue 14): the real UI (SDL offscreen), the real links (pty, pcscd + vpcd,
loopback TCP/HTTP). A scripted field engineer signs in through the hidden corner and runs every
device self-test from its button; a kiosk started without its card printer is out of service with
the citizens' short reason and returns to service by itself once the printer is there. Each test
then opens what the run left behind: the card ledger, the audit log, the kiosk's log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kiosk.ledger import Movement, Place
from tests.e2e.scenario_run import State, run_scenario

pytestmark = [pytest.mark.pcsc, pytest.mark.slow]

DEVICE_TESTS = ["idreader", "chip", "printer", "pinpad", "camera", "receipt"]
REPO = Path(__file__).resolve().parents[2]


def people() -> dict[str, dict]:
    data = json.loads((REPO / "config" / "demo-people.json").read_text(encoding="utf-8"))
    return {p["key"]: p for p in data["people"]}


def test_the_engineer_signs_in_by_the_hidden_corner_and_every_device_self_test_passes(tmp_path: Path) -> None:
    report = run_scenario("engineer_selftest", tmp_path)
    state = State(tmp_path)
    assert report["passed"], report
    assert (report["outcome"], report["reason"]) == ("selftest_passed", None)
    assert report["screens"][:4] == ["home", "staff_login", "staff_menu", "eng_tests"]
    assert report["screens"][-2:] == ["staff_menu", "home"]  # signed out at the end
    # Every test from its button: 5 corner taps, the role, 9001⏎, 135790⏎, the page, six tests,
    # the camera's stop, back and sign out.
    assert report["touches"] >= 5 + 1 + 5 + 7 + 1 + 6 + 1 + 2

    results = report["selftests"]
    assert list(results) == DEVICE_TESTS
    assert all(r["ok"] and r["code"] == "ok" and r["passed"] > 0 for r in results.values()), results
    assert (results["idreader"]["passed"], results["idreader"]["failed"]) == (5, 0)  # the read loop
    assert (results["chip"]["passed"], results["chip"]["failed"]) == (2, 0)  # the PSAM and the test card
    assert (results["printer"]["passed"], results["printer"]["failed"]) == (3, 0)  # fed, printed, rejected

    # The printer's test card: a blank used up, in the reject bin, and the ledger agrees.
    spoiled = [m for m in state.ledger.movements() if m.operator == "9001"]
    assert [m.movement for m in spoiled] == [Movement.FED, Movement.REJECTED]
    assert state.ledger.cards_in(Place.REJECT_BIN) == [spoiled[0].card_number]
    assert report["ledger_balanced"] is True
    # The receipt test slip came out of the receipt printer.
    assert len(report["printed"]) == 1 and "打印测试" in report["printed"][0]

    # Each action recorded with the engineer's id (the hash-chained audit log).
    audit = state.conn.execute("SELECT actor, action, subject FROM audit ORDER BY id").fetchall()
    tests_recorded = [subject for actor, action, subject in audit if action == "engineer.selftest"]
    assert tests_recorded == ["idreader", "chip", "printer", "pinpad", "camera", "camera", "receipt"]
    assert {actor for actor, action, _ in audit if action.startswith("engineer.")} == {"9001"}
    assert [r["outcome"] for r in report["recorded"] if r["action"] == "engineer.selftest"] == [
        "passed", "passed", "passed", "passed", "started", "passed", "passed"]
    # The test ID card was read five times: its number never reaches the log.
    assert people()["first_issue"]["id_number"] not in state.log_text()


def test_a_kiosk_started_without_its_card_printer_is_out_of_service_and_comes_back_by_itself(tmp_path: Path) -> None:
    report = run_scenario("startup_printer_missing", tmp_path)
    state = State(tmp_path)
    assert report["passed"], report
    assert (report["outcome"], report["reason"]) == ("out_of_service", "cardprinter.offline")
    # The start-up self-check found the printer missing, and nothing else.
    assert report["startup_selfcheck"] == {"in_service": False, "blocking": ["cardprinter.offline"]}

    # Citizens read the short reason, never the code; no business can be started.
    shown = report["out_of_service"]
    assert shown["citizen_reason_key"] == "selftest.citizen.card_making"
    assert shown["home_text"] == "暂停服务  制卡设备维护中，请到柜台办理"
    assert shown["businesses_offered"] > 0 and shown["businesses_enabled"] == 0

    # The printer switched on: back in service by itself, nobody touched the screen.
    assert report["back_in_service"] is True
    assert 0 < report["back_in_service_s"] < 60
    assert report["back_in_service_text"] == ""
    assert report["selfcheck_now"] == {"in_service": True, "blocking": []}
    assert report["touches"] == 0
    assert report["ledger_balanced"] is True  # the printer's hopper is what the ledger says

    log = state.log_text()
    went = log.index("selfcheck.out_of_service codes=cardprinter.offline")
    assert log.index("selfcheck.in_service", went) > went
