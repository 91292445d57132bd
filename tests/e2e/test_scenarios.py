"""Every scripted visit of ``kiosk demo --headless --json --fast --scenario NAME`` end to end: the
real UI (SDL offscreen), the real links (pty, pcscd + vpcd, loopback TCP/HTTP), a scripted
citizen touching the screen. Each test then opens the state the visit left behind and checks
the card's place in the ledger, the outbox, the printed voucher or notice, the journal, and the
card-management system's records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kiosk.ledger import Movement, Place
from tests.e2e.scenario_run import State, run_scenario, why_not

pytestmark = [pytest.mark.pcsc, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]


def issued_card(state: State, report: dict[str, Any]) -> str:
    issued = [n for kind, n in state.moves(report["visit_id"]) if kind == Movement.ISSUED.value]
    assert len(issued) == 1
    assert state.ledger.card(issued[0]).place is Place.ISSUED
    return issued[0]


def assert_common(report: dict[str, Any], state: State) -> None:
    assert report["passed"], why_not(report, state)
    assert report["ledger_balanced"] is True
    assert state.visit(report["visit_id"]) == (report["outcome"], report["reason"])
    assert report["steps"] and all(step["seconds"] >= 0 for step in report["steps"])


@pytest.fixture
def people() -> dict[str, dict]:
    data = json.loads((REPO / "config" / "demo-people.json").read_text(encoding="utf-8"))
    return {p["key"]: p for p in data["people"]}


@pytest.mark.parametrize("name", ["first_issue", "renewal", "replacement"])
def test_a_card_is_issued_activated_and_taken(tmp_path: Path, name: str, people: dict) -> None:
    report = run_scenario(name, tmp_path)
    state = State(tmp_path)
    assert_common(report, state)
    assert report["outcome"] == "card_issued" and report["card_number"]
    blank = issued_card(state, report)
    assert state.ledger.card(blank).place is Place.ISSUED
    assert report["touches"] <= 12
    cards = state.cards_of(people[name]["id_number"])
    new = cards[-1]
    assert new["state"] == "normal" and new["account_state"] in ("active", "pending") and new["pin_set"] == 1
    assert json.loads(new["optional_services"]) == []  # nothing optional chosen, nothing opened
    if name != "first_issue":
        assert cards[0]["state"] == "cancelled"  # the old card
    voucher = report["printed"][-1]
    assert "业务凭证" in voucher and "扫码领取电子社保卡" in voucher  # the e-card hint of an active card
    assert state.outbox() == [] or all(s == "acknowledged" for _, s in state.outbox())
    # The PSAM that did the key work is registered (the demo's, by demo-setup) and its uses are
    # recorded against this visit (DOMAIN: "PSAM is registered and its use is recorded").
    psam = state.conn.execute("SELECT terminal_number, registered_by FROM psam_registry WHERE retired_at IS NULL").fetchall()
    assert len(psam) == 1 and psam[0][1] == "demo-setup"
    uses = state.conn.execute("SELECT operation FROM psam_uses WHERE visit_id = ? ORDER BY id", (report["visit_id"],))
    assert [row[0] for row in uses] == ["personalize", "pin_set"]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("replacement_without_loss_report", "replacement_needs_loss_report"),
        ("face_mismatch", "face_mismatch"),
        ("temporary_card_not_recalled", "temporary_card_not_recalled"),
    ],
)
def test_a_refusal_ends_on_the_printed_one_time_notice_and_no_card_moves(tmp_path: Path, name: str, reason: str) -> None:
    report = run_scenario(name, tmp_path)
    state = State(tmp_path)
    assert_common(report, state)
    assert (report["outcome"], report["reason"]) == ("notice_printed", reason)
    assert state.moves(report["visit_id"]) == []
    assert any("一次性告知" in text for text in report["printed"]), report["printed"]
    assert report["card_number"] is None


@pytest.mark.parametrize(("name", "reason", "reject_reason"), [("card_jam", "card_jam", "jam"),
                                                              ("card_not_taken", "card_not_taken", "not_taken")])
def test_a_spoiled_card_is_in_the_reject_bin_recorded_and_reported(
    tmp_path: Path, name: str, reason: str, reject_reason: str
) -> None:
    report = run_scenario(name, tmp_path)
    state = State(tmp_path)
    assert_common(report, state)
    assert (report["outcome"], report["reason"]) == ("notice_printed", reason)
    rejected = [n for kind, n in state.moves(report["visit_id"]) if kind == Movement.REJECTED.value]
    assert len(rejected) == 1 and state.ledger.card(rejected[0]).place is Place.REJECT_BIN
    movement = [m for m in state.ledger.movements() if m.movement is Movement.REJECTED][0]
    assert movement.reason == reject_reason
    assert any("一次性告知" in text for text in report["printed"])


def test_hopper_empty_keeps_the_application_and_moves_no_card(tmp_path: Path, people: dict) -> None:
    report = run_scenario("hopper_empty", tmp_path)
    state = State(tmp_path)
    assert_common(report, state)
    assert report["reason"] == "hopper_empty"
    assert state.moves(report["visit_id"]) == []
    apps = state.backend.execute("SELECT state, card_number FROM applications WHERE id_number = ?",
                                 (people["first_issue"]["id_number"],)).fetchall()
    assert [tuple(a) for a in apps] == [("submitted", None)]  # kept; the allocated number voided


def test_a_failed_chip_write_spoils_one_blank_and_the_next_one_is_issued(tmp_path: Path) -> None:
    report = run_scenario("chip_write_fails", tmp_path)
    state = State(tmp_path)
    assert_common(report, state)
    moves = state.moves(report["visit_id"])
    assert [k for k, _ in moves] == ["fed", "rejected", "fed", "issued"]
    assert state.ledger.card(moves[1][1]).place is Place.REJECT_BIN
    issued_card(state, report)
    voided = state.backend.execute("SELECT COUNT(*) FROM cards WHERE state = 'cancelled'").fetchone()[0]
    assert voided == 1  # the spoiled card's number was reported and voided


def test_network_down_queues_the_application_sealed_for_central_production(tmp_path: Path, people: dict) -> None:
    report = run_scenario("network_down", tmp_path)
    state = State(tmp_path)
    assert_common(report, state)
    assert report["outcome"] == "application_queued" and report["outbox_pending"] == 1
    assert state.outbox() == [("application", "pending")]
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("kiosk.sqlite3*"))
    assert people["first_issue"]["id_number"].encode() not in raw  # sealed at rest
    assert any("一次性告知" in text for text in report["printed"])
    assert state.moves(report["visit_id"]) == []


def test_a_power_cut_during_production_is_recovered_and_the_card_made_on_the_next_visit(
    tmp_path: Path, people: dict
) -> None:
    report = run_scenario("power_cut_during_production", tmp_path)
    state = State(tmp_path)
    assert report["power_cut"]["killed"], report
    assert_common(report, state)
    assert report["recovered"] and "produce" in report["recovered"][0]["steps"]
    rejected = [m for m in state.ledger.movements() if m.movement is Movement.REJECTED]
    assert len(rejected) == 1 and rejected[0].reason == "recovery"
    issued_card(state, report)
    apps = state.backend.execute("SELECT state FROM applications WHERE id_number = ?",
                                 (people["first_issue"]["id_number"],)).fetchall()
    assert [a[0] for a in apps] == ["issued"]  # one application, never submitted twice
