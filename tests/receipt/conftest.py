"""Receipt printer fixtures: the simulator on a real loopback TCP socket and the driver on it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kiosk.devices.receipt import OneTimeNotice, Voucher
from printer.receipt.escpos_printer import EscPosReceiptPrinter, TcpLink
from printer.receipt.simulator import ReceiptPrinterSimulator

FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
ID_NUMBER = "110101199003070048"
E_CARD_URL = "https://ecard.example.gov.cn/claim?t=7f3a91"


@pytest.fixture
def simulator() -> Iterator[ReceiptPrinterSimulator]:
    sim = ReceiptPrinterSimulator(paper_lines=5000, near_end_lines=300)
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def receipt_printer(simulator: ReceiptPrinterSimulator) -> Iterator[EscPosReceiptPrinter]:
    host, port = simulator.address
    printer = EscPosReceiptPrinter(
        TcpLink(host, port), status_timeout_s=1.0, job_timeout_s=5.0, poll_interval_s=0.05
    )
    try:
        yield printer
    finally:
        printer.close()


@pytest.fixture
def voucher() -> Voucher:
    return Voucher(
        business="首次申领及即时制卡",
        completed_at=datetime(2026, 11, 23, 2, 5, 12, tzinfo=UTC),
        kiosk_id="KIOSK-0001",
        serial_number="KS20261123000123",
        id_number=ID_NUMBER,
        result="办理成功，已领取社会保障卡",
        card_number="A01234567",
        bank_card_number="6228480012345671234",
        qr_url=E_CARD_URL,
        branch="示例银行 示例支行",
    )


@pytest.fixture
def notice() -> OneTimeNotice:
    return OneTimeNotice(
        business="首次申领及即时制卡",
        issued_at=datetime(2026, 11, 23, 2, 5, 12, tzinfo=UTC),
        kiosk_id="KIOSK-0001",
        serial_number="KS20261123000124",
        reason="身份证信息与社保系统登记的信息不一致",
        missing=("本人有效居民身份证原件", "户口簿或公安机关出具的信息变更证明"),
        process=("携带上述材料到社保卡服务大厅办理信息更正", "更正后可回到本机重新申领，当场制卡"),
        time_limit="信息更正即时办结",
        where="示例市社保卡服务大厅（示例区人民路 100 号）",
        id_number=ID_NUMBER,
    )
