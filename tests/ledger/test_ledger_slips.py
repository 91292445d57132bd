"""The printed handover list and the day report, through the receipt printer simulator."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest

from kiosk.devices import DeviceState, DeviceStatus
from kiosk.i18n import Translator
from kiosk.ledger import (
    CountSource,
    Movement,
    RejectReason,
    StockCount,
    card_range,
    compress_ranges,
    handover_slip,
    period_slip,
)
from printer.receipt.escpos_printer import EscPosReceiptPrinter, TcpLink
from printer.receipt.simulator import ReceiptPrinterSimulator

PRINTED_AT = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def text():
    return Translator(("zh_CN", "en")).text


def _day(ledger) -> None:
    ledger.register_cards(card_range("C0000001", "C0000050"), operator="S001")
    ledger.feed("C0000001", visit_id="V1")
    ledger.issue("C0000001", visit_id="V1")
    ledger.feed("C0000002", visit_id="V2")
    ledger.reject("C0000002", RejectReason.PERSONALIZATION_FAILED, visit_id="V2")


def test_handover_slip_lists_each_spoiled_card_with_its_reason(ledger, text) -> None:
    _day(ledger)
    rejected = [m for m in ledger.movements() if m.movement is Movement.REJECTED]
    ledger.hand_over(operator="S001")
    slip = handover_slip(rejected, kiosk_id="K1", operator="S001", printed_at=PRINTED_AT, text=text)
    assert slip.title == "废卡交接清单"
    assert slip.rows == (("C0000002", "芯片个人化失败", "2026-11-23 09:00"),)
    assert ("废卡数量", "1") in slip.fields


def test_day_slip_prints_on_the_receipt_printer(ledger, text) -> None:
    _day(ledger)
    ledger.hand_over(operator="S001")
    ledger.count(StockCount(hopper=48, reject_bin=0), source=CountSource.STAFF, operator="S001")
    report = ledger.period_report("day", date(2026, 11, 23))
    slip = period_slip(report, kiosk_id="K1", printed_at=PRINTED_AT, text=text)
    fields = dict(slip.fields)
    assert (
        fields["期初结存"],
        fields["本期入库"],
        fields["本期发卡"],
        fields["本期废卡"],
        fields["期末结存"],
    ) == (
        "0",
        "50",
        "1",
        "1",
        "48",
    )
    assert fields["帐卡相符"] == "相符"
    assert slip.rows[0] == ("C0000001-C0000050", "补卡入库")
    with ReceiptPrinterSimulator() as sim:
        printer = EscPosReceiptPrinter(TcpLink(*sim.address), poll_interval_s=0.05)
        try:
            printer.print_report(slip)
        finally:
            printer.close()
        printed = sim.receipts[0].decode("gb18030")
    assert (
        "空白卡日结对账单" in printed
        and "期末结存：48" in printed
        and re.search(r"C0000002 +废卡 芯片个人化失败", printed)
    )


def test_compress_ranges() -> None:
    assert compress_ranges(["A01", "A02", "A03", "A05", "B1"]) == ["A01-A03", "A05", "B1"]


def test_printer_levels_become_a_count_and_a_missing_level_is_an_error(ledger) -> None:
    _day(ledger)
    status = DeviceStatus("cardprinter", DeviceState.READY, levels={"hopper": 48, "reject_bin": 1})
    result = ledger.count(StockCount.from_levels(status.levels), source=CountSource.PRINTER, operator="kiosk")
    assert result.balanced
    with pytest.raises(ValueError):
        StockCount.from_levels({"hopper": 3})
