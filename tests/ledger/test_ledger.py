"""The card stock ledger: cards are cash. Invariants, durability, discrepancies, period report."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from kiosk.ledger import (
    LEDGER_SCHEMA,
    CardAlreadyIssued,
    CardAlreadyRegistered,
    CardLedger,
    CardNotInPlace,
    CardNotRegistered,
    CountSource,
    InvalidCardNumber,
    LedgerDiscrepancy,
    LedgerError,
    Movement,
    Place,
    RejectReason,
    StockCount,
    card_range,
)
from kiosk.storage import open_state_db

REPO = Path(__file__).resolve().parents[2]


def _restock(ledger: CardLedger, n: int = 10, prefix: str = "C") -> list[str]:
    return ledger.register_cards(card_range(f"{prefix}0000001", f"{prefix}{n:07d}"), operator="S001")


def test_restock_registers_each_card_in_the_hopper_with_its_operator(ledger) -> None:
    cards = _restock(ledger, 5)
    assert ledger.cards_in(Place.HOPPER) == cards
    record = ledger.card("C0000003")
    assert record.place is Place.HOPPER and record.registered_by == "S001"
    [movement] = ledger.movements("C0000003")
    assert (movement.movement, movement.operator, movement.to_place) == (
        Movement.RESTOCKED,
        "S001",
        Place.HOPPER,
    )


def test_a_card_goes_hopper_printer_citizen_with_the_visit_recorded(ledger) -> None:
    _restock(ledger, 3)
    ledger.feed("C0000001", visit_id="V1")
    ledger.issue("C0000001", visit_id="V1")
    assert ledger.card("C0000001").place is Place.ISSUED
    moves = ledger.movements("C0000001")
    assert [(m.movement, m.visit_id) for m in moves] == [
        (Movement.RESTOCKED, None),
        (Movement.FED, "V1"),
        (Movement.ISSUED, "V1"),
    ]


def test_a_card_cannot_be_issued_twice(ledger) -> None:
    _restock(ledger, 1)
    ledger.feed("C0000001", visit_id="V1")
    ledger.issue("C0000001", visit_id="V1")
    with pytest.raises(CardAlreadyIssued) as caught:
        ledger.issue("C0000001", visit_id="V2")
    assert caught.value.code == "ledger.card_already_issued"
    assert len(ledger.movements("C0000001")) == 3


def test_an_unregistered_card_cannot_be_fed_or_issued(ledger) -> None:
    _restock(ledger, 1)
    with pytest.raises(CardNotRegistered):
        ledger.feed("X9999999", visit_id="V1")
    with pytest.raises(CardNotRegistered):
        ledger.issue("X9999999", visit_id="V1")
    assert ledger.balance().registered == 1


@pytest.mark.parametrize(
    "steps",
    [
        ["issue"],  # issued without having been fed
        ["reject"],  # rejected from the hopper
        ["feed", "feed"],  # fed twice
        ["feed", "reject", "issue"],  # a spoiled card issued
        ["feed", "reject", "feed"],  # a spoiled card fed again
        ["hand_over"],  # handed over from the hopper
        ["feed", "issue", "return"],  # an issued card returned to the vault
    ],
)
def test_movements_from_the_wrong_place_are_refused_and_change_nothing(ledger, steps) -> None:
    _restock(ledger, 1)
    actions = {
        "feed": lambda: ledger.feed("C0000001", visit_id="V"),
        "issue": lambda: ledger.issue("C0000001", visit_id="V"),
        "reject": lambda: ledger.reject("C0000001", RejectReason.MISPRINT, visit_id="V"),
        "hand_over": lambda: ledger.hand_over(["C0000001"], operator="S001"),
        "return": lambda: ledger.return_to_vault(["C0000001"], operator="S001"),
    }
    for step in steps[:-1]:
        actions[step]()
    place, count = ledger.card("C0000001").place, len(ledger.movements())
    with pytest.raises(CardNotInPlace):
        actions[steps[-1]]()
    assert ledger.card("C0000001").place is place
    assert len(ledger.movements()) == count


def test_registering_a_number_twice_is_refused_even_after_issue(ledger) -> None:
    _restock(ledger, 2)
    ledger.feed("C0000001", visit_id="V1")
    ledger.issue("C0000001", visit_id="V1")
    with pytest.raises(CardAlreadyRegistered):
        ledger.register_cards(["C0000001"], operator="S001")
    with pytest.raises(CardAlreadyRegistered):
        ledger.register_cards(["C0000005", "C0000005"], operator="S001")


def test_restock_is_all_or_nothing(ledger) -> None:
    _restock(ledger, 3)
    with pytest.raises(CardAlreadyRegistered):
        ledger.register_cards(["D0000001", "D0000002", "C0000002"], operator="S001")
    assert ledger.balance().registered == 3
    with pytest.raises(CardNotRegistered):
        ledger.card("D0000001")


@pytest.mark.parametrize("bad", ["", "C-1", "卡0001", "C" * 33, "12 34"])
def test_malformed_card_numbers_are_refused(ledger, bad) -> None:
    with pytest.raises(InvalidCardNumber):
        ledger.register_cards([bad], operator="S001")


def test_every_entry_needs_an_operator(ledger) -> None:
    with pytest.raises(LedgerError):
        ledger.register_cards(["C0000001"], operator=" ")


def test_card_range_keeps_the_width_and_refuses_mixed_prefixes() -> None:
    assert card_range("A0098", "A0101") == ["A0098", "A0099", "A0100", "A0101"]
    with pytest.raises(InvalidCardNumber):
        card_range("A0001", "B0005")
    with pytest.raises(InvalidCardNumber):
        card_range("A0005", "A0001")


def test_reject_records_the_reason_and_hand_over_empties_the_bin(ledger) -> None:
    _restock(ledger, 4)
    for card, reason in (
        ("C0000001", RejectReason.PERSONALIZATION_FAILED),
        ("C0000002", RejectReason.NOT_TAKEN),
    ):
        ledger.feed(card, visit_id="V" + card)
        ledger.reject(card, reason, visit_id="V" + card, detail="sw=6A82")
    assert ledger.movements("C0000001")[-1].reason == "personalization_failed"
    assert ledger.movements("C0000001")[-1].detail == {"detail": "sw=6A82"}
    handed = ledger.hand_over(operator="S001", reviewer="S002")
    assert handed == ["C0000001", "C0000002"]
    assert ledger.cards_in(Place.REJECT_BIN) == []
    assert ledger.cards_in(Place.HANDED_OVER) == handed
    assert ledger.movements("C0000002")[-1].detail == {"reviewer": "S002"}


def test_balance_identity_holds(ledger) -> None:
    _restock(ledger, 6)
    ledger.feed("C0000001", visit_id="V1")
    ledger.issue("C0000001", visit_id="V1")
    ledger.feed("C0000002", visit_id="V2")
    ledger.reject("C0000002", RejectReason.JAM, visit_id="V2")
    ledger.feed("C0000003", visit_id="V3")
    ledger.return_to_vault(["C0000006"], operator="S001")
    balance = ledger.balance()
    assert balance.expected == StockCount(hopper=2, reject_bin=1, in_printer=1)
    assert balance.held == balance.expected.total == 4


def test_a_matching_count_is_recorded_as_balanced(ledger) -> None:
    _restock(ledger, 3)
    result = ledger.count(StockCount(hopper=3, reject_bin=0), source=CountSource.PRINTER, operator="kiosk")
    assert result.balanced
    assert ledger.open_discrepancies() == []
    assert ledger.movements()[-1].movement is Movement.COUNTED


def test_a_count_mismatch_is_recorded_and_raised_never_corrected(ledger, state_dir) -> None:
    _restock(ledger, 5)
    with pytest.raises(LedgerDiscrepancy) as caught:
        ledger.count(StockCount(hopper=4, reject_bin=0), source=CountSource.STAFF, operator="S001")
    discrepancy = caught.value.discrepancy
    assert discrepancy.expected["hopper"] == 5 and discrepancy.observed["hopper"] == 4
    assert ledger.card("C0000005").place is Place.HOPPER  # nothing moved
    assert ledger.balance().expected.hopper == 5
    # Recorded durably: a fresh connection sees it open.
    other = CardLedger(open_state_db(state_dir, {"ledger": LEDGER_SCHEMA}))
    assert [d.discrepancy_id for d in other.open_discrepancies()] == [discrepancy.discrepancy_id]


def test_a_discrepancy_closes_only_after_a_supervisor_note(ledger) -> None:
    _restock(ledger, 2)
    with pytest.raises(LedgerDiscrepancy) as caught:
        ledger.count(StockCount(hopper=1, reject_bin=0), source=CountSource.STAFF, operator="S001")
    number = caught.value.discrepancy.discrepancy_id
    with pytest.raises(LedgerError):
        ledger.resolve_discrepancy(number, "found it", supervisor="M001")
    ledger.note_discrepancy(number, "one card stuck behind the hopper guide", supervisor="M001")
    assert ledger.open_discrepancies()[0].note == "one card stuck behind the hopper guide"
    resolved = ledger.resolve_discrepancy(number, "card recovered, recount matches", supervisor="M001")
    assert not resolved.open and ledger.open_discrepancies() == []
    with pytest.raises(LedgerError):
        ledger.resolve_discrepancy(number, "again", supervisor="M001")


def test_movements_are_append_only(ledger) -> None:
    _restock(ledger, 1)
    conn = ledger._conn
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("UPDATE ledger_movements SET operator = 'X'")
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("DELETE FROM ledger_movements")
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("DELETE FROM ledger_cards")


def test_movements_survive_a_reopen(ledger, state_dir) -> None:
    _restock(ledger, 2)
    ledger.feed("C0000001", visit_id="V1")
    reopened = CardLedger(open_state_db(state_dir, {"ledger": LEDGER_SCHEMA}))
    assert reopened.card("C0000001").place is Place.PRINTER
    assert len(reopened.movements()) == 3


@pytest.mark.parametrize("die_after", [1, 25, 50])
def test_a_power_cut_during_restock_loses_no_card_and_counts_none_twice(state_dir, die_after) -> None:
    child = [sys.executable, str(Path(__file__).with_name("power_cut_child.py")), str(state_dir)]
    killed = subprocess.run(
        [*child, "E0000001", "E0000050", str(die_after)], cwd=REPO, timeout=60, check=False
    )
    assert killed.returncode == 9
    ledger = CardLedger(open_state_db(state_dir, {"ledger": LEDGER_SCHEMA}))
    assert ledger.balance().registered == 0  # the restock never happened: redo it whole
    done = subprocess.run([*child, "E0000001", "E0000050", "0"], cwd=REPO, timeout=60, check=False)
    assert done.returncode == 0
    assert ledger.balance().registered == 50
    assert len(ledger.movements()) == 50
    assert ledger.cards_in(Place.HOPPER) == card_range("E0000001", "E0000050")


def test_day_and_month_reports_chain_and_list_the_cards(ledger, clock) -> None:
    _restock(ledger, 10)  # 2026-11-23 09:00 Beijing
    ledger.feed("C0000001", visit_id="V1")
    ledger.issue("C0000001", visit_id="V1")
    ledger.feed("C0000002", visit_id="V2")
    ledger.reject("C0000002", RejectReason.MISPRINT, visit_id="V2")
    ledger.hand_over(operator="S001")
    ledger.count(StockCount(hopper=8, reject_bin=0), source=CountSource.STAFF, operator="S001")
    clock.advance(hours=15, minutes=30)  # 2026-11-24 00:30 Beijing, still the 23rd in UTC
    ledger.feed("C0000003", visit_id="V3")
    ledger.issue("C0000003", visit_id="V3")

    day1 = ledger.period_report("day", date(2026, 11, 23))
    assert (day1.opening, len(day1.restocked), day1.issued, day1.spoiled, day1.handed_over, day1.closing) == (
        0,
        10,
        ("C0000001",),
        (("C0000002", "misprint"),),
        ("C0000002",),
        8,
    )
    assert day1.counted == StockCount(hopper=8, reject_bin=0)
    assert day1.balanced is True
    day2 = ledger.period_report("day", date(2026, 11, 24))
    assert (day2.opening, day2.issued, day2.closing, day2.counted, day2.balanced) == (
        8,
        ("C0000003",),
        7,
        None,
        None,
    )
    month = ledger.period_report("month", date(2026, 11, 2))
    assert (month.opening, len(month.restocked), len(month.issued), month.closing) == (0, 10, 2, 7)
    as_json = month.as_dict()
    for key in ("opening", "restocked", "issued", "spoiled", "handed_over", "closing", "counted", "balanced"):
        assert key in as_json
    assert as_json["cards"]["spoiled"] == [{"card_number": "C0000002", "reason": "misprint"}]


def test_report_is_unbalanced_while_a_discrepancy_is_open(ledger) -> None:
    _restock(ledger, 3)
    with pytest.raises(LedgerDiscrepancy):
        ledger.count(StockCount(hopper=2, reject_bin=0), source=CountSource.STAFF, operator="S001")
    report = ledger.period_report("day", date(2026, 11, 23))
    assert report.balanced is False and len(report.open_discrepancies) == 1
