"""The ledger's period closings (交班/日结/月结) with operator and reviewer, the shift period bounded
by movement ids, and the ``kiosk ledger report`` contract."""

from __future__ import annotations

import json
import sqlite3
from datetime import date
from pathlib import Path

import pytest

from kiosk.cli import main
from kiosk.ledger import (
    LEDGER_SCHEMA,
    CardLedger,
    CountSource,
    PeriodAlreadyClosed,
    PeriodNotCounted,
    RejectReason,
    ReviewerRequired,
    StockCount,
    card_range,
)
from kiosk.storage import open_state_db, schema_versions
from tests.staff.rig import FakeClock

CONTRACT = ("opening", "restocked", "issued", "spoiled", "handed_over", "closing", "counted", "balanced")


@pytest.fixture
def ledger(tmp_path: Path):  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    conn = open_state_db(tmp_path, {"ledger": LEDGER_SCHEMA})
    yield CardLedger(conn, clock=FakeClock(datetime(2026, 11, 23, 1, 0, tzinfo=UTC)))
    conn.close()


def _staff_count(ledger: CardLedger, hopper: int, reject_bin: int = 0) -> None:
    ledger.count(StockCount(hopper=hopper, reject_bin=reject_bin), source=CountSource.STAFF, operator="1001")


def test_the_ledger_schema_migrates_to_version_2(ledger: CardLedger, tmp_path: Path) -> None:
    assert schema_versions(open_state_db(tmp_path, {"ledger": LEDGER_SCHEMA}))["ledger"] == 2


def test_a_day_is_closed_once_after_a_count_with_a_reviewer_other_than_the_operator(
    ledger: CardLedger,
) -> None:
    ledger.register_cards(card_range("C0000001", "C0000010"), operator="1001")
    report = ledger.period_report("day", date(2026, 11, 23))
    with pytest.raises(PeriodNotCounted):
        ledger.close_period(report, operator="1001", reviewer="1002")
    _staff_count(ledger, 10)
    report = ledger.period_report("day", date(2026, 11, 23))
    for reviewer in ("", "1001"):
        with pytest.raises(ReviewerRequired):
            ledger.close_period(report, operator="1001", reviewer=reviewer)
    closing = ledger.close_period(report, operator="1001", reviewer="1002")
    assert (closing.period, closing.opening, closing.closing, closing.counted, closing.balanced) == (
        "day",
        0,
        10,
        10,
        True,
    )
    assert (closing.operator, closing.reviewer) == ("1001", "1002")
    with pytest.raises(PeriodAlreadyClosed):
        ledger.close_period(report, operator="1001", reviewer="1002")
    assert ledger.closings("day") == [closing]
    with pytest.raises(sqlite3.IntegrityError):
        ledger._conn.execute("UPDATE ledger_closings SET reviewer = 'x'")


def test_each_shift_starts_where_the_last_shift_closing_ended(ledger: CardLedger) -> None:
    ledger.register_cards(card_range("C0000001", "C0000010"), operator="1001")
    ledger.feed("C0000001", visit_id="V1")
    ledger.reject("C0000001", RejectReason.MISPRINT, visit_id="V1")
    _staff_count(ledger, 9, 1)
    first = ledger.period_report("shift")
    assert (first.opening, len(first.restocked), first.spoiled, first.closing, first.balanced) == (
        0,
        10,
        (("C0000001", "misprint"),),
        10,
        True,
    )
    ledger.close_period(first, operator="1001", reviewer="2001")
    # Same clock reading, still the next shift: shifts are bounded by movement ids, not times.
    ledger.feed("C0000002", visit_id="V2")
    ledger.issue("C0000002", visit_id="V2")
    second = ledger.period_report("shift")
    assert (second.opening, second.restocked, second.issued, second.counted) == (10, (), ("C0000002",), None)
    _staff_count(ledger, 8, 1)
    closing = ledger.close_period(ledger.period_report("shift"), operator="1002", reviewer="1001")
    assert (closing.opening, closing.closing, closing.balanced) == (10, 9, True)
    assert [c.period for c in ledger.closings()] == ["shift", "shift"]


def test_period_slip_carries_operator_and_reviewer(ledger: CardLedger) -> None:
    from datetime import UTC, datetime

    from kiosk.i18n import Translator
    from kiosk.ledger import period_slip

    ledger.register_cards(["C0000001"], operator="1001")
    _staff_count(ledger, 1)
    slip = period_slip(
        ledger.period_report("shift"),
        kiosk_id="K1",
        printed_at=datetime(2026, 11, 23, 2, tzinfo=UTC),
        text=Translator().text,
        operator="1001",
        reviewer="2001",
    )
    fields = dict(slip.fields)
    assert slip.title == "空白卡交班对账单"
    assert (fields["经办人"], fields["复核人"], fields["帐卡相符"]) == ("1001", "2001", "相符")


def _cli(capsys, *argv: str) -> tuple[int, dict]:  # type: ignore[no-untyped-def]
    code = main(list(argv))
    lines = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(lines[-1])


@pytest.mark.parametrize("period", ["day", "month", "shift"])
def test_ledger_report_prints_the_contract_and_the_cards_behind_each_movement(
    tmp_path: Path, capsys, period: str
) -> None:
    state = str(tmp_path)
    _cli(
        capsys,
        "ledger",
        "--state-dir",
        state,
        "restock",
        "--range",
        "C0000001",
        "C0000003",
        "--operator",
        "1001",
    )
    ledger = CardLedger(open_state_db(tmp_path, {"ledger": LEDGER_SCHEMA}))
    ledger.feed("C0000001", visit_id="V1")
    ledger.issue("C0000001", visit_id="V1")
    ledger.feed("C0000002", visit_id="V2")
    ledger.reject("C0000002", RejectReason.NOT_TAKEN, visit_id="V2")
    ledger.hand_over(operator="1001")
    code, report = _cli(capsys, "ledger", "--state-dir", state, "report", "--period", period, "--json")
    assert code == 0
    assert {k: report[k] for k in CONTRACT} == {
        "opening": 0,
        "restocked": 3,
        "issued": 1,
        "spoiled": 1,
        "handed_over": 1,
        "closing": 1,
        "counted": None,
        "balanced": None,
    }
    assert report["cards"]["restocked"] == ["C0000001", "C0000002", "C0000003"]
    assert report["cards"]["issued"] == ["C0000001"]
    assert report["cards"]["spoiled"] == [{"card_number": "C0000002", "reason": "not_taken"}]
    assert report["cards"]["handed_over"] == ["C0000002"]
    _cli(
        capsys,
        "ledger",
        "--state-dir",
        state,
        "count",
        "--hopper",
        "1",
        "--reject-bin",
        "0",
        "--operator",
        "1001",
    )
    code, report = _cli(capsys, "ledger", "--state-dir", state, "report", "--period", period, "--json")
    assert (report["counted"], report["balanced"]) == (1, True)
