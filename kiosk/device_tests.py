"""Self-tests per device (设备自检) that a field engineer runs from the engineer menu.

Each test drives one device through its Protocol (no driver is imported here) and returns a
:class:`SelfTestResult` with pass/fail counts, a machine code and a message key. Results never
carry personal data: a test card's identity is read and dropped, only counts and timings stay.

- ID reader: a read loop (find → select → read) with pass/fail counts and the mean read time;
- chip station: the PSAM's identity and a read of the test card at the chip station;
- card printer: a test card — fed, printed with a test face, put in the reject bin, and the
  card ledger told (a blank card is used up, and accounted for);
- PIN pad: reset with self-test and the loaded keys by check value (no PIN is entered);
- camera: the live preview with the face box (:class:`CameraPreviewTest`);
- receipt printer: a test slip.

Every test blocks on its device: run it off the UI thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from kiosk.config import KioskConfig
from kiosk.devices import DeviceError
from kiosk.devices.cardprinter import CardFace, Sex
from kiosk.devices.receipt import StaffReport
from kiosk.journal import utc_now
from kiosk.ledger import LedgerError, Place, RejectReason

log = logging.getLogger(__name__)

# Test names, in the order the self-test page shows them, with the service each needs.
TESTS: Mapping[str, str] = {
    "idreader": "idreader",
    "chip": "smartcard",
    "printer": "cardprinter",
    "pinpad": "pinpad",
    "camera": "face",
    "receipt": "receipt",
}
TEST_CARD_NAME = "测试卡"
TEST_CARD_SSN = "000000000000000000"


@dataclass(frozen=True)
class SelfTestResult:
    """``passed``/``failed``: counts of the test's operations; ``code`` is ``ok`` or the last
    failure's machine code; ``message_key`` + ``values`` the text for the page; ``detail``
    technical text without personal data."""

    test: str
    passed: int
    failed: int
    code: str
    message_key: str
    values: Mapping[str, Any] = field(default_factory=dict)
    detail: str = ""
    # Set where some failures are expected (camera frames without a face); else no failure at all.
    success: bool | None = None

    @property
    def ok(self) -> bool:
        if self.success is not None:
            return self.success
        return self.failed == 0 and self.passed > 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "test": self.test, "ok": self.ok, "passed": self.passed, "failed": self.failed,
            "code": self.code, "message_key": self.message_key, "values": dict(self.values), "detail": self.detail,
        }


def _code(exc: BaseException) -> str:
    return exc.code if isinstance(exc, DeviceError) else f"error.{type(exc).__name__}"


def idreader_read_loop(reader: Any, rounds: int = 5, *, pause_s: float = 0.2) -> SelfTestResult:
    """Reads the card on the reader ``rounds`` times; the identity read is dropped at once."""
    passed = failed = 0
    last_error = "ok"
    times: list[float] = []
    for i in range(rounds):
        started = time.monotonic()
        try:
            card = reader.read_identity()
        except DeviceError as exc:
            failed += 1
            last_error = exc.code
        else:
            del card  # personal data: only the fact of a good read stays
            passed += 1
            times.append(time.monotonic() - started)
        if pause_s and i + 1 < rounds:
            time.sleep(pause_s)
    mean_ms = int(sum(times) / len(times) * 1000) if times else 0
    values = {"passed": passed, "failed": failed, "rounds": rounds, "mean_ms": mean_ms}
    if failed == 0:
        return SelfTestResult("idreader", passed, failed, "ok", "engineer.test.idreader_ok", values,
                              f"mean read {mean_ms} ms")
    key = "engineer.test.idreader_no_card" if last_error == "idreader.no_card" and passed == 0 else "engineer.test.idreader_failed"
    return SelfTestResult("idreader", passed, failed, last_error, key, values, f"last error {last_error}")


def chip_station_read(station: Any, psam: Any = None) -> SelfTestResult:
    """The PSAM answers with its identity; the test card at the chip station is read."""
    passed = failed = 0
    code = "ok"
    values: dict[str, Any] = {}
    if psam is not None:
        try:
            identity = psam.identity()
        except DeviceError as exc:
            failed += 1
            code = exc.code
        else:
            passed += 1
            values["terminal"] = identity.terminal_number
    try:
        info = station.read_card_basic()
    except DeviceError as exc:
        failed += 1
        code = exc.code
    else:
        passed += 1
        values["algorithm"] = getattr(getattr(info, "algorithm", None), "value", "")
        del info  # the test card's holder data is not kept
    values.update(passed=passed, failed=failed)
    if failed == 0:
        return SelfTestResult("chip", passed, failed, "ok", "engineer.test.chip_ok", values)
    key = "engineer.test.chip_no_card" if code == "smartcard.no_card" else "engineer.test.chip_failed"
    return SelfTestResult("chip", passed, failed, code, key, values, f"last error {code}")


def test_card_face(card_number: str, today: date) -> CardFace:
    """The face printed on a test card: fictitious, marked as a test, no photo."""
    return CardFace(TEST_CARD_NAME, Sex.UNSPECIFIED, TEST_CARD_SSN, card_number, today)


def printer_test_card(printer: Any, ledger: Any, operator: str, clock: Callable[[], datetime] = utc_now) -> SelfTestResult:
    """Feeds a blank card, prints the test face on it and puts it in the reject bin; the card
    ledger records the card fed and rejected, so the counts still agree."""
    passed = failed = 0
    number: str | None = None
    stage = "feed"
    try:
        fed = printer.feed_to_chip_station()
        passed += 1
        number = fed.card_number
        if number is None and ledger is not None:
            hopper = ledger.cards_in(Place.HOPPER)
            number = hopper[0] if hopper else None
        if ledger is not None and number is not None:
            ledger.feed(number, visit_id=None, operator=operator)
        stage = "print"
        printer.print_face(test_card_face(number or "TEST", clock().date()))
        passed += 1
        stage = "reject"
        printer.reject("engineer_test_card")
        passed += 1
        if ledger is not None and number is not None:
            ledger.reject(number, RejectReason.STAFF, visit_id=None, operator=operator, detail="engineer test card")
    except (DeviceError, LedgerError) as exc:
        failed += 1
        code = exc.code if isinstance(exc, DeviceError) else f"ledger.{type(exc).__name__}"
        log.warning("device_test.printer_failed stage=%s code=%s", stage, code)
        return SelfTestResult("printer", passed, failed, code, "engineer.test.printer_failed",
                              {"stage": stage, "passed": passed, "failed": failed}, f"stage {stage}")
    return SelfTestResult("printer", passed, failed, "ok", "engineer.test.printer_ok",
                          {"passed": passed, "failed": failed}, "test card in the reject bin")


def pinpad_key_test(pad: Any, config: KioskConfig) -> SelfTestResult:
    """Reset with self-test, then the keys the kiosk uses are looked up by check value. No PIN
    entry is started, nothing typed on the pad leaves it."""
    passed = failed = 0
    try:
        pad.reset()
        passed += 1
        info = pad.info()
        passed += 1
    except DeviceError as exc:
        return SelfTestResult("pinpad", passed, failed + 1, exc.code, "engineer.test.pinpad_failed",
                              {"passed": passed, "failed": failed + 1})
    master, working = config.pinpad.pin_key_master_index, config.pinpad.pin_key_index
    values: dict[str, Any] = {"model": info.model, "firmware": info.firmware, "keys": 0}
    if info.keys is None:
        # The command set cannot list keys: the reset above says whether a master key is valid.
        status = pad.status()
        ok = status.code != "pinpad.keys_missing"
        passed, failed = (passed + 1, failed) if ok else (passed, failed + 1)
        code = "ok" if ok else "pinpad.keys_missing"
    else:
        values["keys"] = len(info.keys)
        have_master = any(k.master_index == master and k.working_index is None for k in info.keys)
        have_working = any(k.master_index == master and k.working_index == working for k in info.keys)
        for present in (have_master, have_working):
            passed, failed = (passed + 1, failed) if present else (passed, failed + 1)
        code = "ok" if have_master and have_working else "pinpad.keys_missing"
        values["check_values"] = ", ".join(
            f"{k.kind}{k.master_index}{'' if k.working_index is None else '/' + str(k.working_index)}:{k.check_value}"
            for k in info.keys
        )
    values.update(passed=passed, failed=failed)
    key = "engineer.test.pinpad_ok" if code == "ok" else "engineer.test.pinpad_keys_missing"
    return SelfTestResult("pinpad", passed, failed, code, key, values)


def receipt_test_print(printer: Any, config: KioskConfig, operator: str, clock: Callable[[], datetime] = utc_now) -> SelfTestResult:
    """Prints a test slip: title, kiosk, time, Chinese and ASCII text."""
    slip = StaffReport(
        title="打印测试 TEST PRINT",
        printed_at=clock().astimezone(UTC),
        kiosk_id=config.kiosk.kiosk_id,
        fields=(("工程师 Engineer", operator), ("网点 Branch", config.kiosk.branch_name)),
        footer=("中文测试：社会保障卡自助服务", "ASCII 0123456789 ABCDEFGHIJ"),
        signatures=(),
    )
    try:
        result = printer.print_report(slip)
    except DeviceError as exc:
        return SelfTestResult("receipt", 0, 1, exc.code, "engineer.test.receipt_failed", {"passed": 0, "failed": 1})
    paper = getattr(getattr(result, "paper", None), "value", "")
    return SelfTestResult("receipt", 1, 0, "ok", "engineer.test.receipt_ok",
                          {"passed": 1, "failed": 0, "paper": paper}, f"paper {paper}")


class CameraPreviewTest:
    """The camera's live preview with the face box: ``start()`` (blocking: the face worker loads
    its models), then ``preview()`` at the display rate, then ``stop()`` for the result —
    passed = analysed frames with one face box, failed = analysed frames without."""

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline
        self._lock = threading.Lock()
        self.frames = 0
        self.with_face = 0
        self.without_face = 0
        self._last_frame = -1
        self._last_analysed = -1
        self.error: str | None = None
        self.running = False

    def start(self) -> None:
        try:
            self.pipeline.start()
        except DeviceError as exc:
            self.error = exc.code
            raise
        self.running = True

    def preview(self) -> Any:
        """The newest preview state (frame, face box, hint), counted for the result."""
        state = self.pipeline.preview()
        with self._lock:
            if state.rgb is not None and state.frame_index != self._last_frame:
                self._last_frame = state.frame_index
                self.frames += 1
            analysed = getattr(state, "analysed_index", state.frame_index)
            if analysed and analysed != self._last_analysed:
                self._last_analysed = analysed
                if state.face is not None:
                    self.with_face += 1
                else:
                    self.without_face += 1
        return state

    def stop(self) -> SelfTestResult:
        if self.running:
            self.pipeline.stop()
            self.running = False
        return self.result()

    def result(self) -> SelfTestResult:
        with self._lock:
            values = {"frames": self.frames, "passed": self.with_face, "failed": self.without_face}
            if self.error is not None:
                return SelfTestResult("camera", 0, 1, self.error, "engineer.test.camera_failed", values)
            if self.frames == 0:
                return SelfTestResult("camera", 0, 1, "camera.no_frames", "engineer.test.camera_no_frames", values)
            if self.with_face == 0:
                return SelfTestResult("camera", 0, max(self.without_face, 1), "camera.no_face",
                                      "engineer.test.camera_no_face", values)
            return SelfTestResult("camera", self.with_face, self.without_face, "ok", "engineer.test.camera_ok", values,
                                  success=True)
