"""Each device self-test of the engineer menu: counts, codes, and nothing personal kept; and the
engineer desk records every test with who ran it."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from kiosk.audit import AUDIT_SCHEMA, AuditLog
from kiosk.device_tests import (
    CameraPreviewTest,
    chip_station_read,
    idreader_read_loop,
    pinpad_key_test,
    printer_test_card,
    receipt_test_print,
)
from kiosk.devices.camera import FaceBox
from kiosk.devices.idreader import NoCardError, ReplyTimeoutError
from kiosk.devices.receipt import ReceiptPaperOut
from kiosk.engineer import EngineerDesk
from kiosk.i18n import Translator
from kiosk.journal import JOURNAL_SCHEMA, Journal
from kiosk.ledger import LEDGER_SCHEMA, CardLedger, Place
from kiosk.runtime import KioskCore, Services
from kiosk.storage import open_state_db
from tests.engineer.fakes import (
    NOW,
    FakePad,
    FakePrinter,
    FakePsam,
    FakeReader,
    FakeReceipt,
    FakeStation,
    demo_config,
)


def test_id_reader_loop_counts_passes_and_failures_and_keeps_no_identity() -> None:
    reader = FakeReader([SimpleNamespace(name="张三"), ReplyTimeoutError("late"), SimpleNamespace(name="张三")])
    result = idreader_read_loop(reader, rounds=3, pause_s=0)
    assert (result.passed, result.failed, result.ok, result.code) == (2, 1, False, "idreader.timeout")
    assert "张三" not in repr(result)
    assert idreader_read_loop(FakeReader(), rounds=4, pause_s=0).as_dict()["ok"] is True


def test_id_reader_loop_without_a_card_says_place_the_test_card() -> None:
    result = idreader_read_loop(FakeReader([NoCardError("none", sw3=0x80)] * 3), rounds=3, pause_s=0)
    assert (result.passed, result.failed, result.message_key) == (0, 3, "engineer.test.idreader_no_card")


def test_chip_station_reads_the_psam_and_the_test_card() -> None:
    card = SimpleNamespace(algorithm=SimpleNamespace(value="sm4"), name="张三", ssn="110101195503120048")
    result = chip_station_read(FakeStation(card), FakePsam())
    assert (result.passed, result.failed, result.ok) == (2, 0, True)
    assert result.values["terminal"] == "110100000001" and "张三" not in repr(result)
    empty = chip_station_read(FakeStation(None), FakePsam())
    assert (empty.passed, empty.failed, empty.code, empty.message_key) == (
        1, 1, "smartcard.no_card", "engineer.test.chip_no_card")


def test_printer_test_card_is_printed_rejected_and_booked_in_the_ledger(tmp_path: Path) -> None:
    conn = open_state_db(tmp_path, {"ledger": LEDGER_SCHEMA})
    ledger = CardLedger(conn)
    ledger.register_cards(["A00000001", "A00000002"], operator="setup")
    printer = FakePrinter()
    result = printer_test_card(printer, ledger, "9001", lambda: NOW)
    assert result.ok and (result.passed, result.failed) == (3, 0)
    assert printer.moves == ["feed", "print", "reject"]
    assert printer.faces[0].name == "测试卡"
    assert ledger.cards_in(Place.REJECT_BIN) == ["A00000001"]
    assert ledger.cards_in(Place.HOPPER) == ["A00000002"]


def test_printer_test_card_failure_names_the_stage() -> None:
    printer = FakePrinter()
    printer.fail_at = "print"
    result = printer_test_card(printer, None, "9001", lambda: NOW)
    assert (result.ok, result.code, result.values["stage"]) == (False, "cardprinter.jam", "print")


def test_pin_pad_key_test_checks_the_keys_without_a_pin_entry(tmp_path: Path) -> None:
    config = demo_config(tmp_path)
    pad = FakePad()
    result = pinpad_key_test(pad, config)
    assert result.ok and pad.resets == 1 and pad.entries == 0
    assert "1A2B3C4D" in result.values["check_values"]
    missing = pinpad_key_test(FakePad(keys=()), config)
    assert (missing.ok, missing.code) == (False, "pinpad.keys_missing")


def test_receipt_test_print_prints_a_slip_or_says_why_not(tmp_path: Path) -> None:
    config = demo_config(tmp_path)
    receipt = FakeReceipt()
    result = receipt_test_print(receipt, config, "9001", lambda: NOW)
    assert result.ok and receipt.printed[0].title.startswith("打印测试")
    receipt.error_on_print = ReceiptPaperOut("out")
    failed = receipt_test_print(receipt, config, "9001", lambda: NOW)
    assert (failed.ok, failed.code) == (False, "receipt.paper_out")


class FakePipeline:
    def __init__(self, faces: list[bool]) -> None:
        self.faces = faces
        self.index = 0
        self.started = self.stopped = False

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.stopped = True

    def preview(self):  # type: ignore[no-untyped-def]
        self.index += 1
        face = FaceBox(10, 60, 60, 10) if self.faces[min(self.index - 1, len(self.faces) - 1)] else None
        return SimpleNamespace(frame_index=self.index, rgb=np.zeros((4, 4, 3), np.uint8), face=face,
                               analysed_index=self.index)


def test_camera_preview_counts_frames_with_a_face_box() -> None:
    pipeline = FakePipeline([False, True, True, True])
    test = CameraPreviewTest(pipeline)
    test.start()
    for _ in range(4):
        test.preview()
    result = test.stop()
    assert pipeline.started and pipeline.stopped
    assert (result.ok, result.passed, result.failed, result.values["frames"]) == (True, 3, 1, 4)
    nobody = CameraPreviewTest(FakePipeline([False]))
    nobody.start()
    nobody.preview()
    assert nobody.stop().code == "camera.no_face"


def test_the_desk_runs_each_test_and_records_who_ran_it(tmp_path: Path) -> None:
    config = demo_config(tmp_path / "state")
    conn = open_state_db(tmp_path / "state", {"journal": JOURNAL_SCHEMA, "audit": AUDIT_SCHEMA})
    audit = AuditLog(conn, b"k" * 32)
    services = Services({
        "idreader": FakeReader(), "smartcard": FakeStation(SimpleNamespace(algorithm=None)), "psam": FakePsam(),
        "cardprinter": FakePrinter(), "pinpad": FakePad(), "receipt": FakeReceipt(), "audit": audit,
    })
    core = KioskCore(config, Translator(config.kiosk.languages), Journal(conn), services, {})
    desk = EngineerDesk(core, site_file=tmp_path / "site.toml", clock=lambda: NOW)
    assert desk.available_tests() == ["idreader", "chip", "printer", "pinpad", "receipt"]
    for test in desk.available_tests():
        assert desk.run_test("9001", test).ok, test
    entries = audit.entries()
    assert [(e.actor, e.action, e.subject) for e in entries] == [
        ("9001", "engineer.selftest", t) for t in desk.available_tests()
    ]
    assert all(e.details["outcome"] == "passed" for e in entries)
    with pytest.raises(ValueError):
        desk.run_test("9001", "toaster")
