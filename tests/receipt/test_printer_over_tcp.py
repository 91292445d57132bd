"""The driver against the simulator over a real loopback TCP socket: the bytes, the status
polling and the paper faults."""

from __future__ import annotations

import pytest

from kiosk.devices import DeviceState
from kiosk.devices.receipt import (
    PaperState,
    ReceiptCoverOpen,
    ReceiptPaperOut,
    ReceiptPrinter,
    ReceiptPrinterFault,
    ReceiptPrinterOffline,
    StaffReport,
)
from printer.receipt import protocol as p
from printer.receipt.escpos_printer import EscPosReceiptPrinter, TcpLink
from printer.receipt.simulator import ReceiptPrinterSimulator

from .conftest import E_CARD_URL, ID_NUMBER


def _qr_store_command(url: str) -> bytes:
    data = url.encode("utf-8")
    length = len(data) + 3
    return b"\x1d(k" + bytes([length % 256, length // 256]) + b"1P0" + data


def test_driver_satisfies_the_core_protocol(receipt_printer: EscPosReceiptPrinter) -> None:
    assert isinstance(receipt_printer, ReceiptPrinter)


def test_voucher_arrives_as_gb18030_text_with_native_qr_and_a_cut(
    receipt_printer, simulator, voucher
) -> None:
    result = receipt_printer.print_voucher(voucher)

    assert len(simulator.receipts) == 1
    receipt = simulator.receipts[0]
    assert receipt.startswith(b"\x1b@" + p.CHINESE_MODE_ON)
    assert "社会保障卡业务凭证".encode("gb18030") in receipt
    assert "业务类型：首次申领及即时制卡".encode("gb18030") in receipt
    assert "办理时间：2026-11-23 10:05:12".encode("gb18030") in receipt  # Asia/Shanghai
    assert "110101********0048".encode("gb18030") in receipt
    assert "622848*********1234".encode("gb18030") in receipt
    assert b"A*****567" in receipt
    assert ID_NUMBER.encode() not in simulator.received
    assert b"6228480012345671234" not in simulator.received
    assert _qr_store_command(E_CARD_URL) in receipt
    assert b"\x1d(k\x03\x001Q0" in receipt  # print the stored QR symbol
    assert receipt.endswith(b"\x1dV\x00")  # full cut
    assert result.bytes_sent == len(receipt)
    assert result.paper is PaperState.ADEQUATE


def test_notice_prints_reason_missing_material_process_and_where(receipt_printer, simulator, notice) -> None:
    receipt_printer.print_notice(notice)

    text = simulator.receipts[0].decode("gb18030", errors="replace")
    for expected in (
        "一次性告知单",
        "未能办理的原因",
        notice.reason,
        "需补充的材料",
        "1. 本人有效居民身份证原件",
        "办理流程",
        "办理时限：信息更正即时办结",
        "办理地点",
        "咨询电话：12333",
        "110101********0048",
    ):
        assert expected in text
    assert ID_NUMBER not in text


def test_staff_report_prints_its_table(receipt_printer, simulator, voucher) -> None:
    report = StaffReport(
        title="废卡交接清单",
        printed_at=voucher.completed_at,
        kiosk_id="KIOSK-0001",
        fields=(("废卡数量", "2"),),
        columns=("卡号", "原因"),
        rows=(("C0000007", "印刷错误"), ("C0000009", "超时未取回收")),
    )
    receipt_printer.print_report(report)
    text = simulator.receipts[0].decode("gb18030")
    assert "C0000007 印刷错误" in text
    assert "经办人签字：" in text and "复核人签字：" in text


def test_status_polls_dle_eot_and_reports_ready(receipt_printer, simulator) -> None:
    before = simulator.status_queries
    status = receipt_printer.status()
    assert status.state is DeviceState.READY
    assert status.code == "ok"
    assert status.levels == {"paper": 2}
    assert simulator.status_queries - before == 4  # DLE EOT 1, 2, 3, 4


@pytest.mark.parametrize(
    ("fault", "state", "code", "paper_level"),
    [
        ("paper_near_end", DeviceState.READY, "receipt.paper_near_end", 1),
        ("paper_out", DeviceState.ATTENTION, "receipt.paper_out", 0),
        ("cover_open", DeviceState.ATTENTION, "receipt.cover_open", 2),
    ],
)
def test_status_maps_paper_and_cover_for_staff(
    receipt_printer, simulator, fault, state, code, paper_level
) -> None:
    simulator.inject(fault)
    status = receipt_printer.status()
    assert (status.state, status.code, status.levels["paper"]) == (state, code, paper_level)
    assert (
        receipt_printer.paper_state()
        is {2: PaperState.ADEQUATE, 1: PaperState.NEAR_END, 0: PaperState.OUT}[paper_level]
    )


def test_near_end_still_prints_and_says_so(receipt_printer, simulator, voucher) -> None:
    simulator.inject("paper_near_end")
    result = receipt_printer.print_voucher(voucher)
    assert result.paper is PaperState.NEAR_END
    assert len(simulator.receipts) == 1


def test_paper_out_before_printing_sends_nothing(receipt_printer, simulator, voucher) -> None:
    simulator.inject("paper_out")
    with pytest.raises(ReceiptPaperOut) as caught:
        receipt_printer.print_voucher(voucher)
    assert caught.value.partial is False
    assert caught.value.code == "receipt.paper_out"
    assert "社会保障卡".encode("gb18030") not in simulator.received
    assert simulator.printed == b""


def test_paper_out_mid_print_is_partial_and_the_rest_is_cleared(receipt_printer, simulator, voucher) -> None:
    simulator.inject("paper_out_after", lines=6)
    with pytest.raises(ReceiptPaperOut) as caught:
        receipt_printer.print_voucher(voucher)
    assert caught.value.partial is True
    assert caught.value.audience.value == "staff"
    assert simulator.receipts == []  # never reached the cut
    assert simulator.wait_for(lambda s: s.held_commands == 0, 2.0)  # DLE DC4 8 cleared the buffer
    assert receipt_printer.status().code == "receipt.paper_out"

    simulator.load_paper()
    assert simulator.receipts == []  # the half voucher does not resume after the reload
    receipt_printer.print_voucher(voucher)  # staff reprint
    assert len(simulator.receipts) == 1
    assert "社会保障卡业务凭证".encode("gb18030") in simulator.receipts[0]


def test_cover_open_refuses_the_job(receipt_printer, simulator, voucher) -> None:
    simulator.inject("cover_open")
    with pytest.raises(ReceiptCoverOpen):
        receipt_printer.print_voucher(voucher)
    simulator.close_cover()
    receipt_printer.print_voucher(voucher)
    assert len(simulator.receipts) == 1


def test_cutter_error_mid_job_is_a_fault_for_the_engineer(receipt_printer, simulator, voucher) -> None:
    simulator.inject("cutter_error")
    with pytest.raises(ReceiptPrinterFault) as caught:
        receipt_printer.print_voucher(voucher)
    assert caught.value.audience.value == "engineer"
    assert receipt_printer.status().state is DeviceState.FAULT


def test_silent_printer_is_offline(receipt_printer, simulator, voucher) -> None:
    simulator.inject("offline")
    status = receipt_printer.status()
    assert status.state is DeviceState.OFFLINE
    assert status.code == "receipt.offline"
    with pytest.raises(ReceiptPrinterOffline):
        receipt_printer.print_voucher(voucher)
    simulator.clear_faults()
    assert receipt_printer.status().state is DeviceState.READY


def test_connection_refused_is_offline() -> None:
    with ReceiptPrinterSimulator() as sim:
        host, port = sim.address
    printer = EscPosReceiptPrinter(TcpLink(host, port, connect_timeout_s=0.5), status_timeout_s=0.3)
    try:
        assert printer.status().state is DeviceState.OFFLINE
    finally:
        printer.close()


def test_a_stale_marker_from_a_failed_job_does_not_end_the_next(
    receipt_printer, simulator, voucher, notice
) -> None:
    simulator.inject("paper_out_after", lines=6)
    with pytest.raises(ReceiptPaperOut):
        receipt_printer.print_voucher(voucher)
    simulator.load_paper()
    receipt_printer.print_notice(notice)
    receipt_printer.print_voucher(voucher)
    assert [r.count("一次性告知单".encode("gb18030")) for r in simulator.receipts] == [1, 0]
    assert len(simulator.receipts) == 2


def test_simulator_offers_the_fault_surface(simulator) -> None:
    assert set(simulator.fault_names()) >= {
        "paper_near_end",
        "paper_out",
        "paper_out_after",
        "cover_open",
        "cutter_error",
        "offline",
    }
    with pytest.raises(ValueError):
        simulator.inject("ink_out")
