"""The same driver over a pseudo-terminal, as over /dev/ttyUSB0 (pyserial) or a printer device
file (/dev/usb/lp0, opened read-write)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kiosk.devices import DeviceState
from kiosk.devices.receipt import ReceiptPaperOut
from printer.receipt.escpos_printer import EscPosReceiptPrinter, open_link
from printer.receipt.simulator import ReceiptPrinterSimulator


@pytest.fixture
def pty_simulator() -> Iterator[ReceiptPrinterSimulator]:
    with ReceiptPrinterSimulator(link="pty") as sim:
        yield sim


@pytest.mark.parametrize("transport", ["serial", "file"])
def test_voucher_and_status_over_a_tty(pty_simulator, voucher, transport) -> None:
    link = open_link(transport, pty_simulator.device_path, baud=9600)
    printer = EscPosReceiptPrinter(link, status_timeout_s=1.0, job_timeout_s=5.0, poll_interval_s=0.05)
    try:
        assert printer.status().state is DeviceState.READY
        printer.print_voucher(voucher)
        assert "社会保障卡业务凭证".encode("gb18030") in pty_simulator.receipts[0]
        assert pty_simulator.receipts[0].endswith(b"\x1dV\x00")
        # Raw line discipline: the bytes arrive untouched (no LF→CRLF, no echo back).
        assert b"\r" not in pty_simulator.received
        pty_simulator.inject("paper_out_after", lines=4)
        with pytest.raises(ReceiptPaperOut) as caught:
            printer.print_voucher(voucher)
        assert caught.value.partial is True
    finally:
        printer.close()


def test_a_missing_device_is_offline(tmp_path) -> None:
    from kiosk.devices.receipt import ReceiptPrinterOffline

    for transport in ("serial", "file"):
        with pytest.raises(ReceiptPrinterOffline):
            open_link(transport, str(tmp_path / "ttyUSB9"))
