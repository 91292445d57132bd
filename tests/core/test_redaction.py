"""No ID number (last 4 only), name, phone, PIN, PIN block, photo or template reaches a log
record or a traceback: values are seeded through real code paths and every log line is scanned."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.journal import JOURNAL_SCHEMA, Journal
from kiosk.logs import configure_logging, redact, register_sensitive
from kiosk.prompts import Answer, Prompt
from kiosk.storage import open_state_db
from kiosk.visit import Flow, Step, VisitRunner

ID_NUMBER = "110101195503120048"
NAME = "张桂兰"
PHONE = "13812345678"
PIN = "864209"
PIN_BLOCK = "06A1B2C3D4E5F607"
PHOTO = bytes(range(256)) * 4
TEMPLATE = [0.0123 * i - 0.5 for i in range(128)]
ADDRESS = "示例市示例区幸福路88号3单元502室"

SECRETS = [ID_NUMBER, ID_NUMBER[:14], NAME, PHONE, PIN, PIN_BLOCK, ADDRESS, "0.0123"]


class PersonalError(Exception):
    pass


class Nobody:
    def ask(self, prompt: Prompt) -> Answer:
        return Answer("ok")

    def show(self, prompt: Prompt) -> None:
        return None


def leaky_visit(tmp_path: Path) -> None:
    """A flow whose steps log what careless code might log, and fail with personal data in the
    exception text — the worst case the redaction must survive."""
    log = logging.getLogger("kiosk.flows.test")

    def read_id(ctx):
        register_sensitive(NAME, ADDRESS)
        log.info("identity read %s %s born %s at %s", NAME, ID_NUMBER, "1955-03-12", ADDRESS)
        log.info("mobile=%s", PHONE)
        log.debug("photo %r template %s", PHOTO[:64], TEMPLATE)
        log.warning("pin=%s block %s", PIN, PIN_BLOCK)
        log.info("extra args", extra={"citizen": ID_NUMBER})
        return {"masked": ID_NUMBER[:6] + "********" + ID_NUMBER[-4:]}

    def submit(ctx):
        raise PersonalError(f"back end refused {ID_NUMBER} {NAME} pin {PIN} block={PIN_BLOCK}")

    journal = Journal(open_state_db(tmp_path, {"journal": JOURNAL_SCHEMA}))
    VisitRunner(journal, Nobody(), None).run(Flow("leaky", "t", (Step("read_id", read_id), Step("submit", submit))))
    try:
        raise ValueError(f"photo bytes {PHOTO!r}")
    except ValueError:
        logging.getLogger("kiosk.app").exception("unexpected %s", ID_NUMBER)


def assert_clean(text: str) -> None:
    assert text.strip(), "nothing was logged: the test would prove nothing"
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} reached the log"
    assert "\\x00\\x01\\x02" not in text, "photo bytes reached the log"


def test_every_log_line_and_traceback_is_redacted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log_file = tmp_path / "log" / "kiosk.log"
    configure_logging("DEBUG", log_file, console=True)
    try:
        leaky_visit(tmp_path)
    finally:
        for handler in list(logging.getLogger().handlers):
            if getattr(handler, "_kiosk", False):
                logging.getLogger().removeHandler(handler)
                handler.close()
    written = log_file.read_text(encoding="utf-8")
    assert "Traceback" in written and "PersonalError" in written, "the traceback itself must still be logged"
    assert "0048" in written, "the last 4 digits of the ID number are kept for support"
    assert_clean(written)
    assert_clean(capsys.readouterr().err)


def test_records_seen_by_any_handler_are_redacted(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    configure_logging("DEBUG", None, console=False)
    with caplog.at_level(logging.DEBUG):
        leaky_visit(tmp_path)
    assert_clean("\n".join(caplog.messages) + "\n".join(r.exc_text or "" for r in caplog.records))


def test_a_child_process_using_the_kiosk_logging_redacts_uncaught_errors(tmp_path: Path) -> None:
    code = (
        "import logging; from kiosk.logs import configure_logging; configure_logging('INFO');"
        f"logging.getLogger('x').error('failed for %s', '{ID_NUMBER}')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "**************0048" in out.stderr
    assert ID_NUMBER not in out.stderr


@pytest.mark.parametrize(
    "text",
    [
        f"id {ID_NUMBER}",
        "id 11010119751010001X",
        "old id 110101550312004",
        f"phone:{PHONE}",
        f'"pin": "{PIN}"',
        f"newPin={PIN}",
        f"pinblock {PIN_BLOCK.lower()}",
        "key 0123456789ABCDEFFEDCBA9876543210",
        f"tpl array({TEMPLATE[:10]})",
        "photo /9j/4AAQSkZJRgABAQEASABIAAD/2wBDAAMCAgMCAgMDAwMEAwMEBQgFBQQEBQoHBwYIDAoMDAsKCwsNDhIQDQ4RDgsLEBYQERMUFRUVDA8XGBYUGBIUFRT/",
    ],
)
def test_redact_removes_each_kind_of_value(text: str) -> None:
    out = redact(text)
    assert out != text
    for secret in (ID_NUMBER, "11010119751010001X", "110101550312004", PHONE, PIN, PIN_BLOCK, PIN_BLOCK.lower(),
                   "0123456789ABCDEF", "/9j/4AAQSkZJRgABAQEA"):
        assert secret not in out


def test_redact_keeps_ordinary_text() -> None:
    text = "visit V20261123-ab12 step feed_card card A12345678 took 0.41 s, 3 tries"
    assert redact(text) == text
